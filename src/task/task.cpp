// The task seam (include/eqr/task/task.h): puzzle sets, the default checks, the registry of tasks.
// Shape legend: P puzzles, S cells.

#include "eqr/task/task.h"

#include <algorithm>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/task/maze/maze_task.h"
#include "eqr/task/sudoku/sudoku_task.h"

namespace eqr::task {

PuzzleSet PuzzleSet::slice(int64_t begin, int64_t end) const {
  EQR_CHECK(0 <= begin && begin <= end && end <= size(), UsageError, "puzzle slice [", begin, ", ", end,
            ") outside [0, ", size(), ")");
  PuzzleSet out;
  out.task = task;
  out.inputs = inputs.slice(0, begin, end);
  if (labels.defined()) out.labels = labels.slice(0, begin, end);
  if (!names.empty()) out.names.assign(names.begin() + begin, names.begin() + end);
  for (int64_t i = begin; i < end; ++i) out.ids.push_back(id(i));
  out.origin = origin;
  return out;
}

void Task::check_config(const config::RunConfig& config) const {
  const TaskGeometry g = geometry();
  const auto& a = config.arch;
  EQR_CHECK(a.seq_len == g.seq_len && a.vocab_size == g.vocab_size, ConfigError, "config keys 'arch.seq_len' = ",
            a.seq_len, " and 'arch.vocab_size' = ", a.vocab_size, " do not match the ", name(), " task's ", g.board,
            " board (data.task = ", name(), "): expected seq_len ", g.seq_len, " and vocab_size ", g.vocab_size);
}

data::SplitData Task::load_split(const std::string& dir, const std::string& split) const {
  data::SplitData d = data::load_split(dir, split);
  const TaskGeometry g = geometry();
  EQR_CHECK(d.seq_len() == g.seq_len && d.metadata.vocab_size == g.vocab_size, DataError, dir, "/", split,
            ": seq_len ", d.seq_len(), " and vocab_size ", d.metadata.vocab_size, " are not the ", name(),
            " task's ", g.board, " board (expected seq_len ", g.seq_len, ", vocab_size ", g.vocab_size, ")");
  return d;
}

namespace {

// The built-in tasks: adding one is one line here (docs/tasks.md "How to add a task").
std::vector<TaskEntry>& registry() {
  static std::vector<TaskEntry> tasks = {
      {kSudokuTaskName, make_sudoku_task, complete_sudoku_imported_config, sudoku_verbs},
      {kMazeTaskName, make_maze_task, nullptr, maze_verbs},
  };
  return tasks;
}

std::string joined_names() {
  std::string known;
  for (const auto& n : task_names()) known += (known.empty() ? "" : ", ") + n;
  return known;
}

const TaskEntry* find_entry(const std::string& name) {
  for (const auto& e : registry()) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace

void register_task(TaskEntry entry) {
  EQR_CHECK(!entry.name.empty() && entry.make, ConfigError, "register_task: a task needs a name and a make function");
  EQR_CHECK(find_entry(entry.name) == nullptr, ConfigError, "register_task: a task named '", entry.name,
            "' is already registered (", joined_names(), ")");
  registry().push_back(std::move(entry));
}

const std::vector<TaskEntry>& task_registry() { return registry(); }

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.name);
  return names;
}

std::shared_ptr<const Task> make_task(const config::RunConfig& config) {
  const std::string& name = config.data.task;
  const TaskEntry* entry = find_entry(name);
  EQR_CHECK(entry != nullptr, ConfigError, "config key 'data.task' = \"", name, "\": unknown task; expected one of ",
            joined_names());
  std::shared_ptr<const Task> task = entry->make(config);
  task->check_config(config);
  return task;
}

void complete_imported_config(config::Tree& tree, std::vector<std::string>* notes) {
  std::string name = registry().front().name;
  if (tree.contains("data") && tree["data"].is_object() && tree["data"].contains("task") &&
      tree["data"]["task"].is_string()) {
    name = tree["data"]["task"].get<std::string>();
  }
  // Unknown names are reported by make_task.
  if (const TaskEntry* e = find_entry(name); e && e->complete_imported_config) e->complete_imported_config(tree, notes);
}

PuzzleSet puzzles_from_split(const data::SplitData& split, std::shared_ptr<const Task> task, int64_t max_puzzles) {
  const int64_t s = split.seq_len();
  int64_t n = split.num_examples();
  if (max_puzzles > 0) n = std::min(n, max_puzzles);
  EQR_CHECK(n > 0, DataError, "split '", split.name, "': no examples; expected at least one");
  PuzzleSet set;
  set.task = std::move(task);
  set.inputs = torch::from_blob(const_cast<uint8_t*>(split.inputs.data()), {n, s}, torch::kUInt8).to(torch::kInt);
  set.labels = torch::from_blob(const_cast<uint8_t*>(split.labels.data()), {n, s}, torch::kUInt8).to(torch::kInt);
  if (split.metadata.ignore_label_id) {
    set.labels.masked_fill_(set.labels == *split.metadata.ignore_label_id, data::kIgnoreLabelId);
  }
  set.origin = "split " + split.name;
  return set;
}

}  // namespace eqr::task
