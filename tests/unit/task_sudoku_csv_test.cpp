// Sudoku-Extreme CSV reader/writer: header, row checks with line numbers, skip-and-count, rating filter.

#include <gtest/gtest.h>

#include "eqr/core/error.h"
#include "eqr/task/sudoku/csv.h"
#include "test_support.h"

namespace eqr::sudoku {
namespace {

const std::string kQ = "5...27..9..41......1..5.3...92.6.8...5......66..7..29.8...7...2.......8...9..36..";
const std::string kA = "583427169974136528216859374792364851351298746648715293865971432137642985429583617";
const std::string kHeader = "source,question,answer,rating\n";

std::string row(const std::string& source, const std::string& q, const std::string& a, const std::string& rating) {
  return source + "," + q + "," + a + "," + rating + "\n";
}

// Expects parse_sudoku_csv(text) to throw a DataError containing every fragment.
void expect_error(const std::string& text, const std::vector<std::string>& fragments) {
  try {
    parse_sudoku_csv(text, "t.csv");
    FAIL() << "no DataError for:\n" << text;
  } catch (const DataError& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(DataCsv, ReadsRows) {
  const std::string text = kHeader + row("puzzles4_forum_hardest_1905", kQ, kA, "18") + row("x", kA, kA, "-1");
  const SudokuSet set = parse_sudoku_csv(text, "t.csv");
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.rows[0].source, "puzzles4_forum_hardest_1905");
  EXPECT_EQ(set.rows[0].question, kQ);
  EXPECT_EQ(set.rows[0].answer, kA);
  EXPECT_EQ(set.rows[0].rating, 18);
  EXPECT_EQ(set.rows[0].line, 2);
  EXPECT_EQ(set.rows[1].rating, -1);
  EXPECT_EQ(set.rows[1].line, 3);
  EXPECT_EQ(set.report.rows_read, 2);
  EXPECT_EQ(set.report.rows_kept, 2);
}

TEST(DataCsv, ToleratesCrlfBomAndMissingFinalNewline) {
  std::string text = "\xEF\xBB\xBF" "source,question,answer,rating\r\n" + row("s", kQ, kA, "3");
  text.pop_back();
  text += "\r\n" + row("s", kQ, kA, "4");
  text.pop_back();  // no final newline
  const SudokuSet set = parse_sudoku_csv(text, "t.csv");
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.rows[0].rating, 3);
  EXPECT_EQ(set.rows[1].rating, 4);
}

TEST(DataCsv, RejectsBadHeader) {
  expect_error("source,question,answer\n" + row("s", kQ, kA, "1"), {"t.csv:1", "header"});
  expect_error("", {"empty file"});
}

TEST(DataCsv, RejectsBadRowsWithLineAndColumn) {
  const std::string good = row("s", kQ, kA, "1");
  expect_error(kHeader + good + "s," + kQ + "," + kA + "\n", {"t.csv:3", "3 fields"});
  expect_error(kHeader + good + good + row("s", kQ.substr(1), kA, "1"), {"t.csv:4", "'question'", "80 characters"});
  std::string q = kQ;
  q[5] = 'x';
  expect_error(kHeader + row("s", q, kA, "1"), {"t.csv:2", "'question'", "'x'", "cell 6"});
  std::string a = kA;
  a[10] = '.';
  expect_error(kHeader + row("s", kQ, a, "1"), {"t.csv:2", "'answer'", "cell 11"});
  a = kA;
  std::swap(a[1], a[2]);  // still a digit string, but columns 2 and 3 now repeat digits
  expect_error(kHeader + row("s", kQ, a, "1"), {"t.csv:2", "'answer'", "not a valid solution"});
  q = kQ;
  q[0] = '6';  // answer says 5
  expect_error(kHeader + row("s", q, kA, "1"), {"t.csv:2", "given '6' at cell 1", "disagrees"});
  expect_error(kHeader + row("s", kQ, kA, "1.5"), {"t.csv:2", "'rating'", "not an integer"});
  expect_error(kHeader + good + "\n" + good, {"t.csv:3", "empty line"});
}

TEST(DataCsv, SkipInvalidCountsEachKind) {
  std::string bad_given = kQ, bad_answer = kA;
  bad_given[0] = '6';
  std::swap(bad_answer[1], bad_answer[2]);  // both blanks in kQ
  const std::string text = kHeader + row("s", kQ, kA, "1") + row("s", bad_given, kA, "1") +
                           row("s", kQ, bad_answer, "1") + row("s", kQ, bad_answer, "1") + "junk\n" +
                           row("s", kQ, kA, "x") + row("s", kQ, kA, "7");
  CsvOptions opts;
  opts.skip_invalid = true;
  const SudokuSet set = parse_sudoku_csv(text, "t.csv", opts);
  EXPECT_EQ(set.size(), 2u);
  const CsvReport& r = set.report;
  EXPECT_EQ(r.rows_read, 7);
  EXPECT_EQ(r.rows_invalid, 5);
  EXPECT_EQ(r.rows_kept + r.rows_invalid + r.rows_below_rating, r.rows_read);
  EXPECT_EQ(r.defects[static_cast<int>(CsvDefect::kGivenMismatch)], 1);
  EXPECT_EQ(r.defects[static_cast<int>(CsvDefect::kAnswerInvalid)], 2);
  EXPECT_EQ(r.defects[static_cast<int>(CsvDefect::kFieldCount)], 1);
  EXPECT_EQ(r.defects[static_cast<int>(CsvDefect::kRating)], 1);
  ASSERT_EQ(r.examples.size(), 5u);
  EXPECT_NE(r.examples[0].find("t.csv:3"), std::string::npos) << r.examples[0];
  EXPECT_NE(r.summary().find("answer_invalid 2"), std::string::npos) << r.summary();
  EXPECT_EQ(set.rows[1].line, 8);
}

TEST(DataCsv, MinRatingAndMaxRows) {
  const std::string text = kHeader + row("s", kQ, kA, "0") + row("s", kQ, kA, "5") + row("s", kQ, kA, "20") +
                           row("s", kQ, kA, "6");
  CsvOptions opts;
  opts.min_rating = 5;
  const SudokuSet set = parse_sudoku_csv(text, "t.csv", opts);
  ASSERT_EQ(set.size(), 3u);
  EXPECT_EQ(set.rows[0].rating, 5);
  EXPECT_EQ(set.report.rows_below_rating, 1);
  opts.max_rows = 2;
  EXPECT_EQ(parse_sudoku_csv(text, "t.csv", opts).size(), 2u);
}

TEST(DataCsv, OtherGeometries) {
  CsvOptions opts;
  opts.geom = Geometry::from_side(4);
  const std::string text = kHeader + row("s", "1..4..1..1......", "1234341221434321", "0");
  const SudokuSet set = parse_sudoku_csv(text, "t.csv", opts);
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set.geom.n(), 4);
  expect_error(text, {"'question'", "16 characters; expected 81"});  // default 9x9
}

TEST(DataCsv, WriteReadRoundTrip) {
  const auto dir = test::temp_dir("csv");
  const std::string path = (dir / "rows.csv").string();
  const std::vector<SudokuRow> rows{{"a", kQ, kA, 18, 0}, {"b", kA, kA, -1, 0}};
  write_sudoku_csv(path, rows);
  EXPECT_EQ(test::read_file(path), kHeader + row("a", kQ, kA, "18") + row("b", kA, kA, "-1"));
  const SudokuSet set = read_sudoku_csv(path);
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.rows[1].source, "b");
  EXPECT_EQ(set.rows[1].rating, -1);
  EXPECT_THROW(write_sudoku_csv(path, {{"a,b", kQ, kA, 0, 0}}), DataError);
  EXPECT_THROW(read_sudoku_csv((dir / "missing.csv").string()), DataError);
}

TEST(DataCsv, VisitMatchesParse) {
  const std::string text = kHeader + row("s", kQ, kA, "1") + row("t", kA, kA, "2");
  std::vector<std::string> sources;
  const CsvReport r = visit_sudoku_csv(text, "t.csv", {}, [&](const SudokuRowView& v) {
    sources.emplace_back(v.source);
  });
  EXPECT_EQ(sources, (std::vector<std::string>{"s", "t"}));
  EXPECT_EQ(r.rows_kept, 2);
}

}  // namespace
}  // namespace eqr::sudoku
