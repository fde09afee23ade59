// ReasoningModule "L_level" (reference/eqr_spec.md §1.5). Shape legend: B batch, S cells, D hidden.

#include "eqr/model/reasoning_module.h"

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/model/fused.h"
#include "eqr/model/init.h"

namespace eqr::model {

ReasoningModuleOptions ReasoningModuleOptions::from(const config::ArchConfig& arch) {
  const bool trm = arch.variant == config::Variant::kTrm;
  return ReasoningModuleOptions(ReasoningBlockOptions::from(arch))
      .l_layers(arch.l_layers)
      .lambda(trm ? 1.0 : arch.lambda)
      .noise_scale(trm ? 0.0 : arch.noise_scale);
}

ReasoningModuleImpl::ReasoningModuleImpl(const ReasoningModuleOptions& options_) : options(options_) {
  EQR_CHECK(options.l_layers() >= 1, ConfigError, "config key 'arch.l_layers' = ", options.l_layers(),
            ": expected at least 1 block");
  EQR_CHECK(options.noise_scale() >= 0.0, ConfigError, "config key 'arch.noise_scale' = ", options.noise_scale(),
            ": expected >= 0");
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.l_layers(); ++i) layers->push_back(ReasoningBlock(options.block()));
}

at::Tensor ReasoningModuleImpl::stack(const at::Tensor& x, const CosSin& cs) {
  at::Tensor u = x;
  for (const auto& layer : *layers) u = layer->as<ReasoningBlockImpl>()->forward(u, cs);
  return u;
}

at::Tensor ReasoningModuleImpl::forward(const at::Tensor& h, const at::Tensor& injection, const CosSin& cs,
                                        std::optional<at::Generator> gen) {
  EQR_CHECK(h.dim() == 3 && h.sizes() == injection.sizes(), RuntimeError, "ReasoningModule: state ", h.sizes(),
            " and injection ", injection.sizes(), " must both be (B, S, D)");
  EQR_CHECK(h.scalar_type() == injection.scalar_type(), RuntimeError, "ReasoningModule: state dtype ",
            h.scalar_type(), " differs from injection dtype ", injection.scalar_type());
  const at::Tensor updated = stack(h + injection, cs);
  // Path noise: drawn in h's dtype, as the reference's randn_like, except bfloat16 on the CPU, where it is
  // drawn in float32 (LibTorch's CPU normal_ is vectorised for float32 only: 2 ms against 13 ms for a
  // (16, 81, 512) draw) and rounded once inside the update. float32 runs draw exactly as before.
  at::Tensor noise;
  if (options.noise_scale() > 0.0) {
    const auto noise_dtype = h.device().is_cpu() ? at::kFloat : h.scalar_type();
    noise = randn(h.sizes(), h.options().dtype(noise_dtype), gen);
  }
  return fused::damped_update(h, updated, options.lambda(), noise, options.noise_scale(), options.block().fused());
}

}  // namespace eqr::model
