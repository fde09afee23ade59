// Sweep metrics per (depth, breadth, aggregator). Shape legend: R trajectories per puzzle, S cells.

#include "eqr/eval/metrics.h"

#include <algorithm>
#include <cmath>

#include "eqr/core/error.h"

namespace eqr::eval {

double histogram_percentile(const std::map<int64_t, int64_t>& histogram, double percentile) {
  int64_t n = 0;
  for (const auto& [v, c] : histogram) n += c;
  if (n == 0) return 0.0;
  // Nearest rank: the smallest value whose cumulative count reaches ceil(p/100 * n) (at least 1).
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(percentile / 100.0 * static_cast<double>(n))));
  int64_t cum = 0;
  for (const auto& [v, c] : histogram) {
    cum += c;
    if (cum >= rank) return static_cast<double>(v);
  }
  return static_cast<double>(histogram.rbegin()->first);
}

MetricsAccumulator::MetricsAccumulator(std::vector<int64_t> depths, std::vector<int64_t> breadths,
                                       infer::AggregateOptions options)
    : depths_(std::move(depths)), breadths_(std::move(breadths)), options_(std::move(options)) {
  std::sort(breadths_.begin(), breadths_.end());
  breadths_.erase(std::unique(breadths_.begin(), breadths_.end()), breadths_.end());
  EQR_CHECK(!depths_.empty() && !breadths_.empty() && breadths_.front() >= 1, ConfigError,
            "metrics: need at least one depth and one breadth >= 1");
  cells_.resize(depths_.size() * breadths_.size());
  for (size_t d = 0; d < depths_.size(); ++d) {
    for (size_t b = 0; b < breadths_.size(); ++b) {
      Cell& c = cells_[d * breadths_.size() + b];
      c.order = infer::aggregator_names(breadths_[b], options_);
      for (const auto& name : c.order) c.points[name];
    }
  }
}

void MetricsAccumulator::add(const infer::PuzzleResult& puzzle) {
  const int64_t r = static_cast<int64_t>(puzzle.trajectories.size());
  EQR_CHECK(r >= breadths_.back(), RuntimeError, "metrics: puzzle ", puzzle.puzzle, " has ", r,
            " trajectories, the sweep reports breadth ", breadths_.back());
  for (size_t d = 0; d < depths_.size(); ++d) {
    std::vector<infer::Outcome> outcomes;
    for (int64_t i = 0; i < r; ++i) {
      const auto& tr = puzzle.trajectories[static_cast<size_t>(i)];
      EQR_CHECK(tr.at_depth.size() == depths_.size(), RuntimeError, "metrics: trajectory ", puzzle.puzzle, "/", i,
                " has ", tr.at_depth.size(), " snapshots, expected ", depths_.size());
      const auto& s = tr.at_depth[d];
      outcomes.push_back({&s.prediction, s.exact, s.cell_accuracy, s.q_halt, s.convergence_score});
    }
    for (size_t b = 0; b < breadths_.size(); ++b) {
      Cell& cell = cells_[d * breadths_.size() + b];
      const int64_t rb = breadths_[b];
      const std::vector<infer::Outcome> prefix(outcomes.begin(), outcomes.begin() + rb);
      for (const auto& score : infer::aggregate(prefix, options_, puzzle.puzzle)) {
        Point& p = cell.points[score.name];
        p.exact_sum += score.exact;
        if (score.cell) {
          p.cell_sum += *score.cell;
          ++p.cell_count;
        }
        if (score.valid) {
          p.valid_sum += *score.valid;
          ++p.valid_count;
        }
      }
      for (int64_t i = 0; i < rb; ++i) {
        const int64_t steps = puzzle.trajectories[static_cast<size_t>(i)].at_depth[d].steps;
        ++cell.steps_histogram[steps];
        cell.steps_total += steps;
      }
    }
  }
  ++puzzles_;
}

int64_t MetricsAccumulator::sum_of_point_steps() const {
  int64_t total = 0;
  for (const auto& c : cells_) total += c.steps_total;
  return total;
}

std::vector<MetricsRow> MetricsAccumulator::rows(const std::string& scheduler, int64_t blocks_per_step,
                                                 double wall_time_s, int64_t trajectory_steps_done,
                                                 uint64_t seed) const {
  std::vector<MetricsRow> out;
  for (size_t d = 0; d < depths_.size(); ++d) {
    for (size_t b = 0; b < breadths_.size(); ++b) {
      const Cell& cell = cells_[d * breadths_.size() + b];
      int64_t n_traj = 0;
      for (const auto& [v, c] : cell.steps_histogram) n_traj += c;
      const double steps_mean = n_traj ? static_cast<double>(cell.steps_total) / static_cast<double>(n_traj) : 0.0;
      const double nfe = puzzles_ ? static_cast<double>(cell.steps_total) / static_cast<double>(puzzles_) : 0.0;
      const double share = trajectory_steps_done > 0
                               ? static_cast<double>(cell.steps_total) / static_cast<double>(trajectory_steps_done)
                               : 0.0;
      for (const auto& name : cell.order) {
        const Point& p = cell.points.at(name);
        MetricsRow row;
        row.depth = depths_[d];
        row.breadth = breadths_[b];
        row.aggregator = name;
        row.scheduler = scheduler;
        row.n_puzzles = puzzles_;
        row.exact_accuracy = puzzles_ ? p.exact_sum / static_cast<double>(puzzles_) : 0.0;
        if (p.cell_count > 0) row.cell_accuracy = p.cell_sum / static_cast<double>(p.cell_count);
        if (p.valid_count > 0) row.valid_accuracy = p.valid_sum / static_cast<double>(p.valid_count);
        row.steps_mean = steps_mean;
        row.steps_p50 = histogram_percentile(cell.steps_histogram, 50.0);
        row.steps_p99 = histogram_percentile(cell.steps_histogram, 99.0);
        row.nfe_per_puzzle = nfe;
        row.block_applications_per_puzzle = nfe * static_cast<double>(blocks_per_step);
        row.wall_time_s = wall_time_s;
        row.point_time_s = wall_time_s * share;
        row.puzzles_per_s = row.point_time_s > 0 ? static_cast<double>(puzzles_) / row.point_time_s : 0.0;
        row.seed = seed;
        out.push_back(std::move(row));
      }
    }
  }
  return out;
}

}  // namespace eqr::eval
