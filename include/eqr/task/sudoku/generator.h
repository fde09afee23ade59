#pragma once
// Puzzle generator: random complete grid -> remove clues while the solution stays unique -> minimal puzzle.
//
// Puzzle i draws every random number from std::mt19937_64(derive_seed(seed, i)) (core/rng.h), so the
// output depends only on (options, seed), never on the thread count or scheduling.
// One attempt: Solver::random_solution(); visit the cells in a random order and blank each one whose removal
// keeps exactly one solution, stopping at min_givens. Without a min_givens floor the result is minimal
// (no single given can be removed): a given kept once is needed for every later, smaller clue set too.
// An attempt is rejected and retried (same stream) when it has more than max_givens givens or a rating
// below min_rating; after max_attempts rejections the generator throws DataError.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eqr/task/sudoku/board.h"
#include "eqr/task/sudoku/solver.h"
#include "eqr/task/sudoku/csv.h"

namespace eqr::sudoku {

struct GeneratorOptions {
  Geometry geom;                     ///< board shape (default 9x9)
  int64_t count = 1;                 ///< puzzles to generate
  uint64_t seed = 0;                 ///< root seed; puzzle i uses derive_seed(seed, i)
  int min_givens = 0;                ///< stop removing clues at this many givens (0 = remove while unique)
  int max_givens = 0;                ///< reject puzzles with more givens (0 = no limit)
  int64_t min_rating = 0;            ///< reject puzzles rated below this (Solver::rate backtracks)
  int threads = 0;                   ///< worker threads (0 = hardware concurrency)
  int max_attempts = 100000;         ///< rejections allowed per puzzle before giving up
  std::string source = "eqr-gen";    ///< `source` column of the rows
};

/// Checks the options (UsageError naming the bad knob).
void validate(const GeneratorOptions& opts);

/// Puzzle number `index` of the stream (deterministic); `attempts` (optional) gets the attempts used.
SudokuRow generate_puzzle(const Solver& solver, const GeneratorOptions& opts, int64_t index,
                          int* attempts = nullptr);

/// Puzzles 0..count-1 on `threads` workers, in index order. `progress(done)` (optional) is called from the
/// calling thread only, a few times a second and once at the end.
std::vector<SudokuRow> generate_puzzles(const GeneratorOptions& opts,
                                        const std::function<void(int64_t done)>& progress = {});

}  // namespace eqr::sudoku
