#pragma once
// Depth schedulers: when does a trajectory stop taking supervision steps?
//
// Shape legend: B rows (trajectories).
//
//   fixed     every row runs exactly max_depth steps (reference/eqr_spec.md §5: eval halt_max_steps; no
//             q-halt early stop). The default, for numbers comparable with the reference.
//   adaptive  a row stops at the first step where one of these holds:
//               - its residual (dynamics::StepOutput::residual, absolute L2 norm over 2*S*D) has been
//                 < tol for `patience` consecutive steps (counting this one);
//               - its decoded answer (argmax grid) has been unchanged for `answer_patience` consecutive
//                 steps (answer_patience > 0; the earliest stop is then step answer_patience + 1);
//               - halt_on_q and its q_halt logit is > 0;
//               - it has taken max_depth steps.
//             The runner then frees its row for the next puzzle (compaction), so the work spent on a
//             puzzle follows its difficulty. tol = 0 never triggers the residual rule (residual >= 0),
//             so adaptive with tol 0 and halt_on_q off is the fixed scheduler.
// Note on tol: with path noise (arch.noise_scale > 0) the residual never falls below the noise floor,
// about noise_scale * sqrt(2*S*D); noise_floor() estimates it so callers can warn about a tol below it.

#include <cstdint>
#include <string>

#include <ATen/Tensor.h>

#include "eqr/config/config.h"

namespace eqr::infer {

enum class SchedulerKind { kFixed, kAdaptive };

/// "fixed" | "adaptive" (UsageError naming the valid names otherwise).
SchedulerKind parse_scheduler(const std::string& name);
const char* scheduler_name(SchedulerKind kind);

struct DepthOptions {
  SchedulerKind kind = SchedulerKind::kFixed;
  /// Most steps a row may take (the largest depth of a sweep).
  int64_t max_depth = 16;
  /// Adaptive: residual threshold (absolute, the units of StepOutput::residual).
  double tol = 1e-3;
  /// Adaptive: consecutive steps with residual < tol before the row stops (>= 1).
  int64_t patience = 2;
  /// Adaptive: also stop a row when its q_halt logit is > 0.
  bool halt_on_q = false;
  /// Adaptive: consecutive steps with an unchanged decoded answer before the row stops (0 = off).
  int64_t answer_patience = 0;

  /// ConfigError for max_depth < 1, patience < 1, tol < 0 or answer_patience < 0.
  void validate() const;
};

/// Scheduler options from the eval config (max_depth = the largest eval.depth).
DepthOptions depth_options(const config::EvalConfig& eval);

/// Per-row state of the adaptive rules: (B) int64 counters of consecutive steps under tol (below) and of
/// consecutive steps with an unchanged answer (stable). Zero a row's counters when it restarts.
struct StopCounters {
  at::Tensor below;
  at::Tensor stable;
};

/// One scheduler decision after a step. steps: (B) int (after the step); residual, q_halt: (B) float32;
/// unchanged: (B) bool, the decoded answer equals the previous step's (false at a row's first step; may be
/// undefined when answer_patience is 0); counters are updated in place. Returns stop: (B) bool.
/// Fixed: steps >= max_depth. Adaptive: as in the header comment.
at::Tensor should_stop(const DepthOptions& options, const at::Tensor& steps, const at::Tensor& residual,
                       const at::Tensor& q_halt, const at::Tensor& unchanged, StopCounters& counters);

/// Residual floor the path noise alone keeps up: noise_scale * sqrt(2 * seq_len * hidden_size).
double noise_floor(const config::ArchConfig& arch);

}  // namespace eqr::infer
