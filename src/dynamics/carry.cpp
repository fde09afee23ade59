// Carry, initial states and the reset of halted rows (reference/eqr_spec.md §1.7-1.8).
// Shape legend: B batch, S cells, D hidden.

#include "eqr/dynamics/carry.h"

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/model/init.h"

namespace eqr::dynamics {

namespace {

at::Tensor to_device(const at::Tensor& t, const c10::Device& device) { return t.defined() ? t.to(device) : t; }

/// Row mask (B) reshaped to broadcast against `like` (B, ...).
at::Tensor row_mask(const at::Tensor& mask, const at::Tensor& like) {
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = mask.size(0);
  return mask.view(shape);
}

/// halted rows from `fresh`, the others from `old` (undefined `old` counts as zeros).
at::Tensor merge_rows(const at::Tensor& halted, const at::Tensor& fresh, const at::Tensor& old) {
  if (!fresh.defined()) return fresh;
  const at::Tensor base = (old.defined() && old.sizes() == fresh.sizes()) ? old.to(fresh.options()) : torch::zeros_like(fresh);
  return torch::where(row_mask(halted, fresh), fresh, base);
}

void check_batch(const Batch& batch, int64_t rows, int64_t seq_len) {
  EQR_CHECK(batch.inputs.defined() && batch.inputs.dim() == 2 && batch.inputs.size(1) == seq_len, RuntimeError,
            "batch.inputs: got ", (batch.inputs.defined() ? batch.inputs.sizes() : at::IntArrayRef{}),
            ", expected (B, ", seq_len, ") token ids");
  EQR_CHECK(rows < 0 || batch.inputs.size(0) == rows, RuntimeError, "batch has ", batch.inputs.size(0),
            " rows, the carry has ", rows, " (the carry keeps its batch size)");
  const int64_t b = batch.inputs.size(0);
  EQR_CHECK(!batch.labels.defined() || batch.labels.sizes() == batch.inputs.sizes(), RuntimeError, "batch.labels: got ",
            batch.labels.sizes(), ", expected ", batch.inputs.sizes());
  EQR_CHECK(!batch.puzzle_identifiers.defined() ||
                (batch.puzzle_identifiers.dim() == 1 && batch.puzzle_identifiers.size(0) == b),
            RuntimeError, "batch.puzzle_identifiers: got ", batch.puzzle_identifiers.sizes(), ", expected (", b, ")");
}

}  // namespace

Batch Batch::to(const c10::Device& device) const {
  return Batch{to_device(inputs, device), to_device(labels, device), to_device(puzzle_identifiers, device)};
}

Carry initial_carry(model::EqrModel& model, const Batch& batch) {
  const auto& a = model->arch();
  check_batch(batch, -1, a.seq_len);
  const auto device = model->device();
  const int64_t b = batch.size();
  const auto states = torch::TensorOptions().dtype(model->forward_dtype()).device(device);
  Carry c;
  c.z_h = torch::zeros({b, a.seq_len, a.hidden_size}, states);
  c.z_l = torch::zeros({b, a.seq_len, a.hidden_size}, states);
  c.steps = torch::zeros({b}, torch::TensorOptions().dtype(torch::kInt).device(device));
  c.halted = torch::ones({b}, torch::TensorOptions().dtype(torch::kBool).device(device));
  const Batch on_device = batch.to(device);
  const auto zeros = [](const at::Tensor& t) { return t.defined() ? torch::zeros_like(t) : t; };
  c.data = Batch{zeros(on_device.inputs), zeros(on_device.labels), zeros(on_device.puzzle_identifiers)};
  return c;
}

std::pair<at::Tensor, at::Tensor> initial_states(model::EqrModel& model, int64_t n, std::optional<at::Generator> gen) {
  torch::NoGradGuard no_grad;
  const auto& a = model->arch();
  const auto options = torch::TensorOptions().dtype(model->forward_dtype()).device(model->device());
  if (a.init == config::StateInit::kFixed) {
    const auto broadcast = [&](const at::Tensor& init) {
      return init.to(options).view({1, 1, a.hidden_size}).expand({n, a.seq_len, a.hidden_size}).contiguous();
    };
    return {broadcast(model->H_init), broadcast(model->L_init)};
  }
  at::Tensor z_h = model::trunc_normal({n, a.seq_len, a.hidden_size}, a.h_init_std, options, gen);
  at::Tensor z_l = model::trunc_normal({n, a.seq_len, a.hidden_size}, a.l_init_std, options, gen);
  return {z_h, z_l};
}

Carry reset_halted(model::EqrModel& model, const Carry& carry, const Batch& batch, std::optional<at::Generator> gen,
                   Resets resets) {
  torch::NoGradGuard no_grad;
  const auto& a = model->arch();
  const auto device = model->device();
  const auto dtype = model->forward_dtype();
  check_batch(batch, carry.size(), a.seq_len);
  const int64_t b = carry.size();
  EQR_CHECK(carry.z_h.defined() && carry.z_h.sizes() == at::IntArrayRef({b, a.seq_len, a.hidden_size}) &&
                carry.z_l.defined() && carry.z_l.sizes() == carry.z_h.sizes(),
            RuntimeError, "carry states: got z_h ", (carry.z_h.defined() ? carry.z_h.sizes() : at::IntArrayRef{}),
            ", expected (", b, ", ", a.seq_len, ", ", a.hidden_size, ")");
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(device);
  const at::Tensor halted = resets == Resets::kNone  ? torch::zeros({b}, bool_opts)
                            : resets == Resets::kAll ? torch::ones({b}, bool_opts)
                                                     : carry.halted.to(device).to(torch::kBool);
  const Batch fresh = batch.to(device);

  Carry out;
  out.z_h = carry.z_h.to(device, dtype);
  out.z_l = carry.z_l.to(device, dtype);
  if (a.variant == config::Variant::kFeedforward) {
    std::tie(out.z_h, out.z_l) = initial_states(model, b, gen);
  } else {
    // Only kFromCarry needs the halted rows on the host (nonzero: a device->host sync).
    const at::Tensor idx = resets == Resets::kFromCarry ? halted.nonzero().flatten() : at::Tensor();
    const int64_t n = resets == Resets::kNone ? 0 : resets == Resets::kAll ? b : idx.numel();
    if (n == b) {
      std::tie(out.z_h, out.z_l) = initial_states(model, b, gen);
    } else if (n > 0) {
      auto [h, l] = initial_states(model, n, gen);
      out.z_h = out.z_h.index_put({idx}, h);
      out.z_l = out.z_l.index_put({idx}, l);
    }
  }
  out.steps = torch::where(halted, torch::zeros_like(carry.steps.to(device)), carry.steps.to(device));
  out.halted = torch::zeros_like(halted);
  out.data = Batch{merge_rows(halted, fresh.inputs, to_device(carry.data.inputs, device)),
                   merge_rows(halted, fresh.labels, to_device(carry.data.labels, device)),
                   merge_rows(halted, fresh.puzzle_identifiers, to_device(carry.data.puzzle_identifiers, device))};
  return out;
}

}  // namespace eqr::dynamics
