// LR schedule of the reference (reference/eqr_spec.md §3): warm-up, constant (r = 1), cosine end value,
// total == warmup.

#include <gtest/gtest.h>

#include <cmath>

#include "eqr/config/config.h"
#include "eqr/core/error.h"
#include "eqr/train/lr_schedule.h"

namespace eqr::train {
namespace {

TEST(TrainLrSchedule, LinearWarmupFromStepOne) {
  LrSchedule s(1e-4, 2000, 50000, 1.0);
  EXPECT_DOUBLE_EQ(s(1), 1e-4 * 1 / 2000.0);  // first optimisation step
  EXPECT_DOUBLE_EQ(s(1000), 1e-4 * 0.5);
  EXPECT_DOUBLE_EQ(s(1999), 1e-4 * 1999 / 2000.0);
  EXPECT_DOUBLE_EQ(s(2000), 1e-4);            // warm-up ends at s == warmup
}

TEST(TrainLrSchedule, ConstantAfterWarmupWhenMinRatioIsOne) {
  config::TrainConfig cfg;  // reference defaults: lr 1e-4, warmup 2000, lr_min_ratio 1.0
  LrSchedule s(cfg, 50000);
  for (int64_t step : {2000, 2001, 25000, 49999, 50000, 60000}) EXPECT_DOUBLE_EQ(s(step), 1e-4) << step;
}

TEST(TrainLrSchedule, CosineDecayValues) {
  const double base = 1.0, r = 0.1;
  LrSchedule s(base, 10, 110, r);
  EXPECT_DOUBLE_EQ(s(10), 1.0);                                  // progress 0
  EXPECT_NEAR(s(60), r + (1 - r) * 0.5, 1e-15);                  // progress 1/2
  EXPECT_NEAR(s(35), r + (1 - r) * 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);
  EXPECT_NEAR(s(110), r, 1e-15);                                 // end value = min ratio
  EXPECT_NEAR(lr_at(110, 2.0, 10, 110, 0.0), 0.0, 1e-15);        // r = 0 decays to 0
}

TEST(TrainLrSchedule, TotalEqualsWarmupEdgeCase) {
  // progress divides by max(1, total - warmup): no division by zero.
  LrSchedule s(1.0, 5, 5, 0.5);
  EXPECT_DOUBLE_EQ(s(4), 0.8);
  EXPECT_DOUBLE_EQ(s(5), 1.0);  // progress 0
  EXPECT_TRUE(std::isfinite(s(6)));
  // No warm-up at all: full LR from step 1 (warmup 0 -> never s < 0).
  EXPECT_DOUBLE_EQ(lr_at(1, 3.0, 0, 100, 1.0), 3.0);
}

TEST(TrainLrSchedule, RejectsBadKnobs) {
  EXPECT_THROW(LrSchedule(-1.0, 10, 100, 1.0), ConfigError);
  EXPECT_THROW(LrSchedule(1.0, -1, 100, 1.0), ConfigError);
  EXPECT_THROW(LrSchedule(1.0, 10, 0, 1.0), ConfigError);
  EXPECT_THROW(LrSchedule(1.0, 10, 100, 1.5), ConfigError);
}

}  // namespace
}  // namespace eqr::train
