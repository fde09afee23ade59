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
#include "eqr/dynamics/score.h"
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

/// The device values of one step that the reads need.
struct StepValues {
  dynamics::StepOutput out;
  at::Tensor preds;      ///< (B, S) int64 decoded answer
  at::Tensor exact;      ///< (B) bool
  at::Tensor cell;       ///< (B) float64
  at::Tensor score;      ///< (B) float32 convergence score (NaN after one step)
  at::Tensor unchanged;  ///< (B) bool answer unchanged since the previous step (adaptive with answer_patience)
  at::Tensor q;          ///< (B) float32 q_halt logit
  at::Tensor steps;      ///< (B) int64 steps taken
};

/// One call of infer::run as named phases: load (refill rows from the queue), advance (one step and its
/// scores), read (fixed or adaptive: the rows read on the host now), record (snapshots; which rows stop), hand
/// over (finished trajectories to their puzzle, finished puzzles to the caller), compact (rows without work
/// leave the batch).
class Runner {
 public:
  Runner(model::EqrModel& model, const PuzzleSet& puzzles, const RunnerOptions& options,
         const std::function<void(PuzzleResult&&)>& on_puzzle)
      : model_(model),
        puzzles_(puzzles),
        options_(options),
        on_puzzle_(on_puzzle),
        arch_(model->arch()),
        device_(model->device()),
        p_total_(puzzles.size()),
        r_(options.breadth),
        w_(options.convergence_window),
        n_depths_(options.depths.size()),
        fixed_(options.depth.kind == SchedulerKind::kFixed),
        max_depth_(options.depth.max_depth),
        long_opts_(torch::TensorOptions().dtype(torch::kLong).device(device_)) {
    check_inputs();
  }

  RunSummary run() {
    setup();
    while (!slots_.empty()) {
      if (options_.should_abort && options_.should_abort()) {
        summary_.interrupted = true;
        break;
      }
      const StepValues v = advance();
      std::vector<RowRead> reads = fixed_ ? read_fixed(v) : read_adaptive(v);
      if (progress_) {
        progress_->set(summary_.trajectory_steps,
                       std::to_string(puzzles_done_) + "/" + std::to_string(p_total_) + " puzzles");
      }
      if (options_.on_step) options_.on_step(summary_.batch_steps);
      const std::vector<int64_t> stopped = record(reads);
      if (stopped.empty()) continue;
      hand_over(stopped);
      if (!refill(stopped)) break;
    }
    EQR_CHECK(summary_.interrupted || pending_.empty(), RuntimeError, "eval runner: ", pending_.size(),
              " puzzles unfinished at the end");
    summary_.wall_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    if (progress_) progress_->finish(std::to_string(puzzles_done_) + "/" + std::to_string(p_total_) + " puzzles");
    return std::move(summary_);
  }

 private:
  void check_inputs() const {
    EQR_CHECK(p_total_ > 0, DataError, "eval: no puzzles in ", puzzles_.origin);
    EQR_CHECK(puzzles_.inputs.dim() == 2 && puzzles_.inputs.size(1) == arch_.seq_len, DataError, "eval: puzzles of ",
              puzzles_.origin, " have shape ", puzzles_.inputs.sizes(), ", the model expects (P, ", arch_.seq_len,
              ") (arch.seq_len); is the board size right?");
    EQR_CHECK(!puzzles_.labels.defined() || puzzles_.labels.sizes() == puzzles_.inputs.sizes(), DataError,
              "eval: labels ", puzzles_.labels.sizes(), " vs inputs ", puzzles_.inputs.sizes());
    const int64_t max_id = puzzles_.inputs.max().item<int64_t>();
    EQR_CHECK(max_id < arch_.vocab_size && puzzles_.inputs.min().item<int64_t>() >= 0, DataError, "eval: token id ",
              max_id, " in ", puzzles_.origin, " is outside the model's vocabulary [0, ", arch_.vocab_size, ")");
  }

  /// The puzzles on the device, the rows in flight, and the first load of every row.
  void setup() {
    all_inputs_ = puzzles_.inputs.to(device_, torch::kInt);
    all_labels_ = puzzles_.labels.defined() ? puzzles_.labels.to(device_, torch::kInt)
                                            : torch::full_like(all_inputs_, data::kIgnoreLabelId);
    total_ = p_total_ * r_;
    const int64_t rows = std::min(options_.batch_puzzles * r_, total_);
    noise_ = model::make_generator(device_, derive_seed(options_.seed, stream_id("noise")));
    summary_.puzzles = p_total_;
    summary_.trajectories = total_;
    // Progress counts trajectory-steps (puzzles only finish at the end of a fixed-depth batch); the total is
    // the fixed-scheduler work, an upper bound for the adaptive one.
    if (options_.show_progress) {
      progress_ = std::make_unique<Progress>("eval", total_ * options_.depth.max_depth, "steps");
    }
    t0_ = std::chrono::steady_clock::now();

    // Device state of the rows in flight.
    const int64_t s = arch_.seq_len;
    carry_ = dynamics::initial_carry(
        model_, dynamics::Batch{all_inputs_.slice(0, 0, 1).expand({rows, s}).contiguous(),
                                all_labels_.slice(0, 0, 1).expand({rows, s}).contiguous(), at::Tensor()});
    carry_.halted = torch::zeros({rows}, torch::TensorOptions().dtype(torch::kBool).device(device_));
    prev_logits_ = torch::zeros({rows, s, arch_.vocab_size}, torch::TensorOptions().dtype(torch::kFloat).device(device_));
    // The previous step's decoded answer per row (the answer_patience rule compares against it).
    prev_preds_ = torch::zeros({rows, s}, long_opts_);
    ring_ = torch::zeros({rows, w_}, torch::TensorOptions().dtype(torch::kFloat).device(device_));
    counters_ = StopCounters{torch::zeros({rows}, long_opts_), torch::zeros({rows}, long_opts_)};
    // Fixed scheduler: every row of a batch starts together and stops at max_depth, so the host knows the
    // step count t of all rows and which steps need a read (a requested depth, or the stop). Per-step values
    // for the trace and keep_residuals stay on the device until the stop: hist (3, B, T) float64 holds each
    // row's residual, exact flag and cell accuracy after step t in column t-1.
    if (fixed_) hist_ = torch::zeros({3, rows, max_depth_}, torch::TensorOptions().dtype(torch::kDouble).device(device_));
    slots_.resize(static_cast<size_t>(rows));
    std::vector<int64_t> all(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) all[static_cast<size_t>(i)] = i;
    load(all);
  }

  /// A device -> host copy in the step loop (it waits for the queued steps): counted in host_syncs.
  at::Tensor to_host(const at::Tensor& t) {
    ++summary_.host_syncs;
    return t.cpu();
  }

  /// Loads the next trajectories of the queue into the given rows. Rows 0..n-1 (always so under the fixed
  /// scheduler) are written through slices; other row sets upload an index (a host -> device copy).
  void load(const std::vector<int64_t>& row_ids) {
    if (row_ids.empty()) return;
    const int64_t n = static_cast<int64_t>(row_ids.size()), first = next_;
    std::vector<int64_t> ps, inits;
    for (int64_t row : row_ids) {
      const int64_t traj = next_++;
      ps.push_back(puzzles_.id(traj / r_));
      inits.push_back(traj % r_);
      Slot& s = slots_[static_cast<size_t>(row)];
      s = Slot{};
      s.traj = traj;
      s.result.puzzle = traj / r_;
      s.result.init = traj % r_;
      s.result.at_depth.reserve(n_depths_);
    }
    // Trajectories first..first+n-1 of the queue belong to puzzles (first+k) / r.
    const at::Tensor pidx = torch::div(torch::arange(first, first + n, long_opts_), r_, "floor");
    auto [h, l] = trajectory_initial_states(model_, options_.seed, ps, inits);
    const at::Tensor idx = is_prefix(row_ids) ? at::Tensor() : torch::tensor(row_ids, torch::kLong).to(device_);
    const auto put = [&](at::Tensor& dst, const at::Tensor& src) {
      if (idx.defined()) {
        dst.index_put_({idx}, src);
      } else {
        dst.narrow(0, 0, n).copy_(src);
      }
    };
    put(carry_.z_h, h.to(carry_.z_h.dtype()));
    put(carry_.z_l, l.to(carry_.z_l.dtype()));
    put(carry_.data.inputs, all_inputs_.index_select(0, pidx));
    put(carry_.data.labels, all_labels_.index_select(0, pidx));
    put(carry_.steps, torch::zeros({n}, carry_.steps.options()));
    put(ring_, torch::zeros({n, w_}, ring_.options()));
    put(counters_.below, torch::zeros({n}, long_opts_));
    put(counters_.stable, torch::zeros({n}, long_opts_));
  }

  /// One step of every row in flight, scored; the convergence ring and the answer memory updated.
  StepValues advance() {
    // The runner loads every row itself: no row is ever halted inside step() (no nonzero() sync).
    dynamics::StepOptions step_options;
    step_options.resets = dynamics::Resets::kNone;
    StepValues v;
    v.out = dynamics::step(model_, carry_, carry_.data, noise_, step_options);
    carry_ = v.out.carry;
    ++summary_.batch_steps;

    const at::Tensor logits = v.out.logits.to(torch::kFloat);  // (B, S, V)
    v.preds = logits.argmax(-1);                                // (B, S)
    const dynamics::RowScore scored = dynamics::score_rows(v.preds, carry_.data.labels);
    v.cell = scored.cell_accuracy(torch::kDouble);
    v.exact = scored.exact() & (scored.scored > 0);
    v.steps = carry_.steps.to(torch::kLong);

    // Convergence score: ring of the last W deltas (zeros after a reset), NaN before the second step.
    at::Tensor dn = (logits - prev_logits_).norm(2, -1).mean(-1);
    dn = torch::where(v.steps >= 2, dn, torch::zeros_like(dn));
    ring_.scatter_(1, ((v.steps - 2).clamp_min(0) % w_).unsqueeze(1), dn.unsqueeze(1));
    const at::Tensor n_deltas = (v.steps - 1).clamp(0, w_).to(torch::kFloat);
    v.score = ring_.sum(1) / n_deltas;  // 0/0 = NaN after one step
    // The decoded answer is unchanged since the previous step (never at a row's first step).
    if (!fixed_ && options_.depth.answer_patience > 0) {
      v.unchanged = (v.preds == prev_preds_).all(1) & (v.steps >= 2);
      prev_preds_ = v.preds;
    }
    prev_logits_ = logits;
    v.q = v.out.q_halt_logits.to(torch::kFloat);
    return v;
  }

  /// Fixed scheduler: no copy unless this step is a requested depth or the stop (one copy per such event).
  std::vector<RowRead> read_fixed(const StepValues& v) {
    const int64_t b = static_cast<int64_t>(slots_.size()), s_len = arch_.seq_len;
    std::vector<RowRead> reads;
    ++batch_t_;
    hist_.narrow(1, 0, b).select(2, batch_t_ - 1).copy_(
        torch::stack({v.out.residual.to(torch::kDouble), v.exact.to(torch::kDouble), v.cell}));
    summary_.trajectory_steps += b;
    const bool stops = batch_t_ >= max_depth_;
    if (!stops && !std::binary_search(options_.depths.begin(), options_.depths.end(), batch_t_)) return reads;
    // Per row: prediction (S), residual, exact, cell, q_halt, score, and at the stop the T columns of each hist
    // plane: (B, S + 5 [+ 3T]) float64 (token ids and flags are exact in float64).
    std::vector<at::Tensor> parts = {
        v.preds.to(torch::kDouble),
        torch::stack({v.out.residual.to(torch::kDouble), v.exact.to(torch::kDouble), v.cell,
                      v.q.to(torch::kDouble), v.score.to(torch::kDouble)},
                     1)};
    if (stops) parts.push_back(hist_.narrow(1, 0, b).permute({1, 0, 2}).reshape({b, 3 * max_depth_}));
    const at::Tensor host = to_host(torch::cat(parts, 1));
    const auto hv = host.accessor<double, 2>();
    for (int64_t i = 0; i < b; ++i) {
      RowRead rd;
      rd.row = i;
      rd.stops = stops;
      rd.snap.prediction.resize(static_cast<size_t>(s_len));
      for (int64_t j = 0; j < s_len; ++j) rd.snap.prediction[static_cast<size_t>(j)] = static_cast<uint8_t>(hv[i][j]);
      rd.snap.steps = batch_t_;
      rd.snap.residual = hv[i][s_len];
      rd.snap.exact = hv[i][s_len + 1] > 0.5;
      rd.snap.cell_accuracy = hv[i][s_len + 2];
      rd.snap.q_halt = hv[i][s_len + 3];
      rd.snap.convergence_score = hv[i][s_len + 4];
      reads.push_back(std::move(rd));
      if (!stops) continue;
      // Steps 1..T of this row, in the order (step-major per row) the per-step reads added them.
      const int64_t base = s_len + 5;
      Slot& sl = slots_[static_cast<size_t>(i)];
      for (int64_t t = 0; t < max_depth_; ++t) {
        const double res = hv[i][base + t];
        summary_.trace.add(static_cast<size_t>(t), res, hv[i][base + max_depth_ + t] > 0.5,
                           hv[i][base + 2 * max_depth_ + t]);
        if (options_.keep_residuals) sl.result.residuals.push_back(static_cast<float>(res));
      }
    }
    if (stops) batch_t_ = 0;  // every row stops; the next batch starts at step 0
    return reads;
  }

  /// Adaptive scheduler: the stop decision is needed on the host after every step (one copy per step, plus one
  /// for the predictions of the rows read).
  std::vector<RowRead> read_adaptive(const StepValues& v) {
    const int64_t b = static_cast<int64_t>(slots_.size()), s_len = arch_.seq_len;
    std::vector<RowRead> reads;
    const at::Tensor stop = should_stop(options_.depth, v.steps, v.out.residual, v.q, v.unchanged, counters_);
    const at::Tensor host = to_host(torch::stack({v.steps.to(torch::kDouble), v.out.residual.to(torch::kDouble),
                                                  v.exact.to(torch::kDouble), v.cell, stop.to(torch::kDouble),
                                                  v.q.to(torch::kDouble), v.score.to(torch::kDouble)}));
    const auto hv = host.accessor<double, 2>();
    std::vector<int64_t> snap_rows;
    for (int64_t i = 0; i < b; ++i) {
      Slot& sl = slots_[static_cast<size_t>(i)];
      const int64_t t = static_cast<int64_t>(hv[0][i]);
      summary_.trace.add(static_cast<size_t>(t - 1), hv[1][i], hv[2][i] > 0.5, hv[3][i]);
      if (options_.keep_residuals) sl.result.residuals.push_back(static_cast<float>(hv[1][i]));
      const bool stops = hv[4][i] > 0.5;
      if (stops || (sl.next_depth < n_depths_ && options_.depths[sl.next_depth] == t)) snap_rows.push_back(i);
    }
    summary_.trajectory_steps += b;
    if (snap_rows.empty()) return reads;
    const at::Tensor sel = torch::tensor(snap_rows, torch::kLong).to(device_);
    const at::Tensor grid = to_host(v.preds.index_select(0, sel).to(torch::kUInt8)).contiguous();
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
    return reads;
  }

  /// Snapshots of the rows read; returns the rows that stopped.
  std::vector<int64_t> record(std::vector<RowRead>& reads) {
    std::vector<int64_t> stopped;
    for (RowRead& rd : reads) {
      Slot& sl = slots_[static_cast<size_t>(rd.row)];
      if (rd.stops) {
        // Stopped: this state is what a run capped at any remaining depth would end with.
        while (sl.next_depth < n_depths_) {
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
    return stopped;
  }

  /// Finished trajectories go to their puzzle; a puzzle with all R done goes to the caller.
  void hand_over(const std::vector<int64_t>& stopped) {
    for (int64_t i : stopped) {
      Slot& s = slots_[static_cast<size_t>(i)];
      const int64_t p = s.result.puzzle, init = s.result.init;
      Pending& pend = pending_[p];
      if (pend.result.trajectories.empty()) {
        pend.result.puzzle = p;
        pend.result.trajectories.resize(static_cast<size_t>(r_));
      }
      pend.result.trajectories[static_cast<size_t>(init)] = std::move(s.result);
      if (++pend.done == r_) {
        PuzzleResult done = std::move(pend.result);
        pending_.erase(p);
        on_puzzle_(std::move(done));
        ++puzzles_done_;
      }
      s.traj = -1;
    }
  }

  /// Refills freed rows from the queue; rows left over leave the batch (compaction). False when no row is left.
  bool refill(const std::vector<int64_t>& stopped) {
    const int64_t can = std::min<int64_t>(static_cast<int64_t>(stopped.size()), total_ - next_);
    load(std::vector<int64_t>(stopped.begin(), stopped.begin() + can));
    if (can == static_cast<int64_t>(stopped.size())) return true;
    return compact();
  }

  /// Keeps the rows that still hold a trajectory. Kept rows 0..k-1 (always so under the fixed scheduler) are
  /// a slice; others upload an index.
  bool compact() {
    const int64_t b = static_cast<int64_t>(slots_.size());
    std::vector<int64_t> keep;
    std::vector<Slot> kept;
    for (int64_t i = 0; i < b; ++i) {
      if (slots_[static_cast<size_t>(i)].traj >= 0) {
        keep.push_back(i);
        kept.push_back(std::move(slots_[static_cast<size_t>(i)]));
      }
    }
    slots_ = std::move(kept);
    if (slots_.empty()) return false;
    const int64_t n_keep = static_cast<int64_t>(keep.size());
    const at::Tensor k = is_prefix(keep) ? at::Tensor() : torch::tensor(keep, torch::kLong).to(device_);
    const auto take = [&](const at::Tensor& t) { return k.defined() ? t.index_select(0, k) : t.narrow(0, 0, n_keep); };
    carry_.z_h = take(carry_.z_h);
    carry_.z_l = take(carry_.z_l);
    carry_.steps = take(carry_.steps);
    carry_.halted = take(carry_.halted);
    carry_.data.inputs = take(carry_.data.inputs);
    carry_.data.labels = take(carry_.data.labels);
    if (carry_.data.puzzle_identifiers.defined()) carry_.data.puzzle_identifiers = take(carry_.data.puzzle_identifiers);
    prev_logits_ = take(prev_logits_);
    prev_preds_ = take(prev_preds_);
    ring_ = take(ring_);
    counters_.below = take(counters_.below);
    counters_.stable = take(counters_.stable);
    return true;
  }

  model::EqrModel& model_;
  const PuzzleSet& puzzles_;
  const RunnerOptions& options_;
  const std::function<void(PuzzleResult&&)>& on_puzzle_;
  const config::ArchConfig& arch_;
  const c10::Device device_;
  const int64_t p_total_, r_, w_;
  const size_t n_depths_;
  const bool fixed_;
  const int64_t max_depth_;
  const torch::TensorOptions long_opts_;

  at::Tensor all_inputs_, all_labels_;
  int64_t total_ = 0;
  at::Generator noise_;
  RunSummary summary_;
  std::unique_ptr<Progress> progress_;
  int64_t puzzles_done_ = 0;
  std::chrono::steady_clock::time_point t0_;
  dynamics::Carry carry_;
  at::Tensor prev_logits_, prev_preds_, ring_, hist_;
  StopCounters counters_;
  int64_t batch_t_ = 0;  // fixed: steps taken by every row of the current batch
  std::vector<Slot> slots_;
  std::map<int64_t, Pending> pending_;
  int64_t next_ = 0;  // the next trajectory of the queue
};

}  // namespace

RunSummary run(model::EqrModel& model, const PuzzleSet& puzzles, RunnerOptions options,
               const std::function<void(PuzzleResult&&)>& on_puzzle) {
  options.normalise();
  torch::NoGradGuard no_grad;
  const model::EvalModeGuard eval_mode(model);
  return Runner(model, puzzles, options, on_puzzle).run();
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
