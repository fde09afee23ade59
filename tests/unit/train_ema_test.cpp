// EMA of the weights (reference/eqr_spec.md §3): hand-iterated values, warm-up formula, apply/swap/copy,
// shadow export/import.

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/train/ema.h"

namespace eqr::train {
namespace {

void set_params(torch::nn::Linear& m, float w, float b) {
  torch::NoGradGuard ng;
  m->weight.fill_(w);
  m->bias.fill_(b);
}

TEST(TrainEma, HandIteratedValues) {
  torch::nn::Linear model(2, 1);
  set_params(model, 1.0f, -2.0f);
  Ema ema(*model, 0.9);
  EXPECT_FLOAT_EQ(ema.shadow().at("weight")[0][0].item<float>(), 1.0f);  // initialised to the weights
  double w = 1.0;
  for (float next : {2.0f, 0.0f, 5.0f}) {
    set_params(model, next, 0.0f);
    ema.update(*model);
    w = 0.1 * next + 0.9 * w;
    EXPECT_NEAR(ema.shadow().at("weight")[0][1].item<float>(), w, 1e-6);
  }
  EXPECT_EQ(ema.num_updates(), 3);
  EXPECT_EQ(ema.shadow().size(), 2u);
}

TEST(TrainEma, WarmupDecay) {
  torch::nn::Linear model(1, 1);
  set_params(model, 0.0f, 0.0f);
  Ema ema(*model, 0.999, /*warmup=*/true);
  EXPECT_DOUBLE_EQ(ema.decay_at(1), 2.0 / 11.0);
  EXPECT_DOUBLE_EQ(ema.decay_at(100), 101.0 / 110.0);
  EXPECT_DOUBLE_EQ(ema.decay_at(100000), 0.999);
  Ema plain(*model, 0.999);
  EXPECT_DOUBLE_EQ(plain.decay_at(1), 0.999);
  // First update with warm-up: mu_1 = 2/11.
  set_params(model, 11.0f, 0.0f);
  ema.update(*model);
  EXPECT_NEAR(ema.shadow().at("weight").item<float>(), (9.0 / 11.0) * 11.0, 1e-5);
}

TEST(TrainEma, ApplySwapCopyAndLoad) {
  torch::nn::Linear model(3, 2);
  set_params(model, 1.0f, 1.0f);
  Ema ema(*model, 0.5);
  set_params(model, 3.0f, 3.0f);
  ema.update(*model);  // shadow = 2
  // swap: model gets the EMA weights, shadow keeps the training weights; swap back restores.
  ema.swap(*model);
  EXPECT_FLOAT_EQ(model->weight[0][0].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(ema.shadow().at("bias")[1].item<float>(), 3.0f);
  ema.swap(*model);
  EXPECT_FLOAT_EQ(model->weight[0][0].item<float>(), 3.0f);
  EXPECT_FLOAT_EQ(ema.shadow().at("weight")[0][0].item<float>(), 2.0f);
  // copy: a separate model with EMA weights; the original keeps its weights.
  auto copy = ema.copy_with_ema(*model);
  EXPECT_FLOAT_EQ(copy->named_parameters()["weight"][1][2].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(model->weight[1][2].item<float>(), 3.0f);
  // apply_to
  torch::nn::Linear other(3, 2);
  ema.apply_to(*other);
  EXPECT_TRUE(torch::equal(other->weight, ema.shadow().at("weight")));
  // load_shadow: round trip, and errors.
  Ema fresh(*other, 0.5);
  std::map<std::string, at::Tensor> saved;
  for (const auto& [k, t] : ema.shadow()) saved[k] = t.clone() + 1;
  fresh.load_shadow(saved);
  EXPECT_FLOAT_EQ(fresh.shadow().at("bias")[0].item<float>(), 3.0f);
  EXPECT_THROW(fresh.load_shadow({{"weight", torch::zeros({2, 3})}}, /*strict=*/true), CheckpointError);
  EXPECT_NO_THROW(fresh.load_shadow({{"weight", torch::zeros({2, 3})}}, /*strict=*/false));
  EXPECT_THROW(fresh.load_shadow({{"nope", torch::zeros({1})}}, false), CheckpointError);
  EXPECT_THROW(fresh.load_shadow({{"bias", torch::zeros({5})}}, false), CheckpointError);
  // A model with other parameter names cannot be updated.
  torch::nn::Sequential seq(torch::nn::Linear(3, 2));
  EXPECT_THROW(ema.update(*seq), RuntimeError);
  EXPECT_THROW(Ema(*model, 1.5), ConfigError);
}

TEST(TrainEma, FrozenParametersAreNotTracked) {
  torch::nn::Linear model(2, 2);
  model->bias.set_requires_grad(false);
  Ema ema(*model, 0.9);
  EXPECT_EQ(ema.shadow().size(), 1u);
  EXPECT_EQ(ema.shadow().count("weight"), 1u);
}

}  // namespace
}  // namespace eqr::train
