// Stablemax / softmax cross-entropy, q-halt BCE and halted-row metrics against hand computations
// (reference/eqr_spec.md §2). Shapes: B rows, S cells, V vocab.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/train/loss.h"

namespace eqr::train {
namespace {

double s_hand(double x) { return x >= 0 ? x + 1.0 : 1.0 / (1.0 - x + 1e-30); }

double bce_hand(double x, double y) { return std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x))); }

TEST(TrainLoss, StablemaxHandValue) {
  // One row, 3 cells, V = 3: s([1, -1, 0.5]) = [2, 0.5, 1.5], sum 4.
  auto logits = torch::tensor({1.0f, -1.0f, 0.5f}).repeat({3, 1}).unsqueeze(0);  // (1, 3, 3)
  auto labels = torch::tensor({{0, 1, static_cast<int>(kIgnoreLabelId)}}, torch::kLong);
  auto tok = token_cross_entropy(logits, labels, LossType::Stablemax);
  ASSERT_EQ(tok.scalar_type(), torch::kFloat64);
  EXPECT_NEAR(tok[0][0].item<double>(), std::log(2.0), 1e-15);  // -log(2/4)
  EXPECT_NEAR(tok[0][1].item<double>(), std::log(8.0), 1e-15);  // -log(0.5/4)
  EXPECT_EQ(tok[0][2].item<double>(), 0.0);                     // ignored

  auto q = torch::zeros({1});
  auto loss = compute_step_loss(logits, labels, q, LossType::Stablemax, 0.5);
  EXPECT_EQ(loss.row_count[0].item<int64_t>(), 2);
  EXPECT_NEAR(loss.lm_loss.item<double>(), (std::log(2.0) + std::log(8.0)) / 2.0, 1e-14);
  // preds = argmax = 0 for every cell: cell 0 right, cell 1 wrong -> accuracy 1/2, not exact.
  EXPECT_FLOAT_EQ(loss.row_accuracy[0].item<float>(), 0.5f);
  EXPECT_FALSE(loss.row_exact[0].item<bool>());
}

TEST(TrainLoss, StablemaxMatchesFloat64HandComputation) {
  torch::manual_seed(3);
  const int64_t B = 3, S = 5, V = 7;
  auto logits = (torch::randn({B, S, V}) * 4).to(torch::kBFloat16);  // reference: bf16 logits
  auto labels = torch::randint(0, V, {B, S}, torch::kLong);
  labels[1][2] = kIgnoreLabelId;
  auto tok = token_cross_entropy(logits, labels, LossType::Stablemax);
  auto l64 = logits.to(torch::kFloat64);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t s = 0; s < S; ++s) {
      const auto y = labels[b][s].item<int64_t>();
      double expected = 0.0;
      if (y != kIgnoreLabelId) {
        double sum = 0.0;
        for (int64_t v = 0; v < V; ++v) sum += s_hand(l64[b][s][v].item<double>());
        expected = -std::log(s_hand(l64[b][s][y].item<double>()) / sum);
      }
      EXPECT_NEAR(tok[b][s].item<double>(), expected, 1e-12) << "b=" << b << " s=" << s;
    }
  }
}

TEST(TrainLoss, SoftmaxMatchesHandComputation) {
  torch::manual_seed(4);
  const int64_t B = 2, S = 3, V = 5;
  auto logits = torch::randn({B, S, V});
  auto labels = torch::randint(0, V, {B, S}, torch::kLong);
  labels[0][1] = kIgnoreLabelId;
  auto tok = token_cross_entropy(logits, labels, LossType::Softmax);
  ASSERT_EQ(tok.scalar_type(), torch::kFloat32);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t s = 0; s < S; ++s) {
      const auto y = labels[b][s].item<int64_t>();
      double expected = 0.0;
      if (y != kIgnoreLabelId) {
        double z = 0.0;
        for (int64_t v = 0; v < V; ++v) z += std::exp(logits[b][s][v].item<double>());
        expected = std::log(z) - logits[b][s][y].item<double>();
      }
      EXPECT_NEAR(tok[b][s].item<double>(), expected, 1e-5);
    }
  }
  // Stablemax and softmax differ (different normalisers).
  auto st = token_cross_entropy(logits, labels, LossType::Stablemax);
  EXPECT_GT((st - tok.to(torch::kFloat64)).abs().max().item<double>(), 1e-3);
}

TEST(TrainLoss, IgnoredRowsCountZeroAndAreExact) {
  auto logits = torch::randn({2, 4, 5});
  auto labels = torch::full({2, 4}, kIgnoreLabelId, torch::kLong);
  labels[0] = torch::tensor({1, 2, 3, 4}, torch::kLong);
  auto loss = compute_step_loss(logits, labels, torch::zeros({2}), LossType::Stablemax, 0.5);
  EXPECT_EQ(loss.row_count[1].item<int64_t>(), 0);
  EXPECT_TRUE(loss.row_exact[1].item<bool>());  // reference: 0 correct == 0 counted
  EXPECT_EQ(loss.row_accuracy[1].item<float>(), 0.0f);
  // lm_loss only from row 0 (row 1 contributes 0, divided by max(n,1) = 1).
  auto tok = token_cross_entropy(logits, labels, LossType::Stablemax);
  EXPECT_NEAR(loss.lm_loss.item<double>(), tok[0].sum().item<double>() / 4.0, 1e-12);
  EXPECT_EQ(tok[1].abs().sum().item<double>(), 0.0);
}

TEST(TrainLoss, QHaltBceAndTotalHandValue) {
  // Row 0: every cell right (argmax == label); row 1: one cell wrong.
  auto logits = torch::zeros({2, 2, 3});
  logits.index_put_({0, 0, 2}, 3.0f);
  logits.index_put_({0, 1, 1}, 3.0f);
  logits.index_put_({1, 0, 2}, 3.0f);
  logits.index_put_({1, 1, 0}, 3.0f);
  auto labels = torch::tensor({{2, 1}, {2, 1}}, torch::kLong);
  auto q = torch::tensor({0.3f, -2.0f});
  auto loss = compute_step_loss(logits, labels, q, LossType::Stablemax, 0.5);
  EXPECT_TRUE(loss.row_exact[0].item<bool>());
  EXPECT_FALSE(loss.row_exact[1].item<bool>());
  const double q_expected = bce_hand(0.3, 1.0) + bce_hand(-2.0, 0.0);
  EXPECT_NEAR(loss.q_halt_loss.item<double>(), q_expected, 1e-6);
  // token losses: s(3) = 4, s(0) = 1 -> sum 6; right cell -log(4/6), wrong cell -log(1/6).
  const double lm = 2 * (-std::log(4.0 / 6.0)) / 2.0 + (-std::log(4.0 / 6.0) - std::log(1.0 / 6.0)) / 2.0;
  EXPECT_NEAR(loss.lm_loss.item<double>(), lm, 1e-12);
  EXPECT_NEAR(loss.total.item<double>(), lm + 0.5 * q_expected, 1e-6);
  // A different weight changes only the q term.
  auto loss2 = compute_step_loss(logits, labels, q, LossType::Stablemax, 2.0);
  EXPECT_NEAR(loss2.total.item<double>(), lm + 2.0 * q_expected, 1e-6);
}

TEST(TrainLoss, GradientFiniteForExtremeLogits) {
  // Large negative logits, and the branch boundaries 0 and 1 (where 1/(1-x) would blow up).
  auto logits = torch::tensor({-1e30f, -1e4f, 0.0f, 1.0f, 50.0f, -3.0f}).view({1, 1, 6}).to(torch::kBFloat16);
  logits = logits.to(torch::kFloat32).set_requires_grad(true);
  auto labels = torch::tensor({{0}}, torch::kLong);
  auto q = torch::tensor({-5.0f}, torch::requires_grad());
  auto loss = compute_step_loss(logits, labels, q, LossType::Stablemax, 0.5);
  ASSERT_TRUE(std::isfinite(loss.total.item<double>()));
  loss.total.backward();
  ASSERT_TRUE(logits.grad().defined());
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>()) << logits.grad();
  EXPECT_TRUE(torch::isfinite(q.grad()).all().item<bool>());
  // The label logit -1e30 is pushed up: its gradient is negative (or zero at the float limit).
  EXPECT_LE(logits.grad()[0][0][0].item<float>(), 0.0f);
  // Gradient check of the stablemax loss at ordinary values, against finite differences in float64.
  auto x = torch::tensor({-2.0, 0.5, 3.0}, torch::kFloat64).view({1, 1, 3}).set_requires_grad(true);
  auto lab = torch::tensor({{1}}, torch::kLong);
  token_cross_entropy(x, lab, LossType::Stablemax).sum().backward();
  for (int v = 0; v < 3; ++v) {
    const double h = 1e-6;
    auto xp = x.detach().clone();
    auto xm = x.detach().clone();
    xp[0][0][v] += h;
    xm[0][0][v] -= h;
    const double fd = (token_cross_entropy(xp, lab, LossType::Stablemax).sum().item<double>() -
                       token_cross_entropy(xm, lab, LossType::Stablemax).sum().item<double>()) /
                      (2 * h);
    EXPECT_NEAR(x.grad()[0][0][v].item<double>(), fd, 1e-6);
  }
}

TEST(TrainLoss, BadShapesAndLossTypeThrow) {
  EXPECT_THROW(compute_step_loss(torch::zeros({2, 3}), torch::zeros({2, 3}, torch::kLong), torch::zeros({2}),
                                 LossType::Stablemax, 0.5),
               RuntimeError);
  EXPECT_THROW(compute_step_loss(torch::zeros({2, 3, 4}), torch::zeros({2, 2}, torch::kLong), torch::zeros({2}),
                                 LossType::Stablemax, 0.5),
               RuntimeError);
  EXPECT_THROW(compute_step_loss(torch::zeros({2, 3, 4}), torch::zeros({2, 3}, torch::kLong), torch::zeros({3}),
                                 LossType::Stablemax, 0.5),
               RuntimeError);
  EXPECT_EQ(parse_loss_type("stablemax_cross_entropy"), LossType::Stablemax);
  EXPECT_EQ(parse_loss_type("softmax_cross_entropy"), LossType::Softmax);
  EXPECT_THROW(parse_loss_type("mse"), ConfigError);
}

TEST(TrainLoss, MetricsOverHaltedRowsOnly) {
  // 5 rows, 2 cells, V = 3. Row exactness: r0 exact, r1 wrong (1/2), r2 exact, r3 padding (n=0), r4 wrong (0/2).
  auto logits = torch::zeros({5, 2, 3});
  auto labels = torch::tensor({{1, 1}, {1, 2}, {2, 2}, {-100, -100}, {0, 0}}, torch::kLong);
  // preds: rows 0,1 predict 1; row 2 predicts 2; row 4 predicts 2.
  logits.index_put_({0}, torch::tensor({{0.f, 1.f, 0.f}, {0.f, 1.f, 0.f}}));
  logits.index_put_({1}, torch::tensor({{0.f, 1.f, 0.f}, {0.f, 1.f, 0.f}}));
  logits.index_put_({2}, torch::tensor({{0.f, 0.f, 1.f}, {0.f, 0.f, 1.f}}));
  logits.index_put_({4}, torch::tensor({{0.f, 0.f, 1.f}, {0.f, 0.f, 1.f}}));
  auto q = torch::tensor({1.0f, 2.0f, -1.0f, 5.0f, -3.0f});
  auto loss = compute_step_loss(logits, labels, q, LossType::Stablemax, 0.5);
  // halted: r0, r1, r3 (padding: excluded from count), r4; r2 not halted.
  auto halted = torch::tensor({true, true, false, true, true});
  auto steps = torch::tensor({3, 16, 7, 2, 5}, torch::kInt32);
  auto sums = metric_sums(loss, halted, steps, q);
  auto m = finalize_metrics(sums, /*global_batch_size=*/10.0);
  // Counted rows: r0 (exact, q>0), r1 (acc 0.5, q>0), r4 (acc 0, q<0).
  EXPECT_DOUBLE_EQ(m["count"], 3.0);
  EXPECT_DOUBLE_EQ(m["exact_accuracy"], 1.0 / 3.0);
  EXPECT_NEAR(m["cell_accuracy"], (1.0 + 0.5 + 0.0) / 3.0, 1e-7);
  EXPECT_DOUBLE_EQ(m["q_halt_accuracy"], 2.0 / 3.0);  // r0 right, r1 wrong, r4 right
  EXPECT_DOUBLE_EQ(m["q_halt_precision"], 1.0 / 2.0);  // predicted positive: r0, r1; true: r0
  EXPECT_DOUBLE_EQ(m["q_halt_recall"], 1.0);           // actual positive: r0
  EXPECT_DOUBLE_EQ(m["steps"], (3.0 + 16.0 + 5.0) / 3.0);
  EXPECT_DOUBLE_EQ(m["min_steps"], 3.0);
  EXPECT_DOUBLE_EQ(m["max_steps"], 16.0);
  EXPECT_DOUBLE_EQ(m["min_q_halt_logit"], -3.0);
  EXPECT_DOUBLE_EQ(m["max_q_halt_logit"], 2.0);
  EXPECT_NEAR(m["q_halt_logit"], 0.0, 1e-12);
  EXPECT_NEAR(m["lm_loss"], loss.lm_loss.item<double>() / 10.0, 1e-12);
  EXPECT_NEAR(m["q_halt_loss"], loss.q_halt_loss.item<double>() / 10.0, 1e-7);
  // Sums of two ranks add up: duplicating the batch doubles count and keeps the ratios.
  MetricSums two{sums.sum * 2, sums.min, sums.max};
  auto m2 = finalize_metrics(two, 20.0);
  EXPECT_DOUBLE_EQ(m2["count"], 6.0);
  EXPECT_DOUBLE_EQ(m2["exact_accuracy"], m["exact_accuracy"]);
  // Nothing halted: ratios are 0, no infinities leak out.
  auto none = finalize_metrics(metric_sums(loss, torch::zeros({5}, torch::kBool), steps, q), 10.0);
  EXPECT_EQ(none["count"], 0.0);
  EXPECT_EQ(none["min_steps"], 0.0);
  EXPECT_EQ(none["exact_accuracy"], 0.0);
}

}  // namespace
}  // namespace eqr::train
