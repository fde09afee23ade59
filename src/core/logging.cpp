#include "eqr/core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "eqr/core/error.h"

namespace eqr {

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto existing = spdlog::get("eqr");
    if (existing) return existing;
    auto log = spdlog::stderr_color_mt("eqr");
    log->set_pattern("[%H:%M:%S] [%^%l%$] %v");
    log->set_level(spdlog::level::info);
    return log;
  }();
  return instance;
}

const char* log_level_names() { return "trace, debug, info, warn, error, critical, off"; }

void set_log_level(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; accept "off" only when asked for literally.
  EQR_CHECK(parsed != spdlog::level::off || level == "off", UsageError, "--log-level '", level,
            "' is not a level; expected one of: ", log_level_names());
  logger()->set_level(parsed);
}

}  // namespace eqr
