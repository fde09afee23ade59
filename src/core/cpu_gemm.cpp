// float32 linear layers through oneDNN's sgemm (see cpu_gemm.h). Shape legend: M rows, K in, N out.

#include "eqr/core/cpu_gemm.h"

#include <dlfcn.h>

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "eqr/core/error.h"

namespace eqr {

namespace {

// oneDNN's C API (dnnl.h, v2 and v3): row-major C = alpha op(A) op(B) + beta C; returns dnnl_success (0).
using SgemmFn = int (*)(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

SgemmFn sgemm_fn() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return fn;
}

/// C (M, N) = op(A) op(B), every matrix row-major and contiguous.
void sgemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc) {
  const SgemmFn fn = sgemm_fn();
  EQR_CHECK(fn != nullptr, RuntimeError, "compute.cpu_gemm = onednn, but oneDNN's dnnl_sgemm is not in this process "
            "(this LibTorch does not load libdnnl); use cpu_gemm auto or torch");
  const int status = fn(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
  EQR_CHECK(status == 0, RuntimeError, "oneDNN sgemm (", ta, tb, " M ", M, " N ", N, " K ", K,
            ") failed with dnnl_status ", status);
}

const float* cptr(const at::Tensor& t) { return t.data_ptr<float>(); }

/// x2 (M, K) @ w (N, K)^T -> (M, N).
at::Tensor forward_kernel(const at::Tensor& x2, const at::Tensor& w) {
  const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
  at::Tensor y = at::empty({M, N}, x2.options());
  sgemm('N', 'T', M, N, K, cptr(x2), K, cptr(w), K, y.data_ptr<float>(), N);
  return y;
}

std::vector<int64_t> out_shape(const at::Tensor& x, int64_t n) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = n;
  return shape;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct OneDnnLinearFunction : torch::autograd::Function<OneDnnLinearFunction> {
  // bias: (N), or an empty tensor for none (Function::apply takes defined tensors only).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
    const at::Tensor x2 = x.reshape({-1, x.size(-1)}).contiguous(), w = weight.contiguous();
    ctx->save_for_backward({x2, w});
    ctx->saved_data["has_bias"] = bias.numel() > 0;
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    at::Tensor y = forward_kernel(x2, w);
    if (bias.numel() > 0) y.add_(bias);
    return y.view(out_shape(x, w.size(0)));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x2 = saved[0];
    const at::Tensor& w = saved[1];
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
    const at::Tensor dy = grads[0].to(at::kFloat).reshape({M, N}).contiguous();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = at::empty({M, K}, dy.options());
      sgemm('N', 'N', M, K, N, cptr(dy), N, cptr(w), K, dx.data_ptr<float>(), K);  // dy (M, N) @ w (N, K)
      dx = dx.view(ctx->saved_data["x_sizes"].toIntVector());
    }
    if (ctx->needs_input_grad(1)) {
      dw = at::empty({N, K}, dy.options());
      sgemm('T', 'N', N, K, M, cptr(dy), N, cptr(x2), K, dw.data_ptr<float>(), K);  // dy^T (N, M) @ x (M, K)
    }
    if (has_bias && ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

CpuGemm parse_cpu_gemm(const std::string& name) {
  if (name == "auto") return CpuGemm::kAuto;
  if (name == "onednn") return CpuGemm::kOneDnn;
  if (name == "torch") return CpuGemm::kTorch;
  EQR_FAIL(ConfigError, "config key 'compute.cpu_gemm' = '", name, "': expected auto, onednn or torch");
}

const char* cpu_gemm_name(CpuGemm g) {
  switch (g) {
    case CpuGemm::kAuto: return "auto";
    case CpuGemm::kOneDnn: return "onednn";
    case CpuGemm::kTorch: return "torch";
  }
  return "?";
}

bool onednn_sgemm_available() { return sgemm_fn() != nullptr; }

bool onednn_linear_applies(const at::Tensor& x, const at::Tensor& weight, CpuGemm mode) {
  if (mode == CpuGemm::kTorch) return false;
  if (!x.device().is_cpu() || !weight.device().is_cpu()) return false;
  if (x.scalar_type() != at::kFloat || weight.scalar_type() != at::kFloat) return false;
  if (x.dim() < 1 || x.numel() == 0 || weight.numel() == 0) return false;
  return mode == CpuGemm::kOneDnn || onednn_sgemm_available();
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, CpuGemm mode) {
  if (!onednn_linear_applies(x, weight, mode)) return at::linear(x, weight, bias);
  EQR_CHECK(weight.dim() == 2 && x.size(-1) == weight.size(1), RuntimeError, "linear: x ", x.sizes(), " and weight ",
            weight.sizes(), " do not multiply");
  const bool has_bias = bias.defined();
  EQR_CHECK(!has_bias || (bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.scalar_type() == at::kFloat),
            RuntimeError, "linear: bias ", bias.sizes(), " does not match weight ", weight.sizes());
  const bool grad = at::GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() || (has_bias && bias.requires_grad()));
  if (grad) return OneDnnLinearFunction::apply(x, weight, has_bias ? bias : at::empty({0}, weight.options()));
  const at::Tensor x2 = x.reshape({-1, x.size(-1)}).contiguous();
  at::Tensor y = forward_kernel(x2, weight.contiguous());
  if (has_bias) y.add_(bias);
  return y.view(out_shape(x, weight.size(0)));
}

}  // namespace eqr
