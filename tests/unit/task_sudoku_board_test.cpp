// Board geometry, grid strings, token ids and grid validity.

#include <gtest/gtest.h>

#include "eqr/core/error.h"
#include "eqr/task/sudoku/board.h"

namespace eqr::sudoku {
namespace {

const char* kQuestion = "5...27..9..41......1..5.3...92.6.8...5......66..7..29.8...7...2.......8...9..36..";
const char* kAnswer = "583427169974136528216859374792364851351298746648715293865971432137642985429583617";

TEST(DataBoard, GeometryShapes) {
  EXPECT_EQ(Geometry::from_side(4), (Geometry{2, 2}));
  EXPECT_EQ(Geometry::from_side(6), (Geometry{2, 3}));
  EXPECT_EQ(Geometry::from_side(9), (Geometry{3, 3}));
  EXPECT_EQ(Geometry::from_side(16), (Geometry{4, 4}));
  EXPECT_THROW(Geometry::from_side(8), UsageError);
  const Geometry g9;
  EXPECT_EQ(g9.n(), 9);
  EXPECT_EQ(g9.cells(), 81);
  EXPECT_EQ(g9.vocab(), 11);  // reference V = 11
  EXPECT_EQ(g9.name(), "9x9");
  const Geometry g6 = Geometry::from_side(6);
  EXPECT_EQ(g6.bands(), 3);   // 3 bands of 2 rows
  EXPECT_EQ(g6.stacks(), 2);  // 2 stacks of 3 columns
  EXPECT_EQ(g6.box_of(0, 0), 0);
  EXPECT_EQ(g6.box_of(0, 3), 1);
  EXPECT_EQ(g6.box_of(2, 2), 2);
  EXPECT_EQ(g6.box_of(5, 5), 5);
  EXPECT_EQ(Geometry{}.box_of(4, 7), 5);
}

TEST(DataBoard, ParseSpecs) {
  EXPECT_EQ(Geometry::parse_side("9x9"), Geometry::from_side(9));
  EXPECT_EQ(Geometry::parse_side("16"), Geometry::from_side(16));
  EXPECT_EQ(Geometry::parse_box("2x3"), (Geometry{2, 3}));
  EXPECT_EQ(Geometry::parse_box("2x4").n(), 8);
  EXPECT_THROW(Geometry::parse_side("9x8"), UsageError);
  EXPECT_THROW(Geometry::parse_side("nine"), UsageError);
  EXPECT_THROW(Geometry::parse_box("3x"), UsageError);
  EXPECT_THROW(Geometry::parse_box("5x5"), UsageError);  // side 25 > 16
}

TEST(DataBoard, ParseFormatRoundTrip) {
  const Geometry g;
  const Grid q = parse_grid(kQuestion, g);
  ASSERT_EQ(q.size(), 81u);
  EXPECT_EQ(q[0], 5);
  EXPECT_EQ(q[1], 0);
  EXPECT_EQ(q[80], 0);
  EXPECT_EQ(q[77], 3);
  EXPECT_EQ(q[8], 9);
  EXPECT_EQ(format_grid(q, g), kQuestion);
  EXPECT_EQ(count_givens(q), 26);
  // '0' is a blank too and formats back as '.'.
  std::string zeros = kQuestion;
  for (auto& c : zeros) c = c == '.' ? '0' : c;
  EXPECT_EQ(parse_grid(zeros, g), q);
}

TEST(DataBoard, SixteenUsesLetters) {
  const Geometry g = Geometry::from_side(16);
  std::string s(256, '.');
  s[0] = 'A';
  s[1] = 'G';
  s[2] = '9';
  const Grid v = parse_grid(s, g);
  EXPECT_EQ(v[0], 10);
  EXPECT_EQ(v[1], 16);
  EXPECT_EQ(v[2], 9);
  EXPECT_EQ(format_grid(v, g), s);
  s[3] = 'H';  // 17 > 16
  EXPECT_THROW(parse_grid(s, g), DataError);
}

TEST(DataBoard, ParseRejectsBadInput) {
  const Geometry g;
  EXPECT_THROW(parse_grid(std::string(80, '.'), g), DataError);
  std::string bad(81, '.');
  bad[40] = 'x';
  try {
    parse_grid(bad, g);
    FAIL() << "no throw";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("position 41"), std::string::npos) << e.what();
  }
  bad[40] = 'A';  // 10 > 9
  EXPECT_THROW(parse_grid(bad, g), DataError);
}

TEST(DataBoard, TokenIdsFollowReference) {
  const Grid v{0, 1, 9, 5};
  const auto ids = to_token_ids(v);
  EXPECT_EQ(ids, (std::vector<uint8_t>{kBlankId, 2, 10, 6}));
  EXPECT_EQ(from_token_ids(ids), v);
  EXPECT_THROW(from_token_ids({kPadId}), DataError);
}

TEST(DataBoard, PrettyGridDrawsBoxes) {
  const Geometry g = Geometry::from_side(4);
  const Grid v = parse_grid("1..4..3..2......", g);
  EXPECT_EQ(pretty_grid(v, g),
            " 1 . | . 4\n"
            " . . | 3 .\n"
            "-----+----\n"
            " . 2 | . .\n"
            " . . | . .\n");
}

TEST(DataBoard, SolutionValidity) {
  const Geometry g;
  const Grid a = parse_grid(kAnswer, g);
  EXPECT_TRUE(is_valid_solution(a, g));
  EXPECT_EQ(first_given_mismatch(parse_grid(kQuestion, g), a), -1);
  Grid swapped = a;
  std::swap(swapped[0], swapped[1]);  // rows stay permutations; columns 1 and 2 now repeat
  EXPECT_NE(solution_problem(swapped, g).find("column"), std::string::npos) << solution_problem(swapped, g);
  Grid blank = a;
  blank[10] = 0;
  EXPECT_NE(solution_problem(blank, g).find("blank"), std::string::npos);
  EXPECT_TRUE(conflict_problem(blank, g).empty());
  Grid q = parse_grid(kQuestion, g);
  q[1] = 3;  // given disagrees with the answer's 8
  EXPECT_EQ(first_given_mismatch(q, a), 1);
  q[1] = 5;  // repeats the 5 of cell 0 in row 1
  EXPECT_NE(conflict_problem(q, g).find("row 1"), std::string::npos) << conflict_problem(q, g);
}

}  // namespace
}  // namespace eqr::sudoku
