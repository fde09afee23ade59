# Compiler launcher (ccache), warnings and sanitizers shared by every eqr target.

if(EQR_USE_CCACHE)
  find_program(EQR_CCACHE ccache)
  if(EQR_CCACHE)
    # PCH-friendly ccache: the precompiled header is compared by content, not by timestamp.
    set(CMAKE_CXX_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
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
