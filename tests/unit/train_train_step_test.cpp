// train::TrainStep, the trainer's optimisation step as a piece of its own (train_step.h): over several steps
// with halting, resets, clipping and EMA it leaves exactly the parameters, optimiser state, EMA and carry
// that the step written out op by op leaves (the trainer's body before it moved into TrainStep, with torch's
// own clip_grad_norm_); the per-step flags; the options it reads from a config.
// Shapes: B batch rows (6), S cells (16), V vocab (6).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <vector>

#include "eqr/core/error.h"
#include "eqr/core/rng.h"
#include "eqr/dynamics/carry.h"
#include "eqr/dynamics/halting.h"
#include "eqr/dynamics/step.h"
#include "eqr/model/eqr_model.h"
#include "eqr/train/train_step.h"
#include "eqr/train/trainer.h"
#include "fixtures.h"

namespace eqr::train {
namespace {

constexpr int64_t kB = 6;

config::RunConfig tiny_run() {
  config::RunConfig cfg;
  cfg.arch = test::tiny_arch_4x4();
  cfg.compute = test::cpu_float32_compute();
  cfg.arch.halt_max_steps = 2;  // rows halt and restart on new batch rows within the test
  cfg.arch.halt_exploration_prob = 0.5;
  cfg.arch.noise_scale = 0.05;
  cfg.train.global_batch_size = kB;
  cfg.train.lr = 1e-3;
  cfg.train.grad_clip_norm = 0.05;  // small enough to clip
  cfg.train.ema = true;
  cfg.train.ema_rate = 0.9;
  return cfg;
}

/// Everything a run's step advances, built the same way for both sides of a comparison.
struct TrainRun {
  model::EqrModel model{nullptr};
  std::unique_ptr<AdamATan2> optimizer;
  std::unique_ptr<Ema> ema;
  dynamics::Carry carry;
  at::Generator gen;

  explicit TrainRun(const config::RunConfig& cfg) {
    seed_torch(3);
    model = model::EqrModel(model::EqrModelOptions(cfg.arch, cfg.compute));
    model->train();
    optimizer = make_optimizer(model, cfg.train);
    ema = make_ema(model, cfg.train);
    gen = training_generator(c10::Device(c10::kCPU), 3, 0);
    carry = dynamics::initial_carry(model, test::tiny_batch_4x4(kB, 0));
  }
};

/// The optimisation step spelt out op by op, as the trainer's loop ran it before TrainStep.
void step_written_out(TrainRun& r, const config::RunConfig& cfg, const dynamics::Batch& batch, double lr) {
  auto out = dynamics::step(r.model, r.carry, batch, r.gen);
  dynamics::apply_reference_halting(out.carry, out.q_halt_logits.detach(),
                                    dynamics::HaltingOptions::from(cfg.arch, /*training=*/true), r.gen);
  const auto labels = out.carry.data.labels.to(torch::kLong);
  const auto loss = compute_step_loss(out.logits, labels, out.q_halt_logits, LossType::Stablemax, 0.5);
  (loss.total / static_cast<double>(kB)).backward();
  torch::nn::utils::clip_grad_norm_(r.model->parameters(), *cfg.train.grad_clip_norm);
  r.optimizer->set_lr(lr);
  r.optimizer->step();
  r.optimizer->zero_grad();
  r.ema->update(*r.model);
  r.carry = out.carry;
}

void expect_same(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.defined(), b.defined()) << what;
  if (a.defined()) {
    EXPECT_TRUE(torch::equal(a, b)) << what << " differs";
  }
}

TEST(TrainStep, LeavesWhatTheStepWrittenOutLeaves) {
  const config::RunConfig cfg = tiny_run();
  TrainRun expected(cfg), got(cfg);
  TrainStep step(got.model, *got.optimizer, got.ema.get(), TrainStepOptions::from(cfg));
  int64_t restarted = 0;
  for (int64_t s = 1; s <= 5; ++s) {
    const dynamics::Batch batch = test::tiny_batch_4x4(kB, static_cast<uint64_t>(s));
    const double lr = 1e-3 * static_cast<double>(s);
    step_written_out(expected, cfg, batch, lr);
    const TrainStepResult r = step.run(got.carry, batch, got.gen, lr);
    restarted += (r.out.carry.steps == 1).sum().item<int64_t>();
    EXPECT_TRUE(r.norms.defined()) << "clipping computes the norms";
    EXPECT_TRUE(torch::equal(r.total, r.loss.total));
  }
  EXPECT_GT(restarted, kB) << "rows halted and restarted on new batch rows";
  const auto pe = expected.model->named_parameters(), pg = got.model->named_parameters();
  ASSERT_EQ(pe.size(), pg.size());
  for (size_t i = 0; i < pe.size(); ++i) expect_same(pe[i].value(), pg[i].value(), "parameter " + pe[i].key());
  for (const auto& [name, t] : expected.ema->shadow()) expect_same(t, got.ema->shadow().at(name), "EMA " + name);
  const auto oe = expected.optimizer->state_tensors(), og = got.optimizer->state_tensors();
  ASSERT_EQ(oe.size(), og.size());
  for (const auto& [name, t] : oe) expect_same(t, og.at(name), "optimiser " + name);
  expect_same(expected.carry.z_h, got.carry.z_h, "z_h");
  expect_same(expected.carry.z_l, got.carry.z_l, "z_l");
  expect_same(expected.carry.steps, got.carry.steps, "steps");
  expect_same(expected.carry.halted, got.carry.halted, "halted");
  expect_same(expected.carry.data.inputs, got.carry.data.inputs, "inputs");
}

TEST(TrainStep, FlagsPoisonTheLossAndAskForNorms) {
  config::RunConfig cfg = tiny_run();
  cfg.train.grad_clip_norm = std::nullopt;
  cfg.train.ema = false;
  TrainRun run(cfg);
  ASSERT_EQ(run.ema, nullptr) << "make_ema gives no EMA when train.ema is off";
  TrainStep step(run.model, *run.optimizer, nullptr, TrainStepOptions::from(cfg));
  const dynamics::Batch batch = test::tiny_batch_4x4(kB, 1);
  const TrainStepResult plain = step.run(run.carry, batch, run.gen, 1e-3);
  EXPECT_FALSE(plain.norms.defined()) << "no clipping and no request: no norms";
  EXPECT_TRUE(std::isfinite(plain.total.item<double>()));
  TrainStepFlags flags;
  flags.grad_norms = true;
  const TrainStepResult normed = step.run(run.carry, batch, run.gen, 1e-3, flags);
  ASSERT_TRUE(normed.norms.defined());
  EXPECT_GT(normed.norms.total.item<double>(), 0.0);
  flags.poison_loss = true;
  const TrainStepResult poisoned = step.run(run.carry, batch, run.gen, 1e-3, flags);
  EXPECT_TRUE(std::isnan(poisoned.total.item<double>()));
  EXPECT_TRUE(std::isfinite(poisoned.loss.total.item<double>())) << "the loss itself is kept unpoisoned";
  for (const auto& p : run.model->parameters()) {
    EXPECT_TRUE(!p.grad().defined() || p.grad().eq(0).all().item<bool>()) << "zero_grad after the update";
  }
}

TEST(TrainStep, OptionsComeFromTheConfig) {
  config::RunConfig cfg = tiny_run();
  cfg.train.loss_type = "softmax_cross_entropy";
  cfg.train.q_halt_loss_weight = 0.25;
  cfg.train.gradient_checkpoint = true;
  const TrainStepOptions o = TrainStepOptions::from(cfg);
  EXPECT_EQ(o.loss_type, LossType::Softmax);
  EXPECT_EQ(o.q_halt_loss_weight, 0.25);
  EXPECT_EQ(o.global_batch_size, kB);
  ASSERT_TRUE(o.grad_clip_norm.has_value());
  EXPECT_EQ(*o.grad_clip_norm, 0.05);
  EXPECT_TRUE(o.halting.training);
  EXPECT_EQ(o.halting.halt_max_steps, 2);
  EXPECT_TRUE(o.step.gradient_checkpoint);
  EXPECT_EQ(o.step.resets, dynamics::Resets::kFromCarry) << "training resets the rows its carry marks halted";
  cfg.train.loss_type = "hinge";
  EXPECT_THROW(TrainStepOptions::from(cfg), ConfigError);
}

}  // namespace
}  // namespace eqr::train
