#pragma once
// Helpers shared by eqr tests: paths to the source tree, the built `eqr`, ../shared, temp dirs, and
// running the CLI to capture its exit code and output.

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace eqr::test {

inline std::filesystem::path source_dir() { return EQR_SOURCE_DIR; }
inline std::filesystem::path eqr_exe() { return EQR_EXE; }

/// ../shared beside the checkout (EQR_SHARED_DIR overrides); empty if absent.
std::filesystem::path shared_dir();

/// A fresh, empty directory under the system temp dir, removed at process exit.
std::filesystem::path temp_dir(const std::string& tag);

/// Result of running a command.
struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

/// Runs `eqr <args>` (args are passed to /bin/sh; quote as needed) and captures both streams.
CommandResult run_eqr(const std::string& args);

/// The message of the exception of type E that `fn()` throws; a test failure (and "") when it throws nothing.
/// Exceptions of other types propagate (and fail the test as errors).
template <class E, class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: no exception was thrown";
  return "";
}

/// Writes `text` to `path` (creating directories).
void write_file(const std::filesystem::path& path, const std::string& text);
/// Reads a whole file.
std::string read_file(const std::filesystem::path& path);

}  // namespace eqr::test
