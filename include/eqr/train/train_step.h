#pragma once
// One optimisation step of training (reference/eqr_spec.md §2-3): the body of the trainer's loop
// (trainer.h) as a piece of its own, so that `eqr bench train` times exactly what `eqr train` runs.
//   1. dynamics::step on the persistent carry (halted rows restart on the batch's rows: Resets::kFromCarry,
//      the one device->host sync of a training step),
//   2. the reference halting rule in its training form (q_halt > 0, exploration) on the new carry,
//   3. the step loss (stablemax or softmax cross-entropy + q-halt BCE) and backward of loss / global batch,
//   4. the gradient all-reduce across ranks (when a process group is active),
//   5. gradient norms and clipping by global norm (train.grad_clip_norm; norms also when asked for a log),
//   6. AdamATan2 at the step's learning rate, then zero_grad,
//   7. the EMA update (train.ema),
//   8. the carry becomes the step's new carry.
// Metrics, logging, the non-finite watch and checkpoints stay with the caller (they read the result).
//
// Shape legend: B local batch rows, S cells, V vocab.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include "eqr/config/config.h"
#include "eqr/dynamics/carry.h"
#include "eqr/dynamics/halting.h"
#include "eqr/dynamics/step.h"
#include "eqr/model/eqr_model.h"
#include "eqr/train/adam_atan2.h"
#include "eqr/train/distributed.h"
#include "eqr/train/ema.h"
#include "eqr/train/grad_norm.h"
#include "eqr/train/loss.h"

namespace eqr::train {

/// What stays fixed over a run's optimisation steps.
struct TrainStepOptions {
  /// train.loss_type.
  LossType loss_type = LossType::Stablemax;
  /// train.q_halt_loss_weight.
  double q_halt_loss_weight = 0.5;
  /// train.global_batch_size: backward runs on loss / this (the reference's mean over the global batch).
  int64_t global_batch_size = 1;
  /// train.grad_clip_norm (unset = no clipping).
  std::optional<double> grad_clip_norm;
  /// The training halting rule of the arch (halt_max_steps, exploration).
  dynamics::HaltingOptions halting;
  /// How dynamics::step runs (train.gradient_checkpoint; resets from the carry).
  dynamics::StepOptions step;

  /// The options of `cfg` (ConfigError for an unknown train.loss_type).
  static TrainStepOptions from(const config::RunConfig& cfg);
};

/// Per-step requests of the caller.
struct TrainStepFlags {
  /// Compute the gradient norms even without clipping (a log line reads them).
  bool grad_norms = false;
  /// Tests only: multiply the loss by NaN before backward (exercises the non-finite stop).
  bool poison_loss = false;
};

/// What one optimisation step produced. Tensors stay on the device (nothing is read on the host).
struct TrainStepResult {
  /// The supervision step; out.carry is the new carry (halting applied), which the caller's carry now is.
  dynamics::StepOutput out;
  /// Loss and per-row statistics of the step (StepLoss::total before any poisoning).
  StepLoss loss;
  /// The loss backward ran on, before the division by global_batch_size: loss.total, or NaN when poisoned.
  at::Tensor total;
  /// Gradient norms before clipping (all-reduced gradients); defined when clipping or flags.grad_norms.
  GradNorms norms;
};

/// The optimisation step of one rank: holds the model, the optimiser and the EMA it advances (not owned).
class TrainStep {
 public:
  /// `ema` may be null (train.ema off); `dist` may be null (one process). The optimiser holds exactly
  /// `model`'s parameters, in model->parameters() order (make_optimizer).
  TrainStep(model::EqrModel model, AdamATan2& optimizer, Ema* ema, TrainStepOptions options,
            Distributed* dist = nullptr);

  /// Advances `carry` (B rows) by one optimisation step on `batch` (inputs, labels (B, S), puzzle ids (B),
  /// on the model's device) at learning rate `lr`; all randomness (fresh states, path noise, exploration)
  /// from `gen`. The model must be in training mode with grad enabled.
  TrainStepResult run(dynamics::Carry& carry, const dynamics::Batch& batch, at::Generator& gen, double lr,
                      const TrainStepFlags& flags = {});

  const TrainStepOptions& options() const { return options_; }

 private:
  model::EqrModel model_;
  AdamATan2& optimizer_;
  Ema* ema_;
  TrainStepOptions options_;
  Distributed* dist_;
  std::vector<at::Tensor> params_;
};

/// AdamATan2 over model->parameters() with train.lr, betas (beta1, beta2) and weight_decay.
std::unique_ptr<AdamATan2> make_optimizer(model::EqrModel& model, const config::TrainConfig& tc);

/// The EMA of `model`'s current weights with train.ema_rate and ema_warmup; null when train.ema is off.
std::unique_ptr<Ema> make_ema(model::EqrModel& model, const config::TrainConfig& tc);

}  // namespace eqr::train
