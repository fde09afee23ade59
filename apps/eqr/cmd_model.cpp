// `eqr model info`: parameter count, blocks per supervision step and the parameter table of a config.
// `eqr bench model`: time of one supervision step (forward+backward, and no-grad) after validating it.
// Shape legend: B batch, S cells, D hidden, V vocab.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "eqr/config/load.h"
#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/core/gemm_peak.h"
#include "eqr/core/rng.h"
#include "eqr/core/version.h"
#include "eqr/dynamics/carry.h"
#include "eqr/dynamics/step.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/init.h"

namespace eqr::app {

namespace {

std::string shape_string(const at::Tensor& t) {
  std::ostringstream os;
  os << "[";
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << "]";
  return os.str();
}

std::string arch_summary(const config::ArchConfig& a) {
  std::ostringstream os;
  os << "variant " << a.variant << ", " << (a.mlp_t ? "mlp_t" : "attention") << ", D " << a.hidden_size << ", S "
     << a.seq_len << ", V " << a.vocab_size << ", l_layers " << a.l_layers << ", h_cycles " << a.h_cycles
     << ", l_cycles " << a.l_cycles << ", lambda " << a.lambda << ", noise " << a.noise_scale << ", init " << a.init;
  return os.str();
}

/// Peak resident set size of this process in MiB (VmHWM), or -1 where /proc is not available.
double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1.0;
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

struct Timing {
  double mean_ms = 0;  ///< wall clock
  double min_ms = 0;
  double cpu_ms = 0;  ///< process CPU time (all threads) per step: robust to other load on the machine
};

template <class Fn>
Timing time_it(int warmup, int iters, const c10::Device& device, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn();
  synchronize(device);
  std::vector<double> ms;
  const std::clock_t c0 = std::clock();
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  Timing t;
  t.cpu_ms = 1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC / static_cast<double>(iters);
  t.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  t.min_ms = *std::min_element(ms.begin(), ms.end());
  return t;
}

/// A stand-in training loss: token cross-entropy (float32) + BCE of q_halt against "row correct".
at::Tensor bench_loss(const dynamics::StepOutput& out, const at::Tensor& labels) {
  const auto logits = out.logits.to(torch::kFloat);
  const auto lm = torch::nn::functional::cross_entropy(logits.flatten(0, 1), labels.flatten());
  const auto correct = (logits.argmax(-1) == labels).all(-1).to(torch::kFloat);
  return lm + 0.5 * torch::nn::functional::binary_cross_entropy_with_logits(out.q_halt_logits, correct);
}

void register_info(CLI::App* parent) {
  struct Args {
    ConfigArgs config;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = parent->add_subcommand("info", "Parameter count, blocks per supervision step and parameter table");
  add_config_options(cmd, a->config, false);
  cmd->add_flag("--json", a->json, "Print one JSON object instead of the table");
  cmd->callback([a] {
    const auto run = config::load(a->config.path, a->config.overrides);
    torch::manual_seed(0);
    model::EqrModel m(model::EqrModelOptions{run.arch});
    const auto params = m->named_parameters();
    if (a->json) {
      nlohmann::json table = nlohmann::json::array();
      for (const auto& p : params) {
        table.push_back({{"name", p.key()}, {"shape", p.value().sizes().vec()}, {"count", p.value().numel()}});
      }
      nlohmann::json j = {{"parameters", m->num_parameters()},
                          {"blocks_per_step", m->blocks_per_step()},
                          {"arch", config::to_json(run.arch)},
                          {"persistent_buffers", m->persistent_buffer_names()},
                          {"table", table}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "arch: " << arch_summary(run.arch) << "\n";
    std::cout << "parameters: " << m->num_parameters() << "\n";
    std::cout << "blocks per supervision step: " << m->blocks_per_step() << " (h_cycles " << run.arch.h_cycles
              << " x (l_cycles " << run.arch.l_cycles << " + 1) x l_layers " << run.arch.l_layers << ")\n";
    const auto buffers = m->persistent_buffer_names();
    std::cout << "persistent buffers: " << (buffers.empty() ? "none" : "H_init, L_init") << "\n\n";
    size_t width = 4;
    for (const auto& p : params) width = std::max(width, p.key().size());
    std::printf("%-*s  %-14s %12s\n", static_cast<int>(width), "name", "shape", "count");
    for (const auto& p : params) {
      std::printf("%-*s  %-14s %12lld\n", static_cast<int>(width), p.key().c_str(), shape_string(p.value()).c_str(),
                  static_cast<long long>(p.value().numel()));
    }
    std::printf("%-*s  %-14s %12lld\n", static_cast<int>(width), "total", "",
                static_cast<long long>(m->num_parameters()));
  });
}

}  // namespace

void register_model(CLI::App& app) {
  auto* cmd = app.add_subcommand("model", "Inspect the model of a config");
  cmd->require_subcommand(1);
  register_info(cmd);
}

void register_bench_model(CLI::App& app) {
  auto* bench = app.get_subcommand("bench");
  struct Args {
    ConfigArgs config;
    int64_t batch = 8;
    int iters = 3;
    int warmup = 1;
    std::string device;
    int64_t threads = -1;
    uint64_t seed = 0;
    bool no_peak = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = bench->add_subcommand(
      "model", "Time one supervision step (forward+backward, and no-grad) of a config after validating it");
  add_config_options(cmd, a->config, false);
  cmd->add_option("-b,--batch", a->batch, "Rows B")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--iters", a->iters, "Timed steps per mode")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", a->warmup, "Untimed steps per mode first")->capture_default_str();
  cmd->add_option("--device", a->device, "Device (default: the config's run device)");
  cmd->add_option("--threads", a->threads, "Intra-op CPU threads (default: the config's num_threads)");
  cmd->add_option("--seed", a->seed, "Seed of weights, data, states and noise")->capture_default_str();
  cmd->add_flag("--no-peak", a->no_peak, "Skip the GEMM peak measurement (about 2 s: float32 and bfloat16)");
  cmd->callback([a] {
    const auto run = config::load(a->config.path, a->config.overrides);
    const auto device = resolve_device(a->device.empty() ? run.device : a->device);
    const int64_t threads = a->threads >= 0 ? a->threads : run.num_threads;
    set_num_threads(threads);
    const auto& arch = run.arch;

    seed_torch(a->seed);
    model::EqrModel m(model::EqrModelOptions{arch});
    m->to(device);
    auto gen = model::make_generator(device, derive_seed(a->seed, stream_id("bench-noise")));
    auto data_gen = make_cpu_generator(derive_seed(a->seed, stream_id("bench-data")));
    dynamics::Batch batch;
    batch.inputs = at::randint(1, arch.vocab_size, {a->batch, arch.seq_len}, data_gen, torch::kLong).to(device);
    batch.labels = at::randint(std::min<int64_t>(2, arch.vocab_size - 1), arch.vocab_size, {a->batch, arch.seq_len},
                               data_gen, torch::kLong)
                       .to(device);

    // Validate first: shapes, finite outputs and finite gradients of a training step.
    m->train();
    dynamics::Carry carry = dynamics::initial_carry(m, batch);
    {
      auto out = dynamics::step(m, carry, batch, gen);
      EQR_CHECK(out.logits.sizes() == at::IntArrayRef({a->batch, arch.seq_len, arch.vocab_size}), RuntimeError,
                "bench model: logits ", out.logits.sizes(), " have the wrong shape");
      EQR_CHECK(torch::isfinite(out.logits).all().item<bool>() && torch::isfinite(out.residual).all().item<bool>(),
                RuntimeError, "bench model: non-finite logits or residual in the validation step");
      bench_loss(out, out.carry.data.labels).backward();
      for (const auto& p : m->named_parameters()) {
        EQR_CHECK(p.value().grad().defined() && torch::isfinite(p.value().grad()).all().item<bool>(), RuntimeError,
                  "bench model: gradient of ", p.key(), " missing or non-finite");
      }
      carry = out.carry;
    }

    // After the validation step no row is halted (no halting rule runs here): the timed steps say so, and
    // skip the reset's nonzero() (a device->host sync that would be timed too).
    dynamics::StepOptions timed;
    timed.resets = dynamics::Resets::kNone;
    const auto train_step = [&] {
      for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
      auto out = dynamics::step(m, carry, batch, gen, timed);
      bench_loss(out, out.carry.data.labels).backward();
      carry = out.carry;
    };
    const Timing train = time_it(a->warmup, a->iters, device, train_step);

    m->eval();
    const auto eval_step = [&] {
      torch::NoGradGuard no_grad;
      carry = dynamics::step(m, carry, batch, gen, timed).carry;
    };
    const Timing eval = time_it(a->warmup, a->iters, device, eval_step);

    const int64_t blocks = m->blocks_per_step();
    const auto flops = model::step_matmul_flops(*m, a->batch);
    const double train_tflops = flops.train / (train.mean_ms * 1e9), eval_tflops = flops.eval / (eval.mean_ms * 1e9);
    const auto dtype = m->forward_dtype();
    // The yardstick: one plain GEMM of the block's largest shape, (B*S, D) @ (D, 2*SwiGLU width), measured
    // after the timed steps (so it does not warm the caches for them).
    std::optional<GemmPeak> peak;
    if (!a->no_peak) {
      int64_t n = 3 * arch.hidden_size;
      for (const auto& p : m->named_parameters()) {
        if (p.key().find("mlp.gate_up_proj.weight") != std::string::npos) n = p.value().size(0);
      }
      peak = measure_gemm_peak(device, a->batch * arch.seq_len, arch.hidden_size, n, 1.0);
    }
    const double peak_gflops =
        peak ? (dtype == torch::kBFloat16 ? peak->bf16_gflops : peak->fp32_gflops) : std::nan("");
    const double rss = peak_rss_mib();
    std::printf("bench model: %s\n", arch_summary(arch).c_str());
    std::printf("device %s, forward dtype %s, threads %d, batch %lld, %lld params, %lld blocks/step, git %s\n",
                device.str().c_str(), c10::toString(dtype), torch::get_num_threads(), static_cast<long long>(a->batch),
                static_cast<long long>(m->num_parameters()), static_cast<long long>(blocks), git_sha().c_str());
    std::printf("%-20s %11s %11s %13s %14s %11s\n", "mode", "ms/step", "min ms", "cpu ms/step", "rows*steps/s",
                "ms/block");
    const auto row = [&](const char* name, const Timing& t) {
      std::printf("%-20s %11.1f %11.1f %13.1f %14.2f %11.3f\n", name, t.mean_ms, t.min_ms, t.cpu_ms,
                  1000.0 * static_cast<double>(a->batch) / t.mean_ms, t.mean_ms / static_cast<double>(blocks));
    };
    row("forward+backward", train);
    row("no-grad (eval)", eval);
    std::printf("matmul work per step: train %.1f GFLOP (%.2f TFLOP/s), eval %.1f GFLOP (%.2f TFLOP/s)\n",
                flops.train / 1e9, train_tflops, flops.eval / 1e9, eval_tflops);
    if (peak) {
      std::printf("GEMM peak on %s, (%lld x %lld) @ (%lld x %lld): float32 %.0f GFLOP/s, bfloat16 %.0f GFLOP/s; "
                  "this step's matmuls reach %.0f%% (train) and %.0f%% (eval) of the %s peak\n",
                  device.str().c_str(), static_cast<long long>(peak->m), static_cast<long long>(peak->k),
                  static_cast<long long>(peak->k), static_cast<long long>(peak->n), peak->fp32_gflops, peak->bf16_gflops,
                  100.0 * 1000.0 * train_tflops / peak_gflops, 100.0 * 1000.0 * eval_tflops / peak_gflops,
                  c10::toString(dtype));
    }
    if (rss >= 0) std::printf("peak RSS %.0f MiB\n", rss);
    nlohmann::json j = {{"bench", "model"},
                        {"git_sha", git_sha()},
                        {"version", version()},
                        {"device", device.str()},
                        {"forward_dtype", c10::toString(dtype)},
                        {"threads", torch::get_num_threads()},
                        {"batch", a->batch},
                        {"iters", a->iters},
                        {"parameters", m->num_parameters()},
                        {"blocks_per_step", blocks},
                        {"train_ms_per_step", train.mean_ms},
                        {"train_min_ms", train.min_ms},
                        {"train_cpu_ms_per_step", train.cpu_ms},
                        {"eval_ms_per_step", eval.mean_ms},
                        {"eval_min_ms", eval.min_ms},
                        {"eval_cpu_ms_per_step", eval.cpu_ms},
                        {"train_rows_steps_per_s", 1000.0 * static_cast<double>(a->batch) / train.mean_ms},
                        {"eval_rows_steps_per_s", 1000.0 * static_cast<double>(a->batch) / eval.mean_ms},
                        {"train_matmul_gflop_per_step", flops.train / 1e9},
                        {"eval_matmul_gflop_per_step", flops.eval / 1e9},
                        {"train_matmul_tflops", train_tflops},
                        {"eval_matmul_tflops", eval_tflops},
                        {"gemm_peak_shape", peak ? nlohmann::json{peak->m, peak->k, peak->n} : nlohmann::json()},
                        {"gemm_peak_fp32_gflops", peak ? nlohmann::json(peak->fp32_gflops) : nlohmann::json()},
                        {"gemm_peak_bf16_gflops", peak ? nlohmann::json(peak->bf16_gflops) : nlohmann::json()},
                        {"train_pct_of_gemm_peak", peak ? nlohmann::json(1e5 * train_tflops / peak_gflops) : nlohmann::json()},
                        {"eval_pct_of_gemm_peak", peak ? nlohmann::json(1e5 * eval_tflops / peak_gflops) : nlohmann::json()},
                        {"peak_rss_mib", rss},
                        {"arch", config::to_json(arch)}};
    std::cout << j.dump() << "\n";
  });
}

}  // namespace eqr::app
