// .npy reader/writer against files written by numpy (tests/fixtures/numpy/npy, make_fixtures.py).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "eqr/core/error.h"
#include "eqr/data/npy.h"
#include "test_support.h"

namespace eqr::data {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return (test::source_dir() / "tests/fixtures/numpy/npy" / name).string();
}

// Expects `fn` to throw DataError whose message contains every part.
template <typename Fn>
void expect_data_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(DataNpy, ReadsNumpyUint8Matrix) {
  const auto a = load_npy<uint8_t>(fixture("u8_2d.npy"));
  ASSERT_EQ(a.shape, (std::vector<int64_t>{3, 4}));
  ASSERT_EQ(a.data.size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(a.data[i], static_cast<uint8_t>(i * 21));
  const NpyHeader h = read_npy_header(fixture("u8_2d.npy"));
  EXPECT_EQ(h.descr, "|u1");
  EXPECT_EQ(h.version_major, 1);
  EXPECT_EQ(h.data_offset % 64, 0);  // numpy aligns data to 64 bytes
}

TEST(DataNpy, ReadsNumpyInt32AndInt64) {
  const auto a = load_npy<int32_t>(fixture("i32_1d.npy"));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{5}));
  EXPECT_EQ(a.data, (std::vector<int32_t>{0, 1, -2, 2147483647, -2147483647 - 1}));
  const auto b = load_npy<int64_t>(fixture("i64_2d.npy"));
  EXPECT_EQ(b.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(b.data, (std::vector<int64_t>{1, -1, int64_t{1} << 40, -(int64_t{1} << 40), 7, 8}));
  const auto c = load_npy<int64_t>(fixture("i64_0d.npy"));
  EXPECT_TRUE(c.shape.empty());
  EXPECT_EQ(c.data, (std::vector<int64_t>{-5}));
  const auto e = load_npy<int32_t>(fixture("i32_empty.npy"));
  EXPECT_EQ(e.shape, (std::vector<int64_t>{0}));
  EXPECT_TRUE(e.data.empty());
}

TEST(DataNpy, ReadsVersion2Header) {
  const auto a = load_npy<int32_t>(fixture("i32_v2.npy"));
  EXPECT_EQ(read_npy_header(fixture("i32_v2.npy")).version_major, 2);
  EXPECT_EQ(a.data, (std::vector<int32_t>{3, 1, 4, 1, 5}));
}

// Loads a numpy-written fixture and writes it back: the bytes must be numpy's.
template <typename T>
void expect_rewrite_identical(const fs::path& dir, const std::string& name) {
  const auto a = load_npy<T>(fixture(name));
  save_npy((dir / name).string(), a);
  EXPECT_EQ(test::read_file(dir / name), test::read_file(fixture(name))) << name;
}

TEST(DataNpy, WritesTheSameBytesAsNumpy) {
  const fs::path dir = test::temp_dir("npy_bytes");
  expect_rewrite_identical<uint8_t>(dir, "u8_2d.npy");
  expect_rewrite_identical<int32_t>(dir, "i32_1d.npy");
  expect_rewrite_identical<int64_t>(dir, "i64_2d.npy");
  expect_rewrite_identical<int64_t>(dir, "i64_0d.npy");
  expect_rewrite_identical<int32_t>(dir, "i32_empty.npy");
}

TEST(DataNpy, RoundTripsLargeArray) {
  const fs::path dir = test::temp_dir("npy_round");
  NpyArray<uint8_t> a;
  a.shape = {1001, 81};
  a.data.resize(1001 * 81);
  for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<uint8_t>((i * 7919) % 251);
  const std::string path = (dir / "sub/dir/x.npy").string();
  save_npy(path, a);
  const auto b = load_npy_checked<uint8_t>(path, {-1, 81});
  EXPECT_EQ(b.shape, a.shape);
  EXPECT_EQ(b.data, a.data);
  // A header longer than 64 KiB switches to version 2.0 (never needed for our shapes, but numpy does it).
  EXPECT_EQ(npy_header_bytes(NpyDtype::kInt32, {5}).substr(6, 2), std::string("\x01\x00", 2));
}

TEST(DataNpy, TokensWidenAndNarrow) {
  const fs::path dir = test::temp_dir("npy_tokens");
  const std::vector<uint8_t> tokens = {0, 1, 2, 10, 255, 7};
  for (const NpyDtype dt : {NpyDtype::kUInt8, NpyDtype::kInt32, NpyDtype::kInt64}) {
    const std::string path = (dir / ("t" + std::string(npy_descr(dt)).substr(1) + ".npy")).string();
    save_npy_as(path, tokens.data(), {2, 3}, dt);
    EXPECT_EQ(read_npy_header(path).dtype, dt);
    const auto back = load_npy_as_uint8(path, {-1, 3});
    EXPECT_EQ(back.data, tokens);
    EXPECT_EQ(back.shape, (std::vector<int64_t>{2, 3}));
  }
  // The int64 file has numpy's exact bytes for the same values.
  const auto wide = load_npy<int64_t>((dir / "ti8.npy").string());
  EXPECT_EQ(wide.data, (std::vector<int64_t>{0, 1, 2, 10, 255, 7}));
  // Values that are no token id are rejected, naming the element.
  expect_data_error([] { load_npy_as_uint8(fixture("i32_1d.npy"), {-1}); }, {"i32_1d.npy", "element 2 = -2"});
  expect_data_error([] { load_npy_as_uint8(fixture("u8_2d.npy"), {-1, 81}); }, {"u8_2d.npy", "(3, 4)"});
}

TEST(DataNpy, RejectsUnsupportedFiles) {
  expect_data_error([] { load_npy<int32_t>(fixture("f32_1d.npy")); }, {"f32_1d.npy", "'<f4'", "unsupported"});
  expect_data_error([] { load_npy<int32_t>(fixture("i32_big_endian.npy")); }, {"i32_big_endian.npy", "big-endian"});
  expect_data_error([] { load_npy<int32_t>(fixture("i32_fortran.npy")); }, {"i32_fortran.npy", "Fortran"});
  expect_data_error([] { load_npy<int32_t>(fixture("u8_2d.npy")); }, {"u8_2d.npy", "'|u1'", "expected '<i4'"});
  expect_data_error([] { load_npy_checked<uint8_t>(fixture("u8_2d.npy"), {-1, 81}); }, {"u8_2d.npy", "(3, 4)"});
  expect_data_error([] { load_npy<uint8_t>(fixture("no_such_file.npy")); }, {"no_such_file.npy", "not found"});
}

TEST(DataNpy, RejectsTruncatedAndCorruptFiles) {
  const fs::path dir = test::temp_dir("npy_bad");
  const std::string good = test::read_file(fixture("i32_1d.npy"));
  const std::string truncated = (dir / "truncated.npy").string();
  test::write_file(truncated, good.substr(0, good.size() - 3));
  expect_data_error([&] { load_npy<int32_t>(truncated); }, {"truncated.npy", "truncated", "needs 20 data bytes"});
  const std::string longer = (dir / "longer.npy").string();
  test::write_file(longer, good + "xx");
  expect_data_error([&] { load_npy<int32_t>(longer); }, {"longer.npy", "oversized"});
  const std::string magic = (dir / "magic.npy").string();
  test::write_file(magic, "PK" + good.substr(2));
  expect_data_error([&] { load_npy<int32_t>(magic); }, {"magic.npy", "bad magic"});
  const std::string cut_header = (dir / "cut_header.npy").string();
  test::write_file(cut_header, good.substr(0, 40));
  expect_data_error([&] { load_npy<int32_t>(cut_header); }, {"cut_header.npy", "truncated .npy header"});
  std::string bad_dict = good;
  bad_dict.replace(bad_dict.find("'shape'"), 7, "'shapo'");
  const std::string bad = (dir / "bad_dict.npy").string();
  test::write_file(bad, bad_dict);
  expect_data_error([&] { load_npy<int32_t>(bad); }, {"bad_dict.npy", "unexpected key 'shapo'"});
  std::string version = good;
  version[6] = 9;
  const std::string v9 = (dir / "v9.npy").string();
  test::write_file(v9, version);
  expect_data_error([&] { load_npy<int32_t>(v9); }, {"v9.npy", "version 9"});
}

}  // namespace
}  // namespace eqr::data
