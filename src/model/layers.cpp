// Layers of the reasoning block (reference/eqr_spec.md §1.2-1.4).
// Shape legend: B batch, S cells, D hidden, H heads, hd head_dim, I SwiGLU intermediate.

#include "eqr/model/layers.h"

#include <cmath>

#include <torch/torch.h>
#include <torch/version.h>

#include "eqr/core/error.h"
#include "eqr/model/fused.h"
#include "eqr/model/init.h"

namespace eqr::model {

namespace {

std::string shape_str(const at::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Functions

at::Tensor rms_norm(const at::Tensor& x, double eps) {
  const auto dtype = x.scalar_type();
  const at::Tensor h = x.to(at::kFloat);
  const at::Tensor variance = h.square().mean(-1, /*keepdim=*/true);
  return (h * at::rsqrt(variance + eps)).to(dtype);
}

int64_t swiglu_intermediate_size(int64_t in_dim, double expansion) {
  // Python: _find_multiple(round(expansion * in_dim * 2 / 3), 256); round() ties to even, as nearbyint
  // under the default rounding mode.
  const double raw = expansion * static_cast<double>(in_dim) * 2.0 / 3.0;
  const auto rounded = static_cast<int64_t>(std::nearbyint(raw));
  constexpr int64_t kMultiple = 256;
  return ((rounded + kMultiple - 1) / kMultiple) * kMultiple;
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t n = x.size(-1);
  const at::Tensor x1 = x.narrow(-1, 0, n / 2);
  const at::Tensor x2 = x.narrow(-1, n / 2, n - n / 2);
  return at::cat({-x2, x1}, -1);
}

at::Tensor apply_rope(const at::Tensor& x, const CosSin& cs) {
  if (!cs.defined()) return x;
  // x: (B, S, H, hd); tables (S, n) -> (S, 1, n) broadcast over heads.
  const auto dtype = x.scalar_type();
  const at::Tensor xf = x.to(cs.cos.scalar_type());
  const auto rotate = [](const at::Tensor& part, const at::Tensor& cos, const at::Tensor& sin) {
    return part * cos.unsqueeze(-2) + rotate_half(part) * sin.unsqueeze(-2);
  };
  if (!cs.is_2d()) return rotate(xf, cs.cos, cs.sin).to(dtype);
  const int64_t d = xf.size(-1) / 2;
  const at::Tensor rows = rotate(xf.narrow(-1, 0, d), cs.cos, cs.sin);
  const at::Tensor cols = rotate(xf.narrow(-1, d, d), cs.cos_w, cs.sin_w);
  return at::cat({rows, cols}, -1).to(dtype);
}

bool have_fused_attention() {
#if TORCH_VERSION_MAJOR >= 2
  return true;
#else
  return false;
#endif
}

at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        AttentionKernel kernel) {
  EQR_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(), RuntimeError,
            "attention: expected q, k, v of equal shape (B, H, S, hd), got ", shape_str(q), ", ", shape_str(k),
            ", ", shape_str(v));
  if (kernel == AttentionKernel::kAuto) kernel = have_fused_attention() ? AttentionKernel::kFused : AttentionKernel::kMath;
  if (kernel == AttentionKernel::kFused) {
#if TORCH_VERSION_MAJOR >= 2
    return at::scaled_dot_product_attention(q, k, v);
#else
    EQR_FAIL(RuntimeError, "attention: the fused kernel needs LibTorch 2.x (this build uses ", TORCH_VERSION,
             "); use the math kernel");
#endif
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale;
  const at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(v.scalar_type());
  return at::matmul(probs, v);
}

// ---------------------------------------------------------------------------------------------------
// CastedLinear

CastedLinearImpl::CastedLinearImpl(const CastedLinearOptions& options_) : options(options_) {
  EQR_CHECK(options.in_features() > 0 && options.out_features() > 0, ConfigError,
            "CastedLinear: expected positive sizes, got in ", options.in_features(), ", out ",
            options.out_features());
  weight = register_parameter("weight", torch::empty({options.out_features(), options.in_features()}));
  if (options.bias()) bias = register_parameter("bias", torch::empty({options.out_features()}));
  reset_parameters();
}

void CastedLinearImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  trunc_normal_(weight, 1.0 / std::sqrt(static_cast<double>(options.in_features())));
  if (bias.defined()) bias.zero_();
}

at::Tensor CastedLinearImpl::forward(const at::Tensor& x) {
  EQR_CHECK(x.dim() >= 1 && x.size(-1) == options.in_features(), RuntimeError, "CastedLinear: input ",
            shape_str(x), " has last axis ", (x.dim() >= 1 ? x.size(-1) : 0), ", expected ", options.in_features());
  const auto dtype = x.scalar_type();
  const bool grad_needed = at::GradMode::is_enabled() && weight.requires_grad();
  if (cached_weight_.defined() && cached_weight_.scalar_type() == dtype && !grad_needed) {
    return linear(x, cached_weight_, cached_bias_, options.cpu_gemm());
  }
  return linear(x, weight.to(dtype), bias.defined() ? bias.to(dtype) : at::Tensor(), options.cpu_gemm());
}

void CastedLinearImpl::cache_cast(c10::ScalarType dtype) {
  at::NoGradGuard no_grad;
  cached_weight_ = weight.to(dtype);
  cached_bias_ = bias.defined() ? bias.to(dtype) : at::Tensor();
}

void CastedLinearImpl::clear_cast_cache() {
  cached_weight_ = at::Tensor();
  cached_bias_ = at::Tensor();
}

WeightCastScope::WeightCastScope(torch::nn::Module& module, c10::ScalarType dtype) {
  if (dtype == at::kFloat) return;
  for (const auto& m : module.modules(/*include_self=*/true)) {
    if (auto* linear = dynamic_cast<CastedLinearImpl*>(m.get())) {
      linear->cache_cast(dtype);
      linears_.push_back(linear);
    }
  }
}

WeightCastScope::~WeightCastScope() {
  for (auto* linear : linears_) linear->clear_cast_cache();
}

// ---------------------------------------------------------------------------------------------------
// CastedEmbedding

CastedEmbeddingImpl::CastedEmbeddingImpl(const CastedEmbeddingOptions& options_) : options(options_) {
  embedding_weight =
      register_parameter("embedding_weight", torch::empty({options.num_embeddings(), options.embedding_dim()}));
  trunc_normal_(embedding_weight, options.init_std());
}

at::Tensor CastedEmbeddingImpl::forward(const at::Tensor& ids, c10::ScalarType dtype) {
  EQR_CHECK(!at::isFloatingType(ids.scalar_type()) && ids.scalar_type() != at::kBool, RuntimeError,
            "CastedEmbedding: expected integer token ids, got dtype ", ids.scalar_type());
  return at::embedding(embedding_weight.to(dtype), ids.to(at::kLong));
}

// ---------------------------------------------------------------------------------------------------
// SwiGLU

SwiGLUImpl::SwiGLUImpl(const SwiGLUOptions& options_) : options(options_) {
  intermediate_ = swiglu_intermediate_size(options.in_dim(), options.expansion());
  gate_up_proj = register_module("gate_up_proj", CastedLinear(CastedLinearOptions(options.in_dim(), 2 * intermediate_)));
  down_proj = register_module("down_proj", CastedLinear(CastedLinearOptions(intermediate_, options.in_dim())));
}

at::Tensor SwiGLUImpl::forward(const at::Tensor& x) {
  return down_proj->forward(fused::swiglu(gate_up_proj->forward(x), options.fused()));
}

// ---------------------------------------------------------------------------------------------------
// Attention

AttentionImpl::AttentionImpl(const AttentionOptions& options_) : options(options_) {
  EQR_CHECK(options.num_heads() > 0 && options.hidden_size() % options.num_heads() == 0, ConfigError,
            "Attention: hidden_size ", options.hidden_size(), " is not divisible by num_heads ", options.num_heads());
  head_dim_ = options.hidden_size() / options.num_heads();
  const int64_t inner = head_dim_ * options.num_heads();
  qkv_proj = register_module("qkv_proj", CastedLinear(CastedLinearOptions(options.hidden_size(), 3 * inner)));
  o_proj = register_module("o_proj", CastedLinear(CastedLinearOptions(inner, options.hidden_size())));
}

at::Tensor AttentionImpl::forward(const at::Tensor& h, const CosSin& cs) {
  EQR_CHECK(h.dim() == 3 && h.size(2) == options.hidden_size(), RuntimeError, "Attention: input ", shape_str(h),
            ", expected (B, S, ", options.hidden_size(), ")");
  const int64_t b = h.size(0);
  const int64_t s = h.size(1);
  const int64_t heads = options.num_heads();
  const at::Tensor qkv = qkv_proj->forward(h).view({b, s, 3 * heads, head_dim_});
  at::Tensor q = apply_rope(qkv.narrow(2, 0, heads), cs);      // (B, S, H, hd)
  at::Tensor k = apply_rope(qkv.narrow(2, heads, heads), cs);
  const at::Tensor v = qkv.narrow(2, 2 * heads, heads);
  const at::Tensor y = scaled_dot_product_attention(q.permute({0, 2, 1, 3}), k.permute({0, 2, 1, 3}),
                                                    v.permute({0, 2, 1, 3}), options.kernel());  // (B, H, S, hd)
  return o_proj->forward(y.permute({0, 2, 1, 3}).reshape({b, s, heads * head_dim_}));
}

// ---------------------------------------------------------------------------------------------------
// RotaryEmbedding

RotaryEmbeddingImpl::RotaryEmbeddingImpl(const RotaryEmbeddingOptions& options_) : options(options_) {
  const int64_t hd = options.head_dim();
  const int64_t s = options.seq_len();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  // inv_freq = 1 / theta^(arange(0, dim, 2) / dim); cos/sin of concat(freqs, freqs) (reference RotaryEmbedding).
  const auto tables = [&](int64_t dim, const torch::Tensor& positions) {
    const auto inv_freq = 1.0 / torch::pow(options.theta(), torch::arange(0, dim, 2, f32) / static_cast<double>(dim));
    const auto freqs = torch::outer(positions, inv_freq);
    const auto emb = torch::cat({freqs, freqs}, -1);
    return std::make_pair(emb.cos(), emb.sin());
  };
  if (options.kind() == "rope") {
    EQR_CHECK(hd % 2 == 0, ConfigError, "rope: head_dim ", hd, " must be even");
    auto [c, sn] = tables(hd, torch::arange(s, f32));
    cos_cached = register_buffer("cos_cached", c);
    sin_cached = register_buffer("sin_cached", sn);
  } else if (options.kind() == "rope2d") {
    const int64_t bh = options.board_height();
    const int64_t bw = options.board_width();
    EQR_CHECK(hd % 4 == 0, ConfigError, "rope2d: head_dim ", hd, " must be a multiple of 4");
    EQR_CHECK(bh > 0 && bw > 0 && bh * bw == s, ConfigError, "rope2d: board ", bh, "x", bw,
              " does not cover seq_len ", s, " (need board_height * board_width = seq_len)");
    // Row i = s / w, column j = s % w (row-major, as the reference's view(b, h, w, heads, d)).
    const auto token = torch::arange(s, torch::kLong);
    const auto row = torch::floor_divide(token, bw).to(torch::kFloat);
    const auto col = torch::remainder(token, bw).to(torch::kFloat);
    auto [ch, sh] = tables(hd / 2, row);
    auto [cw, sw] = tables(hd / 2, col);
    cos_cached = register_buffer("cos_cached", ch);
    sin_cached = register_buffer("sin_cached", sh);
    cos_cached_w = register_buffer("cos_cached_w", cw);
    sin_cached_w = register_buffer("sin_cached_w", sw);
  } else {
    EQR_FAIL(ConfigError, "pos_encodings '", options.kind(), "' is not known; expected rope, rope2d or none");
  }
}

CosSin RotaryEmbeddingImpl::forward() const { return CosSin{cos_cached, sin_cached, cos_cached_w, sin_cached_w}; }

}  // namespace eqr::model
