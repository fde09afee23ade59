#include "eqr/task/sudoku/csv.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "eqr/core/error.h"

namespace eqr::sudoku {

namespace {

constexpr int kMaxExamples = 5;
constexpr const char* kFieldNames[] = {"source", "question", "answer", "rating"};

// Per-geometry character table and the row checks; the fast path builds no strings.
class RowChecker {
 public:
  explicit RowChecker(const Geometry& geom) : geom_(geom), cells_(geom.cells()), n_(geom.n()) {
    value_.fill(-1);
    for (int c = 0; c < 256; ++c) {
      const int v = value_of_char(static_cast<char>(c));
      if (v >= 0 && v <= n_) value_[c] = static_cast<int8_t>(v);
    }
    for (int i = 0; i < cells_; ++i) {
      const int r = i / n_, c = i % n_;
      row_[i] = static_cast<uint8_t>(r);
      col_[i] = static_cast<uint8_t>(c);
      box_[i] = static_cast<uint8_t>(geom.box_of(r, c));
    }
  }

  // First defect of the row, or nullopt. `reason` (if not null) gets "column 'x' (field k): why".
  std::optional<CsvDefect> check(const SudokuRowView& row, std::string* reason) const {
    if (static_cast<int>(row.question.size()) != cells_) {
      return fail(CsvDefect::kQuestionLength, 1, reason, "has ", row.question.size(), " characters; expected ",
                  cells_, " for ", geom_.name());
    }
    if (static_cast<int>(row.answer.size()) != cells_) {
      return fail(CsvDefect::kAnswerLength, 2, reason, "has ", row.answer.size(), " characters; expected ", cells_,
                  " for ", geom_.name());
    }
    uint32_t rows[kMaxSide] = {}, cols[kMaxSide] = {}, boxes[kMaxSide] = {};
    for (int i = 0; i < cells_; ++i) {
      const int q = value_[static_cast<unsigned char>(row.question[i])];
      const int a = value_[static_cast<unsigned char>(row.answer[i])];
      if (q < 0) {
        return fail(CsvDefect::kQuestionChar, 1, reason, "character '", row.question[i], "' at cell ", i + 1,
                    " is not a blank ('.' or '0') or a digit 1..", char_of_value(n_));
      }
      if (a <= 0) {
        return fail(CsvDefect::kAnswerChar, 2, reason, "character '", row.answer[i], "' at cell ", i + 1,
                    " is not a digit 1..", char_of_value(n_));
      }
      if (q != 0 && q != a) {
        return fail(CsvDefect::kGivenMismatch, 1, reason, "given '", row.question[i], "' at cell ", i + 1,
                    " (row ", i / n_ + 1, ", column ", i % n_ + 1, ") disagrees with the answer's '", row.answer[i],
                    "'");
      }
      const uint32_t bit = 1u << a;
      if ((rows[row_[i]] | cols[col_[i]] | boxes[box_[i]]) & bit) {
        const char* unit = (rows[row_[i]] & bit) ? "row" : (cols[col_[i]] & bit) ? "column" : "box";
        const int index = (rows[row_[i]] & bit) ? row_[i] : (cols[col_[i]] & bit) ? col_[i] : box_[i];
        return fail(CsvDefect::kAnswerInvalid, 2, reason, "is not a valid solution: digit '", row.answer[i],
                    "' twice in ", unit, " ", index + 1, " (second at cell ", i + 1, ")");
      }
      rows[row_[i]] |= bit;
      cols[col_[i]] |= bit;
      boxes[box_[i]] |= bit;
    }
    return std::nullopt;
  }

 private:
  template <typename... Args>
  static std::optional<CsvDefect> fail(CsvDefect kind, int field, std::string* reason, const Args&... parts) {
    if (reason) {
      *reason = ::eqr::detail::concat("column '", kFieldNames[field], "' (field ", field + 1, "): ", parts...);
    }
    return kind;
  }

  Geometry geom_;
  int cells_, n_;
  std::array<int8_t, 256> value_{};
  uint8_t row_[kMaxCells] = {}, col_[kMaxCells] = {}, box_[kMaxCells] = {};
};

std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Splits `line` into exactly 4 fields; false if the count differs.
bool split4(std::string_view line, std::string_view out[4]) {
  size_t start = 0;
  for (int f = 0; f < 3; ++f) {
    const void* hit = std::memchr(line.data() + start, ',', line.size() - start);
    if (!hit) return false;
    const size_t comma = static_cast<const char*>(hit) - line.data();
    out[f] = line.substr(start, comma - start);
    start = comma + 1;
  }
  out[3] = line.substr(start);
  return out[3].find(',') == std::string_view::npos;
}

std::string preview(std::string_view s) {
  return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 40)) + "...";
}

}  // namespace

const char* defect_name(CsvDefect kind) {
  switch (kind) {
    case CsvDefect::kFieldCount: return "field_count";
    case CsvDefect::kQuestionLength: return "question_length";
    case CsvDefect::kQuestionChar: return "question_char";
    case CsvDefect::kAnswerLength: return "answer_length";
    case CsvDefect::kAnswerChar: return "answer_char";
    case CsvDefect::kAnswerInvalid: return "answer_invalid";
    case CsvDefect::kGivenMismatch: return "given_mismatch";
    case CsvDefect::kRating: return "rating";
    case CsvDefect::kCount: break;
  }
  return "unknown";
}

std::string CsvReport::summary() const {
  std::string s = ::eqr::detail::concat("read ", rows_read, ", kept ", rows_kept, ", invalid ", rows_invalid);
  if (rows_invalid) {
    std::string kinds;
    for (int k = 0; k < kCsvDefectKinds; ++k) {
      if (!defects[k]) continue;
      kinds += ::eqr::detail::concat(kinds.empty() ? "" : ", ", defect_name(static_cast<CsvDefect>(k)), " ",
                                     defects[k]);
    }
    s += " (" + kinds + ")";
  }
  s += ::eqr::detail::concat(", below min rating ", rows_below_rating);
  return s;
}

std::optional<CsvDefect> check_sudoku_row(const SudokuRowView& row, const Geometry& geom, std::string* reason) {
  return RowChecker(geom).check(row, reason);
}

CsvReport visit_sudoku_csv(std::string_view text, const std::string& name, const CsvOptions& opts,
                           const std::function<void(const SudokuRowView&)>& visit) {
  CsvReport report;
  report.path = name;
  const RowChecker checker(opts.geom);

  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
  size_t pos = 0;
  auto next_line = [&]() {
    const void* hit = std::memchr(text.data() + pos, '\n', text.size() - pos);
    const size_t end = hit ? static_cast<const char*>(hit) - text.data() : text.size();
    std::string_view line = strip_cr(text.substr(pos, end - pos));
    pos = hit ? end + 1 : text.size();
    return line;
  };
  EQR_CHECK(!text.empty(), DataError, name, ": empty file; expected the header line '", kSudokuCsvHeader, "'");
  const std::string_view header = next_line();
  EQR_CHECK(header == kSudokuCsvHeader, DataError, name, ":1: header '", preview(header), "' is not '",
            kSudokuCsvHeader, "' (a Sudoku-Extreme CSV)");

  std::string reason;
  std::string_view fields[4];
  for (int64_t line_no = 2; pos < text.size(); ++line_no) {
    if (opts.max_rows > 0 && report.rows_kept >= opts.max_rows) break;
    const std::string_view line = next_line();
    ++report.rows_read;
    SudokuRowView row;
    row.line = line_no;
    std::optional<CsvDefect> defect;
    if (!split4(line, fields)) {
      defect = CsvDefect::kFieldCount;
      size_t commas = 0;
      for (char c : line) commas += c == ',';
      reason = line.empty() ? std::string("empty line; expected 4 fields (source,question,answer,rating)")
                            : ::eqr::detail::concat(commas + 1, " fields; expected 4 (source,question,answer,rating)");
    } else {
      row.source = fields[0];
      row.question = fields[1];
      row.answer = fields[2];
      defect = checker.check(row, &reason);
      if (!defect) {
        const char* end = fields[3].data() + fields[3].size();
        const auto r = std::from_chars(fields[3].data(), end, row.rating);
        if (fields[3].empty() || r.ec != std::errc() || r.ptr != end) {
          defect = CsvDefect::kRating;
          reason = ::eqr::detail::concat("column 'rating' (field 4): '", preview(fields[3]), "' is not an integer");
        }
      }
    }
    if (defect) {
      const std::string message = ::eqr::detail::concat(name, ":", line_no, ": ", reason);
      EQR_CHECK(opts.skip_invalid, DataError, message, " (use --skip-invalid to skip and count bad rows)");
      ++report.rows_invalid;
      ++report.defects[static_cast<int>(*defect)];
      if (report.examples.size() < kMaxExamples) report.examples.push_back(message);
      continue;
    }
    if (opts.min_rating && row.rating < *opts.min_rating) {
      ++report.rows_below_rating;
      continue;
    }
    ++report.rows_kept;
    visit(row);
  }
  return report;
}

SudokuSet parse_sudoku_csv(std::string_view text, const std::string& name, const CsvOptions& opts) {
  SudokuSet set;
  set.geom = opts.geom;
  // Rough row count from the line length of a 9x9 row, so the vector grows at most a few times.
  const size_t guess = text.size() / (2 * opts.geom.cells() + 16) + 1;
  set.rows.reserve(opts.max_rows > 0 ? std::min<size_t>(guess, opts.max_rows) : guess);
  set.report = visit_sudoku_csv(text, name, opts, [&](const SudokuRowView& v) {
    set.rows.push_back(SudokuRow{std::string(v.source), std::string(v.question), std::string(v.answer), v.rating,
                                 v.line});
  });
  return set;
}

SudokuSet read_sudoku_csv(const std::string& path, const CsvOptions& opts) {
  const std::string text = read_text_file(path);
  return parse_sudoku_csv(text, path, opts);
}

std::string read_text_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  EQR_CHECK(f, DataError, path, ": cannot open for reading (", std::strerror(errno), ")");
  std::string text;
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  if (size > 0) {
    text.resize(static_cast<size_t>(size));
    const size_t got = std::fread(text.data(), 1, text.size(), f);
    text.resize(got);
  }
  const bool failed = std::ferror(f);
  std::fclose(f);
  EQR_CHECK(!failed, DataError, path, ": read error");
  return text;
}

void write_sudoku_csv(const std::string& path, const std::vector<SudokuRow>& rows) {
  std::string text(kSudokuCsvHeader);
  text += '\n';
  for (const auto& r : rows) {
    EQR_CHECK(r.source.find_first_of(",\n\r") == std::string::npos, DataError, path,
              ": source '", r.source, "' contains a comma or newline; cannot write it as a CSV field");
    text += r.source;
    text += ',';
    text += r.question;
    text += ',';
    text += r.answer;
    text += ',';
    text += std::to_string(r.rating);
    text += '\n';
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  EQR_CHECK(f, DataError, path, ": cannot open for writing (", std::strerror(errno), ")");
  const size_t put = std::fwrite(text.data(), 1, text.size(), f);
  const bool closed = std::fclose(f) == 0;
  const bool ok = put == text.size() && closed;
  EQR_CHECK(ok, DataError, path, ": write failed (disk full?)");
}

}  // namespace eqr::sudoku
