#pragma once
// The subset of numpy's legacy global RNG (np.random.RandomState, MT19937) that the reference dataset
// builder uses (reference/eqr_spec.md §4.2): np.random.seed(int), rand()/random_sample(),
// shuffle/permutation of a 1-D array, and choice(N, k, replace=False). Draws are bit-exact with numpy
// (checked against tests/fixtures/numpy/draws.json, written by numpy itself), so `eqr data build`
// reproduces the reference's subsample and augmentations from the same CSV.
//
// What numpy does (numpy/random/mtrand.pyx, _mt19937.pyx, src/mt19937, src/distributions):
//   seed(s):          MT19937 init_genrand(s) (Knuth's multiplier 1812433253), s in [0, 2^32); the
//                     first draw regenerates the whole 624-word state.
//   random_sample():  a = next32 >> 5, b = next32 >> 6 (a first); (a * 2^26 + b) / 2^53.
//   shuffle(x):       for i = n-1 .. 1: j = interval(i); swap(x[i], x[j]).
//   interval(max):    mask = smallest 2^k - 1 >= max; draw next32 & mask until <= max (max < 2^32).
//   permutation(n):   arange(n) then shuffle.
//   choice(n, k, replace=False) (no p): permutation(n)[:k]  -- draws n-1 values, not k.

#include <array>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace eqr {

class NumpyRandomState {
 public:
  /// Number of 32-bit words of MT19937 state.
  static constexpr int kStateWords = 624;

  /// Same stream as `np.random.seed(seed)` (any seed in [0, 2^32), as numpy accepts).
  explicit NumpyRandomState(uint32_t seed = 0) { seed_legacy(seed); }
  /// Reseeds like np.random.seed(seed).
  void seed_legacy(uint32_t seed);

  /// One raw 32-bit MT19937 output.
  uint32_t next_uint32();
  /// np.random.rand() / random_sample(): a double in [0, 1) with 53 random bits.
  double random_sample();
  /// Uniform integer in [0, max] by masked rejection (numpy's random_interval, 32-bit path only).
  uint32_t random_interval(uint32_t max);

  /// Legacy in-place shuffle of a 1-D array (np.random.shuffle).
  template <typename T>
  void shuffle(T* data, int64_t n) {
    for (int64_t i = n - 1; i >= 1; --i) {
      const int64_t j = random_interval(static_cast<uint32_t>(i));
      T tmp = data[i];
      data[i] = data[j];
      data[j] = tmp;
    }
  }
  template <typename T>
  void shuffle(std::vector<T>& values) {
    shuffle(values.data(), static_cast<int64_t>(values.size()));
  }

  /// np.random.permutation(n): a shuffled 0..n-1 (n must be < 2^32).
  std::vector<int64_t> permutation(int64_t n);
  /// np.random.choice(n, k, replace=False): the first k of permutation(n) (k <= n; DataError otherwise).
  std::vector<int64_t> choice_without_replacement(int64_t n, int64_t k);

  /// The state as numpy's get_state() shows it: {"key": [624 words], "pos": p}.
  nlohmann::json state() const;
  /// Restores a state() (DataError if malformed).
  void set_state(const nlohmann::json& state);

 private:
  void regenerate();

  std::array<uint32_t, kStateWords> key_{};
  int pos_ = kStateWords;
};

}  // namespace eqr
