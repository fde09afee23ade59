#pragma once
// Sudoku (Sudoku-Extreme and smaller boards) behind the task seam (task.h). The board code lives in data/
// (board.h, solver.h, generator.h, sudoku_csv.h, dataset.h); this file is what the rest of eqr reaches it by.
//
// Tokens: 0 pad, 1 blank, d + 1 digit d (V = n + 2); S = n * n cells, n = box_rows * box_cols.

#include <cstdint>
#include <string>
#include <vector>

#include "eqr/config/config.h"
#include "eqr/data/board.h"
#include "eqr/data/dataset.h"
#include "eqr/task/task.h"

namespace eqr::task {

class SudokuTask : public Task {
 public:
  /// The board data.box_rows x data.box_cols (UsageError for a bad box shape); the data section also
  /// drives load_or_build and generate.
  explicit SudokuTask(const config::DataConfig& data);
  /// A board alone (data section: defaults with this box shape).
  explicit SudokuTask(const data::Geometry& geom);

  const data::Geometry& board() const { return geom_; }

  std::string name() const override { return "sudoku"; }
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
  data::Geometry geom_;
};

/// The standard board with seq_len cells (16 -> 4x4, 36 -> 6x6, 81 -> 9x9, 256 -> 16x16; ConfigError else).
data::Geometry sudoku_geometry_for_seq_len(int64_t seq_len);
/// eqr's generator (generator.h) as the dataset builder's puzzle source (board and knobs from `data`).
data::PuzzleSource sudoku_generator_source(const config::DataConfig& data);
/// task::complete_imported_config for Sudoku: data.box_rows / box_cols of the standard board of
/// arch.seq_len unless the tree sets data.box_rows.
void complete_sudoku_imported_config(config::Tree& tree, std::vector<std::string>* notes);

}  // namespace eqr::task
