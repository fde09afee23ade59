#pragma once
// ReasoningModule = the reference's NoisyReasoningModule "L_level" (reference/eqr_spec.md §1.5): the ONE
// shared stack of l_layers ReasoningBlocks, used for both the z_L and the z_H updates.
//   u' = h + injection; u' = block_{l_layers-1}(... block_0(u'));
//   out = (1 - lambda) * h + lambda * u' + noise,   noise ~ N(0, noise_scale^2) i.i.d. per element.
// The noise is drawn in h's dtype (randn * noise_scale, as the reference) and is added ALWAYS: with and
// without gradient, in training and in eval mode. TRM: lambda 1 and noise 0 give out = u' exactly.
//
// Shape legend: B batch, S cells, D hidden.
// Parameters: layers.{i}.<ReasoningBlock parameters>.

#include <cstdint>
#include <optional>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include "eqr/config/config.h"
#include "eqr/model/reasoning_block.h"

namespace eqr::model {

struct ReasoningModuleOptions {
  explicit ReasoningModuleOptions(ReasoningBlockOptions block) : block_(std::move(block)) {}
  /// The module options of an ArchConfig (variant "trm" forces lambda 1 and noise 0).
  static ReasoningModuleOptions from(const config::ArchConfig& arch);
  /// Options of every block.
  TORCH_ARG(ReasoningBlockOptions, block);
  /// Blocks in the stack.
  TORCH_ARG(int64_t, l_layers) = 2;
  /// Damping lambda.
  TORCH_ARG(double, lambda) = 0.95;
  /// Std of the path noise (0 = none).
  TORCH_ARG(double, noise_scale) = 0.01;
};

class ReasoningModuleImpl : public torch::nn::Module {
 public:
  explicit ReasoningModuleImpl(const ReasoningModuleOptions& options);
  /// h, injection: (B, S, D) same dtype -> (B, S, D). Noise is drawn from `gen` (the global generator of
  /// h's device when absent). `cs`: RoPE tables for the attention variant.
  at::Tensor forward(const at::Tensor& h, const at::Tensor& injection, const CosSin& cs = {},
                     std::optional<at::Generator> gen = std::nullopt);
  /// The undamped, noiseless stack alone: block_{n-1}(... block_0(x)). x: (B, S, D).
  at::Tensor stack(const at::Tensor& x, const CosSin& cs = {});

  ReasoningModuleOptions options;
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(ReasoningModule);

}  // namespace eqr::model
