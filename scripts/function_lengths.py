#!/usr/bin/env python3
"""Lists C++ functions of src/ and apps/ longer than a limit (default 100 lines), longest first; exit 1 if any.

usage: scripts/function_lengths.py [--limit N] [--allow FILE:FUNCTION ...]
Reads the code as text (comments and string literals removed, braces counted): a function is a brace block
whose head has a parameter list and is not a namespace, class, struct, enum or initialiser; lambdas count
with the function that holds them."""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def strip(src):
    """Comments and string/char literals removed; newlines kept (line numbers stay right)."""
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith('//', i):
            j = src.find('\n', i)
            i = n if j < 0 else j
            continue
        if src.startswith('/*', i):
            j = src.find('*/', i + 2)
            out.append('\n' * src[i:j + 2].count('\n'))
            i = j + 2
            continue
        m = re.match(r'R"([^(]*)\(', src[i:i + 20])
        if m:
            end = ')' + m.group(1) + '"'
            j = src.find(end, i + len(m.group(0)))
            out.append('""' + '\n' * src[i:j + len(end)].count('\n'))
            i = j + len(end)
            continue
        c = src[i]
        if c in '"\'':
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == '\\' else 1
            out.append('""')
            i = j + 1
            continue
        out.append(c)
        i += 1
    return ''.join(out)


def functions(path):
    s = strip(path.read_text())
    stack, last, line = [], 0, 1
    for i, c in enumerate(s):
        if c == '\n':
            line += 1
        elif c == '{':
            head = s[last:i]
            is_fn = (')' in head and not re.search(r'\b(namespace|struct|class|enum|union)\b', head)
                     and not head.strip().endswith('='))
            inside = any(k == 'fn' for k, _, _ in stack)
            name = re.findall(r'([\w:~]+)\s*\(', head)
            stack.append(('fn' if is_fn and not inside else 'blk', line, name[0] if name else '?'))
            last = i + 1
        elif c == '}':
            if stack:
                kind, start, name = stack.pop()
                if kind == 'fn':
                    yield name, start, line - start + 1
            last = i + 1
        elif c == ';':
            last = i + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--limit', type=int, default=100)
    ap.add_argument('--allow', nargs='*', default=['src/io/torch_pickle.cpp:step'],
                    help='FILE:FUNCTION allowed to be longer (default: the pickle opcode switch)')
    a = ap.parse_args()
    long = []
    for p in sorted(list((ROOT / 'src').rglob('*.cpp')) + list((ROOT / 'apps').rglob('*.cpp'))):
        rel = p.relative_to(ROOT).as_posix()
        for name, start, n in functions(p):
            if n > a.limit:
                long.append((n, rel, start, name, f'{rel}:{name}' in a.allow))
    for n, rel, start, name, allowed in sorted(long, reverse=True):
        print(f'{n:5d} lines  {rel}:{start}  {name}{"  (allowed)" if allowed else ""}')
    bad = [x for x in long if not x[4]]
    print(f'{len(bad)} function(s) over {a.limit} lines' + ('' if bad else ' (besides the allowed ones)'))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
