// Fused elementwise steps of the reasoning block: CPU kernels and their LibTorch compositions.
//
// The kernels are plain loops over contiguous rows that GCC/Clang vectorise; on x86-64 each is compiled
// three times (x86-64-v4 = AVX-512, v3 = AVX2+FMA, baseline) and the loader picks one at run time
// (target_clones), so the binary runs on any x86-64 CPU. Rows are split over LibTorch's intra-op threads
// with at::parallel_for. Arithmetic is float32; bfloat16 is converted exactly (bits << 16) on load and
// rounded to nearest-even on store, as c10::BFloat16 does. exp() is a Cephes-style polynomial (max
// relative error about 1.2e-7 over silu's range, checked in tests/unit/model_fused_test.cpp).

#include "eqr/model/fused.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "eqr/core/error.h"
#include "eqr/model/layers.h"

// Not under ASan or TSan: the clones' ifunc resolvers run while the dynamic loader relocates the binary, before
// the sanitizer runtime is set up, and an instrumented resolver crashes there (under TSan every eqr binary died
// with SIGSEGV in damped_range's resolver before main).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__) && !defined(EQR_NO_TARGET_CLONES)
#if defined(EQR_CLONES_AVX2_ONLY)  // -DEQR_CPU_CLONES=x86-64-v3: time the AVX2 paths on an AVX-512 CPU
#define EQR_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define EQR_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#else
#define EQR_SIMD_CLONES
#endif

namespace eqr::model::fused {

namespace {

using Bf16Bits = uint16_t;

// ---- scalar conversions (branch-free so that loops vectorise) --------------------------------------

template <class T>
inline float load(const T* p, int64_t i);
template <>
inline float load<float>(const float* p, int64_t i) {
  return p[i];
}
template <>
inline float load<Bf16Bits>(const Bf16Bits* p, int64_t i) {
  return __builtin_bit_cast(float, static_cast<uint32_t>(p[i]) << 16);
}

/// Rounds to T: identity for float; bfloat16 round-to-nearest-even (NaN -> quiet NaN), as c10.
template <class T>
inline float round_to(float f);
template <>
inline float round_to<float>(float f) {
  return f;
}
template <>
inline float round_to<Bf16Bits>(float f) {
  uint32_t u = __builtin_bit_cast(uint32_t, f);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  return f != f ? f : __builtin_bit_cast(float, u);
}

template <class T>
inline void store(T* p, int64_t i, float f);
template <>
inline void store<float>(float* p, int64_t i, float f) {
  p[i] = f;
}
template <>
inline void store<Bf16Bits>(Bf16Bits* p, int64_t i, float f) {
  const uint32_t u = __builtin_bit_cast(uint32_t, f);
  const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  p[i] = static_cast<Bf16Bits>(f != f ? 0x7FC0u : r);
}

/// e^x for float, Cephes expf polynomial; round-to-nearest by the 1.5 * 2^23 trick (no floor call, which
/// would keep GCC from vectorising); x clamped to the normal range.
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  // n is an integer in [-87, 88], or NaN when x is (the result is NaN through y then): the exponent bits
  // are built without converting NaN to int or shifting a negative value (UBSan found both).
  const int32_t ni = n == n ? static_cast<int32_t>(n) : 0;
  const int32_t e = static_cast<int32_t>(static_cast<uint32_t>(ni + 127) << 23);
  return y * __builtin_bit_cast(float, e);
}

constexpr int64_t kLanes = 16;  // partial sums per reduction (one AVX-512 register of floats)

// ---- row kernels --------------------------------------------------------------------------------------

/// out[r, i] = round(round(silu(g)) * u), g = in[r, i], u = in[r, I + i]; rows [r0, r1).
template <class T>
EQR_SIMD_CLONES void swiglu_rows(const T* __restrict in, T* __restrict out, int64_t r0, int64_t r1, int64_t I) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* g = in + r * 2 * I;
    const T* u = g + I;
    T* o = out + r * I;
    for (int64_t i = 0; i < I; ++i) {
      const float a = load(g, i);
      const float s = round_to<T>(a / (1.0f + fast_exp(-a)));
      store(o, i, s * load(u, i));
    }
  }
}

/// out[r] = rms_norm(round(x[r] + y[r])) over D; rows [r0, r1). `tmp`: D floats.
template <class T>
EQR_SIMD_CLONES void add_rms_norm_rows(const T* __restrict x, const T* __restrict y, T* __restrict out, int64_t r0,
                                       int64_t r1, int64_t D, float eps, float* __restrict tmp) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * D;
    const T* yr = y + r * D;
    float acc[kLanes] = {};
    for (int64_t i = 0; i < D; ++i) tmp[i] = round_to<T>(load(xr, i) + load(yr, i));
    int64_t i = 0;
    for (; i + kLanes <= D; i += kLanes) {
      for (int64_t j = 0; j < kLanes; ++j) acc[j] += tmp[i + j] * tmp[i + j];
    }
    for (; i < D; ++i) acc[0] += tmp[i] * tmp[i];
    float ss = 0.0f;
    for (int64_t j = 0; j < kLanes; ++j) ss += acc[j];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
    T* o = out + r * D;
    for (int64_t k = 0; k < D; ++k) store(o, k, tmp[k] * inv);
  }
}

constexpr int64_t kColumnBlock = 32;  // hidden units normalised together over S (one pass over y's rows)

/// Token-axis norm of block (b, d0..d0+nd): v[s, j] = round(x[b, s, d0+j] + y_t[b, d0+j, s]),
/// out[b, s, d0+j] = v[s, j] / sqrt(mean_s v[s, j]^2 + eps). `tmp`: S * kColumnBlock floats.
template <class T>
EQR_SIMD_CLONES void add_rms_norm_transposed_block(const T* __restrict x, const T* __restrict y_t, T* __restrict out,
                                                   int64_t b, int64_t d0, int64_t nd, int64_t S, int64_t D, float eps,
                                                   float* __restrict tmp) {
  float acc[kColumnBlock] = {};
  const T* xb = x + b * S * D + d0;
  const T* yb = y_t + (b * D + d0) * S;
  for (int64_t s = 0; s < S; ++s) {
    float* t = tmp + s * kColumnBlock;
    for (int64_t j = 0; j < nd; ++j) {
      const float v = round_to<T>(load(xb + s * D, j) + load(yb + j * S, s));
      t[j] = v;
      acc[j] += v * v;
    }
  }
  float inv[kColumnBlock];
  for (int64_t j = 0; j < nd; ++j) inv[j] = 1.0f / std::sqrt(acc[j] / static_cast<float>(S) + eps);
  T* ob = out + b * S * D + d0;
  for (int64_t s = 0; s < S; ++s) {
    const float* t = tmp + s * kColumnBlock;
    for (int64_t j = 0; j < nd; ++j) store(ob + s * D, j, t[j] * inv[j]);
  }
}

/// out[i] = a h[i] + c u[i] + sigma noise[i] over [i0, i1); noise may be null.
template <class T, class N>
EQR_SIMD_CLONES void damped_range(const T* __restrict h, const T* __restrict u, const N* __restrict noise,
                                  T* __restrict out, int64_t i0, int64_t i1, float a, float c, float sigma) {
  if (noise == nullptr) {
    for (int64_t i = i0; i < i1; ++i) store(out, i, a * load(h, i) + c * load(u, i));
  } else {
    for (int64_t i = i0; i < i1; ++i) store(out, i, a * load(h, i) + c * load(u, i) + sigma * load(noise, i));
  }
}

/// Backward of swiglu_rows: dgu[r, i] = round(dy * u) * silu'(g), dgu[r, I + i] = dy * round(silu(g)), as
/// autograd differentiates silu(g) * u (silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g)))).
template <class T>
EQR_SIMD_CLONES void swiglu_backward_rows(const T* __restrict in, const T* __restrict dy, T* __restrict dgu,
                                          int64_t r0, int64_t r1, int64_t I) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* g = in + r * 2 * I;
    const T* u = g + I;
    const T* d = dy + r * I;
    T* o = dgu + r * 2 * I;
    for (int64_t i = 0; i < I; ++i) {
      const float a = load(g, i);
      const float sig = 1.0f / (1.0f + fast_exp(-a));
      const float dd = load(d, i);
      store(o, I + i, dd * round_to<T>(a * sig));
      store(o, i, round_to<T>(dd * load(u, i)) * (sig * (1.0f + a * (1.0f - sig))));
    }
  }
}

/// Backward of add_rms_norm_rows for rows [r0, r1): with h = round(x + y), rr = 1/sqrt(mean(h^2) + eps),
/// dh = rr d - rr^3 h mean(d h); the sum's gradient goes to x and y alike (written once, to ds).
template <class T>
EQR_SIMD_CLONES void add_rms_norm_backward_rows(const T* __restrict x, const T* __restrict y, const T* __restrict dout,
                                                T* __restrict ds, int64_t r0, int64_t r1, int64_t D, float eps,
                                                float* __restrict tmp) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * D;
    const T* yr = y + r * D;
    const T* dr = dout + r * D;
    float ss[kLanes] = {}, dot[kLanes] = {};
    for (int64_t i = 0; i < D; ++i) tmp[i] = round_to<T>(load(xr, i) + load(yr, i));
    int64_t i = 0;
    for (; i + kLanes <= D; i += kLanes) {
      for (int64_t j = 0; j < kLanes; ++j) {
        ss[j] += tmp[i + j] * tmp[i + j];
        dot[j] += load(dr, i + j) * tmp[i + j];
      }
    }
    for (; i < D; ++i) {
      ss[0] += tmp[i] * tmp[i];
      dot[0] += load(dr, i) * tmp[i];
    }
    float sum_ss = 0.0f, sum_dot = 0.0f;
    for (int64_t j = 0; j < kLanes; ++j) {
      sum_ss += ss[j];
      sum_dot += dot[j];
    }
    const float rr = 1.0f / std::sqrt(sum_ss / static_cast<float>(D) + eps);
    const float coef = rr * rr * rr * sum_dot / static_cast<float>(D);
    T* o = ds + r * D;
    for (int64_t k = 0; k < D; ++k) store(o, k, rr * load(dr, k) - coef * tmp[k]);
  }
}

/// Backward of add_rms_norm_transposed_block: the same formula over S for each hidden unit; the gradient
/// is written to dx (B, S, D) and, transposed, to dy_t (B, D, S).
template <class T>
EQR_SIMD_CLONES void add_rms_norm_transposed_backward_block(const T* __restrict x, const T* __restrict y_t,
                                                            const T* __restrict dout, T* __restrict dx,
                                                            T* __restrict dy_t, int64_t b, int64_t d0, int64_t nd,
                                                            int64_t S, int64_t D, float eps, float* __restrict tmp) {
  float ss[kColumnBlock] = {}, dot[kColumnBlock] = {};
  const T* xb = x + b * S * D + d0;
  const T* yb = y_t + (b * D + d0) * S;
  const T* db = dout + b * S * D + d0;
  for (int64_t s = 0; s < S; ++s) {
    float* t = tmp + s * kColumnBlock;
    for (int64_t j = 0; j < nd; ++j) {
      const float v = round_to<T>(load(xb + s * D, j) + load(yb + j * S, s));
      t[j] = v;
      ss[j] += v * v;
      dot[j] += load(db + s * D, j) * v;
    }
  }
  float rr[kColumnBlock], coef[kColumnBlock];
  for (int64_t j = 0; j < nd; ++j) {
    rr[j] = 1.0f / std::sqrt(ss[j] / static_cast<float>(S) + eps);
    coef[j] = rr[j] * rr[j] * rr[j] * dot[j] / static_cast<float>(S);
  }
  T* xo = dx + b * S * D + d0;
  T* yo = dy_t + (b * D + d0) * S;
  for (int64_t s = 0; s < S; ++s) {
    const float* t = tmp + s * kColumnBlock;
    for (int64_t j = 0; j < nd; ++j) {
      const float g = rr[j] * load(db + s * D, j) - coef[j] * t[j];
      store(xo + s * D, j, g);
      store(yo + j * S, s, g);
    }
  }
}

// ---- dispatch -----------------------------------------------------------------------------------------

/// Elements per parallel_for chunk: large enough that a thread's start-up cost does not dominate.
constexpr int64_t kGrainElements = 1 << 15;

int64_t grain_rows(int64_t row_elements) { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, row_elements)); }

template <class F>
void on_dtype(c10::ScalarType dtype, F&& f) {
  if (dtype == at::kFloat) {
    f(float{});
  } else {
    f(Bf16Bits{});
  }
}

template <class T>
T* ptr(const at::Tensor& t) {
  return reinterpret_cast<T*>(t.data_ptr());
}

/// Runs body(xs, ys, out) with T-typed pointers (T = float or bfloat16 bits) into contiguous copies of
/// x and y and into a new tensor shaped like x, which it returns.
template <class F>
at::Tensor with_pointers(const at::Tensor& x, const at::Tensor& y, F&& body) {
  const at::Tensor xc = x.contiguous(), yc = y.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options());
  on_dtype(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    body(ptr<T>(xc), ptr<T>(yc), ptr<T>(out));
  });
  return out;
}

template <class P>
using Elem = std::remove_pointer_t<P>;

bool grad_needed(std::initializer_list<const at::Tensor*> ts) {
  if (!at::GradMode::is_enabled()) return false;
  for (const auto* t : ts) {
    if (t->defined() && t->requires_grad()) return true;
  }
  return false;
}

bool applies(std::initializer_list<const at::Tensor*> ts, bool fused) {
  if (!fused) return false;
  const auto dtype = (*ts.begin())->scalar_type();
  for (const auto* t : ts) {
    if (t->defined() && !t->device().is_cpu()) return false;
  }
  return dtype == at::kFloat || dtype == at::kBFloat16;
}

// ---- kernels on whole tensors (no autograd) ----------------------------------------------------------

at::Tensor swiglu_kernel(const at::Tensor& gate_up) {
  const at::Tensor in = gate_up.contiguous();
  const int64_t two_i = in.size(-1), I = two_i / 2;
  const int64_t rows = I == 0 ? 0 : in.numel() / two_i;
  std::vector<int64_t> shape(in.sizes().begin(), in.sizes().end());
  shape.back() = I;
  at::Tensor out = at::empty(shape, in.options());
  on_dtype(in.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = ptr<T>(in);
    T* dst = ptr<T>(out);
    at::parallel_for(0, rows, grain_rows(two_i), [&](int64_t r0, int64_t r1) { swiglu_rows<T>(src, dst, r0, r1, I); });
  });
  return out;
}

at::Tensor swiglu_backward_kernel(const at::Tensor& gate_up, const at::Tensor& dy) {
  const int64_t two_i = gate_up.size(-1), I = two_i / 2;
  const int64_t rows = I == 0 ? 0 : gate_up.numel() / two_i;
  const at::Tensor d = dy.to(gate_up.scalar_type()).contiguous();
  return with_pointers(gate_up, gate_up, [&](auto* in, auto*, auto* dgu) {
    using T = Elem<decltype(in)>;
    const T* ds = ptr<T>(d);
    at::parallel_for(0, rows, grain_rows(two_i),
                     [&](int64_t r0, int64_t r1) { swiglu_backward_rows<T>(in, ds, dgu, r0, r1, I); });
  });
}

at::Tensor add_rms_norm_kernel(const at::Tensor& x, const at::Tensor& y, double eps) {
  const int64_t D = x.size(-1);
  const int64_t rows = D == 0 ? 0 : x.numel() / D;
  return with_pointers(x, y, [&](auto* xs, auto* ys, auto* dst) {
    at::parallel_for(0, rows, grain_rows(D), [&](int64_t r0, int64_t r1) {
      std::vector<float> tmp(static_cast<size_t>(D));
      add_rms_norm_rows<Elem<decltype(xs)>>(xs, ys, dst, r0, r1, D, static_cast<float>(eps), tmp.data());
    });
  });
}

/// The sum's gradient, once for x and once for y (the same tensor, as autograd's AddBackward returns).
std::pair<at::Tensor, at::Tensor> add_rms_norm_backward_kernel(const at::Tensor& x, const at::Tensor& y,
                                                               const at::Tensor& dout, double eps) {
  const int64_t D = x.size(-1);
  const int64_t rows = D == 0 ? 0 : x.numel() / D;
  const at::Tensor d = dout.to(x.scalar_type()).contiguous();
  at::Tensor ds = with_pointers(x, y, [&](auto* xs, auto* ys, auto* dsum) {
    using T = Elem<decltype(xs)>;
    const T* dd = ptr<T>(d);
    at::parallel_for(0, rows, grain_rows(D), [&](int64_t r0, int64_t r1) {
      std::vector<float> tmp(static_cast<size_t>(D));
      add_rms_norm_backward_rows<T>(xs, ys, dd, dsum, r0, r1, D, static_cast<float>(eps), tmp.data());
    });
  });
  return {ds, ds};
}

/// Runs block(b, d0, nd, tmp) over every (batch row, block of kColumnBlock hidden units) of x (B, S, D).
template <class F>
void for_column_blocks(const at::Tensor& x, F&& block) {
  const int64_t B = x.size(0), S = x.size(1), D = x.size(2);
  const int64_t col_blocks = (D + kColumnBlock - 1) / kColumnBlock;
  at::parallel_for(0, B * col_blocks, grain_rows(S * kColumnBlock), [&](int64_t t0, int64_t t1) {
    std::vector<float> tmp(static_cast<size_t>(S * kColumnBlock));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / col_blocks, d0 = (t % col_blocks) * kColumnBlock;
      block(b, d0, std::min(kColumnBlock, D - d0), tmp.data());
    }
  });
}

at::Tensor add_rms_norm_transposed_kernel(const at::Tensor& x, const at::Tensor& y_t, double eps) {
  const int64_t S = x.size(1), D = x.size(2);
  return with_pointers(x, y_t, [&](auto* xs, auto* ys, auto* dst) {
    for_column_blocks(x, [&](int64_t b, int64_t d0, int64_t nd, float* tmp) {
      add_rms_norm_transposed_block<Elem<decltype(xs)>>(xs, ys, dst, b, d0, nd, S, D, static_cast<float>(eps), tmp);
    });
  });
}

std::pair<at::Tensor, at::Tensor> add_rms_norm_transposed_backward_kernel(const at::Tensor& x, const at::Tensor& y_t,
                                                                          const at::Tensor& dout, double eps) {
  const int64_t S = x.size(1), D = x.size(2);
  const at::Tensor d = dout.to(x.scalar_type()).contiguous(), yc = y_t.contiguous();
  at::Tensor dy_t = at::empty(y_t.sizes(), y_t.options());
  at::Tensor dx = with_pointers(x, d, [&](auto* xs, auto* dd, auto* dxs) {
    using T = Elem<decltype(xs)>;
    const T* ys = ptr<T>(yc);
    T* dys = ptr<T>(dy_t);
    for_column_blocks(x, [&](int64_t b, int64_t d0, int64_t nd, float* tmp) {
      add_rms_norm_transposed_backward_block<T>(xs, ys, dd, dxs, dys, b, d0, nd, S, D, static_cast<float>(eps), tmp);
    });
  });
  return {dx, dy_t};
}

at::Tensor damped_kernel(const at::Tensor& h, const at::Tensor& u, double lambda, const at::Tensor& noise,
                         double noise_scale) {
  const bool noisy = noise.defined() && noise_scale != 0.0;
  const at::Tensor nc = noisy ? noise.contiguous() : at::Tensor();
  const int64_t n = h.numel();
  const auto a = static_cast<float>(1.0 - lambda), c = static_cast<float>(lambda), sigma = static_cast<float>(noise_scale);
  return with_pointers(h, u, [&](auto* hs, auto* us, auto* dst) {
    using T = Elem<decltype(hs)>;
    at::parallel_for(0, n, kGrainElements, [&](int64_t i0, int64_t i1) {
      if (!noisy) {
        damped_range<T, float>(hs, us, nullptr, dst, i0, i1, a, c, sigma);
      } else if (nc.scalar_type() == at::kFloat) {
        damped_range<T, float>(hs, us, ptr<float>(nc), dst, i0, i1, a, c, sigma);
      } else {
        damped_range<T, T>(hs, us, ptr<T>(nc), dst, i0, i1, a, c, sigma);
      }
    });
  });
}

// ---- autograd: the same kernels forward, fused kernels backward (first-order gradients only) ---------

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct SwigluFunction : torch::autograd::Function<SwigluFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate_up) {
    ctx->save_for_backward({gate_up});
    return swiglu_kernel(gate_up);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {swiglu_backward_kernel(ctx->get_saved_variables()[0], grads[0])};
  }
};

/// Residual + RMSNorm (over D, or over S from the transposed layout): saves both inputs, recomputes the
/// sum in backward.
template <at::Tensor (*Forward)(const at::Tensor&, const at::Tensor&, double),
          std::pair<at::Tensor, at::Tensor> (*Backward)(const at::Tensor&, const at::Tensor&, const at::Tensor&, double)>
struct ResidualNormFunction : torch::autograd::Function<ResidualNormFunction<Forward, Backward>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y, double eps) {
    ctx->save_for_backward({x, y});
    ctx->saved_data["eps"] = eps;
    return Forward(x, y, eps);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto [dx, dy] = Backward(saved[0], saved[1], grads[0], ctx->saved_data["eps"].toDouble());
    return {dx, dy, at::Tensor()};
  }
};
using AddRmsNormFunction = ResidualNormFunction<add_rms_norm_kernel, add_rms_norm_backward_kernel>;
using AddRmsNormTransposedFunction =
    ResidualNormFunction<add_rms_norm_transposed_kernel, add_rms_norm_transposed_backward_kernel>;

struct DampedFunction : torch::autograd::Function<DampedFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& u, double lambda,
                            const at::Tensor& noise, double noise_scale) {
    ctx->saved_data["lambda"] = lambda;
    return damped_kernel(h, u, lambda, noise, noise_scale);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const double lambda = ctx->saved_data["lambda"].toDouble();
    return {grads[0] * (1.0 - lambda), grads[0] * lambda, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool kernel_applies(const at::Tensor& t, bool fused) { return applies({&t}, fused); }

at::Tensor swiglu(const at::Tensor& gate_up, bool fused) {
  EQR_CHECK(gate_up.dim() >= 1 && gate_up.size(-1) % 2 == 0, RuntimeError, "swiglu: last axis of ",
            gate_up.sizes(), " is not even");
  if (!applies({&gate_up}, fused)) {
    const auto halves = gate_up.chunk(2, -1);
    return at::silu(halves[0]) * halves[1];
  }
  return grad_needed({&gate_up}) ? SwigluFunction::apply(gate_up) : swiglu_kernel(gate_up);
}

at::Tensor add_rms_norm(const at::Tensor& x, const at::Tensor& y, double eps, bool fused) {
  EQR_CHECK(x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type(), RuntimeError, "add_rms_norm: x ",
            x.sizes(), " ", x.scalar_type(), " and y ", y.sizes(), " ", y.scalar_type(), " differ");
  if (!applies({&x, &y}, fused) || x.dim() == 0) return rms_norm(x + y, eps);
  return grad_needed({&x, &y}) ? AddRmsNormFunction::apply(x, y, eps) : add_rms_norm_kernel(x, y, eps);
}

at::Tensor add_rms_norm_transposed(const at::Tensor& x, const at::Tensor& y_t, double eps, bool fused) {
  EQR_CHECK(x.dim() == 3 && y_t.dim() == 3 && x.size(0) == y_t.size(0) && x.size(1) == y_t.size(2) &&
                x.size(2) == y_t.size(1) && x.scalar_type() == y_t.scalar_type(),
            RuntimeError, "add_rms_norm_transposed: expected x (B, S, D) and y_t (B, D, S) of one dtype, got ",
            x.sizes(), " ", x.scalar_type(), " and ", y_t.sizes(), " ", y_t.scalar_type());
  if (!applies({&x, &y_t}, fused)) return rms_norm(x.transpose(1, 2) + y_t, eps).transpose(1, 2);
  return grad_needed({&x, &y_t}) ? AddRmsNormTransposedFunction::apply(x, y_t, eps)
                                 : add_rms_norm_transposed_kernel(x, y_t, eps);
}

at::Tensor damped_update(const at::Tensor& h, const at::Tensor& u, double lambda, const at::Tensor& noise,
                         double noise_scale, bool fused) {
  EQR_CHECK(h.sizes() == u.sizes() && h.scalar_type() == u.scalar_type(), RuntimeError, "damped_update: h ",
            h.sizes(), " ", h.scalar_type(), " and u ", u.sizes(), " ", u.scalar_type(), " differ");
  EQR_CHECK(!noise.defined() || (noise.sizes() == h.sizes() &&
                                 (noise.scalar_type() == at::kFloat || noise.scalar_type() == h.scalar_type())),
            RuntimeError, "damped_update: noise ", (noise.defined() ? noise.sizes() : at::IntArrayRef{}),
            " must have h's shape ", h.sizes(), " and dtype float32 or ", h.scalar_type());
  const bool noisy = noise.defined() && noise_scale != 0.0;
  if (!applies({&h, &u}, fused)) {
    at::Tensor out = lambda == 1.0 ? u : (1.0 - lambda) * h + lambda * u;
    if (noisy) out = out + (noise * noise_scale).to(h.scalar_type());
    return out;
  }
  if (lambda == 1.0 && !noisy) return u;
  if (!grad_needed({&h, &u})) return damped_kernel(h, u, lambda, noisy ? noise : at::Tensor(), noise_scale);
  // Function::apply takes defined tensors only: "no noise" is an empty one with scale 0.
  const at::Tensor n = noisy ? noise.detach() : at::empty({0}, h.options());
  return DampedFunction::apply(h, u, lambda, n, noisy ? noise_scale : 0.0);
}

}  // namespace eqr::model::fused
