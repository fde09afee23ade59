// Shapes: B = local batch rows, S = cells per board, G = groups of the split, N = examples.
#include "eqr/data/loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/core/rng.h"

namespace eqr::data {

namespace {

// Uniform integer in [0, n) without bias (Lemire's multiply-and-reject), n >= 1.
uint64_t below(std::mt19937_64& g, uint64_t n) {
  uint64_t x = g();
  __uint128_t m = static_cast<__uint128_t>(x) * n;
  auto low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      x = g();
      m = static_cast<__uint128_t>(x) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

uint64_t epoch_seed(uint64_t seed, int64_t epoch) {
  return derive_seed(derive_seed(seed, stream_id("loader.train")), static_cast<uint64_t>(epoch));
}

const char* mode_name(LoaderMode m) { return m == LoaderMode::kTrain ? "train" : "test"; }

}  // namespace

// ---------------------------------------------------------------------------------------------------
// LoaderState

nlohmann::json LoaderState::to_json() const {
  return nlohmann::json{{"mode", mode_name(mode)},         {"seed", seed},
                        {"epoch", epoch},                  {"cursor", cursor},
                        {"batch_index", batch_index},      {"finished", finished},
                        {"num_groups", num_groups},        {"num_examples", num_examples},
                        {"global_batch_size", global_batch_size}};
}

LoaderState LoaderState::from_json(const nlohmann::json& j) {
  EQR_CHECK(j.is_object(), DataError, "loader state: expected a JSON object, got ", j.dump());
  auto need = [&](const char* key) -> const nlohmann::json& {
    EQR_CHECK(j.contains(key), DataError, "loader state: missing key '", key, "' in ", j.dump());
    return j[key];
  };
  LoaderState s;
  const auto mode = need("mode");
  EQR_CHECK(mode == "train" || mode == "test", DataError, "loader state: mode ", mode.dump(),
            ", expected \"train\" or \"test\"");
  s.mode = mode == "train" ? LoaderMode::kTrain : LoaderMode::kTest;
  try {
    s.seed = need("seed").get<uint64_t>();
    s.epoch = need("epoch").get<int64_t>();
    s.cursor = need("cursor").get<int64_t>();
    s.batch_index = need("batch_index").get<int64_t>();
    s.finished = need("finished").get<bool>();
    s.num_groups = need("num_groups").get<int64_t>();
    s.num_examples = need("num_examples").get<int64_t>();
    s.global_batch_size = need("global_batch_size").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    EQR_FAIL(DataError, "loader state: mistyped field (", e.what(), ") in ", j.dump());
  }
  EQR_CHECK(s.epoch >= 0 && s.cursor >= 0 && s.batch_index >= 0, DataError,
            "loader state: negative epoch/cursor/batch_index in ", j.dump());
  return s;
}

bool LoaderState::operator==(const LoaderState& o) const {
  return mode == o.mode && seed == o.seed && epoch == o.epoch && cursor == o.cursor &&
         batch_index == o.batch_index && finished == o.finished && num_groups == o.num_groups &&
         num_examples == o.num_examples && global_batch_size == o.global_batch_size;
}

// ---------------------------------------------------------------------------------------------------
// Sampler: a pure function from a state to (batch, next state); one per thread.

class Loader::Sampler {
 public:
  Sampler(std::shared_ptr<const SplitData> data, const LoaderOptions& opts) : d_(std::move(data)), o_(opts) {}

  std::optional<Batch> produce(LoaderState& s) {
    if (s.finished) return std::nullopt;
    return o_.mode == LoaderMode::kTrain ? produce_train(s) : produce_test(s);
  }

 private:
  // Group order and one member puzzle per position for epoch `epoch`.
  void plan(uint64_t seed, int64_t epoch) {
    if (planned_ && planned_seed_ == seed && planned_epoch_ == epoch) return;
    const int64_t g = d_->num_groups();
    std::mt19937_64 rng(epoch_seed(seed, epoch));
    order_.resize(static_cast<size_t>(g));
    std::iota(order_.begin(), order_.end(), int64_t{0});
    for (int64_t i = g - 1; i >= 1; --i) std::swap(order_[i], order_[below(rng, static_cast<uint64_t>(i + 1))]);
    member_.resize(static_cast<size_t>(g));
    for (int64_t k = 0; k < g; ++k) {
      const int64_t lo = d_->group_indices[order_[k]];
      const int64_t size = d_->group_indices[order_[k] + 1] - lo;
      member_[k] = size > 0 ? lo + static_cast<int64_t>(below(rng, static_cast<uint64_t>(size))) : -1;
    }
    planned_ = true;
    planned_seed_ = seed;
    planned_epoch_ = epoch;
  }

  std::optional<Batch> produce_train(LoaderState& s) {
    const int64_t gb = o_.global_batch_size;
    const int64_t g = d_->num_groups();
    for (;;) {
      if (o_.max_epochs > 0 && s.epoch >= o_.max_epochs) {
        s.finished = true;
        return std::nullopt;
      }
      plan(s.seed, s.epoch);
      rows_.clear();
      puzzles_.clear();
      int64_t cursor = s.cursor;
      while (cursor < g && static_cast<int64_t>(rows_.size()) < gb) {
        const int64_t p = member_[cursor];
        const int64_t position = cursor++;
        if (p < 0) continue;  // empty group
        const int64_t start = d_->puzzle_indices[p];
        const int64_t size = d_->puzzle_indices[p + 1] - start;
        const int64_t take = std::min(size, gb - static_cast<int64_t>(rows_.size()));
        if (size == 1) {
          rows_.push_back(start);
        } else if (size > 1) {
          // `take` of the puzzle's examples in random order, from a stream keyed by the position.
          std::mt19937_64 rng(derive_seed(epoch_seed(s.seed, s.epoch), static_cast<uint64_t>(position)));
          pick_.resize(static_cast<size_t>(size));
          std::iota(pick_.begin(), pick_.end(), start);
          for (int64_t i = 0; i < take; ++i) {
            std::swap(pick_[i], pick_[i + static_cast<int64_t>(below(rng, static_cast<uint64_t>(size - i)))]);
            rows_.push_back(pick_[i]);
          }
        }
        puzzles_.insert(puzzles_.end(), static_cast<size_t>(std::max<int64_t>(take, 0)), p);
      }
      if (static_cast<int64_t>(rows_.size()) == gb) {
        Batch b = collate_slice(gb);
        b.epoch = s.epoch;
        b.index = s.batch_index;
        s.cursor = cursor;
        ++s.batch_index;
        return b;
      }
      // The epoch is used up; its under-filled tail is dropped.
      EQR_CHECK(s.batch_index > 0, DataError, "train split: epoch ", s.epoch, " yields no full batch of ", gb,
                " rows (", g, " groups, ", d_->num_examples(),
                " examples); lower train.global_batch_size (the reference drops partial batches)");
      ++s.epoch;
      s.cursor = 0;
      s.batch_index = 0;
    }
  }

  std::optional<Batch> produce_test(LoaderState& s) {
    const int64_t n = d_->num_examples();
    if (s.cursor >= n) {
      s.finished = true;
      return std::nullopt;
    }
    const int64_t gb = o_.global_batch_size;
    const int64_t local = gb / o_.world_size;
    const int64_t start = s.cursor;
    const int64_t end = std::min(n, start + gb);
    const int64_t ls = start + o_.rank * local;
    const int64_t le = std::min(start + (o_.rank + 1) * local, end);
    rows_.clear();
    puzzles_.clear();
    for (int64_t r = ls; r < le; ++r) {
      rows_.push_back(r);
      const auto it = std::upper_bound(d_->puzzle_indices.begin(), d_->puzzle_indices.end(), static_cast<int32_t>(r));
      puzzles_.push_back(static_cast<int64_t>(it - d_->puzzle_indices.begin()) - 1);
    }
    Batch b = collate(rows_, puzzles_);
    b.effective_size = end - start;
    b.index = s.batch_index;
    s.cursor += gb;
    ++s.batch_index;
    return b;
  }

  // This rank's slice of the global rows_/puzzles_.
  Batch collate_slice(int64_t effective) {
    const int64_t local = o_.global_batch_size / o_.world_size;
    const auto lo = static_cast<size_t>(o_.rank * local);
    slice_rows_.assign(rows_.begin() + lo, rows_.begin() + lo + local);
    slice_puzzles_.assign(puzzles_.begin() + lo, puzzles_.begin() + lo + local);
    Batch b = collate(slice_rows_, slice_puzzles_);
    b.effective_size = effective;
    return b;
  }

  // rows/puzzles: the real rows of the local batch (<= B); the rest is padding.
  Batch collate(const std::vector<int64_t>& rows, const std::vector<int64_t>& puzzles) const {
    const int64_t local = o_.global_batch_size / o_.world_size;
    const int64_t s = d_->seq_len();
    const DatasetMetadata& m = d_->metadata;
    // Fresh tensors per batch; pinned ones come from LibTorch's caching host allocator, which does not hand a
    // block out again while a non_blocking copy from it is still in flight.
    const auto host = torch::TensorOptions().pinned_memory(o_.pin_memory);
    Batch b;
    b.inputs = torch::empty({local, s}, host.dtype(torch::kInt32));
    b.labels = torch::empty({local, s}, host.dtype(torch::kInt32));
    b.puzzle_identifiers = torch::empty({local}, host.dtype(torch::kInt32));
    b.example_indices = torch::empty({local}, host.dtype(torch::kInt64));
    auto* in = b.inputs.data_ptr<int32_t>();
    auto* lab = b.labels.data_ptr<int32_t>();
    auto* ids = b.puzzle_identifiers.data_ptr<int32_t>();
    auto* ex = b.example_indices.data_ptr<int64_t>();
    const bool map_ignore = m.ignore_label_id.has_value();
    const int64_t ignore = m.ignore_label_id.value_or(-1);
    const auto real = static_cast<int64_t>(rows.size());
    for (int64_t r = 0; r < local; ++r) {
      int32_t* ri = in + r * s;
      int32_t* rl = lab + r * s;
      if (r < real) {
        const uint8_t* si = d_->input_row(rows[r]);
        const uint8_t* sl = d_->label_row(rows[r]);
        for (int64_t c = 0; c < s; ++c) {
          ri[c] = si[c];
          rl[c] = map_ignore && sl[c] == ignore ? kIgnoreLabelId : static_cast<int32_t>(sl[c]);
        }
        ids[r] = d_->puzzle_identifiers[puzzles[r]];
        ex[r] = rows[r];
      } else {
        std::fill(ri, ri + s, static_cast<int32_t>(m.pad_id));
        std::fill(rl, rl + s, kIgnoreLabelId);
        ids[r] = static_cast<int32_t>(m.blank_identifier_id);
        ex[r] = -1;
      }
    }
    b.local_effective_size = std::min(real, local);
    return b;
  }

  std::shared_ptr<const SplitData> d_;
  LoaderOptions o_;
  bool planned_ = false;
  uint64_t planned_seed_ = 0;
  int64_t planned_epoch_ = -1;
  std::vector<int64_t> order_, member_, rows_, puzzles_, pick_, slice_rows_, slice_puzzles_;
};

// ---------------------------------------------------------------------------------------------------
// Loader

Loader::Loader(std::shared_ptr<const SplitData> data, LoaderOptions opts) : data_(std::move(data)), opts_(opts) {
  EQR_CHECK(data_ != nullptr, RuntimeError, "loader: no data");
  EQR_CHECK(opts_.global_batch_size >= 1, ConfigError, "global_batch_size = ", opts_.global_batch_size,
            " must be >= 1");
  EQR_CHECK(opts_.world_size >= 1 && opts_.rank >= 0 && opts_.rank < opts_.world_size, ConfigError, "rank ",
            opts_.rank, " / world size ", opts_.world_size, ": expected 0 <= rank < world_size");
  EQR_CHECK(opts_.global_batch_size % opts_.world_size == 0, ConfigError, "global_batch_size ",
            opts_.global_batch_size, " is not a multiple of the world size ", opts_.world_size);
  EQR_CHECK(opts_.prefetch_batches >= 0, ConfigError, "data.prefetch_batches = ", opts_.prefetch_batches,
            " must be >= 0");
  EQR_CHECK(opts_.max_epochs >= 0, ConfigError, "max_epochs = ", opts_.max_epochs, " must be >= 0");
  EQR_CHECK(!opts_.pin_memory || cuda_device_count() > 0, ConfigError,
            "loader: pin_memory = true needs CUDA (pinned host memory is page-locked through the CUDA driver), "
            "but no CUDA device is visible; pin only when training on a CUDA device");
  if (opts_.mode == LoaderMode::kTrain) {
    const int64_t per_epoch = batches_per_epoch();
    EQR_CHECK(per_epoch != 0, DataError, "train split '", data_->name, "': ", data_->num_groups(),
              " groups are fewer than global_batch_size ", opts_.global_batch_size,
              ", so no full batch can be formed (the reference drops partial batches); lower the batch size");
  }
  rewind();
}

Loader::~Loader() { stop_worker(); }

int64_t Loader::batches_per_epoch() const {
  const int64_t gb = opts_.global_batch_size;
  if (opts_.mode == LoaderMode::kTest) return (data_->num_examples() + gb - 1) / gb;
  for (int64_t p = 0; p < data_->num_puzzles(); ++p) {
    if (data_->puzzle_indices[p + 1] - data_->puzzle_indices[p] != 1) return -1;
  }
  for (int64_t g = 0; g < data_->num_groups(); ++g) {
    if (data_->group_indices[g + 1] == data_->group_indices[g]) return -1;
  }
  return data_->num_groups() / gb;
}

void Loader::rewind() {
  LoaderState s;
  s.mode = opts_.mode;
  s.seed = opts_.seed;
  s.num_groups = data_->num_groups();
  s.num_examples = data_->num_examples();
  s.global_batch_size = opts_.global_batch_size;
  stop_worker();
  state_ = s;
}

void Loader::restore(const LoaderState& state) {
  EQR_CHECK(state.mode == opts_.mode, DataError, "loader state is for a ", mode_name(state.mode),
            " loader, this one is ", mode_name(opts_.mode));
  EQR_CHECK(state.num_groups == data_->num_groups() && state.num_examples == data_->num_examples(), DataError,
            "loader state was saved for a split with ", state.num_groups, " groups / ", state.num_examples,
            " examples; this split '", data_->name, "' has ", data_->num_groups(), " / ", data_->num_examples(),
            " (a different dataset?)");
  EQR_CHECK(state.global_batch_size == opts_.global_batch_size, DataError, "loader state was saved with ",
            "global_batch_size ", state.global_batch_size, ", this loader uses ", opts_.global_batch_size);
  EQR_CHECK(state.cursor <= std::max(data_->num_groups(), data_->num_examples()) + opts_.global_batch_size,
            DataError, "loader state cursor ", state.cursor, " is beyond the split");
  stop_worker();
  state_ = state;
}

LoaderState Loader::state() const { return state_; }

void Loader::start_worker() {
  stop_ = false;
  const LoaderState start = state_;
  worker_ = std::thread([this, start]() {
    Sampler sampler(data_, opts_);
    LoaderState s = start;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || static_cast<int64_t>(queue_.size()) < opts_.prefetch_batches; });
        if (stop_) return;
      }
      Item item;
      try {
        item.batch = sampler.produce(s);
        item.after = s;
      } catch (...) {
        item.error = std::current_exception();
      }
      const bool last = !item.batch.has_value();
      {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(item));
      }
      cv_.notify_all();
      if (last) return;
    }
  });
}

void Loader::stop_worker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  queue_.clear();
  stop_ = false;
}

std::optional<Batch> Loader::next() {
  if (state_.finished) return std::nullopt;
  if (opts_.prefetch_batches == 0) {
    if (!inline_sampler_) inline_sampler_ = std::make_unique<Sampler>(data_, opts_);
    LoaderState s = state_;
    std::optional<Batch> b = inline_sampler_->produce(s);
    state_ = s;
    return b;
  }
  if (!worker_.joinable()) start_worker();
  Item item;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty(); });
    item = std::move(queue_.front());
    queue_.pop_front();
  }
  cv_.notify_all();
  if (item.error) {
    stop_worker();
    std::rethrow_exception(item.error);
  }
  state_ = item.after;
  if (!item.batch) stop_worker();
  return std::move(item.batch);
}

// ---------------------------------------------------------------------------------------------------
// Config glue

LoaderOptions train_loader_options(const config::RunConfig& cfg, int64_t rank, int64_t world_size) {
  LoaderOptions o;
  o.mode = LoaderMode::kTrain;
  o.global_batch_size = cfg.train.global_batch_size;
  o.rank = rank;
  o.world_size = world_size;
  o.seed = static_cast<uint64_t>(cfg.train.seed);
  o.prefetch_batches = cfg.data.prefetch_batches;
  return o;
}

}  // namespace eqr::data
