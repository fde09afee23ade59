// Fused kernels (eqr/model/fused.h) against the LibTorch compositions they replace: float32 within float
// rounding, bfloat16 within one bfloat16 ulp of the composition (which rounds at the same places), odd
// sizes (tails of the vector loops, a hidden width that is not a multiple of the column block), the
// fallbacks (grad needed, fused off, float64), the weight-cast cache, and the whole block and module with
// fused kernels on and off.

#include <cmath>
#include <functional>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/fused.h"
#include "eqr/model/layers.h"
#include "eqr/model/reasoning_block.h"
#include "eqr/model/reasoning_module.h"
#include "fixtures.h"

namespace eqr::model {
namespace {

/// Largest |a - b| / (|b| + floor) over all elements, in double.
double max_rel(const at::Tensor& a, const at::Tensor& b, double floor = 1e-3) {
  const auto ad = a.to(at::kDouble), bd = b.to(at::kDouble);
  return ((ad - bd).abs() / (bd.abs() + floor)).max().item<double>();
}

/// Share of elements where a and b differ (bitwise, after a cast to double).
double share_different(const at::Tensor& a, const at::Tensor& b) {
  return a.to(at::kDouble).ne(b.to(at::kDouble)).to(at::kDouble).mean().item<double>();
}

constexpr double kBf16Ulp = 1.0 / 128.0;  // relative spacing of bfloat16 (8 significant bits)

TEST(FusedKernels, SwigluMatchesSiluTimesUp) {
  torch::manual_seed(0);
  for (const int64_t i : {1, 7, 16, 33, 256}) {
    const auto gate_up = torch::randn({3, 5, 2 * i}) * 4.0;
    torch::NoGradGuard no_grad;
    const auto halves = gate_up.chunk(2, -1);
    const auto expected = at::silu(halves[0]) * halves[1];
    const auto got = fused::swiglu(gate_up);
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_LT(max_rel(got, expected), 2e-6) << "I = " << i;

    // bfloat16: the fused kernel rounds twice (after silu, after the product), as the float32 math of the
    // composition would; LibTorch 1.13's bfloat16 silu rounds after each of its inner ops, so the fused
    // result is compared with the exact value and must be at least as close as the composition.
    const auto gb = gate_up.to(torch::kBFloat16);
    const auto hd = gb.to(torch::kDouble).chunk(2, -1);
    const auto exact = hd[0] * torch::sigmoid(hd[0]) * hd[1];
    const auto hb = gb.chunk(2, -1);
    const auto fb = fused::swiglu(gb);
    EXPECT_EQ(fb.scalar_type(), torch::kBFloat16);
    EXPECT_LE(max_rel(fb, exact), 2.0 * kBf16Ulp / 2 + 1e-6) << "I = " << i;  // two half-ulp roundings
    EXPECT_LE(max_rel(fb, exact), max_rel(at::silu(hb[0]) * hb[1], exact) + 1e-6) << "I = " << i;
  }
}

TEST(FusedKernels, SwigluHandValuesAndExtremes) {
  torch::NoGradGuard no_grad;
  // gate 0 -> silu 0; gate 1 -> 1/(1+e^-1) = 0.7310586; huge negative gates -> 0, huge positive -> gate.
  const auto gate_up = torch::tensor({{0.0f, 1.0f, -200.0f, 200.0f, 5.0f, 2.0f, 3.0f, 0.5f}});
  const auto got = fused::swiglu(gate_up);
  EXPECT_FLOAT_EQ(got[0][0].item<float>(), 0.0f);
  EXPECT_NEAR(got[0][1].item<float>(), 2.0f * 0.7310586f, 1e-6);
  EXPECT_NEAR(got[0][2].item<float>(), 0.0f, 1e-30);
  EXPECT_FLOAT_EQ(got[0][3].item<float>(), 100.0f);
  const auto nan = fused::swiglu(torch::tensor({{NAN, 1.0f}}));
  EXPECT_TRUE(std::isnan(nan[0][0].item<float>()));
}

TEST(FusedKernels, AddRmsNormMatchesTheComposition) {
  torch::manual_seed(1);
  for (const int64_t d : {1, 15, 16, 17, 64, 100}) {
    const auto x = torch::randn({4, 3, d}) * 3.0, y = torch::randn({4, 3, d});
    torch::NoGradGuard no_grad;
    EXPECT_LT(max_rel(fused::add_rms_norm(x, y, 1e-5), rms_norm(x + y, 1e-5)), 2e-6) << "D = " << d;
    const auto xb = x.to(torch::kBFloat16), yb = y.to(torch::kBFloat16);
    const auto fb = fused::add_rms_norm(xb, yb, 1e-5);
    EXPECT_EQ(fb.scalar_type(), torch::kBFloat16);
    EXPECT_LE(max_rel(fb, rms_norm(xb + yb, 1e-5)), 1.01 * kBf16Ulp) << "D = " << d;
  }
  // Hand value: x + y = (3, 4) -> (3, 4) / sqrt(12.5 + eps).
  const auto got = fused::add_rms_norm(torch::tensor({{1.0f, 1.0f}}), torch::tensor({{2.0f, 3.0f}}), 1e-5);
  EXPECT_NEAR(got[0][1].item<float>(), 4.0 / std::sqrt(12.5 + 1e-5), 1e-6);
}

TEST(FusedKernels, TransposedNormMatchesTheComposition) {
  torch::manual_seed(2);
  for (const auto& [s, d] : std::vector<std::pair<int64_t, int64_t>>{{81, 64}, {16, 32}, {9, 33}, {36, 1}, {5, 70}}) {
    const auto x = torch::randn({3, s, d}) * 2.0;
    const auto y_t = torch::randn({3, d, s});
    torch::NoGradGuard no_grad;
    const auto expected = rms_norm(x.transpose(1, 2) + y_t, 1e-5).transpose(1, 2);
    const auto got = fused::add_rms_norm_transposed(x, y_t, 1e-5);
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_LT(max_rel(got, expected), 2e-6) << "S " << s << " D " << d;
    const auto xb = x.to(torch::kBFloat16), yb = y_t.to(torch::kBFloat16);
    const auto eb = rms_norm(xb.transpose(1, 2) + yb, 1e-5).transpose(1, 2);
    EXPECT_LE(max_rel(fused::add_rms_norm_transposed(xb, yb, 1e-5), eb), 1.01 * kBf16Ulp) << "S " << s << " D " << d;
  }
  EXPECT_THROW(fused::add_rms_norm_transposed(torch::zeros({2, 3, 4}), torch::zeros({2, 3, 4}), 1e-5), RuntimeError);
}

TEST(FusedKernels, DampedUpdateMatchesTheComposition) {
  torch::manual_seed(3);
  const auto h = torch::randn({2, 9, 31}), u = torch::randn({2, 9, 31}), noise = torch::randn({2, 9, 31});
  torch::NoGradGuard no_grad;
  const auto expected = 0.05 * h + 0.95 * u + noise * 0.01;
  EXPECT_LT(max_rel(fused::damped_update(h, u, 0.95, noise, 0.01), expected), 1e-6);
  EXPECT_LT(max_rel(fused::damped_update(h, u, 0.95, at::Tensor(), 0.0), 0.05 * h + 0.95 * u), 1e-6);
  EXPECT_TRUE(fused::damped_update(h, u, 1.0, at::Tensor(), 0.0).is_same(u));  // TRM: the update itself
  // bfloat16 states with float32 noise: one rounding of the float32 result.
  const auto hb = h.to(torch::kBFloat16), ub = u.to(torch::kBFloat16);
  const auto fb = fused::damped_update(hb, ub, 0.95, noise, 0.01);
  const auto exact = (0.05 * hb.to(at::kFloat) + 0.95 * ub.to(at::kFloat) + 0.01 * noise).to(torch::kBFloat16);
  EXPECT_EQ(fb.scalar_type(), torch::kBFloat16);
  EXPECT_LE(max_rel(fb, exact), 1.01 * kBf16Ulp);
  EXPECT_THROW(fused::damped_update(h, u, 0.95, torch::randn({3}), 0.01), RuntimeError);
}

/// Gradients of `f(fused)` w.r.t. `inputs` (copies of `values` in `dtype`) for a random upstream gradient.
std::vector<at::Tensor> grads_of(const std::function<at::Tensor(const std::vector<at::Tensor>&, bool)>& f,
                                 const std::vector<at::Tensor>& values, c10::ScalarType dtype, bool fused,
                                 const at::Tensor& upstream) {
  std::vector<at::Tensor> inputs;
  for (const auto& v : values) inputs.push_back(v.to(dtype).detach().requires_grad_(true));
  const at::Tensor out = f(inputs, fused);
  EXPECT_EQ(out.scalar_type(), dtype);
  out.backward(upstream.to(dtype));
  std::vector<at::Tensor> grads;
  for (const auto& in : inputs) grads.push_back(in.grad());
  return grads;
}

/// Fused gradients equal the composition's in float32 (within float rounding) and, in bfloat16, are no
/// further from a float64 run of the composition than the composition's own bfloat16 gradients.
void expect_gradients_match(const std::function<at::Tensor(const std::vector<at::Tensor>&, bool)>& f,
                            const std::vector<at::Tensor>& values, const at::Tensor& upstream, const char* what) {
  const auto truth = grads_of(f, values, torch::kDouble, false, upstream);
  const auto fused32 = grads_of(f, values, torch::kFloat, true, upstream);
  const auto plain32 = grads_of(f, values, torch::kFloat, false, upstream);
  const auto fused16 = grads_of(f, values, torch::kBFloat16, true, upstream);
  const auto plain16 = grads_of(f, values, torch::kBFloat16, false, upstream);
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_TRUE(fused32[i].defined() && fused16[i].defined()) << what << " input " << i;
    EXPECT_LT(max_rel(fused32[i], plain32[i], 1e-2), 2e-5) << what << " input " << i;
    const double err_fused = (fused16[i].to(torch::kDouble) - truth[i]).abs().mean().item<double>();
    const double err_plain = (plain16[i].to(torch::kDouble) - truth[i]).abs().mean().item<double>();
    EXPECT_LE(err_fused, 1.25 * err_plain + 1e-12) << what << " input " << i << ": fused " << err_fused
                                                   << ", composition " << err_plain;
  }
}

TEST(FusedKernels, GradientsMatchTheCompositions) {
  torch::manual_seed(4);
  expect_gradients_match([](const auto& in, bool f) { return fused::swiglu(in[0], f); },
                         {torch::randn({6, 2 * 40}) * 3.0}, torch::randn({6, 40}), "swiglu");
  expect_gradients_match([](const auto& in, bool f) { return fused::add_rms_norm(in[0], in[1], 1e-5, f); },
                         {torch::randn({5, 7, 37}), torch::randn({5, 7, 37})}, torch::randn({5, 7, 37}),
                         "add_rms_norm");
  expect_gradients_match(
      [](const auto& in, bool f) { return fused::add_rms_norm_transposed(in[0], in[1], 1e-5, f); },
      {torch::randn({3, 21, 35}), torch::randn({3, 35, 21})}, torch::randn({3, 21, 35}), "add_rms_norm_transposed");
  const auto noise = torch::randn({4, 9, 10});
  expect_gradients_match([&](const auto& in, bool f) { return fused::damped_update(in[0], in[1], 0.9, noise, 0.01, f); },
                         {torch::randn({4, 9, 10}), torch::randn({4, 9, 10})}, torch::randn({4, 9, 10}),
                         "damped_update");
}

TEST(FusedKernels, SameForwardWithAndWithoutGrad) {
  // Gradient checkpointing recomputes with grad what it computed without: the values must be identical.
  torch::manual_seed(7);
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const auto x = torch::randn({3, 11, 24}).to(dtype), y = torch::randn({3, 24, 11}).to(dtype);
    const auto a = fused::add_rms_norm_transposed(x, y, 1e-5);
    const auto b = fused::add_rms_norm_transposed(x.detach().requires_grad_(true), y, 1e-5);
    EXPECT_TRUE(b.requires_grad());
    EXPECT_TRUE(torch::equal(a, b.detach()));
  }
  const auto x = torch::randn({2, 5, 8});
  EXPECT_TRUE(fused::kernel_applies(x, true));
  EXPECT_FALSE(fused::kernel_applies(x, false));
  EXPECT_FALSE(fused::kernel_applies(x.to(torch::kDouble), true));  // float64: the composition
  EXPECT_FALSE(fused::kernel_applies(x.to(torch::kHalf), true));
}

TEST(FusedKernels, WeightCastScopeCastsOnceAndKeepsGradients) {
  torch::manual_seed(5);
  CastedLinear lin(CastedLinearOptions(8, 4));
  const auto x = torch::randn({3, 8}).to(torch::kBFloat16);
  const auto plain = lin->forward(x);
  {
    WeightCastScope scope(*lin, torch::kBFloat16);
    {
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(lin->forward(x), plain));  // the same bfloat16 weights, from the cache
    }
    lin->forward(x).to(torch::kFloat).sum().backward();  // grad needed: cast at the call, as unscoped
  }
  ASSERT_TRUE(lin->weight.grad().defined());  // the gradient reached the float32 parameter
  const auto grad_scoped = lin->weight.grad().clone();
  lin->weight.mutable_grad() = at::Tensor();
  lin->forward(x).to(torch::kFloat).sum().backward();
  EXPECT_TRUE(torch::equal(lin->weight.grad(), grad_scoped));
  {
    WeightCastScope scope(*lin, torch::kFloat);  // float32: nothing cached (the cast is free)
    EXPECT_TRUE(torch::equal(lin->forward(x.to(torch::kFloat)),
                             linear(x.to(torch::kFloat), lin->weight, at::Tensor(), lin->options.cpu_gemm())));
  }
}

TEST(CpuGemm, CastedLinearTakesTheConfiguredGemm) {
  CastedLinear lin(CastedLinearOptions(8, 4).bias(true).cpu_gemm(CpuGemm::kTorch));
  const auto x = torch::randn({3, 8});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(lin->forward(x), at::linear(x, lin->weight, lin->bias)));
  lin->options.cpu_gemm(CpuGemm::kAuto);
  EXPECT_TRUE(torch::allclose(lin->forward(x), at::linear(x, lin->weight, lin->bias), 1e-5, 1e-5));
}

/// The block and the module with fused kernels on and off: float32 outputs agree within rounding; in
/// bfloat16 both are compared with a float64 run of the same module, and the fused path must be no
/// further from it than the unfused one (plus a quarter ulp of slack for the luck of single roundings).
TEST(FusedKernels, BlockAndModuleAgreeWithTheUnfusedPath) {
  for (const bool mlp_t : {true, false}) {
    auto a = eqr::test::tiny_arch_4x4();
    a.mlp_t = mlp_t;
    a.pos_encodings = "rope2d";
    a.noise_scale = 0.01;
    auto options = ReasoningModuleOptions::from(a);
    torch::manual_seed(6);
    ReasoningModule fused_on(options);
    options.block().fused(false);
    ReasoningModule fused_off(options);
    torch::NoGradGuard no_grad;
    const auto source = fused_on->named_parameters();
    for (auto& p : fused_off->named_parameters()) p.value().copy_(source[p.key()]);
    RotaryEmbedding rope(RotaryEmbeddingOptions(a.hidden_size / a.num_heads, a.seq_len).kind("rope2d")
                             .board_height(4).board_width(4));
    const auto cs = mlp_t ? CosSin{} : rope->forward();
    const auto h = torch::randn({3, 16, 32}), inj = torch::randn({3, 16, 32});
    const auto run = [&](ReasoningModule& m, c10::ScalarType dtype) {
      auto gen = make_generator(c10::Device(c10::kCPU), 9);
      return m->forward(h.to(dtype), inj.to(dtype), cs, gen);
    };
    const auto truth = run(fused_off, torch::kDouble);
    const auto on32 = run(fused_on, torch::kFloat), off32 = run(fused_off, torch::kFloat);
    EXPECT_LT(max_rel(on32, off32, 1e-1), 1e-5) << "mlp_t " << mlp_t;
    const auto on16 = run(fused_on, torch::kBFloat16), off16 = run(fused_off, torch::kBFloat16);
    EXPECT_EQ(on16.scalar_type(), torch::kBFloat16);
    const double err_on = (on16.to(torch::kDouble) - truth).abs().mean().item<double>();
    const double err_off = (off16.to(torch::kDouble) - truth).abs().mean().item<double>();
    EXPECT_LE(err_on, err_off * 1.25) << "mlp_t " << mlp_t << ": mean |fused - float64| " << err_on
                                     << ", unfused " << err_off;
  }
}

}  // namespace
}  // namespace eqr::model
