#pragma once
// Loading a trained model for evaluation from either checkpoint format:
//   - eqr's native .eqrckpt: the config is meta["config"] (the full resolved RunConfig); weights are
//     tensors "model/<param>", or "ema/<param>" when use_ema and the file has them.
//   - the reference's torch.save .pth (pretrain.py): weights by the reference key table (prefixes
//     `_orig_mod.` / `model.inner.` stripped, io/reference_checkpoint.h); the architecture from the
//     checkpoint's Hydra config tree (arch.H_cycles -> h_cycles, ..., reference_arch_tree()), with
//     hidden_size, vocab_size and seq_len taken from the tensor shapes, or from `--config` when the file
//     has no config. The task's data keys follow the board (task::complete_imported_config; e.g. Sudoku's
//     data.box_rows/box_cols: seq_len 16/36/81/256 -> 2x2/2x3/3x3/4x4) unless --config sets them. A native
//     checkpoint records its task in config.data.task (absent in older checkpoints: sudoku, the default).
// Shapes are checked strictly: a missing, unexpected or mis-shaped parameter is a CheckpointError.
// A log line says which weights (EMA or raw) were loaded.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "eqr/config/config.h"
#include "eqr/config/load.h"
#include "eqr/io/checkpoint.h"
#include "eqr/model/eqr_model.h"
#include "eqr/task/task.h"

namespace eqr::eval {

struct LoadedModel {
  model::EqrModel model{nullptr};  ///< on the requested device, eval mode
  config::RunConfig config;        ///< resolved config (arch = the trained model's)
  std::shared_ptr<const task::Task> task;  ///< the task the model was trained on (config.data.task)
  std::string checkpoint;          ///< path
  std::string format;              ///< "native" or "reference"
  std::string weights;             ///< "ema" or "model"
  std::optional<int64_t> step;     ///< training step of the checkpoint, when recorded
  std::vector<std::string> notes;  ///< how the config was put together (reference imports)
};

/// Loads `checkpoint` (a file, or a run directory: its newest checkpoint) onto `device`. `config_path` (optional): a config file for the run-time sections
/// (data, eval, ...; for a native checkpoint its arch section is ignored: the trained arch wins; for a
/// reference checkpoint without a config tree it supplies the arch). `overrides`: `--set a.b=c` edits
/// applied last (e.g. "arch.noise_scale=0", "eval.depth=[16,64]"). Throws CheckpointError / ConfigError.
LoadedModel load_model(const std::string& checkpoint, const c10::Device& device, bool use_ema,
                       const std::vector<std::string>& overrides, const std::string& config_path = "");

/// The same from a checkpoint already in memory (`name` is used in messages): what load_model does after
/// io::load_any_checkpoint. A reference import is recognised by meta.source == "reference" (io::to_native).
LoadedModel load_model(io::Checkpoint checkpoint, const std::string& name, const c10::Device& device, bool use_ema,
                       const std::vector<std::string>& overrides, const std::string& config_path = "");

/// An eqr arch tree (config::to_json(ArchConfig) keys) from a reference Hydra config (the whole
/// PretrainConfig dump or its `arch` node) plus the model tensors (names without prefix):
/// H_cycles -> h_cycles, L_cycles -> l_cycles, L_layers -> l_layers, lambda_ -> lambda, H_init_std ->
/// h_init_std, L_init_std -> l_init_std, pos_encodings null -> "none", name "...trm..." -> variant trm;
/// same-named keys (hidden_size, num_heads, expansion, mlp_t, noise_scale, halt_max_steps, ...) as they
/// are. hidden_size / vocab_size from embed_tokens.embedding_weight (V, D), seq_len from the token-MLP
/// weight (mlp_t) or board_height * board_width. Keys with no eqr meaning are listed in `notes`.
config::Tree reference_arch_tree(const nlohmann::ordered_json& reference_config, const io::TensorMap& model_tensors,
                                 std::vector<std::string>* notes = nullptr);

}  // namespace eqr::eval
