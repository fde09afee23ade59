// bfloat16 against float32 on the CPU (docs/performance.md, "bfloat16 tolerance"): the same weights, states,
// data and path noise (drawn in float32 on the CPU for both dtypes), one L_level call of the noisy EqR
// (token MLP and attention) and of TRM, then the logits. They may differ by at most kLogitTolerance times
// the float32 logits' RMS; the derivation is in the docs, and the measured worst case is printed so that
// a change in the margin shows up in the test log.

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/dynamics/carry.h"
#include "eqr/dynamics/step.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/init.h"
#include "fixtures.h"

namespace eqr::dynamics {
namespace {

/// Tolerance on max |logit_bf16 - logit_fp32| in units of the float32 logits' RMS (docs/performance.md).
constexpr double kLogitTolerance = 0.125;

struct Deviation {
  double max_abs = 0, rms_fp32 = 0;
};

Deviation one_step_deviation(config::ArchConfig a, uint64_t seed) {
  const auto run = [&](bool reduced) {
    config::ComputeConfig compute;
    compute.forward_dtype = "bfloat16";
    compute.reduced_precision_on_cpu = reduced;
    torch::manual_seed(seed);  // identical weights for both dtypes
    model::EqrModel m(model::EqrModelOptions(a, compute));
    const Batch batch = eqr::test::tiny_batch_4x4(16, seed);
    Carry c = initial_carry(m, batch);
    auto g = model::make_generator(torch::kCPU, seed + 1);
    c.z_h = model::randn({16, a.seq_len, a.hidden_size}, torch::kFloat, g).to(m->forward_dtype());
    c.z_l = model::randn({16, a.seq_len, a.hidden_size}, torch::kFloat, g).to(m->forward_dtype());
    c.halted = torch::zeros({16}, torch::kBool);  // no reset: both dtypes start from these very states
    c.steps = torch::ones({16}, torch::kInt);
    c.data = batch;
    torch::NoGradGuard no_grad;
    auto noise = model::make_generator(torch::kCPU, seed + 2);
    return step(m, c, batch, noise).logits.to(torch::kFloat);
  };
  const at::Tensor fp32 = run(false), bf16 = run(true);
  Deviation d;
  d.max_abs = (bf16 - fp32).abs().max().item<double>();
  d.rms_fp32 = fp32.square().mean().sqrt().item<double>();
  return d;
}

void expect_within_tolerance(const config::ArchConfig& a, const char* what) {
  double worst = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const Deviation d = one_step_deviation(a, seed);
    ASSERT_GT(d.rms_fp32, 0.0);
    worst = std::max(worst, d.max_abs / d.rms_fp32);
    EXPECT_LE(d.max_abs, kLogitTolerance * d.rms_fp32) << what << " seed " << seed;
  }
  std::printf("[ bf16 vs fp32 ] %s: worst max|dlogit| / rms(logit) = %.4f (tolerance %.3f)\n", what, worst,
              kLogitTolerance);
}

/// One L_level call per step (h_cycles 1, l_cycles 0): the rounding of one call, before the dynamics of a
/// random (untrained, expansive) network amplify it (docs/performance.md shows the growth with depth).
config::ArchConfig one_call() {
  auto a = eqr::test::tiny_arch_4x4();
  a.h_cycles = 1;
  a.l_cycles = 0;
  return a;
}

TEST(Bf16Precision, EqrOneCallLogitsStayNearFloat32) { expect_within_tolerance(one_call(), "eqr mlp_t"); }

TEST(Bf16Precision, AttentionOneCallLogitsStayNearFloat32) {
  auto a = one_call();
  a.mlp_t = false;
  a.pos_encodings = "rope2d";
  expect_within_tolerance(a, "eqr attention");
}

TEST(Bf16Precision, TrmOneCallLogitsStayNearFloat32) {
  auto a = one_call();
  a.variant = config::Variant::kTrm;
  a.init = config::StateInit::kFixed;
  expect_within_tolerance(a, "trm");
}

}  // namespace
}  // namespace eqr::dynamics

namespace eqr::dynamics {
namespace {

TEST(Bf16Precision, Float32GradCycleOnCpu) {
  auto a = eqr::test::tiny_arch_4x4();
  config::ComputeConfig compute;
  compute.forward_dtype = "bfloat16";
  compute.reduced_precision_on_cpu = true;
  torch::manual_seed(3);
  model::EqrModel m(model::EqrModelOptions(a, compute));
  const Batch batch = eqr::test::tiny_batch_4x4(4, 3);
  const Carry c = initial_carry(m, batch);
  StepOptions mixed;
  mixed.float32_grad_cycle_on_cpu = true;
  auto g = model::make_generator(torch::kCPU, 4);
  const StepOutput out = step(m, c, batch, g, mixed);
  EXPECT_EQ(out.logits.scalar_type(), torch::kFloat);     // the grad cycle and the heads ran in float32
  EXPECT_EQ(out.carry.z_h.scalar_type(), torch::kBFloat16);  // the carry keeps the forward dtype
  EXPECT_EQ(out.carry.z_l.scalar_type(), torch::kBFloat16);
  out.logits.sum().backward();
  EXPECT_TRUE(m->embed_tokens->embedding_weight.grad().defined());
  EXPECT_TRUE(m->L_level->parameters()[0].grad().defined());
  // Without grad (evaluation) the option changes nothing: bfloat16 throughout.
  torch::NoGradGuard no_grad;
  auto g2 = model::make_generator(torch::kCPU, 4);
  EXPECT_EQ(step(m, c, batch, g2, mixed).logits.scalar_type(), torch::kBFloat16);
}

}  // namespace
}  // namespace eqr::dynamics
