#pragma once
// The commands a task brings to `eqr` (`eqr data generate|inspect|build|...`, `eqr bench csv|solver|...`), reached
// through the task registry (task.h: task_verbs): apps/ registers them without naming a task. A verb that several
// tasks implement is one command with `--task NAME` (default: the first task that has it); each task adds the
// options it reads, an option two tasks read is added once (each keeps its own default when it is not given),
// and an option given on the command line that the chosen task does not read is a UsageError naming it.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "eqr/data/dataset.h"

namespace eqr::task {

/// The options of one task on a shared command.
class VerbOptions {
 public:
  explicit VerbOptions(CLI::App* cmd) : cmd_(cmd) {}

  /// Binds `var` to option `names` (CLI11 syntax, e.g. "-n,--count" or a positional "file"): added when no
  /// other task has added it, else shared (its given value is copied into `var` before the action runs).
  template <typename T>
  CLI::Option* add(const std::string& names, T& var, const std::string& help) {
    if (CLI::Option* shared = find(names)) {
      read_.push_back(shared);
      loaders_.push_back([shared, &var] {
        if (shared->count() > 0) assign(shared, var);
      });
      return shared;
    }
    CLI::Option* opt = cmd_->add_option(names, var, help);
    read_.push_back(opt);
    return opt;
  }
  /// A flag, added or shared as add().
  CLI::Option* flag(const std::string& names, bool& var, const std::string& help);

  /// Whether this task reads option `opt`.
  bool reads(const CLI::Option* opt) const;
  /// Copies the given values of shared options into this task's variables.
  void load_shared() const;

 private:
  template <typename T>
  static void assign(const CLI::Option* o, T& v) { v = o->as<T>(); }
  template <typename T>
  static void assign(const CLI::Option* o, std::optional<T>& v) { v = o->as<T>(); }
  CLI::Option* find(const std::string& names) const;

  CLI::App* cmd_;
  std::vector<const CLI::Option*> read_;
  std::vector<std::function<void()>> loaders_;
};

/// What runs when the command is given with this task.
using VerbAction = std::function<void()>;

/// One command of a task.
struct TaskVerb {
  std::string parent;  ///< the top-level command it belongs to: "data" or "bench"
  std::string name;    ///< e.g. "generate"
  std::string help;    ///< one line
  /// Adds the task's options (through VerbOptions) and returns its action.
  std::function<VerbAction(VerbOptions& options)> setup;
};

/// Seconds since `t0` (the commands' timings).
double seconds_since(std::chrono::steady_clock::time_point t0);
/// `eqr data build`'s common part: builds, writes to `out`, prints the split sizes and the time of each part.
void run_build(const std::string& out, const std::function<data::BuiltDataset()>& build);

/// Adds every registered task's verbs under their parents (which must exist) of `app`.
void add_task_verbs(CLI::App& app);

}  // namespace eqr::task
