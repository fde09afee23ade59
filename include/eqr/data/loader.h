#pragma once
// Batches of a built split for training and evaluation, sampled as the reference's PuzzleDataset
// (reference/eqr_spec.md §4.3), with an optional background prefetch thread.
//
// Shapes: B = local (per-rank) batch rows = global_batch_size / world_size, S = cells per board.
//
// Train: every epoch walks a fresh permutation of the G groups; each group contributes ONE uniformly
//   chosen member puzzle (its examples, in random order, up to the room left); batches of
//   global_batch_size rows are filled in that order and the last under-filled batch of an epoch is
//   dropped (Sudoku 1k: 1000 groups, 768 rows -> 1 batch per epoch). Epochs follow each other forever
//   (or up to max_epochs).
// Test: sequential, unshuffled batches of global_batch_size rows; the last one is short and padded.
// Ranks: every rank forms the same global batch and keeps rows [rank * B, (rank + 1) * B); a rank with
//   fewer real rows (the short last test batch) is padded: inputs pad_id, labels -100, ids blank id.
// Collate: int32 tensors; labels equal to dataset.json's ignore_label_id (0) become -100.
//
// Randomness (differs from the reference on purpose): the reference draws from numpy's
// Generator(Philox(seed + pass)) and saves the Philox state. Here epoch e is a pure function of
// (seed, e): its group order and member picks come from std::mt19937_64(derive_seed(seed, e)) with
// unbiased bounded integers, and the example order inside a multi-example puzzle from a stream keyed by
// its position. So the stream is identical for every world size, independent of the prefetch depth, and
// a checkpoint needs only (seed, epoch, cursor): restoring it yields exactly the batches the
// uninterrupted loader would have. Batches are therefore not the reference's batches for the same seed
// (the model is trained on the same distribution; reproducing Philox is not worth its weight).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "eqr/config/config.h"
#include "eqr/data/dataset.h"

namespace eqr::data {

/// One local batch.
struct Batch {
  at::Tensor inputs;              ///< (B, S) int32 token ids; padding rows pad_id
  at::Tensor labels;              ///< (B, S) int32; ignore_label_id and padding rows -> kIgnoreLabelId
  at::Tensor puzzle_identifiers;  ///< (B) int32; padding rows blank_identifier_id
  at::Tensor example_indices;     ///< (B) int64 row of the split per batch row; -1 for padding rows
  int64_t effective_size = 0;        ///< real rows of the GLOBAL batch (reference: effective_global_size)
  int64_t local_effective_size = 0;  ///< real rows of this rank's slice (the rest is padding)
  int64_t epoch = 0;                 ///< train: 0-based epoch of the batch; test: 0
  int64_t index = 0;                 ///< batch number within its epoch (train) or the split (test)
};

enum class LoaderMode { kTrain, kTest };

struct LoaderOptions {
  LoaderMode mode = LoaderMode::kTrain;  ///< train sampling or sequential test batches
  int64_t global_batch_size = 768;       ///< rows per step across all ranks
  int64_t rank = 0;                      ///< this process's rank in data parallel
  int64_t world_size = 1;                ///< number of ranks; must divide global_batch_size
  uint64_t seed = 0;                     ///< train sampling seed (train.seed; the same on every rank)
  int64_t max_epochs = 0;                ///< train: stop after this many epochs (0 = never stop)
  int64_t prefetch_batches = 8;          ///< batches prepared ahead on a background thread (0 = inline)
  /// Allocate every batch's tensors in pinned (page-locked) host memory, so that copies to a CUDA device can
  /// be asynchronous (`.to(device, non_blocking=true)`). Each batch gets fresh tensors (no buffer is reused
  /// while a copy from it may be in flight). Needs CUDA at run time: the Loader constructor throws
  /// ConfigError when no CUDA device is visible. The trainer sets it when it trains on CUDA.
  bool pin_memory = false;
};

/// Where a loader stands, after the last batch handed out. Small enough for a checkpoint's JSON.
struct LoaderState {
  LoaderMode mode = LoaderMode::kTrain;
  uint64_t seed = 0;           ///< sampling seed (restore adopts it)
  int64_t epoch = 0;           ///< train: current epoch
  int64_t cursor = 0;          ///< train: groups of this epoch's order consumed; test: next example row
  int64_t batch_index = 0;     ///< batches handed out in this epoch (train) / split (test)
  bool finished = false;       ///< test (or train with max_epochs): nothing left
  int64_t num_groups = 0;      ///< for checks on restore
  int64_t num_examples = 0;    ///< for checks on restore
  int64_t global_batch_size = 0;

  nlohmann::json to_json() const;
  /// DataError (CheckpointError-like message) if fields are missing or mistyped.
  static LoaderState from_json(const nlohmann::json& j);
  bool operator==(const LoaderState& o) const;
};

class Loader {
 public:
  /// `data` must outlive nothing: the loader shares ownership. Throws ConfigError for bad options and
  /// DataError when no full train batch can be formed.
  Loader(std::shared_ptr<const SplitData> data, LoaderOptions opts);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next local batch, or nullopt when the split (test) or max_epochs (train) is exhausted.
  std::optional<Batch> next();
  /// State after the last batch returned by next() (prefetched batches do not count).
  LoaderState state() const;
  /// Continues from a saved state: the following next() calls return exactly what the saved loader's
  /// would have. Throws DataError if the state belongs to a different split or batch size.
  void restore(const LoaderState& state);
  /// Back to the start (test: the first batch again; train: epoch 0).
  void rewind();

  int64_t local_batch_size() const { return opts_.global_batch_size / opts_.world_size; }
  /// Train: full batches per epoch when every puzzle has one example (Sudoku): floor(G / global);
  /// otherwise -1. Test: ceil(N / global).
  int64_t batches_per_epoch() const;
  const LoaderOptions& options() const { return opts_; }
  const SplitData& data() const { return *data_; }

 private:
  class Sampler;
  /// A prefetched batch (or the end, or an error) and the state after it.
  struct Item {
    std::optional<Batch> batch;
    LoaderState after;
    std::exception_ptr error;
  };

  void start_worker();
  void stop_worker();

  std::shared_ptr<const SplitData> data_;
  LoaderOptions opts_;
  LoaderState state_;
  std::unique_ptr<Sampler> inline_sampler_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::thread worker_;
  bool stop_ = false;
};

/// Train loader options from a run config: train.global_batch_size, train.seed, data.prefetch_batches.
LoaderOptions train_loader_options(const config::RunConfig& cfg, int64_t rank = 0, int64_t world_size = 1);

}  // namespace eqr::data
