// EqrModel (reference/eqr_spec.md §1.2-1.3). Shape legend: B batch, S cells, D hidden, V vocab.

#include "eqr/model/eqr_model.h"

#include <cmath>

#include <torch/torch.h>

#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/model/init.h"

namespace eqr::model {

namespace {

void check_arch(const config::ArchConfig& a) {
  EQR_CHECK(a.hidden_size > 0 && a.seq_len > 0 && a.vocab_size > 0, ConfigError,
            "config keys 'arch.hidden_size' = ", a.hidden_size, ", 'arch.seq_len' = ", a.seq_len,
            ", 'arch.vocab_size' = ", a.vocab_size, ": expected positive sizes");
  EQR_CHECK(a.h_cycles >= 1 && a.l_cycles >= 0, ConfigError, "config keys 'arch.h_cycles' = ", a.h_cycles,
            ", 'arch.l_cycles' = ", a.l_cycles, ": expected h_cycles >= 1 and l_cycles >= 0");
  EQR_CHECK(a.halt_max_steps >= 1, ConfigError, "config key 'arch.halt_max_steps' = ", a.halt_max_steps,
            ": expected >= 1");
}

}  // namespace

int64_t blocks_per_step(const config::ArchConfig& arch) {
  return arch.h_cycles * (arch.l_cycles + 1) * arch.l_layers;
}

EqrModelImpl::EqrModelImpl(const EqrModelOptions& options_) : options(options_) {
  const auto& a = options.arch();
  check_arch(a);
  parse_dtype(options.compute().forward_dtype);
  const double embed_scale = std::sqrt(static_cast<double>(a.hidden_size));
  // Registration order = the reference's (embed_tokens, lm_head, q_head, rotary_emb, L_level, H_init, L_init).
  embed_tokens = register_module(
      "embed_tokens", CastedEmbedding(CastedEmbeddingOptions(a.vocab_size, a.hidden_size, 1.0 / embed_scale)));
  lm_head = register_module("lm_head", CastedLinear(CastedLinearOptions(a.hidden_size, a.vocab_size)));
  q_head = register_module("q_head", CastedLinear(CastedLinearOptions(a.hidden_size, 2).bias(true)));
  // RoPE is consumed only by attention; with mlp_t the reference builds the (non-persistent) caches and
  // ignores them, so they are skipped here (no state-dict difference).
  if (!a.mlp_t && a.pos_encodings != "none") {
    rotary_emb = register_module(
        "rotary_emb", RotaryEmbedding(RotaryEmbeddingOptions(a.hidden_size / a.num_heads, a.seq_len)
                                          .kind(a.pos_encodings)
                                          .board_height(a.board_height)
                                          .board_width(a.board_width)
                                          .theta(a.rope_theta)));
  }
  auto module_options = ReasoningModuleOptions::from(a);
  module_options.block().fused(options.compute().fused_kernels);
  module_options.block().attention_kernel(options.attention_kernel());
  L_level = register_module("L_level", ReasoningModule(module_options));
  const CpuGemm cpu_gemm = parse_cpu_gemm(options.compute().cpu_gemm);
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* linear = dynamic_cast<CastedLinearImpl*>(m.get())) linear->options.cpu_gemm(cpu_gemm);
  }
  H_init = register_buffer("H_init", trunc_normal({a.hidden_size}, a.h_init_std, torch::kFloat));
  L_init = register_buffer("L_init", trunc_normal({a.hidden_size}, a.l_init_std, torch::kFloat));
  {
    torch::NoGradGuard no_grad;
    q_head->weight.zero_();
    q_head->bias.fill_(a.q_head_bias_init);
  }
}

c10::Device EqrModelImpl::device() const { return embed_tokens->embedding_weight.device(); }

c10::ScalarType EqrModelImpl::forward_dtype() const {
  return forward_dtype_for(compute().forward_dtype, device(), compute().reduced_precision_on_cpu);
}

at::Tensor EqrModelImpl::embed(const at::Tensor& inputs) {
  const auto& a = arch();
  EQR_CHECK(inputs.dim() == 2 && inputs.size(1) == a.seq_len, RuntimeError, "EqrModel: inputs ", inputs.sizes(),
            ", expected (B, ", a.seq_len, ") token ids");
  const double embed_scale = std::sqrt(static_cast<double>(a.hidden_size));
  return embed_scale * embed_tokens->forward(inputs.to(torch::kInt), forward_dtype());
}

CosSin EqrModelImpl::cos_sin() const { return rotary_emb ? rotary_emb->forward() : CosSin{}; }

at::Tensor EqrModelImpl::l_level(const at::Tensor& h, const at::Tensor& injection, const CosSin& cs,
                                 std::optional<at::Generator> gen) {
  return L_level->forward(h, injection, cs, std::move(gen));
}

at::Tensor EqrModelImpl::lm_logits(const at::Tensor& z_h) { return lm_head->forward(z_h); }

at::Tensor EqrModelImpl::q_logits(const at::Tensor& z_h) {
  EQR_CHECK(z_h.dim() == 3 && z_h.size(0) >= 0 && z_h.size(1) >= 1, RuntimeError, "EqrModel: z_h ", z_h.sizes(),
            ", expected (B, S, D)");
  return q_head->forward(z_h.select(1, 0)).to(torch::kFloat);
}

std::vector<std::string> EqrModelImpl::persistent_buffer_names() const {
  if (arch().init == config::StateInit::kFixed) return {"H_init", "L_init"};
  return {};
}

torch::OrderedDict<std::string, at::Tensor> EqrModelImpl::state_dict() const {
  torch::OrderedDict<std::string, at::Tensor> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) out.insert(item.key(), item.value());
  const auto buffers = named_buffers(/*recurse=*/true);
  for (const auto& name : persistent_buffer_names()) out.insert(name, buffers[name]);
  return out;
}

int64_t EqrModelImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters(/*recurse=*/true)) n += p.numel();
  return n;
}

int64_t EqrModelImpl::blocks_per_step() const { return model::blocks_per_step(arch()); }

StepFlops step_matmul_flops(EqrModelImpl& model, int64_t batch) {
  const auto& a = model.arch();
  const double b = static_cast<double>(batch), s = static_cast<double>(a.seq_len),
               d = static_cast<double>(a.hidden_size), v = static_cast<double>(a.vocab_size);
  double per_call = 0;  // one L_level call (l_layers blocks)
  for (const auto& p : model.L_level->named_parameters(/*recurse=*/true)) {
    if (p.value().dim() != 2) continue;
    const bool token_mixing = p.key().find("mlp_t.") != std::string::npos;
    per_call += 2.0 * (token_mixing ? b * d : b * s) * static_cast<double>(p.value().numel());
  }
  if (!a.mlp_t) per_call += static_cast<double>(a.l_layers) * 4.0 * b * s * s * d;
  const double head = 2.0 * b * s * d * v;
  const double calls = static_cast<double>(a.h_cycles * (a.l_cycles + 1));
  const double grad_calls = static_cast<double>(a.l_cycles + 1);
  StepFlops f;
  f.eval = calls * per_call + head;
  f.train = f.eval + 2.0 * (grad_calls * per_call + head);
  return f;
}

}  // namespace eqr::model
