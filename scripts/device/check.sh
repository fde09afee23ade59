#!/usr/bin/env bash
# ONE script for a GPU machine (an H200 with PyTorch 2.11 and CMake, none of eqr's C++ dependencies, no
# network). Before it, on a Debian machine: `bash scripts/device/pack.sh` (fills the git-ignored .device/),
# then carry .device/deps with the work tree. Here it:
#   1. builds eqr and the cuda test suite against this machine's own PyTorch (its TorchConfig.cmake when a
#      CUDA toolkit is installed, else a folder import of the wheel: EQR_TORCH_IMPORT=manual);
#   2. runs the `cuda` tests (CUDA step == CPU step, 20-step CUDA training loads on the CPU, eval breadth 8
#      CUDA == CPU, 2-rank NCCL == 1 rank when 2 GPUs);
#   3. `eqr bench model` at the paper shape, batch 768, bfloat16 (mlp_t and attention): ms per training and
#      per eval step, matmul TFLOP/s and its share of a bf16 peak (EQR_PEAK_TFLOPS, default 790 TFLOP/s,
#      the figure our issue 10 uses for the H200; set the one that fits the part);
#   4. a 200-step training run at the paper shape on generated 9x9 puzzles;
# and writes $OUT/report.json (plus check.log and the pieces). Budget: under 8 minutes on 16 cores.
#
# Usage (device tool): bash scripts/device/check.sh      with carry [".device/deps"]
# Dry run of the whole flow on a CPU machine (what was checked before any GPU slot):
#   EQR_CHECK_DEVICE=cpu EQR_CHECK_BATCH=4 EQR_CHECK_TRAIN_STEPS=2 EQR_CHECK_TEST_PUZZLES=4 \
#     bash scripts/device/check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/device-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/check.log") 2>&1
T0=$(date +%s)
PY=${EQR_PYTHON:-python3}
DEPS=$ROOT/.device/deps/usr
JOBS=$(nproc)
PEAK=${EQR_PEAK_TFLOPS:-790}
DEVICE=${EQR_CHECK_DEVICE:-cuda}
BATCH=${EQR_CHECK_BATCH:-768}
TRAIN_STEPS=${EQR_CHECK_TRAIN_STEPS:-200}
TEST_PUZZLES=${EQR_CHECK_TEST_PUZZLES:-256}  # the final evaluation of the training run (depth 16)
export DEVICE BATCH TRAIN_STEPS  # the report records them
stamp() { echo "== check [$(( $(date +%s) - T0 )) s] $*"; }

if [ ! -d "$DEPS" ]; then
  echo "check.sh: no $DEPS; run scripts/device/pack.sh on a Debian machine and carry .device/deps" >&2
  exit 2
fi
export PATH="$DEPS/bin:$PATH"
export LD_LIBRARY_PATH="$DEPS/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

stamp "machine"
"$PY" - > "$OUT/machine.json" <<'EOF'
import json, os, subprocess, torch
info = {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_cores": os.cpu_count()}
try:
    info["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                         "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
except OSError:
    pass
print(json.dumps(info))
EOF
cat "$OUT/machine.json"
TORCH_ROOT=$("$PY" -W ignore -c 'import os, torch; print(os.path.dirname(torch.__file__))')
TORCH_CMAKE=$("$PY" -W ignore -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')

# ---- 1. configure and build ----
# LibTorch's own CMake files when a working nvcc is there; else, or when that configure fails, a folder
# import of the wheel (EQR_TORCH_IMPORT=manual: eqr compiles no CUDA code of its own).
NVCC=""
for c in "$(command -v nvcc || true)" /usr/local/cuda/bin/nvcc; do
  if [ -n "$c" ] && "$c" --version >/dev/null 2>&1; then NVCC=$c; break; fi
done
GEN="Unix Makefiles"
if ninja --version >/dev/null 2>&1; then GEN=Ninja; fi
BUILD=build-device
MANUAL=(-DEQR_TORCH_IMPORT=manual "-DEQR_TORCH_ROOT=$TORCH_ROOT" "-DCMAKE_PREFIX_PATH=$DEPS")
configure() {  # a failed configure's cache is wiped before the other import is tried
  cmake -S . -B "$BUILD" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DEQR_USE_CCACHE=OFF -DTORCH_CUDA_ARCH_LIST=9.0 \
    "$@" > "$OUT/configure.log" 2>&1
}
t=$(date +%s)
if [ -n "$NVCC" ]; then
  export PATH="$PATH:$(dirname "$NVCC")"
  stamp "configure: LibTorch's CMake files (nvcc at $NVCC)"
  configure "-DCMAKE_PREFIX_PATH=$TORCH_CMAKE;$DEPS"
  CONFIGURE_RC=$?
  if [ $CONFIGURE_RC -ne 0 ]; then
    cp "$OUT/configure.log" "$OUT/configure-torchconfig.log"
    tail -5 "$OUT/configure-torchconfig.log"
    stamp "configure through LibTorch's CMake files failed (configure-torchconfig.log); folder import instead"
    rm -rf "$BUILD"
    configure "${MANUAL[@]}"
    CONFIGURE_RC=$?
  fi
else
  stamp "configure: no working nvcc; LibTorch imported from $TORCH_ROOT"
  configure "${MANUAL[@]}"
  CONFIGURE_RC=$?
fi
grep -E '^-- eqr' "$OUT/configure.log"
BUILD_RC=1
if [ $CONFIGURE_RC -eq 0 ]; then
  stamp "build (-j $JOBS): eqr, eqr_cuda_parity"
  cmake --build "$BUILD" -j "$JOBS" --target eqr eqr_cuda_parity > "$OUT/build.log" 2>&1
  BUILD_RC=$?
  tail -5 "$OUT/build.log"
else
  tail -30 "$OUT/configure.log"
fi
BUILD_S=$(( $(date +%s) - t ))

# ---- 2. cuda tests ----
TEST_RC=-1
if [ $BUILD_RC -eq 0 ]; then
  stamp "cuda tests"
  "$BUILD/eqr" version | tee "$OUT/version.txt"
  t=$(date +%s)
  (cd "$BUILD" && timeout -k 20 300 ./tests/eqr_cuda_parity --gtest_output=json:"$OUT/cuda_tests.json")
  TEST_RC=$?
  TEST_S=$(( $(date +%s) - t ))
fi

# ---- 3. bench at the paper shape ----
if [ $BUILD_RC -eq 0 ]; then
  for variant in mlp_t attention; do
    stamp "bench model: paper shape, $variant, batch $BATCH, bfloat16, $DEVICE"
    extra=()
    [ "$variant" = attention ] && extra=(--set arch.mlp_t=false)
    # bench model --json prints one JSON object (one line) on stdout; logs go to stderr.
    timeout -k 20 120 "$BUILD/eqr" bench model -c configs/sudoku_extreme.yaml --device "$DEVICE" -b "$BATCH" --iters 10 \
      --warmup 3 --set compute.forward_dtype=bfloat16 --set compute.reduced_precision_on_cpu=true "${extra[@]}" --json \
      > "$OUT/bench_$variant.json" 2> "$OUT/bench_$variant.out"
    cat "$OUT/bench_$variant.out" "$OUT/bench_$variant.json"
  done
fi

# ---- 4. training steps (200) at the paper shape ----
if [ $BUILD_RC -eq 0 ]; then
  stamp "train: $TRAIN_STEPS steps, paper config, generated 9x9 puzzles, batch $BATCH, $DEVICE"
  t=$(date +%s)
  timeout -k 20 240 "$BUILD/eqr" train -c configs/sudoku_extreme.yaml --device "$DEVICE" --no-progress \
    --set train.global_batch_size="$BATCH" \
    --set output_root="$OUT/runs" --set name=paper200 --set num_threads="$JOBS" \
    --set data.source=generated --set data.data_path="$OUT/data" --set data.generate_train=2000 \
    --set data.generate_test="$TEST_PUZZLES" --set train.max_steps="$TRAIN_STEPS" --set train.eval_interval_steps=null \
    --set train.checkpoint_interval_steps=null --set train.log_interval_steps=$(( TRAIN_STEPS < 50 ? 1 : 50 )) \
    > "$OUT/train.log" 2>&1
  TRAIN_RC=$?
  TRAIN_S=$(( $(date +%s) - t ))
  tail -5 "$OUT/train.log"
  cp "$OUT/runs/paper200/metrics.jsonl" "$OUT/train_metrics.jsonl" 2>/dev/null
fi

# ---- report ----
stamp "report"
"$PY" - "$OUT" "$PEAK" "$CONFIGURE_RC" "$BUILD_RC" "$BUILD_S" "${TEST_RC:--1}" "${TEST_S:-0}" "${TRAIN_RC:--1}" \
  "${TRAIN_S:-0}" "$(( $(date +%s) - T0 ))" <<'EOF'
import json, os, sys
out, peak = sys.argv[1], float(sys.argv[2])
cfg_rc, build_rc, build_s, test_rc, test_s, train_rc, train_s, total_s = map(int, sys.argv[3:11])
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except Exception as e:
        return {"missing": f"{name}: {e}"}
r = {"machine": load("machine.json"), "configure_rc": cfg_rc, "build_rc": build_rc, "build_s": build_s,
     "cuda_tests_rc": test_rc, "cuda_tests_s": test_s, "peak_bf16_tflops_assumed": peak, "total_s": total_s,
     "settings": {"device": os.environ.get("DEVICE"), "batch": int(os.environ.get("BATCH", 0)),
                  "train_steps": int(os.environ.get("TRAIN_STEPS", 0)), "dtype": "bfloat16"}}
t = load("cuda_tests.json")
if "testsuites" in t:
    r["cuda_tests"] = [{"name": f"{s['name']}.{c['name']}", "result": c.get("result"), "status": c.get("status"),
                        "failures": [x.get("failure", "")[:400] for x in c.get("failures", [])],
                        "skipped": c.get("result") == "SKIPPED"} for s in t["testsuites"] for c in s["testsuite"]]
for v in ("mlp_t", "attention"):
    b = load(f"bench_{v}.json")
    if "train_matmul_tflops" in b:
        b["train_pct_of_peak"] = 100 * b["train_matmul_tflops"] / peak
        b["eval_pct_of_peak"] = 100 * b["eval_matmul_tflops"] / peak
    r[f"bench_{v}"] = b
lines = []
try:
    with open(os.path.join(out, "train_metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f if l.strip()]
except OSError:
    pass
r["train_200"] = {"rc": train_rc, "wall_s": train_s, "log": [l for l in lines if "train/lm_loss" in l]}
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump(r, f, indent=1)
print(json.dumps({k: v for k, v in r.items() if k != "train_200"}, indent=1)[:6000])
print("train_200:", json.dumps(r["train_200"])[:1500])
EOF
stamp "done"
