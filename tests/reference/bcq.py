"""Binary-coded quantization (ShiftAddLLM), written from the algorithm as
converter/README.md and trlc.h describe it, in numpy, so the C quantizer
(converter/quant.c) can be checked against an independent implementation.

Per row and group of g columns, w ~ sum_{i<k} a_i b_i, b_i in {-1, +1}; with
column weights d (activation statistics E[x_c^2]; None: all 1) the objective is
sum_c d_c (w_c - sum_i a_i b_ic)^2.

- Planes are added one at a time. Plane i is greedy on the residual r of the
  planes so far: b = sign(r) (sign(0) = +1), a = sum d|r| / sum d.
- Then ITERS rounds of alternating least squares over planes 0..i: the scales
  solve the weighted normal equations G a = h (G_ij = sum d b_i b_j,
  h_i = sum d w b_i), kept only if they do not raise the error; then every
  column takes the best of the 2^(i+1) sign combinations (ties: the later
  combination in binary order, i.e. more +1 in the later planes); stop when
  the error stops falling by a relative 1e-12.
- Finally the scales become |a| rounded to f16 (or the nearest power of two
  in 2^-14..2^15 with pow2) and the signs are re-picked for them.
- A group whose weights d sum to 0 is fitted unweighted.

    scales, signs, deq = quantize_row(w, bits, group, d=None, pow2=False)

scales: (n_groups, bits) float32; signs: (bits, cols) int8; deq: float32 row.

Command line (for the C test): bcq.py IN OUT with IN a little-endian file
  int32 rows, cols, bits, group, pow2, has_d; float32 w[rows*cols]; float32 d[cols] if has_d
and OUT: float32 scales[rows*n_groups*bits], int8 signs[rows*bits*cols], float32 deq[rows*cols].
"""

import struct
import sys

import numpy as np

ITERS = 4


def _solve(g, h):
    """Gaussian elimination with partial pivoting, as quant.c's solve(); None if singular."""
    k = len(h)
    g = g.copy()
    h = h.copy()
    scale = max(abs(g[i, i]) for i in range(k))
    for c in range(k):
        piv = c
        for r in range(c + 1, k):
            if abs(g[r, c]) > abs(g[piv, c]):
                piv = r
        if not abs(g[piv, c]) > 1e-9 * scale:
            return None
        if piv != c:
            g[[c, piv]] = g[[piv, c]]
            h[[c, piv]] = h[[piv, c]]
        for r in range(c + 1, k):
            f = g[r, c] / g[c, c]
            g[r, c:] -= f * g[c, c:]
            h[r] -= f * h[c]
    a = np.zeros(k)
    for c in range(k - 1, -1, -1):
        a[c] = (h[c] - np.dot(g[c, c + 1:], a[c + 1:])) / g[c, c]
    return a


def _combos(k):
    """(2^k, k) signs of every combination m: bit i of m set means +1 in plane i."""
    m = np.arange(1 << k)
    return np.where((m[:, None] >> np.arange(k)[None, :]) & 1, 1.0, -1.0)


def _pick_signs(x, d, a):
    k = len(a)
    v = _combos(k) @ a  # (2^k,)
    e = np.abs(x[:, None] - v[None, :])  # (n, 2^k)
    # the last minimum wins on ties (quant.c: e <= best)
    best = (1 << k) - 1 - np.argmin(e[:, ::-1], axis=1)
    be = e[np.arange(len(x)), best]
    b = _combos(k)[best].T.astype(np.int8)  # (k, n)
    return b, float(np.sum(d * be * be))


def _sq_error(x, d, a, b):
    r = x - a @ b.astype(np.float64)
    return float(np.sum(d * r * r))


def _refine(x, d, a, b):
    err = _sq_error(x, d, a, b)
    for _ in range(ITERS):
        bf = b.astype(np.float64)
        g = (bf * d[None, :]) @ bf.T
        h = bf @ (d * x)
        na = _solve(g, h)
        if na is not None:
            e = _sq_error(x, d, na, b)
            if e <= err:
                a, err = na, e
        b, e = _pick_signs(x, d, a)
        if not e < err * (1.0 - 1e-12):
            err = e
            break
        err = e
    return a, b, err


def _f16(v):
    return float(np.float32(np.float16(np.float32(v))))


def _pow2(v):
    if not v > 0.0:
        return 2.0 ** -14
    m, e = np.frexp(v)
    if m >= 0.75:
        e += 1
    e -= 1
    return 2.0 ** min(max(int(e), -14), 15)


def quantize_row(w, bits, group, d=None, pow2=False):
    w = np.asarray(w, dtype=np.float32)
    cols = w.shape[0]
    ng = -(-cols // group)
    scales = np.zeros((ng, bits), np.float32)
    signs = np.zeros((bits, cols), np.int8)
    deq = np.zeros(cols, np.float32)
    for gi in range(ng):
        c0 = gi * group
        x32 = w[c0:c0 + group]
        x = x32.astype(np.float64)
        n = len(x)
        dg = np.ones(n) if d is None else np.asarray(d[c0:c0 + n], dtype=np.float32).astype(np.float64)
        if not np.sum(dg) > 0.0:
            dg = np.ones(n)
        a = np.zeros(0)
        b = np.zeros((0, n), np.int8)
        for i in range(bits):
            s = a @ b.astype(np.float64) if i else np.zeros(n)
            r = (x - s).astype(np.float32)
            bi = np.where(r >= 0, 1, -1).astype(np.int8)
            ai = float(np.sum(dg * np.abs(r.astype(np.float64))) / np.sum(dg))
            a = np.append(a, ai)
            b = np.vstack([b, bi[None, :]])
            a, b, _ = _refine(x, dg, a, b)
        v = np.minimum(np.abs(a), 65504.0)
        a = np.array([_pow2(t) if pow2 else _f16(t) for t in v])
        b, _ = _pick_signs(x, dg, a)
        scales[gi] = a.astype(np.float32)
        signs[:, c0:c0 + n] = b
        acc = np.zeros(n, np.float32)
        for i in range(bits):
            acc = (acc + np.float32(a[i]) * b[i].astype(np.float32)).astype(np.float32)
        deq[c0:c0 + n] = acc
    return scales, signs, deq


def main(argv):
    src, dst = argv
    with open(src, "rb") as f:
        raw = f.read()
    rows, cols, bits, group, pow2, has_d = struct.unpack_from("<6i", raw, 0)
    at = 24
    w = np.frombuffer(raw, "<f4", rows * cols, at).reshape(rows, cols)
    at += 4 * rows * cols
    d = np.frombuffer(raw, "<f4", cols, at) if has_d else None
    out_s, out_b, out_q = [], [], []
    for r in range(rows):
        s, b, q = quantize_row(w[r], bits, group, d, bool(pow2))
        out_s.append(s.ravel())
        out_b.append(b.ravel())
        out_q.append(q)
    with open(dst, "wb") as f:
        f.write(np.concatenate(out_s).astype("<f4").tobytes())
        f.write(np.concatenate(out_b).astype(np.int8).tobytes())
        f.write(np.concatenate(out_q).astype("<f4").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
