#pragma once
// How predictions are scored against labels: one scorer for the training loss's accuracy metrics, the
// trainer's evaluation and the inference runner. Shape legend: B rows, S cells.

#include <ATen/core/Tensor.h>

#include "eqr/data/dataset.h"

namespace eqr::dynamics {

/// Per-row agreement of predicted tokens with labels over the scored cells (label != data::kIgnoreLabelId).
struct RowScore {
  at::Tensor correct;  ///< (B) int64: scored cells predicted right
  at::Tensor scored;   ///< (B) int64: scored cells

  /// (B) bool: every scored cell right (also true for a row with no scored cell; callers that must not count
  /// such rows mask them with scored > 0).
  at::Tensor exact() const;
  /// (B) correct / max(scored, 1) in `dtype`.
  at::Tensor cell_accuracy(c10::ScalarType dtype) const;
};

/// preds, labels: (B, S) integer tensors on one device.
RowScore score_rows(const at::Tensor& preds, const at::Tensor& labels);

}  // namespace eqr::dynamics
