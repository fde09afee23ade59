// EqrModel (reference/eqr_spec.md §1.2-1.3): parameter names = reference state_dict keys, parameter counts
// of the paper configs, q_head init, scaled embedding, buffers kept out of the parameters / state dict,
// forward dtype, blocks per step, boundary shape checks.

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/model/eqr_model.h"
#include "fixtures.h"

namespace eqr::model {
namespace {

config::ArchConfig tiny_arch() { return eqr::test::tiny_arch_4x4(); }  // S 16, D 32, V 6

TEST(EqrModel, PaperParameterCounts) {
  torch::manual_seed(0);
  const config::ArchConfig paper;  // ArchConfig defaults = the paper's Sudoku config
  EqrModel m(EqrModelOptions(paper, eqr::test::cpu_float32_compute()));
  EXPECT_EQ(m->num_parameters(), 4855298);
  EXPECT_EQ(m->blocks_per_step(), 42);
  const auto p = m->named_parameters();
  EXPECT_EQ(p["L_level.layers.0.mlp_t.gate_up_proj.weight"].sizes(), torch::IntArrayRef({512, 81}));
  EXPECT_EQ(p["L_level.layers.0.mlp_t.down_proj.weight"].sizes(), torch::IntArrayRef({81, 256}));
  EXPECT_EQ(p["L_level.layers.1.mlp.gate_up_proj.weight"].sizes(), torch::IntArrayRef({3072, 512}));
  EXPECT_EQ(p["L_level.layers.1.mlp.down_proj.weight"].sizes(), torch::IntArrayRef({512, 1536}));

  config::ArchConfig attention = paper;
  attention.mlp_t = false;
  EqrModel a(EqrModelOptions(attention, eqr::test::cpu_float32_compute()));
  EXPECT_EQ(a->num_parameters(), 6828034);
  EXPECT_EQ(a->named_parameters()["L_level.layers.0.self_attn.qkv_proj.weight"].sizes(),
            torch::IntArrayRef({1536, 512}));
}

TEST(EqrModel, StepMatmulFlopsOfThePaperConfigByHand) {
  torch::manual_seed(0);
  const config::ArchConfig paper;
  EqrModel m(EqrModelOptions(paper, eqr::test::cpu_float32_compute()));
  // One layer at B = 1: mlp_t mixes along S on D rows: 2 * 512 * (512*81 + 81*256) = 63,700,992;
  // the channel SwiGLU on S rows: 2 * 81 * (3072*512 + 512*1536) = 382,205,952. Two layers per L_level call.
  const double call = 2.0 * (63700992.0 + 382205952.0);
  const double head = 2.0 * 81 * 512 * static_cast<double>(paper.vocab_size);
  const auto f = step_matmul_flops(*m, 1);
  EXPECT_DOUBLE_EQ(f.eval, 21 * call + head);                 // h_cycles 3 * (l_cycles 6 + 1) calls
  EXPECT_DOUBLE_EQ(f.train, f.eval + 2.0 * (7 * call + head));  // backward of the last 7 calls and the head
  EXPECT_DOUBLE_EQ(step_matmul_flops(*m, 768).eval, 768 * f.eval);
  // Attention adds 4 * S^2 * D per block for scores and weighted sum; qkv/o projections count as weights.
  config::ArchConfig att = paper;
  att.mlp_t = false;
  EqrModel a(EqrModelOptions(att, eqr::test::cpu_float32_compute()));
  const double att_call = 2.0 * (2.0 * 81 * (1536.0 * 512 + 512.0 * 512) + 382205952.0 + 4.0 * 81 * 81 * 512);
  EXPECT_DOUBLE_EQ(step_matmul_flops(*a, 1).eval, 21 * att_call + head);
}

TEST(EqrModel, ParameterNamesAreTheReferenceKeys) {
  EqrModel m(EqrModelOptions(tiny_arch(), eqr::test::cpu_float32_compute()));
  const std::vector<std::string> expected = {
      "embed_tokens.embedding_weight",
      "lm_head.weight",
      "q_head.weight",
      "q_head.bias",
      "L_level.layers.0.mlp_t.gate_up_proj.weight",
      "L_level.layers.0.mlp_t.down_proj.weight",
      "L_level.layers.0.mlp.gate_up_proj.weight",
      "L_level.layers.0.mlp.down_proj.weight",
      "L_level.layers.1.mlp_t.gate_up_proj.weight",
      "L_level.layers.1.mlp_t.down_proj.weight",
      "L_level.layers.1.mlp.gate_up_proj.weight",
      "L_level.layers.1.mlp.down_proj.weight",
  };
  EXPECT_EQ(m->named_parameters().keys(), expected);
  auto attn_arch = tiny_arch();
  attn_arch.mlp_t = false;
  EqrModel a(EqrModelOptions(attn_arch, eqr::test::cpu_float32_compute()));
  const auto keys = a->named_parameters().keys();
  EXPECT_EQ(keys[4], "L_level.layers.0.self_attn.qkv_proj.weight");
  EXPECT_EQ(keys[5], "L_level.layers.0.self_attn.o_proj.weight");
  for (const auto& p : m->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
}

TEST(EqrModel, InitialisationOfHeadsAndEmbedding) {
  torch::manual_seed(1);
  config::ArchConfig paper;
  EqrModel m(EqrModelOptions(paper, eqr::test::cpu_float32_compute()));
  EXPECT_TRUE(torch::equal(m->q_head->weight, torch::zeros({2, 512})));
  EXPECT_TRUE(torch::equal(m->q_head->bias, torch::full({2}, -5.0)));
  EXPECT_FALSE(m->lm_head->bias.defined());
  const double std_d = 1.0 / std::sqrt(512.0);
  EXPECT_NEAR(m->embed_tokens->embedding_weight.std().item<double>(), std_d, 0.05 * std_d);
  EXPECT_NEAR(m->lm_head->weight.std().item<double>(), std_d, 0.05 * std_d);
  const auto q = m->q_logits(torch::randn({3, 81, 512}));
  EXPECT_EQ(q.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(q, torch::full({3, 2}, -5.0)));
}

TEST(EqrModel, QHeadReadsTokenZeroInFloat32) {
  torch::manual_seed(2);
  EqrModel m(EqrModelOptions(tiny_arch(), eqr::test::cpu_float32_compute()));
  {
    torch::NoGradGuard no_grad;
    m->q_head->weight.normal_();
  }
  auto z = torch::randn({2, 16, 32});
  const auto q = m->q_logits(z);
  z.narrow(1, 1, 15).normal_();  // other tokens do not matter
  EXPECT_TRUE(torch::equal(q, m->q_logits(z)));
  const auto expected = torch::matmul(z.select(1, 0), m->q_head->weight.t()) + m->q_head->bias;
  EXPECT_TRUE(torch::allclose(q, expected, 1e-5, 1e-5));
}

TEST(EqrModel, ScaledEmbeddingHasGradient) {
  EqrModel m(EqrModelOptions(tiny_arch(), eqr::test::cpu_float32_compute()));
  const auto ids = torch::tensor({0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3}, torch::kInt).view({1, 16});
  const auto x = m->embed(ids);
  ASSERT_EQ(x.sizes(), torch::IntArrayRef({1, 16, 32}));
  EXPECT_TRUE(torch::allclose(x[0][4], std::sqrt(32.0) * m->embed_tokens->embedding_weight[4]));
  x.sum().backward();
  EXPECT_TRUE(m->embed_tokens->embedding_weight.grad().defined());
  EXPECT_THROW(m->embed(torch::zeros({1, 15}, torch::kLong)), RuntimeError);
}

TEST(EqrModel, InitBuffersAreNotParametersAndPersistOnlyForFixedInit) {
  EqrModel m(EqrModelOptions(tiny_arch(), eqr::test::cpu_float32_compute()));
  for (const auto& key : m->named_parameters().keys()) {
    EXPECT_NE(key, "H_init");
    EXPECT_NE(key, "L_init");
  }
  const auto buffers = m->named_buffers();
  ASSERT_TRUE(buffers.contains("H_init"));
  EXPECT_EQ(buffers["H_init"].sizes(), torch::IntArrayRef({32}));
  EXPECT_FALSE(m->state_dict().contains("H_init"));
  EXPECT_EQ(m->state_dict().size(), m->named_parameters().size());

  auto trm = tiny_arch();
  trm.variant = config::Variant::kTrm;
  trm.lambda = 1.0;
  trm.noise_scale = 0.0;
  trm.init = config::StateInit::kFixed;
  EqrModel t(EqrModelOptions(trm, eqr::test::cpu_float32_compute()));
  EXPECT_TRUE(t->state_dict().contains("H_init"));
  EXPECT_TRUE(t->state_dict().contains("L_init"));
  EXPECT_EQ(t->state_dict().size(), t->named_parameters().size() + 2);
  // variant trm: no damping, no noise.
  EXPECT_EQ(t->L_level->options.lambda(), 1.0);
  EXPECT_EQ(t->L_level->options.noise_scale(), 0.0);
}

TEST(EqrModel, ForwardDtypeOnCpuFollowsTheConfigOrTheCpu) {
  const auto a = tiny_arch();
  config::ComputeConfig c;
  c.forward_dtype = "bfloat16";
  c.reduced_precision_on_cpu = false;
  EqrModel m(EqrModelOptions(a, c));
  EXPECT_EQ(m->forward_dtype(), torch::kFloat);
  c.reduced_precision_on_cpu = std::nullopt;  // auto
  EqrModel automatic(EqrModelOptions(a, c));
  EXPECT_EQ(automatic->forward_dtype(), cpu_has_native_bf16() ? torch::kBFloat16 : torch::kFloat);
  c.reduced_precision_on_cpu = true;
  EqrModel r(EqrModelOptions(a, c));
  EXPECT_EQ(r->forward_dtype(), torch::kBFloat16);
  EXPECT_EQ(r->embed(torch::zeros({1, 16}, torch::kLong)).scalar_type(), torch::kBFloat16);
}

TEST(EqrModel, RopeOnlyForTheAttentionVariant) {
  EqrModel m(EqrModelOptions(tiny_arch(), eqr::test::cpu_float32_compute()));
  EXPECT_FALSE(m->cos_sin().defined());
  auto a = tiny_arch();
  a.mlp_t = false;
  a.pos_encodings = "rope2d";
  EqrModel r(EqrModelOptions(a, eqr::test::cpu_float32_compute()));
  EXPECT_TRUE(r->cos_sin().is_2d());
  a.pos_encodings = "none";
  EqrModel n(EqrModelOptions(a, eqr::test::cpu_float32_compute()));
  EXPECT_FALSE(n->cos_sin().defined());
}

TEST(EqrModel, RejectsBadArch) {
  // An unknown variant cannot be spelled in C++ any more (config::Variant); the config names the valid ones.
  try {
    config::load("", {"arch.variant=hrm"});
    ADD_FAILURE() << "arch.variant=hrm was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("one of eqr, trm, feedforward"), std::string::npos) << e.what();
  }
  config::ComputeConfig bad_dtype;
  bad_dtype.forward_dtype = "int8";
  EXPECT_THROW(EqrModel(EqrModelOptions(tiny_arch(), bad_dtype)), ConfigError);
  auto a = tiny_arch();
  a.h_cycles = 0;
  EXPECT_THROW(EqrModel(EqrModelOptions(a, eqr::test::cpu_float32_compute())), ConfigError);
}

}  // namespace
}  // namespace eqr::model
