#pragma once
// Fused elementwise steps of the reasoning block (docs/performance.md, "Defaults and kernels").
//
// Each function computes exactly what its unfused composition of LibTorch ops computes (written beside
// it), in one pass over memory, with float32 arithmetic and one rounding to the tensor's dtype where the
// composition rounds (so bfloat16 results match the reference's op-by-op rounding except for reduction
// order). The fused CPU kernel runs when the tensors are on the CPU, float32 or bfloat16, and `fused` is
// true (compute.fused_kernels). Where a gradient is needed, it runs inside an autograd Function whose
// backward is a fused kernel too (first-order gradients; the same forward values with and without grad,
// so gradient checkpointing's recomputation reproduces its forward bit for bit). Otherwise (CUDA,
// float16, compute.fused_kernels = false) the function runs the LibTorch composition itself, so callers
// need not branch.
//
// Shape legend: B batch, S cells, D hidden, I SwiGLU intermediate, N any leading size.

#include <ATen/Tensor.h>

namespace eqr::model::fused {

/// True when the CPU kernels would run for `t` (CPU, float32/bfloat16, fused).
bool kernel_applies(const at::Tensor& t, bool fused);

/// SwiGLU's activation: gate_up (..., 2I) -> silu(gate_up[..., :I]) * gate_up[..., I:] (..., I).
/// Composition: at::silu(halves[0]) * halves[1] (rounded after the silu and after the product).
at::Tensor swiglu(const at::Tensor& gate_up, bool fused = true);

/// RMSNorm of a residual sum over the last axis: x, y (..., D) -> rms_norm(x + y, eps).
/// Composition: s = x + y (rounded); h = float(s); h * rsqrt(mean(h^2, -1) + eps), rounded.
at::Tensor add_rms_norm(const at::Tensor& x, const at::Tensor& y, double eps, bool fused = true);

/// The token-mixing residual, normalised over the cell axis S without materialising a transpose:
/// x (B, S, D), y_t (B, D, S) -> rms_norm(x^T + y_t, eps)^T as a contiguous (B, S, D).
/// Composition: rms_norm(x.transpose(1, 2) + y_t, eps).transpose(1, 2).
at::Tensor add_rms_norm_transposed(const at::Tensor& x, const at::Tensor& y_t, double eps, bool fused = true);

/// The damped, noisy update of the reasoning module: (1 - lambda) h + lambda u + noise_scale * noise.
/// h, u (...) of one dtype; noise: float32 (or h's dtype) of h's shape, or undefined for none.
/// Composition: (1 - lambda) * h + lambda * u + (noise * noise_scale) in h's dtype.
at::Tensor damped_update(const at::Tensor& h, const at::Tensor& u, double lambda, const at::Tensor& noise,
                         double noise_scale, bool fused = true);

}  // namespace eqr::model::fused
