// AdamATan2 against a hand-iterated update (reference/eqr_spec.md §3), its state export/import, and
// save -> load -> continue == uninterrupted.

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <vector>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/train/adam_atan2.h"

namespace eqr::train {
namespace {

/// One scalar parameter iterated by hand in double: the formula of the spec, verbatim.
struct HandAdam {
  double p, m = 0, v = 0;
  int t = 0;
  void step(double g, double lr, double b1, double b2, double wd) {
    ++t;
    p *= 1 - lr * wd;
    m += (1 - b1) * (g - m);
    v += (1 - b2) * (g * g - v);
    p -= (lr / (1 - std::pow(b1, t))) * std::atan2(m, std::sqrt(v) / std::sqrt(1 - std::pow(b2, t)));
  }
};

TEST(TrainAdamATan2, MatchesHandIterationInDouble) {
  const double lr = 0.01, b1 = 0.9, b2 = 0.95, wd = 0.5;
  // p0: a gradient sequence incl. a zero first gradient; p1: always zero gradient (decay only).
  auto p0 = torch::tensor({0.5}, torch::kFloat64).set_requires_grad(true);
  auto p1 = torch::tensor({-1.0, 2.0}, torch::kFloat64).set_requires_grad(true);
  AdamATan2 opt({p0, p1}, AdamATan2Options(lr).betas({b1, b2}).weight_decay(wd));
  HandAdam h0{0.5}, h1a{-1.0}, h1b{2.0};
  const std::vector<double> grads = {0.0, 0.1, -0.2, 0.3, 1e-8, -5.0};
  for (double g : grads) {
    p0.mutable_grad() = torch::tensor({g}, torch::kFloat64);
    p1.mutable_grad() = torch::zeros({2}, torch::kFloat64);
    opt.step();
    h0.step(g, lr, b1, b2, wd);
    h1a.step(0.0, lr, b1, b2, wd);
    h1b.step(0.0, lr, b1, b2, wd);
    EXPECT_NEAR(p0.item<double>(), h0.p, 1e-14);
    EXPECT_NEAR(p1[0].item<double>(), h1a.p, 1e-14);
    EXPECT_NEAR(p1[1].item<double>(), h1b.p, 1e-14);
  }
  // Zero gradients: atan2(0, 0) = 0, so only the decay acts.
  EXPECT_NEAR(p1[1].item<double>(), 2.0 * std::pow(1 - lr * wd, grads.size()), 1e-14);
  auto st = opt.state_at(0);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->step.item<float>(), static_cast<float>(grads.size()));
  EXPECT_EQ(st->step.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(st->step.device().is_cpu());
  EXPECT_NEAR(st->exp_avg.item<double>(), h0.m, 1e-15);
  EXPECT_NEAR(st->exp_avg_sq.item<double>(), h0.v, 1e-15);
}

TEST(TrainAdamATan2, Float32CloseToHandAndFirstStepIsSignStep) {
  // First step with g != 0: m = (1-b1) g, sqrt(v)/sqrt(1-b2) = |g|, so the move is
  // lr/(1-b1) * atan2(1-b1, 1) * sign(g), whatever |g| (bias correction 1 sits outside atan2).
  const double lr = 1e-3, wd = 0.0;
  auto p = torch::tensor({1.0f, 1.0f, 1.0f}).set_requires_grad(true);
  AdamATan2 opt({p}, AdamATan2Options(lr).betas({0.9, 0.95}).weight_decay(wd));
  p.mutable_grad() = torch::tensor({3.0f, -1e-3f, 0.0f});
  opt.step();
  const double move = (lr / (1 - 0.9)) * std::atan2(1 - 0.9, 1.0);
  EXPECT_NEAR(p[0].item<float>(), 1.0 - move, 1e-6);
  EXPECT_NEAR(p[1].item<float>(), 1.0 + move, 1e-6);
  EXPECT_EQ(p[2].item<float>(), 1.0f);
  // Several float32 steps stay within float tolerance of the double hand iteration.
  HandAdam h{static_cast<double>(p[0].item<float>())};
  h.m = 0.1 * 3.0;
  h.v = 0.05 * 9.0;
  h.t = 1;
  for (double g : {0.5, -0.25, 2.0}) {
    p.mutable_grad() = torch::tensor({static_cast<float>(g), 0.f, 0.f});
    opt.step();
    h.step(g, lr, 0.9, 0.95, wd);
  }
  EXPECT_NEAR(p[0].item<float>(), h.p, 1e-6);
}

TEST(TrainAdamATan2, WeightDecayAndSkippedParams) {
  auto a = torch::tensor({2.0}, torch::kFloat64).set_requires_grad(true);
  auto b = torch::tensor({2.0}, torch::kFloat64).set_requires_grad(true);  // grad stays undefined
  AdamATan2 opt({a, b}, AdamATan2Options(0.1).betas({0.9, 0.95}).weight_decay(1.0));
  a.mutable_grad() = torch::zeros({1}, torch::kFloat64);
  opt.step();
  EXPECT_NEAR(a.item<double>(), 2.0 * 0.9, 1e-15);  // p *= 1 - lr * wd
  EXPECT_EQ(b.item<double>(), 2.0);                  // undefined grad: untouched, as the reference
  EXPECT_FALSE(opt.state_at(1).has_value());
  // The LR is settable per step and is used by the next update.
  opt.set_lr(0.5);
  EXPECT_EQ(opt.lr(), 0.5);
  opt.step();
  EXPECT_NEAR(a.item<double>(), 2.0 * 0.9 * 0.5, 1e-15);
  EXPECT_THROW(opt.set_lr(-1.0), RuntimeError);
  EXPECT_THROW(AdamATan2({a}, AdamATan2Options(0.1).betas({1.0, 0.95})), ConfigError);
}

/// A small problem: params of two shapes, deterministic gradients from a quadratic loss.
struct Problem {
  std::vector<torch::Tensor> params;
  explicit Problem(int seed) {
    torch::manual_seed(seed);
    params = {torch::randn({3, 4}).set_requires_grad(true), torch::randn({4}).set_requires_grad(true)};
  }
  void grads(int step) {
    for (auto& p : params) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
    auto loss = (params[0].sum(0) * params[1] * (1.0 + step)).pow(2).sum() + params[1].sin().sum();
    loss.backward();
  }
};

TEST(TrainAdamATan2, SaveLoadContinueEqualsUninterrupted) {
  const auto opts = AdamATan2Options(3e-2).betas({0.9, 0.95}).weight_decay(0.1);
  Problem full(7);
  AdamATan2 opt_full(full.params, opts);
  for (int s = 0; s < 6; ++s) {
    full.grads(s);
    opt_full.set_lr(3e-2 * (s + 1) / 6.0);
    opt_full.step();
  }

  Problem first(7);
  AdamATan2 opt_first(first.params, opts);
  for (int s = 0; s < 3; ++s) {
    first.grads(s);
    opt_first.set_lr(3e-2 * (s + 1) / 6.0);
    opt_first.step();
  }
  std::stringstream archive;
  torch::save(opt_first, archive);
  auto named = opt_first.state_tensors();
  EXPECT_EQ(named.size(), 6u);
  EXPECT_EQ(named.count("0.exp_avg"), 1u);

  // Resume twice: through the torch archive, and through the named-tensor export.
  for (int via_named = 0; via_named < 2; ++via_named) {
    Problem resumed(99);  // different init, overwritten from the first run
    {
      torch::NoGradGuard ng;
      for (size_t i = 0; i < resumed.params.size(); ++i) resumed.params[i].copy_(first.params[i]);
    }
    AdamATan2 opt_resumed(resumed.params, AdamATan2Options(1.0));
    if (via_named) {
      std::map<std::string, torch::Tensor> copy;
      for (const auto& [k, t] : named) copy[k] = t.clone();
      opt_resumed.load_state_tensors(copy);
      opt_resumed.set_lr(3e-2 * 3 / 6.0);
      // Options are not part of the named export; set betas/wd as the trainer would from its config.
      static_cast<AdamATan2Options&>(opt_resumed.param_groups()[0].options()).betas({0.9, 0.95}).weight_decay(0.1);
    } else {
      archive.seekg(0);
      torch::load(opt_resumed, archive);
      EXPECT_DOUBLE_EQ(opt_resumed.lr(), 3e-2 * 3 / 6.0);
    }
    for (int s = 3; s < 6; ++s) {
      resumed.grads(s);
      opt_resumed.set_lr(3e-2 * (s + 1) / 6.0);
      opt_resumed.step();
    }
    for (size_t i = 0; i < full.params.size(); ++i) {
      EXPECT_TRUE(torch::equal(resumed.params[i], full.params[i])) << "param " << i << " via_named=" << via_named;
    }
    EXPECT_TRUE(torch::equal(opt_resumed.state_at(0)->exp_avg_sq, opt_full.state_at(0)->exp_avg_sq));
    EXPECT_EQ(opt_resumed.state_at(1)->step.item<float>(), 6.0f);
  }
}

TEST(TrainAdamATan2, LoadRejectsMismatchedState) {
  auto p = torch::zeros({2, 2}).set_requires_grad(true);
  AdamATan2 opt({p});
  std::map<std::string, torch::Tensor> bad_shape = {
      {"0.step", torch::tensor(1.0f)}, {"0.exp_avg", torch::zeros({3})}, {"0.exp_avg_sq", torch::zeros({3})}};
  EXPECT_THROW(opt.load_state_tensors(bad_shape), CheckpointError);
  EXPECT_THROW(opt.load_state_tensors({{"1.step", torch::tensor(1.0f)}}), CheckpointError);
  EXPECT_THROW(opt.load_state_tensors({{"0.momentum", torch::zeros({2, 2})}}), CheckpointError);
  EXPECT_THROW(opt.load_state_tensors({{"0.step", torch::tensor(1.0f)}}), CheckpointError);  // incomplete
  EXPECT_FALSE(opt.state_at(0).has_value());  // nothing applied on failure
}

}  // namespace
}  // namespace eqr::train
