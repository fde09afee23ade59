#pragma once
// The one named spdlog logger of eqr ("eqr"). Human-readable logs only; metrics go to metrics.jsonl.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace eqr {

/// The shared logger (created on first use, writes to stderr).
std::shared_ptr<spdlog::logger> logger();

/// Sets the level from a name: trace, debug, info, warn, error, critical, off. Throws UsageError otherwise.
void set_log_level(const std::string& level);

/// The valid level names, for CLI help and validation.
const char* log_level_names();

}  // namespace eqr
