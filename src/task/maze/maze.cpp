// Maze-Unique: tokens, generator, verifier, printing, reader, statistics (include/eqr/task/maze/maze.h).
// Shapes: S = n*n cells of an n x n grid, row-major token ids; N mazes.
#include "eqr/task/maze/maze.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string_view>
#include <unordered_set>

#include "eqr/core/error.h"
#include "eqr/core/rng.h"
#include "eqr/data/dataset.h"
#include "eqr/core/parallel.h"

namespace eqr::task {

namespace tok = maze_token;

namespace {

// The reference's DIRS, in its order: down, up, right, left.
constexpr int kDirRow[4] = {1, -1, 0, 0};
constexpr int kDirCol[4] = {0, 0, 1, -1};

std::string cell_name(int cell, int size) {
  return ::eqr::detail::concat("row ", cell / size + 1, ", column ", cell % size + 1);
}

// Neighbour of `cell` in direction d, or -1 off the grid.
inline int neighbour(int cell, int d, int size) {
  const int r = cell / size + kDirRow[d], c = cell % size + kDirCol[d];
  return r >= 0 && r < size && c >= 0 && c < size ? r * size + c : -1;
}

// Unbiased integer in [0, n) from 64-bit draws (rejection; the same on every standard library, unlike
// std::uniform_int_distribution).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t reject_below = (0 - n) % n;  // 2^64 mod n: drop the incomplete first block
  uint64_t r = rng();
  while (r < reject_below) r = rng();
  return r % n;
}

// Breadth-first distances from `start` over cells with open[cell] != 0 (-1 = unreached). `order` gets the
// cells in visiting order (so layer by layer).
void bfs(const std::vector<uint8_t>& open, int size, int start, std::vector<int>& dist, std::vector<int>& order) {
  dist.assign(open.size(), -1);
  order.clear();
  dist[start] = 0;
  order.push_back(start);
  for (size_t head = 0; head < order.size(); ++head) {
    const int u = order[head];
    for (int d = 0; d < 4; ++d) {
      const int v = neighbour(u, d, size);
      if (v >= 0 && open[v] && dist[v] < 0) {
        dist[v] = dist[u] + 1;
        order.push_back(v);
      }
    }
  }
}

// Shortest paths from the BFS source to every cell, capped at `cap`, by summing over the previous layer.
std::vector<int64_t> count_paths(const std::vector<uint8_t>& open, int size, const std::vector<int>& dist,
                                 const std::vector<int>& order, int64_t cap) {
  std::vector<int64_t> count(open.size(), 0);
  count[order.front()] = 1;
  for (const int u : order) {
    for (int d = 0; d < 4; ++d) {
      const int v = neighbour(u, d, size);
      if (v >= 0 && dist[v] == dist[u] + 1) count[v] = std::min(cap, count[v] + count[u]);
    }
  }
  return count;
}

// A shortest path goal -> ... -> start read off the distances (at each step the first neighbour, in DIRS
// order, one step closer), returned start first.
std::vector<int> path_from_dist(const std::vector<int>& dist, int size, int goal) {
  std::vector<int> path{goal};
  for (int cur = goal; dist[cur] > 0;) {
    int next = -1;
    for (int d = 0; d < 4 && next < 0; ++d) {
      const int v = neighbour(cur, d, size);
      if (v >= 0 && dist[v] == dist[cur] - 1) next = v;
    }
    cur = next;
    path.push_back(cur);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

// Side of the odd sub-grid that holds the maze (the reference's maze_n) and its maze cells per side.
int maze_side(int size) { return size % 2 == 1 ? size : size - 1; }
int cells_per_side(int size) { return (maze_side(size) - 1) / 2; }

// The reference's _generate_perfect_maze on the maze_side x maze_side sub-grid, written into an n x n mask
// (the rest stays wall): a random maze cell starts the stack; the top cell moves to a uniformly chosen
// unvisited neighbour (DIRS order), opening it and the wall between, or is popped when it has none.
void carve_perfect_maze(int size, std::mt19937_64& rng, std::vector<uint8_t>& open, std::vector<uint8_t>& visited,
                        std::vector<int>& stack) {
  const int m = cells_per_side(size);
  open.assign(static_cast<size_t>(size) * size, 0);
  visited.assign(static_cast<size_t>(m) * m, 0);
  stack.clear();
  auto grid_cell = [&](int r, int c) { return (2 * r + 1) * size + 2 * c + 1; };
  const int r0 = static_cast<int>(uniform_below(rng, m));
  const int c0 = static_cast<int>(uniform_below(rng, m));
  stack.push_back(r0 * m + c0);
  visited[r0 * m + c0] = 1;
  open[grid_cell(r0, c0)] = 1;
  int options[4];
  while (!stack.empty()) {
    const int r = stack.back() / m, c = stack.back() % m;
    int k = 0;
    for (int d = 0; d < 4; ++d) {
      const int nr = r + kDirRow[d], nc = c + kDirCol[d];
      if (nr >= 0 && nr < m && nc >= 0 && nc < m && !visited[nr * m + nc]) options[k++] = nr * m + nc;
    }
    if (k == 0) {
      stack.pop_back();
      continue;
    }
    const int next = options[uniform_below(rng, static_cast<uint64_t>(k))];
    const int nr = next / m, nc = next % m;
    visited[next] = 1;
    open[(grid_cell(r, c) + grid_cell(nr, nc)) / 2] = 1;  // the wall between (same row or column)
    open[grid_cell(nr, nc)] = 1;
    stack.push_back(next);
  }
}

// Where S and G are in an input; DataError unless it is a maze (tokens 1..4, one S, one G).
std::pair<int, int> find_start_goal(const uint8_t* input, int size, const std::string& what) {
  int start = -1, goal = -1;
  const int cells = size * size;
  for (int i = 0; i < cells; ++i) {
    const uint8_t t = input[i];
    EQR_CHECK(t >= tok::kWall && t <= tok::kGoal, DataError, what, ": token ", int(t), " at ", cell_name(i, size),
              ", expected 1..4 ('#', ' ', 'S', 'G') in a maze input");
    if (t == tok::kStart) {
      EQR_CHECK(start < 0, DataError, what, ": a second start 'S' at ", cell_name(i, size), " (first at ",
                cell_name(start, size), ")");
      start = i;
    } else if (t == tok::kGoal) {
      EQR_CHECK(goal < 0, DataError, what, ": a second goal 'G' at ", cell_name(i, size), " (first at ",
                cell_name(goal, size), ")");
      goal = i;
    }
  }
  EQR_CHECK(start >= 0 && goal >= 0, DataError, what, ": no ", start < 0 ? "start 'S'" : "goal 'G'",
            "; a maze input holds exactly one of each");
  return {start, goal};
}

std::vector<uint8_t> open_mask(const uint8_t* input, int size) {
  std::vector<uint8_t> open(static_cast<size_t>(size) * size);
  for (size_t i = 0; i < open.size(); ++i) open[i] = input[i] != tok::kWall;
  return open;
}

}  // namespace

char maze_char(uint8_t token) {
  return token >= 1 && static_cast<size_t>(token) <= kMazeCharset.size() ? kMazeCharset[token - 1] : '?';
}

int maze_token_of_char(char c) {
  const auto pos = kMazeCharset.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos) + 1;
}

std::string format_maze(const uint8_t* grid, int size) {
  std::string text;
  text.reserve(static_cast<size_t>(size) * (size + 1));
  for (int r = 0; r < size; ++r) {
    for (int c = 0; c < size; ++c) text += maze_char(grid[r * size + c]);
    text += '\n';
  }
  return text;
}

std::string format_maze(const std::vector<uint8_t>& grid, int size) {
  EQR_CHECK(grid.size() == static_cast<size_t>(size) * size, RuntimeError, "format_maze: grid has ", grid.size(),
            " cells, expected ", size, "x", size);
  return format_maze(grid.data(), size);
}

std::vector<uint8_t> parse_maze(const std::vector<std::string>& rows, int* size) {
  const int n = static_cast<int>(rows.size());
  EQR_CHECK(n >= 1, DataError, "maze text: no rows");
  std::vector<uint8_t> grid;
  grid.reserve(static_cast<size_t>(n) * n);
  for (int r = 0; r < n; ++r) {
    EQR_CHECK(static_cast<int>(rows[r].size()) == n, DataError, "maze text: row ", r + 1, " has ", rows[r].size(),
              " characters, expected ", n, " (a square grid of ", n, " rows)");
    for (int c = 0; c < n; ++c) {
      const int t = maze_token_of_char(rows[r][c]);
      EQR_CHECK(t > 0, DataError, "maze text: character '", rows[r][c], "' at row ", r + 1, ", column ", c + 1,
                "; expected one of \"", kMazeCharset, "\"");
      grid.push_back(static_cast<uint8_t>(t));
    }
  }
  if (size) *size = n;
  return grid;
}

int perfect_maze_open_cells(int size) {
  const int m = cells_per_side(size);
  return m > 0 ? 2 * m * m - 1 : 0;
}

std::pair<int, int> default_path_length_range(int size) {
  // 100 and 140 of the 391 open cells of a 30x30 maze, scaled to this side's open cells, rounded half up.
  const int64_t open = perfect_maze_open_cells(size);
  const int lo = static_cast<int>((open * 100 * 2 + 391) / (2 * 391));
  const int hi = static_cast<int>((open * 140 * 2 + 391) / (2 * 391));
  return {std::max(lo, 1), std::max(hi, 1)};
}

MazeGeneratorOptions resolved(MazeGeneratorOptions opts) {
  const auto [lo, hi] = default_path_length_range(opts.size);
  if (opts.min_path_length == 0) opts.min_path_length = lo;
  if (opts.max_path_length == 0) opts.max_path_length = hi;
  return opts;
}

void validate(const MazeGeneratorOptions& raw) {
  EQR_CHECK(raw.size >= kMinMazeSize && raw.size <= kMaxMazeSize, UsageError, "maze generator: size ", raw.size,
            " out of range; expected ", kMinMazeSize, "..", kMaxMazeSize);
  const MazeGeneratorOptions o = resolved(raw);
  const int longest = perfect_maze_open_cells(o.size) - 1;
  EQR_CHECK(o.count >= 0, UsageError, "maze generator: count ", o.count, " must be >= 0");
  EQR_CHECK(o.min_path_length >= 1 && o.min_path_length <= o.max_path_length, UsageError,
            "maze generator: path lengths [", o.min_path_length, ", ", o.max_path_length,
            "] are not a range of lengths >= 1 (0 = the size's default)");
  EQR_CHECK(o.max_path_length <= longest, UsageError, "maze generator: max path length ", o.max_path_length,
            " exceeds ", longest, ", the longest path a ", o.size, "x", o.size, " perfect maze can hold (",
            longest + 1, " open cells)");
  EQR_CHECK(o.threads >= 0, UsageError, "maze generator: threads ", o.threads, " must be >= 0 (0 = all cores)");
  EQR_CHECK(o.max_grid_attempts >= 1 && o.max_start_attempts >= 1 && o.max_length_resamples >= 1, UsageError,
            "maze generator: attempt limits (grid ", o.max_grid_attempts, ", start ", o.max_start_attempts,
            ", resamples ", o.max_length_resamples, ") must be >= 1");
}

Maze generate_maze(const MazeGeneratorOptions& raw, int64_t index, int draw) {
  const MazeGeneratorOptions o = resolved(raw);
  const int n = o.size;
  std::mt19937_64 rng(derive_seed(derive_seed(o.seed, static_cast<uint64_t>(index)), static_cast<uint64_t>(draw)));
  const int length = o.min_path_length +
                     static_cast<int>(uniform_below(rng, static_cast<uint64_t>(o.max_path_length - o.min_path_length + 1)));
  std::vector<uint8_t> open, visited;
  std::vector<int> stack, open_cells, dist, order, candidates;
  for (int g = 0; g < o.max_grid_attempts; ++g) {
    carve_perfect_maze(n, rng, open, visited, stack);
    open_cells.clear();
    for (int i = 0; i < n * n; ++i) {
      if (open[i]) open_cells.push_back(i);  // row-major, as np.argwhere
    }
    if (static_cast<int>(open_cells.size()) < length + 1 || open_cells.size() < 2) continue;
    for (int s = 0; s < o.max_start_attempts; ++s) {
      const int start = open_cells[uniform_below(rng, open_cells.size())];
      bfs(open, n, start, dist, order);
      candidates.clear();
      for (const int c : order) {
        if (dist[c] == length) candidates.push_back(c);
        if (dist[c] > length) break;
      }
      if (candidates.empty()) continue;
      std::sort(candidates.begin(), candidates.end());  // row-major, as np.argwhere
      const int goal = candidates[uniform_below(rng, candidates.size())];
      // A perfect maze has one simple path between any two cells; the check guards the invariant cheaply.
      if (count_paths(open, n, dist, order, 2)[goal] != 1) continue;
      Maze maze;
      maze.size = n;
      maze.path_length = length;
      maze.input.resize(static_cast<size_t>(n) * n);
      for (int i = 0; i < n * n; ++i) maze.input[i] = open[i] ? tok::kOpen : tok::kWall;
      maze.input[start] = tok::kStart;
      maze.input[goal] = tok::kGoal;
      maze.label = maze.input;
      const std::vector<int> path = path_from_dist(dist, n, goal);
      for (size_t k = 1; k + 1 < path.size(); ++k) maze.label[path[k]] = tok::kPath;
      return maze;
    }
  }
  EQR_FAIL(DataError, "maze generator: maze ", index, " (seed ", o.seed, ", draw ", draw,
           ") found no start and goal at shortest-path length ", length, " in ", o.max_grid_attempts, " mazes x ",
           o.max_start_attempts, " starts (", n, "x", n, "); narrow --min/--max path length toward ",
           default_path_length_range(n).first, "-", default_path_length_range(n).second,
           " or raise the attempt limits");
}

std::vector<Maze> generate_mazes(const MazeGeneratorOptions& opts, const std::function<void(int64_t done)>& progress) {
  validate(opts);
  std::vector<Maze> mazes(static_cast<size_t>(opts.count));
  parallel_for(
      opts.count, opts.threads, [&](int64_t i) { mazes[i] = generate_maze(opts, i); }, progress);
  if (!opts.dedupe) return mazes;
  // In index order, so that maze i depends only on mazes j < i; repeats are rare above tiny sizes.
  std::unordered_set<std::string> seen;
  seen.reserve(mazes.size());
  for (int64_t i = 0; i < opts.count; ++i) {
    auto key = [&] { return std::string(mazes[i].input.begin(), mazes[i].input.end()); };
    int draw = 0;
    while (!seen.insert(key()).second) {
      ++draw;
      EQR_CHECK(draw < opts.max_length_resamples, DataError, "maze generator: maze ", i, " (seed ", opts.seed, "): ",
                draw, " draws all repeat earlier mazes; a ", opts.size, "x", opts.size,
                " maze with these path lengths has too few distinct inputs for ", opts.count,
                " mazes (use a larger size, a wider length range or fewer mazes)");
      mazes[i] = generate_maze(opts, i, draw);
    }
  }
  return mazes;
}

int64_t count_shortest_paths(const uint8_t* input, int size, int64_t cap) {
  const auto [start, goal] = find_start_goal(input, size, "count_shortest_paths");
  const std::vector<uint8_t> open = open_mask(input, size);
  std::vector<int> dist, order;
  bfs(open, size, start, dist, order);
  if (dist[goal] < 0) return 0;
  return count_paths(open, size, dist, order, cap)[goal];
}

MazeVerdict verify_maze(const uint8_t* input, const uint8_t* prediction, const uint8_t* label, int size) {
  const auto [start, goal] = find_start_goal(input, size, "verify_maze input");
  const int cells = size * size;
  MazeVerdict v;
  v.exact = label != nullptr && std::memcmp(prediction, label, static_cast<size_t>(cells)) == 0;
  auto fail = [&](auto&&... parts) {
    v.valid = false;
    v.reason = ::eqr::detail::concat(parts...);
    return v;
  };
  // Cells: walls, S and G unchanged; open cells ' ' or 'o'.
  std::vector<uint8_t> marked(static_cast<size_t>(cells), 0);  // S, G and the 'o' cells
  int path_cells = 0;
  for (int i = 0; i < cells; ++i) {
    const uint8_t in = input[i], out = prediction[i];
    if (in == tok::kOpen) {
      if (out == tok::kPath) {
        marked[i] = 1;
        ++path_cells;
      } else if (out != tok::kOpen) {
        return fail("open cell at ", cell_name(i, size), " predicted '", maze_char(out), "' (token ", int(out),
                    "), expected ' ' or 'o'");
      }
    } else if (out != in) {
      return fail(in == tok::kWall ? "wall" : in == tok::kStart ? "start 'S'" : "goal 'G'", " at ",
                  cell_name(i, size), " predicted '", maze_char(out), "' (token ", int(out), ")",
                  out == tok::kPath && in == tok::kWall ? ": the path runs through a wall" : "");
    }
  }
  marked[start] = marked[goal] = 1;
  // Degrees in the graph the marked cells induce: 1 at S and G, 2 at every 'o' cell.
  for (int i = 0; i < cells; ++i) {
    if (!marked[i]) continue;
    int degree = 0;
    for (int d = 0; d < 4; ++d) {
      const int j = neighbour(i, d, size);
      degree += j >= 0 && marked[j];
    }
    const bool end = i == start || i == goal;
    if (degree != (end ? 1 : 2)) {
      const char* what = i == start ? "start 'S'" : i == goal ? "goal 'G'" : "path cell";
      const char* why = degree == 0 ? (end ? "the path does not reach it" : "an isolated 'o' cell")
                        : degree > (end ? 1 : 2) ? "a branch or a chord"
                                                 : (end ? "" : "a dead end: the path is broken here");
      return fail(what, " at ", cell_name(i, size), " has ", degree, " marked neighbours, expected ", end ? 1 : 2,
                  " (", why, ")");
    }
  }
  // Connected: walk from S; degrees 1-2-..-2-1 make the component a simple path, so it must end at G and
  // hold every marked cell (otherwise the rest is a separate loop or segment).
  int prev = -1, cur = start, walked = 1;
  while (cur != goal) {
    int next = -1;
    for (int d = 0; d < 4 && next < 0; ++d) {
      const int j = neighbour(cur, d, size);
      if (j >= 0 && j != prev && marked[j]) next = j;
    }
    if (next < 0) break;  // only when S's one neighbour leads nowhere, impossible after the degree check
    prev = cur;
    cur = next;
    ++walked;
  }
  if (cur != goal || walked != path_cells + 2) {
    return fail("the path from S reaches G after ", walked - 2, " 'o' cells but ", path_cells,
                " are marked: the others form a separate loop or segment");
  }
  v.valid = true;
  return v;
}

MazeVerdict verify_maze(const Maze& maze, const std::vector<uint8_t>& prediction) {
  const size_t cells = static_cast<size_t>(maze.size) * maze.size;
  EQR_CHECK(maze.input.size() == cells && maze.label.size() == cells && prediction.size() == cells, RuntimeError,
            "verify_maze: grids of ", maze.input.size(), ", ", maze.label.size(), " and ", prediction.size(),
            " cells, expected ", cells, " (", maze.size, "x", maze.size, ")");
  return verify_maze(maze.input.data(), prediction.data(), maze.label.data(), maze.size);
}

MazeSplit load_maze_split(const std::string& dir, const std::string& split, int expected_size) {
  const data::SplitData d = data::load_split(dir, split);
  const std::string where = dir + "/" + split;
  EQR_CHECK(d.metadata.vocab_size == kMazeVocabSize, DataError, where, "/dataset.json: vocab_size ",
            d.metadata.vocab_size, ", expected ", kMazeVocabSize, " for a maze split (pad + \"", kMazeCharset,
            "\"); is this another task's dataset?");
  const int64_t s = d.seq_len();
  const auto n = static_cast<int>(std::lround(std::sqrt(static_cast<double>(s))));
  EQR_CHECK(int64_t{n} * n == s && n >= 2, DataError, where, "/dataset.json: seq_len ", s,
            " is not the cell count n*n of a square maze");
  EQR_CHECK(expected_size == 0 || n == expected_size, DataError, where, ": mazes are ", n, "x", n, " (seq_len ", s,
            "), expected ", expected_size, "x", expected_size);
  const int64_t rows = d.num_examples();
  for (int64_t r = 0; r < rows; ++r) {
    const std::string row_where = ::eqr::detail::concat(where, "/all__inputs.npy row ", r);
    find_start_goal(d.input_row(r), n, row_where);
    const uint8_t* in = d.input_row(r);
    const uint8_t* out = d.label_row(r);
    for (int64_t i = 0; i < s; ++i) {
      EQR_CHECK(out[i] == in[i] || (in[i] == tok::kOpen && out[i] == tok::kPath), DataError, where,
                "/all__labels.npy row ", r, ": '", maze_char(out[i]), "' (token ", int(out[i]), ") at ",
                cell_name(static_cast<int>(i), n), " where the input has '", maze_char(in[i]),
                "'; a label only turns open cells into 'o'");
    }
  }
  MazeSplit m;
  m.size = n;
  m.inputs = torch::empty({rows, s}, torch::kUInt8);
  m.labels = torch::empty({rows, s}, torch::kUInt8);
  std::memcpy(m.inputs.data_ptr<uint8_t>(), d.inputs.data(), d.inputs.size());
  std::memcpy(m.labels.data_ptr<uint8_t>(), d.labels.data(), d.labels.size());
  return m;
}

MazeStats maze_stats(const uint8_t* inputs, const uint8_t* labels, int64_t count, int size) {
  MazeStats st;
  st.size = size;
  st.count = count;
  const int cells = size * size;
  int64_t walls = 0, unique = 0, dead_ends = 0, turns = 0, manhattan = 0, label_matches = 0, reached = 0;
  double length_sum = 0;
  std::unordered_set<std::string> seen;
  std::vector<int> dist, order;
  for (int64_t k = 0; k < count; ++k) {
    const uint8_t* in = inputs + k * cells;
    const auto [start, goal] = find_start_goal(in, size, ::eqr::detail::concat("maze_stats: maze ", k));
    if (!seen.insert(std::string(in, in + cells)).second) ++st.duplicates;
    const std::vector<uint8_t> open = open_mask(in, size);
    for (int i = 0; i < cells; ++i) {
      if (!open[i]) {
        ++walls;
        continue;
      }
      int degree = 0;
      for (int d = 0; d < 4; ++d) {
        const int j = neighbour(i, d, size);
        degree += j >= 0 && open[j];
      }
      dead_ends += degree == 1;
    }
    manhattan += std::abs(start / size - goal / size) + std::abs(start % size - goal % size);
    bfs(open, size, start, dist, order);
    if (dist[goal] < 0) {
      ++st.unreachable;
      continue;
    }
    const int length = dist[goal];
    if (reached++ == 0) st.min_path_length = st.max_path_length = length;
    st.min_path_length = std::min(st.min_path_length, length);
    st.max_path_length = std::max(st.max_path_length, length);
    length_sum += length;
    ++st.path_length_counts[length];
    unique += count_paths(open, size, dist, order, 2)[goal] == 1;
    const std::vector<int> path = path_from_dist(dist, size, goal);
    for (size_t p = 2; p < path.size(); ++p) turns += (path[p] - path[p - 1]) != (path[p - 1] - path[p - 2]);
    if (labels) {
      std::vector<uint8_t> expect(in, in + cells);
      for (size_t p = 1; p + 1 < path.size(); ++p) expect[path[p]] = tok::kPath;
      label_matches += std::memcmp(expect.data(), labels + k * cells, static_cast<size_t>(cells)) == 0;
    }
  }
  const double n = std::max<int64_t>(count, 1);
  st.mean_path_length = reached ? length_sum / reached : 0;
  st.wall_fraction = static_cast<double>(walls) / (n * cells);
  st.unique_share = unique / n;
  st.mean_dead_ends = dead_ends / n;
  st.mean_turns = reached ? static_cast<double>(turns) / reached : 0;
  st.mean_manhattan = manhattan / n;
  st.label_match_share = labels ? label_matches / n : -1;
  return st;
}

MazeStats maze_stats(const std::vector<Maze>& mazes) {
  if (mazes.empty()) return {};
  const int size = mazes.front().size;
  const size_t cells = static_cast<size_t>(size) * size;
  std::vector<uint8_t> inputs, labels;
  inputs.reserve(mazes.size() * cells);
  labels.reserve(mazes.size() * cells);
  for (const Maze& m : mazes) {
    EQR_CHECK(m.size == size && m.input.size() == cells && m.label.size() == cells, RuntimeError,
              "maze_stats: mazes of different sizes (", m.size, " and ", size, ")");
    inputs.insert(inputs.end(), m.input.begin(), m.input.end());
    labels.insert(labels.end(), m.label.begin(), m.label.end());
  }
  return maze_stats(inputs.data(), labels.data(), static_cast<int64_t>(mazes.size()), size);
}

std::string format_maze_stats(const MazeStats& st) {
  auto fixed = [](double x, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, x);
    return std::string(buf);
  };
  std::string out = ::eqr::detail::concat("mazes ", st.count, ", ", st.size, "x", st.size, "\n");
  out += ::eqr::detail::concat("path length: min ", st.min_path_length, ", mean ", fixed(st.mean_path_length, 2),
                               ", max ", st.max_path_length, ", unreachable ", st.unreachable, "\n");
  out += "path length counts:";
  int on_line = 0;
  for (const auto& [length, n] : st.path_length_counts) {
    if (on_line++ % 10 == 0) out += "\n ";
    out += ::eqr::detail::concat(" ", length, ":", n);
  }
  out += "\n";
  out += "wall fraction: " + fixed(st.wall_fraction, 4) + "\n";
  out += "unique shortest path: " + fixed(st.unique_share, 4) + "\n";
  out += ::eqr::detail::concat("duplicates: ", st.duplicates, "\n");
  out += "dead ends per maze: " + fixed(st.mean_dead_ends, 2) + "\n";
  out += "turns on the path per maze: " + fixed(st.mean_turns, 2) + "\n";
  out += "S-G manhattan distance: " + fixed(st.mean_manhattan, 2) + "\n";
  out += "labels marking the shortest path: " +
         (st.label_match_share < 0 ? std::string("n/a") : fixed(st.label_match_share, 4)) + "\n";
  return out;
}

}  // namespace eqr::task
