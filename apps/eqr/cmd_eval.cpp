// `eqr eval`: a depth x breadth sweep of a trained checkpoint in one run; writes report.json / report.csv.
// Thin: flags -> config overrides -> eval::load_model / load_test_puzzles / evaluate / write_report.

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "commands.h"
#include "eqr/config/load.h"
#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/core/logging.h"
#include "eqr/core/version.h"
#include "eqr/eval/model_loader.h"
#include "eqr/eval/report.h"

namespace eqr::app {

namespace {

struct EvalArgs {
  ConfigArgs config;
  std::string checkpoint;
  std::string data_dir;
  std::string csv;
  std::string depth, breadth, scheduler;
  double tol = 0.0;  // the numeric flags count only when given (see `given`)
  int64_t patience = 0, answer_patience = 0, convergence_top_k = 0, convergence_window = 0, seed = 0, batch_size = 0;
  std::map<std::string, CLI::Option*> given;
  bool has(const std::string& flag) const { return given.at(flag)->count() > 0; }
  bool halt_on_q = false;
  bool raw_weights = false;
  bool row_traces = false;
  int64_t max_puzzles = 0;
  std::string device = "auto";
  std::string out;
};

/// "16,64,256" -> "[16,64,256]" (YAML flow list for an override).
std::string as_list(const std::string& csv_values, const char* flag) {
  std::stringstream ss(csv_values);
  std::string item, out;
  while (std::getline(ss, item, ',')) {
    EQR_CHECK(!item.empty() && item.find_first_not_of("0123456789") == std::string::npos, UsageError, flag, ": '",
              csv_values, "' is not a comma-separated list of positive integers (e.g. 16,64,256)");
    out += (out.empty() ? "" : ",") + item;
  }
  EQR_CHECK(!out.empty(), UsageError, flag, ": empty list");
  return "[" + out + "]";
}

void run_eval(const EvalArgs& a) {
  EQR_CHECK(a.csv.empty() || a.data_dir.empty(), UsageError, "give --csv or --data, not both");
  std::vector<std::string> overrides = a.config.overrides;
  if (!a.depth.empty()) overrides.push_back("eval.depth=" + as_list(a.depth, "--depth"));
  if (!a.breadth.empty()) overrides.push_back("eval.breadth=" + as_list(a.breadth, "--breadth"));
  if (!a.scheduler.empty()) overrides.push_back("eval.scheduler=" + a.scheduler);
  if (a.has("--tol")) overrides.push_back("eval.tol=" + exact_number(a.tol));
  if (a.has("--patience")) overrides.push_back("eval.patience=" + std::to_string(a.patience));
  if (a.has("--answer-patience")) overrides.push_back("eval.answer_patience=" + std::to_string(a.answer_patience));
  if (a.halt_on_q) overrides.push_back("eval.halt_on_q=true");
  if (a.has("--convergence-top-k")) {
    overrides.push_back("eval.convergence_top_k=" + std::to_string(a.convergence_top_k));
  }
  if (a.has("--convergence-window")) {
    overrides.push_back("eval.convergence_window=" + std::to_string(a.convergence_window));
  }
  if (a.has("--seed")) overrides.push_back("eval.seed=" + std::to_string(a.seed));
  if (a.has("--batch-size")) overrides.push_back("eval.global_batch_size=" + std::to_string(a.batch_size));
  if (a.raw_weights) overrides.push_back("eval.use_ema=false");
  if (a.row_traces) overrides.push_back("eval.save_row_traces=true");

  const c10::Device device = resolve_device(a.device);
  eval::LoadedModel loaded = eval::load_model(a.checkpoint, device, /*use_ema=*/true, overrides, a.config.path);
  if (!loaded.config.eval.use_ema && loaded.weights == "ema") {
    loaded = eval::load_model(a.checkpoint, device, false, overrides, a.config.path);
  }
  const config::RunConfig& cfg = loaded.config;
  set_num_threads(cfg.num_threads);

  const infer::PuzzleSet puzzles = eval::load_test_puzzles(cfg, a.csv, a.data_dir, a.max_puzzles);
  const eval::EvalSpec spec = eval::eval_spec(cfg);

  std::string out = a.out;
  if (out.empty()) {
    out = (std::filesystem::path("eval_out") / std::filesystem::path(a.checkpoint).stem()).string();
  }
  nlohmann::ordered_json meta;
  meta["checkpoint"] = a.checkpoint;
  meta["checkpoint_format"] = loaded.format;
  meta["weights"] = loaded.weights;
  meta["checkpoint_step"] = loaded.step ? nlohmann::ordered_json(*loaded.step) : nlohmann::ordered_json();
  meta["eqr_version"] = version();
  meta["git_sha"] = git_sha();
  meta["config"] = config::to_json(cfg);
  logger()->info("eval: {} puzzles from {}, depths {}, breadths {}, scheduler {}, device {}", puzzles.size(),
                 puzzles.origin, nlohmann::json(spec.runner.depths).dump(), nlohmann::json(spec.breadths).dump(),
                 cfg.eval.scheduler, device.str());

  const eval::EvalReport report = eval::evaluate(loaded.model, puzzles, spec, meta);
  eval::write_report(report, out);
  config::write_resolved(cfg, (std::filesystem::path(out) / "config.yaml").string());

  std::cout << "headline: " << eval::headline_line(report) << "\n\n";
  std::cout << eval::summary_table(report) << "\n";
  std::cout << "cost: " << report.cost["trajectory_steps_done"].get<int64_t>() << " trajectory-steps done for "
            << report.cost["trajectory_steps_if_each_point_ran_alone"].get<int64_t>()
            << " if each point ran alone (x" << report.cost["saving_factor"].get<double>() << "), "
            << report.summary.wall_time_s << " s\n";
  std::cout << "report: " << (std::filesystem::path(out) / "report.json").string() << "\n";
}

}  // namespace

std::string exact_number(double v) {  // commands.h
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}


void register_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a checkpoint over a depth x breadth grid (one run serves the grid)");
  cmd->add_option("--checkpoint", args->checkpoint, "Checkpoint: eqr .eqrckpt, a run directory (its latest checkpoint) or reference .pth")->required();
  add_config_options(cmd, args->config, false);
  cmd->add_option("--data", args->data_dir, "Built dataset directory (its test split)");
  cmd->add_option("--csv", args->csv, "Sudoku CSV (source,question,answer,rating)");
  cmd->add_option("--depth", args->depth, "Depths (supervision steps), comma-separated, e.g. 16,64,256");
  cmd->add_option("--breadth", args->breadth, "Breadths (initial states per puzzle), e.g. 1,8,64");
  cmd->add_option("--scheduler", args->scheduler, "Depth scheduler: fixed (reference) or adaptive")
      ->check(CLI::IsMember({"fixed", "adaptive"}));
  auto& g = args->given;
  g["--tol"] = cmd->add_option("--tol", args->tol, "Adaptive: residual threshold (absolute)");
  g["--patience"] = cmd->add_option("--patience", args->patience, "Adaptive: steps under tol before a row stops");
  g["--answer-patience"] = cmd->add_option("--answer-patience", args->answer_patience,
                                           "Adaptive: steps with an unchanged decoded answer before a row stops (0 = off)");
  cmd->add_flag("--halt-on-q", args->halt_on_q, "Adaptive: also stop a row when q_halt > 0");
  g["--convergence-top-k"] =
      cmd->add_option("--convergence-top-k", args->convergence_top_k, "Report convergence_top{k} (k > 1)");
  g["--convergence-window"] =
      cmd->add_option("--convergence-window", args->convergence_window, "Logit deltas in the convergence score");
  g["--seed"] = cmd->add_option("--seed", args->seed, "Seed of initial states and path noise");
  g["--batch-size"] = cmd->add_option("--batch-size", args->batch_size, "Puzzles per batch (rows = puzzles x breadth)");
  cmd->add_option("--max-puzzles", args->max_puzzles, "Evaluate only the first N puzzles (0 = all)");
  cmd->add_flag("--raw-weights", args->raw_weights, "Use the raw weights even when the checkpoint has EMA ones");
  cmd->add_flag("--row-traces", args->row_traces, "Also write every trajectory's residuals (row_traces.csv)");
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--out", args->out, "Report directory (default eval_out/<checkpoint name>)");
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace eqr::app
