#include "eqr/core/numpy_random.h"

#include <numeric>

#include "eqr/core/error.h"

namespace eqr {

namespace {
constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpperMask = 0x80000000U;
constexpr uint32_t kLowerMask = 0x7fffffffU;
}  // namespace

void NumpyRandomState::seed_legacy(uint32_t seed) {
  uint32_t s = seed;
  for (int i = 0; i < kStateWords; ++i) {
    key_[i] = s;
    s = 1812433253U * (s ^ (s >> 30)) + static_cast<uint32_t>(i + 1);
  }
  pos_ = kStateWords;
}

void NumpyRandomState::regenerate() {
  int i = 0;
  for (; i < kStateWords - kM; ++i) {
    const uint32_t y = (key_[i] & kUpperMask) | (key_[i + 1] & kLowerMask);
    key_[i] = key_[i + kM] ^ (y >> 1) ^ (-(y & 1U) & kMatrixA);
  }
  for (; i < kStateWords - 1; ++i) {
    const uint32_t y = (key_[i] & kUpperMask) | (key_[i + 1] & kLowerMask);
    key_[i] = key_[i + (kM - kStateWords)] ^ (y >> 1) ^ (-(y & 1U) & kMatrixA);
  }
  const uint32_t y = (key_[kStateWords - 1] & kUpperMask) | (key_[0] & kLowerMask);
  key_[kStateWords - 1] = key_[kM - 1] ^ (y >> 1) ^ (-(y & 1U) & kMatrixA);
  pos_ = 0;
}

uint32_t NumpyRandomState::next_uint32() {
  if (pos_ >= kStateWords) regenerate();
  uint32_t y = key_[pos_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

double NumpyRandomState::random_sample() {
  const int32_t a = static_cast<int32_t>(next_uint32() >> 5);
  const int32_t b = static_cast<int32_t>(next_uint32() >> 6);
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

uint32_t NumpyRandomState::random_interval(uint32_t max) {
  if (max == 0) return 0;
  uint32_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  uint32_t value = 0;
  while ((value = (next_uint32() & mask)) > max) {
  }
  return value;
}

std::vector<int64_t> NumpyRandomState::permutation(int64_t n) {
  EQR_CHECK(n >= 0 && n <= int64_t{0xffffffff}, DataError, "numpy permutation: n = ", n,
            " is outside [0, 2^32) (only numpy's 32-bit interval path is implemented)");
  std::vector<int64_t> values(static_cast<size_t>(n));
  std::iota(values.begin(), values.end(), int64_t{0});
  shuffle(values);
  return values;
}

std::vector<int64_t> NumpyRandomState::choice_without_replacement(int64_t n, int64_t k) {
  EQR_CHECK(k >= 0 && k <= n, DataError, "numpy choice: cannot take ", k, " of ", n,
            " without replacement (expected 0 <= k <= n)");
  std::vector<int64_t> values = permutation(n);
  values.resize(static_cast<size_t>(k));
  return values;
}

nlohmann::json NumpyRandomState::state() const {
  return nlohmann::json{{"key", std::vector<uint32_t>(key_.begin(), key_.end())}, {"pos", pos_}};
}

void NumpyRandomState::set_state(const nlohmann::json& state) {
  EQR_CHECK(state.is_object() && state.contains("key") && state.contains("pos") && state["key"].is_array() &&
                state["key"].size() == static_cast<size_t>(kStateWords) && state["pos"].is_number_integer(),
            DataError, "numpy RandomState state: expected {\"key\": [", kStateWords, " words], \"pos\": int}");
  const int pos = state["pos"].get<int>();
  EQR_CHECK(pos >= 0 && pos <= kStateWords, DataError, "numpy RandomState state: pos = ", pos,
            " outside [0, ", kStateWords, "]");
  for (int i = 0; i < kStateWords; ++i) key_[i] = state["key"][i].get<uint32_t>();
  pos_ = pos;
}

}  // namespace eqr
