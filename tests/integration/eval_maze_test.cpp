// Maze-Unique through the task seam end to end: `eqr train` with data.task = maze on 7x7 mazes (configs/
// ci_tiny.yaml's model), then `eqr eval` of its checkpoint (report meta names the task, verified_select uses
// the maze verifier) and `eqr solve` of a maze given as text, by that model and by an echo model whose answers
// are known in advance; no maze code outside task/.

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "eqr/config/load.h"
#include "echo_model.h"
#include "test_support.h"

namespace eqr::test {
namespace {

/// The rest of the first line of `out` that starts with `prefix` ("" if none).
std::string line_after(const std::string& out, const std::string& prefix) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

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
  // A 7x7 maze as one line ('.' = open): S at row 2 column 2, G at row 2 column 6. It has a loop, so exactly
  // two simple S-G paths exist (written out below), and a prediction is valid iff it marks one of them.
  const std::string maze = "#######"
                           "#S...G#"
                           "#.###.#"
                           "#.#...#"
                           "#.#.###"
                           "#.....#"
                           "#######";
  const std::string short_path = "#######"
                                 "#SoooG#"
                                 "# ### #"
                                 "# #   #"
                                 "# # ###"
                                 "#     #"
                                 "#######";
  const std::string long_path = "#######"
                                "#S   G#"
                                "#o###o#"
                                "#o#ooo#"
                                "#o#o###"
                                "#ooo  #"
                                "#######";
  // The model trained for a few steps rarely finds either, so its verdict is not fixed in advance: it must
  // agree with the printed path.
  r = run_eqr("solve --checkpoint " + (dir / "m").string() + " --depth 2 '" + maze + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("S-G distance 4"), std::string::npos) << r.out;
  {
    const std::string solution = line_after(r.out, "solution: ");
    const bool valid = solution == short_path || solution == long_path;
    EXPECT_EQ(line_after(r.out, "valid solution: ").rfind(valid ? "yes" : "no (", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(valid ? "1/1 valid" : "0/1 valid"), std::string::npos) << r.out;
  }

  // The echo model (support/echo_model.h) predicts its input, a maze without 'o' cells: valid exactly when S
  // and G are neighbours (the path has no inner cell), and otherwise rejected for the reason printed.
  config::RunConfig c = config::load((source_dir() / "configs" / "ci_tiny.yaml").string(),
                                     {"data.task=maze", "arch.seq_len=49", "arch.vocab_size=6", "arch.board_height=7",
                                      "arch.board_width=7"});
  const auto echo = dir / "echo.eqrckpt";
  save_echo_checkpoint(c, echo);
  std::string adjacent = maze;
  adjacent[9] = 'G';  // row 2, column 3
  adjacent[12] = '.';
  r = run_eqr("solve --checkpoint " + echo.string() + " --depth 2 '" + adjacent + "' '" + maze + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("puzzle 1 (S-G distance 1)"), std::string::npos) << r.out;
  std::istringstream lines(r.out);
  std::vector<std::string> verdicts, solutions;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("valid solution: ", 0) == 0) verdicts.push_back(line.substr(16));
    if (line.rfind("solution: ", 0) == 0) solutions.push_back(line.substr(10));
  }
  ASSERT_EQ(verdicts.size(), 2u) << r.out;
  ASSERT_EQ(solutions.size(), 2u) << r.out;
  std::string adjacent_out = adjacent, maze_out = maze;
  std::replace(adjacent_out.begin(), adjacent_out.end(), '.', ' ');
  std::replace(maze_out.begin(), maze_out.end(), '.', ' ');
  EXPECT_EQ(verdicts[0], "yes") << r.out;
  EXPECT_EQ(solutions[0], adjacent_out) << r.out;
  EXPECT_EQ(verdicts[1],
            "no (start 'S' at row 2, column 2 has 0 marked neighbours, expected 1 (the path does not reach it))")
      << r.out;
  EXPECT_EQ(solutions[1], maze_out) << r.out;
  EXPECT_NE(r.out.find("1/2 valid"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace eqr::test
