// Measured GEMM throughput (see gemm_peak.h for the validation and its bounds).

#include "eqr/core/gemm_peak.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "eqr/core/cpu_gemm.h"
#include "eqr/core/device.h"
#include "eqr/core/error.h"

namespace eqr {

namespace {

/// Rows of A taken into the validation products (float64 on the host): rows are independent, so the first
/// rows of the timed product check the same kernel without a host GEMM of the whole (possibly GPU-sized) one.
constexpr int64_t kMaxValidationRows = 4096;
/// Columns of A that may be non-zero in the exact check: partial sums stay integers of magnitude <= 256.
constexpr int64_t kExactColumns = 256;

void sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

/// The product whose speed is measured: float32 on the CPU goes through eqr::linear (oneDNN's sgemm where
/// the model's linear layers use it, compute.cpu_gemm = auto), everything else through torch::matmul.
at::Tensor product(const at::Tensor& a, const at::Tensor& b_t, CpuGemm gemm) {
  return linear(a, b_t, at::Tensor(), gemm);
}

struct PathRounding {
  double u_out = 0, u_acc = 0;
  const char* name = "";
};

PathRounding rounding_of(c10::ScalarType dtype, const c10::Device& device) {
  const double f32 = std::ldexp(1.0, -24), bf16 = std::ldexp(1.0, -8);
  if (dtype == torch::kFloat32) return {f32, f32, "float32"};
  if (device.is_cpu() && cpu_has_native_bf16()) return {bf16, f32, "bfloat16 (native, float32 accumulation)"};
  if (device.is_cpu()) return {bf16, bf16, "bfloat16 (emulated, bfloat16 accumulation allowed)"};
  return {bf16, bf16, "bfloat16 (CUDA, bfloat16 split-K reduction allowed)"};
}

struct Validation {
  double rel_error = 0, bound_use = 0;
};

/// Checks the product of `dtype` on `device` (exact on integer inputs, then within the path's rounding
/// bound on Gaussian inputs); throws RuntimeError when either fails.
Validation validate(const c10::Device& device, int64_t m, int64_t k, int64_t n, c10::ScalarType dtype, CpuGemm gemm) {
  torch::NoGradGuard no_grad;
  const PathRounding r = rounding_of(dtype, device);
  const int64_t mv = std::min(m, kMaxValidationRows);
  const auto host64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto opts = torch::TensorOptions().dtype(dtype).device(device);

  // 1. Exact: every partial sum is an integer in [-256, 256].
  at::Tensor ai = torch::randint(-1, 2, {mv, k}, host64);
  if (k > kExactColumns) ai.narrow(1, kExactColumns, k - kExactColumns).zero_();
  const at::Tensor bi = torch::randint(-1, 2, {k, n}, host64);
  const at::Tensor want = torch::matmul(ai, bi);
  const at::Tensor got_i = product(ai.to(opts), bi.t().contiguous().to(opts), gemm).to(torch::kCPU, torch::kFloat64);
  const int64_t wrong = (got_i != want).sum().item<int64_t>();
  if (wrong != 0) {
    const at::Tensor idx = (got_i != want).flatten().nonzero().flatten();
    const int64_t first = idx[0].item<int64_t>();
    EQR_FAIL(RuntimeError, "GEMM peak: the ", r.name, " product on ", device.str(), " of integer matrices (", mv, " x ",
             k, ") @ (", k, " x ", n, "), which any correct GEMM returns exactly, has ", wrong,
             " wrong entries (first: row ", first / n, ", column ", first % n, ": got ",
             got_i.flatten()[first].item<double>(), ", expected ", want.flatten()[first].item<double>(),
             "); not timing a wrong GEMM");
  }

  // 2. Gaussian inputs, rounded to dtype, against the path's bound entry by entry.
  const at::Tensor a = torch::randn({mv, k}, opts), b = torch::randn({k, n}, opts);
  const at::Tensor a64 = a.to(torch::kCPU, torch::kFloat64), b64 = b.to(torch::kCPU, torch::kFloat64);
  const at::Tensor ref = torch::matmul(a64, b64);
  const at::Tensor err = (product(a, b.t().contiguous(), gemm).to(torch::kCPU, torch::kFloat64) - ref).abs();
  const double growth = std::expm1(static_cast<double>(k) * std::log1p(r.u_acc));
  const at::Tensor bound = r.u_out * ref.abs() + growth * (1.0 + r.u_out) * torch::matmul(a64.abs(), b64.abs());
  const at::Tensor use = err / bound.clamp_min(std::numeric_limits<double>::min());
  Validation v;
  const double scale = std::max(ref.abs().max().item<double>(), std::numeric_limits<double>::min());
  v.rel_error = err.max().item<double>() / scale;
  v.bound_use = use.max().item<double>();
  if (!(v.bound_use <= 1.0)) {  // also NaN
    const int64_t worst = use.flatten().argmax().item<int64_t>();
    EQR_FAIL(RuntimeError, "GEMM peak: the ", r.name, " product on ", device.str(), " of Gaussian (", mv, " x ", k,
             ") @ (", k, " x ", n, ") is off by ", err.flatten()[worst].item<double>(), " at row ", worst / n,
             ", column ", worst % n, " (exact ", ref.flatten()[worst].item<double>(), ", rounding bound ",
             bound.flatten()[worst].item<double>(), "); not timing a wrong GEMM");
  }
  return v;
}

/// GFLOP/s of `dtype` products of the full shape.
double time_dtype(const c10::Device& device, int64_t m, int64_t k, int64_t n, c10::ScalarType dtype, double seconds,
                  CpuGemm gemm) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(dtype).device(device);
  const at::Tensor a = torch::randn({m, k}, opts), b_t = torch::randn({n, k}, opts);
  at::Tensor c = product(a, b_t, gemm);  // warm-up
  sync(device);
  int64_t iters = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (iters < 3 || elapsed < seconds) {
    c = product(a, b_t, gemm);
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

const char* bf16_path_name(bool native) { return native ? "native" : "emulated"; }

bool device_has_native_bf16(const c10::Device& device) { return device.is_cuda() || cpu_has_native_bf16(); }

GemmPeak measure_gemm_peak(const c10::Device& device, int64_t m, int64_t k, int64_t n, double seconds, CpuGemm gemm) {
  EQR_CHECK(m >= 1 && k >= 1 && n >= 1, UsageError, "GEMM peak: shape (", m, ", ", k, ") @ (", k, ", ", n,
            "): every dimension must be >= 1");
  EQR_CHECK(seconds > 0, UsageError, "GEMM peak: seconds = ", seconds, ": expected > 0");
  GemmPeak p;
  p.m = m;
  p.k = k;
  p.n = n;
  p.bf16_native = device_has_native_bf16(device);
  p.fp32_gemm = device.is_cpu() && onednn_linear_applies(at::empty({1, k}), at::empty({n, k}), gemm) ? "onednn" : "torch";
  const Validation v32 = validate(device, m, k, n, torch::kFloat32, gemm);
  p.fp32_rel_error = v32.rel_error;
  p.fp32_bound_use = v32.bound_use;
  p.fp32_gflops = time_dtype(device, m, k, n, torch::kFloat32, seconds, gemm);
  // A bfloat16 product LibTorch cannot run here (e.g. oneDNN limited by ONEDNN_MAX_CPU_ISA below what LibTorch
  // routed to it) leaves the bfloat16 figures unset with LibTorch's message; a wrong product still throws.
  try {
    const Validation v16 = validate(device, m, k, n, torch::kBFloat16, gemm);
    p.bf16_rel_error = v16.rel_error;
    p.bf16_bound_use = v16.bound_use;
    p.bf16_gflops = time_dtype(device, m, k, n, torch::kBFloat16, seconds, gemm);
  } catch (const Error&) {
    throw;  // a wrong product (validation) or eqr's own failure
  } catch (const c10::Error& e) {
    p.bf16_gflops = std::nan("");
    p.bf16_error = e.what_without_backtrace();
  } catch (const std::exception& e) {  // oneDNN's dnnl::error, thrown through LibTorch's ideep
    p.bf16_gflops = std::nan("");
    p.bf16_error = e.what();
  }
  return p;
}

}  // namespace eqr
