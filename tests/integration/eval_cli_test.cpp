// `eqr eval` and `eqr solve` end to end on a tiny checkpoint saved here with io::save_checkpoint (4x4 boards,
// hidden 16): report.json / report.csv fields, adaptive steps, usage errors, solve from args and stdin,
// and (when `eqr train` is available) a checkpoint trained with configs/ci_tiny.yaml.

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "eqr/config/load.h"
#include "eqr/io/checkpoint.h"
#include "eqr/model/eqr_model.h"
#include "echo_model.h"
#include "fixtures.h"
#include "test_support.h"

namespace eqr::test {
namespace {

namespace fs = std::filesystem;

/// Saves a freshly initialised model of `c` (weights seeded by `seed`) as a native checkpoint; with `ema`
/// the same weights also go in as the EMA shadow.
void save_model_checkpoint(const config::RunConfig& c, int seed, bool ema, const fs::path& path) {
  torch::manual_seed(seed);
  model::EqrModel m(model::EqrModelOptions(c.arch, c.compute));
  io::Checkpoint ck;
  for (const auto& kv : m->state_dict()) {
    ck.tensors["model/" + kv.key()] = kv.value().detach().clone();
    if (ema) ck.tensors["ema/" + kv.key()] = kv.value().detach().clone();
  }
  ck.meta["config"] = config::to_json(c);
  ck.meta["step"] = 3;
  io::save_checkpoint(ck, path.string());
}

struct Fixture {
  fs::path dir, ckpt, csv;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.dir = temp_dir("eval_cli");
    config::RunConfig c;
    test::shrink_to_width16(c.arch);
    c.arch.seq_len = 16;
    c.arch.vocab_size = 6;
    c.arch.board_height = 4;
    c.arch.board_width = 4;
    c.data.box_rows = 2;
    c.data.box_cols = 2;
    c.num_threads = 1;
    x.ckpt = x.dir / "tiny.eqrckpt";
    save_model_checkpoint(c, 4, true, x.ckpt);
    x.csv = x.dir / "tiny.csv";
    const std::string ans = "1234341221434321";
    write_file(x.csv, "source,question,answer,rating\n"
                      "t,1.3.3.1.2.4.4.2.," + ans + ",0\n"
                      "t,.234.412.143.321," + ans + ",0\n"
                      "t,12..34..21..43..," + ans + ",1\n"
                      "t,1234........4321," + ans + ",2\n"
                      "t,..3.3...2.4...2.," + ans + ",3\n");
    return x;
  }();
  return f;
}

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(EvalCli, FixedSweepWritesReportJsonAndCsv) {
  const auto& f = fixture();
  const fs::path out = f.dir / "fixed";
  const auto r = run_eqr("eval --checkpoint " + f.ckpt.string() + " --csv " + f.csv.string() +
                         " --depth 3,1 --breadth 2,1 --seed 9 --device cpu --convergence-top-k 2 --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("headline: exact_accuracy", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("depth 3, breadth 2"), std::string::npos);
  EXPECT_NE(r.out.find("seed 9"), std::string::npos);
  const auto j = nlohmann::json::parse(read_file(out / "report.json"));
  EXPECT_EQ(j["meta"]["checkpoint_format"], "native");
  EXPECT_EQ(j["meta"]["weights"], "ema");
  EXPECT_EQ(j["meta"]["n_puzzles"], 5);
  EXPECT_EQ(j["meta"]["depths"], nlohmann::json({1, 3}));
  EXPECT_EQ(j["headline"]["aggregator"], "majority_vote");
  // b1: mean, majority_vote, most_converged, convergence_top2, q_confidence, any_correct, verified_select;
  // b2: + pass@1. Two depths.
  ASSERT_EQ(j["rows"].size(), 2u * (7u + 8u));
  for (const auto& row : j["rows"]) {
    for (const char* k : {"exact_accuracy", "n_puzzles", "steps_mean", "steps_p50", "steps_p99", "nfe_per_puzzle",
                          "block_applications_per_puzzle", "wall_time_s", "puzzles_per_s", "seed"}) {
      EXPECT_TRUE(row.contains(k)) << k;
    }
    EXPECT_EQ(row["steps_mean"].get<double>(), row["depth"].get<double>());
    EXPECT_DOUBLE_EQ(row["nfe_per_puzzle"].get<double>(), row["depth"].get<double>() * row["breadth"].get<double>());
    // blocks per step: h_cycles 2 * (l_cycles 1 + 1) * l_layers 1 = 4
    EXPECT_DOUBLE_EQ(row["block_applications_per_puzzle"].get<double>(), 4 * row["nfe_per_puzzle"].get<double>());
  }
  EXPECT_EQ(j["trace"]["residual_mean"].size(), 3u);
  EXPECT_EQ(j["trace"]["rows"][0], 10);
  EXPECT_EQ(j["cost"]["trajectory_steps_done"], 5 * 2 * 3);
  EXPECT_EQ(j["cost"]["trajectory_steps_if_each_point_ran_alone"], 5 * (1 + 3) * (1 + 2));
  const std::string csv = read_file(out / "report.csv");
  EXPECT_EQ(lines(csv), 1 + j["rows"].size());
  EXPECT_EQ(csv.rfind("depth,breadth,aggregator,scheduler,exact_accuracy,cell_accuracy,valid_accuracy,n_puzzles", 0), 0u);
  EXPECT_TRUE(fs::exists(out / "trace.csv"));
  EXPECT_TRUE(fs::exists(out / "config.yaml"));
}

TEST(EvalCli, AdaptiveSchedulerReportsStepsUsed) {
  const auto& f = fixture();
  const fs::path out = f.dir / "adaptive";
  const auto r = run_eqr("eval --checkpoint " + f.ckpt.string() + " --csv " + f.csv.string() +
                         " --depth 2,6 --breadth 1 --scheduler adaptive --tol 1e9 --patience 2 --device cpu --out " +
                         out.string() + " --set arch.noise_scale=0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(read_file(out / "report.json"));
  EXPECT_EQ(j["meta"]["scheduler"], "adaptive");
  EXPECT_EQ(j["meta"]["noise_scale"], 0.0);
  for (const auto& row : j["rows"]) EXPECT_DOUBLE_EQ(row["steps_mean"].get<double>(), 2.0);  // every row stops at 2
  EXPECT_EQ(j["diagnostics"]["steps_histogram"]["2"], 5);
}

TEST(EvalCli, UsageAndCheckpointErrors) {
  const auto& f = fixture();
  auto r = run_eqr("eval --checkpoint " + f.ckpt.string() + " --csv " + f.csv.string() + " --depth 0 --device cpu");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_eqr("eval --checkpoint " + f.ckpt.string() + " --csv " + f.csv.string() + " --depth 1,x --device cpu");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_eqr("eval --checkpoint " + f.ckpt.string() + " --csv a.csv --data b --device cpu");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_eqr("eval --checkpoint " + (f.dir / "missing.eqrckpt").string() + " --csv " + f.csv.string());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("missing.eqrckpt"), std::string::npos) << r.err;
  // A 9x9 CSV on a 4x4 model: a data error naming the file.
  const fs::path big = f.dir / "big.csv";
  write_file(big, "source,question,answer,rating\nx," + std::string(81, '.') +
                      ",123456789456789123789123456214365897365897214897214365531642978642978531978531642,0\n");
  r = run_eqr("eval --checkpoint " + f.ckpt.string() + " --csv " + big.string() + " --device cpu --out " +
              (f.dir / "big").string());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("big.csv"), std::string::npos) << r.err;
}

/// What `eqr solve` printed for one puzzle: the verdict line's word and the solution as one line.
struct SolvedPuzzle {
  std::string verdict;   // "yes" or "no (...)"
  std::string solution;  // the grid line after "solution: "
};

std::vector<SolvedPuzzle> solved_puzzles(const std::string& out) {
  std::vector<SolvedPuzzle> found;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("valid solution: ", 0) == 0) found.push_back({line.substr(16), ""});
    if (line.rfind("solution: ", 0) == 0 && !found.empty()) found.back().solution = line.substr(10);
  }
  return found;
}

/// A 4x4 Sudoku check written here, apart from eqr's: `solution` is 16 digits 1-4 that keep the givens of
/// `puzzle` ('.' = blank) with no repeat in a row, a column or a 2x2 box.
bool valid_4x4(const std::string& puzzle, const std::string& solution) {
  if (solution.size() != 16 || puzzle.size() != 16) return false;
  for (int i = 0; i < 16; ++i) {
    if (solution[i] < '1' || solution[i] > '4') return false;
    if (puzzle[i] != '.' && puzzle[i] != solution[i]) return false;
  }
  for (int u = 0; u < 4; ++u) {
    std::set<char> row, col, box;
    for (int k = 0; k < 4; ++k) {
      row.insert(solution[u * 4 + k]);
      col.insert(solution[k * 4 + u]);
      box.insert(solution[(u / 2 * 2 + k / 2) * 4 + u % 2 * 2 + k % 2]);
    }
    if (row.size() != 4 || col.size() != 4 || box.size() != 4) return false;
  }
  return true;
}

TEST(EvalCli, SolvePrintsAValidSolutionWhenTheModelGivesOne) {
  // The echo model predicts its input (support/echo_model.h), so the answer is known before the run: a
  // complete, correct grid comes back as a valid solution, and a puzzle with blanks comes back with its
  // blanks, which is not one.
  const auto& f = fixture();
  config::RunConfig c = config::load((source_dir() / "configs" / "ci_tiny.yaml").string());
  test::shrink_to_width16(c.arch);
  c.num_threads = 1;
  const fs::path echo = f.dir / "echo.eqrckpt";
  save_echo_checkpoint(c, echo);
  auto r = run_eqr("solve --checkpoint " + echo.string() + " 1234341221434321 --depth 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto solved = solved_puzzles(r.out);
  ASSERT_EQ(solved.size(), 1u) << r.out;
  EXPECT_EQ(solved[0].verdict, "yes") << r.out;
  EXPECT_EQ(solved[0].solution, "1234341221434321") << r.out;
  EXPECT_NE(r.out.find("puzzle 1 (16 givens)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1/1 valid"), std::string::npos) << r.out;
  // From zero states the first step lands on the fixed point (every state 4 e_t: rms 1 over D = 16), so the
  // residuals are |(z_H, z_L)| = sqrt(2 * 16 cells * 4^2) = 22.6, then 0.
  EXPECT_NE(r.out.find("residual trace: 1:22.6 2:0\n"), std::string::npos) << r.out;

  r = run_eqr("solve --checkpoint " + echo.string() + " 1234341221434321 .234.412.143.321 --depth 2 --breadth 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  solved = solved_puzzles(r.out);
  ASSERT_EQ(solved.size(), 2u) << r.out;
  EXPECT_EQ(solved[0].verdict, "yes") << r.out;
  EXPECT_EQ(solved[1].verdict, "no (blank at row 1 column 1)") << r.out;
  EXPECT_EQ(solved[1].solution, ".234.412.143.321") << r.out;
  EXPECT_NE(r.out.find("majority of 2 trajectories (2 agree)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1/2 valid"), std::string::npos) << r.out;
}

TEST(EvalCli, SolveFromArgumentsAndStdin) {
  // An untrained model solves nothing reliably, so its verdicts are not fixed in advance; each one must agree
  // with the Sudoku rules checked here on the printed solution, and the tally with the verdicts.
  const auto& f = fixture();
  auto r = run_eqr("solve --checkpoint " + f.ckpt.string() + " .234.412.143.321 --depth 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto solved = solved_puzzles(r.out);
  ASSERT_EQ(solved.size(), 1u) << r.out;
  const bool valid = valid_4x4(".234.412.143.321", solved[0].solution);
  EXPECT_EQ(solved[0].verdict.rfind(valid ? "yes" : "no (", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(valid ? "1/1 valid" : "0/1 valid"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("steps used: 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("residual trace: 1:"), std::string::npos) << r.out;

  r = run_eqr("solve --checkpoint " + f.ckpt.string() + " --depth 2 --breadth 3 < " + f.csv.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("puzzle 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("majority of 3 trajectories"), std::string::npos) << r.out;
  solved = solved_puzzles(r.out);
  const std::vector<std::string> questions = {"1.3.3.1.2.4.4.2.", ".234.412.143.321", "12..34..21..43..",
                                              "1234........4321", "..3.3...2.4...2."};
  ASSERT_EQ(solved.size(), questions.size()) << r.out;
  int valid_count = 0;
  for (size_t i = 0; i < questions.size(); ++i) {
    const bool ok = valid_4x4(questions[i], solved[i].solution);
    valid_count += ok ? 1 : 0;
    EXPECT_EQ(solved[i].verdict.rfind(ok ? "yes" : "no (", 0), 0u) << "puzzle " << i + 1 << "\n" << r.out;
  }
  EXPECT_NE(r.out.find(std::to_string(valid_count) + "/5 valid"), std::string::npos) << r.out;
  r = run_eqr("solve --checkpoint " + f.ckpt.string() + " 12x4............");
  EXPECT_NE(r.exit_code, 0);
}

TEST(EvalCli, EvaluatesACheckpointTrainedByEqrTrain) {
  const fs::path run = temp_dir("eval_train");
  auto r = run_eqr("train --config " + (source_dir() / "configs" / "ci_tiny.yaml").string() + " --set output_root=" +
                   run.string() + " --set name=t --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The run directory stands for its latest checkpoint (step 6 of ci_tiny).
  const fs::path out = run / "eval";
  r = run_eqr("eval --checkpoint " + (run / "t").string() + " --depth 1,2 --breadth 1,2 --device cpu --out " +
              out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(read_file(out / "report.json"));
  EXPECT_EQ(j["meta"]["n_puzzles"].get<int64_t>(), 16);  // ci_tiny's generated test split
  EXPECT_EQ(j["meta"]["geometry"], "4x4");
  EXPECT_NE(r.err.find("step_6.eqrckpt"), std::string::npos) << r.err;
  // A directory without checkpoints is refused with a message.
  r = run_eqr("eval --checkpoint " + out.string() + " --device cpu");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("without checkpoints"), std::string::npos) << r.err;
}

TEST(EvalCli, RunsOnTheExternalHardSetsDirectly) {
  // The public 9x9 sets in ../shared/data/external/ (Sudoku-Extreme CSV layout), read by --csv as they are,
  // with an untrained 9x9 model: this checks reading, geometry and reporting, not accuracy.
  const fs::path ext = shared_dir() / "data" / "external";
  if (!fs::exists(ext)) GTEST_SKIP() << "no " << ext;
  const fs::path dir = temp_dir("eval_external");
  config::RunConfig c;
  c.arch.hidden_size = 16;
  c.arch.num_heads = 2;
  c.arch.expansion = 1.0;
  c.arch.l_layers = 1;
  c.arch.h_cycles = 1;
  c.arch.l_cycles = 1;
  c.num_threads = 1;
  const fs::path ckpt = dir / "nine.eqrckpt";
  save_model_checkpoint(c, 5, false, ckpt);
  int sets = 0;
  for (const auto& e : fs::recursive_directory_iterator(ext)) {
    if (e.path().extension() != ".csv") continue;
    ++sets;
    const fs::path out = dir / e.path().stem();
    const auto r = run_eqr("eval --checkpoint " + ckpt.string() + " --csv " + e.path().string() +
                           " --max-puzzles 3 --depth 1,2 --breadth 1 --device cpu --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << e.path() << "\n" << r.err;
    const auto j = nlohmann::json::parse(read_file(out / "report.json"));
    EXPECT_EQ(j["meta"]["n_puzzles"], 3) << e.path();
    EXPECT_EQ(j["meta"]["geometry"], "9x9") << e.path();
  }
  EXPECT_GE(sets, 5);  // tdoku x4 (17-clue, forum hardest, magictour, test puzzles) and norvig's top95/hardest
}

}  // namespace
}  // namespace eqr::test
