#include "eqr/task/sudoku/canonical.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "eqr/core/error.h"
#include "eqr/core/parallel.h"
#include "eqr/task/sudoku/generator.h"

namespace eqr::sudoku {

namespace {

constexpr size_t kMaxColPerms = 200000;

// Permutation of `groups` blocks of `width` indices: blocks reordered, and indices shuffled inside each block.
std::vector<int> random_block_perm(int groups, int width, std::mt19937_64& rng) {
  std::vector<int> order(groups), perm;
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  for (int g : order) {
    std::vector<int> inner(width);
    std::iota(inner.begin(), inner.end(), g * width);
    std::shuffle(inner.begin(), inner.end(), rng);
    perm.insert(perm.end(), inner.begin(), inner.end());
  }
  return perm;
}

// True if `perm` keeps blocks of `width` together (a band/stack reordering plus moves inside blocks).
bool is_block_perm(const std::vector<int>& perm, int n, int width) {
  if (static_cast<int>(perm.size()) != n) return false;
  std::vector<int> seen(n, 0);
  for (int i = 0; i < n; ++i) {
    if (perm[i] < 0 || perm[i] >= n || seen[perm[i]]++) return false;
    if (perm[i] / width != perm[i - i % width] / width) return false;
  }
  return true;
}

// One survivor of the search: a transform fixed up to the output rows chosen so far.
struct Node {
  uint32_t col_perm;  // index into the column permutation table
  uint16_t used_rows;  // original rows already placed (bit r)
  uint8_t transpose;
  uint8_t band;        // band of the last placed row
  uint8_t next_label;  // next digit label to hand out
  uint8_t map[kMaxSide + 1];  // original digit -> label (0 = not yet seen)
};

}  // namespace

Symmetry identity_symmetry(const Geometry& geom) {
  Symmetry s;
  s.row_perm.resize(geom.n());
  s.col_perm.resize(geom.n());
  s.digit_map.resize(geom.n() + 1);
  std::iota(s.row_perm.begin(), s.row_perm.end(), 0);
  std::iota(s.col_perm.begin(), s.col_perm.end(), 0);
  std::iota(s.digit_map.begin(), s.digit_map.end(), 0);
  return s;
}

Symmetry random_symmetry(const Geometry& geom, std::mt19937_64& rng) {
  Symmetry s = identity_symmetry(geom);
  s.transpose = geom.box_rows == geom.box_cols && (rng() & 1);
  s.row_perm = random_block_perm(geom.bands(), geom.box_rows, rng);
  s.col_perm = random_block_perm(geom.stacks(), geom.box_cols, rng);
  std::shuffle(s.digit_map.begin() + 1, s.digit_map.end(), rng);
  return s;
}

Grid apply_symmetry(const Grid& grid, const Geometry& geom, const Symmetry& sym) {
  const int n = geom.n();
  EQR_CHECK(static_cast<int>(grid.size()) == geom.cells(), UsageError, "apply_symmetry: grid has ", grid.size(),
            " cells; expected ", geom.cells());
  EQR_CHECK(!sym.transpose || geom.box_rows == geom.box_cols, UsageError,
            "apply_symmetry: transpose needs square boxes; got ", geom.box_rows, "x", geom.box_cols);
  EQR_CHECK(is_block_perm(sym.row_perm, n, geom.box_rows) && is_block_perm(sym.col_perm, n, geom.box_cols),
            UsageError, "apply_symmetry: row/column permutation does not keep bands/stacks together");
  std::vector<int> seen(n + 1, 0);
  bool map_ok = static_cast<int>(sym.digit_map.size()) == n + 1 && sym.digit_map[0] == 0;
  for (size_t d = 1; map_ok && d < sym.digit_map.size(); ++d) {
    map_ok = sym.digit_map[d] >= 1 && sym.digit_map[d] <= n && !seen[sym.digit_map[d]]++;
  }
  EQR_CHECK(map_ok, UsageError, "apply_symmetry: digit map is not a permutation of 1..", n, " with 0 fixed");
  Grid out(grid.size());
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < n; ++c) {
      const int sr = sym.row_perm[r], sc = sym.col_perm[c];
      const int v = sym.transpose ? grid[sc * n + sr] : grid[sr * n + sc];
      out[r * n + c] = sym.digit_map[v];
    }
  }
  return out;
}

Canonicalizer::Canonicalizer(const Geometry& geom) : geom_(geom) {
  const int stacks = geom.stacks(), width = geom.box_cols;
  auto factorial = [](int k) {
    size_t f = 1;
    for (int i = 2; i <= k; ++i) f *= static_cast<size_t>(i);
    return f;
  };
  size_t total = factorial(stacks);
  for (int s = 0; s < stacks && total <= kMaxColPerms; ++s) total *= factorial(width);
  EQR_CHECK(total <= kMaxColPerms, UsageError, "canonical form: ", geom.name(), " with ", geom.box_rows, "x",
            geom.box_cols, " boxes has too many column permutations (> ", kMaxColPerms,
            "); supported up to 9x9 and boards of similar size");
  // Every stack order, and within it every column order of each stack (odometer over stack perms).
  std::vector<int> stack_order(stacks);
  std::iota(stack_order.begin(), stack_order.end(), 0);
  do {
    std::vector<std::vector<int>> inner(stacks, std::vector<int>(width));
    for (auto& v : inner) std::iota(v.begin(), v.end(), 0);
    for (;;) {
      std::vector<uint8_t> perm;
      for (int s = 0; s < stacks; ++s) {
        for (int k : inner[s]) perm.push_back(static_cast<uint8_t>(stack_order[s] * width + k));
      }
      col_perms_.push_back(std::move(perm));
      int s = stacks - 1;
      while (s >= 0 && !std::next_permutation(inner[s].begin(), inner[s].end())) --s;
      if (s < 0) break;
    }
  } while (std::next_permutation(stack_order.begin(), stack_order.end()));
}

std::string Canonicalizer::canonical(const Grid& puzzle) const {
  const Geometry& g = geom_;
  const int n = g.n();
  EQR_CHECK(static_cast<int>(puzzle.size()) == g.cells(), DataError, "canonical form: grid has ", puzzle.size(),
            " cells; expected ", g.cells());
  // views[t]: the grid, and (square boxes only) its transpose.
  std::vector<Grid> views{puzzle};
  if (g.box_rows == g.box_cols) {
    Grid t(puzzle.size());
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c) t[c * n + r] = puzzle[r * n + c];
    }
    views.push_back(std::move(t));
  }

  Grid best_rows;  // the minimal output so far, row by row
  uint8_t best[kMaxSide], row[kMaxSide];
  std::vector<Node> nodes, next;

  // Output row of `node` extended with original row `r`; writes row[] and the updated node to `out`.
  // Returns -1 / 0 / +1 as the row compares with best[] (stops early once it is larger).
  auto extend = [&](const Node& node, int r, bool have_best, Node& out) {
    out = node;
    const uint8_t* src = &views[node.transpose][static_cast<size_t>(r) * n];
    const uint8_t* perm = col_perms_[node.col_perm].data();
    int cmp = have_best ? 0 : -1;
    for (int k = 0; k < n; ++k) {
      const int v = src[perm[k]];
      uint8_t label = 0;
      if (v) {
        if (!out.map[v]) out.map[v] = out.next_label++;
        label = out.map[v];
      }
      row[k] = label;
      if (cmp == 0) {
        if (label > best[k]) return 1;
        if (label < best[k]) cmp = -1;
      }
    }
    return cmp;
  };
  auto keep = [&](int cmp, const Node& child) {
    if (cmp > 0) return;
    if (cmp < 0) {
      next.clear();
      std::memcpy(best, row, n);
    }
    next.push_back(child);
  };

  // Level 0: every transpose, first row and column permutation.
  Node root{};
  root.next_label = 1;
  for (size_t t = 0; t < views.size(); ++t) {
    for (int r = 0; r < n; ++r) {
      for (size_t p = 0; p < col_perms_.size(); ++p) {
        root.transpose = static_cast<uint8_t>(t);
        root.col_perm = static_cast<uint32_t>(p);
        root.used_rows = static_cast<uint16_t>(1u << r);
        root.band = static_cast<uint8_t>(r / g.box_rows);
        Node child;
        keep(extend(root, r, !next.empty(), child), child);
      }
    }
  }
  best_rows.insert(best_rows.end(), best, best + n);

  // Levels 1..n-1: the rest of the current band, or the first row of any unused band.
  for (int level = 1; level < n; ++level) {
    nodes.swap(next);
    next.clear();
    const bool new_band = level % g.box_rows == 0;
    const uint32_t band_mask = (1u << g.box_rows) - 1;
    for (const Node& node : nodes) {
      for (int r = 0; r < n; ++r) {
        if (node.used_rows & (1u << r)) continue;
        const int band = r / g.box_rows;
        if (!new_band && band != node.band) continue;
        if (new_band && (node.used_rows >> (band * g.box_rows)) & band_mask) continue;  // band already placed
        Node child;
        const int cmp = extend(node, r, !next.empty(), child);
        child.used_rows = static_cast<uint16_t>(node.used_rows | (1u << r));
        child.band = static_cast<uint8_t>(band);
        keep(cmp, child);
      }
    }
    best_rows.insert(best_rows.end(), best, best + n);
  }
  return format_grid(best_rows, g);
}

std::string canonical_form(const Grid& puzzle, const Geometry& geom) { return Canonicalizer(geom).canonical(puzzle); }

std::vector<std::string> canonical_forms(const std::vector<std::string>& grids, const Geometry& geom, int threads,
                                         const std::function<void(int64_t done)>& progress) {
  const Canonicalizer canon(geom);
  std::vector<std::string> out(grids.size());
  parallel_for(
      static_cast<int64_t>(grids.size()), threads,
      [&](int64_t i) { out[i] = canon.canonical(parse_grid(grids[i], geom)); }, progress);
  return out;
}

}  // namespace eqr::sudoku
