#include "eqr/core/device.h"

#include <torch/torch.h>

#include <dlfcn.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "eqr/core/error.h"

namespace eqr {

int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

int64_t auto_num_threads() {
  const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  int64_t local_ranks = 1;  // processes sharing this machine (eqr launch / torchrun set LOCAL_WORLD_SIZE)
  if (const char* env = std::getenv("LOCAL_WORLD_SIZE")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0) local_ranks = v;
  }
  return std::max<int64_t>(1, cores / local_ranks);
}

bool set_blas_threads(int64_t n) {
  // OpenBLAS (libopenblas0-pthread) runs its own thread pool beside LibTorch's intra-op threads. It used to
  // be pinned to 1 thread here, because both pools busy-waited against each other; since
  // use_runtime_environment() makes LibTorch's OpenMP workers sleep when idle, OpenBLAS with as many threads
  // as LibTorch is faster in every measured case (float32 on the 2-core VM, docs/performance.md: a D 128
  // training step 1,538 -> 935 ms, its eval step 904 -> 638 ms). An explicit OPENBLAS_NUM_THREADS wins.
  if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr) return false;
  using SetThreads = void (*)(int);
  auto* fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn == nullptr) return false;
  fn(static_cast<int>(std::max<int64_t>(1, n)));
  return true;
}

bool use_runtime_environment(char** argv) {
  // OMP_WAIT_POLICY: libgomp's default (spin, then sleep) lets an idle worker burn the core its busy
  // sibling needs whenever the machine has fewer free cores than threads: measured on the 2-vCPU VM while
  // the host was contended, a quickstart step took 5.4 s spinning vs 1.2 s passive (uncontended: 0.63 vs
  // 0.66 s).
  // GLIBC_TUNABLES: by default glibc gives the top of the heap back to the kernel when it is freed, so
  // every step of a loop that allocates and frees the same tensors pays page faults and page zeroing
  // again. Measured on the quickstart eval (256 puzzles, depth 16, paired runs): 17-31 s -> 10-22 s wall,
  // 5.6-9.9 s -> 0.8-1.3 s system time, same results, peak RSS 365 -> 354 MB.
  bool changed = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  if (std::getenv("GLIBC_TUNABLES") == nullptr) {
    ::setenv("GLIBC_TUNABLES", kMallocTunables, 1);
    changed = true;
  }
  if (!changed) return false;
  ::execv("/proc/self/exe", argv);
  return false;  // exec failed: carry on with the defaults
}

int64_t set_num_threads(int64_t n) {
  EQR_CHECK(n >= 0, UsageError, "num_threads = ", n, ": expected 0 (all cores) or a positive count");
  const int64_t threads = n > 0 ? n : auto_num_threads();
  at::set_num_threads(static_cast<int>(threads));
  set_blas_threads(threads);
  return threads;
}

c10::Device resolve_device(const std::string& name) {
  if (name == "auto") {
    return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (name.size() > 5) {
      const std::string digits = name.substr(5);
      EQR_CHECK(!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos,
                UsageError, "device '", name, "': expected cuda:N with N a device index");
      index = std::stoi(digits);
    }
    EQR_CHECK(torch::cuda::is_available(), UsageError, "device '", name,
              "' asked for, but CUDA is not available (this LibTorch build or machine has no GPU); "
              "use --device cpu or auto");
    EQR_CHECK(index < cuda_device_count(), UsageError, "device '", name, "': only ",
              cuda_device_count(), " CUDA device(s) visible");
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  EQR_FAIL(UsageError, "device '", name, "' is not known; expected auto, cpu, cuda or cuda:N");
}

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return c10::kFloat;
  if (name == "bfloat16" || name == "bf16") return c10::kBFloat16;
  if (name == "float16" || name == "fp16") return c10::kHalf;
  EQR_FAIL(ConfigError, "dtype '", name, "' is not known; expected float32, bfloat16 or float16");
}

CpuFeatures cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    unsigned brand[12] = {};
    for (unsigned leaf = 0; leaf < 3; ++leaf) {
      __cpuid(0x80000002u + leaf, brand[4 * leaf], brand[4 * leaf + 1], brand[4 * leaf + 2], brand[4 * leaf + 3]);
    }
    std::string model(reinterpret_cast<const char*>(brand), sizeof(brand));
    model = model.substr(0, model.find('\0'));
    const auto first = model.find_first_not_of(' ');
    const auto last = model.find_last_not_of(' ');
    f.model = first == std::string::npos ? "" : model.substr(first, last - first + 1);
  }
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(1, 0, a, b, c, d);
  const bool fma = (c & (1u << 12)) != 0;
  if ((c & (1u << 27)) != 0) {  // OSXSAVE: xgetbv is usable
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    f.os_avx512 = (xcr0_lo & 0xE6u) == 0xE6u;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state
  }
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = fma && (b & (1u << 5)) != 0;
  f.avx512f = (b & (1u << 16)) != 0;
  f.avx512bw = (b & (1u << 30)) != 0;
  f.amx_bf16 = (d & (1u << 22)) != 0;
  __cpuid_count(7, 1, a, b, c, d);
  f.avx512_bf16 = (a & (1u << 5)) != 0;
#endif
  return f;
}

bool cpu_has_native_bf16() {
  static const bool has = [] {
    if (const char* env = std::getenv("EQR_CPU_BF16"); env != nullptr && *env != '\0') {
      return std::string(env) != "0";
    }
    const CpuFeatures f = cpu_features();
    return f.os_avx512 && f.avx512bw && (f.avx512_bf16 || f.amx_bf16);
  }();
  return has;
}

std::string cpu_summary() {
  const CpuFeatures f = cpu_features();
  std::string flags;
  for (const auto& [on, name] : {std::pair{f.avx2, "avx2"}, std::pair{f.avx512f, "avx512f"},
                                 std::pair{f.avx512_bf16, "avx512_bf16"}, std::pair{f.amx_bf16, "amx_bf16"}}) {
    if (on) flags += std::string(flags.empty() ? "" : " ") + name;
  }
  return (f.model.empty() ? std::string("unknown CPU") : f.model) + " (" + (flags.empty() ? "no avx2" : flags) +
         "; bfloat16 " + (cpu_has_native_bf16() ? "native" : "emulated") + ")";
}

c10::ScalarType forward_dtype_for(const std::string& configured, const c10::Device& device,
                                  std::optional<bool> reduced_on_cpu) {
  const auto dtype = parse_dtype(configured);
  if (!device.is_cpu() || dtype == c10::kFloat) return dtype;
  if (reduced_on_cpu.has_value()) return *reduced_on_cpu ? dtype : c10::kFloat;
  return dtype == c10::kBFloat16 && cpu_has_native_bf16() ? dtype : c10::kFloat;
}

}  // namespace eqr
