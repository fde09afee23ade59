// Loader: reference sampling (groups, one member each, drop-last), test padding, rank slices,
// determinism, prefetch on/off equality, resume mid-epoch from a saved state.
// Shapes: B local batch rows, S cells.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <memory>
#include <set>
#include <vector>

#include "eqr/core/error.h"
#include "eqr/data/dataset.h"
#include "eqr/data/loader.h"

namespace eqr::data {
namespace {

// G groups of `members` single-example puzzles; S = 4 cells. Row r: inputs = (r % 200) + 1 in cell 0,
// labels = 2 except cell 3 of even rows = 0 (the ignore label).
std::shared_ptr<SplitData> make_split(int64_t groups, int64_t members, const std::string& name = "train") {
  auto d = std::make_shared<SplitData>();
  d->name = name;
  const int64_t n = groups * members;
  d->metadata.seq_len = 4;
  d->metadata.vocab_size = 256;
  d->metadata.total_groups = groups;
  d->metadata.total_samples = n;
  d->inputs.assign(static_cast<size_t>(n * 4), 1);
  d->labels.assign(static_cast<size_t>(n * 4), 2);
  for (int64_t r = 0; r < n; ++r) {
    d->inputs[r * 4] = static_cast<uint8_t>(r % 200 + 1);
    d->inputs[r * 4 + 1] = static_cast<uint8_t>(r / 200 + 1);
    if (r % 2 == 0) d->labels[r * 4 + 3] = 0;
  }
  d->puzzle_identifiers.assign(static_cast<size_t>(n), 0);
  for (int64_t p = 0; p <= n; ++p) d->puzzle_indices.push_back(static_cast<int32_t>(p));
  for (int64_t g = 0; g <= groups; ++g) d->group_indices.push_back(static_cast<int32_t>(g * members));
  d->validate("test split");
  return d;
}

LoaderOptions train_opts(int64_t batch, int64_t prefetch = 0, uint64_t seed = 3) {
  LoaderOptions o;
  o.mode = LoaderMode::kTrain;
  o.global_batch_size = batch;
  o.seed = seed;
  o.prefetch_batches = prefetch;
  return o;
}

std::vector<int64_t> rows_of(const Batch& b) {
  const auto t = b.example_indices.contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

std::vector<std::vector<int64_t>> take(Loader& l, int count) {
  std::vector<std::vector<int64_t>> out;
  for (int i = 0; i < count; ++i) {
    auto b = l.next();
    if (!b) break;
    out.push_back(rows_of(*b));
  }
  return out;
}

TEST(DataLoader, TrainBatchesDropLastAndOneMemberPerGroup) {
  const auto d = make_split(10, 3);  // 10 groups of 3 augmentations
  LoaderOptions o = train_opts(4);
  o.max_epochs = 3;
  Loader l(d, o);
  EXPECT_EQ(l.batches_per_epoch(), 2);  // floor(10 / 4); the 2 leftover groups are dropped
  std::vector<Batch> batches;
  while (auto b = l.next()) batches.push_back(*b);
  ASSERT_EQ(batches.size(), 6u);
  for (int64_t e = 0; e < 3; ++e) {
    std::set<int64_t> groups;
    for (int k = 0; k < 2; ++k) {
      const Batch& b = batches[e * 2 + k];
      EXPECT_EQ(b.epoch, e);
      EXPECT_EQ(b.index, k);
      EXPECT_EQ(b.effective_size, 4);
      EXPECT_EQ(b.local_effective_size, 4);
      EXPECT_EQ(b.inputs.sizes(), (std::vector<int64_t>{4, 4}));
      EXPECT_EQ(b.inputs.scalar_type(), torch::kInt32);
      EXPECT_EQ(b.labels.scalar_type(), torch::kInt32);
      EXPECT_EQ(b.puzzle_identifiers.sizes(), (std::vector<int64_t>{4}));
      for (int64_t r : rows_of(b)) {
        EXPECT_TRUE(groups.insert(r / 3).second) << "group " << r / 3 << " twice in epoch " << e;
      }
    }
    EXPECT_EQ(groups.size(), 8u);
  }
  EXPECT_FALSE(l.next().has_value());
  EXPECT_TRUE(l.state().finished);
}

TEST(DataLoader, CollateCopiesRowsAndMapsIgnoreLabels) {
  const auto d = make_split(12, 2);
  Loader l(d, train_opts(6));
  const Batch b = *l.next();
  const auto rows = rows_of(b);
  const auto in = b.inputs.accessor<int32_t, 2>();
  const auto lab = b.labels.accessor<int32_t, 2>();
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(in[i][0], rows[i] % 200 + 1);
    EXPECT_EQ(in[i][2], 1);
    EXPECT_EQ(lab[i][0], 2);
    EXPECT_EQ(lab[i][3], rows[i] % 2 == 0 ? kIgnoreLabelId : 2);
  }
}

TEST(DataLoader, TestBatchesAreSequentialAndPadded) {
  const auto d = make_split(10, 1, "test");
  LoaderOptions o;
  o.mode = LoaderMode::kTest;
  o.global_batch_size = 4;
  o.prefetch_batches = 2;
  Loader l(d, o);
  EXPECT_EQ(l.batches_per_epoch(), 3);
  std::vector<Batch> bs;
  while (auto b = l.next()) bs.push_back(*b);
  ASSERT_EQ(bs.size(), 3u);
  EXPECT_EQ(rows_of(bs[0]), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(rows_of(bs[1]), (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(rows_of(bs[2]), (std::vector<int64_t>{8, 9, -1, -1}));
  EXPECT_EQ(bs[2].effective_size, 2);
  EXPECT_EQ(bs[2].local_effective_size, 2);
  const auto in = bs[2].inputs.accessor<int32_t, 2>();
  const auto lab = bs[2].labels.accessor<int32_t, 2>();
  for (int64_t r = 2; r < 4; ++r) {
    for (int64_t c = 0; c < 4; ++c) {
      EXPECT_EQ(in[r][c], 0);  // pad_id
      EXPECT_EQ(lab[r][c], kIgnoreLabelId);
    }
    EXPECT_EQ(bs[2].puzzle_identifiers[r].item<int32_t>(), 0);
  }
  EXPECT_FALSE(l.next().has_value());
  l.rewind();
  EXPECT_EQ(rows_of(*l.next()), (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(DataLoader, RankSlicesPartitionTheGlobalBatch) {
  const auto d = make_split(40, 5);
  Loader whole(d, train_opts(12));
  const auto global = take(whole, 7);
  for (const int64_t world : {2, 3, 4}) {
    std::vector<std::unique_ptr<Loader>> ranks;
    for (int64_t r = 0; r < world; ++r) {
      LoaderOptions o = train_opts(12, r % 2 ? 3 : 0);
      o.rank = r;
      o.world_size = world;
      ranks.push_back(std::make_unique<Loader>(d, o));
      EXPECT_EQ(ranks.back()->local_batch_size(), 12 / world);
    }
    for (const auto& g : global) {
      std::vector<int64_t> joined;
      for (auto& l : ranks) {
        const auto part = rows_of(*l->next());
        joined.insert(joined.end(), part.begin(), part.end());
      }
      EXPECT_EQ(joined, g) << "world " << world;
    }
  }
  // Test split, world 2, 10 rows in batches of 4: the last global batch has 2 rows, all on rank 0.
  const auto t = make_split(10, 1, "test");
  LoaderOptions o;
  o.mode = LoaderMode::kTest;
  o.global_batch_size = 4;
  o.world_size = 2;
  o.rank = 1;
  Loader r1(t, o);
  EXPECT_EQ(rows_of(*r1.next()), (std::vector<int64_t>{2, 3}));
  r1.next();
  const Batch last = *r1.next();
  EXPECT_EQ(rows_of(last), (std::vector<int64_t>{-1, -1}));
  EXPECT_EQ(last.effective_size, 2);
  EXPECT_EQ(last.local_effective_size, 0);
}

TEST(DataLoader, DeterministicForASeed) {
  const auto d = make_split(50, 4);
  Loader a(d, train_opts(16, 0, 11)), b(d, train_opts(16, 4, 11)), c(d, train_opts(16, 0, 12));
  const auto ra = take(a, 9);
  EXPECT_EQ(ra, take(b, 9));  // prefetch on/off: identical batches
  EXPECT_NE(ra, take(c, 9));
  // Epochs differ from each other (fresh permutation and members each epoch).
  EXPECT_NE(ra[0], ra[3]);
}

TEST(DataLoader, ResumesMidEpochExactly) {
  const auto d = make_split(30, 7);
  for (const int64_t prefetch : {0, 3}) {
    Loader uninterrupted(d, train_opts(8, prefetch));
    const auto expected = take(uninterrupted, 12);  // 3 batches per epoch: crosses epochs
    Loader first(d, train_opts(8, prefetch));
    take(first, 5);  // stop in the middle of epoch 1
    const nlohmann::json saved = first.state().to_json();
    EXPECT_EQ(saved["epoch"], 1);
    EXPECT_EQ(saved["batch_index"], 2);
    Loader resumed(d, train_opts(8, 5 - prefetch, 999));  // seed comes from the state
    resumed.restore(LoaderState::from_json(saved));
    const auto rest = take(resumed, 7);
    EXPECT_EQ(rest, std::vector<std::vector<int64_t>>(expected.begin() + 5, expected.end())) << "prefetch " << prefetch;
    // The original keeps going from where it was, unaffected by prefetched batches.
    EXPECT_EQ(take(first, 7), rest);
  }
}

TEST(DataLoader, RejectsBadOptionsAndStates) {
  const auto d = make_split(10, 2);
  EXPECT_THROW(Loader(d, train_opts(11)), DataError);  // 10 groups cannot fill a batch of 11
  LoaderOptions o = train_opts(6);
  o.world_size = 4;
  EXPECT_THROW(Loader(d, o), ConfigError);
  o.world_size = 2;
  o.rank = 2;
  EXPECT_THROW(Loader(d, o), ConfigError);
  Loader l(d, train_opts(5));
  LoaderState s = l.state();
  s.num_groups = 11;
  EXPECT_THROW(l.restore(s), DataError);
  s = l.state();
  s.global_batch_size = 4;
  EXPECT_THROW(l.restore(s), DataError);
  s = l.state();
  s.mode = LoaderMode::kTest;
  EXPECT_THROW(l.restore(s), DataError);
  EXPECT_THROW(LoaderState::from_json(nlohmann::json{{"mode", "train"}}), DataError);
  EXPECT_EQ(LoaderState::from_json(l.state().to_json()), l.state());
}

TEST(DataLoader, MultiExamplePuzzlesFillUpToTheBatch) {
  // 6 groups, one puzzle each with 3 examples: batches of 4 take a whole puzzle then 1 of the next.
  auto d = make_split(6, 3);
  d->puzzle_identifiers.assign(6, 0);
  d->puzzle_indices = {0, 3, 6, 9, 12, 15, 18};
  d->group_indices = {0, 1, 2, 3, 4, 5, 6};
  d->validate("multi");
  // 18 examples cannot fill a batch of 19: the error surfaces from the prefetch thread in next().
  Loader too_big(d, train_opts(19, 2));
  EXPECT_THROW(too_big.next(), DataError);
  Loader l(d, train_opts(4));
  EXPECT_EQ(l.batches_per_epoch(), -1);
  const auto b = take(l, 4);
  for (const auto& rows : b) {
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0] / 3, rows[1] / 3);
    EXPECT_EQ(rows[0] / 3, rows[2] / 3);
    EXPECT_NE(rows[3] / 3, rows[0] / 3);
    EXPECT_EQ(std::set<int64_t>(rows.begin(), rows.begin() + 3).size(), 3u);
  }
}

TEST(DataLoader, PinMemoryNeedsCuda) {
  const auto d = make_split(10, 1);
  LoaderOptions o = train_opts(5, /*prefetch=*/2);
  o.pin_memory = true;
  if (torch::cuda::device_count() == 0) {
    // Without CUDA there is no page-locked memory to give: a clear error, not a silent no-op.
    try {
      Loader l(d, o);
      FAIL() << "expected ConfigError";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("pin_memory"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
    }
    return;
  }
  // With CUDA: pinned batches, fresh tensors for every batch, the same rows as unpinned.
  Loader pinned(d, o);
  o.pin_memory = false;
  Loader plain(d, o);
  const auto a = pinned.next(), b = pinned.next(), c = plain.next();
  ASSERT_TRUE(a && b && c);
  for (const auto* t : {&a->inputs, &a->labels, &a->puzzle_identifiers, &a->example_indices}) {
    EXPECT_TRUE(t->is_pinned());
  }
  EXPECT_NE(a->inputs.data_ptr(), b->inputs.data_ptr());
  EXPECT_TRUE(a->inputs.equal(c->inputs));
  EXPECT_FALSE(c->inputs.is_pinned());
}

}  // namespace
}  // namespace eqr::data
