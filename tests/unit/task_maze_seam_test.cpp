// Maze-Unique behind the task seam: make_task selects MazeTask from data.task and checks arch against the
// side; generated splits are valid and disjoint; the reference-built fixture reads through load_split;
// text parsing, solving, verifying and printing.

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "eqr/task/maze/maze_task.h"
#include "eqr/task/task.h"
#include "test_support.h"

namespace eqr::task {
namespace {

config::RunConfig maze_config(int side) {
  config::RunConfig c;
  c.data.task = "maze";
  c.data.generate_train = 12;
  c.data.generate_test = 5;
  c.data.data_path = "";  // in memory unless a test sets a cache directory
  c.arch.seq_len = static_cast<int64_t>(side) * side;
  c.arch.vocab_size = kMazeVocabSize;
  return c;
}

TEST(MazeTaskSeam, MakeTaskSelectsMazeAndChecksTheSide) {
  const auto t = make_task(maze_config(11));
  EXPECT_EQ(t->name(), "maze");
  const TaskGeometry g = t->geometry();
  EXPECT_EQ((std::vector<int64_t>{g.seq_len, g.vocab_size, g.board_height, g.board_width}),
            (std::vector<int64_t>{121, 6, 11, 11}));
  EXPECT_EQ(g.board, "11x11");
  auto bad_vocab = maze_config(11);
  bad_vocab.arch.vocab_size = 11;
  EXPECT_THROW(make_task(bad_vocab), ConfigError);
  auto not_square = maze_config(11);
  not_square.arch.seq_len = 120;
  EXPECT_THROW(make_task(not_square), ConfigError);
  auto csv = maze_config(11);
  csv.data.source = config::DataSource::kCsv;
  EXPECT_THROW(make_task(csv), ConfigError);
}

TEST(MazeTaskSeam, GeneratedSplitsAreValidAndDisjoint) {
  const auto t = make_task(maze_config(11));
  const data::SplitData train = t->load_or_build("train");
  const data::SplitData test = t->load_or_build("test");
  ASSERT_EQ(train.num_examples(), 12);
  ASSERT_EQ(test.num_examples(), 5);
  EXPECT_EQ(train.metadata.vocab_size, 6);
  EXPECT_EQ(train.seq_len(), 121);
  std::set<std::vector<uint8_t>> seen;
  for (const data::SplitData* d : {&train, &test}) {
    for (int64_t i = 0; i < d->num_examples(); ++i) {
      EXPECT_TRUE(t->is_valid(d->input_row(i), d->label_row(i))) << d->name << " " << i;
      EXPECT_TRUE(seen.insert(std::vector<uint8_t>(d->input_row(i), d->input_row(i) + 121)).second)
          << "repeated maze " << d->name << " " << i;
    }
  }
  const PuzzleSet ps = puzzles_from_split(test, t);
  EXPECT_EQ(ps.size(), 5);
  EXPECT_EQ(ps.task->name(), "maze");
}

TEST(MazeTaskSeam, GeneratedMazesAreCachedAtDataPathWhileTheManifestMatches) {
  const auto dir = test::temp_dir("maze-cache") / "d";
  auto c = maze_config(11);
  c.data.data_path = dir.string();
  const data::SplitData first = make_task(c)->load_or_build("test");
  ASSERT_TRUE(std::filesystem::exists(dir / "manifest.json"));
  ASSERT_TRUE(std::filesystem::exists(dir / "train" / "all__inputs.npy"));
  // Reused: a mark in the cached test split survives the next call (nothing was regenerated).
  const auto inputs = dir / "test" / "all__inputs.npy";
  const auto stamp = std::filesystem::last_write_time(inputs);
  const data::SplitData again = make_task(c)->load_or_build("test");
  EXPECT_EQ(std::filesystem::last_write_time(inputs), stamp);
  EXPECT_EQ(again.inputs, first.inputs);
  // Another seed does not match the manifest: rebuilt, other mazes.
  c.data.seed = 7;
  const data::SplitData other = make_task(c)->load_or_build("test");
  EXPECT_NE(other.inputs, first.inputs);
  EXPECT_EQ(nlohmann::json::parse(test::read_file(dir / "manifest.json"))["seed"], 7);
  // A directory that holds somebody else's dataset (no manifest) is never overwritten.
  std::filesystem::remove(dir / "manifest.json");
  EXPECT_THROW(make_task(c)->load_or_build("train"), ConfigError);
}

TEST(MazeTaskSeam, ReferenceFixtureReadsThroughLoadSplit) {
  const MazeTask t(30);
  const auto dir = (test::source_dir() / "tests" / "fixtures" / "maze").string();
  const data::SplitData train = t.load_split(dir, "train");
  EXPECT_EQ(train.num_examples(), 6);
  for (int64_t i = 0; i < train.num_examples(); ++i) {
    EXPECT_TRUE(t.is_valid(train.input_row(i), train.label_row(i))) << i;
    // The reference's label is the unique shortest path, which solve_maze finds again.
    EXPECT_EQ(solve_maze(train.input_row(i), 30), std::vector<uint8_t>(train.label_row(i), train.label_row(i) + 900));
  }
  EXPECT_THROW(MazeTask(29).load_split(dir, "train"), DataError);
}

TEST(MazeTaskSeam, ParsesSolvesVerifiesAndPrints) {
  const MazeTask t(11);
  const PuzzleSet gen = t.generate(3, 5);
  ASSERT_EQ(gen.size(), 3);
  // Maze 0 as (S) uint8 tokens: input and label.
  const at::Tensor rows = torch::stack({gen.inputs[0], gen.labels[0]}).to(torch::kUInt8).contiguous();
  const uint8_t* input = rows.data_ptr<uint8_t>();
  const uint8_t* label = input + 121;
  EXPECT_TRUE(t.is_valid(input, label) && t.problem(input, label).empty());
  EXPECT_FALSE(t.is_valid(input, input));  // no path marked
  EXPECT_FALSE(t.problem(input, input).empty());
  EXPECT_NE(t.describe(input).find("S-G distance"), std::string::npos);
  EXPECT_EQ(t.format(label), format_maze(label, 11));

  // Text form: one line of n*n characters ('.' = open) or the printed rows; the label is solved again.
  std::string line = t.format_line(input);
  EXPECT_EQ(line.size(), 121u);
  std::replace(line.begin(), line.end(), ' ', '.');
  const PuzzleSet parsed = t.parse_puzzles({line, format_maze(input, 11)});
  ASSERT_EQ(parsed.size(), 2);
  EXPECT_TRUE(torch::equal(parsed.inputs[0], gen.inputs[0]));
  EXPECT_TRUE(torch::equal(parsed.labels[0], gen.labels[0]));
  EXPECT_TRUE(torch::equal(parsed.labels[1], gen.labels[0]));
  EXPECT_THROW(t.parse_puzzles({"#S G"}), DataError);

  // A file: blocks of rows, blank lines between.
  const auto dir = test::temp_dir("maze-task");
  test::write_file(dir / "m.txt", format_maze(input, 11) + "\n" + t.format_line(input) + "\n");
  const PuzzleSet from_file = t.read_file((dir / "m.txt").string());
  ASSERT_EQ(from_file.size(), 2);
  EXPECT_TRUE(torch::equal(from_file.labels[1], gen.labels[0]));
}

}  // namespace
}  // namespace eqr::task
