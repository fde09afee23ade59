#include "eqr/task/sudoku/solver.h"

#include <algorithm>
#include <cstring>

#include "eqr/core/error.h"

namespace eqr::sudoku {

namespace {

// Board state of one search node: candidate masks (bit d = digit d possible) and assigned values.
struct State {
  uint32_t cand[kMaxCells];
  uint8_t value[kMaxCells];
  int unsolved;
};

inline int popcount(uint32_t x) { return __builtin_popcount(x); }
inline int lowest_digit(uint32_t x) { return __builtin_ctz(x); }

}  // namespace

// One search over a puzzle; the mode decides when to stop.
class Search {
 public:
  Search(const Solver& s, int limit, std::mt19937_64* rng)
      : s_(s), n_(s.n_), cells_(s.cells_), limit_(limit), rng_(rng), full_((2u << s.n_) - 2u) {}

  // Sets up the root from the givens; false if they already conflict.
  bool init(State& st, const Grid& puzzle) {
    EQR_CHECK(static_cast<int>(puzzle.size()) == cells_, DataError, "puzzle has ", puzzle.size(),
              " cells; expected ", cells_, " for ", s_.geom_.name());
    for (int i = 0; i < cells_; ++i) {
      st.cand[i] = full_;
      st.value[i] = 0;
    }
    st.unsolved = cells_;
    for (int i = 0; i < cells_; ++i) {
      const int v = puzzle[i];
      EQR_CHECK(v <= n_, DataError, "puzzle value ", v, " at cell ", i, " exceeds ", n_);
      if (v && !assign(st, i, v)) return false;
    }
    return propagate(st);
  }

  // Depth-first search from `st` (already propagated). Returns true to stop the whole search.
  bool run(const State& st) {
    if (st.unsolved == 0) {
      ++solutions_;
      if (solutions_ == 1) first_.assign(st.value, st.value + cells_);
      return solutions_ >= limit_;
    }
    // MRV: fewest candidates, lowest index on ties.
    int best = -1, best_count = n_ + 1;
    for (int i = 0; i < cells_; ++i) {
      if (st.value[i]) continue;
      const int c = popcount(st.cand[i]);
      if (c < best_count) {
        best = i;
        best_count = c;
        if (c == 2) break;
      }
    }
    int digits[kMaxSide];
    int k = 0;
    for (uint32_t m = st.cand[best]; m; m &= m - 1) digits[k++] = lowest_digit(m);
    if (rng_) std::shuffle(digits, digits + k, *rng_);
    for (int j = 0; j < k; ++j) {
      ++stats_.guesses;
      State child;
      copy(child, st);
      const int before = solutions_;
      if (assign(child, best, digits[j]) && propagate(child) && run(child)) return true;
      if (solutions_ == before) ++stats_.backtracks;
    }
    return false;
  }

  int solutions() const { return solutions_; }
  const Grid& first() const { return first_; }
  const SearchStats& stats() const { return stats_; }

 private:
  void copy(State& dst, const State& src) const {
    std::memcpy(dst.cand, src.cand, sizeof(uint32_t) * cells_);
    std::memcpy(dst.value, src.value, cells_);
    dst.unsolved = src.unsolved;
  }

  // Places digit d in cell i and removes it from the peers; queues peers that become naked singles.
  bool assign(State& st, int i, int d) {
    const uint32_t bit = 1u << d;
    if (!(st.cand[i] & bit)) return false;
    if (st.value[i]) return st.value[i] == d;
    st.value[i] = static_cast<uint8_t>(d);
    st.cand[i] = bit;
    --st.unsolved;
    const uint8_t* peers = &s_.peers_[static_cast<size_t>(i) * s_.peer_count_];
    for (int p = 0; p < s_.peer_count_; ++p) {
      const int q = peers[p];
      if (!(st.cand[q] & bit)) continue;
      st.cand[q] &= ~bit;
      if (st.cand[q] == 0) return false;
      if ((st.cand[q] & (st.cand[q] - 1)) == 0 && !st.value[q]) queue_[queued_++] = static_cast<uint8_t>(q);
    }
    return true;
  }

  // Naked singles (queue), hidden singles (unit scan) and locked candidates, until nothing changes.
  bool propagate(State& st) {
    if (!drain(st)) return fail();
    for (bool changed = true; changed && st.unsolved > 0;) {
      if (!hidden_singles(st, changed)) return fail();
      if (!changed && st.unsolved > 0 && !locked_candidates(st, changed)) return fail();
    }
    return true;
  }

  // One scan of all units for digits with a single possible cell.
  bool hidden_singles(State& st, bool& changed) {
    changed = false;
    for (int u = 0; u < 3 * n_; ++u) {
      const uint8_t* unit = &s_.units_[static_cast<size_t>(u) * n_];
      uint32_t once = 0, twice = 0;
      for (int k = 0; k < n_; ++k) {
        const uint32_t m = st.cand[unit[k]];
        twice |= once & m;
        once |= m;
      }
      if (once != full_) return false;
      for (uint32_t single = once & ~twice; single; single &= single - 1) {
        const uint32_t bit = single & (~single + 1);
        for (int k = 0; k < n_; ++k) {
          const int c = unit[k];
          if (!(st.cand[c] & bit)) continue;
          if (!st.value[c]) {
            if (!assign(st, c, lowest_digit(bit)) || !drain(st)) return false;
            changed = true;
          }
          break;
        }
      }
    }
    return true;
  }

  // Removes digit `bit` from cell c; false on a contradiction.
  bool eliminate(State& st, int c, uint32_t bit, bool& changed) {
    if (!(st.cand[c] & bit)) return true;
    st.cand[c] &= ~bit;
    changed = true;
    if (st.cand[c] == 0) return false;
    if ((st.cand[c] & (st.cand[c] - 1)) == 0) queue_[queued_++] = static_cast<uint8_t>(c);
    return true;
  }

  // Locked candidates: a digit confined to one line of a box leaves the rest of that line (pointing);
  // a digit confined to one box of a line leaves the rest of that box (claiming). One pass.
  bool locked_candidates(State& st, bool& changed) {
    for (const Solver::Lock& lock : s_.locks_) {
      uint32_t once = 0, twice = 0, solved = 0;
      for (int seg = 0; seg < lock.segments; ++seg) {
        uint32_t m = 0;
        for (int k = 0; k < lock.segment_len; ++k) {
          const int c = lock.cells[seg * lock.segment_len + k];
          m |= st.cand[c];
          if (st.value[c]) solved |= 1u << st.value[c];
        }
        twice |= once & m;
        once |= m;
      }
      for (uint32_t confined = once & ~twice & ~solved; confined; confined &= confined - 1) {
        const uint32_t bit = confined & (~confined + 1);
        for (int seg = 0; seg < lock.segments; ++seg) {
          uint32_t m = 0;
          for (int k = 0; k < lock.segment_len; ++k) m |= st.cand[lock.cells[seg * lock.segment_len + k]];
          if (!(m & bit)) continue;
          for (int c : lock.targets[seg]) {
            if (!eliminate(st, c, bit, changed)) return false;
          }
          break;
        }
      }
    }
    return drain(st);
  }

  // Assigns the queued naked singles (and those they create).
  bool drain(State& st) {
    while (queued_) {
      const int q = queue_[--queued_];
      if (!st.value[q] && !assign(st, q, lowest_digit(st.cand[q]))) return false;
    }
    return true;
  }

  bool fail() {
    queued_ = 0;
    return false;
  }

  const Solver& s_;
  int n_, cells_, limit_;
  std::mt19937_64* rng_;
  uint32_t full_;
  int solutions_ = 0;
  Grid first_;
  SearchStats stats_;
  uint8_t queue_[kMaxCells];
  int queued_ = 0;
};

Solver::Solver(const Geometry& geom) : geom_(geom), n_(geom.n()), cells_(geom.cells()) {
  EQR_CHECK(n_ >= 2 && n_ <= kMaxSide, UsageError, "solver: side ", n_, " unsupported; expected 2..", kMaxSide);
  units_.resize(static_cast<size_t>(3 * n_) * n_);
  for (int u = 0; u < n_; ++u) {
    for (int k = 0; k < n_; ++k) {
      units_[u * n_ + k] = static_cast<uint8_t>(u * n_ + k);            // row u
      units_[(n_ + u) * n_ + k] = static_cast<uint8_t>(k * n_ + u);     // column u
      const int r = (u / geom.box_rows) * geom.box_rows + k / geom.box_cols;
      const int c = (u % geom.box_rows) * geom.box_cols + k % geom.box_cols;
      units_[(2 * n_ + u) * n_ + k] = static_cast<uint8_t>(r * n_ + c);  // box u
    }
  }
  peer_count_ = 0;
  std::vector<std::vector<uint8_t>> peers(cells_);
  for (int i = 0; i < cells_; ++i) {
    const int r = i / n_, c = i % n_, b = geom.box_of(r, c);
    for (int j = 0; j < cells_; ++j) {
      const int rj = j / n_, cj = j % n_;
      if (j != i && (rj == r || cj == c || geom.box_of(rj, cj) == b)) peers[i].push_back(static_cast<uint8_t>(j));
    }
    peer_count_ = static_cast<int>(peers[i].size());  // the same for every cell
  }
  peers_.reserve(static_cast<size_t>(cells_) * peer_count_);
  for (const auto& p : peers) peers_.insert(peers_.end(), p.begin(), p.end());
  build_locks();
}

void Solver::build_locks() {
  const Geometry& g = geom_;
  // segments: lists of cells of one unit split into parts; target of a part: the cells of the *other*
  // unit through that part (line for a box part, box for a line part), minus the part itself.
  auto add = [&](const std::vector<std::vector<int>>& parts, auto other_unit_of) {
    Lock lock;
    lock.segments = static_cast<int>(parts.size());
    lock.segment_len = static_cast<int>(parts[0].size());
    for (const auto& part : parts) {
      for (int c : part) lock.cells.push_back(static_cast<uint8_t>(c));
      std::vector<uint8_t> target;
      for (int c = 0; c < cells_; ++c) {
        if (other_unit_of(c) == other_unit_of(part[0]) && std::find(part.begin(), part.end(), c) == part.end()) {
          target.push_back(static_cast<uint8_t>(c));
        }
      }
      lock.targets.push_back(std::move(target));
    }
    locks_.push_back(std::move(lock));
  };
  const int n = n_;
  auto row_of = [n](int c) { return c / n; };
  auto col_of = [n](int c) { return c % n; };
  auto box_of = [&g, n](int c) { return g.box_of(c / n, c % n); };
  for (int b = 0; b < n; ++b) {  // pointing: parts = the box's rows, then the box's columns
    const int r0 = (b / g.box_rows) * g.box_rows, c0 = (b % g.box_rows) * g.box_cols;
    std::vector<std::vector<int>> rows(g.box_rows), cols(g.box_cols);
    for (int i = 0; i < g.box_rows; ++i) {
      for (int j = 0; j < g.box_cols; ++j) {
        rows[i].push_back((r0 + i) * n + c0 + j);
        cols[j].push_back((r0 + i) * n + c0 + j);
      }
    }
    add(rows, row_of);
    add(cols, col_of);
  }
  for (int u = 0; u < n; ++u) {  // claiming: parts = a row's box segments, a column's box segments
    std::vector<std::vector<int>> row_parts(g.stacks()), col_parts(g.bands());
    for (int k = 0; k < n; ++k) {
      row_parts[k / g.box_cols].push_back(u * n + k);
      col_parts[k / g.box_rows].push_back(k * n + u);
    }
    add(row_parts, box_of);
    add(col_parts, box_of);
  }
}

SolveResult Solver::solve(const Grid& puzzle) const {
  Search search(*this, 1, nullptr);
  State root;
  SolveResult result;
  if (search.init(root, puzzle)) search.run(root);
  result.solved = search.solutions() > 0;
  if (result.solved) result.solution = search.first();
  result.stats = search.stats();
  return result;
}

int Solver::count_solutions(const Grid& puzzle, int limit, Grid* first) const {
  EQR_CHECK(limit >= 1, UsageError, "count_solutions: limit ", limit, " must be >= 1");
  Search search(*this, limit, nullptr);
  State root;
  if (search.init(root, puzzle)) search.run(root);
  if (first && search.solutions() > 0) *first = search.first();
  return search.solutions();
}

int64_t Solver::rate(const Grid& puzzle) const {
  const SolveResult r = solve(puzzle);
  return r.solved ? r.stats.backtracks : -1;
}

Grid Solver::random_solution(std::mt19937_64& rng) const {
  Search search(*this, 1, &rng);
  State root;
  const bool ok = search.init(root, Grid(cells_, 0)) && search.run(root);
  EQR_CHECK(ok, RuntimeError, "solver: the empty ", geom_.name(), " board has no solution (internal error)");
  return search.first();
}

SolveResult solve(const Grid& puzzle, const Geometry& geom) { return Solver(geom).solve(puzzle); }

int count_solutions(const Grid& puzzle, const Geometry& geom, int limit) {
  return Solver(geom).count_solutions(puzzle, limit);
}

int64_t rate(const Grid& puzzle, const Geometry& geom) { return Solver(geom).rate(puzzle); }

}  // namespace eqr::sudoku
