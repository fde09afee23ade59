// One supervision step (reference/eqr_spec.md §1.6, §1.8, §5). Shape legend: B batch, S cells, D hidden, V vocab.

#include "eqr/dynamics/step.h"

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::dynamics {

std::pair<at::Tensor, at::Tensor> latent_recursion(model::EqrModel& model, at::Tensor z_h, at::Tensor z_l,
                                                   const at::Tensor& x, const model::CosSin& cs,
                                                   std::optional<at::Generator> gen) {
  const int64_t l_cycles = model->arch().l_cycles;
  for (int64_t i = 0; i < l_cycles; ++i) z_l = model->l_level(z_l, z_h + x, cs, gen);
  z_h = model->l_level(z_h, z_l, cs, gen);
  return {z_h, z_l};
}

std::pair<at::Tensor, at::Tensor> deep_recursion(model::EqrModel& model, at::Tensor z_h, at::Tensor z_l,
                                                 const at::Tensor& x, std::optional<at::Generator> gen) {
  const model::CosSin cs = model->cos_sin();
  {
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i + 1 < model->arch().h_cycles; ++i) {
      std::tie(z_h, z_l) = latent_recursion(model, z_h, z_l, x, cs, gen);
    }
  }
  return latent_recursion(model, z_h, z_l, x, cs, gen);
}

at::Tensor state_residual(const at::Tensor& z_h, const at::Tensor& z_l, const at::Tensor& prev_h,
                          const at::Tensor& prev_l) {
  torch::NoGradGuard no_grad;
  EQR_CHECK(z_h.dim() == 3 && z_h.sizes() == prev_h.sizes() && z_l.sizes() == prev_l.sizes() &&
                z_l.size(0) == z_h.size(0),
            RuntimeError, "state_residual: states ", z_h.sizes(), ", ", z_l.sizes(), " vs previous ", prev_h.sizes(),
            ", ", prev_l.sizes(), "; expected equal (B, S, D) shapes");
  const auto sq = [](const at::Tensor& a, const at::Tensor& b) {
    const at::Tensor d = (a.detach() - b.detach().to(a.options())).to(torch::kFloat);
    return d.square().sum({1, 2});
  };
  return (sq(z_h, prev_h) + sq(z_l, prev_l)).sqrt();
}

StepOutput step(model::EqrModel& model, const Carry& carry, const Batch& batch, std::optional<at::Generator> gen) {
  // 1. Reset halted rows (fresh states, new data, steps 0); the old states are kept for the residual.
  Carry current = reset_halted(model, carry, batch, gen);
  const at::Tensor prev_h = carry.z_h.to(current.z_h.options());
  const at::Tensor prev_l = carry.z_l.to(current.z_l.options());

  // 2. Deep recursion on the current data; the embedding is computed once, with grad.
  const at::Tensor x = model->embed(current.data.inputs);
  auto [z_h, z_l] = deep_recursion(model, current.z_h, current.z_l, x, gen);

  StepOutput out;
  out.logits = model->lm_logits(z_h);
  const at::Tensor q = model->q_logits(z_h);
  out.q_halt_logits = q.select(1, 0);
  out.q_continue_logits = q.select(1, 1);

  // 3. New carry (detached: nothing flows across steps), step counters, residual.
  out.carry = std::move(current);
  out.carry.z_h = z_h.detach();
  out.carry.z_l = z_l.detach();
  {
    torch::NoGradGuard no_grad;
    out.carry.steps = out.carry.steps + 1;
  }
  out.residual = state_residual(out.carry.z_h, out.carry.z_l, prev_h, prev_l);
  return out;
}

}  // namespace eqr::dynamics
