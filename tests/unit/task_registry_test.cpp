// Unit: the task registry is the one place that knows the tasks. A toy task registered here (no file of
// src/ changes) is made from a config, lists in task_names(), and brings its own `eqr data` command; a verb
// two tasks share is one command whose --task picks the task, and an option of the other task is refused.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "eqr/config/config.h"
#include "eqr/core/error.h"
#include "eqr/task/cli.h"
#include "eqr/task/task.h"

namespace eqr::task {
namespace {

/// "Copy": 4 cells of tokens 1..3; the answer is the input itself.
class CopyTask : public Task {
 public:
  std::string name() const override { return "copy"; }
  TaskGeometry geometry() const override { return {4, 4, 2, 2, "2x2"}; }
  data::SplitData load_or_build(const std::string&) const override { throw DataError("copy: no dataset"); }
  PuzzleSet read_file(const std::string&, int64_t) const override { throw DataError("copy: no files"); }
  PuzzleSet parse_puzzles(const std::vector<std::string>& texts) const override {
    PuzzleSet set;
    set.inputs = torch::zeros({static_cast<int64_t>(texts.size()), 4}, torch::kInt);
    for (size_t i = 0; i < texts.size(); ++i) {
      for (int c = 0; c < 4; ++c) set.inputs[static_cast<int64_t>(i)][c] = texts[i].at(static_cast<size_t>(c)) - '0';
    }
    set.labels = set.inputs.clone();
    return set;
  }
  PuzzleSet generate(int64_t count, uint64_t) const override {
    return parse_puzzles(std::vector<std::string>(static_cast<size_t>(count), "1231"));
  }
  bool is_valid(const uint8_t* input, const uint8_t* prediction) const override {
    return std::equal(input, input + 4, prediction);
  }
  std::string problem(const uint8_t* input, const uint8_t* prediction) const override {
    return is_valid(input, prediction) ? "" : "differs from the input";
  }
  std::string format(const uint8_t* t) const override { return format_line(t) + "\n"; }
  std::string format_line(const uint8_t* t) const override {
    std::string s;
    for (int c = 0; c < 4; ++c) s += static_cast<char>('0' + t[c]);
    return s;
  }
};

/// What the toy task's commands saw (the CLI test reads it back).
struct Seen {
  int64_t count = -1;
  std::string out;
  int runs = 0;
};
std::shared_ptr<Seen> seen = std::make_shared<Seen>();

void register_copy_once() {
  static const bool done = [] {
    TaskEntry e;
    e.name = "copy";
    e.make = [](const config::RunConfig&) { return std::make_shared<CopyTask>(); };
    e.verbs = [] {
      // `eqr data generate --task copy`: shares -n,--count and -o,--out with the built-in tasks' generate.
      TaskVerb generate{"data", "generate", "copy puzzles", [](VerbOptions& o) -> VerbAction {
                          auto count = std::make_shared<int64_t>(7);  // its own default
                          auto out = std::make_shared<std::string>();
                          o.add("-n,--count", *count, "puzzles");
                          o.add("-o,--out", *out, "output");
                          return [count, out] {
                            seen->count = *count;
                            seen->out = *out;
                            ++seen->runs;
                          };
                        }};
      // A verb only this task has: a command of its own, without --task.
      TaskVerb shout{"data", "shout", "print the toy task's name", [](VerbOptions&) -> VerbAction {
                       return [] { ++seen->runs; };
                     }};
      return std::vector<TaskVerb>{generate, shout};
    };
    register_task(std::move(e));
    return true;
  }();
  (void)done;
}

TEST(TaskRegistry, AToyTaskJoinsWithoutChangingSrc) {
  register_copy_once();
  const auto names = task_names();
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names[0], "sudoku");  // built-in tasks first, in docs order
  EXPECT_EQ(names[1], "maze");
  EXPECT_EQ(names.back(), "copy");

  config::RunConfig c;
  c.data.task = "copy";
  c.arch.seq_len = 4;
  c.arch.vocab_size = 4;
  const auto t = make_task(c);  // Task::check_config: seq_len and vocab_size match the geometry
  EXPECT_EQ(t->name(), "copy");
  EXPECT_EQ(t->generate(2, 0).size(), 2);

  c.arch.seq_len = 81;
  EXPECT_THROW(make_task(c), ConfigError);
  c.data.task = "chess";
  try {
    make_task(c);
    ADD_FAILURE() << "an unknown task was made";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sudoku, maze, copy"), std::string::npos) << e.what();
  }
  TaskEntry again;
  again.name = "copy";
  again.make = [](const config::RunConfig&) { return std::make_shared<CopyTask>(); };
  EXPECT_THROW(register_task(again), ConfigError);
}

TEST(TaskRegistry, TaskVerbsShareOptionsAndRefuseOtherTasksOptions) {
  register_copy_once();
  const auto parse = [](std::vector<std::string> args) {
    CLI::App app;
    app.add_subcommand("data");
    app.add_subcommand("bench");
    add_task_verbs(app);
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);  // CLI11 takes the arguments reversed
  };
  *seen = Seen{};
  parse({"data", "generate", "--task", "copy", "--count", "3", "-o", "x.txt"});
  EXPECT_EQ(seen->runs, 1);
  EXPECT_EQ(seen->count, 3);  // a shared option's value reaches every task that reads it
  EXPECT_EQ(seen->out, "x.txt");
  parse({"data", "generate", "--task", "copy", "-o", "y.txt"});
  EXPECT_EQ(seen->count, 7);  // not given: the task's own default, not Sudoku's
  // --size is the maze's option: refused for --task copy, naming it; nothing ran.
  try {
    parse({"data", "generate", "--task", "copy", "--size", "9", "-o", "z.txt"});
    ADD_FAILURE() << "--size was accepted for --task copy";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--size"), std::string::npos) << e.what();
  }
  EXPECT_EQ(seen->runs, 2);
  // A task that is not registered for the verb is a parse error listing those that are.
  EXPECT_THROW(parse({"data", "generate", "--task", "chess", "-o", "z"}), CLI::ValidationError);
  parse({"data", "shout"});
  EXPECT_EQ(seen->runs, 3);
}

}  // namespace
}  // namespace eqr::task
