// Depth schedulers (fixed, adaptive). Shape legend: B rows.

#include "eqr/infer/depth.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::infer {

SchedulerKind parse_scheduler(const std::string& name) {
  if (name == "fixed") return SchedulerKind::kFixed;
  if (name == "adaptive") return SchedulerKind::kAdaptive;
  EQR_FAIL(UsageError, "scheduler: got '", name, "', expected 'fixed' or 'adaptive'");
}

const char* scheduler_name(SchedulerKind kind) { return kind == SchedulerKind::kFixed ? "fixed" : "adaptive"; }

void DepthOptions::validate() const {
  EQR_CHECK(max_depth >= 1, ConfigError, "eval.depth: largest depth ", max_depth, ", expected >= 1");
  EQR_CHECK(patience >= 1, ConfigError, "eval.patience: got ", patience, ", expected >= 1");
  EQR_CHECK(tol >= 0.0 && std::isfinite(tol), ConfigError, "eval.tol: got ", tol, ", expected a finite value >= 0");
  EQR_CHECK(answer_patience >= 0, ConfigError, "eval.answer_patience: got ", answer_patience,
            ", expected >= 0 (0 = off)");
}

DepthOptions depth_options(const config::EvalConfig& eval) {
  DepthOptions o;
  o.kind = parse_scheduler(eval.scheduler);
  EQR_CHECK(!eval.depth.empty(), ConfigError, "eval.depth: empty list; expected at least one depth, e.g. [16]");
  o.max_depth = *std::max_element(eval.depth.begin(), eval.depth.end());
  o.tol = eval.tol;
  o.patience = eval.patience;
  o.halt_on_q = eval.halt_on_q;
  o.answer_patience = eval.answer_patience;
  o.validate();
  return o;
}

at::Tensor should_stop(const DepthOptions& options, const at::Tensor& steps, const at::Tensor& residual,
                       const at::Tensor& q_halt, const at::Tensor& unchanged, StopCounters& counters) {
  torch::NoGradGuard no_grad;
  at::Tensor stop = steps >= options.max_depth;
  if (options.kind == SchedulerKind::kFixed) return stop;
  at::Tensor& below = counters.below;
  const at::Tensor under = residual.to(torch::kDouble) < options.tol;
  below = torch::where(under, below + 1, torch::zeros_like(below));
  stop = stop | (below >= options.patience);
  if (options.answer_patience > 0) {
    at::Tensor& stable = counters.stable;
    stable = torch::where(unchanged, stable + 1, torch::zeros_like(stable));
    stop = stop | (stable >= options.answer_patience);
  }
  if (options.halt_on_q) stop = stop | (q_halt > 0);
  return stop;
}

double noise_floor(const config::ArchConfig& arch) {
  return arch.noise_scale * std::sqrt(2.0 * static_cast<double>(arch.seq_len) * static_cast<double>(arch.hidden_size));
}

}  // namespace eqr::infer
