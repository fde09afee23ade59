#pragma once
// Training losses of one supervision step (reference/eqr_spec.md §2): stablemax (or softmax)
// cross-entropy over the cells, q-halt BCE against "the whole grid is right", and the no-grad per-row
// statistics from which the trainer computes metrics over the rows that halted this step.
//
// Shapes: B batch rows (per rank), S cells, V vocab.
//   logits        (B, S, V)  any floating dtype (bf16 in the reference forward)
//   labels        (B, S)     int64, IGNORE_LABEL_ID (-100) = no loss, not counted
//   q_halt_logits (B)        float32
//   halted        (B)        bool, rows that halted this step (after the step's halting decision)
//   steps         (B)        integer, supervision steps of each row after this step

#include <cstdint>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "eqr/data/dataset.h"

namespace eqr::train {

/// Label value that carries no loss (padding rows; the reference's IGNORE_LABEL_ID).
using data::kIgnoreLabelId;

/// Which token loss: the reference's "stablemax_cross_entropy" or "softmax_cross_entropy".
enum class LossType { Stablemax, Softmax };

/// Parses TrainConfig::loss_type; throws ConfigError naming `train.loss_type` for anything else.
LossType parse_loss_type(const std::string& name);

/// s(x) = x + 1 for x >= 0, 1 / (1 - x + 1e-30) for x < 0, elementwise, in the dtype of x.
at::Tensor stablemax_s(const at::Tensor& x);

/// log p of stablemax over the last axis: log(s(x) / sum_v s(x_v)). Computed in float64 (x is cast).
at::Tensor log_stablemax(const at::Tensor& x);

/// Token loss -log p_label, 0 where label == kIgnoreLabelId.
/// logits (B, S, V), labels (B, S) -> (B, S): float64 for Stablemax (the logits are cast to float64),
/// float32 for Softmax (standard cross-entropy on float32 logits).
at::Tensor token_cross_entropy(const at::Tensor& logits, const at::Tensor& labels, LossType type);

/// Everything one supervision step's loss produces.
struct StepLoss {
  /// lm_loss + q_halt_loss_weight * q_halt_loss; scalar (float64 with stablemax, as the reference's
  /// type promotion gives). Call backward on `total / global_batch_size`.
  at::Tensor total;
  /// sum over ALL rows of (sum of token losses / max(n, 1)); scalar, with grad.
  at::Tensor lm_loss;
  /// BCE-with-logits(q_halt_logits, seq_is_correct), summed over rows; scalar float32, with grad.
  at::Tensor q_halt_loss;

  // No-grad per-row statistics, (B) each, on the logits' device.
  /// n: labelled cells of each row (int64).
  at::Tensor row_count;
  /// correct labelled cells / max(n, 1) (float32).
  at::Tensor row_accuracy;
  /// every labelled cell right (bool); the q-halt target. True for rows with n = 0, as the reference.
  at::Tensor row_exact;
};

/// Computes the step loss. preds = argmax over all V (ids 0/1 can be predicted and are then wrong).
/// logits (B, S, V), labels (B, S), q_halt_logits (B). Throws RuntimeError on shape mismatch.
StepLoss compute_step_loss(const at::Tensor& logits, const at::Tensor& labels,
                           const at::Tensor& q_halt_logits, LossType type, double q_halt_loss_weight);

/// Per-step metric accumulators over halted rows, split by how ranks combine them (SUM, MIN, MAX), so
/// the trainer all-reduces three small tensors and then calls `finalize_metrics`.
/// Every tensor is float64 on the device of the inputs.
struct MetricSums {
  /// (kNumSums) summed over rows and ranks; indices in `SumIndex`.
  at::Tensor sum;
  /// (kNumMinMax) min over halted rows: steps, q_halt logit (+inf when no row halted).
  at::Tensor min;
  /// (kNumMinMax) max over halted rows: steps, q_halt logit (-inf when no row halted).
  at::Tensor max;

  enum SumIndex : int64_t {
    kCount = 0,        ///< halted rows with n > 0 (the reference's `count`)
    kAccuracy,         ///< sum of row_accuracy over those rows
    kExact,            ///< rows whose whole grid is right
    kQHaltCorrect,     ///< rows where (q_halt > 0) == exact
    kQHaltTruePos,     ///< q_halt > 0 and exact
    kQHaltPredPos,     ///< q_halt > 0
    kQHaltActualPos,   ///< exact (same as kExact; kept for readability of precision/recall)
    kSteps,            ///< sum of steps at halt
    kQHaltLogit,       ///< sum of q_halt logits of those rows
    kLmLoss,           ///< lm_loss of ALL rows (divided by global batch size when finalised)
    kQHaltLoss,        ///< q_halt_loss of ALL rows (idem)
    kNumSums
  };
  enum MinMaxIndex : int64_t { kMinMaxSteps = 0, kMinMaxQHalt, kNumMinMax };
};

/// Accumulates the metric sums of one step on one rank. halted (B) bool, steps (B) integer,
/// q_halt_logits (B). Rows count only when halted and n > 0, as the reference.
MetricSums metric_sums(const StepLoss& loss, const at::Tensor& halted, const at::Tensor& steps,
                       const at::Tensor& q_halt_logits);

/// Turns (all-reduced) sums into the named metrics of §2, as doubles:
///   count, exact_accuracy, cell_accuracy (the reference's `accuracy`), q_halt_accuracy,
///   q_halt_precision, q_halt_recall, steps, min_steps, max_steps, q_halt_logit (mean), min_q_halt_logit,
///   max_q_halt_logit: divided by count (precision by predicted positives, recall by actual positives;
///   0 when the divisor is 0); lm_loss, q_halt_loss: divided by global_batch_size (as the reference logs).
/// With count 0 every per-row metric is 0 and only the losses are meaningful.
std::map<std::string, double> finalize_metrics(const MetricSums& sums, double global_batch_size);

}  // namespace eqr::train
