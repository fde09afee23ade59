// The training loop end to end on configs/ci_tiny.yaml: run directory contents, metrics, checkpoints,
// resume equality (CPU), and the CLI's handling of an existing run.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "eqr/io/checkpoint.h"
#include "eqr/train/trainer.h"
#include "fixtures.h"
#include "test_support.h"

namespace eqr::train {
namespace {

namespace fs = std::filesystem;
using eqr::test::source_dir;
using eqr::test::temp_dir;

config::RunConfig tiny(const fs::path& root, std::vector<std::string> extra = {}) {
  return eqr::test::ci_tiny_in(root, std::move(extra));
}
using eqr::test::read_jsonl;

/// train/lm_loss by step, from metrics.jsonl.
std::map<int64_t, double> losses(const fs::path& run) {
  std::map<int64_t, double> m;
  for (const auto& j : read_jsonl(run / "metrics.jsonl")) {
    if (j.contains("train/lm_loss")) m[j["step"].get<int64_t>()] = j["train/lm_loss"].get<double>();
  }
  return m;
}

TEST(TrainLoop, TinyRunWritesRunDirectory) {
  const auto root = temp_dir("train");
  const auto cfg = tiny(root);
  TrainerOptions opts;
  opts.progress = false;
  const auto r = run_training(cfg, opts);
  EXPECT_EQ(r.total_steps, 6);
  EXPECT_EQ(r.steps_done, 6);
  EXPECT_FALSE(r.interrupted);
  const fs::path run = root / "ci_tiny";
  EXPECT_TRUE(fs::exists(run / "config.yaml"));
  EXPECT_TRUE(fs::exists(run / "env.json"));
  EXPECT_TRUE(fs::exists(run / "eval" / "step_6.json"));
  // The resolved config reloads to the same struct.
  EXPECT_TRUE(config::load((run / "config.yaml").string()) == cfg);
  const auto lines = read_jsonl(run / "metrics.jsonl");
  int train_lines = 0, eval_lines = 0;
  for (const auto& j : lines) {
    if (j.contains("train/lm_loss")) {
      ++train_lines;
      for (const char* k : {"train/lr", "train/exact_accuracy", "train/cell_accuracy", "train/q_halt_accuracy",
                            "train/steps", "train/steps_per_s", "train/rows_per_s", "train/halted_fraction"}) {
        EXPECT_TRUE(j.contains(k)) << k;
      }
      EXPECT_GT(j["train/lm_loss"].get<double>(), 0.0);
    }
    if (j.contains("eval/ema/exact_accuracy")) {
      ++eval_lines;
      EXPECT_TRUE(j.contains("eval/raw/exact_accuracy"));
      EXPECT_EQ(j["eval/depth"].get<int>(), 4);
      EXPECT_EQ(j["eval/n_puzzles"].get<int>(), 16);
    }
  }
  EXPECT_EQ(train_lines, 6);  // log_interval_steps 1
  EXPECT_EQ(eval_lines, 2);   // step 3 (interval) and the end
  // Warm-up: lr at step 1 = base * 1/2.
  EXPECT_DOUBLE_EQ(lines.front()["train/lr"].get<double>(), 0.5e-3);
  const auto latest = io::latest_checkpoint(run.string());
  ASSERT_TRUE(latest.has_value());
  const auto ck = io::load_checkpoint(*latest);
  EXPECT_EQ(ck.meta["step"].get<int64_t>(), 6);
  EXPECT_TRUE(ck.tensors.count("model/lm_head.weight"));
  EXPECT_TRUE(ck.tensors.count("ema/lm_head.weight"));
  EXPECT_TRUE(ck.tensors.count("carry/z_h"));
  EXPECT_TRUE(ck.tensors.count("rng/train"));
  // EMA differs from the raw weights after training.
  EXPECT_FALSE(ck.tensors.at("model/lm_head.weight").equal(ck.tensors.at("ema/lm_head.weight")));
}

TEST(TrainLoop, ResumedRunReproducesUninterruptedLosses) {
  const auto root_a = temp_dir("train_a"), root_b = temp_dir("train_b");
  TrainerOptions opts;
  opts.progress = false;
  run_training(tiny(root_a), opts);

  const auto cfg_b = tiny(root_b);
  TrainerOptions first = opts;
  first.stop_after_steps = 2;  // stop mid-run (not on a checkpoint interval)
  const auto r1 = run_training(cfg_b, first);
  EXPECT_EQ(r1.steps_done, 2);
  TrainerOptions resume = opts;
  resume.resume = true;
  resume.run_dir = (root_b / "ci_tiny").string();
  const auto r2 = run_training(cfg_b, resume);
  EXPECT_EQ(r2.steps_done, 6);

  const auto a = losses(root_a / "ci_tiny"), b = losses(root_b / "ci_tiny");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  for (const auto& [step, loss] : a) EXPECT_DOUBLE_EQ(b.at(step), loss) << "step " << step;
  // And the final weights are bit-identical.
  const auto ca = io::load_checkpoint(*io::latest_checkpoint((root_a / "ci_tiny").string()));
  const auto cb = io::load_checkpoint(*io::latest_checkpoint((root_b / "ci_tiny").string()));
  for (const auto& [k, v] : ca.tensors) {
    if (k.rfind("model/", 0) == 0) {
      EXPECT_TRUE(v.equal(cb.tensors.at(k))) << k;
    }
  }
}

TEST(TrainLoop, ExistingRunIsNotOverwritten) {
  const auto root = temp_dir("train");
  TrainerOptions opts;
  opts.progress = false;
  opts.stop_after_steps = 1;
  run_training(tiny(root), opts);
  EXPECT_THROW(run_training(tiny(root), opts), UsageError);
  // The CLI says so with exit code 2 and points at --resume.
  const auto r = eqr::test::run_eqr("train --no-progress --config '" + (source_dir() / "configs/ci_tiny.yaml").string() +
                                    "' --set output_root=" + root.string() + " --set data.data_path=" +
                                    (root / "data").string());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
}

TEST(TrainLoop, BatchLargerThanDataIsAClearError) {
  const auto root = temp_dir("train");
  TrainerOptions opts;
  opts.progress = false;
  EXPECT_THROW(run_training(tiny(root, {"train.global_batch_size=4096"}), opts), DataError);
}

TEST(TrainLoop, TimeLimitStopsEarlyWithCheckpointAndEvaluation) {
  const auto root = temp_dir("train_time");
  TrainerOptions opts;
  opts.progress = false;
  // 1e-6 minutes: over the limit after the first step; no periodic evaluation or checkpoint before that.
  const auto r = run_training(tiny(root, {"train.time_limit_minutes=1e-6", "train.max_steps=500", "train.epochs=1000",
                                          "train.eval_interval_steps=null", "train.checkpoint_interval_steps=null"}),
                              opts);
  EXPECT_TRUE(r.time_limited);
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.total_steps, 500);
  EXPECT_GE(r.steps_done, 1);
  EXPECT_LT(r.steps_done, 500);
  const fs::path run = root / "ci_tiny";
  const auto latest = io::latest_checkpoint(run.string());
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(io::load_checkpoint(*latest).meta.at("step").get<int64_t>(), r.steps_done);
  int evals = 0;
  for (const auto& j : read_jsonl(run / "metrics.jsonl")) evals += j.contains("eval/ema/exact_accuracy") ? 1 : 0;
  EXPECT_EQ(evals, 1);
  EXPECT_TRUE(fs::exists(run / "eval" / ("step_" + std::to_string(r.steps_done) + ".json")));
  EXPECT_THROW(run_training(tiny(temp_dir("train_time_bad"), {"train.time_limit_minutes=0"}), opts), ConfigError);
}

TEST(TrainLoop, KillNineDuringCheckpointingLeavesALoadableCheckpoint) {
  // `eqr train` writes a checkpoint after every step; SIGKILL lands at a different moment in each trial
  // (often inside a write). The newest checkpoint must load (CRC checked) and the run must resume.
  const std::string exe = eqr::test::eqr_exe().string();
  const std::string cfg = (source_dir() / "configs/ci_tiny.yaml").string();
  for (int trial = 0; trial < 4; ++trial) {
    const auto root = temp_dir("kill9");
    const fs::path run = root / "ci_tiny";
    std::vector<std::string> args = {exe, "train", "--config", cfg, "--no-progress", "--set", "output_root=" + root.string(),
                                     "--set", "train.max_steps=100000", "--set", "train.epochs=100000",
                                     "--set", "train.checkpoint_interval_steps=1", "--set", "train.eval_interval_steps=null",
                                     "--set", "train.log_interval_steps=1000"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Wait for the first checkpoint, then let it run a little longer (a different time per trial).
    const auto start = std::chrono::steady_clock::now();
    while (!fs::exists(run / "checkpoints" / "latest") &&
           std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(37 + 113 * trial));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "trial " << trial << ": eqr train ended before the kill";

    const auto latest = io::latest_checkpoint(run.string());
    ASSERT_TRUE(latest.has_value()) << "trial " << trial;
    const io::Checkpoint ck = io::load_checkpoint(*latest);
    const int64_t step = ck.meta.at("step").get<int64_t>();
    EXPECT_GE(step, 1);
    EXPECT_NE(latest->find("step_" + std::to_string(step) + ".eqrckpt"), std::string::npos) << *latest;
    const auto resumed = eqr::test::run_eqr("train --resume '" + run.string() + "' --stop-after 2 --no-progress");
    EXPECT_EQ(resumed.exit_code, 0) << "trial " << trial << ": " << resumed.err;
    EXPECT_EQ(io::load_checkpoint(*io::latest_checkpoint(run.string())).meta.at("step").get<int64_t>(), step + 2);
  }
}

}  // namespace
}  // namespace eqr::train
