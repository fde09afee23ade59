// Aggregators over the R trajectories of a puzzle (reference/eqr_spec.md §5).
// Shape legend: T steps, B rows, S cells, V vocab, R trajectories of one puzzle.

#include "eqr/infer/aggregate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::infer {

int64_t majority_vote(const std::vector<Prediction>& predictions) {
  EQR_CHECK(!predictions.empty(), RuntimeError, "majority_vote: no predictions; expected R >= 1");
  // Counter.most_common: highest count; among equal counts, the key inserted first (= first appearance).
  std::map<Prediction, std::pair<int64_t, int64_t>> counts;  // grid -> (count, first index)
  for (size_t i = 0; i < predictions.size(); ++i) {
    auto [it, fresh] = counts.try_emplace(predictions[i], 0, static_cast<int64_t>(i));
    ++it->second.first;
  }
  int64_t best = -1, best_count = 0;
  for (const auto& [grid, cf] : counts) {
    if (cf.first > best_count || (cf.first == best_count && cf.second < best)) {
      best = cf.second;
      best_count = cf.first;
    }
  }
  return best;
}

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  EQR_CHECK(n >= 1 && c >= 0 && c <= n && k >= 1 && k <= n, RuntimeError, "pass_at_k: n=", n, " c=", c, " k=", k,
            "; expected 0 <= c <= n and 1 <= k <= n");
  if (n - c < k) return 1.0;
  double prod = 1.0;  // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i)
  for (int64_t i = n - c + 1; i <= n; ++i) prod *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - prod;
}

std::vector<int64_t> pass_at_k_values(int64_t breadth) {
  std::vector<int64_t> ks;
  for (int64_t k = 1; k < breadth; k *= 2) ks.push_back(k);
  return ks;
}

std::vector<int64_t> convergence_top_k(const std::vector<double>& scores, int64_t k) {
  std::vector<int64_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    const double sa = scores[static_cast<size_t>(a)], sb = scores[static_cast<size_t>(b)];
    if (std::isnan(sa)) return false;  // NaN after every number (and stable among NaNs)
    if (std::isnan(sb)) return true;
    return sa < sb;
  });
  idx.resize(static_cast<size_t>(std::clamp<int64_t>(k, 0, static_cast<int64_t>(scores.size()))));
  return idx;
}

int64_t q_confidence(const std::vector<double>& q_halt) {
  EQR_CHECK(!q_halt.empty(), RuntimeError, "q_confidence: no trajectories; expected R >= 1");
  int64_t best = 0;
  for (size_t i = 1; i < q_halt.size(); ++i) {
    if (q_halt[i] > q_halt[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  }
  return best;
}

at::Tensor convergence_scores(const at::Tensor& logits, int64_t window) {
  torch::NoGradGuard no_grad;
  EQR_CHECK(logits.dim() == 4, RuntimeError, "convergence_scores: logits ", logits.sizes(), ", expected (T, B, S, V)");
  EQR_CHECK(window >= 1, ConfigError, "eval.convergence_window: got ", window, ", expected >= 1");
  const int64_t t = logits.size(0);
  if (t < 2) return torch::full({logits.size(1)}, std::numeric_limits<float>::quiet_NaN(), torch::kFloat);
  const at::Tensor x = logits.to(torch::kFloat);
  const at::Tensor deltas = (x.slice(0, 1) - x.slice(0, 0, t - 1)).norm(2, -1).mean(-1);  // (T-1, B)
  const int64_t keep = std::min(window, t - 1);
  return deltas.slice(0, t - 1 - keep).mean(0);
}

std::vector<std::string> aggregator_names(int64_t breadth, const AggregateOptions& options) {
  std::vector<std::string> names = {"mean", "majority_vote", "most_converged"};
  if (options.convergence_top_k && *options.convergence_top_k > 1) {
    names.push_back("convergence_top" + std::to_string(*options.convergence_top_k));
  }
  names.push_back("q_confidence");
  for (int64_t k : pass_at_k_values(breadth)) names.push_back("pass@" + std::to_string(k));
  names.push_back("any_correct");
  if (options.verifier) names.push_back("verified_select");
  return names;
}

std::vector<AggregateScore> aggregate(const std::vector<Outcome>& outcomes, const AggregateOptions& options,
                                      int64_t puzzle) {
  EQR_CHECK(!outcomes.empty(), RuntimeError, "aggregate: no trajectories; expected R >= 1");
  const int64_t r = static_cast<int64_t>(outcomes.size());
  std::vector<AggregateScore> out;
  std::vector<Prediction> preds;
  preds.reserve(outcomes.size());
  for (const auto& o : outcomes) {
    EQR_CHECK(o.prediction != nullptr, RuntimeError, "aggregate: outcome without a prediction");
    preds.push_back(*o.prediction);
  }
  // The verifier's verdict per trajectory, asked once each and only where an aggregator needs it.
  std::vector<int8_t> verdict(outcomes.size(), -1);
  const auto valid = [&](int64_t i) {
    int8_t& v = verdict[static_cast<size_t>(i)];
    if (v < 0) v = options.verifier(puzzle, preds[static_cast<size_t>(i)]) ? 1 : 0;
    return v == 1;
  };
  const auto valid_share = [&](const std::vector<int64_t>& chosen) -> std::optional<double> {
    if (!options.verifier) return std::nullopt;
    double n = 0.0;
    for (int64_t i : chosen) n += valid(i) ? 1.0 : 0.0;
    return n / static_cast<double>(chosen.size());
  };
  const auto pick = [&](const std::string& name, int64_t i) {
    const Outcome& o = outcomes[static_cast<size_t>(i)];
    out.push_back({name, o.exact ? 1.0 : 0.0, o.cell_accuracy, valid_share({i})});
  };

  int64_t correct = 0;
  double cell = 0.0;
  std::vector<int64_t> all(outcomes.size());
  for (size_t i = 0; i < outcomes.size(); ++i) {
    correct += outcomes[i].exact ? 1 : 0;
    cell += outcomes[i].cell_accuracy;
    all[i] = static_cast<int64_t>(i);
  }
  out.push_back({"mean", static_cast<double>(correct) / r, cell / r, valid_share(all)});

  const int64_t vote = majority_vote(preds);
  pick("majority_vote", vote);

  std::vector<double> scores;
  for (const auto& o : outcomes) scores.push_back(o.convergence_score);
  pick("most_converged", convergence_top_k(scores, 1).front());
  if (options.convergence_top_k && *options.convergence_top_k > 1) {
    const auto chosen = convergence_top_k(scores, *options.convergence_top_k);
    double e = 0.0, c = 0.0;
    for (int64_t i : chosen) {
      e += outcomes[static_cast<size_t>(i)].exact ? 1.0 : 0.0;
      c += outcomes[static_cast<size_t>(i)].cell_accuracy;
    }
    const double k = static_cast<double>(chosen.size());
    out.push_back({"convergence_top" + std::to_string(*options.convergence_top_k), e / k, c / k, valid_share(chosen)});
  }

  std::vector<double> q;
  for (const auto& o : outcomes) q.push_back(o.q_halt);
  pick("q_confidence", q_confidence(q));

  for (int64_t k : pass_at_k_values(r)) {
    out.push_back({"pass@" + std::to_string(k), pass_at_k(r, correct, k), {}, {}});
  }
  out.push_back({"any_correct", correct > 0 ? 1.0 : 0.0, {}, {}});

  if (options.verifier) {
    int64_t chosen = vote;
    for (int64_t i = 0; i < r; ++i) {
      if (valid(i)) {
        chosen = i;
        break;
      }
    }
    pick("verified_select", chosen);
  }
  return out;
}

}  // namespace eqr::infer
