// EMA of the weights (reference/eqr_spec.md §3). Shadow tensors have their parameters' shapes.

#include "eqr/train/ema.h"

#include <algorithm>

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::train {

Ema::Ema(const torch::nn::Module& model, double mu, bool warmup) : mu_(mu), warmup_(warmup) {
  EQR_CHECK(mu >= 0.0 && mu <= 1.0, ConfigError, "train.ema_rate: got ", mu, ", expected in [0, 1]");
  torch::NoGradGuard no_grad;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    shadow_[item.key()] = item.value().detach().clone();
  }
}

double Ema::decay_at(int64_t t) const {
  if (!warmup_) return mu_;
  return std::min(mu_, (1.0 + static_cast<double>(t)) / (10.0 + static_cast<double>(t)));
}

void Ema::update(const torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  ++num_updates_;
  const double mu = decay_at(num_updates_);
  size_t seen = 0;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    auto it = shadow_.find(item.key());
    EQR_CHECK(it != shadow_.end(), RuntimeError, "EMA: parameter '", item.key(),
              "' was not registered when the EMA was created");
    const auto& p = item.value();
    // Exactly the reference expression: (1 - mu) * param + mu * shadow.
    it->second.copy_((1.0 - mu) * p.detach() + mu * it->second);
    ++seen;
  }
  EQR_CHECK(seen == shadow_.size(), RuntimeError, "EMA: model has ", seen, " trainable parameters, ",
            shadow_.size(), " were registered");
}

void Ema::apply_to(torch::nn::Module& model) const {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters(/*recurse=*/true);
  for (const auto& [name, s] : shadow_) {
    auto* p = params.find(name);
    EQR_CHECK(p != nullptr, RuntimeError, "EMA: model has no parameter '", name, "'");
    EQR_CHECK(p->sizes() == s.sizes(), RuntimeError, "EMA: parameter '", name, "' has shape ", p->sizes(),
              ", shadow has ", s.sizes());
    p->copy_(s);
  }
}

void Ema::swap(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters(/*recurse=*/true);
  for (auto& [name, s] : shadow_) {
    auto* p = params.find(name);
    EQR_CHECK(p != nullptr, RuntimeError, "EMA: model has no parameter '", name, "'");
    EQR_CHECK(p->sizes() == s.sizes(), RuntimeError, "EMA: parameter '", name, "' has shape ", p->sizes(),
              ", shadow has ", s.sizes());
    auto tmp = p->detach().clone();
    p->copy_(s);
    s.copy_(tmp);
  }
}

std::shared_ptr<torch::nn::Module> Ema::copy_with_ema(const torch::nn::Module& model) const {
  std::shared_ptr<torch::nn::Module> copy;
  try {
    copy = model.clone();
  } catch (const c10::Error& e) {
    EQR_FAIL(RuntimeError, "EMA: cannot copy the model (it must derive from torch::nn::Cloneable): ",
             e.what_without_backtrace());
  }
  apply_to(*copy);
  return copy;
}

void Ema::load_shadow(const std::map<std::string, at::Tensor>& tensors, bool strict) {
  for (const auto& [name, t] : tensors) {
    auto it = shadow_.find(name);
    EQR_CHECK(it != shadow_.end(), CheckpointError, "EMA shadow: unknown parameter '", name, "'");
    EQR_CHECK(t.sizes() == it->second.sizes(), CheckpointError, "EMA shadow '", name, "': shape ", t.sizes(),
              ", expected ", it->second.sizes());
  }
  if (strict) {
    for (const auto& [name, s] : shadow_) {
      EQR_CHECK(tensors.count(name) == 1, CheckpointError, "EMA shadow: missing parameter '", name, "'");
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : tensors) shadow_[name].copy_(t.detach());
}

}  // namespace eqr::train
