// The reference halting rule (reference/eqr_spec.md §1.8 step 3): step limit, q_halt > 0 only in training,
// min-step exploration resampled every call, halt_max_steps 1.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/dynamics/halting.h"
#include "eqr/model/init.h"

namespace eqr::dynamics {
namespace {

HaltingOptions opts(int64_t max_steps, double prob, bool training) {
  HaltingOptions o;
  o.halt_max_steps = max_steps;
  o.exploration_prob = prob;
  o.training = training;
  return o;
}

TEST(Halting, EvalHaltsOnTheStepLimitOnly) {
  const auto steps = torch::tensor({1, 15, 16, 17}, torch::kInt);
  const auto q = torch::tensor({5.0f, 5.0f, -5.0f, -5.0f});
  EXPECT_TRUE(torch::equal(reference_halting(steps, q, opts(16, 0.1, false)), torch::tensor({false, false, true, true})));
}

TEST(Halting, TrainingHaltsOnPositiveQWithoutExploration) {
  const auto steps = torch::tensor({1, 1, 16, 2}, torch::kInt);
  const auto q = torch::tensor({1.0f, -1.0f, -1.0f, 0.5f});
  auto g = model::make_generator(torch::kCPU, 0);
  EXPECT_TRUE(torch::equal(reference_halting(steps, q, opts(16, 0.0, true), g), torch::tensor({true, false, true, true})));
}

TEST(Halting, ExplorationDelaysHaltingToAMinimumStepInTwoToMax) {
  const int64_t b = 6000;
  auto g = model::make_generator(torch::kCPU, 1);
  const auto q = torch::ones({b});
  // prob 1: every row draws min_steps in [2, 16]; a row at step 1 can never halt, one at 16 always does.
  EXPECT_FALSE(reference_halting(torch::ones({b}, torch::kInt), q, opts(16, 1.0, true), g).any().item<bool>());
  EXPECT_TRUE(reference_halting(torch::full({b}, 16, torch::kInt), -q, opts(16, 1.0, true), g).all().item<bool>());
  // At step 8 with q > 0: halted iff min_steps <= 8, probability 7/15.
  const auto h8 = reference_halting(torch::full({b}, 8, torch::kInt), q, opts(16, 1.0, true), g);
  EXPECT_NEAR(h8.to(torch::kDouble).mean().item<double>(), 7.0 / 15.0, 0.03);
  // prob 0.1 at step 1 with q > 0: halted iff the row did not explore (0.9).
  const auto h1 = reference_halting(torch::ones({b}, torch::kInt), q, opts(16, 0.1, true), g);
  EXPECT_NEAR(h1.to(torch::kDouble).mean().item<double>(), 0.9, 0.02);
  // Resampled every call: two calls on the same input differ row-wise.
  const auto again = reference_halting(torch::full({b}, 8, torch::kInt), q, opts(16, 1.0, true), g);
  EXPECT_FALSE(torch::equal(h8, again));
}

TEST(Halting, SeededAndSingleStepConfigs) {
  const auto steps = torch::full({500}, 5, torch::kInt);
  const auto q = torch::ones({500});
  auto g1 = model::make_generator(torch::kCPU, 2);
  auto g2 = model::make_generator(torch::kCPU, 2);
  EXPECT_TRUE(torch::equal(reference_halting(steps, q, opts(16, 0.5, true), g1),
                           reference_halting(steps, q, opts(16, 0.5, true), g2)));
  // halt_max_steps 1: every row halts after its one step, q ignored.
  EXPECT_TRUE(reference_halting(torch::ones({4}, torch::kInt), -q.narrow(0, 0, 4), opts(1, 0.5, true)).all().item<bool>());
}

TEST(Halting, AppliesToACarry) {
  Carry c;
  c.steps = torch::tensor({3, 16}, torch::kInt);
  c.halted = torch::zeros({2}, torch::kBool);
  config::ArchConfig arch;
  apply_reference_halting(c, torch::tensor({-1.0f, -1.0f}), HaltingOptions::from(arch, false));
  EXPECT_TRUE(torch::equal(c.halted, torch::tensor({false, true})));
  const auto o = HaltingOptions::from(arch, true);
  EXPECT_EQ(o.halt_max_steps, 16);
  EXPECT_DOUBLE_EQ(o.exploration_prob, 0.1);
}

}  // namespace
}  // namespace eqr::dynamics
