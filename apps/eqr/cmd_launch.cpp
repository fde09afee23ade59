// `eqr launch -n N [--exe PROGRAM] -- <args...>`: run N local ranks (like torchrun --standalone) with
// RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT set.
// Thin: the work is eqr::train::launch_local. Exit code: the worst exit code of the ranks.

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "commands.h"
#include "eqr/train/distributed.h"

namespace eqr::app {

void register_launch(CLI::App& app) {
  auto opts = std::make_shared<train::LaunchOptions>();
  auto* cmd = app.add_subcommand(
      "launch", "Run N local processes of eqr (data parallel ranks), e.g. eqr launch -n 2 -- train -c cfg.yaml");
  cmd->add_option("-n,--nproc", opts->nproc, "Processes (ranks) to start")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--exe", opts->exe, "Program to run instead of this eqr (as torchrun --no-python)");
  cmd->add_option("--master-addr", opts->master_addr, "MASTER_ADDR given to the ranks")->capture_default_str();
  cmd->add_option("--master-port", opts->master_port, "MASTER_PORT (0 = pick a free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  auto no_prefix = std::make_shared<bool>(false);
  cmd->add_flag("--no-prefix", *no_prefix,
                "Pass the ranks' stdout/stderr through unchanged instead of prefixing lines with [rank r]");
  cmd->add_option("args", opts->args, "Arguments of every rank (after --)");
  cmd->callback([opts, no_prefix] {
    opts->prefix_output = !*no_prefix;
    const int rc = train::launch_local(*opts);
    if (rc != 0) {
      std::fprintf(stderr, "eqr launch: worst exit code of %d rank(s): %d\n", opts->nproc, rc);
      std::fflush(stdout);
      std::fflush(stderr);
      std::exit(rc);  // the ranks' exit code is the command's; main has no channel for it
    }
  });
}

}  // namespace eqr::app
