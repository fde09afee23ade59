// The `eqr` command end to end: help, version, config show/validate, exit codes and one-line errors.

#include <gtest/gtest.h>

#include <filesystem>

#include <torch/version.h>

#include "test_support.h"

namespace eqr::test {
namespace {

namespace fs = std::filesystem;

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (c == '\n');
  return n;
}

TEST(Cli, HelpListsCommandsAndExitsZero) {
  const auto r = run_eqr("--help");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* cmd : {"version", "config", "bench"}) EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
}

TEST(Cli, NoSubcommandOrUnknownOneIsUsageError) {
  auto r = run_eqr("");
  EXPECT_EQ(r.exit_code, 2);
  r = run_eqr("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r.err;
}

TEST(Cli, VersionReportsTorchBlasAndThreads) {
  const auto r = run_eqr("version");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("libtorch"), std::string::npos);
  EXPECT_NE(r.out.find("cuda"), std::string::npos);
  EXPECT_NE(r.out.find("threads"), std::string::npos);
  EXPECT_NE(r.out.find("blas"), std::string::npos);
  EXPECT_EQ(r.out.find("none-found"), std::string::npos) << "no BLAS library mapped: " << r.out;
  // scripts/setup.sh makes OpenBLAS the active libblas.so.3 on Debian; check it took effect for Debian's
  // LibTorch 1.13. The PyPI wheels (2.x) carry MKL inside libtorch_cpu instead.
#if TORCH_VERSION_MAJOR < 2
  if (fs::exists("/usr/lib/x86_64-linux-gnu/openblas-pthread")) {
    EXPECT_NE(r.out.find("openblas"), std::string::npos) << r.out;
  }
#else
  EXPECT_TRUE(r.out.find("mkl") != std::string::npos || r.out.find("openblas") != std::string::npos) << r.out;
#endif
  const auto j = run_eqr("version --json");
  ASSERT_EQ(j.exit_code, 0);
  EXPECT_NE(j.out.find("\"torch_version\""), std::string::npos);
}

TEST(Cli, EveryShippedConfigValidates) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(source_dir() / "configs")) {
    const auto ext = entry.path().extension();
    if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
    const auto r = run_eqr("config validate '" + entry.path().string() + "'");
    EXPECT_EQ(r.exit_code, 0) << entry.path() << ": " << r.err;
    ++n;
  }
  EXPECT_GE(n, 4);
}

TEST(Cli, MisspeltKeyExitsTwoNamingTheKey) {
  const auto dir = temp_dir("cli");
  write_file(dir / "typo.yaml", "include: '" + (source_dir() / "configs/ci_tiny.yaml").string() +
                                    "'\ntrain:\n  learning_rate: 0.1\n");
  const auto r = run_eqr("config validate '" + (dir / "typo.yaml").string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("train.learning_rate"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

TEST(Cli, ShowAppliesSetAndRejectsBadValues) {
  const std::string cfg = "'" + (source_dir() / "configs/ci_tiny.yaml").string() + "'";
  auto r = run_eqr("config show --config " + cfg + " --set arch.h_cycles=5 --set eval.depth=[2,8]");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("h_cycles: 5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("depth: [2, 8]"), std::string::npos) << r.out;
  r = run_eqr("config show --config " + cfg + " --format json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"hidden_size\": 16"), std::string::npos) << r.out;
  r = run_eqr("config show --config " + cfg + " --set arch.lambda=2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("arch.lambda"), std::string::npos) << r.err;
  r = run_eqr("config show --config /nonexistent/file.yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/nonexistent/file.yaml"), std::string::npos) << r.err;
}

TEST(Cli, BadLogLevelIsUsageError) {
  const auto r = run_eqr("--log-level loud version");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("loud"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace eqr::test
