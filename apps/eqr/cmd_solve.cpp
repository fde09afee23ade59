// `eqr solve`: solve puzzles given as arguments or on stdin (grid strings or Sudoku CSV rows) with a
// trained checkpoint; prints the board (the task's printing), whether it is a valid solution (the task's
// check), the steps used and the residual trace. Thin: input parsing -> eval::load_model -> infer::run_all -> printing.

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include <torch/torch.h>

#include "commands.h"
#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/eval/model_loader.h"
#include "eqr/eval/report.h"
#include "eqr/infer/aggregate.h"
#include "eqr/infer/runner.h"
#include "eqr/task/task.h"

namespace eqr::app {

namespace {

struct SolveArgs {
  ConfigArgs config;
  std::string checkpoint;
  std::vector<std::string> puzzles;
  int64_t depth = 16;
  int64_t breadth = 1;
  std::string scheduler = "fixed";
  double tol = 1e-3;
  int64_t patience = 2;
  bool halt_on_q = false;
  int64_t seed = 0;
  bool raw_weights = false;
  std::string device = "cpu";
  std::set<std::string> given;  ///< options given on the command line
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

/// Grid strings from stdin: one per line; CSV rows (with a header or not) give their question field.
std::vector<std::string> read_stdin_puzzles() {
  std::vector<std::string> out;
  std::string line;
  while (std::getline(std::cin, line)) {
    line = trim(line);
    if (line.empty() || line.rfind("source,", 0) == 0 || line[0] == '#') continue;
    if (line.find(',') != std::string::npos) {
      std::stringstream ss(line);
      std::string field;
      std::vector<std::string> fields;
      while (std::getline(ss, field, ',')) fields.push_back(field);
      EQR_CHECK(fields.size() >= 2, UsageError, "stdin: CSV row '", line, "' has no question field");
      out.push_back(trim(fields[1]));
    } else {
      out.push_back(line);
    }
  }
  return out;
}

void run_solve(const SolveArgs& a) {
  std::vector<std::string> grids = a.puzzles;
  if (grids.empty()) grids = read_stdin_puzzles();
  EQR_CHECK(!grids.empty(), UsageError, "no puzzles: give grid strings as arguments or on stdin");
  const c10::Device device = resolve_device(a.device);
  // The flags are eval.* overrides, so that `--set eval.*` and the config's eval section apply as in `eqr eval`
  // (eval::eval_spec). Depth, breadth and scheduler always come from the flags (solve's own defaults: 16, 1,
  // fixed); tol, patience, halt_on_q and seed only when given.
  std::vector<std::string> overrides = a.config.overrides;
  overrides.push_back("eval.depth=[" + std::to_string(a.depth) + "]");
  overrides.push_back("eval.breadth=[" + std::to_string(a.breadth) + "]");
  overrides.push_back("eval.scheduler=" + a.scheduler);
  if (a.given.count("--tol")) overrides.push_back("eval.tol=" + exact_number(a.tol));
  if (a.given.count("--patience")) overrides.push_back("eval.patience=" + std::to_string(a.patience));
  if (a.halt_on_q) overrides.push_back("eval.halt_on_q=true");
  if (a.given.count("--seed")) overrides.push_back("eval.seed=" + std::to_string(a.seed));
  const eval::LoadedModel loaded = eval::load_model(a.checkpoint, device, !a.raw_weights, overrides, a.config.path);
  set_num_threads(loaded.config.num_threads);
  const auto& the_task = loaded.task;
  const infer::PuzzleSet set = the_task->parse_puzzles(grids);

  infer::RunnerOptions opts = eval::eval_spec(loaded.config).runner;
  opts.batch_puzzles = 64;      // a handful of puzzles from the command line: one small batch
  opts.show_progress = false;   // the answers are the output
  model::EqrModel model = loaded.model;
  infer::RunSummary summary;
  const auto results = infer::run_all(model, set, opts, &summary);

  const at::Tensor inputs = set.inputs.to(torch::kUInt8).contiguous();
  int64_t valid_count = 0;
  for (size_t p = 0; p < results.size(); ++p) {
    const auto& pr = results[p];
    std::vector<infer::Prediction> preds;
    for (const auto& tr : pr.trajectories) preds.push_back(tr.at_depth.back().prediction);
    const int64_t pick = infer::majority_vote(preds);
    const auto& chosen = pr.trajectories[static_cast<size_t>(pick)];
    const auto agree = std::count(preds.begin(), preds.end(), preds[static_cast<size_t>(pick)]);
    const uint8_t* in = inputs[static_cast<int64_t>(p)].data_ptr<uint8_t>();
    const infer::Prediction& pred = chosen.at_depth.back().prediction;
    const bool valid = the_task->is_valid(in, pred.data());
    valid_count += valid ? 1 : 0;

    const std::string about = the_task->describe(in);
    std::cout << "puzzle " << p + 1 << (about.empty() ? "" : " (" + about + ")");
    if (a.breadth > 1) std::cout << ": majority of " << a.breadth << " trajectories (" << agree << " agree)";
    std::cout << "\n" << the_task->format(pred.data());
    std::cout << "valid solution: " << (valid ? "yes" : "no");
    if (!valid) std::cout << " (" << the_task->problem(in, pred.data()) << ")";
    std::cout << "\nsteps used: " << chosen.steps;
    if (a.breadth > 1) {
      std::cout << " (per trajectory:";
      for (const auto& tr : pr.trajectories) std::cout << ' ' << tr.steps;
      std::cout << ")";
    }
    std::cout << "\nresidual trace:";
    const auto& res = chosen.residuals;
    const size_t stride = res.size() > 24 ? (res.size() + 23) / 24 : 1;
    for (size_t t = 0; t < res.size(); t += stride) std::cout << ' ' << (t + 1) << ':' << std::setprecision(3) << res[t];
    if ((res.size() - 1) % stride != 0) std::cout << ' ' << res.size() << ':' << std::setprecision(3) << res.back();
    std::cout << "\nsolution: " << the_task->format_line(pred.data()) << "\n\n";
  }
  std::cout << valid_count << "/" << results.size() << " valid, " << summary.trajectory_steps
            << " trajectory-steps, " << std::setprecision(3) << summary.wall_time_s << " s\n";
}

}  // namespace

void register_solve(CLI::App& app) {
  auto args = std::make_shared<SolveArgs>();
  auto* cmd = app.add_subcommand("solve", "Solve puzzles (arguments or stdin: grid strings or CSV rows)");
  cmd->add_option("--checkpoint", args->checkpoint, "Checkpoint: eqr .eqrckpt, a run directory (its latest checkpoint) or reference .pth")->required();
  add_config_options(cmd, args->config, false);
  cmd->add_option("puzzles", args->puzzles,
                  "Puzzles in the task's text form (Sudoku: grid strings, '.' or '0' = blank; maze: n*n characters "
                  "of '# SGo', '.' = open); none = read stdin (Sudoku only: lines starting with '#' are comments)");
  cmd->add_option("--depth", args->depth, "Supervision steps (cap for adaptive)")->capture_default_str();
  cmd->add_option("--breadth", args->breadth, "Trajectories per puzzle (majority vote)")->capture_default_str();
  cmd->add_option("--scheduler", args->scheduler, "fixed or adaptive")
      ->check(CLI::IsMember({"fixed", "adaptive"}))
      ->capture_default_str();
  cmd->add_option("--tol", args->tol, "Adaptive: residual threshold")->capture_default_str();
  cmd->add_option("--patience", args->patience, "Adaptive: steps under tol")->capture_default_str();
  cmd->add_flag("--halt-on-q", args->halt_on_q, "Adaptive: stop when q_halt > 0");
  cmd->add_option("--seed", args->seed, "Seed of initial states and noise")->capture_default_str();
  cmd->add_flag("--raw-weights", args->raw_weights, "Use raw weights instead of EMA ones");
  cmd->add_option("--device", args->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  cmd->callback([args, cmd] {
    for (const char* name : {"--tol", "--patience", "--seed"}) {
      if (cmd->count(name) > 0) args->given.insert(name);
    }
    run_solve(*args);
  });
}

}  // namespace eqr::app
