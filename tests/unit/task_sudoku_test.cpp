// The task seam with Sudoku behind it: make_task picks the task of data.task and checks the config against
// its board (the cross-check that was config's), old configs without data.task mean sudoku, reference
// imports get the board of their seq_len, and SudokuTask reads, verifies and prints boards.

#include <gtest/gtest.h>

#include <functional>

#include <torch/torch.h>

#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "eqr/task/sudoku/sudoku_task.h"
#include "eqr/task/task.h"
#include "test_support.h"

namespace eqr::task {
namespace {

/// The message of the ConfigError `fn` throws ("" when it throws none).
std::string config_error_of(const std::function<void()>& fn) {
  try { fn(); } catch (const ConfigError& e) { return e.what(); }
  return "";
}

/// Checks that `msg` holds every needle.
void expect_mentions(const std::string& msg, std::initializer_list<const char*> needles) {
  ASSERT_FALSE(msg.empty()) << "expected a ConfigError";
  for (const char* n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
}

TEST(TaskSeam, DefaultIsSudokuOfTheConfigBoard) {
  const config::RunConfig c;
  EXPECT_EQ(c.data.task, "sudoku");
  const auto t = make_task(c);
  EXPECT_EQ(t->name(), "sudoku");
  const TaskGeometry g = t->geometry();
  EXPECT_EQ(g.seq_len, 81);
  EXPECT_EQ(g.vocab_size, 11);
  EXPECT_EQ(g.board_height, 9);
  EXPECT_EQ(g.board_width, 9);
  EXPECT_EQ(g.board, "9x9");
  // A config written before data.task existed (a checkpoint's) means sudoku.
  const auto old = config::from_json(config::Tree::parse(R"({"data": {"box_rows": 3, "box_cols": 3}})"));
  EXPECT_EQ(make_task(old)->name(), "sudoku");
  EXPECT_EQ(config::to_json(old)["data"]["task"], "sudoku");
}

TEST(TaskSeam, MakeTaskChecksTheBoardAgainstArch) {
  expect_mentions(config_error_of([] {
                    make_task(config::from_json(config::Tree::parse(R"({"data": {"box_rows": 2, "box_cols": 2}})")));
                  }),
                  {"arch.seq_len", "expected seq_len 16", "vocab_size 6"});
  EXPECT_NO_THROW(make_task(config::from_json(config::Tree::parse(
      R"({"data": {"box_rows": 2, "box_cols": 2}, "arch": {"seq_len": 16, "vocab_size": 6}})"))));
  expect_mentions(config_error_of([] {
                    make_task(config::from_json(config::Tree::parse(R"({"data": {"task": "chess"}})")));
                  }),
                  {"data.task", "chess", "sudoku"});
}

TEST(TaskSeam, ReferenceImportsGetTheBoardOfTheirSeqLen) {
  auto tree = config::Tree::parse(R"({"arch": {"seq_len": 36, "vocab_size": 8}})");
  std::vector<std::string> notes;
  complete_imported_config(tree, &notes);
  EXPECT_EQ(tree["data"]["box_rows"], 2);
  EXPECT_EQ(tree["data"]["box_cols"], 3);
  EXPECT_TRUE(notes.empty());
  auto kept = config::Tree::parse(R"({"arch": {"seq_len": 36}, "data": {"box_rows": 3, "box_cols": 2}})");
  complete_imported_config(kept, &notes);
  EXPECT_EQ(kept["data"]["box_rows"], 3);
  auto odd = config::Tree::parse(R"({"arch": {"seq_len": 50}})");
  complete_imported_config(odd, &notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("no standard Sudoku board"), std::string::npos);
}

TEST(SudokuTask, ParsesVerifiesAndPrints) {
  const SudokuTask t(sudoku::Geometry::from_side(4));
  const PuzzleSet ps = t.parse_puzzles({".234.412.143.321"});
  ASSERT_EQ(ps.size(), 1);
  ASSERT_TRUE(ps.task);
  EXPECT_EQ(ps.task->name(), "sudoku");
  const at::Tensor in = ps.inputs[0].to(torch::kUInt8).contiguous();
  const at::Tensor lab = ps.labels[0].to(torch::kUInt8).contiguous();
  const uint8_t* input = in.data_ptr<uint8_t>();
  const uint8_t* label = lab.data_ptr<uint8_t>();
  EXPECT_TRUE(t.is_valid(input, label));
  EXPECT_EQ(t.problem(input, label), "");
  EXPECT_EQ(t.format_line(label), "1234341221434321");
  EXPECT_EQ(t.format_line(input), ".234.412.143.321");
  EXPECT_EQ(t.describe(input), "12 givens");
  EXPECT_FALSE(t.format(label).empty());
  std::vector<uint8_t> changed(label, label + 16);
  std::swap(changed[0], changed[1]);  // keeps rows, breaks columns and a given
  EXPECT_FALSE(t.is_valid(input, changed.data()));
  EXPECT_FALSE(t.problem(input, changed.data()).empty());
  // A slice keeps the task.
  EXPECT_EQ(ps.slice(0, 1).task, ps.task);
}

TEST(SudokuTask, GeneratesSolvedPuzzlesOfItsBoard) {
  const SudokuTask t(sudoku::Geometry::from_side(4));
  const PuzzleSet ps = t.generate(3, 7);
  ASSERT_EQ(ps.size(), 3);
  for (int64_t i = 0; i < 3; ++i) {
    const at::Tensor in = ps.inputs[i].to(torch::kUInt8).contiguous();
    const at::Tensor lab = ps.labels[i].to(torch::kUInt8).contiguous();
    EXPECT_TRUE(t.is_valid(in.data_ptr<uint8_t>(), lab.data_ptr<uint8_t>())) << i;
  }
  EXPECT_TRUE(torch::equal(t.generate(3, 7).inputs, ps.inputs));
}

}  // namespace
}  // namespace eqr::task
