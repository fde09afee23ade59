// Aggregators on hand-made predictions (ties included) with hand-computed values.

#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/infer/aggregate.h"

namespace eqr::infer {
namespace {

const Prediction A = {2, 3, 4, 5};
const Prediction B = {3, 2, 5, 4};
const Prediction C = {2, 2, 2, 2};

TEST(InferAggregate, MajorityVoteCountsWholeGrids) {
  EXPECT_EQ(majority_vote({A}), 0);
  EXPECT_EQ(majority_vote({B, A, A}), 1);
  EXPECT_EQ(majority_vote({C, B, A, B, C, B}), 1);  // B x3 beats C x2
}

TEST(InferAggregate, MajorityVoteTiesGoToFirstAppearance) {
  EXPECT_EQ(majority_vote({A, B, B, A}), 0);     // 2-2: A appeared first
  EXPECT_EQ(majority_vote({C, A, B, A, B}), 1);  // A, B tie at 2; C once; A first at index 1
  EXPECT_EQ(majority_vote({B, A, C}), 0);        // all once: the first
  EXPECT_THROW(majority_vote({}), Error);
}

TEST(InferAggregate, PassAtKUnbiasedHandValues) {
  EXPECT_DOUBLE_EQ(pass_at_k(4, 1, 2), 0.5);   // 1 - C(3,2)/C(4,2) = 1 - 3/6
  EXPECT_NEAR(pass_at_k(5, 2, 2), 0.7, 1e-12);  // 1 - C(3,2)/C(5,2) = 1 - 3/10
  EXPECT_NEAR(pass_at_k(8, 3, 4), 1.0 - 5.0 / 70.0, 1e-12);  // C(5,4)=5, C(8,4)=70
  EXPECT_DOUBLE_EQ(pass_at_k(3, 2, 2), 1.0);   // n - c < k
  EXPECT_DOUBLE_EQ(pass_at_k(6, 0, 3), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(6, 6, 1), 1.0);
  EXPECT_NEAR(pass_at_k(7, 2, 1), 2.0 / 7.0, 1e-12);  // k = 1 is the mean
  // Large n stays stable (binomials would overflow): 1 - C(127,64)/C(128,64) = 1 - 64/128.
  EXPECT_NEAR(pass_at_k(128, 1, 64), 0.5, 1e-12);
  EXPECT_THROW(pass_at_k(4, 5, 1), Error);
  EXPECT_THROW(pass_at_k(4, 1, 5), Error);
}

TEST(InferAggregate, PassAtKValuesAreBelowBreadth) {
  EXPECT_TRUE(pass_at_k_values(1).empty());
  EXPECT_EQ(pass_at_k_values(2), (std::vector<int64_t>{1}));
  EXPECT_EQ(pass_at_k_values(8), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(pass_at_k_values(9), (std::vector<int64_t>{1, 2, 4, 8}));
}

TEST(InferAggregate, ConvergenceTopKSmallestFirstTiesByIndexNanLast) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> s = {0.3, 0.1, nan, 0.1, 0.2};
  EXPECT_EQ(convergence_top_k(s, 1), (std::vector<int64_t>{1}));
  EXPECT_EQ(convergence_top_k(s, 3), (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(convergence_top_k(s, 10), (std::vector<int64_t>{1, 3, 4, 0, 2}));
  EXPECT_EQ(convergence_top_k({nan, nan}, 1), (std::vector<int64_t>{0}));
}

TEST(InferAggregate, QConfidenceHighestLogitTiesLowestIndex) {
  EXPECT_EQ(q_confidence({1.0, 3.0, 3.0, -2.0}), 1);
  EXPECT_EQ(q_confidence({-5.0}), 0);
}

TEST(InferAggregate, ConvergenceScoresHandValues) {
  // T = 4 steps, B = 1, S = 2, V = 2. Deltas (mean over positions of the L2 norm over V):
  //   t1-t0: pos0 (3,4) -> 5, pos1 0 -> 2.5;  t2-t1: pos1 (6,8) -> 10 -> 5;  t3-t2: pos0 (1,0) -> 0.5.
  auto l = torch::zeros({4, 1, 2, 2});
  l[1][0][0] = torch::tensor({3.0f, 4.0f});
  l[2][0][0] = torch::tensor({3.0f, 4.0f});
  l[2][0][1] = torch::tensor({6.0f, 8.0f});
  l[3][0][0] = torch::tensor({4.0f, 4.0f});
  l[3][0][1] = torch::tensor({6.0f, 8.0f});
  EXPECT_NEAR(convergence_scores(l, 3).item<float>(), (2.5 + 5.0 + 0.5) / 3.0, 1e-6);
  EXPECT_NEAR(convergence_scores(l, 2).item<float>(), 2.75, 1e-6);
  EXPECT_NEAR(convergence_scores(l, 1).item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(convergence_scores(l, 10).item<float>(), 8.0 / 3.0, 1e-6);  // fewer deltas than the window
  EXPECT_TRUE(std::isnan(convergence_scores(l.slice(0, 0, 1), 3).item<float>()));
}

TEST(InferAggregate, AggregateAllHandValues) {
  // R = 4: A (right), B, B, A (right). Vote: 2-2 tie -> A (first) -> right.
  const std::vector<Outcome> o = {{&A, true, 1.0, -1.0, 0.4},
                                  {&B, false, 0.5, 2.0, 0.1},
                                  {&B, false, 0.5, 2.0, 0.2},
                                  {&A, true, 1.0, 0.0, 0.1}};
  AggregateOptions opts;
  opts.convergence_top_k = 3;
  opts.verifier = [](int64_t, const Prediction& p) { return p == A; };
  const auto scores = aggregate(o, opts, 7);
  EXPECT_EQ(aggregator_names(4, opts),
            (std::vector<std::string>{"mean", "majority_vote", "most_converged", "convergence_top3", "q_confidence",
                                      "pass@1", "pass@2", "any_correct", "verified_select"}));
  ASSERT_EQ(scores.size(), 9u);
  const auto get = [&](const std::string& n) {
    for (const auto& s : scores) {
      if (s.name == n) return s;
    }
    ADD_FAILURE() << "no aggregator " << n;
    return AggregateScore{};
  };
  EXPECT_DOUBLE_EQ(get("mean").exact, 0.5);
  EXPECT_DOUBLE_EQ(*get("mean").cell, 0.75);
  EXPECT_DOUBLE_EQ(get("majority_vote").exact, 1.0);
  // most converged: scores 0.4, 0.1, 0.2, 0.1 -> tie 0.1 between init 1 (B) and 3 (A) -> init 1 -> wrong.
  EXPECT_DOUBLE_EQ(get("most_converged").exact, 0.0);
  EXPECT_DOUBLE_EQ(*get("most_converged").cell, 0.5);
  // top 3: inits 1, 3, 2 -> one right of three.
  EXPECT_NEAR(get("convergence_top3").exact, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(*get("convergence_top3").cell, 2.0 / 3.0, 1e-12);
  // q: 2.0 twice (inits 1, 2) -> init 1 -> wrong.
  EXPECT_DOUBLE_EQ(get("q_confidence").exact, 0.0);
  EXPECT_DOUBLE_EQ(get("pass@1").exact, 0.5);
  EXPECT_NEAR(get("pass@2").exact, 1.0 - 1.0 / 6.0, 1e-12);  // 1 - C(2,2)/C(4,2)
  EXPECT_FALSE(get("pass@2").cell.has_value());
  EXPECT_DOUBLE_EQ(get("any_correct").exact, 1.0);
  EXPECT_DOUBLE_EQ(get("verified_select").exact, 1.0);
  // valid: the verifier accepts A only, so valid follows exact here; none where no grid is chosen.
  EXPECT_DOUBLE_EQ(*get("mean").valid, 0.5);
  EXPECT_DOUBLE_EQ(*get("majority_vote").valid, 1.0);
  EXPECT_DOUBLE_EQ(*get("most_converged").valid, 0.0);
  EXPECT_NEAR(*get("convergence_top3").valid, 1.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(*get("q_confidence").valid, 0.0);
  EXPECT_FALSE(get("pass@2").valid.has_value());
  EXPECT_FALSE(get("any_correct").valid.has_value());
  EXPECT_DOUBLE_EQ(*get("verified_select").valid, 1.0);
}

TEST(InferAggregate, ValidCountsAcceptedGridsThatAreNotTheLabel) {
  // Two valid solutions (A is the label, B another valid grid): exact and valid part ways; the verifier is
  // asked once per trajectory however many aggregators need its verdict. Without a verifier: no valid.
  const std::vector<Outcome> o = {{&B, false, 0.5, 1.0, 0.1}, {&A, true, 1.0, 0.0, 0.2}, {&B, false, 0.5, 0.0, 0.3}};
  int calls = 0;
  AggregateOptions opts;
  opts.verifier = [&calls](int64_t, const Prediction&) {
    ++calls;
    return true;
  };
  for (const auto& s : aggregate(o, opts)) {
    if (s.name.rfind("pass@", 0) == 0 || s.name == "any_correct") continue;
    ASSERT_TRUE(s.valid.has_value()) << s.name;
    EXPECT_DOUBLE_EQ(*s.valid, 1.0) << s.name;
    if (s.name == "majority_vote") EXPECT_DOUBLE_EQ(s.exact, 0.0);
  }
  EXPECT_EQ(calls, 3);
  for (const auto& s : aggregate(o, {})) EXPECT_FALSE(s.valid.has_value()) << s.name;
}

TEST(InferAggregate, BreadthOneCollapses) {
  const std::vector<Outcome> o = {{&B, false, 0.25, 0.0, std::numeric_limits<double>::quiet_NaN()}};
  const auto scores = aggregate(o, {});
  EXPECT_EQ(aggregator_names(1, {}),
            (std::vector<std::string>{"mean", "majority_vote", "most_converged", "q_confidence", "any_correct"}));
  for (const auto& s : scores) EXPECT_DOUBLE_EQ(s.exact, 0.0) << s.name;
}

}  // namespace
}  // namespace eqr::infer
