#pragma once
// Device and dtype choice. All eqr code is device-agnostic: it takes a torch::Device from here.

#include <optional>
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace eqr {

/// Parses "auto" | "cpu" | "cuda" | "cuda:N". "auto" picks cuda:0 when CUDA is available, else cpu.
/// Throws UsageError for an unknown name, or when CUDA is asked for and not available.
c10::Device resolve_device(const std::string& name);

/// Parses "float32" | "bfloat16" | "float16" (also "fp32", "bf16", "fp16").
/// Throws ConfigError for anything else.
c10::ScalarType parse_dtype(const std::string& name);

/// True when this CPU does bfloat16 arithmetic natively (AVX512-BF16 or AMX-BF16, with the OS saving
/// the AVX-512 state), so bfloat16 GEMMs through oneDNN beat float32 ones (measured 4x on AVX512-BF16).
/// Read once from CPUID; false off x86-64. EQR_CPU_BF16=0/1 overrides the detection (tests, debugging).
bool cpu_has_native_bf16();

/// What this CPU offers that decides eqr's (and LibTorch's, oneDNN's, OpenBLAS's) kernels, read from CPUID
/// (so an emulator's CPU model is seen, not the host's /proc/cpuinfo). All false off x86-64.
struct CpuFeatures {
  std::string model;   ///< CPUID brand string, e.g. "AMD EPYC 9B45" ("" where there is none)
  bool avx2 = false;   ///< with FMA: x86-64-v3
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512_bf16 = false;
  bool amx_bf16 = false;
  bool os_avx512 = false;  ///< the OS saves the AVX-512 state (XCR0)
};
CpuFeatures cpu_features();
/// "AMD EPYC 9B45 (avx2 avx512f avx512_bf16; bfloat16 native)": the model and the flags that matter.
std::string cpu_summary();

/// The dtype the forward pass runs in: the configured one on accelerators. On the CPU, a reduced dtype
/// is kept when `reduced_on_cpu` is true, replaced by float32 when false, and when unset (auto) kept only
/// if it is bfloat16 and cpu_has_native_bf16() (float16 and emulated bfloat16 are slow on CPUs).
c10::ScalarType forward_dtype_for(const std::string& configured, const c10::Device& device,
                                  std::optional<bool> reduced_on_cpu);

/// Number of CUDA devices visible to LibTorch (0 on a CPU build).
int cuda_device_count();

/// Intra-op threads for `num_threads = 0`: the machine's cores divided by LOCAL_WORLD_SIZE (processes of
/// one data-parallel job on this machine), at least 1. (Debian's LibTorch 1.13 defaults to 1 thread.)
int64_t auto_num_threads();
/// The process environment eqr runs best in on CPU, which libraries read only at load time, so it can be
/// set only by running this program again: OMP_WAIT_POLICY=PASSIVE (idle OpenMP workers sleep instead of
/// spinning) and GLIBC_TUNABLES = kMallocTunables (glibc keeps freed memory instead of returning it to the
/// kernel and faulting it back in zeroed at the next step). A variable the user has set, even to "", is
/// left alone. If anything was added, re-executes this program with `argv`; call first thing in main().
/// Returns only when nothing was added or exec failed (false). See docs/model.md, "CPU threads".
bool use_runtime_environment(char** argv);
/// glibc malloc settings use_runtime_environment() puts into GLIBC_TUNABLES.
inline constexpr const char* kMallocTunables =
    "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184";
/// Gives OpenBLAS `n` threads (eqr sets it equal to LibTorch's intra-op threads) unless OPENBLAS_NUM_THREADS
/// is set. Returns true if it changed OpenBLAS's setting (false: not OpenBLAS, or env).
bool set_blas_threads(int64_t n);
/// Sets LibTorch's intra-op CPU threads (0 = auto_num_threads()), the same count for OpenBLAS
/// (set_blas_threads), and
/// returns the count set. Throws UsageError for n < 0.
int64_t set_num_threads(int64_t n);

}  // namespace eqr
