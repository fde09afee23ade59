#include "eqr/dynamics/score.h"

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::dynamics {

RowScore score_rows(const at::Tensor& preds, const at::Tensor& labels) {
  EQR_CHECK(preds.dim() == 2 && preds.sizes() == labels.sizes(), RuntimeError, "score_rows: predictions ",
            preds.sizes(), " and labels ", labels.sizes(), " must both be (B, S)");
  const at::Tensor labels64 = labels.to(torch::kLong);
  const at::Tensor mask = labels64 != data::kIgnoreLabelId;
  RowScore s;
  s.correct = ((preds.to(torch::kLong) == labels64) & mask).sum(-1);
  s.scored = mask.sum(-1);
  return s;
}

at::Tensor RowScore::exact() const { return correct == scored; }

at::Tensor RowScore::cell_accuracy(c10::ScalarType dtype) const {
  return correct.to(dtype) / scored.clamp_min(1).to(dtype);
}

}  // namespace eqr::dynamics
