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
eqr_require_package(Torch "Install libtorch-dev (scripts/setup.sh) or pass -DCMAKE_PREFIX_PATH=<libtorch dir>.")
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

# torch as an imported target with its includes marked SYSTEM (no warnings from LibTorch headers).
if(NOT TARGET eqr_torch)
  add_library(eqr_torch INTERFACE)
  target_link_libraries(eqr_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(eqr_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  if(TORCH_CXX_FLAGS)
    separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
    target_compile_options(eqr_torch INTERFACE ${_torch_flags})
  endif()
  if(EQR_WITH_CUDA)
    target_compile_definitions(eqr_torch INTERFACE EQR_WITH_CUDA=1)
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
