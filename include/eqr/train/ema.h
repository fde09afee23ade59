#pragma once
// Exponential moving average of the weights (reference models/ema.py; reference/eqr_spec.md §3).
// The shadow starts as a copy of the trainable parameters (requires_grad) at construction, and after
// every optimisation step:  shadow = (1 - mu_t) * param + mu_t * shadow   (in the parameters' dtype,
// float32), with mu_t = mu (reference), or with warm-up (TrainConfig::ema_warmup)
// mu_t = min(mu, (1 + t) / (10 + t)), t = number of updates including this one (1 for the first).
// Shadow tensors are keyed by the parameter names of Module::named_parameters() and have their shapes.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

namespace torch::nn {
class Module;
}

namespace eqr::train {

class Ema {
 public:
  /// Registers every trainable parameter of `model` (copied, detached). mu in [0, 1].
  Ema(const torch::nn::Module& model, double mu, bool warmup = false);

  /// One EMA update from the current parameters of `model` (same names as at registration;
  /// RuntimeError naming the parameter otherwise).
  void update(const torch::nn::Module& model);

  /// Decay used by update number t (1-based).
  double decay_at(int64_t t) const;
  /// Updates done so far.
  int64_t num_updates() const { return num_updates_; }
  double mu() const { return mu_; }
  bool warmup() const { return warmup_; }

  /// Copies the shadow into the matching parameters of `model` (the EMA model; for eval and export).
  void apply_to(torch::nn::Module& model) const;
  /// Exchanges parameters and shadow in place: call once to evaluate with EMA weights, again to
  /// restore the training weights (the shadow then holds the EMA again).
  void swap(torch::nn::Module& model);
  /// A deep copy of `model` (Module::clone; the model must be Cloneable) with the EMA weights.
  std::shared_ptr<torch::nn::Module> copy_with_ema(const torch::nn::Module& model) const;

  /// The shadow by parameter name.
  const std::map<std::string, at::Tensor>& shadow() const { return shadow_; }
  /// Replaces the shadow from named tensors (a checkpoint); copied into the registered tensors' device
  /// and dtype. strict: every registered name must be present. Unknown names and shape mismatches
  /// always throw CheckpointError.
  void load_shadow(const std::map<std::string, at::Tensor>& tensors, bool strict = true);
  /// Sets the update counter (restore from a checkpoint; only matters with warm-up).
  void set_num_updates(int64_t n) { num_updates_ = n; }

 private:
  double mu_;
  bool warmup_;
  int64_t num_updates_ = 0;
  std::map<std::string, at::Tensor> shadow_;
};

}  // namespace eqr::train
