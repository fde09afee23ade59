#include "eqr/core/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace eqr {

void parallel_for(int64_t count, int threads, const std::function<void(int64_t i)>& fn,
                  const std::function<void(int64_t done)>& progress) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  threads = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(count, 1)));
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      for (int64_t i = next++; i < count && !stop; i = next++) {
        fn(i);
        ++done;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  if (progress) {
    pool.emplace_back(work);
    while (done < count && !stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      progress(done);
    }
  } else {
    work();  // the calling thread is the last worker
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  if (progress) progress(done);
}

}  // namespace eqr
