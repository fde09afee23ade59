// Attractor diagnostics: residual traces by correctness, convergence rate, AUROC, landscape.
// Shape legend: R trajectories per puzzle, T steps.

#include "eqr/eval/diagnostics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "eqr/core/error.h"
#include "eqr/infer/aggregate.h"

namespace eqr::eval {

std::optional<double> auroc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  EQR_CHECK(scores.size() == positive.size(), RuntimeError, "auroc: ", scores.size(), " scores vs ",
            positive.size(), " labels");
  const size_t n = scores.size();
  int64_t n_pos = 0;
  for (bool p : positive) n_pos += p ? 1 : 0;
  const int64_t n_neg = static_cast<int64_t>(n) - n_pos;
  if (n_pos == 0 || n_neg == 0) return std::nullopt;
  // NaN ranks below every number: map it to -inf for sorting (all NaNs tie with each other).
  std::vector<double> s(scores);
  for (auto& v : s) {
    if (std::isnan(v)) v = -std::numeric_limits<double>::infinity();
  }
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return s[a] < s[b]; });
  double rank_sum_pos = 0.0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && s[idx[j + 1]] == s[idx[i]]) ++j;
    const double avg_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;  // 1-based
    for (size_t k = i; k <= j; ++k) {
      if (positive[idx[k]]) rank_sum_pos += avg_rank;
    }
    i = j + 1;
  }
  const double u = rank_sum_pos - static_cast<double>(n_pos) * static_cast<double>(n_pos + 1) / 2.0;
  return u / (static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

DiagnosticsAccumulator::DiagnosticsAccumulator(std::vector<int64_t> depths)
    : depths_(std::move(depths)),
      final_residual_(depths_.size()),
      conv_score_(depths_.size()),
      q_halt_(depths_.size()),
      correct_(depths_.size()) {}

namespace {
void grow(std::vector<double>& v, std::vector<int64_t>& n, size_t size) {
  if (v.size() < size) {
    v.resize(size, 0.0);
    n.resize(size, 0);
  }
}
}  // namespace

void DiagnosticsAccumulator::add(const infer::PuzzleResult& puzzle) {
  std::vector<infer::Prediction> finals;
  for (const auto& tr : puzzle.trajectories) {
    EQR_CHECK(tr.at_depth.size() == depths_.size(), RuntimeError, "diagnostics: trajectory has ",
              tr.at_depth.size(), " snapshots, expected ", depths_.size());
    const bool ok = tr.at_depth.back().exact;
    auto& sums = ok ? res_correct_ : res_wrong_;
    auto& counts = ok ? n_correct_ : n_wrong_;
    grow(sums, counts, tr.residuals.size());
    grow(rate_sum_, rate_n_, tr.residuals.size());
    for (size_t t = 0; t < tr.residuals.size(); ++t) {
      sums[t] += tr.residuals[t];
      ++counts[t];
      if (t >= 1 && tr.residuals[t - 1] > 0.0f) {
        rate_sum_[t] += static_cast<double>(tr.residuals[t]) / static_cast<double>(tr.residuals[t - 1]);
        ++rate_n_[t];
      }
    }
    for (size_t j = 0; j < depths_.size(); ++j) {
      const auto& s = tr.at_depth[j];
      final_residual_[j].push_back(s.residual);
      conv_score_[j].push_back(s.convergence_score);
      q_halt_[j].push_back(s.q_halt);
      correct_[j].push_back(s.exact);
    }
    ++steps_histogram_[tr.steps];
    finals.push_back(tr.at_depth.back().prediction);
  }
  if (!finals.empty()) {
    const std::set<infer::Prediction> distinct(finals.begin(), finals.end());
    ++distinct_histogram_[static_cast<int64_t>(distinct.size())];
    const auto& winner = finals[static_cast<size_t>(infer::majority_vote(finals))];
    const auto in_basin = std::count(finals.begin(), finals.end(), winner);
    majority_share_sum_ += static_cast<double>(in_basin) / static_cast<double>(finals.size());
    const bool vote_right = puzzle.trajectories[static_cast<size_t>(infer::majority_vote(finals))].at_depth.back().exact;
    majority_correct_ += vote_right;
    distinct_majority_correct_[static_cast<int64_t>(distinct.size())] += vote_right;
  }
  ++puzzles_;
}

std::pair<double, double> auroc_ci95(double a, int64_t n_pos, int64_t n_neg) {
  EQR_CHECK(n_pos >= 1 && n_neg >= 1 && a >= 0.0 && a <= 1.0, RuntimeError, "auroc_ci95: AUROC ", a, " from ", n_pos,
            " positives and ", n_neg, " negatives; expected 0 <= AUROC <= 1 and both classes present");
  const double q1 = a / (2.0 - a), q2 = 2.0 * a * a / (1.0 + a);
  const double np = static_cast<double>(n_pos), nn = static_cast<double>(n_neg);
  const double var = (a * (1.0 - a) + (np - 1.0) * (q1 - a * a) + (nn - 1.0) * (q2 - a * a)) / (np * nn);
  const double half = 1.96 * std::sqrt(std::max(0.0, var));
  return {std::max(0.0, a - half), std::min(1.0, a + half)};
}

namespace {
nlohmann::ordered_json opt(const std::optional<double>& v) { return v ? nlohmann::ordered_json(*v) : nullptr; }
nlohmann::ordered_json means(const std::vector<double>& sums, const std::vector<int64_t>& n) {
  auto arr = nlohmann::ordered_json::array();
  for (size_t i = 0; i < sums.size(); ++i) {
    arr.push_back(n[i] > 0 ? nlohmann::ordered_json(sums[i] / static_cast<double>(n[i])) : nullptr);
  }
  return arr;
}
std::vector<double> negated(const std::vector<double>& v) {
  std::vector<double> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), [](double x) { return -x; });
  return out;
}
}  // namespace

nlohmann::ordered_json DiagnosticsAccumulator::to_json() const {
  nlohmann::ordered_json j;
  // Residual after step t (index t-1), mean over trajectories that took step t, split by the correctness
  // of the trajectory's final answer (at the largest depth).
  std::vector<double> all_sum(std::max(res_correct_.size(), res_wrong_.size()), 0.0);
  std::vector<int64_t> all_n(all_sum.size(), 0);
  for (size_t t = 0; t < all_sum.size(); ++t) {
    if (t < res_correct_.size()) {
      all_sum[t] += res_correct_[t];
      all_n[t] += n_correct_[t];
    }
    if (t < res_wrong_.size()) {
      all_sum[t] += res_wrong_[t];
      all_n[t] += n_wrong_[t];
    }
  }
  j["residual_by_step"] = {{"all", means(all_sum, all_n)},
                           {"correct", means(res_correct_, n_correct_)},
                           {"wrong", means(res_wrong_, n_wrong_)},
                           {"rows_correct", n_correct_},
                           {"rows_wrong", n_wrong_}};
  // d_k / d_{k-1}, mean over trajectories (index k-1; step 1 has no rate).
  j["convergence_rate_by_step"] = means(rate_sum_, rate_n_);
  auto au = nlohmann::ordered_json::array();
  for (size_t d = 0; d < depths_.size(); ++d) {
    int64_t pos = 0;
    for (bool c : correct_[d]) pos += c ? 1 : 0;
    const auto residual_auroc = auroc(negated(final_residual_[d]), correct_[d]);
    const int64_t neg = static_cast<int64_t>(correct_[d].size()) - pos;
    nlohmann::ordered_json ci = nullptr;
    if (residual_auroc) {
      const auto [lo, hi] = auroc_ci95(*residual_auroc, pos, neg);
      ci = {lo, hi};
    }
    au.push_back({{"depth", depths_[d]},
                  {"residual", opt(residual_auroc)},
                  {"residual_ci95", ci},
                  {"convergence_score", opt(auroc(negated(conv_score_[d]), correct_[d]))},
                  {"q_halt", opt(auroc(q_halt_[d], correct_[d]))},
                  {"n_correct", pos},
                  {"n_wrong", static_cast<int64_t>(correct_[d].size()) - pos}});
  }
  j["auroc"] = au;
  j["auroc_note"] =
      "P(score of a correct trajectory > score of a wrong one), ties half; scores: -final residual, "
      "-convergence score, q_halt logit; null when all trajectories are right or all wrong; residual_ci95: "
      "Hanley-McNeil 95% interval";
  double mean_distinct = 0.0;
  int64_t single_basin = 0;
  for (const auto& [k, c] : distinct_histogram_) {
    mean_distinct += static_cast<double>(k * c);
    if (k == 1) single_basin += c;
  }
  auto dh = nlohmann::ordered_json::object();
  for (const auto& [k, c] : distinct_histogram_) dh[std::to_string(k)] = c;
  // Per number k of distinct final grids: how many puzzles, and the share whose majority vote is right.
  auto by_k = nlohmann::ordered_json::object();
  for (const auto& [k, c] : distinct_histogram_) {
    const auto it = distinct_majority_correct_.find(k);
    const int64_t right = it == distinct_majority_correct_.end() ? 0 : it->second;
    by_k[std::to_string(k)] = {{"puzzles", c}, {"majority_correct", static_cast<double>(right) / static_cast<double>(c)}};
  }
  auto sh = nlohmann::ordered_json::object();
  for (const auto& [k, c] : steps_histogram_) sh[std::to_string(k)] = c;
  const double p = puzzles_ ? static_cast<double>(puzzles_) : 1.0;
  j["landscape"] = {{"depth", depths_.empty() ? 0 : depths_.back()},
                    {"puzzles", puzzles_},
                    {"mean_distinct_final_grids", mean_distinct / p},
                    {"share_single_basin", static_cast<double>(single_basin) / p},
                    {"mean_majority_basin_share", majority_share_sum_ / p},
                    {"majority_basin_correct", static_cast<double>(majority_correct_) / p},
                    {"distinct_final_grids_histogram", dh},
                    {"majority_correct_by_distinct_final_grids", by_k}};
  j["steps_histogram"] = sh;
  return j;
}

}  // namespace eqr::eval
