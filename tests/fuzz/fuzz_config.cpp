// libFuzzer target: the config loader (config/load.h): YAML or JSON, `include:` (nested, cyclic, missing),
// --set overrides, mapping onto the structs and validation, and the resolved config written back as YAML.
// One input holds up to four parts separated by a line "---8<---":
//   part 0  the file loaded: main.json when it starts with '{', else main.yaml
//   part 1  a.yaml, part 2 b.json (what `include:` may name; main.yaml/main.json include themselves)
//   part 3  --set overrides, one per line
// Seeds: scripts/fuzz.sh builds them from configs/*.yaml (an include becomes a.yaml).

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "eqr/config/load.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace eqr;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  const std::string sep = "\n---8<---\n";
  for (size_t pos = 0;;) {
    const size_t at = text.find(sep, pos);
    parts.push_back(text.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
    if (at == std::string::npos || parts.size() == 4) break;
    pos = at + sep.size();
  }
  parts.resize(4);
  // Files of earlier inputs must not leak into this one: every name is rewritten or removed.
  for (const char* name : {"main.yaml", "main.json", "a.yaml", "b.json"}) {
    std::error_code ec;
    std::filesystem::remove(fuzz::scratch_dir() / name, ec);
  }
  const bool json = parts[0].find_first_not_of(" \t\r\n") != std::string::npos &&
                    parts[0][parts[0].find_first_not_of(" \t\r\n")] == '{';
  auto put = [](const char* name, const std::string& s) {
    return fuzz::write_input(name, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  const std::string main = put(json ? "main.json" : "main.yaml", parts[0]);
  if (!parts[1].empty()) put("a.yaml", parts[1]);
  if (!parts[2].empty()) put("b.json", parts[2]);
  std::vector<std::string> overrides;
  std::istringstream lines(parts[3]);
  for (std::string line; std::getline(lines, line) && overrides.size() < 8;) {
    if (!line.empty()) overrides.push_back(line);
  }
  fuzz::expect_ok_or_refused([&] {
    config::Tree tree = config::read_tree(main);
    for (const auto& o : overrides) config::apply_override(tree, o);
    (void)config::parse_yaml(config::to_yaml(tree), "fuzz round trip");
  });
  fuzz::expect_ok_or_refused([&] {
    const config::RunConfig cfg = config::load(main, overrides);
    (void)config::to_yaml(config::to_json(cfg));
  });
  return 0;
}
