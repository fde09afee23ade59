// CUDA against CPU (label `cuda`; every test skips, saying why, where no CUDA device is visible):
//   - one supervision step on CUDA equals the CPU step: float32 within 1e-4; bfloat16 within the error that
//     the CPU's own bfloat16 step makes against float32 (see BFloat16StepIsAsCloseToFloat32AsTheCpuOne);
//   - 20 training steps on CUDA write a checkpoint that loads on the CPU and gives the logits CUDA gives;
//   - `eqr eval` on CUDA at breadth 8 reports what the CPU reports (initial states are drawn on the CPU for
//     every device; path noise off, float32);
//   - 2-rank NCCL data parallel equals 1 rank (needs 2 GPUs).
// Shape legend: B batch, S cells, D hidden, V vocab.

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fixtures.h"
#include "eqr/config/config.h"
#include "eqr/dynamics/carry.h"
#include "eqr/dynamics/step.h"
#include "eqr/eval/model_loader.h"
#include "eqr/io/checkpoint.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/init.h"
#include "test_support.h"

namespace eqr::test {
namespace {

namespace fs = std::filesystem;

#define EQR_REQUIRE_CUDA(n)                                                                          \
  do {                                                                                               \
    const int _have = static_cast<int>(torch::cuda::device_count()); /* an int8 DeviceIndex in 2.x */ \
    if (_have < (n)) {                                                                               \
      GTEST_SKIP() << "needs " << (n) << " CUDA device(s), " << _have                                \
                   << " visible (CPU-only machine or a CPU LibTorch): cuda tests run on a GPU host"; \
    }                                                                                                \
  } while (0)

constexpr int64_t kB = 6, kS = 16, kD = 32, kV = 6;

struct ModelSetup {
  config::ArchConfig arch;
  config::ComputeConfig compute;
};

ModelSetup arch(const std::string& mixer, const std::string& dtype) {
  ModelSetup s;
  s.arch = tiny_arch_4x4();  // S 16, D 32, V 6
  s.arch.noise_scale = 0.0;  // path noise comes from per-device generators: off for a like-with-like step
  s.arch.mlp_t = mixer == "mlp_t";
  s.compute.forward_dtype = dtype;
  s.compute.reduced_precision_on_cpu = true;  // the CPU side of the bfloat16 comparison really runs bfloat16
  return s;
}

struct StepResult {
  at::Tensor logits, q_halt, residual, z_h;
  std::vector<at::Tensor> grads;  // one per parameter, float32 on the CPU
};

/// One training-mode supervision step of a model seeded 7 on `device`, from running rows (no reset) with
/// states and data drawn on the CPU; backward of sum(logits^2)/numel + sum(q_halt). Everything returned is
/// float32 on the CPU.
StepResult run_step(const ModelSetup& setup, const c10::Device& device) {
  const config::ArchConfig& a = setup.arch;
  torch::manual_seed(7);
  model::EqrModel m(model::EqrModelOptions(a, setup.compute));
  m->to(device);
  m->train();
  auto g = model::make_generator(c10::Device(c10::kCPU), 11);
  dynamics::Batch batch;
  batch.inputs = at::randint(1, kV, {kB, kS}, g, torch::kLong);
  batch.labels = at::randint(2, kV, {kB, kS}, g, torch::kLong);
  batch.puzzle_identifiers = torch::zeros({kB}, torch::kInt);
  dynamics::Carry c = dynamics::initial_carry(m, batch);
  c.z_h = model::randn({kB, kS, kD}, torch::kFloat, g).to(device, m->forward_dtype());
  c.z_l = model::randn({kB, kS, kD}, torch::kFloat, g).to(device, m->forward_dtype());
  c.halted = torch::zeros({kB}, torch::TensorOptions().dtype(torch::kBool).device(device));
  c.steps = torch::full({kB}, 2, torch::TensorOptions().dtype(torch::kInt).device(device));
  c.data = batch.to(device);
  auto out = dynamics::step(m, c, c.data);
  const auto lf = out.logits.to(torch::kFloat);
  (lf.square().sum() / static_cast<double>(lf.numel()) + out.q_halt_logits.sum()).backward();
  StepResult r;
  r.logits = lf.detach().cpu();
  r.q_halt = out.q_halt_logits.detach().to(torch::kFloat).cpu();
  r.residual = out.residual.detach().to(torch::kFloat).cpu();
  r.z_h = out.carry.z_h.detach().to(torch::kFloat).cpu();
  for (const auto& p : m->parameters()) {
    r.grads.push_back(p.grad().defined() ? p.grad().detach().to(torch::kFloat).cpu() : torch::zeros({0}));
  }
  return r;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return a.numel() == 0 ? 0.0 : (a - b).abs().max().item<double>();
}

/// Largest absolute difference over every output of two steps (logits, q, residual, state, gradients).
double worst(const StepResult& a, const StepResult& b) {
  double w = std::max({max_abs_diff(a.logits, b.logits), max_abs_diff(a.q_halt, b.q_halt),
                       max_abs_diff(a.residual, b.residual), max_abs_diff(a.z_h, b.z_h)});
  for (size_t i = 0; i < a.grads.size(); ++i) w = std::max(w, max_abs_diff(a.grads[i], b.grads[i]));
  return w;
}

class CudaStep : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaStep, Float32StepEqualsCpuWithin1e4) {
  EQR_REQUIRE_CUDA(1);
  // TF32 would make CUDA matmuls 10-bit: off, so float32 means float32 on both sides.
  at::globalContext().setAllowTF32CuBLAS(false);
  const auto a = arch(GetParam(), "float32");
  const auto cpu = run_step(a, c10::Device(c10::kCPU));
  const auto gpu = run_step(a, c10::Device(c10::kCUDA, 0));
  EXPECT_LT(max_abs_diff(cpu.logits, gpu.logits), 1e-4);
  EXPECT_LT(max_abs_diff(cpu.q_halt, gpu.q_halt), 1e-4);
  EXPECT_LT(max_abs_diff(cpu.residual, gpu.residual), 1e-4 * std::max(1.0, cpu.residual.abs().max().item<double>()));
  ASSERT_EQ(cpu.grads.size(), gpu.grads.size());
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    EXPECT_LT(max_abs_diff(cpu.grads[i], gpu.grads[i]), 1e-4) << "parameter " << i;
  }
}

// bfloat16 keeps 8 significant bits (unit roundoff 2^-8 = 0.0039), and CPU and CUDA round and accumulate in
// different orders, so the two bfloat16 steps need not agree with each other to any fixed number of bits.
// What must hold is that CUDA's bfloat16 step is as good as the CPU's: its distance to the float32 step (the
// truth both approximate) at most twice the CPU bfloat16 step's distance, plus 2^-8 of slack for outputs
// where the CPU step happens to land very close.
TEST_P(CudaStep, BFloat16StepIsAsCloseToFloat32AsTheCpuOne) {
  EQR_REQUIRE_CUDA(1);
  at::globalContext().setAllowTF32CuBLAS(false);
  const auto truth = run_step(arch(GetParam(), "float32"), c10::Device(c10::kCPU));
  const auto cpu = run_step(arch(GetParam(), "bfloat16"), c10::Device(c10::kCPU));
  const auto gpu = run_step(arch(GetParam(), "bfloat16"), c10::Device(c10::kCUDA, 0));
  const double cpu_err = worst(cpu, truth), gpu_err = worst(gpu, truth);
  EXPECT_GT(cpu_err, 0.0) << "the CPU step did not run in bfloat16";
  EXPECT_LE(gpu_err, 2.0 * cpu_err + std::ldexp(1.0, -8)) << "CUDA bf16 error " << gpu_err << " vs CPU bf16 error "
                                                          << cpu_err;
}

INSTANTIATE_TEST_SUITE_P(Mixers, CudaStep, ::testing::Values("mlp_t", "attention"));

fs::path config_file(const std::string& name) { return source_dir() / "configs" / name; }

TEST(CudaTrain, TwentyStepsCheckpointLoadsOnCpuWithTheSameLogits) {
  EQR_REQUIRE_CUDA(1);
  const fs::path root = temp_dir("cuda_train");
  const auto r = run_eqr("train --config " + config_file("ci_tiny.yaml").string() + " --device cuda --set output_root=" +
                         root.string() + " --set name=t --set train.max_steps=20 --set train.epochs=100 " +
                         "--set compute.forward_dtype=float32 --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto latest = io::latest_checkpoint((root / "t").string());
  ASSERT_TRUE(latest.has_value());
  EXPECT_NE(latest->find("step_20"), std::string::npos) << *latest;
  at::globalContext().setAllowTF32CuBLAS(false);
  auto on_cpu = eval::load_model(*latest, c10::Device(c10::kCPU), /*use_ema=*/false, {"arch.noise_scale=0"});
  auto on_gpu = eval::load_model(*latest, c10::Device(c10::kCUDA, 0), /*use_ema=*/false, {"arch.noise_scale=0"});
  const auto& a = on_cpu.config.arch;
  torch::NoGradGuard no_grad;
  auto g = model::make_generator(c10::Device(c10::kCPU), 3);
  dynamics::Batch batch;
  batch.inputs = at::randint(1, a.vocab_size, {4, a.seq_len}, g, torch::kLong);
  batch.labels = batch.inputs.clone();
  batch.puzzle_identifiers = torch::zeros({4}, torch::kInt);
  at::Tensor logits[2];
  int k = 0;
  for (auto* lm : {&on_cpu, &on_gpu}) {
    const auto dev = lm->model->device();
    dynamics::Carry c = dynamics::initial_carry(lm->model, batch);
    auto cg = model::make_generator(c10::Device(c10::kCPU), 5);
    c.z_h = model::randn({4, a.seq_len, a.hidden_size}, torch::kFloat, cg).to(dev);
    c.z_l = model::randn({4, a.seq_len, a.hidden_size}, torch::kFloat, cg).to(dev);
    c.halted = torch::zeros({4}, torch::TensorOptions().dtype(torch::kBool).device(dev));
    c.steps = torch::ones({4}, torch::TensorOptions().dtype(torch::kInt).device(dev));
    c.data = batch.to(dev);
    logits[k++] = dynamics::step(lm->model, c, c.data).logits.to(torch::kFloat).cpu();
  }
  EXPECT_TRUE(torch::isfinite(logits[0]).all().item<bool>());
  EXPECT_LT(max_abs_diff(logits[0], logits[1]), 1e-4);
}

TEST(CudaEval, Breadth8ReportEqualsCpu) {
  EQR_REQUIRE_CUDA(1);
  const fs::path root = temp_dir("cuda_eval");
  // A trained checkpoint (CPU, seconds) so that the answers are not all alike.
  auto r = run_eqr("train --config " + config_file("ci_tiny.yaml").string() + " --device cpu --set output_root=" +
                   root.string() + " --set name=t --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json rep[2];
  int k = 0;
  for (const char* dev : {"cpu", "cuda"}) {
    const fs::path out = root / (std::string("eval_") + dev);
    r = run_eqr("eval --checkpoint " + (root / "t").string() + " --depth 2,4 --breadth 1,8 --seed 5 --device " + dev +
                " --set arch.noise_scale=0 --set compute.forward_dtype=float32 --row-traces --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << dev << ": " << r.err;
    rep[k++] = nlohmann::json::parse(read_file(out / "report.json"));
  }
  ASSERT_EQ(rep[0]["rows"].size(), rep[1]["rows"].size());
  for (size_t i = 0; i < rep[0]["rows"].size(); ++i) {
    const auto &c = rep[0]["rows"][i], &g = rep[1]["rows"][i];
    EXPECT_EQ(c["aggregator"], g["aggregator"]);
    EXPECT_EQ(c["depth"], g["depth"]);
    EXPECT_EQ(c["breadth"], g["breadth"]);
    EXPECT_DOUBLE_EQ(c["exact_accuracy"].get<double>(), g["exact_accuracy"].get<double>())
        << c["aggregator"] << " depth " << c["depth"] << " breadth " << c["breadth"];
    EXPECT_NEAR(c["cell_accuracy"].get<double>(), g["cell_accuracy"].get<double>(), 1e-9);
  }
  const auto& tc = rep[0]["trace"]["residual_mean"];
  const auto& tg = rep[1]["trace"]["residual_mean"];
  ASSERT_EQ(tc.size(), tg.size());
  for (size_t i = 0; i < tc.size(); ++i) {
    EXPECT_NEAR(tc[i].get<double>(), tg[i].get<double>(), 1e-4 * std::max(1.0, std::abs(tc[i].get<double>())));
  }
}

/// Final model tensors of a run directory's latest checkpoint, on the CPU.
io::TensorMap final_weights(const fs::path& run) {
  const auto latest = io::latest_checkpoint(run.string());
  EXPECT_TRUE(latest.has_value()) << run;
  return io::tensors_with_prefix(io::load_checkpoint(*latest).tensors, "model/");
}

TEST(CudaTrain, TwoRankNcclEqualsOneRank) {
  EQR_REQUIRE_CUDA(2);
  const fs::path root = temp_dir("cuda_nccl");
  // As the Gloo test (tests/integration/train_distributed_test.cpp): fixed init, no noise, no exploration, so
  // that nothing depends on per-rank random streams.
  const std::string common = "--config " + config_file("ci_tiny.yaml").string() + " --device cuda --set output_root=" +
                             root.string() + " --set compute.forward_dtype=float32 --set arch.noise_scale=0 " +
                             "--set arch.init=fixed --set arch.halt_exploration_prob=0 --set train.max_steps=5 " +
                             "--set train.eval_interval_steps=null --no-progress";
  at::globalContext().setAllowTF32CuBLAS(false);
  auto r = run_eqr("train " + common + " --set name=one");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_eqr("launch -n 2 -- train " + common + " --set name=two");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("backend nccl"), std::string::npos) << "the 2-rank run did not use NCCL:\n" << r.err;
  const auto one = final_weights(root / "one"), two = final_weights(root / "two");
  ASSERT_EQ(one.size(), two.size());
  for (const auto& [k, v] : one) {
    ASSERT_TRUE(two.count(k)) << k;
    EXPECT_LT(max_abs_diff(v.to(torch::kFloat), two.at(k).to(torch::kFloat)), 1e-4) << k;
  }
}

}  // namespace
}  // namespace eqr::test
