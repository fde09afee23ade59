// Shared main of every eqr test binary: quiet logs, fixed thread count for reproducible timings.
//
// Exit status 77 when tests ran but every one of them skipped (e.g. the cuda suite without a GPU): CTest maps
// it to "Skipped" through the SKIP_RETURN_CODE property (tests/CMakeLists.txt), so a suite that checked nothing
// is not counted as passed. A suite with some passed and some skipped tests exits as GoogleTest says (0 or 1).
#include <gtest/gtest.h>

#include "eqr/core/logging.h"

namespace {
constexpr int kAllSkippedExitCode = 77;  // keep in step with SKIP_RETURN_CODE in tests/CMakeLists.txt
}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  eqr::logger()->set_level(spdlog::level::warn);
  const int rc = RUN_ALL_TESTS();
  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  if (rc == 0 && unit.skipped_test_count() > 0 && unit.successful_test_count() == 0 && unit.failed_test_count() == 0) {
    return kAllSkippedExitCode;
  }
  return rc;
}
