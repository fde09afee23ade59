// One supervision step (reference/eqr_spec.md §1.6-1.8, §5): shapes, residual, truncated backprop (gradients
// only through the last latent recursion), noise in every L_level call (also without grad and in eval),
// seeding, the reset of halted rows and their data, fresh / fixed initial states, the feed-forward variant.

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fixtures.h"
#include "eqr/core/error.h"
#include "eqr/dynamics/carry.h"
#include "eqr/dynamics/step.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/init.h"

namespace eqr::dynamics {
namespace {

constexpr int64_t kS = 16;
constexpr int64_t kD = 32;
constexpr int64_t kV = 6;

config::ArchConfig tiny_arch() { return eqr::test::tiny_arch_4x4(); }  // S 16, D 32, V 6

model::EqrModel make_model(const config::ArchConfig& a, uint64_t seed = 0) {
  torch::manual_seed(seed);
  return model::EqrModel(model::EqrModelOptions(a, eqr::test::cpu_float32_compute()));
}

Batch make_batch(int64_t b, uint64_t seed) { return eqr::test::tiny_batch_4x4(b, seed); }

/// A carry whose rows are all running (not halted) with given random states and data.
Carry running_carry(model::EqrModel& m, const Batch& batch, uint64_t seed) {
  Carry c = initial_carry(m, batch);
  auto g = model::make_generator(torch::kCPU, seed);
  c.z_h = model::randn({batch.size(), kS, kD}, torch::kFloat, g);
  c.z_l = model::randn({batch.size(), kS, kD}, torch::kFloat, g);
  c.halted = torch::zeros({batch.size()}, torch::kBool);
  c.steps = torch::full({batch.size()}, 3, torch::kInt);
  c.data = batch;
  return c;
}

std::vector<torch::Tensor> grads(model::EqrModel& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m->parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return out;
}

void zero_grads(model::EqrModel& m) {
  for (auto& p : m->parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& q_halt) {
  return logits.to(torch::kFloat).square().mean() + q_halt.sum();
}

TEST(Step, ShapesDtypesCountersAndResidual) {
  auto m = make_model(tiny_arch());
  const Batch batch = make_batch(4, 1);
  const Carry c0 = initial_carry(m, batch);
  EXPECT_TRUE(c0.halted.all().item<bool>());
  EXPECT_EQ(c0.steps.scalar_type(), torch::kInt);
  auto g = model::make_generator(torch::kCPU, 2);
  const StepOutput out = step(m, c0, batch, g);
  EXPECT_EQ(out.logits.sizes(), torch::IntArrayRef({4, kS, kV}));
  EXPECT_EQ(out.q_halt_logits.sizes(), torch::IntArrayRef({4}));
  EXPECT_EQ(out.q_halt_logits.scalar_type(), torch::kFloat);
  EXPECT_EQ(out.residual.sizes(), torch::IntArrayRef({4}));
  EXPECT_EQ(out.carry.z_h.sizes(), torch::IntArrayRef({4, kS, kD}));
  EXPECT_FALSE(out.carry.z_h.requires_grad());
  EXPECT_FALSE(out.carry.z_l.requires_grad());
  EXPECT_TRUE(out.logits.requires_grad());
  EXPECT_TRUE(torch::equal(out.carry.steps, torch::ones({4}, torch::kInt)));
  EXPECT_FALSE(out.carry.halted.any().item<bool>());
  // First step: every row loaded the batch.
  EXPECT_TRUE(torch::equal(out.carry.data.inputs, batch.inputs));
  EXPECT_TRUE(torch::equal(out.carry.data.labels, batch.labels));
  // Residual: per-row L2 norm of concat(z_H, z_L) after minus before (before = the carry passed in).
  const auto after = torch::cat({out.carry.z_h, out.carry.z_l}, 1);
  const auto before = torch::cat({c0.z_h, c0.z_l}, 1);
  const auto expected = (after - before).flatten(1).norm(2, 1);
  EXPECT_TRUE(torch::allclose(out.residual, expected, 1e-5, 1e-5));
  // A second step continues: steps 2, residual measured from step 1's states.
  const StepOutput out2 = step(m, out.carry, make_batch(4, 9), g);
  EXPECT_TRUE(torch::equal(out2.carry.steps, torch::full({4}, 2, torch::kInt)));
  EXPECT_TRUE(torch::equal(out2.carry.data.inputs, batch.inputs));  // running rows keep their puzzle
  const auto after2 = torch::cat({out2.carry.z_h, out2.carry.z_l}, 1);
  EXPECT_TRUE(torch::allclose(out2.residual, (after2 - after).flatten(1).norm(2, 1), 1e-5, 1e-5));
}

TEST(Step, GradientsFlowOnlyThroughTheLastLatentRecursion) {
  auto a = tiny_arch();
  a.noise_scale = 0.0;  // deterministic, so runs can be compared
  auto m = make_model(a);
  const Batch batch = make_batch(3, 3);
  const Carry c = running_carry(m, batch, 4);

  const StepOutput out = step(m, c, batch);
  loss_of(out.logits, out.q_halt_logits).backward();
  const auto g_step = grads(m);

  // Manual: h_cycles - 1 = 2 latent recursions without grad, then one with grad.
  zero_grads(m);
  const auto x = m->embed(batch.inputs);
  const auto cs = m->cos_sin();
  torch::Tensor z_h = c.z_h;
  torch::Tensor z_l = c.z_l;
  {
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 2; ++i) std::tie(z_h, z_l) = latent_recursion(m, z_h, z_l, x, cs);
  }
  EXPECT_FALSE(z_h.requires_grad());
  std::tie(z_h, z_l) = latent_recursion(m, z_h, z_l, x, cs);
  loss_of(m->lm_logits(z_h), m->q_logits(z_h).select(1, 0)).backward();
  const auto g_manual = grads(m);

  // Full backprop through all 3 recursions gives different gradients (the truncation matters).
  zero_grads(m);
  z_h = c.z_h;
  z_l = c.z_l;
  const auto x_full = m->embed(batch.inputs);
  for (int i = 0; i < 3; ++i) std::tie(z_h, z_l) = latent_recursion(m, z_h, z_l, x_full, cs);
  loss_of(m->lm_logits(z_h), m->q_logits(z_h).select(1, 0)).backward();
  const auto g_full = grads(m);

  const auto names = m->named_parameters().keys();
  bool any_block_differs = false;
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_TRUE(torch::allclose(g_step[i], g_manual[i], 1e-5, 1e-6)) << names[i];
    if (names[i].rfind("L_level.", 0) == 0 && !torch::allclose(g_step[i], g_full[i], 1e-4, 1e-6)) any_block_differs = true;
  }
  EXPECT_TRUE(any_block_differs);
  // The embedding gets gradient (through the last recursion), and so do lm_head and q_head.
  const auto p = m->named_parameters();
  EXPECT_GT(p["embed_tokens.embedding_weight"].grad().abs().sum().item<double>(), 0.0);
  (void)p;
  EXPECT_GT(g_step[1].abs().sum().item<double>(), 0.0);  // lm_head
  EXPECT_GT(g_step[3].abs().sum().item<double>(), 0.0);  // q_head.bias
}

TEST(Step, NoiseZeroIsDeterministicAndSeedsReproduce) {
  auto quiet_arch = tiny_arch();
  quiet_arch.noise_scale = 0.0;
  auto quiet = make_model(quiet_arch);
  const Batch batch = make_batch(2, 5);
  const Carry c = running_carry(quiet, batch, 6);
  const StepOutput q = step(quiet, c, batch);
  {
    // The same step written out from the spec with the module's own pieces (no dynamics code): h_cycles
    // latent recursions of l_cycles z_L updates and one z_H update, each the damped update
    // (1 - lambda) h + lambda stack(h + u) with no noise term.
    torch::NoGradGuard no_grad;
    const double lam = quiet_arch.lambda;
    const auto cs = quiet->cos_sin();
    const auto update = [&](const torch::Tensor& h, const torch::Tensor& u) {
      return (1.0 - lam) * h + lam * quiet->L_level->stack(h + u, cs);
    };
    const auto x = quiet->embed(batch.inputs);
    torch::Tensor z_h = c.z_h, z_l = c.z_l;
    for (int64_t i = 0; i < quiet_arch.h_cycles; ++i) {
      for (int64_t j = 0; j < quiet_arch.l_cycles; ++j) z_l = update(z_l, z_h + x);
      z_h = update(z_h, z_l);
    }
    EXPECT_TRUE(torch::allclose(q.carry.z_h, z_h, 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(q.carry.z_l, z_l, 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(q.logits.to(torch::kFloat), quiet->lm_logits(z_h).to(torch::kFloat), 1e-4, 1e-5));
  }
  // And with noise 0 a generator is not consulted: any seed gives the same step.
  auto g0 = model::make_generator(torch::kCPU, 99);
  EXPECT_TRUE(torch::equal(q.logits, step(quiet, c, batch, g0).logits));

  auto noisy = make_model(tiny_arch());
  const auto run = [&](uint64_t seed) {
    auto g = model::make_generator(torch::kCPU, seed);
    return step(noisy, c, batch, g);
  };
  const auto a = run(10);
  const auto b = run(10);
  const auto d = run(11);
  EXPECT_TRUE(torch::equal(a.logits, b.logits));
  EXPECT_TRUE(torch::equal(a.carry.z_l, b.carry.z_l));
  EXPECT_FALSE(torch::equal(a.logits, d.logits));
}

TEST(Step, NoiseIsDrawnInEveryLLevelCallIncludingNoGradCyclesAndEval) {
  auto a = tiny_arch();
  a.init = config::StateInit::kFixed;  // no random draws for states; rows are running anyway
  auto m = make_model(a);
  m->eval();
  torch::NoGradGuard no_grad;
  const Batch batch = make_batch(2, 7);
  const Carry c = running_carry(m, batch, 8);
  auto g1 = model::make_generator(torch::kCPU, 20);
  const auto out = step(m, c, batch, g1);
  // The step consumed exactly h_cycles * (l_cycles + 1) noise draws of (B, S, D): the generator is now
  // where a fresh one is after that many draws.
  auto g2 = model::make_generator(torch::kCPU, 20);
  for (int i = 0; i < 3 * (2 + 1); ++i) model::randn({2, kS, kD}, torch::kFloat, g2);
  EXPECT_TRUE(torch::equal(model::randn({8}, torch::kFloat, g1), model::randn({8}, torch::kFloat, g2)));
  // And the noise changes the result of an eval-mode, no-grad step.
  auto g3 = model::make_generator(torch::kCPU, 21);
  EXPECT_FALSE(torch::equal(out.carry.z_h, step(m, c, batch, g3).carry.z_h));
}

TEST(Reset, OnlyHaltedRowsTakeFreshStatesAndNewData) {
  auto m = make_model(tiny_arch());
  const Batch old_batch = make_batch(4, 11);
  Carry c = running_carry(m, old_batch, 12);
  c.z_h.fill_(7.0);
  c.z_l.fill_(-7.0);
  c.halted = torch::tensor({true, false, true, false});
  c.steps = torch::tensor({16, 4, 2, 9}, torch::kInt);
  const Batch new_batch = make_batch(4, 13);
  auto g = model::make_generator(torch::kCPU, 14);
  const Carry r = reset_halted(m, c, new_batch, g);
  EXPECT_TRUE(torch::equal(r.steps, torch::tensor({0, 4, 0, 9}, torch::kInt)));
  EXPECT_FALSE(r.halted.any().item<bool>());
  for (int row : {1, 3}) {  // running: states and data kept, the new batch row discarded
    EXPECT_TRUE(torch::equal(r.z_h[row], c.z_h[row])) << row;
    EXPECT_TRUE(torch::equal(r.z_l[row], c.z_l[row])) << row;
    EXPECT_TRUE(torch::equal(r.data.inputs[row], old_batch.inputs[row])) << row;
    EXPECT_TRUE(torch::equal(r.data.labels[row], old_batch.labels[row])) << row;
    EXPECT_EQ(r.data.puzzle_identifiers[row].item<int>(), old_batch.puzzle_identifiers[row].item<int>());
  }
  for (int row : {0, 2}) {  // halted: fresh per-element random states, new data
    EXPECT_LT(r.z_h[row].abs().max().item<double>(), 2.0 * model::compensated_std(1.0) + 1e-6) << row;
    EXPECT_NEAR(r.z_h[row].std().item<double>(), 1.0, 0.1) << row;
    EXPECT_FALSE(torch::equal(r.z_h[row][0], r.z_h[row][1])) << "per token, not broadcast";
    EXPECT_FALSE(torch::equal(r.z_h[row], r.z_l[row]));
    EXPECT_TRUE(torch::equal(r.data.inputs[row], new_batch.inputs[row])) << row;
    EXPECT_TRUE(torch::equal(r.data.labels[row], new_batch.labels[row])) << row;
    EXPECT_EQ(r.data.puzzle_identifiers[row].item<int>(), new_batch.puzzle_identifiers[row].item<int>());
  }
  // The input carry is untouched.
  EXPECT_TRUE(torch::equal(c.z_h, torch::full_like(c.z_h, 7.0)));
  // step() applies the same reset: running rows keep their puzzle.
  const StepOutput out = step(m, c, new_batch, g);
  EXPECT_TRUE(torch::equal(out.carry.data.inputs[1], old_batch.inputs[1]));
  EXPECT_TRUE(torch::equal(out.carry.data.inputs[0], new_batch.inputs[0]));
  EXPECT_TRUE(torch::equal(out.carry.steps, torch::tensor({1, 5, 1, 10}, torch::kInt)));
}

TEST(Reset, RandomStatesUseTheConfiguredStdsAndFixedStatesBroadcastTheBuffers) {
  auto a = tiny_arch();
  a.h_init_std = 0.5;
  a.l_init_std = 2.0;
  auto m = make_model(a);
  auto g = model::make_generator(torch::kCPU, 15);
  const auto [h, l] = initial_states(m, 64, g);
  EXPECT_EQ(h.sizes(), torch::IntArrayRef({64, kS, kD}));
  EXPECT_NEAR(h.std().item<double>(), 0.5, 0.01);
  EXPECT_NEAR(l.std().item<double>(), 2.0, 0.04);
  EXPECT_LE(h.abs().max().item<double>(), 2.0 * model::compensated_std(0.5) + 1e-6);

  a.variant = config::Variant::kTrm;
  a.lambda = 1.0;
  a.noise_scale = 0.0;
  a.init = config::StateInit::kFixed;
  auto t = make_model(a);
  const auto [fh, fl] = initial_states(t, 3, g);
  EXPECT_TRUE(torch::equal(fh, t->H_init.view({1, 1, kD}).expand({3, kS, kD})));
  EXPECT_TRUE(torch::equal(fl, t->L_init.view({1, 1, kD}).expand({3, kS, kD})));
}

TEST(Step, FeedforwardVariantRestartsFromAFreshStateEveryStep) {
  auto a = tiny_arch();
  a.noise_scale = 0.0;
  a.init = config::StateInit::kFixed;  // fresh state = the same buffers every time
  a.variant = config::Variant::kFeedforward;
  auto ff = make_model(a, 3);
  const Batch batch = make_batch(2, 16);
  const StepOutput s1 = step(ff, initial_carry(ff, batch), batch);
  const StepOutput s2 = step(ff, s1.carry, batch);
  EXPECT_TRUE(torch::equal(s1.logits, s2.logits));  // no recurrence carried across steps
  EXPECT_TRUE(torch::equal(s2.carry.steps, torch::full({2}, 2, torch::kInt)));

  a.variant = config::Variant::kEqr;
  auto eqr = make_model(a, 3);
  const StepOutput e1 = step(eqr, initial_carry(eqr, batch), batch);
  EXPECT_TRUE(torch::equal(e1.logits, s1.logits));  // same weights, same first step
  EXPECT_FALSE(torch::equal(step(eqr, e1.carry, batch).logits, e1.logits));
}

TEST(Step, AttentionVariantWithRope2dRuns) {
  auto a = tiny_arch();
  a.mlp_t = false;
  a.pos_encodings = "rope2d";
  a.h_cycles = 2;
  a.l_cycles = 1;
  auto m = make_model(a);
  const Batch batch = make_batch(2, 17);
  const StepOutput out = step(m, initial_carry(m, batch), batch);
  EXPECT_EQ(out.logits.sizes(), torch::IntArrayRef({2, kS, kV}));
  EXPECT_TRUE(torch::isfinite(out.logits).all().item<bool>());
}

TEST(Step, RejectsMismatchedBatches) {
  auto m = make_model(tiny_arch());
  const Batch batch = make_batch(4, 18);
  const Carry c = initial_carry(m, batch);
  EXPECT_THROW(step(m, c, make_batch(3, 19)), RuntimeError);
  Batch bad = batch;
  bad.inputs = torch::zeros({4, kS + 1}, torch::kLong);
  EXPECT_THROW(step(m, c, bad), RuntimeError);
  // Inference without labels: labels stay undefined.
  Batch no_labels{batch.inputs, {}, {}};
  const StepOutput out = step(m, initial_carry(m, no_labels), no_labels);
  EXPECT_FALSE(out.carry.data.labels.defined());
}

}  // namespace
}  // namespace eqr::dynamics
