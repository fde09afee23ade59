#pragma once
// The inference runner: drives dynamics::step over a set of puzzles with a depth scheduler (depth.h) and
// the breadth sampler (breadth.h), and hands back, per puzzle, what each of its R trajectories predicted at
// each requested depth. Scoring the results (aggregators, metrics, reports) is eval/'s job.
//
// Shape legend: P puzzles, R breadth, B rows in flight (<= batch_puzzles * R), S cells, V vocab, W window.
//
// Cost model: one run serves a whole depth x breadth grid.
//   - Depths are prefixes of one trajectory: a trajectory run to max(depths) is read at every requested
//     depth d on the way (fixed scheduler: its prediction after exactly d steps; adaptive: after
//     min(d, its stopping step) steps, which is what a run capped at d would have produced).
//   - Breadths are prefixes of the R = max(breadths) trajectories: breadth R' uses inits 0..R'-1, which
//     start exactly where a breadth-R' run would (per-trajectory seeds, breadth.h).
//
// Work queue: trajectories in repeat_interleave order (puzzle 0 init 0..R-1, puzzle 1 ...). The batch holds
// up to batch_puzzles * R of them. When a trajectory stops, its row takes the next trajectory of the queue
// (fresh initial state, steps 0), and once the queue is empty finished rows leave the batch (compaction),
// so the batch shrinks instead of carrying padding. With the fixed scheduler all rows of a batch stop
// together, so this is the reference's batch-by-batch evaluation; with the adaptive one, work per puzzle
// follows its difficulty. Every row is reset by the runner (not by step()): the carry handed to
// dynamics::step never has halted rows. The residual of a row's first step is therefore measured from its
// initial state (the reference measures it from the previous batch's state: meaningless).
// Path noise comes from one generator seeded derive_seed(seed, "noise"), drawn per step over the whole
// batch, so with noise on a trajectory's path depends on its batch neighbours; with arch.noise_scale = 0
// every trajectory is a function of (weights, puzzle, seed, init index) alone.
// Runs under torch::NoGradGuard with the model in eval mode (restored afterwards).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "eqr/infer/aggregate.h"
#include "eqr/infer/depth.h"
#include "eqr/model/eqr_model.h"
#include "eqr/task/task.h"

namespace eqr::infer {

/// Puzzles to solve: a task's examples (task.h; made by a Task's read_file / parse_puzzles / generate or
/// task::puzzles_from_split). The runner uses only inputs, labels and ids; the task verifies and prints.
using PuzzleSet = task::PuzzleSet;

struct RunnerOptions {
  /// Depths at which every trajectory is read (ascending after normalise(); the last is the cap).
  std::vector<int64_t> depths = {16};
  /// Trajectories per puzzle R (the largest breadth of a sweep).
  int64_t breadth = 1;
  /// Scheduler; max_depth is set to the largest depth by normalise().
  DepthOptions depth;
  /// Logit deltas averaged by the convergence score (reference default 3).
  int64_t convergence_window = 3;
  /// Puzzles per batch; the batch holds batch_puzzles * breadth rows.
  int64_t batch_puzzles = 768;
  /// Run seed: initial states (per trajectory) and path noise.
  uint64_t seed = 0;
  /// Keep every trajectory's per-step residuals in the results.
  bool keep_residuals = true;
  /// Progress line on stderr (terminal: live; pipe: every 10 s).
  bool show_progress = false;
  /// Called after every batch step (RunSummary::batch_steps so far), once the step's host reads are done
  /// and before finished rows are handed over and refilled (for `eqr bench eval`'s per-step timing).
  std::function<void(int64_t batch_step)> on_step;
  /// Checked before every batch step: true stops the run there (RunSummary::interrupted; puzzles not finished
  /// are not handed over). The trainer's evaluation passes its stop request (SIGINT/SIGTERM) here.
  std::function<bool()> should_abort;

  /// Sorts and deduplicates depths, sets depth.max_depth; ConfigError for empty/non-positive values.
  void normalise();
};

/// A trajectory read at one depth.
struct Snapshot {
  Prediction prediction;          ///< argmax token ids (S)
  bool exact = false;             ///< every labelled cell right (false without labels)
  double cell_accuracy = 0.0;     ///< share of labelled cells right (0 without labels)
  double q_halt = 0.0;            ///< q_halt logit
  double convergence_score = 0.0; ///< aggregate.h definition; NaN after a single step
  double residual = 0.0;          ///< residual of the last step taken
  int64_t steps = 0;              ///< supervision steps taken (= depth, or the adaptive stop if earlier)
};

/// One trajectory.
struct TrajectoryResult {
  int64_t puzzle = 0;
  int64_t init = 0;
  std::vector<Snapshot> at_depth;  ///< one per RunnerOptions::depths, same order
  std::vector<float> residuals;    ///< residual after each step taken (keep_residuals)
  int64_t steps = 0;               ///< steps taken in total
};

/// All R trajectories of one puzzle (trajectories[r].init == r).
struct PuzzleResult {
  int64_t puzzle = 0;
  std::vector<TrajectoryResult> trajectories;
};

/// Means over trajectories at every step t = 1..T (index t-1), over the trajectories still running then.
struct StepTrace {
  std::vector<int64_t> rows;          ///< trajectories that took step t
  std::vector<double> residual_sum;   ///< sum of their residuals
  std::vector<double> exact_sum;      ///< sum of exact-correct flags
  std::vector<double> cell_sum;       ///< sum of cell accuracies
  void add(size_t t, double residual, bool exact, double cell);
};

/// What a run did overall.
struct RunSummary {
  StepTrace trace;
  int64_t puzzles = 0;
  int64_t trajectories = 0;
  int64_t trajectory_steps = 0;  ///< supervision steps summed over trajectories (the work done)
  int64_t batch_steps = 0;       ///< calls of dynamics::step
  /// Device -> host copies made by the step loop (each waits for the device to finish the queued steps;
  /// setup checks excluded). Fixed scheduler: one per read event, i.e. per batch and requested depth
  /// (the last depth is the stop), none on the other steps. Adaptive: one per step (the stop decision),
  /// plus one per step on which some row is read (its predictions).
  int64_t host_syncs = 0;
  double wall_time_s = 0.0;      ///< the whole run (setup excluded)
  bool interrupted = false;      ///< stopped by RunnerOptions::should_abort before every puzzle finished
};

/// Runs every puzzle of `puzzles` and calls `on_puzzle` once per puzzle, when all of its R trajectories
/// have stopped (fixed scheduler: in puzzle order; adaptive: in completion order).
RunSummary run(model::EqrModel& model, const PuzzleSet& puzzles, RunnerOptions options,
               const std::function<void(PuzzleResult&&)>& on_puzzle);

/// Convenience: run() collecting the results in puzzle order.
std::vector<PuzzleResult> run_all(model::EqrModel& model, const PuzzleSet& puzzles, const RunnerOptions& options,
                                  RunSummary* summary = nullptr);

}  // namespace eqr::infer
