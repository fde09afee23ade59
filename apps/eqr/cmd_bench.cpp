// `eqr bench <case>`: benchmarks that validate correctness first, then time, and print figures (never part
// of ctest). Tasks add their own `bench` commands through the task registry (task/cli.h). This file holds the
// model benchmarks: one harness (BenchCase, run_case) whose cases share options, setup and report
// (docs/performance.md), each run in one of three modes as ggml's test-backend-ops: test (validate one
// step), grad (and its gradients, or the optimiser's update), perf (both, then time; the default):
//   bench model: one supervision step, forward+backward with a stand-in loss, and no-grad;
//   bench train: one optimisation step exactly as `eqr train` runs it (train::TrainStep);
//   bench eval:  one step of the evaluation runner (infer::run) at breadth R.
// Shape legend: B batch (puzzles), R breadth, S cells, D hidden, V vocab.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "eqr/config/load.h"
#include "eqr/core/cpu_gemm.h"
#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/core/gemm_peak.h"
#include "eqr/core/rng.h"
#include "eqr/core/version.h"
#include "eqr/dynamics/carry.h"
#include "eqr/dynamics/step.h"
#include "eqr/infer/runner.h"
#include "eqr/model/eqr_model.h"
#include "eqr/model/init.h"
#include "eqr/task/task.h"
#include "eqr/train/adam_atan2.h"
#include "eqr/train/ema.h"
#include "eqr/train/train_step.h"
#include "eqr/train/trainer.h"

namespace eqr::app {

namespace {

using Json = nlohmann::ordered_json;

// ---- shared by the model benchmarks ----------------------------------------------------------------

/// The options every model benchmark takes.
struct BenchArgs {
  ConfigArgs config;
  int64_t batch = 8;
  int iters = 3;
  int warmup = 1;
  std::string device;
  int64_t threads = -1;
  uint64_t seed = 0;
  bool no_peak = false;
  bool json = false;
};

void add_bench_options(CLI::App* cmd, BenchArgs& a, const std::string& batch_help) {
  add_config_options(cmd, a.config, false);
  cmd->add_option("-b,--batch", a.batch, batch_help)->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--iters", a.iters, "Timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", a.warmup, "Untimed steps first")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", a.device, "Device (default: the config's run device)");
  cmd->add_option("--threads", a.threads, "Intra-op CPU threads (default: the config's num_threads; 0 = auto)");
  cmd->add_option("--seed", a.seed, "Seed of weights, data, states and noise")->capture_default_str();
  cmd->add_flag("--no-peak", a.no_peak, "Skip the GEMM peak measurement (about 2 s: float32 and bfloat16)");
  cmd->add_flag("--json", a.json, "Print one JSON line instead of the table");
}

/// A benchmark's config, device and freshly initialised model (threads set, torch seeded with --seed).
struct BenchContext {
  config::RunConfig run;
  c10::Device device{c10::kCPU};
  model::EqrModel model{nullptr};
};

BenchContext make_context(const BenchArgs& a) {
  BenchContext c;
  c.run = config::load(a.config.path, a.config.overrides);
  c.device = resolve_device(a.device.empty() ? c.run.device : a.device);
  set_num_threads(a.threads >= 0 ? a.threads : c.run.num_threads);
  seed_torch(a.seed);
  c.model = model::EqrModel(model::EqrModelOptions(c.run.arch, c.run.compute));
  c.model->to(c.device);
  return c;
}

/// B random rows on `device`, int32 as the loader delivers them: inputs in [1, V), labels in [2, V) (digit
/// tokens of a Sudoku), puzzle ids 0. Timing does not depend on the values.
dynamics::Batch random_batch(const config::ArchConfig& arch, int64_t b, uint64_t seed, const c10::Device& device) {
  auto gen = make_cpu_generator(derive_seed(seed, stream_id("bench-data")));
  dynamics::Batch batch;
  batch.inputs = at::randint(1, arch.vocab_size, {b, arch.seq_len}, gen, torch::kInt).to(device);
  batch.labels = at::randint(std::min<int64_t>(2, arch.vocab_size - 1), arch.vocab_size, {b, arch.seq_len}, gen,
                             torch::kInt)
                     .to(device);
  batch.puzzle_identifiers = torch::zeros({b}, torch::TensorOptions().dtype(torch::kInt).device(device));
  return batch;
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

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Timing {
  double mean_ms = 0;  ///< wall clock
  double min_ms = 0;
  double cpu_ms = 0;  ///< process CPU time (all threads) per step: robust to other load on the machine
};

/// Timing of steps that took `ms` each (wall) and `cpu_clock` std::clock() ticks together.
Timing summarize(const std::vector<double>& ms, std::clock_t cpu_clock) {
  EQR_CHECK(!ms.empty(), RuntimeError, "bench: no step was timed");
  Timing t;
  const double n = static_cast<double>(ms.size());
  t.cpu_ms = 1000.0 * static_cast<double>(cpu_clock) / CLOCKS_PER_SEC / n;
  t.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / n;
  t.min_ms = *std::min_element(ms.begin(), ms.end());
  return t;
}

/// Runs `fn` warmup times, then times it iters times (CUDA synchronised around every step).
template <class Fn>
Timing time_it(int warmup, int iters, const c10::Device& device, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn();
  synchronize(device);
  std::vector<double> ms;
  const std::clock_t c0 = std::clock();
  for (int i = 0; i < iters; ++i) {
    const double t0 = now_ms();
    fn();
    synchronize(device);
    ms.push_back(now_ms() - t0);
  }
  return summarize(ms, std::clock() - c0);
}

/// One timed mode of a report.
struct TimedMode {
  std::string key;    ///< JSON prefix: "train" or "eval"
  std::string label;  ///< table row
  Timing t;
  int64_t rows = 0;   ///< rows advanced per step (B, or B*R for the runner)
  double flop = 0;    ///< matmul FLOP per step (model::step_matmul_flops)
};

/// The config's name of a forward dtype: float32, bfloat16, float16 (else LibTorch's name).
std::string dtype_name(c10::ScalarType t) {
  if (t == torch::kFloat) return "float32";
  if (t == torch::kBFloat16) return "bfloat16";
  if (t == torch::kHalf) return "float16";
  return c10::toString(t);
}

/// The GEMM float32 linear layers run on `device`: "onednn" or "torch" (arch.cpu_gemm resolved).
std::string fp32_gemm_name(const c10::Device& device, const std::string& cpu_gemm) {
  if (!device.is_cpu()) return "torch";
  const CpuGemm g = parse_cpu_gemm(cpu_gemm);
  return g == CpuGemm::kOneDnn || (g == CpuGemm::kAuto && onednn_sgemm_available()) ? "onednn" : "torch";
}

std::string thread_summary() {
  const int blas = blas_num_threads();
  return "LibTorch " + std::to_string(torch::get_num_threads()) + ", " + blas_kind() + " " +
         (blas > 0 ? std::to_string(blas) : std::string("?"));
}

std::string config_summary(const BenchArgs& a) {
  std::string s = a.config.path.empty() ? std::string("(defaults)") : a.config.path;
  for (const auto& o : a.config.overrides) s += " --set " + o;
  return s;
}

/// Measures the GEMM peak (unless --no-peak) after the timed steps (so it does not warm the caches for them),
/// then prints the table, or with --json one JSON line: the figures of every mode, the machine's measured
/// GEMM peak and each mode's share of the peak of the forward dtype, peak RSS, threads, dtype, git SHA and
/// the config. `extra` lines (table) and `extra_json` keys describe what the benchmark timed.
void print_report(const std::string& bench, const BenchArgs& a, BenchContext& c, const std::vector<TimedMode>& modes,
                  const std::vector<std::string>& extra, const Json& extra_json) {
  const auto& arch = c.run.arch;
  const auto dtype = c.model->forward_dtype();
  int64_t rows = 0;
  for (const auto& m : modes) rows = std::max(rows, m.rows);
  // The yardstick: one plain GEMM of the block's largest shape, (rows*S, D) @ (D, 2*SwiGLU width).
  std::optional<GemmPeak> peak;
  if (!a.no_peak) {
    int64_t n = 3 * arch.hidden_size;
    for (const auto& p : c.model->named_parameters()) {
      if (p.key().find("mlp.gate_up_proj.weight") != std::string::npos) n = p.value().size(0);
    }
    peak = measure_gemm_peak(c.device, rows * arch.seq_len, arch.hidden_size, n, 1.0, parse_cpu_gemm(c.run.compute.cpu_gemm));
  }
  const double peak_gflops =
      peak ? (dtype == torch::kBFloat16 ? peak->bf16_gflops : peak->fp32_gflops) : std::nan("");
  const double rss = peak_rss_mib();
  const int64_t blocks = c.model->blocks_per_step();
  const auto gflops = [](const TimedMode& m) { return m.flop / (m.t.mean_ms * 1e6); };

  if (a.json) {
    const auto opt = [&](double v) { return peak ? Json(v) : Json(); };
    Json j = {{"bench", bench},
              {"git_sha", git_sha()},
              {"version", version()},
              {"torch_version", torch_version()},
              {"device", c.device.str()},
              {"cpu", cpu_summary()},
              {"cpu_model", cpu_features().model},
              {"bf16_path", bf16_path_name(device_has_native_bf16(c.device))},
              {"fp32_gemm", fp32_gemm_name(c.device, c.run.compute.cpu_gemm)},
              {"forward_dtype", dtype_name(dtype)},
              {"threads", torch::get_num_threads()},
              {"blas", blas_kind()},
              {"blas_threads", blas_num_threads()},
              {"batch", a.batch},
              {"iters", a.iters},
              {"warmup", a.warmup},
              {"seed", a.seed},
              {"parameters", c.model->num_parameters()},
              {"blocks_per_step", blocks}};
    for (const auto& m : modes) {
      const std::string k = m.key + "_";
      j[k + "rows"] = m.rows;
      j[k + "ms_per_step"] = m.t.mean_ms;
      j[k + "min_ms"] = m.t.min_ms;
      j[k + "cpu_ms_per_step"] = m.t.cpu_ms;
      j[k + "rows_steps_per_s"] = 1000.0 * static_cast<double>(m.rows) / m.t.mean_ms;
      j[k + "ms_per_block"] = m.t.mean_ms / static_cast<double>(blocks);
      j[k + "matmul_gflop_per_step"] = m.flop / 1e9;
      j[k + "matmul_gflops"] = gflops(m);
      j[k + "matmul_tflops"] = gflops(m) / 1e3;
      j[k + "pct_of_gemm_peak"] = opt(100.0 * gflops(m) / peak_gflops);
    }
    j["gemm_peak_shape"] = peak ? Json{peak->m, peak->k, peak->n} : Json();
    j["gemm_peak_fp32_gflops"] = opt(peak ? peak->fp32_gflops : 0);
    j["gemm_peak_bf16_gflops"] = peak && peak->bf16_error.empty() ? Json(peak->bf16_gflops) : Json();
    if (peak && !peak->bf16_error.empty()) j["gemm_peak_bf16_error"] = peak->bf16_error;
    j["gemm_peak_fp32_gemm"] = peak ? Json(peak->fp32_gemm) : Json();
    j["gemm_peak_fp32_rel_error"] = opt(peak ? peak->fp32_rel_error : 0);
    j["gemm_peak_bf16_rel_error"] = opt(peak ? peak->bf16_rel_error : 0);
    j["peak_rss_mib"] = rss;
    for (const auto& [k, v] : extra_json.items()) j[k] = v;
    j["config"] = config_summary(a);
    j["arch"] = Json::parse(config::to_json(arch).dump());
    std::cout << j.dump() << std::endl;
    return;
  }
  std::printf("bench %s: %s\n", bench.c_str(), arch_summary(arch).c_str());
  std::printf("config %s\n", config_summary(a).c_str());
  std::printf("cpu %s\n", cpu_summary().c_str());
  std::printf("device %s, forward dtype %s (float32 GEMM: %s), threads %s, batch %lld, %lld params, %lld blocks/step, git %s\n",
              c.device.str().c_str(), dtype_name(dtype).c_str(), fp32_gemm_name(c.device, c.run.compute.cpu_gemm).c_str(), thread_summary().c_str(), static_cast<long long>(a.batch),
              static_cast<long long>(c.model->num_parameters()), static_cast<long long>(blocks), git_sha().c_str());
  for (const auto& line : extra) std::printf("%s\n", line.c_str());
  std::printf("%-18s %10s %10s %12s %13s %10s %11s %9s %7s\n", "mode", "ms/step", "min ms", "cpu ms/step",
              "rows*steps/s", "ms/block", "GFLOP/step", "GFLOP/s", "% peak");
  for (const auto& m : modes) {
    std::printf("%-18s %10.1f %10.1f %12.1f %13.2f %10.3f %11.3f %9.1f %7s\n", m.label.c_str(), m.t.mean_ms,
                m.t.min_ms, m.t.cpu_ms, 1000.0 * static_cast<double>(m.rows) / m.t.mean_ms,
                m.t.mean_ms / static_cast<double>(blocks), m.flop / 1e9, gflops(m),
                peak ? (std::to_string(static_cast<int>(std::lround(100.0 * gflops(m) / peak_gflops))) + "%").c_str()
                     : "-");
  }
  if (peak) {
    std::printf("GEMM peak on %s, (%lld x %lld) @ (%lld x %lld): float32 (%s) %.0f GFLOP/s, bfloat16 (%s) %.0f GFLOP/s "
                "(%% peak is of the %s one)\n",
                c.device.str().c_str(), static_cast<long long>(peak->m), static_cast<long long>(peak->k),
                static_cast<long long>(peak->k), static_cast<long long>(peak->n), peak->fp32_gemm.c_str(),
                peak->fp32_gflops, bf16_path_name(peak->bf16_native), peak->bf16_gflops,
                dtype == torch::kBFloat16 ? "bfloat16" : "float32");
  }
  if (peak && !peak->bf16_error.empty()) {
    std::printf("bfloat16 GEMM could not run here: %s\n", peak->bf16_error.c_str());
  }
  if (rss >= 0) std::printf("peak RSS %.0f MiB\n", rss);
}

// ---- the harness: one case struct, three modes (as ggml's test-backend-ops) --------------------------

/// test: validate what the case times (shapes, finite outputs; RuntimeError naming the failure) and stop;
/// grad: test, then the gradient or update check of the case; perf (default): test, grad, then time.
enum class BenchMode { kTest, kGrad, kPerf };

BenchMode parse_bench_mode(const std::string& name) {
  if (name == "test") return BenchMode::kTest;
  if (name == "grad") return BenchMode::kGrad;
  if (name == "perf") return BenchMode::kPerf;
  EQR_FAIL(UsageError, "--mode '", name, "': expected test, grad or perf");
}

/// One benchmark case. Its functions share the case's state (captured by them) and run in this order.
struct BenchCase {
  std::string name;                               ///< "model", "train", "eval"
  std::function<void()> test;                     ///< validation of one step
  std::function<void()> grad;                     ///< gradients present and finite / the update applied; may be empty
  std::function<std::vector<TimedMode>()> perf;   ///< the timed modes
  std::vector<std::string> lines;                 ///< what it times (table)
  Json json;                                      ///< the same as JSON keys
};

/// Runs `k` in `mode` and prints its report: the timed table or JSON line (perf), or what was checked.
void run_case(const BenchCase& k, BenchMode mode, const BenchArgs& a, BenchContext& c) {
  k.test();
  if (mode != BenchMode::kTest && k.grad) k.grad();
  if (mode == BenchMode::kPerf) {
    print_report(k.name, a, c, k.perf(), k.lines, k.json);
    return;
  }
  const char* checked = mode == BenchMode::kTest ? "test" : k.grad ? "test+grad" : "test (no gradient check)";
  if (a.json) {
    std::cout << Json{{"bench", k.name}, {"mode", mode == BenchMode::kTest ? "test" : "grad"}, {"checked", checked},
                      {"passed", true}, {"device", c.device.str()}, {"forward_dtype", dtype_name(c.model->forward_dtype())},
                      {"batch", a.batch}, {"seed", a.seed}, {"git_sha", git_sha()}, {"config", config_summary(a)}}
                     .dump()
              << std::endl;
  } else {
    std::printf("bench %s: %s passed (%s, forward dtype %s, batch %lld)\n", k.name.c_str(), checked,
                c.device.str().c_str(), dtype_name(c.model->forward_dtype()).c_str(), static_cast<long long>(a.batch));
  }
}

// ---- case model: one supervision step, forward+backward (stand-in loss) and no-grad -------------------

/// A stand-in training loss: token cross-entropy (float32) + BCE of q_halt against "row correct".
at::Tensor bench_loss(const dynamics::StepOutput& out, const at::Tensor& labels) {
  const auto logits = out.logits.to(torch::kFloat);
  const auto lm = torch::nn::functional::cross_entropy(logits.flatten(0, 1), labels.flatten());
  const auto correct = (logits.argmax(-1) == labels).all(-1).to(torch::kFloat);
  return lm + 0.5 * torch::nn::functional::binary_cross_entropy_with_logits(out.q_halt_logits, correct);
}

BenchCase model_case(const BenchArgs& a, BenchContext& c) {
  struct State {
    at::Generator gen;
    dynamics::Batch batch;
    dynamics::Carry carry;
    std::optional<dynamics::StepOutput> checked;  // the validation step, for the gradient check
  };
  auto s = std::make_shared<State>();
  auto& m = c.model;
  const auto& arch = c.run.arch;
  s->gen = model::make_generator(c.device, derive_seed(a.seed, stream_id("bench-noise")));
  s->batch = random_batch(arch, a.batch, a.seed, c.device);
  BenchCase k;
  k.name = "model";
  k.test = [s, &m, &arch, &a] {
    m->train();
    s->carry = dynamics::initial_carry(m, s->batch);
    auto out = dynamics::step(m, s->carry, s->batch, s->gen);
    EQR_CHECK(out.logits.sizes() == at::IntArrayRef({a.batch, arch.seq_len, arch.vocab_size}), RuntimeError,
              "bench model: logits ", out.logits.sizes(), " have the wrong shape");
    EQR_CHECK(torch::isfinite(out.logits).all().item<bool>() && torch::isfinite(out.residual).all().item<bool>(),
              RuntimeError, "bench model: non-finite logits or residual in the validation step");
    s->checked = out;
    s->carry = out.carry;
  };
  k.grad = [s, &m] {
    bench_loss(*s->checked, s->checked->carry.data.labels.to(torch::kLong)).backward();
    for (const auto& p : m->named_parameters()) {
      EQR_CHECK(p.value().grad().defined() && torch::isfinite(p.value().grad()).all().item<bool>(), RuntimeError,
                "bench model: gradient of ", p.key(), " missing or non-finite");
    }
  };
  k.perf = [s, &m, &a, &c] {
    s->checked.reset();
    // After the validation step no row is halted (no halting rule runs here): the timed steps say so, and
    // skip the reset's nonzero() (a device->host sync that would be timed too).
    dynamics::StepOptions timed;
    timed.resets = dynamics::Resets::kNone;
    m->train();
    const Timing train = time_it(a.warmup, a.iters, c.device, [&] {
      for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
      auto out = dynamics::step(m, s->carry, s->batch, s->gen, timed);
      bench_loss(out, out.carry.data.labels.to(torch::kLong)).backward();
      s->carry = out.carry;
    });
    m->eval();
    const Timing eval = time_it(a.warmup, a.iters, c.device, [&] {
      torch::NoGradGuard no_grad;
      s->carry = dynamics::step(m, s->carry, s->batch, s->gen, timed).carry;
    });
    const auto flops = model::step_matmul_flops(*m, a.batch);
    return std::vector<TimedMode>{{"train", "forward+backward", train, a.batch, flops.train},
                                  {"eval", "no-grad (eval)", eval, a.batch, flops.eval}};
  };
  k.lines = {"timed: one supervision step, forward+backward with a stand-in loss (no optimiser), and no-grad"};
  k.json = Json{{"timed", "supervision step: forward+backward (stand-in loss), no-grad"}};
  return k;
}

// ---- case train: one optimisation step as `eqr train` runs it (train::TrainStep) ----------------------

BenchCase train_case(const BenchArgs& a, BenchContext& c) {
  struct State {
    std::unique_ptr<train::AdamATan2> optimizer;
    std::unique_ptr<train::Ema> ema;
    std::unique_ptr<train::TrainStep> step;
    at::Generator gen;
    dynamics::Batch batch;
    dynamics::Carry carry;
    std::vector<at::Tensor> before;  // parameters before the validation step
  };
  auto s = std::make_shared<State>();
  auto& m = c.model;
  const auto& arch = c.run.arch;
  const auto& tc = c.run.train;
  m->train();
  s->optimizer = train::make_optimizer(m, tc);
  s->ema = train::make_ema(m, tc);
  train::TrainStepOptions options = train::TrainStepOptions::from(c.run);
  options.global_batch_size = a.batch;  // one process: the batch is the global batch
  s->step = std::make_unique<train::TrainStep>(m, *s->optimizer, s->ema.get(), options);
  s->gen = train::training_generator(c.device, a.seed, 0);
  s->batch = random_batch(arch, a.batch, a.seed, c.device);
  s->carry = dynamics::initial_carry(m, s->batch);  // all rows halted: the first step loads them
  const double lr = tc.lr;                            // the schedule's value after warm-up
  BenchCase k;
  k.name = "train";
  k.test = [s, &m, &arch, &a, lr] {
    s->before.clear();
    for (const auto& p : m->parameters()) s->before.push_back(p.detach().clone());
    const train::TrainStepResult r = s->step->run(s->carry, s->batch, s->gen, lr);
    EQR_CHECK(r.out.logits.sizes() == at::IntArrayRef({a.batch, arch.seq_len, arch.vocab_size}), RuntimeError,
              "bench train: logits ", r.out.logits.sizes(), " have the wrong shape");
    EQR_CHECK(std::isfinite(r.total.item<double>()), RuntimeError, "bench train: non-finite loss ",
              r.total.item<double>(), " in the validation step");
  };
  k.grad = [s, &m, lr] {
    bool changed = false;
    const auto params = m->named_parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      EQR_CHECK(torch::isfinite(params[i].value()).all().item<bool>(), RuntimeError, "bench train: parameter ",
                params[i].key(), " is non-finite after the validation step");
      changed = changed || !torch::equal(s->before[i], params[i].value());
    }
    EQR_CHECK(changed || lr == 0.0, RuntimeError, "bench train: the optimiser step changed no parameter");
  };
  k.perf = [s, &m, &a, &c, lr] {
    const Timing t = time_it(a.warmup, a.iters, c.device, [&] { s->step->run(s->carry, s->batch, s->gen, lr); });
    return std::vector<TimedMode>{{"train", "train step", t, a.batch, model::step_matmul_flops(*m, a.batch).train}};
  };
  const std::string clip = tc.grad_clip_norm ? std::to_string(*tc.grad_clip_norm) : std::string("off");
  k.lines = {"timed: one optimisation step as `eqr train` runs it (supervision step with resets, halting, " +
             tc.loss_type + ", backward, clip " + clip + ", AdamATan2, EMA " + (tc.ema ? "on" : "off") + "; lr " +
             std::to_string(lr) + ", one random batch, no data loading)"};
  k.json = Json{{"timed", "optimisation step (train::TrainStep)"},
                {"loss_type", tc.loss_type},
                {"grad_clip_norm", tc.grad_clip_norm ? Json(*tc.grad_clip_norm) : Json()},
                {"ema", tc.ema},
                {"gradient_checkpoint", tc.gradient_checkpoint},
                {"lr", lr}};
  return k;
}

// ---- case eval: one step of the evaluation runner (infer::run) at breadth R --------------------------

/// B puzzles for the runner: random tokens (labels in the digit range), or puzzles of the config's task
/// generator (data.task; its board must match arch.seq_len).
infer::PuzzleSet bench_puzzles(const config::RunConfig& run, int64_t b, uint64_t seed, bool generated) {
  const auto& arch = run.arch;
  if (generated) return task::make_task(run)->generate(b, derive_seed(seed, stream_id("bench-puzzles")));
  const dynamics::Batch batch = random_batch(arch, b, seed, c10::Device(c10::kCPU));
  infer::PuzzleSet set;
  set.inputs = batch.inputs;
  set.labels = batch.labels;
  set.origin = "random tokens";
  return set;
}

/// The runner's results are what a run of `depth` steps at breadth `breadth` must give: R trajectories per
/// puzzle, each `depth` steps, finite residual, q_halt and (from step 2) convergence score.
void check_runner_results(const std::vector<infer::PuzzleResult>& results, int64_t puzzles, int64_t breadth,
                          int64_t depth) {
  EQR_CHECK(static_cast<int64_t>(results.size()) == puzzles, RuntimeError, "bench eval: ", results.size(),
            " puzzle results, expected ", puzzles);
  for (const auto& p : results) {
    EQR_CHECK(static_cast<int64_t>(p.trajectories.size()) == breadth, RuntimeError, "bench eval: puzzle ", p.puzzle,
              " has ", p.trajectories.size(), " trajectories, expected ", breadth);
    for (const auto& t : p.trajectories) {
      EQR_CHECK(t.steps == depth && t.at_depth.size() == 1, RuntimeError, "bench eval: trajectory ", p.puzzle, "/",
                t.init, " took ", t.steps, " steps, expected ", depth);
      const auto& s = t.at_depth[0];
      EQR_CHECK(std::isfinite(s.residual) && std::isfinite(s.q_halt) && (depth < 2 || std::isfinite(s.convergence_score)),
                RuntimeError, "bench eval: trajectory ", p.puzzle, "/", t.init, " has non-finite residual ", s.residual,
                ", q_halt ", s.q_halt, " or convergence score ", s.convergence_score);
    }
  }
}

BenchCase eval_case(const BenchArgs& a, BenchContext& c, int64_t breadth, bool generated) {
  auto puzzles = std::make_shared<const infer::PuzzleSet>(bench_puzzles(c.run, a.batch, a.seed, generated));
  // One batch of B puzzles x R trajectories, fixed depth (the reference's evaluation), read at the last step.
  auto ro = std::make_shared<infer::RunnerOptions>();
  ro->breadth = breadth;
  ro->batch_puzzles = a.batch;
  ro->seed = a.seed;
  ro->convergence_window = c.run.eval.convergence_window;
  auto& m = c.model;
  const int64_t depth = 2 + a.warmup + a.iters;
  BenchCase k;
  k.name = "eval";
  k.test = [puzzles, ro, &m, &a, breadth] {  // a 2-step run gives finite, complete results
    ro->depths = {2};
    ro->normalise();
    check_runner_results(infer::run_all(m, *puzzles, *ro), a.batch, breadth, 2);
  };
  k.perf = [puzzles, ro, &m, &a, &c, breadth, depth] {
    // Steps 2+warmup .. 1+warmup+iters, each from the end of the step before (after its host reads) to its own
    // end. Step 1 (no start mark) and the last step (the results' read-out) are not timed.
    std::vector<double> mark(static_cast<size_t>(depth + 1), 0.0);
    std::vector<std::clock_t> cpu(static_cast<size_t>(depth + 1), 0);
    ro->depths = {depth};
    ro->normalise();
    ro->on_step = [&](int64_t t) {
      synchronize(c.device);
      mark[static_cast<size_t>(t)] = now_ms();
      cpu[static_cast<size_t>(t)] = std::clock();
    };
    infer::RunSummary summary;
    check_runner_results(infer::run_all(m, *puzzles, *ro, &summary), a.batch, breadth, depth);
    ro->on_step = nullptr;
    EQR_CHECK(summary.batch_steps == depth, RuntimeError, "bench eval: the runner took ", summary.batch_steps,
              " batch steps, expected ", depth);
    std::vector<double> ms;
    const size_t first = static_cast<size_t>(2 + a.warmup), last = static_cast<size_t>(1 + a.warmup + a.iters);
    for (size_t i = first; i <= last; ++i) ms.push_back(mark[i] - mark[i - 1]);
    const int64_t rows = a.batch * breadth;
    return std::vector<TimedMode>{
        {"eval", "eval step", summarize(ms, cpu[last] - cpu[first - 1]), rows, model::step_matmul_flops(*m, rows).eval}};
  };
  const int64_t rows = a.batch * breadth;
  k.lines = {"timed: one step of the evaluation runner (fixed depth " + std::to_string(depth) + ", breadth " +
             std::to_string(breadth) + ", " + std::to_string(rows) + " rows, " + puzzles->origin +
             "): dynamics step + per-row reads (argmax, exact, cells, convergence)"};
  k.json = Json{{"timed", "evaluation runner step (infer::run)"},
                {"breadth", breadth},
                {"puzzles", puzzles->origin},
                {"runner_depth", depth}};
  return k;
}

/// `eqr bench <case>`: the context (config, device, model), the case, and its mode.
void run_bench(const BenchArgs& a, const std::string& mode,
               const std::function<BenchCase(const BenchArgs&, BenchContext&)>& make) {
  const BenchMode m = parse_bench_mode(mode);
  BenchContext c = make_context(a);
  run_case(make(a, c), m, a, c);
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks: print measured figures (a table, or JSON with --json)");
  bench->require_subcommand(1);
  const auto add_mode = [](CLI::App* cmd, std::string& mode) {
    cmd->add_option("--mode", mode, "test (validate one step), grad (and its gradients or update), perf (both, then time)")
        ->check(CLI::IsMember({"test", "grad", "perf"}))
        ->capture_default_str();
  };
  {
    auto a = std::make_shared<BenchArgs>();
    auto mode = std::make_shared<std::string>("perf");
    auto* cmd = bench->add_subcommand(
        "model", "Time one supervision step (forward+backward, and no-grad) of a config after validating it");
    add_bench_options(cmd, *a, "Rows B");
    add_mode(cmd, *mode);
    cmd->callback([a, mode] { run_bench(*a, *mode, model_case); });
  }
  {
    auto a = std::make_shared<BenchArgs>();
    auto mode = std::make_shared<std::string>("perf");
    auto* cmd = bench->add_subcommand(
        "train", "Time one training step as `eqr train` runs it (step, halting, loss, backward, clip, AdamATan2, EMA)");
    add_bench_options(cmd, *a, "Rows B (the global batch of one process)");
    add_mode(cmd, *mode);
    cmd->callback([a, mode] { run_bench(*a, *mode, train_case); });
  }
  {
    auto a = std::make_shared<BenchArgs>();
    auto mode = std::make_shared<std::string>("perf");
    auto breadth = std::make_shared<int64_t>(1);
    auto generated = std::make_shared<bool>(false);
    auto* cmd = bench->add_subcommand("eval", "Time one step of the evaluation runner at breadth R");
    add_bench_options(cmd, *a, "Puzzles B (rows = B x breadth)");
    add_mode(cmd, *mode);
    cmd->add_option("--breadth", *breadth, "Trajectories per puzzle R")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_flag("--generated", *generated, "Puzzles from eqr's generator on the config's board (default: random tokens)");
    cmd->callback([a, mode, breadth, generated] {
      run_bench(*a, *mode, [&](const BenchArgs& args, BenchContext& c) { return eval_case(args, c, *breadth, *generated); });
    });
  }
}

}  // namespace eqr::app
