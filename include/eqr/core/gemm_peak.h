#pragma once
// The machine's measured matrix-multiply throughput, the yardstick for eqr's speed figures: a model step's
// matmul FLOP/s is quoted as a share of what the device does on one plain GEMM of the block's shape.

#include <cstdint>

#include <c10/core/Device.h>

namespace eqr {

struct GemmPeak {
  int64_t m = 0, k = 0, n = 0;  ///< the product timed: (m, k) @ (k, n)
  double fp32_gflops = 0;       ///< float32 (LibTorch's default: no TF32 on CUDA, which validation would refuse)
  double bf16_gflops = 0;       ///< bfloat16 inputs and output
};

/// Times torch::matmul of an (m, k) @ (k, n) product on `device` in float32 and in bfloat16, each for about
/// `seconds` (at least 3 products) after one warm-up, synchronising CUDA around the timer; 2*m*k*n FLOP per
/// product. Each dtype is validated first against a float64 product of the same (rounded) inputs: float32
/// within 1e-4 and bfloat16 within 2^-7 of the largest |entry| (RuntimeError otherwise). UsageError for a
/// dimension < 1 or seconds <= 0.
GemmPeak measure_gemm_peak(const c10::Device& device, int64_t m, int64_t k, int64_t n, double seconds = 1.0);

}  // namespace eqr
