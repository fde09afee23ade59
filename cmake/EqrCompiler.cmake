# Compiler launcher (ccache), warnings and sanitizers shared by every eqr target.

if(EQR_USE_CCACHE)
  find_program(EQR_CCACHE ccache)
  if(EQR_CCACHE)
    # PCH-friendly ccache. Header mtimes are NOT made sloppy: a header edited during a compile must not
    # leave a cached object that claims the new content (seen as a crashing binary in a shared cache).
    set(CMAKE_CXX_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros"
        ${EQR_CCACHE})
    message(STATUS "eqr: compiling through ccache (${EQR_CCACHE})")
  endif()
endif()

set(EQR_WARNING_FLAGS -Wall -Wextra -Winvalid-pch)
if(EQR_WARNINGS_AS_ERRORS)
  list(APPEND EQR_WARNING_FLAGS -Werror)
endif()

# Sanitizers (EQR_SANITIZE, e.g. "address;undefined", "thread", or "address;undefined;fuzzer-no-link" for the
# fuzzers): the same compile flags go to every target AND to the precompiled header (a PCH built with other
# flags is rejected, and every file would then parse <torch/torch.h> again). UBSan stops at the first report
# (-fno-sanitize-recover), so a test fails on undefined behaviour instead of printing and passing.
set(EQR_SANITIZE_COMPILE_FLAGS "")
set(EQR_SANITIZE_LINK_FLAGS "")
if(EQR_SANITIZE)
  string(REPLACE ";" "," _san "${EQR_SANITIZE}")
  set(EQR_SANITIZE_COMPILE_FLAGS -fsanitize=${_san} -fno-omit-frame-pointer -g)
  if("undefined" IN_LIST EQR_SANITIZE)
    list(APPEND EQR_SANITIZE_COMPILE_FLAGS -fno-sanitize-recover=undefined)
  endif()
  set(EQR_SANITIZE_LINK_FLAGS -fsanitize=${_san})
  message(STATUS "eqr: sanitizers ${_san}")
endif()

# eqr_target_defaults(<target>): warnings, sanitizers and the shared precompiled header.
function(eqr_target_defaults target)
  target_compile_options(${target} PRIVATE ${EQR_WARNING_FLAGS})
  if(EQR_SANITIZE)
    target_compile_options(${target} PRIVATE ${EQR_SANITIZE_COMPILE_FLAGS})
    target_link_options(${target} PRIVATE ${EQR_SANITIZE_LINK_FLAGS})
  endif()
  if(EQR_USE_PCH AND TARGET eqr_pch)
    target_precompile_headers(${target} REUSE_FROM eqr_pch)
  endif()
endfunction()
