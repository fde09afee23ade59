#pragma once
// Aggregators over the R trajectories of one puzzle (reference/eqr_spec.md §5 "Breadth aggregation").
// Each answers "which grid does this puzzle get?" (or, for pass@k, "how likely is a correct one among
// k draws?") and is reported under its own name:
//
//   mean               average over the R trajectories (the reference's all/exact_accuracy for n > 1;
//                      = different_init/avg_pass_rate)
//   majority_vote      the most frequent whole predicted grid; ties: the grid that appears first in init
//                      order (Python's Counter.most_common) — reference-exact
//   pass@k             unbiased 1 - C(n-c, k) / C(n, k) for k = 1, 2, 4, ... < R — reference-exact
//   any_correct        some trajectory is right (= pass@R)
//   most_converged     the trajectory with the smallest convergence score (top-k with k = 1)
//   convergence_top{k} the mean correctness of the k smallest scores (reference convergence_top_k)
//   q_confidence       the trajectory with the highest q_halt logit (ties: lowest init)  — beyond the reference
//   verified_select    the first trajectory whose grid passes an external validity check (the exact
//                      solver's), else the majority vote — uses a verifier, so reported apart; never
//                      mixed into the verifier-free names above.
//
// Convergence score (reference): for every step t >= 2, delta_t = mean over positions of the L2 norm over
// V of (logits_t - logits_{t-1}); score = mean of the last `window` deltas (fewer when fewer exist;
// NaN when there is none, i.e. after one step). Smaller = more converged; NaN ranks last.
//
// Shape legend: T steps, B rows, S cells, V vocab, R trajectories of one puzzle.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

namespace eqr::infer {

/// A predicted grid: token ids of S cells.
using Prediction = std::vector<uint8_t>;

/// Index of the majority-vote grid among R predictions (ties: the earliest first appearance). R >= 1.
int64_t majority_vote(const std::vector<Prediction>& predictions);

/// Unbiased pass@k of n samples with c correct: 1 - C(n-c, k) / C(n, k), computed as the stable product
/// 1 - prod_{i = n-c+1}^{n} (1 - k / i); 1 when n - c < k. Requires 0 <= c <= n, 1 <= k <= n.
double pass_at_k(int64_t n, int64_t c, int64_t k);

/// The k of pass@k reported for breadth R: 1, 2, 4, ... while k < R.
std::vector<int64_t> pass_at_k_values(int64_t breadth);

/// Indices of the k smallest scores, ascending (ties: lower index first; NaN after every number).
/// k is clipped to scores.size().
std::vector<int64_t> convergence_top_k(const std::vector<double>& scores, int64_t k);

/// Index of the largest q_halt logit (ties: lowest index).
int64_t q_confidence(const std::vector<double>& q_halt);

/// Reference convergence score from a stack of logits: logits (T, B, S, V) -> (B) float32, using the last
/// `window` of the T-1 deltas (NaN for T = 1).
at::Tensor convergence_scores(const at::Tensor& logits, int64_t window);

/// What aggregation needs to know about one trajectory at one depth.
struct Outcome {
  const Prediction* prediction = nullptr;  ///< predicted token ids (S)
  bool exact = false;                      ///< whole grid right
  double cell_accuracy = 0.0;              ///< share of labelled cells right
  double q_halt = 0.0;                     ///< q_halt logit
  double convergence_score = 0.0;          ///< see header (NaN allowed)
};

/// One aggregator's verdict on one puzzle.
struct AggregateScore {
  std::string name;            ///< e.g. "majority_vote", "pass@4"
  double exact = 0.0;          ///< exact-accuracy contribution of this puzzle (0..1)
  std::optional<double> cell;  ///< cell-accuracy contribution (none for pass@k / any_correct)
  /// Share of the chosen grid(s) the verifier accepts (0..1; none without a verifier, and for pass@k /
  /// any_correct, which choose no grid).
  std::optional<double> valid;
};

struct AggregateOptions {
  /// k of convergence_top{k} (k > 1; clipped to R); nullopt = not reported.
  std::optional<int64_t> convergence_top_k;
  /// Validity check of puzzle `puzzle`'s predicted grid (e.g. the exact solver's: a complete valid grid
  /// keeping the givens); null = no verified_* metric.
  std::function<bool(int64_t puzzle, const Prediction&)> verifier;
};

/// Every aggregator over the R outcomes of puzzle `puzzle`, in a fixed order (mean, majority_vote,
/// most_converged, convergence_top{k}, q_confidence, pass@k..., any_correct, verified_select).
std::vector<AggregateScore> aggregate(const std::vector<Outcome>& outcomes, const AggregateOptions& options,
                                      int64_t puzzle = 0);

/// The names aggregate() reports for breadth R, in its order.
std::vector<std::string> aggregator_names(int64_t breadth, const AggregateOptions& options);

}  // namespace eqr::infer
