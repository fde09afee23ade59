// `eqr data ...` and the task commands (generate, check, inspect, build, ...: each task's own, through the
// task registry, task/cli.h), and `eqr bench loader` (data::Loader on any built dataset).

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "eqr/core/error.h"
#include "eqr/core/version.h"
#include "eqr/data/dataset.h"
#include "eqr/data/loader.h"
#include "eqr/task/task.h"

namespace eqr::app {

namespace {

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

void register_data(CLI::App& app) {
  auto* cmd = app.add_subcommand("data", "Task data: generate, check, inspect, overlap, solve-exact, build");
  cmd->require_subcommand(1);
  task::add_task_verbs(app);  // `eqr data <verb>` and `eqr bench <verb>` of every task

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
