// Hostile data files (issue 14): a .npy header may not make the reader allocate more than the file holds.
// Fuzzer findings in the CSV and .npy readers are replayed here from tests/fixtures/fuzz/.

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "eqr/core/error.h"
#include "eqr/data/npy.h"
#include "test_support.h"

namespace eqr::data {
namespace {

TEST(DataHostileInput, NpyHeaderLengthBeyondTheFileIsRefusedBeforeAllocating) {
  const auto dir = eqr::test::temp_dir("hostile_npy");
  // Version 2.0 header: 4-byte length 2^24 (16 MB) in a 12-byte file.
  std::string bytes = "\x93NUMPY\x02";
  bytes += std::string("\x00", 1);
  const uint32_t hlen = 1u << 24;
  bytes.append(reinterpret_cast<const char*>(&hlen), 4);
  const auto p = dir / "forged.npy";
  eqr::test::write_file(p, bytes);
  const std::string msg = eqr::test::message_of<DataError>([&] { read_npy_header(p.string()); });
  EXPECT_NE(msg.find("longer than the whole file"), std::string::npos) << msg;
}

}  // namespace
}  // namespace eqr::data
