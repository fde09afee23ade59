// Config loading: YAML/JSON parity, reference defaults, rejection of bad keys/types/values,
// --set overrides, include: bases, and YAML round trips.

#include <gtest/gtest.h>

#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "test_support.h"

namespace eqr::config {
namespace {

using eqr::test::temp_dir;
using eqr::test::write_file;

/// Expects `fn` to throw ConfigError whose message contains every needle.
template <class Fn>
void expect_config_error(Fn fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
  }
}

TEST(ConfigDefaults, MatchReferenceSpecSection8) {
  const RunConfig c;
  // arch (spec §1.2, §1.5, §8)
  EXPECT_EQ(c.arch.variant, Variant::kEqr);
  EXPECT_EQ(c.arch.hidden_size, 512);
  EXPECT_EQ(c.arch.num_heads, 8);
  EXPECT_DOUBLE_EQ(c.arch.expansion, 4.0);
  EXPECT_EQ(c.arch.l_layers, 2);
  EXPECT_EQ(c.arch.h_cycles, 3);
  EXPECT_EQ(c.arch.l_cycles, 6);
  EXPECT_EQ(c.arch.halt_max_steps, 16);
  EXPECT_DOUBLE_EQ(c.arch.halt_exploration_prob, 0.1);
  EXPECT_TRUE(c.arch.mlp_t);
  EXPECT_EQ(c.arch.pos_encodings, "rope");
  EXPECT_EQ(c.arch.board_height, 9);
  EXPECT_EQ(c.arch.board_width, 9);
  EXPECT_DOUBLE_EQ(c.arch.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.arch.lambda, 0.95);
  EXPECT_DOUBLE_EQ(c.arch.noise_scale, 0.01);
  EXPECT_EQ(c.arch.init, StateInit::kRandom);
  EXPECT_DOUBLE_EQ(c.arch.h_init_std, 1.0);
  EXPECT_DOUBLE_EQ(c.arch.l_init_std, 1.0);
  EXPECT_EQ(c.compute.forward_dtype, "bfloat16");
  EXPECT_DOUBLE_EQ(c.arch.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.arch.q_head_bias_init, -5.0);
  EXPECT_EQ(c.arch.vocab_size, 11);
  EXPECT_EQ(c.arch.seq_len, 81);
  // data (spec §4.2 builder defaults)
  EXPECT_FALSE(c.data.subsample_size.has_value());
  EXPECT_EQ(c.data.num_aug, 0);
  EXPECT_FALSE(c.data.min_difficulty.has_value());
  EXPECT_EQ(c.data.seed, 42);
  EXPECT_EQ(c.data.box_rows, 3);
  EXPECT_EQ(c.data.box_cols, 3);
  // train (spec §3, §8)
  EXPECT_EQ(c.train.global_batch_size, 768);
  EXPECT_EQ(c.train.epochs, 50000);
  EXPECT_EQ(c.train.eval_interval_steps, 5000);
  EXPECT_EQ(c.train.checkpoint_interval_steps, 5000);
  EXPECT_FALSE(c.train.max_steps.has_value());
  EXPECT_EQ(c.train.seed, 0);
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-4);
  EXPECT_DOUBLE_EQ(c.train.lr_min_ratio, 1.0);
  EXPECT_EQ(c.train.lr_warmup_steps, 2000);
  EXPECT_DOUBLE_EQ(c.train.beta1, 0.9);
  EXPECT_DOUBLE_EQ(c.train.beta2, 0.95);
  EXPECT_DOUBLE_EQ(c.train.weight_decay, 1.0);
  EXPECT_EQ(c.train.loss_type, "stablemax_cross_entropy");
  EXPECT_DOUBLE_EQ(c.train.q_halt_loss_weight, 0.5);
  EXPECT_TRUE(c.train.ema);
  EXPECT_DOUBLE_EQ(c.train.ema_rate, 0.999);
  EXPECT_FALSE(c.train.ema_warmup);
  EXPECT_FALSE(c.train.grad_clip_norm.has_value());
  EXPECT_FALSE(c.train.gradient_checkpoint);
  EXPECT_FALSE(c.train.load_checkpoint.has_value());
  EXPECT_FALSE(c.train.load_weights_only);
  EXPECT_FALSE(c.train.load_strict);
  EXPECT_EQ(c.train.steps_hist_log_interval_steps, 1000);
  EXPECT_FALSE(c.train.grad_norm_log_interval_steps.has_value());
  // eval (spec §5, §8)
  EXPECT_EQ(c.eval.depth, std::vector<int64_t>{16});
  EXPECT_EQ(c.eval.breadth, std::vector<int64_t>{1});
  EXPECT_FALSE(c.eval.convergence_top_k.has_value());
  EXPECT_EQ(c.eval.convergence_window, 3);
  EXPECT_FALSE(c.eval.global_batch_size.has_value());
  EXPECT_FALSE(c.eval.max_eval_steps.has_value());
  EXPECT_EQ(c.eval.scheduler, "fixed");
}

TEST(ConfigDefaults, EveryKnobIsWritten) {
  const Tree t = to_json(RunConfig{});
  EXPECT_EQ(t["arch"].size(), 23u);
  EXPECT_EQ(t["compute"].size(), 4u);
  EXPECT_EQ(t["compute"]["cpu_gemm"], "auto");
  EXPECT_TRUE(t["compute"]["reduced_precision_on_cpu"].is_null());  // auto
  EXPECT_TRUE(t["compute"]["fused_kernels"].get<bool>());
  EXPECT_FALSE(t["arch"].contains("forward_dtype"));  // how a run computes is not architecture
  EXPECT_TRUE(t["train"].contains("grad_clip_norm"));
  EXPECT_TRUE(t["train"]["grad_clip_norm"].is_null());
  EXPECT_TRUE(t["eval"]["depth"].is_array());
  // Defaults validate.
  EXPECT_NO_THROW(validate(RunConfig{}));
}

TEST(ConfigLoad, YamlAndJsonGiveEqualStructs) {
  const auto dir = temp_dir("cfg");
  write_file(dir / "a.yaml",
             "name: parity\n"
             "arch:\n  hidden_size: 64\n  lambda: 0.5\n  mlp_t: false\n  num_heads: 4\n  pos_encodings: rope2d\n"
             "train:\n  lr: 3.0e-4\n  max_steps: 100\n  grad_clip_norm: 1.0\n"
             "eval:\n  depth: [16, 64]\n  breadth: 8\n");
  write_file(dir / "a.json",
             R"({"name": "parity", "arch": {"hidden_size": 64, "lambda": 0.5, "mlp_t": false, "num_heads": 4,
                 "pos_encodings": "rope2d"},
                 "train": {"lr": 3e-4, "max_steps": 100, "grad_clip_norm": 1.0},
                 "eval": {"depth": [16, 64], "breadth": [8]}})");
  const RunConfig y = load((dir / "a.yaml").string());
  const RunConfig j = load((dir / "a.json").string());
  EXPECT_TRUE(y == j);
  EXPECT_EQ(y.arch.hidden_size, 64);
  EXPECT_DOUBLE_EQ(y.train.lr, 3e-4);
  EXPECT_EQ(y.train.max_steps.value(), 100);
  EXPECT_DOUBLE_EQ(y.train.grad_clip_norm.value(), 1.0);
  EXPECT_EQ(y.eval.depth, (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(y.eval.breadth, std::vector<int64_t>{8});
  RunConfig different = y;
  different.arch.l_cycles = 5;
  EXPECT_FALSE(different == y);
}

TEST(ConfigLoad, RoundTripThroughYamlText) {
  RunConfig c;
  c.name = "123";  // a string that looks like a number must stay a string
  c.arch.noise_scale = 0.0;
  c.arch.rms_norm_eps = 1e-6;
  c.train.load_checkpoint = "runs/x/checkpoints/latest";
  c.eval.convergence_top_k = 1;
  c.data.min_difficulty = 20;
  const std::string text = to_yaml(to_json(c));
  const RunConfig back = from_json(parse_yaml(text));
  EXPECT_TRUE(back == c) << text;
  EXPECT_EQ(back.name, "123");
}

TEST(ConfigLoad, UnknownKeyNamesDottedPathAndValidKeys) {
  const auto dir = temp_dir("cfg");
  write_file(dir / "bad.yaml", "arch:\n  h_cyles: 2\n");
  expect_config_error([&] { load((dir / "bad.yaml").string()); },
                      {"arch.h_cyles", "did you mean 'arch.h_cycles'", "valid keys under 'arch'", "l_cycles",
                       "bad.yaml"});
  expect_config_error([&] { from_json(Tree::parse(R"({"trian": {}})")); }, {"'trian'", "train", "top level"});
}

TEST(ConfigLoad, RemovedKeyIsAClearErrorInUserConfigs) {
  // train.train_epochs_per_iter was accepted and never read; it is gone, and a config that sets it says so.
  const auto dir = temp_dir("cfg");
  write_file(dir / "old.yaml", "train:\n  train_epochs_per_iter: 5000\n");
  expect_config_error([&] { load((dir / "old.yaml").string()); },
                      {"'train.train_epochs_per_iter' was removed", "delete the key", "old.yaml"});
  expect_config_error([&] { load("", {"train.train_epochs_per_iter=2"}); }, {"train.train_epochs_per_iter", "removed"});
  expect_config_error([] { from_json(Tree::parse(R"({"train": {"train_epochs_per_iter": 2}})"), RemovedKeys::kError); },
                      {"train.train_epochs_per_iter", "removed"});
  // Configs an older eqr stored in its checkpoints still load (the key is ignored with a warning) ...
  const RunConfig stored = from_json(Tree::parse(R"({"train": {"train_epochs_per_iter": 2, "lr": 0.5}})"));
  EXPECT_DOUBLE_EQ(stored.train.lr, 0.5);
  EXPECT_FALSE(to_json(stored)["train"].contains("train_epochs_per_iter"));
  // ... but only removed keys are forgiven; elsewhere the key is unknown as ever.
  expect_config_error([] { from_json(Tree::parse(R"({"arch": {"train_epochs_per_iter": 2}})")); },
                      {"unknown config key 'arch.train_epochs_per_iter'"});
  ASSERT_FALSE(removed_keys().empty());
  EXPECT_EQ(removed_keys().front().first, "train.train_epochs_per_iter");
  // eval.different_init_reset_std was parsed and never read: refused in a user's config, ignored in a stored one.
  expect_config_error([] { load("", {"eval.different_init_reset_std=1.0"}); },
                      {"eval.different_init_reset_std", "removed", "h_init_std"});
  const RunConfig old_eval = from_json(Tree::parse(R"({"eval": {"different_init_reset_std": 1.0, "tol": 0.25}})"));
  EXPECT_DOUBLE_EQ(old_eval.eval.tol, 0.25);
  EXPECT_FALSE(to_json(old_eval)["eval"].contains("different_init_reset_std"));
}

TEST(ConfigLoad, ComputeKeysMovedOutOfArch) {
  // A user's config is told the new name ...
  expect_config_error([] { load("", {"arch.forward_dtype=float32"}); },
                      {"'arch.forward_dtype' moved to 'compute.forward_dtype'"});
  expect_config_error([] { load("", {"arch.cpu_gemm=torch"}); }, {"compute.cpu_gemm"});
  // ... and a config an older eqr stored (checkpoints, --resume) loads with the values moved.
  const RunConfig old = from_json(Tree::parse(
      R"({"arch": {"forward_dtype": "float32", "fused_kernels": false, "reduced_precision_on_cpu": true,
                   "cpu_gemm": "torch", "hidden_size": 64}})"));
  EXPECT_EQ(old.compute.forward_dtype, "float32");
  EXPECT_FALSE(old.compute.fused_kernels);
  EXPECT_EQ(old.compute.reduced_precision_on_cpu, std::optional<bool>(true));
  EXPECT_EQ(old.compute.cpu_gemm, "torch");
  EXPECT_EQ(old.arch.hidden_size, 64);
  // Where both are given, compute's wins (a --config file over an old checkpoint's arch).
  const RunConfig both = from_json(Tree::parse(
      R"({"arch": {"forward_dtype": "float32"}, "compute": {"forward_dtype": "bfloat16"}})"));
  EXPECT_EQ(both.compute.forward_dtype, "bfloat16");
  EXPECT_EQ(arch_from_json(Tree::parse(R"({"forward_dtype": "float32", "l_layers": 3})")).l_layers, 3);
}

TEST(ConfigLoad, EnumsParseOnceAndListTheirNames) {
  const RunConfig c = load("", {"arch.variant=feedforward", "arch.init=fixed", "data.source=built"});
  EXPECT_EQ(c.arch.variant, Variant::kFeedforward);
  EXPECT_EQ(c.arch.init, StateInit::kFixed);
  EXPECT_EQ(c.data.source, DataSource::kBuilt);
  const Tree t = to_json(c);
  EXPECT_EQ(t["arch"]["variant"], "feedforward");  // written back by name
  EXPECT_EQ(t["data"]["source"], "built");
  EXPECT_EQ(from_json(t), c);
  expect_config_error([] { load("", {"data.source=ftp"}); }, {"data.source", "one of generated, csv, built"});
  expect_config_error([] { load("", {"arch.init=zeros"}); }, {"arch.init", "one of random, fixed"});
  expect_config_error([] { load("", {"arch.variant=1"}); }, {"arch.variant", "one of eqr, trm, feedforward"});
  EXPECT_EQ(name_of(Variant::kTrm), "trm");
}

TEST(ConfigLoad, IntervalLogKnobsAcceptNull) {
  const RunConfig c = load("", {"train.steps_hist_log_interval_steps=null", "train.grad_norm_log_interval_steps=5"});
  EXPECT_FALSE(c.train.steps_hist_log_interval_steps.has_value());
  EXPECT_EQ(c.train.grad_norm_log_interval_steps.value(), 5);
  expect_config_error([] { load("", {"train.grad_norm_log_interval_steps=0"}); },
                      {"train.grad_norm_log_interval_steps", ">= 1"});
}

TEST(ConfigLoad, WrongTypeNamesKeyValueAndExpectation) {
  expect_config_error([] { from_json(Tree::parse(R"({"arch": {"h_cycles": "three"}})")); },
                      {"arch.h_cycles", "\"three\"", "string", "an integer >= 1"});
  expect_config_error([] { from_json(Tree::parse(R"({"arch": {"mlp_t": 1}})")); }, {"arch.mlp_t", "true or false"});
  expect_config_error([] { from_json(Tree::parse(R"({"arch": {"hidden_size": 2.5}})")); },
                      {"arch.hidden_size", "2.5"});
  expect_config_error([] { from_json(Tree::parse(R"({"arch": 5})")); }, {"arch", "mapping"});
  expect_config_error([] { from_json(Tree::parse(R"({"eval": {"depth": []}})")); }, {"eval.depth", "non-empty"});
}

TEST(ConfigLoad, OutOfRangeNamesKeyValueAndRange) {
  expect_config_error([] { from_json(Tree::parse(R"({"arch": {"lambda": 1.5}})")); },
                      {"arch.lambda", "1.5", "in [0, 1]"});
  expect_config_error([] { from_json(Tree::parse(R"({"train": {"lr": 0}})")); }, {"train.lr", "> 0"});
  expect_config_error([] { from_json(Tree::parse(R"({"eval": {"depth": [16, 0]}})")); },
                      {"eval.depth[1]", ">= 1"});
  expect_config_error([] { from_json(Tree::parse(R"({"arch": {"pos_encodings": "alibi"}})")); },
                      {"arch.pos_encodings", "\"alibi\"", "one of", "rope2d"});
  expect_config_error([] { from_json(Tree::parse(R"({"train": {"beta2": 1.0}})")); }, {"train.beta2", "[0, 1)"});
}

TEST(ConfigLoad, CrossFieldChecks) {
  expect_config_error([] { from_json(Tree::parse(R"({"arch": {"mlp_t": false, "num_heads": 7}})")); },
                      {"arch.hidden_size", "arch.num_heads", "divisible"});
  // The task's board against arch.seq_len / vocab_size: task::make_task (tests/unit/task_sudoku_test.cpp).
  expect_config_error([] { from_json(Tree::parse(R"({"arch": {"variant": "trm"}})")); },
                      {"arch.variant", "lambda 1"});
  EXPECT_NO_THROW(from_json(Tree::parse(
      R"({"data": {"box_rows": 2, "box_cols": 2}, "arch": {"seq_len": 16, "vocab_size": 6}})")));
}

TEST(ConfigOverrides, SetEditsTreeBeforeMapping) {
  const auto dir = temp_dir("cfg");
  write_file(dir / "base.yaml", "arch:\n  h_cycles: 3\n");
  const RunConfig c = load((dir / "base.yaml").string(),
                           {"arch.h_cycles=2", "train.lr=0.001", "arch.mlp_t=false", "eval.depth=[8, 32]",
                            "train.max_steps=null", "name=run one", "train.grad_clip_norm=1"});
  EXPECT_EQ(c.arch.h_cycles, 2);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.001);
  EXPECT_FALSE(c.arch.mlp_t);
  EXPECT_EQ(c.eval.depth, (std::vector<int64_t>{8, 32}));
  EXPECT_FALSE(c.train.max_steps.has_value());
  EXPECT_EQ(c.name, "run one");
  EXPECT_DOUBLE_EQ(c.train.grad_clip_norm.value(), 1.0);
  // Overrides get the same validation as files.
  expect_config_error([&] { load((dir / "base.yaml").string(), {"arch.h_cycles=0"}); },
                      {"arch.h_cycles", ">= 1", "--set"});
  expect_config_error([&] { load("", {"arch.nope=1"}); }, {"arch.nope"});
  expect_config_error([&] { load("", {"arch.h_cycles"}); }, {"key=value"});
  expect_config_error([&] { load((dir / "base.yaml").string(), {"arch.h_cycles.x=1"}); },
                      {"arch.h_cycles", "not a section"});
}

TEST(ConfigInclude, BaseMergedThenOverridden) {
  const auto dir = temp_dir("cfg");
  write_file(dir / "base" / "b.yaml", "arch:\n  hidden_size: 128\n  l_cycles: 4\ntrain:\n  lr: 0.01\n");
  write_file(dir / "child.yaml", "include: base/b.yaml\narch:\n  l_cycles: 2\n");
  const RunConfig c = load((dir / "child.yaml").string());
  EXPECT_EQ(c.arch.hidden_size, 128);  // from base
  EXPECT_EQ(c.arch.l_cycles, 2);       // child wins
  EXPECT_DOUBLE_EQ(c.train.lr, 0.01);
  // A list of includes: later entries win; JSON can include YAML.
  write_file(dir / "other.yaml", "arch:\n  hidden_size: 256\n");
  write_file(dir / "multi.json", R"({"include": ["base/b.yaml", "other.yaml"], "train": {"lr": 0.5}})");
  const RunConfig m = load((dir / "multi.json").string());
  EXPECT_EQ(m.arch.hidden_size, 256);
  EXPECT_EQ(m.arch.l_cycles, 4);
  EXPECT_DOUBLE_EQ(m.train.lr, 0.5);
}

TEST(ConfigInclude, CycleAndMissingFileAreErrors) {
  const auto dir = temp_dir("cfg");
  write_file(dir / "a.yaml", "include: b.yaml\n");
  write_file(dir / "b.yaml", "include: a.yaml\n");
  expect_config_error([&] { load((dir / "a.yaml").string()); }, {"include cycle"});
  write_file(dir / "c.yaml", "include: missing.yaml\n");
  expect_config_error([&] { load((dir / "c.yaml").string()); }, {"missing.yaml", "no such file"});
  expect_config_error([&] { load((dir / "nothere.yaml").string()); }, {"nothere.yaml"});
  write_file(dir / "x.toml", "a = 1\n");
  expect_config_error([&] { load((dir / "x.toml").string()); }, {".toml", "expected .yaml"});
}

TEST(ConfigParse, YamlScalarsFollowCoreSchema) {
  const Tree t = parse_yaml("a: 1\nb: 1.5\nc: true\nd: ~\ne: '7'\nf: 1e-5\ng: hello\nh: -3\ni: .inf\n");
  EXPECT_TRUE(t["a"].is_number_integer());
  EXPECT_TRUE(t["b"].is_number_float());
  EXPECT_TRUE(t["c"].is_boolean());
  EXPECT_TRUE(t["d"].is_null());
  EXPECT_TRUE(t["e"].is_string());
  EXPECT_DOUBLE_EQ(t["f"].get<double>(), 1e-5);
  EXPECT_EQ(t["g"].get<std::string>(), "hello");
  EXPECT_EQ(t["h"].get<int64_t>(), -3);
  EXPECT_TRUE(std::isinf(t["i"].get<double>()));
  expect_config_error([] { parse_yaml("a: [1, 2\n", "broken.yaml"); }, {"broken.yaml", "line"});
}

TEST(ConfigWrite, ResolvedConfigWrittenAndReloadable) {
  const auto dir = temp_dir("cfg");
  RunConfig c;
  c.arch.hidden_size = 96;
  write_resolved(c, (dir / "run" / "config.yaml").string());
  const RunConfig back = load((dir / "run" / "config.yaml").string());
  EXPECT_TRUE(back == c);
}

}  // namespace
}  // namespace eqr::config
