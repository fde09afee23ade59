// The exact solver against the published answers of every external set in ../shared/data/external.
//
// Each CSV is read with full row checks; every puzzle of the small files, and of the big ones (> 10,000 rows:
// tdoku_17_clue, tdoku_forum_hardest_1905_11plus) every 8th puzzle, must have exactly one solution equal to
// the published answer. The subset keeps the suite fast on a busy CI machine (the full forum_hardest set
// takes about 15 s of CPU for solve + uniqueness); EQR_EXTERNAL_FULL=1 checks every puzzle.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "eqr/core/parallel.h"
#include "eqr/task/sudoku/canonical.h"
#include "eqr/task/sudoku/generator.h"
#include "eqr/task/sudoku/solver.h"
#include "eqr/task/sudoku/csv.h"
#include "test_support.h"

namespace eqr::sudoku {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> external_csvs() {
  std::vector<fs::path> files;
  const fs::path root = test::shared_dir() / "data" / "external";
  if (test::shared_dir().empty() || !fs::exists(root)) return files;
  for (const auto& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(dir.path())) {
      if (f.path().extension() == ".csv") files.push_back(f.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(DataExternal, SolverMatchesEveryPublishedAnswer) {
  const auto files = external_csvs();
  if (files.empty()) GTEST_SKIP() << "shared/data/external not found (set EQR_SHARED_DIR)";
  const bool full = std::getenv("EQR_EXTERNAL_FULL") != nullptr;
  const Solver solver(Geometry{});
  int64_t checked_total = 0;
  for (const auto& path : files) {
    const SudokuSet set = read_sudoku_csv(path.string());
    ASSERT_GT(set.size(), 0u) << path;
    EXPECT_EQ(set.report.rows_invalid, 0) << path;
    const size_t stride = (!full && set.size() > 10000) ? 8 : 1;
    std::vector<int64_t> picks;
    for (size_t i = 0; i < set.size(); i += stride) picks.push_back(static_cast<int64_t>(i));
    std::vector<char> ok(picks.size(), 0);
    parallel_for(static_cast<int64_t>(picks.size()), 0, [&](int64_t k) {
      const SudokuRow& row = set.rows[picks[k]];
      Grid first;
      const int count = solver.count_solutions(parse_grid(row.question, set.geom), 2, &first);
      const SolveResult r = solver.solve(parse_grid(row.question, set.geom));
      ok[k] = count == 1 && r.solved && format_grid(r.solution, set.geom) == row.answer && first == r.solution;
    });
    int64_t bad = 0;
    for (size_t k = 0; k < picks.size(); ++k) {
      if (ok[k]) continue;
      if (bad++ < 5) ADD_FAILURE() << path.string() << ":" << set.rows[picks[k]].line << ": solver disagrees";
    }
    EXPECT_EQ(bad, 0) << path;
    checked_total += static_cast<int64_t>(picks.size());
    std::printf("[ external ] %-60s %7zu rows, %7zu checked\n", path.filename().string().c_str(), set.size(),
                picks.size());
  }
  EXPECT_GT(checked_total, 10000);
}

TEST(DataExternal, Top95OverlapsTop1465UpToSymmetry) {
  const fs::path root = test::shared_dir() / "data" / "external";
  if (test::shared_dir().empty() || !fs::exists(root / "norvig_top95_hardest" / "top95.csv")) {
    GTEST_SKIP() << "shared/data/external not found";
  }
  // FORMATS.md: 93 of the 95 top95 puzzles appear verbatim in magictour_top1465; an equivalence check
  // must find at least those.
  const auto top95 = read_sudoku_csv((root / "norvig_top95_hardest" / "top95.csv").string());
  const auto top1465 = read_sudoku_csv((root / "tdoku_magictour_top1465" / "magictour_top1465.csv").string());
  std::vector<std::string> a, b;
  for (const auto& r : top1465.rows) a.push_back(r.question);
  for (const auto& r : top95.rows) b.push_back(r.question);
  const auto fa = canonical_forms(a, Geometry{}), fb = canonical_forms(b, Geometry{});
  const std::set<std::string> forms_a(fa.begin(), fa.end());
  const std::set<std::string> strings_a(a.begin(), a.end());
  int equivalent = 0, identical = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    equivalent += forms_a.count(fb[i]) > 0;
    identical += strings_a.count(b[i]) > 0;
  }
  EXPECT_EQ(identical, 93);
  EXPECT_GE(equivalent, identical);
  std::printf("[ external ] top95 in top1465: %d identical, %d equivalent\n", identical, equivalent);
}

}  // namespace
}  // namespace eqr::sudoku
