#pragma once
// The reference halting rule (reference/eqr_spec.md §1.8 step 3), separate from step() so that trainers
// and inference runners (fixed or adaptive depth schedulers) choose their own rule.
//
// Shape legend: B batch.
//   halted = steps >= halt_max_steps;
//   training and halt_max_steps > 1:
//     min_steps = (rand < halt_exploration_prob) ? randint in [2, halt_max_steps] : 0   (fresh every step)
//     halted = (halted | q_halt > 0) & steps >= min_steps
//   eval: halted = steps >= halt_max_steps only.
// `steps` is the counter AFTER the step (step() already added 1).

#include <cstdint>
#include <optional>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include "eqr/config/config.h"
#include "eqr/dynamics/carry.h"

namespace eqr::dynamics {

struct HaltingOptions {
  /// Maximum supervision steps of a trajectory.
  int64_t halt_max_steps = 16;
  /// Probability that a row's minimum halting step is drawn from [2, halt_max_steps] (training only).
  double exploration_prob = 0.1;
  /// Training rule (q_halt > 0 may stop a row early, with exploration) or eval rule (steps only).
  bool training = true;
  /// The arch's halt_max_steps and halt_exploration_prob; `training` usually model->is_training().
  static HaltingOptions from(const config::ArchConfig& arch, bool training);
};

/// steps: (B) int32 (after the step), q_halt_logits: (B) float32 -> halted (B) bool. The exploration draws
/// (rand for every row, then randint for every row) come from `gen`. No grad.
at::Tensor reference_halting(const at::Tensor& steps, const at::Tensor& q_halt_logits, const HaltingOptions& options,
                             std::optional<at::Generator> gen = std::nullopt);

/// carry.halted = reference_halting(carry.steps, q_halt_logits, options, gen).
void apply_reference_halting(Carry& carry, const at::Tensor& q_halt_logits, const HaltingOptions& options,
                             std::optional<at::Generator> gen = std::nullopt);

}  // namespace eqr::dynamics
