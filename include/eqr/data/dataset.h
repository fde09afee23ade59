#pragma once
// Built datasets in the reference's numpy layout (reference/eqr_spec.md §4.2, docs/dataset_format.md):
//   <dir>/identifiers.json                 ["<blank>"]
//   <dir>/manifest.json                    eqr's provenance (absent in reference builds)
//   <dir>/{train,test}/dataset.json        PuzzleDatasetMetadata
//   <dir>/{train,test}/all__inputs.npy     (N, S) uint8 token ids (0 pad, 1 blank, d + 1 digits);
//                                          the reference's augmented train split is int64 (read either)
//   <dir>/{train,test}/all__labels.npy     (N, S) uint8 (or int64, as inputs)
//   <dir>/{train,test}/all__puzzle_identifiers.npy  (P)     int32
//   <dir>/{train,test}/all__puzzle_indices.npy      (P + 1) int32, examples of puzzle p
//   <dir>/{train,test}/all__group_indices.npy       (G + 1) int32, puzzles of group g
// N examples, S cells, P puzzles, G groups (Sudoku: P = N; one group per original puzzle with its
// augmentations).
//
// The builder follows the reference step by step with numpy's legacy RNG (numpy_random.h), so for a 9x9
// CSV it writes the same bytes as `python -m dataset.build_sudoku_dataset` with the same seed.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/config/config.h"
#include "eqr/data/board.h"
#include "eqr/data/npy.h"
#include "eqr/data/sudoku_csv.h"

namespace eqr::data {

/// dataset.json (the reference's PuzzleDatasetMetadata).
struct DatasetMetadata {
  int64_t pad_id = 0;                          ///< token of padding cells / rows
  std::optional<int64_t> ignore_label_id = 0;  ///< labels equal to this become -100 at collate time
  int64_t blank_identifier_id = 0;             ///< puzzle identifier of padding rows
  int64_t vocab_size = 11;                     ///< V
  int64_t seq_len = 81;                        ///< S
  int64_t num_puzzle_identifiers = 1;
  int64_t total_groups = 0;                    ///< G
  double mean_puzzle_examples = 1.0;
  std::vector<std::string> sets{"all"};        ///< file prefixes; eqr reads exactly one set
  std::optional<int64_t> total_samples;        ///< N (EqR's addition; optional)

  /// JSON in the reference's key order (json.dump(metadata.model_dump())).
  nlohmann::ordered_json to_json() const;
  /// Parses and checks dataset.json content; `where` names the file in errors.
  static DatasetMetadata from_json(const nlohmann::json& j, const std::string& where);
};

/// One split in memory. Shapes: inputs/labels (N, S) row-major, puzzle_identifiers (P),
/// puzzle_indices (P + 1), group_indices (G + 1).
struct SplitData {
  std::string name;  ///< "train" or "test"
  DatasetMetadata metadata;
  std::optional<Geometry> geom;  ///< board shape (from the manifest, else from S when S = n*n)
  /// dtype of inputs/labels on disk (held as uint8 in memory). The reference's augmented train split is
  /// int64: numpy promotes its uint8 originals when concatenating them with int64 augmentations.
  NpyDtype token_dtype = NpyDtype::kUInt8;
  std::vector<uint8_t> inputs;
  std::vector<uint8_t> labels;
  std::vector<int32_t> puzzle_identifiers;
  std::vector<int32_t> puzzle_indices;
  std::vector<int32_t> group_indices;

  int64_t seq_len() const { return metadata.seq_len; }
  int64_t num_examples() const { return seq_len() ? static_cast<int64_t>(inputs.size()) / seq_len() : 0; }
  int64_t num_puzzles() const { return static_cast<int64_t>(puzzle_identifiers.size()); }
  int64_t num_groups() const { return group_indices.empty() ? 0 : static_cast<int64_t>(group_indices.size()) - 1; }
  const uint8_t* input_row(int64_t i) const { return inputs.data() + i * seq_len(); }
  const uint8_t* label_row(int64_t i) const { return labels.data() + i * seq_len(); }

  /// Checks shapes, index monotonicity and token ranges (DataError naming `where` and the problem).
  void validate(const std::string& where) const;
};

/// Reads <dir>/<split>/ (DataError naming the file for anything missing or inconsistent).
SplitData load_split(const std::string& dir, const std::string& split);
/// Writes <dir>/<split>/dataset.json and the five .npy files (numpy-identical bytes).
void save_split(const std::string& dir, const SplitData& data);

/// What to build (the CLI flags of `eqr data build`; DataConfig maps onto it).
struct BuildOptions {
  Geometry geom;                          ///< board shape of every puzzle
  int64_t seed = 42;                      ///< np.random.seed of the build (0 .. 2^32-1)
  std::optional<int64_t> subsample_size;  ///< train puzzles kept (np.random.choice), null = all
  int64_t num_aug = 0;                    ///< augmented copies per train puzzle (test: never)
  std::optional<int64_t> min_difficulty;  ///< keep rows with rating >= value (train and test, as the reference)
  bool skip_invalid = false;              ///< skip and count bad CSV rows instead of failing
  bool show_progress = true;              ///< progress line on stderr while augmenting
  /// Write token arrays with the reference's dtypes (int64 for an augmented train split, else uint8) so that
  /// every file is byte-identical to the reference's; default uint8 (same values, 8x smaller).
  bool reference_dtypes = false;
};

/// Where the rows of a build came from (for the manifest).
struct SourceInfo {
  std::string kind;       ///< "csv" or "generated"
  std::string path;       ///< CSV path (csv)
  std::string sha256;     ///< SHA-256 of the CSV bytes (csv)
  int64_t bytes = 0;      ///< CSV size (csv)
  CsvReport report;       ///< reader counts (csv)
  nlohmann::json params;  ///< generator parameters (generated)
};

/// A finished build: both splits and the manifest that describes them.
struct BuiltDataset {
  SplitData train;
  SplitData test;
  nlohmann::ordered_json manifest;
};

/// Builds both splits from rows already in memory (generator output, tests). Train rows are filtered by
/// min_difficulty, subsampled with numpy's choice, then written as original + num_aug augmentations per
/// puzzle; test rows are filtered only. Row values are parsed with the geometry of `opts`.
BuiltDataset build_from_rows(const std::vector<SudokuRow>& train_rows, const std::vector<SudokuRow>& test_rows,
                             const BuildOptions& opts, const SourceInfo& train_source = {},
                             const SourceInfo& test_source = {});
/// Builds both splits from two Sudoku-Extreme CSV files (one pass over each; the train file is kept as
/// offsets into its text, so a 3.8M-row train.csv needs ~the file size plus 28 bytes per row).
BuiltDataset build_from_csv(const std::string& train_csv, const std::string& test_csv, const BuildOptions& opts);

/// Writes a build to `out_dir` (train/, test/, identifiers.json, manifest.json). Existing files of the
/// same names are replaced; other files are left alone.
void write_dataset(const std::string& out_dir, const BuiltDataset& built);

/// A function that generates `count` puzzles for a split with a seed (the generator of generator.h,
/// injected so that this module does not depend on its options).
using PuzzleSource = std::function<std::vector<SudokuRow>(int64_t count, uint64_t seed, const std::string& split)>;

/// The build options a DataConfig asks for (ConfigError for out-of-range values).
BuildOptions build_options(const config::DataConfig& cfg);

/// Builds what a DataConfig with source csv or generated describes (csv with an empty test_csv: generated
/// test split). `generate` defaults to eqr's generator (generator.h).
BuiltDataset build_dataset(const config::DataConfig& cfg, const PuzzleSource& generate = {},
                           bool reference_dtypes = false);

/// Training's entry point. source "built": reads data_path. source "csv" / "generated": uses data_path as a
/// cache: if it holds a manifest whose request matches the config it is read, otherwise the dataset is
/// built (generated with `generate` when source = generated) and written there (data_path empty: built in
/// memory only). A data_path holding a different dataset is a ConfigError, never overwritten.
SplitData load_or_build(const config::DataConfig& cfg, const std::string& split, const PuzzleSource& generate = {});

/// The part of a manifest that decides whether a cached build matches a config (source, files' SHA-256,
/// geometry, seed, subsample, num_aug, min_difficulty, generator knobs).
nlohmann::ordered_json build_request(const config::DataConfig& cfg);

/// SHA-256 of bytes, lower-case hex (FIPS 180-4).
std::string sha256_hex(std::string_view bytes);
/// SHA-256 of a file's bytes (DataError if unreadable).
std::string sha256_file(const std::string& path);

}  // namespace eqr::data
