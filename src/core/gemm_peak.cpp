// Measured GEMM throughput (see gemm_peak.h).

#include "eqr/core/gemm_peak.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr {

namespace {

void sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

/// GFLOP/s of `dtype` products; validates one product against float64 first.
double time_dtype(const c10::Device& device, int64_t m, int64_t k, int64_t n, c10::ScalarType dtype, double tol,
                  double seconds) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(dtype).device(device);
  const at::Tensor a = torch::randn({m, k}, opts), b = torch::randn({k, n}, opts);
  const at::Tensor ref = torch::matmul(a.to(torch::kCPU, torch::kFloat64), b.to(torch::kCPU, torch::kFloat64));
  const at::Tensor got = torch::matmul(a, b).to(torch::kCPU, torch::kFloat64);
  const double scale = std::max(1.0, ref.abs().max().item<double>());
  const double err = (got - ref).abs().max().item<double>();
  EQR_CHECK(err <= tol * scale, RuntimeError, "GEMM peak: the ", c10::toString(dtype), " product on ", device.str(),
            " is off by ", err, " (largest |entry| ", scale, ", allowed ", tol * scale, "); not timing a wrong GEMM");
  at::Tensor c = torch::matmul(a, b);  // warm-up
  sync(device);
  int64_t iters = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (iters < 3 || elapsed < seconds) {
    at::matmul_out(c, a, b);
    ++iters;
    if (iters % 4 == 0 || iters <= 3) {
      sync(device);
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }
  sync(device);
  elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) * static_cast<double>(iters) /
         (elapsed * 1e9);
}

}  // namespace

GemmPeak measure_gemm_peak(const c10::Device& device, int64_t m, int64_t k, int64_t n, double seconds) {
  EQR_CHECK(m >= 1 && k >= 1 && n >= 1, UsageError, "GEMM peak: shape (", m, ", ", k, ") @ (", k, ", ", n,
            "): every dimension must be >= 1");
  EQR_CHECK(seconds > 0, UsageError, "GEMM peak: seconds = ", seconds, ": expected > 0");
  GemmPeak p;
  p.m = m;
  p.k = k;
  p.n = n;
  p.fp32_gflops = time_dtype(device, m, k, n, torch::kFloat32, 1e-4, seconds);
  p.bf16_gflops = time_dtype(device, m, k, n, torch::kBFloat16, std::ldexp(1.0, -7), seconds);
  return p;
}

}  // namespace eqr
