// `eqr`: the command-line entry point. Exit codes: 0 ok, 2 usage or config error, 1 runtime error.
// Every error is printed on stderr as one line.

#include <cstdio>
#include <exception>
#include <string>

#include "commands.h"
#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/core/logging.h"

namespace eqr::app {

void add_config_options(CLI::App* cmd, ConfigArgs& args, bool required) {
  auto* opt = cmd->add_option("-c,--config", args.path, "Config file (.yaml, .yml or .json)");
  if (required) opt->required();
  cmd->add_option("--set", args.overrides, "Override a config key, e.g. --set arch.h_cycles=2 (repeatable)")
      ->take_all()
      ->allow_extra_args(false);
}

}  // namespace eqr::app

namespace {

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& ch : s) {
    if (ch == '\n') ch = ' ';
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  eqr::use_runtime_environment(argv);  // may re-exec this program once (docs/model.md, "CPU threads")
  CLI::App app{"eqr: Equilibrium Reasoners on LibTorch (train, evaluate and scale test-time compute)", "eqr"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, std::string("Log level: ") + eqr::log_level_names())
      ->capture_default_str();
  app.parse_complete_callback([&] { eqr::set_log_level(log_level); });

  eqr::app::register_version(app);
  eqr::app::register_config(app);
  eqr::app::register_bench(app);
  eqr::app::register_data(app);
  eqr::app::register_import(app);
  eqr::app::register_launch(app);
  eqr::app::register_train(app);
  eqr::app::register_model(app);
  eqr::app::register_eval(app);
  eqr::app::register_solve(app);

  try {
    // An unknown first word is a mistyped command; say so instead of "a subcommand is required".
    if (argc > 1 && argv[1][0] != '-') {
      std::string names;
      bool known = false;
      for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
        names += (names.empty() ? "" : ", ") + sub->get_name();
        known = known || sub->check_name(argv[1]);
      }
      if (!known) throw eqr::UsageError("unknown command '" + std::string(argv[1]) + "'; commands: " + names);
    }
    app.parse(argc, argv);
    return 0;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "eqr: usage error: %s (see eqr --help)\n", one_line(e.what()).c_str());
    return 2;
  } catch (const eqr::UsageError& e) {
    std::fprintf(stderr, "eqr: usage error: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const eqr::ConfigError& e) {
    std::fprintf(stderr, "eqr: config error: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const eqr::Error& e) {
    std::fprintf(stderr, "eqr: error: %s\n", one_line(e.what()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eqr: internal error: %s\n", one_line(e.what()).c_str());
    return 1;
  }
}
