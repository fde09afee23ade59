// AdamATan2 (reference/eqr_spec.md §3). Shapes: every state tensor has its parameter's shape.

#include "eqr/train/adam_atan2.h"

#include <cmath>
#include <sstream>
#include <type_traits>

#include <torch/torch.h>

#include "eqr/core/error.h"

namespace eqr::train {

namespace {

// torch::optim::Optimizer::state_ is keyed by the TensorImpl: a std::string (LibTorch 1.x, the
// pointer printed by c10::guts::to_string) or the void* itself (LibTorch 2.x). Deduced, not versioned.
template <typename Map>
typename Map::key_type state_key(const Map& /*map*/, const torch::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

double ivalue_double(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue v;
  EQR_CHECK(archive.try_read(key, v), CheckpointError, "AdamATan2: archive has no '", key, "'");
  EQR_CHECK(v.isDouble() || v.isInt(), CheckpointError, "AdamATan2: '", key, "' is not a number");
  return v.isDouble() ? v.toDouble() : static_cast<double>(v.toInt());
}

std::string index_key(size_t i) { return "p" + std::to_string(i); }

}  // namespace

// ---- options and param state (torch archive protocol) ----

void AdamATan2Options::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", c10::IValue(lr()));
  archive.write("beta1", c10::IValue(std::get<0>(betas())));
  archive.write("beta2", c10::IValue(std::get<1>(betas())));
  archive.write("weight_decay", c10::IValue(weight_decay()));
}

void AdamATan2Options::serialize(torch::serialize::InputArchive& archive) {
  lr(ivalue_double(archive, "lr"));
  betas(std::make_tuple(ivalue_double(archive, "beta1"), ivalue_double(archive, "beta2")));
  weight_decay(ivalue_double(archive, "weight_decay"));
}

void AdamATan2ParamState::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("step", step(), /*is_buffer=*/true);
  archive.write("exp_avg", exp_avg(), /*is_buffer=*/true);
  archive.write("exp_avg_sq", exp_avg_sq(), /*is_buffer=*/true);
}

void AdamATan2ParamState::serialize(torch::serialize::InputArchive& archive) {
  torch::Tensor t;
  EQR_CHECK(archive.try_read("step", t, true), CheckpointError, "AdamATan2: param state has no 'step'");
  step(t);
  torch::Tensor m;
  EQR_CHECK(archive.try_read("exp_avg", m, true), CheckpointError, "AdamATan2: param state has no 'exp_avg'");
  exp_avg(m);
  torch::Tensor v;
  EQR_CHECK(archive.try_read("exp_avg_sq", v, true), CheckpointError,
            "AdamATan2: param state has no 'exp_avg_sq'");
  exp_avg_sq(v);
}

// ---- optimizer ----

AdamATan2::AdamATan2(std::vector<torch::Tensor> params, AdamATan2Options options)
    : torch::optim::Optimizer({torch::optim::OptimizerParamGroup(std::move(params))},
                              std::make_unique<AdamATan2Options>(options)) {
  const auto [b1, b2] = options.betas();
  EQR_CHECK(options.lr() >= 0, ConfigError, "train.lr: got ", options.lr(), ", expected >= 0");
  EQR_CHECK(b1 >= 0 && b1 < 1, ConfigError, "train.beta1: got ", b1, ", expected in [0, 1)");
  EQR_CHECK(b2 >= 0 && b2 < 1, ConfigError, "train.beta2: got ", b2, ", expected in [0, 1)");
  EQR_CHECK(options.weight_decay() >= 0, ConfigError, "train.weight_decay: got ", options.weight_decay(),
            ", expected >= 0");
}

size_t AdamATan2::num_params() const { return param_groups_.empty() ? 0 : param_groups_[0].params().size(); }

double AdamATan2::lr() const { return param_groups_.at(0).options().get_lr(); }

void AdamATan2::set_lr(double lr) {
  EQR_CHECK(std::isfinite(lr) && lr >= 0, RuntimeError, "AdamATan2: learning rate must be finite and >= 0, got ",
            lr);
  for (auto& group : param_groups_) group.options().set_lr(lr);
}

AdamATan2ParamState* AdamATan2::find_state(const torch::Tensor& p) const {
  auto it = state_.find(state_key(state_, p));
  if (it == state_.end()) return nullptr;
  return static_cast<AdamATan2ParamState*>(it->second.get());
}

AdamATan2ParamState& AdamATan2::make_state(const torch::Tensor& p) {
  auto state = std::make_unique<AdamATan2ParamState>();
  // step lives on the CPU (as torch's non-fused optimizers keep it): reading it costs no device sync.
  state->step(torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32)));
  state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
  state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
  auto* raw = state.get();
  state_[state_key(state_, p)] = std::move(state);
  return *raw;
}

torch::Tensor AdamATan2::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode grad_mode(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  EQR_CHECK(param_groups_.size() == 1, RuntimeError, "AdamATan2: expected one param group, got ",
            param_groups_.size());
  auto& group = param_groups_[0];
  const auto& opt = static_cast<const AdamATan2Options&>(group.options());
  const double lr = opt.lr();
  const double beta1 = std::get<0>(opt.betas());
  const double beta2 = std::get<1>(opt.betas());
  const double wd = opt.weight_decay();
  for (auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    const auto& grad = p.grad();
    EQR_CHECK(!grad.is_sparse(), RuntimeError, "AdamATan2: sparse gradients are not supported");
    auto* state = find_state(p);
    if (state == nullptr) state = &make_state(p);
    state->step().add_(1);
    // Scalars as the fused kernel: bias corrections in double from the float32 step, then the
    // per-element math in opmath (float32 for float32/bf16/fp16 parameters).
    const double t = static_cast<double>(state->step().item<float>());
    const double bc1 = 1.0 - std::pow(beta1, t);
    const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
    const double step_size = lr / bc1;

    const bool low_precision = p.scalar_type() == torch::kBFloat16 || p.scalar_type() == torch::kHalf;
    auto param = low_precision ? p.to(torch::kFloat32) : p;
    auto g = low_precision ? grad.to(torch::kFloat32) : grad;
    auto m = low_precision ? state->exp_avg().to(torch::kFloat32) : state->exp_avg();
    auto v = low_precision ? state->exp_avg_sq().to(torch::kFloat32) : state->exp_avg_sq();

    param.mul_(1.0 - lr * wd);
    m.lerp_(g, 1.0 - beta1);
    v.lerp_(g * g, 1.0 - beta2);
    auto denom = v.sqrt().div_(bc2_sqrt);
    param.sub_(torch::atan2(m, denom).mul_(step_size));

    if (low_precision) {
      p.copy_(param);
      state->exp_avg().copy_(m);
      state->exp_avg_sq().copy_(v);
    }
  }
  return loss;
}

std::optional<AdamATan2::StateTensors> AdamATan2::state_at(size_t index) const {
  EQR_CHECK(index < num_params(), RuntimeError, "AdamATan2: parameter index ", index, " out of range (",
            num_params(), " parameters)");
  const auto* s = find_state(param_groups_[0].params()[index]);
  if (s == nullptr) return std::nullopt;
  return StateTensors{s->step(), s->exp_avg(), s->exp_avg_sq()};
}

void AdamATan2::set_state_at(size_t index, const StateTensors& in) {
  EQR_CHECK(index < num_params(), CheckpointError, "AdamATan2 state: parameter index ", index,
            " out of range (", num_params(), " parameters)");
  const auto& p = param_groups_[0].params()[index];
  EQR_CHECK(in.step.defined() && in.step.numel() == 1, CheckpointError, "AdamATan2 state of parameter ", index,
            ": 'step' must be one number");
  EQR_CHECK(in.exp_avg.defined() && in.exp_avg.sizes() == p.sizes(), CheckpointError,
            "AdamATan2 state of parameter ", index, ": exp_avg has shape ",
            in.exp_avg.defined() ? in.exp_avg.sizes() : c10::IntArrayRef{}, ", expected ", p.sizes());
  EQR_CHECK(in.exp_avg_sq.defined() && in.exp_avg_sq.sizes() == p.sizes(), CheckpointError,
            "AdamATan2 state of parameter ", index, ": exp_avg_sq has shape ",
            in.exp_avg_sq.defined() ? in.exp_avg_sq.sizes() : c10::IntArrayRef{}, ", expected ", p.sizes());
  torch::NoGradGuard no_grad;
  auto state = std::make_unique<AdamATan2ParamState>();
  state->step(in.step.detach().reshape({}).to(torch::kCPU, torch::kFloat32).clone());
  state->exp_avg(in.exp_avg.detach().to(p.device(), p.scalar_type()).clone());
  state->exp_avg_sq(in.exp_avg_sq.detach().to(p.device(), p.scalar_type()).clone());
  state_[state_key(state_, p)] = std::move(state);
}

std::map<std::string, torch::Tensor> AdamATan2::state_tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < num_params(); ++i) {
    auto s = state_at(i);
    if (!s) continue;
    const auto prefix = std::to_string(i) + ".";
    out[prefix + "step"] = s->step;
    out[prefix + "exp_avg"] = s->exp_avg;
    out[prefix + "exp_avg_sq"] = s->exp_avg_sq;
  }
  return out;
}

void AdamATan2::load_state_tensors(const std::map<std::string, torch::Tensor>& tensors) {
  std::map<size_t, StateTensors> by_index;
  for (const auto& [key, t] : tensors) {
    const auto dot = key.find('.');
    size_t index = 0;
    bool ok = dot != std::string::npos && dot > 0;
    for (size_t k = 0; ok && k < dot; ++k) ok = key[k] >= '0' && key[k] <= '9';
    if (ok) index = std::stoul(key.substr(0, dot));
    const auto field = ok ? key.substr(dot + 1) : std::string();
    EQR_CHECK(ok && (field == "step" || field == "exp_avg" || field == "exp_avg_sq"), CheckpointError,
              "AdamATan2 state: unexpected key '", key, "', expected '<index>.step|exp_avg|exp_avg_sq'");
    EQR_CHECK(index < num_params(), CheckpointError, "AdamATan2 state: key '", key, "' names parameter ", index,
              " but the optimizer has ", num_params());
    auto& st = by_index[index];
    (field == "step" ? st.step : field == "exp_avg" ? st.exp_avg : st.exp_avg_sq) = t;
  }
  // Validate everything before touching the live state.
  for (const auto& [index, st] : by_index) {
    EQR_CHECK(st.step.defined() && st.exp_avg.defined() && st.exp_avg_sq.defined(), CheckpointError,
              "AdamATan2 state of parameter ", index, ": needs step, exp_avg and exp_avg_sq");
    const auto& p = param_groups_[0].params()[index];
    EQR_CHECK(st.exp_avg.sizes() == p.sizes() && st.exp_avg_sq.sizes() == p.sizes(), CheckpointError,
              "AdamATan2 state of parameter ", index, ": shape ", st.exp_avg.sizes(), ", expected ", p.sizes());
  }
  state_.clear();
  for (const auto& [index, st] : by_index) set_state_at(index, st);
}

void AdamATan2::save(torch::serialize::OutputArchive& archive) const {
  static_cast<const AdamATan2Options&>(param_groups_.at(0).options()).serialize(archive);
  archive.write("num_params", c10::IValue(static_cast<int64_t>(num_params())));
  torch::serialize::OutputArchive states(archive.compilation_unit());
  for (size_t i = 0; i < num_params(); ++i) {
    const auto* s = find_state(param_groups_[0].params()[i]);
    if (s == nullptr) continue;
    torch::serialize::OutputArchive one(archive.compilation_unit());
    s->serialize(one);
    states.write(index_key(i), one);
  }
  archive.write("state", states);
}

void AdamATan2::load(torch::serialize::InputArchive& archive) {
  AdamATan2Options opts;
  opts.serialize(archive);
  c10::IValue n;
  EQR_CHECK(archive.try_read("num_params", n) && n.isInt(), CheckpointError,
            "AdamATan2: archive has no 'num_params' (not written by AdamATan2::save?)");
  EQR_CHECK(static_cast<size_t>(n.toInt()) == num_params(), CheckpointError, "AdamATan2: archive has ",
            n.toInt(), " parameters, the optimizer has ", num_params());
  torch::serialize::InputArchive states;
  EQR_CHECK(archive.try_read("state", states), CheckpointError, "AdamATan2: archive has no 'state'");
  std::map<size_t, StateTensors> loaded;
  for (size_t i = 0; i < num_params(); ++i) {
    torch::serialize::InputArchive one;
    if (!states.try_read(index_key(i), one)) continue;
    AdamATan2ParamState s;
    s.serialize(one);
    loaded[i] = StateTensors{s.step(), s.exp_avg(), s.exp_avg_sq()};
  }
  std::map<std::string, torch::Tensor> named;
  for (const auto& [i, st] : loaded) {
    named[std::to_string(i) + ".step"] = st.step;
    named[std::to_string(i) + ".exp_avg"] = st.exp_avg;
    named[std::to_string(i) + ".exp_avg_sq"] = st.exp_avg_sq;
  }
  load_state_tensors(named);
  auto& group_opts = static_cast<AdamATan2Options&>(param_groups_.at(0).options());
  group_opts.lr(opts.lr());
  group_opts.betas(opts.betas());
  group_opts.weight_decay(opts.weight_decay());
}

}  // namespace eqr::train
