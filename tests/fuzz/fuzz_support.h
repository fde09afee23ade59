#pragma once
// Shared by eqr's libFuzzer targets (tests/fuzz/fuzz_*.cpp, built with EQR_BUILD_FUZZERS by scripts/fuzz.sh).
// The readers under test take file paths, so each input is written to a file of this process first.
// A target passes an input when the reader returns or throws an eqr::Error (the refusal users see, with
// exit code 1 or 2); any other exception, a crash, a sanitizer report, a leak, or an allocation beyond
// libFuzzer's -malloc_limit_mb is a finding.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "eqr/core/error.h"
#include "eqr/core/logging.h"

namespace eqr::fuzz {

/// A directory of this process (under $TMPDIR or /tmp), created once.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* t = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(t && *t ? t : "/tmp") /
                              ("eqr-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    logger()->set_level(spdlog::level::off);  // readers may warn; thousands of lines per second help nobody
    return d;
  }();
  return dir;
}

/// Writes `size` bytes to scratch_dir()/name and returns the path.
inline std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path p = scratch_dir() / name;
  std::FILE* f = std::fopen(p.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return p.string();
}

/// Runs `fn`; an eqr::Error is the expected refusal of a bad input, anything else propagates (a finding).
template <typename Fn>
void expect_ok_or_refused(Fn&& fn) {
  try {
    fn();
  } catch (const eqr::Error&) {
  }
}

}  // namespace eqr::fuzz
