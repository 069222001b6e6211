#!/usr/bin/env python3
"""Markdown tables from bench-kernels JSON lines (one or more files, e.g. a native and a wasm run).

    python3 bench/kernels/table.py native.json wasm.json

One row per (shape, ntok, encoding, activations, kernel, platform): time per call, weight GB/s,
GOP/s, and the speed-up of each ternary kernel over f32 and q8_0 on the same platform and shape.
"""
import json
import sys


def main(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    cases = [r for r in rows if r.get("enc") != "memcpy"]
    for r in rows:
        if r.get("enc") == "memcpy":
            print(f"memcpy ({r['platform']}): {r['gbps']:.2f} GB/s copied")
    base = {}
    for r in cases:
        if r["enc"] in ("f32", "q8_0"):
            base[(r["platform"], r["rows"], r["cols"], r["ntok"], r["enc"])] = r["ms"]
    print()
    print("| shape (rows x cols) | ntok | platform | enc | act | kernel | ms | weight GB/s | GOP/s | vs f32 | vs q8_0 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cases.sort(key=lambda r: (r["rows"] * r["cols"], r["rows"], r["ntok"], r["platform"], r["enc"], r["act"]))
    for r in cases:
        key = (r["platform"], r["rows"], r["cols"], r["ntok"])
        f32, q8 = base.get(key + ("f32",)), base.get(key + ("q8_0",))
        vs = lambda b: f"{b / r['ms']:.1f}x" if b and r["enc"] == "t2" else ""
        print(f"| {r['rows']}x{r['cols']} | {r['ntok']} | {r['platform']} | {r['enc']} | {r['act']} | {r['kernel']} "
              f"| {r['ms']:.3f} | {r['weight_gbps']:.2f} | {r['gops']:.1f} | {vs(f32)} | {vs(q8)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
