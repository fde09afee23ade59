// Sudoku behind the task seam (include/eqr/task/sudoku/sudoku_task.h): wraps the board code beside it.
// Shape legend: P puzzles, S cells = n*n.

#include "eqr/task/sudoku/sudoku_task.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/core/logging.h"
#include "eqr/task/sudoku/generator.h"
#include "eqr/task/sudoku/solver.h"
#include "eqr/task/sudoku/csv.h"

namespace eqr::task {

namespace {

PuzzleSet from_rows(const std::vector<std::vector<uint8_t>>& inputs, const std::vector<std::vector<int32_t>>& labels,
                    int64_t s) {
  PuzzleSet set;
  const int64_t p = static_cast<int64_t>(inputs.size());
  set.inputs = torch::empty({p, s}, torch::kInt);
  set.labels = torch::empty({p, s}, torch::kInt);
  auto in = set.inputs.accessor<int32_t, 2>();
  auto lab = set.labels.accessor<int32_t, 2>();
  for (int64_t i = 0; i < p; ++i) {
    for (int64_t j = 0; j < s; ++j) {
      in[i][j] = inputs[static_cast<size_t>(i)][static_cast<size_t>(j)];
      lab[i][j] = labels[static_cast<size_t>(i)][static_cast<size_t>(j)];
    }
  }
  return set;
}

std::vector<int32_t> label_ids(const sudoku::Grid& answer) {
  std::vector<int32_t> out;
  for (auto v : sudoku::to_token_ids(answer)) out.push_back(v);
  return out;
}

/// Digit values of S token ids (pad and blank -> 0).
sudoku::Grid values_of(const uint8_t* ids, int cells) {
  sudoku::Grid g(static_cast<size_t>(cells));
  for (int i = 0; i < cells; ++i) g[static_cast<size_t>(i)] = ids[i] >= 2 ? static_cast<uint8_t>(ids[i] - 1) : 0;
  return g;
}

config::DataConfig with_box(const sudoku::Geometry& geom) {
  config::DataConfig d;
  d.box_rows = geom.box_rows;
  d.box_cols = geom.box_cols;
  return d;
}

}  // namespace

SudokuTask::SudokuTask(const config::DataConfig& data)
    : data_(data),
      geom_(sudoku::Geometry::from_box(static_cast<int>(data.box_rows), static_cast<int>(data.box_cols))) {}

SudokuTask::SudokuTask(const sudoku::Geometry& geom) : data_(with_box(geom)), geom_(geom) {}

TaskGeometry SudokuTask::geometry() const {
  return {geom_.cells(), geom_.vocab(), geom_.n(), geom_.n(), geom_.name()};
}

void SudokuTask::check_config(const config::RunConfig& c) const {
  const auto& a = c.arch;
  const int64_t n = geom_.n();
  EQR_CHECK(a.seq_len == n * n && a.vocab_size == n + 2, ConfigError, "config keys 'arch.seq_len' = ", a.seq_len,
            " and 'arch.vocab_size' = ", a.vocab_size, " do not match the board of data.box_rows x data.box_cols = ",
            c.data.box_rows, "x", c.data.box_cols, " (", n, "x", n, " board): expected seq_len ", n * n,
            " and vocab_size ", n + 2);
}

data::SplitData SudokuTask::load_or_build(const std::string& split) const {
  return sudoku::load_or_build(data_, split, sudoku_generator_source(data_));
}

PuzzleSet SudokuTask::read_file(const std::string& path, int64_t max_puzzles) const {
  sudoku::CsvOptions opts;
  opts.geom = geom_;
  opts.max_rows = std::max<int64_t>(0, max_puzzles);
  const sudoku::SudokuSet csv = sudoku::read_sudoku_csv(path, opts);
  EQR_CHECK(!csv.rows.empty(), DataError, path, ": no puzzles; expected at least one data row after the header");
  std::vector<std::vector<uint8_t>> inputs;
  std::vector<std::vector<int32_t>> labels;
  std::vector<std::string> names;
  for (const auto& row : csv.rows) {
    inputs.push_back(sudoku::to_token_ids(sudoku::parse_grid(row.question, geom_)));
    labels.push_back(label_ids(sudoku::parse_grid(row.answer, geom_)));
    names.push_back(row.source + ":" + std::to_string(row.line));
  }
  PuzzleSet set = from_rows(inputs, labels, geom_.cells());
  set.task = std::make_shared<SudokuTask>(*this);
  set.names = std::move(names);
  set.origin = path;
  return set;
}

PuzzleSet SudokuTask::parse_puzzles(const std::vector<std::string>& grids) const {
  EQR_CHECK(!grids.empty(), UsageError, "no puzzles given; expected at least one grid string");
  const sudoku::Solver solver(geom_);
  std::vector<std::vector<uint8_t>> inputs;
  std::vector<std::vector<int32_t>> labels;
  std::vector<std::string> names;
  for (size_t i = 0; i < grids.size(); ++i) {
    sudoku::Grid q;
    try {
      q = sudoku::parse_grid(grids[i], geom_);
    } catch (const Error& e) {
      EQR_FAIL(DataError, "puzzle ", i + 1, ": ", e.what());
    }
    inputs.push_back(sudoku::to_token_ids(q));
    const sudoku::SolveResult solved = solver.solve(q);
    labels.push_back(solved.solved ? label_ids(solved.solution)
                                   : std::vector<int32_t>(static_cast<size_t>(geom_.cells()), data::kIgnoreLabelId));
    names.push_back("puzzle " + std::to_string(i + 1));
  }
  PuzzleSet set = from_rows(inputs, labels, geom_.cells());
  set.task = std::make_shared<SudokuTask>(*this);
  set.names = std::move(names);
  set.origin = "grid strings";
  return set;
}

PuzzleSet SudokuTask::generate(int64_t count, uint64_t seed) const {
  sudoku::GeneratorOptions g;
  g.geom = geom_;
  g.count = count;
  g.seed = seed;
  g.min_givens = static_cast<int>(data_.generate_min_givens);
  g.max_givens = static_cast<int>(data_.generate_max_givens);
  g.min_rating = data_.generate_min_rating;
  std::vector<std::vector<uint8_t>> inputs;
  std::vector<std::vector<int32_t>> labels;
  for (const auto& row : sudoku::generate_puzzles(g)) {
    inputs.push_back(sudoku::to_token_ids(sudoku::parse_grid(row.question, geom_)));
    labels.push_back(label_ids(sudoku::parse_grid(row.answer, geom_)));
  }
  PuzzleSet set = from_rows(inputs, labels, geom_.cells());
  set.task = std::make_shared<SudokuTask>(*this);
  set.origin = "generated " + geom_.name() + " puzzles (seed " + std::to_string(seed) + ")";
  return set;
}

bool SudokuTask::is_valid(const uint8_t* input, const uint8_t* prediction) const {
  const int cells = geom_.cells();
  sudoku::Grid values(static_cast<size_t>(cells));
  for (int i = 0; i < cells; ++i) {
    const int id = prediction[i];
    if (id < 2 || id > geom_.n() + 1) return false;  // pad, blank or out of range: not a digit
    values[static_cast<size_t>(i)] = static_cast<uint8_t>(id - 1);
    if (input[i] != sudoku::kBlankId && input[i] != prediction[i]) return false;  // a given changed
  }
  return sudoku::is_valid_solution(values, geom_);
}

std::string SudokuTask::problem(const uint8_t* input, const uint8_t* prediction) const {
  if (is_valid(input, prediction)) return "";
  const std::string why = sudoku::solution_problem(values_of(prediction, geom_.cells()), geom_);
  return why.empty() ? "a given was changed" : why;
}

std::string SudokuTask::format(const uint8_t* tokens) const {
  return sudoku::pretty_grid(values_of(tokens, geom_.cells()), geom_);
}

std::string SudokuTask::format_line(const uint8_t* tokens) const {
  return sudoku::format_grid(values_of(tokens, geom_.cells()), geom_);
}

std::string SudokuTask::describe(const uint8_t* input) const {
  return std::to_string(sudoku::count_givens(values_of(input, geom_.cells()))) + " givens";
}

sudoku::PuzzleSource sudoku_generator_source(const config::DataConfig& cfg) {
  return [cfg](int64_t count, uint64_t seed, const std::string& split) {
    sudoku::GeneratorOptions g;
    g.geom = sudoku::Geometry{static_cast<int>(cfg.box_rows), static_cast<int>(cfg.box_cols)};
    g.count = count;
    g.seed = seed;
    g.min_givens = static_cast<int>(cfg.generate_min_givens);
    g.max_givens = static_cast<int>(cfg.generate_max_givens);
    g.min_rating = cfg.generate_min_rating;
    g.source = "eqr-gen-" + split;
    logger()->info("generating {} {} puzzles ({}x{} boxes, seed {})", count, split, cfg.box_rows, cfg.box_cols,
                   seed);
    return sudoku::generate_puzzles(g);
  };
}

void complete_sudoku_imported_config(config::Tree& tree, std::vector<std::string>* notes) {
  // The board the reference trained on (its dataset's, not in the arch config): the standard box shape
  // of seq_len, unless the tree (--config) says otherwise.
  const bool has_box = tree.contains("data") && tree["data"].is_object() && tree["data"].contains("box_rows");
  const bool has_seq = tree.contains("arch") && tree["arch"].is_object() && tree["arch"].contains("seq_len") &&
                       tree["arch"]["seq_len"].is_number_integer();
  if (has_box || !has_seq) return;
  const int64_t s = tree["arch"]["seq_len"].get<int64_t>();
  const std::map<int64_t, std::pair<int, int>> boxes = {{16, {2, 2}}, {36, {2, 3}}, {81, {3, 3}}, {256, {4, 4}}};
  if (auto b = boxes.find(s); b != boxes.end()) {
    if (!tree.contains("data") || !tree["data"].is_object()) tree["data"] = config::Tree::object();
    tree["data"]["box_rows"] = b->second.first;
    tree["data"]["box_cols"] = b->second.second;
  } else if (notes) {
    notes->push_back("seq_len " + std::to_string(s) + " is no standard Sudoku board; data.box_* kept");
  }
}

std::shared_ptr<const Task> make_sudoku_task(const config::RunConfig& config) {
  return std::make_shared<SudokuTask>(config.data);
}

}  // namespace eqr::task
