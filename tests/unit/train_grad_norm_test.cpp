// Gradient norms and clipping without a host sync: the same gradients, bit for bit, and the same norm as
// torch::nn::utils::clip_grad_norm_ (which reads the norm back to the host every call).
// Shapes: parameters of assorted shapes, gradients alike.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <vector>

#include "eqr/core/error.h"
#include "eqr/train/grad_norm.h"

namespace eqr::train {
namespace {

/// Parameters of a few shapes with random gradients of scale `scale`; the one at index 2 has no gradient.
std::vector<torch::Tensor> params_with_grads(double scale, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> ps;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{7, 5}, {5}, {3, 3}, {2, 4, 6}, {1}}) {
    ps.push_back(torch::randn(shape).set_requires_grad(true));
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    if (i == 2) continue;  // undefined grad: skipped, as clip_grad_norm_ skips it
    ps[i].mutable_grad() = torch::randn(ps[i].sizes()) * scale;
  }
  return ps;
}

std::vector<torch::Tensor> clone_with_grads(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) {
    auto q = p.detach().clone().set_requires_grad(true);
    if (p.grad().defined()) q.mutable_grad() = p.grad().clone();
    out.push_back(q);
  }
  return out;
}

void expect_same_grads(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].grad().defined(), b[i].grad().defined()) << i;
    if (a[i].grad().defined()) {
      EXPECT_TRUE(a[i].grad().equal(b[i].grad())) << "parameter " << i;
    }
  }
}

TEST(TrainGradNorm, ClipEqualsTorchClipGradNormBitForBit) {
  for (const double scale : {10.0, 0.01}) {  // clipped (norm > max) and untouched (norm < max)
    const auto ours = params_with_grads(scale, 7);
    const auto theirs = clone_with_grads(ours);
    const double max_norm = 1.0;
    const GradNorms norms = grad_norms(ours);
    ASSERT_TRUE(norms.defined());
    clip_grads_(ours, norms, max_norm);
    const double torch_norm = torch::nn::utils::clip_grad_norm_(theirs, max_norm);
    EXPECT_EQ(norms.total.item<double>(), torch_norm) << "scale " << scale;
    expect_same_grads(ours, theirs);
    if (scale > 1) {
      EXPECT_GT(torch_norm, max_norm);
      EXPECT_NEAR(grad_norms(ours).total.item<double>(), max_norm, 1e-5);  // clipped onto the ball
    }
  }
}

TEST(TrainGradNorm, NormsPerTensorAndGlobal) {
  const auto ps = params_with_grads(1.0, 3);
  const GradNorms n = grad_norms(ps);
  ASSERT_EQ(n.per_tensor.numel(), 4);  // the parameter without a gradient is skipped
  double sq = 0, mx = 0;
  for (const auto& p : ps) {
    if (!p.grad().defined()) continue;
    const double x = p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
    sq += x;
    mx = std::max(mx, std::sqrt(x));
  }
  EXPECT_NEAR(n.total.item<double>(), std::sqrt(sq), 1e-5 * std::sqrt(sq));
  EXPECT_NEAR(n.per_tensor.max().item<double>(), mx, 1e-5 * mx);
  EXPECT_EQ(n.total.dim(), 0);

  // One gradient: the global norm is that gradient's norm, as clip_grad_norm_ has it.
  auto p = torch::zeros({3}).set_requires_grad(true);
  p.mutable_grad() = torch::tensor({3.0f, 0.0f, 4.0f});
  EXPECT_EQ(grad_norms({p}).total.item<float>(), 5.0f);

  // No gradient at all: nothing to measure or clip.
  auto q = torch::zeros({2}).set_requires_grad(true);
  const GradNorms none = grad_norms({q});
  EXPECT_FALSE(none.defined());
  EXPECT_NO_THROW(clip_grads_({q}, none, 1.0));
  EXPECT_FALSE(q.grad().defined());
  EXPECT_THROW(clip_grads_({p}, grad_norms({p}), 0.0), ConfigError);
}

TEST(TrainGradNorm, NonFiniteGradientsGiveANonFiniteNorm) {
  auto p = torch::zeros({2}).set_requires_grad(true);
  p.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity()});
  EXPECT_FALSE(std::isfinite(grad_norms({p}).total.item<double>()));
}

}  // namespace
}  // namespace eqr::train
