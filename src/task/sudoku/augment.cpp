#include "eqr/task/sudoku/augment.h"

#include <numeric>

#include "eqr/core/error.h"

namespace eqr::sudoku {

namespace {

// concat over g in permutation(groups) of (g * size + permutation(size)), as the reference draws it.
std::vector<int> grouped_permutation(NumpyRandomState& rng, int groups, int size) {
  const std::vector<int64_t> order = rng.permutation(groups);
  std::vector<int> perm;
  perm.reserve(static_cast<size_t>(groups * size));
  for (int64_t g : order) {
    for (int64_t k : rng.permutation(size)) perm.push_back(static_cast<int>(g * size + k));
  }
  return perm;
}

}  // namespace

std::vector<int> SudokuTransform::cell_map(const Geometry& geom) const {
  const int n = geom.n();
  EQR_CHECK(static_cast<int>(row_perm.size()) == n && static_cast<int>(col_perm.size()) == n &&
                static_cast<int>(digit_map.size()) == n + 1,
            DataError, "sudoku transform: permutation sizes ", row_perm.size(), "/", col_perm.size(), "/",
            digit_map.size(), " do not match a ", geom.name(), " board (expected ", n, "/", n, "/", n + 1, ")");
  std::vector<int> map(static_cast<size_t>(n * n));
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < n; ++c) {
      const int sr = row_perm[r];
      const int sc = col_perm[c];
      // old' = old^T  =>  old'(sr, sc) = old(sc, sr)
      map[r * n + c] = transpose ? sc * n + sr : sr * n + sc;
    }
  }
  return map;
}

Grid SudokuTransform::apply(const Grid& values, const Geometry& geom) const {
  EQR_CHECK(static_cast<int>(values.size()) == geom.cells(), DataError, "sudoku transform: grid has ",
            values.size(), " cells, expected ", geom.cells(), " for ", geom.name());
  const std::vector<int> map = cell_map(geom);
  for (size_t i = 0; i < values.size(); ++i) {
    EQR_CHECK(values[i] < digit_map.size(), DataError, "sudoku transform: cell ", i, " has value ",
              int(values[i]), ", expected 0..", digit_map.size() - 1);
  }
  Grid out(values.size());
  apply_transform(*this, map, values.data(), out.data(), geom.cells());
  return out;
}

SudokuTransform identity_transform(const Geometry& geom) {
  SudokuTransform t;
  const int n = geom.n();
  t.digit_map.resize(static_cast<size_t>(n + 1));
  std::iota(t.digit_map.begin(), t.digit_map.end(), uint8_t{0});
  t.row_perm.resize(static_cast<size_t>(n));
  std::iota(t.row_perm.begin(), t.row_perm.end(), 0);
  t.col_perm = t.row_perm;
  return t;
}

SudokuTransform draw_sudoku_transform(NumpyRandomState& rng, const Geometry& geom) {
  const int n = geom.n();
  SudokuTransform t;
  // 1. digit map with the blank fixed: np.pad(permutation(arange(1, n+1)), (1, 0)).
  t.digit_map.assign(1, 0);
  for (int64_t d : rng.permutation(n)) t.digit_map.push_back(static_cast<uint8_t>(d + 1));
  // 2. transpose flag (drawn for every geometry, applied only to square boxes).
  const bool flag = rng.random_sample() < 0.5;
  t.transpose = flag && geom.box_rows == geom.box_cols;
  // 3. bands of box_rows rows, then 4. stacks of box_cols columns.
  t.row_perm = grouped_permutation(rng, geom.bands(), geom.box_rows);
  t.col_perm = grouped_permutation(rng, geom.stacks(), geom.box_cols);
  return t;
}

std::pair<Grid, Grid> shuffle_sudoku(const Grid& question, const Grid& answer, const Geometry& geom,
                                     NumpyRandomState& rng) {
  const SudokuTransform t = draw_sudoku_transform(rng, geom);
  return {t.apply(question, geom), t.apply(answer, geom)};
}

void apply_transform(const SudokuTransform& t, const std::vector<int>& map, const uint8_t* in, uint8_t* out,
                     int64_t cells) {
  const uint8_t* digit = t.digit_map.data();
  for (int64_t i = 0; i < cells; ++i) out[i] = digit[in[map[static_cast<size_t>(i)]]];
}

}  // namespace eqr::sudoku
