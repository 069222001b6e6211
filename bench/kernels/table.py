#!/usr/bin/env python3
"""Markdown tables from bench-kernels JSON lines (one or more files: native, wasm under Node,
wasm in Chromium, each with 1 or more threads).

    python3 bench/kernels/table.py native.json native-mt.json wasm.json wasm-mt.json \\
        chromium.json chromium-mt.json
    python3 bench/kernels/table.py --long native.json wasm.json     # one row per result

Results of the same case in one column (files of repeated runs) count once, the fastest:
best of N, as within a run. Columns: one per (runtime, threads), runtime "native", "Node" (platform wasm without a runtime
field) or the "runtime" field browser.mjs adds ("chromium"); files that do not exist are skipped
with a note. The memcpy row is the bandwidth ceiling of each column. Per shape, one row per
(encoding, activations) with the fastest kernel of each column (its name when a column has several
designs, e.g. the wasm ternary int8 kernels, which also get a row each), and the low-rank layers.
Cells: time per call, weight GB/s (bytes of the weights / time) and GOP/s (2 * rows * cols * ntok
/ time). Then the issue's ratios, per column.
"""
import json
import os
import sys

RUNTIME_NAMES = {"native": "native", "wasm": "wasm Node", "chromium": "wasm Chromium"}
ENC_ORDER = {"f32": 0, "f16": 1, "q8_0": 2, "t2": 3, "bcq": 4}


def load(paths):
    rows, missing = [], []
    for p in paths:
        if not os.path.exists(p):
            missing.append(p)
            continue
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    return rows, missing


def column(r):
    runtime = r.get("runtime") or r["platform"]
    return (runtime, r.get("threads", 1))


def col_name(c):
    runtime, threads = c
    return f"{RUNTIME_NAMES.get(runtime, runtime)} {threads}T"


def col_order(c):
    order = {"native": 0, "wasm": 1, "chromium": 2}
    return (order.get(c[0], 9), c[0], c[1])


def row_key(r):
    """(encoding, activations, layer) of a result; layer is the low-rank kernel name or ''."""
    k = r["kernel"]
    return (r["enc"], r["act"], k if k.startswith("lowrank") else "")


def rank_of(key):
    """0 for a dense layer, r for a low-rank one (they sort after it, by rank)."""
    return int(key[2].split("-r")[1]) if key[2] else 0


def row_label(key):
    enc, act, layer = key
    if layer:
        return f"{enc} {layer.replace('lowrank-r', 'low-rank r=')}"
    if enc in ("t2", "bcq"):
        return f"{enc} {'int8' if act == 'int8' else 'float'} act"
    return enc


def cell(r):
    return f"{r['ms']:.3g} ms<br>{r['weight_gbps']:.2f} GB/s<br>{r['gops']:.1f} GOP/s"


def wide(rows, out):
    cases = [r for r in rows if r.get("enc") != "memcpy"]
    cols = sorted({column(r) for r in rows}, key=col_order)
    head = "| | " + " | ".join(col_name(c) for c in cols) + " |"
    sep = "|---" * (len(cols) + 1) + "|"

    mem = {}
    for r in rows:
        if r.get("enc") == "memcpy":
            c = column(r)
            mem[c] = max(mem.get(c, 0), r["gbps"])
    out.append(head)
    out.append(sep)
    out.append("| memcpy 256 MiB (GB/s copied): the ceiling | "
               + " | ".join(f"{mem[c]:.1f}" if c in mem else "" for c in cols) + " |")
    out.append("")

    # best[(shape, ntok, key, col)] = fastest result; every[...] = all kernels
    best, every = {}, {}
    for r in cases:
        k = ((r["rows"], r["cols"]), r["ntok"], row_key(r), column(r))
        every.setdefault(k, []).append(r)
        if k not in best or r["ms"] < best[k]["ms"]:
            best[k] = r
    shapes = sorted({k[0] for k in best}, key=lambda s: (s[0] * s[1], s))
    for shape in shapes:
        out.append(f"**{shape[0]} x {shape[1]}** (rows x cols = out x in)")
        out.append("")
        out.append("| ntok | layer | " + " | ".join(col_name(c) for c in cols) + " |")
        out.append("|---|---" + "|---" * len(cols) + "|")
        keys = sorted({(k[1], k[2]) for k in best if k[0] == shape},
                      key=lambda nk: (nk[0], ENC_ORDER.get(nk[1][0], 9), rank_of(nk[1]), nk[1]))
        for ntok, key in keys:
            cells, designs = [], set()
            for c in cols:
                b = best.get((shape, ntok, key, c))
                kernels = {a["kernel"] for a in every.get((shape, ntok, key, c), [])}
                if len(kernels) > 1:
                    designs.update(kernels)
                cells.append("" if not b else cell(b) + (f"<br>({b['kernel']})" if len(kernels) > 1 else ""))
            out.append(f"| {ntok} | {row_label(key)} | " + " | ".join(cells) + " |")
            for d in sorted(designs):
                dc = []
                for c in cols:
                    m = [a for a in every.get((shape, ntok, key, c), []) if a["kernel"] == d]
                    dc.append(f"{min(x['ms'] for x in m):.3g} ms" if m else "")
                out.append(f"| {ntok} | &nbsp; {row_label(key)}, {d} | " + " | ".join(dc) + " |")
        out.append("")

    # The ratios, per column, on each shape (same run, same column).
    def t(shape, ntok, key, c):
        b = best.get((shape, ntok, key, c))
        return b["ms"] if b else None

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else ""

    T2I, T2F, F32, Q8, BCQ = ("t2", "int8", ""), ("t2", "f32", ""), ("f32", "f32", ""), ("q8_0", "f32", ""), \
        ("bcq", "int8", "")
    out.append("Ratios (speed-ups, from the times above, each within one column: one runtime and thread count, "
               "the best of its runs where several files give that column):")
    out.append("")
    out.append("| shape | ratio | target | " + " | ".join(col_name(c) for c in cols) + " |")
    out.append("|---|---|---" + "|---" * len(cols) + "|")
    for shape in shapes:
        s = f"{shape[0]}x{shape[1]}"
        lines = [
            ("t2 int8 matvec vs f32 matvec", ">= 5x", lambda c: ratio(t(shape, 1, F32, c), t(shape, 1, T2I, c))),
            ("t2 int8 matvec vs q8_0 matvec", ">= 1.5x", lambda c: ratio(t(shape, 1, Q8, c), t(shape, 1, T2I, c))),
            ("bcq k=2 matvec vs q8_0 matvec", "> 1x", lambda c: ratio(t(shape, 1, Q8, c), t(shape, 1, BCQ, c))),
            ("t2 int8 matvec, this column vs native (same threads)", ">= 0.5x",
             lambda c: ratio(t(shape, 1, T2I, ("native", c[1])), t(shape, 1, T2I, c)) if c[0] != "native" else ""),
            ("t2 int8 matvec, this column vs its 1 thread", ">= 1.7x (4096x4096)",
             lambda c: ratio(t(shape, 1, T2I, (c[0], 1)), t(shape, 1, T2I, c)) if c[1] > 1 else ""),
            ("t2 int8 64-token matmul, vs its 1 thread", "",
             lambda c: ratio(t(shape, 64, T2I, (c[0], 1)), t(shape, 64, T2I, c)) if c[1] > 1 else ""),
            ("t2 float matvec, vs its 1 thread", "",
             lambda c: ratio(t(shape, 1, T2F, (c[0], 1)), t(shape, 1, T2F, c)) if c[1] > 1 else ""),
        ]
        lr = sorted({k[2] for k in best if k[0] == shape and k[2][2]}, key=rank_of)
        for key in lr:
            rank = rank_of(key)
            ideal = rank * (shape[0] + shape[1]) / (shape[0] * shape[1])
            lines.append((f"low-rank r={rank}: time / dense f16 time / ideal {ideal:.3f}", "<= 1.3",
                          lambda c, key=key, ideal=ideal: (
                              f"{t(shape, 1, key, c) / t(shape, 1, ('f16', 'f32', ''), c) / ideal:.2f}"
                              if t(shape, 1, key, c) and t(shape, 1, ("f16", "f32", ""), c) else "")))
        for name, target, f in lines:
            vals = [f(c) for c in cols]
            if any(vals):
                out.append(f"| {s} | {name} | {target} | " + " | ".join(vals) + " |")
    out.append("")


def long(rows, out):
    cases = [r for r in rows if r.get("enc") != "memcpy"]
    for r in rows:
        if r.get("enc") == "memcpy":
            out.append(f"memcpy ({col_name(column(r))}): {r['gbps']:.2f} GB/s copied")
    base = {}
    for r in cases:
        if r["enc"] in ("f32", "q8_0"):
            base[(column(r), r["rows"], r["cols"], r["ntok"], r["enc"])] = r["ms"]
    out.append("")
    out.append("| shape (rows x cols) | ntok | column | enc | act | kernel | ms | weight GB/s | GOP/s | vs f32 | vs q8_0 |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    cases.sort(key=lambda r: (r["rows"] * r["cols"], r["rows"], r["ntok"], col_order(column(r)), r["enc"], r["act"]))
    for r in cases:
        key = (column(r), r["rows"], r["cols"], r["ntok"])
        f32, q8 = base.get(key + ("f32",)), base.get(key + ("q8_0",))
        vs = lambda b: f"{b / r['ms']:.1f}x" if b and r["enc"] in ("t2", "bcq") else ""
        out.append(f"| {r['rows']}x{r['cols']} | {r['ntok']} | {col_name(column(r))} | {r['enc']} | {r['act']} "
                   f"| {r['kernel']} | {r['ms']:.3f} | {r['weight_gbps']:.2f} | {r['gops']:.1f} | {vs(f32)} | {vs(q8)} |")


def main(argv):
    mode = wide
    if argv and argv[0] == "--long":
        mode, argv = long, argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    rows, missing = load(argv)
    for p in missing:
        print(f"table.py: {p} does not exist, skipped", file=sys.stderr)
    if not rows:
        print("table.py: no results", file=sys.stderr)
        return 1
    out = []
    mode(rows, out)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
