#!/usr/bin/env python3
"""Hot basic blocks of JIT-compiled .NET methods, from a perf profile and the JIT's own listing.

perf cannot annotate JIT code without a jitdump, which the runtime here leaves truncated. This
joins three things instead: the samples' instruction pointers (`perf script -F ip`), the perf map
the runtime writes (DOTNET_PerfMapEnabled=3: /tmp/perf-PID.map, start and size per method) and
the JIT's disassembly (DOTNET_JitDisasm, whose blocks carry their offsets). A method's listing is
the one whose code size matches the map's, so the optimised version is the one annotated.

Usage (bench/tools/profile-event.sh runs all of it):
  jit-hotblocks.py PERF_DATA PERF_MAP DISASM METHOD [METHOD ...] [--share 0.03] [--lines 40]
METHOD is a substring of the method's name; blocks with at least `share` of its samples print.
"""
import argparse
import collections
import re
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("perfmap")
    ap.add_argument("disasm")
    ap.add_argument("methods", nargs="+")
    ap.add_argument("--share", type=float, default=0.03)
    ap.add_argument("--lines", type=int, default=40)
    a = ap.parse_args()

    syms = []
    for line in open(a.perfmap):
        start, size, name = line.split(" ", 2)
        syms.append((int(start, 16), int(size, 16), name.strip()))

    listing = open(a.disasm).read().split("\n")
    out = subprocess.run(["perf", "script", "-i", a.data, "-F", "ip"], capture_output=True, text=True).stdout
    ips = [int(x, 16) for x in out.split()]
    total = max(1, len(ips))

    for method in a.methods:
        for start, size, name in syms:
            if method not in name or "[Tier0]" in name or "Instrumented" in name:
                continue
            hits = collections.Counter(ip - start for ip in ips if start <= ip < start + size)
            n = sum(hits.values())
            if n < 0.005 * total:
                continue
            print(f"===== {name[:110]}: {n} samples, {100 * n / total:.1f} % of all")
            heads = [k for k, l in enumerate(listing) if "Assembly listing" in l and method in l]
            span = None
            for k in heads:
                end = k + 1
                while end < len(listing) and "Assembly listing" not in listing[end]:
                    end += 1
                sizes = [re.search(r"Total bytes of code (\d+)", l) for l in listing[k:end]]
                sizes = [int(m.group(1)) for m in sizes if m]
                if sizes and sizes[0] == size:
                    span = (k, end)
            if span is None:
                print(f"  (no listing of {size} bytes: was the method in DOTNET_JitDisasm?)")
                continue
            blocks, cur = [], None
            for l in listing[span[0]:span[1]]:
                m = re.match(r"(G_M\d+_IG\d+):\s+;; offset=0x([0-9A-F]+)", l)
                if m:
                    cur = [int(m.group(2), 16), m.group(1), []]
                    blocks.append(cur)
                elif cur is not None and l.strip():
                    cur[2].append(l)
            per = collections.Counter()
            for off, c in hits.items():
                owner = max((b for b in blocks if b[0] <= off), key=lambda b: b[0], default=None)
                if owner:
                    per[owner[1]] += c
            for off, label, body in blocks:
                if per[label] >= a.share * n:
                    print(f"--- {label} at +0x{off:x}: {100 * per[label] / n:.1f} % of the method")
                    for l in body[: a.lines]:
                        print(l[:110])


if __name__ == "__main__":
    main()
