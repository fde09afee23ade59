#pragma once
// Layers of the reasoning block (reference/eqr_spec.md §1.2-1.4): weightless RMSNorm, casted linear and
// embedding (fp32 parameters, used in the forward dtype), SwiGLU, multi-head attention, 1-D / 2-D RoPE.
//
// Shape legend: B batch, S cells (tokens), D hidden, V vocab, H heads, hd head_dim (= D / H),
// I SwiGLU intermediate size. "in" is the last axis a layer works on (D, or S for the token MLP).
//
// Parameter names are the reference's state_dict names: `weight`, `bias`, `embedding_weight`,
// `gate_up_proj.weight`, `down_proj.weight`, `qkv_proj.weight`, `o_proj.weight`.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/core/ScalarType.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "eqr/core/cpu_gemm.h"

namespace eqr::model {

// ---------------------------------------------------------------------------------------------------
// Functions

/// Weightless RMSNorm over the LAST axis: x / sqrt(mean(x^2) + eps), computed in float32 and cast
/// back to x's dtype. x: (..., n) -> (..., n).
at::Tensor rms_norm(const at::Tensor& x, double eps);

/// SwiGLU intermediate size: round_up_to_multiple_of_256(round(expansion * in_dim * 2 / 3)), with
/// Python's round (ties to even). 512 -> 1536, 81 -> 256, 128 -> 512 at expansion 4.
int64_t swiglu_intermediate_size(int64_t in_dim, double expansion);

/// NeoX rotate_half: concat(-x[..., n/2:], x[..., :n/2]). x: (..., n) with n even.
at::Tensor rotate_half(const at::Tensor& x);

/// RoPE tables, float32. 1-D ("rope"): cos, sin (S, hd); cos_w / sin_w undefined.
/// 2-D ("rope2d"): cos, sin (S, hd/2) hold the ROW tables of each token, cos_w, sin_w (S, hd/2) the
/// COLUMN tables (the reference's per-row / per-column caches expanded to tokens, row-major).
/// All undefined = no positional encoding.
struct CosSin {
  at::Tensor cos;
  at::Tensor sin;
  at::Tensor cos_w;
  at::Tensor sin_w;
  bool defined() const { return cos.defined(); }
  bool is_2d() const { return cos_w.defined(); }
};

/// RoPE on one tensor x: (B, S, H, hd). x is upcast to the tables' dtype (float32), rotated
/// (x * cos + rotate_half(x) * sin; for 2-D the first hd/2 channels by row, the rest by column,
/// each half with its own rotate_half), and cast back. Identity when `cs` is undefined.
at::Tensor apply_rope(const at::Tensor& x, const CosSin& cs);

/// Which kernel computes softmax attention.
enum class AttentionKernel {
  kAuto,   ///< LibTorch's scaled_dot_product_attention where available (2.x), else kMath.
  kMath,   ///< softmax(q k^T / sqrt(hd)) v with explicit matmuls; softmax in float32.
  kFused,  ///< at::scaled_dot_product_attention; throws RuntimeError on LibTorch 1.x.
};

/// True when this LibTorch has at::scaled_dot_product_attention (2.x).
bool have_fused_attention();

/// Non-causal attention, scale 1/sqrt(hd). q, k, v: (B, H, S, hd) -> (B, H, S, hd).
at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        AttentionKernel kernel = AttentionKernel::kAuto);

// ---------------------------------------------------------------------------------------------------
// CastedLinear: y = x W^T (+ b), W (out, in) float32 cast to x's dtype at use.
// Init: W ~ compensated truncated normal, std 1/sqrt(in); b = 0.

struct CastedLinearOptions {
  CastedLinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  /// Input width.
  TORCH_ARG(int64_t, in_features);
  /// Output width.
  TORCH_ARG(int64_t, out_features);
  /// Learnable bias (only q_head has one).
  TORCH_ARG(bool, bias) = false;
  /// GEMM of float32 products on the CPU (eqr/core/cpu_gemm.h; compute.cpu_gemm).
  TORCH_ARG(CpuGemm, cpu_gemm) = CpuGemm::kAuto;
};

class CastedLinearImpl : public torch::nn::Module {
 public:
  explicit CastedLinearImpl(const CastedLinearOptions& options);
  /// x: (..., in) -> (..., out) in x's dtype.
  at::Tensor forward(const at::Tensor& x);
  /// Re-draws the weight (truncated normal, std 1/sqrt(in)) and zeroes the bias.
  void reset_parameters();
  /// Casts weight and bias to `dtype` once and uses the copies in every forward in that dtype that needs
  /// no gradient, until clear_cast_cache() (see WeightCastScope). Where a gradient is needed the weight is
  /// cast at each call as before: one shared cast would sum the calls' weight gradients in bfloat16.
  void cache_cast(c10::ScalarType dtype);
  void clear_cast_cache();

  CastedLinearOptions options;
  at::Tensor weight;  ///< (out, in) float32
  at::Tensor bias;    ///< (out) float32, or undefined

 private:
  at::Tensor cached_weight_, cached_bias_;
};
TORCH_MODULE(CastedLinear);

/// Casts every CastedLinear weight under `module` to `dtype` once for the scope's lifetime, for the calls
/// that need no gradient (a supervision step runs each weight h_cycles * (l_cycles + 1) times, and all
/// but the last cycle's without grad). No-op for float32 (the cast is free there). Parameters must not
/// change while the scope lives.
class WeightCastScope {
 public:
  WeightCastScope(torch::nn::Module& module, c10::ScalarType dtype);
  ~WeightCastScope();
  WeightCastScope(const WeightCastScope&) = delete;
  WeightCastScope& operator=(const WeightCastScope&) = delete;

 private:
  std::vector<CastedLinearImpl*> linears_;
};

// ---------------------------------------------------------------------------------------------------
// CastedEmbedding: parameter `embedding_weight` (V, D) float32, looked up in the forward dtype.
// Init: compensated truncated normal with `init_std`.

struct CastedEmbeddingOptions {
  CastedEmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim, double init_std)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim), init_std_(init_std) {}
  /// Rows V.
  TORCH_ARG(int64_t, num_embeddings);
  /// Width D.
  TORCH_ARG(int64_t, embedding_dim);
  /// Std of the truncated-normal init (the reference uses 1/sqrt(D)).
  TORCH_ARG(double, init_std);
};

class CastedEmbeddingImpl : public torch::nn::Module {
 public:
  explicit CastedEmbeddingImpl(const CastedEmbeddingOptions& options);
  /// ids: (...) integer in [0, V) -> (..., D) in `dtype`.
  at::Tensor forward(const at::Tensor& ids, c10::ScalarType dtype);

  CastedEmbeddingOptions options;
  at::Tensor embedding_weight;  ///< (V, D) float32
};
TORCH_MODULE(CastedEmbedding);

// ---------------------------------------------------------------------------------------------------
// SwiGLU: down(silu(gate) * up), [gate, up] = halves of gate_up(x) (first half = gate).
// gate_up_proj: (2I, in), down_proj: (in, I).

struct SwiGLUOptions {
  SwiGLUOptions(int64_t in_dim, double expansion) : in_dim_(in_dim), expansion_(expansion) {}
  /// Width of the axis it mixes (D for the channel MLP, S for the token MLP).
  TORCH_ARG(int64_t, in_dim);
  /// Expansion; I = swiglu_intermediate_size(in_dim, expansion).
  TORCH_ARG(double, expansion);
  /// Fused activation kernel where no gradient is needed (eqr/model/fused.h; compute.fused_kernels).
  TORCH_ARG(bool, fused) = true;
};

class SwiGLUImpl : public torch::nn::Module {
 public:
  explicit SwiGLUImpl(const SwiGLUOptions& options);
  /// x: (..., in) -> (..., in).
  at::Tensor forward(const at::Tensor& x);
  int64_t intermediate_size() const { return intermediate_; }

  SwiGLUOptions options;
  CastedLinear gate_up_proj{nullptr};
  CastedLinear down_proj{nullptr};

 private:
  int64_t intermediate_ = 0;
};
TORCH_MODULE(SwiGLU);

// ---------------------------------------------------------------------------------------------------
// Attention: non-causal multi-head self-attention, num_key_value_heads = num_heads, no biases.
// qkv_proj: (3*H*hd, D) with rows [q heads | k heads | v heads]; o_proj: (D, H*hd).

struct AttentionOptions {
  AttentionOptions(int64_t hidden_size, int64_t num_heads) : hidden_size_(hidden_size), num_heads_(num_heads) {}
  /// Width D.
  TORCH_ARG(int64_t, hidden_size);
  /// Heads H; head_dim = D / H.
  TORCH_ARG(int64_t, num_heads);
  /// Attention kernel (tests compare kMath and kFused).
  TORCH_ARG(AttentionKernel, kernel) = AttentionKernel::kAuto;
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& options);
  /// h: (B, S, D) -> (B, S, D). RoPE from `cs` is applied to q and k (none when undefined).
  at::Tensor forward(const at::Tensor& h, const CosSin& cs = {});
  int64_t head_dim() const { return head_dim_; }

  AttentionOptions options;
  CastedLinear qkv_proj{nullptr};
  CastedLinear o_proj{nullptr};

 private:
  int64_t head_dim_ = 0;
};
TORCH_MODULE(Attention);

// ---------------------------------------------------------------------------------------------------
// RotaryEmbedding: float32 cos/sin caches as (non-persistent) buffers; inv_freq_j = theta^(-2j/dim).

struct RotaryEmbeddingOptions {
  RotaryEmbeddingOptions(int64_t head_dim, int64_t seq_len) : head_dim_(head_dim), seq_len_(seq_len) {}
  /// hd (even; a multiple of 4 for rope2d).
  TORCH_ARG(int64_t, head_dim);
  /// S.
  TORCH_ARG(int64_t, seq_len);
  /// "rope" (1-D over the S positions) or "rope2d" (rows and columns of the board).
  TORCH_ARG(std::string, kind) = "rope";
  /// Board rows for rope2d (board_height * board_width must equal seq_len).
  TORCH_ARG(int64_t, board_height) = 0;
  /// Board columns for rope2d.
  TORCH_ARG(int64_t, board_width) = 0;
  /// Base theta.
  TORCH_ARG(double, theta) = 10000.0;
};

class RotaryEmbeddingImpl : public torch::nn::Module {
 public:
  explicit RotaryEmbeddingImpl(const RotaryEmbeddingOptions& options);
  /// The tables (see CosSin), on the module's device.
  CosSin forward() const;

  RotaryEmbeddingOptions options;
  at::Tensor cos_cached;    ///< 1-D: (S, hd); 2-D: row tables per token (S, hd/2)
  at::Tensor sin_cached;
  at::Tensor cos_cached_w;  ///< 2-D only: column tables per token (S, hd/2)
  at::Tensor sin_cached_w;
};
TORCH_MODULE(RotaryEmbedding);

}  // namespace eqr::model
