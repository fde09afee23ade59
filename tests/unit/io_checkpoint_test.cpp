// Native checkpoints: bit-exact round trips of every dtype, metadata round trip, atomic writes that
// leave the old file intact when interrupted, the `latest` pointer, keep_last, clear errors for
// truncated, corrupt and foreign files, detection of native vs reference files.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "eqr/core/error.h"
#include "eqr/io/checkpoint.h"
#include "test_support.h"

namespace eqr::io {
namespace {

namespace fs = std::filesystem;

std::string read_binary(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_binary(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

/// Same dtype, shape and bytes (NaN payloads and -0.0 included).
bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const at::Tensor x = a.contiguous(), y = b.contiguous();
  return x.numel() == 0 || std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

Checkpoint sample_checkpoint() {
  torch::manual_seed(3);
  Checkpoint c;
  c.tensors["model/embed_tokens.embedding_weight"] = torch::randn({11, 8});
  c.tensors["model/q_head.bias"] = torch::full({2}, -5.0);
  auto special = torch::tensor({0.0, -0.0, 1.0 / 3.0, std::numeric_limits<double>::infinity(),
                                std::numeric_limits<double>::quiet_NaN(), 1e-310},
                               torch::kDouble);
  c.tensors["f64"] = special;
  c.tensors["f32"] = special.to(torch::kFloat);
  c.tensors["bf16"] = torch::randn({3, 5}).to(torch::kBFloat16);
  c.tensors["f16"] = torch::randn({7}).to(torch::kHalf);
  c.tensors["i64"] = torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{1} << 40});
  c.tensors["i32"] = torch::arange(-3, 3, torch::kInt);
  c.tensors["i16"] = torch::tensor({-32768, 7}, torch::kShort);
  c.tensors["i8"] = torch::tensor({-128, 127}, torch::kChar);
  c.tensors["u8"] = torch::arange(0, 256).to(torch::kByte);  // an RNG state is a byte tensor
  c.tensors["bool"] = torch::tensor({true, false, true});
  c.tensors["scalar"] = torch::tensor(7.0f);                  // 0-dim
  c.tensors["empty"] = torch::zeros({0, 4});
  c.tensors["view"] = torch::arange(12, torch::kFloat).reshape({3, 4}).t().slice(0, 1, 3);  // non-contiguous
  c.meta["step"] = 5000;
  c.meta["config"] = {{"arch", {{"hidden_size", 512}, {"mlp_t", true}}}, {"lr", 1e-4}};
  c.meta["loader"] = {{"epoch", 3}, {"order", {5, 1, 4}}};
  c.meta["carry"] = {{"steps_mean", 2.5}, {"note", "z\xc3\xa9ta \"quoted\""}};
  return c;
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_TRUE(bit_equal(t, b.tensors.at(name))) << name;
  }
  EXPECT_EQ(a.meta, b.meta);
}

TEST(NativeCheckpoint, RoundTripIsBitExactForEveryDtype) {
  const auto dir = eqr::test::temp_dir("io_ckpt");
  const Checkpoint c = sample_checkpoint();
  const std::string path = (dir / "a.eqrckpt").string();
  save_checkpoint(c, path);
  const Checkpoint back = load_checkpoint(path);
  expect_same(c, back);
  EXPECT_EQ(back.tensors.at("scalar").dim(), 0);
  EXPECT_TRUE(back.tensors.at("f64")[4].isnan().item<bool>());
  EXPECT_TRUE(std::signbit(back.tensors.at("f32")[1].item<float>()));
  // key order of the meta tree survives
  EXPECT_EQ(back.meta.begin().key(), "step");
  EXPECT_EQ(detect_checkpoint_kind(path), CheckpointKind::Native);
  // load_any reads native files as they are
  expect_same(c, load_any_checkpoint(path));
}

TEST(NativeCheckpoint, LayoutIsSafetensorsWithEqrMetadata) {
  const auto dir = eqr::test::temp_dir("io_ckpt");
  Checkpoint c;
  c.tensors["w"] = torch::tensor({1.0f, 2.0f});
  c.meta["step"] = 1;
  const std::string path = (dir / "w.eqrckpt").string();
  save_checkpoint(c, path);
  const std::string bytes = read_binary(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 8);  // header + two floats, no trailer
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["w"]["dtype"], "F32");
  EXPECT_EQ(header["w"]["data_offsets"], nlohmann::json::array({0, 8}));
  EXPECT_EQ(header["__metadata__"]["eqr_format"], "eqrckpt");
  EXPECT_EQ(nlohmann::json::parse(header["__metadata__"]["eqr_meta"].get<std::string>())["step"], 1);
  float second = 0;
  std::memcpy(&second, bytes.data() + 8 + n + 4, 4);
  EXPECT_EQ(second, 2.0f);
  const CheckpointInfo info = inspect_checkpoint(path);
  EXPECT_EQ(info.tensors.at("w"), "Float [2]");
  EXPECT_EQ(info.meta["step"], 1);
  EXPECT_EQ(info.file_bytes, bytes.size());
}

TEST(NativeCheckpoint, InterruptedWriteLeavesTheOldFileAndNoTempFile) {
  const auto dir = eqr::test::temp_dir("io_ckpt");
  const std::string path = (dir / "c.eqrckpt").string();
  Checkpoint old;
  old.tensors["x"] = torch::arange(10, torch::kFloat);
  save_checkpoint(old, path);
  const std::string before = read_binary(path);

  const std::string msg = test::message_of<CheckpointError>([&] {
    atomic_write(path, [](FileSink& sink) {
      sink.write(std::string(1000, 'z'));
      EQR_FAIL(CheckpointError, "simulated crash after ", sink.bytes_written(), " bytes");
    });
  });
  EXPECT_NE(msg.find("simulated crash after 1000 bytes"), std::string::npos);
  EXPECT_EQ(read_binary(path), before);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"c.eqrckpt"}) << "temp file removed";
  EXPECT_TRUE(torch::equal(load_checkpoint(path).tensors.at("x"), old.tensors.at("x")));

  // an unsupported dtype fails before anything is written
  Checkpoint bad;
  bad.tensors["c"] = torch::zeros({2}, torch::kComplexFloat);
  const std::string msg2 = test::message_of<CheckpointError>([&] { save_checkpoint(bad, path); });
  EXPECT_NE(msg2.find("ComplexFloat"), std::string::npos) << msg2;
  EXPECT_EQ(read_binary(path), before);
}

TEST(NativeCheckpoint, TruncatedCorruptAndForeignFilesAreClearErrors) {
  const auto dir = eqr::test::temp_dir("io_ckpt");
  const std::string path = (dir / "t.eqrckpt").string();
  save_checkpoint(sample_checkpoint(), path);
  const std::string bytes = read_binary(path);

  write_binary(dir / "cut.eqrckpt", bytes.substr(0, bytes.size() - 10));
  std::string msg = test::message_of<CheckpointError>([&] { load_checkpoint((dir / "cut.eqrckpt").string()); });
  EXPECT_NE(msg.find("cut.eqrckpt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  write_binary(dir / "head.eqrckpt", bytes.substr(0, 100));  // cut inside the header
  msg = test::message_of<CheckpointError>([&] { load_checkpoint((dir / "head.eqrckpt").string()); });
  EXPECT_NE(msg.find("header length"), std::string::npos) << msg;

  write_binary(dir / "tiny.eqrckpt", "abc");
  msg = test::message_of<CheckpointError>([&] { load_checkpoint((dir / "tiny.eqrckpt").string()); });
  EXPECT_NE(msg.find("3 bytes"), std::string::npos) << msg;

  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x10;  // inside the last tensor's data
  write_binary(dir / "flip.eqrckpt", flipped);
  msg = test::message_of<CheckpointError>([&] { load_checkpoint((dir / "flip.eqrckpt").string()); });
  EXPECT_NE(msg.find("corrupt (CRC-32"), std::string::npos) << msg;

  write_binary(dir / "garbage.bin", std::string(64, '\x7f'));
  msg = test::message_of<CheckpointError>([&] { load_checkpoint((dir / "garbage.bin").string()); });
  EXPECT_NE(msg.find("not an eqr checkpoint"), std::string::npos) << msg;
  EXPECT_EQ(detect_checkpoint_kind((dir / "garbage.bin").string()), CheckpointKind::Unknown);
  msg = test::message_of<CheckpointError>([&] { load_any_checkpoint((dir / "garbage.bin").string()); });
  EXPECT_NE(msg.find("neither an eqr checkpoint"), std::string::npos) << msg;

  msg = test::message_of<CheckpointError>([&] { load_checkpoint((dir / "missing.eqrckpt").string()); });
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
}

TEST(NativeCheckpoint, ReferenceFilesLoadThroughLoadAny) {
  const auto ref = eqr::test::source_dir() / "tests" / "fixtures" / "reference_ckpt" / "reference_small.pth";
  EXPECT_EQ(detect_checkpoint_kind(ref.string()), CheckpointKind::ReferenceZip);
  const Checkpoint c = load_any_checkpoint(ref.string());
  EXPECT_EQ(tensors_with_prefix(c.tensors, "model/").size(), 8u);
  EXPECT_EQ(tensors_with_prefix(c.tensors, "ema/").size(), 8u);
  EXPECT_EQ(c.tensors.at("model/q_head.bias")[0].item<float>(), -5.0f);
  EXPECT_EQ(c.meta["source"], "reference");
  EXPECT_EQ(c.meta["step"], 5000);
  EXPECT_EQ(c.meta["reference_config"]["arch"]["L_cycles"], 6);
  // and the converted checkpoint survives a native round trip
  const auto dir = eqr::test::temp_dir("io_ckpt");
  save_checkpoint(c, (dir / "imported.eqrckpt").string());
  expect_same(c, load_checkpoint((dir / "imported.eqrckpt").string()));
}

TEST(NativeCheckpoint, PrefixHelpers) {
  TensorMap all;
  put_tensors(all, "model/", {{"a", torch::zeros({1})}, {"b.c", torch::ones({1})}});
  put_tensors(all, "ema/", {{"a", torch::ones({1})}});
  const TensorMap model = tensors_with_prefix(all, "model/");
  ASSERT_EQ(model.size(), 2u);
  EXPECT_EQ(model.begin()->first, "a");
  EXPECT_EQ(model.at("b.c").item<float>(), 1.0f);
  EXPECT_THROW(put_tensors(all, "model/", {{"a", torch::zeros({1})}}), CheckpointError);
}

TEST(RunCheckpoints, LatestPointerAndKeepLast) {
  const auto run = eqr::test::temp_dir("io_run");
  EXPECT_FALSE(latest_checkpoint(run.string()).has_value());
  Checkpoint c;
  for (int64_t step : {100, 200, 300, 1000}) {
    c.tensors["x"] = torch::full({2}, static_cast<double>(step));
    c.meta["step"] = step;
    const std::string p = write_run_checkpoint(run.string(), step, c);
    EXPECT_EQ(p, (run / "checkpoints" / ("step_" + std::to_string(step) + ".eqrckpt")).string());
    EXPECT_EQ(latest_checkpoint(run.string()), std::optional<std::string>(p));
  }
  EXPECT_EQ(eqr::test::read_file(run / "checkpoints" / "latest"), "step_1000.eqrckpt\n");
  EXPECT_EQ(load_checkpoint(*latest_checkpoint(run.string())).meta["step"], 1000);

  // a temp file left by a crashed writer (another pid) is cleaned; numeric (not lexical) order is used
  write_binary(run / "checkpoints" / ".step_2000.eqrckpt.tmp.999999999.0", "partial");
  const auto removed = keep_last(run.string(), 2);
  EXPECT_EQ(removed.size(), 3u);
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "step_100.eqrckpt"));
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "step_200.eqrckpt"));
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step_300.eqrckpt"));
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step_1000.eqrckpt"));
  EXPECT_FALSE(fs::exists(run / "checkpoints" / ".step_2000.eqrckpt.tmp.999999999.0"));
  EXPECT_THROW(keep_last(run.string(), 0), CheckpointError);

  // the pointed-to checkpoint is never removed, even when older
  eqr::test::write_file(run / "checkpoints" / "latest", "step_300.eqrckpt\n");
  keep_last(run.string(), 1);
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step_300.eqrckpt"));
  EXPECT_EQ(latest_checkpoint(run.string()), std::optional<std::string>((run / "checkpoints" / "step_300.eqrckpt").string()));

  // a pointer to a missing file falls back to the highest step on disk
  eqr::test::write_file(run / "checkpoints" / "latest", "step_999.eqrckpt\n");
  EXPECT_EQ(latest_checkpoint(run.string()),
            std::optional<std::string>((run / "checkpoints" / "step_1000.eqrckpt").string()));
}

}  // namespace
}  // namespace eqr::io
