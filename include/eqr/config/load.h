#pragma once
// Loading configs: YAML (.yaml/.yml) or JSON (.json) -> one json tree (with `include:` bases
// merged and `--set a.b=c` overrides applied) -> the structs of config.h, validated in one place.
// Errors are ConfigError naming the dotted key, the value and the expectation.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqr/config/config.h"

namespace eqr::config {

/// Config trees keep the order of their keys (struct order when written by eqr).
using Tree = nlohmann::ordered_json;

/// Reads a .yaml/.yml/.json file into a json tree, resolving `include:` (a path or a list of paths,
/// relative to the including file; later entries and the file itself override earlier ones).
Tree read_tree(const std::string& path);

/// Parses a YAML document (or a scalar / flow list such as "[16, 64]") into json; plain scalars
/// become null, bool, integer or float as YAML 1.2's core schema says, quoted scalars stay strings.
Tree parse_yaml(const std::string& text, const std::string& origin = "<string>");

/// Applies one override "a.b.c=value" (value parsed as YAML) to the tree, creating objects on the way.
void apply_override(Tree& tree, const std::string& assignment);

/// Deep merge: objects merge key by key, anything else in `over` replaces `base`.
void merge_into(Tree& base, const Tree& over);

/// Maps a tree onto RunConfig (missing keys keep defaults), then validates. Throws ConfigError.
RunConfig from_json(const Tree& tree);
/// Maps a tree onto ArchConfig alone (for checkpoints). Throws ConfigError.
ArchConfig arch_from_json(const Tree& tree);

/// The full resolved config with every knob.
Tree to_json(const RunConfig& config);
Tree to_json(const ArchConfig& arch);

/// Cross-field checks (e.g. hidden_size divisible by num_heads). Throws ConfigError.
void validate(const RunConfig& config);

/// read_tree(path) (or defaults when path is empty) + overrides + from_json.
/// Errors name the file they came from.
RunConfig load(const std::string& path, const std::vector<std::string>& overrides = {});

/// YAML text of a json tree (keys in the tree's order; floats keep a decimal point or exponent).
std::string to_yaml(const Tree& tree);

/// Writes `to_json(config)` as YAML to `path` (creating parent directories).
void write_resolved(const RunConfig& config, const std::string& path);

}  // namespace eqr::config
