#pragma once
// Loading configs: YAML (.yaml/.yml) or JSON (.json) -> one json tree (with `include:` bases
// merged and `--set a.b=c` overrides applied) -> the structs of config.h, validated in one place.
// Errors are ConfigError naming the dotted key, the value and the expectation.

#include <string>
#include <utility>
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

/// What to do with a key eqr once had and no longer has (config.cpp's table of removed keys, e.g.
/// train.train_epochs_per_iter).
enum class RemovedKeys {
  kError,  ///< ConfigError: "config key 'x' was removed: <why>" (configs a user writes; load() uses this)
  kWarn,   ///< log a warning and ignore the key (configs an older eqr stored in checkpoints)
};

/// Maps a tree onto RunConfig (missing keys keep defaults), then validates. Throws ConfigError.
/// `removed` says how a removed key is treated (unknown keys are always an error).
RunConfig from_json(const Tree& tree, RemovedKeys removed = RemovedKeys::kWarn);
/// The removed keys (dotted paths) and why each went, for docs and tests.
std::vector<std::pair<std::string, std::string>> removed_keys();
/// Maps a tree onto ArchConfig alone (for checkpoints). Throws ConfigError.
ArchConfig arch_from_json(const Tree& tree);

/// The full resolved config with every knob.
Tree to_json(const RunConfig& config);
Tree to_json(const ArchConfig& arch);

/// Cross-field checks (e.g. hidden_size divisible by num_heads). Throws ConfigError.
void validate(const RunConfig& config);

/// read_tree(path) (or defaults when path is empty) + overrides + from_json(tree, removed). Errors name the
/// file they came from. kError for configs a user writes; kWarn for a run directory's config.yaml, which an
/// older eqr wrote (`eqr train --resume` of a run made before a key was removed).
RunConfig load(const std::string& path, const std::vector<std::string>& overrides = {},
               RemovedKeys removed = RemovedKeys::kError);

/// YAML text of a json tree (keys in the tree's order; floats keep a decimal point or exponent).
std::string to_yaml(const Tree& tree);

/// Writes `to_json(config)` as YAML to `path` (creating parent directories).
void write_resolved(const RunConfig& config, const std::string& path);

}  // namespace eqr::config
