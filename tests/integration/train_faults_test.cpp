// Numerical faults stop training (issue 14): a NaN written into the carry stops the run naming the step and
// keeps the last good checkpoint; --detect-anomaly names the backward op that produced a NaN.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "eqr/core/error.h"
#include "eqr/io/checkpoint.h"
#include "eqr/train/trainer.h"
#include "fixtures.h"
#include "test_support.h"

namespace eqr::train {
namespace {

namespace fs = std::filesystem;

TEST(TrainFaults, NanInTheCarryStopsAtItsStepAndKeepsTheLastCheckpoint) {
  const auto root = test::temp_dir("faults_carry");
  // Checkpoints at 3 (and it would be 6); the NaN appears after step 5, the next read point is the log at 5.
  const auto cfg = test::ci_tiny_in(root, {"train.max_steps=8", "train.checkpoint_interval_steps=3",
                                           "train.eval_interval_steps=null", "train.log_interval_steps=1"});
  TrainerOptions opts;
  opts.progress = false;
  opts.inject_nan_carry_at_step = 5;
  const std::string msg = test::message_of<RuntimeError>([&] { run_training(cfg, opts); });
  EXPECT_NE(msg.find("non-finite latent state"), std::string::npos) << msg;
  EXPECT_NE(msg.find("after step 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("step_3.eqrckpt) is intact"), std::string::npos) << msg;
  const fs::path run = root / "ci_tiny";
  const auto latest = io::latest_checkpoint(run.string());
  ASSERT_TRUE(latest.has_value());
  const auto ck = io::load_checkpoint(*latest);
  EXPECT_EQ(ck.meta.at("step").get<int64_t>(), 3);
  EXPECT_TRUE(torch::isfinite(ck.tensors.at("carry/z_h")).all().item<bool>());
}

TEST(TrainFaults, NanInTheCarryIsCaughtBetweenLogLines) {
  // Log lines every 4 steps: the check at step 4 sees the NaN of step 2 and names step 2, not 4.
  const auto root = test::temp_dir("faults_carry_late");
  const auto cfg = test::ci_tiny_in(root, {"train.max_steps=8", "train.checkpoint_interval_steps=null",
                                           "train.eval_interval_steps=null", "train.log_interval_steps=4"});
  TrainerOptions opts;
  opts.progress = false;
  opts.inject_nan_carry_at_step = 2;
  const std::string msg = test::message_of<RuntimeError>([&] { run_training(cfg, opts); });
  EXPECT_NE(msg.find("after step 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(none yet) is intact"), std::string::npos) << msg;
  EXPECT_FALSE(io::latest_checkpoint((root / "ci_tiny").string()).has_value());
}

TEST(TrainFaults, DetectAnomalyNamesTheBackwardOpAndTheStep) {
  const auto root = test::temp_dir("faults_anomaly");
  const auto cfg = test::ci_tiny_in(root, {"train.max_steps=4", "train.checkpoint_interval_steps=2",
                                           "train.eval_interval_steps=null"});
  TrainerOptions opts;
  opts.progress = false;
  opts.detect_anomaly = true;
  opts.inject_nan_loss_at_step = 3;
  const std::string msg = test::message_of<RuntimeError>([&] { run_training(cfg, opts); });
  EXPECT_NE(msg.find("autograd anomaly at step 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Backward"), std::string::npos) << msg;  // e.g. "Function 'MulBackward0' returned nan values"
  EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
  EXPECT_NE(msg.find("step_2.eqrckpt) is intact"), std::string::npos) << msg;
  // The CLI flag reaches the trainer: a clean run with it finishes (anomaly mode finds nothing).
  const auto r = test::run_eqr("train --no-progress --detect-anomaly --config '" +
                               (test::source_dir() / "configs/ci_tiny.yaml").string() + "' --run-dir '" +
                               (root / "cli").string() + "' --set data.data_path='" + (root / "data").string() +
                               "' --set train.max_steps=2 --set train.eval_interval_steps=null");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("--detect-anomaly"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace eqr::train
