// AUROC hand values (ties, NaN, one class) and the landscape / residual summaries of DiagnosticsAccumulator.

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "eqr/core/error.h"
#include "eqr/eval/diagnostics.h"

namespace eqr::eval {
namespace {

TEST(EvalDiagnostics, AurocHandValues) {
  // Positives {0.9, 0.7}, negatives {0.8, 0.6}: pairs won 0.9>0.8, 0.9>0.6, 0.7>0.6; lost 0.7<0.8 -> 3/4.
  EXPECT_DOUBLE_EQ(*auroc({0.9, 0.8, 0.7, 0.6}, {true, false, true, false}), 0.75);
  EXPECT_DOUBLE_EQ(*auroc({1, 2, 3}, {false, true, true}), 1.0);
  EXPECT_DOUBLE_EQ(*auroc({3, 2, 1}, {false, true, true}), 0.0);
}

TEST(EvalDiagnostics, AurocTiesCountHalf) {
  // Positives {0.5, 0.5}, negatives {0.5, 0.2}: each positive ties one negative (1/2) and beats one (1)
  // -> (1.5 + 1.5) / 4.
  EXPECT_DOUBLE_EQ(*auroc({0.5, 0.5, 0.2, 0.5}, {true, false, false, true}), 0.75);
  EXPECT_DOUBLE_EQ(*auroc({1, 1, 1, 1}, {true, false, true, false}), 0.5);
}

TEST(EvalDiagnostics, AurocNanRanksLowestAndOneClassIsUndefined) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_DOUBLE_EQ(*auroc({nan, 1.0}, {true, false}), 0.0);
  EXPECT_DOUBLE_EQ(*auroc({nan, nan, 0.0}, {true, false, true}), 0.75);  // NaN-NaN tie 1/2, 0 > NaN 1
  EXPECT_FALSE(auroc({1, 2}, {true, true}).has_value());
  EXPECT_FALSE(auroc({}, {}).has_value());
  EXPECT_THROW(auroc({1.0}, {true, false}), Error);
}

TEST(EvalDiagnostics, AurocIntervalIsHanleyMcNeil) {
  // A = 0.8 from 50 + 50: q1 = 0.8/1.2, q2 = 1.28/1.8, SE^2 = (0.16 + 49 (q1 - 0.64) + 49 (q2 - 0.64)) / 2500.
  const auto [lo, hi] = auroc_ci95(0.8, 50, 50);
  EXPECT_NEAR(lo, 0.712775717957797, 1e-12);
  EXPECT_NEAR(hi, 0.887224282042203, 1e-12);
  // Perfect separation has no spread in this approximation; narrower with more samples; clipped to [0, 1].
  EXPECT_EQ(auroc_ci95(1.0, 5, 5), std::make_pair(1.0, 1.0));
  EXPECT_LT(auroc_ci95(0.8, 500, 500).second - auroc_ci95(0.8, 500, 500).first, hi - lo);
  EXPECT_GE(auroc_ci95(0.05, 2, 2).first, 0.0);
  EXPECT_THROW(auroc_ci95(0.5, 0, 3), Error);
}

infer::TrajectoryResult traj(int64_t init, infer::Prediction pred, bool exact, std::vector<float> residuals) {
  infer::TrajectoryResult t;
  t.init = init;
  t.steps = static_cast<int64_t>(residuals.size());
  infer::Snapshot s;
  s.prediction = std::move(pred);
  s.exact = exact;
  s.residual = residuals.back();
  s.steps = t.steps;
  s.convergence_score = residuals.back();
  s.q_halt = exact ? 1.0 : -1.0;
  t.at_depth = {s};
  t.residuals = std::move(residuals);
  return t;
}

TEST(EvalDiagnostics, LandscapeResidualsAndRates) {
  DiagnosticsAccumulator d({3});
  infer::PuzzleResult p0;  // 3 inits: two land in grid A (right), one in B (wrong)
  p0.puzzle = 0;
  p0.trajectories = {traj(0, {1, 2}, true, {4, 2, 1}), traj(1, {2, 1}, false, {4, 4, 4}),
                     traj(2, {1, 2}, true, {8, 4, 1})};
  infer::PuzzleResult p1;  // all three in one (wrong) basin
  p1.puzzle = 1;
  p1.trajectories = {traj(0, {3, 3}, false, {2, 2, 2}), traj(1, {3, 3}, false, {2, 2, 2}),
                     traj(2, {3, 3}, false, {2, 2, 2})};
  d.add(p0);
  d.add(p1);
  const auto j = d.to_json();
  const auto& land = j["landscape"];
  EXPECT_DOUBLE_EQ(land["mean_distinct_final_grids"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(land["share_single_basin"].get<double>(), 0.5);
  EXPECT_NEAR(land["mean_majority_basin_share"].get<double>(), (2.0 / 3.0 + 1.0) / 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(land["majority_basin_correct"].get<double>(), 0.5);
  // Puzzle 0 has two distinct grids and a right vote; puzzle 1 one grid and a wrong vote.
  EXPECT_EQ(land["majority_correct_by_distinct_final_grids"]["2"]["puzzles"].get<int64_t>(), 1);
  EXPECT_DOUBLE_EQ(land["majority_correct_by_distinct_final_grids"]["2"]["majority_correct"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(land["majority_correct_by_distinct_final_grids"]["1"]["majority_correct"].get<double>(), 0.0);
  // Residual by step, correct trajectories: (4+8)/2, (2+4)/2, (1+1)/2; wrong: (4+2*3)/4, ...
  EXPECT_DOUBLE_EQ(j["residual_by_step"]["correct"][0].get<double>(), 6.0);
  EXPECT_DOUBLE_EQ(j["residual_by_step"]["correct"][2].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["residual_by_step"]["wrong"][0].get<double>(), 2.5);
  // Rate at step 2: ratios 0.5, 1, 0.5, 1, 1, 1 -> 5/6.
  EXPECT_NEAR(j["convergence_rate_by_step"][1].get<double>(), 5.0 / 6.0, 1e-12);
  EXPECT_TRUE(j["convergence_rate_by_step"][0].is_null());
  // Final residual separates perfectly: correct ones end at 1, wrong at 4 or 2.
  EXPECT_DOUBLE_EQ(j["auroc"][0]["residual"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["auroc"][0]["q_halt"].get<double>(), 1.0);
  EXPECT_EQ(j["auroc"][0]["n_correct"].get<int64_t>(), 2);
  EXPECT_EQ(j["auroc"][0]["residual_ci95"].dump(), "[1.0,1.0]");
  EXPECT_EQ(j["steps_histogram"]["3"].get<int64_t>(), 6);
}

}  // namespace
}  // namespace eqr::eval
