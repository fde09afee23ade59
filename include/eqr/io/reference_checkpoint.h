#pragma once
// Checkpoints of the reference Python implementation (pretrain.py, spec section 3): the model
// state_dict, the EMA shadow, the step and the config, read from a torch.save file without Python.
// Parameter names are the reference's state_dict keys with the `_orig_mod.` (torch.compile) and
// `model.inner.` (loss head wrapper) prefixes removed, e.g. `L_level.layers.0.mlp.gate_up_proj.weight`;
// eqr's modules name their parameters exactly so (spec section 1.2), and apply_state_dict copies them
// by name, checking every shape.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include "eqr/io/torch_pickle.h"

namespace eqr::io {

/// Tensors by name, in file order.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// What eqr reads from a reference checkpoint.
struct ReferenceCheckpoint {
  std::string path;
  NamedTensors model;               ///< `model` state_dict, prefixes stripped, file order
  std::optional<NamedTensors> ema;  ///< `ema.shadow`, prefixes stripped; nullopt when the file has no EMA
  std::optional<double> ema_mu;     ///< `ema.mu` (0.999 in the reference)
  std::optional<int64_t> step;      ///< `step`
  std::optional<int64_t> total_steps;
  nlohmann::ordered_json config;    ///< `config` as JSON where possible (null when absent)
  std::vector<std::string> top_level_keys;  ///< keys of the saved dict, in order
  std::vector<std::string> skipped;  ///< objects not interpreted, "path: module.name" (carry, numpy RNG, ...)
  std::vector<std::string> notes;    ///< devices remapped, prefixes stripped, lossy config values
  PickleValue root;                  ///< the whole file, for callers that want more (optimizers, rng)
};

/// Reads a reference checkpoint onto `device`. Accepts the full training checkpoint (a dict with a
/// `model` entry) or a bare state_dict (a dict of tensors). Throws CheckpointError naming the path,
/// what is wrong and what was expected (not a torch.save zip, no `model` entry, a non-tensor value in
/// the state_dict, two keys equal after prefix stripping).
ReferenceCheckpoint load_reference_checkpoint(const std::string& path,
                                              const c10::Device& device = c10::Device(c10::kCPU));

/// Strips leading `_orig_mod.` and `model.inner.` prefixes (any number, any order):
/// "_orig_mod.model.inner.q_head.bias" -> "q_head.bias".
std::string strip_reference_prefixes(const std::string& key);

/// What apply_state_dict did.
struct LoadReport {
  std::vector<std::string> loaded;      ///< parameters and buffers copied
  std::vector<std::string> missing;     ///< module parameters with no tensor in the map
  std::vector<std::string> unexpected;  ///< map entries matching no parameter or buffer
};

/// Copies tensors into `module`'s parameters (and into buffers that the map names) by name, with
/// dtype/device conversion as needed. Every shape must match exactly, else CheckpointError listing
/// each mismatch as "name: checkpoint [a, b] vs module [c, d]". With `strict`, missing parameters
/// or unexpected keys are a CheckpointError listing them all; otherwise they are only reported.
/// Buffers absent from the map are never "missing" (the reference does not save its non-persistent
/// buffers: RoPE caches, H_init/L_init). Nothing is copied unless all checks pass.
LoadReport apply_state_dict(torch::nn::Module& module, const NamedTensors& tensors, bool strict = true);
LoadReport apply_state_dict(torch::nn::Module& module, const std::map<std::string, at::Tensor>& tensors,
                            bool strict = true);

}  // namespace eqr::io
