#include "eqr/core/version.h"

#include <dlfcn.h>

#include <fstream>
#include <thread>

#include <torch/torch.h>
#include <torch/version.h>

#include "eqr/core/device.h"

namespace eqr {
namespace detail {
extern const char* const kVersion;
extern const char* const kGitSha;
}  // namespace detail

std::string version() { return detail::kVersion; }
std::string git_sha() { return detail::kGitSha; }
std::string torch_version() { return TORCH_VERSION; }

std::string blas_library_path() {
  // The dynamic loader maps the BLAS actually in use; Debian's alternatives resolve libblas.so.3
  // to openblas-pthread/, blas/ (reference), blis-*/ or atlas/, which shows in the mapped path.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const auto base = path.substr(path.rfind('/') + 1);
    if (base.rfind("libblas", 0) == 0 || base.rfind("libopenblas", 0) == 0 || base.rfind("libmkl_rt", 0) == 0 ||
        base.rfind("libblis", 0) == 0) {
      return path;
    }
  }
  return "";
}

std::string blas_kind() {
  const std::string path = blas_library_path();
  // The PyTorch wheels link MKL statically into libtorch_cpu: no BLAS library of its own is mapped.
  if (path.empty()) return at::hasMKL() ? "mkl (linked into LibTorch)" : "none-found";
  if (path.find("openblas") != std::string::npos) return "openblas";
  if (path.find("mkl") != std::string::npos) return "mkl";
  if (path.find("blis") != std::string::npos) return "blis";
  if (path.find("atlas") != std::string::npos) return "atlas";
  if (path.find("/blas/") != std::string::npos) return "reference";
  return "unknown";
}

int blas_num_threads() {
  using GetThreads = int (*)();
  for (const char* name : {"openblas_get_num_threads", "mkl_get_max_threads"}) {
    if (auto* fn = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, name))) return fn();
  }
  return -1;
}

nlohmann::json environment_info() {
  nlohmann::json info;
  info["eqr_version"] = version();
  info["git_sha"] = git_sha();
  info["torch_version"] = torch_version();
  info["cuda_available"] = torch::cuda::is_available();
  info["cuda_device_count"] = cuda_device_count();
#ifdef EQR_WITH_CUDA
  info["built_with_cuda"] = true;
#else
  info["built_with_cuda"] = false;
#endif
  info["blas"] = blas_kind();
  info["blas_library"] = blas_library_path();
  info["torch_threads"] = at::get_num_threads();
  info["hardware_threads"] = std::thread::hardware_concurrency();
  info["cpu"] = cpu_summary();
  info["cpu_bf16"] = cpu_has_native_bf16() ? "native" : "emulated";
#if defined(EQR_CLONES_AVX2_ONLY)
  info["cpu_clones"] = "x86-64-v3, baseline";
#else
  info["cpu_clones"] = "x86-64-v4, x86-64-v3, baseline";
#endif
  return info;
}

}  // namespace eqr
