// libFuzzer target: the native checkpoint reader (io/checkpoint.h): format detection, header-only
// inspection and a full load (CRC checks included). Seeds: small .eqrckpt files (scripts/fuzz.sh writes
// them with `eqr import` and `eqr train` when the corpus is new).

#include "eqr/io/checkpoint.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace eqr;
  const std::string path = fuzz::write_input("in.eqrckpt", data, size);
  fuzz::expect_ok_or_refused([&] { io::detect_checkpoint_kind(path); });
  fuzz::expect_ok_or_refused([&] { io::inspect_checkpoint(path); });
  fuzz::expect_ok_or_refused([&] {
    const io::Checkpoint ck = io::load_checkpoint(path);
    (void)io::tensors_with_prefix(ck.tensors, "model/");
  });
  return 0;
}
