// Puzzle generator: unique, minimal, deterministic for a seed whatever the thread count, filters honoured.

#include <gtest/gtest.h>

#include <atomic>

#include "eqr/core/parallel.h"
#include "eqr/core/error.h"
#include "eqr/task/sudoku/generator.h"

namespace eqr::sudoku {
namespace {

GeneratorOptions small(int64_t count, uint64_t seed, int threads) {
  GeneratorOptions o;
  o.count = count;
  o.seed = seed;
  o.threads = threads;
  return o;
}

TEST(DataGenerator, UniqueMinimalAndConsistent) {
  const GeneratorOptions opts = small(6, 11, 2);
  const auto rows = generate_puzzles(opts);
  ASSERT_EQ(rows.size(), 6u);
  const Solver solver(opts.geom);
  for (const auto& r : rows) {
    EXPECT_EQ(r.source, "eqr-gen");
    const Grid q = parse_grid(r.question, opts.geom), a = parse_grid(r.answer, opts.geom);
    EXPECT_TRUE(is_valid_solution(a, opts.geom));
    EXPECT_EQ(first_given_mismatch(q, a), -1);
    Grid solution;
    EXPECT_EQ(solver.count_solutions(q, 2, &solution), 1);
    EXPECT_EQ(solution, a);
    EXPECT_EQ(r.rating, solver.rate(q));
    // Minimal: every single given is needed.
    for (int i = 0; i < opts.geom.cells(); ++i) {
      if (!q[i]) continue;
      Grid fewer = q;
      fewer[i] = 0;
      EXPECT_EQ(solver.count_solutions(fewer, 2), 2) << r.question << " cell " << i;
    }
  }
}

TEST(DataGenerator, DeterministicWhateverTheThreadCount) {
  const auto one = generate_puzzles(small(8, 5, 1));
  const auto three = generate_puzzles(small(8, 5, 3));
  ASSERT_EQ(one.size(), three.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].question, three[i].question);
    EXPECT_EQ(one[i].answer, three[i].answer);
  }
  // Puzzle i does not depend on the count either, and another seed gives other puzzles.
  EXPECT_EQ(generate_puzzles(small(3, 5, 1))[2].question, one[2].question);
  EXPECT_NE(generate_puzzles(small(1, 6, 1))[0].question, one[0].question);
}

TEST(DataGenerator, FiltersAreHonoured) {
  GeneratorOptions opts = small(4, 3, 2);
  opts.min_givens = 32;
  for (const auto& r : generate_puzzles(opts)) EXPECT_GE(count_givens(parse_grid(r.question, opts.geom)), 32);
  opts = small(4, 3, 2);
  opts.max_givens = 23;
  for (const auto& r : generate_puzzles(opts)) EXPECT_LE(count_givens(parse_grid(r.question, opts.geom)), 23);
  opts = small(3, 3, 2);
  opts.min_rating = 2;
  for (const auto& r : generate_puzzles(opts)) EXPECT_GE(r.rating, 2);
}

TEST(DataGenerator, GivesUpWithAClearError) {
  GeneratorOptions opts = small(1, 1, 1);
  opts.max_givens = 17;  // 17-clue puzzles are far too rare to hit in 2 attempts
  opts.max_attempts = 2;
  try {
    generate_puzzles(opts);
    FAIL() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("2 attempts"), std::string::npos) << e.what();
  }
}

TEST(DataGenerator, OtherGeometries) {
  for (int side : {4, 6}) {
    GeneratorOptions opts = small(5, 2, 2);
    opts.geom = Geometry::from_side(side);
    const Solver solver(opts.geom);
    for (const auto& r : generate_puzzles(opts)) {
      EXPECT_EQ(static_cast<int>(r.question.size()), side * side);
      EXPECT_EQ(solver.count_solutions(parse_grid(r.question, opts.geom), 2), 1);
    }
  }
}

TEST(DataGenerator, ValidatesOptions) {
  GeneratorOptions opts;
  opts.count = -1;
  EXPECT_THROW(validate(opts), UsageError);
  opts = GeneratorOptions{};
  opts.min_givens = 30;
  opts.max_givens = 20;
  EXPECT_THROW(validate(opts), UsageError);
  opts = GeneratorOptions{};
  opts.min_givens = 82;
  EXPECT_THROW(validate(opts), UsageError);
  opts = GeneratorOptions{};
  opts.source = "a,b";
  EXPECT_THROW(validate(opts), UsageError);
}

TEST(DataGenerator, ParallelForVisitsEachIndexOnceAndRethrows) {
  std::vector<std::atomic<int>> hits(100);
  parallel_for(100, 3, [&](int64_t i) { ++hits[i]; });
  for (const auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_THROW(parallel_for(50, 2,
                            [](int64_t i) {
                              if (i == 7) throw DataError("seven");
                            }),
               DataError);
}

}  // namespace
}  // namespace eqr::sudoku
