// Sweep metrics on hand-made results: per (depth, breadth, aggregator) values, steps percentiles, NFE.

#include <gtest/gtest.h>

#include "eqr/core/error.h"
#include "eqr/eval/metrics.h"

namespace eqr::eval {
namespace {

infer::Snapshot snap(infer::Prediction p, bool exact, double cell, int64_t steps) {
  infer::Snapshot s;
  s.prediction = std::move(p);
  s.exact = exact;
  s.cell_accuracy = cell;
  s.steps = steps;
  return s;
}

/// Puzzle with 4 trajectories read at depths {2, 4}; `right` = which inits are right at depth 4
/// (at depth 2 only init 0 is right); init i stops at step stop[i] (adaptive) or 4.
infer::PuzzleResult puzzle(int64_t id, std::vector<bool> right, std::vector<int64_t> stop) {
  infer::PuzzleResult pr;
  pr.puzzle = id;
  for (int64_t i = 0; i < 4; ++i) {
    infer::TrajectoryResult t;
    t.init = i;
    const bool r4 = right[static_cast<size_t>(i)];
    const int64_t s = stop[static_cast<size_t>(i)];
    t.at_depth = {snap(i == 0 ? infer::Prediction{9} : infer::Prediction{static_cast<uint8_t>(i)}, i == 0,
                       i == 0 ? 1.0 : 0.5, std::min<int64_t>(2, s)),
                  snap(r4 ? infer::Prediction{9} : infer::Prediction{static_cast<uint8_t>(i)}, r4, r4 ? 1.0 : 0.0,
                       s)};
    t.steps = s;
    pr.trajectories.push_back(t);
  }
  return pr;
}

const MetricsRow& find(const std::vector<MetricsRow>& rows, int64_t d, int64_t b, const std::string& agg) {
  for (const auto& r : rows) {
    if (r.depth == d && r.breadth == b && r.aggregator == agg) return r;
  }
  throw std::runtime_error("row not found: " + agg);
}

TEST(EvalMetrics, HistogramPercentileNearestRank) {
  std::map<int64_t, int64_t> h = {{1, 50}, {10, 49}, {100, 1}};
  EXPECT_DOUBLE_EQ(histogram_percentile(h, 50), 1.0);
  EXPECT_DOUBLE_EQ(histogram_percentile(h, 51), 10.0);
  EXPECT_DOUBLE_EQ(histogram_percentile(h, 99), 10.0);
  EXPECT_DOUBLE_EQ(histogram_percentile(h, 100), 100.0);
  EXPECT_DOUBLE_EQ(histogram_percentile({}, 50), 0.0);
}

TEST(EvalMetrics, PointsOfASweep) {
  MetricsAccumulator m({2, 4}, {4, 1}, {});
  m.add(puzzle(0, {false, true, true, false}, {4, 4, 4, 4}));  // depth 4: inits 1, 2 right, same grid 9
  m.add(puzzle(1, {false, false, false, false}, {4, 3, 2, 1}));
  const auto rows = m.rows("fixed", 10, 2.0, 40, 7);
  // names per breadth: b1: mean, majority_vote, most_converged, q_confidence, any_correct (5);
  // b4: + pass@1, pass@2 (7). Two depths.
  EXPECT_EQ(rows.size(), 2u * (5u + 7u));
  EXPECT_EQ(rows.front().depth, 2);
  EXPECT_EQ(rows.front().breadth, 1);
  // depth 2: init 0 is right on both puzzles.
  EXPECT_DOUBLE_EQ(find(rows, 2, 1, "mean").exact_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(find(rows, 2, 4, "mean").exact_accuracy, 0.25);
  EXPECT_DOUBLE_EQ(*find(rows, 2, 4, "mean").cell_accuracy, (1.0 + 0.5 * 3) / 4.0);
  // depth 4, breadth 4: puzzle 0 grids {0, 9, 9, 3} -> vote 9 (right); puzzle 1 all distinct -> init 0 (wrong).
  EXPECT_DOUBLE_EQ(find(rows, 4, 4, "majority_vote").exact_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(find(rows, 4, 4, "pass@1").exact_accuracy, (0.5 + 0.0) / 2.0);
  EXPECT_NEAR(find(rows, 4, 4, "pass@2").exact_accuracy, (1.0 - 1.0 / 6.0) / 2.0, 1e-12);
  EXPECT_FALSE(find(rows, 4, 4, "pass@2").cell_accuracy.has_value());
  EXPECT_DOUBLE_EQ(find(rows, 4, 4, "any_correct").exact_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(find(rows, 4, 1, "mean").exact_accuracy, 0.0);
  // Steps: depth 4 breadth 4 over 8 trajectories: 4,4,4,4,4,3,2,1 -> mean 26/8, p50 4, NFE/puzzle 13.
  const auto& r = find(rows, 4, 4, "mean");
  EXPECT_DOUBLE_EQ(r.steps_mean, 26.0 / 8.0);
  EXPECT_DOUBLE_EQ(r.steps_p50, 4.0);
  EXPECT_DOUBLE_EQ(r.steps_p99, 4.0);
  EXPECT_DOUBLE_EQ(r.nfe_per_puzzle, 13.0);
  EXPECT_DOUBLE_EQ(r.block_applications_per_puzzle, 130.0);
  EXPECT_EQ(r.n_puzzles, 2);
  EXPECT_EQ(r.seed, 7u);
  EXPECT_EQ(r.scheduler, "fixed");
  // Timing: the point did 26 of the 40 trajectory-steps of a 2 s run.
  EXPECT_DOUBLE_EQ(r.point_time_s, 2.0 * 26.0 / 40.0);
  EXPECT_DOUBLE_EQ(r.puzzles_per_s, 2.0 / r.point_time_s);
  // depth 2: steps min(2, stop): 2,2,2,2,2,2,2,1
  EXPECT_DOUBLE_EQ(find(rows, 2, 4, "mean").steps_mean, 15.0 / 8.0);
  EXPECT_DOUBLE_EQ(find(rows, 2, 1, "mean").nfe_per_puzzle, 2.0);
  // Sum over points: d2: b1 4 + b4 15; d4: b1 8 + b4 26.
  EXPECT_EQ(m.sum_of_point_steps(), 4 + 15 + 8 + 26);
}

TEST(EvalMetrics, RejectsTooFewTrajectories) {
  MetricsAccumulator m({2, 4}, {8}, {});
  EXPECT_THROW(m.add(puzzle(0, {true, true, true, true}, {4, 4, 4, 4})), Error);
}

}  // namespace
}  // namespace eqr::eval
