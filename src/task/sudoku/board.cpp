#include "eqr/task/sudoku/board.h"

#include <algorithm>
#include <charconv>

#include "eqr/core/error.h"

namespace eqr::sudoku {

namespace {

// "AxB" -> (A, B); false if malformed.
bool parse_pair(std::string_view spec, int& a, int& b) {
  const auto x = spec.find('x');
  if (x == std::string_view::npos) return false;
  const char* end_a = spec.data() + x;
  const char* end_b = spec.data() + spec.size();
  auto ra = std::from_chars(spec.data(), end_a, a);
  auto rb = std::from_chars(end_a + 1, end_b, b);
  return ra.ec == std::errc() && ra.ptr == end_a && rb.ec == std::errc() && rb.ptr == end_b;
}

const char* unit_name(int unit) { return unit == 0 ? "row" : unit == 1 ? "column" : "box"; }

// Checks rows, columns and boxes for repeated digits; if `complete`, also for blanks and out-of-range values.
std::string unit_problem(const Grid& values, const Geometry& geom, bool complete) {
  const int n = geom.n();
  if (static_cast<int>(values.size()) != geom.cells()) {
    return ::eqr::detail::concat("grid has ", values.size(), " cells, expected ", geom.cells());
  }
  for (int i = 0; i < geom.cells(); ++i) {
    const int v = values[i];
    if (v > n || (complete && v == 0)) {
      return ::eqr::detail::concat(v == 0 ? "blank" : "value out of range", " at row ", i / n + 1, " column ", i % n + 1);
    }
  }
  for (int unit = 0; unit < 3; ++unit) {
    for (int u = 0; u < n; ++u) {
      uint32_t seen = 0;
      for (int k = 0; k < n; ++k) {
        int r, c;
        if (unit == 0) {
          r = u, c = k;
        } else if (unit == 1) {
          r = k, c = u;
        } else {
          r = (u / geom.box_rows) * geom.box_rows + k / geom.box_cols;
          c = (u % geom.box_rows) * geom.box_cols + k % geom.box_cols;
        }
        const int v = values[r * n + c];
        if (v == 0) continue;
        const uint32_t bit = 1u << v;
        if (seen & bit) return ::eqr::detail::concat("digit ", char_of_value(v), " twice in ", unit_name(unit), " ", u + 1);
        seen |= bit;
      }
    }
  }
  return {};
}

}  // namespace

Geometry Geometry::from_side(int n) {
  switch (n) {
    case 4: return {2, 2};
    case 6: return {2, 3};
    case 9: return {3, 3};
    case 16: return {4, 4};
    default:
      EQR_FAIL(UsageError, "board side ", n, " has no standard box shape; expected 4, 6, 9 or 16 "
               "(or give the box shape, e.g. --box 2x4)");
  }
}

Geometry Geometry::from_box(int box_rows, int box_cols) {
  EQR_CHECK(box_rows >= 1 && box_cols >= 1 && box_rows * box_cols <= kMaxSide && box_rows * box_cols >= 2,
            UsageError, "box shape ", box_rows, "x", box_cols, " unsupported; expected rows, cols >= 1 and side ",
            "rows*cols in 2..", kMaxSide);
  return {box_rows, box_cols};
}

Geometry Geometry::parse_side(std::string_view spec) {
  int a = 0, b = 0;
  if (parse_pair(spec, a, b)) {
    EQR_CHECK(a == b, UsageError, "geometry '", spec, "' is not square; expected e.g. 9x9");
    return from_side(a);
  }
  auto r = std::from_chars(spec.data(), spec.data() + spec.size(), a);
  EQR_CHECK(r.ec == std::errc() && r.ptr == spec.data() + spec.size(), UsageError, "geometry '", spec,
            "' malformed; expected 4x4, 6x6, 9x9 or 16x16");
  return from_side(a);
}

Geometry Geometry::parse_box(std::string_view spec) {
  int a = 0, b = 0;
  EQR_CHECK(parse_pair(spec, a, b), UsageError, "box shape '", spec, "' malformed; expected ROWSxCOLS, e.g. 3x3");
  return from_box(a, b);
}

std::string Geometry::name() const { return std::to_string(n()) + "x" + std::to_string(n()); }

Grid parse_grid(std::string_view text, const Geometry& geom) {
  EQR_CHECK(static_cast<int>(text.size()) == geom.cells(), DataError, "grid string has ", text.size(),
            " characters; expected ", geom.cells(), " for ", geom.name());
  Grid values(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const int v = value_of_char(text[i]);
    EQR_CHECK(v >= 0 && v <= geom.n(), DataError, "grid character '", text[i], "' at position ", i + 1,
              " is not a blank ('.' or '0') or a digit 1..", geom.n(), " (", char_of_value(geom.n()), ")");
    values[i] = static_cast<uint8_t>(v);
  }
  return values;
}

std::string format_grid(const Grid& values, const Geometry& geom) {
  EQR_CHECK(static_cast<int>(values.size()) == geom.cells(), DataError, "grid has ", values.size(),
            " cells; expected ", geom.cells());
  std::string s(values.size(), '.');
  for (size_t i = 0; i < values.size(); ++i) s[i] = char_of_value(values[i]);
  return s;
}

std::string pretty_grid(const Grid& values, const Geometry& geom) {
  const std::string flat = format_grid(values, geom);
  const int n = geom.n();
  std::string rule;
  for (int s = 0; s < geom.stacks(); ++s) {
    if (s) rule += "+";
    rule += std::string(2 * geom.box_cols + (s + 1 < geom.stacks() ? 1 : 0), '-');
  }
  std::string out;
  for (int r = 0; r < n; ++r) {
    if (r && r % geom.box_rows == 0) out += rule + "\n";
    for (int c = 0; c < n; ++c) {
      if (c && c % geom.box_cols == 0) out += " |";
      out += ' ';
      out += flat[r * n + c];
    }
    out += "\n";
  }
  return out;
}

std::vector<uint8_t> to_token_ids(const Grid& values) {
  std::vector<uint8_t> ids(values.size());
  for (size_t i = 0; i < values.size(); ++i) ids[i] = static_cast<uint8_t>(values[i] + 1);
  return ids;
}

Grid from_token_ids(const std::vector<uint8_t>& ids) {
  Grid values(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EQR_CHECK(ids[i] != kPadId, DataError, "token id ", int(kPadId), " (pad) at cell ", i,
              " has no cell value; expected ids >= ", int(kBlankId));
    values[i] = static_cast<uint8_t>(ids[i] - 1);
  }
  return values;
}

int count_givens(const Grid& values) {
  int k = 0;
  for (uint8_t v : values) k += v != 0;
  return k;
}

std::string solution_problem(const Grid& values, const Geometry& geom) { return unit_problem(values, geom, true); }

std::string conflict_problem(const Grid& values, const Geometry& geom) { return unit_problem(values, geom, false); }

int first_given_mismatch(const Grid& question, const Grid& answer) {
  const size_t m = std::min(question.size(), answer.size());
  for (size_t i = 0; i < m; ++i) {
    if (question[i] != 0 && question[i] != answer[i]) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace eqr::sudoku
