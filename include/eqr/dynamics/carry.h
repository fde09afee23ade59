#pragma once
// The carry of a batch of trajectories across supervision steps (reference/eqr_spec.md §1.7-1.8):
// latent states, step counters, halted flags and the puzzle each row is working on.
//
// Shape legend: B batch (rows = trajectories), S cells, D hidden.

#include <cstdint>
#include <optional>
#include <utility>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>
#include <c10/core/Device.h>

#include "eqr/model/eqr_model.h"

namespace eqr::dynamics {

/// Puzzle rows as fed to a supervision step (the loader's batch maps onto this).
struct Batch {
  at::Tensor inputs;              ///< (B, S) integer token ids; required
  at::Tensor labels;              ///< (B, S) integer ids (data::kIgnoreLabelId = ignore); undefined when there are none
  at::Tensor puzzle_identifiers;  ///< (B) integer; undefined allowed; the model does not read it
  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  /// The same rows on `device` (undefined fields stay undefined).
  Batch to(const c10::Device& device) const;
};

/// State of B trajectories between supervision steps.
struct Carry {
  at::Tensor z_h;     ///< (B, S, D) forward dtype, no grad
  at::Tensor z_l;     ///< (B, S, D) forward dtype, no grad
  at::Tensor steps;   ///< (B) int32: supervision steps done on the current data
  at::Tensor halted;  ///< (B) bool: finished; the next step() restarts the row with new data
  Batch data;         ///< the puzzle each row is working on (inputs (B, S), labels (B, S), ids (B))
  int64_t size() const { return steps.defined() ? steps.size(0) : 0; }
};

/// Initial carry shaped like `batch` (B rows) on the model's device: z_h = z_l = 0 in the forward dtype,
/// steps 0, halted all true (so the first step() loads every row), data zeros shaped like `batch`.
/// (The reference leaves states and data uninitialised; zeros make step 1's residual finite.)
Carry initial_carry(model::EqrModel& model, const Batch& batch);

/// Fresh initial states for `n` rows, (n, S, D) each in the forward dtype on the model's device (§1.7).
/// arch.init "random": i.i.d. compensated truncated normal per element, std h_init_std (z_h, drawn first)
/// and l_init_std (z_l), truncated at ±2*comp_std, drawn from `gen`. "fixed" (TRM): the H_init / L_init
/// buffers broadcast to every row and token (no random draw).
std::pair<at::Tensor, at::Tensor> initial_states(model::EqrModel& model, int64_t n,
                                                 std::optional<at::Generator> gen = std::nullopt);

/// Which rows the reset at the start of a step restarts, and who knows it.
enum class Resets {
  /// carry.halted decides (the reference's reset_carry). Fresh states are drawn for the n halted rows
  /// only, so finding them costs halted.nonzero(): one device->host sync per step. The training loop.
  kFromCarry,
  /// The caller knows on the host that no row is halted: carry.halted is not read (treated as all
  /// false), no sync. E.g. the eval runner, which loads rows itself; any step after the first of a
  /// fixed-depth batch.
  kNone,
  /// The caller knows that every row is halted: carry.halted is not read (treated as all true), no
  /// sync; the same random draws as kFromCarry with all rows halted. E.g. the first step on a new batch.
  kAll,
};

/// The reset at the start of a supervision step (§1.8 step 1). Rows with carry.halted: states <- fresh
/// (initial_states), data <- the batch's row, steps <- 0, halted <- false. Other rows keep their states,
/// data and steps; the batch's rows for them are DISCARDED. A field undefined in `batch` (labels,
/// puzzle_identifiers) is undefined in the result. Variant "feedforward": the states of EVERY row are
/// redrawn (no recurrence across supervision steps); data and steps still follow `halted`.
/// `resets` says where "halted" comes from (kNone / kAll: from the caller, carry.halted unread; the
/// result is what kFromCarry gives when carry.halted is all false / all true).
/// batch.inputs: (B, S) with B = carry.size(). Returns a new carry; `carry` is not modified.
Carry reset_halted(model::EqrModel& model, const Carry& carry, const Batch& batch,
                   std::optional<at::Generator> gen = std::nullopt, Resets resets = Resets::kFromCarry);

}  // namespace eqr::dynamics
