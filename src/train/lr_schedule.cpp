// Learning-rate schedule (reference/eqr_spec.md §3).

#include "eqr/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "eqr/config/config.h"
#include "eqr/core/error.h"

namespace eqr::train {

double lr_at(int64_t step, double base_lr, int64_t warmup_steps, int64_t total_steps, double min_ratio) {
  if (step < warmup_steps) {
    return base_lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  }
  const double progress = static_cast<double>(step - warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double pi = 3.14159265358979323846;
  return base_lr * (min_ratio + std::max(0.0, (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(pi * progress))));
}

LrSchedule::LrSchedule(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_ratio)
    : base_lr_(base_lr), warmup_steps_(warmup_steps), total_steps_(total_steps), min_ratio_(min_ratio) {
  EQR_CHECK(std::isfinite(base_lr) && base_lr >= 0, ConfigError, "train.lr: got ", base_lr,
            ", expected a finite value >= 0");
  EQR_CHECK(warmup_steps >= 0, ConfigError, "train.lr_warmup_steps: got ", warmup_steps, ", expected >= 0");
  EQR_CHECK(total_steps >= 1, ConfigError, "total optimisation steps: got ", total_steps,
            ", expected >= 1 (check train.epochs, train.max_steps and the dataset size)");
  EQR_CHECK(std::isfinite(min_ratio) && min_ratio >= 0 && min_ratio <= 1, ConfigError,
            "train.lr_min_ratio: got ", min_ratio, ", expected in [0, 1]");
}

LrSchedule::LrSchedule(const config::TrainConfig& cfg, int64_t total_steps)
    : LrSchedule(cfg.lr, cfg.lr_warmup_steps, total_steps, cfg.lr_min_ratio) {}

double LrSchedule::operator()(int64_t step) const {
  return lr_at(step, base_lr_, warmup_steps_, total_steps_, min_ratio_);
}

}  // namespace eqr::train
