// `eqr data ...` and `eqr bench csv|solver|generator` end to end: exit codes, files, messages.

#include <gtest/gtest.h>

#include <filesystem>

#include "eqr/task/sudoku/canonical.h"
#include "eqr/task/sudoku/solver.h"
#include "eqr/task/sudoku/csv.h"
#include "test_support.h"

namespace eqr::sudoku {
namespace {

namespace fs = std::filesystem;
using test::run_eqr;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

TEST(CliData, GenerateIsDeterministicAndChecks) {
  const fs::path dir = test::temp_dir("cli_data");
  const fs::path one = dir / "one.csv", two = dir / "two.csv";
  auto r = run_eqr("data generate --count 6 --seed 3 --threads 1 --out " + q(one));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote 6 9x9 puzzles"), std::string::npos) << r.out;
  r = run_eqr("data generate --count 6 --seed 3 --threads 3 --out " + q(two));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(one), test::read_file(two));

  const SudokuSet set = read_sudoku_csv(one.string());
  ASSERT_EQ(set.size(), 6u);
  const Solver solver(set.geom);
  for (const auto& row : set.rows) EXPECT_TRUE(solver.is_unique(parse_grid(row.question, set.geom)));

  r = run_eqr("data check --unique " + q(one));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("6 unique, 0 not unique"), std::string::npos) << r.out;

  r = run_eqr("data generate --geometry 6x6 --count 3 --out " + q(dir / "six.csv"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_eqr("data check --geometry 6x6 " + q(dir / "six.csv"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliData, CheckReportsBadRows) {
  const fs::path dir = test::temp_dir("cli_data");
  const fs::path bad = dir / "bad.csv";
  const std::string a = "583427169974136528216859374792364851351298746648715293865971432137642985429583617";
  std::string wrong = a;
  std::swap(wrong[1], wrong[2]);
  const std::string blanks(81, '.');
  test::write_file(bad, "source,question,answer,rating\ns," + a + "," + a + ",0\ns," + blanks + "," + wrong +
                            ",0\ns,123,456,0\n");
  auto r = run_eqr("data check " + q(bad));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.csv:3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'answer'"), std::string::npos) << r.err;
  r = run_eqr("data check --skip-invalid " + q(bad));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("answer_invalid 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("question_length 1"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("2 bad rows"), std::string::npos) << r.err;
}

TEST(CliData, InspectOverlapSolve) {
  const fs::path dir = test::temp_dir("cli_data");
  const fs::path a = dir / "a.csv", b = dir / "b.csv";
  ASSERT_EQ(run_eqr("data generate --count 5 --seed 8 --out " + q(a)).exit_code, 0);
  auto r = run_eqr("data inspect --examples 2 " + q(a));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("eqr-gen"), std::string::npos);
  EXPECT_NE(r.out.find("givens:"), std::string::npos);
  EXPECT_NE(r.out.find("rating:"), std::string::npos);
  EXPECT_NE(r.out.find("------+-------+------"), std::string::npos) << r.out;

  // B = two transformed copies of A's puzzles and one new puzzle.
  const SudokuSet set = read_sudoku_csv(a.string());
  std::mt19937_64 rng(5);
  std::vector<SudokuRow> rows;
  for (int i : {0, 3}) {
    const Symmetry s = random_symmetry(set.geom, rng);
    rows.push_back({"t", format_grid(apply_symmetry(parse_grid(set.rows[i].question, set.geom), set.geom, s), set.geom),
                    format_grid(apply_symmetry(parse_grid(set.rows[i].answer, set.geom), set.geom, s), set.geom), 0,
                    0});
  }
  ASSERT_EQ(run_eqr("data generate --count 1 --seed 99 --out " + q(dir / "new.csv")).exit_code, 0);
  rows.push_back(read_sudoku_csv((dir / "new.csv").string()).rows[0]);
  write_sudoku_csv(b.string(), rows);
  r = run_eqr("data overlap " + q(a) + " " + q(b));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"b_equivalent_in_a\":2"), std::string::npos) << r.out;

  r = run_eqr("data solve-exact " + set.rows[0].question);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(set.rows[0].answer), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exactly 1"), std::string::npos) << r.out;
  r = run_eqr("data solve-exact --file " + q(a) + " --out " + q(dir / "rated.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_sudoku_csv((dir / "rated.csv").string()).rows[0].rating, set.rows[0].rating);
}

TEST(CliData, UsageErrorsExitTwo) {
  const fs::path dir = test::temp_dir("cli_data");
  EXPECT_EQ(run_eqr("data generate --geometry 7x7 --out " + q(dir / "x.csv")).exit_code, 2);
  EXPECT_EQ(run_eqr("data generate --count 2 --min-givens 30 --max-givens 20 --out " + q(dir / "x.csv")).exit_code,
            2);
  EXPECT_EQ(run_eqr("data").exit_code, 2);
}

TEST(CliData, Benchmarks) {
  auto r = run_eqr("bench csv --rows 3000");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"rows\":3000"), std::string::npos) << r.out;
  const fs::path top95 = test::shared_dir() / "data/external/norvig_top95_hardest/top95.csv";
  if (fs::exists(top95)) {
    r = run_eqr("bench solver --file " + q(top95));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("95 puzzles, all solutions equal the answers, 95 unique"), std::string::npos) << r.out;
  }
  r = run_eqr("bench generator --count 4 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"puzzles\":4"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace eqr::sudoku
