// One optimisation step (see train_step.h). Shape legend: B local batch rows, S cells, V vocab.

#include "eqr/train/train_step.h"

#include <limits>
#include <tuple>
#include <utility>

#include <torch/torch.h>

namespace eqr::train {

TrainStepOptions TrainStepOptions::from(const config::RunConfig& cfg) {
  const auto& tc = cfg.train;
  TrainStepOptions o;
  o.loss_type = parse_loss_type(tc.loss_type);
  o.q_halt_loss_weight = tc.q_halt_loss_weight;
  o.global_batch_size = tc.global_batch_size;
  o.grad_clip_norm = tc.grad_clip_norm;
  o.halting = dynamics::HaltingOptions::from(cfg.arch, /*training=*/true);
  o.step.gradient_checkpoint = tc.gradient_checkpoint;
  o.step.float32_grad_cycle_on_cpu = tc.float32_grad_cycle_on_cpu;
  return o;
}

TrainStep::TrainStep(model::EqrModel model, AdamATan2& optimizer, Ema* ema, TrainStepOptions options,
                     Distributed* dist)
    : model_(std::move(model)),
      optimizer_(optimizer),
      ema_(ema),
      options_(std::move(options)),
      dist_(dist),
      params_(model_->parameters()) {}

TrainStepResult TrainStep::run(dynamics::Carry& carry, const dynamics::Batch& batch, at::Generator& gen, double lr,
                               const TrainStepFlags& flags) {
  TrainStepResult r;
  r.out = dynamics::step(model_, carry, batch, gen, options_.step);
  dynamics::apply_reference_halting(r.out.carry, r.out.q_halt_logits.detach(), options_.halting, gen);
  r.loss = compute_step_loss(r.out.logits, r.out.carry.data.labels.to(torch::kLong), r.out.q_halt_logits,
                             options_.loss_type, options_.q_halt_loss_weight);
  r.total = r.loss.total;
  if (flags.poison_loss) r.total = r.total * std::numeric_limits<double>::quiet_NaN();
  (r.total / static_cast<double>(options_.global_batch_size)).backward();
  if (dist_ != nullptr) dist_->all_reduce_gradients(params_);
  // Norms (tensors on the device) only when clipping needs them or the caller logs them.
  if (options_.grad_clip_norm || flags.grad_norms) r.norms = grad_norms(params_);
  if (options_.grad_clip_norm) clip_grads_(params_, r.norms, *options_.grad_clip_norm);
  optimizer_.set_lr(lr);
  optimizer_.step();
  optimizer_.zero_grad();
  if (ema_ != nullptr) ema_->update(*model_);
  carry = r.out.carry;
  return r;
}

std::unique_ptr<AdamATan2> make_optimizer(model::EqrModel& model, const config::TrainConfig& tc) {
  AdamATan2Options oo(tc.lr);
  oo.betas(std::make_tuple(tc.beta1, tc.beta2)).weight_decay(tc.weight_decay);
  return std::make_unique<AdamATan2>(model->parameters(), oo);
}

std::unique_ptr<Ema> make_ema(model::EqrModel& model, const config::TrainConfig& tc) {
  if (!tc.ema) return nullptr;
  return std::make_unique<Ema>(*model, tc.ema_rate, tc.ema_warmup);
}

}  // namespace eqr::train
