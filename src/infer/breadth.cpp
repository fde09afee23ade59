// Breadth sampler: repeat_interleave layout and per-trajectory initial states.
// Shape legend: P puzzles, R breadth, B = P*R rows, S cells, D hidden.

#include "eqr/infer/breadth.h"

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/core/rng.h"
#include "eqr/model/init.h"

namespace eqr::infer {

at::Tensor repeat_rows(const at::Tensor& t, int64_t breadth) {
  EQR_CHECK(breadth >= 1, UsageError, "breadth: got ", breadth, ", expected >= 1");
  if (!t.defined() || breadth == 1) return t;
  return t.repeat_interleave(breadth, 0);
}

dynamics::Batch expand_breadth(const dynamics::Batch& puzzles, int64_t breadth) {
  return dynamics::Batch{repeat_rows(puzzles.inputs, breadth), repeat_rows(puzzles.labels, breadth),
                         repeat_rows(puzzles.puzzle_identifiers, breadth)};
}

uint64_t trajectory_seed(uint64_t seed, int64_t puzzle, int64_t init) {
  const uint64_t base = derive_seed(seed, stream_id("init"));
  return derive_seed(derive_seed(base, static_cast<uint64_t>(puzzle)), static_cast<uint64_t>(init));
}

std::pair<at::Tensor, at::Tensor> trajectory_initial_states(model::EqrModel& model, uint64_t seed,
                                                            const std::vector<int64_t>& puzzles,
                                                            const std::vector<int64_t>& inits) {
  torch::NoGradGuard no_grad;
  EQR_CHECK(puzzles.size() == inits.size(), RuntimeError, "trajectory_initial_states: ", puzzles.size(),
            " puzzles vs ", inits.size(), " init indices; expected equal counts");
  const int64_t n = static_cast<int64_t>(puzzles.size());
  if (model->arch().init == config::StateInit::kFixed) return dynamics::initial_states(model, n);
  std::vector<at::Tensor> hs, ls;
  hs.reserve(puzzles.size());
  ls.reserve(puzzles.size());
  const auto device = model->device();
  for (size_t i = 0; i < puzzles.size(); ++i) {
    // Drawn on the CPU whatever the model's device (then copied): a trajectory starts from the same state on
    // every device, so a CUDA evaluation can be held against a CPU one. Cost: 2*S*D draws per trajectory,
    // once per trajectory (not per step).
    at::Generator g = model::make_generator(c10::Device(c10::kCPU), trajectory_seed(seed, puzzles[i], inits[i]));
    auto [h, l] = dynamics::initial_states(model, 1, g);
    hs.push_back(h);
    ls.push_back(l);
  }
  const auto& a = model->arch();
  if (n == 0) {
    const auto opts = torch::TensorOptions().dtype(model->forward_dtype()).device(device);
    return {torch::empty({0, a.seq_len, a.hidden_size}, opts), torch::empty({0, a.seq_len, a.hidden_size}, opts)};
  }
  return {torch::cat(hs, 0), torch::cat(ls, 0)};
}

}  // namespace eqr::infer
