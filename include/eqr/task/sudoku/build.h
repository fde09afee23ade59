#pragma once
// Sudoku's build of a dataset in the numpy layout (data/dataset.h): Sudoku-Extreme CSV files or generated
// puzzles -> filtered by rating, subsampled, augmented (augment.h) -> train/ and test/ with a manifest.
//
// The builder follows the reference step by step with numpy's legacy RNG (core/numpy_random.h), so for a
// 9x9 CSV it writes the same bytes as `python -m dataset.build_sudoku_dataset` with the same seed.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/config/config.h"
#include "eqr/data/dataset.h"
#include "eqr/task/sudoku/board.h"
#include "eqr/task/sudoku/csv.h"

namespace eqr::sudoku {

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

/// Builds both splits from rows already in memory (generator output, tests). Train rows are filtered by
/// min_difficulty, subsampled with numpy's choice, then written as original + num_aug augmentations per
/// puzzle; test rows are filtered only. Row values are parsed with the geometry of `opts`.
data::BuiltDataset build_from_rows(const std::vector<SudokuRow>& train_rows, const std::vector<SudokuRow>& test_rows,
                             const BuildOptions& opts, const SourceInfo& train_source = {},
                             const SourceInfo& test_source = {});
/// Builds both splits from two Sudoku-Extreme CSV files (one pass over each; the train file is kept as
/// offsets into its text, so a 3.8M-row train.csv needs ~the file size plus 28 bytes per row).
data::BuiltDataset build_from_csv(const std::string& train_csv, const std::string& test_csv, const BuildOptions& opts);

/// A function that generates `count` puzzles for a split with a seed (the generator of generator.h,
/// injected so that this module does not depend on its options).
using PuzzleSource = std::function<std::vector<SudokuRow>(int64_t count, uint64_t seed, const std::string& split)>;

/// The build options a DataConfig asks for (ConfigError for out-of-range values).
BuildOptions build_options(const config::DataConfig& cfg);

/// Builds what a DataConfig with source csv or generated describes (csv with an empty test_csv: generated
/// test split). `generate` defaults to eqr's generator (generator.h).
data::BuiltDataset build_dataset(const config::DataConfig& cfg, const PuzzleSource& generate = {},
                           bool reference_dtypes = false);

/// The Sudoku task's split. source "built": reads data_path. source "csv" / "generated": uses data_path as a
/// cache: if it holds a manifest whose request matches the config it is read, otherwise the dataset is
/// built (generated with `generate` when source = generated) and written there (data_path empty: built in
/// memory only). A data_path holding a different dataset is a ConfigError, never overwritten.
data::SplitData load_or_build(const config::DataConfig& cfg, const std::string& split, const PuzzleSource& generate = {});

/// The part of a manifest that decides whether a cached build matches a config (source, files' SHA-256,
/// geometry, seed, subsample, num_aug, min_difficulty, generator knobs).
nlohmann::ordered_json build_request(const config::DataConfig& cfg);

/// The board a split holds: its manifest's geometry (box_rows x box_cols), else the square board of S cells
/// (nullopt when S is not n*n of a supported n).
std::optional<Geometry> split_geometry(const data::SplitData& split);

}  // namespace eqr::sudoku
