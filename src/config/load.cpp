// Config files -> json tree: YAML via yaml-cpp, JSON via nlohmann_json, `include:` merging,
// `--set` overrides, and YAML output of resolved configs.

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "eqr/config/load.h"
#include "eqr/core/error.h"

namespace eqr::config {
namespace fs = std::filesystem;

namespace {

/// A plain YAML scalar under the YAML 1.2 core schema.
Tree plain_scalar(const std::string& s) {
  static const std::regex null_re("^(~|null|Null|NULL|)$");
  static const std::regex true_re("^(true|True|TRUE)$");
  static const std::regex false_re("^(false|False|FALSE)$");
  static const std::regex int_re("^[-+]?[0-9]+$");
  static const std::regex float_re("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
  static const std::regex inf_re("^[-+]?\\.(inf|Inf|INF)$");
  static const std::regex nan_re("^\\.(nan|NaN|NAN)$");
  if (std::regex_match(s, null_re)) return nullptr;
  if (std::regex_match(s, true_re)) return true;
  if (std::regex_match(s, false_re)) return false;
  if (std::regex_match(s, int_re)) {
    errno = 0;
    const long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == 0) return static_cast<int64_t>(v);
  }
  if (std::regex_match(s, float_re)) return std::strtod(s.c_str(), nullptr);
  if (std::regex_match(s, inf_re)) {
    return s[0] == '-' ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  if (std::regex_match(s, nan_re)) return std::numeric_limits<double>::quiet_NaN();
  return s;
}

/// `s` unchanged when it is valid UTF-8 (what the json tree, and every message and file written from it,
/// require); else a YAML error at `node`, which parse_yaml reports with the file, line and column.
const std::string& utf8(const std::string& s, const YAML::Node& node) {
  try {
    (void)Tree(s).dump();
  } catch (const nlohmann::json::type_error&) {
    throw YAML::ParserException(node.Mark(), "text that is not valid UTF-8");
  }
  return s;
}

Tree yaml_to_tree(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Scalar:
      // Quoted scalars carry the non-specific tag "!" and stay strings.
      return node.Tag() == "!" ? Tree(utf8(node.Scalar(), node)) : plain_scalar(utf8(node.Scalar(), node));
    case YAML::NodeType::Sequence: {
      Tree arr = Tree::array();
      for (const auto& item : node) arr.push_back(yaml_to_tree(item));
      return arr;
    }
    case YAML::NodeType::Map: {
      Tree obj = Tree::object();
      for (const auto& kv : node) obj[utf8(kv.first.as<std::string>(), kv.first)] = yaml_to_tree(kv.second);
      return obj;
    }
  }
  return nullptr;
}

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext;
}

Tree read_file_tree(const fs::path& path) {
  std::ifstream in(path);
  EQR_CHECK(in.good(), ConfigError, "cannot read config file '", path.string(), "': ",
            fs::exists(path) ? "permission denied or not a file" : "no such file");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string ext = lower_extension(path);
  if (ext == ".json") {
    try {
      return Tree::parse(buf.str());
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number beyond double
      EQR_FAIL(ConfigError, "config file '", path.string(), "' is not valid JSON: ", e.what());
    }
  }
  EQR_CHECK(ext == ".yaml" || ext == ".yml", ConfigError, "config file '", path.string(),
            "': unknown extension '", ext, "'; expected .yaml, .yml or .json");
  return parse_yaml(buf.str(), path.string());
}

Tree read_with_includes(const fs::path& path, std::vector<fs::path>& stack) {
  const fs::path canon = fs::weakly_canonical(path);
  EQR_CHECK(std::find(stack.begin(), stack.end(), canon) == stack.end(), ConfigError, "config file '",
            path.string(), "' includes itself (include cycle)");
  stack.push_back(canon);
  Tree own = read_file_tree(path);
  EQR_CHECK(own.is_object() || own.is_null(), ConfigError, "config file '", path.string(),
            "': expected a mapping of keys at the top level, got ", own.dump());
  if (own.is_null()) own = Tree::object();
  Tree merged = Tree::object();
  if (own.contains("include")) {
    Tree inc = own["include"];
    own.erase("include");
    if (inc.is_string()) inc = Tree::array({inc});
    EQR_CHECK(inc.is_array(), ConfigError, "config key 'include' in '", path.string(), "' = ", inc.dump(),
              ": expected a path or a list of paths");
    for (const auto& item : inc) {
      EQR_CHECK(item.is_string(), ConfigError, "config key 'include' in '", path.string(), "': entry ", item.dump(),
                " is not a path");
      fs::path base = item.get<std::string>();
      if (base.is_relative()) base = path.parent_path() / base;
      merge_into(merged, read_with_includes(base, stack));
    }
  }
  merge_into(merged, own);
  stack.pop_back();
  return merged;
}

void emit(YAML::Emitter& out, const Tree& j) {
  switch (j.type()) {
    case Tree::value_t::object:
      if (j.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (auto it = j.begin(); it != j.end(); ++it) {
        out << YAML::Key << it.key() << YAML::Value;
        emit(out, it.value());
      }
      out << YAML::EndMap;
      return;
    case Tree::value_t::array:
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& item : j) emit(out, item);
      out << YAML::EndSeq;
      return;
    case Tree::value_t::string: {
      const std::string s = j.get<std::string>();
      // Quote strings that would read back as another type (e.g. "1", "true", "null", "").
      if (!plain_scalar(s).is_string()) {
        out << YAML::DoubleQuoted << s;
      } else {
        out << s;
      }
      return;
    }
    case Tree::value_t::null: out << YAML::Null; return;
    default: out << j.dump(); return;  // numbers and bools as JSON writes them (1.0 keeps its point)
  }
}

}  // namespace

Tree parse_yaml(const std::string& text, const std::string& origin) {
  try {
    return yaml_to_tree(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    EQR_FAIL(ConfigError, "config '", origin, "' is not valid YAML at line ", e.mark.line + 1, ", column ",
             e.mark.column + 1, ": ", e.msg);
  }
}

void merge_into(Tree& base, const Tree& over) {
  if (base.is_object() && over.is_object()) {
    for (auto it = over.begin(); it != over.end(); ++it) {
      if (base.contains(it.key())) {
        merge_into(base[it.key()], it.value());
      } else {
        base[it.key()] = it.value();
      }
    }
  } else {
    base = over;
  }
}

Tree read_tree(const std::string& path) {
  std::vector<fs::path> stack;
  return read_with_includes(path, stack);
}

void apply_override(Tree& tree, const std::string& assignment) {
  const auto eq = assignment.find('=');
  EQR_CHECK(eq != std::string::npos && eq > 0, ConfigError, "override '", assignment,
            "': expected key=value, e.g. --set arch.h_cycles=2");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  Tree value = parse_yaml(text.empty() ? "\"\"" : text, "--set " + assignment);
  if (!tree.is_object()) tree = Tree::object();
  Tree* node = &tree;
  std::string walked;
  size_t start = 0;
  while (true) {
    const auto dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    EQR_CHECK(!part.empty(), ConfigError, "override '", assignment, "': empty key component in '", key, "'");
    walked += (walked.empty() ? "" : ".") + part;
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return;
    }
    Tree& child = (*node)[part];
    if (child.is_null()) child = Tree::object();
    EQR_CHECK(child.is_object(), ConfigError, "override '", assignment, "': '", walked, "' is ", child.dump(),
              ", not a section");
    node = &child;
    start = dot + 1;
  }
}

RunConfig load(const std::string& path, const std::vector<std::string>& overrides, RemovedKeys removed) {
  Tree tree = path.empty() ? Tree::object() : read_tree(path);
  for (const auto& o : overrides) apply_override(tree, o);
  try {
    return from_json(tree, removed);
  } catch (const ConfigError& e) {
    if (path.empty()) throw;
    throw ConfigError(std::string(e.what()) + " (in " + path + (overrides.empty() ? "" : " with --set overrides") + ")");
  }
}

std::string to_yaml(const Tree& tree) {
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, tree);
  return std::string(out.c_str()) + "\n";
}

void write_resolved(const RunConfig& config, const std::string& path) {
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::ofstream out(p);
  EQR_CHECK(out.good(), RuntimeError, "cannot write resolved config to '", path, "'");
  out << "# resolved eqr config (every knob, defaults filled in)\n" << to_yaml(to_json(config));
}

}  // namespace eqr::config
