// Sweep -> scores -> report.json / report.csv / trace.csv. Shape legend: P puzzles, R breadth, T steps.

#include "eqr/eval/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/core/logging.h"
#include "eqr/eval/diagnostics.h"
#include "eqr/infer/depth.h"
#include "eqr/task/task.h"

namespace eqr::eval {

namespace fs = std::filesystem;

const MetricsRow& EvalReport::headline() const {
  EQR_CHECK(!rows.empty(), RuntimeError, "eval report has no rows");
  int64_t depth = 0, breadth = 0;
  for (const auto& r : rows) {
    depth = std::max(depth, r.depth);
    breadth = std::max(breadth, r.breadth);
  }
  const std::string want = breadth > 1 ? "majority_vote" : "mean";
  for (const auto& r : rows) {
    if (r.depth == depth && r.breadth == breadth && r.aggregator == want) return r;
  }
  return rows.back();
}

EvalSpec eval_spec(const config::RunConfig& config) {
  const auto& e = config.eval;
  EvalSpec spec;
  spec.runner.depths = e.depth;
  spec.runner.depth = infer::depth_options(e);
  spec.runner.convergence_window = e.convergence_window;
  spec.runner.batch_puzzles = e.global_batch_size ? *e.global_batch_size : config.train.global_batch_size;
  spec.runner.seed = static_cast<uint64_t>(e.seed);
  spec.runner.show_progress = true;
  spec.breadths = e.breadth;
  EQR_CHECK(!spec.breadths.empty(), ConfigError, "eval.breadth: empty; expected at least one breadth, e.g. [1]");
  spec.runner.breadth = *std::max_element(spec.breadths.begin(), spec.breadths.end());
  spec.convergence_top_k = e.convergence_top_k;
  spec.save_row_traces = e.save_row_traces;
  spec.runner.normalise();
  return spec;
}

infer::PuzzleSet load_test_puzzles(const config::RunConfig& config, const std::string& csv,
                                   const std::string& data_dir, int64_t max_puzzles) {
  int64_t cap = std::max<int64_t>(0, max_puzzles);
  if (config.eval.max_eval_steps) {
    const int64_t batch = config.eval.global_batch_size ? *config.eval.global_batch_size
                                                        : config.train.global_batch_size;
    const int64_t by_steps = *config.eval.max_eval_steps * batch;
    cap = cap > 0 ? std::min(cap, by_steps) : by_steps;
  }
  const int64_t s = config.arch.seq_len;
  const auto the_task = task::make_task(config);
  infer::PuzzleSet set;
  if (!csv.empty()) {
    set = the_task->read_file(csv, cap);
  } else if (!data_dir.empty()) {
    set = task::puzzles_from_split(the_task->load_split(data_dir, "test"), the_task, cap);
    set.origin = data_dir + "/test";
  } else {
    set = task::puzzles_from_split(the_task->load_or_build("test"), the_task, cap);
    set.origin = "config data (" + config::name_of(config.data.source) + ")";
  }
  EQR_CHECK(set.inputs.size(1) == s, DataError, set.origin, ": boards of ", set.inputs.size(1),
            " cells, the model was trained on ", s, " (arch.seq_len)");
  return set;
}

EvalReport evaluate(model::EqrModel& model, const infer::PuzzleSet& puzzles, EvalSpec spec,
                    nlohmann::ordered_json meta) {
  spec.runner.normalise();
  auto& breadths = spec.breadths;
  EQR_CHECK(!breadths.empty(), ConfigError, "eval.breadth: empty; expected at least one breadth, e.g. [1]");
  for (int64_t b : breadths) EQR_CHECK(b >= 1, ConfigError, "eval.breadth: got ", b, ", expected every breadth >= 1");
  std::sort(breadths.begin(), breadths.end());
  breadths.erase(std::unique(breadths.begin(), breadths.end()), breadths.end());
  spec.runner.breadth = breadths.back();
  EQR_CHECK(!spec.convergence_top_k || *spec.convergence_top_k >= 1, ConfigError,
            "eval.convergence_top_k: got ", *spec.convergence_top_k, ", expected >= 1 or null");

  const auto& arch = model->arch();
  // Only worth a warning when the residual rule is the only stop rule (answer_patience 0, no q halting).
  if (spec.runner.depth.kind == infer::SchedulerKind::kAdaptive && arch.noise_scale > 0 &&
      spec.runner.depth.answer_patience == 0 && !spec.runner.depth.halt_on_q &&
      spec.runner.depth.tol < infer::noise_floor(arch)) {
    logger()->warn("adaptive scheduler: tol {} is below the residual floor of the path noise (~{:.3g} = "
                   "noise_scale * sqrt(2*S*D)); the residual rule will rarely fire. Raise --tol, set "
                   "arch.noise_scale=0, or stop on the answer (--answer-patience K)",
                   spec.runner.depth.tol, infer::noise_floor(arch));
  }

  // The verifier sees the puzzle's input (Sudoku: its givens).
  const at::Tensor inputs_cpu = puzzles.inputs.to(torch::kCPU).to(torch::kUInt8).contiguous();
  const int64_t s_len = inputs_cpu.size(1);
  infer::AggregateOptions agg;
  agg.convergence_top_k = spec.convergence_top_k;
  if (spec.verified && puzzles.task) {
    agg.verifier = [&inputs_cpu, s_len, task = puzzles.task](int64_t p, const infer::Prediction& pred) {
      return static_cast<int64_t>(pred.size()) == s_len &&
             task->is_valid(inputs_cpu.data_ptr<uint8_t>() + p * s_len, pred.data());
    };
  }

  MetricsAccumulator metrics(spec.runner.depths, breadths, agg);
  DiagnosticsAccumulator diagnostics(spec.runner.depths);
  EvalReport report;
  spec.runner.keep_residuals = true;
  report.summary = infer::run(model, puzzles, spec.runner, [&](infer::PuzzleResult&& pr) {
    metrics.add(pr);
    diagnostics.add(pr);
    if (spec.save_row_traces) {
      for (auto& tr : pr.trajectories) {
        const bool ok = !tr.at_depth.empty() && tr.at_depth.back().exact;
        infer::TrajectoryResult slim;
        slim.puzzle = tr.puzzle;
        slim.init = tr.init;
        slim.steps = tr.steps;
        slim.residuals = std::move(tr.residuals);
        slim.at_depth.resize(1);
        slim.at_depth[0].exact = ok;
        report.row_traces.push_back(std::move(slim));
      }
    }
  });

  const std::string scheduler = infer::scheduler_name(spec.runner.depth.kind);
  report.rows = metrics.rows(scheduler, model->blocks_per_step(), report.summary.wall_time_s,
                             report.summary.trajectory_steps, spec.runner.seed);
  report.diagnostics = diagnostics.to_json();
  const int64_t sum_points = metrics.sum_of_point_steps();
  const int64_t done = report.summary.trajectory_steps;
  report.cost = {{"trajectory_steps_done", done},
                 {"trajectory_steps_if_each_point_ran_alone", sum_points},
                 {"saving_factor", done > 0 ? static_cast<double>(sum_points) / static_cast<double>(done) : 0.0},
                 {"batch_steps", report.summary.batch_steps},
                 {"blocks_per_step", model->blocks_per_step()},
                 {"block_applications_done", done * model->blocks_per_step()},
                 {"wall_time_s", report.summary.wall_time_s},
                 {"note",
                  "one run serves the whole grid: depths are prefixes of each trajectory, breadths the first R' "
                  "trajectories; saving_factor = steps the points would cost run one by one / steps done"}};

  meta["scheduler"] = scheduler;
  meta["depths"] = spec.runner.depths;
  meta["breadths"] = breadths;
  meta["tol"] = spec.runner.depth.tol;
  meta["patience"] = spec.runner.depth.patience;
  meta["halt_on_q"] = spec.runner.depth.halt_on_q;
  meta["convergence_window"] = spec.runner.convergence_window;
  meta["convergence_top_k"] =
      spec.convergence_top_k ? nlohmann::ordered_json(*spec.convergence_top_k) : nlohmann::ordered_json();
  meta["batch_puzzles"] = spec.runner.batch_puzzles;
  meta["seed"] = spec.runner.seed;
  meta["n_puzzles"] = puzzles.size();
  meta["puzzles"] = puzzles.origin;
  meta["task"] = puzzles.task ? puzzles.task->name() : std::string();
  meta["geometry"] = puzzles.task ? puzzles.task->geometry().board : std::string();
  meta["device"] = model->device().str();
  meta["forward_dtype"] = std::string(c10::toString(model->forward_dtype()));
  meta["noise_scale"] = arch.noise_scale;
  report.meta = std::move(meta);
  return report;
}

namespace {

nlohmann::ordered_json row_json(const MetricsRow& r) {
  return {{"depth", r.depth},
          {"breadth", r.breadth},
          {"aggregator", r.aggregator},
          {"scheduler", r.scheduler},
          {"exact_accuracy", r.exact_accuracy},
          {"cell_accuracy", r.cell_accuracy ? nlohmann::ordered_json(*r.cell_accuracy) : nlohmann::ordered_json()},
          {"valid_accuracy", r.valid_accuracy ? nlohmann::ordered_json(*r.valid_accuracy) : nlohmann::ordered_json()},
          {"n_puzzles", r.n_puzzles},
          {"steps_mean", r.steps_mean},
          {"steps_p50", r.steps_p50},
          {"steps_p99", r.steps_p99},
          {"nfe_per_puzzle", r.nfe_per_puzzle},
          {"block_applications_per_puzzle", r.block_applications_per_puzzle},
          {"wall_time_s", r.wall_time_s},
          {"point_time_s", r.point_time_s},
          {"puzzles_per_s", r.puzzles_per_s},
          {"seed", r.seed}};
}

std::string num(double v) {
  if (!std::isfinite(v)) return "";
  std::ostringstream os;
  os << std::setprecision(8) << v;
  return os.str();
}

std::string fixed4(double v) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(4) << v;
  return os.str();
}

}  // namespace

nlohmann::ordered_json report_json(const EvalReport& report) {
  nlohmann::ordered_json j;
  j["meta"] = report.meta;
  const MetricsRow& h = report.headline();
  j["headline"] = row_json(h);
  auto rows = nlohmann::ordered_json::array();
  for (const auto& r : report.rows) rows.push_back(row_json(r));
  j["rows"] = rows;
  const auto& t = report.summary.trace;
  auto step = nlohmann::ordered_json::array(), n = nlohmann::ordered_json::array(),
       res = nlohmann::ordered_json::array(), ex = nlohmann::ordered_json::array(),
       cell = nlohmann::ordered_json::array();
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const double c = t.rows[i] > 0 ? static_cast<double>(t.rows[i]) : 1.0;
    step.push_back(i + 1);
    n.push_back(t.rows[i]);
    res.push_back(t.residual_sum[i] / c);
    ex.push_back(t.exact_sum[i] / c);
    cell.push_back(t.cell_sum[i] / c);
  }
  j["trace"] = {{"step", step},
                {"rows", n},
                {"residual_mean", res},
                {"exact_accuracy", ex},
                {"cell_accuracy", cell},
                {"note", "per step t: means over the trajectories that took step t (single trajectories, no "
                         "aggregation); the residual of step 1 is measured from the initial state"}};
  j["diagnostics"] = report.diagnostics;
  j["cost"] = report.cost;
  j["summary"] = {{"puzzles", report.summary.puzzles},
                  {"trajectories", report.summary.trajectories},
                  {"trajectory_steps", report.summary.trajectory_steps},
                  {"batch_steps", report.summary.batch_steps},
                  {"wall_time_s", report.summary.wall_time_s}};
  return j;
}

std::string report_csv(const EvalReport& report) {
  std::ostringstream os;
  os << "depth,breadth,aggregator,scheduler,exact_accuracy,cell_accuracy,valid_accuracy,n_puzzles,steps_mean,steps_p50,steps_p99,"
        "nfe_per_puzzle,block_applications_per_puzzle,wall_time_s,point_time_s,puzzles_per_s,seed\n";
  for (const auto& r : report.rows) {
    os << r.depth << ',' << r.breadth << ',' << r.aggregator << ',' << r.scheduler << ',' << num(r.exact_accuracy)
       << ',' << (r.cell_accuracy ? num(*r.cell_accuracy) : "") << ','
       << (r.valid_accuracy ? num(*r.valid_accuracy) : "") << ',' << r.n_puzzles << ',' << num(r.steps_mean)
       << ',' << num(r.steps_p50) << ',' << num(r.steps_p99) << ',' << num(r.nfe_per_puzzle) << ','
       << num(r.block_applications_per_puzzle) << ',' << num(r.wall_time_s) << ',' << num(r.point_time_s) << ','
       << num(r.puzzles_per_s) << ',' << r.seed << '\n';
  }
  return os.str();
}

std::string headline_line(const EvalReport& report) {
  const MetricsRow& h = report.headline();
  std::ostringstream os;
  os << "exact_accuracy " << std::fixed << std::setprecision(4) << h.exact_accuracy << " (" << h.aggregator
     << ", depth " << h.depth << ", breadth " << h.breadth << ", scheduler " << h.scheduler << ", seed " << h.seed
     << ", " << h.n_puzzles << " puzzles)";
  return os.str();
}

std::string summary_table(const EvalReport& report) {
  std::ostringstream os;
  os << std::left << std::setw(7) << "depth" << std::setw(8) << "breadth" << std::setw(18) << "aggregator"
     << std::right << std::setw(8) << "exact" << std::setw(8) << "cell" << std::setw(8) << "valid" << std::setw(10)
     << "steps" << std::setw(12)
     << "NFE/puzzle" << std::setw(11) << "puzzles/s" << '\n';
  for (const auto& r : report.rows) {
    os << std::left << std::setw(7) << r.depth << std::setw(8) << r.breadth << std::setw(18) << r.aggregator
       << std::right << std::fixed << std::setprecision(4) << std::setw(8) << r.exact_accuracy << std::setw(8)
       << (r.cell_accuracy ? fixed4(*r.cell_accuracy) : std::string("-")) << std::setw(8)
       << (r.valid_accuracy ? fixed4(*r.valid_accuracy) : std::string("-")) << std::setprecision(1)
       << std::setw(10) << r.steps_mean << std::setw(12) << r.nfe_per_puzzle << std::setw(11) << r.puzzles_per_s
       << '\n';
  }
  return os.str();
}

void write_report(const EvalReport& report, const std::string& out_dir) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  EQR_CHECK(!ec, DataError, out_dir, ": cannot create the report directory (", ec.message(), ")");
  const auto write = [&](const std::string& name, const std::string& text) {
    const fs::path p = fs::path(out_dir) / name;
    std::ofstream f(p);
    EQR_CHECK(f.good(), DataError, p.string(), ": cannot write the report file");
    f << text;
    EQR_CHECK(f.good(), DataError, p.string(), ": write failed");
  };
  write("report.json", report_json(report).dump(1) + "\n");
  write("report.csv", report_csv(report));
  std::ostringstream tr;
  tr << "step,rows,residual_mean,exact_accuracy,cell_accuracy\n";
  const auto& t = report.summary.trace;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const double c = t.rows[i] > 0 ? static_cast<double>(t.rows[i]) : 1.0;
    tr << i + 1 << ',' << t.rows[i] << ',' << num(t.residual_sum[i] / c) << ',' << num(t.exact_sum[i] / c) << ','
       << num(t.cell_sum[i] / c) << '\n';
  }
  write("trace.csv", tr.str());
  if (!report.row_traces.empty()) {
    std::ostringstream rt;
    rt << "puzzle,init,correct,steps,residuals\n";
    for (const auto& tr_ : report.row_traces) {
      rt << tr_.puzzle << ',' << tr_.init << ',' << (tr_.at_depth.empty() ? 0 : tr_.at_depth[0].exact ? 1 : 0)
         << ',' << tr_.steps << ',';
      for (size_t i = 0; i < tr_.residuals.size(); ++i) rt << (i ? " " : "") << num(tr_.residuals[i]);
      rt << '\n';
    }
    write("row_traces.csv", rt.str());
  }
}

}  // namespace eqr::eval
