// libFuzzer target: eqr's pickle machine (io/torch_pickle.h) on raw pickle bytes, the data.pkl of a
// torch.save file: every opcode, memo, globals, tensor rebuilding from storages, then the walks the
// importer runs over the tree (objects listed, config to JSON). Storages come from a stand-in for the zip
// records: `numel` elements if that is at most 4096, else the "record too short" refusal of the real
// loader. Seeds: tests/fixtures/reference_ckpt/*.pkl and the data.pkl records of the .pth fixtures.

#include <torch/torch.h>

#include "eqr/io/torch_pickle.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace eqr;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const io::StorageLoader loader = [](const io::StorageRef& ref) -> at::Tensor {
    EQR_CHECK(ref.numel >= 0 && ref.numel <= 4096, CheckpointError, "fuzz: storage ", ref.key, " of ", ref.numel,
              " elements is longer than its record");
    return torch::zeros({ref.numel}, torch::TensorOptions().dtype(ref.dtype));
  };
  fuzz::expect_ok_or_refused([&] {
    std::vector<std::string> notes;
    const io::PickleValue root = io::parse_pickle(bytes, "fuzz.pkl", loader, &notes);
    (void)root.repr();
    (void)io::list_objects(root);
    (void)io::pickle_to_json(root, &notes).dump();
  });
  return 0;
}
