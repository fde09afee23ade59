#pragma once
// What this build of eqr is and what it runs on (for `eqr version` and every run directory).

#include <string>

#include <nlohmann/json.hpp>

namespace eqr {

/// eqr's semantic version, e.g. "0.1.0".
std::string version();
/// Git SHA of the source tree at build time ("unknown" outside git; "-dirty" with local edits).
std::string git_sha();
/// LibTorch version as compiled against, e.g. "1.13.1".
std::string torch_version();
/// Path of the BLAS library loaded in this process (read from /proc/self/maps), and its kind
/// ("openblas", "reference", "mkl", "blis", "unknown").
std::string blas_library_path();
std::string blas_kind();
/// Threads the loaded BLAS uses now (openblas_get_num_threads / mkl_get_max_threads, found with dlsym), or -1
/// when neither is found (e.g. MKL linked statically into LibTorch, or a reference BLAS).
int blas_num_threads();
/// Everything above plus CUDA availability, device count and thread count, as one JSON object.
nlohmann::json environment_info();

}  // namespace eqr
