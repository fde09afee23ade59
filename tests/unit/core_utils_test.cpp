// Core utilities: error macro, device/dtype parsing, seeded RNG streams, progress formatting, BLAS probe.

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include <torch/torch.h>

#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/core/gemm_peak.h"
#include "eqr/core/logging.h"
#include "eqr/core/progress.h"
#include "eqr/core/rng.h"
#include "eqr/core/sha256.h"
#include "eqr/core/version.h"
#include "test_support.h"

namespace eqr {
namespace {

TEST(CoreError, CheckThrowsTypedErrorWithConcatenatedMessage) {
  try {
    const int line = 7;
    EQR_CHECK(1 + 1 == 3, DataError, "file.csv:", line, ": bad row");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "file.csv:7: bad row");
  }
  EXPECT_NO_THROW(EQR_CHECK(true, DataError, "never"));
  // The family shares one base, so main() can catch eqr::Error for exit code 1.
  EXPECT_THROW(EQR_FAIL(CheckpointError, "x"), Error);
}

TEST(CoreGemmPeak, ValidatesThenTimesBothDtypesAndRejectsBadShapes) {
  // Throughput is not asserted (no timing in tests): the figures exist, are positive and belong to the shape.
  // The validation must pass on every CPU: native bfloat16 (AVX512-BF16, AMX) or emulated (AVX2 only), each
  // against its own rounding bound (gemm_peak.h); k = 300 also covers the exact check's zeroed columns.
  for (const int64_t k : {int64_t{32}, int64_t{300}}) {
    const GemmPeak p = measure_gemm_peak(c10::Device(c10::kCPU), 48, k, 40, 0.01);
    EXPECT_EQ(p.m, 48);
    EXPECT_EQ(p.k, k);
    EXPECT_EQ(p.n, 40);
    EXPECT_GT(p.fp32_gflops, 0.0);
    EXPECT_GT(p.bf16_gflops, 0.0);
    EXPECT_TRUE(std::isfinite(p.fp32_gflops) && std::isfinite(p.bf16_gflops));
    EXPECT_EQ(p.bf16_native, cpu_has_native_bf16());
    for (const double use : {p.fp32_bound_use, p.bf16_bound_use}) {
      EXPECT_GE(use, 0.0);
      EXPECT_LE(use, 1.0);
    }
    // Gaussian inputs do round: float32 well under 1e-5 of the largest entry, bfloat16 above float32's.
    EXPECT_LT(p.fp32_rel_error, 1e-5);
    EXPECT_GT(p.bf16_rel_error, p.fp32_rel_error);
  }
  EXPECT_STREQ(bf16_path_name(true), "native");
  EXPECT_STREQ(bf16_path_name(false), "emulated");
  EXPECT_THROW(measure_gemm_peak(c10::Device(c10::kCPU), 0, 32, 40, 0.01), UsageError);
  EXPECT_THROW(measure_gemm_peak(c10::Device(c10::kCPU), 8, 8, 8, 0.0), UsageError);
}

TEST(CoreDevice, ParsesNamesAndRejectsUnknown) {
  EXPECT_TRUE(resolve_device("cpu").is_cpu());
  const auto autod = resolve_device("auto");
  EXPECT_EQ(autod.is_cuda(), torch::cuda::is_available());
  EXPECT_THROW(resolve_device("tpu"), UsageError);
  EXPECT_THROW(resolve_device("cuda:x"), UsageError);
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(resolve_device("cuda:0"), UsageError);
  }
  EXPECT_EQ(parse_dtype("bf16"), c10::kBFloat16);
  EXPECT_EQ(parse_dtype("float32"), c10::kFloat);
  EXPECT_THROW(parse_dtype("int8"), ConfigError);
  EXPECT_EQ(forward_dtype_for("bfloat16", c10::Device(c10::kCPU), false), c10::kFloat);
  EXPECT_EQ(forward_dtype_for("bfloat16", c10::Device(c10::kCPU), true), c10::kBFloat16);
  EXPECT_EQ(forward_dtype_for("float16", c10::Device(c10::kCPU), true), c10::kHalf);
  // Unset = auto: bfloat16 only where the CPU does it natively; float16 and float32 never change.
  EXPECT_EQ(forward_dtype_for("bfloat16", c10::Device(c10::kCPU), std::nullopt),
            cpu_has_native_bf16() ? c10::kBFloat16 : c10::kFloat);
  EXPECT_EQ(forward_dtype_for("float16", c10::Device(c10::kCPU), std::nullopt), c10::kFloat);
  EXPECT_EQ(forward_dtype_for("float32", c10::Device(c10::kCPU), std::nullopt), c10::kFloat);
  EXPECT_EQ(forward_dtype_for("bfloat16", c10::Device(c10::kCUDA, 0), false), c10::kBFloat16);
  EXPECT_THROW(set_num_threads(-1), UsageError);
}

TEST(CoreDevice, AutoThreadsShareTheCoresAmongLocalRanks) {
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  ::unsetenv("LOCAL_WORLD_SIZE");
  EXPECT_EQ(auto_num_threads(), cores);
  ::setenv("LOCAL_WORLD_SIZE", "1000000", 1);
  EXPECT_EQ(auto_num_threads(), 1);  // never 0
  ::setenv("LOCAL_WORLD_SIZE", "junk", 1);
  EXPECT_EQ(auto_num_threads(), cores);  // ignored
  ::unsetenv("LOCAL_WORLD_SIZE");
  EXPECT_EQ(set_num_threads(0), cores);
  EXPECT_EQ(at::get_num_threads(), cores);
  EXPECT_EQ(set_num_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  // OpenBLAS (when it is the BLAS in use) gets LibTorch's thread count; an explicit OPENBLAS_NUM_THREADS wins.
  if (blas_kind().rfind("openblas", 0) == 0) {
    using GetThreads = int (*)();
    auto* get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    ASSERT_NE(get, nullptr);
    EXPECT_EQ(get(), 1);  // set_num_threads(1) above
    EXPECT_TRUE(set_blas_threads(2));
    EXPECT_EQ(get(), 2);
    EXPECT_TRUE(set_blas_threads(1));
    EXPECT_EQ(get(), 1);
  }
  ::setenv("OPENBLAS_NUM_THREADS", "2", 1);
  EXPECT_FALSE(set_blas_threads(2));
  ::unsetenv("OPENBLAS_NUM_THREADS");
}

TEST(CoreRng, StreamsAreDeterministicAndDistinct) {
  // Expected values computed outside eqr (a Python port of SplitMix64, FNV-1a 64 and mt19937_64, the
  // last checked against libstdc++'s std::mt19937_64): derive_seed(s, k) = splitmix64(splitmix64(s) ^ k).
  EXPECT_EQ(derive_seed(0, 0), 0xA706DD2F4D197E6FULL);
  EXPECT_EQ(derive_seed(1, 2), 0xBCD9DBB49673066BULL);
  EXPECT_EQ(derive_seed(3, 1), 0xEC4C5BEE627011B3ULL);
  std::set<uint64_t> seen;
  for (uint64_t s = 0; s < 4; ++s)
    for (uint64_t k = 0; k < 64; ++k) seen.insert(derive_seed(s, k));
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_NE(stream_id("init"), stream_id("noise"));
  // FNV-1a 64: the empty string is the offset basis; "a" is the published test vector.
  EXPECT_EQ(stream_id(""), 0xCBF29CE484222325ULL);
  EXPECT_EQ(stream_id("a"), 0xAF63DC4C8601EC8CULL);
  EXPECT_EQ(stream_id("init"), 0xF5D2AFC57AB57213ULL);
  // splitmix64 reference value (Vigna's splitmix64 with state 0 -> first output).
  EXPECT_EQ(splitmix64(0), 0xE220A8397B1DCDAFULL);
  auto g1 = make_cpu_generator(5), g2 = make_cpu_generator(5), g3 = make_cpu_generator(6);
  const auto a = torch::randn({16}, g1), b = torch::randn({16}, g2), c = torch::randn({16}, g3);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  // make_std_rng(3, 1) is std::mt19937_64 seeded with derive_seed(3, 1) = 0xEC4C5BEE627011B3.
  auto r1 = make_std_rng(3, 1);
  EXPECT_EQ(r1(), 4995992819084899657ULL);
  EXPECT_NE(make_std_rng(3, 2)(), 4995992819084899657ULL);
}

TEST(CoreSha256, KnownVectorsAndFiles) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const std::filesystem::path dir = test::temp_dir("sha");
  test::write_file(dir / "x.txt", std::string(100003, 'q'));
  EXPECT_EQ(sha256_file((dir / "x.txt").string()), sha256_hex(std::string(100003, 'q')));
  EXPECT_THROW(sha256_file((dir / "missing").string()), DataError);
}

TEST(CoreProgress, FormatsDurationsAndLines) {
  EXPECT_EQ(Progress::format_duration(12), "12s");
  EXPECT_EQ(Progress::format_duration(245), "4m05s");
  EXPECT_EQ(Progress::format_duration(3723), "1h02m03s");
  EXPECT_EQ(Progress::format_duration(-1), "?");
  Progress p("train", 100, "steps", nullptr);
  p.set(25);
  const std::string line = p.line("loss 0.5");
  EXPECT_NE(line.find("train: 25/100 steps (25%)"), std::string::npos) << line;
  EXPECT_NE(line.find("| loss 0.5"), std::string::npos) << line;
  Progress unknown("gen", 0, "puzzles", nullptr);
  unknown.advance(3);
  EXPECT_EQ(unknown.line("").find("ETA"), std::string::npos);
}

TEST(CoreProgress, PipeModePrintsPlainPeriodicLines) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("work", 10, "it", f);
    p.set_interactive(false);
    p.set_pipe_interval(3600);  // nothing until finish
    for (int i = 0; i < 10; ++i) p.advance();
    p.finish("done");
  }
  std::rewind(f);
  char buf[512] = {0};
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  const std::string out(buf, n);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("work: 10/10 it (100%)"), std::string::npos) << out;
}

TEST(CoreLogging, LevelsByName) {
  EXPECT_NO_THROW(set_log_level("debug"));
  EXPECT_EQ(logger()->level(), spdlog::level::debug);
  EXPECT_NO_THROW(set_log_level("off"));
  EXPECT_THROW(set_log_level("loud"), UsageError);
  set_log_level("warn");
}

TEST(CoreVersion, EnvironmentInfoHasEveryField) {
  const auto info = environment_info();
  for (const char* k : {"eqr_version", "git_sha", "torch_version", "cuda_available", "cuda_device_count", "blas",
                        "blas_library", "torch_threads"}) {
    EXPECT_TRUE(info.contains(k)) << k;
  }
  EXPECT_FALSE(version().empty());
  EXPECT_EQ(torch_version().substr(0, 1), std::string(TORCH_VERSION).substr(0, 1));
}

}  // namespace
}  // namespace eqr
