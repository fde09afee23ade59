// Maze-Unique's commands (cli.h): `eqr data generate|inspect|build --task maze`.

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/task/cli.h"
#include "eqr/task/maze/maze.h"
#include "eqr/task/maze/maze_task.h"

namespace eqr::task {

namespace {

// ---- data generate --task maze ----
VerbAction setup_generate(VerbOptions& o) {
  struct Args {
    MazeGeneratorOptions maze;
    int64_t test_count = 100;
    std::string out;
  };
  auto a = std::make_shared<Args>();
  a->maze.count = 1;  // the defaults of the Sudoku generator's shared options
  a->maze.seed = 0;
  a->maze.threads = 0;
  o.add("--size", a->maze.size, "maze: side n")->capture_default_str();
  o.add("--test-count", a->test_count, "maze: test mazes (after the --count training mazes)")->capture_default_str();
  o.add("--min-path-length", a->maze.min_path_length, "maze: shortest path >= this (0 = the side's default)");
  o.add("--max-path-length", a->maze.max_path_length, "maze: shortest path <= this (0 = the side's default)");
  o.add("-n,--count", a->maze.count, "Number of mazes");
  o.add("--seed", a->maze.seed, "Root seed");
  o.add("--threads", a->maze.threads, "Worker threads (0 = all cores)");
  o.add("-o,--out", a->out, "Output (maze: a dataset directory)")->required();
  return [a] {
    const auto t0 = std::chrono::steady_clock::now();
    const data::BuiltDataset built = build_maze_dataset(a->maze, a->test_count);
    data::write_dataset(a->out, built);
    std::printf("wrote %lld train and %lld test %dx%d mazes (paths %d-%d) to %s in %.2fs\n",
                static_cast<long long>(built.train.num_examples()), static_cast<long long>(built.test.num_examples()),
                a->maze.size, a->maze.size, built.manifest["min_path_length"].get<int>(),
                built.manifest["max_path_length"].get<int>(), a->out.c_str(), seconds_since(t0));
  };
}

// ---- data inspect --task maze ----
VerbAction setup_inspect(VerbOptions& o) {
  struct Args {
    std::string dir;
    int examples = 3;
  };
  auto a = std::make_shared<Args>();
  o.add("file", a->dir, "maze: a dataset directory")->required()->check(CLI::ExistingPath);
  o.add("--examples", a->examples, "Pretty-printed examples")->capture_default_str();
  return [a] {
    for (const char* split : {"train", "test"}) {
      const MazeSplit m = load_maze_split(a->dir, split);
      const at::Tensor in = m.inputs.contiguous(), lab = m.labels.contiguous();
      const int64_t n = in.size(0), s = in.size(1);
      std::cout << split << ":\n"
                << format_maze_stats(maze_stats(in.data_ptr<uint8_t>(), lab.data_ptr<uint8_t>(), n, m.size));
      for (int i = 0; i < a->examples && i < n; ++i) {
        std::cout << "\n" << split << " maze " << i * n / a->examples << " (label)\n"
                  << format_maze(lab.data_ptr<uint8_t>() + i * n / a->examples * s, m.size);
      }
      std::cout << "\n";
    }
  };
}

// ---- data build --task maze: the reference's dataset/build_maze_unique_dataset.py ----
VerbAction setup_build(VerbOptions& o) {
  struct Args {
    std::optional<int64_t> generate_train, generate_test;
    int64_t seed = 42;
    int size = 30;
    int min_path_length = 0, max_path_length = 0;
    std::string out;
  };
  auto a = std::make_shared<Args>();
  o.add("--generate-train", a->generate_train, "Generate N training mazes");
  o.add("--generate-test", a->generate_test, "Generate M test mazes");
  o.add("--seed", a->seed, "Seed of the build")->capture_default_str();
  o.add("--size", a->size, "maze: side n (the reference's --grid-size)")->capture_default_str();
  o.add("--min-path-length", a->min_path_length, "maze: shortest path >= this (0 = the side's default; 100 for 30x30)");
  o.add("--max-path-length", a->max_path_length, "maze: shortest path <= this (0 = the side's default; 140 for 30x30)");
  o.add("-o,--out", a->out, "Output directory");
  return [a] {
    EQR_CHECK(a->generate_train.has_value() && a->generate_test.has_value(), UsageError,
              "--task maze needs --generate-train N and --generate-test M (the reference's --train-samples and "
              "--test-samples; the paper used 1000 and 1000)");
    MazeGeneratorOptions g;
    g.size = a->size;
    g.count = *a->generate_train;
    g.seed = static_cast<uint64_t>(a->seed);
    g.min_path_length = a->min_path_length;
    g.max_path_length = a->max_path_length;
    run_build(a->out, [&] { return build_maze_dataset(g, *a->generate_test); });
  };
}

}  // namespace

std::vector<TaskVerb> maze_verbs() {
  return {
      {"data", "generate", "a maze dataset directory", setup_generate},
      {"data", "inspect", "statistics of each split of a numpy-layout directory", setup_inspect},
      {"data", "build", "the reference's build_maze_unique_dataset.py (generated mazes only)", setup_build},
  };
}

}  // namespace eqr::task
