// `eqr bench train|eval|model` end to end on configs/ci_tiny.yaml: with --json each prints exactly one JSON
// line with the keys docs/performance.md and scripts/bench_cpu.sh read, and sane values: positive times, the
// matmul work of model::step_matmul_flops for the rows it advanced, a dtype name, the GEMM peak. Timings are
// never asserted (the machine decides them).

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "eqr/config/load.h"
#include "eqr/model/eqr_model.h"
#include "test_support.h"

namespace eqr::test {
namespace {

using nlohmann::json;

const std::string kTiny = "-c " + (source_dir() / "configs/ci_tiny.yaml").string();

/// Runs `eqr bench <args> --json` and parses its one line.
json bench_json(const std::string& args) {
  const auto r = run_eqr("bench " + args + " " + kTiny + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line expected:\n" << r.out;
  return json::parse(r.out);
}

/// step_matmul_flops of the ci_tiny model for `rows` rows, in GFLOP.
model::StepFlops tiny_flops(int64_t rows) {
  const auto cfg = config::load((source_dir() / "configs/ci_tiny.yaml").string(), {});
  model::EqrModel m(model::EqrModelOptions(cfg.arch, cfg.compute));
  return model::step_matmul_flops(*m, rows);
}

/// The keys every model benchmark reports, and the figures of mode `mode` over `rows` rows.
void expect_mode(const json& j, const std::string& mode, int64_t rows, double gflop) {
  for (const char* key : {"git_sha", "version", "torch_version", "device", "forward_dtype", "blas", "config"}) {
    ASSERT_TRUE(j.contains(key) && j[key].is_string()) << key << " in " << j.dump();
  }
  const std::string dtype = j["forward_dtype"];
  EXPECT_TRUE(dtype == "float32" || dtype == "bfloat16" || dtype == "float16") << dtype;
  EXPECT_GE(j["threads"].get<int>(), 1);
  EXPECT_TRUE(j["blas_threads"].is_number_integer());
  EXPECT_GT(j["parameters"].get<int64_t>(), 0);
  EXPECT_EQ(j["blocks_per_step"].get<int64_t>(), 4) << "ci_tiny: h_cycles 2 x (l_cycles 1 + 1) x 1 layer";
  EXPECT_GT(j["peak_rss_mib"].get<double>(), 0.0);
  EXPECT_TRUE(j["arch"].is_object());
  const std::string k = mode + "_";
  EXPECT_EQ(j[k + "rows"].get<int64_t>(), rows);
  const double mean = j[k + "ms_per_step"], min = j[k + "min_ms"];
  EXPECT_GT(min, 0.0);
  EXPECT_LE(min, mean);
  EXPECT_GE(j[k + "cpu_ms_per_step"].get<double>(), 0.0);
  const double rate = 1000.0 * static_cast<double>(rows) / mean, gflops = gflop / (mean / 1000.0);
  EXPECT_NEAR(j[k + "rows_steps_per_s"].get<double>(), rate, 1e-9 * rate);
  EXPECT_DOUBLE_EQ(j[k + "matmul_gflop_per_step"].get<double>(), gflop);
  EXPECT_NEAR(j[k + "matmul_gflops"].get<double>(), gflops, 1e-9 * gflops);
  EXPECT_TRUE(j.contains(k + "pct_of_gemm_peak"));
}

TEST(CliBench, TrainJsonHasTheStepsFiguresAndThePeak) {
  const json j = bench_json("train -b 4 --iters 2 --warmup 1");
  EXPECT_EQ(j["bench"], "train");
  expect_mode(j, "train", 4, tiny_flops(4).train / 1e9);
  EXPECT_EQ(j["batch"].get<int64_t>(), 4);
  EXPECT_EQ(j["iters"].get<int>(), 2);
  EXPECT_EQ(j["loss_type"], "stablemax_cross_entropy");
  EXPECT_TRUE(j["ema"].get<bool>());
  // The measured GEMM peak (validated against float64 before it is timed) and the step's share of it.
  ASSERT_TRUE(j["gemm_peak_fp32_gflops"].is_number()) << j.dump();
  EXPECT_GT(j["gemm_peak_fp32_gflops"].get<double>(), 0.0);
  EXPECT_GT(j["gemm_peak_bf16_gflops"].get<double>(), 0.0);
  EXPECT_EQ(j["gemm_peak_shape"], json({4 * 16, 16, j["gemm_peak_shape"][2].get<int64_t>()}));
  const double peak = j["forward_dtype"] == "bfloat16" ? j["gemm_peak_bf16_gflops"].get<double>()
                                                       : j["gemm_peak_fp32_gflops"].get<double>();
  EXPECT_NEAR(j["train_pct_of_gemm_peak"].get<double>(), 100.0 * j["train_matmul_gflops"].get<double>() / peak, 1e-6);
}

TEST(CliBench, EvalJsonCountsBreadthRowsOnGeneratedPuzzles) {
  const json j = bench_json("eval -b 3 --breadth 2 --iters 2 --warmup 0 --generated --no-peak");
  EXPECT_EQ(j["bench"], "eval");
  expect_mode(j, "eval", 6, tiny_flops(6).eval / 1e9);
  EXPECT_EQ(j["breadth"].get<int64_t>(), 2);
  EXPECT_EQ(j["runner_depth"].get<int64_t>(), 4) << "step 1 and the read-out step are not timed";
  EXPECT_NE(j["puzzles"].get<std::string>(), "random tokens");
  EXPECT_TRUE(j["gemm_peak_fp32_gflops"].is_null()) << "--no-peak";
  EXPECT_TRUE(j["eval_pct_of_gemm_peak"].is_null());
}

TEST(CliBench, ModelJsonHasBothModesAndTheTableHasNoJson) {
  const json j = bench_json("model -b 2 --iters 1 --warmup 0 --no-peak --set arch.noise_scale=0");
  EXPECT_EQ(j["bench"], "model");
  expect_mode(j, "train", 2, tiny_flops(2).train / 1e9);
  expect_mode(j, "eval", 2, tiny_flops(2).eval / 1e9);
  EXPECT_NE(j["config"].get<std::string>().find("--set arch.noise_scale=0"), std::string::npos) << j["config"];

  const auto r = run_eqr("bench eval " + kTiny + " -b 2 --iters 1 --no-peak");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ms/step"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("eval step"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('{'), std::string::npos) << "JSON only with --json:\n" << r.out;
}

TEST(CliBench, TestAndGradModesValidateWithoutTiming) {
  // --mode test validates one step and stops: no timing keys, no peak; grad adds the gradient/update check.
  for (const char* c : {"model", "train", "eval"}) {
    for (const char* mode : {"test", "grad"}) {
      const json j = bench_json(std::string(c) + " -b 2 --mode " + mode);
      EXPECT_EQ(j["bench"], c);
      EXPECT_EQ(j["mode"], mode);
      EXPECT_TRUE(j["passed"].get<bool>());
      EXPECT_FALSE(j.contains("gemm_peak_fp32_gflops")) << j.dump();
      EXPECT_FALSE(j.contains("eval_ms_per_step") || j.contains("train_ms_per_step")) << j.dump();
    }
  }
  EXPECT_EQ(bench_json("model -b 2 --mode grad")["checked"], "test+grad");
  EXPECT_EQ(bench_json("eval -b 2 --mode grad")["checked"], "test (no gradient check)");
  EXPECT_EQ(run_eqr("bench model " + kTiny + " --mode fast").exit_code, 2);
}

TEST(CliBench, BadOptionsAreUsageErrors) {
  EXPECT_EQ(run_eqr("bench train " + kTiny + " --iters 0").exit_code, 2);
  EXPECT_EQ(run_eqr("bench eval " + kTiny + " --breadth 0").exit_code, 2);
  const auto r = run_eqr("bench eval " + kTiny + " --generated --set data.box_rows=3 --set data.box_cols=3");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("arch.seq_len"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace eqr::test
