#pragma once
// A checkpoint whose model predicts its input, token for token, for CLI tests that must see a known answer
// (`eqr solve` printing "valid solution: yes" needs a model that really gives a valid solution, and a tiny
// untrained or briefly trained one gives none). Header-only; integration suites only (links io and model).
//
// Why the prediction is the input: variant trm (lambda 1, no path noise), init fixed with H_init = L_init = 0,
// every weight of the reasoning blocks zero, token embedding row v = e_v and lm_head row v = e_v (the first V
// of D channels). With zero weights each block is rms_norm_D(rms_norm_S(.)), which only rescales channels and
// cells by positive factors; every state starts at zero and is fed only x = sqrt(D) e_{token}, so z_H at a cell
// with token t stays a positive multiple of e_t through every update, and lm_head's logits are that multiple at
// t and 0 elsewhere: argmax = t.

#include <filesystem>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

#include "eqr/config/config.h"
#include "eqr/config/load.h"
#include "eqr/io/checkpoint.h"
#include "eqr/model/eqr_model.h"

namespace eqr::test {

/// Saves the echo model of `c`'s shapes (hidden_size >= vocab_size, mlp_t) as a native checkpoint at `path`,
/// the same weights as model/ and ema/. The architecture keys the construction needs are set here.
inline void save_echo_checkpoint(config::RunConfig c, const std::filesystem::path& path) {
  if (c.arch.hidden_size < c.arch.vocab_size || !c.arch.mlp_t) {
    throw std::invalid_argument("save_echo_checkpoint: needs hidden_size >= vocab_size and mlp_t");
  }
  c.arch.variant = config::Variant::kTrm;
  c.arch.lambda = 1.0;
  c.arch.noise_scale = 0.0;
  c.arch.init = config::StateInit::kFixed;
  c.compute.forward_dtype = "float32";
  model::EqrModel m(model::EqrModelOptions(c.arch, c.compute));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->L_level->parameters()) p.zero_();
    const auto eye = torch::eye(c.arch.vocab_size, c.arch.hidden_size);
    m->embed_tokens->embedding_weight.copy_(eye);
    m->lm_head->weight.copy_(eye);
    m->H_init.zero_();
    m->L_init.zero_();
  }
  io::Checkpoint ck;
  for (const auto& kv : m->state_dict()) {
    ck.tensors["model/" + kv.key()] = kv.value().detach().clone();
    ck.tensors["ema/" + kv.key()] = kv.value().detach().clone();
  }
  ck.meta["config"] = config::to_json(c);
  ck.meta["step"] = 1;
  io::save_checkpoint(ck, path.string());
}

}  // namespace eqr::test
