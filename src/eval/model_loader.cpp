// Loading a trained model (native .eqrckpt or reference .pth) for evaluation.

#include "eqr/eval/model_loader.h"

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include <torch/torch.h>

#include "eqr/core/error.h"
#include "eqr/core/logging.h"
#include "eqr/io/reference_checkpoint.h"
#include "eqr/task/task.h"

namespace eqr::eval {

namespace {

const nlohmann::ordered_json* find_arch(const nlohmann::ordered_json& ref) {
  if (!ref.is_object()) return nullptr;
  if (ref.contains("arch") && ref["arch"].is_object()) return &ref["arch"];
  if (ref.contains("H_cycles") || ref.contains("hidden_size")) return &ref;  // the arch node itself
  return nullptr;
}

}  // namespace

config::Tree reference_arch_tree(const nlohmann::ordered_json& reference_config, const io::TensorMap& model_tensors,
                                 std::vector<std::string>* notes) {
  static const std::map<std::string, std::string> renamed = {
      {"H_cycles", "h_cycles"},     {"L_cycles", "l_cycles"},     {"L_layers", "l_layers"},
      {"lambda_", "lambda"},        {"H_init_std", "h_init_std"}, {"L_init_std", "l_init_std"},
  };
  static const std::set<std::string> same = {"hidden_size", "num_heads",     "expansion",   "mlp_t",
                                             "noise_scale", "halt_max_steps", "halt_exploration_prob",
                                             "board_height", "board_width", "rope_theta",  "rms_norm_eps",
                                             "forward_dtype", "pos_encodings"};
  static const std::set<std::string> no_meaning = {"name",  "loss", "H_layers", "puzzle_emb_ndim", "puzzle_emb_len",
                                                   "batch_size", "seq_len", "vocab_size", "num_puzzle_identifiers",
                                                   "different_init_reset_std"};
  const auto note = [&](const std::string& s) {
    if (notes) notes->push_back(s);
  };
  config::Tree arch = config::Tree::object();
  if (const auto* a = find_arch(reference_config)) {
    for (auto it = a->begin(); it != a->end(); ++it) {
      const std::string& key = it.key();
      const auto& v = it.value();
      if (auto r = renamed.find(key); r != renamed.end()) {
        arch[r->second] = v;
      } else if (same.count(key)) {
        if (v.is_null()) {
          if (key == "pos_encodings") arch[key] = "none";
          else note("reference arch." + key + " is null; eqr default kept");
        } else {
          arch[key] = v;
        }
      } else if (key == "name" && v.is_string()) {
        const std::string name = v.get<std::string>();
        if (name.find("trm") != std::string::npos || name.find("TRM") != std::string::npos) arch["variant"] = "trm";
        else arch["variant"] = "eqr";
        note("reference arch.name '" + name + "' -> variant " + arch["variant"].get<std::string>());
      } else if (no_meaning.count(key)) {
        // taken from the tensors or meaningless for the EqR model
      } else {
        note("reference arch." + key + " has no eqr counterpart; ignored");
      }
    }
    if (arch.contains("board_height") && arch["board_height"].is_null()) arch.erase("board_height");
    if (arch.contains("board_width") && arch["board_width"].is_null()) arch.erase("board_width");
  } else {
    note("reference checkpoint has no arch config; shapes from the tensors, the rest from --config / defaults");
  }
  // Shapes the Hydra config does not hold (they come from the dataset at run time in the reference).
  if (auto it = model_tensors.find("embed_tokens.embedding_weight"); it != model_tensors.end()) {
    EQR_CHECK(it->second.dim() == 2, CheckpointError, "embed_tokens.embedding_weight: shape ", it->second.sizes(),
              ", expected (V, D)");
    arch["vocab_size"] = it->second.size(0);
    arch["hidden_size"] = it->second.size(1);
  }
  if (auto it = model_tensors.find("L_level.layers.0.mlp_t.gate_up_proj.weight"); it != model_tensors.end()) {
    arch["seq_len"] = it->second.size(1);
    arch["mlp_t"] = true;
  } else if (model_tensors.count("L_level.layers.0.self_attn.qkv_proj.weight")) {
    arch["mlp_t"] = false;
    if (arch.contains("board_height") && arch.contains("board_width") && arch["board_height"].is_number_integer() &&
        arch["board_width"].is_number_integer()) {
      arch["seq_len"] = arch["board_height"].get<int64_t>() * arch["board_width"].get<int64_t>();
    }
  }
  static const std::regex layer_re(R"(^L_level\.layers\.(\d+)\.)");
  int64_t layers = 0;
  for (const auto& [name, t] : model_tensors) {
    std::smatch m;
    if (std::regex_search(name, m, layer_re)) layers = std::max<int64_t>(layers, std::stoll(m[1].str()) + 1);
  }
  if (layers > 0) arch["l_layers"] = layers;
  return arch;
}

LoadedModel load_model(const std::string& checkpoint, const c10::Device& device, bool use_ema,
                       const std::vector<std::string>& overrides, const std::string& config_path) {
  std::string path = checkpoint;
  if (std::filesystem::is_directory(path)) {  // a run directory: its newest checkpoint
    const auto latest = io::latest_checkpoint(path);
    EQR_CHECK(latest.has_value(), CheckpointError, checkpoint,
              " is a directory without checkpoints; expected a checkpoint file or a run directory (runs/<name>)");
    path = *latest;
  }
  return load_model(io::load_any_checkpoint(path, device), path, device, use_ema, overrides, config_path);
}

LoadedModel load_model(io::Checkpoint ck, const std::string& checkpoint, const c10::Device& device, bool use_ema,
                       const std::vector<std::string>& overrides, const std::string& config_path) {
  LoadedModel out;
  out.checkpoint = checkpoint;
  const bool reference = ck.meta.contains("source") && ck.meta["source"] == "reference";
  out.format = reference ? "reference" : "native";
  if (ck.meta.contains("step") && ck.meta["step"].is_number_integer()) out.step = ck.meta["step"].get<int64_t>();

  config::Tree tree = config::Tree::object();
  if (!reference) {
    EQR_CHECK(ck.meta.contains("config") && ck.meta["config"].is_object(), CheckpointError, checkpoint,
              ": native checkpoint without meta.config; expected the resolved RunConfig written by the trainer");
    tree = ck.meta["config"];
  }
  if (!config_path.empty()) {
    config::Tree file = config::read_tree(config_path);
    if (!reference && file.contains("arch")) {
      file.erase("arch");
      out.notes.push_back("--config arch section ignored: the checkpoint's trained arch is used");
    }
    config::merge_into(tree, file);
  }
  const io::TensorMap model_tensors = io::tensors_with_prefix(ck.tensors, "model/");
  const io::TensorMap ema_tensors = io::tensors_with_prefix(ck.tensors, "ema/");
  EQR_CHECK(!model_tensors.empty() || !ema_tensors.empty(), CheckpointError, checkpoint,
            ": no model weights (no model/* or ema/* tensors)");
  if (reference) {
    const auto& ref_cfg = ck.meta.contains("reference_config") ? ck.meta["reference_config"] : config::Tree();
    config::Tree arch = reference_arch_tree(ref_cfg, model_tensors.empty() ? ema_tensors : model_tensors, &out.notes);
    if (!tree.contains("arch") || !tree["arch"].is_object()) tree["arch"] = config::Tree::object();
    // The reference's forward_dtype is how it computed, not what the model is: eqr's compute section.
    if (arch.contains("forward_dtype")) {
      if (!tree.contains("compute") || !tree["compute"].is_object()) tree["compute"] = config::Tree::object();
      if (!tree["compute"].contains("forward_dtype")) tree["compute"]["forward_dtype"] = arch["forward_dtype"];
      arch.erase("forward_dtype");
    }
    config::merge_into(tree["arch"], arch);
    // The task's data keys the reference's arch config lacks (Sudoku: the board of seq_len).
    task::complete_imported_config(tree, &out.notes);
  }
  for (const auto& o : overrides) config::apply_override(tree, o);
  out.config = config::from_json(tree);
  out.task = task::make_task(out.config);  // data.task (absent in older checkpoints: sudoku) against the arch

  out.model = model::EqrModel(model::EqrModelOptions(out.config.arch, out.config.compute));
  out.model->to(device);
  const bool ema = use_ema && !ema_tensors.empty();
  out.weights = ema ? "ema" : "model";
  try {
    io::apply_state_dict(*out.model, ema ? ema_tensors : model_tensors, /*strict=*/true);
  } catch (const CheckpointError& e) {
    EQR_FAIL(CheckpointError, checkpoint, ": ", e.what(), " (arch: hidden_size ", out.config.arch.hidden_size,
             ", l_layers ", out.config.arch.l_layers, ", seq_len ", out.config.arch.seq_len, ", vocab_size ",
             out.config.arch.vocab_size, ", mlp_t ", out.config.arch.mlp_t, ")");
  }
  out.model->eval();
  logger()->info("loaded {} checkpoint {}{}: {} weights{}", out.format, checkpoint,
                 out.step ? " (step " + std::to_string(*out.step) + ")" : std::string(),
                 ema ? "EMA" : "raw (model)",
                 use_ema && !ema ? " (no EMA in the file)" : (!use_ema && !ema_tensors.empty() ? " (EMA not used)" : ""));
  for (const auto& n : out.notes) logger()->debug("checkpoint config: {}", n);
  return out;
}

}  // namespace eqr::eval
