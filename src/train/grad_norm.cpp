// Gradient norms and clipping without a host sync (see grad_norm.h). K = parameters with a gradient.

#include "eqr/train/grad_norm.h"

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::train {

GradNorms grad_norms(const std::vector<at::Tensor>& params) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  norms.reserve(params.size());
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (g.defined()) norms.push_back(g.detach().norm(2));  // as clip_grad_norm_: grad.norm(norm_type)
  }
  GradNorms out;
  if (norms.empty()) return out;
  out.per_tensor = torch::stack(norms);  // (K)
  // clip_grad_norm_: the one norm itself for K = 1, else stack(norms).norm(norm_type).
  out.total = norms.size() == 1 ? norms[0] : out.per_tensor.norm(2);
  return out;
}

void clip_grads_(const std::vector<at::Tensor>& params, const GradNorms& norms, double max_norm) {
  EQR_CHECK(max_norm > 0, ConfigError, "config key 'train.grad_clip_norm' = ", max_norm, ": expected > 0");
  if (!norms.defined()) return;
  torch::NoGradGuard no_grad;
  // clip_grad_norm_'s exact ops: coef = max_norm / (total + 1e-6), clamped to at most 1, multiplied in.
  const at::Tensor coef = (max_norm / (norms.total + 1e-6)).clamp_max(1.0);
  for (const auto& p : params) {
    auto g = p.grad();
    if (g.defined()) g.detach().mul_(coef);
  }
}

}  // namespace eqr::train
