#pragma once
// Maze-Unique behind the task seam (task.h): the maze code of maze.h as a Task. The side n comes from
// arch.seq_len = n * n (5 <= n <= 512), V = 6 (maze.h's tokens). Data: source "generated" draws
// data.generate_train + data.generate_test mazes in one call (train first, so the splits never share a maze;
// paths of the side's default lengths, seed data.seed), built in memory on every run (38,000 30x30 mazes/s);
// source "built" reads data.data_path in the reference's numpy layout (load_maze_split's checks). Text form:
// n*n characters of "# SGo" row-major ('.' is read as an open cell too), or n rows of n characters.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eqr/config/config.h"
#include "eqr/task/maze/maze.h"
#include "eqr/task/task.h"

namespace eqr::task {

/// The `data.task` value of this task.
constexpr const char* kMazeTaskName = "maze";

class MazeTask : public Task {
 public:
  /// Side from config.arch.seq_len (ConfigError unless a square of a side in [kMinMazeSize, kMaxMazeSize]);
  /// the data section drives load_or_build and generate.
  explicit MazeTask(const config::RunConfig& config);
  /// A side alone (data section: defaults).
  explicit MazeTask(int size);

  int size() const { return size_; }

  // Task (task.h):
  std::string name() const override { return kMazeTaskName; }
  TaskGeometry geometry() const override;
  /// Task::check_config, and no CSV source.
  void check_config(const config::RunConfig& config) const override;
  /// verify_maze(...).valid (false for an input that is not a maze).
  bool is_valid(const uint8_t* input, const uint8_t* prediction) const override;
  /// verify_maze(...).reason.
  std::string problem(const uint8_t* input, const uint8_t* prediction) const override;
  /// format_maze.
  std::string format(const uint8_t* tokens) const override;
  std::string format_line(const uint8_t* tokens) const override;
  /// "S-G distance <d>".
  std::string describe(const uint8_t* input) const override;
  /// generated (train + test in one call) or built (load_split).
  data::SplitData load_or_build(const std::string& split) const override;
  /// load_maze_split's checks, then Task::load_split.
  data::SplitData load_split(const std::string& dir, const std::string& split) const override;
  /// A text file of mazes: one maze per line of n*n characters, or blocks of n rows (blank lines between).
  PuzzleSet read_file(const std::string& path, int64_t max_puzzles = 0) const override;
  /// Mazes as text; labels: the shortest S-G path when it is unique, else data::kIgnoreLabelId.
  PuzzleSet parse_puzzles(const std::vector<std::string>& texts) const override;
  /// generate_mazes (the side's default path lengths).
  PuzzleSet generate(int64_t count, uint64_t seed) const override;

 private:
  config::DataConfig data_;
  int size_ = 30;
};

/// The label of a maze input: the input with the inner cells of its shortest S-G path set to 'o' when that
/// path is unique; nullopt-like empty vector when G is unreachable or the shortest path is not unique.
/// input: (S) tokens, S = size * size.
std::vector<uint8_t> solve_maze(const uint8_t* input, int size);

/// Mazes as a built split (the numpy layout's fields; one puzzle and one group per maze, no padding).
data::SplitData maze_split(const std::string& name, const std::vector<Maze>& mazes);

/// A maze dataset in the reference's numpy layout (`eqr data generate --task maze`): opts.count train mazes and
/// `test_count` test mazes from one generate_mazes call (train first; no test maze repeats a training one),
/// with a manifest naming the task and the generator's knobs. Write it with data::write_dataset.
data::BuiltDataset build_maze_dataset(const MazeGeneratorOptions& opts, int64_t test_count);

/// The registry's constructor (task.cpp).
std::shared_ptr<const Task> make_maze_task(const config::RunConfig& config);
/// `eqr data generate|inspect|build --task maze` (cli.cpp).
std::vector<TaskVerb> maze_verbs();

}  // namespace eqr::task
