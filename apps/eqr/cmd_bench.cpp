// `eqr bench <what>`: benchmarks that validate correctness first, then time, and print figures
// (never part of ctest). Each area adds its own `bench` subcommand through register_bench_<area>.

#include "commands.h"

namespace eqr::app {

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Benchmarks: print measured figures (table and JSON)");
  cmd->require_subcommand(1);
}

}  // namespace eqr::app
