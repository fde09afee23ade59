// The training loop without per-step host syncs, on configs/ci_tiny.yaml: the non-finite loss check
// (batched to log steps, evaluations and checkpoints) still names the exact first bad step and never lets a
// checkpoint be written from a non-finite state; the interval logs (grad norms, steps histogram) appear at
// their steps with values that agree with the train/* metrics; train.gradient_checkpoint leaves the run as it is.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

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

// ci_tiny: 6 steps, evaluation and checkpoint at step 3, a metrics line every step, halt_max_steps 4.
config::RunConfig tiny(const fs::path& root, std::vector<std::string> extra = {}) {
  return eqr::test::ci_tiny_in(root, std::move(extra));
}
using eqr::test::read_jsonl;

/// Runs and returns the RuntimeError's message ("" when the run did not throw one).
std::string run_expecting_error(const config::RunConfig& cfg, const TrainerOptions& opts) {
  try {
    run_training(cfg, opts);
  } catch (const RuntimeError& e) {
    return e.what();
  }
  return "";
}

TEST(TrainLogging, NonFiniteLossNamesTheFirstBadStepAndKeepsTheLastCheckpoint) {
  const auto root = temp_dir("train_nan");
  TrainerOptions opts;
  opts.progress = false;
  opts.inject_nan_loss_at_step = 4;
  // Log lines every 5 steps: the bad step 4 is found at the step-5 check, and still named as step 4.
  const std::string msg = run_expecting_error(tiny(root, {"train.log_interval_steps=5"}), opts);
  ASSERT_FALSE(msg.empty()) << "expected a RuntimeError";
  EXPECT_NE(msg.find("non-finite loss (nan) at step 4;"), std::string::npos) << msg;  // the first bad step
  EXPECT_NE(msg.find("is intact"), std::string::npos) << msg;
  const fs::path run = root / "ci_tiny";
  const auto latest = io::latest_checkpoint(run.string());
  ASSERT_TRUE(latest.has_value());
  EXPECT_NE(msg.find(*latest), std::string::npos) << "the message names the intact checkpoint: " << msg;
  const auto ck = io::load_checkpoint(*latest);
  EXPECT_EQ(ck.meta.at("step").get<int64_t>(), 3);
  for (const auto& [k, v] : ck.tensors) {
    if (v.is_floating_point()) {
      EXPECT_TRUE(torch::isfinite(v).all().item<bool>()) << k;
    }
  }
  // The step-5 check stopped the run before its line was written: no train/* line at all.
  for (const auto& j : read_jsonl(run / "metrics.jsonl")) EXPECT_FALSE(j.contains("train/lm_loss")) << j.dump();
}

TEST(TrainLogging, NoCheckpointOrEvaluationFromANonFiniteState) {
  const auto root = temp_dir("train_nan3");
  TrainerOptions opts;
  opts.progress = false;
  opts.inject_nan_loss_at_step = 3;  // the step of the first evaluation and checkpoint
  const std::string msg = run_expecting_error(tiny(root, {"train.log_interval_steps=100"}), opts);
  EXPECT_NE(msg.find("at step 3;"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(none yet) is intact"), std::string::npos) << msg;
  const fs::path run = root / "ci_tiny";
  EXPECT_FALSE(io::latest_checkpoint(run.string()).has_value());
  EXPECT_FALSE(fs::exists(run / "eval" / "step_3.json"));
}

TEST(TrainLogging, GradNormAndStepsHistogramAtTheirIntervals) {
  const auto root = temp_dir("train_hist");
  TrainerOptions opts;
  opts.progress = false;
  run_training(tiny(root, {"train.grad_norm_log_interval_steps=4", "train.steps_hist_log_interval_steps=3"}), opts);
  std::vector<int64_t> grad_steps, hist_steps;
  double hist_rows = 0, hist_step_sum = 0, metric_rows = 0, metric_step_sum = 0;
  for (const auto& j : read_jsonl(root / "ci_tiny" / "metrics.jsonl")) {
    if (!j.contains("train/lm_loss")) continue;  // eval lines
    const int64_t step = j["step"].get<int64_t>();
    metric_rows += j["train/count"].get<double>();
    metric_step_sum += j["train/count"].get<double>() * j["train/steps"].get<double>();
    if (j.contains("train/grad_norm")) {
      grad_steps.push_back(step);
      const double norm = j["train/grad_norm"].get<double>();
      EXPECT_TRUE(std::isfinite(norm) && norm > 0) << norm;
      EXPECT_LE(j["train/grad_norm_max"].get<double>(), norm);
      EXPECT_GT(j["train/grad_norm_max"].get<double>(), 0.0);
    }
    if (j.contains("train/steps_hist")) {
      hist_steps.push_back(step);
      int64_t count = 0;
      for (const auto& [k, v] : j["train/steps_hist"].items()) {
        const int64_t steps = std::stoll(k);
        EXPECT_GE(steps, 1);
        EXPECT_LE(steps, 4);  // arch.halt_max_steps
        count += v.get<int64_t>();
        hist_step_sum += static_cast<double>(steps * v.get<int64_t>());
      }
      EXPECT_EQ(count, j["train/steps_hist_count"].get<int64_t>());
      hist_rows += static_cast<double>(count);
    }
  }
  EXPECT_EQ(grad_steps, (std::vector<int64_t>{1, 4}));  // step 1 and every 4 (the reference's rule)
  EXPECT_EQ(hist_steps, (std::vector<int64_t>{1, 3, 6}));
  // The histograms cover every halted row of the run exactly once (windows 1, 2-3, 4-6), as train/count does.
  EXPECT_GT(hist_rows, 0.0);
  EXPECT_DOUBLE_EQ(hist_rows, metric_rows);
  EXPECT_NEAR(hist_step_sum, metric_step_sum, 1e-9 * metric_step_sum);
}

TEST(TrainLogging, OptionalLogsOffAndClippingLogsEveryLine) {
  const auto root = temp_dir("train_clip");
  TrainerOptions opts;
  opts.progress = false;
  run_training(tiny(root, {"train.steps_hist_log_interval_steps=null", "train.grad_clip_norm=0.01"}), opts);
  int lines = 0;
  for (const auto& j : read_jsonl(root / "ci_tiny" / "metrics.jsonl")) {
    if (!j.contains("train/lm_loss")) continue;
    ++lines;
    EXPECT_FALSE(j.contains("train/steps_hist")) << j.dump();
    ASSERT_TRUE(j.contains("train/grad_norm")) << j.dump();  // with clipping: the pre-clip norm on every line
    EXPECT_GT(j["train/grad_norm"].get<double>(), 0.0);
  }
  EXPECT_EQ(lines, 6);
}

// train.gradient_checkpoint reaches dynamics::step (StepOptions::gradient_checkpoint): recomputing the latent
// recursion in backward must not change the run, to the bit on CPU.
TEST(TrainLogging, GradientCheckpointGivesTheSameRun) {
  TrainerOptions opts;
  opts.progress = false;
  const auto root_a = temp_dir("train_gc_off"), root_b = temp_dir("train_gc_on");
  run_training(tiny(root_a, {"train.gradient_checkpoint=false"}), opts);
  run_training(tiny(root_b, {"train.gradient_checkpoint=true"}), opts);
  const auto ca = io::load_checkpoint(*io::latest_checkpoint((root_a / "ci_tiny").string()));
  const auto cb = io::load_checkpoint(*io::latest_checkpoint((root_b / "ci_tiny").string()));
  EXPECT_TRUE(cb.meta.at("config").at("train").at("gradient_checkpoint").get<bool>());
  int compared = 0;
  for (const auto& [k, v] : ca.tensors) {
    if (k.rfind("model/", 0) != 0 && k.rfind("optim/", 0) != 0) continue;
    ASSERT_TRUE(cb.tensors.count(k)) << k;
    EXPECT_TRUE(v.equal(cb.tensors.at(k))) << k;
    ++compared;
  }
  EXPECT_GE(compared, 10);
}

}  // namespace
}  // namespace eqr::train
