// One supervision step (reference/eqr_spec.md §1.6, §1.8, §5). Shape legend: B batch, S cells, D hidden, V vocab.

#include "eqr/dynamics/step.h"

#include <mutex>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "eqr/core/error.h"
#include "eqr/model/init.h"

namespace eqr::dynamics {

std::pair<at::Tensor, at::Tensor> latent_recursion(model::EqrModel& model, at::Tensor z_h, at::Tensor z_l,
                                                   const at::Tensor& x, const model::CosSin& cs,
                                                   std::optional<at::Generator> gen) {
  const int64_t l_cycles = model->arch().l_cycles;
  for (int64_t i = 0; i < l_cycles; ++i) z_l = model->l_level(z_l, z_h + x, cs, gen);
  z_h = model->l_level(z_h, z_l, cs, gen);
  return {z_h, z_l};
}

// ---- gradient checkpointing of the grad-carrying latent recursion ---------------------------------
// LibTorch C++ has no torch.utils.checkpoint, so this is a custom autograd Function around ONE L_level
// call, whose inputs are the state h, the injection AND the L_level parameters (so autograd routes their
// gradients through it). Forward runs the call with grad off (Function::apply does that) and saves only h
// and the injection; backward reruns the call with grad on, replaying its path noise from a generator
// cloned before the forward and under the forward's autocast state (autocast is thread-local and the
// engine may run backward on another thread), then differentiates the rerun with torch::autograd::grad.
// One segment per L_level call, not one around the whole recursion: backward then rebuilds one call's
// activations at a time, so the peak falls to about 1/(l_cycles+1) of the recursion's; a single segment
// would only free them between forward and backward and rebuild them all at once (same peak).

namespace {

/// The autocast switches and dtypes of CPU and CUDA on this thread.
struct AutocastState {
  bool cpu = false, cuda = false;
  c10::ScalarType cpu_dtype = c10::kBFloat16, cuda_dtype = c10::kHalf;

  static AutocastState current() {
    AutocastState s;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    s.cpu = at::autocast::is_autocast_enabled(at::kCPU);
    s.cuda = at::autocast::is_autocast_enabled(at::kCUDA);
    s.cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU);
    s.cuda_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
#else
    s.cpu = at::autocast::is_cpu_enabled();
    s.cuda = at::autocast::is_enabled();
    s.cpu_dtype = at::autocast::get_autocast_cpu_dtype();
    s.cuda_dtype = at::autocast::get_autocast_gpu_dtype();
#endif
    return s;
  }
  void apply() const {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCPU, cpu);
    at::autocast::set_autocast_enabled(at::kCUDA, cuda);
    at::autocast::set_autocast_dtype(at::kCPU, cpu_dtype);
    at::autocast::set_autocast_dtype(at::kCUDA, cuda_dtype);
#else
    at::autocast::set_cpu_enabled(cpu);
    at::autocast::set_enabled(cuda);
    at::autocast::set_autocast_cpu_dtype(cpu_dtype);
    at::autocast::set_autocast_gpu_dtype(cuda_dtype);
#endif
  }
};

/// Sets an autocast state for a scope and restores the previous one.
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& s) : saved_(AutocastState::current()) { s.apply(); }
  ~AutocastScope() { saved_.apply(); }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState saved_;
};

/// A copy of `gen` (or of the device's default generator when absent) at its current position.
at::Generator clone_generator(const std::optional<at::Generator>& gen, const c10::Device& device) {
  at::Generator g = (gen.has_value() && gen->defined()) ? *gen : at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  return model::copy_generator(g);
}

/// What backward needs besides the saved tensors. AutogradContext::saved_data holds IValues only; an
/// IValue capsule carries this object (the model handle keeps the module alive until backward).
struct RecomputeState : torch::CustomClassHolder {
  model::EqrModel model{nullptr};
  model::CosSin cs;
  std::optional<at::Generator> noise;  ///< clone taken before the forward call; absent with noise_scale 0
  AutocastState autocast;
};

class CheckpointedLLevel : public torch::autograd::Function<CheckpointedLLevel> {
 public:
  /// h, injection: (B, S, D); params: model->L_level->parameters() (their gradients flow through here).
  /// Returns {model->l_level(h, injection, cs, gen)}, (B, S, D).
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h,
                                                const at::Tensor& injection, at::TensorList params,
                                                c10::intrusive_ptr<RecomputeState> state,
                                                std::optional<at::Generator> gen) {
    (void)params;  // read through state->model; passed so that autograd links them to this node
    at::Tensor out = state->model->l_level(h, injection, state->cs, std::move(gen));
    ctx->save_for_backward({h, injection});
    ctx->saved_data["state"] = at::IValue::make_capsule(std::move(state));
    ctx->set_materialize_grads(false);  // an unused output gets no zero-filled gradient
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto state = c10::static_intrusive_pointer_cast<RecomputeState>(ctx->saved_data["state"].toCapsule());
    const auto saved = ctx->get_saved_variables();
    const auto params = state->model->L_level->parameters();
    const size_t n_in = 2 + params.size();
    torch::autograd::variable_list result(n_in + 2);  // + the two non-tensor arguments (no gradient)
    if (!grad_outputs[0].defined()) return result;

    torch::AutoGradMode grad_on(true);
    AutocastScope autocast(state->autocast);
    std::vector<at::Tensor> leaves(2);
    for (size_t i = 0; i < 2; ++i) leaves[i] = saved[i].detach().requires_grad_(ctx->needs_input_grad(i));
    // A fresh clone per backward, so that a retained graph replays the same noise again.
    std::optional<at::Generator> noise;
    if (state->noise) noise = clone_generator(state->noise, state->model->device());
    const at::Tensor out = state->model->l_level(leaves[0], leaves[1], state->cs, noise);
    std::vector<at::Tensor> wrt;
    std::vector<size_t> slot;
    for (size_t i = 0; i < n_in; ++i) {
      if (!ctx->needs_input_grad(i)) continue;
      wrt.push_back(i < 2 ? leaves[i] : params[i - 2]);
      slot.push_back(i);
    }
    if (wrt.empty()) return result;
    const auto grads = torch::autograd::grad({out}, wrt, {grad_outputs[0]}, /*retain_graph=*/false,
                                             /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < slot.size(); ++k) result[slot[k]] = grads[k];
    return result;
  }
};

/// One L_level call, checkpointed when grad mode is on and something requires grad. h, injection: (B, S, D).
at::Tensor checkpointed_l_level(model::EqrModel& model, const at::Tensor& h, const at::Tensor& injection,
                                const std::vector<at::Tensor>& params, bool params_need_grad,
                                const model::CosSin& cs, const std::optional<at::Generator>& gen) {
  if (!torch::GradMode::is_enabled() || !(params_need_grad || h.requires_grad() || injection.requires_grad())) {
    return model->l_level(h, injection, cs, gen);
  }
  auto state = c10::make_intrusive<RecomputeState>();
  state->model = model;
  state->cs = cs;
  state->autocast = AutocastState::current();
  if (model->arch().noise_scale > 0.0) state->noise = clone_generator(gen, model->device());
  return CheckpointedLLevel::apply(h, injection, at::TensorList(params), std::move(state), gen)[0];
}

}  // namespace

std::pair<at::Tensor, at::Tensor> checkpointed_latent_recursion(model::EqrModel& model, at::Tensor z_h,
                                                                at::Tensor z_l, const at::Tensor& x,
                                                                const model::CosSin& cs,
                                                                std::optional<at::Generator> gen) {
  const std::vector<at::Tensor> params = model->L_level->parameters();
  bool params_need_grad = false;
  for (const auto& p : params) params_need_grad = params_need_grad || p.requires_grad();
  const int64_t l_cycles = model->arch().l_cycles;
  for (int64_t i = 0; i < l_cycles; ++i) z_l = checkpointed_l_level(model, z_l, z_h + x, params, params_need_grad, cs, gen);
  z_h = checkpointed_l_level(model, z_h, z_l, params, params_need_grad, cs, gen);
  return {z_h, z_l};
}

std::pair<at::Tensor, at::Tensor> deep_recursion(model::EqrModel& model, at::Tensor z_h, at::Tensor z_l,
                                                 const at::Tensor& x, std::optional<at::Generator> gen,
                                                 bool gradient_checkpoint, std::optional<c10::ScalarType> grad_dtype) {
  const model::CosSin cs = model->cos_sin();
  {
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i + 1 < model->arch().h_cycles; ++i) {
      std::tie(z_h, z_l) = latent_recursion(model, z_h, z_l, x, cs, gen);
    }
  }
  at::Tensor xg = x;
  if (grad_dtype.has_value() && *grad_dtype != x.scalar_type()) {
    z_h = z_h.to(*grad_dtype);
    z_l = z_l.to(*grad_dtype);
    xg = x.to(*grad_dtype);
  }
  if (gradient_checkpoint) return checkpointed_latent_recursion(model, z_h, z_l, xg, cs, gen);
  return latent_recursion(model, z_h, z_l, xg, cs, gen);
}

at::Tensor state_residual(const at::Tensor& z_h, const at::Tensor& z_l, const at::Tensor& prev_h,
                          const at::Tensor& prev_l) {
  torch::NoGradGuard no_grad;
  EQR_CHECK(z_h.dim() == 3 && z_h.sizes() == prev_h.sizes() && z_l.sizes() == prev_l.sizes() &&
                z_l.size(0) == z_h.size(0),
            RuntimeError, "state_residual: states ", z_h.sizes(), ", ", z_l.sizes(), " vs previous ", prev_h.sizes(),
            ", ", prev_l.sizes(), "; expected equal (B, S, D) shapes");
  const auto sq = [](const at::Tensor& a, const at::Tensor& b) {
    const at::Tensor d = (a.detach() - b.detach().to(a.options())).to(torch::kFloat);
    return d.square().sum({1, 2});
  };
  return (sq(z_h, prev_h) + sq(z_l, prev_l)).sqrt();
}

StepOutput step(model::EqrModel& model, const Carry& carry, const Batch& batch, std::optional<at::Generator> gen,
                const StepOptions& options) {
  // 1. Reset halted rows (fresh states, new data, steps 0); the old states are kept for the residual.
  Carry current = reset_halted(model, carry, batch, gen, options.resets);
  const at::Tensor prev_h = carry.z_h.to(current.z_h.options());
  const at::Tensor prev_l = carry.z_l.to(current.z_l.options());

  // 2. Deep recursion on the current data; the embedding is computed once, with grad. Each linear weight
  //    is cast to the forward dtype once for the whole step (it is used h_cycles * (l_cycles + 1) times).
  const model::WeightCastScope casts(*model, model->forward_dtype());
  const at::Tensor x = model->embed(current.data.inputs);
  const auto dtype = model->forward_dtype();
  std::optional<c10::ScalarType> grad_dtype;
  if (options.float32_grad_cycle_on_cpu && model->device().is_cpu() && dtype != at::kFloat &&
      torch::GradMode::is_enabled()) {
    grad_dtype = at::kFloat;
  }
  auto [z_h, z_l] = deep_recursion(model, current.z_h, current.z_l, x, gen, options.gradient_checkpoint, grad_dtype);

  StepOutput out;
  out.logits = model->lm_logits(z_h);
  const at::Tensor q = model->q_logits(z_h);
  out.q_halt_logits = q.select(1, 0);
  out.q_continue_logits = q.select(1, 1);

  // 3. New carry (detached: nothing flows across steps), step counters, residual.
  out.carry = std::move(current);
  out.carry.z_h = z_h.detach().to(dtype);
  out.carry.z_l = z_l.detach().to(dtype);
  {
    torch::NoGradGuard no_grad;
    out.carry.steps = out.carry.steps + 1;
  }
  out.residual = state_residual(out.carry.z_h, out.carry.z_l, prev_h, prev_l);
  return out;
}

}  // namespace eqr::dynamics
