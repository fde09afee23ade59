#!/usr/bin/env bash
# eqr vs the official Python reference on this CPU, measured side by side (docs/performance.md).
# For each round and shape, back to back: the reference's timing script (../shared/bench/ref_bench.py: one
# training step and one evaluation step of the OFFICIAL model imported from $REF_DIR, float32, AdamATan2 in
# plain torch) at 1 and at 2 intra-op threads, then `eqr bench train` and `eqr bench eval` at the same shape
# (configs/sudoku_extreme.yaml: mlp_t, S 81, V 11, with --set overrides) in float32, and again at eqr's
# defaults when those differ (bfloat16 on CPUs with native bfloat16). Ratios compare like with like: float32
# against float32, each side at its fastest thread setting of the round (named in the table); the "defaults"
# columns (the reference's own default threads vs eqr's defaults, dtypes named) are the user's view and are
# labelled so. Writes the raw JSON lines to --out, prints a markdown table per CPU kind (model and flags from
# CPUID: avx2, avx512f, avx512_bf16, amx_bf16) and puts it into docs/performance.md between
# `<!-- bench_cpu:begin KIND -->` and `<!-- bench_cpu:end KIND -->` (a new section is appended for a new kind).
#
#   REF_DIR=<work tree of github.com/locuslab/EqR> bash scripts/bench_cpu.sh [options]
#     --rounds N     rounds over all shapes (default 3)
#     --quick        smoke test: the first shape, 1 round, 2 timed steps; the doc is left alone unless --doc
#     --out FILE     raw JSON lines (default runs/bench_cpu/<UTC time>.jsonl)
#     --doc FILE     markdown file to update (default docs/performance.md; "" = none)
#     --iters N      timed steps per benchmark (default 3); --warmup N untimed steps first (default 1)
#     --threads N    intra-op threads for both sides, instead of trying 1 and 2 for the reference and eqr's default
#     --avx2-paths   both sides restricted to their AVX2 kernels on an AVX-512 CPU (ATEN_CPU_CAPABILITY=avx2,
#                    ONEDNN_MAX_CPU_ISA=AVX2, OPENBLAS_CORETYPE=Haswell, EQR_CPU_BF16=0); give --eqr a build
#                    configured with -DEQR_CPU_CLONES=x86-64-v3 so eqr's own kernels take their AVX2 clone too
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
AVX2_PATHS=0
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
    --avx2-paths) AVX2_PATHS=1; shift ;;
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

env_args=()
if [ $AVX2_PATHS = 1 ]; then
  env_args=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell EQR_CPU_BF16=0)
  "$EQR" version --json | grep -q '"cpu_clones": "x86-64-v3' ||
    echo "bench_cpu.sh: warning: $EQR was not built with -DEQR_CPU_CLONES=x86-64-v3; its own kernels take their AVX-512 clone" >&2
fi
# The reference's thread settings tried each round (its default is 1 intra-op thread under Debian's PyTorch).
ref_threads=(1 2)
eqr_thread_args=()
if [ -n "$THREADS" ]; then
  ref_threads=("$THREADS")
  eqr_thread_args=(--threads "$THREADS")
fi
# eqr's defaults differ from float32 only where the CPU does bfloat16 natively (or EQR_CPU_BF16=1).
eqr_default_differs=0
env "${env_args[@]}" "$EQR" version --json | grep -q '"cpu_bf16": "native"' && eqr_default_differs=1

echo "bench_cpu.sh: $ROUNDS round(s) x ${#SHAPES[@]} shape(s), $ITERS timed steps after $WARMUP warm-up; raw JSON -> $OUT" >&2
for ((round = 1; round <= ROUNDS; round++)); do
  for shape in "${SHAPES[@]}"; do
    read -r name d b h l n <<< "$shape"
    echo "round $round/$ROUNDS, $name" >&2
    if [ $NO_REF = 0 ]; then
      for t in "${ref_threads[@]}"; do
        run_logged "ref $name threads $t round $round" env "${env_args[@]}" REF_DIR="$REF_DIR" "$PY" "$REF_BENCH" \
          --hidden-size "$d" --batch-size "$b" --H-cycles "$h" --L-cycles "$l" --L-layers "$n" --iters "$ITERS" \
          --warmup "$WARMUP" --optimizer atan2 --seed 0 --threads "$t" | tag "$round" "$name" "ref_t$t"
      done
    fi
    variants=(float32)
    [ $eqr_default_differs = 1 ] && variants+=(default)
    for variant in "${variants[@]}"; do
      dtype_args=()
      [ "$variant" = float32 ] && dtype_args=(--set compute.reduced_precision_on_cpu=false)
      for what in train eval; do
        run_logged "eqr $what $variant $name round $round" env "${env_args[@]}" "$EQR" bench "$what" \
          -c configs/sudoku_extreme.yaml --device cpu --set arch.mlp_t=true --set arch.hidden_size="$d" \
          --set arch.h_cycles="$h" --set arch.l_cycles="$l" --set arch.l_layers="$n" "${dtype_args[@]}" -b "$b" \
          --iters "$ITERS" --warmup "$WARMUP" "${eqr_thread_args[@]}" --json | tag "$round" "$name" "eqr_$variant"
      done
    done
  done
done

# ---- the table (stdout, and the doc between its markers) ----
"$PY" - "$OUT" "$DOC" "$ITERS" "$WARMUP" "$NO_REF" "$AVX2_PATHS" <<'EOF'
import json, re, statistics, sys, time

out, doc, iters, warmup = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
no_ref, avx2_paths = sys.argv[5] == "1", sys.argv[6] == "1"
rows = [json.loads(l) for l in open(out) if l.strip()]
get = {}
for r in rows:
    mode = r.get("mode") or r.get("bench")  # ref: train | infer; eqr: train | eval
    get.setdefault((r["shape"], r["round"]), {})[(r["source"], "eval" if mode == "infer" else mode)] = r
shapes = list(dict.fromkeys(r["shape"] for r in rows))
ref_sources = sorted({r["source"] for r in rows if r["source"].startswith("ref_")}, key=lambda s: int(s[5:]))

def ms(r, mode):
    if r is None:
        return None
    return r.get("ms_mean") if "ms_mean" in r else r.get(mode + "_ms_per_step")

def f(x, fmt="{:,.0f}"):
    return "" if x is None else fmt.format(x)

def cells(g):
    c = {}
    for mode in ("train", "eval"):
        refs = {s: ms(g.get((s, mode)), mode) for s in ref_sources}
        refs = {s: v for s, v in refs.items() if v}
        best = min(refs, key=refs.get) if refs else None
        e32 = ms(g.get(("eqr_float32", mode)), mode)
        edef_r = g.get(("eqr_default", mode)) or g.get(("eqr_float32", mode))
        edef = ms(edef_r, mode)
        ref_default = refs.get("ref_t1")  # Debian's PyTorch 1.13 defaults to 1 intra-op thread
        c[mode] = {"refs": refs, "best": best, "e32": e32, "edef": edef,
                   "r32": refs[best] / e32 if best and e32 else None,
                   "rdef": ref_default / edef if ref_default and edef else None,
                   "edef_dtype": (edef_r or {}).get("forward_dtype", "")}
    ev = g.get(("eqr_float32", "eval"), {})
    c["fp32_peak"] = ev.get("gemm_peak_fp32_gflops")
    c["bf16_peak"] = ev.get("gemm_peak_bf16_gflops")
    c["pct"] = (100 * ev["eval_matmul_gflops"] / c["fp32_peak"]) if c["fp32_peak"] and "eval_matmul_gflops" in ev else None
    return c

def ref_cell(m):
    return " / ".join(f"{f(v)} ({s[4:]})" for s, v in m["refs"].items())

def line(label, rnd, c):
    t, e = c["train"], c["eval"]
    best = lambda m: "" if not m["best"] else m["best"][5:]
    return (f"| {label} | {rnd} | {ref_cell(t)} | {ref_cell(e)} | {f(t['e32'])} | {f(e['e32'])} | "
            f"{f(t['r32'], '{:.2f}')} | {f(e['r32'], '{:.2f}')} | {(best(t) + '/' + best(e)) if t['best'] else '-'} | "
            f"{f(c['fp32_peak'])} | {f(c['pct'], '{:.0f}%')} | "
            f"{e['edef_dtype']} | {f(t['edef'])} | {f(e['edef'])} | {f(t['rdef'], '{:.2f}')} | {f(e['rdef'], '{:.2f}')} |")

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

table = ["| shape (mlp_t, S 81, V 11) | round | ref train ms, fp32 (threads) | ref eval ms, fp32 (threads) | "
         "eqr train ms, fp32 | eqr eval ms, fp32 | **fp32 train ref/eqr** | **fp32 eval ref/eqr** | ref threads used (train/eval) | "
         "fp32 GEMM peak GFLOP/s | eqr fp32 eval % of fp32 peak | eqr default dtype | eqr default train ms | "
         "eqr default eval ms | defaults train ref/eqr | defaults eval ref/eqr |",
         "|" + " --- |" * 16]
for s in shapes:
    per = [cells(get[k]) for k in sorted(k for k in get if k[0] == s)]
    for i, c in enumerate(per, 1):
        table.append(line(s, str(i), c))
    if len(per) > 1:
        m = {"fp32_peak": med([c["fp32_peak"] for c in per]), "pct": med([c["pct"] for c in per])}
        for mode in ("train", "eval"):
            m[mode] = {"refs": {src: med([c[mode]["refs"].get(src) for c in per]) for src in ref_sources},
                       "best": None, "edef_dtype": per[0][mode]["edef_dtype"]}
            for k in ("e32", "edef", "r32", "rdef"):
                m[mode][k] = med([c[mode][k] for c in per])
        table.append(line(f"**{s}**", "**median**", m))

eqr_any = next((r for r in rows if r["source"].startswith("eqr")), {})
refs_any = {s: next((r for r in rows if r["source"] == s), {}) for s in ref_sources}
cpu = eqr_any.get("cpu", "?")
flags = cpu[cpu.find("(") + 1:cpu.find(";")] if "(" in cpu else ""
kind = ("amx" if "amx_bf16" in flags else "avx512-bf16" if "avx512_bf16" in flags else
        "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline")
if avx2_paths:
    kind = "avx2-paths-on-" + kind
ref_desc = "; ".join(f"reference at {s[4:]}: PyTorch {r.get('torch', '?')}, intra-op threads {r.get('torch_num_threads', '?')}, "
                     f"OpenBLAS threads {r.get('openblas_threads', '?')}, float32" for s, r in refs_any.items())
head = (f"**CPU kind `{kind}`**: {cpu}, measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`scripts/bench_cpu.sh{' --avx2-paths' if avx2_paths else ''}`; eqr {eqr_any.get('git_sha', '?')} "
        f"(LibTorch {eqr_any.get('torch_version', '?')}, intra-op threads {eqr_any.get('threads', '?')}, "
        f"{eqr_any.get('blas', '?')} threads {eqr_any.get('blas_threads', '?')}, bfloat16 {eqr_any.get('bf16_path', '?')}); "
        + ("reference: not run (--no-ref). " if no_ref else ref_desc + ", AdamATan2Torch. ")
        + "fp32 ratios: float32 on both sides, the reference at its faster thread setting of that round (named), "
        "eqr at its default threads. Defaults columns: the reference at its default (1 intra-op thread, float32) "
        "against eqr at its defaults (dtype named): the user's view, not like with like when the dtypes differ. "
        f"ms per step: mean of {iters} timed steps after {warmup} warm-up; raw JSON lines: `{out}`.")
text = head + "\n\n" + "\n".join(table) + "\n"
print(text)
if doc:
    src = open(doc).read()
    b, e = f"<!-- bench_cpu:begin {kind} -->", f"<!-- bench_cpu:end {kind} -->"
    if b in src and e in src:
        new = src[:src.index(b) + len(b)] + "\n" + text + src[src.index(e):]
    else:
        new = src.rstrip("\n") + f"\n\n### Side by side on CPU kind `{kind}`\n\n{b}\n{text}{e}\n"
    open(doc, "w").write(new)
    print(f"bench_cpu.sh: table for CPU kind {kind} written into {doc}", file=sys.stderr)
EOF
