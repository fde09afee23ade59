// `eqr import REF.pth --out OUT.eqrckpt [--config F.yaml] [--set k=v] [--device cpu]`: reads a checkpoint of
// the reference Python implementation, prints what it holds, and writes an eqr checkpoint with the model
// and EMA tensors (model/<name>, ema/<name>) and the configs.

#include <iostream>
#include <numeric>

#include "commands.h"
#include "eqr/config/load.h"
#include "eqr/core/device.h"
#include "eqr/core/error.h"
#include "eqr/io/checkpoint.h"
#include "eqr/io/reference_checkpoint.h"

namespace eqr::app {

namespace {

void print_tensors(const io::NamedTensors& tensors, const char* title) {
  int64_t total = 0;
  std::cout << title << " (" << tensors.size() << " tensors):\n";
  for (const auto& [name, t] : tensors) {
    std::cout << "  " << name << "  " << c10::toString(t.scalar_type()) << " " << t.sizes() << "\n";
    total += t.numel();
  }
  std::cout << "  total elements: " << total << "\n";
}

}  // namespace

void register_import(CLI::App& app) {
  struct Args {
    std::string input;
    std::string out;
    ConfigArgs config;
    std::string device = "cpu";
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("import", "Convert a reference PyTorch checkpoint (.pth) into an eqr checkpoint");
  cmd->add_option("checkpoint", args->input, "Reference checkpoint written by the Python pretrain.py (torch.save)")
      ->required();
  cmd->add_option("-o,--out", args->out, "Output eqr checkpoint (.eqrckpt); omit to only print the summary");
  add_config_options(cmd, args->config, false);
  cmd->add_option("--device", args->device, "Device to load tensors onto (cpu, cuda, cuda:N, auto)")
      ->capture_default_str();
  cmd->callback([args] {
    const c10::Device device = resolve_device(args->device);
    const io::ReferenceCheckpoint ref = io::load_reference_checkpoint(args->input, device);

    std::cout << "reference checkpoint: " << ref.path << "\n";
    std::cout << "top-level keys: ";
    for (size_t i = 0; i < ref.top_level_keys.size(); ++i) std::cout << (i ? ", " : "") << ref.top_level_keys[i];
    std::cout << "\n";
    std::cout << "step: " << (ref.step ? std::to_string(*ref.step) : "(none)")
              << ", total_steps: " << (ref.total_steps ? std::to_string(*ref.total_steps) : "(none)") << "\n";
    print_tensors(ref.model, "model");
    if (ref.ema) {
      std::cout << "EMA: present (mu " << (ref.ema_mu ? std::to_string(*ref.ema_mu) : "?") << ", "
                << ref.ema->size() << " tensors)\n";
    } else {
      std::cout << "EMA: absent\n";
    }
    std::cout << "config: " << (ref.config.is_null() ? "absent" : "present") << "\n";
    std::cout << "skipped objects (" << ref.skipped.size() << "):\n";
    for (const auto& s : ref.skipped) std::cout << "  " << s << "\n";
    std::cout << "notes (" << ref.notes.size() << "):\n";
    for (const auto& n : ref.notes) std::cout << "  " << n << "\n";

    if (args->out.empty()) return;
    io::Checkpoint ckpt = io::to_native(ref);
    if (!args->config.path.empty() || !args->config.overrides.empty()) {
      ckpt.meta["config"] = config::to_json(config::load(args->config.path, args->config.overrides));
    }
    io::save_checkpoint(ckpt, args->out);
    std::cout << "wrote " << args->out << " (" << ckpt.tensors.size() << " tensors)\n";
  });
}

}  // namespace eqr::app
