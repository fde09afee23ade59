// libFuzzer target: the Sudoku CSV reader (data/sudoku_csv.h), strict and skipping, 9x9 and 4x4 boards,
// from memory and from a file. Seeds: tests/fixtures/fuzz/sudoku_csv/ (scripts/fuzz.sh).

#include <string_view>

#include "eqr/task/sudoku/csv.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace eqr;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& geom : {sudoku::Geometry{3, 3}, sudoku::Geometry{2, 2}}) {
    sudoku::CsvOptions strict;
    strict.geom = geom;
    fuzz::expect_ok_or_refused([&] { sudoku::parse_sudoku_csv(text, "fuzz.csv", strict); });
    sudoku::CsvOptions loose = strict;
    loose.skip_invalid = true;
    loose.min_rating = 1;
    loose.max_rows = 3;
    fuzz::expect_ok_or_refused([&] {
      const auto set = sudoku::parse_sudoku_csv(text, "fuzz.csv", loose);
      (void)set.report.summary();
    });
  }
  const std::string path = fuzz::write_input("in.csv", data, size);
  fuzz::expect_ok_or_refused([&] { sudoku::read_sudoku_csv(path); });
  return 0;
}
