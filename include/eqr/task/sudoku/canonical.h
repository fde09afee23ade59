#pragma once
// Canonical form of a puzzle under the validity-preserving Sudoku symmetries: digit relabelling, row
// permutations within a band, band permutations, column permutations within a stack, stack permutations,
// and (square boxes only) transposition. For 9x9 that is 2 * 6^8 = 3,359,232 cell permutations times 9!
// relabellings.
//
// The canonical form is the lexicographically smallest grid string (board.h characters, '.' < '1' < ... ,
// so blanks sort first) over the whole group; digits are relabelled by first appearance, which is the
// smallest relabelling for a fixed cell permutation. Two puzzles are equivalent iff their forms are equal.
//
// Search (exact, branch and bound, row by row): level 0 tries every (transpose, first row, column
// permutation) and keeps those whose first output row is minimal; level k extends each survivor by every
// allowed next row (the rest of the current band, or the first row of any unused band) and again keeps only
// the minimal rows. Every transform whose output is minimal survives each level, so the result is exact.
// The column permutations are enumerated explicitly (1296 for 9x9); geometries with more than 200,000 of
// them (16x16) are refused with UsageError.

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "eqr/task/sudoku/board.h"

namespace eqr::sudoku {

/// One element of the symmetry group. Applied as: transpose (if set), then output cell (r, c) takes the
/// cell (row_perm[r], col_perm[c]), then every digit d becomes digit_map[d] (digit_map[0] = 0).
struct Symmetry {
  bool transpose = false;
  std::vector<int> row_perm;
  std::vector<int> col_perm;
  std::vector<uint8_t> digit_map;
};

/// The identity transform of `geom`.
Symmetry identity_symmetry(const Geometry& geom);
/// A uniformly random element of the group (transpose only for square boxes).
Symmetry random_symmetry(const Geometry& geom, std::mt19937_64& rng);
/// `grid` transformed by `sym` (UsageError if `sym` is not a valid transform of `geom`).
Grid apply_symmetry(const Grid& grid, const Geometry& geom, const Symmetry& sym);

/// Canonical forms for one geometry; holds the column permutation table. Thread-safe.
class Canonicalizer {
 public:
  explicit Canonicalizer(const Geometry& geom);
  /// Canonical grid string of `puzzle` (values 0..n).
  std::string canonical(const Grid& puzzle) const;

 private:
  Geometry geom_;
  std::vector<std::vector<uint8_t>> col_perms_;
};

/// Canonical grid string of `puzzle` (builds a Canonicalizer; prefer one in loops).
std::string canonical_form(const Grid& puzzle, const Geometry& geom);

/// Canonical forms of many grid strings, computed on `threads` workers (0 = all cores); `progress` as in
/// parallel_for (generator.h).
std::vector<std::string> canonical_forms(const std::vector<std::string>& grids, const Geometry& geom,
                                         int threads = 0,
                                         const std::function<void(int64_t done)>& progress = {});

}  // namespace eqr::sudoku
