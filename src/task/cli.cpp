// Commands of the tasks (include/eqr/task/cli.h): shared options, one command per verb, --task dispatch.

#include "eqr/task/cli.h"

#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#include "eqr/core/error.h"
#include "eqr/task/task.h"

namespace eqr::task {

CLI::Option* VerbOptions::find(const std::string& names) const {
  size_t start = 0;
  while (start <= names.size()) {
    const size_t comma = names.find(',', start);
    const std::string name = names.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!name.empty()) {
      if (CLI::Option* o = cmd_->get_option_no_throw(name)) return o;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return nullptr;
}

CLI::Option* VerbOptions::flag(const std::string& names, bool& var, const std::string& help) {
  if (CLI::Option* shared = find(names)) {
    read_.push_back(shared);
    loaders_.push_back([shared, &var] {
      if (shared->count() > 0) var = true;
    });
    return shared;
  }
  CLI::Option* opt = cmd_->add_flag(names, var, help);
  read_.push_back(opt);
  return opt;
}

bool VerbOptions::reads(const CLI::Option* opt) const {
  for (const CLI::Option* o : read_) {
    if (o == opt) return true;
  }
  return false;
}

void VerbOptions::load_shared() const {
  for (const auto& load : loaders_) load();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_build(const std::string& out, const std::function<data::BuiltDataset()>& build) {
  const auto t0 = std::chrono::steady_clock::now();
  const data::BuiltDataset built = build();
  const double build_s = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  data::write_dataset(out, built);
  const double write_s = seconds_since(t1);
  std::printf("train: %lld examples in %lld groups; test: %lld examples\n",
              static_cast<long long>(built.train.num_examples()), static_cast<long long>(built.train.num_groups()),
              static_cast<long long>(built.test.num_examples()));
  std::printf("built in %.2f s, written in %.2f s to %s\n", build_s, write_s, out.c_str());
}

void add_task_verbs(CLI::App& app) {
  struct Implementation {
    std::string task;
    TaskVerb verb;
  };
  // (parent, verb) in the order first registered, with every task that implements it.
  std::vector<std::pair<std::string, std::string>> order;
  std::map<std::pair<std::string, std::string>, std::vector<Implementation>> verbs;
  for (const TaskEntry& entry : task_registry()) {
    if (!entry.verbs) continue;
    for (TaskVerb& v : entry.verbs()) {
      const auto key = std::make_pair(v.parent, v.name);
      if (!verbs.count(key)) order.push_back(key);
      verbs[key].push_back({entry.name, std::move(v)});
    }
  }
  for (const auto& key : order) {
    const auto& impls = verbs[key];
    CLI::App* parent = app.get_subcommand(key.first);
    std::string help = impls.front().verb.help;
    std::vector<std::string> names;
    for (size_t i = 0; i < impls.size(); ++i) {
      names.push_back(impls[i].task);
      if (i > 0) help += " (--task " + impls[i].task + ": " + impls[i].verb.help + ")";
    }
    CLI::App* cmd = parent->add_subcommand(key.second, help);
    auto chosen = std::make_shared<std::string>(names.front());
    if (impls.size() > 1) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      cmd->add_option("--task", *chosen, "Task: " + list)->check(CLI::IsMember(names))->capture_default_str();
    }
    using Bound = std::pair<std::shared_ptr<VerbOptions>, VerbAction>;
    auto bound = std::make_shared<std::map<std::string, Bound>>();
    for (const auto& impl : impls) {
      auto options = std::make_shared<VerbOptions>(cmd);
      VerbAction action = impl.verb.setup(*options);
      (*bound)[impl.task] = Bound(options, std::move(action));
    }
    cmd->callback([cmd, chosen, bound] {
      const Bound& b = bound->at(*chosen);
      for (const CLI::Option* o : cmd->get_options()) {
        if (o->count() == 0 || o == cmd->get_help_ptr() || o->get_name() == "--task" || b.first->reads(o)) continue;
        EQR_FAIL(UsageError, "--task ", *chosen, " does not take ", o->get_name(), " (an option of another task)");
      }
      b.first->load_shared();
      b.second();
    });
  }
}

}  // namespace eqr::task
