#pragma once
// Sudoku-Extreme CSV files (eqr_spec.md §4.1, shared/data/external/FORMATS.md):
//   source,question,answer,rating
//   puzzles4_forum_hardest_1905,5...27..9..41......,583427169974136528...,18
// question/answer are row-major grid strings (board.h); rating is an integer (-1 = unknown).
// Every row is checked: field count, lengths, characters, the answer is a complete valid grid and every
// given agrees with it. A bad row throws DataError naming file, line, column and reason, unless
// CsvOptions::skip_invalid is set: then it is skipped and counted per defect kind in CsvReport.

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eqr/task/sudoku/board.h"

namespace eqr::sudoku {

/// The exact header line of a Sudoku CSV.
constexpr std::string_view kSudokuCsvHeader = "source,question,answer,rating";

/// One puzzle row as in the file (grid strings kept verbatim).
struct SudokuRow {
  std::string source;    ///< collection name, e.g. "puzzles4_forum_hardest_1905"
  std::string question;  ///< grid string with blanks ('.' or '0')
  std::string answer;    ///< complete grid string
  int64_t rating = 0;    ///< backtracks needed by the rating solver; -1 = unknown
  int64_t line = 0;      ///< 1-based line in the source file (0 if not from a file)
};

/// The same row without copies, pointing into the reader's buffer (valid only inside the callback).
struct SudokuRowView {
  std::string_view source, question, answer;
  int64_t rating = 0;
  int64_t line = 0;
};

/// Kinds of row defects, counted separately when skipping.
enum class CsvDefect : int {
  kFieldCount = 0,   ///< not exactly 4 comma-separated fields (includes empty lines)
  kQuestionLength,   ///< question is not geom.cells() characters
  kQuestionChar,     ///< question has a character that is not a blank or a digit 1..n
  kAnswerLength,     ///< answer is not geom.cells() characters
  kAnswerChar,       ///< answer has a character that is not a digit 1..n (blanks included)
  kAnswerInvalid,    ///< answer repeats a digit in a row, column or box
  kGivenMismatch,    ///< a given of the question differs from the answer
  kRating,           ///< rating is not an integer
  kCount
};
constexpr int kCsvDefectKinds = static_cast<int>(CsvDefect::kCount);
/// Short name of a defect kind, e.g. "answer_invalid".
const char* defect_name(CsvDefect kind);

struct CsvOptions {
  Geometry geom;                       ///< board shape of every row (default 9x9)
  bool skip_invalid = false;           ///< skip and count bad rows instead of throwing
  std::optional<int64_t> min_rating;   ///< keep rows with rating >= value (spec: min_difficulty)
  int64_t max_rows = 0;                ///< stop after this many kept rows (0 = all)
};

/// What the reader saw. Nothing is dropped silently: rows_read = rows_kept + rows_invalid +
/// rows_below_rating (+ rows not visited after max_rows).
struct CsvReport {
  std::string path;
  int64_t rows_read = 0;          ///< data rows examined (header excluded)
  int64_t rows_kept = 0;          ///< rows returned
  int64_t rows_invalid = 0;       ///< rows skipped for a defect (skip_invalid only)
  int64_t rows_below_rating = 0;  ///< valid rows dropped by min_rating
  std::array<int64_t, kCsvDefectKinds> defects{};  ///< per CsvDefect kind
  std::vector<std::string> examples;               ///< first few defect messages (file:line: ...)

  /// One line, e.g. "read 10, kept 8, invalid 1 (answer_invalid 1), below rating 1".
  std::string summary() const;
};

/// A loaded CSV: geometry, rows and the reader's report.
struct SudokuSet {
  Geometry geom;
  std::vector<SudokuRow> rows;
  CsvReport report;

  size_t size() const { return rows.size(); }
};

/// Reads and checks a Sudoku CSV (whole file in one buffer, no per-field copies until a row is kept).
SudokuSet read_sudoku_csv(const std::string& path, const CsvOptions& opts = {});
/// Same, from text already in memory; `name` is used in messages.
SudokuSet parse_sudoku_csv(std::string_view text, const std::string& name, const CsvOptions& opts = {});

/// Streams the checked rows of `text` to `visit` without materialising them (fastest path; same
/// checks, filters and report as parse_sudoku_csv). Returns the report.
CsvReport visit_sudoku_csv(std::string_view text, const std::string& name, const CsvOptions& opts,
                           const std::function<void(const SudokuRowView&)>& visit);

/// Checks one row (fields already split); returns the first defect and sets `reason`, or nullopt.
std::optional<CsvDefect> check_sudoku_row(const SudokuRowView& row, const Geometry& geom, std::string* reason);

/// Writes header + rows (no checks; rows are written as given).
void write_sudoku_csv(const std::string& path, const std::vector<SudokuRow>& rows);

/// Reads a whole file into a string (DataError naming the path if unreadable).
std::string read_text_file(const std::string& path);

}  // namespace eqr::sudoku
