#include "eqr/task/sudoku/generator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "eqr/core/error.h"
#include "eqr/core/parallel.h"
#include "eqr/core/rng.h"

namespace eqr::sudoku {

void validate(const GeneratorOptions& opts) {
  const int cells = opts.geom.cells();
  EQR_CHECK(opts.count >= 0, UsageError, "generate: count ", opts.count, " must be >= 0");
  EQR_CHECK(opts.min_givens >= 0 && opts.min_givens <= cells, UsageError, "generate: min givens ", opts.min_givens,
            " out of range; expected 0..", cells);
  EQR_CHECK(opts.max_givens >= 0 && opts.max_givens <= cells, UsageError, "generate: max givens ", opts.max_givens,
            " out of range; expected 0..", cells, " (0 = no limit)");
  EQR_CHECK(opts.max_givens == 0 || opts.max_givens >= opts.min_givens, UsageError, "generate: max givens ",
            opts.max_givens, " is below min givens ", opts.min_givens);
  EQR_CHECK(opts.threads >= 0, UsageError, "generate: threads ", opts.threads, " must be >= 0 (0 = all cores)");
  EQR_CHECK(opts.max_attempts >= 1, UsageError, "generate: max attempts ", opts.max_attempts, " must be >= 1");
  EQR_CHECK(opts.source.find_first_of(",\n\r") == std::string::npos, UsageError, "generate: source '", opts.source,
            "' must not contain a comma or newline");
}

SudokuRow generate_puzzle(const Solver& solver, const GeneratorOptions& opts, int64_t index, int* attempts) {
  const Geometry& geom = solver.geometry();
  std::mt19937_64 rng(derive_seed(opts.seed, static_cast<uint64_t>(index)));
  std::vector<int> order(geom.cells());
  for (int attempt = 1; attempt <= opts.max_attempts; ++attempt) {
    const Grid solution = solver.random_solution(rng);
    Grid puzzle = solution;
    int givens = geom.cells();
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (int c : order) {
      if (givens <= opts.min_givens) break;
      puzzle[c] = 0;
      if (solver.count_solutions(puzzle, 2) == 1) {
        --givens;
      } else {
        puzzle[c] = solution[c];
      }
    }
    if (opts.max_givens > 0 && givens > opts.max_givens) continue;
    const int64_t rating = solver.rate(puzzle);
    if (rating < opts.min_rating) continue;
    if (attempts) *attempts = attempt;
    return SudokuRow{opts.source, format_grid(puzzle, geom), format_grid(solution, geom), rating, 0};
  }
  EQR_FAIL(DataError, "generate: puzzle ", index, " (seed ", opts.seed, ") found none with givens <= ",
           opts.max_givens, " and rating >= ", opts.min_rating, " in ", opts.max_attempts,
           " attempts; relax --max-givens/--min-rating or raise the attempt limit");
}

std::vector<SudokuRow> generate_puzzles(const GeneratorOptions& opts,
                                        const std::function<void(int64_t done)>& progress) {
  validate(opts);
  const Solver solver(opts.geom);
  std::vector<SudokuRow> rows(static_cast<size_t>(opts.count));
  parallel_for(
      opts.count, opts.threads, [&](int64_t i) { rows[i] = generate_puzzle(solver, opts, i); }, progress);
  return rows;
}

}  // namespace eqr::sudoku
