# Third-party dependencies, all found on the system (no network fetch).
# Debian 12: scripts/setup.sh installs every package named in the hints below.

# A macro, not a function: find_package's result variables (TORCH_LIBRARIES, ...) must stay visible.
macro(eqr_require_package name hint)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR "eqr: ${name} not found. ${hint}")
  endif()
endmacro()

# LibTorch: Debian's libtorch-dev (1.13, CPU) or any LibTorch 2.x given by -DCMAKE_PREFIX_PATH=/path/to/libtorch.
# EQR_TORCH_IMPORT=manual (with EQR_TORCH_ROOT = the torch package folder, e.g. site-packages/torch) imports
# LibTorch from its folders instead of its CMake files. That is for a CUDA LibTorch on a machine without the
# CUDA toolkit: TorchConfig.cmake then stops for want of nvcc, although eqr compiles no CUDA code of its own
# and needs only the CUDA runtime headers, which the PyTorch wheel's nvidia/cu13 (or CUDA_HOME) provides.
set(EQR_TORCH_IMPORT "cmake" CACHE STRING "How LibTorch is found: cmake (its TorchConfig.cmake) or manual")
set(EQR_TORCH_ROOT "" CACHE PATH "With EQR_TORCH_IMPORT=manual: the LibTorch folder (include/, lib/, share/)")
if(EQR_TORCH_IMPORT STREQUAL "manual")
  if(NOT EXISTS "${EQR_TORCH_ROOT}/include/torch/torch.h" AND NOT EXISTS "${EQR_TORCH_ROOT}/include/torch/csrc/api/include/torch/torch.h")
    message(FATAL_ERROR "eqr: EQR_TORCH_IMPORT=manual needs EQR_TORCH_ROOT = a LibTorch folder with include/ and lib/; "
                        "got '${EQR_TORCH_ROOT}'")
  endif()
  set(Torch_DIR "${EQR_TORCH_ROOT}/share/cmake/Torch")
  set(TORCH_INCLUDE_DIRS "${EQR_TORCH_ROOT}/include" "${EQR_TORCH_ROOT}/include/torch/csrc/api/include")
  set(TORCH_LIBRARIES "")
  foreach(_lib c10 torch_cpu torch)
    find_library(_eqr_lib_${_lib} ${_lib} PATHS "${EQR_TORCH_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
    list(APPEND TORCH_LIBRARIES "${_eqr_lib_${_lib}}")
  endforeach()
  if(EXISTS "${EQR_TORCH_ROOT}/lib/libtorch_cuda.so")
    # --no-as-needed: nothing in eqr names a torch_cuda symbol, yet the library must load for CUDA to register.
    list(APPEND TORCH_LIBRARIES "-Wl,--no-as-needed" "${EQR_TORCH_ROOT}/lib/libtorch_cuda.so"
         "${EQR_TORCH_ROOT}/lib/libc10_cuda.so" "-Wl,--as-needed")
    get_filename_component(_site "${EQR_TORCH_ROOT}/.." ABSOLUTE)
    set(_cuda_home "$ENV{CUDA_HOME}")
    foreach(_c "${_site}/nvidia/cu13" "${_site}/nvidia/cuda_runtime" "${_cuda_home}" "/usr/local/cuda")
      if(_c AND EXISTS "${_c}/include/cuda_runtime_api.h")
        list(APPEND TORCH_INCLUDE_DIRS "${_c}/include")
        # cuda_runtime.h includes crt/host_config.h, which the wheels keep in nvcc's package (nvidia-cuda-crt):
        # scripts/device/pack.sh unpacks it into .device/deps/usr/include, found through CMAKE_PREFIX_PATH.
        if(NOT EXISTS "${_c}/include/crt/host_config.h")
          find_path(EQR_CUDA_CRT_INCLUDE crt/host_config.h)
          if(NOT EQR_CUDA_CRT_INCLUDE)
            message(FATAL_ERROR "eqr: ${_c}/include has no crt/host_config.h (CUDA's nvidia-cuda-crt headers); "
                                "put them on CMAKE_PREFIX_PATH (scripts/device/pack.sh does)")
          endif()
          list(APPEND TORCH_INCLUDE_DIRS "${EQR_CUDA_CRT_INCLUDE}")
        endif()
        file(GLOB _cudart "${_c}/lib/libcudart.so*" "${_c}/lib64/libcudart.so*")
        if(_cudart)
          list(GET _cudart 0 _cudart)
          list(APPEND TORCH_LIBRARIES "${_cudart}")
        endif()
        break()
      endif()
    endforeach()
  endif()
  set(Torch_FOUND TRUE)
  message(STATUS "eqr: LibTorch imported from its folders (${EQR_TORCH_ROOT}), no TorchConfig.cmake")
else()
  eqr_require_package(Torch "Install libtorch-dev (scripts/setup.sh) or pass -DCMAKE_PREFIX_PATH=<libtorch dir>.")
  # TorchConfig.cmake looks up c10 (and kineto) with find_library(... PATHS <libtorch>/lib), which searches the
  # system folders first: with Debian's libtorch-dev installed beside a LibTorch 2.x, it picks Debian's
  # libc10.so 1.13, and the binaries then load two c10s and abort at start-up. Every library that also
  # exists in the LibTorch found is taken from there.
  if(TORCH_INSTALL_PREFIX AND EXISTS "${TORCH_INSTALL_PREFIX}/lib")
    set(_fixed "")
    foreach(_l ${TORCH_LIBRARIES})
      if(IS_ABSOLUTE "${_l}" AND NOT "${_l}" MATCHES "^${TORCH_INSTALL_PREFIX}/")
        get_filename_component(_n "${_l}" NAME)
        if(EXISTS "${TORCH_INSTALL_PREFIX}/lib/${_n}")
          message(STATUS "eqr: ${_l} -> ${TORCH_INSTALL_PREFIX}/lib/${_n} (the LibTorch found, not another one)")
          set(_l "${TORCH_INSTALL_PREFIX}/lib/${_n}")
        endif()
      endif()
      list(APPEND _fixed "${_l}")
    endforeach()
    set(TORCH_LIBRARIES ${_fixed})
  endif()
endif()
if(NOT Torch_VERSION AND EXISTS "${Torch_DIR}/TorchConfigVersion.cmake")
  file(STRINGS "${Torch_DIR}/TorchConfigVersion.cmake" _tv REGEX "PACKAGE_VERSION \"")
  string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" Torch_VERSION "${_tv}")
endif()
message(STATUS "eqr: Torch ${Torch_VERSION} from ${Torch_DIR}")

# CUDA is switched on when the Torch that was found has it.
set(EQR_WITH_CUDA OFF)
if(TARGET torch_cuda OR CUDA_FOUND OR "${TORCH_LIBRARIES}" MATCHES "cuda")
  set(EQR_WITH_CUDA ON)
endif()
set(EQR_WITH_CUDA ${EQR_WITH_CUDA} CACHE BOOL "Build CUDA-only paths (auto-detected from Torch)" FORCE)

eqr_require_package(CLI11 "Install libcli11-dev.")
eqr_require_package(nlohmann_json "Install nlohmann-json3-dev.")
eqr_require_package(spdlog "Install libspdlog-dev.")
eqr_require_package(yaml-cpp "Install libyaml-cpp-dev.")
if(TARGET yaml-cpp::yaml-cpp)
  set(EQR_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(EQR_YAML_TARGET yaml-cpp)
endif()
find_package(Threads REQUIRED)

# fmt: LibTorch 2.x bundles its own fmt headers (12.x in 2.11) in its include directory, which comes before
# /usr/include; Debian's spdlog is compiled against Debian's fmt (9.x) and does not build against fmt 12.
# So when both are present, a one-entry folder holding only `fmt` (a link to the fmt spdlog was built with)
# goes first on the include path: every translation unit, LibTorch's headers included, then sees one fmt,
# the one spdlog links. LibTorch's few fmt users among its headers (c10d logging, c10/util/strong_type.h)
# compile against fmt 9; the inline namespaces (fmt::v9 / fmt::v12) keep the two from clashing at link time.
set(EQR_FMT_SHIM "")
if(TARGET fmt::fmt)
  get_target_property(_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  set(_torch_has_fmt OFF)
  foreach(_d ${TORCH_INCLUDE_DIRS})
    if(EXISTS "${_d}/fmt/core.h" AND NOT "${_d}" STREQUAL "${_fmt_inc}")
      set(_torch_has_fmt ON)
    endif()
  endforeach()
  if(_torch_has_fmt AND _fmt_inc AND EXISTS "${_fmt_inc}/fmt/core.h")
    set(EQR_FMT_SHIM ${CMAKE_BINARY_DIR}/generated/fmt-shim)
    file(MAKE_DIRECTORY ${EQR_FMT_SHIM})
    file(CREATE_LINK "${_fmt_inc}/fmt" "${EQR_FMT_SHIM}/fmt" SYMBOLIC)
    message(STATUS "eqr: LibTorch bundles fmt; using spdlog's fmt from ${_fmt_inc} first (${EQR_FMT_SHIM})")
  endif()
endif()

# torch as an imported target with its includes marked SYSTEM (no warnings from LibTorch headers).
if(NOT TARGET eqr_torch)
  add_library(eqr_torch INTERFACE)
  if(EQR_FMT_SHIM)
    target_include_directories(eqr_torch SYSTEM BEFORE INTERFACE ${EQR_FMT_SHIM})
  endif()
  # The PyTorch wheels' libtorch.so / libtorch_cpu.so export their own copy of parts of libstdc++
  # (std::filesystem among them, from the manylinux toolchain's static libstdc++_nonshared). Loaded ahead
  # of libstdc++.so.6, that copy wins symbol lookup for eqr too, and its std::filesystem::remove_all jumps
  # to address 0 (seen: every test binary crashed at exit cleaning its temp dirs). Naming libstdc++ before
  # LibTorch puts it first in the binaries' DT_NEEDED list, so the system's libstdc++ is the one bound.
  if(NOT MSVC AND NOT APPLE)
    target_link_libraries(eqr_torch INTERFACE "-Wl,--push-state,--no-as-needed" stdc++ "-Wl,--pop-state")
  endif()
  target_link_libraries(eqr_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(eqr_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  if(TORCH_CXX_FLAGS)
    separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
    target_compile_options(eqr_torch INTERFACE ${_torch_flags})
  endif()
  if(EQR_WITH_CUDA)
    target_compile_definitions(eqr_torch INTERFACE EQR_WITH_CUDA=1)
    # NCCL headers: those of the NCCL the LibTorch wheel was built with and loads (site-packages/nvidia/nccl,
    # beside site-packages/torch), ahead of any other nccl.h (e.g. the CUDA toolkit's).
    get_filename_component(_site "${Torch_DIR}/../../../.." ABSOLUTE)
    if(EXISTS "${_site}/nvidia/nccl/include/nccl.h")
      target_include_directories(eqr_torch SYSTEM BEFORE INTERFACE "${_site}/nvidia/nccl/include")
      message(STATUS "eqr: NCCL headers from the LibTorch wheel (${_site}/nvidia/nccl/include)")
    endif()
  endif()
endif()

# c10d Gloo (CPU data parallel): Debian's LibTorch ships the headers but needs libgloo-dev and USE_C10D_GLOO.
find_path(EQR_GLOO_INCLUDE gloo/config.h)
if(EQR_GLOO_INCLUDE)
  set(EQR_HAVE_GLOO ON)
  message(STATUS "eqr: gloo found, c10d Gloo backend enabled")
else()
  set(EQR_HAVE_GLOO OFF)
  message(STATUS "eqr: gloo headers not found (libgloo-dev); CPU data parallel disabled")
endif()
