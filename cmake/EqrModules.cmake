# One static library per module of include/eqr/<module> + src/<module>, linked in dependency order.

set(EQR_MODULE_TARGETS "" CACHE INTERNAL "")

# eqr_setup_pch(): an object library that owns the precompiled header; every target reuses it.
function(eqr_setup_pch)
  if(NOT EQR_USE_PCH)
    return()
  endif()
  set(_stub ${CMAKE_CURRENT_BINARY_DIR}/generated/pch_stub.cpp)
  if(NOT EXISTS ${_stub})
    file(WRITE ${_stub} "// translation unit that owns eqr's precompiled header\n")
  endif()
  add_library(eqr_pch OBJECT ${_stub})
  target_link_libraries(eqr_pch PUBLIC eqr_torch nlohmann_json::nlohmann_json spdlog::spdlog
                        ${EQR_YAML_TARGET} CLI11::CLI11 Threads::Threads)
  target_compile_options(eqr_pch PRIVATE ${EQR_WARNING_FLAGS} ${EQR_SANITIZE_COMPILE_FLAGS})
  target_precompile_headers(eqr_pch PRIVATE
    <torch/torch.h> <nlohmann/json.hpp> <spdlog/spdlog.h>
    <algorithm> <cstdint> <map> <memory> <optional> <string> <vector>)
endfunction()

# eqr_add_module(<name> [DEPENDS <module>...]): target eqr_<name>_mod from src/<name>/*.cpp.
function(eqr_add_module name)
  cmake_parse_arguments(M "" "" "DEPENDS" ${ARGN})
  set(target eqr_${name}_mod)
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  if(NOT _srcs AND NOT name STREQUAL "core")
    add_library(${target} INTERFACE)
    foreach(dep ${M_DEPENDS})
      target_link_libraries(${target} INTERFACE eqr_${dep}_mod)
    endforeach()
  else()
    add_library(${target} STATIC ${_srcs})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(${target} PUBLIC eqr_torch nlohmann_json::nlohmann_json spdlog::spdlog CLI11::CLI11
                          ${EQR_YAML_TARGET} Threads::Threads ${CMAKE_DL_LIBS})
    foreach(dep ${M_DEPENDS})
      target_link_libraries(${target} PUBLIC eqr_${dep}_mod)
    endforeach()
    if(EQR_HAVE_GLOO)
      target_compile_definitions(${target} PUBLIC EQR_HAVE_GLOO=1)
      if(name STREQUAL "train")
        target_compile_definitions(${target} PRIVATE USE_C10D_GLOO=1)
      endif()
    endif()
    eqr_target_defaults(${target})
  endif()
  if(name STREQUAL "core")
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  endif()
  set(EQR_MODULE_TARGETS ${EQR_MODULE_TARGETS} ${target} CACHE INTERNAL "")
endfunction()
