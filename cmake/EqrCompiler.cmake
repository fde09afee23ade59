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

# eqr_target_defaults(<target>): warnings, sanitizers and the shared precompiled header.
function(eqr_target_defaults target)
  target_compile_options(${target} PRIVATE ${EQR_WARNING_FLAGS})
  if(EQR_SANITIZE)
    string(REPLACE ";" "," _san "${EQR_SANITIZE}")
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
  endif()
  if(EQR_USE_PCH AND TARGET eqr_pch)
    target_precompile_headers(${target} REUSE_FROM eqr_pch)
  endif()
endfunction()
