#include "eqr/data/dataset.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "eqr/core/error.h"
#include "eqr/core/logging.h"
#include "eqr/data/npy.h"

namespace eqr::data {

namespace fs = std::filesystem;

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EQR_CHECK(in.good(), DataError, path, ": cannot open (missing?)");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    EQR_FAIL(DataError, path, ": not valid JSON (", e.what(), ")");
  }
}


// ---------------------------------------------------------------------------------------------------
// dataset.json and the split files
namespace {

// json.dump(obj) of Python: ", " and ": " separators, no newline.
std::string python_json_dump(const nlohmann::ordered_json& j) {
  if (j.is_object()) {
    std::string s = "{";
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      if (!first) s += ", ";
      first = false;
      s += nlohmann::json(k).dump() + ": " + python_json_dump(v);
    }
    return s + "}";
  }
  if (j.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + python_json_dump(j[i]);
    return s + "]";
  }
  return j.dump();
}

void write_text(const fs::path& path, const std::string& text) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  EQR_CHECK(out.good(), DataError, path.string(), ": cannot write (", std::strerror(errno), ")");
  out << text;
  out.flush();
  EQR_CHECK(out.good(), DataError, path.string(), ": write failed (disk full?)");
}

int64_t get_int(const nlohmann::json& j, const char* key, const std::string& where) {
  EQR_CHECK(j.contains(key), DataError, where, ": missing key '", key, "'");
  EQR_CHECK(j[key].is_number_integer(), DataError, where, ": key '", key, "' is ", j[key].dump(),
            ", expected an integer");
  return j[key].get<int64_t>();
}

template <typename T>
void check_index_array(const std::vector<T>& idx, int64_t last, const std::string& where, const char* what,
                       const char* of) {
  EQR_CHECK(!idx.empty() && idx.front() == 0, DataError, where, ": ", what, " must start with 0 (got ",
            idx.empty() ? std::string("an empty array") : std::to_string(idx.front()), ")");
  for (size_t i = 1; i < idx.size(); ++i) {
    EQR_CHECK(idx[i] >= idx[i - 1], DataError, where, ": ", what, " decreases at position ", i, " (", idx[i - 1],
              " then ", idx[i], ")");
  }
  EQR_CHECK(idx.back() == last, DataError, where, ": ", what, " ends at ", idx.back(), ", expected ", last,
            " (the number of ", of, ")");
}

}  // namespace

nlohmann::ordered_json DatasetMetadata::to_json() const {
  nlohmann::ordered_json j;
  j["pad_id"] = pad_id;
  j["ignore_label_id"] = ignore_label_id ? nlohmann::ordered_json(*ignore_label_id) : nlohmann::ordered_json();
  j["blank_identifier_id"] = blank_identifier_id;
  j["vocab_size"] = vocab_size;
  j["seq_len"] = seq_len;
  j["num_puzzle_identifiers"] = num_puzzle_identifiers;
  j["total_groups"] = total_groups;
  j["mean_puzzle_examples"] = mean_puzzle_examples;
  j["sets"] = sets;
  j["total_samples"] = total_samples ? nlohmann::ordered_json(*total_samples) : nlohmann::ordered_json();
  return j;
}

DatasetMetadata DatasetMetadata::from_json(const nlohmann::json& j, const std::string& where) {
  EQR_CHECK(j.is_object(), DataError, where, ": expected a JSON object (PuzzleDatasetMetadata)");
  DatasetMetadata m;
  m.pad_id = get_int(j, "pad_id", where);
  EQR_CHECK(j.contains("ignore_label_id"), DataError, where, ": missing key 'ignore_label_id'");
  m.ignore_label_id = j["ignore_label_id"].is_null() ? std::nullopt
                                                     : std::optional<int64_t>(get_int(j, "ignore_label_id", where));
  m.blank_identifier_id = get_int(j, "blank_identifier_id", where);
  m.vocab_size = get_int(j, "vocab_size", where);
  m.seq_len = get_int(j, "seq_len", where);
  m.num_puzzle_identifiers = get_int(j, "num_puzzle_identifiers", where);
  m.total_groups = get_int(j, "total_groups", where);
  EQR_CHECK(j.contains("mean_puzzle_examples") && j["mean_puzzle_examples"].is_number(), DataError, where,
            ": key 'mean_puzzle_examples' missing or not a number");
  m.mean_puzzle_examples = j["mean_puzzle_examples"].get<double>();
  EQR_CHECK(j.contains("sets") && j["sets"].is_array() && !j["sets"].empty(), DataError, where,
            ": key 'sets' missing or not a non-empty list of names");
  m.sets.clear();
  for (const auto& s : j["sets"]) {
    EQR_CHECK(s.is_string(), DataError, where, ": 'sets' entry ", s.dump(), " is not a string");
    m.sets.push_back(s.get<std::string>());
  }
  if (j.contains("total_samples") && !j["total_samples"].is_null()) m.total_samples = get_int(j, "total_samples", where);
  EQR_CHECK(m.vocab_size >= 2 && m.vocab_size <= 256, DataError, where, ": vocab_size ", m.vocab_size,
            " outside [2, 256] (tokens are stored as uint8)");
  EQR_CHECK(m.seq_len >= 1, DataError, where, ": seq_len ", m.seq_len, " must be positive");
  return m;
}

void SplitData::validate(const std::string& where) const {
  const int64_t s = seq_len();
  EQR_CHECK(s > 0 && inputs.size() % static_cast<size_t>(s) == 0, DataError, where, ": inputs hold ",
            inputs.size(), " tokens, not a multiple of seq_len ", s);
  EQR_CHECK(labels.size() == inputs.size(), DataError, where, ": labels hold ", labels.size(),
            " tokens but inputs hold ", inputs.size());
  EQR_CHECK(num_examples() < std::numeric_limits<int32_t>::max(), DataError, where, ": ", num_examples(),
            " examples exceed the int32 indices of the format");
  EQR_CHECK(puzzle_indices.size() == puzzle_identifiers.size() + 1, DataError, where, ": puzzle_indices has ",
            puzzle_indices.size(), " entries, expected puzzle_identifiers + 1 = ", puzzle_identifiers.size() + 1);
  check_index_array(puzzle_indices, num_examples(), where, "puzzle_indices", "examples");
  check_index_array(group_indices, num_puzzles(), where, "group_indices", "puzzles");
  EQR_CHECK(num_groups() == metadata.total_groups, DataError, where, ": ", num_groups(),
            " groups in group_indices, but dataset.json says total_groups = ", metadata.total_groups);
  if (metadata.total_samples) {
    EQR_CHECK(*metadata.total_samples == num_examples(), DataError, where, ": ", num_examples(),
              " examples in the arrays, but dataset.json says total_samples = ", *metadata.total_samples);
  }
  const auto v = static_cast<uint8_t>(std::min<int64_t>(metadata.vocab_size, 255));
  for (const auto* arr : {&inputs, &labels}) {
    for (size_t i = 0; i < arr->size(); ++i) {
      EQR_CHECK((*arr)[i] < v || metadata.vocab_size == 256, DataError, where, ": ",
                arr == &inputs ? "inputs" : "labels", " row ", i / static_cast<size_t>(s), " cell ",
                i % static_cast<size_t>(s), " holds token ", int((*arr)[i]), ", outside [0, vocab_size ",
                metadata.vocab_size, ")");
    }
  }
  for (size_t i = 0; i < puzzle_identifiers.size(); ++i) {
    EQR_CHECK(puzzle_identifiers[i] >= 0 && puzzle_identifiers[i] < metadata.num_puzzle_identifiers, DataError,
              where, ": puzzle_identifiers[", i, "] = ", puzzle_identifiers[i], ", outside [0, ",
              metadata.num_puzzle_identifiers, ")");
  }
}

SplitData load_split(const std::string& dir, const std::string& split) {
  const fs::path base = fs::path(dir) / split;
  EQR_CHECK(fs::is_directory(base), DataError, base.string(),
            ": dataset split not found (expected a directory with dataset.json and all__*.npy; build one with "
            "`eqr data build`)");
  SplitData d;
  d.name = split;
  const std::string meta_path = (base / "dataset.json").string();
  d.metadata = DatasetMetadata::from_json(read_json_file(meta_path), meta_path);
  EQR_CHECK(d.metadata.sets.size() == 1, DataError, meta_path, ": ", d.metadata.sets.size(),
            " sets listed; eqr reads exactly one (the reference's Sudoku builds have [\"all\"])");
  const std::string prefix = d.metadata.sets[0] + "__";
  const int64_t s = d.metadata.seq_len;
  auto path = [&](const char* field) { return (base / (prefix + field + ".npy")).string(); };
  d.token_dtype = read_npy_header(path("inputs")).dtype;
  auto inputs = load_npy_as_uint8(path("inputs"), {-1, s});
  auto labels = load_npy_as_uint8(path("labels"), {inputs.dim(0), s});
  auto ids = load_npy_checked<int32_t>(path("puzzle_identifiers"), {-1});
  auto pidx = load_npy_checked<int32_t>(path("puzzle_indices"), {ids.dim(0) + 1});
  auto gidx = load_npy_checked<int32_t>(path("group_indices"), {-1});
  d.inputs = std::move(inputs.data);
  d.labels = std::move(labels.data);
  d.puzzle_identifiers = std::move(ids.data);
  d.puzzle_indices = std::move(pidx.data);
  d.group_indices = std::move(gidx.data);

  const fs::path manifest = fs::path(dir) / "manifest.json";
  if (fs::exists(manifest)) {
    const nlohmann::json m = read_json_file(manifest.string());
    if (m.is_object() && m.contains("geometry")) d.geometry = m["geometry"];
  }
  d.validate(base.string());
  return d;
}

void save_split(const std::string& dir, const SplitData& d) {
  d.validate("split '" + d.name + "' to be written to " + dir);
  const fs::path base = fs::path(dir) / d.name;
  fs::create_directories(base);
  const std::string prefix = d.metadata.sets.at(0) + "__";
  auto path = [&](const char* field) { return (base / (prefix + field + ".npy")).string(); };
  const int64_t n = d.num_examples();
  save_npy_as(path("inputs"), d.inputs.data(), {n, d.seq_len()}, d.token_dtype);
  save_npy_as(path("labels"), d.labels.data(), {n, d.seq_len()}, d.token_dtype);
  // Same order as the reference's results dict: group_indices, puzzle_indices, puzzle_identifiers.
  save_npy(path("group_indices"), d.group_indices.data(), {static_cast<int64_t>(d.group_indices.size())});
  save_npy(path("puzzle_indices"), d.puzzle_indices.data(), {static_cast<int64_t>(d.puzzle_indices.size())});
  save_npy(path("puzzle_identifiers"), d.puzzle_identifiers.data(), {d.num_puzzles()});
  write_text(base / "dataset.json", python_json_dump(d.metadata.to_json()));
}

void write_dataset(const std::string& out_dir, const BuiltDataset& built) {
  const fs::path root(out_dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  EQR_CHECK(fs::is_directory(root), DataError, out_dir, ": cannot create output directory (", ec.message(), ")");
  // An incomplete manifest first, so an interrupted build is recognisable as ours and never reused.
  nlohmann::ordered_json pending = built.manifest;
  pending["complete"] = false;
  write_text(root / "manifest.json", pending.dump(1) + "\n");
  save_split(out_dir, built.train);
  save_split(out_dir, built.test);
  write_text(root / "identifiers.json", "[\"<blank>\"]");
  write_text(root / "manifest.json", built.manifest.dump(1) + "\n");
}

SplitData load_or_build_cached(const CachedBuild& c, const std::string& split) {
  EQR_CHECK(split == "train" || split == "test", UsageError, "dataset split '", split, "': expected train or test");
  const auto pick = [&split](BuiltDataset b) { return split == "train" ? std::move(b.train) : std::move(b.test); };
  if (c.data_path.empty()) return pick(c.build());
  const fs::path root(c.data_path);
  const fs::path manifest_path = root / "manifest.json";
  if (fs::exists(manifest_path)) {
    std::ifstream f(manifest_path);
    nlohmann::json m = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    const bool complete = m.is_object() && m.value("complete", false);
    if (complete) m.erase("complete");
    if (complete && c.matches(m)) {
      logger()->info("dataset {}: reusing the {} (its manifest matches the config)", c.data_path, c.what);
      return c.load(c.data_path, split);
    }
    logger()->warn("dataset {}: manifest does not match the config (or the build was interrupted); rebuilding",
                   c.data_path);
  } else {
    EQR_CHECK(!fs::exists(root / "train" / "dataset.json") && !fs::exists(root / "test" / "dataset.json"),
              ConfigError, "data.data_path = ", c.data_path,
              " holds a dataset that eqr did not build (no manifest.json); refusing to overwrite it. Use "
              "data.source = built to train on it, or choose another data.data_path");
  }
  BuiltDataset b = c.build();
  write_dataset(c.data_path, b);
  return pick(std::move(b));
}

}  // namespace eqr::data
