#pragma once
// Exact Sudoku solver for any geometry up to 16x16: bitmask constraint propagation plus backtracking.
//
// Propagation (to a fixpoint): naked singles (a cell with one candidate is assigned, removing the digit
// from its peers), hidden singles (a digit with one possible cell in a row, column or box is assigned;
// units scanned rows, then columns, then boxes, digits ascending), and, when no single is left, locked
// candidates (a digit confined to one row/column of a box is removed from the rest of that row/column,
// and a digit confined to one box of a row/column from the rest of that box). A cell without candidates
// or a unit missing a digit is a contradiction.
// Search order (deterministic): branch on the unsolved cell with the fewest candidates (lowest cell index
// on ties) and try its digits in ascending order (or in a random order, for random_solution()).
// Rating = backtracks = the number of guesses (branch digits tried) that led to no solution before the
// first solution was found; 0 means propagation alone, or only lucky guesses, solved the puzzle.

#include <cstdint>
#include <random>
#include <vector>

#include "eqr/task/sudoku/board.h"

namespace eqr::sudoku {

/// Counters of one search.
struct SearchStats {
  int64_t guesses = 0;     ///< branch digits tried
  int64_t backtracks = 0;  ///< guesses whose subtree had no (further wanted) solution
};

/// Outcome of solve().
struct SolveResult {
  bool solved = false;  ///< a solution exists (the first in search order is `solution`)
  Grid solution;        ///< complete grid, empty when unsolved
  SearchStats stats;    ///< counters of the search up to the first solution
};

/// A solver for one geometry; holds the peer and unit tables. Const methods are thread-safe.
class Solver {
 public:
  explicit Solver(const Geometry& geom);

  const Geometry& geometry() const { return geom_; }

  /// First solution in the documented search order. `puzzle` holds values 0..n (DataError if the size
  /// or a value is wrong). A puzzle whose givens conflict has no solution.
  SolveResult solve(const Grid& puzzle) const;
  /// Number of solutions, counting stops at `limit` (limit 2 answers "unique?"). `first` (optional)
  /// gets the first solution found.
  int count_solutions(const Grid& puzzle, int limit, Grid* first = nullptr) const;
  /// True when the puzzle has exactly one solution.
  bool is_unique(const Grid& puzzle) const { return count_solutions(puzzle, 2) == 1; }
  /// Rating: backtracks of solve() (see header comment); -1 when the puzzle has no solution.
  int64_t rate(const Grid& puzzle) const;
  /// A random complete grid: search on the empty board trying digits in an order
  /// shuffled by `rng` at every branch.
  Grid random_solution(std::mt19937_64& rng) const;

 private:
  friend class Search;
  Geometry geom_;
  int n_, cells_, peer_count_;
  std::vector<uint8_t> peers_;  // cells_ x peer_count_
  std::vector<uint8_t> units_;  // 3n units x n cells: rows, columns, boxes
  // Locked-candidate rule: a unit split into `segments` parts of `segment_len` cells; a digit confined to
  // one part is removed from that part's targets (the rest of the crossing line or box).
  struct Lock {
    int segments = 0, segment_len = 0;
    std::vector<uint8_t> cells;                 // segments x segment_len
    std::vector<std::vector<uint8_t>> targets;  // per segment
  };
  std::vector<Lock> locks_;
  void build_locks();
};

/// Convenience wrappers that build a Solver for `geom` (prefer a Solver in loops).
SolveResult solve(const Grid& puzzle, const Geometry& geom);
int count_solutions(const Grid& puzzle, const Geometry& geom, int limit);
int64_t rate(const Grid& puzzle, const Geometry& geom);

}  // namespace eqr::sudoku
