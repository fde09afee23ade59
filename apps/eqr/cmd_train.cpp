// `eqr train`: train (or resume) a run from a config.

#include <filesystem>
#include <iostream>

#include "commands.h"
#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "eqr/train/trainer.h"

namespace eqr::app {

void register_train(CLI::App& app) {
  struct Args {
    ConfigArgs config;
    std::string resume;
    std::string run_dir;
    std::string device;
    int64_t stop_after = 0;
    bool no_progress = false;
    bool detect_anomaly = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("train", "Train an EqR (deep supervision, ACT halting, AdamATan2, EMA)");
  add_config_options(cmd, args->config, false);
  cmd->add_option("--resume", args->resume, "Continue the run in this directory from its latest checkpoint");
  cmd->add_option("--run-dir", args->run_dir, "Run directory (default <output_root>/<name>)");
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N (overrides the config's device)");
  cmd->add_option("--stop-after", args->stop_after, "Stop after this many steps in this invocation (checkpointed)");
  cmd->add_flag("--no-progress", args->no_progress, "No live progress line");
  cmd->add_flag("--detect-anomaly", args->detect_anomaly,
                "Autograd anomaly detection: stop at the first backward op that returns NaN, with its forward "
                "trace (slow; for debugging)");
  cmd->callback([args] {
    train::TrainerOptions opts;
    opts.progress = !args->no_progress;
    opts.stop_after_steps = args->stop_after;
    opts.detect_anomaly = args->detect_anomaly;
    config::RunConfig cfg;
    if (!args->resume.empty()) {
      EQR_CHECK(args->config.path.empty(), UsageError,
                "--resume takes the config saved in the run directory; drop --config (use --set to change knobs)");
      opts.resume = true;
      opts.run_dir = args->resume;
      std::vector<std::string> overrides = args->config.overrides;
      // The run's own config.yaml, written by an eqr that may be older: removed keys warn, not fail.
      cfg = config::load((std::filesystem::path(args->resume) / "config.yaml").string(), overrides,
                         config::RemovedKeys::kWarn);
    } else {
      EQR_CHECK(!args->config.path.empty(), UsageError, "eqr train needs --config FILE (or --resume RUN_DIR)");
      cfg = config::load(args->config.path, args->config.overrides);
      opts.run_dir = args->run_dir;
    }
    if (!args->device.empty()) cfg.device = args->device;
    const auto r = train::run_training(cfg, opts);
    const char* how = r.interrupted ? "interrupted" : r.time_limited ? "stopped by the time limit" : "finished";
    std::cout << how << " at step " << r.steps_done << "/" << r.total_steps
              << "; run directory " << r.run_dir << "; checkpoint " << r.last_checkpoint << "\n";
    for (const auto& [k, v] : r.last_eval_metrics) std::cout << "  " << k << " = " << v << "\n";
  });
}

}  // namespace eqr::app
