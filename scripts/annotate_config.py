#!/usr/bin/env python3
"""Annotate a resolved eqr config (YAML from `eqr config show`) with each knob's `///` line from
include/eqr/config/config.h, so a config file shows every knob with what it does.

Usage: eqr config show [--config F] [--set k=v ...] | scripts/annotate_config.py [--header TEXT] > out.yaml
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTIONS = {"arch": "ArchConfig", "compute": "ComputeConfig", "data": "DataConfig", "train": "TrainConfig", "eval": "EvalConfig", "": "RunConfig"}


def read_docs():
    text = (ROOT / "include/eqr/config/config.h").read_text()
    docs = {}
    for struct in re.finditer(r"struct (\w+) \{(.*?)\n\};", text, re.S):
        name, body = struct.group(1), struct.group(2)
        pending = []
        for line in body.splitlines():
            line = line.strip()
            if line.startswith("///"):
                pending.append(line[3:].strip())
            elif line and not line.startswith("//"):
                m = re.match(r"[\w:<>, ]+?\s(\w+)(\s*=.*)?;", line)
                if m and pending:
                    docs[(name, m.group(1))] = " ".join(pending)
                pending = []
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--header", default="")
    args = ap.parse_args()
    docs = read_docs()
    out = []
    if args.header:
        out += ["# " + h if h else "#" for h in args.header.split("\n")]
    section = ""
    for line in sys.stdin.read().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"^(\s*)(\w+):(.*)$", line)
        if not m:
            out.append(line)
            continue
        indent, key, rest = m.groups()
        if not indent:
            if rest.strip() == "" and key in SECTIONS:
                section = key
                out.append("")
                out.append(line)
                continue
            section = ""
        doc = docs.get((SECTIONS[section if indent else ""], key))
        if doc:
            out.append(f"{indent}# {doc}")
        out.append(line)
    print("\n".join(out))


if __name__ == "__main__":
    main()
