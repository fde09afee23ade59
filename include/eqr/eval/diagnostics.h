#pragma once
// Attractor diagnostics of a run (beyond the reference, which only logs residual_of_{i}_steps):
//   - residual per step: mean over trajectories, split by whether the trajectory's final answer is right;
//   - convergence rate d_k / d_{k-1} (residual ratio of consecutive steps): mean per step k >= 2;
//   - how well the final residual predicts correctness: AUROC of "smaller residual -> correct" per depth
//     (also of the convergence score and of the q_halt logit);
//   - the landscape across the R initial states of each puzzle: distinct final grids, the share of
//     trajectories in the majority basin (the most common final grid), the steps histogram.
//
// Shape legend: R trajectories per puzzle, T steps.

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/infer/runner.h"

namespace eqr::eval {

/// AUROC of `scores` for separating positives from negatives: P(score_pos > score_neg) + 0.5 P(equal),
/// over all (positive, negative) pairs, with tied scores counted by average ranks (Mann-Whitney U).
/// NaN scores rank below every number. nullopt when either class is empty.
std::optional<double> auroc(const std::vector<double>& scores, const std::vector<bool>& positive);

/// 95% confidence interval of an AUROC `a` from n_pos positives and n_neg negatives: a +- 1.96 SE with the
/// Hanley-McNeil (1982) standard error, clipped to [0, 1].
std::pair<double, double> auroc_ci95(double a, int64_t n_pos, int64_t n_neg);

class DiagnosticsAccumulator {
 public:
  /// depths: the runner's (ascending).
  explicit DiagnosticsAccumulator(std::vector<int64_t> depths);

  /// Adds one puzzle's trajectories (all R of them).
  void add(const infer::PuzzleResult& puzzle);

  /// {residual_by_step: {all, correct, wrong, rows_*}, convergence_rate_by_step, auroc: [{depth,
  ///  residual, convergence_score, q_halt, n_correct, n_wrong}], landscape: {...}, steps_histogram}.
  nlohmann::ordered_json to_json() const;

 private:
  std::vector<int64_t> depths_;
  // residual traces (final correctness at the largest depth)
  std::vector<double> res_correct_, res_wrong_, rate_sum_;
  std::vector<int64_t> n_correct_, n_wrong_, rate_n_;
  // per depth: scores and labels over trajectories
  std::vector<std::vector<double>> final_residual_, conv_score_, q_halt_;
  std::vector<std::vector<bool>> correct_;
  // landscape at the largest depth
  std::map<int64_t, int64_t> distinct_histogram_;
  std::map<int64_t, int64_t> distinct_majority_correct_;  // per distinct count: puzzles whose vote is right
  double majority_share_sum_ = 0.0;
  int64_t puzzles_ = 0;
  int64_t majority_correct_ = 0;
  std::map<int64_t, int64_t> steps_histogram_;
};

}  // namespace eqr::eval
