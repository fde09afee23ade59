// `eqr data generate|inspect --task maze`: a maze dataset directory in the numpy layout that MazeTask reads
// back (train and test disjoint, every label a valid path), and its statistics.

#include <set>

#include <gtest/gtest.h>

#include "eqr/task/maze/maze_task.h"
#include "test_support.h"

namespace eqr::test {
namespace {

TEST(CliDataMaze, GenerateWritesADatasetThatInspectAndMazeTaskRead) {
  const auto dir = temp_dir("cli_data_maze") / "mazes";
  auto r = run_eqr("data generate --task maze --size 11 --count 20 --test-count 5 --seed 3 --threads 1 --out " +
                   dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const task::MazeTask t(11);
  const data::SplitData train = t.load_split(dir.string(), "train"), test = t.load_split(dir.string(), "test");
  ASSERT_EQ(train.num_examples(), 20);
  ASSERT_EQ(test.num_examples(), 5);
  std::set<std::vector<uint8_t>> seen;
  for (const data::SplitData* d : {&train, &test}) {
    for (int64_t i = 0; i < d->num_examples(); ++i) {
      EXPECT_TRUE(t.is_valid(d->input_row(i), d->label_row(i))) << d->name << " " << i;
      EXPECT_TRUE(seen.insert(std::vector<uint8_t>(d->input_row(i), d->input_row(i) + 121)).second);
    }
  }
  r = run_eqr("data inspect --task maze --examples 1 " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("train:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("test:"), std::string::npos) << r.out;
  EXPECT_EQ(run_eqr("data generate --task chess --out " + dir.string()).exit_code, 2);
}

TEST(CliDataMaze, BuildWritesTheReferenceBuildersLayoutAndRefusesSudokuOptions) {
  const auto root = temp_dir("cli_data_build_maze");
  const auto dir = root / "m";
  auto r = run_eqr("data build --task maze --size 9 --generate-train 8 --generate-test 3 --min-path-length 6 "
                   "--max-path-length 8 --seed 5 -o " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const task::MazeTask t(9);
  const data::SplitData train = t.load_split(dir.string(), "train"), test = t.load_split(dir.string(), "test");
  ASSERT_EQ(train.num_examples(), 8);
  ASSERT_EQ(test.num_examples(), 3);
  EXPECT_EQ(train.metadata.vocab_size, 6);
  for (const data::SplitData* d : {&train, &test}) {
    for (int64_t i = 0; i < d->num_examples(); ++i) {
      EXPECT_TRUE(t.is_valid(d->input_row(i), d->label_row(i))) << d->name << " " << i;
      // Path cells ('o') + 1 = the S-G path length, inside the requested 6..8.
      int64_t path = 0;
      for (int64_t j = 0; j < 81; ++j) path += d->label_row(i)[j] == task::maze_token::kPath;
      EXPECT_GE(path + 1, 6);
      EXPECT_LE(path + 1, 8);
    }
  }
  // The same build as `data generate --task maze` with the same knobs.
  const auto gen = root / "g";
  r = run_eqr("data generate --task maze --size 9 --count 8 --test-count 3 --min-path-length 6 --max-path-length 8 "
              "--seed 5 --out " + gen.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(gen / "train" / "all__inputs.npy"), read_file(dir / "train" / "all__inputs.npy"));
  EXPECT_EQ(read_file(gen / "test" / "all__labels.npy"), read_file(dir / "test" / "all__labels.npy"));
  // Sudoku-only options, a missing split count, and maze options without --task maze are usage errors.
  r = run_eqr("data build --task maze --generate-train 8 --generate-test 3 --num-aug 10 -o " + (root / "x").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--num-aug"), std::string::npos) << r.err;
  EXPECT_EQ(run_eqr("data build --task maze --generate-train 8 -o " + (root / "x").string()).exit_code, 2);
  EXPECT_EQ(run_eqr("data build --size 9 --generate-train 8 --generate-test 3 -o " + (root / "x").string()).exit_code,
            2);
  EXPECT_FALSE(std::filesystem::exists(root / "x"));
}

}  // namespace
}  // namespace eqr::test
