#!/usr/bin/env bash
# Builds eqr's libFuzzer targets (tests/fuzz/) with clang + ASan + UBSan into build-fuzz/ and runs each for
# SECONDS (default 600) on a corpus seeded from the repository's fixtures, one target after another.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     (targets: sudoku_csv npy config checkpoint torch_pickle torch_zip)
#   SECONDS 0: build and seed the corpora only.
#   EQR_FUZZ_DIR (default build-fuzz): build and working folder. Corpora grow in $EQR_FUZZ_DIR/corpus/<target>,
#   crashing inputs land in $EQR_FUZZ_DIR/artifacts/ (reproduce: build-fuzz/fuzz_<target> FILE), one log per
#   target in $EQR_FUZZ_DIR/logs/. A summary line per target (executions, coverage, findings) ends the run;
#   the exit code is 1 when any target found something.
# Needs clang and libFuzzer's runtime (Debian: clang, libclang-rt-14-dev): installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=600
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then SECONDS_PER_TARGET=$1; shift; fi
ALL=(sudoku_csv npy config checkpoint torch_pickle torch_zip)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (expected: ${ALL[*]})" >&2; exit 2; }
done
DIR=${EQR_FUZZ_DIR:-build-fuzz}

# ---- dependencies: eqr's own (setup.sh, no build) and clang with libFuzzer ----
bash scripts/setup.sh --no-build >/dev/null
need=()
command -v clang++ >/dev/null 2>&1 || need+=(clang)
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 &&
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/x86_64-pc-linux-gnu/libclang_rt.fuzzer.a >/dev/null 2>&1; then
  need+=("libclang-rt-$(clang++ --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)-dev")
fi
if [ ${#need[@]} -gt 0 ]; then
  [ "${need[*]}" = "libclang-rt--dev" ] && need=(clang libclang-rt-14-dev)
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "== fuzz: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# ---- build (only the fuzzers and the modules they link: core, config, data, io) ----
# EQR_FUZZ_SKIP_BUILD=1: use the binaries and corpora already there (e.g. a second fuzz.sh running other
# targets beside a first one).
if [ "${EQR_FUZZ_SKIP_BUILD:-0}" != 1 ]; then
t0=$(date +%s)
mkdir -p "$DIR"
cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DEQR_BUILD_TESTS=OFF -DEQR_BUILD_FUZZERS=ON "-DEQR_SANITIZE=address;undefined;fuzzer-no-link" \
  >"$DIR/configure.log" 2>&1 || { cat "$DIR/configure.log" >&2; echo "fuzz.sh: configure failed" >&2; exit 1; }
cmake --build "$DIR" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")
echo "== fuzz: build took $(( $(date +%s) - t0 )) s"

# ---- seed corpora (copied into the working corpus; the corpus keeps what the fuzzer adds) ----
seed() {  # seed <target> <files...>
  local dst="$DIR/corpus/$1"; shift
  mkdir -p "$dst"
  for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$dst/seed-$(basename "$(dirname "$f")")-$(basename "$f")"; done
  return 0
}
SEEDS="$DIR/seeds"
rm -rf "$SEEDS"; mkdir -p "$SEEDS/config" "$SEEDS/checkpoint" "$SEEDS/pickle"
python3 - "$SEEDS" <<'PY'
import json, os, re, struct, sys, zipfile, zlib, glob
out = sys.argv[1]
# config: every configs/*.yaml; an `include:` line names a.yaml, whose text follows as part 1.
for path in sorted(glob.glob("configs/*.yaml")):
    text = open(path).read()
    m = re.search(r"^include:\s*(\S+)\s*$", text, re.M)
    if m and os.path.exists(os.path.join("configs", m.group(1))):
        text = text[:m.start()] + "include: a.yaml" + text[m.end():] + "\n---8<---\n" + \
               open(os.path.join("configs", m.group(1))).read()
    open(os.path.join(out, "config", os.path.basename(path)), "w").write(text)
open(os.path.join(out, "config", "json_include.json"), "w").write(
    '{"include": ["b.json"], "name": "j", "train": {"lr": 0.002}}\n---8<---\n\n---8<---\n{"arch": {"hidden_size": 32}}'
    "\n---8<---\ntrain.max_steps=3\neval.depth=[1,2]\n")
# checkpoint: small native files in the documented layout (docs/checkpoints.md), with CRCs and metadata.
def eqrckpt(name, tensors, meta):
    header, blobs, crcs, off = {}, b"", {}, 0
    for k, (dt, shape, raw) in sorted(tensors.items()):
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        crcs[k] = zlib.crc32(raw); blobs += raw; off += len(raw)
    header["__metadata__"] = {"format": "pt", "eqr_format": "eqrckpt", "eqr_format_version": "1",
                              "eqr_meta": json.dumps(meta), "eqr_crc32": json.dumps(crcs)}
    h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    open(os.path.join(out, "checkpoint", name), "wb").write(struct.pack("<Q", len(h)) + h + blobs)
eqrckpt("small.eqrckpt", {"model/w": ("F32", [2, 3], struct.pack("<6f", *range(6))),
                          "model/b": ("BF16", [3], b"\x80\x3f" * 3), "carry/halted": ("BOOL", [2], b"\x01\x00"),
                          "optim/w/step": ("I64", [], struct.pack("<q", 7)), "rng/train": ("U8", [4], b"abcd")},
        {"format": "eqr-train", "step": 7, "loader": {"epoch": 0}})
eqrckpt("empty.eqrckpt", {}, {})
# pickle: the data.pkl record of every .pth fixture.
for path in glob.glob("tests/fixtures/reference_*/*.pth"):
    with zipfile.ZipFile(path) as z:
        for n in z.namelist():
            if n.endswith("data.pkl"):
                open(os.path.join(out, "pickle", os.path.basename(path) + ".data.pkl"), "wb").write(z.read(n))
PY
seed sudoku_csv tests/fixtures/fuzz/sudoku_csv/* data/samples/sudoku4x4_seed1.csv data/samples/sudoku9x9_seed1.csv \
  tests/fixtures/numpy/build/*.csv
seed npy tests/fixtures/fuzz/npy/* $(find tests/fixtures -name '*.npy' | sort)
seed config tests/fixtures/fuzz/config/* "$SEEDS"/config/*
seed checkpoint tests/fixtures/fuzz/checkpoint/* "$SEEDS"/checkpoint/*
seed torch_pickle tests/fixtures/fuzz/torch_pickle/* tests/fixtures/reference_ckpt/*.pkl "$SEEDS"/pickle/*
seed torch_zip tests/fixtures/fuzz/torch_zip/* tests/fixtures/reference_ckpt/*.pth
fi

[ "$SECONDS_PER_TARGET" -eq 0 ] && { echo "== fuzz: built and seeded (SECONDS 0: nothing run)"; exit 0; }

# ---- run ----
mkdir -p "$DIR/artifacts" "$DIR/logs"
# Leaks are findings; UBSan stops at the first report (also compiled with -fno-sanitize-recover).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
summary=()
for t in "${TARGETS[@]}"; do
  log="$DIR/logs/$t.log"
  echo "== fuzz: $t for ${SECONDS_PER_TARGET} s (log $log)"
  start=$(date +%s)
  # 256 MB per allocation: far above any seed's needs; a forged size that asks for more is a finding.
  # max_len 128 KB holds every seed (the largest .pth fixture is 26 KB).
  # LibTorch 1.13's zip reader leaks miniz's archive state whenever its constructor throws on a corrupt
  # archive (upstream; see scripts/sanitizers/lsan_fuzz.supp): the targets that open zip archives run with
  # that one suppression, leak checks stay on for everything else.
  lsan=${LSAN_OPTIONS:-print_suppressions=0}
  case $t in checkpoint|torch_zip) lsan="$lsan:suppressions=$PWD/scripts/sanitizers/lsan_fuzz.supp" ;; esac
  set +e
  LSAN_OPTIONS=$lsan "$DIR/fuzz_$t" "$DIR/corpus/$t" -max_total_time="$SECONDS_PER_TARGET" -max_len=131072 -timeout=20 \
    -malloc_limit_mb=256 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$DIR/artifacts/$t-" >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  corpus=$(ls "$DIR/corpus/$t" | wc -l)
  line="$t: ${secs} s, ${execs:-?} executions, ${cov:-cov ?}, corpus ${corpus} files, exit ${rc}"
  if [ "$rc" -ne 0 ]; then
    failed=1
    line="$line  FINDING: $(grep -m1 -E 'ERROR:|runtime error|==[0-9]+==|terminate called|deadly signal' "$log" || echo see log)"
  fi
  summary+=("$line")
  echo "   $line"
done
echo "== fuzz summary (${SECONDS_PER_TARGET} s per target)"
printf '   %s\n' "${summary[@]}"
exit $failed
