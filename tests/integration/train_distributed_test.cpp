// Data parallel end to end: `eqr launch -n 2` starts two ranks (this test binary, as workers) that
// broadcast, all-reduce gradients and take K AdamATan2 steps on a tiny linear model with per-rank halves
// of a global batch (loss normalised by the GLOBAL batch size, as the reference); their parameters must
// equal one process with the full batch. The same for the whole trainer (`eqr launch -n 2 -- train`).
// Also: launch's environment, output prefixes and exit codes.

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "eqr/io/checkpoint.h"

#include "eqr/train/adam_atan2.h"
#include "eqr/train/distributed.h"
#include "eqr/train/lr_schedule.h"
#include "test_support.h"

namespace eqr::train {
namespace {

namespace fs = std::filesystem;

constexpr int kGlobalBatch = 8;
constexpr int kSteps = 5;
constexpr const char* kOutVar = "EQR_TEST_DIST_OUT";

/// The global batch of step `step` (identical on every rank): x (8, 4), y (8, 3).
std::pair<torch::Tensor, torch::Tensor> global_batch(int step) {
  auto gen_seed = 1234 + step;
  torch::manual_seed(gen_seed);
  auto x = torch::randn({kGlobalBatch, 4});
  auto y = torch::randn({kGlobalBatch, 3});
  return {x, y};
}

/// Trains `model` on rows [begin, end) of every global batch for kSteps steps; `reduce` runs after
/// backward (the gradient all-reduce in the data parallel run).
void train(torch::nn::Linear& model, int64_t begin, int64_t end, const std::function<void()>& reduce) {
  AdamATan2 opt(model->parameters(), AdamATan2Options(1e-2).betas({0.9, 0.95}).weight_decay(0.1));
  LrSchedule schedule(1e-2, 2, kSteps, 0.5);
  for (int s = 1; s <= kSteps; ++s) {
    auto [x, y] = global_batch(s);
    opt.zero_grad();
    auto pred = model->forward(x.slice(0, begin, end));
    auto row_loss = (pred - y.slice(0, begin, end)).pow(2).sum(-1);
    (row_loss.sum() / static_cast<double>(kGlobalBatch)).backward();  // GLOBAL batch size
    reduce();
    opt.set_lr(schedule(s));
    opt.step();
  }
}

/// The worker: runs only under `eqr launch` (kOutVar set), one process per rank.
TEST(TrainDistributedWorker, Run) {
  const char* out = std::getenv(kOutVar);
  if (out == nullptr) GTEST_SKIP() << "worker of TrainDistributed.TwoRanksEqualOneProcess";
  const auto env = DistEnv::from_environment();
  ASSERT_EQ(env.world_size, 2);
  Distributed dist(env, torch::kCPU, std::chrono::seconds(60));
  ASSERT_TRUE(dist.active());
  torch::manual_seed(1000 + env.rank);  // different init per rank: the broadcast must fix it
  torch::nn::Linear model(4, 3);
  dist.broadcast_module(*model);
  const int64_t per_rank = kGlobalBatch / env.world_size;
  std::vector<torch::Tensor> params = model->parameters();
  train(model, env.rank * per_rank, (env.rank + 1) * per_rank, [&] { dist.all_reduce_gradients(params); });
  // Metrics reduce: SUM of (rank + 1), MIN, MAX.
  auto m = torch::tensor({env.rank + 1.0}, torch::kFloat64);
  auto mn = m.clone(), mx = m.clone();
  dist.all_reduce(m, ReduceOp::Sum);
  dist.all_reduce(mn, ReduceOp::Min);
  dist.all_reduce(mx, ReduceOp::Max);
  std::vector<torch::Tensor> save = {model->weight.detach(), model->bias.detach(), m, mn, mx};
  torch::save(save, (fs::path(out) / ("rank" + std::to_string(env.rank) + ".pt")).string());
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

TEST(TrainDistributed, TwoRanksEqualOneProcess) {
#ifndef EQR_HAVE_GLOO
  GTEST_SKIP() << "built without gloo (EQR_HAVE_GLOO): no CPU data parallel";
#else
  const auto dir = eqr::test::temp_dir("dist");
  ::setenv(kOutVar, dir.c_str(), 1);
  const auto r = eqr::test::run_eqr("launch -n 2 --exe '" + self_exe() +
                                    "' -- --gtest_filter=TrainDistributedWorker.Run --gtest_brief=1");
  ::unsetenv(kOutVar);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[rank 1] "), std::string::npos) << r.out;

  // One process, the full batch, rank 0's initial weights.
  torch::manual_seed(1000);
  torch::nn::Linear ref(4, 3);
  train(ref, 0, kGlobalBatch, [] {});
  for (int rank = 0; rank < 2; ++rank) {
    std::vector<torch::Tensor> got;
    torch::load(got, (dir / ("rank" + std::to_string(rank) + ".pt")).string());
    ASSERT_EQ(got.size(), 5u);
    EXPECT_TRUE(torch::allclose(got[0], ref->weight.detach(), 1e-5, 1e-6)) << "rank " << rank << "\n"
                                                                           << got[0] << "\n" << ref->weight;
    EXPECT_TRUE(torch::allclose(got[1], ref->bias.detach(), 1e-5, 1e-6)) << "rank " << rank;
    EXPECT_EQ(got[2].item<double>(), 3.0);
    EXPECT_EQ(got[3].item<double>(), 1.0);
    EXPECT_EQ(got[4].item<double>(), 2.0);
  }
  // The parameters moved (the comparison is not trivially between initial weights).
  torch::manual_seed(1000);
  torch::nn::Linear init(4, 3);
  EXPECT_GT((init->weight - ref->weight).abs().max().item<float>(), 1e-3);
#endif
}

/// metrics.jsonl's train/lm_loss and train/exact_accuracy by step.
std::map<int64_t, std::pair<double, double>> train_metrics(const fs::path& run) {
  std::map<int64_t, std::pair<double, double>> m;
  std::istringstream in(eqr::test::read_file(run / "metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    if (j.contains("train/lm_loss")) {
      m[j["step"].get<int64_t>()] = {j["train/lm_loss"].get<double>(), j["train/exact_accuracy"].get<double>()};
    }
  }
  return m;
}

// The whole trainer (eqr train) with 2 Gloo ranks, each on its half of every global batch, against one
// process on the full batch. Randomness that is drawn per rank (fresh initial states, path noise, halting
// exploration) is switched off so that both runs see the same computation; what remains is exactly what
// data parallelism must preserve: the per-rank slices of the global batch, the loss normalised by the
// GLOBAL batch size, the gradient all-reduce, the optimizer, EMA and the metric reduction.
TEST(TrainDistributed, TrainerTwoRanksEqualOneProcess) {
#ifndef EQR_HAVE_GLOO
  GTEST_SKIP() << "built without gloo (EQR_HAVE_GLOO): no CPU data parallel";
#else
  const auto root = eqr::test::temp_dir("dist_trainer");
  const std::string common = "train --no-progress --config '" +
                             (eqr::test::source_dir() / "configs/ci_tiny.yaml").string() +
                             "' --set arch.init=fixed --set arch.noise_scale=0 --set arch.halt_exploration_prob=0"
                             " --set train.max_steps=5 --set train.eval_interval_steps=null";
  const auto one = eqr::test::run_eqr(common + " --run-dir '" + (root / "one").string() + "'");
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  const auto two = eqr::test::run_eqr("launch -n 2 -- " + common + " --run-dir '" + (root / "two").string() + "'");
  ASSERT_EQ(two.exit_code, 0) << two.out << two.err;
  EXPECT_NE(two.out.find("[rank 1] "), std::string::npos) << two.out;

  const auto m1 = train_metrics(root / "one"), m2 = train_metrics(root / "two");
  ASSERT_EQ(m1.size(), 5u);
  ASSERT_EQ(m2.size(), 5u);
  for (const auto& [step, v] : m1) {
    EXPECT_NEAR(m2.at(step).first, v.first, 1e-5 * std::abs(v.first)) << "lm_loss at step " << step;
    EXPECT_DOUBLE_EQ(m2.at(step).second, v.second) << "exact accuracy at step " << step;
  }
  const auto c1 = io::load_checkpoint(*io::latest_checkpoint((root / "one").string()));
  const auto c2 = io::load_checkpoint(*io::latest_checkpoint((root / "two").string()));
  EXPECT_EQ(c2.meta.at("step").get<int64_t>(), 5);
  int compared = 0;
  for (const auto& [name, t1] : c1.tensors) {
    if (name.rfind("model/", 0) != 0 && name.rfind("ema/", 0) != 0) continue;
    ASSERT_TRUE(c2.tensors.count(name)) << name;
    const auto& t2 = c2.tensors.at(name);
    const double diff = (t1.to(torch::kFloat64) - t2.to(torch::kFloat64)).abs().max().item<double>();
    EXPECT_TRUE(torch::allclose(t1, t2, 1e-4, 1e-6)) << name << ": max |diff| " << diff;
    ++compared;
  }
  EXPECT_GE(compared, 10);
  // The weights moved away from their initial values, so the equality is not between untouched tensors.
  EXPECT_FALSE(c1.tensors.at("model/lm_head.weight").equal(c1.tensors.at("ema/lm_head.weight")));
#endif
}

// With several ranks the time limit is decided collectively at log-interval steps only (one all-reduce per
// log line instead of one per step): 1e-6 minutes is over at once, yet the ranks stop together at a multiple
// of train.log_interval_steps, then checkpoint and evaluate.
TEST(TrainDistributed, TimeLimitIsDecidedAtLogIntervalSteps) {
#ifndef EQR_HAVE_GLOO
  GTEST_SKIP() << "built without gloo (EQR_HAVE_GLOO): no CPU data parallel";
#else
  const auto root = eqr::test::temp_dir("dist_time");
  const auto r = eqr::test::run_eqr(
      "launch -n 2 -- train --no-progress --config '" + (eqr::test::source_dir() / "configs/ci_tiny.yaml").string() +
      "' --set train.time_limit_minutes=1e-6 --set train.max_steps=500 --set train.epochs=1000"
      " --set train.log_interval_steps=3 --set train.eval_interval_steps=null"
      " --set train.checkpoint_interval_steps=null --run-dir '" + (root / "run").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("stopped by the time limit"), std::string::npos) << r.out;
  const auto latest = io::latest_checkpoint((root / "run").string());
  ASSERT_TRUE(latest.has_value());
  const int64_t step = io::load_checkpoint(*latest).meta.at("step").get<int64_t>();
  EXPECT_EQ(step % 3, 0) << "stopped at step " << step << ", not at a log-interval step";
  EXPECT_LT(step, 500);
#endif
}

TEST(TrainDistributed, LaunchSetsEnvironmentPrefixesAndReturnsWorstCode) {
  const auto r = eqr::test::run_eqr(
      "launch -n 3 --exe /bin/sh -- -c "
      "'echo \"env $RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT\"; echo \"err $RANK\" >&2; "
      "if [ $RANK = 2 ]; then sleep 1; exit 3; fi; exit 0'");  // rank 2 fails after the others are done
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("[rank 0] env 0 0 3 127.0.0.1 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[rank 2] env 2 2 3 127.0.0.1 "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("[rank 1] err 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("worst exit code"), std::string::npos) << r.err;

  const auto plain = eqr::test::run_eqr("launch -n 2 --no-prefix --exe /bin/sh -- -c 'echo hi $RANK'");
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out.find("hi 1"), std::string::npos);
  EXPECT_EQ(plain.out.find("[rank"), std::string::npos);
}

TEST(TrainDistributed, LaunchStopsOtherRanksWhenOneFails) {
  const auto start = std::chrono::steady_clock::now();
  const auto r = eqr::test::run_eqr(
      "launch -n 2 --exe /bin/sh -- -c 'if [ $RANK = 1 ]; then exit 5; fi; exec sleep 60'");
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 5) << r.err;  // the failure's code, not the SIGTERM of the stopped rank
  EXPECT_LT(secs, 30.0);
  const auto missing = eqr::test::run_eqr("launch -n 1 --exe /nonexistent/program");
  EXPECT_EQ(missing.exit_code, 127) << missing.err;
}

}  // namespace
}  // namespace eqr::train
