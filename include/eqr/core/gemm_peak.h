#pragma once
// The machine's measured matrix-multiply throughput, the yardstick for eqr's speed figures: a model step's
// matmul FLOP/s is quoted as a share of what the device does on one plain GEMM of the block's shape.
//
// Before a dtype is timed, its product is validated twice (docs/performance.md, "GEMM peak"):
//  1. exactly, on integer inputs: entries of A and B in {-1, 0, 1}, A non-zero in its first 256 columns only.
//     Every partial sum of every entry is then an integer of magnitude <= 256, which float32 and bfloat16
//     (8 significant bits) both hold exactly, so any correct GEMM path returns the float64 product bit for
//     bit, whatever its summation order, blocking or accumulator width. A wrong GEMM (transposed operand,
//     stale or uninitialised output, a kernel bug) is refused here.
//  2. within the rounding bound of the dtype's path, on Gaussian inputs, entry by entry:
//       |C - C64| <= u_out |C64| + ((1 + u_acc)^k - 1) (1 + u_out) (|A| |B|)
//     with u_out the output's unit roundoff and u_acc the accumulator's. float32: u_out = u_acc = 2^-24.
//     bfloat16 with native instructions on the CPU (oneDNN, float32 accumulators): u_out = 2^-8,
//     u_acc = 2^-24. bfloat16 emulated (no AVX512-BF16/AMX; LibTorch 1.13's fallback adds every product
//     into a bfloat16 output) and on CUDA (cuBLAS may reduce split-K partials in bfloat16):
//     u_out = u_acc = 2^-8. That bound is loose for large k; the exact check (1) is what catches a wrong
//     product there.

#include <cstdint>

#include <string>

#include <c10/core/Device.h>

#include "eqr/core/cpu_gemm.h"

namespace eqr {

struct GemmPeak {
  int64_t m = 0, k = 0, n = 0;  ///< the product timed: (m, k) @ (k, n)
  double fp32_gflops = 0;       ///< float32 (LibTorch's default: no TF32 on CUDA, which validation would refuse)
  std::string fp32_gemm;        ///< "onednn" (eqr::linear through oneDNN's sgemm) or "torch" (torch's own GEMM)
  double bf16_gflops = 0;       ///< bfloat16 inputs and output (NaN when LibTorch could not run it: bf16_error)
  std::string bf16_error;       ///< LibTorch's message when the bfloat16 product could not run here, else empty
  bool bf16_native = false;     ///< bfloat16 arithmetic in hardware: CUDA, or a CPU with AVX512-BF16 / AMX-BF16
  double fp32_rel_error = 0;    ///< largest |C - C64| / largest |C64| of the Gaussian validation product
  double bf16_rel_error = 0;    ///< the same for bfloat16
  double fp32_bound_use = 0;    ///< largest |C - C64| / bound over the entries (<= 1 passed; see above)
  double bf16_bound_use = 0;    ///< the same for bfloat16
};

/// "native" or "emulated": how this device does bfloat16 arithmetic (GemmPeak::bf16_native).
const char* bf16_path_name(bool native);

/// Whether `device` does bfloat16 arithmetic in hardware (CUDA: yes; CPU: cpu_has_native_bf16()).
bool device_has_native_bf16(const c10::Device& device);

/// Times the (m, k) @ (k, n) product the model's linear layers run (eqr::linear with `gemm`, the model's
/// compute.cpu_gemm: oneDNN's sgemm for float32 on the CPU where present, else LibTorch's GEMM) on `device` in
/// float32 and in bfloat16, each for about
/// `seconds` (at least 3 products) after one warm-up, synchronising CUDA around the timer; 2*m*k*n FLOP per
/// product. Each dtype is validated first as the header comment says (RuntimeError naming the dtype, the
/// path, the worst entry and its bound otherwise). UsageError for a dimension < 1 or seconds <= 0.
GemmPeak measure_gemm_peak(const c10::Device& device, int64_t m, int64_t k, int64_t n, double seconds = 1.0,
                           CpuGemm gemm = CpuGemm::kAuto);

}  // namespace eqr
