// Shared main of every eqr test binary: quiet logs, fixed thread count for reproducible timings.
#include <gtest/gtest.h>

#include "eqr/core/logging.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  eqr::logger()->set_level(spdlog::level::warn);
  return RUN_ALL_TESTS();
}
