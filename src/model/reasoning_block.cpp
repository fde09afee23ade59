// ReasoningBlock (reference/eqr_spec.md §1.4). Shape legend: B batch, S cells, D hidden.

#include "eqr/model/reasoning_block.h"

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/model/fused.h"

namespace eqr::model {

ReasoningBlockOptions ReasoningBlockOptions::from(const config::ArchConfig& arch) {
  return ReasoningBlockOptions(arch.hidden_size, arch.seq_len)
      .mlp_t(arch.mlp_t)
      .num_heads(arch.num_heads)
      .expansion(arch.expansion)
      .rms_norm_eps(arch.rms_norm_eps);
}

ReasoningBlockImpl::ReasoningBlockImpl(const ReasoningBlockOptions& options_) : options(options_) {
  if (options.mlp_t()) {
    mlp_t = register_module("mlp_t", SwiGLU(SwiGLUOptions(options.seq_len(), options.expansion()).fused(options.fused())));
  } else {
    self_attn = register_module(
        "self_attn",
        Attention(AttentionOptions(options.hidden_size(), options.num_heads()).kernel(options.attention_kernel())));
  }
  mlp = register_module("mlp", SwiGLU(SwiGLUOptions(options.hidden_size(), options.expansion()).fused(options.fused())));
}

at::Tensor ReasoningBlockImpl::forward(const at::Tensor& h, const CosSin& cs) {
  EQR_CHECK(h.dim() == 3 && h.size(1) == options.seq_len() && h.size(2) == options.hidden_size(), RuntimeError,
            "ReasoningBlock: input ", h.sizes(), ", expected (B, ", options.seq_len(), ", ", options.hidden_size(), ")");
  const double eps = options.rms_norm_eps();
  const bool fused = options.fused();
  at::Tensor x = h;
  if (options.mlp_t()) {
    // rms_norm(h^T + mlp_t(h^T)) over S, back to (B, S, D): the fused kernel reads the (B, D, S) output
    // of mlp_t directly and writes (B, S, D), so no transpose is materialised on the way back.
    x = fused::add_rms_norm_transposed(x, mlp_t->forward(x.transpose(1, 2)), eps, fused);
  } else {
    x = fused::add_rms_norm(x, self_attn->forward(x, cs), eps, fused);
  }
  return fused::add_rms_norm(x, mlp->forward(x), eps, fused);
}

}  // namespace eqr::model
