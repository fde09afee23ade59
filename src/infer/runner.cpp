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
#include "eqr/dynamics/step.h"
#include "eqr/infer/breadth.h"
#include "eqr/model/init.h"

namespace eqr::infer {

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

/// A row read on the host after a step: its snapshot, and whether it stops now.
struct RowRead {
  int64_t row = 0;
  bool stops = false;
  Snapshot snap;
};

/// True when ids == {0, 1, ..., n-1}: the rows are a prefix and a slice serves (no index upload).
bool is_prefix(const std::vector<int64_t>& ids) {
  for (size_t k = 0; k < ids.size(); ++k) {
    if (ids[k] != static_cast<int64_t>(k)) return false;
  }
  return true;
}

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
  // The previous step's decoded answer per row (the answer_patience rule compares against it).
  at::Tensor prev_preds = torch::zeros({rows, arch.seq_len}, long_opts);
  at::Tensor ring = torch::zeros({rows, w}, torch::TensorOptions().dtype(torch::kFloat).device(device));
  StopCounters counters{torch::zeros({rows}, long_opts), torch::zeros({rows}, long_opts)};
  // Fixed scheduler: every row of a batch starts together and stops at max_depth, so the host knows the
  // step count t of all rows and which steps need a read (a requested depth, or the stop). Per-step values
  // for the trace and keep_residuals stay on the device until the stop: hist (3, B, T) float64 holds each
  // row's residual, exact flag and cell accuracy after step t in column t-1.
  const bool fixed = options.depth.kind == SchedulerKind::kFixed;
  const int64_t max_depth = options.depth.max_depth;
  at::Tensor hist;
  if (fixed) hist = torch::zeros({3, rows, max_depth}, torch::TensorOptions().dtype(torch::kDouble).device(device));
  int64_t batch_t = 0;  // fixed: steps taken by every row of the current batch
  // Device -> host copies in the step loop (each waits for the queued steps): counted in host_syncs.
  const auto to_host = [&](const at::Tensor& t) {
    ++summary.host_syncs;
    return t.cpu();
  };

  std::vector<Slot> slots(static_cast<size_t>(rows));
  std::map<int64_t, Pending> pending;
  int64_t next = 0;

  // Loads the next trajectories of the queue into the given rows. Rows 0..n-1 (always so under the fixed
  // scheduler) are written through slices; other row sets upload an index (a host -> device copy).
  const auto load = [&](const std::vector<int64_t>& row_ids) {
    if (row_ids.empty()) return;
    const int64_t n = static_cast<int64_t>(row_ids.size()), first = next;
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
    // Trajectories first..first+n-1 of the queue belong to puzzles (first+k) / r.
    const at::Tensor pidx = torch::div(torch::arange(first, first + n, long_opts), r, "floor");
    auto [h, l] = trajectory_initial_states(model, options.seed, ps, inits);
    const at::Tensor idx = is_prefix(row_ids) ? at::Tensor() : torch::tensor(row_ids, torch::kLong).to(device);
    const auto put = [&](at::Tensor& dst, const at::Tensor& src) {
      if (idx.defined()) {
        dst.index_put_({idx}, src);
      } else {
        dst.narrow(0, 0, n).copy_(src);
      }
    };
    put(carry.z_h, h.to(carry.z_h.dtype()));
    put(carry.z_l, l.to(carry.z_l.dtype()));
    put(carry.data.inputs, all_inputs.index_select(0, pidx));
    put(carry.data.labels, all_labels.index_select(0, pidx));
    put(carry.steps, torch::zeros({n}, carry.steps.options()));
    put(ring, torch::zeros({n, w}, ring.options()));
    put(counters.below, torch::zeros({n}, long_opts));
    put(counters.stable, torch::zeros({n}, long_opts));
  };
  {
    std::vector<int64_t> all(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) all[static_cast<size_t>(i)] = i;
    load(all);
  }

  // The runner loads every row itself: no row is ever halted inside step() (no nonzero() sync).
  dynamics::StepOptions step_options;
  step_options.resets = dynamics::Resets::kNone;
  while (!slots.empty()) {
    dynamics::StepOutput out = dynamics::step(model, carry, carry.data, noise, step_options);
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
    // The decoded answer is unchanged since the previous step (never at a row's first step).
    at::Tensor unchanged;
    if (!fixed && options.depth.answer_patience > 0) {
      unchanged = (preds == prev_preds).all(1) & (steps >= 2);
      prev_preds = preds;
    }
    prev_logits = logits;

    const at::Tensor q = out.q_halt_logits.to(torch::kFloat);
    const int64_t b = static_cast<int64_t>(slots.size());
    const int64_t s_len = arch.seq_len;

    // The rows read now (a requested depth or a stop), as host values.
    std::vector<RowRead> reads;
    if (fixed) {
      // No copy unless this step is a requested depth or the stop: one copy per such event.
      ++batch_t;
      hist.narrow(1, 0, b).select(2, batch_t - 1).copy_(
          torch::stack({out.residual.to(torch::kDouble), exact.to(torch::kDouble), cell}));
      summary.trajectory_steps += b;
      const bool stops = batch_t >= max_depth;
      if (stops || std::binary_search(options.depths.begin(), options.depths.end(), batch_t)) {
        // Per row: prediction (S), residual, exact, cell, q_halt, score, and at the stop the T columns of
        // each hist plane: (B, S + 5 [+ 3T]) float64 (token ids and flags are exact in float64).
        std::vector<at::Tensor> parts = {
            preds.to(torch::kDouble),
            torch::stack({out.residual.to(torch::kDouble), exact.to(torch::kDouble), cell, q.to(torch::kDouble),
                          score.to(torch::kDouble)},
                         1)};
        if (stops) parts.push_back(hist.narrow(1, 0, b).permute({1, 0, 2}).reshape({b, 3 * max_depth}));
        const at::Tensor host = to_host(torch::cat(parts, 1));
        const auto hv = host.accessor<double, 2>();
        for (int64_t i = 0; i < b; ++i) {
          RowRead rd;
          rd.row = i;
          rd.stops = stops;
          rd.snap.prediction.resize(static_cast<size_t>(s_len));
          for (int64_t j = 0; j < s_len; ++j) rd.snap.prediction[static_cast<size_t>(j)] = static_cast<uint8_t>(hv[i][j]);
          rd.snap.steps = batch_t;
          rd.snap.residual = hv[i][s_len];
          rd.snap.exact = hv[i][s_len + 1] > 0.5;
          rd.snap.cell_accuracy = hv[i][s_len + 2];
          rd.snap.q_halt = hv[i][s_len + 3];
          rd.snap.convergence_score = hv[i][s_len + 4];
          reads.push_back(std::move(rd));
          if (!stops) continue;
          // Steps 1..T of this row, in the order (step-major per row) the per-step reads added them.
          const int64_t base = s_len + 5;
          Slot& sl = slots[static_cast<size_t>(i)];
          for (int64_t t = 0; t < max_depth; ++t) {
            const double res = hv[i][base + t];
            summary.trace.add(static_cast<size_t>(t), res, hv[i][base + max_depth + t] > 0.5,
                              hv[i][base + 2 * max_depth + t]);
            if (options.keep_residuals) sl.result.residuals.push_back(static_cast<float>(res));
          }
        }
        if (stops) batch_t = 0;  // every row stops; the next batch starts at step 0
      }
    } else {
      // Adaptive: the stop decision is needed on the host after every step (one copy per step, plus one
      // for the predictions of the rows read).
      const at::Tensor stop = should_stop(options.depth, steps, out.residual, q, unchanged, counters);
      const at::Tensor host = to_host(torch::stack({steps.to(torch::kDouble), out.residual.to(torch::kDouble),
                                                    exact.to(torch::kDouble), cell, stop.to(torch::kDouble),
                                                    q.to(torch::kDouble), score.to(torch::kDouble)}));
      const auto hv = host.accessor<double, 2>();
      std::vector<int64_t> snap_rows;
      for (int64_t i = 0; i < b; ++i) {
        Slot& sl = slots[static_cast<size_t>(i)];
        const int64_t t = static_cast<int64_t>(hv[0][i]);
        summary.trace.add(static_cast<size_t>(t - 1), hv[1][i], hv[2][i] > 0.5, hv[3][i]);
        if (options.keep_residuals) sl.result.residuals.push_back(static_cast<float>(hv[1][i]));
        const bool stops = hv[4][i] > 0.5;
        if (stops || (sl.next_depth < n_depths && options.depths[sl.next_depth] == t)) snap_rows.push_back(i);
      }
      summary.trajectory_steps += b;
      if (!snap_rows.empty()) {
        const at::Tensor sel = torch::tensor(snap_rows, torch::kLong).to(device);
        const at::Tensor grid = to_host(preds.index_select(0, sel).to(torch::kUInt8)).contiguous();
        const uint8_t* g = grid.data_ptr<uint8_t>();
        for (size_t k = 0; k < snap_rows.size(); ++k) {
          const int64_t i = snap_rows[k];
          RowRead rd;
          rd.row = i;
          rd.stops = hv[4][i] > 0.5;
          rd.snap.prediction.assign(g + static_cast<int64_t>(k) * s_len, g + (static_cast<int64_t>(k) + 1) * s_len);
          rd.snap.steps = static_cast<int64_t>(hv[0][i]);
          rd.snap.residual = hv[1][i];
          rd.snap.exact = hv[2][i] > 0.5;
          rd.snap.cell_accuracy = hv[3][i];
          rd.snap.q_halt = hv[5][i];
          rd.snap.convergence_score = hv[6][i];
          reads.push_back(std::move(rd));
        }
      }
    }
    if (progress) {
      progress->set(summary.trajectory_steps, std::to_string(puzzles_done) + "/" + std::to_string(p_total) + " puzzles");
    }
    if (options.on_step) options.on_step(summary.batch_steps);

    std::vector<int64_t> stopped;
    for (RowRead& rd : reads) {
      Slot& sl = slots[static_cast<size_t>(rd.row)];
      if (rd.stops) {
        // Stopped: this state is what a run capped at any remaining depth would end with.
        while (sl.next_depth < n_depths) {
          sl.result.at_depth.push_back(rd.snap);
          ++sl.next_depth;
        }
        sl.result.steps = rd.snap.steps;
        stopped.push_back(rd.row);
      } else {
        sl.result.at_depth.push_back(std::move(rd.snap));
        ++sl.next_depth;
      }
    }
    if (stopped.empty()) continue;

    // Finished trajectories go to their puzzle; a puzzle with all R done goes to the caller.
    for (int64_t i : stopped) {
      Slot& s = slots[static_cast<size_t>(i)];
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
      // Kept rows 0..k-1 (always so under the fixed scheduler) are a slice; others upload an index.
      const int64_t n_keep = static_cast<int64_t>(keep.size());
      const at::Tensor k = is_prefix(keep) ? at::Tensor() : torch::tensor(keep, torch::kLong).to(device);
      const auto take = [&](const at::Tensor& t) { return k.defined() ? t.index_select(0, k) : t.narrow(0, 0, n_keep); };
      carry.z_h = take(carry.z_h);
      carry.z_l = take(carry.z_l);
      carry.steps = take(carry.steps);
      carry.halted = take(carry.halted);
      carry.data.inputs = take(carry.data.inputs);
      carry.data.labels = take(carry.data.labels);
      if (carry.data.puzzle_identifiers.defined()) carry.data.puzzle_identifiers = take(carry.data.puzzle_identifiers);
      prev_logits = take(prev_logits);
      prev_preds = take(prev_preds);
      ring = take(ring);
      counters.below = take(counters.below);
      counters.stable = take(counters.stable);
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
