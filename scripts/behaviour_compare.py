#!/usr/bin/env python3
"""Compares two outputs of scripts/behaviour_check.sh: checkpoints by tensor bytes and header (git SHA and
wall-clock fields left out), JSON/JSONL/CSV/YAML by value without wall-clock fields, text without timestamps and
seconds. Knobs removed or moved on purpose are normalised (REMOVED, MOVED). usage: behaviour_compare.py A B"""
import json, re, sys, pathlib, csv, io
VOL = re.compile(r'(git_sha|time|_per_s|wall|seconds|elapsed|hostname|pid|date|started|finished|duration)', re.I)
REMOVED = {'different_init_reset_std'}  # knobs removed on purpose (issue 21)
MOVED = ('forward_dtype', 'reduced_precision_on_cpu', 'fused_kernels', 'cpu_gemm')  # arch -> compute (issue 21)
def norm_json(x):
    if isinstance(x, dict) and isinstance(x.get('arch'), dict) and any(k in x['arch'] for k in MOVED):
        x = dict(x); x['arch'] = dict(x['arch'])
        comp = dict(x.get('compute') or {})
        for k in MOVED:
            if k in x['arch']: comp.setdefault(k, x['arch'].pop(k))
        x['compute'] = comp
    if isinstance(x, dict): return {k: norm_json(v) for k, v in x.items() if not VOL.search(k) and k not in REMOVED}
    if isinstance(x, list): return [norm_json(v) for v in x]
    return x
def norm_text(t):
    t = re.sub(r'\[\d\d:\d\d:\d\d\]', '[T]', t)
    t = re.sub(r'\d+(\.\d+)?(e-?\d+)? s\b', 'N s', t)
    return t
def load(p):
    b = p.read_bytes()
    if p.suffix == '.eqrckpt':
        import struct
        n = struct.unpack('<Q', b[:8])[0]
        hdr = json.loads(b[8:8+n])
        md = hdr.get('__metadata__', {})
        for k, v in list(md.items()):
            try: md[k] = norm_json(json.loads(v))
            except Exception: pass
        return (norm_json(hdr), b[8+n:])
    if p.name == 'latest': return b
    t = b.decode()
    if p.suffix == '.json': return norm_json(json.loads(t))
    if p.suffix == '.jsonl': return [norm_json(json.loads(l)) for l in t.splitlines() if l.strip()]
    if p.suffix == '.csv':
        rows = list(csv.reader(io.StringIO(t)))
        keep = [i for i, h in enumerate(rows[0]) if not VOL.search(h)]
        return [[r[i] for i in keep if i < len(r)] for r in rows]
    if p.suffix == '.yaml':
        import yaml
        return norm_json(yaml.safe_load(t))
    return norm_text(t)
A, B = map(pathlib.Path, sys.argv[1:3]); bad = 0
for pa in sorted(A.rglob('*')):
    if pa.is_dir() or pa.name.endswith('.log') or pa.name == 'env.json': continue
    pb = B / pa.relative_to(A)
    if not pb.exists(): print('missing', pb); bad += 1; continue
    if load(pa) != load(pb): print('DIFF', pa.relative_to(A)); bad += 1
print('identical' if not bad else f'{bad} differ'); sys.exit(1 if bad else 0)
