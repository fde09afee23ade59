// Reference (PyTorch) checkpoints: the model state_dict, EMA shadow, step and config of a torch.save
// file, and copying named tensors into an eqr module.

#include "eqr/io/reference_checkpoint.h"

#include <torch/torch.h>

#include <set>
#include <sstream>

#include "eqr/core/error.h"

namespace eqr::io {

namespace {

using Kind = PickleValue::Kind;

const char* const kPrefixes[] = {"_orig_mod.", "model.inner."};

/// A dict of str -> tensor, prefixes stripped; throws on anything else.
NamedTensors read_state_dict(const PickleValue& dict, const std::string& path, const std::string& what,
                             std::vector<std::string>& notes) {
  EQR_CHECK(dict.is(Kind::Dict), CheckpointError, path, ": `", what, "` is a ", dict.kind_name(),
            "; expected a dict of name -> tensor (a state_dict)");
  NamedTensors out;
  std::set<std::string> seen;
  std::set<std::string> stripped_prefixes;
  for (const auto& [k, v] : dict.entries()) {
    EQR_CHECK(k.is(Kind::Str), CheckpointError, path, ": `", what, "` has a non-string key ", k.repr(),
              "; expected parameter names");
    EQR_CHECK(v.is(Kind::Tensor), CheckpointError, path, ": `", what, "[", k.as_str(), "]` is a ", v.kind_name(),
              "; expected a tensor");
    const std::string name = strip_reference_prefixes(k.as_str());
    if (name.size() != k.as_str().size()) stripped_prefixes.insert(k.as_str().substr(0, k.as_str().size() - name.size()));
    EQR_CHECK(seen.insert(name).second, CheckpointError, path, ": `", what, "` has two entries named '", name,
              "' after stripping the _orig_mod./model.inner. prefixes (the second is '", k.as_str(), "')");
    out.emplace_back(name, v.as_tensor());
  }
  for (const auto& p : stripped_prefixes) notes.push_back(what + ": stripped prefix '" + p + "'");
  return out;
}

std::optional<int64_t> optional_int(const PickleValue& root, const std::string& key, const std::string& path,
                                    std::vector<std::string>& notes) {
  const PickleValue* v = root.get(key);
  if (v == nullptr || v->is_none()) return std::nullopt;
  if (v->is(Kind::Int)) return v->as_int();
  if (v->is(Kind::Tensor) && v->as_tensor().numel() == 1) return v->as_tensor().item<int64_t>();
  notes.push_back(path + ": `" + key + "` is " + v->repr() + ", not an int; ignored");
  return std::nullopt;
}

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

std::string join_limited(const std::vector<std::string>& names, size_t limit = 20) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size() - limit) + " more)";
  return out;
}

}  // namespace

std::string strip_reference_prefixes(const std::string& key) {
  std::string k = key;
  bool changed = true;
  while (changed) {
    changed = false;
    for (const char* p : kPrefixes) {
      const std::string prefix(p);
      if (k.size() > prefix.size() && k.compare(0, prefix.size(), prefix) == 0) {
        k.erase(0, prefix.size());
        changed = true;
      }
    }
  }
  return k;
}

ReferenceCheckpoint load_reference_checkpoint(const std::string& path, const c10::Device& device) {
  TorchFile file = read_torch_file(path, device);
  ReferenceCheckpoint out;
  out.path = path;
  out.notes = file.notes;
  out.skipped = file.skipped;
  const PickleValue& root = file.root;
  EQR_CHECK(root.is(Kind::Dict), CheckpointError, path, ": top level is a ", root.kind_name(),
            "; expected a dict (a reference training checkpoint or a state_dict)");
  for (const auto& [k, v] : root.entries()) out.top_level_keys.push_back(k.is(Kind::Str) ? k.as_str() : k.repr());

  const PickleValue* model = root.get("model");
  if (model != nullptr) {
    out.model = read_state_dict(*model, path, "model", out.notes);
  } else {
    // A bare state_dict: every value a tensor.
    bool all_tensors = !root.entries().empty();
    for (const auto& [k, v] : root.entries()) all_tensors = all_tensors && v.is(Kind::Tensor);
    EQR_CHECK(all_tensors, CheckpointError, path, ": no `model` entry (top-level keys: ",
              join_limited(out.top_level_keys), "); expected a reference checkpoint dict with `model`, or a state_dict");
    out.model = read_state_dict(root, path, "state_dict", out.notes);
    out.notes.push_back("bare state_dict (no `model` entry): read as the model");
  }

  if (const PickleValue* ema = root.get("ema"); ema != nullptr && !ema->is_none()) {
    EQR_CHECK(ema->is(Kind::Dict), CheckpointError, path, ": `ema` is a ", ema->kind_name(),
              "; expected a dict {mu, shadow}");
    if (const PickleValue* mu = ema->get("mu"); mu != nullptr && (mu->is(Kind::Float) || mu->is(Kind::Int))) {
      out.ema_mu = mu->as_double();
    }
    const PickleValue* shadow = ema->get("shadow");
    EQR_CHECK(shadow != nullptr, CheckpointError, path, ": `ema` has no `shadow` entry; expected {mu, shadow}");
    out.ema = read_state_dict(*shadow, path, "ema.shadow", out.notes);
  }

  out.step = optional_int(root, "step", path, out.notes);
  out.total_steps = optional_int(root, "total_steps", path, out.notes);
  if (const PickleValue* config = root.get("config"); config != nullptr) {
    std::vector<std::string> lossy;
    out.config = pickle_to_json(*config, &lossy, "config");
    for (auto& l : lossy) out.notes.push_back(std::move(l));
  }
  out.root = std::move(file.root);
  return out;
}

LoadReport apply_state_dict(torch::nn::Module& module, const NamedTensors& tensors, bool strict) {
  LoadReport report;
  std::map<std::string, at::Tensor> targets;  // name -> destination
  std::set<std::string> params;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    targets.emplace(item.key(), item.value());
    params.insert(item.key());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) targets.emplace(item.key(), item.value());

  std::vector<std::string> mismatches;
  std::set<std::string> provided;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (dst, src)
  for (const auto& [name, src] : tensors) {
    provided.insert(name);
    const auto it = targets.find(name);
    if (it == targets.end()) {
      report.unexpected.push_back(name);
      continue;
    }
    if (!src.defined() || src.sizes() != it->second.sizes()) {
      mismatches.push_back(name + ": checkpoint " + (src.defined() ? shape_str(src.sizes()) : "undefined") +
                           " vs module " + shape_str(it->second.sizes()));
      continue;
    }
    copies.emplace_back(it->second, src);
    report.loaded.push_back(name);
  }
  for (const auto& p : params) {
    if (provided.count(p) == 0) report.missing.push_back(p);
  }

  std::string problems;
  if (!mismatches.empty()) problems += " shape mismatches: " + join_limited(mismatches) + ";";
  if (strict && !report.missing.empty()) problems += " missing from checkpoint: " + join_limited(report.missing) + ";";
  if (strict && !report.unexpected.empty()) {
    problems += " unexpected in checkpoint: " + join_limited(report.unexpected) + ";";
  }
  EQR_CHECK(problems.empty(), CheckpointError, "state_dict does not fit the module (", tensors.size(),
            " tensors vs ", params.size(), " parameters):", problems,
            " expected the reference names of spec 1.2 after prefix stripping (e.g. L_level.layers.0.mlp.gate_up_proj.weight)");

  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
  return report;
}

LoadReport apply_state_dict(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors, bool strict) {
  return apply_state_dict(module, NamedTensors(tensors.begin(), tensors.end()), strict);
}

}  // namespace eqr::io
