#pragma once
// The task seam: what a task (Sudoku, Maze-Unique, ...) tells the rest of eqr. Training (train/),
// inference (infer/), evaluation (eval/), the recursion (dynamics/) and the model (model/) know a task only
// through this interface: its geometry (S cells, V tokens, the board for 2-D RoPE), how its examples are
// read, generated and built, and how a prediction is verified and printed. A task lives in
// include/eqr/task/<name>/ + src/task/<name>/ and joins the registry (task.cpp: one line, or register_task);
// `data.task` selects it (make_task). docs/tasks.md says how to add one.
//
// Shape legend: P puzzles (examples), S cells (seq_len), V vocab. Token ids are the task's own (0 = pad).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "eqr/config/config.h"
#include "eqr/config/load.h"
#include "eqr/data/dataset.h"
#include "eqr/task/cli.h"

namespace eqr::task {

/// What the model sees of a task.
struct TaskGeometry {
  int64_t seq_len = 0;       ///< S: cells of one example
  int64_t vocab_size = 0;    ///< V: token ids 0..V-1 (0 = pad)
  int64_t board_height = 0;  ///< rows of the board (2-D RoPE: arch.board_height)
  int64_t board_width = 0;   ///< columns of the board (2-D RoPE: arch.board_width)
  std::string board;         ///< short description for reports, e.g. "9x9"
};

class Task;

/// Examples to solve (the inference runner's input).
struct PuzzleSet {
  std::shared_ptr<const Task> task;  ///< what the examples are (verifying, printing); null = unknown
  at::Tensor inputs;     ///< (P, S) int32 token ids
  at::Tensor labels;     ///< (P, S) int32 token ids, data::kIgnoreLabelId = not scored; undefined = no answers known
  std::vector<std::string> names;  ///< optional per-puzzle label (source:line), empty allowed
  std::vector<int64_t> ids;        ///< identity of each puzzle for seeding its initial states
                                   ///< (empty = its index); PuzzleResult::puzzle is the index
  std::string origin;    ///< where the puzzles came from (path / description)
  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  /// Seeding identity of puzzle i (ids[i], or i).
  int64_t id(int64_t i) const { return ids.empty() ? i : ids[static_cast<size_t>(i)]; }
  /// Puzzles [begin, end) keeping their seeding identities (a puzzle run alone starts as in the full set).
  PuzzleSet slice(int64_t begin, int64_t end) const;
};

/// The interface a task implements. Instances are immutable (shared between threads).
class Task {
 public:
  virtual ~Task() = default;

  /// The `data.task` name ("sudoku", "maze").
  virtual std::string name() const = 0;
  /// S, V and the board.
  virtual TaskGeometry geometry() const = 0;
  /// Cross-checks a run config against the task (ConfigError naming the keys): by default arch.seq_len and
  /// arch.vocab_size equal the geometry's, and with rope2d the board is board_height x board_width.
  virtual void check_config(const config::RunConfig& config) const;

  /// The split `split` ("train" / "test") the config's data section describes: read (source built),
  /// or built from files or the task's generator, cached at data.data_path (data::load_or_build).
  virtual data::SplitData load_or_build(const std::string& split) const = 0;
  /// <dir>/<split>/ of a built dataset in the numpy layout, checked to hold this task's examples
  /// (default: data::load_split plus seq_len and vocab_size equal to the geometry's; DataError otherwise).
  virtual data::SplitData load_split(const std::string& dir, const std::string& split) const;
  /// Examples of a task-specific file (Sudoku: a Sudoku-Extreme CSV), the first `max_puzzles` (0 = all).
  virtual PuzzleSet read_file(const std::string& path, int64_t max_puzzles = 0) const = 0;
  /// Examples written as text, one string each (Sudoku: a grid string); labels where the task can compute
  /// the answer, else data::kIgnoreLabelId. DataError naming the example for malformed text.
  virtual PuzzleSet parse_puzzles(const std::vector<std::string>& texts) const = 0;
  /// `count` fresh examples of the task's generator (data section's knobs), seeded by `seed`.
  virtual PuzzleSet generate(int64_t count, uint64_t seed) const = 0;

  /// Whether `prediction` is a valid solution of `input` (a rule check, not a comparison with a label).
  /// input, prediction: (S) token ids.
  virtual bool is_valid(const uint8_t* input, const uint8_t* prediction) const = 0;
  /// Why a prediction is not valid ("" when it is).
  virtual std::string problem(const uint8_t* input, const uint8_t* prediction) const = 0;
  /// A board (input, label or prediction; (S) token ids) as text rows for a terminal.
  virtual std::string format(const uint8_t* tokens) const = 0;
  /// A board as one line (the task's text form that parse_puzzles reads back).
  virtual std::string format_line(const uint8_t* tokens) const = 0;
  /// A short note on an input for printing, e.g. "23 givens" ("" = none).
  virtual std::string describe(const uint8_t* /*input*/) const { return ""; }
};

/// A task as the registry holds it.
struct TaskEntry {
  std::string name;  ///< the `data.task` value (Task::name())
  /// The task of a config (its data section), before Task::check_config.
  std::function<std::shared_ptr<const Task>(const config::RunConfig&)> make;
  /// Fills in the task's data keys of a config assembled from a reference checkpoint (may be empty).
  std::function<void(config::Tree&, std::vector<std::string>*)> complete_imported_config;
  /// The task's commands (`eqr data ...`, `eqr bench ...`; cli.h); may be empty.
  std::function<std::vector<TaskVerb>()> verbs;
};

/// Adds a task to the registry (after the built-in ones; ConfigError for a name already registered).
void register_task(TaskEntry entry);
/// The registered tasks, built-in ones first (in the order docs list them).
const std::vector<TaskEntry>& task_registry();
/// Their names.
std::vector<std::string> task_names();
/// The task `config.data.task` names, built from the config's data section and checked against the whole
/// config (Task::check_config). ConfigError for an unknown name (listing task_names()) or a mismatch.
std::shared_ptr<const Task> make_task(const config::RunConfig& config);
/// For configs assembled from a reference checkpoint (no eqr data section): fills in the data keys of the
/// task `tree.data.task` names (default: the first registered task) from arch.seq_len / arch.vocab_size
/// unless the tree sets them (Sudoku: data.box_rows / box_cols of the standard board). Notes what it did or
/// could not do.
void complete_imported_config(config::Tree& tree, std::vector<std::string>* notes = nullptr);

/// Puzzles of a built split (labels equal to the metadata's ignore_label_id -> -100), the first
/// `max_puzzles` (0 = all).
PuzzleSet puzzles_from_split(const data::SplitData& split, std::shared_ptr<const Task> task,
                             int64_t max_puzzles = 0);

}  // namespace eqr::task
