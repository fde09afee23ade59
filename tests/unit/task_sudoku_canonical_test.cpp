// Canonical form under the Sudoku symmetry group: invariance, exactness against brute force, distinctness.

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "eqr/core/error.h"
#include "eqr/task/sudoku/canonical.h"
#include "eqr/task/sudoku/generator.h"

namespace eqr::sudoku {
namespace {

const char* kQ = "5...27..9..41......1..5.3...92.6.8...5......66..7..29.8...7...2.......8...9..36..";

// Every permutation of n indices that keeps blocks of `width` together.
std::vector<std::vector<int>> block_perms(int n, int width) {
  const int groups = n / width;
  std::vector<std::vector<int>> out;
  std::vector<int> order(groups);
  std::iota(order.begin(), order.end(), 0);
  do {
    std::vector<std::vector<int>> inner(groups, std::vector<int>(width));
    for (auto& v : inner) std::iota(v.begin(), v.end(), 0);
    for (;;) {
      std::vector<int> p;
      for (int g = 0; g < groups; ++g) {
        for (int k : inner[g]) p.push_back(order[g] * width + k);
      }
      out.push_back(p);
      int g = groups - 1;
      while (g >= 0 && !std::next_permutation(inner[g].begin(), inner[g].end())) --g;
      if (g < 0) break;
    }
  } while (std::next_permutation(order.begin(), order.end()));
  return out;
}

// Minimum over the whole group by brute force (relabelling by first appearance, early exit per transform).
std::string brute_force_canonical(const Grid& grid, const Geometry& g) {
  const int n = g.n();
  const auto rows = block_perms(n, g.box_rows), cols = block_perms(n, g.box_cols);
  std::vector<uint8_t> best(g.cells(), 255), cur(g.cells());
  for (int t = 0; t < (g.box_rows == g.box_cols ? 2 : 1); ++t) {
    for (const auto& rp : rows) {
      for (const auto& cp : cols) {
        uint8_t map[kMaxSide + 1] = {};
        uint8_t next = 1;
        bool smaller = false, larger = false;
        for (int i = 0; i < g.cells() && !larger; ++i) {
          const int r = rp[i / n], c = cp[i % n];
          const int v = t ? grid[c * n + r] : grid[r * n + c];
          if (v && !map[v]) map[v] = next++;
          cur[i] = v ? map[v] : 0;
          if (!smaller) {
            if (cur[i] > best[i]) larger = true;
            if (cur[i] < best[i]) smaller = true;
          }
        }
        if (smaller) best = cur;
      }
    }
  }
  return format_grid(Grid(best.begin(), best.end()), g);
}

TEST(DataCanonical, SymmetryApplyChecksAndComposes) {
  const Geometry g;
  const Grid q = parse_grid(kQ, g);
  EXPECT_EQ(apply_symmetry(q, g, identity_symmetry(g)), q);
  Symmetry bad = identity_symmetry(g);
  std::swap(bad.row_perm[2], bad.row_perm[3]);  // mixes bands 1 and 2
  EXPECT_THROW(apply_symmetry(q, g, bad), UsageError);
  bad = identity_symmetry(g);
  bad.digit_map[1] = 2;  // not a permutation
  EXPECT_THROW(apply_symmetry(q, g, bad), UsageError);
  Symmetry tr = identity_symmetry(Geometry{2, 3});
  tr.transpose = true;  // 2x3 boxes become 3x2: not a symmetry
  EXPECT_THROW(apply_symmetry(Grid(36, 0), Geometry{2, 3}, tr), UsageError);
  // Hand-checked: transpose moves cell (0, 4) = '2' to (4, 0).
  Symmetry t = identity_symmetry(g);
  t.transpose = true;
  EXPECT_EQ(apply_symmetry(q, g, t)[4 * 9 + 0], 2);
}

TEST(DataCanonical, InvariantUnderRandomTransforms) {
  const Geometry g;
  const Canonicalizer canon(g);
  const Grid q = parse_grid(kQ, g);
  const std::string form = canon.canonical(q);
  std::mt19937_64 rng(123);
  for (int k = 0; k < 20; ++k) {
    EXPECT_EQ(canon.canonical(apply_symmetry(q, g, random_symmetry(g, rng))), form);
  }
  // The form is an equivalent puzzle: same number of givens, and its own canonical form.
  EXPECT_EQ(count_givens(parse_grid(form, g)), count_givens(q));
  EXPECT_EQ(canon.canonical(parse_grid(form, g)), form);
  EXPECT_LE(form, format_grid(q, g));
  // A 90-degree rotation is in the group (transpose + column reversal).
  Grid rotated(81);
  for (int r = 0; r < 9; ++r) {
    for (int c = 0; c < 9; ++c) rotated[c * 9 + (8 - r)] = q[r * 9 + c];
  }
  EXPECT_EQ(canon.canonical(rotated), form);
}

TEST(DataCanonical, MatchesBruteForce) {
  std::mt19937_64 rng(9);
  for (Geometry g : {Geometry{2, 2}, Geometry{2, 3}, Geometry{3, 2}}) {
    GeneratorOptions opts;
    opts.geom = g;
    opts.count = 4;
    opts.threads = 1;
    for (const auto& r : generate_puzzles(opts)) {
      const Grid q = parse_grid(r.question, g);
      EXPECT_EQ(canonical_form(q, g), brute_force_canonical(q, g)) << g.name() << " " << r.question;
      EXPECT_EQ(canonical_form(apply_symmetry(q, g, random_symmetry(g, rng)), g), canonical_form(q, g));
    }
  }
  // 9x9: one puzzle over all 3,359,232 cell permutations.
  const Geometry g9;
  EXPECT_EQ(canonical_form(parse_grid(kQ, g9), g9), brute_force_canonical(parse_grid(kQ, g9), g9));
}

TEST(DataCanonical, DifferentPuzzlesDiffer) {
  GeneratorOptions opts;
  opts.count = 12;
  opts.seed = 4;
  opts.max_givens = 25;
  opts.min_givens = 25;  // same clue count, so only the structure can tell them apart
  opts.threads = 2;
  const auto rows = generate_puzzles(opts);
  std::vector<std::string> questions;
  for (const auto& r : rows) questions.push_back(r.question);
  const auto forms = canonical_forms(questions, opts.geom, 2);
  EXPECT_EQ(std::set<std::string>(forms.begin(), forms.end()).size(), forms.size());
  // One given moved to another digit makes another puzzle class.
  Grid q = parse_grid(kQ, opts.geom), changed = q;
  changed[0] = 3;  // 5 -> 3: no other 3 in row 1, column 1 or box 1
  EXPECT_NE(canonical_form(changed, opts.geom), canonical_form(q, opts.geom));
}

TEST(DataCanonical, RefusesHugeGroups) {
  EXPECT_THROW(Canonicalizer(Geometry::from_side(16)), UsageError);
}

}  // namespace
}  // namespace eqr::sudoku
