#include "eqr/data/dataset.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <unordered_map>

#include "eqr/core/error.h"
#include "eqr/core/logging.h"
#include "eqr/core/progress.h"
#include "eqr/core/rng.h"
#include "eqr/core/version.h"
#include "eqr/data/augment.h"
#include "eqr/data/generator.h"
#include "eqr/data/npy.h"
#include "eqr/data/numpy_random.h"

namespace eqr::data {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4)
namespace {

class Sha256 {
 public:
  Sha256() { reset(); }
  void reset() {
    h_ = {0x6a09e667U, 0xbb67ae85U, 0x3c6ef372U, 0xa54ff53aU, 0x510e527fU, 0x9b05688cU, 0x1f83d9abU, 0x5be0cd19U};
    len_ = 0;
    fill_ = 0;
  }
  void update(const uint8_t* p, size_t n) {
    len_ += n;
    if (fill_) {
      const size_t take = std::min(n, size_t{64} - fill_);
      std::memcpy(buf_ + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ < 64) return;
      block(buf_);
      fill_ = 0;
    }
    for (; n >= 64; p += 64, n -= 64) block(p);
    std::memcpy(buf_, p, n);
    fill_ = n;
  }
  std::string hex() {
    const uint64_t bits = len_ * 8;
    const uint8_t one = 0x80, zero = 0;
    update(&one, 1);
    while (fill_ != 56) update(&zero, 1);
    uint8_t tail[8];
    for (int i = 0; i < 8; ++i) tail[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    update(tail, 8);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (uint32_t w : h_) {
      for (int i = 28; i >= 0; i -= 4) out.push_back(digits[(w >> i) & 0xf]);
    }
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void block(const uint8_t* p) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16) | (uint32_t{p[4 * i + 2]} << 8) |
             uint32_t{p[4 * i + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  std::array<uint32_t, 8> h_{};
  uint64_t len_ = 0;
  uint8_t buf_[64] = {};
  size_t fill_ = 0;
};

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  Sha256 s;
  s.update(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return s.hex();
}

std::string sha256_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  EQR_CHECK(f != nullptr, DataError, path, ": cannot open for hashing (", std::strerror(errno), ")");
  Sha256 s;
  std::vector<uint8_t> buf(1 << 20);
  size_t got = 0;
  while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) s.update(buf.data(), got);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  EQR_CHECK(!bad, DataError, path, ": read error while hashing");
  return s.hex();
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

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EQR_CHECK(in.good(), DataError, path.string(), ": cannot open (missing?)");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    EQR_FAIL(DataError, path.string(), ": not valid JSON (", e.what(), ")");
  }
}

int64_t get_int(const nlohmann::json& j, const char* key, const std::string& where) {
  EQR_CHECK(j.contains(key), DataError, where, ": missing key '", key, "'");
  EQR_CHECK(j[key].is_number_integer(), DataError, where, ": key '", key, "' is ", j[key].dump(),
            ", expected an integer");
  return j[key].get<int64_t>();
}

std::optional<Geometry> geometry_of_cells(int64_t cells) {
  const auto n = static_cast<int>(std::lround(std::sqrt(static_cast<double>(cells))));
  if (int64_t{n} * n != cells) return std::nullopt;
  try {
    return Geometry::from_side(n);
  } catch (const Error&) {
    return std::nullopt;
  }
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
    const nlohmann::json m = read_json_file(manifest);
    if (m.contains("geometry") && m["geometry"].contains("box_rows")) {
      d.geom = Geometry::from_box(m["geometry"]["box_rows"].get<int>(), m["geometry"]["box_cols"].get<int>());
    }
  }
  if (!d.geom) d.geom = geometry_of_cells(s);
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
  d.geom = geom;
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
  nlohmann::ordered_json g;
  g["box_rows"] = opts.geom.box_rows;
  g["box_cols"] = opts.geom.box_cols;
  g["side"] = opts.geom.n();
  g["seq_len"] = opts.geom.cells();
  g["vocab_size"] = opts.geom.vocab();
  m["geometry"] = g;
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
  if (cfg.source == "csv") {
    EQR_CHECK(!cfg.train_csv.empty(), ConfigError, "data.source = csv needs data.train_csv");
    const SourceInfo te = cfg.test_csv.empty() ? generated_info(cfg, cfg.generate_test) : csv_info(cfg.test_csv);
    return make_request(opts, csv_info(cfg.train_csv), te);
  }
  EQR_CHECK(cfg.source == "generated", ConfigError, "data.source = '", cfg.source,
            "' has no build request (expected csv or generated)");
  return make_request(opts, generated_info(cfg, cfg.generate_train), generated_info(cfg, cfg.generate_test));
}

BuiltDataset build_dataset(const config::DataConfig& cfg, const PuzzleSource& generate, bool reference_dtypes) {
  BuildOptions opts = build_options(cfg);
  opts.reference_dtypes = reference_dtypes;
  if (cfg.source == "csv") {
    EQR_CHECK(!cfg.train_csv.empty(), ConfigError, "data.source = csv needs data.train_csv");
    if (!cfg.test_csv.empty()) return build_from_csv(cfg.train_csv, cfg.test_csv, opts);
    // CSV train split, generated test split.
    SourceInfo tr, te = generated_info(cfg, cfg.generate_test);
    const std::string text = read_text_file(cfg.train_csv);
    const KeptRows train = keep_csv(text, cfg.train_csv, opts, tr);
    const KeptRows test = keep_rows(generate_rows(generate, cfg, cfg.generate_test, "test"), opts, "test", te);
    return build_from_kept(train, test, opts, tr, te);
  }
  EQR_CHECK(cfg.source == "generated", ConfigError, "data.source = '", cfg.source,
            "' cannot be built (expected csv or generated; 'built' reads data.data_path)");
  return build_from_rows(generate_rows(generate, cfg, cfg.generate_train, "train"),
                         generate_rows(generate, cfg, cfg.generate_test, "test"), opts,
                         generated_info(cfg, cfg.generate_train), generated_info(cfg, cfg.generate_test));
}

SplitData load_or_build(const config::DataConfig& cfg, const std::string& split, const PuzzleSource& generate) {
  EQR_CHECK(split == "train" || split == "test", UsageError, "dataset split '", split, "': expected train or test");
  const Geometry geom = Geometry::from_box(static_cast<int>(cfg.box_rows), static_cast<int>(cfg.box_cols));
  if (cfg.source == "built") {
    SplitData d = load_split(cfg.data_path, split);
    EQR_CHECK(d.seq_len() == geom.cells() && (!d.geom || *d.geom == geom), ConfigError, "data.data_path = ",
              cfg.data_path, " holds ", d.geom ? d.geom->name() : "unknown", " boards (seq_len ", d.seq_len(),
              ") but data.box_rows x data.box_cols = ", cfg.box_rows, "x", cfg.box_cols, " (", geom.cells(),
              " cells)");
    return d;
  }
  EQR_CHECK(cfg.source == "csv" || cfg.source == "generated", ConfigError, "data.source = '", cfg.source,
            "': expected generated, csv or built");
  if (cfg.data_path.empty()) {
    BuiltDataset b = build_dataset(cfg, generate);
    return split == "train" ? std::move(b.train) : std::move(b.test);
  }
  const fs::path root(cfg.data_path);
  const fs::path manifest_path = root / "manifest.json";
  const nlohmann::ordered_json request = build_request(cfg);
  if (fs::exists(manifest_path)) {
    const nlohmann::json m = read_json_file(manifest_path);
    if (m.value("complete", false) && m.contains("request") && nlohmann::json::parse(request.dump()) == m["request"]) {
      logger()->info("dataset {}: reusing the build (its manifest matches the config)", cfg.data_path);
      return load_split(cfg.data_path, split);
    }
    logger()->warn("dataset {}: manifest does not match the config (or the build was interrupted); rebuilding",
                   cfg.data_path);
  } else {
    EQR_CHECK(!fs::exists(root / "train" / "dataset.json") && !fs::exists(root / "test" / "dataset.json"),
              ConfigError, "data.data_path = ", cfg.data_path,
              " holds a dataset that eqr did not build (no manifest.json); refusing to overwrite it. Use "
              "data.source = built to train on it, or choose another data.data_path");
  }
  BuiltDataset b = build_dataset(cfg, generate);
  write_dataset(cfg.data_path, b);
  return split == "train" ? std::move(b.train) : std::move(b.test);
}

}  // namespace eqr::data
