#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <vector>

namespace eqr::test {
namespace fs = std::filesystem;

namespace {
struct TempRegistry {
  std::vector<fs::path> dirs;
  ~TempRegistry() {
    std::error_code ec;
    for (const auto& d : dirs) fs::remove_all(d, ec);
  }
};
TempRegistry& registry() {
  static TempRegistry r;
  return r;
}
}  // namespace

fs::path shared_dir() {
  if (const char* env = std::getenv("EQR_SHARED_DIR")) {
    if (fs::exists(env)) return fs::path(env);
  }
  const fs::path guess = source_dir() / ".." / "shared";
  return fs::exists(guess) ? guess : fs::path();
}

fs::path temp_dir(const std::string& tag) {
  std::random_device rd;
  const fs::path dir = fs::temp_directory_path() /
                       ("eqr_test_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(rd()));
  fs::create_directories(dir);
  registry().dirs.push_back(dir);
  return dir;
}

void write_file(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path);
  out << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

CommandResult run_eqr(const std::string& args) {
  const fs::path dir = temp_dir("cli");
  const fs::path out = dir / "stdout", err = dir / "stderr";
  const std::string cmd = "'" + eqr_exe().string() + "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

}  // namespace eqr::test
