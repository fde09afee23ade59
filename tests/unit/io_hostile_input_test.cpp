// Hostile checkpoints (issue 14): forged sizes, nesting and references in native checkpoints, pickles and
// torch.save zips are refused with a CheckpointError, without crashing, reading out of bounds or allocating
// more than the file's own size suggests. Each case is an input that broke the reader before its fix
// (found by reading the code for the fuzzers, or by scripts/fuzz.sh; those inputs live in tests/fixtures/fuzz/).

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/io/checkpoint.h"
#include "eqr/io/reference_checkpoint.h"
#include "eqr/io/torch_pickle.h"
#include "test_support.h"

namespace eqr::io {
namespace {

namespace fs = std::filesystem;

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

/// A storage loader standing in for the zip records: `numel` zeros.
const StorageLoader kZeros = [](const StorageRef& ref) {
  return torch::zeros({ref.numel}, torch::TensorOptions().dtype(ref.dtype));
};

/// Pickle (protocol 2) of _rebuild_tensor_v2(FloatStorage of 4 elements, offset, size, stride, False, {}).
/// Sizes and strides are LONG1 8-byte integers so that any int64 fits.
std::string rebuild_pickle(int64_t offset, const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  auto i64 = [](int64_t v) { return std::string("\x8a\x08", 2) + le64(static_cast<uint64_t>(v)); };
  auto str = [](const std::string& s) { return std::string("\x8c") + static_cast<char>(s.size()) + s; };
  std::string p = "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(";
  p += "(" + str("storage") + "ctorch\nFloatStorage\n" + str("0") + str("cpu") + "K\x04tQ";
  p += i64(offset) + "(";
  for (auto s : size) p += i64(s);
  p += "t(";
  for (auto s : stride) p += i64(s);
  p += "t\x89}tR.";
  return p;
}

TEST(IoHostileInput, PickleTensorViewsCannotWrapAroundOrExplode) {
  // A sane view loads.
  const auto ok = parse_pickle(rebuild_pickle(1, {3}, {1}), "ok", kZeros);
  EXPECT_EQ(ok.as_tensor().numel(), 3);
  // (2^62, 4) with strides (4, 1): its last element overflows int64 and used to wrap to -1 ("inside").
  EXPECT_NE(test::message_of<CheckpointError>([] { parse_pickle(rebuild_pickle(0, {int64_t{1} << 62, 4}, {4, 1}), "wrap", kZeros); })
                .find("reaches past the end"),
            std::string::npos);
  // Stride 0: 2^40 elements viewing one stored float (a 4 TB tensor once copied).
  EXPECT_NE(test::message_of<CheckpointError>([] { parse_pickle(rebuild_pickle(0, {int64_t{1} << 40}, {0}), "expand", kZeros); })
                .find("elements beyond its storage"),
            std::string::npos);
  // A small expansion (what torch.save writes for an expanded tensor) is kept.
  EXPECT_EQ(parse_pickle(rebuild_pickle(0, {1000, 4}, {0, 1}), "small expand", kZeros).as_tensor().numel(), 4000);
  // An offset past the storage, with an empty view.
  EXPECT_NE(test::message_of<CheckpointError>([] { parse_pickle(rebuild_pickle(int64_t{1} << 50, {0}, {1}), "offset", kZeros); })
                .find("reaches past the end"),
            std::string::npos);
}

TEST(IoHostileInput, PickleCyclesAndDeepNestingAreRefusedWithoutRecursion) {
  // l = []; l.append(l): EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP. Every walk over it would recurse forever.
  EXPECT_NE(test::message_of<CheckpointError>([] { parse_pickle(std::string("\x80\x02]q\x00h\x00" "a.", 9), "cycle"); }).find("reference cycle"),
            std::string::npos);
  // 100,000 nested lists: refused (walks recurse per level), and freeing them must not overflow the stack.
  const int n = 100000;
  const std::string deep = "\x80\x02" + std::string(n, ']') + std::string(n - 1, 'a') + ".";
  EXPECT_NE(test::message_of<CheckpointError>([&] { parse_pickle(deep, "deep"); }).find("nested more than"), std::string::npos);
  // The same depth popped by a failing APPEND (onto an int): freed during stack unwinding.
  const std::string deep_fail = "\x80\x02K\x01" + std::string(n, ']') + std::string(n - 1, 'a') + "a.";
  EXPECT_NE(test::message_of<CheckpointError>([&] { parse_pickle(deep_fail, "deep_fail"); }).find("APPEND on int"), std::string::npos);
  // Shared (not cyclic) references are fine: [x, x] with x = [[1]].
  const auto shared = parse_pickle(std::string("\x80\x02](]]K\x01" "aaq\x00h\x00" "e.", 16), "shared");
  EXPECT_EQ(shared.items().size(), 2u);
}

TEST(IoHostileInput, PickleHugeIntegersAreRefusedQuickly) {
  // LONG4 of 100,000 bytes: the decimal conversion is quadratic (minutes); refused at once.
  std::string p = "\x80\x02\x8b";
  const uint32_t n = 100000;
  p.append(reinterpret_cast<const char*>(&n), 4);
  p += std::string(n, '\x7f') + ".";
  EXPECT_NE(test::message_of<CheckpointError>([&] { parse_pickle(p, "bigint"); }).find("100000 bytes"), std::string::npos);
  // 2**70 (what the reference's fixtures hold) still reads as a big int.
  const auto v = parse_pickle(std::string("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40.", 14), "2**70");
  EXPECT_EQ(v.big_int_text(), "1180591620717411303424");
}

TEST(IoHostileInput, NativeCheckpointShapesCannotOverflowTheirByteCount) {
  const auto dir = test::temp_dir("hostile_ckpt");
  // Shape (2^62, 4) of float32: 2^66 bytes, which wrapped to 0 in 64 bits and matched data_offsets [0, 0].
  std::string header = R"({"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const fs::path p = dir / "forged.eqrckpt";
  test::write_file(p, le64(header.size()) + header + std::string(16, '\0'));
  EXPECT_NE(test::message_of<CheckpointError>([&] { load_checkpoint(p.string()); }).find("needs more bytes than the file's data section"),
            std::string::npos);
  EXPECT_NE(test::message_of<CheckpointError>([&] { inspect_checkpoint(p.string()); }).find("needs more bytes"), std::string::npos);
  // A CRC that is not a number.
  std::string h2 =
      R"({"__metadata__":{"eqr_crc32":"{\"t\":\"x\"}","eqr_format_version":"1"},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  h2.append((8 - h2.size() % 8) % 8, ' ');
  test::write_file(dir / "crc.eqrckpt", le64(h2.size()) + h2 + "A");
  EXPECT_NE(test::message_of<CheckpointError>([&] { load_checkpoint((dir / "crc.eqrckpt").string()); }).find("is not a number"),
            std::string::npos);
  // A format version that is a number instead of a string.
  std::string h3 = R"({"__metadata__":{"eqr_format_version":7}})";
  h3.append((8 - h3.size() % 8) % 8, ' ');
  test::write_file(dir / "version.eqrckpt", le64(h3.size()) + h3);
  EXPECT_NE(test::message_of<CheckpointError>([&] { load_checkpoint((dir / "version.eqrckpt").string()); }).find("format version '7'"),
            std::string::npos);
}

TEST(IoHostileInput, ZipRecordsDeclaringMoreThanTheFileAreRefusedBeforeAllocation) {
  // LibTorch's zip reader allocates a record's declared size before reading it: a central directory that
  // claims 4 GB for a record of a 1 KB file must be refused first.
  const auto dir = test::temp_dir("hostile_zip");
  std::string bytes = test::read_file(test::source_dir() / "tests/fixtures/reference_ckpt/state_dict_p4.pth");
  ASSERT_FALSE(bytes.empty());
  const size_t cd = bytes.find(std::string("PK\x01\x02", 4));
  ASSERT_NE(cd, std::string::npos);
  const uint32_t forged = 0xFFFFFF00u;
  std::memcpy(&bytes[cd + 24], &forged, 4);  // uncompressed size of the first record
  const fs::path p = dir / "forged.pth";
  {
    std::ofstream out(p, std::ios::binary);
    out << bytes;
  }
  const std::string msg = test::message_of<CheckpointError>([&] { load_reference_checkpoint(p.string()); });
  EXPECT_NE(msg.find("more than the whole file"), std::string::npos) << msg;
  EXPECT_EQ(detect_checkpoint_kind(p.string()), CheckpointKind::Unknown);
  // The untouched file still loads.
  EXPECT_NO_THROW(load_reference_checkpoint((test::source_dir() / "tests/fixtures/reference_ckpt/state_dict_p4.pth").string()));
}

TEST(IoHostileInput, FuzzerFindingsAreRefused) {
  const fs::path dir = test::source_dir() / "tests/fixtures/fuzz";
  // A data.pkl whose GLOBAL names a module that is not UTF-8: pickle_to_json's text then threw nlohmann's
  // type_error when dumped, which ended the process.
  const std::string pkl = test::read_file(dir / "torch_pickle/crash-invalid-utf8-str.pkl");
  ASSERT_FALSE(pkl.empty());
  EXPECT_NE(test::message_of<CheckpointError>([&] { parse_pickle(pkl, "crash.pkl", kZeros); }).find("not valid UTF-8"), std::string::npos);
  // The fuzzer's first torch_zip finding was its seed, tests/fixtures/reference_ckpt/state_dict_p4.pth: every
  // storage read built a message prefix from the pickle's origin text, which the machine held by reference to
  // a temporary already freed (AddressSanitizer: heap-use-after-free). Every .pth load in the ASan build
  // (scripts/test.sh --sanitize) replays it; here, the origin must reach a message intact.
  // bad_storage_type.pth: state_dict_p4.pth with its data.pkl naming torch.FloatStorXge (CRCs rewritten).
  const std::string msg = test::message_of<CheckpointError>([&] { load_reference_checkpoint((dir / "torch_zip/bad_storage_type.pth").string()); });
  EXPECT_NE(msg.find("bad_storage_type.pth: data.pkl: byte "), std::string::npos) << msg;
  EXPECT_NE(msg.find("FloatStorXge"), std::string::npos) << msg;
}

}  // namespace
}  // namespace eqr::io
