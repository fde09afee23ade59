#pragma once
// AdamATan2 (package adam-atan2 0.0.3; reference/eqr_spec.md §3) as a torch::optim::Optimizer.
// Per element, at step t (t starts at 1, incremented before the update), math in float32 for
// float32/bf16/fp16 parameters (float64 parameters compute in float64):
//   p <- p * (1 - lr * wd)                                   decoupled decay, first
//   m <- m + (1 - b1) * (g - m)                              lerp
//   v <- v + (1 - b2) * (g*g - v)
//   p <- p - (lr / (1 - b1^t)) * atan2(m, sqrt(v) / sqrt(1 - b2^t))
// No epsilon. Parameters whose grad is undefined are skipped (no decay, no state), as the reference.
// Shapes: every state tensor has its parameter's shape; `step` is a 0-dim float32 tensor on the CPU.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

namespace eqr::train {

/// Hyperparameters of AdamATan2 (one param group).
struct AdamATan2Options : public torch::optim::OptimizerCloneableOptions<AdamATan2Options> {
  AdamATan2Options(double lr = 1e-4) : lr_(lr) {}  // NOLINT(google-explicit-constructor): as torch's options
  /// Learning rate (set per step from the schedule with set_lr).
  TORCH_ARG(double, lr) = 1e-4;
  /// (beta1, beta2) of the first and second moment averages.
  typedef std::tuple<double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.95);
  /// Decoupled weight decay (p *= 1 - lr * wd before the update).
  TORCH_ARG(double, weight_decay) = 1.0;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

/// Per-parameter state: step (0-dim float32, on the CPU), exp_avg and exp_avg_sq (the parameter's
/// shape, dtype and device).
struct AdamATan2ParamState : public torch::optim::OptimizerCloneableParamState<AdamATan2ParamState> {
  TORCH_ARG(torch::Tensor, step);
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

/// The AdamATan2 optimizer. All parameters in one group (as the reference); a second group is an error.
class AdamATan2 : public torch::optim::Optimizer {
 public:
  explicit AdamATan2(std::vector<torch::Tensor> params, AdamATan2Options options = {});

  /// One update of every parameter with a defined grad. `closure` (optional) is called first under
  /// grad mode and its loss returned, as torch's optimizers do.
  torch::Tensor step(LossClosure closure = nullptr) override;

  /// Current learning rate (of the one group).
  double lr() const;
  /// Sets the learning rate used by the next step (call before every step with the schedule's value).
  void set_lr(double lr);

  /// Writes options and state by parameter index into a torch archive (keys "lr", "beta1", "beta2",
  /// "weight_decay", "<i>/step", "<i>/exp_avg", "<i>/exp_avg_sq"); torch::save(optimizer, path) uses it.
  void save(torch::serialize::OutputArchive& archive) const override;
  /// Reads what save wrote (parameters matched by index; shapes checked). Throws CheckpointError.
  void load(torch::serialize::InputArchive& archive) override;

  /// State tensors of one parameter.
  struct StateTensors {
    torch::Tensor step;        ///< 0-dim float32 (CPU)
    torch::Tensor exp_avg;     ///< parameter's shape
    torch::Tensor exp_avg_sq;  ///< parameter's shape
  };
  /// State of parameter `index` (position in the group), or nullopt before its first update.
  std::optional<StateTensors> state_at(size_t index) const;
  /// Replaces the state of parameter `index` (tensors are copied to the parameter's device and dtype;
  /// shapes checked, CheckpointError on mismatch).
  void set_state_at(size_t index, const StateTensors& state);
  /// Every existing state as named tensors "<i>.step", "<i>.exp_avg", "<i>.exp_avg_sq" (i = parameter
  /// index, as the reference's optimizer state_dict), for checkpoint code that stores named tensors.
  std::map<std::string, torch::Tensor> state_tensors() const;
  /// Restores from `state_tensors()` output; parameters absent from the map get no state.
  /// Throws CheckpointError for an unknown key, an out-of-range index or a shape mismatch.
  void load_state_tensors(const std::map<std::string, torch::Tensor>& tensors);

  /// Number of parameters in the group.
  size_t num_params() const;

 private:
  AdamATan2ParamState* find_state(const torch::Tensor& p) const;
  AdamATan2ParamState& make_state(const torch::Tensor& p);
};

}  // namespace eqr::train
