// `eqr config show|validate`: resolve configs and report every knob or the first problem.

#include <iostream>

#include "commands.h"
#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "eqr/task/task.h"

namespace eqr::app {

void register_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("config", "Show or validate configs");
  cmd->require_subcommand(1);

  struct ShowArgs {
    ConfigArgs config;
    std::string format = "yaml";
  };
  auto show_args = std::make_shared<ShowArgs>();
  auto* show = cmd->add_subcommand("show", "Print the resolved config (defaults, includes and --set applied)");
  add_config_options(show, show_args->config, false);
  show->add_option("--format", show_args->format, "yaml or json")
      ->check(CLI::IsMember({"yaml", "json"}))
      ->capture_default_str();
  show->callback([show_args] {
    const auto resolved = config::load(show_args->config.path, show_args->config.overrides);
    task::make_task(resolved);  // the task's cross-checks (arch.seq_len / vocab_size against its board)
    const auto tree = config::to_json(resolved);
    if (show_args->format == "json") {
      std::cout << tree.dump(2) << "\n";
    } else {
      std::cout << config::to_yaml(tree);
    }
  });

  struct ValidateArgs {
    ConfigArgs config;
    std::vector<std::string> files;
  };
  auto val_args = std::make_shared<ValidateArgs>();
  auto* val = cmd->add_subcommand("validate", "Check config files; exit 2 naming the first bad key");
  add_config_options(val, val_args->config, false);
  val->add_option("files", val_args->files, "More config files to check");
  val->callback([val_args] {
    std::vector<std::string> files = val_args->files;
    if (!val_args->config.path.empty()) files.insert(files.begin(), val_args->config.path);
    EQR_CHECK(!files.empty(), UsageError, "config validate: give --config FILE or one or more files");
    for (const auto& f : files) {
      task::make_task(config::load(f, val_args->config.overrides));
      std::cout << "ok  " << f << "\n";
    }
  });
}

}  // namespace eqr::app
