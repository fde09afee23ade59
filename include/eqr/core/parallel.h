#pragma once
// A small host thread pool for independent items (generating, solving, canonicalising puzzles): not for
// tensor work, which runs on LibTorch's own threads.

#include <cstdint>
#include <functional>

namespace eqr {

/// Calls fn(i) for every i in [0, count) on `threads` workers (0 = hardware concurrency). The first exception
/// stops the remaining work and is rethrown. `progress(done)` (optional) runs on the calling thread only, a few
/// times a second and once at the end.
void parallel_for(int64_t count, int threads, const std::function<void(int64_t i)>& fn,
                  const std::function<void(int64_t done)>& progress = {});

}  // namespace eqr
