// `eqr version`: what this build is and what it runs on.

#include <iostream>

#include "commands.h"
#include "eqr/core/device.h"
#include "eqr/core/version.h"

namespace eqr::app {

void register_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print eqr, git, LibTorch, CUDA, BLAS and thread information");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print as one JSON object");
  cmd->callback([json] {
    const auto info = environment_info();
    if (*json) {
      std::cout << info.dump(2) << "\n";
      return;
    }
    std::cout << "eqr " << info["eqr_version"].get<std::string>() << " (git " << info["git_sha"].get<std::string>()
              << ")\n"
              << "libtorch   " << info["torch_version"].get<std::string>()
              << (info["built_with_cuda"].get<bool>() ? " (CUDA build)" : " (CPU build)") << "\n"
              << "cuda       " << (info["cuda_available"].get<bool>() ? "available" : "not available") << ", "
              << info["cuda_device_count"].get<int>() << " device(s)\n"
              << "blas       " << info["blas"].get<std::string>()
              << (info["blas_library"].get<std::string>().empty() ? std::string()
                                                                   : " (" + info["blas_library"].get<std::string>() + ")")
              << "\n"
              << "threads    " << auto_num_threads() << " intra-op in runs with num_threads 0 (LibTorch's own default "
              << info["torch_threads"].get<int>() << "; OpenBLAS gets the same count), "
              << info["hardware_threads"].get<unsigned>() << " hardware\n"
              << "cpu        " << info["cpu"].get<std::string>() << "\n";
  });
}

}  // namespace eqr::app
