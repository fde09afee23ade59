#include "eqr/task/sudoku/build.h"

#include <cmath>
#include <map>
#include <unordered_map>

#include "eqr/core/error.h"
#include "eqr/core/logging.h"
#include "eqr/core/numpy_random.h"
#include "eqr/core/progress.h"
#include "eqr/core/rng.h"
#include "eqr/core/sha256.h"
#include "eqr/core/version.h"
#include "eqr/task/sudoku/augment.h"
#include "eqr/task/sudoku/generator.h"

namespace eqr::sudoku {

using data::BuiltDataset;
using data::DatasetMetadata;
using data::NpyDtype;
using data::SplitData;

namespace {

std::optional<Geometry> geometry_of_cells(int64_t cells) {
  const auto n = static_cast<int>(std::lround(std::sqrt(static_cast<double>(cells))));
  if (int64_t{n} * n != cells) return std::nullopt;
  try {
    return Geometry::from_side(n);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The manifest's "geometry" object (SplitData::geometry of a build in memory).
nlohmann::ordered_json geometry_json(const Geometry& geom) {
  nlohmann::ordered_json g;
  g["box_rows"] = geom.box_rows;
  g["box_cols"] = geom.box_cols;
  g["side"] = geom.n();
  g["seq_len"] = geom.cells();
  g["vocab_size"] = geom.vocab();
  return g;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// The builder
namespace {

// Rows kept after the rating filter, stored as offsets into the CSV text (or into an owned arena).
class KeptRows {
 public:
  explicit KeptRows(std::string_view text = {}) : text_(text) {}

  void add(std::string_view source, std::string_view question, std::string_view answer, int64_t line) {
    q_off_.push_back(locate(question));
    a_off_.push_back(locate(answer));
    line_.push_back(line);
    auto it = source_index_.find(std::string(source));
    if (it == source_index_.end()) {
      it = source_index_.emplace(std::string(source), static_cast<int32_t>(source_names_.size())).first;
      source_names_.emplace_back(source);
    }
    source_id_.push_back(it->second);
  }
  int64_t size() const { return static_cast<int64_t>(line_.size()); }
  std::string_view question(int64_t i, size_t cells) const { return view(q_off_[i], cells); }
  std::string_view answer(int64_t i, size_t cells) const { return view(a_off_[i], cells); }
  int64_t line(int64_t i) const { return line_[i]; }
  const std::string& source(int64_t i) const { return source_names_[source_id_[i]]; }

  /// Counts per source over rows `idx` (all rows when null).
  nlohmann::ordered_json counts_by_source(const std::vector<int64_t>* idx) const {
    std::map<std::string, int64_t> counts;
    if (idx) {
      for (int64_t i : *idx) ++counts[source(i)];
    } else {
      for (int32_t s : source_id_) ++counts[source_names_[s]];
    }
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [k, v] : counts) j[k] = v;
    return j;
  }

 private:
  // >= 0: offset into text_; < 0: -(offset into arena_) - 1.
  int64_t locate(std::string_view s) {
    if (!text_.empty() && s.data() >= text_.data() && s.data() + s.size() <= text_.data() + text_.size()) {
      return s.data() - text_.data();
    }
    const auto off = static_cast<int64_t>(arena_.size());
    arena_.append(s);
    return -off - 1;
  }
  std::string_view view(int64_t off, size_t cells) const {
    return off >= 0 ? text_.substr(static_cast<size_t>(off), cells)
                    : std::string_view(arena_).substr(static_cast<size_t>(-off - 1), cells);
  }

  std::string_view text_;
  std::string arena_;
  std::vector<int64_t> q_off_, a_off_, line_;
  std::vector<int32_t> source_id_;
  std::vector<std::string> source_names_;
  std::unordered_map<std::string, int32_t> source_index_;
};

// Cell values of a checked grid string.
void values_of(std::string_view text, uint8_t* out) {
  for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<uint8_t>(value_of_char(text[i]));
}

DatasetMetadata metadata_for(const Geometry& geom, int64_t groups, int64_t examples) {
  DatasetMetadata m;
  m.vocab_size = geom.vocab();
  m.seq_len = geom.cells();
  m.total_groups = groups;
  m.total_samples = examples;
  return m;
}

// Original + num_aug augmentations of rows `chosen`, in that order, drawing from `rng`.
SplitData assemble_split(const std::string& name, const KeptRows& rows, const std::vector<int64_t>& chosen,
                         int64_t num_aug, const Geometry& geom, NumpyRandomState& rng, const BuildOptions& opts) {
  const bool progress = opts.show_progress;
  const int64_t s = geom.cells();
  const int64_t per = 1 + num_aug;
  const auto n = static_cast<int64_t>(chosen.size()) * per;
  EQR_CHECK(n < std::numeric_limits<int32_t>::max(), DataError, "split '", name, "': ", chosen.size(), " puzzles x ",
            per, " = ", n, " examples exceed the int32 indices of the reference format");
  SplitData d;
  d.name = name;
  d.geometry = geometry_json(geom);
  d.metadata = metadata_for(geom, static_cast<int64_t>(chosen.size()), n);
  d.token_dtype = opts.reference_dtypes && num_aug > 0 && !chosen.empty() ? NpyDtype::kInt64 : NpyDtype::kUInt8;
  d.inputs.resize(static_cast<size_t>(n * s));
  d.labels.resize(static_cast<size_t>(n * s));
  d.puzzle_identifiers.assign(static_cast<size_t>(n), 0);
  d.puzzle_indices.resize(static_cast<size_t>(n + 1));
  for (int64_t i = 0; i <= n; ++i) d.puzzle_indices[i] = static_cast<int32_t>(i);
  d.group_indices.resize(chosen.size() + 1);
  for (size_t g = 0; g <= chosen.size(); ++g) d.group_indices[g] = static_cast<int32_t>(g * per);

  std::optional<Progress> bar;
  if (progress && num_aug > 0) bar.emplace("augment " + name, static_cast<int64_t>(chosen.size()), "puzzles");
  std::vector<uint8_t> q(static_cast<size_t>(s)), a(static_cast<size_t>(s));
  std::vector<uint8_t> token(static_cast<size_t>(geom.n() + 1));
  int64_t row = 0;
  for (int64_t idx : chosen) {
    values_of(rows.question(idx, static_cast<size_t>(s)), q.data());
    values_of(rows.answer(idx, static_cast<size_t>(s)), a.data());
    uint8_t* qi = d.inputs.data() + row * s;
    uint8_t* ai = d.labels.data() + row * s;
    for (int64_t c = 0; c < s; ++c) {
      qi[c] = static_cast<uint8_t>(q[c] + 1);
      ai[c] = static_cast<uint8_t>(a[c] + 1);
    }
    ++row;
    for (int64_t k = 0; k < num_aug; ++k, ++row) {
      const SudokuTransform t = draw_sudoku_transform(rng, geom);
      const std::vector<int> map = t.cell_map(geom);
      for (size_t v = 0; v < token.size(); ++v) token[v] = static_cast<uint8_t>(t.digit_map[v] + 1);
      qi = d.inputs.data() + row * s;
      ai = d.labels.data() + row * s;
      for (int64_t c = 0; c < s; ++c) {
        qi[c] = token[q[map[c]]];
        ai[c] = token[a[map[c]]];
      }
    }
    if (bar) bar->advance();
  }
  if (bar) bar->finish();
  return d;
}

nlohmann::ordered_json source_json(const SourceInfo& info) {
  nlohmann::ordered_json j;
  j["kind"] = info.kind.empty() ? "rows" : info.kind;
  if (info.kind == "csv") {
    j["path"] = info.path;
    j["sha256"] = info.sha256;
    j["bytes"] = info.bytes;
    j["rows_read"] = info.report.rows_read;
    j["rows_kept"] = info.report.rows_kept;
    j["rows_invalid"] = info.report.rows_invalid;
    j["rows_below_min_difficulty"] = info.report.rows_below_rating;
  } else if (!info.params.is_null()) {
    j["params"] = info.params;
  }
  return j;
}

// The part of a manifest a cached build is matched on.
nlohmann::ordered_json make_request(const BuildOptions& opts, const SourceInfo& train, const SourceInfo& test) {
  auto side = [](const SourceInfo& info) {
    nlohmann::ordered_json j;
    j["kind"] = info.kind.empty() ? "rows" : info.kind;
    if (info.kind == "csv") j["sha256"] = info.sha256;
    if (!info.params.is_null()) j["params"] = info.params;
    return j;
  };
  nlohmann::ordered_json r;
  r["source"] = train.kind.empty() ? "rows" : train.kind;
  r["geometry"] = ::eqr::detail::concat(opts.geom.box_rows, "x", opts.geom.box_cols);
  r["seed"] = opts.seed;
  r["subsample_size"] = opts.subsample_size ? nlohmann::ordered_json(*opts.subsample_size) : nlohmann::ordered_json();
  r["num_aug"] = opts.num_aug;
  r["min_difficulty"] = opts.min_difficulty ? nlohmann::ordered_json(*opts.min_difficulty) : nlohmann::ordered_json();
  r["skip_invalid"] = opts.skip_invalid;
  r["train"] = side(train);
  r["test"] = side(test);
  return r;
}

void check_options(const BuildOptions& opts) {
  EQR_CHECK(opts.seed >= 0 && opts.seed <= int64_t{0xffffffff}, ConfigError, "data.seed = ", opts.seed,
            " is outside [0, 2^32 - 1] (numpy's np.random.seed range)");
  EQR_CHECK(!opts.subsample_size || *opts.subsample_size >= 1, ConfigError, "data.subsample_size = ",
            *opts.subsample_size, " must be >= 1 (or null for all rows)");
  EQR_CHECK(opts.num_aug >= 0, ConfigError, "data.num_aug = ", opts.num_aug, " must be >= 0");
}

BuiltDataset build_from_kept(const KeptRows& train, const KeptRows& test, const BuildOptions& opts,
                             const SourceInfo& train_source, const SourceInfo& test_source) {
  check_options(opts);
  EQR_CHECK(train.size() > 0, DataError, "train split: no rows left",
            opts.min_difficulty ? ::eqr::detail::concat(" with rating >= ", *opts.min_difficulty) : std::string(),
            " (source ", train_source.path.empty() ? train_source.kind : train_source.path, ")");
  EQR_CHECK(test.size() > 0, DataError, "test split: no rows left",
            opts.min_difficulty ? ::eqr::detail::concat(" with rating >= ", *opts.min_difficulty) : std::string(),
            " (source ", test_source.path.empty() ? test_source.kind : test_source.path, ")");
  // np.random.seed(seed) once; train (subsample, then augmentations) and test share the stream.
  NumpyRandomState rng(static_cast<uint32_t>(opts.seed));
  std::vector<int64_t> chosen;
  const bool subsampled = opts.subsample_size && *opts.subsample_size < train.size();
  if (subsampled) {
    chosen = rng.choice_without_replacement(train.size(), *opts.subsample_size);
  } else {
    chosen.resize(static_cast<size_t>(train.size()));
    for (int64_t i = 0; i < train.size(); ++i) chosen[i] = i;
  }
  std::vector<int64_t> all_test(static_cast<size_t>(test.size()));
  for (int64_t i = 0; i < test.size(); ++i) all_test[i] = i;

  BuiltDataset out;
  out.train = assemble_split("train", train, chosen, opts.num_aug, opts.geom, rng, opts);
  out.test = assemble_split("test", test, all_test, 0, opts.geom, rng, opts);

  nlohmann::ordered_json& m = out.manifest;
  m["format"] = "eqr-sudoku-dataset";
  m["format_version"] = 1;
  m["complete"] = true;
  m["eqr_version"] = version();
  m["git_sha"] = git_sha();
  m["request"] = make_request(opts, train_source, test_source);
  m["geometry"] = geometry_json(opts.geom);
  m["seed"] = opts.seed;
  m["subsample_size"] = opts.subsample_size ? nlohmann::ordered_json(*opts.subsample_size) : nlohmann::ordered_json();
  m["num_aug"] = opts.num_aug;
  m["min_difficulty"] = opts.min_difficulty ? nlohmann::ordered_json(*opts.min_difficulty) : nlohmann::ordered_json();
  // The reference builder (9x9 Sudoku-Extreme CSVs) writes the same bytes from the same inputs.
  m["reference_compatible"] = opts.geom == Geometry{3, 3} && train_source.kind == "csv" && test_source.kind == "csv";
  m["reference_dtypes"] = opts.reference_dtypes;
  m["sources"] = {{"train", source_json(train_source)}, {"test", source_json(test_source)}};

  nlohmann::ordered_json tr;
  tr["examples"] = out.train.num_examples();
  tr["puzzles"] = out.train.num_puzzles();
  tr["groups"] = out.train.num_groups();
  tr["token_dtype"] = npy_descr(out.train.token_dtype);
  tr["rows_available"] = train.size();
  tr["subsampled"] = subsampled;
  tr["counts_by_source"] = train.counts_by_source(&chosen);
  tr["counts_by_source_available"] = train.counts_by_source(nullptr);
  // Indices into the kept rows (what np.random.choice returned) and their CSV lines, in build order.
  nlohmann::ordered_json lines = nlohmann::ordered_json::array();
  for (int64_t i : chosen) lines.push_back(train.line(i));
  tr["chosen_rows"] = subsampled ? nlohmann::ordered_json(chosen) : nlohmann::ordered_json();
  tr["chosen_lines"] = subsampled ? lines : nlohmann::ordered_json();
  nlohmann::ordered_json te;
  te["examples"] = out.test.num_examples();
  te["puzzles"] = out.test.num_puzzles();
  te["groups"] = out.test.num_groups();
  te["token_dtype"] = npy_descr(out.test.token_dtype);
  te["counts_by_source"] = test.counts_by_source(nullptr);
  m["splits"] = {{"train", tr}, {"test", te}};
  return out;
}

// Kept rows of in-memory rows (checked, filtered by rating).
KeptRows keep_rows(const std::vector<SudokuRow>& rows, const BuildOptions& opts, const std::string& split,
                   SourceInfo& info) {
  KeptRows kept;
  std::string reason;
  for (const SudokuRow& r : rows) {
    ++info.report.rows_read;
    const SudokuRowView v{r.source, r.question, r.answer, r.rating, r.line};
    if (const auto defect = check_sudoku_row(v, opts.geom, &reason)) {
      EQR_CHECK(opts.skip_invalid, DataError, split, " row ", info.report.rows_read, " (", r.source, "): ", reason);
      ++info.report.rows_invalid;
      ++info.report.defects[static_cast<int>(*defect)];
      continue;
    }
    if (opts.min_difficulty && r.rating < *opts.min_difficulty) {
      ++info.report.rows_below_rating;
      continue;
    }
    ++info.report.rows_kept;
    kept.add(r.source, r.question, r.answer, r.line);
  }
  return kept;
}

// One pass over a CSV text; rows stay in `text`.
KeptRows keep_csv(const std::string& text, const std::string& path, const BuildOptions& opts, SourceInfo& info) {
  KeptRows kept(text);
  CsvOptions co;
  co.geom = opts.geom;
  co.skip_invalid = opts.skip_invalid;
  co.min_rating = opts.min_difficulty;
  info.kind = "csv";
  info.path = path;
  info.bytes = static_cast<int64_t>(text.size());
  info.sha256 = sha256_hex(text);
  info.report = visit_sudoku_csv(text, path, co, [&](const SudokuRowView& r) {
    kept.add(r.source, r.question, r.answer, r.line);
  });
  return kept;
}

}  // namespace

BuiltDataset build_from_rows(const std::vector<SudokuRow>& train_rows, const std::vector<SudokuRow>& test_rows,
                             const BuildOptions& opts, const SourceInfo& train_source, const SourceInfo& test_source) {
  SourceInfo tr = train_source, te = test_source;
  if (tr.kind.empty()) tr.kind = "rows";
  if (te.kind.empty()) te.kind = "rows";
  const KeptRows train = keep_rows(train_rows, opts, "train", tr);
  const KeptRows test = keep_rows(test_rows, opts, "test", te);
  return build_from_kept(train, test, opts, tr, te);
}

BuiltDataset build_from_csv(const std::string& train_csv, const std::string& test_csv, const BuildOptions& opts) {
  SourceInfo tr, te;
  const std::string train_text = read_text_file(train_csv);
  const KeptRows train = keep_csv(train_text, train_csv, opts, tr);
  const std::string test_text = read_text_file(test_csv);
  const KeptRows test = keep_csv(test_text, test_csv, opts, te);
  logger()->info("train CSV {}: {}", train_csv, tr.report.summary());
  logger()->info("test CSV {}: {}", test_csv, te.report.summary());
  return build_from_kept(train, test, opts, tr, te);
}

// ---------------------------------------------------------------------------------------------------
// Config glue
namespace {

nlohmann::ordered_json generator_params(const config::DataConfig& cfg, int64_t count) {
  nlohmann::ordered_json p;
  p["count"] = count;
  p["min_givens"] = cfg.generate_min_givens;
  p["max_givens"] = cfg.generate_max_givens;
  p["min_rating"] = cfg.generate_min_rating;
  p["seed"] = cfg.seed;
  return p;
}

SourceInfo csv_info(const std::string& path) {
  SourceInfo s;
  s.kind = "csv";
  s.path = path;
  s.sha256 = sha256_file(path);
  return s;
}

SourceInfo generated_info(const config::DataConfig& cfg, int64_t count) {
  SourceInfo s;
  s.kind = "generated";
  s.params = generator_params(cfg, count);
  return s;
}

std::vector<SudokuRow> generate_rows(const PuzzleSource& generate, const config::DataConfig& cfg, int64_t count,
                                     const std::string& split) {
  EQR_CHECK(count >= 1, ConfigError, "data.generate_", split, " = ", count, " must be >= 1");
  const uint64_t seed = derive_seed(static_cast<uint64_t>(cfg.seed), stream_id("data.generate." + split));
  if (generate) return generate(count, seed, split);
  GeneratorOptions o;
  o.geom = Geometry::from_box(static_cast<int>(cfg.box_rows), static_cast<int>(cfg.box_cols));
  o.count = count;
  o.seed = seed;
  o.min_givens = static_cast<int>(cfg.generate_min_givens);
  o.max_givens = static_cast<int>(cfg.generate_max_givens);
  o.min_rating = cfg.generate_min_rating;
  validate(o);
  std::optional<Progress> bar;
  bar.emplace("generate " + split, count, "puzzles");
  auto rows = generate_puzzles(o, [&](int64_t done) { bar->set(done); });
  bar->finish();
  return rows;
}

}  // namespace

BuildOptions build_options(const config::DataConfig& cfg) {
  BuildOptions o;
  o.geom = Geometry::from_box(static_cast<int>(cfg.box_rows), static_cast<int>(cfg.box_cols));
  o.seed = cfg.seed;
  o.subsample_size = cfg.subsample_size;
  o.num_aug = cfg.num_aug;
  o.min_difficulty = cfg.min_difficulty;
  o.skip_invalid = cfg.skip_invalid;
  check_options(o);
  return o;
}

nlohmann::ordered_json build_request(const config::DataConfig& cfg) {
  const BuildOptions opts = build_options(cfg);
  if (cfg.source == config::DataSource::kCsv) {
    EQR_CHECK(!cfg.train_csv.empty(), ConfigError, "data.source = csv needs data.train_csv");
    const SourceInfo te = cfg.test_csv.empty() ? generated_info(cfg, cfg.generate_test) : csv_info(cfg.test_csv);
    return make_request(opts, csv_info(cfg.train_csv), te);
  }
  EQR_CHECK(cfg.source == config::DataSource::kGenerated, ConfigError, "data.source = '", config::name_of(cfg.source),
            "' has no build request (expected csv or generated)");
  return make_request(opts, generated_info(cfg, cfg.generate_train), generated_info(cfg, cfg.generate_test));
}

BuiltDataset build_dataset(const config::DataConfig& cfg, const PuzzleSource& generate, bool reference_dtypes) {
  BuildOptions opts = build_options(cfg);
  opts.reference_dtypes = reference_dtypes;
  if (cfg.source == config::DataSource::kCsv) {
    EQR_CHECK(!cfg.train_csv.empty(), ConfigError, "data.source = csv needs data.train_csv");
    if (!cfg.test_csv.empty()) return build_from_csv(cfg.train_csv, cfg.test_csv, opts);
    // CSV train split, generated test split.
    SourceInfo tr, te = generated_info(cfg, cfg.generate_test);
    const std::string text = read_text_file(cfg.train_csv);
    const KeptRows train = keep_csv(text, cfg.train_csv, opts, tr);
    const KeptRows test = keep_rows(generate_rows(generate, cfg, cfg.generate_test, "test"), opts, "test", te);
    return build_from_kept(train, test, opts, tr, te);
  }
  EQR_CHECK(cfg.source == config::DataSource::kGenerated, ConfigError, "data.source = '", config::name_of(cfg.source),
            "' cannot be built (expected csv or generated; 'built' reads data.data_path)");
  return build_from_rows(generate_rows(generate, cfg, cfg.generate_train, "train"),
                         generate_rows(generate, cfg, cfg.generate_test, "test"), opts,
                         generated_info(cfg, cfg.generate_train), generated_info(cfg, cfg.generate_test));
}

data::SplitData load_or_build(const config::DataConfig& cfg, const std::string& split,
                              const PuzzleSource& generate) {
  EQR_CHECK(split == "train" || split == "test", UsageError, "dataset split '", split, "': expected train or test");
  const Geometry geom = Geometry::from_box(static_cast<int>(cfg.box_rows), static_cast<int>(cfg.box_cols));
  if (cfg.source == config::DataSource::kBuilt) {
    data::SplitData d = data::load_split(cfg.data_path, split);
    const std::optional<Geometry> held = split_geometry(d);
    EQR_CHECK(d.seq_len() == geom.cells() && (!held || *held == geom), ConfigError, "data.data_path = ",
              cfg.data_path, " holds ", held ? held->name() : "unknown", " boards (seq_len ", d.seq_len(),
              ") but data.box_rows x data.box_cols = ", cfg.box_rows, "x", cfg.box_cols, " (", geom.cells(),
              " cells)");
    return d;
  }
  EQR_CHECK(cfg.source == config::DataSource::kCsv || cfg.source == config::DataSource::kGenerated, ConfigError, "data.source = '", config::name_of(cfg.source),
            "': expected generated, csv or built");
  data::CachedBuild cache;
  cache.data_path = cfg.data_path;
  if (!cfg.data_path.empty()) {
    const nlohmann::json request = nlohmann::json::parse(build_request(cfg).dump());
    cache.matches = [request](const nlohmann::json& m) { return m.contains("request") && m["request"] == request; };
  }
  cache.build = [&] { return build_dataset(cfg, generate); };
  return data::load_or_build_cached(cache, split);
}

std::optional<Geometry> split_geometry(const data::SplitData& split) {
  const nlohmann::json& g = split.geometry;
  if (g.is_object() && g.contains("box_rows") && g.contains("box_cols")) {
    return Geometry::from_box(g["box_rows"].get<int>(), g["box_cols"].get<int>());
  }
  return geometry_of_cells(split.seq_len());
}

}  // namespace eqr::sudoku
