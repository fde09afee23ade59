#!/usr/bin/python3
"""Tables and figures of the CPU-scale study (docs/results.md) from `eqr eval` reports.

    study.py depth      EVAL_DIR OUT_PREFIX TRAIN_DEPTH   claim 1: accuracy vs depth, per variant
    study.py breadth    EVAL_DIR OUT_PREFIX               claim 2: depth x breadth grid (majority vote)
    study.py convergence EVAL_DIR OUT_PREFIX              claim 3: AUROC of the final residual, with 95% CI
    study.py difficulty EVAL_DIR OUT_PREFIX PUZZLES_CSV   claim 4: steps to settle vs difficulty; stop rules
    study.py landscape  EVAL_DIR OUT_PREFIX               claim 5: attractor basins across initial states

EVAL_DIR holds one directory per evaluated model (<variant>-s<seed>, each with report.json); the
difficulty claim reads sub-directories per stop rule (EVAL_DIR/<rule>/<variant>-s<seed>). Writes
OUT_PREFIX.csv and OUT_PREFIX.png (matplotlib, Agg backend; Debian python3-matplotlib, python3-numpy)
and prints the table. Every row names the model (variant, seed), depth, breadth, eval seed and dtype.
"""
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS = {"eqr": "tab:blue", "trm": "tab:orange", "feedforward": "tab:green"}


def reports(eval_dir):
    """[(variant, model_seed, report)] of the <variant>-s<seed> directories, sorted."""
    out = []
    for name in sorted(os.listdir(eval_dir)):
        path = os.path.join(eval_dir, name, "report.json")
        if "-s" not in name or not os.path.isfile(path):
            continue
        variant, seed = name.rsplit("-s", 1)
        with open(path) as f:
            out.append((variant, int(seed), json.load(f)))
    if not out:
        sys.exit(f"study.py: no <variant>-s<seed>/report.json under {eval_dir}")
    return out


def row(rep, depth, breadth, aggregator):
    for r in rep["rows"]:
        if r["depth"] == depth and r["breadth"] == breadth and r["aggregator"] == aggregator:
            return r
    raise KeyError(f"no row depth {depth} breadth {breadth} aggregator {aggregator}")


def tags(rep):
    m = rep["meta"]
    return {"eval_seed": m.get("seed"), "dtype": m.get("forward_dtype"), "n_puzzles": m.get("n_puzzles")}


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path} ({len(rows)} rows)")


def show(rows, keys):
    print("  ".join(f"{k:>14}" for k in keys))
    for r in rows:
        print("  ".join(f"{(f'{r[k]:.4f}' if isinstance(r[k], float) else str(r[k])):>14}" for k in keys))


def save(fig, out):
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=110)
    plt.close(fig)
    print(f"wrote {out}.png")


def ranks(x):
    """Average ranks (1-based) with ties sharing their mean rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


# ---- claim 1 -------------------------------------------------------------------------------------------
def depth_claim(eval_dir, out, train_depth):
    rows = []
    for variant, seed, rep in reports(eval_dir):
        depths = sorted({r["depth"] for r in rep["rows"]})
        for d in depths:
            r = row(rep, d, 1, "mean")
            rows.append({"variant": variant, "model_seed": seed, "depth": d, "depth_multiple": d / train_depth,
                         "breadth": 1, "exact_accuracy": r["exact_accuracy"],
                         "valid_accuracy": r["valid_accuracy"], "cell_accuracy": r["cell_accuracy"],
                         **tags(rep)})
    write_csv(out + ".csv", rows)
    show(rows, ["variant", "model_seed", "depth", "exact_accuracy"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for variant in sorted({r["variant"] for r in rows}):
        mine = [r for r in rows if r["variant"] == variant]
        mults = sorted({r["depth_multiple"] for r in mine})
        mean = [np.mean([r["exact_accuracy"] for r in mine if r["depth_multiple"] == m]) for m in mults]
        ax.plot(mults, mean, "-o", color=COLORS.get(variant), label=f"{variant} (mean of seeds)")
        for r in mine:
            ax.plot(r["depth_multiple"], r["exact_accuracy"], ".", color=COLORS.get(variant), alpha=0.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"inference depth / training depth ({train_depth} supervision steps)")
    ax.set_ylabel("exact accuracy (breadth 1)")
    ax.set_title(f"Claim 1: depth beyond training ({rows[0]['n_puzzles']} held-out 6x6 puzzles)")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, out)


# ---- claim 2 -------------------------------------------------------------------------------------------
def breadth_claim(eval_dir, out):
    rows = []
    models = reports(eval_dir)
    for variant, seed, rep in models:
        for r in rep["rows"]:
            if r["aggregator"] != ("mean" if r["breadth"] == 1 else "majority_vote"):
                continue
            base = row(rep, r["depth"], 1, "mean")["exact_accuracy"]
            rows.append({"variant": variant, "model_seed": seed, "depth": r["depth"], "breadth": r["breadth"],
                         "aggregator": r["aggregator"], "exact_accuracy": r["exact_accuracy"],
                         "gain_over_breadth1": r["exact_accuracy"] - base, "nfe_per_puzzle": r["nfe_per_puzzle"],
                         **tags(rep)})
    write_csv(out + ".csv", rows)
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.2), squeeze=False)
    for ax, (variant, seed, rep) in zip(axes[0], models):
        mine = [r for r in rows if r["variant"] == variant and r["model_seed"] == seed]
        ds = sorted({r["depth"] for r in mine})
        bs = sorted({r["breadth"] for r in mine})
        grid = np.array([[next(r["gain_over_breadth1"] for r in mine if r["depth"] == d and r["breadth"] == b)
                          for b in bs] for d in ds])
        im = ax.imshow(grid * 100, cmap="RdBu", vmin=-abs(grid).max() * 100 - 1e-9, vmax=abs(grid).max() * 100 + 1e-9,
                       origin="lower", aspect="auto")
        for i, d in enumerate(ds):
            for j, b in enumerate(bs):
                acc = next(r["exact_accuracy"] for r in mine if r["depth"] == d and r["breadth"] == b)
                ax.text(j, i, f"{acc * 100:.1f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(bs)), [str(b) for b in bs])
        ax.set_yticks(range(len(ds)), [str(d) for d in ds])
        ax.set_xlabel("breadth R (majority vote)")
        ax.set_ylabel("depth (supervision steps)")
        ax.set_title(f"{variant} seed {seed}: exact % (colour: gain over R=1, points)", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("Claim 2: depth x breadth, majority vote")
    save(fig, out)
    show([r for r in rows if r["breadth"] in (1, max(x["breadth"] for x in rows))],
         ["variant", "model_seed", "depth", "breadth", "exact_accuracy", "gain_over_breadth1"])


# ---- claim 3 -------------------------------------------------------------------------------------------
def convergence_claim(eval_dir, out):
    rows = []
    models = reports(eval_dir)
    for variant, seed, rep in models:
        by_step = rep["diagnostics"]["residual_by_step"]
        for a in rep["diagnostics"]["auroc"]:
            d = a["depth"]
            r = row(rep, d, 1, "mean")
            ci = a.get("residual_ci95") or [float("nan"), float("nan")]
            res_all = by_step["all"][d - 1] if d - 1 < len(by_step["all"]) else None
            rows.append({"variant": variant, "model_seed": seed, "depth": d, "breadth": 1,
                         "exact_accuracy": r["exact_accuracy"],
                         "auroc_residual": a["residual"] if a["residual"] is not None else float("nan"),
                         "auroc_ci_low": ci[0], "auroc_ci_high": ci[1],
                         "auroc_convergence_score": a["convergence_score"] if a["convergence_score"] is not None
                         else float("nan"),
                         "mean_residual_at_depth": res_all if res_all is not None else float("nan"),
                         "n_correct": a["n_correct"], "n_wrong": a["n_wrong"], **tags(rep)})
    write_csv(out + ".csv", rows)
    show(rows, ["variant", "model_seed", "depth", "exact_accuracy", "auroc_residual", "auroc_ci_low",
                "auroc_ci_high", "mean_residual_at_depth"])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for variant, seed, rep in models:
        mine = [r for r in rows if r["variant"] == variant and r["model_seed"] == seed]
        ds = [r["depth"] for r in mine]
        au = np.array([r["auroc_residual"] for r in mine])
        lo = au - np.array([r["auroc_ci_low"] for r in mine])
        hi = np.array([r["auroc_ci_high"] for r in mine]) - au
        a1.errorbar(ds, au, yerr=[lo, hi], fmt="-o", capsize=3, color=COLORS.get(variant),
                    alpha=1.0 if seed == 1 else 0.6, label=f"{variant} seed {seed}")
        by = rep["diagnostics"]["residual_by_step"]
        for key, style in (("correct", "-"), ("wrong", "--")):
            ys = [np.nan if v is None else v for v in by[key]]
            a2.plot(range(1, len(ys) + 1), ys, style, color=COLORS.get(variant), alpha=1.0 if seed == 1 else 0.6,
                    label=f"{variant} s{seed} {key}")
    a1.set_xscale("log", base=2)
    a1.set_xlabel("depth (supervision steps)")
    a1.set_ylabel("AUROC of -final residual for 'correct'")
    a1.axhline(0.5, color="grey", lw=0.8)
    a1.set_title("final residual separates right from wrong (95% CI)", fontsize=9)
    a1.legend(fontsize=7)
    a2.set_yscale("log")
    a2.set_xscale("log", base=2)
    a2.set_xlabel("step")
    a2.set_ylabel("mean residual after the step")
    a2.set_title("residual of trajectories ending right (solid) vs wrong (dashed)", fontsize=9)
    a2.legend(fontsize=6, ncol=2)
    fig.suptitle("Claim 3: convergence predicts correctness")
    save(fig, out)


# ---- claim 4 -------------------------------------------------------------------------------------------
def singles_rounds(puzzle, n=6, box=(2, 3)):
    """Rounds of naked + hidden singles needed to solve a puzzle (one round fills every single found in one
    pass over the board); None when singles alone get stuck. A finer rating than backtracks for 6x6."""
    g = [int(c) if c not in ".0" else 0 for c in puzzle]
    br, bc = box
    units = [[r * n + c for c in range(n)] for r in range(n)] + [[r * n + c for r in range(n)] for c in range(n)]
    for r0 in range(0, n, br):
        for c0 in range(0, n, bc):
            units.append([(r0 + i) * n + c0 + j for i in range(br) for j in range(bc)])
    peers = [set() for _ in range(n * n)]
    for u in units:
        for i in u:
            peers[i].update(x for x in u if x != i)
    rounds = 0
    while 0 in g:
        cand = [set(range(1, n + 1)) - {g[p] for p in peers[i]} if g[i] == 0 else set() for i in range(n * n)]
        found = {}
        for i in range(n * n):
            if g[i] == 0 and len(cand[i]) == 1:
                found[i] = next(iter(cand[i]))
        for u in units:
            for v in range(1, n + 1):
                spots = [i for i in u if g[i] == 0 and v in cand[i]]
                if len(spots) == 1:
                    found.setdefault(spots[0], v)
        if not found:
            return None
        for i, v in found.items():
            g[i] = v
        rounds += 1
    return rounds


def traces(path):
    with open(path) as f:
        return [{"puzzle": int(r["puzzle"]), "init": int(r["init"]), "correct": r["correct"] in ("1", "true"),
                 "steps": int(r["steps"])} for r in csv.DictReader(f)]


def difficulty_claim(eval_dir, out, puzzles_csv):
    with open(puzzles_csv) as f:
        puzzles = list(csv.DictReader(f))
    rating = [int(p["rating"]) for p in puzzles]
    rounds = [singles_rounds(p["question"]) for p in puzzles]
    # A combined scale: singles rounds for puzzles singles solve, then 100 + backtracks for the rest.
    scale = [r if r is not None else 100 + b for r, b in zip(rounds, rating)]
    rules = sorted(d for d in os.listdir(eval_dir) if os.path.isdir(os.path.join(eval_dir, d)))
    rows, per_puzzle = [], {}
    for rule in rules:
        for variant, seed, rep in reports(os.path.join(eval_dir, rule)):
            cap = max(r["depth"] for r in rep["rows"])
            r = row(rep, cap, 1, "mean")
            ev = rep["meta"]["config"]["eval"]
            entry = {"rule": rule, "variant": variant, "model_seed": seed, "scheduler": r["scheduler"],
                     "depth_cap": cap, "breadth": 1, "tol": ev["tol"], "patience": ev["patience"],
                     "answer_patience": ev.get("answer_patience"), "exact_accuracy": r["exact_accuracy"],
                     "steps_mean": r["steps_mean"], "steps_p50": r["steps_p50"], "steps_p99": r["steps_p99"],
                     "spearman_steps_vs_backtracks": float("nan"), "spearman_steps_vs_difficulty": float("nan"),
                     **tags(rep)}
            tr_path = os.path.join(eval_dir, rule, f"{variant}-s{seed}", "row_traces.csv")
            if os.path.isfile(tr_path):
                tr = [t for t in traces(tr_path) if t["init"] == 0]
                steps = [t["steps"] for t in tr]
                entry["spearman_steps_vs_backtracks"] = spearman(steps, [rating[t["puzzle"]] for t in tr])
                entry["spearman_steps_vs_difficulty"] = spearman(steps, [scale[t["puzzle"]] for t in tr])
                per_puzzle[(rule, variant, seed)] = tr
            rows.append(entry)
    for e in rows:  # savings against the fixed scheduler at the same cap, same model
        fixed = [x for x in rows if x["scheduler"] == "fixed" and x["variant"] == e["variant"]
                 and x["model_seed"] == e["model_seed"] and x["depth_cap"] == e["depth_cap"]]
        e["steps_saving_vs_fixed"] = fixed[0]["steps_mean"] / e["steps_mean"] if fixed else float("nan")
        e["accuracy_change_vs_fixed_points"] = (e["exact_accuracy"] - fixed[0]["exact_accuracy"]) * 100 if fixed \
            else float("nan")
    write_csv(out + ".csv", rows)
    show(rows, ["rule", "variant", "model_seed", "exact_accuracy", "steps_mean", "steps_saving_vs_fixed",
                "accuracy_change_vs_fixed_points", "spearman_steps_vs_difficulty"])
    # Figure: steps taken by the default adaptive rule per difficulty level.
    keys = [k for k in per_puzzle if k[0] == "adaptive_default"] or list(per_puzzle)
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(5.5 * max(1, len(keys)), 4.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        tr = per_puzzle[key]
        levels = sorted({scale[t["puzzle"]] for t in tr})
        data = [[t["steps"] for t in tr if scale[t["puzzle"]] == lv] for lv in levels]
        ax.boxplot(data, labels=[(f"{lv} rounds" if lv < 100 else f"bt {lv - 100}") for lv in levels], showfliers=True)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("difficulty: singles rounds (bt k = needs k backtracks)")
        ax.set_ylabel("supervision steps taken (adaptive)")
        ax.set_title(f"{key[1]} seed {key[2]} ({key[0]})", fontsize=9)
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    fig.suptitle("Claim 4: compute follows difficulty")
    save(fig, out)


# ---- claim 5 -------------------------------------------------------------------------------------------
def landscape_claim(eval_dir, out):
    rows = []
    models = reports(eval_dir)
    for variant, seed, rep in models:
        land = rep["diagnostics"]["landscape"]
        r = rep["meta"]["config"]["eval"]
        base = {"variant": variant, "model_seed": seed, "depth": land["depth"], "breadth": max(r["breadth"]),
                **tags(rep)}
        for k, v in sorted(land["majority_correct_by_distinct_final_grids"].items(), key=lambda kv: int(kv[0])):
            rows.append({**base, "distinct_final_grids": int(k), "puzzles": v["puzzles"],
                         "majority_vote_correct": v["majority_correct"],
                         "mean_majority_basin_share_all": land["mean_majority_basin_share"],
                         "share_single_basin_all": land["share_single_basin"]})
    write_csv(out + ".csv", rows)
    show(rows, ["variant", "model_seed", "depth", "distinct_final_grids", "puzzles", "majority_vote_correct"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    width = 0.8 / max(1, len(models))
    for i, (variant, seed, rep) in enumerate(models):
        mine = [r for r in rows if r["variant"] == variant and r["model_seed"] == seed]
        xs = np.array([r["distinct_final_grids"] for r in mine], dtype=float) + (i - (len(models) - 1) / 2) * width
        ax.bar(xs, [r["majority_vote_correct"] for r in mine], width=width, color=COLORS.get(variant),
               alpha=1.0 if seed == 1 else 0.6, label=f"{variant} s{seed} (depth {mine[0]['depth']})")
        for x, r in zip(xs, mine):
            ax.text(x, r["majority_vote_correct"] + 0.01, str(r["puzzles"]), ha="center", fontsize=6)
    ax.set_xlabel(f"distinct final grids across R = {rows[0]['breadth']} initial states")
    ax.set_ylabel("share of puzzles whose majority vote is right")
    ax.set_title("Claim 5: basins across initial states vs the vote's correctness (bar labels: puzzles)", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, out)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, eval_dir, out = argv[0], argv[1], argv[2]
    if cmd == "depth":
        depth_claim(eval_dir, out, int(argv[3]))
    elif cmd == "breadth":
        breadth_claim(eval_dir, out)
    elif cmd == "convergence":
        convergence_claim(eval_dir, out)
    elif cmd == "difficulty":
        difficulty_claim(eval_dir, out, argv[3])
    elif cmd == "landscape":
        landscape_claim(eval_dir, out)
    else:
        sys.exit(f"study.py: unknown claim '{cmd}'\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
