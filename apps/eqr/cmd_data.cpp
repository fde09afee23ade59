// `eqr data generate|check|inspect|overlap|solve-exact` and `eqr bench csv|solver|generator`:
// Sudoku CSV tools over the data library (board, sudoku_csv, solver, generator, canonical).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "eqr/core/error.h"
#include "eqr/core/progress.h"
#include "eqr/core/version.h"
#include "eqr/data/canonical.h"
#include "eqr/data/generator.h"
#include "eqr/data/solver.h"
#include "eqr/data/sudoku_csv.h"
#include "eqr/task/maze_task.h"

namespace eqr::app {

namespace {

namespace fs = std::filesystem;
using data::Geometry;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// --geometry 9x9 | --box 3x3 (the box wins for non-standard shapes such as 2x4).
struct GeomArgs {
  std::string side = "9x9";
  std::string box;
  void add(CLI::App* cmd) {
    cmd->add_option("--geometry", side, "Board side: 4x4, 6x6, 9x9 or 16x16")->capture_default_str();
    cmd->add_option("--box", box, "Box shape ROWSxCOLS instead of --geometry, e.g. 2x3");
  }
  Geometry resolve() const { return box.empty() ? Geometry::parse_side(side) : Geometry::parse_box(box); }
};

// A Progress line fed from parallel_for's progress callback.
std::function<void(int64_t)> progress_callback(const std::shared_ptr<Progress>& bar) {
  return [bar](int64_t done) { bar->set(done); };
}

// ../shared (or $EQR_SHARED_DIR) path of a file, searched from the working directory upwards.
std::string shared_file(const std::string& rel) {
  if (const char* env = std::getenv("EQR_SHARED_DIR")) {
    if (fs::exists(fs::path(env) / rel)) return (fs::path(env) / rel).string();
  }
  for (fs::path dir = fs::current_path(); !dir.empty(); dir = dir.parent_path()) {
    for (const char* name : {"shared", "../shared"}) {
      if (fs::exists(dir / name / rel)) return (dir / name / rel).lexically_normal().string();
    }
    if (dir == dir.root_path()) break;
  }
  EQR_FAIL(UsageError, "cannot find shared/", rel, " (set EQR_SHARED_DIR or pass --file)");
}

void print_report(const data::CsvReport& r) {
  std::cout << r.path << ": " << r.summary() << "\n";
  for (const auto& e : r.examples) std::cout << "  " << e << "\n";
}

// Histogram of integer values: exact keys when few distinct values, else power-of-two buckets.
void print_histogram(const std::string& title, const std::map<int64_t, int64_t>& counts) {
  std::vector<std::pair<std::string, int64_t>> ordered;
  if (counts.size() <= 24) {
    for (const auto& [k, v] : counts) ordered.emplace_back(std::to_string(k), v);
  } else {
    std::map<int64_t, int64_t> buckets;  // key: lower bound of [2^k, 2^(k+1)), or the value if <= 0
    for (const auto& [k, v] : counts) {
      int64_t lo = k <= 0 ? k : 1;
      while (k > 0 && lo * 2 <= k) lo *= 2;
      buckets[lo] += v;
    }
    for (const auto& [lo, v] : buckets) {
      ordered.emplace_back(lo <= 1 ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(2 * lo - 1), v);
    }
  }
  int64_t total = 0;
  for (const auto& kv : ordered) total += kv.second;
  std::cout << title << ":\n";
  for (const auto& [label, v] : ordered) {
    const int bar = total ? static_cast<int>(40.0 * v / total + 0.5) : 0;
    std::printf("  %12s %10lld %6.2f%% %s\n", label.c_str(), static_cast<long long>(v), total ? 100.0 * v / total : 0.0,
                std::string(bar, '#').c_str());
  }
}

void print_bench(const std::string& name, const nlohmann::json& figures) {
  nlohmann::json j = {{"bench", name}, {"git_sha", git_sha()}, {"version", version()}};
  j.update(figures);
  std::cout << j.dump() << "\n";
}

// ---- data generate ----
void add_generate(CLI::App* parent) {
  struct Args {
    GeomArgs geom;
    data::GeneratorOptions opts;
    std::string out;
    std::string task = "sudoku";
    task::MazeGeneratorOptions maze;
    int64_t test_count = 100;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = parent->add_subcommand(
      "generate", "Generate unique-solution minimal puzzles into a Sudoku CSV (--task maze: a maze dataset directory)");
  a->geom.add(cmd);
  cmd->add_option("--task", a->task, "sudoku (a CSV) or maze (train/ and test/ in the numpy layout)")
      ->check(CLI::IsMember({"sudoku", "maze"}))
      ->capture_default_str();
  cmd->add_option("--size", a->maze.size, "maze: side n")->capture_default_str();
  cmd->add_option("--test-count", a->test_count, "maze: test mazes (after the --count training mazes)")
      ->capture_default_str();
  cmd->add_option("--min-path-length", a->maze.min_path_length, "maze: shortest path >= this (0 = the side's default)");
  cmd->add_option("--max-path-length", a->maze.max_path_length, "maze: shortest path <= this (0 = the side's default)");
  cmd->add_option("-n,--count", a->opts.count, "Number of puzzles")->capture_default_str();
  cmd->add_option("--seed", a->opts.seed, "Root seed (puzzle i uses derive_seed(seed, i))")->capture_default_str();
  cmd->add_option("--min-givens", a->opts.min_givens, "Stop removing clues at this many givens (0 = minimal)")
      ->capture_default_str();
  cmd->add_option("--max-givens", a->opts.max_givens, "Reject puzzles with more givens (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--min-rating", a->opts.min_rating, "Reject puzzles rated below this (solver backtracks)")
      ->capture_default_str();
  cmd->add_option("--threads", a->opts.threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--max-attempts", a->opts.max_attempts, "Rejections allowed per puzzle")->capture_default_str();
  cmd->add_option("--source", a->opts.source, "Value of the source column")->capture_default_str();
  cmd->add_option("-o,--out", a->out, "Output CSV")->required();
  cmd->callback([a] {
    if (a->task == "maze") {
      a->maze.count = a->opts.count;
      a->maze.seed = a->opts.seed;
      a->maze.threads = a->opts.threads;
      const auto t0 = std::chrono::steady_clock::now();
      const data::BuiltDataset built = task::build_maze_dataset(a->maze, a->test_count);
      data::write_dataset(a->out, built);
      std::printf("wrote %lld train and %lld test %dx%d mazes (paths %d-%d) to %s in %.2fs\n",
                  static_cast<long long>(built.train.num_examples()), static_cast<long long>(built.test.num_examples()),
                  a->maze.size, a->maze.size, built.manifest["min_path_length"].get<int>(),
                  built.manifest["max_path_length"].get<int>(), a->out.c_str(), seconds_since(t0));
      return;
    }
    a->opts.geom = a->geom.resolve();
    auto bar = std::make_shared<Progress>("generate " + a->opts.geom.name(), a->opts.count, "puzzles");
    const auto t0 = std::chrono::steady_clock::now();
    const auto rows = data::generate_puzzles(a->opts, progress_callback(bar));
    const double dt = seconds_since(t0);
    bar->finish();
    data::write_sudoku_csv(a->out, rows);
    double givens = 0, rating = 0;
    for (const auto& r : rows) {
      givens += data::count_givens(data::parse_grid(r.question, a->opts.geom));
      rating += static_cast<double>(r.rating);
    }
    const double n = std::max<double>(1.0, static_cast<double>(rows.size()));
    std::printf("wrote %zu %s puzzles to %s in %.2fs (%.1f puzzles/s); mean givens %.2f, mean rating %.2f\n",
                rows.size(), a->opts.geom.name().c_str(), a->out.c_str(), dt, rows.size() / std::max(dt, 1e-9),
                givens / n, rating / n);
  });
}

// ---- data check ----
void add_check(CLI::App* parent) {
  struct Args {
    GeomArgs geom;
    std::vector<std::string> files;
    bool skip_invalid = false;
    bool unique = false;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = parent->add_subcommand("check", "Validate Sudoku CSVs: header, fields, answers, givens (exit 1 on defects)");
  a->geom.add(cmd);
  cmd->add_option("files", a->files, "CSV files")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--skip-invalid", a->skip_invalid, "Count every defect kind instead of stopping at the first bad row");
  cmd->add_flag("--unique", a->unique, "Also check with the solver that each puzzle has exactly one solution");
  cmd->add_option("--threads", a->threads, "Worker threads for --unique (0 = all cores)");
  cmd->callback([a] {
    data::CsvOptions opts;
    opts.geom = a->geom.resolve();
    opts.skip_invalid = a->skip_invalid;
    int64_t bad = 0;
    for (const auto& f : a->files) {
      const auto set = data::read_sudoku_csv(f, opts);
      print_report(set.report);
      bad += set.report.rows_invalid;
      if (!a->unique) continue;
      const data::Solver solver(opts.geom);
      std::vector<int> counts(set.rows.size());
      auto bar = std::make_shared<Progress>("unique " + f, static_cast<int64_t>(set.rows.size()), "puzzles");
      data::parallel_for(
          static_cast<int64_t>(set.rows.size()), a->threads,
          [&](int64_t i) { counts[i] = solver.count_solutions(data::parse_grid(set.rows[i].question, opts.geom), 2); },
          progress_callback(bar));
      bar->finish();
      int64_t not_unique = 0;
      for (size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] == 1) continue;
        if (not_unique++ < 5) {
          std::cout << "  " << f << ":" << set.rows[i].line << ": " << (counts[i] ? "several solutions" : "no solution")
                    << "\n";
        }
      }
      std::cout << f << ": " << counts.size() - not_unique << " unique, " << not_unique << " not unique\n";
      bad += not_unique;
    }
    EQR_CHECK(bad == 0, DataError, "check: ", bad, " bad rows (see above)");
  });
}

// ---- data inspect ----
void add_inspect(CLI::App* parent) {
  struct Args {
    GeomArgs geom;
    std::string file;
    int examples = 3;
    bool skip_invalid = false;
    std::string task = "sudoku";
  };
  auto a = std::make_shared<Args>();
  auto* cmd = parent->add_subcommand("inspect", "Counts, sources, givens and rating histograms, a few examples");
  a->geom.add(cmd);
  cmd->add_option("file", a->file, "CSV file (--task maze: a dataset directory)")->required()->check(CLI::ExistingPath);
  cmd->add_option("--task", a->task, "sudoku or maze (statistics of each split of a numpy-layout directory)")
      ->check(CLI::IsMember({"sudoku", "maze"}))
      ->capture_default_str();
  cmd->add_option("--examples", a->examples, "Pretty-printed examples")->capture_default_str();
  cmd->add_flag("--skip-invalid", a->skip_invalid, "Skip and count bad rows instead of stopping");
  cmd->callback([a] {
    if (a->task == "maze") {
      for (const char* split : {"train", "test"}) {
        const task::MazeSplit m = task::load_maze_split(a->file, split);
        const at::Tensor in = m.inputs.contiguous(), lab = m.labels.contiguous();
        const int64_t n = in.size(0), s = in.size(1);
        std::cout << split << ":\n"
                  << task::format_maze_stats(task::maze_stats(in.data_ptr<uint8_t>(), lab.data_ptr<uint8_t>(), n, m.size));
        for (int i = 0; i < a->examples && i < n; ++i) {
          std::cout << "\n" << split << " maze " << i * n / a->examples << " (label)\n"
                    << task::format_maze(lab.data_ptr<uint8_t>() + i * n / a->examples * s, m.size);
        }
        std::cout << "\n";
      }
      return;
    }
    data::CsvOptions opts;
    opts.geom = a->geom.resolve();
    opts.skip_invalid = a->skip_invalid;
    const auto set = data::read_sudoku_csv(a->file, opts);
    print_report(set.report);
    std::map<std::string, int64_t> sources;
    std::map<int64_t, int64_t> givens, ratings;
    for (const auto& r : set.rows) {
      ++sources[r.source];
      ++givens[data::count_givens(data::parse_grid(r.question, opts.geom))];
      ++ratings[r.rating];
    }
    std::cout << "sources:\n";
    for (const auto& [s, c] : sources) std::printf("  %-40s %10lld\n", s.c_str(), static_cast<long long>(c));
    print_histogram("givens", givens);
    print_histogram("rating", ratings);
    for (int i = 0; i < a->examples && i < static_cast<int>(set.rows.size()); ++i) {
      const auto& r = set.rows[static_cast<size_t>(i) * set.rows.size() / a->examples];
      std::cout << "\nline " << r.line << " (" << r.source << ", rating " << r.rating << ")\n"
                << data::pretty_grid(data::parse_grid(r.question, opts.geom), opts.geom);
    }
  });
}

// ---- data overlap ----
void add_overlap(CLI::App* parent) {
  struct Args {
    GeomArgs geom;
    std::string a, b;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = parent->add_subcommand(
      "overlap", "How many puzzles of B have an equivalent (same canonical form under the Sudoku symmetries) in A");
  a->geom.add(cmd);
  cmd->add_option("a", a->a, "Reference CSV (A)")->required()->check(CLI::ExistingFile);
  cmd->add_option("b", a->b, "Queried CSV (B)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)");
  cmd->callback([a] {
    data::CsvOptions opts;
    opts.geom = a->geom.resolve();
    auto questions = [&](const std::string& path) {
      const auto set = data::read_sudoku_csv(path, opts);
      std::vector<std::string> q;
      q.reserve(set.rows.size());
      for (const auto& r : set.rows) q.push_back(r.question);
      return q;
    };
    auto forms = [&](const std::string& path, const std::vector<std::string>& q) {
      auto bar = std::make_shared<Progress>("canonical " + path, static_cast<int64_t>(q.size()), "puzzles");
      auto f = data::canonical_forms(q, opts.geom, a->threads, progress_callback(bar));
      bar->finish();
      return f;
    };
    const auto qa = questions(a->a), qb = questions(a->b);
    const auto fa = forms(a->a, qa), fb = forms(a->b, qb);
    const std::unordered_set<std::string> set_a(fa.begin(), fa.end());
    std::unordered_set<std::string> exact_a;
    for (const auto& q : qa) exact_a.insert(data::format_grid(data::parse_grid(q, opts.geom), opts.geom));
    const std::unordered_set<std::string> set_b(fb.begin(), fb.end());
    int64_t equivalent = 0, exact = 0;
    for (size_t i = 0; i < qb.size(); ++i) {
      equivalent += set_a.count(fb[i]);
      exact += exact_a.count(data::format_grid(data::parse_grid(qb[i], opts.geom), opts.geom));
    }
    std::printf("A %s: %zu puzzles, %zu distinct up to symmetry\n", a->a.c_str(), qa.size(), set_a.size());
    std::printf("B %s: %zu puzzles, %zu distinct up to symmetry\n", a->b.c_str(), qb.size(), set_b.size());
    std::printf("B puzzles with an equivalent in A: %lld (%.2f%%); identical strings: %lld\n",
                static_cast<long long>(equivalent), qb.empty() ? 0.0 : 100.0 * equivalent / qb.size(),
                static_cast<long long>(exact));
    std::cout << nlohmann::json{{"a", a->a},           {"b", a->b},
                                {"a_rows", qa.size()},  {"a_distinct", set_a.size()},
                                {"b_rows", qb.size()},  {"b_distinct", set_b.size()},
                                {"b_equivalent_in_a", equivalent}, {"b_identical_in_a", exact}}
                     .dump()
              << "\n";
  });
}

// ---- data solve-exact ----
void add_solve_exact(CLI::App* parent) {
  struct Args {
    GeomArgs geom;
    std::vector<std::string> grids;
    std::string file, out;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = parent->add_subcommand(
      "solve-exact", "Exact solver: solve grid strings, or a CSV (check answers, write our ratings with --out)");
  a->geom.add(cmd);
  cmd->add_option("grids", a->grids, "Grid strings ('.' or '0' = blank)");
  cmd->add_option("--file", a->file, "CSV to solve")->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", a->out, "With --file: write the rows with rating = our backtrack count");
  cmd->add_option("--threads", a->threads, "Worker threads for --file (0 = all cores)");
  cmd->callback([a] {
    const Geometry geom = a->geom.resolve();
    const data::Solver solver(geom);
    EQR_CHECK(!a->grids.empty() || !a->file.empty(), UsageError, "solve-exact: give grid strings or --file");
    for (const auto& g : a->grids) {
      const auto puzzle = data::parse_grid(g, geom);
      const auto result = solver.solve(puzzle);
      const int count = solver.count_solutions(puzzle, 2);
      std::cout << data::pretty_grid(puzzle, geom) << "solutions: "
                << (count == 0 ? "none" : count == 1 ? "exactly 1" : "2 or more")
                << ", backtracks " << result.stats.backtracks << ", guesses " << result.stats.guesses << "\n";
      if (result.solved) std::cout << data::format_grid(result.solution, geom) << "\n";
    }
    if (a->file.empty()) return;
    data::CsvOptions opts;
    opts.geom = geom;
    auto set = data::read_sudoku_csv(a->file, opts);
    std::vector<char> wrong(set.rows.size(), 0);
    auto bar = std::make_shared<Progress>("solve " + a->file, static_cast<int64_t>(set.rows.size()), "puzzles");
    data::parallel_for(
        static_cast<int64_t>(set.rows.size()), a->threads,
        [&](int64_t i) {
          auto& row = set.rows[i];
          const auto r = solver.solve(data::parse_grid(row.question, geom));
          wrong[i] = !r.solved || data::format_grid(r.solution, geom) != row.answer;
          row.rating = r.stats.backtracks;
        },
        progress_callback(bar));
    bar->finish();
    const auto bad = std::count(wrong.begin(), wrong.end(), 1);
    std::cout << a->file << ": " << set.rows.size() - bad << " solved and equal to the answer, " << bad
              << " differ\n";
    if (!a->out.empty()) data::write_sudoku_csv(a->out, set.rows);
    EQR_CHECK(bad == 0, DataError, "solve-exact: ", bad, " puzzles of ", a->file, " differ from their answer");
  });
}

// ---- bench csv ----
// Synthetic rows: one random solution, each row relabelled by a random digit permutation, about 60% blanks.
void write_synthetic_csv(const std::string& path, int64_t rows, uint64_t seed) {
  const Geometry geom;
  const data::Solver solver(geom);
  std::mt19937_64 rng(seed);
  const data::Grid base = solver.random_solution(rng);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  EQR_CHECK(f, DataError, path, ": cannot open for writing");
  std::string buf(data::kSudokuCsvHeader);
  buf += '\n';
  std::array<uint8_t, 10> map{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (int64_t i = 0; i < rows; ++i) {
    std::shuffle(map.begin() + 1, map.end(), rng);
    std::string q(81, '.'), ans(81, '.');
    uint64_t bits = rng();
    for (int c = 0; c < 81; ++c) {
      ans[c] = data::char_of_value(map[base[c]]);
      if (c % 32 == 0 && c) bits = rng();
      if ((bits >> (2 * (c % 32))) % 5 < 2) q[c] = ans[c];  // ~40% givens
    }
    buf += "synthetic_bench,";
    buf += q;
    buf += ',';
    buf += ans;
    buf += ',';
    buf += std::to_string(static_cast<int64_t>(rng() % 200));
    buf += '\n';
    if (buf.size() > (1u << 24)) {
      std::fwrite(buf.data(), 1, buf.size(), f);
      buf.clear();
    }
  }
  std::fwrite(buf.data(), 1, buf.size(), f);
  EQR_CHECK(std::fclose(f) == 0, DataError, path, ": write failed");
}

void add_bench_csv(CLI::App* bench) {
  struct Args {
    int64_t rows = 3831994;
    std::string file;
    bool keep = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = bench->add_subcommand("csv", "Sudoku CSV reader: rows/s on a synthetic file (or --file)");
  cmd->add_option("--rows", a->rows, "Synthetic rows (default: the size of Sudoku-Extreme train.csv)")
      ->capture_default_str();
  cmd->add_option("--file", a->file, "Read this CSV instead of a synthetic one")->check(CLI::ExistingFile);
  cmd->add_flag("--keep", a->keep, "Keep the synthetic file");
  cmd->callback([a] {
    std::string path = a->file;
    const bool synthetic = path.empty();
    if (synthetic) {
      path = (fs::temp_directory_path() / ("eqr_bench_csv_" + std::to_string(std::random_device{}()) + ".csv")).string();
      const auto t0 = std::chrono::steady_clock::now();
      write_synthetic_csv(path, a->rows, 1);
      std::printf("wrote %lld synthetic rows to %s in %.2fs\n", static_cast<long long>(a->rows), path.c_str(),
                  seconds_since(t0));
    }
    const double mb = static_cast<double>(fs::file_size(path)) / 1e6;
    // Correctness first: the streaming pass and the materialising pass agree on every count.
    auto t0 = std::chrono::steady_clock::now();
    const std::string text = data::read_text_file(path);
    const double t_read = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    int64_t givens = 0;
    const auto report = data::visit_sudoku_csv(text, path, {}, [&](const data::SudokuRowView& r) {
      givens += static_cast<int64_t>(r.question.size()) - std::count(r.question.begin(), r.question.end(), '.');
    });
    const double t_visit = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const auto set = data::read_sudoku_csv(path);
    const double t_full = seconds_since(t0);
    EQR_CHECK(set.report.rows_kept == report.rows_kept && report.rows_invalid == 0 &&
                  (!synthetic || report.rows_kept == a->rows),
              RuntimeError, "bench csv: reader disagrees with itself or with the synthetic row count");
    if (synthetic && !a->keep) fs::remove(path);
    const double rows = static_cast<double>(set.rows.size());
    std::printf("%-44s %10s %12s %10s\n", "stage", "seconds", "rows/s", "MB/s");
    std::printf("%-44s %10.3f %12s %10.1f\n", "read file into memory", t_read, "-", mb / t_read);
    std::printf("%-44s %10.3f %12.0f %10.1f\n", "check rows (visit_sudoku_csv, no copies)", t_visit, rows / t_visit,
                mb / t_visit);
    std::printf("%-44s %10.3f %12.0f %10.1f\n", "read_sudoku_csv (read + check + SudokuRow)", t_full, rows / t_full,
                mb / t_full);
    print_bench("csv", {{"rows", set.rows.size()}, {"megabytes", mb}, {"read_s", t_read}, {"check_s", t_visit},
                        {"read_sudoku_csv_s", t_full}, {"rows_per_s", rows / t_full}, {"mean_givens",
                        rows ? givens / rows : 0.0}});
  });
}

// ---- bench solver ----
void add_bench_solver(CLI::App* bench) {
  struct Args {
    std::string file;
    int64_t limit = 0;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = bench->add_subcommand("solver", "Exact solver: puzzles/s on one thread (default: forum_hardest_1905_11+)");
  cmd->add_option("--file", a->file, "Sudoku CSV with answers")->check(CLI::ExistingFile);
  cmd->add_option("--limit", a->limit, "Use only the first N puzzles (0 = all)");
  cmd->callback([a] {
    const std::string path = a->file.empty() ? shared_file(
        "data/external/tdoku_forum_hardest_1905_11plus/forum_hardest_1905_11plus.csv") : a->file;
    data::CsvOptions opts;
    opts.max_rows = a->limit;
    const auto set = data::read_sudoku_csv(path, opts);
    std::vector<data::Grid> puzzles;
    for (const auto& r : set.rows) puzzles.push_back(data::parse_grid(r.question, set.geom));
    const data::Solver solver(set.geom);
    // Correctness and warm-up: every solution equals the published answer.
    for (size_t i = 0; i < puzzles.size(); ++i) {
      const auto r = solver.solve(puzzles[i]);
      EQR_CHECK(r.solved && data::format_grid(r.solution, set.geom) == set.rows[i].answer, RuntimeError,
                "bench solver: ", path, ":", set.rows[i].line, ": solution differs from the answer");
    }
    auto t0 = std::chrono::steady_clock::now();
    int64_t backtracks = 0, guesses = 0;
    for (const auto& p : puzzles) {
      const auto r = solver.solve(p);
      backtracks += r.stats.backtracks;
      guesses += r.stats.guesses;
    }
    const double t_solve = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    int64_t unique = 0;
    for (const auto& p : puzzles) unique += solver.count_solutions(p, 2) == 1;
    const double t_unique = seconds_since(t0);
    const double n = static_cast<double>(puzzles.size());
    std::printf("%s: %zu puzzles, all solutions equal the answers, %lld unique\n", path.c_str(), puzzles.size(),
                static_cast<long long>(unique));
    std::printf("solve:             %.3fs  %10.0f puzzles/s  (mean backtracks %.2f, guesses %.2f)\n", t_solve,
                n / t_solve, backtracks / n, guesses / n);
    std::printf("count_solutions(2): %.3fs  %10.0f puzzles/s\n", t_unique, n / t_unique);
    print_bench("solver", {{"file", path}, {"puzzles", puzzles.size()}, {"threads", 1},
                           {"solve_puzzles_per_s", n / t_solve}, {"unique_puzzles_per_s", n / t_unique},
                           {"mean_backtracks", backtracks / n}, {"mean_guesses", guesses / n}});
  });
}

// ---- bench generator ----
void add_bench_generator(CLI::App* bench) {
  struct Args {
    GeomArgs geom;
    int64_t count = 200;
    int threads = 1;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = bench->add_subcommand("generator", "Puzzle generator: puzzles/s (checked unique afterwards)");
  a->geom.add(cmd);
  cmd->add_option("-n,--count", a->count, "Puzzles")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)")->capture_default_str();
  cmd->callback([a] {
    data::GeneratorOptions opts;
    opts.geom = a->geom.resolve();
    opts.count = a->count;
    opts.threads = a->threads;
    opts.seed = 1;
    const auto t0 = std::chrono::steady_clock::now();
    const auto rows = data::generate_puzzles(opts);
    const double dt = seconds_since(t0);
    const data::Solver solver(opts.geom);
    double givens = 0;
    for (const auto& r : rows) {
      const auto q = data::parse_grid(r.question, opts.geom);
      EQR_CHECK(solver.count_solutions(q, 2) == 1, RuntimeError, "bench generator: a puzzle is not unique");
      givens += data::count_givens(q);
    }
    const double n = static_cast<double>(rows.size());
    std::printf("%s: %zu puzzles in %.3fs on %d thread(s): %.1f puzzles/s, mean givens %.2f (all unique)\n",
                opts.geom.name().c_str(), rows.size(), dt, a->threads, n / dt, givens / n);
    print_bench("generator", {{"geometry", opts.geom.name()}, {"puzzles", rows.size()}, {"threads", a->threads},
                              {"puzzles_per_s", n / dt}, {"mean_givens", givens / n}});
  });
}

}  // namespace

void register_data(CLI::App& app) {
  auto* cmd = app.add_subcommand("data", "Sudoku data: generate, check, inspect, overlap, solve-exact");
  cmd->require_subcommand(1);
  add_generate(cmd);
  add_check(cmd);
  add_inspect(cmd);
  add_overlap(cmd);
  add_solve_exact(cmd);
}

void register_bench_data(CLI::App& app) {
  auto* bench = app.get_subcommand("bench");
  add_bench_csv(bench);
  add_bench_solver(bench);
  add_bench_generator(bench);
}

}  // namespace eqr::app
