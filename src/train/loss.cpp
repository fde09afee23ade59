// Stablemax / softmax cross-entropy, q-halt BCE and halted-row metrics (reference/eqr_spec.md §2).
// Shapes: B batch rows, S cells, V vocab.

#include "eqr/dynamics/score.h"
#include "eqr/train/loss.h"

#include <limits>

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::train {

LossType parse_loss_type(const std::string& name) {
  if (name == "stablemax_cross_entropy") return LossType::Stablemax;
  if (name == "softmax_cross_entropy") return LossType::Softmax;
  EQR_FAIL(ConfigError, "train.loss_type: got '", name,
           "', expected one of stablemax_cross_entropy, softmax_cross_entropy");
}

at::Tensor stablemax_s(const at::Tensor& x) {
  // The x < 0 branch reads min(x, 0) so that the unused branch never divides by ~0 (values and
  // gradients of the selected branch are unchanged; torch.where would otherwise multiply 0 by inf).
  auto neg = 1.0 / (1.0 - x.clamp_max(0.0) + 1e-30);
  return torch::where(x < 0, neg, x + 1.0);
}

at::Tensor log_stablemax(const at::Tensor& x) {
  auto s = stablemax_s(x.to(torch::kFloat64));
  return torch::log(s / s.sum(-1, /*keepdim=*/true));
}

namespace {

void check_shapes(const at::Tensor& logits, const at::Tensor& labels) {
  EQR_CHECK(logits.dim() == 3, RuntimeError, "loss: logits must be (B, S, V), got ", logits.sizes());
  EQR_CHECK(labels.dim() == 2 && labels.size(0) == logits.size(0) && labels.size(1) == logits.size(1),
            RuntimeError, "loss: labels must be (B, S) = (", logits.size(0), ", ", logits.size(1),
            "), got ", labels.sizes());
}

}  // namespace

at::Tensor token_cross_entropy(const at::Tensor& logits, const at::Tensor& labels, LossType type) {
  check_shapes(logits, labels);
  auto labels64 = labels.to(torch::kLong);
  if (type == LossType::Softmax) {
    const auto v = logits.size(-1);
    namespace F = torch::nn::functional;
    auto loss = F::cross_entropy(logits.to(torch::kFloat32).reshape({-1, v}), labels64.reshape({-1}),
                                 F::CrossEntropyFuncOptions().ignore_index(kIgnoreLabelId).reduction(torch::kNone));
    return loss.view(labels.sizes());
  }
  auto logp = log_stablemax(logits);
  auto valid = labels64 != kIgnoreLabelId;
  auto safe_labels = torch::where(valid, labels64, torch::zeros_like(labels64));
  auto picked = logp.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1);
  return -torch::where(valid, picked, torch::zeros_like(picked));
}

StepLoss compute_step_loss(const at::Tensor& logits, const at::Tensor& labels,
                           const at::Tensor& q_halt_logits, LossType type, double q_halt_loss_weight) {
  check_shapes(logits, labels);
  EQR_CHECK(q_halt_logits.dim() == 1 && q_halt_logits.size(0) == logits.size(0), RuntimeError,
            "loss: q_halt_logits must be (B) = (", logits.size(0), "), got ", q_halt_logits.sizes());
  StepLoss out;
  auto labels64 = labels.to(torch::kLong);
  at::Tensor divisor;
  {
    torch::NoGradGuard no_grad;
    const dynamics::RowScore scored = dynamics::score_rows(logits.argmax(-1), labels64);
    out.row_count = scored.scored;  // int64
    divisor = out.row_count.clamp_min(1).unsqueeze(-1);
    out.row_exact = scored.exact();
    out.row_accuracy = scored.cell_accuracy(torch::kFloat32);
  }
  auto token_loss = token_cross_entropy(logits, labels64, type);
  out.lm_loss = (token_loss / divisor.to(token_loss.scalar_type())).sum();
  auto q = q_halt_logits;
  out.q_halt_loss = torch::binary_cross_entropy_with_logits(
      q, out.row_exact.to(q.scalar_type()), /*weight=*/{}, /*pos_weight=*/{}, at::Reduction::Sum);
  out.total = out.lm_loss + q_halt_loss_weight * out.q_halt_loss;
  return out;
}

MetricSums metric_sums(const StepLoss& loss, const at::Tensor& halted, const at::Tensor& steps,
                       const at::Tensor& q_halt_logits) {
  torch::NoGradGuard no_grad;
  const auto b = loss.row_count.size(0);
  EQR_CHECK(halted.dim() == 1 && halted.size(0) == b, RuntimeError, "metrics: halted must be (B) = (", b,
            "), got ", halted.sizes());
  EQR_CHECK(steps.dim() == 1 && steps.size(0) == b, RuntimeError, "metrics: steps must be (B) = (", b,
            "), got ", steps.sizes());
  EQR_CHECK(q_halt_logits.dim() == 1 && q_halt_logits.size(0) == b, RuntimeError,
            "metrics: q_halt_logits must be (B) = (", b, "), got ", q_halt_logits.sizes());
  const auto dev = loss.row_count.device();
  auto f64 = [&](const at::Tensor& t) { return t.to(dev).to(torch::kFloat64); };
  auto valid = halted.to(dev).to(torch::kBool) & (loss.row_count > 0);
  auto validf = f64(valid);
  auto exact = f64(loss.row_exact);
  auto qpos = f64(q_halt_logits.detach() > 0);
  auto q = f64(q_halt_logits.detach());
  auto st = f64(steps);

  std::vector<at::Tensor> s(MetricSums::kNumSums);
  s[MetricSums::kCount] = validf.sum();
  s[MetricSums::kAccuracy] = (validf * f64(loss.row_accuracy)).sum();
  s[MetricSums::kExact] = (validf * exact).sum();
  s[MetricSums::kQHaltCorrect] = (validf * (qpos == exact).to(torch::kFloat64)).sum();
  s[MetricSums::kQHaltTruePos] = (validf * qpos * exact).sum();
  s[MetricSums::kQHaltPredPos] = (validf * qpos).sum();
  s[MetricSums::kQHaltActualPos] = (validf * exact).sum();
  s[MetricSums::kSteps] = (validf * st).sum();
  s[MetricSums::kQHaltLogit] = (validf * q).sum();
  s[MetricSums::kLmLoss] = f64(loss.lm_loss.detach());
  s[MetricSums::kQHaltLoss] = f64(loss.q_halt_loss.detach());

  MetricSums out;
  out.sum = torch::stack(s);
  const double inf = std::numeric_limits<double>::infinity();
  auto masked_min = [&](const at::Tensor& x) { return torch::where(valid, x, torch::full_like(x, inf)).min(); };
  auto masked_max = [&](const at::Tensor& x) { return torch::where(valid, x, torch::full_like(x, -inf)).max(); };
  if (b == 0) {
    out.min = torch::full({MetricSums::kNumMinMax}, inf, torch::TensorOptions().dtype(torch::kFloat64).device(dev));
    out.max = -out.min;
  } else {
    out.min = torch::stack({masked_min(st), masked_min(q)});
    out.max = torch::stack({masked_max(st), masked_max(q)});
  }
  return out;
}

std::map<std::string, double> finalize_metrics(const MetricSums& sums, double global_batch_size) {
  EQR_CHECK(sums.sum.defined() && sums.sum.numel() == MetricSums::kNumSums, RuntimeError,
            "metrics: expected ", static_cast<int64_t>(MetricSums::kNumSums), " sums");
  EQR_CHECK(global_batch_size > 0, RuntimeError, "metrics: global_batch_size must be > 0, got ",
            global_batch_size);
  auto s = sums.sum.to(torch::kCPU).to(torch::kFloat64).contiguous();
  auto mn = sums.min.to(torch::kCPU).to(torch::kFloat64).contiguous();
  auto mx = sums.max.to(torch::kCPU).to(torch::kFloat64).contiguous();
  const double* p = s.data_ptr<double>();
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  const double count = p[MetricSums::kCount];
  std::map<std::string, double> m;
  m["count"] = count;
  m["exact_accuracy"] = ratio(p[MetricSums::kExact], count);
  m["cell_accuracy"] = ratio(p[MetricSums::kAccuracy], count);
  m["q_halt_accuracy"] = ratio(p[MetricSums::kQHaltCorrect], count);
  m["q_halt_precision"] = ratio(p[MetricSums::kQHaltTruePos], p[MetricSums::kQHaltPredPos]);
  m["q_halt_recall"] = ratio(p[MetricSums::kQHaltTruePos], p[MetricSums::kQHaltActualPos]);
  m["steps"] = ratio(p[MetricSums::kSteps], count);
  m["q_halt_logit"] = ratio(p[MetricSums::kQHaltLogit], count);
  const bool any = count > 0;
  m["min_steps"] = any ? mn.data_ptr<double>()[MetricSums::kMinMaxSteps] : 0.0;
  m["max_steps"] = any ? mx.data_ptr<double>()[MetricSums::kMinMaxSteps] : 0.0;
  m["min_q_halt_logit"] = any ? mn.data_ptr<double>()[MetricSums::kMinMaxQHalt] : 0.0;
  m["max_q_halt_logit"] = any ? mx.data_ptr<double>()[MetricSums::kMinMaxQHalt] : 0.0;
  m["lm_loss"] = p[MetricSums::kLmLoss] / global_batch_size;
  m["q_halt_loss"] = p[MetricSums::kQHaltLoss] / global_batch_size;
  return m;
}

}  // namespace eqr::train
