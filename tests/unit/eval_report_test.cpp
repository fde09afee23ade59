// evaluate() end to end on a tiny random model: report rows, traces, cost model, files on disk; and the
// verified_* validity check.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/eval/report.h"
#include "eqr/task/sudoku/sudoku_task.h"
#include "fixtures.h"
#include "test_support.h"

namespace eqr::eval {
namespace {

model::EqrModel tiny_model() {
  config::ArchConfig a;
  test::shrink_to_width16(a);  // width 16, 2 heads, expansion 1, one layer, h_cycles 2, l_cycles 1
  a.seq_len = 16;
  a.vocab_size = 6;
  a.board_height = 4;
  a.board_width = 4;
  torch::manual_seed(2);
  return model::EqrModel(model::EqrModelOptions(a, test::float32_compute()));
}

infer::PuzzleSet puzzles() {
  return task::SudokuTask(sudoku::Geometry::from_side(4))
      .parse_puzzles({"1.3.3.1.2.4.4.2.", ".234.412.143.321", "12..34..21..43..", "4321........1234",
                      "2.4.4.2.3.1.1.3."});
}

TEST(EvalReport, ValidityCheckKeepsGivens) {
  const auto g = sudoku::Geometry::from_side(4);
  const infer::Prediction sol = {2, 3, 4, 5, 4, 5, 2, 3, 3, 2, 5, 4, 5, 4, 3, 2};  // 1234/3412/2143/4321
  std::vector<uint8_t> inputs(16, 1);
  EXPECT_TRUE(task::SudokuTask(g).is_valid(inputs.data(), sol.data()));
  inputs[0] = 3;  // a given '2' the solution does not keep
  EXPECT_FALSE(task::SudokuTask(g).is_valid(inputs.data(), sol.data()));
  inputs[0] = 1;
  infer::Prediction bad = sol;
  std::swap(bad[0], bad[1]);  // breaks columns
  EXPECT_FALSE(task::SudokuTask(g).is_valid(inputs.data(), bad.data()));
  bad = sol;
  bad[3] = 1;  // a blank is not a digit
  EXPECT_FALSE(task::SudokuTask(g).is_valid(inputs.data(), bad.data()));
}

TEST(EvalReport, SweepRowsTraceCostAndFiles) {
  auto m = tiny_model();
  EvalSpec spec;
  spec.runner.depths = {4, 1, 2};
  spec.runner.batch_puzzles = 2;
  spec.runner.seed = 3;
  spec.breadths = {2, 1};
  spec.convergence_top_k = 2;
  spec.save_row_traces = true;
  const EvalReport rep = evaluate(m, puzzles(), spec, {{"checkpoint", "none"}});
  // names b1: mean, majority_vote, most_converged, convergence_top2, q_confidence, any_correct, verified_select (7)
  // b2: + pass@1 (8); 3 depths.
  EXPECT_EQ(rep.rows.size(), 3u * (7u + 8u));
  const MetricsRow& h = rep.headline();
  EXPECT_EQ(h.depth, 4);
  EXPECT_EQ(h.breadth, 2);
  EXPECT_EQ(h.aggregator, "majority_vote");
  EXPECT_EQ(h.seed, 3u);
  EXPECT_EQ(h.n_puzzles, 5);
  EXPECT_EQ(rep.summary.trace.rows.size(), 4u);
  EXPECT_EQ(rep.summary.trajectory_steps, 5 * 2 * 4);
  // Cost model: one 4-step, breadth-2 run serves depths 1, 2, 4 x breadths 1, 2:
  // sum over points of steps = 5 puzzles x (1+2+4) x (1+2) = 105 vs 40 done.
  EXPECT_EQ(rep.cost["trajectory_steps_if_each_point_ran_alone"].get<int64_t>(), 105);
  EXPECT_NEAR(rep.cost["saving_factor"].get<double>(), 105.0 / 40.0, 1e-12);
  EXPECT_EQ(rep.row_traces.size(), 10u);

  const auto dir = test::temp_dir("eval_report");
  write_report(rep, dir.string());
  const auto j = nlohmann::json::parse(test::read_file(dir / "report.json"));
  EXPECT_EQ(j["meta"]["checkpoint"], "none");
  EXPECT_EQ(j["meta"]["scheduler"], "fixed");
  EXPECT_EQ(j["headline"]["aggregator"], "majority_vote");
  EXPECT_EQ(j["rows"].size(), rep.rows.size());
  EXPECT_EQ(j["trace"]["residual_mean"].size(), 4u);
  EXPECT_TRUE(j["diagnostics"].contains("auroc"));
  EXPECT_TRUE(j["diagnostics"].contains("landscape"));
  const std::string csv = test::read_file(dir / "report.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "depth,breadth,aggregator,scheduler,exact_accuracy,cell_accuracy,valid_accuracy,n_puzzles,steps_mean,steps_p50,steps_p99,"
            "nfe_per_puzzle,block_applications_per_puzzle,wall_time_s,point_time_s,puzzles_per_s,seed");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), static_cast<long>(rep.rows.size() + 1));
  EXPECT_NE(test::read_file(dir / "trace.csv").find("step,rows,residual_mean"), std::string::npos);
  EXPECT_NE(test::read_file(dir / "row_traces.csv").find("puzzle,init,correct,steps,residuals"), std::string::npos);
  EXPECT_NE(headline_line(rep).find("depth 4, breadth 2"), std::string::npos);
}

}  // namespace
}  // namespace eqr::eval
