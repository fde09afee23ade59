// dynamics::StepOptions: the caller-known resets (Resets::kNone / kAll give exactly what the reset from
// carry.halted gives, including the random draws) and gradient checkpointing of the grad-carrying latent
// recursion (same values, same gradients, same generator stream, a smaller saved graph).
// Shape legend: B batch, S = 16 cells, D = 32 hidden, V = 6 vocab.

#include <functional>
#include <set>
#include <string>
#include <unordered_set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "fixtures.h"
#include "eqr/dynamics/carry.h"
#include "eqr/dynamics/step.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/init.h"

namespace eqr::dynamics {
namespace {

constexpr int64_t kS = 16;
constexpr int64_t kD = 32;
constexpr int64_t kV = 6;

config::ArchConfig tiny_arch(bool mlp_t = true) {
  config::ArchConfig a = eqr::test::tiny_arch_4x4();  // S 16, D 32, V 6
  a.noise_scale = 0.05;  // noise on: the recomputation must replay it
  a.mlp_t = mlp_t;
  if (!mlp_t) a.pos_encodings = "rope2d";
  return a;
}

model::EqrModel make_model(const config::ArchConfig& a, uint64_t seed = 0,
                           const config::ComputeConfig& compute = eqr::test::cpu_float32_compute()) {
  torch::manual_seed(seed);
  model::EqrModel m(model::EqrModelOptions(a, compute));
  torch::NoGradGuard g;
  m->q_head->weight.normal_(0.0, 0.5);  // non-zero, so q_head's input gradient is not trivially zero
  return m;
}

Batch make_batch(int64_t b, uint64_t seed) { return eqr::test::tiny_batch_4x4(b, seed); }

Carry random_carry(model::EqrModel& m, const Batch& batch, uint64_t seed, bool halted) {
  Carry c = initial_carry(m, batch);
  auto g = model::make_generator(torch::kCPU, seed);
  c.z_h = model::randn({batch.size(), kS, kD}, torch::kFloat, g).to(m->forward_dtype());
  c.z_l = model::randn({batch.size(), kS, kD}, torch::kFloat, g).to(m->forward_dtype());
  c.halted = torch::full({batch.size()}, halted, torch::kBool);
  c.steps = torch::full({batch.size()}, 3, torch::kInt);
  c.data = make_batch(batch.size(), seed + 100);
  return c;
}

void expect_same_carry(const Carry& a, const Carry& b) {
  EXPECT_TRUE(torch::equal(a.z_h, b.z_h));
  EXPECT_TRUE(torch::equal(a.z_l, b.z_l));
  EXPECT_TRUE(torch::equal(a.steps, b.steps));
  EXPECT_TRUE(torch::equal(a.halted, b.halted));
  EXPECT_TRUE(torch::equal(a.data.inputs, b.data.inputs));
  EXPECT_TRUE(torch::equal(a.data.labels, b.data.labels));
  EXPECT_TRUE(torch::equal(a.data.puzzle_identifiers, b.data.puzzle_identifiers));
}

/// The next 8 draws of `g` (to compare generator positions).
at::Tensor next_draws(at::Generator& g) { return model::randn({8}, torch::kFloat, g); }

TEST(StepResets, AllAndNoneMatchTheResetFromCarryIncludingRandomDraws) {
  auto m = make_model(tiny_arch());
  const Batch batch = make_batch(4, 1);
  for (bool halted : {true, false}) {
    const Carry c = random_carry(m, batch, 2, halted);
    auto g1 = model::make_generator(torch::kCPU, 3);
    auto g2 = model::make_generator(torch::kCPU, 3);
    const Carry from_carry = reset_halted(m, c, batch, g1, Resets::kFromCarry);
    const Carry told = reset_halted(m, c, batch, g2, halted ? Resets::kAll : Resets::kNone);
    expect_same_carry(from_carry, told);
    EXPECT_TRUE(torch::equal(next_draws(g1), next_draws(g2))) << "same draws consumed, halted " << halted;
    // And through step(): identical outputs and generator positions.
    auto g3 = model::make_generator(torch::kCPU, 4);
    auto g4 = model::make_generator(torch::kCPU, 4);
    StepOptions so;
    so.resets = halted ? Resets::kAll : Resets::kNone;
    const StepOutput a = step(m, c, batch, g3);
    const StepOutput b = step(m, c, batch, g4, so);
    EXPECT_TRUE(torch::equal(a.logits, b.logits));
    EXPECT_TRUE(torch::equal(a.q_halt_logits, b.q_halt_logits));
    EXPECT_TRUE(torch::equal(a.residual, b.residual));
    expect_same_carry(a.carry, b.carry);
    EXPECT_TRUE(torch::equal(next_draws(g3), next_draws(g4)));
  }
}

TEST(StepResets, CallerKnownResetsDoNotReadCarryHalted) {
  auto m = make_model(tiny_arch());
  const Batch batch = make_batch(3, 5);
  Carry c = random_carry(m, batch, 6, /*halted=*/false);
  c.halted = torch::tensor({true, false, true});  // what the caller claims wins
  auto g = model::make_generator(torch::kCPU, 7);
  const Carry none = reset_halted(m, c, batch, g, Resets::kNone);
  EXPECT_TRUE(torch::equal(none.z_h, c.z_h));
  EXPECT_TRUE(torch::equal(none.data.inputs, c.data.inputs));
  EXPECT_TRUE(torch::equal(none.steps, c.steps));
  const Carry all = reset_halted(m, c, batch, g, Resets::kAll);
  EXPECT_TRUE(torch::equal(all.data.inputs, batch.inputs));
  EXPECT_TRUE(torch::equal(all.steps, torch::zeros({3}, torch::kInt)));
  EXPECT_FALSE(torch::equal(all.z_h[1], c.z_h[1]));  // row 1 (not halted in carry) restarted too
  // Default (kFromCarry): rows 0 and 2 only.
  const Carry from = reset_halted(m, c, batch, g);
  EXPECT_TRUE(torch::equal(from.z_h[1], c.z_h[1]));
  EXPECT_FALSE(torch::equal(from.z_h[0], c.z_h[0]));
}

// ---- gradient checkpointing ---------------------------------------------------------------------

std::vector<torch::Tensor> grads(model::EqrModel& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m->parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return out;
}

void zero_grads(model::EqrModel& m) {
  for (auto& p : m->parameters()) p.mutable_grad() = torch::Tensor();
}

struct StepRun {
  StepOutput out;
  std::vector<torch::Tensor> grads;
  at::Tensor next_noise;  // the generator's next draws after the step and its backward
};

StepRun run_step(model::EqrModel& m, const Carry& c, const Batch& batch, bool checkpoint, bool global_generator) {
  zero_grads(m);
  std::optional<at::Generator> gen;
  if (global_generator) {
    torch::manual_seed(42);
  } else {
    gen = model::make_generator(torch::kCPU, 42);
  }
  StepOptions so;
  so.gradient_checkpoint = checkpoint;
  StepRun r;
  r.out = step(m, c, batch, gen, so);
  const auto loss = r.out.logits.to(torch::kFloat).square().mean() + r.out.q_halt_logits.square().sum();
  loss.backward();
  r.grads = grads(m);
  r.next_noise = gen ? next_draws(*gen) : torch::randn({8});
  return r;
}

/// Autograd nodes reachable from t's grad_fn (a measure of the graph kept for backward); `named` counts
/// those whose name contains `name`.
size_t graph_nodes(const at::Tensor& t, const std::string& name = "", size_t* named = nullptr) {
  std::unordered_set<const torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack = {t.grad_fn().get()};
  while (!stack.empty()) {
    torch::autograd::Node* n = stack.back();
    stack.pop_back();
    if (n == nullptr || !seen.insert(n).second) continue;
    if (named && !name.empty() && n->name().find(name) != std::string::npos) ++*named;
    for (const auto& e : n->next_edges()) stack.push_back(e.function.get());
  }
  return seen.size();
}

void expect_checkpoint_matches(const config::ArchConfig& a, bool global_generator) {
  auto m = make_model(a, 9);
  m->train();
  const Batch batch = make_batch(3, 10);
  Carry c = random_carry(m, batch, 11, /*halted=*/false);
  c.halted = torch::tensor({true, false, false});  // one row restarts: fresh states drawn in the step
  const StepRun off = run_step(m, c, batch, false, global_generator);
  const StepRun on = run_step(m, c, batch, true, global_generator);
  // Forward: the same ops on the same values (grad mode does not change kernels): bit-equal.
  EXPECT_TRUE(torch::equal(off.out.logits, on.out.logits));
  EXPECT_TRUE(torch::equal(off.out.q_halt_logits, on.out.q_halt_logits));
  EXPECT_TRUE(torch::equal(off.out.residual, on.out.residual));
  expect_same_carry(off.out.carry, on.out.carry);
  EXPECT_FALSE(on.out.carry.z_h.requires_grad());
  // The generator ends where it does without checkpointing (the replay uses a clone).
  EXPECT_TRUE(torch::equal(off.next_noise, on.next_noise));
  // Backward: the recomputation replays the same values (noise included), so the gradients agree up to
  // the summation order of the engine (contributions to a shared weight are added in the sub-graph
  // first, then handed over). Observed bit-equal on CPU float32; tolerance: a few float32 ulps.
  const auto names = m->named_parameters().keys();
  size_t block_params = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_EQ(off.grads[i].defined(), on.grads[i].defined()) << names[i];
    if (!off.grads[i].defined()) continue;
    const double scale = off.grads[i].abs().max().item<double>();
    EXPECT_GT(scale, 0.0) << names[i];
    EXPECT_LE((off.grads[i] - on.grads[i]).abs().max().item<double>(), 1e-6 * scale) << names[i];
    if (names[i].rfind("L_level.", 0) == 0) ++block_params;
  }
  EXPECT_GT(block_params, 0u);
  // The checkpointed graph is smaller: one node per L_level call of the grad-carrying recursion
  // (l_cycles + 1 = 3) stands for the call's internal nodes, which are not kept.
  size_t segments = 0;
  EXPECT_LT(graph_nodes(on.out.logits, "CheckpointedLLevel", &segments) + 10, graph_nodes(off.out.logits));
  EXPECT_EQ(segments, static_cast<size_t>(a.l_cycles + 1));
}

TEST(GradientCheckpoint, MlpTSameValuesAndGradients) { expect_checkpoint_matches(tiny_arch(true), false); }

TEST(GradientCheckpoint, AttentionSameValuesAndGradients) { expect_checkpoint_matches(tiny_arch(false), false); }

TEST(GradientCheckpoint, GlobalGeneratorIsReplayedToo) { expect_checkpoint_matches(tiny_arch(true), true); }

TEST(GradientCheckpoint, ReducedPrecisionKeepsTheDtype) {
  config::ComputeConfig compute;
  compute.forward_dtype = "bfloat16";
  compute.reduced_precision_on_cpu = true;
  auto m = make_model(tiny_arch(true), 12, compute);
  ASSERT_EQ(m->forward_dtype(), torch::kBFloat16);
  const Batch batch = make_batch(2, 13);
  const Carry c = random_carry(m, batch, 14, /*halted=*/false);
  const StepRun off = run_step(m, c, batch, false, false);
  const StepRun on = run_step(m, c, batch, true, false);
  EXPECT_EQ(on.out.logits.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(off.out.logits, on.out.logits));
  for (size_t i = 0; i < off.grads.size(); ++i) {
    if (!off.grads[i].defined()) continue;
    const double scale = off.grads[i].abs().max().item<double>();
    EXPECT_LE((off.grads[i] - on.grads[i]).abs().max().item<double>(), 1e-6 * scale + 1e-12) << i;
  }
}

TEST(GradientCheckpoint, IgnoredWithoutGrad) {
  auto m = make_model(tiny_arch(true), 15);
  const Batch batch = make_batch(2, 16);
  const Carry c = random_carry(m, batch, 17, /*halted=*/false);
  torch::NoGradGuard no_grad;
  StepOptions so;
  so.gradient_checkpoint = true;
  auto g1 = model::make_generator(torch::kCPU, 18);
  auto g2 = model::make_generator(torch::kCPU, 18);
  const StepOutput a = step(m, c, batch, g1);
  const StepOutput b = step(m, c, batch, g2, so);
  EXPECT_FALSE(b.logits.requires_grad());
  EXPECT_TRUE(torch::equal(a.logits, b.logits));
  expect_same_carry(a.carry, b.carry);
}

}  // namespace
}  // namespace eqr::dynamics
