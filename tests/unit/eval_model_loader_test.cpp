// Loading models for evaluation: native checkpoints (EMA vs raw weights, overrides, strict shapes) and the
// reference Hydra arch mapping.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "eqr/eval/model_loader.h"
#include "eqr/io/checkpoint.h"
#include "fixtures.h"
#include "test_support.h"

namespace eqr::eval {
namespace {

config::RunConfig tiny_config() {
  config::RunConfig c;
  test::shrink_to_width16(c.arch);
  c.arch.seq_len = 16;
  c.arch.vocab_size = 6;
  c.arch.board_height = 4;
  c.arch.board_width = 4;
  c.compute.forward_dtype = "float32";
  c.data.box_rows = 2;
  c.data.box_cols = 2;
  return c;
}

std::string save_tiny(const std::string& tag, model::EqrModel* out = nullptr) {
  const auto cfg = tiny_config();
  torch::manual_seed(1);
  model::EqrModel m(model::EqrModelOptions(cfg.arch, cfg.compute));
  io::Checkpoint ck;
  for (const auto& kv : m->state_dict()) {
    ck.tensors["model/" + kv.key()] = kv.value().detach().clone();
    ck.tensors["ema/" + kv.key()] = kv.value().detach() * 0.5;
  }
  ck.meta["config"] = config::to_json(cfg);
  ck.meta["step"] = 12;
  const std::string path = (test::temp_dir(tag) / "tiny.eqrckpt").string();
  io::save_checkpoint(ck, path);
  if (out) *out = m;
  return path;
}

TEST(EvalModelLoader, NativeCheckpointEmaOrRawWeights) {
  model::EqrModel ref{nullptr};
  const std::string path = save_tiny("loader_native", &ref);
  const auto ema = load_model(path, torch::kCPU, true, {});
  EXPECT_EQ(ema.format, "native");
  EXPECT_EQ(ema.weights, "ema");
  EXPECT_EQ(ema.step, 12);
  EXPECT_EQ(ema.config.arch.hidden_size, 16);
  EXPECT_FALSE(ema.model->is_training());
  const auto raw = load_model(path, torch::kCPU, false, {});
  EXPECT_EQ(raw.weights, "model");
  const auto want = ref->state_dict();
  const auto got_ema = ema.model->state_dict();
  const auto got_raw = raw.model->state_dict();
  for (const auto& kv : want) {
    EXPECT_TRUE(torch::equal(got_raw[kv.key()], kv.value())) << kv.key();
    EXPECT_TRUE(torch::equal(got_ema[kv.key()], kv.value() * 0.5)) << kv.key();
  }
}

TEST(EvalModelLoader, OverridesApplyAndShapesAreStrict) {
  const std::string path = save_tiny("loader_strict");
  const auto m = load_model(path, torch::kCPU, true, {"arch.noise_scale=0", "eval.depth=[2,8]"});
  EXPECT_EQ(m.config.arch.noise_scale, 0.0);
  EXPECT_EQ(m.config.eval.depth, (std::vector<int64_t>{2, 8}));
  EXPECT_THROW(load_model(path, torch::kCPU, true, {"arch.hidden_size=32"}), CheckpointError);
  EXPECT_THROW(load_model(path, torch::kCPU, true, {"arch.nonsense=1"}), ConfigError);
  EXPECT_THROW(load_model(path + ".missing", torch::kCPU, true, {}), Error);
}

TEST(EvalModelLoader, ConfigFileSuppliesRunTimeSectionsNotTheArch) {
  const std::string path = save_tiny("loader_cfg");
  const auto dir = test::temp_dir("loader_cfg_file");
  test::write_file(dir / "c.yaml", "arch:\n  hidden_size: 64\neval:\n  breadth: [1, 4]\n");
  const auto m = load_model(path, torch::kCPU, true, {}, (dir / "c.yaml").string());
  EXPECT_EQ(m.config.arch.hidden_size, 16);  // trained arch wins
  EXPECT_EQ(m.config.eval.breadth, (std::vector<int64_t>{1, 4}));
}

TEST(EvalModelLoader, ReferenceHydraArchMapping) {
  nlohmann::ordered_json ref = {
      {"arch",
       {{"name", "recursive_reasoning.eqr@EqR"}, {"H_cycles", 3}, {"L_cycles", 6}, {"L_layers", 2}, {"H_layers", 0},
        {"lambda_", 0.9}, {"hidden_size", 512}, {"num_heads", 8}, {"expansion", 4}, {"mlp_t", true},
        {"pos_encodings", nullptr}, {"noise_scale", 0.02}, {"H_init_std", 0.5}, {"L_init_std", 1.5},
        {"halt_max_steps", 16}, {"puzzle_emb_ndim", 0}, {"forward_dtype", "bfloat16"}, {"weird_knob", 1},
        {"loss", {{"name", "losses@ACTLossHead"}}}}},
      {"lr", 1e-4}};
  io::TensorMap t;
  t["embed_tokens.embedding_weight"] = torch::zeros({11, 32});
  t["L_level.layers.0.mlp_t.gate_up_proj.weight"] = torch::zeros({512, 81});
  t["L_level.layers.1.mlp.down_proj.weight"] = torch::zeros({32, 256});
  std::vector<std::string> notes;
  const auto arch = reference_arch_tree(ref, t, &notes);
  EXPECT_EQ(arch["h_cycles"], 3);
  EXPECT_EQ(arch["l_cycles"], 6);
  EXPECT_EQ(arch["l_layers"], 2);
  EXPECT_DOUBLE_EQ(arch["lambda"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(arch["h_init_std"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(arch["l_init_std"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(arch["noise_scale"].get<double>(), 0.02);
  EXPECT_EQ(arch["pos_encodings"], "none");
  EXPECT_EQ(arch["variant"], "eqr");
  EXPECT_EQ(arch["hidden_size"], 32);  // the tensors win over the config
  EXPECT_EQ(arch["vocab_size"], 11);
  EXPECT_EQ(arch["seq_len"], 81);
  EXPECT_FALSE(arch.contains("puzzle_emb_ndim"));
  bool noted = false;
  for (const auto& n : notes) noted |= n.find("weird_knob") != std::string::npos;
  EXPECT_TRUE(noted);
  // The mapped tree is a valid eqr arch.
  EXPECT_NO_THROW(config::arch_from_json(config::Tree{{"arch", arch}}["arch"]));
}

TEST(EvalModelLoader, ReferencePthFixtureIsReadAndMappedFromItsHydraConfig) {
  // The io fixture is a real torch.save zip shaped like a reference checkpoint (prefixed keys, Hydra config,
  // EMA shadow) with made-up tiny widths (V 5, D 4, S 3) that are no Sudoku board: the import must get as
  // far as the config built from the Hydra tree and the tensors, and reject it naming those values.
  const auto path = test::source_dir() / "tests" / "fixtures" / "reference_ckpt" / "reference_small.pth";
  try {
    load_model(path.string(), torch::kCPU, true, {});
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'arch.seq_len' = 3"), std::string::npos) << msg;      // from the token-MLP weight
    EXPECT_NE(msg.find("'arch.vocab_size' = 5"), std::string::npos) << msg;   // from embed_tokens (V, D)
  }
}

/// A reference import in memory (what io::to_native makes of a .pth): model/ and ema/ tensors of a tiny
/// model under reference names, meta.source "reference" and a Hydra config tree.
io::Checkpoint reference_like(model::EqrModel* out) {
  config::ArchConfig a = tiny_config().arch;
  torch::manual_seed(5);
  model::EqrModel m{model::EqrModelOptions(a, test::float32_compute())};
  io::Checkpoint ck;
  for (const auto& kv : m->state_dict()) {
    ck.tensors["model/" + kv.key()] = kv.value().detach().clone();
    ck.tensors["ema/" + kv.key()] = kv.value().detach() * 2.0;
  }
  ck.meta["source"] = "reference";
  ck.meta["step"] = 5000;
  ck.meta["reference_config"] = {
      {"arch",
       {{"name", "recursive_reasoning.eqr@EqR"}, {"H_cycles", 2}, {"L_cycles", 1}, {"L_layers", 1},
        {"hidden_size", 16}, {"num_heads", 2}, {"expansion", 1.0}, {"mlp_t", true}, {"pos_encodings", nullptr},
        {"lambda_", 0.95}, {"noise_scale", 0.01}, {"forward_dtype", "float32"}, {"board_height", 4},
        {"board_width", 4}}},
      {"global_batch_size", 768}};
  if (out) *out = m;
  return ck;
}

TEST(EvalModelLoader, ReferenceImportBuildsTheArchAndLoadsEma) {
  model::EqrModel ref{nullptr};
  const auto m = load_model(reference_like(&ref), "ref.pth", torch::kCPU, true, {});
  EXPECT_EQ(m.format, "reference");
  EXPECT_EQ(m.weights, "ema");
  EXPECT_EQ(m.step, 5000);
  EXPECT_EQ(m.config.arch.h_cycles, 2);
  EXPECT_EQ(m.config.arch.seq_len, 16);
  EXPECT_EQ(m.config.arch.vocab_size, 6);
  EXPECT_EQ(m.config.data.box_rows, 2);  // board from seq_len 16
  EXPECT_EQ(m.config.data.box_cols, 2);
  for (const auto& kv : ref->state_dict()) {
    EXPECT_TRUE(torch::equal(m.model->state_dict()[kv.key()], kv.value() * 2.0)) << kv.key();
  }
  const auto raw = load_model(reference_like(nullptr), "ref.pth", torch::kCPU, false, {});
  EXPECT_EQ(raw.weights, "model");
}

TEST(EvalModelLoader, ReferenceImportChecksShapesStrictly) {
  io::Checkpoint ck = reference_like(nullptr);
  ck.tensors["model/lm_head.weight"] = torch::zeros({6, 8});
  ck.tensors.erase("ema/lm_head.weight");
  try {
    load_model(ck, "ref.pth", torch::kCPU, false, {});
    ADD_FAILURE() << "expected a CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("lm_head.weight"), std::string::npos) << e.what();
  }
  // A missing parameter (EMA without lm_head) is an error too: strict.
  EXPECT_THROW(load_model(ck, "ref.pth", torch::kCPU, true, {}), CheckpointError);
}

}  // namespace
}  // namespace eqr::eval
