// `eqr data generate|inspect --task maze`: a maze dataset directory in the numpy layout that MazeTask reads
// back (train and test disjoint, every label a valid path), and its statistics.

#include <set>

#include <gtest/gtest.h>

#include "eqr/task/maze_task.h"
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

}  // namespace
}  // namespace eqr::test
