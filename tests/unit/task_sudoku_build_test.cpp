// Sudoku's dataset builder and the reference's numpy layout: byte-for-byte against the fixture builds written by
// numpy (tests/fixtures/numpy/build, make_fixtures.py), manifest, validation, load_or_build caching.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/config/config.h"
#include "eqr/core/error.h"
#include "eqr/task/sudoku/augment.h"
#include "eqr/task/sudoku/board.h"
#include "eqr/data/dataset.h"
#include "eqr/data/npy.h"
#include "eqr/core/sha256.h"
#include "eqr/task/sudoku/build.h"
#include "test_support.h"

namespace eqr::sudoku {
namespace {

using data::BuiltDataset;
using data::load_npy_as_uint8;
using data::read_npy_header;
using data::save_npy;
using data::load_split;
using data::NpyDtype;
using data::SplitData;
using data::write_dataset;

namespace fs = std::filesystem;

fs::path build_fixture() { return test::source_dir() / "tests/fixtures/numpy/build"; }

const std::vector<std::string> kSplitFiles = {"dataset.json", "all__inputs.npy", "all__labels.npy",
                                              "all__puzzle_identifiers.npy", "all__puzzle_indices.npy",
                                              "all__group_indices.npy"};

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(test::read_file(p)); }

void expect_same_files(const fs::path& ours, const fs::path& reference) {
  for (const char* split : {"train", "test"}) {
    for (const auto& f : kSplitFiles) {
      EXPECT_EQ(test::read_file(ours / split / f), test::read_file(reference / split / f)) << split << "/" << f;
    }
  }
  EXPECT_EQ(test::read_file(ours / "identifiers.json"), test::read_file(reference / "identifiers.json"));
}

// Same values (tokens may be stored with another dtype); every non-token file byte-identical.
void expect_same_values(const fs::path& ours, const fs::path& reference) {
  for (const char* split : {"train", "test"}) {
    const SplitData a = load_split(ours.string(), split);
    const SplitData b = load_split(reference.string(), split);
    EXPECT_EQ(a.inputs, b.inputs) << split;
    EXPECT_EQ(a.labels, b.labels) << split;
    for (const auto& f : kSplitFiles) {
      if (f == "all__inputs.npy" || f == "all__labels.npy") continue;
      EXPECT_EQ(test::read_file(ours / split / f), test::read_file(reference / split / f)) << split << "/" << f;
    }
  }
}

BuildOptions quiet_options() {
  BuildOptions o;
  o.show_progress = false;
  return o;
}

TEST(TaskSudokuBuild, BuildMatchesTheNumpyReferenceByteForByte) {
  const fs::path train = build_fixture() / "train.csv";
  const fs::path test_csv = build_fixture() / "test.csv";
  const fs::path out = test::temp_dir("build_a");
  BuildOptions o = quiet_options();
  o.seed = 42;
  o.subsample_size = 8;
  o.num_aug = 4;
  o.reference_dtypes = true;  // the reference writes the augmented train split as int64
  const BuiltDataset b = build_from_csv(train.string(), test_csv.string(), o);
  write_dataset(out.string(), b);
  expect_same_files(out, build_fixture() / "seed42_sub8_aug4");

  const nlohmann::json m = read_json(out / "manifest.json");
  EXPECT_TRUE(m["complete"].get<bool>());
  EXPECT_TRUE(m["reference_compatible"].get<bool>());
  EXPECT_EQ(m["seed"], 42);
  EXPECT_EQ(m["num_aug"], 4);
  EXPECT_EQ(m["geometry"]["seq_len"], 81);
  EXPECT_EQ(m["sources"]["train"]["sha256"], sha256_file(train.string()));
  EXPECT_EQ(m["sources"]["train"]["rows_kept"], 24);
  const auto& tr = m["splits"]["train"];
  EXPECT_EQ(tr["examples"], 40);
  EXPECT_EQ(tr["groups"], 8);
  ASSERT_EQ(tr["chosen_rows"].size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(tr["chosen_lines"][i].get<int64_t>(), tr["chosen_rows"][i].get<int64_t>() + 2);
  EXPECT_EQ(tr["counts_by_source"]["puzzles3_magictour_top1465"], 8);
  EXPECT_EQ(m["splits"]["test"]["examples"], 6);
  EXPECT_EQ(tr["token_dtype"], "<i8");

  // Default dtypes: uint8 tokens (8x smaller), same values; the unaugmented test split stays byte-identical.
  o.reference_dtypes = false;
  const fs::path compact = test::temp_dir("build_a_u8");
  write_dataset(compact.string(), build_from_csv(train.string(), test_csv.string(), o));
  expect_same_values(compact, build_fixture() / "seed42_sub8_aug4");
  EXPECT_EQ(read_npy_header((compact / "train/all__inputs.npy").string()).descr, "|u1");
  EXPECT_EQ(test::read_file(compact / "test/all__inputs.npy"),
            test::read_file(build_fixture() / "seed42_sub8_aug4/test/all__inputs.npy"));
}

TEST(TaskSudokuBuild, MinDifficultyFiltersBothSplitsLikeTheReference) {
  const fs::path out = test::temp_dir("build_b");
  BuildOptions o = quiet_options();
  o.seed = 7;
  o.subsample_size = 5;
  o.num_aug = 2;
  o.min_difficulty = 3;
  o.reference_dtypes = true;
  const BuiltDataset b = build_from_csv((build_fixture() / "train.csv").string(),
                                        (build_fixture() / "test.csv").string(), o);
  write_dataset(out.string(), b);
  expect_same_files(out, build_fixture() / "seed7_min3_sub5_aug2");
  // Ratings are row % 7: 12 of the 24 train rows (0..23) and 4 of the 6 test rows (24..29) have rating >= 3.
  const nlohmann::json m = read_json(out / "manifest.json");
  EXPECT_EQ(m["sources"]["train"]["rows_kept"], 12);
  EXPECT_EQ(m["sources"]["train"]["rows_below_min_difficulty"], 12);
  EXPECT_EQ(b.test.num_examples(), 4);
  EXPECT_EQ(b.train.num_examples(), 15);
}

TEST(TaskSudokuBuild, LoadsAReferenceBuild) {
  const SplitData d = load_split((build_fixture() / "seed42_sub8_aug4").string(), "train");
  EXPECT_EQ(d.num_examples(), 40);
  EXPECT_EQ(d.num_puzzles(), 40);
  EXPECT_EQ(d.num_groups(), 8);
  EXPECT_EQ(d.group_indices, (std::vector<int32_t>{0, 5, 10, 15, 20, 25, 30, 35, 40}));
  EXPECT_EQ(d.metadata.vocab_size, 11);
  EXPECT_EQ(d.metadata.ignore_label_id, std::optional<int64_t>(0));
  EXPECT_EQ(d.token_dtype, NpyDtype::kInt64);  // numpy promoted the augmented train split
  EXPECT_EQ(load_split((build_fixture() / "seed42_sub8_aug4").string(), "test").token_dtype, NpyDtype::kUInt8);
  ASSERT_TRUE(split_geometry(d).has_value());
  EXPECT_EQ(*split_geometry(d), (Geometry{3, 3}));
  // Every label row is a valid solution (tokens = digit + 1) and agrees with its givens.
  const Geometry g{3, 3};
  for (int64_t r = 0; r < d.num_examples(); ++r) {
    Grid q(81), a(81);
    for (int c = 0; c < 81; ++c) {
      q[c] = static_cast<uint8_t>(d.input_row(r)[c] - 1);
      a[c] = static_cast<uint8_t>(d.label_row(r)[c] - 1);
    }
    ASSERT_TRUE(is_valid_solution(a, g)) << "row " << r;
    ASSERT_EQ(first_given_mismatch(q, a), -1) << "row " << r;
  }
  // The first member of each group is the unaugmented puzzle; the others differ from it.
  EXPECT_NE(std::vector<uint8_t>(d.input_row(0), d.input_row(0) + 81),
            std::vector<uint8_t>(d.input_row(1), d.input_row(1) + 81));
}

TEST(TaskSudokuBuild, RejectsBrokenSplits) {
  const fs::path dir = test::temp_dir("broken");
  const fs::path ref = build_fixture() / "seed42_sub8_aug4";
  fs::copy(ref, dir / "ds", fs::copy_options::recursive);
  const std::string ds = (dir / "ds").string();
  EXPECT_NO_THROW(load_split(ds, "train"));
  try {
    load_split(ds, "valid");
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("valid"), std::string::npos);
  }
  // group_indices that does not end at the number of puzzles.
  const std::vector<int32_t> bad_groups = {0, 5, 10, 39};
  save_npy((dir / "ds/train/all__group_indices.npy").string(), bad_groups.data(), {4});
  try {
    load_split(ds, "train");
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("group_indices ends at 39"), std::string::npos) << e.what();
  }
  // A token outside the vocabulary.
  fs::copy(ref / "train/all__group_indices.npy", dir / "ds/train/all__group_indices.npy",
           fs::copy_options::overwrite_existing);
  auto inputs = load_npy_as_uint8((ref / "train/all__inputs.npy").string(), {-1, 81});
  inputs.data[81 * 3 + 7] = 11;
  save_npy((dir / "ds/train/all__inputs.npy").string(), inputs);
  try {
    load_split(ds, "train");
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("row 3 cell 7 holds token 11"), std::string::npos) << e.what();
  }
  // dataset.json without a required key.
  test::write_file(dir / "ds/test/dataset.json", R"({"pad_id": 0, "ignore_label_id": 0})");
  try {
    load_split(ds, "test");
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("missing key 'blank_identifier_id'"), std::string::npos) << e.what();
  }
}

TEST(TaskSudokuBuild, BuildsNonSquareGeometryFromRows) {
  // 6x6 boards (2x3 boxes): rows built from one solved grid by augmentation, then built with num_aug 3.
  const Geometry g{2, 3};
  Grid answer(36);
  for (int r = 0; r < 6; ++r) {
    for (int c = 0; c < 6; ++c) answer[r * 6 + c] = static_cast<uint8_t>(((r % 2) * 3 + r / 2 + c) % 6 + 1);
  }
  NumpyRandomState rng(1);
  std::vector<SudokuRow> rows;
  for (int i = 0; i < 10; ++i) {
    const SudokuTransform t = draw_sudoku_transform(rng, g);
    const Grid a = t.apply(answer, g);
    Grid q = a;
    for (int c = i % 3; c < 36; c += 3) q[c] = 0;
    rows.push_back(SudokuRow{"six", format_grid(q, g), format_grid(a, g), i, i + 2});
  }
  BuildOptions o = quiet_options();
  o.geom = g;
  o.num_aug = 3;
  o.subsample_size = 4;
  const BuiltDataset b = build_from_rows(std::vector<SudokuRow>(rows.begin(), rows.begin() + 7),
                                         std::vector<SudokuRow>(rows.begin() + 7, rows.end()), o);
  EXPECT_EQ(b.train.num_examples(), 16);
  EXPECT_EQ(b.train.metadata.seq_len, 36);
  EXPECT_EQ(b.train.metadata.vocab_size, 8);
  EXPECT_EQ(b.test.num_examples(), 3);
  EXPECT_FALSE(b.manifest["reference_compatible"].get<bool>());
  for (int64_t r = 0; r < b.train.num_examples(); ++r) {
    Grid q(36), a(36);
    for (int c = 0; c < 36; ++c) {
      q[c] = static_cast<uint8_t>(b.train.input_row(r)[c] - 1);
      a[c] = static_cast<uint8_t>(b.train.label_row(r)[c] - 1);
    }
    ASSERT_TRUE(is_valid_solution(a, g)) << "row " << r << ": " << solution_problem(a, g);
    ASSERT_EQ(first_given_mismatch(q, a), -1);
  }
  // A bad row is reported with its source; skip_invalid counts it instead.
  rows[0].answer[0] = rows[0].answer[1];
  EXPECT_THROW(build_from_rows(rows, rows, o), DataError);
  o.skip_invalid = true;
  const BuiltDataset s = build_from_rows(rows, rows, o);
  EXPECT_EQ(s.manifest["sources"]["train"]["kind"], "rows");
  EXPECT_EQ(s.test.num_examples(), 9);
}

TEST(TaskSudokuBuild, RejectsBadOptions) {
  BuildOptions o = quiet_options();
  o.num_aug = -1;
  const std::vector<SudokuRow> none;
  EXPECT_THROW(build_from_rows(none, none, o), ConfigError);
  o.num_aug = 0;
  o.seed = int64_t{1} << 32;
  EXPECT_THROW(build_from_rows(none, none, o), ConfigError);
  o.seed = 0;
  EXPECT_THROW(build_from_rows(none, none, o), DataError);  // no rows
}

config::DataConfig csv_config(const fs::path& data_path) {
  config::DataConfig c;
  c.source = config::DataSource::kCsv;
  c.data_path = data_path.string();
  c.train_csv = (build_fixture() / "train.csv").string();
  c.test_csv = (build_fixture() / "test.csv").string();
  c.subsample_size = 8;
  c.num_aug = 4;
  c.seed = 42;
  return c;
}

TEST(TaskSudokuBuild, LoadOrBuildCachesAndProtectsForeignData) {
  const fs::path dir = test::temp_dir("load_or_build");
  config::DataConfig c = csv_config(dir / "built");
  const SplitData train = load_or_build(c, "train");
  EXPECT_EQ(train.num_examples(), 40);
  expect_same_values(dir / "built", build_fixture() / "seed42_sub8_aug4");
  // Second call reads the cache (same bytes; the manifest is not rewritten).
  const auto stamp = fs::last_write_time(dir / "built/manifest.json");
  const SplitData test = load_or_build(c, "test");
  EXPECT_EQ(test.num_examples(), 6);
  EXPECT_EQ(fs::last_write_time(dir / "built/manifest.json"), stamp);
  EXPECT_EQ(load_or_build(c, "train").inputs, train.inputs);
  // A different seed rebuilds into the same (eqr-owned) directory.
  c.seed = 7;
  const SplitData other = load_or_build(c, "train");
  EXPECT_NE(other.inputs, train.inputs);
  EXPECT_EQ(read_json(dir / "built/manifest.json")["seed"], 7);
  // A directory with a reference build and no manifest is never overwritten.
  fs::copy(build_fixture() / "seed7_min3_sub5_aug2", dir / "foreign", fs::copy_options::recursive);
  config::DataConfig f = csv_config(dir / "foreign");
  EXPECT_THROW(load_or_build(f, "train"), ConfigError);
  // ...but source = built reads it.
  f.source = config::DataSource::kBuilt;
  EXPECT_EQ(load_or_build(f, "train").num_examples(), 15);
  f.box_rows = 2;
  EXPECT_THROW(load_or_build(f, "train"), ConfigError);  // 81 cells are not a 6x6 board
  EXPECT_THROW(load_or_build(c, "valid"), UsageError);
}

}  // namespace
}  // namespace eqr::sudoku
