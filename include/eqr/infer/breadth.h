#pragma once
// Breadth sampler (reference/eqr_spec.md §5 "different_init"): R independent trajectories per puzzle,
// each from its own random initial state, laid out as the reference's repeat_interleave:
//   row p*R + r  =  puzzle p, initial state r   (puzzle0-init0 .. init(R-1), puzzle1-init0, ...)
// and run in one batch.
//
// Shape legend: P puzzles, R breadth, B = P*R rows, S cells, D hidden.
//
// Beyond the reference: the initial state of trajectory (puzzle p, init r) is drawn from its OWN generator,
// seeded with trajectory_seed(seed, p, r). A trajectory's start therefore does not depend on which other
// rows share its batch, on the batch size, on the scheduler or on R: breadth R' < R sees exactly the first
// R' starts of breadth R, and an adaptive run that streams puzzles into freed rows starts them where a
// fixed run would. (The reference draws all starts of a batch from one stream.) Path noise still comes
// from one generator per run (it is drawn inside the model, per batch).

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>

#include "eqr/dynamics/carry.h"
#include "eqr/model/eqr_model.h"

namespace eqr::infer {

/// Rows repeated R times each, as torch.repeat_interleave(R, dim=0): (P, ...) -> (P*R, ...).
/// Undefined tensors stay undefined.
at::Tensor repeat_rows(const at::Tensor& t, int64_t breadth);
/// Every field of `puzzles` (P rows) repeated R times each -> P*R rows.
dynamics::Batch expand_breadth(const dynamics::Batch& puzzles, int64_t breadth);

/// Seed of the initial state of trajectory (puzzle, init) under a run seed (splitmix-derived; distinct
/// streams for distinct (puzzle, init)).
uint64_t trajectory_seed(uint64_t seed, int64_t puzzle, int64_t init);

/// Initial states of the listed trajectories: row i is drawn by dynamics::initial_states(model, 1, g_i)
/// with g_i a CPU generator seeded trajectory_seed(seed, puzzles[i], inits[i]), whatever the model's device, so
/// a trajectory starts from the same state on every device (arch.init
/// "fixed": the broadcast buffers, no draw). Returns (z_h, z_l), each (n, S, D) in the forward dtype.
std::pair<at::Tensor, at::Tensor> trajectory_initial_states(model::EqrModel& model, uint64_t seed,
                                                            const std::vector<int64_t>& puzzles,
                                                            const std::vector<int64_t>& inits);

}  // namespace eqr::infer
