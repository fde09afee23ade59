#!/usr/bin/env bash
# eqr vs the official Python reference on this CPU, measured side by side (docs/performance.md).
# For each round and shape, back to back: the reference's timing script (../shared/bench/ref_bench.py: one
# training step and one evaluation step of the OFFICIAL model imported from $REF_DIR, float32, AdamATan2 in
# plain torch), then `eqr bench train` and `eqr bench eval` at the same shape (configs/sudoku_extreme.yaml:
# mlp_t, S 81, V 11, with --set overrides; eqr's own default dtype and threads). Writes the raw JSON lines to
# --out, prints a markdown table (ms per step = mean over the timed steps, ratios ref/eqr per round and their
# median), and puts the table into docs/performance.md between `<!-- bench_cpu:begin -->` and
# `<!-- bench_cpu:end -->`.
#
#   REF_DIR=<work tree of github.com/locuslab/EqR> bash scripts/bench_cpu.sh [options]
#     --rounds N     rounds over all shapes (default 3)
#     --quick        smoke test: the first shape, 1 round, 2 timed steps; the doc is left alone unless --doc
#     --out FILE     raw JSON lines (default runs/bench_cpu/<UTC time>.jsonl)
#     --doc FILE     markdown file to update between the markers (default docs/performance.md; "" = none)
#     --iters N      timed steps per benchmark (default 3); --warmup N untimed steps first (default 1)
#     --threads N    intra-op threads for both sides (default: each side's own default)
#     --no-ref       eqr only (no REF_DIR or python3-torch needed); ratios are left empty
#     --ref-dir DIR  instead of REF_DIR; --eqr PATH the eqr binary (default build/eqr)
# Needs /usr/bin/python3 (Debian's; BENCH_PYTHON overrides) for the table; for the reference also python3-torch, python3-numpy,
# python3-pydantic and python3-colorama (see ../shared/bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=3
QUICK=0
OUT=""
DOC=docs/performance.md
DOC_SET=0
ITERS=3
WARMUP=1
THREADS=""
NO_REF=0
REF_DIR=${REF_DIR:-}
EQR=${EQR:-build/eqr}
PY=${BENCH_PYTHON:-/usr/bin/python3}  # Debian's python3 (with python3-torch for the reference)
REF_BENCH=${REF_BENCH:-$ROOT/../shared/bench/ref_bench.py}

die() { echo "bench_cpu.sh: $*" >&2; exit 2; }
need_value() { [ $# -ge 2 ] || die "$1 needs a value (see the header of scripts/bench_cpu.sh)"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) need_value "$@"; ROUNDS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) need_value "$@"; OUT=$2; shift 2 ;;
    --doc) need_value "$@"; DOC=$2; DOC_SET=1; shift 2 ;;
    --iters) need_value "$@"; ITERS=$2; shift 2 ;;
    --warmup) need_value "$@"; WARMUP=$2; shift 2 ;;
    --threads) need_value "$@"; THREADS=$2; shift 2 ;;
    --no-ref) NO_REF=1; shift ;;
    --ref-dir) need_value "$@"; REF_DIR=$2; shift 2 ;;
    --eqr) need_value "$@"; EQR=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
for v in ROUNDS ITERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,} '${!v}': expected a positive integer"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup '$WARMUP': expected an integer >= 0"
[ -z "$THREADS" ] || [[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads '$THREADS': expected a positive integer"

# name  hidden  batch  h_cycles  l_cycles  l_layers
SHAPES=(
  "D64-B64-H2L2x1 64 64 2 2 1"
  "D128-B32-H3L6x2 128 32 3 6 2"
  "D512-B16-H3L6x2 512 16 3 6 2"
)
if [ $QUICK = 1 ]; then
  SHAPES=("${SHAPES[0]}")
  ROUNDS=1
  ITERS=2
  [ $DOC_SET = 1 ] || DOC=""
fi

# ---- preconditions, each with what to do about it ----
[ -x "$PY" ] || die "$PY not found: the table is built with Debian's python3 (apt-get install -y python3)"
[ -x "$EQR" ] || die "eqr binary '$EQR' not found: build it first (cmake --build build) or pass --eqr PATH"
if [ $NO_REF = 0 ]; then
  [ -n "$REF_DIR" ] || die "REF_DIR is not set: export REF_DIR=<a work tree of github.com/locuslab/EqR> (or --ref-dir DIR), or run eqr only with --no-ref"
  [ -f "$REF_DIR/models/eqr.py" ] || die "REF_DIR '$REF_DIR' has no models/eqr.py: it must be a work tree of github.com/locuslab/EqR (or use --no-ref)"
  [ -f "$REF_BENCH" ] || die "the reference timing script '$REF_BENCH' is missing (set REF_BENCH, or use --no-ref)"
  "$PY" -c "import torch" 2>/dev/null || die "python3-torch is missing for $PY: apt-get install -y python3-torch python3-numpy python3-pydantic python3-colorama (or use --no-ref)"
fi
if [ -n "$DOC" ]; then
  [ -f "$DOC" ] || die "--doc '$DOC' does not exist"
  grep -q '<!-- bench_cpu:begin -->' "$DOC" && grep -q '<!-- bench_cpu:end -->' "$DOC" ||
    die "--doc '$DOC' lacks the markers <!-- bench_cpu:begin --> and <!-- bench_cpu:end -->"
fi
[ -n "$OUT" ] || OUT="runs/bench_cpu/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
LOG="${OUT%.jsonl}.log"
: > "$LOG"

# Appends the JSON lines of a command's stdout to $OUT, each tagged with round, shape and side.
tag() {  # round shape source
  sed -n "s/^{/{\"round\": $1, \"shape\": \"$2\", \"source\": \"$3\", /p" >> "$OUT"
}
run_logged() {  # what, command...
  local what=$1
  shift
  echo "== $what" >> "$LOG"
  if ! "$@" 2>> "$LOG"; then
    echo "bench_cpu.sh: $what failed; see $LOG" >&2
    tail -5 "$LOG" >&2
    exit 1
  fi
}

thread_args=()
[ -z "$THREADS" ] || thread_args=(--threads "$THREADS")
echo "bench_cpu.sh: $ROUNDS round(s) x ${#SHAPES[@]} shape(s), $ITERS timed steps after $WARMUP warm-up; raw JSON -> $OUT" >&2
for ((round = 1; round <= ROUNDS; round++)); do
  for shape in "${SHAPES[@]}"; do
    read -r name d b h l n <<< "$shape"
    echo "round $round/$ROUNDS, $name" >&2
    if [ $NO_REF = 0 ]; then
      run_logged "ref $name round $round" env REF_DIR="$REF_DIR" "$PY" "$REF_BENCH" --hidden-size "$d" --batch-size "$b" \
        --H-cycles "$h" --L-cycles "$l" --L-layers "$n" --iters "$ITERS" --warmup "$WARMUP" --optimizer atan2 \
        --seed 0 "${thread_args[@]}" | tag "$round" "$name" ref
    fi
    for what in train eval; do
      run_logged "eqr $what $name round $round" "$EQR" bench "$what" -c configs/sudoku_extreme.yaml --device cpu \
        --set arch.mlp_t=true --set arch.hidden_size="$d" --set arch.h_cycles="$h" --set arch.l_cycles="$l" \
        --set arch.l_layers="$n" -b "$b" --iters "$ITERS" --warmup "$WARMUP" "${thread_args[@]}" --json |
        tag "$round" "$name" eqr
    done
  done
done

# ---- the table (stdout, and the doc between its markers) ----
"$PY" - "$OUT" "$DOC" "$ITERS" "$WARMUP" "$NO_REF" <<'EOF'
import json, os, platform, re, statistics, subprocess, sys, time

out, doc, iters, warmup, no_ref = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"
rows = [json.loads(l) for l in open(out) if l.strip()]
get = {}
for r in rows:
    key = (r["shape"], r["round"])
    side = "ref_" + r["mode"] if r["source"] == "ref" else "eqr_" + r["bench"]
    get.setdefault(key, {})[side] = r
shapes = list(dict.fromkeys(r["shape"] for r in rows))

def f(x, fmt="{:,.0f}"):
    return "" if x is None else fmt.format(x)

def cells(g):
    ref_t = g.get("ref_train", {}).get("ms_mean")
    ref_e = g.get("ref_infer", {}).get("ms_mean")
    et, ee = g.get("eqr_train", {}), g.get("eqr_eval", {})
    eqr_t, eqr_e = et.get("train_ms_per_step"), ee.get("eval_ms_per_step")
    bf16 = ee.get("gemm_peak_bf16_gflops")
    return {
        "ref_t": ref_t, "ref_e": ref_e, "eqr_t": eqr_t, "eqr_e": eqr_e,
        "rt": ref_t / eqr_t if ref_t and eqr_t else None,
        "re": ref_e / eqr_e if ref_e and eqr_e else None,
        "dtype": ee.get("forward_dtype", et.get("forward_dtype", "")),
        "fp32": ee.get("gemm_peak_fp32_gflops"), "bf16": bf16,
        "pct": 100 * ee["eval_matmul_gflops"] / bf16 if bf16 and "eval_matmul_gflops" in ee else None,
    }

def line(label, rnd, c):
    peak = f"{f(c['fp32'])} / {f(c['bf16'])}" if c["fp32"] else ""
    return (f"| {label} | {rnd} | {f(c['ref_t'])} | {f(c['ref_e'])} | {f(c['eqr_t'])} | {f(c['eqr_e'])} | "
            f"{f(c['rt'], '{:.2f}')} | {f(c['re'], '{:.2f}')} | {c['dtype']} | {peak} | {f(c['pct'], '{:.0f}%')} |")

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

table = ["| shape (mlp_t, S 81, V 11) | round | ref train ms | ref eval ms | eqr train ms | eqr eval ms | "
         "train ref/eqr | eval ref/eqr | eqr dtype | GEMM peak fp32 / bf16 GFLOP/s | eqr eval % of bf16 peak |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for s in shapes:
    per = [cells(get[k]) for k in sorted(k for k in get if k[0] == s)]
    for i, c in enumerate(per, 1):
        table.append(line(s, str(i), c))
    if len(per) > 1:
        m = {k: med([c[k] for c in per]) for k in per[0] if k != "dtype"}
        m["dtype"] = per[0]["dtype"]
        table.append(line(f"**{s}**", "**median**", m))

eqr_any = next((r for r in rows if r["source"] == "eqr"), {})
ref_any = next((r for r in rows if r["source"] == "ref"), {})
cpu = ""
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    pass
head = (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `scripts/bench_cpu.sh` on {cpu or platform.machine()}, "
        f"{os.cpu_count()} cores; eqr {eqr_any.get('git_sha', '?')} (LibTorch {eqr_any.get('torch_version', '?')}, "
        f"intra-op threads {eqr_any.get('threads', '?')}, {eqr_any.get('blas', '?')} threads {eqr_any.get('blas_threads', '?')}); "
        + ("reference: not run (--no-ref). " if no_ref else
           f"reference: PyTorch {ref_any.get('torch', '?')}, intra-op threads {ref_any.get('torch_num_threads', '?')}, "
           f"OpenBLAS threads {ref_any.get('openblas_threads', '?')}, float32, AdamATan2Torch. ")
        + f"ms per step: mean of {iters} timed steps after {warmup} warm-up; raw JSON lines: `{out}`.")
text = head + "\n\n" + "\n".join(table) + "\n"
print(text)
if doc:
    src = open(doc).read()
    new, n = re.subn(r"(<!-- bench_cpu:begin -->\n).*?(<!-- bench_cpu:end -->)", lambda m: m.group(1) + text + m.group(2),
                     src, flags=re.S)
    if n != 1:
        sys.exit(f"bench_cpu.sh: {doc}: expected one <!-- bench_cpu:begin --> ... <!-- bench_cpu:end --> section, found {n}")
    open(doc, "w").write(new)
    print(f"bench_cpu.sh: table written into {doc}", file=sys.stderr)
EOF
