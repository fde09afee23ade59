#pragma once
// Error family of eqr. Every user-reachable failure throws one of these with a message that says
// what went wrong, where (file:line or config key), the value seen, what was expected, and a hint.
// Only main() catches: ConfigError / UsageError -> exit 2, everything else -> exit 1.

#include <sstream>
#include <stdexcept>
#include <string>

namespace eqr {

/// Base of every eqr error; `what()` is one readable line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// Bad command-line usage (unknown flag value, missing argument). Exit code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

/// Bad configuration: unknown key, wrong type, out-of-range value, unreadable config file. Exit code 2.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Bad input data: a malformed CSV row, an unreadable dataset file. Exit code 1.
class DataError : public Error {
 public:
  using Error::Error;
};

/// Unreadable, incompatible or corrupt checkpoint. Exit code 1.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

/// Internal invariant broken or runtime failure (non-finite loss, shape mismatch). Exit code 1.
class RuntimeError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace eqr

/// EQR_CHECK(cond, ErrorType, message parts...): throws ErrorType(message) when cond is false.
/// Example: EQR_CHECK(n > 0, eqr::DataError, path, ":", line, ": expected at least one row");
#define EQR_CHECK(cond, ErrorType, ...)                       \
  do {                                                        \
    if (!(cond)) {                                            \
      throw ErrorType(::eqr::detail::concat(__VA_ARGS__));    \
    }                                                         \
  } while (false)

/// EQR_FAIL(ErrorType, message parts...): always throws.
#define EQR_FAIL(ErrorType, ...) throw ErrorType(::eqr::detail::concat(__VA_ARGS__))
