// libFuzzer target: a whole reference checkpoint (.pth, torch.save's zip) through the importer
// (io/reference_checkpoint.h): format detection, LibTorch's zip reader, eqr's pickle machine, storages
// read from the zip records, and the mapping to model / EMA / step. Seeds: tests/fixtures/reference_ckpt/*.pth.

#include "eqr/io/checkpoint.h"
#include "eqr/io/reference_checkpoint.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace eqr;
  const std::string path = fuzz::write_input("in.pth", data, size);
  fuzz::expect_ok_or_refused([&] { io::load_reference_checkpoint(path); });
  fuzz::expect_ok_or_refused([&] { io::load_any_checkpoint(path); });
  return 0;
}
