// Unit: float32 linear layers through oneDNN's sgemm (eqr/core/cpu_gemm.h) against at::linear.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/core/cpu_gemm.h"

namespace eqr {
namespace {

/// Largest |a - b| relative to the largest |b|.
double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-30, b.abs().max().item<double>());
}

TEST(CpuGemm, ParsesNamesAndRejectsUnknown) {
  EXPECT_EQ(parse_cpu_gemm("auto"), CpuGemm::kAuto);
  EXPECT_EQ(parse_cpu_gemm("onednn"), CpuGemm::kOneDnn);
  EXPECT_EQ(parse_cpu_gemm("torch"), CpuGemm::kTorch);
  EXPECT_STREQ(cpu_gemm_name(CpuGemm::kOneDnn), "onednn");
  EXPECT_THROW(parse_cpu_gemm("mkl"), ConfigError);
}

TEST(CpuGemm, AppliesToCpuFloat32OnlyAndTorchIsAtLinear) {
  const auto x = torch::randn({5, 7}), w = torch::randn({3, 7});
  EXPECT_FALSE(onednn_linear_applies(x, w, CpuGemm::kTorch));
  EXPECT_FALSE(onednn_linear_applies(x.to(torch::kBFloat16), w.to(torch::kBFloat16), CpuGemm::kOneDnn));
  EXPECT_FALSE(onednn_linear_applies(torch::randn({0, 7}), w, CpuGemm::kOneDnn));
  EXPECT_EQ(onednn_linear_applies(x, w, CpuGemm::kAuto), onednn_sgemm_available());
  EXPECT_TRUE(torch::equal(linear(x, w, at::Tensor(), CpuGemm::kTorch), at::linear(x, w)));
}

TEST(CpuGemm, OneDnnMatchesAtLinearForwardAndBackward) {
  if (!onednn_sgemm_available()) {
    GTEST_SKIP() << "oneDNN's dnnl_sgemm is not in this process (this LibTorch does not export it, e.g. the PyPI "
                    "wheel): cpu_gemm auto runs at::linear here, which the other tests cover";
  }
  torch::manual_seed(3);
  // 2-D, 3-D and a transposed (non-contiguous) input, as the token-mixing MLP passes; with and without bias.
  const auto base = torch::randn({4, 9, 13});
  for (const bool use_bias : {false, true}) {
    for (int layout = 0; layout < 3; ++layout) {
      at::Tensor x = layout == 0 ? base.reshape({36, 13}) : layout == 1 ? base : base.transpose(1, 2).contiguous().transpose(1, 2);
      x = x.clone().requires_grad_(true);
      const auto w = torch::randn({6, 13}).requires_grad_(true);
      const auto b = use_bias ? torch::randn({6}).requires_grad_(true) : at::Tensor();
      const auto g = torch::randn(at::linear(x, w, b).sizes());

      const auto want = at::linear(x, w, b);
      const auto got = linear(x, w, b, CpuGemm::kOneDnn);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_LT(rel_diff(got, want), 1e-5) << "layout " << layout << " bias " << use_bias;

      const auto want_grads = torch::autograd::grad({want}, use_bias ? std::vector<at::Tensor>{x, w, b}
                                                                      : std::vector<at::Tensor>{x, w}, {g});
      const auto got_grads = torch::autograd::grad({got}, use_bias ? std::vector<at::Tensor>{x, w, b}
                                                                    : std::vector<at::Tensor>{x, w}, {g});
      ASSERT_EQ(got_grads.size(), want_grads.size());
      for (size_t i = 0; i < got_grads.size(); ++i) {
        ASSERT_EQ(got_grads[i].sizes(), want_grads[i].sizes()) << "gradient " << i;
        EXPECT_LT(rel_diff(got_grads[i], want_grads[i]), 1e-5) << "gradient " << i << ", layout " << layout;
      }
      // No grad: the same values without the autograd Function.
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(linear(x, w, b, CpuGemm::kOneDnn), got));
    }
  }
}

TEST(CpuGemm, OneDnnAskedForButAbsentIsAClearError) {
  if (onednn_sgemm_available()) GTEST_SKIP() << "oneDNN's sgemm is present in this process; nothing to refuse";
  const auto x = torch::randn({2, 3}), w = torch::randn({4, 3});
  try {
    linear(x, w, at::Tensor(), CpuGemm::kOneDnn);
    FAIL() << "expected RuntimeError";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cpu_gemm"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace eqr
