#pragma once
// Maze-Unique (the paper's second task; reference/maze_unique.md, the reference's
// dataset/build_maze_unique_dataset.py): an n x n grid of walls and open cells with a start S and a goal G;
// the answer marks the cells of the unique shortest S -> G path.
//
// A grid is a row-major std::vector<uint8_t> of TOKEN ids, S = n*n cells (seq_len), n the side:
//   0 pad (batch padding only)   1 '#' wall   2 ' ' open   3 'S' start   4 'G' goal   5 'o' path
// (the reference's CHARSET "# SGo" -> ids 1..5; vocab 6). An input holds tokens 1..4 with exactly one S and
// one G; its label is the input with the path cells (the shortest path minus S and G) set to 5.
// Coordinates in messages are 1-based "row r, column c"; cell index = r * n + c (0-based).
//
// Generator (same steps as the reference builder, our own random numbers): a perfect maze carved by a
// randomized depth-first search on the odd sub-grid, S a uniformly chosen open cell, G a uniformly chosen
// cell at the sampled shortest-path length L (uniform in [min, max]); docs/tasks.md.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>

namespace eqr::task {

/// Token ids of Maze-Unique (the reference's CHARSET "# SGo" -> 1..5; 0 = pad).
namespace maze_token {
constexpr uint8_t kPad = 0;    ///< padding (never in a maze)
constexpr uint8_t kWall = 1;   ///< '#'
constexpr uint8_t kOpen = 2;   ///< ' '
constexpr uint8_t kStart = 3;  ///< 'S'
constexpr uint8_t kGoal = 4;   ///< 'G'
constexpr uint8_t kPath = 5;   ///< 'o' (labels and predictions only)
}  // namespace maze_token

/// The reference's CHARSET: character of token id t (1..5) is kMazeCharset[t - 1].
constexpr std::string_view kMazeCharset = "# SGo";
/// V: pad + the five characters.
constexpr int kMazeVocabSize = 6;
/// Smallest side with a path: the odd sub-grid must hold at least 2x2 maze cells.
constexpr int kMinMazeSize = 5;
/// Largest side accepted (seq_len 262,144).
constexpr int kMaxMazeSize = 512;

/// Character of a token: '#', ' ', 'S', 'G', 'o'; '?' for pad and ids >= 6 (model predictions may hold them).
char maze_char(uint8_t token);
/// Token of a CHARSET character; -1 for any other character.
int maze_token_of_char(char c);

/// Renders a grid (input, label or prediction; S = size*size tokens) as `size` text rows of CHARSET
/// characters, each ending in '\n'.
std::string format_maze(const uint8_t* grid, int size);
std::string format_maze(const std::vector<uint8_t>& grid, int size);
/// Parses rows of CHARSET characters (all of one length n = number of rows) into S = n*n tokens; `size` gets n.
/// DataError naming the row and column of a bad character or a row of the wrong length.
std::vector<uint8_t> parse_maze(const std::vector<std::string>& rows, int* size = nullptr);

/// One maze. input, label: (S) tokens, S = size * size.
struct Maze {
  int size = 0;                ///< side n
  std::vector<uint8_t> input;  ///< walls, open cells, S, G
  std::vector<uint8_t> label;  ///< input with the path cells set to maze_token::kPath
  int path_length = 0;         ///< steps from S to G (path cells + 1)
};

/// Path lengths [min, max] used when the options leave them 0: the paper's 100-140 for 30x30, and for other
/// sides the same share of the maze's open cells, 100/391 .. 140/391 of O = 2 m^2 - 1 (m = maze cells per side,
/// (n - 1) / 2 for odd n, (n - 2) / 2 for even n), rounded, at least 1: 11x11 -> 13-18, 20x20 -> 41-58.
std::pair<int, int> default_path_length_range(int size);
/// Open cells of a perfect maze of this side: 2 m^2 - 1 (391 for 30x30).
int perfect_maze_open_cells(int size);

/// What to generate (the reference builder's knobs for `--maze-mode perfect --length-distribution uniform
/// --require-unique --dedupe`, its defaults, and ours for threads).
struct MazeGeneratorOptions {
  int size = 30;                  ///< side n (kMinMazeSize .. kMaxMazeSize); even n: last row and column walls
  int64_t count = 1;              ///< mazes to generate
  uint64_t seed = 42;             ///< root seed; maze i, draw d uses derive_seed(derive_seed(seed, i), d)
  int min_path_length = 0;        ///< shortest S-G path length L >= this (0: default_path_length_range)
  int max_path_length = 0;        ///< L <= this (0: default_path_length_range); L uniform in [min, max]
  bool dedupe = true;             ///< redraw a maze whose input equals an earlier one's
  int threads = 0;                ///< worker threads (0 = hardware concurrency); output does not depend on it
  int max_grid_attempts = 200;    ///< mazes carved per draw before giving up (reference: max_grid_attempts)
  int max_start_attempts = 200;   ///< starts tried per maze (reference: max_start_attempts)
  int max_length_resamples = 50;  ///< draws per maze when they repeat earlier mazes (reference: max_length_resamples)
};

/// Checks the options (UsageError naming the knob, its value and the valid range).
void validate(const MazeGeneratorOptions& opts);
/// The options with min/max path lengths filled in from default_path_length_range where they are 0.
MazeGeneratorOptions resolved(MazeGeneratorOptions opts);

/// Draw `draw` of maze `index` (no de-duplication): depends only on (opts, index, draw). DataError when no
/// maze of the drawn length is found within max_grid_attempts x max_start_attempts (as the reference).
Maze generate_maze(const MazeGeneratorOptions& opts, int64_t index, int draw = 0);

/// Mazes 0..count-1 on `threads` workers, in index order. With dedupe, maze i is redrawn (draw 1, 2, ...)
/// while its input equals that of a maze j < i, so maze i depends only on (opts, i): the first k mazes of a
/// larger count are the k mazes of count k. Generate train and test in one call (train first) to keep them
/// apart, as the reference's shared set does. DataError after max_length_resamples repeated draws.
/// `progress(done)` (optional) runs on the calling thread a few times a second and once at the end.
std::vector<Maze> generate_mazes(const MazeGeneratorOptions& opts,
                                 const std::function<void(int64_t done)>& progress = {});

/// Number of shortest S -> G paths through non-wall cells, counted over the BFS layers from S and capped at
/// `cap` (so 2 answers "more than one"); 0 when G is unreachable. input: (S) tokens with one S and one G.
int64_t count_shortest_paths(const uint8_t* input, int size, int64_t cap = 2);

/// Result of checking a predicted grid against a maze.
struct MazeVerdict {
  bool valid = false;  ///< the 'o' cells plus S and G form a simple 4-connected S -> G path through open cells
  bool exact = false;  ///< prediction == label, every cell
  std::string reason;  ///< why not valid ("" when valid), with the first offending cell
};

/// Checks a prediction. Valid iff walls, S and G are unchanged, every other cell is ' ' or 'o', and the 'o'
/// cells with S and G induce a path graph from S to G: S and G have one marked neighbour each, every 'o'
/// cell two, and all are connected (a chord, i.e. two marked cells side by side that are not consecutive,
/// makes it invalid). It need not be the shortest path; in a perfect maze the only valid one is the label.
/// input, prediction, label: (S) tokens, S = size * size; label may be null (then exact = false).
/// DataError if the input is not a maze (tokens other than 1..4, not exactly one S and one G).
MazeVerdict verify_maze(const uint8_t* input, const uint8_t* prediction, const uint8_t* label, int size);
MazeVerdict verify_maze(const Maze& maze, const std::vector<uint8_t>& prediction);

/// A maze split read from the reference's numpy layout (docs/dataset_format.md).
struct MazeSplit {
  int size = 0;       ///< side n (seq_len = n * n)
  at::Tensor inputs;  ///< (N, S) uint8 tokens 1..4
  at::Tensor labels;  ///< (N, S) uint8 tokens 1..5
};

/// Reads <dir>/<split>/ (dataset.json, all__inputs.npy, all__labels.npy, ...; data::load_split) and checks
/// that it is a maze split: vocab_size 6, seq_len a square n*n (n == expected_size unless that is 0), every
/// input a maze (tokens 1..4, one S, one G), every label the input with some open cells set to 'o'.
/// DataError naming the file, row and cell otherwise.
MazeSplit load_maze_split(const std::string& dir, const std::string& split, int expected_size = 0);

/// Summary of a set of mazes (docs/tasks.md; scripts/maze_stats_reference.py prints the same for the
/// reference's builder). Path lengths are measured by BFS on the inputs.
struct MazeStats {
  int size = 0;
  int64_t count = 0;
  int min_path_length = 0;
  int max_path_length = 0;
  double mean_path_length = 0;
  std::map<int, int64_t> path_length_counts;  ///< shortest S-G distance -> mazes
  int64_t unreachable = 0;                    ///< mazes whose G is not reachable from S
  double wall_fraction = 0;                   ///< walls / cells over all mazes
  double unique_share = 0;                    ///< share with exactly one shortest S-G path
  int64_t duplicates = 0;                     ///< inputs equal to an earlier input
  double mean_dead_ends = 0;                  ///< non-wall cells with exactly one non-wall neighbour, per maze
  double mean_turns = 0;                      ///< direction changes along the shortest path, per maze
  double mean_manhattan = 0;                  ///< |dr| + |dc| between S and G, per maze
  double label_match_share = -1;              ///< share of labels that mark the shortest path (-1: no labels)
};

/// Statistics of `count` mazes. inputs, labels: (count, S) row-major tokens; labels may be null.
MazeStats maze_stats(const uint8_t* inputs, const uint8_t* labels, int64_t count, int size);
MazeStats maze_stats(const std::vector<Maze>& mazes);
/// The statistics as text lines (the format scripts/maze_stats_reference.py prints).
std::string format_maze_stats(const MazeStats& stats);

}  // namespace eqr::task
