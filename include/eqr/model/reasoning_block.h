#pragma once
// ReasoningBlock (reference/eqr_spec.md §1.4): one post-norm block of the shared stack, with no learnable
// norm weights.
//   mlp_t variant:     t = h^T (B, D, S); t = rms_norm(t + mlp_t(t)) over the TOKEN axis S; h = t^T;
//                      h = rms_norm(h + mlp(h)) over D.
//   attention variant: h = rms_norm(h + self_attn(h)); h = rms_norm(h + mlp(h)).
//
// Shape legend: B batch, S cells, D hidden.
// Parameters (reference names): mlp_t.gate_up_proj.weight (2*I_t, S), mlp_t.down_proj.weight (S, I_t)
// or self_attn.qkv_proj.weight (3D, D), self_attn.o_proj.weight (D, D); mlp.gate_up_proj.weight (2I, D),
// mlp.down_proj.weight (D, I).

#include <cstdint>

#include <ATen/Tensor.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "eqr/config/config.h"
#include "eqr/model/layers.h"

namespace eqr::model {

struct ReasoningBlockOptions {
  ReasoningBlockOptions(int64_t hidden_size, int64_t seq_len) : hidden_size_(hidden_size), seq_len_(seq_len) {}
  /// The block options of an ArchConfig.
  static ReasoningBlockOptions from(const config::ArchConfig& arch);
  /// Width D.
  TORCH_ARG(int64_t, hidden_size);
  /// Cells S (the token MLP's width).
  TORCH_ARG(int64_t, seq_len);
  /// Token mixing: true = token-mixing SwiGLU over S (mlp_t); false = self-attention.
  TORCH_ARG(bool, mlp_t) = true;
  /// Attention heads (attention variant).
  TORCH_ARG(int64_t, num_heads) = 8;
  /// SwiGLU expansion (both MLPs).
  TORCH_ARG(double, expansion) = 4.0;
  /// RMSNorm epsilon.
  TORCH_ARG(double, rms_norm_eps) = 1e-5;
  /// Attention kernel (attention variant).
  TORCH_ARG(AttentionKernel, attention_kernel) = AttentionKernel::kAuto;
  /// Fused elementwise kernels where no gradient is needed (eqr/model/fused.h; compute.fused_kernels).
  TORCH_ARG(bool, fused) = true;
};

class ReasoningBlockImpl : public torch::nn::Module {
 public:
  explicit ReasoningBlockImpl(const ReasoningBlockOptions& options);
  /// h: (B, S, D) -> (B, S, D), same dtype. `cs`: RoPE tables (attention variant only; ignored by mlp_t).
  at::Tensor forward(const at::Tensor& h, const CosSin& cs = {});

  ReasoningBlockOptions options;
  SwiGLU mlp_t{nullptr};         ///< mlp_t variant: SwiGLU over S
  Attention self_attn{nullptr};  ///< attention variant
  SwiGLU mlp{nullptr};           ///< channel SwiGLU over D
};
TORCH_MODULE(ReasoningBlock);

}  // namespace eqr::model
