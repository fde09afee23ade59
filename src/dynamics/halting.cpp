// Reference halting rule (reference/eqr_spec.md §1.8 step 3). Shape legend: B batch.

#include "eqr/dynamics/halting.h"

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::dynamics {

HaltingOptions HaltingOptions::from(const config::ArchConfig& arch, bool training) {
  HaltingOptions o;
  o.halt_max_steps = arch.halt_max_steps;
  o.exploration_prob = arch.halt_exploration_prob;
  o.training = training;
  return o;
}

at::Tensor reference_halting(const at::Tensor& steps, const at::Tensor& q_halt_logits, const HaltingOptions& options,
                             std::optional<at::Generator> gen) {
  torch::NoGradGuard no_grad;
  EQR_CHECK(steps.dim() == 1 && q_halt_logits.dim() == 1 && steps.size(0) == q_halt_logits.size(0), RuntimeError,
            "halting: steps ", steps.sizes(), " and q_halt_logits ", q_halt_logits.sizes(), " must both be (B)");
  at::Tensor halted = steps >= options.halt_max_steps;
  if (options.training && options.halt_max_steps > 1) {
    const c10::optional<at::Generator> g =
        (gen.has_value() && gen->defined()) ? c10::optional<at::Generator>(*gen) : c10::nullopt;
    // Draw where the generator lives (it may sit on another device than the tensors), then move.
    const auto where = (g.has_value() ? g->device() : steps.device());
    const int64_t b = steps.size(0);
    const at::Tensor explore = at::rand({b}, g, torch::TensorOptions().dtype(torch::kFloat).device(where)) <
                               options.exploration_prob;
    const at::Tensor draw =
        at::randint(2, options.halt_max_steps + 1, {b}, g, torch::TensorOptions().dtype(torch::kInt).device(where));
    const at::Tensor min_steps = (explore.to(torch::kInt) * draw).to(steps.device());
    halted = (halted | (q_halt_logits.detach() > 0).to(steps.device())) & (steps >= min_steps);
  }
  return halted;
}

void apply_reference_halting(Carry& carry, const at::Tensor& q_halt_logits, const HaltingOptions& options,
                             std::optional<at::Generator> gen) {
  carry.halted = reference_halting(carry.steps, q_halt_logits, options, std::move(gen));
}

}  // namespace eqr::dynamics
