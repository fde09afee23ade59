#pragma once
// EqrModel (reference/eqr_spec.md §1.2-1.3, §1.5): the trained network of an Equilibrium Reasoner —
// scaled token embedding, ONE shared ReasoningModule `L_level` (used for both z_L and z_H: weight tying
// is structural), lm_head and q_head. The recursion schedule is an algorithm over this model and lives
// in dynamics/step.h.
//
// Shape legend: B batch, S cells, D hidden, V vocab.
//
// Parameters (exactly the reference state_dict keys after stripping `_orig_mod.` and `model.inner.`):
//   embed_tokens.embedding_weight (V, D)          trunc-normal std 1/sqrt(D)
//   lm_head.weight (V, D)                         trunc-normal std 1/sqrt(D), no bias
//   q_head.weight (2, D) = 0, q_head.bias (2) = q_head_bias_init (-5)
//   L_level.layers.{i}.mlp_t.gate_up_proj.weight (2*I_t, S), ...mlp_t.down_proj.weight (S, I_t)   [mlp_t]
//   L_level.layers.{i}.self_attn.qkv_proj.weight (3D, D), ...self_attn.o_proj.weight (D, D)        [attention]
//   L_level.layers.{i}.mlp.gate_up_proj.weight (2I, D), ...mlp.down_proj.weight (D, I)
// Buffers: H_init, L_init (D) float32 (TRM "fixed" initial states); rotary_emb.* RoPE caches.
// Persistence (what state_dict() returns): all parameters, plus H_init / L_init only when
// arch.init == "fixed" (TRM keeps them persistent; EqR registers them non-persistent and never uses them).
// RoPE caches are never persistent. LibTorch has no non-persistent buffers, so checkpoint code must use
// state_dict() (not named_buffers() or torch::save of the module).

#include <cstdint>
#include <string>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/ordered_dict.h>

#include "eqr/config/config.h"
#include "eqr/model/layers.h"
#include "eqr/model/reasoning_module.h"

namespace eqr::model {

struct EqrModelOptions {
  explicit EqrModelOptions(config::ArchConfig arch, config::ComputeConfig compute = {})
      : arch_(std::move(arch)), compute_(std::move(compute)) {}
  /// Every architecture knob (shapes, schedule, damping, noise, init).
  TORCH_ARG(config::ArchConfig, arch);
  /// How it computes: forward dtype, reduced precision on the CPU, fused kernels, CPU GEMM.
  TORCH_ARG(config::ComputeConfig, compute);
  /// Attention kernel of the attention variant (tests compare kMath and kFused).
  TORCH_ARG(AttentionKernel, attention_kernel) = AttentionKernel::kAuto;
};

class EqrModelImpl : public torch::nn::Module {
 public:
  explicit EqrModelImpl(const EqrModelOptions& options);

  const config::ArchConfig& arch() const { return options.arch(); }
  const config::ComputeConfig& compute() const { return options.compute(); }
  /// Device of the parameters.
  c10::Device device() const;
  /// The dtype states and activations use: eqr::forward_dtype_for(compute.forward_dtype, device(),
  /// compute.reduced_precision_on_cpu) — bfloat16 on CUDA (reference); on the CPU bfloat16 where it has
  /// native bfloat16 arithmetic (eqr::cpu_has_native_bf16), else float32, unless the config says.
  c10::ScalarType forward_dtype() const;

  /// x = sqrt(D) * embed_tokens(inputs) in the forward dtype. inputs: (B, S) integer ids -> (B, S, D).
  at::Tensor embed(const at::Tensor& inputs);
  /// RoPE tables (undefined with mlp_t or pos_encodings "none"); only the attention variant reads them.
  CosSin cos_sin() const;
  /// One L_level call: (1-lambda) h + lambda stack(h + injection) + noise. h, injection: (B, S, D).
  at::Tensor l_level(const at::Tensor& h, const at::Tensor& injection, const CosSin& cs,
                     std::optional<at::Generator> gen = std::nullopt);
  /// lm_head(z_h): (B, S, D) -> (B, S, V) in z_h's dtype.
  at::Tensor lm_logits(const at::Tensor& z_h);
  /// q_head(z_h[:, 0]) cast to float32: (B, S, D) -> (B, 2); column 0 is q_halt.
  at::Tensor q_logits(const at::Tensor& z_h);

  /// Parameters plus persistent buffers, in registration order (see the header comment).
  torch::OrderedDict<std::string, at::Tensor> state_dict() const;
  /// Names of the buffers state_dict() includes ("H_init", "L_init" with init "fixed", else none).
  std::vector<std::string> persistent_buffer_names() const;
  /// Sum of numel over parameters() (paper config: 4,855,298; attention variant 6,828,034).
  int64_t num_parameters() const;
  /// Block applications per supervision step: h_cycles * (l_cycles + 1) * l_layers (paper: 42).
  int64_t blocks_per_step() const;

  EqrModelOptions options;
  CastedEmbedding embed_tokens{nullptr};
  CastedLinear lm_head{nullptr};
  CastedLinear q_head{nullptr};
  RotaryEmbedding rotary_emb{nullptr};  ///< null with mlp_t or pos_encodings "none"
  ReasoningModule L_level{nullptr};
  at::Tensor H_init;  ///< (D) float32, trunc-normal std h_init_std
  at::Tensor L_init;  ///< (D) float32, trunc-normal std l_init_std
};
TORCH_MODULE(EqrModel);

/// Puts a model in eval mode for a scope and restores the mode it had after, also when the scope throws (the
/// trainer's evaluation and the inference runner).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(EqrModel& model) : model_(model), was_training_(model->is_training()) { model_->eval(); }
  ~EvalModeGuard() { model_->train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  EqrModel& model_;
  bool was_training_;
};

/// Blocks per supervision step of an ArchConfig: h_cycles * (l_cycles + 1) * l_layers.
int64_t blocks_per_step(const config::ArchConfig& arch);

/// Matrix-multiply FLOPs (2 per multiply-add) of one supervision step on B rows, for speed figures.
///   per L_level call: every 2-D weight W of L_level applied to its rows, 2 * rows * numel(W), with rows =
///   B*D for the token-mixing MLP (mlp_t: it mixes along S) and B*S otherwise; plus attention's scores and
///   weighted sum, 4 * B * S^2 * D per attention block. lm_head: 2 * B * S * D * V; q_head ignored (one row).
///   eval (no grad): h_cycles * (l_cycles + 1) L_level calls + lm_head.
///   train: eval + 2x (backward) the l_cycles + 1 grad-carrying L_level calls and lm_head.
/// Elementwise work (norms, SwiGLU gates, noise, casts) is not counted: the figure is what a GEMM peak bounds.
struct StepFlops {
  double eval = 0;   ///< forward of one no-grad step
  double train = 0;  ///< forward + backward of one training step
};
StepFlops step_matmul_flops(EqrModelImpl& model, int64_t batch);

}  // namespace eqr::model
