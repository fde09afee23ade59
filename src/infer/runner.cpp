// The inference runner: depth scheduler + breadth sampler around dynamics::step, with compaction.
// Shape legend: P puzzles, R breadth, B rows in flight, S cells, V vocab, W convergence window.

#include "eqr/infer/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <memory>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/core/progress.h"
#include "eqr/core/rng.h"
#include "eqr/data/solver.h"
#include "eqr/data/sudoku_csv.h"
#include "eqr/dynamics/step.h"
#include "eqr/infer/breadth.h"
#include "eqr/model/init.h"

namespace eqr::infer {

// ---- puzzle sets --------------------------------------------------------------------------------

data::Geometry geometry_for_seq_len(int64_t seq_len) {
  const int64_t n = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(seq_len))));
  EQR_CHECK(n * n == seq_len, ConfigError, "arch.seq_len ", seq_len,
            " is not a square board (expected 16, 36, 81 or 256 cells)");
  return data::Geometry::from_side(static_cast<int>(n));
}

namespace {

PuzzleSet from_rows(const std::vector<std::vector<uint8_t>>& inputs, const std::vector<std::vector<int32_t>>& labels,
                    const data::Geometry& geom) {
  PuzzleSet set;
  set.geom = geom;
  const int64_t p = static_cast<int64_t>(inputs.size()), s = geom.cells();
  set.inputs = torch::empty({p, s}, torch::kInt);
  set.labels = torch::empty({p, s}, torch::kInt);
  auto in = set.inputs.accessor<int32_t, 2>();
  auto lab = set.labels.accessor<int32_t, 2>();
  for (int64_t i = 0; i < p; ++i) {
    for (int64_t j = 0; j < s; ++j) {
      in[i][j] = inputs[static_cast<size_t>(i)][static_cast<size_t>(j)];
      lab[i][j] = labels[static_cast<size_t>(i)][static_cast<size_t>(j)];
    }
  }
  return set;
}

std::vector<int32_t> label_ids(const data::Grid& answer) {
  std::vector<int32_t> out;
  for (auto v : data::to_token_ids(answer)) out.push_back(v);
  return out;
}

}  // namespace

PuzzleSet puzzles_from_csv(const std::string& path, const data::Geometry& geom, int64_t max_puzzles) {
  data::CsvOptions opts;
  opts.geom = geom;
  opts.max_rows = std::max<int64_t>(0, max_puzzles);
  const data::SudokuSet csv = data::read_sudoku_csv(path, opts);
  EQR_CHECK(!csv.rows.empty(), DataError, path, ": no puzzles; expected at least one data row after the header");
  std::vector<std::vector<uint8_t>> inputs;
  std::vector<std::vector<int32_t>> labels;
  std::vector<std::string> names;
  for (const auto& row : csv.rows) {
    inputs.push_back(data::to_token_ids(data::parse_grid(row.question, geom)));
    labels.push_back(label_ids(data::parse_grid(row.answer, geom)));
    names.push_back(row.source + ":" + std::to_string(row.line));
  }
  PuzzleSet set = from_rows(inputs, labels, geom);
  set.names = std::move(names);
  set.origin = path;
  return set;
}

PuzzleSet puzzles_from_split(const data::SplitData& split, int64_t max_puzzles) {
  const int64_t s = split.seq_len();
  int64_t n = split.num_examples();
  if (max_puzzles > 0) n = std::min(n, max_puzzles);
  EQR_CHECK(n > 0, DataError, "split '", split.name, "': no examples; expected at least one");
  PuzzleSet set;
  set.geom = split.geom ? *split.geom : geometry_for_seq_len(s);
  set.inputs = torch::from_blob(const_cast<uint8_t*>(split.inputs.data()), {n, s}, torch::kUInt8).to(torch::kInt);
  set.labels = torch::from_blob(const_cast<uint8_t*>(split.labels.data()), {n, s}, torch::kUInt8).to(torch::kInt);
  if (split.metadata.ignore_label_id) {
    set.labels.masked_fill_(set.labels == *split.metadata.ignore_label_id, -100);
  }
  set.origin = "split " + split.name;
  return set;
}

PuzzleSet puzzles_from_strings(const std::vector<std::string>& grids, const data::Geometry& geom) {
  EQR_CHECK(!grids.empty(), UsageError, "no puzzles given; expected at least one grid string");
  const data::Solver solver(geom);
  std::vector<std::vector<uint8_t>> inputs;
  std::vector<std::vector<int32_t>> labels;
  std::vector<std::string> names;
  for (size_t i = 0; i < grids.size(); ++i) {
    data::Grid q;
    try {
      q = data::parse_grid(grids[i], geom);
    } catch (const Error& e) {
      EQR_FAIL(DataError, "puzzle ", i + 1, ": ", e.what());
    }
    inputs.push_back(data::to_token_ids(q));
    const data::SolveResult solved = solver.solve(q);
    labels.push_back(solved.solved ? label_ids(solved.solution)
                                   : std::vector<int32_t>(static_cast<size_t>(geom.cells()), -100));
    names.push_back("puzzle " + std::to_string(i + 1));
  }
  PuzzleSet set = from_rows(inputs, labels, geom);
  set.names = std::move(names);
  set.origin = "grid strings";
  return set;
}

PuzzleSet PuzzleSet::slice(int64_t begin, int64_t end) const {
  EQR_CHECK(0 <= begin && begin <= end && end <= size(), UsageError, "puzzle slice [", begin, ", ", end,
            ") outside [0, ", size(), ")");
  PuzzleSet out;
  out.geom = geom;
  out.inputs = inputs.slice(0, begin, end);
  if (labels.defined()) out.labels = labels.slice(0, begin, end);
  if (!names.empty()) out.names.assign(names.begin() + begin, names.begin() + end);
  for (int64_t i = begin; i < end; ++i) out.ids.push_back(id(i));
  out.origin = origin;
  return out;
}

// ---- options and traces -------------------------------------------------------------------------

void RunnerOptions::normalise() {
  EQR_CHECK(!depths.empty(), ConfigError, "eval.depth: empty; expected at least one depth, e.g. [16]");
  for (int64_t d : depths) EQR_CHECK(d >= 1, ConfigError, "eval.depth: got ", d, ", expected every depth >= 1");
  std::sort(depths.begin(), depths.end());
  depths.erase(std::unique(depths.begin(), depths.end()), depths.end());
  EQR_CHECK(breadth >= 1, ConfigError, "eval.breadth: got ", breadth, ", expected >= 1");
  EQR_CHECK(convergence_window >= 1, ConfigError, "eval.convergence_window: got ", convergence_window,
            ", expected >= 1");
  EQR_CHECK(batch_puzzles >= 1, ConfigError, "eval.global_batch_size: got ", batch_puzzles, ", expected >= 1");
  depth.max_depth = depths.back();
  depth.validate();
}

void StepTrace::add(size_t t, double residual, bool exact, double cell) {
  if (rows.size() <= t) {
    rows.resize(t + 1, 0);
    residual_sum.resize(t + 1, 0.0);
    exact_sum.resize(t + 1, 0.0);
    cell_sum.resize(t + 1, 0.0);
  }
  rows[t] += 1;
  residual_sum[t] += residual;
  exact_sum[t] += exact ? 1.0 : 0.0;
  cell_sum[t] += cell;
}

// ---- the run ------------------------------------------------------------------------------------

namespace {

/// Puts the model in eval mode for the scope and restores its mode after.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(model::EqrModel& m) : m_(m), was_training_(m->is_training()) { m_->eval(); }
  ~EvalModeGuard() { m_->train(was_training_); }

 private:
  model::EqrModel& m_;
  bool was_training_;
};

struct Slot {
  int64_t traj = -1;
  TrajectoryResult result;
  size_t next_depth = 0;  // index into options.depths of the next snapshot
};

struct Pending {
  PuzzleResult result;
  int64_t done = 0;
};

}  // namespace

RunSummary run(model::EqrModel& model, const PuzzleSet& puzzles, RunnerOptions options,
               const std::function<void(PuzzleResult&&)>& on_puzzle) {
  options.normalise();
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  const auto& arch = model->arch();
  const auto device = model->device();
  const int64_t p_total = puzzles.size(), r = options.breadth, w = options.convergence_window;
  EQR_CHECK(p_total > 0, DataError, "eval: no puzzles in ", puzzles.origin);
  EQR_CHECK(puzzles.inputs.dim() == 2 && puzzles.inputs.size(1) == arch.seq_len, DataError, "eval: puzzles of ",
            puzzles.origin, " have shape ", puzzles.inputs.sizes(), ", the model expects (P, ", arch.seq_len,
            ") (arch.seq_len); is the board size right?");
  EQR_CHECK(!puzzles.labels.defined() || puzzles.labels.sizes() == puzzles.inputs.sizes(), DataError,
            "eval: labels ", puzzles.labels.sizes(), " vs inputs ", puzzles.inputs.sizes());
  const int64_t max_id = puzzles.inputs.max().item<int64_t>();
  EQR_CHECK(max_id < arch.vocab_size && puzzles.inputs.min().item<int64_t>() >= 0, DataError, "eval: token id ",
            max_id, " in ", puzzles.origin, " is outside the model's vocabulary [0, ", arch.vocab_size, ")");

  const at::Tensor all_inputs = puzzles.inputs.to(device, torch::kInt);
  const at::Tensor all_labels = puzzles.labels.defined() ? puzzles.labels.to(device, torch::kInt)
                                                         : torch::full_like(all_inputs, -100);
  const int64_t total = p_total * r;
  const int64_t rows = std::min(options.batch_puzzles * r, total);
  const size_t n_depths = options.depths.size();
  at::Generator noise = model::make_generator(device, derive_seed(options.seed, stream_id("noise")));

  RunSummary summary;
  summary.puzzles = p_total;
  summary.trajectories = total;
  std::unique_ptr<Progress> progress;
  // Progress counts trajectory-steps (puzzles only finish at the end of a fixed-depth batch); the total is
  // the fixed-scheduler work, an upper bound for the adaptive one.
  if (options.show_progress) progress = std::make_unique<Progress>("eval", total * options.depth.max_depth, "steps");
  int64_t puzzles_done = 0;
  const auto t0 = std::chrono::steady_clock::now();

  // Device state of the rows in flight.
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  dynamics::Carry carry = dynamics::initial_carry(
      model, dynamics::Batch{all_inputs.slice(0, 0, 1).expand({rows, arch.seq_len}).contiguous(),
                             all_labels.slice(0, 0, 1).expand({rows, arch.seq_len}).contiguous(), at::Tensor()});
  carry.halted = torch::zeros({rows}, torch::TensorOptions().dtype(torch::kBool).device(device));
  at::Tensor prev_logits = torch::zeros({rows, arch.seq_len, arch.vocab_size},
                                        torch::TensorOptions().dtype(torch::kFloat).device(device));
  at::Tensor ring = torch::zeros({rows, w}, torch::TensorOptions().dtype(torch::kFloat).device(device));
  at::Tensor below = torch::zeros({rows}, long_opts);

  std::vector<Slot> slots(static_cast<size_t>(rows));
  std::map<int64_t, Pending> pending;
  int64_t next = 0;

  // Loads the next trajectories of the queue into the given rows.
  const auto load = [&](const std::vector<int64_t>& row_ids) {
    if (row_ids.empty()) return;
    std::vector<int64_t> ps, inits;
    for (int64_t row : row_ids) {
      const int64_t traj = next++;
      ps.push_back(puzzles.id(traj / r));
      inits.push_back(traj % r);
      Slot& s = slots[static_cast<size_t>(row)];
      s = Slot{};
      s.traj = traj;
      s.result.puzzle = traj / r;
      s.result.init = traj % r;
      s.result.at_depth.reserve(n_depths);
    }
    const at::Tensor idx = torch::tensor(row_ids, torch::kLong).to(device);
    std::vector<int64_t> rows_of;
    for (int64_t row : row_ids) rows_of.push_back(slots[static_cast<size_t>(row)].result.puzzle);
    const at::Tensor pidx = torch::tensor(rows_of, torch::kLong).to(device);
    auto [h, l] = trajectory_initial_states(model, options.seed, ps, inits);
    carry.z_h.index_put_({idx}, h.to(carry.z_h.dtype()));
    carry.z_l.index_put_({idx}, l.to(carry.z_l.dtype()));
    carry.data.inputs.index_put_({idx}, all_inputs.index_select(0, pidx));
    carry.data.labels.index_put_({idx}, all_labels.index_select(0, pidx));
    carry.steps.index_put_({idx}, torch::zeros({idx.size(0)}, carry.steps.options()));
    ring.index_put_({idx}, torch::zeros({idx.size(0), w}, ring.options()));
    below.index_put_({idx}, torch::zeros({idx.size(0)}, below.options()));
  };
  {
    std::vector<int64_t> all(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) all[static_cast<size_t>(i)] = i;
    load(all);
  }

  while (!slots.empty()) {
    dynamics::StepOutput out = dynamics::step(model, carry, carry.data, noise);
    carry = std::move(out.carry);
    ++summary.batch_steps;

    const at::Tensor logits = out.logits.to(torch::kFloat);  // (B, S, V)
    const at::Tensor preds = logits.argmax(-1);               // (B, S)
    const at::Tensor labels = carry.data.labels.to(torch::kLong);
    const at::Tensor mask = labels != -100;
    const at::Tensor right = (preds == labels) & mask;
    const at::Tensor n_lab = mask.sum(1);
    const at::Tensor cell = right.sum(1).to(torch::kDouble) / n_lab.clamp_min(1).to(torch::kDouble);
    const at::Tensor exact = (right | ~mask).all(1) & (n_lab > 0);
    const at::Tensor steps = carry.steps.to(torch::kLong);

    // Convergence score: ring of the last W deltas (zeros after a reset), NaN before the second step.
    at::Tensor dn = (logits - prev_logits).norm(2, -1).mean(-1);
    dn = torch::where(steps >= 2, dn, torch::zeros_like(dn));
    ring.scatter_(1, ((steps - 2).clamp_min(0) % w).unsqueeze(1), dn.unsqueeze(1));
    const at::Tensor n_deltas = (steps - 1).clamp(0, w).to(torch::kFloat);
    const at::Tensor score = ring.sum(1) / n_deltas;  // 0/0 = NaN after one step
    prev_logits = logits;

    const at::Tensor q = out.q_halt_logits.to(torch::kFloat);
    const at::Tensor stop = should_stop(options.depth, steps, out.residual, q, below);

    const at::Tensor host = torch::stack({steps.to(torch::kDouble), out.residual.to(torch::kDouble),
                                          exact.to(torch::kDouble), cell, stop.to(torch::kDouble),
                                          q.to(torch::kDouble), score.to(torch::kDouble)})
                                .cpu();
    const auto hv = host.accessor<double, 2>();
    const int64_t b = static_cast<int64_t>(slots.size());

    std::vector<int64_t> snap_rows;
    for (int64_t i = 0; i < b; ++i) {
      Slot& s = slots[static_cast<size_t>(i)];
      const int64_t t = static_cast<int64_t>(hv[0][i]);
      summary.trace.add(static_cast<size_t>(t - 1), hv[1][i], hv[2][i] > 0.5, hv[3][i]);
      if (options.keep_residuals) s.result.residuals.push_back(static_cast<float>(hv[1][i]));
      const bool stops = hv[4][i] > 0.5;
      if (stops || (s.next_depth < n_depths && options.depths[s.next_depth] == t)) snap_rows.push_back(i);
    }
    summary.trajectory_steps += b;
    if (progress) {
      progress->set(summary.trajectory_steps, std::to_string(puzzles_done) + "/" + std::to_string(p_total) + " puzzles");
    }

    std::vector<int64_t> stopped;
    if (!snap_rows.empty()) {
      const at::Tensor sel = torch::tensor(snap_rows, torch::kLong).to(device);
      const at::Tensor grid = preds.index_select(0, sel).to(torch::kUInt8).cpu().contiguous();
      const uint8_t* g = grid.data_ptr<uint8_t>();
      const int64_t s_len = arch.seq_len;
      for (size_t k = 0; k < snap_rows.size(); ++k) {
        const int64_t i = snap_rows[k];
        Slot& s = slots[static_cast<size_t>(i)];
        Snapshot snap;
        snap.prediction.assign(g + static_cast<int64_t>(k) * s_len, g + (static_cast<int64_t>(k) + 1) * s_len);
        snap.steps = static_cast<int64_t>(hv[0][i]);
        snap.residual = hv[1][i];
        snap.exact = hv[2][i] > 0.5;
        snap.cell_accuracy = hv[3][i];
        snap.q_halt = hv[5][i];
        snap.convergence_score = hv[6][i];
        if (hv[4][i] > 0.5) {
          // Stopped: this state is what a run capped at any remaining depth would end with.
          while (s.next_depth < n_depths) {
            s.result.at_depth.push_back(snap);
            ++s.next_depth;
          }
          stopped.push_back(i);
        } else {
          s.result.at_depth.push_back(std::move(snap));
          ++s.next_depth;
        }
      }
    }
    if (stopped.empty()) continue;

    // Finished trajectories go to their puzzle; a puzzle with all R done goes to the caller.
    for (int64_t i : stopped) {
      Slot& s = slots[static_cast<size_t>(i)];
      s.result.steps = static_cast<int64_t>(hv[0][i]);
      const int64_t p = s.result.puzzle, init = s.result.init;
      Pending& pend = pending[p];
      if (pend.result.trajectories.empty()) {
        pend.result.puzzle = p;
        pend.result.trajectories.resize(static_cast<size_t>(r));
      }
      pend.result.trajectories[static_cast<size_t>(init)] = std::move(s.result);
      if (++pend.done == r) {
        PuzzleResult done = std::move(pend.result);
        pending.erase(p);
        on_puzzle(std::move(done));
        ++puzzles_done;
      }
      s.traj = -1;
    }

    // Refill freed rows from the queue; rows left over leave the batch (compaction).
    const int64_t can = std::min<int64_t>(static_cast<int64_t>(stopped.size()), total - next);
    load(std::vector<int64_t>(stopped.begin(), stopped.begin() + can));
    if (can < static_cast<int64_t>(stopped.size())) {
      std::vector<int64_t> keep;
      std::vector<Slot> kept;
      for (int64_t i = 0; i < b; ++i) {
        if (slots[static_cast<size_t>(i)].traj >= 0) {
          keep.push_back(i);
          kept.push_back(std::move(slots[static_cast<size_t>(i)]));
        }
      }
      slots = std::move(kept);
      if (slots.empty()) break;
      const at::Tensor k = torch::tensor(keep, torch::kLong).to(device);
      carry.z_h = carry.z_h.index_select(0, k);
      carry.z_l = carry.z_l.index_select(0, k);
      carry.steps = carry.steps.index_select(0, k);
      carry.halted = carry.halted.index_select(0, k);
      carry.data.inputs = carry.data.inputs.index_select(0, k);
      carry.data.labels = carry.data.labels.index_select(0, k);
      if (carry.data.puzzle_identifiers.defined()) {
        carry.data.puzzle_identifiers = carry.data.puzzle_identifiers.index_select(0, k);
      }
      prev_logits = prev_logits.index_select(0, k);
      ring = ring.index_select(0, k);
      below = below.index_select(0, k);
    }
  }
  EQR_CHECK(pending.empty(), RuntimeError, "eval runner: ", pending.size(), " puzzles unfinished at the end");
  summary.wall_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) progress->finish(std::to_string(puzzles_done) + "/" + std::to_string(p_total) + " puzzles");
  return summary;
}

std::vector<PuzzleResult> run_all(model::EqrModel& model, const PuzzleSet& puzzles, const RunnerOptions& options,
                                  RunSummary* summary) {
  std::vector<PuzzleResult> out(static_cast<size_t>(puzzles.size()));
  RunSummary s = run(model, puzzles, options, [&](PuzzleResult&& res) {
    out[static_cast<size_t>(res.puzzle)] = std::move(res);
  });
  if (summary) *summary = std::move(s);
  return out;
}

}  // namespace eqr::infer
