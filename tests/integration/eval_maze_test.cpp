// Maze-Unique through the task seam end to end: `eqr train` with data.task = maze on 7x7 mazes (configs/
// ci_tiny.yaml's model), then `eqr eval` of its checkpoint (report meta names the task, verified_select uses
// the maze verifier) and `eqr solve` of a maze given as text; no maze code outside task/.

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace eqr::test {
namespace {

TEST(EvalMaze, TrainEvalAndSolveThroughTheTaskSeam) {
  const auto dir = temp_dir("eval_maze");
  const std::string maze_set = " --set data.task=maze --set arch.seq_len=49 --set arch.vocab_size=6"
                               " --set arch.board_height=7 --set arch.board_width=7";
  auto r = run_eqr("train --config " + (source_dir() / "configs" / "ci_tiny.yaml").string() + maze_set +
                   " --set output_root=" + dir.string() + " --set name=m");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_eqr("eval --checkpoint " + (dir / "m").string() + " --set eval.depth=[2] --out " + (dir / "e").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(read_file(dir / "e" / "report.json"));
  EXPECT_EQ(j["meta"]["task"], "maze");
  EXPECT_EQ(j["meta"]["geometry"], "7x7");
  bool verified = false;
  for (const auto& row : j["rows"]) {
    verified = verified || row["aggregator"] == "verified_select";
    // The maze verifier scores every chosen path: valid_accuracy is a number in [0, 1], at least exact's
    // share (an exact path is a valid one).
    if (row["aggregator"] == "majority_vote") {
      ASSERT_TRUE(row["valid_accuracy"].is_number()) << row.dump();
      EXPECT_GE(row["valid_accuracy"].get<double>(), row["exact_accuracy"].get<double>());
      EXPECT_LE(row["valid_accuracy"].get<double>(), 1.0);
    }
  }
  EXPECT_TRUE(verified);
  // A 7x7 maze as one line ('.' = open): S at row 2 column 2, G at row 2 column 6.
  const std::string maze = "#######"
                           "#S...G#"
                           "#.###.#"
                           "#.#...#"
                           "#.#.###"
                           "#.....#"
                           "#######";
  r = run_eqr("solve --checkpoint " + (dir / "m").string() + " --depth 2 '" + maze + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("S-G distance 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("valid solution: "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace eqr::test
