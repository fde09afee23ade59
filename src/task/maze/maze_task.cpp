// Maze-Unique behind the task seam (include/eqr/task/maze/maze_task.h): wraps maze.h.
// Shape legend: P mazes, S cells = n*n.

#include "eqr/task/maze/maze_task.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <queue>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/core/logging.h"

namespace eqr::task {

namespace tok = maze_token;

namespace {

/// BFS distances from the cell holding `from` through non-wall cells (-1 = unreachable); `start` gets its index.
std::vector<int> distances(const uint8_t* input, int size, uint8_t from, int* start) {
  const int cells = size * size;
  std::vector<int> dist(static_cast<size_t>(cells), -1);
  *start = static_cast<int>(std::find(input, input + cells, from) - input);
  if (*start >= cells) return dist;
  std::queue<int> q;
  dist[static_cast<size_t>(*start)] = 0;
  q.push(*start);
  while (!q.empty()) {
    const int c = q.front();
    q.pop();
    const int r = c / size, col = c % size;
    const int next[4] = {r + 1 < size ? c + size : -1, r > 0 ? c - size : -1, col + 1 < size ? c + 1 : -1,
                         col > 0 ? c - 1 : -1};
    for (int nb : next) {
      if (nb < 0 || input[nb] == tok::kWall || dist[static_cast<size_t>(nb)] >= 0) continue;
      dist[static_cast<size_t>(nb)] = dist[static_cast<size_t>(c)] + 1;
      q.push(nb);
    }
  }
  return dist;
}

PuzzleSet from_grids(const std::vector<std::vector<uint8_t>>& inputs, const std::vector<std::vector<uint8_t>>& labels,
                     int64_t s) {
  PuzzleSet set;
  const int64_t p = static_cast<int64_t>(inputs.size());
  set.inputs = torch::empty({p, s}, torch::kInt);
  set.labels = torch::full({p, s}, data::kIgnoreLabelId, torch::kInt);
  auto in = set.inputs.accessor<int32_t, 2>();
  auto lab = set.labels.accessor<int32_t, 2>();
  for (int64_t i = 0; i < p; ++i) {
    const auto& label = labels[static_cast<size_t>(i)];
    for (int64_t j = 0; j < s; ++j) {
      in[i][j] = inputs[static_cast<size_t>(i)][static_cast<size_t>(j)];
      if (!label.empty()) lab[i][j] = label[static_cast<size_t>(j)];
    }
  }
  return set;
}

int side_of(int64_t seq_len) {
  const auto n = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(seq_len))));
  EQR_CHECK(n * n == seq_len && n >= kMinMazeSize && n <= kMaxMazeSize, ConfigError, "config key 'arch.seq_len' = ",
            seq_len, ": data.task = maze needs a square n*n board with ", kMinMazeSize, " <= n <= ", kMaxMazeSize,
            " (900 for 30x30 mazes)");
  return static_cast<int>(n);
}

}  // namespace

std::vector<uint8_t> solve_maze(const uint8_t* input, int size) {
  int s = 0;
  const std::vector<int> dist = distances(input, size, tok::kStart, &s);
  const int cells = size * size;
  const int g = static_cast<int>(std::find(input, input + cells, tok::kGoal) - input);
  if (s >= cells || g >= cells || dist[static_cast<size_t>(g)] < 0) return {};
  if (count_shortest_paths(input, size, 2) != 1) return {};
  std::vector<uint8_t> label(input, input + cells);
  int c = g;
  while (dist[static_cast<size_t>(c)] > 1) {
    const int r = c / size, col = c % size;
    const int prev[4] = {r + 1 < size ? c + size : -1, r > 0 ? c - size : -1, col + 1 < size ? c + 1 : -1,
                         col > 0 ? c - 1 : -1};
    for (int nb : prev) {
      if (nb >= 0 && dist[static_cast<size_t>(nb)] == dist[static_cast<size_t>(c)] - 1) {
        c = nb;
        break;
      }
    }
    label[static_cast<size_t>(c)] = tok::kPath;
  }
  return label;
}

data::SplitData maze_split(const std::string& name, const std::vector<Maze>& mazes) {
  EQR_CHECK(!mazes.empty(), DataError, "maze split '", name, "': no mazes");
  const int size = mazes.front().size;
  const int64_t n = static_cast<int64_t>(mazes.size());
  data::SplitData d;
  d.name = name;
  d.metadata.pad_id = tok::kPad;
  d.metadata.ignore_label_id = tok::kPad;
  d.metadata.blank_identifier_id = 0;
  d.metadata.vocab_size = kMazeVocabSize;
  d.metadata.seq_len = static_cast<int64_t>(size) * size;
  d.metadata.num_puzzle_identifiers = 1;
  d.metadata.total_groups = n;
  d.metadata.mean_puzzle_examples = 1.0;
  d.metadata.total_samples = n;
  for (const auto& m : mazes) {
    EQR_CHECK(m.size == size, DataError, "maze split '", name, "': mazes of sides ", size, " and ", m.size);
    d.inputs.insert(d.inputs.end(), m.input.begin(), m.input.end());
    d.labels.insert(d.labels.end(), m.label.begin(), m.label.end());
  }
  d.puzzle_identifiers.assign(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i <= n; ++i) {
    d.puzzle_indices.push_back(static_cast<int32_t>(i));
    d.group_indices.push_back(static_cast<int32_t>(i));
  }
  d.validate("maze split '" + name + "'");
  return d;
}

namespace {

/// What a maze build was asked for (the manifest without "complete"): a cached build is reused only when this
/// matches exactly. `all` is resolved (path lengths filled in) and counts train + test.
nlohmann::ordered_json maze_build_request(const MazeGeneratorOptions& all, int64_t train_count, int64_t test_count) {
  return {{"task", kMazeTaskName},
          {"size", all.size},
          {"train", train_count},
          {"test", test_count},
          {"seed", all.seed},
          {"min_path_length", all.min_path_length},
          {"max_path_length", all.max_path_length},
          {"dedupe", all.dedupe}};
}

}  // namespace

data::BuiltDataset build_maze_dataset(const MazeGeneratorOptions& opts, int64_t test_count) {
  EQR_CHECK(opts.count >= 1 && test_count >= 1, UsageError, "maze dataset: ", opts.count, " train and ", test_count,
            " test mazes; expected at least one of each");
  MazeGeneratorOptions all = resolved(opts);
  all.count = opts.count + test_count;
  std::vector<Maze> mazes = generate_mazes(all);
  const auto cut = mazes.begin() + opts.count;
  data::BuiltDataset out;
  out.train = maze_split("train", std::vector<Maze>(mazes.begin(), cut));
  out.test = maze_split("test", std::vector<Maze>(cut, mazes.end()));
  out.manifest = maze_build_request(all, opts.count, test_count);
  out.manifest["complete"] = true;
  return out;
}

MazeTask::MazeTask(const config::RunConfig& config) : data_(config.data), size_(side_of(config.arch.seq_len)) {}

MazeTask::MazeTask(int size) : size_(size) {
  EQR_CHECK(size >= kMinMazeSize && size <= kMaxMazeSize, UsageError, "maze side ", size, ": expected ",
            kMinMazeSize, "..", kMaxMazeSize);
}

TaskGeometry MazeTask::geometry() const {
  const std::string side = std::to_string(size_);
  return {static_cast<int64_t>(size_) * size_, kMazeVocabSize, size_, size_, side + "x" + side};
}

void MazeTask::check_config(const config::RunConfig& config) const {
  Task::check_config(config);
  EQR_CHECK(config.data.source != config::DataSource::kCsv, ConfigError, "config key 'data.source' = \"csv\": data.task = maze has no ",
            "CSV source; expected generated or built (the reference's numpy layout)");
}

data::SplitData MazeTask::load_or_build(const std::string& split) const {
  EQR_CHECK(split == "train" || split == "test", UsageError, "split '", split, "': expected train or test");
  if (data_.source == config::DataSource::kBuilt) return load_split(data_.data_path, split);
  EQR_CHECK(data_.source == config::DataSource::kGenerated, ConfigError, "config key 'data.source' = \"", config::name_of(data_.source),
            "\": data.task = maze reads generated or built data");
  // Train and test from one call (train first), so that the test mazes differ from every training maze.
  MazeGeneratorOptions g;
  g.size = size_;
  g.count = data_.generate_train;
  g.seed = static_cast<uint64_t>(data_.seed);
  data::CachedBuild cache;
  cache.data_path = data_.data_path;
  cache.what = "maze build";
  cache.build = [&] {
    logger()->info("generating {} {}x{} mazes ({} train, {} test, seed {})", g.count + data_.generate_test, size_,
                   size_, data_.generate_train, data_.generate_test, g.seed);
    return build_maze_dataset(g, data_.generate_test);
  };
  // Cached at data.data_path like a generated Sudoku build: reused while its manifest matches the request.
  if (!data_.data_path.empty()) {
    const nlohmann::json request =
        nlohmann::json::parse(maze_build_request(resolved(g), data_.generate_train, data_.generate_test).dump());
    cache.matches = [request](const nlohmann::json& m) { return m == request; };
  }
  cache.load = [this](const std::string& dir, const std::string& s) { return load_split(dir, s); };
  return data::load_or_build_cached(cache, split);
}

data::SplitData MazeTask::load_split(const std::string& dir, const std::string& split) const {
  load_maze_split(dir, split, size_);  // the maze checks (tokens, one S and G, labels = input + path)
  return Task::load_split(dir, split);
}

PuzzleSet MazeTask::read_file(const std::string& path, int64_t max_puzzles) const {
  std::ifstream f(path);
  EQR_CHECK(f.good(), DataError, path, ": cannot read the maze file");
  std::vector<std::string> texts;
  std::string line, block;
  int rows = 0;
  int64_t line_no = 0;
  const size_t n = static_cast<size_t>(size_);
  while (std::getline(f, line) && (max_puzzles <= 0 || static_cast<int64_t>(texts.size()) < max_puzzles)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (rows == 0 && line.empty()) continue;
    if (rows == 0 && line.size() == n * n) {
      texts.push_back(line);
      continue;
    }
    EQR_CHECK(line.size() == n, DataError, path, ":", line_no, ": a row of ", line.size(),
              " characters; expected ", n, " (one row of a ", size_, "x", size_, " maze) or ", n * n, " (a whole maze)");
    block += line;
    if (++rows == size_) {
      texts.push_back(block);
      block.clear();
      rows = 0;
    }
  }
  EQR_CHECK(rows == 0, DataError, path, ": the last maze has ", rows, " of ", size_, " rows");
  EQR_CHECK(!texts.empty(), DataError, path, ": no mazes");
  PuzzleSet set = parse_puzzles(texts);
  set.origin = path;
  return set;
}

PuzzleSet MazeTask::parse_puzzles(const std::vector<std::string>& texts) const {
  EQR_CHECK(!texts.empty(), UsageError, "no mazes given; expected at least one");
  const size_t cells = static_cast<size_t>(size_) * static_cast<size_t>(size_);
  std::vector<std::vector<uint8_t>> inputs, labels;
  std::vector<std::string> names;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string t;
    for (char c : texts[i]) {
      if (c != '\n' && c != '\r') t += c == '.' ? ' ' : c;
    }
    EQR_CHECK(t.size() == cells, DataError, "maze ", i + 1, ": ", t.size(), " characters; expected ", cells,
              " (", size_, "x", size_, ", row-major, from \"", kMazeCharset, "\", '.' = open)");
    std::vector<std::string> rows;
    for (int r = 0; r < size_; ++r) rows.push_back(t.substr(static_cast<size_t>(r * size_), static_cast<size_t>(size_)));
    std::vector<uint8_t> grid;
    try {
      grid = parse_maze(rows);
    } catch (const Error& e) {
      EQR_FAIL(DataError, "maze ", i + 1, ": ", e.what());
    }
    for (size_t c = 0; c < cells; ++c) {
      if (grid[c] == tok::kPath) grid[c] = tok::kOpen;  // an input never marks the path
    }
    EQR_CHECK(std::count(grid.begin(), grid.end(), tok::kStart) == 1 &&
                  std::count(grid.begin(), grid.end(), tok::kGoal) == 1,
              DataError, "maze ", i + 1, ": expected exactly one S and one G");
    labels.push_back(solve_maze(grid.data(), size_));
    inputs.push_back(std::move(grid));
    names.push_back("maze " + std::to_string(i + 1));
  }
  PuzzleSet set = from_grids(inputs, labels, static_cast<int64_t>(cells));
  set.task = std::make_shared<MazeTask>(*this);
  set.names = std::move(names);
  set.origin = "maze strings";
  return set;
}

PuzzleSet MazeTask::generate(int64_t count, uint64_t seed) const {
  MazeGeneratorOptions g;
  g.size = size_;
  g.count = count;
  g.seed = seed;
  std::vector<std::vector<uint8_t>> inputs, labels;
  for (auto& m : generate_mazes(g)) {
    inputs.push_back(std::move(m.input));
    labels.push_back(std::move(m.label));
  }
  PuzzleSet set = from_grids(inputs, labels, static_cast<int64_t>(size_) * size_);
  set.task = std::make_shared<MazeTask>(*this);
  set.origin = "generated " + geometry().board + " mazes (seed " + std::to_string(seed) + ")";
  return set;
}

bool MazeTask::is_valid(const uint8_t* input, const uint8_t* prediction) const {
  try {
    return verify_maze(input, prediction, nullptr, size_).valid;
  } catch (const DataError&) {
    return false;  // the input is not a maze
  }
}

std::string MazeTask::problem(const uint8_t* input, const uint8_t* prediction) const {
  try {
    return verify_maze(input, prediction, nullptr, size_).reason;
  } catch (const DataError& e) {
    return e.what();
  }
}

std::string MazeTask::format(const uint8_t* tokens) const { return format_maze(tokens, size_); }

std::string MazeTask::format_line(const uint8_t* tokens) const {
  std::string out;
  for (int i = 0; i < size_ * size_; ++i) out += maze_char(tokens[i]);
  return out;
}

std::string MazeTask::describe(const uint8_t* input) const {
  int s = 0;
  const std::vector<int> dist = distances(input, size_, tok::kStart, &s);
  const int g = static_cast<int>(std::find(input, input + size_ * size_, tok::kGoal) - input);
  if (s >= size_ * size_ || g >= size_ * size_) return "";
  const int d = dist[static_cast<size_t>(g)];
  return d < 0 ? "G unreachable" : "S-G distance " + std::to_string(d);
}

std::shared_ptr<const Task> make_maze_task(const config::RunConfig& config) {
  return std::make_shared<MazeTask>(config);
}

}  // namespace eqr::task
