// `eqr data build`: writes a dataset in the reference's numpy layout (docs/dataset_format.md) from
// Sudoku-Extreme CSVs or from the generator. Thin: flags -> config::DataConfig -> data::build_dataset.
// `eqr bench loader`: batches per second of data::Loader on a built split (checked first, then timed).

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "eqr/config/config.h"
#include "eqr/core/error.h"
#include "eqr/core/version.h"
#include "eqr/data/board.h"
#include "eqr/data/dataset.h"
#include "eqr/data/loader.h"

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

void run_build(const BuildArgs& args) {
  const config::DataConfig cfg = to_config(args);
  const auto t0 = std::chrono::steady_clock::now();
  const data::BuiltDataset built = data::build_dataset(cfg, {}, args.reference_dtypes);
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
  cmd->add_option("--train-csv", args->train_csv, "Training CSV (source,question,answer,rating)");
  cmd->add_option("--test-csv", args->test_csv, "Test CSV (never subsampled or augmented)");
  cmd->add_option("--generate-train", args->generate_train, "Generate N training puzzles instead of a CSV");
  cmd->add_option("--generate-test", args->generate_test, "Generate M test puzzles instead of a CSV");
  cmd->add_option("--subsample", args->subsample, "Keep N training puzzles (np.random.choice; paper: 1000)");
  cmd->add_option("--num-aug", args->num_aug, "Augmented copies per training puzzle (paper: 1000)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "np.random.seed of the build (reference default 42)")->capture_default_str();
  cmd->add_option("--min-difficulty", args->min_difficulty, "Keep rows with rating >= R (train and test)");
  cmd->add_option("--geometry", args->geometry, "Board side: 4x4, 6x6, 9x9 or 16x16")->capture_default_str();
  cmd->add_option("--box", args->box, "Box shape ROWSxCOLS instead of --geometry, e.g. 2x3");
  cmd->add_option("--min-givens", args->min_givens, "Generator: stop removing clues at this many givens");
  cmd->add_option("--max-givens", args->max_givens, "Generator: reject puzzles with more givens (0 = no limit)");
  cmd->add_option("--min-rating", args->min_rating, "Generator: reject puzzles rated below this");
  cmd->add_flag("--reference-dtypes", args->reference_dtypes,
                "Write the augmented train split's tokens as int64 like the reference (byte-identical files, "
                "8x larger); default uint8");
  cmd->add_flag("--skip-invalid", args->skip_invalid, "Skip (and count) invalid CSV rows instead of failing");
  cmd->add_option("-o,--out", args->out, "Output directory, e.g. data/sudoku-extreme-1k-aug-1000")->required();
  cmd->callback([args] { run_build(*args); });

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
