#pragma once
// Helpers shared by eqr tests: paths to the source tree, the built `eqr`, ../shared, temp dirs, and
// running the CLI to capture its exit code and output.

#include <cstdlib>
#include <filesystem>
#include <string>

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

/// Writes `text` to `path` (creating directories).
void write_file(const std::filesystem::path& path, const std::string& text);
/// Reads a whole file.
std::string read_file(const std::filesystem::path& path);

}  // namespace eqr::test
