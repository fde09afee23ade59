#pragma once
// Seeded random number helpers. Every random stream in eqr derives from one user seed through
// `derive_seed(seed, stream_id)`, so results are reproducible and independent of thread count.

#include <cstdint>
#include <random>
#include <string_view>

#include <ATen/core/Generator.h>

namespace eqr {

/// SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit input.
uint64_t splitmix64(uint64_t x);

/// Seed of an independent stream `stream` under `seed` (e.g. one per worker or per puzzle).
uint64_t derive_seed(uint64_t seed, uint64_t stream);

/// Stream id from a name, so streams can be labelled ("init", "noise", "loader").
uint64_t stream_id(std::string_view name);

/// A CPU torch generator seeded with `seed`.
at::Generator make_cpu_generator(uint64_t seed);

/// Seeds torch's global generators (CPU and, if present, CUDA) with `seed`.
void seed_torch(uint64_t seed);

/// A std::mt19937_64 seeded from derive_seed(seed, stream).
std::mt19937_64 make_std_rng(uint64_t seed, uint64_t stream);

}  // namespace eqr
