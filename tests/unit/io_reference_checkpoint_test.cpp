// Reference checkpoints: prefixes stripped, EMA shadow and step found, config as JSON, skipped objects
// listed; apply_state_dict copies by name and reports missing / unexpected keys and shape mismatches.
// The module under test is built here with the reference parameter names (spec 1.2); it does not
// depend on eqr's model module.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "eqr/core/error.h"
#include "eqr/io/reference_checkpoint.h"
#include "test_support.h"

namespace eqr::io {
namespace {

std::filesystem::path fixture(const std::string& name) {
  return eqr::test::source_dir() / "tests" / "fixtures" / "reference_ckpt" / name;
}

nlohmann::json expected() {
  static const nlohmann::json j = [] {
    std::ifstream in(fixture("expected.json"));
    return nlohmann::json::parse(in);
  }();
  return j;
}

at::Tensor expected_tensor(const nlohmann::json& e) {
  const auto values = e["values"].get<std::vector<double>>();
  return torch::tensor(values, torch::kDouble).reshape(e["shape"].get<std::vector<int64_t>>());
}

// ---- a module named like the reference inner network (tiny: V=5, D=4, S=3, I=8, I_t=4) ----

struct LinearNoBias : torch::nn::Module {
  LinearNoBias(int64_t out, int64_t in) { weight = register_parameter("weight", torch::zeros({out, in})); }
  torch::Tensor weight;
};
struct SwiGlu : torch::nn::Module {
  SwiGlu(int64_t dim, int64_t inter) {
    gate_up_proj = register_module("gate_up_proj", std::make_shared<LinearNoBias>(2 * inter, dim));
    down_proj = register_module("down_proj", std::make_shared<LinearNoBias>(dim, inter));
  }
  std::shared_ptr<LinearNoBias> gate_up_proj, down_proj;
};
struct Block : torch::nn::Module {
  Block() {
    mlp_t = register_module("mlp_t", std::make_shared<SwiGlu>(3, 4));
    mlp = register_module("mlp", std::make_shared<SwiGlu>(4, 8));
  }
  std::shared_ptr<SwiGlu> mlp_t, mlp;
};
struct Level : torch::nn::Module {
  explicit Level(int n) {
    layers = register_module("layers", torch::nn::ModuleList());
    for (int i = 0; i < n; ++i) layers->push_back(std::make_shared<Block>());
  }
  torch::nn::ModuleList layers{nullptr};
};
struct Embedding : torch::nn::Module {
  Embedding(int64_t v, int64_t d) { embedding_weight = register_parameter("embedding_weight", torch::zeros({v, d})); }
  torch::Tensor embedding_weight;
};
struct Linear : torch::nn::Module {
  Linear(int64_t out, int64_t in) {
    weight = register_parameter("weight", torch::zeros({out, in}));
    bias = register_parameter("bias", torch::zeros({out}));
  }
  torch::Tensor weight, bias;
};
struct TinyEqr : torch::nn::Module {
  explicit TinyEqr(int64_t vocab = 5) {
    embed_tokens = register_module("embed_tokens", std::make_shared<Embedding>(vocab, 4));
    lm_head = register_module("lm_head", std::make_shared<LinearNoBias>(vocab, 4));
    q_head = register_module("q_head", std::make_shared<Linear>(2, 4));
    L_level = register_module("L_level", std::make_shared<Level>(1));
    rope_cos = register_buffer("rope_cos", torch::ones({3, 4}));  // a non-persistent buffer in the reference
  }
  std::shared_ptr<Embedding> embed_tokens;
  std::shared_ptr<LinearNoBias> lm_head;
  std::shared_ptr<Linear> q_head;
  std::shared_ptr<Level> L_level;
  torch::Tensor rope_cos;
};

// ---- load_reference_checkpoint ----

TEST(ReferenceCheckpoint, StripsPrefixes) {
  EXPECT_EQ(strip_reference_prefixes("_orig_mod.model.inner.q_head.bias"), "q_head.bias");
  EXPECT_EQ(strip_reference_prefixes("model.inner._orig_mod.lm_head.weight"), "lm_head.weight");
  EXPECT_EQ(strip_reference_prefixes("L_level.layers.0.mlp.down_proj.weight"), "L_level.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(strip_reference_prefixes("model.innerX"), "model.innerX");
  EXPECT_EQ(strip_reference_prefixes("_orig_mod."), "_orig_mod.");  // nothing would be left: kept
}

TEST(ReferenceCheckpoint, ReadsModelEmaStepConfigAndSkips) {
  const ReferenceCheckpoint ref = load_reference_checkpoint(fixture("reference_small.pth").string());
  const auto order = expected()["model_order"].get<std::vector<std::string>>();
  ASSERT_EQ(ref.model.size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(ref.model[i].first, order[i]);
    EXPECT_TRUE(ref.model[i].second.device().is_cpu());
    EXPECT_TRUE(torch::equal(ref.model[i].second.to(torch::kDouble), expected_tensor(expected()["model"][order[i]])))
        << order[i];
  }
  ASSERT_TRUE(ref.ema.has_value());
  ASSERT_EQ(ref.ema->size(), order.size());
  for (const auto& [name, t] : *ref.ema) {
    EXPECT_TRUE(torch::equal(t.to(torch::kDouble), expected_tensor(expected()["ema"][name]))) << name;
  }
  ASSERT_TRUE(ref.ema_mu.has_value());
  EXPECT_DOUBLE_EQ(*ref.ema_mu, 0.999);
  EXPECT_EQ(ref.step, std::optional<int64_t>(5000));
  EXPECT_EQ(ref.total_steps, std::optional<int64_t>(50000));
  EXPECT_EQ(ref.config["arch"]["H_cycles"], 3);
  EXPECT_EQ(ref.config["lr"], 1e-4);
  EXPECT_EQ(ref.top_level_keys.front(), "step");
  const auto has_skip = [&](const std::string& s) {
    return std::find(ref.skipped.begin(), ref.skipped.end(), s) != ref.skipped.end();
  };
  EXPECT_TRUE(has_skip("carry: models.recursive_reasoning.eqr.EqRCarry"));
  EXPECT_TRUE(has_skip("numpy[1]: numpy.core.multiarray._reconstruct"));
  const auto has_note = [&](const std::string& needle) {
    for (const auto& n : ref.notes) {
      if (n.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has_note("model: stripped prefix '_orig_mod.model.inner.'"));
  EXPECT_TRUE(has_note("cuda:0"));
  EXPECT_TRUE(has_note("config.big"));
}

TEST(ReferenceCheckpoint, BareStateDictIsTheModel) {
  const ReferenceCheckpoint ref = load_reference_checkpoint(fixture("state_dict_p4.pth").string());
  ASSERT_EQ(ref.model.size(), 3u);
  EXPECT_EQ(ref.model[0].first, "embed_tokens.embedding_weight");
  EXPECT_EQ(ref.model[2].second.scalar_type(), torch::kHalf);
  EXPECT_FALSE(ref.ema.has_value());
  EXPECT_FALSE(ref.step.has_value());
  EXPECT_TRUE(ref.config.is_null());
}

TEST(ReferenceCheckpoint, NotACheckpointIsAClearError) {
  const auto dir = eqr::test::temp_dir("io_ref");
  eqr::test::write_file(dir / "x.pth", "garbage");
  const std::string msg = test::message_of<CheckpointError>([&] { load_reference_checkpoint((dir / "x.pth").string()); });
  EXPECT_NE(msg.find("x.pth"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected"), std::string::npos) << msg;
}

// ---- apply_state_dict ----

TEST(ApplyStateDict, CopiesEveryParameterByName) {
  const ReferenceCheckpoint ref = load_reference_checkpoint(fixture("reference_small.pth").string());
  TinyEqr m;
  const LoadReport r = apply_state_dict(m, ref.model);
  EXPECT_EQ(r.loaded.size(), ref.model.size());
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.unexpected.empty());
  for (const auto& [name, t] : ref.model) {
    EXPECT_TRUE(torch::equal(m.named_parameters()[name], t)) << name;
  }
  EXPECT_EQ(m.q_head->bias[0].item<float>(), -5.0f);
  EXPECT_TRUE(torch::equal(m.rope_cos, torch::ones({3, 4}))) << "buffers absent from the map are left alone";
  // the EMA shadow goes in the same way
  apply_state_dict(m, *ref.ema);
  EXPECT_EQ(m.q_head->bias[0].item<float>(), -2.5f);
}

TEST(ApplyStateDict, MismatchesAreListedAndNothingIsCopied) {
  const ReferenceCheckpoint ref = load_reference_checkpoint(fixture("reference_small.pth").string());
  TinyEqr m(/*vocab=*/6);  // embed_tokens and lm_head are [6, 4]; checkpoint has [5, 4]
  NamedTensors tensors = ref.model;
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [](const auto& p) { return p.first == "q_head.bias"; }),
                tensors.end());
  tensors.emplace_back("H_init", torch::zeros({4}));
  const std::string msg = test::message_of<CheckpointError>([&] { apply_state_dict(m, tensors); });
  EXPECT_NE(msg.find("embed_tokens.embedding_weight: checkpoint [5, 4] vs module [6, 4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lm_head.weight: checkpoint [5, 4] vs module [6, 4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing from checkpoint: q_head.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected in checkpoint: H_init"), std::string::npos) << msg;
  EXPECT_EQ(m.q_head->weight.abs().sum().item<float>(), 0.0f) << "nothing copied when a check fails";
}

TEST(ApplyStateDict, NonStrictReportsMissingAndUnexpected) {
  TinyEqr m;
  std::map<std::string, at::Tensor> tensors{{"q_head.bias", torch::tensor({1.0f, 2.0f})},
                                            {"extra.weight", torch::zeros({1})},
                                            {"rope_cos", torch::full({3, 4}, 2.0)}};  // double -> float copy
  const LoadReport r = apply_state_dict(m, tensors, /*strict=*/false);
  EXPECT_EQ(r.loaded, (std::vector<std::string>{"q_head.bias", "rope_cos"}));
  EXPECT_EQ(r.unexpected, (std::vector<std::string>{"extra.weight"}));
  EXPECT_EQ(r.missing.size(), m.parameters().size() - 1);
  EXPECT_EQ(m.q_head->bias[1].item<float>(), 2.0f);
  EXPECT_EQ(m.rope_cos[0][0].item<float>(), 2.0f);
  // a shape mismatch is an error even when not strict
  const std::string msg =
      test::message_of<CheckpointError>([&] { apply_state_dict(m, NamedTensors{{"q_head.bias", torch::zeros({3})}}, /*strict=*/false); });
  EXPECT_NE(msg.find("q_head.bias: checkpoint [3] vs module [2]"), std::string::npos) << msg;
}

}  // namespace
}  // namespace eqr::io
