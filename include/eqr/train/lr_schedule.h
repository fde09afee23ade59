#pragma once
// Learning-rate schedule of the reference (utils/optimizer.py; reference/eqr_spec.md §3): linear warm-up,
// then cosine decay to lr_min_ratio * base (constant when lr_min_ratio = 1, the paper's setting).
// Queried with the already-incremented step s (the first optimisation step is s = 1):
//   s < warmup:  lr = base * s / max(1, warmup)
//   otherwise:   progress = (s - warmup) / max(1, total - warmup)
//                lr = base * (r + max(0, (1 - r) * 0.5 * (1 + cos(pi * progress))))

#include <cstdint>

namespace eqr::config {
struct TrainConfig;
}

namespace eqr::train {

/// The reference formula as a plain function (see the file comment). Arguments are not validated.
double lr_at(int64_t step, double base_lr, int64_t warmup_steps, int64_t total_steps, double min_ratio);

/// The schedule of one run; validated on construction (ConfigError naming the train.* key).
class LrSchedule {
 public:
  LrSchedule(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_ratio);
  /// From TrainConfig (lr, lr_warmup_steps, lr_min_ratio) and the run's total optimisation steps.
  LrSchedule(const config::TrainConfig& cfg, int64_t total_steps);

  /// LR for optimisation step `step` (1-based, incremented before the update).
  double operator()(int64_t step) const;

  double base_lr() const { return base_lr_; }
  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t total_steps() const { return total_steps_; }
  double min_ratio() const { return min_ratio_; }

 private:
  double base_lr_;
  int64_t warmup_steps_;
  int64_t total_steps_;
  double min_ratio_;
};

}  // namespace eqr::train
