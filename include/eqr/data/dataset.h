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
// This file is what every task shares: the layout, a finished build with its manifest, and data.data_path as
// a cache of builds. A task's own build (Sudoku: task/sudoku/build.h; Maze: task/maze/maze_task.h) makes
// the arrays.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/data/npy.h"

namespace eqr::data {

/// Label id of cells that carry no loss and no score (the reference's IGNORE_LABEL_ID, PyTorch's
/// cross-entropy ignore_index): padding rows, the dataset's ignore_label_id, puzzles without a known answer.
inline constexpr int32_t kIgnoreLabelId = -100;

/// dataset.json (the reference's PuzzleDatasetMetadata).
struct DatasetMetadata {
  int64_t pad_id = 0;                          ///< token of padding cells / rows
  std::optional<int64_t> ignore_label_id = 0;  ///< labels equal to this become kIgnoreLabelId at collate time
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
  /// The manifest's "geometry" object (task-defined, e.g. Sudoku's box_rows/box_cols); null without one.
  nlohmann::json geometry;
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

/// A finished build: both splits and the manifest that describes them.
struct BuiltDataset {
  SplitData train;
  SplitData test;
  nlohmann::ordered_json manifest;
};

/// Writes a build to `out_dir` (train/, test/, identifiers.json, manifest.json). Existing files of the
/// same names are replaced; other files are left alone.
void write_dataset(const std::string& out_dir, const BuiltDataset& built);

/// data.data_path as a cache of a task's build: what decides a match, and how to build and read.
struct CachedBuild {
  std::string data_path;  ///< "" = build in memory on every run, write nothing
  /// Whether a complete manifest (its "complete" key removed) describes the build the config asks for.
  std::function<bool(const nlohmann::json& manifest)> matches;
  std::function<BuiltDataset()> build;                                     ///< both splits
  std::function<SplitData(const std::string& dir, const std::string& split)> load = load_split;
  std::string what = "build";  ///< named in the log line when a build is reused
};

/// Training's entry point for built-on-demand data: when data_path holds a complete manifest that matches, the
/// split is read; otherwise the dataset is built and written there (data_path empty: built in memory only). A
/// manifest that is not valid JSON, incomplete (an interrupted build) or different is rebuilt; a data_path
/// holding a dataset without a manifest (not eqr's) is a ConfigError, never overwritten.
SplitData load_or_build_cached(const CachedBuild& cache, const std::string& split);

/// Reads a JSON file (DataError naming it when missing or not valid JSON).
nlohmann::json read_json_file(const std::string& path);

}  // namespace eqr::data
