// Compensated truncated normal (reference/eqr_spec.md §1.2): exact std after truncation, bound
// ±2*comp_std, zeros for std 0, seeding through generators.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/model/init.h"

namespace eqr::model {
namespace {

TEST(TruncNormal, ConstantsMatchTheReference) {
  // Var of N(0,1) truncated to [-2, 2] = 0.773741...; comp_std = std * 1.13685 (spec §1.2).
  EXPECT_NEAR(truncated_unit_std(), 0.8796256610, 1e-9);
  EXPECT_NEAR(compensated_std(1.0), 1.1368472, 1e-6);
  EXPECT_NEAR(compensated_std(0.5), 0.5 * 1.1368472, 1e-6);
}

TEST(TruncNormal, EmpiricalStdIsTheRequestedStdAndValuesAreClipped) {
  for (double std : {1.0, 0.25}) {
    auto gen = make_generator(torch::kCPU, 7);
    const auto x = trunc_normal({400000}, std, torch::kFloat, gen).to(torch::kDouble);
    EXPECT_NEAR(x.std().item<double>(), std, 0.005 * std) << "std " << std;
    EXPECT_NEAR(x.mean().item<double>(), 0.0, 0.005 * std);
    const double bound = 2.0 * compensated_std(std);
    const double max_abs = x.abs().max().item<double>();
    EXPECT_LE(max_abs, bound * (1 + 1e-6));
    // The tails reach the bound (truncation, not a plain normal scaled down).
    EXPECT_GT(max_abs, 0.99 * bound);
  }
}

TEST(TruncNormal, StdZeroGivesZeros) {
  auto t = torch::full({3, 4}, 5.0);
  trunc_normal_(t, 0.0);
  EXPECT_TRUE(torch::equal(t, torch::zeros({3, 4})));
}

TEST(TruncNormal, SeededGeneratorsReproduceAndDiffer) {
  auto g1 = make_generator(torch::kCPU, 123);
  auto g2 = make_generator(torch::kCPU, 123);
  auto g3 = make_generator(torch::kCPU, 124);
  const auto a = trunc_normal({64}, 1.0, torch::kFloat, g1);
  const auto b = trunc_normal({64}, 1.0, torch::kFloat, g2);
  const auto c = trunc_normal({64}, 1.0, torch::kFloat, g3);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  // The generator advances: the next draw differs from the first.
  EXPECT_FALSE(torch::equal(a, trunc_normal({64}, 1.0, torch::kFloat, g1)));
}

TEST(TruncNormal, InPlaceKeepsAutogradOffAndWorksInBfloat16) {
  auto w = torch::empty({1000}, torch::requires_grad());
  trunc_normal_(w, 1.0);
  EXPECT_TRUE(w.requires_grad());
  EXPECT_FALSE(w.grad_fn());
  auto g = make_generator(torch::kCPU, 1);
  const auto b = trunc_normal({100000}, 1.0, torch::kBFloat16, g);
  EXPECT_EQ(b.scalar_type(), torch::kBFloat16);
  const auto d = b.to(torch::kDouble);
  EXPECT_NEAR(d.std().item<double>(), 1.0, 0.03);
  EXPECT_LE(d.abs().max().item<double>(), 2.0 * compensated_std(1.0) * 1.01);
}

TEST(Randn, SeededAndInTheRequestedDtype) {
  auto g1 = make_generator(torch::kCPU, 5);
  auto g2 = make_generator(torch::kCPU, 5);
  const auto a = randn({2, 3}, torch::kDouble, g1);
  EXPECT_EQ(a.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(a, randn({2, 3}, torch::kDouble, g2)));
}

}  // namespace
}  // namespace eqr::model
