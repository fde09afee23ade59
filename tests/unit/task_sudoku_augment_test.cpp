// numpy's legacy RNG and shuffle_sudoku against numpy itself (tests/fixtures/numpy/{draws,augment}.json,
// written by make_fixtures.py), plus validity on every geometry and a hand-applied transform.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/core/error.h"
#include "eqr/task/sudoku/augment.h"
#include "eqr/task/sudoku/board.h"
#include "eqr/core/numpy_random.h"
#include "test_support.h"

namespace eqr::sudoku {
namespace {

nlohmann::json load_fixture(const std::string& name) {
  std::ifstream in(test::source_dir() / "tests/fixtures/numpy" / name);
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::json::parse(in);
}

double from_hex(const nlohmann::json& j) { return std::strtod(j.get<std::string>().c_str(), nullptr); }

// A valid solved grid for any box shape: value(r, c) = ((r % br) * bc + r / br + c) % n + 1.
Grid pattern_solution(const Geometry& g) {
  const int n = g.n();
  Grid v(static_cast<size_t>(n * n));
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < n; ++c) v[r * n + c] = static_cast<uint8_t>(((r % g.box_rows) * g.box_cols + r / g.box_rows + c) % n + 1);
  }
  return v;
}

TEST(DataNumpyRandom, MatchesNumpyDraws) {
  const nlohmann::json fx = load_fixture("draws.json");
  for (const auto& rec : fx["seeds"]) {
    const auto seed = rec["seed"].get<uint32_t>();
    SCOPED_TRACE("seed " + std::to_string(seed));
    NumpyRandomState rng(seed);
    const nlohmann::json st = rng.state();
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(st["key"][i].get<uint32_t>(), rec["key_head"][i].get<uint32_t>());
    EXPECT_EQ(st["pos"].get<int>(), 624);
    for (const auto& r : rec["rand"]) EXPECT_EQ(rng.random_sample(), from_hex(r));  // bit-exact doubles
    for (const int n : {1, 2, 3, 9, 10, 100}) {
      EXPECT_EQ(rng.permutation(n), rec["permutations"][std::to_string(n)].get<std::vector<int64_t>>()) << "n " << n;
    }
    EXPECT_EQ(rng.choice_without_replacement(1000, 10), rec["choice_1000_10"].get<std::vector<int64_t>>());
    EXPECT_EQ(rng.random_sample(), from_hex(rec["rand_after"]));
  }
}

TEST(DataNumpyRandom, ReproducesThePaperSubsample) {
  // np.random.seed(42); np.random.choice(3831994, 1000, replace=False): the reference's 1k subsample of a
  // 3,831,994-row train.csv (the whole permutation is drawn, so the state after it must match too).
  const nlohmann::json fx = load_fixture("draws.json")["paper_subsample"];
  NumpyRandomState rng(fx["seed"].get<uint32_t>());
  EXPECT_EQ(rng.choice_without_replacement(fx["n"].get<int64_t>(), fx["k"].get<int64_t>()),
            fx["indices"].get<std::vector<int64_t>>());
  EXPECT_EQ(rng.random_sample(), from_hex(fx["next_rand"]));
}

TEST(DataNumpyRandom, StateRoundTripAndErrors) {
  NumpyRandomState a(7);
  a.permutation(50);
  NumpyRandomState b(0);
  b.set_state(a.state());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.next_uint32(), b.next_uint32());
  EXPECT_THROW(b.set_state(nlohmann::json{{"key", {1, 2}}, {"pos", 0}}), DataError);
  EXPECT_THROW(a.choice_without_replacement(3, 4), DataError);
  EXPECT_EQ(a.random_interval(0), 0u);
}

TEST(DataAugment, MatchesNumpyShuffleSudoku) {
  const nlohmann::json fx = load_fixture("augment.json");
  const Geometry g{3, 3};
  const Grid q = parse_grid(fx["question"].get<std::string>(), g);
  const Grid a = parse_grid(fx["answer"].get<std::string>(), g);
  NumpyRandomState rng(fx["seed"].get<uint32_t>());
  int transposed = 0;
  for (const auto& exp : fx["augmentations"]) {
    const SudokuTransform t = draw_sudoku_transform(rng, g);
    EXPECT_EQ(std::vector<int>(t.digit_map.begin(), t.digit_map.end()), exp["digit_map"].get<std::vector<int>>());
    EXPECT_EQ(t.transpose, exp["transpose"].get<bool>());
    EXPECT_EQ(t.row_perm, exp["row_perm"].get<std::vector<int>>());
    EXPECT_EQ(t.col_perm, exp["col_perm"].get<std::vector<int>>());
    EXPECT_EQ(format_grid(t.apply(q, g), g), exp["question"].get<std::string>());
    EXPECT_EQ(format_grid(t.apply(a, g), g), exp["answer"].get<std::string>());
    transposed += t.transpose;
  }
  EXPECT_GT(transposed, 0);  // the fixture exercises both branches
  EXPECT_LT(transposed, 20);
}

TEST(DataAugment, HandAppliedTransform) {
  const Geometry g{3, 3};
  const Grid a = pattern_solution(g);
  SudokuTransform t = identity_transform(g);
  EXPECT_EQ(t.apply(a, g), a);
  t.digit_map = {0, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  t.transpose = true;
  t.row_perm = {3, 5, 4, 0, 1, 2, 8, 6, 7};
  t.col_perm = {6, 7, 8, 2, 1, 0, 3, 4, 5};
  const Grid out = t.apply(a, g);
  // Transposed: out(r, c) = map(a(col_perm[c], row_perm[r])).
  EXPECT_EQ(out[0], 10 - a[6 * 9 + 3]);
  EXPECT_EQ(out[1 * 9 + 4], 10 - a[1 * 9 + 5]);
  EXPECT_EQ(out[8 * 9 + 8], 10 - a[5 * 9 + 7]);
  for (int r = 0; r < 9; ++r) {
    for (int c = 0; c < 9; ++c) ASSERT_EQ(out[r * 9 + c], 10 - a[t.col_perm[c] * 9 + t.row_perm[r]]);
  }
  t.transpose = false;
  const Grid plain = t.apply(a, g);
  EXPECT_EQ(plain[2 * 9 + 3], 10 - a[4 * 9 + 2]);
  // Blanks stay blank; a bad value is rejected.
  Grid q = a;
  q[10] = 0;
  int blanks = 0;
  for (uint8_t v : t.apply(q, g)) blanks += v == 0;
  EXPECT_EQ(blanks, 1);
  q[3] = 10;
  EXPECT_THROW(t.apply(q, g), DataError);
}

TEST(DataAugment, PreservesValidityOnEveryGeometry) {
  for (const Geometry g : {Geometry{2, 2}, Geometry{2, 3}, Geometry{3, 2}, Geometry{3, 3}, Geometry{2, 4},
                           Geometry{4, 4}}) {
    SCOPED_TRACE(g.name() + " boxes " + std::to_string(g.box_rows) + "x" + std::to_string(g.box_cols));
    const Grid answer = pattern_solution(g);
    ASSERT_TRUE(is_valid_solution(answer, g));
    Grid question = answer;
    for (size_t i = 0; i < question.size(); i += 3) question[i] = 0;
    const int givens = count_givens(question);
    NumpyRandomState rng(123);
    std::set<Grid> seen;
    int transposed = 0;
    for (int k = 0; k < 40; ++k) {
      const SudokuTransform t = draw_sudoku_transform(rng, g);
      const Grid qa = t.apply(question, g);
      const Grid aa = t.apply(answer, g);
      ASSERT_TRUE(is_valid_solution(aa, g)) << solution_problem(aa, g);
      ASSERT_EQ(first_given_mismatch(qa, aa), -1);
      ASSERT_EQ(count_givens(qa), givens);
      ASSERT_EQ(t.digit_map[0], 0);
      transposed += t.transpose;
      seen.insert(aa);
    }
    if (g.box_rows != g.box_cols) {
      EXPECT_EQ(transposed, 0);  // a transpose would break non-square boxes
    } else {
      EXPECT_GT(transposed, 0);
    }
    EXPECT_GT(seen.size(), 30u);  // the transforms really vary
  }
}

TEST(DataAugment, ShuffleSudokuAppliesOneTransformToBoth) {
  const Geometry g{3, 3};
  const Grid a = pattern_solution(g);
  Grid q = a;
  for (size_t i = 0; i < q.size(); i += 2) q[i] = 0;
  NumpyRandomState r1(5), r2(5);
  const auto [qa, aa] = shuffle_sudoku(q, a, g, r1);
  const SudokuTransform t = draw_sudoku_transform(r2, g);
  EXPECT_EQ(qa, t.apply(q, g));
  EXPECT_EQ(aa, t.apply(a, g));
  EXPECT_EQ(r1.next_uint32(), r2.next_uint32());  // same number of draws
}

}  // namespace
}  // namespace eqr::sudoku
