#!/usr/bin/env bash
# Runs eqr's whole test suite (sets up and builds first if needed; both steps are idempotent).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit` or `scripts/test.sh -R config`.
# `scripts/test.sh --torch pip [ctest args]` does the same against the pinned LibTorch 2.x wheel
# (build-torch2/, see scripts/setup.sh); the `cuda` tests skip, saying so, where no GPU is present.
#
# `scripts/test.sh --sanitize`: AddressSanitizer + UndefinedBehaviorSanitizer build (GCC, Debian's LibTorch)
#   in build-asan/: the unit tests, then a short `eqr train` and `eqr eval` on configs/ci_tiny.yaml. Any report
#   fails (UBSan is compiled not to recover). LibTorch's own reports are suppressed by scripts/sanitizers/*.supp,
#   one documented entry each. CI runs it (.ci/run).
# `scripts/test.sh --tsan`: ThreadSanitizer build in build-tsan/: the loader's prefetch thread, the generator's
#   worker threads and the 2-rank Gloo tests (scripts/sanitizers/tsan.supp). In CI (.ci/run), after --sanitize.
# `scripts/test.sh --cpu-paths`: the CPU paths the machine's own CPU does not take (docs/reliability.md, "CPU
#   paths"). Under qemu-user with an AVX2-only CPU model (`-cpu Haswell`: no AVX-512, no native bfloat16; LibTorch,
#   oneDNN, OpenBLAS and eqr's kernel clones choose their code from CPUID, which qemu emulates), it runs the unit
#   suites and `eqr bench model|train|eval`, and checks that every fused-kernel clone is vectorised
#   (scripts/check_simd.sh). Uses the plain build in build/ (built first if needed); installs qemu-user. In CI.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=debian
MODE=plain
case "${1:-}" in
  --torch) TORCH="${2:?--torch needs debian or pip}"; shift 2 ;;
  --sanitize) MODE=asan; shift ;;
  --tsan) MODE=tsan; shift ;;
  --cpu-paths) MODE=cpu; shift ;;
esac
case "$TORCH" in
  debian) BUILD_DIR=${EQR_BUILD_DIR:-build} ;;
  pip) BUILD_DIR=${EQR_BUILD_DIR:-build-torch2} ;;
  *) echo "test.sh: --torch '$TORCH': expected debian or pip" >&2; exit 2 ;;
esac

if [ "$MODE" = plain ]; then
  bash scripts/setup.sh --torch "$TORCH" --build-dir "$BUILD_DIR"
  start=$(date +%s)
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
  echo "== tests ($BUILD_DIR, torch $TORCH) took $(( $(date +%s) - start )) s"
  exit 0
fi

if [ "$MODE" = cpu ]; then
  bash scripts/setup.sh --torch "$TORCH" --build-dir "$BUILD_DIR"
  t0=$(date +%s)
  CPU_MODEL=${EQR_QEMU_CPU:-Haswell}
  if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    echo "== cpu-paths: installing qemu-user"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
  fi
  bash scripts/check_simd.sh "$BUILD_DIR" | tail -1
  # The environment use_runtime_environment() would otherwise add by re-executing /proc/self/exe: under
  # qemu-user that exec would start the binary natively, outside the emulated CPU.
  export OMP_WAIT_POLICY=PASSIVE GLIBC_TUNABLES="glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184"
  QEMU=(qemu-x86_64 -cpu "$CPU_MODEL")
  info=$("${QEMU[@]}" "$BUILD_DIR/eqr" version --json 2>/dev/null)
  echo "$info" | grep -q '"cpu_bf16": "emulated"' ||
    { echo "test.sh: under qemu -cpu $CPU_MODEL eqr still sees native bfloat16: $info" >&2; exit 1; }
  echo "== cpu-paths: emulated CPU: $(echo "$info" | sed -n 's/.*"cpu": "\([^"]*\)".*/\1/p')"
  failed=()
  for suite in "$BUILD_DIR"/tests/eqr_unit_*; do
    [ -x "$suite" ] || continue
    s0=$(date +%s)
    rc=0
    "${QEMU[@]}" "$suite" --gtest_brief=1 >"$suite.qemu.log" 2>&1 || rc=$?
    if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then  # 77: every test skipped (tests/support/test_main.cpp)
      echo "== cpu-paths: $(basename "$suite") $([ $rc -eq 0 ] && echo passed || echo skipped) ($(( $(date +%s) - s0 )) s)"
    else
      echo "== cpu-paths: $(basename "$suite") FAILED ($(( $(date +%s) - s0 )) s); its log:"
      tail -40 "$suite.qemu.log"
      failed+=("$(basename "$suite")")
    fi
  done
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  for what in model train eval; do
    s0=$(date +%s)
    "${QEMU[@]}" "$BUILD_DIR/eqr" bench "$what" -c configs/ci_tiny.yaml -b 4 --iters 1 --warmup 0 --json \
      >"$tmp/$what.json" 2>"$tmp/$what.err" || { cat "$tmp/$what.err"; failed+=("bench $what"); continue; }
    if grep -q '"bf16_path":"emulated"' "$tmp/$what.json" && grep -q '"gemm_peak_bf16_gflops":[0-9]' "$tmp/$what.json"; then
      echo "== cpu-paths: eqr bench $what: exit 0, GEMM peak validated on the emulated bfloat16 path ($(( $(date +%s) - s0 )) s)"
    else
      echo "== cpu-paths: eqr bench $what: unexpected JSON:"; cat "$tmp/$what.json"; failed+=("bench $what")
    fi
  done
  echo "== cpu-paths: whole run $(( $(date +%s) - t0 )) s"
  [ ${#failed[@]} -eq 0 ] || { echo "test.sh: under qemu -cpu $CPU_MODEL: failed: ${failed[*]}" >&2; exit 1; }
  exit 0
fi

# ---- sanitizer builds ----
SUPP="$PWD/scripts/sanitizers"
bash scripts/setup.sh --no-build
if [ "$MODE" = asan ]; then
  BUILD_DIR=${EQR_BUILD_DIR:-build-asan}
  SAN="address;undefined"
  TARGETS=(--target eqr eqr_unit_tests)  # what the run below uses
else
  BUILD_DIR=${EQR_BUILD_DIR:-build-tsan}
  SAN="thread"
  TARGETS=(--target eqr eqr_unit_data eqr_unit_task eqr_integration_train)
fi
t0=$(date +%s)
mkdir -p "$BUILD_DIR"
# -O1: sanitizer builds run a few times slower than Release; -O1 keeps stacks readable and builds faster.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" \
  "-DEQR_SANITIZE=$SAN" >"$BUILD_DIR/configure.log" 2>&1 ||
  { cat "$BUILD_DIR/configure.log" >&2; echo "test.sh: configure of $BUILD_DIR failed" >&2; exit 1; }
cmake --build "$BUILD_DIR" "${TARGETS[@]}"
t1=$(date +%s)
echo "== $MODE: build took $(( t1 - t0 )) s"

if [ "$MODE" = asan ]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
  export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$SUPP/ubsan.supp"
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" -L unit "$@"
  t2=$(date +%s)
  echo "== asan: unit tests took $(( t2 - t1 )) s"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$BUILD_DIR/eqr" train --no-progress --config configs/ci_tiny.yaml --run-dir "$tmp/run" \
    --set "data.data_path=$tmp/data" --set train.max_steps=6
  "$BUILD_DIR/eqr" eval --checkpoint "$tmp/run" --out "$tmp/eval" --depth 1,2 --breadth 1,2 \
    >"$tmp/eval.log" || { cat "$tmp/eval.log"; exit 1; }
  [ -s "$tmp/eval/report.json" ] || { echo "test.sh: eqr eval wrote no report.json" >&2; exit 1; }
  echo "== asan: eqr train + eqr eval took $(( $(date +%s) - t2 )) s; whole sanitizer run $(( $(date +%s) - t0 )) s"
else
  # One thread each for OpenMP and OpenBLAS: libgomp is not instrumented, so TSan cannot see its barriers,
  # and the threads under test here are eqr's own (loader, generator, Gloo ranks).
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
  export TSAN_OPTIONS="suppressions=$SUPP/tsan.supp:halt_on_error=1:second_deadlock_stack=1:history_size=4"
  # Exit 77: every selected test skipped (tests/support/test_main.cpp), e.g. TrainDistributed.* without Gloo.
  gtest_ok() { local rc=0; "$@" || rc=$?; [ $rc -eq 0 ] || [ $rc -eq 77 ] || return $rc; }
  gtest_ok "$BUILD_DIR/tests/eqr_unit_data" --gtest_brief=1 --gtest_filter='DataLoader.*'
  gtest_ok "$BUILD_DIR/tests/eqr_unit_task" --gtest_brief=1 --gtest_filter='DataGenerator.*'  # Sudoku's, in task/sudoku
  gtest_ok "$BUILD_DIR/tests/eqr_integration_train" --gtest_brief=1 --gtest_filter='TrainDistributed.*'
  echo "== tsan: whole run $(( $(date +%s) - t0 )) s"
fi
