#!/usr/bin/python3
"""Plots of an `eqr eval` report, written as PNG files next to it.

    scripts/plot_eval.py REPORT_DIR_OR_JSON [--aggregator majority_vote] [--out DIR]

Reads report.json (written by `eqr eval`) and draws:
  accuracy_vs_depth.png     exact accuracy vs depth, one line per breadth (aggregator of --aggregator;
                            breadth 1 always uses "mean", the single trajectory)
  accuracy_vs_nfe.png       exact accuracy vs supervision steps per puzzle (NFE = steps x trajectories),
                            one line per breadth, log x
  residual_vs_step.png      mean residual after each step, trajectories whose final answer is right vs wrong
                            (log y), with the mean convergence rate d_k/d_{k-1} on a second panel
  steps_histogram.png       supervision steps taken per trajectory
Uses matplotlib with the Agg backend (Debian: python3-matplotlib); no display needed.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    if os.path.isdir(path):
        path = os.path.join(path, "report.json")
    with open(path) as f:
        return json.load(f), os.path.dirname(os.path.abspath(path))


def subtitle(rep):
    m = rep["meta"]
    ck = os.path.basename(str(m.get("checkpoint", "?")))
    return (f"{ck} | {m.get('n_puzzles')} puzzles ({os.path.basename(str(m.get('puzzles', '')))}) | "
            f"scheduler {m.get('scheduler')} | seed {m.get('seed')}")


def series(rows, aggregator):
    """{breadth: [(depth, acc, nfe)]} for the chosen aggregator (mean at breadth 1)."""
    out = {}
    for r in rows:
        want = "mean" if r["breadth"] == 1 else aggregator
        if r["aggregator"] != want:
            continue
        out.setdefault(r["breadth"], []).append((r["depth"], r["exact_accuracy"], r["nfe_per_puzzle"]))
    for b in out:
        out[b].sort()
    return out


def plot_accuracy_vs_depth(rep, aggregator, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for b, pts in sorted(series(rep["rows"], aggregator).items()):
        label = f"breadth {b}" + ("" if b == 1 else f" ({aggregator})")
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth (supervision steps, log scale)")
    ax.set_ylabel("exact accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("Exact accuracy vs depth\n" + subtitle(rep), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_accuracy_vs_nfe(rep, aggregator, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (b, pts) in enumerate(sorted(series(rep["rows"], aggregator).items())):
        (line,) = ax.plot([p[2] for p in pts], [100 * p[1] for p in pts], marker="o", label=f"breadth {b}")
        for d, acc, nfe in pts:  # depth labels in the line's colour, staggered so breadths do not collide
            ax.annotate(f"D{d}", (nfe, 100 * acc), fontsize=7, color=line.get_color(), textcoords="offset points",
                        xytext=(3, 4 + 9 * i))
    ax.set_xscale("log")
    ax.set_xlabel("NFE per puzzle (supervision steps x trajectories, log scale)")
    ax.set_ylabel("exact accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(f"Exact accuracy vs compute ({aggregator} for breadth > 1)\n" + subtitle(rep), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_residuals(rep, out):
    d = rep["diagnostics"]
    rb = d["residual_by_step"]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for key, color in (("correct", "tab:green"), ("wrong", "tab:red"), ("all", "tab:gray")):
        ys = rb.get(key, [])
        pts = [(i + 1, y) for i, y in enumerate(ys) if y is not None and y > 0]
        if not pts:
            continue
        n = rb.get("rows_" + key, [])
        label = key if key == "all" else f"{key} (final answer; {n[0] if n else 0} trajectories)"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, color=color,
                linestyle="--" if key == "all" else "-")
    ax.set_yscale("log")
    ax.set_ylabel("residual ||z_t - z_{t-1}||")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Residual per step by final correctness\n" + subtitle(rep), fontsize=9)
    rate = [(i + 1, y) for i, y in enumerate(d.get("convergence_rate_by_step", [])) if y is not None]
    if rate:
        ax2.plot([p[0] for p in rate], [p[1] for p in rate], color="tab:blue")
    ax2.axhline(1.0, color="black", linewidth=0.8, alpha=0.5)
    ax2.set_ylabel("rate d_k / d_(k-1)")
    ax2.set_xlabel("step")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_steps(rep, out):
    h = rep["diagnostics"].get("steps_histogram", {})
    xs = sorted(int(k) for k in h)
    fig, ax = plt.subplots(figsize=(7, 4))
    if xs:
        width = max(1.0, (xs[-1] - xs[0] + 1) / 60.0)
        ax.bar(xs, [h[str(x)] for x in xs], width=width, color="tab:purple")
        ax.set_xlim(0, xs[-1] + max(1.0, 0.03 * xs[-1]))  # start at 0 so a fixed-depth run reads as one bar at D
    ax.set_xlabel("supervision steps taken per trajectory")
    ax.set_ylabel("trajectories")
    ax.grid(True, alpha=0.3, axis="y")
    total = sum(h.values()) if h else 0
    mean = sum(int(k) * v for k, v in h.items()) / total if total else 0
    ax.set_title(f"Steps per trajectory (mean {mean:.1f}, {total} trajectories)\n" + subtitle(rep), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", help="report directory or report.json")
    ap.add_argument("--aggregator", default="majority_vote", help="aggregator for breadth > 1")
    ap.add_argument("--out", default=None, help="output directory (default: the report's)")
    a = ap.parse_args(argv)
    rep, where = load(a.report)
    out = a.out or where
    os.makedirs(out, exist_ok=True)
    names = {r["aggregator"] for r in rep["rows"]}
    if a.aggregator not in names:
        sys.exit(f"plot_eval: aggregator '{a.aggregator}' not in the report (have: {', '.join(sorted(names))})")
    files = []
    for name, fn in (("accuracy_vs_depth.png", lambda p: plot_accuracy_vs_depth(rep, a.aggregator, p)),
                     ("accuracy_vs_nfe.png", lambda p: plot_accuracy_vs_nfe(rep, a.aggregator, p)),
                     ("residual_vs_step.png", lambda p: plot_residuals(rep, p)),
                     ("steps_histogram.png", lambda p: plot_steps(rep, p))):
        path = os.path.join(out, name)
        fn(path)
        files.append(path)
    for f in files:
        print(f)


if __name__ == "__main__":
    main()
