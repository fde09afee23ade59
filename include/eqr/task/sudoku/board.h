#pragma once
// Sudoku board geometry, grid strings and token ids.
//
// A grid is a row-major std::vector<uint8_t> of VALUES: 0 = blank, 1..n = digits (n = side).
// Grid strings (CSV question/answer): '.' or '0' = blank, '1'..'9' = 1..9, then 'A'.. = 10..n
// (so a 16x16 grid uses 1-9 and A-G). Token ids follow the reference (eqr_spec.md §1.1):
// 0 = pad, 1 = blank, digit d -> d + 1, so vocab = n + 2 (11 for 9x9).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eqr::sudoku {

/// Token id of a padding cell (batch padding rows only; never in a real puzzle).
constexpr uint8_t kPadId = 0;
/// Token id of a blank cell (inputs only).
constexpr uint8_t kBlankId = 1;
/// Largest supported side (16x16 boards, values 1..16 fit a 16-bit candidate mask).
constexpr int kMaxSide = 16;
/// Largest number of cells of a supported board.
constexpr int kMaxCells = kMaxSide * kMaxSide;

/// Row-major cell values, 0 = blank, 1..n = digit.
using Grid = std::vector<uint8_t>;

/// Shape of a board: boxes of box_rows x box_cols cells; side n = box_rows * box_cols.
/// Bands are groups of box_rows rows (n / box_rows = box_cols of them); stacks are groups of
/// box_cols columns (n / box_cols = box_rows of them).
struct Geometry {
  int box_rows = 3;  ///< rows per box
  int box_cols = 3;  ///< columns per box

  /// Side length n (digits 1..n).
  int n() const { return box_rows * box_cols; }
  /// Number of cells n*n (the sequence length S).
  int cells() const { return n() * n(); }
  /// Vocabulary size n + 2 (pad, blank, n digits).
  int vocab() const { return n() + 2; }
  /// Index of the box holding cell (row, col), row-major over boxes.
  int box_of(int row, int col) const { return (row / box_rows) * box_rows + col / box_cols; }
  /// Number of bands (groups of box_rows rows) = box_cols.
  int bands() const { return n() / box_rows; }
  /// Number of stacks (groups of box_cols columns) = box_rows.
  int stacks() const { return n() / box_cols; }

  /// Standard box shape for a side: 4 -> 2x2, 6 -> 2x3, 9 -> 3x3, 16 -> 4x4 (throws UsageError otherwise).
  static Geometry from_side(int n);
  /// Box shape rows x cols, both >= 1 and side <= 16 (throws UsageError otherwise).
  static Geometry from_box(int box_rows, int box_cols);
  /// Parses a side spec "9x9" or "9" (UsageError if unknown).
  static Geometry parse_side(std::string_view spec);
  /// Parses a box spec "3x3", "2x3" (UsageError if malformed).
  static Geometry parse_box(std::string_view spec);
  /// Side spec, e.g. "9x9".
  std::string name() const;

  bool operator==(const Geometry& o) const { return box_rows == o.box_rows && box_cols == o.box_cols; }
  bool operator!=(const Geometry& o) const { return !(*this == o); }
};

/// Value of a grid character: '.'/'0' -> 0, '1'..'9' -> 1..9, 'A'.. -> 10..; -1 if not a grid character
/// (the caller still checks the value against n).
inline int value_of_char(char c) {
  if (c == '.' || c == '0') return 0;
  if (c >= '1' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return -1;
}

/// Grid character of a value: 0 -> '.', 1..9 -> '1'..'9', 10.. -> 'A'...
inline char char_of_value(int v) {
  if (v == 0) return '.';
  if (v <= 9) return static_cast<char>('0' + v);
  return static_cast<char>('A' + v - 10);
}

/// Parses a grid string of exactly geom.cells() characters into values (DataError naming the
/// offending position otherwise).
Grid parse_grid(std::string_view text, const Geometry& geom);
/// Grid string of values ('.' for blanks).
std::string format_grid(const Grid& values, const Geometry& geom);
/// Human-readable board with box separators, one row per line, '.' for blanks.
std::string pretty_grid(const Grid& values, const Geometry& geom);

/// Token ids of values: v -> v + 1 (blank -> kBlankId, digit d -> d + 1).
std::vector<uint8_t> to_token_ids(const Grid& values);
/// Values of token ids: id -> id - 1 (DataError for kPadId).
Grid from_token_ids(const std::vector<uint8_t>& ids);

/// Number of non-blank cells.
int count_givens(const Grid& values);

/// Empty string if `values` is a complete valid solution (every row, column and box a permutation of
/// 1..n); otherwise the first reason, e.g. "digit 5 twice in row 3".
std::string solution_problem(const Grid& values, const Geometry& geom);
/// True when solution_problem() is empty.
inline bool is_valid_solution(const Grid& values, const Geometry& geom) {
  return solution_problem(values, geom).empty();
}
/// Empty string if no digit repeats in a row, column or box of a (partial) grid; else the reason.
std::string conflict_problem(const Grid& values, const Geometry& geom);
/// Index of the first cell where the given of `question` differs from `answer`, or -1 if all agree.
int first_given_mismatch(const Grid& question, const Grid& answer);

}  // namespace eqr::sudoku
