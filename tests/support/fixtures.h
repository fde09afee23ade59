#pragma once
// Small fixtures several suites share: the tiny 4x4-board architecture, the ci_tiny run config rooted in a
// temp dir, and metrics.jsonl reading. Header-only (inline), so a unit suite that includes it links nothing
// beyond what it uses (run_config_in needs the config module: integration suites only).

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/config/config.h"
#include "eqr/config/load.h"
#include "eqr/dynamics/carry.h"
#include "eqr/model/init.h"
#include "test_support.h"

namespace eqr::test {

/// The smallest model the eval suites run: width 16, 2 heads, expansion 1, one layer, h_cycles 2, l_cycles 1
/// (board and vocabulary left to the caller).
inline void shrink_to_width16(config::ArchConfig& a) {
  a.hidden_size = 16;
  a.num_heads = 2;
  a.expansion = 1.0;
  a.l_layers = 1;
  a.h_cycles = 2;
  a.l_cycles = 1;
}

/// A small model on a 4x4 board (S 16, V 6): hidden 32, 4 heads, 2 layers, h_cycles 3, l_cycles 2.
/// Build it with cpu_float32_compute() for float32 on the CPU whatever the machine. Callers change what their test is about (noise, mixer, dtype).
inline config::ArchConfig tiny_arch_4x4() {
  config::ArchConfig a;
  a.hidden_size = 32;
  a.num_heads = 4;
  a.seq_len = 16;
  a.vocab_size = 6;
  a.board_height = 4;
  a.board_width = 4;
  a.l_layers = 2;
  a.h_cycles = 3;
  a.l_cycles = 2;
  return a;
}

/// float32 on every CPU (the auto default runs bfloat16 on CPUs with native bfloat16), bfloat16 on CUDA.
inline config::ComputeConfig cpu_float32_compute() {
  config::ComputeConfig c;
  c.reduced_precision_on_cpu = false;
  return c;
}

/// float32 on every device.
inline config::ComputeConfig float32_compute() {
  config::ComputeConfig c;
  c.forward_dtype = "float32";
  return c;
}

/// A batch of `b` rows for tiny_arch_4x4 drawn from a CPU generator seeded `seed`: inputs in [1, 6), labels
/// in [2, 6), puzzle ids seed..seed+b-1.
inline dynamics::Batch tiny_batch_4x4(int64_t b, uint64_t seed) {
  auto g = model::make_generator(c10::Device(c10::kCPU), seed);
  dynamics::Batch batch;
  batch.inputs = at::randint(1, 6, {b, 16}, g, torch::kLong);
  batch.labels = at::randint(2, 6, {b, 16}, g, torch::kLong);
  batch.puzzle_identifiers = torch::arange(b, torch::kInt) + static_cast<int>(seed);
  return batch;
}

/// configs/ci_tiny.yaml with its outputs and built data under `root`, plus `extra` --set overrides.
inline config::RunConfig ci_tiny_in(const std::filesystem::path& root, std::vector<std::string> extra = {}) {
  extra.push_back("output_root=" + root.string());
  extra.push_back("data.data_path=" + (root / "data").string());
  return config::load((source_dir() / "configs/ci_tiny.yaml").string(), extra);
}

/// Every JSON object of a .jsonl file, in order.
inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

}  // namespace eqr::test
