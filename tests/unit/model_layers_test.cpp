// Layers (reference/eqr_spec.md §1.2-1.5): hand-computed rms_norm, SwiGLU sizes and formula, rotate_half,
// 1-D / 2-D RoPE, attention against a hand computation, the post-norm block (token-axis norm of mlp_t),
// and the damped noisy module.

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/model/init.h"
#include "eqr/model/layers.h"
#include "eqr/model/reasoning_block.h"
#include "eqr/model/reasoning_module.h"

namespace eqr::model {
namespace {

void zero_parameters(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.zero_();
}

TEST(RmsNorm, HandComputedOverTheLastAxis) {
  const auto x = torch::tensor({{3.0, 4.0}, {1.0, -1.0}}, torch::kDouble);
  const auto y = rms_norm(x, 1e-5);
  EXPECT_NEAR(y[0][0].item<double>(), 3.0 / std::sqrt(12.5 + 1e-5), 1e-7);
  EXPECT_NEAR(y[0][1].item<double>(), 4.0 / std::sqrt(12.5 + 1e-5), 1e-7);
  EXPECT_NEAR(y[1][1].item<double>(), -1.0 / std::sqrt(1.0 + 1e-5), 1e-7);
  // Computed in float32, returned in the input dtype.
  EXPECT_EQ(y.scalar_type(), torch::kDouble);
  EXPECT_EQ(rms_norm(x.to(torch::kBFloat16), 1e-5).scalar_type(), torch::kBFloat16);
}

TEST(SwiGLU, IntermediateSizeRule) {
  EXPECT_EQ(swiglu_intermediate_size(512, 4.0), 1536);  // round(1365.33) = 1365 -> 1536
  EXPECT_EQ(swiglu_intermediate_size(81, 4.0), 256);    // round(216) -> 256
  EXPECT_EQ(swiglu_intermediate_size(128, 4.0), 512);   // round(341.33) -> 512
  EXPECT_EQ(swiglu_intermediate_size(16, 4.0), 256);
  // Python's round ties to even: 0.75 * 513 * 2 / 3 = 256.5 -> 256 (half-up would give 257 -> 512).
  EXPECT_EQ(swiglu_intermediate_size(513, 0.75), 256);
}

TEST(SwiGLU, ShapesNamesAndFormula) {
  torch::manual_seed(0);
  SwiGLU mlp(SwiGLUOptions(8, 4.0));
  EXPECT_EQ(mlp->intermediate_size(), 256);
  const auto params = mlp->named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params["gate_up_proj.weight"].sizes(), torch::IntArrayRef({512, 8}));
  EXPECT_EQ(params["down_proj.weight"].sizes(), torch::IntArrayRef({8, 256}));
  const auto x = torch::randn({3, 8});
  const auto gu = torch::matmul(x, params["gate_up_proj.weight"].t());
  const auto gate = gu.narrow(1, 0, 256);  // first half = gate
  const auto up = gu.narrow(1, 256, 256);
  const auto expected = torch::matmul(gate * torch::sigmoid(gate) * up, params["down_proj.weight"].t());
  EXPECT_TRUE(torch::allclose(mlp->forward(x), expected, 1e-5, 1e-5));
}

TEST(CastedLinear, InitStdCastAndBias) {
  torch::manual_seed(1);
  CastedLinear lin(CastedLinearOptions(400, 300).bias(true));
  EXPECT_NEAR(lin->weight.std().item<double>(), 1.0 / 20.0, 0.002);
  EXPECT_TRUE(torch::equal(lin->bias, torch::zeros({300})));
  EXPECT_EQ(lin->weight.scalar_type(), torch::kFloat);
  const auto y = lin->forward(torch::randn({2, 400}).to(torch::kDouble));
  EXPECT_EQ(y.scalar_type(), torch::kDouble);
  EXPECT_THROW(lin->forward(torch::randn({2, 399})), RuntimeError);
}

TEST(Rope, RotateHalfIsNeoXStyle) {
  const auto x = torch::tensor({1.0, 2.0, 3.0, 4.0});
  EXPECT_TRUE(torch::equal(rotate_half(x), torch::tensor({-3.0, -4.0, 1.0, 2.0})));
}

TEST(Rope, OneDimensionalHandComputed) {
  // hd 4, theta 10000: inv_freq = [1, 0.01]; angles at position p = [p, 0.01p, p, 0.01p].
  RotaryEmbedding rope(RotaryEmbeddingOptions(4, 3));
  const CosSin cs = rope->forward();
  ASSERT_EQ(cs.cos.sizes(), torch::IntArrayRef({3, 4}));
  EXPECT_FALSE(cs.is_2d());
  // x: (B=1, S=3, H=1, hd=4); channel 0 set at every position, channel 1 at position 2 only.
  auto x = torch::zeros({1, 3, 1, 4});
  x.index_put_({0, torch::indexing::Slice(), 0, 0}, 1.0);
  x.index_put_({0, 2, 0, 1}, 1.0);
  const auto y = apply_rope(x, cs);
  for (int p = 0; p < 3; ++p) {
    EXPECT_NEAR(y[0][p][0][0].item<double>(), std::cos(p), 1e-6);
    EXPECT_NEAR(y[0][p][0][2].item<double>(), std::sin(p), 1e-6);
  }
  // Channel 1 pairs with channel 3 at frequency 0.01.
  EXPECT_NEAR(y[0][2][0][1].item<double>(), std::cos(0.02) + 0.0, 1e-6);
  EXPECT_NEAR(y[0][2][0][3].item<double>(), std::sin(0.02), 1e-6);
  // Upcast to float32 and back: dtype preserved.
  EXPECT_EQ(apply_rope(x.to(torch::kBFloat16), cs).scalar_type(), torch::kBFloat16);
}

TEST(Rope, TwoDimensionalRowsThenColumns) {
  // hd 8 on a 2x2 board: first 4 channels rotate by row, last 4 by column (each half: inv_freq [1, 0.01]).
  RotaryEmbedding rope(RotaryEmbeddingOptions(8, 4).kind("rope2d").board_height(2).board_width(2));
  const CosSin cs = rope->forward();
  ASSERT_TRUE(cs.is_2d());
  auto x = torch::zeros({1, 4, 1, 8});
  x.index_put_({0, torch::indexing::Slice(), 0, 0}, 1.0);  // row half
  x.index_put_({0, torch::indexing::Slice(), 0, 4}, 1.0);  // column half
  const auto y = apply_rope(x, cs);
  for (int token = 0; token < 4; ++token) {
    const int row = token / 2;
    const int col = token % 2;
    EXPECT_NEAR(y[0][token][0][0].item<double>(), std::cos(row), 1e-6) << token;
    EXPECT_NEAR(y[0][token][0][2].item<double>(), std::sin(row), 1e-6) << token;
    EXPECT_NEAR(y[0][token][0][4].item<double>(), std::cos(col), 1e-6) << token;
    EXPECT_NEAR(y[0][token][0][6].item<double>(), std::sin(col), 1e-6) << token;
  }
  EXPECT_THROW(RotaryEmbedding(RotaryEmbeddingOptions(8, 5).kind("rope2d").board_height(2).board_width(2)),
               ConfigError);
}

TEST(Attention, MathKernelMatchesAHandComputation) {
  // B=1, H=1, S=2, hd=2; scale 1/sqrt(2).
  const auto q = torch::tensor({1.0, 0.0, 0.0, 2.0}, torch::kDouble).view({1, 1, 2, 2});
  const auto k = torch::tensor({1.0, 1.0, -1.0, 0.5}, torch::kDouble).view({1, 1, 2, 2});
  const auto v = torch::tensor({1.0, 2.0, 3.0, -4.0}, torch::kDouble).view({1, 1, 2, 2});
  const auto y = scaled_dot_product_attention(q, k, v, AttentionKernel::kMath);
  const double s = 1.0 / std::sqrt(2.0);
  // Query 0: scores [1, -1] * s; query 1: [2, 1] * s.
  const double a0 = std::exp(s) / (std::exp(s) + std::exp(-s));
  const double a1 = std::exp(2 * s) / (std::exp(2 * s) + std::exp(s));
  EXPECT_NEAR(y[0][0][0][0].item<double>(), a0 * 1 + (1 - a0) * 3, 1e-6);
  EXPECT_NEAR(y[0][0][0][1].item<double>(), a0 * 2 + (1 - a0) * -4, 1e-6);
  EXPECT_NEAR(y[0][0][1][0].item<double>(), a1 * 1 + (1 - a1) * 3, 1e-6);
  EXPECT_NEAR(y[0][0][1][1].item<double>(), a1 * 2 + (1 - a1) * -4, 1e-6);
}

TEST(Attention, FusedKernelEqualsMathKernel) {
  if (!have_fused_attention()) {
    EXPECT_THROW(scaled_dot_product_attention(torch::zeros({1, 1, 2, 2}), torch::zeros({1, 1, 2, 2}),
                                              torch::zeros({1, 1, 2, 2}), AttentionKernel::kFused),
                 RuntimeError);
    GTEST_SKIP() << "LibTorch 1.x has no scaled_dot_product_attention; the math kernel is used";
  }
  torch::manual_seed(3);
  const auto q = torch::randn({2, 4, 16, 8});
  const auto k = torch::randn({2, 4, 16, 8});
  const auto v = torch::randn({2, 4, 16, 8});
  EXPECT_TRUE(torch::allclose(scaled_dot_product_attention(q, k, v, AttentionKernel::kFused),
                              scaled_dot_product_attention(q, k, v, AttentionKernel::kMath), 1e-5, 1e-5));
}

TEST(Attention, ModuleShapesNamesAndQkvSplit) {
  torch::manual_seed(4);
  Attention attn(AttentionOptions(16, 4).kernel(AttentionKernel::kMath));
  const auto params = attn->named_parameters();
  EXPECT_EQ(params["qkv_proj.weight"].sizes(), torch::IntArrayRef({48, 16}));
  EXPECT_EQ(params["o_proj.weight"].sizes(), torch::IntArrayRef({16, 16}));
  const auto h = torch::randn({2, 5, 16});
  const auto y = attn->forward(h);
  ASSERT_EQ(y.sizes(), torch::IntArrayRef({2, 5, 16}));
  // Manual: q = first H heads, k = next H, v = last H of the qkv projection.
  const auto qkv = torch::matmul(h, params["qkv_proj.weight"].t()).view({2, 5, 12, 4});
  const auto perm = [](const torch::Tensor& t) { return t.permute({0, 2, 1, 3}); };
  const auto q = perm(qkv.narrow(2, 0, 4));
  const auto k = perm(qkv.narrow(2, 4, 4));
  const auto v = perm(qkv.narrow(2, 8, 4));
  const auto probs = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / 2.0, -1);
  const auto o = perm(torch::matmul(probs, v)).reshape({2, 5, 16});
  EXPECT_TRUE(torch::allclose(y, torch::matmul(o, params["o_proj.weight"].t()), 1e-5, 1e-5));
}

TEST(ReasoningBlock, MlpTNormalisesOverTheTokenAxis) {
  // With zero weights both SwiGLUs output 0, so block(h) = rms_norm_D(rms_norm_S(h)).
  ReasoningBlock block(ReasoningBlockOptions(6, 4).mlp_t(true));
  zero_parameters(*block);
  torch::manual_seed(5);
  const auto h = torch::randn({2, 4, 6}) * 3.0;
  const auto token_normed = rms_norm(h.transpose(1, 2), 1e-5).transpose(1, 2);
  EXPECT_TRUE(torch::allclose(block->forward(h), rms_norm(token_normed, 1e-5), 1e-5, 1e-6));
  // Not the same as normalising over D only.
  EXPECT_FALSE(torch::allclose(block->forward(h), rms_norm(h, 1e-5), 1e-3, 1e-3));
  const auto names = block->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"mlp_t.gate_up_proj.weight", "mlp_t.down_proj.weight",
                                             "mlp.gate_up_proj.weight", "mlp.down_proj.weight"}));
  EXPECT_THROW(block->forward(torch::randn({2, 5, 6})), RuntimeError);
}

TEST(ReasoningBlock, AttentionVariantIsPostNorm) {
  ReasoningBlock block(ReasoningBlockOptions(8, 4).mlp_t(false).num_heads(2));
  const auto names = block->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"self_attn.qkv_proj.weight", "self_attn.o_proj.weight",
                                             "mlp.gate_up_proj.weight", "mlp.down_proj.weight"}));
  // Each sublayer ends in rms_norm over D: output rows have unit RMS.
  torch::manual_seed(6);
  const auto y = block->forward(torch::randn({3, 4, 8}) * 5.0);
  EXPECT_TRUE(torch::allclose(y.square().mean(-1), torch::ones({3, 4}), 1e-4, 1e-4));
}

ReasoningModuleOptions tiny_module(double lambda, double noise) {
  return ReasoningModuleOptions(ReasoningBlockOptions(6, 4).mlp_t(true)).l_layers(2).lambda(lambda).noise_scale(noise);
}

TEST(ReasoningModule, DampedUpdateOnAHandExample) {
  ReasoningModule module(tiny_module(0.5, 0.0));
  zero_parameters(*module);
  torch::manual_seed(7);
  const auto h = torch::randn({2, 4, 6});
  const auto u = torch::randn({2, 4, 6});
  // Zero weights: each block is rms_norm_D(rms_norm_S(.)); two blocks.
  const auto block = [](const torch::Tensor& x) {
    return rms_norm(rms_norm(x.transpose(1, 2), 1e-5).transpose(1, 2), 1e-5);
  };
  const auto expected = 0.5 * h + 0.5 * block(block(h + u));
  EXPECT_TRUE(torch::allclose(module->forward(h, u), expected, 1e-5, 1e-6));
  // lambda 1 (TRM): exactly the stack.
  ReasoningModule trm(tiny_module(1.0, 0.0));
  EXPECT_TRUE(torch::equal(trm->forward(h, u), trm->stack(h + u)));
  const auto names = module->named_parameters().keys();
  EXPECT_EQ(names.front(), "layers.0.mlp_t.gate_up_proj.weight");
  EXPECT_EQ(names.back(), "layers.1.mlp.down_proj.weight");
}

TEST(ReasoningModule, NoiseIsAlwaysOnAndSeedable) {
  torch::manual_seed(8);
  ReasoningModule module(tiny_module(1.0, 0.1));
  const auto h = torch::randn({8, 4, 6});
  const auto u = torch::randn({8, 4, 6});
  // In eval mode and without grad the noise is still added, with std noise_scale.
  module->eval();
  torch::NoGradGuard no_grad;
  const auto clean = module->stack(h + u);
  auto g1 = make_generator(torch::kCPU, 11);
  const auto a = module->forward(h, u, {}, g1);
  const auto noise = (a - clean).to(torch::kDouble);
  EXPECT_NEAR(noise.std().item<double>(), 0.1, 0.015);
  EXPECT_NEAR(noise.mean().item<double>(), 0.0, 0.02);
  auto g2 = make_generator(torch::kCPU, 11);
  auto g3 = make_generator(torch::kCPU, 12);
  EXPECT_TRUE(torch::equal(a, module->forward(h, u, {}, g2)));
  EXPECT_FALSE(torch::equal(a, module->forward(h, u, {}, g3)));
  // noise 0: no draw at all. Without a generator the output is the damped update written out from the
  // spec, (1 - lambda) h + lambda stack(h + u), and a generator changes nothing.
  ReasoningModule quiet(tiny_module(0.95, 0.0));
  const auto quiet_out = quiet->forward(h, u);
  EXPECT_TRUE(torch::allclose(quiet_out, 0.05 * h + 0.95 * quiet->stack(h + u), 1e-5, 1e-6));
  auto g4 = make_generator(torch::kCPU, 13);
  EXPECT_TRUE(torch::equal(quiet_out, quiet->forward(h, u, {}, g4)));
}

}  // namespace
}  // namespace eqr::model
