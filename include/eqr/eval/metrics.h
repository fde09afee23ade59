#pragma once
// Metrics of a depth x breadth sweep: for every (depth d, breadth R', aggregator) point, accumulated over
// puzzles from the runner's results (infer/runner.h) and the aggregators (infer/aggregate.h).
//
//   exact_accuracy   share of puzzles whose chosen grid is entirely right (every labelled cell)
//   cell_accuracy    share of labelled cells right in the chosen grid (none for pass@k / any_correct)
//   valid_accuracy   share of puzzles whose chosen grid the task's verifier accepts (a valid solution of the
//                    puzzle, equal to the label or not: Sudoku, a complete grid keeping the givens; Maze, a
//                    simple S-G path through open cells); none without a verifier and for pass@k / any_correct
//   steps            supervision steps per trajectory at the point (fixed: = d; adaptive: min(stop, d)),
//                    over the first R' trajectories of every puzzle: mean, p50, p99
//   nfe_per_puzzle   supervision steps per puzzle = mean steps x R' (network forward passes, one per step
//                    and trajectory)
//   block_applications_per_puzzle = nfe_per_puzzle x h_cycles * (l_cycles + 1) * l_layers
//
// Shape legend: R trajectories per puzzle, S cells.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eqr/infer/aggregate.h"
#include "eqr/infer/runner.h"

namespace eqr::eval {

/// One row of report.csv.
struct MetricsRow {
  int64_t depth = 0;
  int64_t breadth = 0;
  std::string aggregator;
  std::string scheduler;
  double exact_accuracy = 0.0;
  std::optional<double> cell_accuracy;
  std::optional<double> valid_accuracy;
  int64_t n_puzzles = 0;
  double steps_mean = 0.0;
  double steps_p50 = 0.0;
  double steps_p99 = 0.0;
  double nfe_per_puzzle = 0.0;
  double block_applications_per_puzzle = 0.0;
  double wall_time_s = 0.0;    ///< the whole run that produced every point (shared)
  double point_time_s = 0.0;   ///< wall_time_s x this point's share of the work (its NFE / NFE done)
  double puzzles_per_s = 0.0;  ///< n_puzzles / point_time_s: the rate a run of only this point would reach
  uint64_t seed = 0;
};

/// Percentile (0..100) of a histogram {value: count}, nearest-rank; 0 for an empty histogram.
double histogram_percentile(const std::map<int64_t, int64_t>& histogram, double percentile);

/// Accumulates every point of a sweep over puzzles.
class MetricsAccumulator {
 public:
  /// depths: the runner's (ascending); breadths: each <= the runner's R.
  MetricsAccumulator(std::vector<int64_t> depths, std::vector<int64_t> breadths, infer::AggregateOptions options);

  /// Adds one puzzle (its R >= max(breadths) trajectories, each with one snapshot per depth).
  void add(const infer::PuzzleResult& puzzle);

  /// The rows: depth-major, then breadth, then aggregator order. `blocks_per_step` converts NFE to block
  /// applications; the timing fields come from the run (wall time and total trajectory-steps done).
  std::vector<MetricsRow> rows(const std::string& scheduler, int64_t blocks_per_step, double wall_time_s,
                               int64_t trajectory_steps_done, uint64_t seed) const;

  int64_t puzzles() const { return puzzles_; }
  /// Sum over the grid points of the steps each would cost run alone (for the prefix-depth saving).
  int64_t sum_of_point_steps() const;

 private:
  struct Point {
    double exact_sum = 0.0;
    double cell_sum = 0.0;
    int64_t cell_count = 0;
    double valid_sum = 0.0;
    int64_t valid_count = 0;
  };
  struct Cell {  // one (depth, breadth)
    std::map<std::string, Point> points;
    std::vector<std::string> order;
    std::map<int64_t, int64_t> steps_histogram;  // per trajectory
    int64_t steps_total = 0;
  };
  std::vector<int64_t> depths_, breadths_;
  infer::AggregateOptions options_;
  std::vector<Cell> cells_;  // depth-major
  int64_t puzzles_ = 0;
};

}  // namespace eqr::eval
