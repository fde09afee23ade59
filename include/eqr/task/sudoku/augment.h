#pragma once
// Validity-preserving Sudoku augmentation, exactly the reference's `shuffle_sudoku`
// (reference/eqr_spec.md §4.2), generalised to boxes of box_rows x box_cols.
//
// Draw order from the numpy legacy stream (bit-exact with the reference for 9x9):
//   1. digit_map = [0] + (1 + permutation(n))       blank 0 stays blank
//   2. transpose = rand() < 0.5
//   3. bands  = permutation(n / box_rows);  row_perm = concat_b (b * box_rows + permutation(box_rows))
//   4. stacks = permutation(n / box_cols);  col_perm = concat_s (s * box_cols + permutation(box_cols))
//   5. new[r * n + c] = digit_map[old'[row_perm[r] * n + col_perm[c]]], old' = transpose ? old^T : old
// The same transform is applied to question and answer.
//
// Non-square boxes (e.g. 6x6 = 2x3): a transpose would turn 2x3 boxes into 3x2 boxes and break the
// box constraint, so it is never applied there; rand() is still drawn so that the stream has the same
// shape for every geometry. For square boxes (4x4, 9x9, 16x16) everything is applied.

#include <cstdint>
#include <utility>
#include <vector>

#include "eqr/task/sudoku/board.h"
#include "eqr/core/numpy_random.h"

namespace eqr::sudoku {

/// One augmentation. Cell (r, c) of the result takes old'(row_perm[r], col_perm[c]) mapped by digit_map.
struct SudokuTransform {
  std::vector<uint8_t> digit_map;  ///< n + 1 entries; digit_map[0] = 0 (blank stays blank)
  bool transpose = false;          ///< transpose the source first (square boxes only)
  std::vector<int> row_perm;       ///< n source rows, a band permutation composed with row-in-band ones
  std::vector<int> col_perm;       ///< n source columns, likewise with stacks

  /// Source cell of every target cell (n*n entries), transpose included.
  std::vector<int> cell_map(const Geometry& geom) const;
  /// Applies the transform to a grid of values (0 blank, 1..n digits).
  Grid apply(const Grid& values, const Geometry& geom) const;
};

/// The identity transform for `geom`.
SudokuTransform identity_transform(const Geometry& geom);

/// Draws one transform from `rng` in the reference's order (see the file comment).
SudokuTransform draw_sudoku_transform(NumpyRandomState& rng, const Geometry& geom);

/// The reference's shuffle_sudoku: one transform drawn from `rng`, applied to both grids.
std::pair<Grid, Grid> shuffle_sudoku(const Grid& question, const Grid& answer, const Geometry& geom,
                                     NumpyRandomState& rng);

/// Applies `t` to one grid of `cells` values from `in` to `out` (no overlap, values must be < n + 1).
/// `map` = t.cell_map(geom), computed once per transform. The builder's fast path.
void apply_transform(const SudokuTransform& t, const std::vector<int>& map, const uint8_t* in, uint8_t* out,
                     int64_t cells);

}  // namespace eqr::sudoku
