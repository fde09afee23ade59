#pragma once
// `eqr eval`'s library side: run a depth x breadth sweep on a puzzle set (infer::run), score it
// (metrics.h, diagnostics.h) and write the report:
//   <out>/report.json   meta (checkpoint, config, seed, device, git SHA), headline, rows, per-step trace,
//                       diagnostics, cost (prefix-depth saving)
//   <out>/report.csv    one row per depth x breadth x aggregator (MetricsRow fields)
//   <out>/trace.csv     per step: rows, mean residual, exact and cell accuracy (all trajectories)
//   <out>/row_traces.csv  per trajectory residual after every step (only with save_row_traces)
//
// Shape legend: P puzzles, R breadth, T steps.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/config/config.h"
#include "eqr/eval/metrics.h"
#include "eqr/infer/runner.h"
#include "eqr/model/eqr_model.h"

namespace eqr::eval {

/// What to sweep.
struct EvalSpec {
  /// Depths, breadth R (= max(breadths)), scheduler, window, batch size, seed, progress.
  infer::RunnerOptions runner;
  /// Breadths reported (each <= runner.breadth; sorted by evaluate()).
  std::vector<int64_t> breadths = {1};
  /// k of convergence_top{k} (k > 1), nullopt = only most_converged.
  std::optional<int64_t> convergence_top_k;
  /// Report verified_select (the puzzles' task's validity check, Task::is_valid; off without a task).
  bool verified = true;
  /// Keep every trajectory's residual trace for row_traces.csv.
  bool save_row_traces = false;
};

/// The sweep a resolved config asks for: eval.depth / breadth / scheduler / tol / patience / halt_on_q /
/// convergence_top_k / convergence_window / seed / save_row_traces; batch = eval.global_batch_size (null:
/// train.global_batch_size). ConfigError for bad values.
EvalSpec eval_spec(const config::RunConfig& config);

/// Test puzzles of the config's task (task::make_task(config)): a task file (`csv`; Sudoku: a Sudoku CSV,
/// Task::read_file), else a built dataset directory's test split (`data_dir`, Task::load_split), else the
/// config's data section (Task::load_or_build("test")). At most `max_puzzles` (0 = all; also
/// capped by eval.max_eval_steps batches). The board must match arch.seq_len (DataError otherwise).
infer::PuzzleSet load_test_puzzles(const config::RunConfig& config, const std::string& csv,
                                   const std::string& data_dir, int64_t max_puzzles);

/// A finished sweep.
struct EvalReport {
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();  ///< provenance (caller fills, evaluate adds)
  std::vector<MetricsRow> rows;
  infer::RunSummary summary;
  nlohmann::ordered_json diagnostics;
  nlohmann::ordered_json cost;
  std::vector<infer::TrajectoryResult> row_traces;  ///< save_row_traces only (snapshots dropped)
  /// The headline row: largest depth, largest breadth, majority_vote (mean when R = 1).
  const MetricsRow& headline() const;
};

/// Runs and scores the sweep. `meta` is copied into the report.
EvalReport evaluate(model::EqrModel& model, const infer::PuzzleSet& puzzles, EvalSpec spec,
                    nlohmann::ordered_json meta = nlohmann::ordered_json::object());

/// The report as JSON (what report.json holds).
nlohmann::ordered_json report_json(const EvalReport& report);
/// report.csv text.
std::string report_csv(const EvalReport& report);
/// One line: "exact_accuracy 0.8125 (majority_vote, depth 64, breadth 8, seed 0, 256 puzzles)".
std::string headline_line(const EvalReport& report);
/// A small human table of the rows (for the terminal).
std::string summary_table(const EvalReport& report);
/// Writes report.json, report.csv, trace.csv (and row_traces.csv) into `out_dir` (created).
void write_report(const EvalReport& report, const std::string& out_dir);

}  // namespace eqr::eval
