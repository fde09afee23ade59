// `eqr model info`: parameter count, blocks per supervision step and the parameter table of a config.
// (`eqr bench model` lives in cmd_bench.cpp with the other model benchmarks.)
// Shape legend: B batch, S cells, D hidden, V vocab.

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "eqr/config/load.h"
#include "eqr/model/eqr_model.h"

namespace eqr::app {

std::string arch_summary(const config::ArchConfig& a) {
  std::ostringstream os;
  os << "variant " << config::name_of(a.variant) << ", " << (a.mlp_t ? "mlp_t" : "attention") << ", D " << a.hidden_size << ", S "
     << a.seq_len << ", V " << a.vocab_size << ", l_layers " << a.l_layers << ", h_cycles " << a.h_cycles
     << ", l_cycles " << a.l_cycles << ", lambda " << a.lambda << ", noise " << a.noise_scale << ", init " << config::name_of(a.init);
  return os.str();
}

namespace {

std::string shape_string(const at::Tensor& t) {
  std::ostringstream os;
  os << "[";
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << "]";
  return os.str();
}

void register_info(CLI::App* parent) {
  struct Args {
    ConfigArgs config;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = parent->add_subcommand("info", "Parameter count, blocks per supervision step and parameter table");
  add_config_options(cmd, a->config, false);
  cmd->add_flag("--json", a->json, "Print one JSON object instead of the table");
  cmd->callback([a] {
    const auto run = config::load(a->config.path, a->config.overrides);
    torch::manual_seed(0);
    model::EqrModel m(model::EqrModelOptions{run.arch});
    const auto params = m->named_parameters();
    if (a->json) {
      nlohmann::json table = nlohmann::json::array();
      for (const auto& p : params) {
        table.push_back({{"name", p.key()}, {"shape", p.value().sizes().vec()}, {"count", p.value().numel()}});
      }
      nlohmann::json j = {{"parameters", m->num_parameters()},
                          {"blocks_per_step", m->blocks_per_step()},
                          {"arch", config::to_json(run.arch)},
                          {"persistent_buffers", m->persistent_buffer_names()},
                          {"table", table}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "arch: " << arch_summary(run.arch) << "\n";
    std::cout << "parameters: " << m->num_parameters() << "\n";
    std::cout << "blocks per supervision step: " << m->blocks_per_step() << " (h_cycles " << run.arch.h_cycles
              << " x (l_cycles " << run.arch.l_cycles << " + 1) x l_layers " << run.arch.l_layers << ")\n";
    const auto buffers = m->persistent_buffer_names();
    std::cout << "persistent buffers: " << (buffers.empty() ? "none" : "H_init, L_init") << "\n\n";
    size_t width = 4;
    for (const auto& p : params) width = std::max(width, p.key().size());
    std::printf("%-*s  %-14s %12s\n", static_cast<int>(width), "name", "shape", "count");
    for (const auto& p : params) {
      std::printf("%-*s  %-14s %12lld\n", static_cast<int>(width), p.key().c_str(), shape_string(p.value()).c_str(),
                  static_cast<long long>(p.value().numel()));
    }
    std::printf("%-*s  %-14s %12lld\n", static_cast<int>(width), "total", "",
                static_cast<long long>(m->num_parameters()));
  });
}

}  // namespace

void register_model(CLI::App& app) {
  auto* cmd = app.add_subcommand("model", "Inspect the model of a config");
  cmd->require_subcommand(1);
  register_info(cmd);
}

}  // namespace eqr::app
