// Hostile config files (issue 14): text that is not UTF-8 is refused where it is read (file, line, column),
// not later when a message or the resolved config is written (found by scripts/fuzz.sh: the error message
// naming a bad value threw nlohmann's type_error and ended the process).

#include <gtest/gtest.h>

#include <string>

#include "eqr/config/load.h"
#include "eqr/core/error.h"
#include "test_support.h"

namespace eqr::config {
namespace {

std::string config_error_of(const std::string& path, const std::vector<std::string>& overrides = {}) {
  return eqr::test::message_of<ConfigError>([&] { load(path, overrides); });
}

TEST(ConfigHostileInput, TextThatIsNotUtf8IsRefusedWithItsPlace) {
  const auto dir = eqr::test::temp_dir("hostile_config");
  const auto p = dir / "bad.yaml";
  // A value of the wrong type whose text is not UTF-8 (the fuzzer's finding), a key, and a quoted string.
  eqr::test::write_file(p, "name: x\ntrain:\n  max_steps: a\x9c\n");
  std::string msg = config_error_of(p.string());
  EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  eqr::test::write_file(p, "na\xffme: x\n");
  EXPECT_NE(config_error_of(p.string()).find("not valid UTF-8"), std::string::npos);
  eqr::test::write_file(p, "name: \"\xc3\x28\"\n");
  EXPECT_NE(config_error_of(p.string()).find("not valid UTF-8"), std::string::npos);
  // --set values are YAML too.
  eqr::test::write_file(p, "name: x\n");
  EXPECT_NE(config_error_of((eqr::test::source_dir() / "configs/ci_tiny.yaml").string(), {"name=\xfe"}).find("UTF-8"),
            std::string::npos);
  // UTF-8 text is fine.
  eqr::test::write_file(p, "include: " + (eqr::test::source_dir() / "configs/ci_tiny.yaml").string() +
                               "\nname: caf\xc3\xa9\n");
  EXPECT_EQ(load(p.string()).name, "caf\xc3\xa9");
}

TEST(ConfigHostileInput, JsonNumberBeyondDoubleIsRefusedNotFatal) {
  // The fuzzer's finding: nlohmann reports a number it cannot hold as out_of_range, not parse_error, and
  // that exception ended the process. Also through include:.
  const auto dir = eqr::test::temp_dir("hostile_config_number");
  const auto p = dir / "big.json";
  eqr::test::write_file(p, "{\"train\": {\"lr\": 999999999999999E99999999999999999999}}\n");
  std::string msg = config_error_of(p.string());
  EXPECT_NE(msg.find("big.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  EXPECT_NE(msg.find("number overflow"), std::string::npos) << msg;
  const auto y = dir / "main.yaml";
  eqr::test::write_file(y, "include: big.json\nname: x\n");
  EXPECT_NE(config_error_of(y.string()).find("big.json"), std::string::npos);
}

}  // namespace
}  // namespace eqr::config
