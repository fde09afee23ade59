// libFuzzer target: the .npy reader (data/npy.h): header parsing, then a whole load with the dtype the
// header names and the uint8 conversion the dataset reader uses. Seeds: tests/fixtures/numpy/**/*.npy.

#include "eqr/data/npy.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace eqr;
  fuzz::expect_ok_or_refused([&] {
    data::parse_npy_header(std::string(reinterpret_cast<const char*>(data), size), "fuzz.npy");
  });
  const std::string path = fuzz::write_input("in.npy", data, size);
  fuzz::expect_ok_or_refused([&] {
    const data::NpyHeader h = data::read_npy_header(path);
    switch (h.dtype) {
      case data::NpyDtype::kUInt8: data::load_npy<uint8_t>(path); break;
      case data::NpyDtype::kInt32: data::load_npy<int32_t>(path); break;
      case data::NpyDtype::kInt64: data::load_npy<int64_t>(path); break;
    }
  });
  fuzz::expect_ok_or_refused([&] { data::load_npy_as_uint8(path, {-1, -1}); });
  fuzz::expect_ok_or_refused([&] { data::load_npy_as_uint8(path, {-1}); });
  return 0;
}
