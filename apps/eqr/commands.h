#pragma once
// Subcommands of `eqr`. Each cmd_<name>.cpp registers one subcommand; main.cpp calls them all.
// Commands stay thin: parse -> config -> library call.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace eqr::config {
struct ArchConfig;
}

namespace eqr::app {

/// --config FILE and repeatable --set key=value, shared by every config-driven command.
struct ConfigArgs {
  std::string path;
  std::vector<std::string> overrides;
};
void add_config_options(CLI::App* cmd, ConfigArgs& args, bool required);

/// A double as an override value that reads back to the same double (cmd_eval.cpp).
std::string exact_number(double v);

/// One line naming an architecture's shape and knobs (cmd_model.cpp; `model info` and the benchmarks).
std::string arch_summary(const config::ArchConfig& arch);

// Top-level commands, registered in this order by main.cpp. A command that extends another
// (e.g. `eqr bench solver`) finds its parent with app.get_subcommand("bench") and is registered after it.
void register_version(CLI::App& app);
void register_config(CLI::App& app);
void register_bench(CLI::App& app);  // cmd_bench.cpp: eqr bench model|train|eval
void register_data(CLI::App& app);  // cmd_data.cpp: eqr data <task verbs>, eqr bench <task verbs>|loader
void register_import(CLI::App& app);
void register_launch(CLI::App& app);  // cmd_launch.cpp: eqr launch -n N -- <args>
void register_train(CLI::App& app);   // cmd_train.cpp: eqr train
void register_model(CLI::App& app);  // cmd_model.cpp: eqr model info
void register_eval(CLI::App& app);   // cmd_eval.cpp: eqr eval ; cmd_solve.cpp: eqr solve
void register_solve(CLI::App& app);

}  // namespace eqr::app
