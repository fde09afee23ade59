#pragma once
// Gradient norms and clipping by global norm without a host sync: the numbers of
// torch::nn::utils::clip_grad_norm_ (norm type 2), which returns a double and so waits for the device every
// step. Here the norm stays a tensor on the device until the trainer reads it at a log step.
//
// Shapes: K = parameters with a defined gradient; each gradient has its parameter's shape.

#include <vector>

#include <ATen/core/Tensor.h>

namespace eqr::train {

/// Norms of the gradients of `params`, computed as clip_grad_norm_ does (undefined grads skipped).
struct GradNorms {
  /// (K) L2 norm of each defined gradient, in the gradients' dtype; undefined when K = 0.
  at::Tensor per_tensor;
  /// 0-dim: L2 norm of `per_tensor` (the global norm; the one norm itself when K = 1); undefined when K = 0.
  at::Tensor total;
  /// Whether any gradient was defined.
  bool defined() const { return total.defined(); }
};

/// Per-tensor and global L2 norms of the defined gradients of `params`. Tensor ops only, no host sync.
/// The gradients must share one dtype and device (as for clip_grad_norm_, which stacks the norms).
GradNorms grad_norms(const std::vector<at::Tensor>& params);

/// Scales every defined gradient of `params` in place by min(1, max_norm / (norms.total + 1e-6)), the
/// clip factor of clip_grad_norm_, as a 0-dim tensor (no host sync; factor 1 multiplies by 1). `norms`
/// from grad_norms(params) on the same, unchanged gradients. Gives bit-identical gradients to
/// torch::nn::utils::clip_grad_norm_(params, max_norm). max_norm > 0.
void clip_grads_(const std::vector<at::Tensor>& params, const GradNorms& norms, double max_norm);

}  // namespace eqr::train
