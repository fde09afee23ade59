#pragma once
// The training loop of the reference (reference/eqr_spec.md §2-3): deep supervision on a persistent
// carry, ACT halting with exploration, one optimiser step per supervision step, stablemax loss,
// AdamATan2 with the warm-up schedule, EMA, periodic evaluation, resumable atomic checkpoints and
// data parallel over c10d. Everything a run writes goes to its run directory:
//   <run>/config.yaml      resolved config (every knob)
//   <run>/env.json         eqr SHA, LibTorch/CUDA versions, device, world size, seed
//   <run>/metrics.jsonl    one JSON object per logged step (train/*) and per evaluation (eval/*)
//   <run>/eval/step_N.json evaluation reports (EMA and raw weights side by side)
//   <run>/checkpoints/     step_N.eqrckpt + `latest` (io/checkpoint.h)
// Only rank 0 writes.
//
// Shape legend: B local batch rows, S cells, V vocab.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <ATen/core/Generator.h>
#include <c10/core/Device.h>

#include "eqr/config/config.h"
#include "eqr/data/dataset.h"
#include "eqr/model/eqr_model.h"
#include "eqr/train/distributed.h"

namespace eqr::train {

/// How to start a run.
struct TrainerOptions {
  /// Run directory; empty = <output_root>/<name> from the config.
  std::string run_dir;
  /// Continue from the run directory's latest checkpoint (config taken from the checkpoint).
  bool resume = false;
  /// Stop after this many optimisation steps in this invocation (for tests of resume); 0 = no limit.
  int64_t stop_after_steps = 0;
  /// Show a live progress line (rank 0).
  bool progress = true;
  /// Tests only: multiply the loss of this optimisation step by NaN before backward (0 = never), to
  /// exercise the non-finite stop.
  int64_t inject_nan_loss_at_step = 0;
  /// Tests only: write a NaN into the carry's z_H after this optimisation step (0 = never), to exercise the
  /// non-finite latent-state stop.
  int64_t inject_nan_carry_at_step = 0;
  /// Autograd anomaly detection (`eqr train --detect-anomaly`): every backward op checks its outputs for
  /// NaN and keeps the forward trace of the op that made them; the first one stops the run with that trace
  /// and the step. Slow: for debugging.
  bool detect_anomaly = false;
};

/// What a finished (or interrupted) run reports.
struct TrainResult {
  int64_t steps_done = 0;            ///< optimisation step reached (total across resumes)
  int64_t total_steps = 0;           ///< steps the run is scheduled for
  bool interrupted = false;          ///< stopped by SIGINT/SIGTERM (a checkpoint was written)
  bool time_limited = false;         ///< stopped by train.time_limit_minutes (checkpointed and evaluated)
  std::string run_dir;
  std::string last_checkpoint;       ///< path of the newest checkpoint ("" if none)
  std::map<std::string, double> last_train_metrics;  ///< train/* of the last step
  std::map<std::string, double> last_eval_metrics;   ///< eval/* of the last evaluation
};

/// Evaluation at training depth (the reference's eval during training): every test row runs exactly
/// `depth` supervision steps from a fresh random state (breadth 1); metrics of the last step.
struct TrainEvalResult {
  int64_t n_puzzles = 0;
  double exact_accuracy = 0;  ///< whole grid right
  double cell_accuracy = 0;   ///< mean over puzzles of the fraction of right cells
  double mean_final_residual = 0;
  /// A stop request arrived during the evaluation (on any rank): the metrics cover only part of the split.
  bool interrupted = false;
};

/// What SIGINT/SIGTERM do during run_training: the loop checkpoints and stops after the current step, and an
/// evaluation in progress stops at its next batch (TrainEvalResult::interrupted). run_training clears the
/// request when it starts; tests use these to stop without a signal.
void request_stop();
bool stop_requested();
void clear_stop_request();

/// Fixed-depth evaluation at breadth 1 on `split` through the inference runner (infer::run, the loop `eqr eval`
/// runs; `batch_size` puzzles per step across ranks, this rank running a contiguous slice): every puzzle runs
/// exactly `depth` supervision steps from a fresh random state, metrics of the last step summed over ranks (a
/// collective when `dist` is active). Its randomness (initial states per puzzle, path noise) comes from the
/// runner's streams keyed by `seed`: the same seed gives the same result, and the training generator and
/// torch's global generators are left untouched. Runs without grad in eval mode and restores the model's mode.
TrainEvalResult evaluate_split(model::EqrModel& model, const std::shared_ptr<const data::SplitData>& split,
                               int64_t depth, int64_t batch_size, uint64_t seed, Distributed& dist);

/// The generator of a training run's randomness on `device` (fresh states, path noise, halting
/// exploration): model::make_generator(device, derive_seed(seed, stream_id("train") + rank)). A generator of
/// its own on CPU and CUDA alike, never torch's global one, so nothing else (evaluation) moves it.
at::Generator training_generator(const c10::Device& device, uint64_t seed, int rank);

/// Runs (or resumes) training as configured. Throws ConfigError / DataError / RuntimeError. The loss and the
/// carry's latent states are checked for non-finite values on the device every step and read at log steps,
/// before every evaluation and checkpoint, and at the end: a non-finite loss or state throws RuntimeError
/// naming the first bad step, and no checkpoint is ever written from a non-finite state, so the last
/// checkpoint on disk is intact. Before the first step the run directory must be writable (RuntimeError
/// otherwise) and its filesystem must have room for two checkpoints.
///
/// Checkpoints hold every rank's carry (rows in rank order) and training generator, so a run of N processes
/// resumes (with N processes) exactly where it stopped: on CPU the resumed run is bit-identical to an
/// uninterrupted one.
TrainResult run_training(const config::RunConfig& config, const TrainerOptions& options);

}  // namespace eqr::train
