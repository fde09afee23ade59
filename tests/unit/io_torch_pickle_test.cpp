// torch.save reader: pickle opcodes of protocols 0-5 (python-made fixtures and hand-made bytes),
// big ints, one-element containers, tensors rebuilt onto CPU from 'cuda:0' storages, shared storages
// and views, unknown objects kept and listed, malformed input rejected with CheckpointError.
// Fixtures: tests/fixtures/reference_ckpt (made by make_fixtures.py there).

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "eqr/core/error.h"
#include "eqr/io/torch_pickle.h"
#include "test_support.h"

namespace eqr::io {
namespace {

using Kind = PickleValue::Kind;
using namespace std::string_literals;

std::filesystem::path fixture(const std::string& name) {
  return eqr::test::source_dir() / "tests" / "fixtures" / "reference_ckpt" / name;
}

std::string read_binary(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

nlohmann::json expected() {
  static const nlohmann::json j = nlohmann::json::parse(read_binary(fixture("expected.json")));
  return j;
}

/// Expects `fn` to throw CheckpointError whose message contains every needle.
template <class Fn>
void expect_checkpoint_error(Fn fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
  }
}

/// Compares a tensor with an expected.json entry {dtype, shape, values}.
void expect_tensor(const at::Tensor& t, const nlohmann::json& e, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(std::string(c10::toString(t.scalar_type())), std::string(e["dtype"] == "float32"    ? "Float"
                                                                      : e["dtype"] == "bfloat16" ? "BFloat16"
                                                                      : e["dtype"] == "float16"  ? "Half"
                                                                      : e["dtype"] == "int64"    ? "Long"
                                                                      : e["dtype"] == "bool"     ? "Bool"
                                                                                                 : "?"));
  EXPECT_EQ(t.sizes().vec(), e["shape"].get<std::vector<int64_t>>());
  const auto values = e["values"].get<std::vector<double>>();
  const at::Tensor flat = t.to(torch::kDouble).contiguous().flatten();
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(flat[static_cast<int64_t>(i)].item<double>(), values[i]) << i;
}

// ---- plain pickles: every protocol gives the same tree ----

class PlainPickle : public ::testing::TestWithParam<int> {};

TEST_P(PlainPickle, ReadsEveryValueKind) {
  const std::string name = "plain_p" + std::to_string(GetParam()) + ".pkl";
  std::vector<std::string> notes;
  const PickleValue v = parse_pickle(read_binary(fixture(name)), name, {}, &notes);
  ASSERT_TRUE(v.is(Kind::Dict));
  EXPECT_EQ(v.get("int")->as_int(), 1);
  EXPECT_EQ(v.get("neg")->as_int(), -7);
  EXPECT_EQ(v.get("i32")->as_int(), int64_t{1} << 31);
  EXPECT_EQ(v.get("int64_max")->as_int(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(v.get("int64_min")->as_int(), std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(v.get("big")->is(Kind::BigInt));
  EXPECT_EQ(v.get("big")->big_int_text(), "1180591620717411303424");
  EXPECT_EQ(v.get("neg_big")->big_int_text(), "-1180591620717411303424");
  expect_checkpoint_error([&] { (void)v.get("big")->as_int(); }, {"1180591620717411303424", "does not fit int64"});
  EXPECT_DOUBLE_EQ(v.get("float")->as_double(), 1.5);
  EXPECT_DOUBLE_EQ(v.get("neg_float")->as_double(), -0.1);
  EXPECT_EQ(v.get("str")->as_str(), "h\xc3\xa9llo \xe2\x9c\x93");
  EXPECT_EQ(v.get("bytes")->as_bytes(), std::string("\x00\xff" "ab", 4));
  EXPECT_EQ(v.get("bytearray")->as_bytes(), std::string("\x01\x02"));
  ASSERT_TRUE(v.get("list")->is(Kind::List));
  ASSERT_EQ(v.get("list")->items().size(), 1u);
  EXPECT_EQ(v.get("list")->items()[0].as_int(), 1);
  ASSERT_TRUE(v.get("tuple")->is(Kind::Tuple));
  ASSERT_EQ(v.get("tuple")->items().size(), 1u);
  EXPECT_EQ(v.get("tuple")->items()[0].as_int(), 2);
  EXPECT_TRUE(v.get("empty_tuple")->items().empty());
  ASSERT_EQ(v.get("set")->items().size(), 1u);
  EXPECT_EQ(v.get("set")->items()[0].as_int(), 3);
  EXPECT_TRUE(v.get("none")->is_none());
  EXPECT_TRUE(v.get("true")->as_bool());
  EXPECT_FALSE(v.get("false")->as_bool());
  const PickleValue* nested = v.get("nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->get("a")->items()[1].items()[1].as_int(), 3);
  ASSERT_EQ(nested->entries().size(), 2u);
  EXPECT_EQ(nested->entries()[1].first.as_int(), 4);
  EXPECT_EQ(nested->entries()[1].second.as_str(), "int key");
  const PickleValue* od = v.get("od");
  ASSERT_TRUE(od->is(Kind::Dict));
  ASSERT_EQ(od->entries().size(), 2u);
  EXPECT_EQ(od->entries()[0].first.as_str(), "z");  // insertion order, not sorted
  EXPECT_EQ(od->entries()[1].first.as_str(), "a");
  EXPECT_TRUE(list_objects(v).empty());
}

INSTANTIATE_TEST_SUITE_P(Protocols, PlainPickle, ::testing::Values(0, 2, 5));

// ---- hand-made bytes ----

TEST(PickleBytes, LongOpcodesAtInt64Edges) {
  // LONG1 with 8 bytes 0x00..0x80 = -2**63; LONG1 9 bytes = 2**63 (does not fit); LONG4 of 0.
  const std::string p = "\x80\x02]q\x00("s + "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80"s +
                        "\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00"s + "\x8b\x00\x00\x00\x00"s + "e."s;
  const PickleValue v = parse_pickle(p, "bytes");
  ASSERT_EQ(v.items().size(), 3u);
  EXPECT_EQ(v.items()[0].as_int(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(v.items()[1].big_int_text(), "9223372036854775808");
  EXPECT_EQ(v.items()[2].as_int(), 0);
}

TEST(PickleBytes, MemoSharesContainersMutatedLater) {
  // d = {}; l = []; d['a'] = l; d['b'] = l; l.append(5)  -> both entries see the element.
  const std::string p = "\x80\x02}q\x00(X\x01\x00\x00\x00"s + "a]q\x01X\x01\x00\x00\x00"s + "bh\x01uh\x01K\x05"s + "a0."s;
  const PickleValue v = parse_pickle(p, "bytes");
  ASSERT_EQ(v.get("a")->items().size(), 1u);
  EXPECT_EQ(v.get("b")->items()[0].as_int(), 5);
}

TEST(PickleBytes, MalformedInputIsACheckpointErrorWithOffset) {
  expect_checkpoint_error([] { parse_pickle("\x80\x02]"s, "trunc.pkl"); },
                          {"trunc.pkl", "without a STOP", "truncated"});
  expect_checkpoint_error([] { parse_pickle("\x80\x02\xff."s, "bad.pkl"); },
                          {"bad.pkl", "byte 2", "unknown pickle opcode 0xff"});
  expect_checkpoint_error([] { parse_pickle("\x80\x02X\xff\x00\x00\x00"s + "ab."s, "short.pkl"); },
                          {"short.pkl", "runs past the end"});
  expect_checkpoint_error([] { parse_pickle("a.", "pop.pkl"); }, {"pop.pkl", "empty stack"});
  expect_checkpoint_error([] { parse_pickle("\x80\x02h\x07."s, "memo.pkl"); },
                          {"memo entry 7 was never stored"});
  // A storage reference without a loader.
  expect_checkpoint_error(
      [] {
        parse_pickle("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"s + "0X\x03\x00\x00\x00"s +
                         "cpuK\x01tQ."s,
                     "pid.pkl");
      },
      {"storage '0'", "no storage loader"});
}

TEST(PickleBytes, UnknownClassesBecomeObjectsWithState) {
  // NEWOBJ of pkg.mod.Thing() then BUILD {'x': 1}
  const std::string p = "\x80\x02}(X\x01\x00\x00\x00"s + "ccpkg.mod\nThing\n)\x81}X\x01\x00\x00\x00xK\x01sbu."s;
  const PickleValue v = parse_pickle(p, "obj.pkl");
  const PickleValue* c = v.get("c");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->is(Kind::Object));
  EXPECT_EQ(c->object().full_name(), "pkg.mod.Thing");
  ASSERT_NE(c->object().state, nullptr);
  EXPECT_EQ(c->object().state->get("x")->as_int(), 1);
  EXPECT_EQ(list_objects(v), std::vector<std::string>{"c: pkg.mod.Thing"});
}

// ---- torch.save files ----

TEST(TorchFile, ReferenceShapedCheckpointLoadsOnCpuFromCuda0Storages) {
  const TorchFile f = read_torch_file(fixture("reference_small.pth").string());
  ASSERT_TRUE(f.root.is(Kind::Dict));
  // every storage was tagged cuda:0 by the fixture script; all tensors must be on the CPU now
  bool noted = false;
  for (const auto& n : f.notes) noted = noted || (n.find("recorded on cuda:0 loaded onto cpu") != std::string::npos);
  EXPECT_TRUE(noted) << "notes should say the cuda:0 storages were moved";

  const PickleValue* model = f.root.get("model");
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->is(Kind::Dict));
  const auto order = expected()["model_order"].get<std::vector<std::string>>();
  ASSERT_EQ(model->entries().size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& [k, v] = model->entries()[i];
    EXPECT_EQ(k.as_str(), "_orig_mod.model.inner." + order[i]);  // OrderedDict order kept, prefixes raw here
    ASSERT_TRUE(v.is(Kind::Tensor));
    EXPECT_TRUE(v.as_tensor().device().is_cpu());
    expect_tensor(v.as_tensor(), expected()["model"][order[i]], order[i]);
  }

  EXPECT_EQ(f.root.get("step")->as_int(), 5000);
  EXPECT_DOUBLE_EQ(f.root.get("ema")->get("mu")->as_double(), 0.999);
  EXPECT_EQ(f.root.get("ema")->get("shadow")->entries().size(), order.size());

  // optimizer state: dict keyed by int param index, tensors inside
  const PickleValue& opt = f.root.get("optimizers")->items().at(0);
  const auto& state0 = opt.get("state")->entries().at(0);
  EXPECT_EQ(state0.first.as_int(), 0);
  EXPECT_EQ(state0.second.get("step")->as_tensor().item<float>(), 7.0f);
  EXPECT_EQ(state0.second.get("exp_avg")->as_tensor().sizes(), model->entries()[0].second.as_tensor().sizes());
  const auto& betas = opt.get("param_groups")->items().at(0).get("betas")->items();
  EXPECT_DOUBLE_EQ(betas.at(1).as_double(), 0.95);
}

TEST(TorchFile, ExtrasDtypesViewsAndSharedStorage) {
  const TorchFile f = read_torch_file(fixture("reference_small.pth").string());
  const PickleValue* extras = f.root.get("extras");
  ASSERT_NE(extras, nullptr);
  for (const auto& [k, v] : extras->entries()) {
    expect_tensor(v.as_tensor(), expected()["extras"][k.as_str()], k.as_str());
  }
  const at::Tensor base = extras->get("base")->as_tensor();
  const at::Tensor base_t = extras->get("base_t")->as_tensor();
  const at::Tensor slice = extras->get("slice")->as_tensor();
  EXPECT_FALSE(base_t.is_contiguous());
  EXPECT_EQ(base_t.strides().vec(), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(slice.storage_offset(), 4);
  EXPECT_EQ(slice.strides().vec(), (std::vector<int64_t>{4, 2}));
  EXPECT_TRUE(base_t.is_alias_of(base)) << "tensors sharing a storage in Python share it here";
  EXPECT_TRUE(slice.is_alias_of(base));
  base.view(-1)[6].fill_(100.0f);
  EXPECT_EQ(slice[0][1].item<float>(), 100.0f);  // base[1][2]
  EXPECT_EQ(extras->get("bf16")->as_tensor().scalar_type(), torch::kBFloat16);
  EXPECT_EQ(extras->get("int64")->as_tensor()[1].item<int64_t>(), int64_t{1} << 40);
}

TEST(TorchFile, UnknownObjectsAreSkippedAndListed) {
  const TorchFile f = read_torch_file(fixture("reference_small.pth").string());
  const auto has = [&](const std::string& s) {
    return std::find(f.skipped.begin(), f.skipped.end(), s) != f.skipped.end();
  };
  EXPECT_TRUE(has("carry: models.recursive_reasoning.eqr.EqRCarry"));
  EXPECT_TRUE(has("numpy[1]: numpy.core.multiarray._reconstruct"));
  // the carry dataclass is kept with its BUILD state, tensors included
  const PickleValue* carry = f.root.get("carry");
  ASSERT_NE(carry->object().state, nullptr);
  EXPECT_EQ(carry->object().state->get("z_H")->as_tensor().scalar_type(), torch::kBFloat16);
  // numpy RandomState.get_state(): ('MT19937', ndarray, pos, has_gauss, cached_gaussian)
  const auto& np = f.root.get("numpy")->items();
  ASSERT_EQ(np.size(), 5u);
  EXPECT_EQ(np[0].as_str(), "MT19937");
  EXPECT_EQ(np[2].as_int(), 624);
  // python random.getstate(): (3, tuple of 625 ints, None)
  EXPECT_EQ(f.root.get("python")->items()[1].items().size(), 625u);
}

TEST(TorchFile, ConfigToJsonKeepsOrderAndOneElementContainers) {
  const TorchFile f = read_torch_file(fixture("reference_small.pth").string());
  std::vector<std::string> notes;
  const auto cfg = pickle_to_json(*f.root.get("config"), &notes, "config");
  EXPECT_EQ(cfg["arch"]["hidden_size"], 4);
  EXPECT_EQ(cfg["arch"]["loss"]["loss_type"], "stablemax_cross_entropy");
  EXPECT_TRUE(cfg["arch"]["pos_encodings"].is_null());
  EXPECT_EQ(cfg["data_paths"], nlohmann::ordered_json::array({"data/sudoku-extreme-1k-aug-1000"}));
  EXPECT_EQ(cfg["one_tuple"], nlohmann::ordered_json::array({3}));
  EXPECT_EQ(cfg["one_dict"]["only"], 1);
  EXPECT_EQ(cfg["big"], "1180591620717411303424");
  EXPECT_EQ(cfg["neg_big"], "-1180591620717411303424");
  EXPECT_EQ(cfg["int64_max"], std::numeric_limits<int64_t>::max());
  EXPECT_EQ(cfg.begin().key(), "arch");  // insertion order
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("config.big"), std::string::npos);
}

TEST(TorchFile, Protocol4StateDict) {
  const TorchFile f = read_torch_file(fixture("state_dict_p4.pth").string());
  const auto e = expected()["state_dict_p4"];
  ASSERT_EQ(f.root.entries().size(), e.size());
  for (const auto& [k, v] : f.root.entries()) expect_tensor(v.as_tensor(), e[k.as_str()], k.as_str());
  EXPECT_TRUE(f.notes.empty()) << "cpu storages loaded onto cpu need no note";
}

TEST(TorchFile, RejectsMissingGarbageAndTruncatedFiles) {
  const auto dir = eqr::test::temp_dir("io_pickle");
  expect_checkpoint_error([&] { read_torch_file((dir / "nope.pth").string()); }, {"nope.pth", "cannot open"});
  eqr::test::write_file(dir / "garbage.pth", "this is not a checkpoint at all");
  expect_checkpoint_error([&] { read_torch_file((dir / "garbage.pth").string()); }, {"garbage.pth", "not a zip"});
  EXPECT_FALSE(is_torch_zip((dir / "garbage.pth").string()));
  EXPECT_TRUE(is_torch_zip(fixture("reference_small.pth").string()));
  const std::string full = read_binary(fixture("reference_small.pth"));
  {
    std::ofstream out(dir / "half.pth", std::ios::binary);
    out << full.substr(0, full.size() / 2);
  }
  expect_checkpoint_error([&] { read_torch_file((dir / "half.pth").string()); }, {"half.pth"});
  {
    std::ofstream out(dir / "legacy.pth", std::ios::binary);
    out << "\x80\x02\x8a\x0a"s << "rest";
  }
  expect_checkpoint_error([&] { read_torch_file((dir / "legacy.pth").string()); }, {"legacy", "pre-1.6"});
}

}  // namespace
}  // namespace eqr::io
