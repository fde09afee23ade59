#pragma once
// float32 linear layers on the CPU through oneDNN's GEMM (docs/performance.md, "float32 GEMMs").
//
// Debian's LibTorch 1.13 sends float32 products to OpenBLAS (libopenblas0-pthread), whose own thread pool sits
// beside LibTorch's OpenMP threads: after each product its workers spin in sched_yield for about 0.1 s and take
// the core the next elementwise kernel needs (30% of an eval profile on an AVX2 EPYC; 13% here), and OpenBLAS
// 0.3.21 runs its Haswell kernels on CPUs it does not know (Zen 5). LibTorch already loads oneDNN (libdnnl.so.2,
// its bfloat16 path); oneDNN's dnnl_sgemm runs on LibTorch's own OpenMP threads with kernels chosen for the CPU.
// eqr finds it at run time (dlsym); where it is absent (the PyPI wheel links MKL and hides oneDNN's symbols)
// the plain at::linear runs.
//
// Shape legend: M rows (all leading axes of x together), K input width, N output width.

#include <string>

#include <ATen/Tensor.h>

namespace eqr {

/// Which GEMM a float32 CPU linear layer uses (compute.cpu_gemm).
enum class CpuGemm {
  kAuto,    ///< oneDNN's sgemm where LibTorch's process has it, else LibTorch's (the default)
  kOneDnn,  ///< oneDNN's sgemm; RuntimeError at the first product where it is not available
  kTorch,   ///< at::linear (OpenBLAS under Debian's LibTorch, MKL under the wheel's)
};

/// Parses "auto" | "onednn" | "torch" (ConfigError naming compute.cpu_gemm otherwise).
CpuGemm parse_cpu_gemm(const std::string& name);
const char* cpu_gemm_name(CpuGemm g);

/// True when dnnl_sgemm is in this process (looked up once).
bool onednn_sgemm_available();

/// True when linear() would run oneDNN for these tensors: CPU float32 x and weight, non-empty, mode not kTorch
/// and (kAuto) oneDNN found.
bool onednn_linear_applies(const at::Tensor& x, const at::Tensor& weight, CpuGemm mode);

/// y = x W^T (+ b): x (..., K), weight (N, K), bias (N) or undefined -> (..., N). With a gradient, an autograd
/// Function whose backward runs oneDNN too (dx = dy W, dW = dy^T x, db = sum dy; first-order only). Runs
/// at::linear where onednn_linear_applies() is false.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, CpuGemm mode);

}  // namespace eqr
