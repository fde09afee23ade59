#pragma once
// One supervision step (reference/eqr_spec.md §1.6, §1.8, §5): reset halted rows, run the deep recursion
// with truncated backprop, read the heads, and measure the residual. ONE function advances a batch of
// trajectories by one step; training and inference both call it, each with its own halting rule
// (dynamics/halting.h for the reference rule).
//
// Shape legend: B batch, S cells, D hidden, V vocab.
//
// Schedule (x = embedding, computed once per step, with grad when grad mode is on):
//   latent_recursion: repeat l_cycles: z_l = L_level(z_l, z_h + x);  then z_h = L_level(z_h, z_l)
//   deep_recursion:   h_cycles-1 latent_recursions under NoGradGuard, then 1 latent_recursion with grad
// So gradients reach the parameters through the last l_cycles+1 L_level calls, x (embedding), lm_head and
// q_head only; nothing flows across steps (returned states are detached).

#include <optional>
#include <utility>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include "eqr/dynamics/carry.h"
#include "eqr/model/eqr_model.h"

namespace eqr::dynamics {

/// What one supervision step produced.
struct StepOutput {
  at::Tensor logits;             ///< (B, S, V) forward dtype; carries grad (grad mode on)
  at::Tensor q_halt_logits;      ///< (B) float32 = q_head(z_h[:, 0])[:, 0]; carries grad
  at::Tensor q_continue_logits;  ///< (B) float32 = column 1 (unused by EqR; TRM-style experiments)
  at::Tensor residual;           ///< (B) float32, no grad: ||concat(z_h, z_l) after - before||_2 per row
  Carry carry;                   ///< new carry: states detached, steps = steps after reset + 1,
                                 ///< halted all false (apply a halting rule before the next step)
};

/// How step() runs; the defaults are the reference's behaviour.
struct StepOptions {
  /// Where the reset learns which rows are halted (carry.h). kFromCarry costs one device->host sync per
  /// step; callers that know the answer on the host pass kNone / kAll instead. Results are identical.
  Resets resets = Resets::kFromCarry;
  /// Gradient checkpointing of the one latent recursion that carries grad (train.gradient_checkpoint):
  /// each of its l_cycles+1 L_level calls runs without grad in forward, keeping only its inputs (state
  /// and injection), and is recomputed with grad in backward, one call at a time, with the same path
  /// noise (a clone of the generator taken before the call) and the same autocast state. Same values
  /// and gradients; peak activation memory of the step about 1/(l_cycles+1) of the recursion's, for one
  /// more forward of the recursion (docs/model.md). Ignored when grad mode is off or nothing requires grad.
  bool gradient_checkpoint = false;
  /// On the CPU with a reduced forward dtype and grad mode on: run the gradient-carrying latent recursion
  /// (the last of h_cycles) and the heads in float32; the no-grad recursions stay in the forward dtype and
  /// the carry is stored in it (train.float32_grad_cycle_on_cpu; docs/performance.md).
  bool float32_grad_cycle_on_cpu = false;
};

/// Advances every row by one supervision step:
///   1. reset_halted(model, carry, batch, gen, options.resets) (halted rows take fresh states and the
///      batch's data);
///   2. deep recursion on the current data; logits = lm_head(z_h), q = q_head(z_h[:, 0]) in float32;
///   3. steps += 1; residual (§5) = per-row L2 norm over the flattened 2*S*D of the state change from the
///      states IN `carry` (before the reset, as the reference measures it: meaningless on a row's first
///      step) to the new states; difference in the forward dtype, norm in float32.
/// All randomness (fresh states, path noise) comes from `gen` (the device's global generator when
/// absent). Respects the caller's grad mode (run under NoGradGuard for inference). batch.inputs (B, S)
/// with B = carry.size(); batch and carry are moved to the model's device if needed.
StepOutput step(model::EqrModel& model, const Carry& carry, const Batch& batch,
                std::optional<at::Generator> gen = std::nullopt, const StepOptions& options = {});

/// One latent recursion. z_h, z_l, x: (B, S, D) -> new (z_h, z_l).
std::pair<at::Tensor, at::Tensor> latent_recursion(model::EqrModel& model, at::Tensor z_h, at::Tensor z_l,
                                                   const at::Tensor& x, const model::CosSin& cs,
                                                   std::optional<at::Generator> gen = std::nullopt);

/// latent_recursion with gradient checkpointing per L_level call (StepOptions::gradient_checkpoint): the
/// same values and random draws, and in backward the same gradients for z_h, z_l, x and the L_level
/// parameters, but each call keeps only its inputs (state, injection) and is rerun with grad in backward.
/// With grad mode off or nothing requiring grad it is latent_recursion. z_h, z_l, x: (B, S, D) -> new (z_h, z_l).
std::pair<at::Tensor, at::Tensor> checkpointed_latent_recursion(model::EqrModel& model, at::Tensor z_h, at::Tensor z_l,
                                                                const at::Tensor& x, const model::CosSin& cs,
                                                                std::optional<at::Generator> gen = std::nullopt);

/// h_cycles latent recursions, the first h_cycles-1 under NoGradGuard (the last one checkpointed when
/// `gradient_checkpoint`). z_h, z_l, x: (B, S, D).
/// `grad_dtype` (if set) is the dtype the last recursion runs in (states and injection are cast to it).
std::pair<at::Tensor, at::Tensor> deep_recursion(model::EqrModel& model, at::Tensor z_h, at::Tensor z_l,
                                                 const at::Tensor& x, std::optional<at::Generator> gen = std::nullopt,
                                                 bool gradient_checkpoint = false,
                                                 std::optional<c10::ScalarType> grad_dtype = std::nullopt);

/// Per-row L2 norm of concat(z_h, z_l) - concat(prev_h, prev_l) over S and D (§5): difference in the
/// states' dtype, norm in float32. All (B, S, D) -> (B) float32, no grad.
at::Tensor state_residual(const at::Tensor& z_h, const at::Tensor& z_l, const at::Tensor& prev_h,
                          const at::Tensor& prev_l);

}  // namespace eqr::dynamics
