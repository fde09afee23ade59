// Sudoku's commands (cli.h): `eqr data generate|check|inspect|overlap|solve-exact|build` and
// `eqr bench csv|solver|generator`, over the board code of this folder.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "eqr/core/error.h"
#include "eqr/core/parallel.h"
#include "eqr/core/progress.h"
#include "eqr/core/version.h"
#include "eqr/task/cli.h"
#include "eqr/task/sudoku/build.h"
#include "eqr/task/sudoku/canonical.h"
#include "eqr/task/sudoku/csv.h"
#include "eqr/task/sudoku/generator.h"
#include "eqr/task/sudoku/solver.h"
#include "eqr/task/sudoku/sudoku_task.h"

namespace eqr::task {

namespace {

namespace fs = std::filesystem;
using sudoku::Geometry;

// --geometry 9x9 | --box 3x3 (the box wins for non-standard shapes such as 2x4).
struct GeomArgs {
  std::string side = "9x9";
  std::string box;
  void add(VerbOptions& o) {
    o.add("--geometry", side, "Board side: 4x4, 6x6, 9x9 or 16x16")->capture_default_str();
    o.add("--box", box, "Box shape ROWSxCOLS instead of --geometry, e.g. 2x3");
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

void print_report(const sudoku::CsvReport& r) {
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
VerbAction setup_generate(VerbOptions& o) {
  struct Args {
    GeomArgs geom;
    sudoku::GeneratorOptions opts;
    std::string out;
  };
  auto a = std::make_shared<Args>();
  a->geom.add(o);
  o.add("-n,--count", a->opts.count, "Number of puzzles")->capture_default_str();
  o.add("--seed", a->opts.seed, "Root seed (puzzle i uses derive_seed(seed, i))")->capture_default_str();
  o.add("--min-givens", a->opts.min_givens, "Stop removing clues at this many givens (0 = minimal)")
      ->capture_default_str();
  o.add("--max-givens", a->opts.max_givens, "Reject puzzles with more givens (0 = no limit)")->capture_default_str();
  o.add("--min-rating", a->opts.min_rating, "Reject puzzles rated below this (solver backtracks)")
      ->capture_default_str();
  o.add("--threads", a->opts.threads, "Worker threads (0 = all cores)")->capture_default_str();
  o.add("--max-attempts", a->opts.max_attempts, "Rejections allowed per puzzle")->capture_default_str();
  o.add("--source", a->opts.source, "Value of the source column")->capture_default_str();
  o.add("-o,--out", a->out, "Output (Sudoku: a CSV)")->required();
  return [a] {
    a->opts.geom = a->geom.resolve();
    auto bar = std::make_shared<Progress>("generate " + a->opts.geom.name(), a->opts.count, "puzzles");
    const auto t0 = std::chrono::steady_clock::now();
    const auto rows = sudoku::generate_puzzles(a->opts, progress_callback(bar));
    const double dt = seconds_since(t0);
    bar->finish();
    sudoku::write_sudoku_csv(a->out, rows);
    double givens = 0, rating = 0;
    for (const auto& r : rows) {
      givens += sudoku::count_givens(sudoku::parse_grid(r.question, a->opts.geom));
      rating += static_cast<double>(r.rating);
    }
    const double n = std::max<double>(1.0, static_cast<double>(rows.size()));
    std::printf("wrote %zu %s puzzles to %s in %.2fs (%.1f puzzles/s); mean givens %.2f, mean rating %.2f\n",
                rows.size(), a->opts.geom.name().c_str(), a->out.c_str(), dt, rows.size() / std::max(dt, 1e-9),
                givens / n, rating / n);
  };
}

// ---- data check ----
VerbAction setup_check(VerbOptions& o) {
  struct Args {
    GeomArgs geom;
    std::vector<std::string> files;
    bool skip_invalid = false;
    bool unique = false;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  a->geom.add(o);
  o.add("files", a->files, "CSV files")->required()->check(CLI::ExistingFile);
  o.flag("--skip-invalid", a->skip_invalid, "Count every defect kind instead of stopping at the first bad row");
  o.flag("--unique", a->unique, "Also check with the solver that each puzzle has exactly one solution");
  o.add("--threads", a->threads, "Worker threads for --unique (0 = all cores)");
  return [a] {
    sudoku::CsvOptions opts;
    opts.geom = a->geom.resolve();
    opts.skip_invalid = a->skip_invalid;
    int64_t bad = 0;
    for (const auto& f : a->files) {
      const auto set = sudoku::read_sudoku_csv(f, opts);
      print_report(set.report);
      bad += set.report.rows_invalid;
      if (!a->unique) continue;
      const sudoku::Solver solver(opts.geom);
      std::vector<int> counts(set.rows.size());
      auto bar = std::make_shared<Progress>("unique " + f, static_cast<int64_t>(set.rows.size()), "puzzles");
      parallel_for(
          static_cast<int64_t>(set.rows.size()), a->threads,
          [&](int64_t i) { counts[i] = solver.count_solutions(sudoku::parse_grid(set.rows[i].question, opts.geom), 2); },
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
  };
}

// ---- data inspect ----
VerbAction setup_inspect(VerbOptions& o) {
  struct Args {
    GeomArgs geom;
    std::string file;
    int examples = 3;
    bool skip_invalid = false;
  };
  auto a = std::make_shared<Args>();
  a->geom.add(o);
  o.add("file", a->file, "CSV file")->required()->check(CLI::ExistingPath);
  o.add("--examples", a->examples, "Pretty-printed examples")->capture_default_str();
  o.flag("--skip-invalid", a->skip_invalid, "Skip and count bad rows instead of stopping");
  return [a] {
    sudoku::CsvOptions opts;
    opts.geom = a->geom.resolve();
    opts.skip_invalid = a->skip_invalid;
    const auto set = sudoku::read_sudoku_csv(a->file, opts);
    print_report(set.report);
    std::map<std::string, int64_t> sources;
    std::map<int64_t, int64_t> givens, ratings;
    for (const auto& r : set.rows) {
      ++sources[r.source];
      ++givens[sudoku::count_givens(sudoku::parse_grid(r.question, opts.geom))];
      ++ratings[r.rating];
    }
    std::cout << "sources:\n";
    for (const auto& [s, c] : sources) std::printf("  %-40s %10lld\n", s.c_str(), static_cast<long long>(c));
    print_histogram("givens", givens);
    print_histogram("rating", ratings);
    for (int i = 0; i < a->examples && i < static_cast<int>(set.rows.size()); ++i) {
      const auto& r = set.rows[static_cast<size_t>(i) * set.rows.size() / a->examples];
      std::cout << "\nline " << r.line << " (" << r.source << ", rating " << r.rating << ")\n"
                << sudoku::pretty_grid(sudoku::parse_grid(r.question, opts.geom), opts.geom);
    }
  };
}

// ---- data overlap ----
VerbAction setup_overlap(VerbOptions& o) {
  struct Args {
    GeomArgs geom;
    std::string a, b;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  a->geom.add(o);
  o.add("a", a->a, "Reference CSV (A)")->required()->check(CLI::ExistingFile);
  o.add("b", a->b, "Queried CSV (B)")->required()->check(CLI::ExistingFile);
  o.add("--threads", a->threads, "Worker threads (0 = all cores)");
  return [a] {
    sudoku::CsvOptions opts;
    opts.geom = a->geom.resolve();
    auto questions = [&](const std::string& path) {
      const auto set = sudoku::read_sudoku_csv(path, opts);
      std::vector<std::string> q;
      q.reserve(set.rows.size());
      for (const auto& r : set.rows) q.push_back(r.question);
      return q;
    };
    auto forms = [&](const std::string& path, const std::vector<std::string>& q) {
      auto bar = std::make_shared<Progress>("canonical " + path, static_cast<int64_t>(q.size()), "puzzles");
      auto f = sudoku::canonical_forms(q, opts.geom, a->threads, progress_callback(bar));
      bar->finish();
      return f;
    };
    const auto qa = questions(a->a), qb = questions(a->b);
    const auto fa = forms(a->a, qa), fb = forms(a->b, qb);
    const std::unordered_set<std::string> set_a(fa.begin(), fa.end());
    std::unordered_set<std::string> exact_a;
    for (const auto& q : qa) exact_a.insert(sudoku::format_grid(sudoku::parse_grid(q, opts.geom), opts.geom));
    const std::unordered_set<std::string> set_b(fb.begin(), fb.end());
    int64_t equivalent = 0, exact = 0;
    for (size_t i = 0; i < qb.size(); ++i) {
      equivalent += set_a.count(fb[i]);
      exact += exact_a.count(sudoku::format_grid(sudoku::parse_grid(qb[i], opts.geom), opts.geom));
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
  };
}

// ---- data solve-exact ----
VerbAction setup_solve_exact(VerbOptions& o) {
  struct Args {
    GeomArgs geom;
    std::vector<std::string> grids;
    std::string file, out;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  a->geom.add(o);
  o.add("grids", a->grids, "Grid strings ('.' or '0' = blank)");
  o.add("--file", a->file, "CSV to solve")->check(CLI::ExistingFile);
  o.add("-o,--out", a->out, "With --file: write the rows with rating = our backtrack count");
  o.add("--threads", a->threads, "Worker threads for --file (0 = all cores)");
  return [a] {
    const Geometry geom = a->geom.resolve();
    const sudoku::Solver solver(geom);
    EQR_CHECK(!a->grids.empty() || !a->file.empty(), UsageError, "solve-exact: give grid strings or --file");
    for (const auto& g : a->grids) {
      const auto puzzle = sudoku::parse_grid(g, geom);
      const auto result = solver.solve(puzzle);
      const int count = solver.count_solutions(puzzle, 2);
      std::cout << sudoku::pretty_grid(puzzle, geom) << "solutions: "
                << (count == 0 ? "none" : count == 1 ? "exactly 1" : "2 or more")
                << ", backtracks " << result.stats.backtracks << ", guesses " << result.stats.guesses << "\n";
      if (result.solved) std::cout << sudoku::format_grid(result.solution, geom) << "\n";
    }
    if (a->file.empty()) return;
    sudoku::CsvOptions opts;
    opts.geom = geom;
    auto set = sudoku::read_sudoku_csv(a->file, opts);
    std::vector<char> wrong(set.rows.size(), 0);
    auto bar = std::make_shared<Progress>("solve " + a->file, static_cast<int64_t>(set.rows.size()), "puzzles");
    parallel_for(
        static_cast<int64_t>(set.rows.size()), a->threads,
        [&](int64_t i) {
          auto& row = set.rows[i];
          const auto r = solver.solve(sudoku::parse_grid(row.question, geom));
          wrong[i] = !r.solved || sudoku::format_grid(r.solution, geom) != row.answer;
          row.rating = r.stats.backtracks;
        },
        progress_callback(bar));
    bar->finish();
    const auto bad = std::count(wrong.begin(), wrong.end(), 1);
    std::cout << a->file << ": " << set.rows.size() - bad << " solved and equal to the answer, " << bad
              << " differ\n";
    if (!a->out.empty()) sudoku::write_sudoku_csv(a->out, set.rows);
    EQR_CHECK(bad == 0, DataError, "solve-exact: ", bad, " puzzles of ", a->file, " differ from their answer");
  };
}

// ---- bench csv ----
// Synthetic rows: one random solution, each row relabelled by a random digit permutation, about 60% blanks.
void write_synthetic_csv(const std::string& path, int64_t rows, uint64_t seed) {
  const Geometry geom;
  const sudoku::Solver solver(geom);
  std::mt19937_64 rng(seed);
  const sudoku::Grid base = solver.random_solution(rng);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  EQR_CHECK(f, DataError, path, ": cannot open for writing");
  std::string buf(sudoku::kSudokuCsvHeader);
  buf += '\n';
  std::array<uint8_t, 10> map{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  for (int64_t i = 0; i < rows; ++i) {
    std::shuffle(map.begin() + 1, map.end(), rng);
    std::string q(81, '.'), ans(81, '.');
    uint64_t bits = rng();
    for (int c = 0; c < 81; ++c) {
      ans[c] = sudoku::char_of_value(map[base[c]]);
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

VerbAction setup_bench_csv(VerbOptions& o) {
  struct Args {
    int64_t rows = 3831994;
    std::string file;
    bool keep = false;
  };
  auto a = std::make_shared<Args>();
  o.add("--rows", a->rows, "Synthetic rows (default: the size of Sudoku-Extreme train.csv)")
      ->capture_default_str();
  o.add("--file", a->file, "Read this CSV instead of a synthetic one")->check(CLI::ExistingFile);
  o.flag("--keep", a->keep, "Keep the synthetic file");
  return [a] {
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
    const std::string text = sudoku::read_text_file(path);
    const double t_read = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    int64_t givens = 0;
    const auto report = sudoku::visit_sudoku_csv(text, path, {}, [&](const sudoku::SudokuRowView& r) {
      givens += static_cast<int64_t>(r.question.size()) - std::count(r.question.begin(), r.question.end(), '.');
    });
    const double t_visit = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const auto set = sudoku::read_sudoku_csv(path);
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
  };
}

// ---- bench solver ----
VerbAction setup_bench_solver(VerbOptions& o) {
  struct Args {
    std::string file;
    int64_t limit = 0;
  };
  auto a = std::make_shared<Args>();
  o.add("--file", a->file, "Sudoku CSV with answers")->check(CLI::ExistingFile);
  o.add("--limit", a->limit, "Use only the first N puzzles (0 = all)");
  return [a] {
    const std::string path = a->file.empty() ? shared_file(
        "data/external/tdoku_forum_hardest_1905_11plus/forum_hardest_1905_11plus.csv") : a->file;
    sudoku::CsvOptions opts;
    opts.max_rows = a->limit;
    const auto set = sudoku::read_sudoku_csv(path, opts);
    std::vector<sudoku::Grid> puzzles;
    for (const auto& r : set.rows) puzzles.push_back(sudoku::parse_grid(r.question, set.geom));
    const sudoku::Solver solver(set.geom);
    // Correctness and warm-up: every solution equals the published answer.
    for (size_t i = 0; i < puzzles.size(); ++i) {
      const auto r = solver.solve(puzzles[i]);
      EQR_CHECK(r.solved && sudoku::format_grid(r.solution, set.geom) == set.rows[i].answer, RuntimeError,
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
  };
}

// ---- bench generator ----
VerbAction setup_bench_generator(VerbOptions& o) {
  struct Args {
    GeomArgs geom;
    int64_t count = 200;
    int threads = 1;
  };
  auto a = std::make_shared<Args>();
  a->geom.add(o);
  o.add("-n,--count", a->count, "Puzzles")->capture_default_str();
  o.add("--threads", a->threads, "Worker threads (0 = all cores)")->capture_default_str();
  return [a] {
    sudoku::GeneratorOptions opts;
    opts.geom = a->geom.resolve();
    opts.count = a->count;
    opts.threads = a->threads;
    opts.seed = 1;
    const auto t0 = std::chrono::steady_clock::now();
    const auto rows = sudoku::generate_puzzles(opts);
    const double dt = seconds_since(t0);
    const sudoku::Solver solver(opts.geom);
    double givens = 0;
    for (const auto& r : rows) {
      const auto q = sudoku::parse_grid(r.question, opts.geom);
      EQR_CHECK(solver.count_solutions(q, 2) == 1, RuntimeError, "bench generator: a puzzle is not unique");
      givens += sudoku::count_givens(q);
    }
    const double n = static_cast<double>(rows.size());
    std::printf("%s: %zu puzzles in %.3fs on %d thread(s): %.1f puzzles/s, mean givens %.2f (all unique)\n",
                opts.geom.name().c_str(), rows.size(), dt, a->threads, n / dt, givens / n);
    print_bench("generator", {{"geometry", opts.geom.name()}, {"puzzles", rows.size()}, {"threads", a->threads},
                              {"puzzles_per_s", n / dt}, {"mean_givens", givens / n}});
  };
}

// ---- data build ----
struct BuildArgs {
  std::string train_csv, test_csv, out, geometry = "9x9", box;
  std::optional<int64_t> generate_train, generate_test, subsample, min_difficulty;
  int64_t num_aug = 0;
  int64_t seed = 42;
  int64_t min_givens = 0, max_givens = 0, min_rating = 0;
  bool skip_invalid = false;
  bool reference_dtypes = false;
};

config::DataConfig to_config(const BuildArgs& a) {
  const bool csv = !a.train_csv.empty();
  const bool gen = a.generate_train.has_value();
  EQR_CHECK(csv != gen, UsageError,
            csv ? "give either --train-csv or --generate-train, not both"
                : "give the training source: --train-csv FILE (with --test-csv FILE) or --generate-train N");
  EQR_CHECK(gen || !a.test_csv.empty() || a.generate_test.has_value(), UsageError,
            "--train-csv needs a test split: --test-csv FILE or --generate-test M");
  EQR_CHECK(a.test_csv.empty() || !a.generate_test.has_value(), UsageError,
            "give either --test-csv or --generate-test, not both");
  EQR_CHECK(!gen || a.test_csv.empty(), UsageError, "--generate-train goes with --generate-test, not --test-csv");
  const sudoku::Geometry g = a.box.empty() ? sudoku::Geometry::parse_side(a.geometry) : sudoku::Geometry::parse_box(a.box);
  config::DataConfig c;
  c.source = csv ? config::DataSource::kCsv : config::DataSource::kGenerated;
  c.data_path = a.out;
  c.train_csv = a.train_csv;
  c.test_csv = a.test_csv;
  c.box_rows = g.box_rows;
  c.box_cols = g.box_cols;
  c.subsample_size = a.subsample;
  c.num_aug = a.num_aug;
  c.min_difficulty = a.min_difficulty;
  c.seed = a.seed;
  if (a.generate_train) c.generate_train = *a.generate_train;
  if (a.generate_test) c.generate_test = *a.generate_test;
  c.generate_min_givens = a.min_givens;
  c.generate_max_givens = a.max_givens;
  c.generate_min_rating = a.min_rating;
  c.skip_invalid = a.skip_invalid;
  return c;
}

VerbAction setup_build(VerbOptions& o) {
  auto a = std::make_shared<BuildArgs>();
  o.add("--train-csv", a->train_csv, "Training CSV (source,question,answer,rating)");
  o.add("--test-csv", a->test_csv, "Test CSV (never subsampled or augmented)");
  o.add("--generate-train", a->generate_train, "Generate N training puzzles (mazes) instead of a CSV");
  o.add("--generate-test", a->generate_test, "Generate M test puzzles (mazes) instead of a CSV");
  o.add("--subsample", a->subsample, "Keep N training puzzles (np.random.choice; paper: 1000)");
  o.add("--num-aug", a->num_aug, "Augmented copies per training puzzle (paper: 1000)")->capture_default_str();
  o.add("--seed", a->seed, "Seed of the build (reference default 42)")->capture_default_str();
  o.add("--min-difficulty", a->min_difficulty, "Keep rows with rating >= R (train and test)");
  o.add("--geometry", a->geometry, "Board side: 4x4, 6x6, 9x9 or 16x16")->capture_default_str();
  o.add("--box", a->box, "Box shape ROWSxCOLS instead of --geometry, e.g. 2x3");
  o.add("--min-givens", a->min_givens, "Generator: stop removing clues at this many givens");
  o.add("--max-givens", a->max_givens, "Generator: reject puzzles with more givens (0 = no limit)");
  o.add("--min-rating", a->min_rating, "Generator: reject puzzles rated below this");
  o.flag("--reference-dtypes", a->reference_dtypes,
         "Write the augmented train split's tokens as int64 like the reference (byte-identical files, 8x larger); "
         "default uint8");
  o.flag("--skip-invalid", a->skip_invalid, "Skip (and count) invalid CSV rows instead of failing");
  o.add("-o,--out", a->out, "Output directory, e.g. data/sudoku-extreme-1k-aug-1000")->required();
  return [a] { run_build(a->out, [&] { return sudoku::build_dataset(to_config(*a), {}, a->reference_dtypes); }); };
}

}  // namespace

std::vector<TaskVerb> sudoku_verbs() {
  return {
      {"data", "generate", "Generate unique-solution minimal puzzles into a Sudoku CSV", setup_generate},
      {"data", "check", "Validate Sudoku CSVs: header, fields, answers, givens (exit 1 on defects)", setup_check},
      {"data", "inspect", "Counts, sources, givens and rating histograms, a few examples", setup_inspect},
      {"data", "overlap",
       "How many puzzles of B have an equivalent (same canonical form under the Sudoku symmetries) in A",
       setup_overlap},
      {"data", "solve-exact", "Exact solver: solve grid strings, or a CSV (check answers, write our ratings with --out)",
       setup_solve_exact},
      {"data", "build",
       "Build a dataset in the reference's numpy layout (train/ and test/ with all__*.npy, manifest.json)",
       setup_build},
      {"bench", "csv", "Sudoku CSV reader: rows/s on a synthetic file (or --file)", setup_bench_csv},
      {"bench", "solver", "Exact solver: puzzles/s on one thread (default: forum_hardest_1905_11+)", setup_bench_solver},
      {"bench", "generator", "Puzzle generator: puzzles/s (checked unique afterwards)", setup_bench_generator},
  };
}

}  // namespace eqr::task
