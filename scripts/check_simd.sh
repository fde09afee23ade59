#!/usr/bin/env bash
# Checks that every clone of eqr's fused CPU kernels (src/model/fused.cpp, target_clones) is vectorised:
# the x86-64-v4 clone uses ymm/zmm registers, the x86-64-v3 (AVX2) clone ymm registers, the baseline clone
# packed SSE instructions. A clone that is silently scalar is what an AVX2-only CPU ran for swiglu before
# fused.cpp was compiled with -fno-trapping-math (issue 20: 15.9% of an eval profile in one scalar kernel).
#   bash scripts/check_simd.sh [BUILD_DIR]   (default build/; x86-64 and GCC/Clang builds with clones only)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OBJ=$(find "$BUILD" -path '*eqr_model_mod.dir*' -name 'fused.cpp.o' | head -1)
[ -n "$OBJ" ] || { echo "check_simd.sh: no fused.cpp.o under $BUILD (build it first)" >&2; exit 2; }
command -v objdump >/dev/null || { echo "check_simd.sh: objdump (binutils) is missing" >&2; exit 2; }
objdump -d --no-show-raw-insn "$OBJ" | c++filt | awk '
  /^[0-9a-f]+ <.*>:$/ { name = $0; sub(/^[0-9a-f]+ </, "", name); sub(/>:$/, "", name); wide = 0; packed = 0; next }
  /[xyz]mm/ && name != "" {
    if ($0 ~ /[yz]mm/) wide++
    if ($0 ~ /\t(v?(add|sub|mul|div|max|min|fmadd[0-9]*|fnmadd[0-9]*)ps|v?p(add|sub|sll|srl|and|or)d|v?cvtt?ps2dq) /) packed++
  }
  /^$/ && name != "" {
    level = name ~ /\.arch_x86_64_v4\]/ ? "v4" : name ~ /\.arch_x86_64_v3\]/ ? "v3" : name ~ /\[clone \.default\]/ ? "baseline" : ""
    if (level != "" && name !~ /resolver/) {
      ok = (level == "baseline") ? packed > 0 : wide > 0
      short = name; gsub(/\(anonymous namespace\)::/, "", short); sub(/^void /, "", short); sub(/\(.*/, "", short); sub(/^.*fused::/, "", short)
      printf "%-7s %-9s %-48s wide=%d packed=%d\n", ok ? "vector" : "SCALAR", level, short, wide, packed
      n++; if (!ok) bad++
    }
    name = ""
  }
  END {
    if (n == 0) { print "check_simd.sh: no kernel clones found (a build without target_clones?)"; exit 2 }
    if (bad > 0) { printf "check_simd.sh: %d of %d clones are scalar\n", bad, n; exit 1 }
    printf "check_simd.sh: all %d clones vectorised\n", n
  }'
