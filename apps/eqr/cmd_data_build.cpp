// `eqr data build`: writes a dataset in the reference's numpy layout (docs/dataset_format.md) from
// Sudoku-Extreme CSVs or from the generator, or (--task maze) generated mazes as the reference's maze builder
// writes them. Thin: flags -> config::DataConfig -> data::build_dataset.
// `eqr bench loader`: batches per second of data::Loader on a built split (checked first, then timed).

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "eqr/config/config.h"
#include "eqr/core/error.h"
#include "eqr/core/version.h"
#include "eqr/data/board.h"
#include "eqr/data/dataset.h"
#include "eqr/data/loader.h"
#include "eqr/task/maze_task.h"

namespace eqr::app {

namespace {

struct BuildArgs {
  std::string train_csv, test_csv, out, geometry = "9x9", box;
  std::optional<int64_t> generate_train, generate_test, subsample, min_difficulty;
  int64_t num_aug = 0;
  int64_t seed = 42;
  int64_t min_givens = 0, max_givens = 0, min_rating = 0;
  bool skip_invalid = false;
  bool reference_dtypes = false;
  // --task maze: the reference's dataset/build_maze_unique_dataset.py (--grid-size, --min/max-path-length).
  std::string task = "sudoku";
  int maze_size = 30;
  int min_path_length = 0, max_path_length = 0;
  std::vector<std::string> sudoku_only;  // Sudoku options given on the command line (refused with --task maze)
};

config::DataConfig to_config(const BuildArgs& a) {
  const bool csv = !a.train_csv.empty();
  const bool gen = a.generate_train.has_value();
  EQR_CHECK(csv != gen, UsageError,
            csv ? "give either --train-csv or --generate-train, not both"
                : "give the training source: --train-csv FILE (with --test-csv FILE) or --generate-train N");
  EQR_CHECK(gen || !a.test_csv.empty() || a.generate_test.has_value(), UsageError,
            "--train-csv needs a test split: --test-csv FILE or --generate-test M");
  EQR_CHECK(a.test_csv.empty() || !a.generate_test.has_value(), UsageError,
            "give either --test-csv or --generate-test, not both");
  EQR_CHECK(!gen || a.test_csv.empty(), UsageError, "--generate-train goes with --generate-test, not --test-csv");
  const data::Geometry g = a.box.empty() ? data::Geometry::parse_side(a.geometry) : data::Geometry::parse_box(a.box);
  config::DataConfig c;
  c.source = csv ? "csv" : "generated";
  c.data_path = a.out;
  c.train_csv = a.train_csv;
  c.test_csv = a.test_csv;
  c.box_rows = g.box_rows;
  c.box_cols = g.box_cols;
  c.subsample_size = a.subsample;
  c.num_aug = a.num_aug;
  c.min_difficulty = a.min_difficulty;
  c.seed = a.seed;
  if (a.generate_train) c.generate_train = *a.generate_train;
  if (a.generate_test) c.generate_test = *a.generate_test;
  c.generate_min_givens = a.min_givens;
  c.generate_max_givens = a.max_givens;
  c.generate_min_rating = a.min_rating;
  c.skip_invalid = a.skip_invalid;
  return c;
}

/// --task maze: generated mazes only, both splits from one generator call (the reference's builder).
data::BuiltDataset build_mazes(const BuildArgs& a) {
  EQR_CHECK(a.sudoku_only.empty(), UsageError, "--task maze does not take ", a.sudoku_only.front(),
            " (mazes are generated, never augmented or subsampled); give --generate-train N --generate-test M "
            "[--size n --min-path-length L --max-path-length L --seed S]");
  EQR_CHECK(a.generate_train.has_value() && a.generate_test.has_value(), UsageError,
            "--task maze needs --generate-train N and --generate-test M (the reference's --train-samples and "
            "--test-samples; the paper used 1000 and 1000)");
  task::MazeGeneratorOptions g;
  g.size = a.maze_size;
  g.count = *a.generate_train;
  g.seed = static_cast<uint64_t>(a.seed);
  g.min_path_length = a.min_path_length;
  g.max_path_length = a.max_path_length;
  return task::build_maze_dataset(g, *a.generate_test);
}

void run_build(const BuildArgs& args) {
  const auto t0 = std::chrono::steady_clock::now();
  const data::BuiltDataset built =
      args.task == "maze" ? build_mazes(args) : data::build_dataset(to_config(args), {}, args.reference_dtypes);
  const auto t1 = std::chrono::steady_clock::now();
  data::write_dataset(args.out, built);
  const auto t2 = std::chrono::steady_clock::now();
  const double build_s = std::chrono::duration<double>(t1 - t0).count();
  const double write_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("train: %lld examples in %lld groups; test: %lld examples\n",
              static_cast<long long>(built.train.num_examples()), static_cast<long long>(built.train.num_groups()),
              static_cast<long long>(built.test.num_examples()));
  std::printf("built in %.2f s, written in %.2f s to %s\n", build_s, write_s, args.out.c_str());
}

struct LoaderBenchArgs {
  std::string data_path;
  std::string split = "train";
  int64_t batch = 768;
  int64_t batches = 2000;
  int64_t warmup = 20;
  int64_t prefetch = 8;
  int64_t world_size = 1;
};

void run_loader_bench(const LoaderBenchArgs& a) {
  EQR_CHECK(a.split == "train" || a.split == "test", UsageError, "--split must be train or test");
  EQR_CHECK(a.batches >= 1 && a.warmup >= 0, UsageError, "--batches must be >= 1 and --warmup >= 0");
  auto split = std::make_shared<const data::SplitData>(data::load_split(a.data_path, a.split));
  data::LoaderOptions o;
  o.mode = a.split == "train" ? data::LoaderMode::kTrain : data::LoaderMode::kTest;
  o.global_batch_size = a.batch;
  o.world_size = a.world_size;
  o.prefetch_batches = a.prefetch;
  data::Loader loader(split, o);
  // Correctness first: every row of a batch is a real example (or padding) with in-range tokens.
  const auto first = loader.next();
  EQR_CHECK(first.has_value(), RuntimeError, "loader produced no batch");
  const auto ex = first->example_indices;
  const auto lo = ex.min().item<int64_t>(), hi = ex.max().item<int64_t>();
  EQR_CHECK(lo >= -1 && hi < split->num_examples(), RuntimeError, "example index out of range");
  EQR_CHECK(first->inputs.min().item<int32_t>() >= 0 &&
                first->inputs.max().item<int32_t>() < split->metadata.vocab_size,
            RuntimeError, "input token out of range");
  auto pull = [&](int64_t count) {
    int64_t got = 0;
    for (; got < count; ++got) {
      auto b = loader.next();
      if (!b) {
        loader.rewind();
        b = loader.next();
      }
    }
    return got;
  };
  pull(a.warmup);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = pull(a.batches);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = static_cast<double>(n) / secs;
  const int64_t local = a.batch / a.world_size;
  std::printf("loader %s: %lld batches of %lld rows (S = %lld), prefetch %lld: %.1f batches/s, %.0f rows/s\n",
              a.split.c_str(), static_cast<long long>(n), static_cast<long long>(local),
              static_cast<long long>(split->seq_len()), static_cast<long long>(a.prefetch), rate, rate * local);
  nlohmann::json j{{"bench", "loader"},         {"data", a.data_path},     {"split", a.split},
                   {"global_batch_size", a.batch}, {"world_size", a.world_size}, {"prefetch", a.prefetch},
                   {"batches", n},              {"seconds", secs},         {"batches_per_s", rate},
                   {"rows_per_s", rate * local}, {"git_sha", git_sha()}};
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace

void register_data_build(CLI::App& app) {
  CLI::App* data = app.get_subcommand("data");
  auto args = std::make_shared<BuildArgs>();
  CLI::App* cmd = data->add_subcommand(
      "build", "Build a dataset in the reference's numpy layout (train/ and test/ with all__*.npy, manifest.json)");
  cmd->add_option("--task", args->task, "sudoku, or maze (the reference's build_maze_unique_dataset.py)")
      ->check(CLI::IsMember({"sudoku", "maze"}))
      ->capture_default_str();
  std::vector<CLI::Option*> sudoku_only;
  sudoku_only.push_back(cmd->add_option("--train-csv", args->train_csv, "Training CSV (source,question,answer,rating)"));
  sudoku_only.push_back(cmd->add_option("--test-csv", args->test_csv, "Test CSV (never subsampled or augmented)"));
  cmd->add_option("--generate-train", args->generate_train, "Generate N training puzzles (mazes) instead of a CSV");
  cmd->add_option("--generate-test", args->generate_test, "Generate M test puzzles (mazes) instead of a CSV");
  sudoku_only.push_back(
      cmd->add_option("--subsample", args->subsample, "Keep N training puzzles (np.random.choice; paper: 1000)"));
  sudoku_only.push_back(cmd->add_option("--num-aug", args->num_aug, "Augmented copies per training puzzle (paper: 1000)")
                            ->capture_default_str());
  cmd->add_option("--seed", args->seed, "Seed of the build (reference default 42)")->capture_default_str();
  sudoku_only.push_back(
      cmd->add_option("--min-difficulty", args->min_difficulty, "Keep rows with rating >= R (train and test)"));
  sudoku_only.push_back(
      cmd->add_option("--geometry", args->geometry, "Board side: 4x4, 6x6, 9x9 or 16x16")->capture_default_str());
  sudoku_only.push_back(cmd->add_option("--box", args->box, "Box shape ROWSxCOLS instead of --geometry, e.g. 2x3"));
  sudoku_only.push_back(
      cmd->add_option("--min-givens", args->min_givens, "Generator: stop removing clues at this many givens"));
  sudoku_only.push_back(
      cmd->add_option("--max-givens", args->max_givens, "Generator: reject puzzles with more givens (0 = no limit)"));
  sudoku_only.push_back(cmd->add_option("--min-rating", args->min_rating, "Generator: reject puzzles rated below this"));
  sudoku_only.push_back(
      cmd->add_flag("--reference-dtypes", args->reference_dtypes,
                    "Write the augmented train split's tokens as int64 like the reference (byte-identical files, "
                    "8x larger); default uint8"));
  sudoku_only.push_back(
      cmd->add_flag("--skip-invalid", args->skip_invalid, "Skip (and count) invalid CSV rows instead of failing"));
  std::vector<CLI::Option*> maze_only;
  maze_only.push_back(
      cmd->add_option("--size", args->maze_size, "maze: side n (the reference's --grid-size)")->capture_default_str());
  maze_only.push_back(cmd->add_option("--min-path-length", args->min_path_length,
                                      "maze: shortest path >= this (0 = the side's default; 100 for 30x30)"));
  maze_only.push_back(cmd->add_option("--max-path-length", args->max_path_length,
                                      "maze: shortest path <= this (0 = the side's default; 140 for 30x30)"));
  cmd->add_option("-o,--out", args->out, "Output directory, e.g. data/sudoku-extreme-1k-aug-1000")->required();
  cmd->callback([args, sudoku_only, maze_only] {
    for (const CLI::Option* o : sudoku_only)
      if (o->count() > 0) args->sudoku_only.push_back(o->get_name());
    if (args->task != "maze")
      for (const CLI::Option* o : maze_only)
        EQR_CHECK(o->count() == 0, UsageError, o->get_name(), " goes with --task maze");
    run_build(*args);
  });

  CLI::App* bench = app.get_subcommand("bench");
  auto largs = std::make_shared<LoaderBenchArgs>();
  CLI::App* lb = bench->add_subcommand("loader", "Batches per second of the data loader on a built dataset");
  lb->add_option("--data", largs->data_path, "Built dataset directory")->required();
  lb->add_option("--split", largs->split, "train or test")->capture_default_str();
  lb->add_option("--batch", largs->batch, "Global batch size")->capture_default_str();
  lb->add_option("--batches", largs->batches, "Batches to time")->capture_default_str();
  lb->add_option("--warmup", largs->warmup, "Batches before timing")->capture_default_str();
  lb->add_option("--prefetch", largs->prefetch, "Prefetch depth (0 = inline)")->capture_default_str();
  lb->add_option("--world-size", largs->world_size, "Ranks (times rank 0's slice)")->capture_default_str();
  lb->callback([largs] { run_loader_bench(*largs); });
}

}  // namespace eqr::app
