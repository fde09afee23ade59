// Pieces of the training loop that a unit test can reach: evaluation during training has a generator of
// its own (the training generator and torch's global ones are untouched, the same seed gives the same
// metrics), the training generator is not torch's global one, and each rank's device.
// Shapes: B batch rows, S cells (16), V vocab (6).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <memory>

#include "eqr/core/error.h"
#include "eqr/core/rng.h"
#include "eqr/data/dataset.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/init.h"
#include "eqr/train/distributed.h"
#include "eqr/train/trainer.h"
#include "fixtures.h"

namespace eqr::train {
namespace {

constexpr int64_t kS = 16;
constexpr int64_t kV = 6;

config::ArchConfig tiny_arch() {
  config::ArchConfig a;
  a.hidden_size = 16;
  a.num_heads = 2;
  a.seq_len = kS;
  a.vocab_size = kV;
  a.board_height = 4;
  a.board_width = 4;
  a.l_layers = 1;
  a.h_cycles = 2;
  a.l_cycles = 1;
  a.halt_max_steps = 3;
  a.noise_scale = 0.05;  // path noise on: results depend on the generator
  return a;
}

/// N test puzzles of S cells: input token 1 + (r + c) % 4 in even cells, blank (1) elsewhere; labels 2..5.
std::shared_ptr<const data::SplitData> test_split(int64_t n) {
  auto d = std::make_shared<data::SplitData>();
  d->name = "test";
  d->metadata.seq_len = kS;
  d->metadata.vocab_size = kV;
  d->metadata.total_groups = n;
  d->metadata.total_samples = n;
  d->inputs.resize(static_cast<size_t>(n * kS));
  d->labels.resize(static_cast<size_t>(n * kS));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < kS; ++c) {
      const auto label = static_cast<uint8_t>(2 + (r + c) % 4);
      d->labels[r * kS + c] = label;
      d->inputs[r * kS + c] = c % 2 == 0 ? label : 1;
    }
  }
  d->puzzle_identifiers.assign(static_cast<size_t>(n), 0);
  for (int64_t p = 0; p <= n; ++p) d->puzzle_indices.push_back(static_cast<int32_t>(p));
  for (int64_t g = 0; g <= n; ++g) d->group_indices.push_back(static_cast<int32_t>(g));
  d->validate("unit test split");
  return d;
}

TEST(TrainTrainer, EvaluationLeavesTheTrainingAndGlobalGeneratorsAlone) {
  torch::manual_seed(0);
  model::EqrModel model{model::EqrModelOptions(tiny_arch(), test::float32_compute())};
  model->train();
  const auto split = test_split(10);
  Distributed dist;  // one process

  at::Generator train_gen = training_generator(torch::kCPU, /*seed=*/5, /*rank=*/0);
  // Move the training generator away from its seed, as a run would have done before evaluating.
  (void)at::randn({7}, train_gen);
  at::Generator global = at::globalContext().defaultGenerator(torch::kCPU);
  const at::Tensor train_before = train_gen.get_state();
  const at::Tensor global_before = global.get_state();

  const TrainEvalResult a = evaluate_split(model, split, /*depth=*/3, /*batch_size=*/4, /*seed=*/11, dist);
  EXPECT_TRUE(train_gen.get_state().equal(train_before)) << "evaluation moved the training generator";
  EXPECT_TRUE(global.get_state().equal(global_before)) << "evaluation moved torch's global CPU generator";
  EXPECT_TRUE(model->is_training()) << "the model's mode is restored";

  // The same seed gives the same metrics (with path noise on); another seed other residuals.
  const TrainEvalResult b = evaluate_split(model, split, 3, 4, 11, dist);
  EXPECT_EQ(a.n_puzzles, 10);
  EXPECT_EQ(b.n_puzzles, a.n_puzzles);
  EXPECT_EQ(b.exact_accuracy, a.exact_accuracy);
  EXPECT_EQ(b.cell_accuracy, a.cell_accuracy);
  EXPECT_EQ(b.mean_final_residual, a.mean_final_residual);
  EXPECT_GT(a.mean_final_residual, 0.0);
  const TrainEvalResult c = evaluate_split(model, split, 3, 4, 12, dist);
  EXPECT_NE(c.mean_final_residual, a.mean_final_residual);

  // Evaluation reads the generator it makes from (seed, rank) only: drawing from the global generator in
  // between changes nothing.
  (void)at::randn({100});
  const TrainEvalResult d = evaluate_split(model, split, 3, 4, 11, dist);
  EXPECT_EQ(d.mean_final_residual, a.mean_final_residual);
}

TEST(TrainTrainer, AStopRequestEndsAnEvaluationBeforeItsNextStep) {
  torch::manual_seed(0);
  model::EqrModel model{model::EqrModelOptions(tiny_arch(), test::float32_compute())};
  model->train();
  const auto split = test_split(10);
  Distributed dist;
  request_stop();  // as SIGTERM during run_training
  const TrainEvalResult stopped = evaluate_split(model, split, 3, 4, 11, dist);
  EXPECT_TRUE(stopped.interrupted);
  EXPECT_EQ(stopped.n_puzzles, 0);  // stopped before its first step
  EXPECT_TRUE(model->is_training());
  clear_stop_request();
  const TrainEvalResult full = evaluate_split(model, split, 3, 4, 11, dist);
  EXPECT_FALSE(full.interrupted);
  EXPECT_EQ(full.n_puzzles, 10);
}

TEST(TrainTrainer, TrainingGeneratorIsItsOwnAndSeeded) {
  at::Generator g1 = training_generator(torch::kCPU, 3, 0);
  at::Generator g2 = training_generator(torch::kCPU, 3, 0);
  at::Generator other_rank = training_generator(torch::kCPU, 3, 1);
  at::Generator global = at::globalContext().defaultGenerator(torch::kCPU);
  const at::Tensor global_before = global.get_state();
  const at::Tensor x1 = at::randn({8}, g1);
  EXPECT_TRUE(global.get_state().equal(global_before)) << "the training generator is not torch's global one";
  EXPECT_TRUE(x1.equal(at::randn({8}, g2)));
  EXPECT_FALSE(x1.equal(at::randn({8}, other_rank)));
  // The seed of the stream: derive_seed(seed, stream_id("train") + rank), as the checkpointed runs used.
  at::Generator expected = model::make_generator(torch::kCPU, derive_seed(3, stream_id("train") + 1));
  at::Generator again = training_generator(torch::kCPU, 3, 1);
  EXPECT_TRUE(at::randn({8}, expected).equal(at::randn({8}, again)));
  // Reseeding the global generator (what evaluation used to do on CUDA) does not touch it.
  at::Generator g3 = training_generator(torch::kCPU, 3, 0);
  (void)at::randn({8}, g3);
  const at::Tensor state = g3.get_state();
  torch::manual_seed(123);
  EXPECT_TRUE(g3.get_state().equal(state));
}

TEST(TrainTrainer, RankDeviceIsCudaLocalRankOnlyForSeveralCudaRanks) {
  DistEnv one;
  DistEnv rank3;
  rank3.rank = 3;
  rank3.world_size = 4;
  rank3.local_rank = 1;
  const c10::Device cpu(c10::kCPU);
  const c10::Device cuda0(c10::kCUDA, 0);
  const c10::Device cuda2(c10::kCUDA, 2);
  EXPECT_EQ(rank_device(cpu, one), cpu);
  EXPECT_EQ(rank_device(cpu, rank3), cpu);            // Gloo ranks share the CPU
  EXPECT_EQ(rank_device(cuda2, one), cuda2);          // one process keeps the configured GPU
  EXPECT_EQ(rank_device(cuda0, rank3), c10::Device(c10::kCUDA, 1));  // a rank takes cuda:<local_rank>
  EXPECT_EQ(rank_device(cuda2, rank3), c10::Device(c10::kCUDA, 1));
  EXPECT_EQ(rank_device(c10::Device(c10::kCUDA), rank3), c10::Device(c10::kCUDA, 1));
  // use_device: a no-op for the CPU; a CUDA index that is not visible is a clear error.
  EXPECT_NO_THROW(use_device(cpu));
  if (torch::cuda::device_count() == 0) {
    EXPECT_THROW(use_device(cuda0), UsageError);
  }
}

}  // namespace
}  // namespace eqr::train
