#pragma once
// Sudoku (Sudoku-Extreme and smaller boards) behind the task seam (task.h). The board code lives beside it
// (board.h, solver.h, generator.h, csv.h, canonical.h, augment.h, build.h); this file is what the rest of eqr
// reaches it by.
//
// Tokens: 0 pad, 1 blank, d + 1 digit d (V = n + 2); S = n * n cells, n = box_rows * box_cols.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eqr/config/config.h"
#include "eqr/task/sudoku/board.h"
#include "eqr/data/dataset.h"
#include "eqr/task/sudoku/build.h"
#include "eqr/task/task.h"

namespace eqr::task {

/// The `data.task` value of this task.
constexpr const char* kSudokuTaskName = "sudoku";

class SudokuTask : public Task {
 public:
  /// The board data.box_rows x data.box_cols (UsageError for a bad box shape); the data section also
  /// drives load_or_build and generate.
  explicit SudokuTask(const config::DataConfig& data);
  /// A board alone (data section: defaults with this box shape).
  explicit SudokuTask(const sudoku::Geometry& geom);

  const sudoku::Geometry& board() const { return geom_; }

  std::string name() const override { return kSudokuTaskName; }
  TaskGeometry geometry() const override;
  void check_config(const config::RunConfig& config) const override;
  data::SplitData load_or_build(const std::string& split) const override;
  PuzzleSet read_file(const std::string& path, int64_t max_puzzles = 0) const override;
  PuzzleSet parse_puzzles(const std::vector<std::string>& texts) const override;
  PuzzleSet generate(int64_t count, uint64_t seed) const override;
  /// Complete valid grid that keeps every given of the input.
  bool is_valid(const uint8_t* input, const uint8_t* prediction) const override;
  std::string problem(const uint8_t* input, const uint8_t* prediction) const override;
  std::string format(const uint8_t* tokens) const override;
  std::string format_line(const uint8_t* tokens) const override;
  /// "<k> givens".
  std::string describe(const uint8_t* input) const override;

 private:
  config::DataConfig data_;
  sudoku::Geometry geom_;
};

/// eqr's generator (generator.h) as the dataset builder's puzzle source (board and knobs from `data`).
sudoku::PuzzleSource sudoku_generator_source(const config::DataConfig& data);
/// task::complete_imported_config for Sudoku: data.box_rows / box_cols of the standard board of
/// arch.seq_len unless the tree sets data.box_rows.
void complete_sudoku_imported_config(config::Tree& tree, std::vector<std::string>* notes);
/// The registry's constructor (task.cpp).
std::shared_ptr<const Task> make_sudoku_task(const config::RunConfig& config);
/// `eqr data generate|check|inspect|overlap|solve-exact|build`, `eqr bench csv|solver|generator` (cli.cpp).
std::vector<TaskVerb> sudoku_verbs();

}  // namespace eqr::task
