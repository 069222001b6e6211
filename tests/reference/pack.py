"""Read Trillium model packs (docs/FORMAT.md, versions 1 and 2) and run them.

Written from FORMAT.md alone, not from the C reader or the converter, so a
golden computed here checks both the converter's bytes and the core's kernels.

    p = Pack("mypack")                 # manifest checks, chunk sha256 on first use
    p.config                           # model.Config
    p.dense("blk.0.attn_q.weight")     # any tensor decoded to float64
    model = PackModel(p, rank_slices=None)
    logits = model.forward([1, 2, 3])  # (T, vocab) float64
    gen, gaps = model.greedy([1, 2, 3], 8)

Decoded forms (Pack.tensor): f32 / f16 / q8_0 -> float64 ndarray; t2 / t1 ->
Ternary (trits and scales); bcq -> Bcq (sign planes and f16 scales).

Forward numerics, per linear layer (everything else is model.forward, float64):
- dense (f32, f16, q8_0): y = W x; when config.act_quant is "int8", x is first
  replaced by q * (a / 127) (model.int8_quantize), except for the output head;
  a q8_0 matrix then sees model.q8_0_act(x) (q8_0 x q8_0, as ggml).
- ternary, act_quant "float": y = sum over scale blocks of s_blk * (T_blk . x).
- ternary, act_quant "int8": y = (a / 127) * sum_blk s_blk * (T_blk . q), the
  dots exact integers.
- bcq: always int8 activations (FORMAT.md gives the kernel no float mode):
  y = (a / 127) * sum over (group, plane) of f32(scale) * (exact sum of +-q).
- low-rank: y = base x + sum over the first `rank_slices` slices of U_S (V_S x);
  no base: only the slices. The base sees its encoding's input (q * (a / 127)
  for a dense base in an int8 model), the slices always the float x: FORMAT.md
  gives them "the float encodings' numerics" and no int8 step.
The output head never quantizes its input (a bcq head still does: that is the
bcq kernel). The integer dots run as float64 matmuls of integer values: every
partial sum is an integer below 2^53, so they are exact in any order.
"""

import hashlib
import json
import os
import re
import struct

import numpy as np

import model as M

DENSE = ("f32", "f16", "q8_0")
TERNARY = ("t2", "t1")
ENCODINGS = DENSE + TERNARY + ("bcq",)
V2_ENCODINGS = TERNARY + ("bcq",)
VERSIONS = (1, 2)
LINEAR = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
PARAM_KEYS = ("bits", "group", "pow2", "scale_axis", "scale_blocks")

_SLICE = re.compile(r"^(blk\.(\d+)\.([a-z_]+))\.lr_([uv])\.(\d+)$")


class PackError(ValueError):
    pass


def _ceil_div(a, b):
    return -(-a // b)


# ---------------------------------------------------------------- sizes


def ternary_n_scales(params, rows, cols, where="params"):
    axis, k = params["scale_axis"], params["scale_blocks"]
    if axis == 0:
        return 1
    if axis == 1:
        return rows
    if axis in (2, 3):
        if not 1 <= k <= 64:
            raise PackError("%s.scale_blocks = %d, must be 1..64" % (where, k))
        n = rows if axis == 2 else cols
        if n % k:
            raise PackError("%s.scale_blocks = %d does not divide %s %d"
                            % (where, k, "rows" if axis == 2 else "cols", n))
        if axis == 3 and (cols // k) % 128:
            raise PackError("%s.scale_blocks = %d: cols/k = %d is not a multiple of 128" % (where, k, cols // k))
        return k
    raise PackError("%s.scale_axis = %d, must be 0..3" % (where, axis))


def check_bcq_params(params, where="params"):
    k, g = params["bits"], params["group"]
    if not 1 <= k <= 4:
        raise PackError("%s.bits = %d, must be 1..4" % (where, k))
    if not (32 <= g <= 256 and g % 32 == 0):
        raise PackError("%s.group = %d, must be 32..256 and a multiple of 32" % (where, g))
    if params["pow2"] not in (0, 1):
        raise PackError("%s.pow2 = %d, must be 0 or 1" % (where, params["pow2"]))


def row_bytes(enc, cols, params=None):
    """Bytes of one row's weights (for t2/t1 the codes only, without scales)."""
    if enc == "f32":
        return 4 * cols
    if enc == "f16":
        return 2 * cols
    if enc == "q8_0":
        return 34 * _ceil_div(cols, 32)
    if enc == "t2":
        return 32 * _ceil_div(cols, 128)
    if enc == "t1":
        return _ceil_div(cols, 5)
    if enc == "bcq":
        k, g = params["bits"], params["group"]
        ng = _ceil_div(cols, g)
        return k * ng * g // 8 + 2 * k * ng
    raise PackError("unknown encoding %r" % enc)


def tensor_bytes(enc, rows, cols, params):
    n = rows * row_bytes(enc, cols, params)
    if enc in TERNARY:
        n += 4 * ternary_n_scales(params, rows, cols)
    return n


# -------------------------------------------------------------- decoding


def _u8(buf, n, what):
    a = np.frombuffer(buf, dtype=np.uint8)
    if a.size != n:
        raise PackError("%s: %d bytes, expected %d" % (what, a.size, n))
    return a


def decode_dense(enc, buf, rows, cols, what="tensor"):
    """f32 / f16 / q8_0 bytes of a (rows, cols) matrix -> float64."""
    a = _u8(buf, rows * row_bytes(enc, cols), what)
    if enc == "f32":
        w = a.view("<f4")
    elif enc == "f16":
        w = a.view("<f2")
    elif enc == "q8_0":
        nb = _ceil_div(cols, 32)
        blk = a.reshape(rows, nb, 34)
        d = np.ascontiguousarray(blk[:, :, :2]).view("<f2").astype(np.float64)  # (rows, nb, 1)
        q = np.ascontiguousarray(blk[:, :, 2:]).view(np.int8).astype(np.float64)
        return (d * q).reshape(rows, nb * 32)[:, :cols].copy()
    else:
        raise PackError("%s: %r is not a dense encoding" % (what, enc))
    return w.astype(np.float64).reshape(rows, cols)


def t2_codes(buf, rows, cols, what="t2"):
    """Codes u = T + 1 of a t2 matrix -> uint8 (rows, cols), padding checked."""
    nb = _ceil_div(cols, 128)
    a = _u8(buf, rows * nb * 32, what).reshape(rows, nb, 1, 32)
    # byte j of block b, bits 2k..2k+1: column 128b + 32k + j
    u = (a >> (2 * np.arange(4, dtype=np.uint8))[None, None, :, None]) & 3
    u = u.reshape(rows, nb * 128)
    if np.any(u == 3):
        r, c = np.argwhere(u == 3)[0]
        raise PackError("%s: code 3 (not a trit) at row %d, column %d" % (what, r, c))
    if np.any(u[:, cols:] != 1):
        raise PackError("%s: padding columns past %d must hold code 1" % (what, cols))
    return u[:, :cols]


def t1_codes(buf, rows, cols, what="t1"):
    """Codes of a t1 matrix (5 per byte, u0 + 3u1 + 9u2 + 27u3 + 81u4)."""
    nb = _ceil_div(cols, 5)
    a = _u8(buf, rows * nb, what).reshape(rows, nb, 1)
    if np.any(a > 242):
        raise PackError("%s: byte %d > 242 is not 5 trits" % (what, int(a.max())))
    u = (a // np.array([1, 3, 9, 27, 81], dtype=np.uint8)[None, None, :]) % 3
    u = u.reshape(rows, nb * 5)
    if np.any(u[:, cols:] != 1):
        raise PackError("%s: padding columns past %d must hold code 1" % (what, cols))
    return u[:, :cols]


class Ternary:
    """W = scales * T. trits int8 (rows, cols) in {-1, 0, 1}; scales float32
    (n_scales); axis / blocks from params. col_edges[b]..col_edges[b+1] is
    scale column block b; block_scales (rows, n_col_blocks) the scale of each
    (row, column block)."""

    def __init__(self, trits, scales, axis, blocks=0):
        self.trits = np.asarray(trits, dtype=np.int8)
        self.scales = np.asarray(scales, dtype=np.float32)
        self.axis, self.blocks = axis, blocks
        rows, cols = self.trits.shape
        s = self.scales.astype(np.float64)
        if axis == 0:
            self.col_edges, bs = [0, cols], np.full((rows, 1), s[0])
        elif axis == 1:
            self.col_edges, bs = [0, cols], s[:, None]
        elif axis == 2:
            self.col_edges, bs = [0, cols], s[np.arange(rows) // (rows // blocks)][:, None]
        elif axis == 3:
            w = cols // blocks
            self.col_edges, bs = list(range(0, cols + 1, w)), np.tile(s[None, :], (rows, 1))
        else:
            raise PackError("scale_axis %d" % axis)
        self.block_scales = bs
        self.shape = (rows, cols)

    def dense(self):
        out = np.empty(self.shape)
        for b in range(len(self.col_edges) - 1):
            c0, c1 = self.col_edges[b], self.col_edges[b + 1]
            out[:, c0:c1] = self.block_scales[:, b:b + 1] * self.trits[:, c0:c1]
        return out

    def apply(self, x, act):
        """x (T, cols) float64 -> (T, rows)."""
        if act == "int8":
            q, a = M.int8_quantize(x)
            x = q.astype(np.float64)
        if not hasattr(self, "_tf"):
            self._tf = self.trits.astype(np.float64)
        t = self._tf
        y = np.zeros((x.shape[0], self.shape[0]))
        for b in range(len(self.col_edges) - 1):
            c0, c1 = self.col_edges[b], self.col_edges[b + 1]
            y += self.block_scales[:, b][None, :] * (x[:, c0:c1] @ t[:, c0:c1].T)
        if act == "int8":
            y *= (a.astype(np.float64) / 127.0)[:, None]
        return y


def decode_ternary(enc, buf, rows, cols, params, what="ternary"):
    n_codes = rows * row_bytes(enc, cols)
    n_scales = ternary_n_scales(params, rows, cols, what + ".params")
    a = _u8(buf, n_codes + 4 * n_scales, what)
    codes = (t2_codes if enc == "t2" else t1_codes)(a[:n_codes].tobytes(), rows, cols, what)
    scales = a[n_codes:].view("<f4")
    if not np.all(np.isfinite(scales)):
        raise PackError("%s: a scale is not finite" % what)
    return Ternary(codes.astype(np.int8) - 1, scales, params["scale_axis"], params["scale_blocks"])


class Bcq:
    """W[r][c] = sum_i scales[r, c // group, i] * signs[r, i, c].
    signs int8 (rows, bits, cols_pad) in {-1, +1}; scales float16 (rows, n_groups, bits)."""

    def __init__(self, signs, scales, group, cols, pow2=0):
        self.signs = np.asarray(signs, dtype=np.int8)
        self.scales = np.asarray(scales, dtype=np.float16)
        self.group, self.cols, self.pow2 = group, cols, pow2
        self.shape = (self.signs.shape[0], cols)

    def dense(self):
        rows, k, cp = self.signs.shape
        ng = cp // self.group
        s = self.scales.astype(np.float64)  # (rows, ng, k)
        b = self.signs.reshape(rows, k, ng, self.group).astype(np.float64)
        w = np.einsum("rgi,rigc->rgc", s, b).reshape(rows, cp)
        return w[:, :self.cols].copy()

    def apply(self, x, act=None):
        """Always int8 activations: FORMAT.md's bcq kernel numerics."""
        q, a = M.int8_quantize(x)
        rows, k, cp = self.signs.shape
        ng = cp // self.group
        qp = np.zeros((q.shape[0], cp))
        qp[:, :self.cols] = q  # padded activations are 0
        if not hasattr(self, "_bf"):
            self._bf = self.signs.reshape(rows, k, ng, self.group).astype(np.float64)
        b = self._bf
        d = np.einsum("rigc,tgc->trgi", b, qp.reshape(-1, ng, self.group))  # exact integers
        s = self.scales.astype(np.float64)  # f32(f16) is exact in float64
        y = np.einsum("trgi,rgi->tr", d, s)
        return y * (a.astype(np.float64) / 127.0)[:, None]


def decode_bcq(buf, rows, cols, params, what="bcq"):
    check_bcq_params(params, what + ".params")
    k, g = params["bits"], params["group"]
    ng = _ceil_div(cols, g)
    cp = ng * g
    rb = row_bytes("bcq", cols, params)
    a = _u8(buf, rows * rb, what).reshape(rows, rb)
    planes = a[:, :k * cp // 8].reshape(rows, k, cp // 8)
    bits = np.unpackbits(planes, axis=2, bitorder="little")  # bit j of byte b -> column 8b + j
    if np.any(bits[:, :, cols:]):
        raise PackError("%s: padding columns past %d must hold bit 0" % (what, cols))
    scales = np.ascontiguousarray(a[:, k * cp // 8:]).view("<f2").reshape(rows, ng, k)
    if not np.all(np.isfinite(scales)):
        raise PackError("%s: a scale is not finite" % what)
    if params["pow2"]:
        m, _ = np.frexp(np.abs(scales.astype(np.float64)))
        if np.any(m != 0.5):
            raise PackError("%s: params.pow2 = 1 but a scale is not a power of two" % what)
    return Bcq(bits.astype(np.int8) * 2 - 1, scales, g, cols, params["pow2"])


# -------------------------------------------------------------- the pack


CONFIG_INTS = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "vocab_size",
               "max_seq_len")
CONFIG_ENUMS = dict(arch=("llama", "bitnet"), mlp=("swiglu", "relu2"), rope_style=("interleaved", "half"),
                    act_quant=("float", "int8"))
CONFIG_BOOLS = ("tied_embeddings", "sub_norms")


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def config_from_manifest(c, where="manifest.json: config"):
    if not isinstance(c, dict):
        raise PackError("%s is not an object" % where)
    known = set(CONFIG_INTS) | set(CONFIG_ENUMS) | set(CONFIG_BOOLS) | {"rope_theta", "norm_eps"}
    unknown = sorted(set(c) - known)
    if unknown:
        raise PackError("%s.%s: unknown field (the reference does not model it)" % (where, unknown[0]))
    kw = {}
    for k in CONFIG_INTS:
        if k not in c:
            if k == "head_dim":
                continue
            raise PackError("%s.%s is missing" % (where, k))
        if not _int(c[k]) or c[k] <= 0:
            raise PackError("%s.%s = %r, must be a positive integer" % (where, k, c[k]))
        kw[k] = c[k]
    kw.setdefault("head_dim", kw["dim"] // kw["n_heads"])
    for k, allowed in CONFIG_ENUMS.items():
        if c.get(k) not in allowed:
            raise PackError("%s.%s = %r, must be one of %s" % (where, k, c.get(k), ", ".join(allowed)))
        kw[k] = c[k]
    for k in CONFIG_BOOLS:
        v = c.get(k, False)
        if not isinstance(v, bool):
            raise PackError("%s.%s = %r, must be true or false" % (where, k, v))
        kw[k] = v
    for k, default in (("rope_theta", 10000.0), ("norm_eps", 1e-5)):
        v = c.get(k, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise PackError("%s.%s = %r, must be a positive number" % (where, k, v))
        kw[k] = float(v)
    if kw["n_heads"] % kw["n_kv_heads"]:
        raise PackError("%s: n_heads %d is not a multiple of n_kv_heads %d" % (where, kw["n_heads"], kw["n_kv_heads"]))
    if kw["head_dim"] % 2:
        raise PackError("%s.head_dim = %d is odd" % (where, kw["head_dim"]))
    return M.Config(**kw)


def expected_tensors(cfg):
    """name -> shape of every tensor a pack of this config may hold; the
    linear layers of the blocks may be a weight, rank slices, or both."""
    return M.expected_shapes(cfg)


class Pack:
    def __init__(self, path, verify=True):
        self.path = path
        self.verify = verify
        self._data = {}
        mpath = os.path.join(path, "manifest.json")
        try:
            with open(mpath, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise PackError("%s: %s" % (mpath, e.strerror or e))
        try:
            m = json.loads(raw.decode("utf-8"), parse_constant=self._no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PackError("%s: not JSON: %s" % (mpath, e))
        self.where = mpath
        self.manifest = m
        if not isinstance(m, dict) or m.get("format") != "trillium-pack":
            fmt = m.get("format") if isinstance(m, dict) else m
            raise PackError("%s: format is %r, not \"trillium-pack\"" % (mpath, fmt))
        v = m.get("version")
        if not _int(v) or v not in VERSIONS:
            raise PackError("%s: this pack needs format version %r; the reference reads %s"
                            % (mpath, v, ", ".join(map(str, VERSIONS))))
        self.version = v
        self.config = config_from_manifest(m.get("config"), mpath + ": config")
        self._read_chunks(m.get("chunks"))
        self._read_tensors(m.get("tensors"))
        self._read_tokenizer(m.get("tokenizer"))
        self._read_variants(m.get("variants"))
        self._check_model()

    @staticmethod
    def _no_constant(name):
        raise PackError("NaN/Infinity are not JSON (%s)" % name)

    # -- manifest sections

    def _read_chunks(self, chunks):
        w = self.where
        if not isinstance(chunks, list) or not chunks:
            raise PackError("%s: chunks must be a non-empty list" % w)
        self.chunks = []
        for i, c in enumerate(chunks):
            cw = "%s: chunks[%d]" % (w, i)
            if not isinstance(c, dict):
                raise PackError("%s is not an object" % cw)
            f = c.get("file")
            if not isinstance(f, str) or not f or "/" in f or "\\" in f or f in (".", "..") or "\0" in f:
                raise PackError("%s.file = %r is not a plain file name" % (cw, f))
            if not _int(c.get("bytes")) or c["bytes"] < 0:
                raise PackError("%s.bytes = %r" % (cw, c.get("bytes")))
            h = c.get("sha256")
            if not isinstance(h, str) or not re.fullmatch(r"[0-9a-f]{64}", h):
                raise PackError("%s.sha256 = %r is not 64 lowercase hex digits" % (cw, h))
            tier = c.get("tier", 0)
            if not _int(tier) or tier < 0:
                raise PackError("%s.tier = %r" % (cw, tier))
            self.chunks.append(dict(file=f, bytes=c["bytes"], sha256=h, tier=tier))

    def _span(self, e, where, nbytes):
        ch, off = e.get("chunk"), e.get("offset")
        if not _int(ch) or not 0 <= ch < len(self.chunks):
            raise PackError("%s.chunk = %r, the pack has %d chunks" % (where, ch, len(self.chunks)))
        if not _int(off) or off < 0 or off % 64:
            raise PackError("%s.offset = %r, must be a multiple of 64" % (where, off))
        if off + nbytes > self.chunks[ch]["bytes"]:
            raise PackError("%s: offset %d + bytes %d > %s's %d bytes"
                            % (where, off, nbytes, self.chunks[ch]["file"], self.chunks[ch]["bytes"]))
        return ch, off

    def _read_tensors(self, tensors):
        w = self.where
        if not isinstance(tensors, list):
            raise PackError("%s: tensors must be a list" % w)
        self.tensors = {}
        self.order = []
        for i, t in enumerate(tensors):
            tw = "%s: tensors[%d]" % (w, i)
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                raise PackError("%s: no name" % tw)
            name = t["name"]
            tw = "%s (%s)" % (tw, name)
            if name in self.tensors:
                raise PackError("%s: duplicate name" % tw)
            enc = t.get("encoding")
            if enc not in ENCODINGS:
                raise PackError("%s.encoding = %r is unknown" % (tw, enc))
            if enc in V2_ENCODINGS and self.version < 2:
                raise PackError("%s.encoding %s needs format version 2" % (tw, enc))
            shape = t.get("shape")
            if (not isinstance(shape, list) or len(shape) not in (1, 2)
                    or not all(_int(s) and s > 0 for s in shape)):
                raise PackError("%s.shape = %r, must be [rows, cols] or [n] of positive integers" % (tw, shape))
            rows, cols = (1, shape[0]) if len(shape) == 1 else shape
            params = {k: 0 for k in PARAM_KEYS}
            p = t.get("params")
            if p is not None:
                if self.version < 2:
                    raise PackError("%s.params needs format version 2" % tw)
                if not isinstance(p, dict):
                    raise PackError("%s.params is not an object" % tw)
                for k, v in p.items():
                    if k not in PARAM_KEYS:
                        raise PackError("%s.params.%s is unknown" % (tw, k))
                    if not _int(v):
                        raise PackError("%s.params.%s = %r is not an integer" % (tw, k, v))
                    params[k] = v
            if enc in DENSE and any(params.values()):
                raise PackError("%s.params: %s has no parameters" % (tw, enc))
            if enc == "bcq":
                check_bcq_params(params, tw + ".params")
            if enc in TERNARY:
                ternary_n_scales(params, rows, cols, tw + ".params")
            if enc in V2_ENCODINGS and len(shape) != 2:
                raise PackError("%s: %s needs a matrix" % (tw, enc))
            want = tensor_bytes(enc, rows, cols, params)
            if t.get("bytes") != want:
                raise PackError("%s.bytes = %r, %s %s needs %d" % (tw, t.get("bytes"), enc, shape, want))
            ch, off = self._span(t, tw, want)
            self.tensors[name] = dict(name=name, encoding=enc, shape=tuple(shape), rows=rows, cols=cols,
                                      params=params, chunk=ch, offset=off, bytes=want, where=tw)
            self.order.append(name)

    def _read_tokenizer(self, tok):
        self.tokenizer = None
        if tok is None:
            return
        tw = self.where + ": tokenizer"
        if not isinstance(tok, dict):
            raise PackError("%s is not an object" % tw)
        if tok.get("kind") not in ("spm", "bpe_gpt2"):
            raise PackError("%s.kind = %r" % (tw, tok.get("kind")))
        n = tok.get("bytes")
        if not _int(n) or n <= 0:
            raise PackError("%s.bytes = %r" % (tw, n))
        ch, off = self._span(tok, tw, n)
        self.tokenizer = dict(tok, chunk=ch, offset=off, bytes=n)

    def _read_variants(self, variants):
        vw = self.where + ": variants"
        if variants is None:
            self.variants = []
            return
        if not isinstance(variants, list):
            raise PackError("%s is not a list" % vw)
        tiers = {c["tier"] for c in self.chunks}
        for i, v in enumerate(variants):
            if not isinstance(v, dict) or not isinstance(v.get("tiers"), list):
                raise PackError("%s[%d]: no tiers list" % (vw, i))
            for t in v["tiers"]:
                if t not in tiers:
                    raise PackError("%s[%d].tiers: no chunk has tier %r" % (vw, i, t))
            want = sum(c["bytes"] for c in self.chunks if c["tier"] in v["tiers"])
            if v.get("download_bytes") != want:
                raise PackError("%s[%d].download_bytes = %r, its tiers' chunks hold %d"
                                % (vw, i, v.get("download_bytes"), want))
        self.variants = variants

    def _check_model(self):
        cfg = self.config
        shapes = expected_tensors(cfg)
        slices = {}  # layer prefix -> {S: {"u": name, "v": name}}
        for name, t in self.tensors.items():
            m = _SLICE.match(name)
            if m:
                prefix, layer, kind, uv, s = m.group(1), int(m.group(2)), m.group(3), m.group(4), int(m.group(5))
                if self.version < 2:
                    raise PackError("%s: rank slices need format version 2" % t["where"])
                if kind not in LINEAR or layer >= cfg.n_layers or m.group(5) != str(s):
                    raise PackError("%s: not a rank slice of a block's linear layer" % t["where"])
                if t["encoding"] not in DENSE:
                    raise PackError("%s: rank slices must be f32, f16 or q8_0, not %s" % (t["where"], t["encoding"]))
                slices.setdefault(prefix, {}).setdefault(s, {})[uv] = name
                continue
            if name not in shapes:
                raise PackError("%s: unknown tensor name" % t["where"])
            if t["shape"] != shapes[name]:
                raise PackError("%s.shape = %s, the config needs %s"
                                % (t["where"], list(t["shape"]), list(shapes[name])))
            if len(t["shape"]) == 1 and t["encoding"] != "f32":
                raise PackError("%s: vectors are f32, not %s" % (t["where"], t["encoding"]))
        self.slices = {}
        for prefix, by_s in slices.items():
            w = shapes[prefix + ".weight"]
            out = []
            for s in range(len(by_s)):
                if s not in by_s:
                    raise PackError("%s: rank slices are not numbered 0..%d" % (self.where, len(by_s) - 1))
                pair = by_s[s]
                for uv in "uv":
                    if uv not in pair:
                        raise PackError("%s: %s.lr_%s.%d is missing (its partner is there)"
                                        % (self.where, prefix, uv, s))
                tu, tv = self.tensors[pair["u"]], self.tensors[pair["v"]]
                if len(tu["shape"]) != 2 or len(tv["shape"]) != 2 or tu["rows"] != tv["rows"]:
                    raise PackError("%s: %s and %s must be [r, out] and [r, in] with the same r"
                                    % (self.where, pair["u"], pair["v"]))
                if tu["cols"] != w[0] or tv["cols"] != w[1]:
                    raise PackError("%s: %s is %s and %s is %s; the layer is (out %d, in %d)"
                                    % (self.where, pair["u"], list(tu["shape"]), pair["v"], list(tv["shape"]),
                                       w[0], w[1]))
                out.append((pair["u"], pair["v"]))
            self.slices[prefix] = out
        for name in shapes:
            prefix = name[:-len(".weight")]
            if name not in self.tensors and prefix not in self.slices:
                raise PackError("%s: tensor %s is missing" % (self.where, name))

    # -- bytes

    def chunk(self, i):
        if i not in self._data:
            c = self.chunks[i]
            p = os.path.join(self.path, c["file"])
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise PackError("%s: %s" % (p, e.strerror or e))
            if len(data) != c["bytes"]:
                raise PackError("%s: %d bytes, the manifest says %d" % (p, len(data), c["bytes"]))
            if self.verify and hashlib.sha256(data).hexdigest() != c["sha256"]:
                raise PackError("%s: sha256 %s, the manifest says %s"
                                % (p, hashlib.sha256(data).hexdigest(), c["sha256"]))
            self._data[i] = data
        return self._data[i]

    def raw(self, name):
        t = self.tensors[name]
        return self.chunk(t["chunk"])[t["offset"]:t["offset"] + t["bytes"]]

    def tokenizer_blob(self):
        if self.tokenizer is None:
            raise PackError("%s: the pack has no tokenizer" % self.where)
        t = self.tokenizer
        return self.chunk(t["chunk"])[t["offset"]:t["offset"] + t["bytes"]]

    # -- decoded tensors

    def tensor(self, name):
        """-> float64 ndarray (dense encodings; vectors 1-D), Ternary or Bcq."""
        if name not in self.tensors:
            raise PackError("%s: no tensor %s" % (self.where, name))
        t = self.tensors[name]
        buf, enc, rows, cols, w = self.raw(name), t["encoding"], t["rows"], t["cols"], t["where"]
        if enc in DENSE:
            a = decode_dense(enc, buf, rows, cols, w)
            return a.reshape(t["shape"])
        if enc in TERNARY:
            return decode_ternary(enc, buf, rows, cols, t["params"], w)
        return decode_bcq(buf, rows, cols, t["params"], w)

    def dense(self, name):
        t = self.tensor(name)
        return t if isinstance(t, np.ndarray) else t.dense()

    def effective(self, name, rank_slices=None):
        """A block linear layer's W_eff = base (if present) + sum over the
        first rank_slices (None: all) slices of U_S^T @ V_S, float64."""
        prefix = name[:-len(".weight")]
        rows, cols = expected_tensors(self.config)[name]
        w = self.dense(name) if name in self.tensors else np.zeros((rows, cols))
        for u, v in _active(self.slices.get(prefix, []), rank_slices):
            w = w + self.dense(u).T @ self.dense(v)
        return w


def _active(slices, n):
    return slices if n is None or n < 0 else slices[:n]


# ------------------------------------------------------------- forward


class Linear:
    """One linear layer of a pack: base (ndarray, Ternary, Bcq or None) and
    rank slices [(U^T (r, out), V (r, in))]."""

    def __init__(self, base, slices, shape, base_q8=False):
        # base_q8 / each slice's third member: the matrix is q8_0, so its input
        # goes through the q8_0 activation quantizer (FORMAT.md: q8_0 x q8_0)
        self.base, self.slices, self.shape, self.base_q8 = base, slices, shape, base_q8

    def apply(self, x, act):
        """x (T, in) float64; act "float" | "int8" (the config's act_quant;
        "float" for the output head)."""
        x = np.asarray(x, dtype=np.float64)
        if self.base is None:
            y = np.zeros((x.shape[0], self.shape[0]))
        elif isinstance(self.base, np.ndarray):
            xa = M.act_quant_int8(x) if act == "int8" else x
            y = (M.q8_0_act(xa) if self.base_q8 else xa) @ self.base.T
        else:
            y = self.base.apply(x, act)
        for ut, v, v_q8 in self.slices:
            y = y + ((M.q8_0_act(x) if v_q8 else x) @ v.T) @ ut
        return y


class PackModel:
    """A pack ready to run with model.forward's float64 numerics and this
    module's per-encoding linear layers."""

    def __init__(self, pack, rank_slices=None):
        self.pack, self.cfg = pack, pack.config
        cfg = self.cfg
        shapes = expected_tensors(cfg)
        self.W, self.linears = {}, {}
        head = "token_embd.weight" if cfg.tied_embeddings else "output.weight"
        for name, shape in shapes.items():
            prefix = name[:-len(".weight")]
            if len(shape) == 1:
                self.W[name] = pack.tensor(name)
                continue
            base = pack.tensor(name) if name in pack.tensors else None
            if name == "token_embd.weight":
                self.W[name] = base if isinstance(base, np.ndarray) else base.dense()
            if name.startswith("blk.") or name == head:
                sl = [(pack.dense(u), pack.dense(v), pack.tensors[v]["encoding"] == "q8_0")
                      for u, v in _active(pack.slices.get(prefix, []), rank_slices)]
                self.linears[name] = Linear(base, sl, shape, name in pack.tensors
                                            and pack.tensors[name]["encoding"] == "q8_0")
        self.head = head

    def linear(self, name, x, head=False):
        return self.linears[name].apply(x, "float" if head else self.cfg.act_quant)

    def forward(self, tokens, cache=None):
        return M.forward(self.cfg, self.W, tokens, cache, linear=self.linear)

    def greedy(self, tokens, n, recompute=False):
        return M.greedy(self.cfg, self.W, tokens, n, recompute, linear=self.linear)


# ------------------------------------------------------- tokenizer blob


TOK_SPM_PREFIX, TOK_SPM_PREFIX_FIRST, TOK_SPM_PREFIX_NOSPACE, TOK_SPM_SPACE_MARKER = 1, 2, 4, 8
TOK_BPE_IGNORE_MERGES, TOK_NFC = 16, 32
TOK_NORMAL, TOK_BYTE, TOK_CONTROL, TOK_USER = 0, 1, 2, 3
TOK_ADDED = 4


def _uleb(data, off, end, what):
    v, shift = 0, 0
    for i in range(5):
        if off >= end:
            raise PackError("%s: truncated ULEB128" % what)
        b = data[off]
        off += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if v >= 1 << 32:
                raise PackError("%s: ULEB128 value >= 2^32" % what)
            return v, off
    raise PackError("%s: ULEB128 longer than 5 bytes" % what)


class BlobTokenizer:
    """The pack's tokenizer blob (FORMAT.md "Tokenizer blob"): decoding, and
    encoding by FORMAT.md's "Encoding" steps (the pre-tokenizer regexes are
    tokenizer.py's matchers). Text is bytes (or str, taken as UTF-8)."""

    def __init__(self, blob, what="tokenizer blob"):
        if len(blob) < 48:
            raise PackError("%s: %d bytes, shorter than the 48-byte header" % (what, len(blob)))
        (magic, version, kind, pretok, flags, n_vocab, n_merges, bos, eos, unk, len_bytes, piece_bytes,
         merge_bytes, _res) = struct.unpack_from("<4sHBBIIIiiiIIII", blob, 0)
        if magic != b"TRLT":
            raise PackError("%s: magic %r is not TRLT" % (what, magic))
        if version != 1:
            raise PackError("%s: version %d, the reference reads 1" % (what, version))
        if kind not in (0, 1) or n_vocab < 1:
            raise PackError("%s: kind %d, n_vocab %d" % (what, kind, n_vocab))
        if (kind == 1 and pretok not in (1, 2)) or (kind == 0 and pretok != 0):
            raise PackError("%s: pretok %d for kind %d" % (what, pretok, kind))
        if flags & ~0x3F:
            raise PackError("%s: unknown flags 0x%x" % (what, flags))
        size = 48 + n_vocab + len_bytes + piece_bytes + (4 * n_vocab if kind == 0 else 0) + merge_bytes
        if size != len(blob):
            raise PackError("%s: sections add up to %d bytes, the blob has %d" % (what, size, len(blob)))
        self.what = what
        self.kind, self.pretok, self.flags = ("spm", "bpe_gpt2")[kind], pretok, flags
        self.vocab_size = n_vocab
        self.bos_id = bos if bos >= 0 else None
        self.eos_id = eos if eos >= 0 else None
        self.unk_id = unk if unk >= 0 else None
        for name, i in (("bos_id", bos), ("eos_id", eos), ("unk_id", unk)):
            if i >= n_vocab:
                raise PackError("%s: %s %d >= n_vocab %d" % (what, name, i, n_vocab))
        off = 48
        self.types = list(blob[off:off + n_vocab])
        if any(t & ~7 for t in self.types):
            raise PackError("%s: a token type has bits 3-7 set" % what)
        off += n_vocab
        end = off + len_bytes
        lengths = []
        for i in range(n_vocab):
            n, off = _uleb(blob, off, end, what + ": lengths")
            lengths.append(n)
        if off != end or sum(lengths) != piece_bytes:
            raise PackError("%s: lengths section does not match len_bytes / piece_bytes" % what)
        self.pieces = []
        for n in lengths:
            self.pieces.append(bytes(blob[off:off + n]))
            off += n
        self.scores = None
        if kind == 0:
            self.scores = list(struct.unpack_from("<%df" % n_vocab, blob, off))
            off += 4 * n_vocab
        end = off + merge_bytes
        self.merges = []
        while off < end:
            a, off = _uleb(blob, off, end, what + ": merges")
            b, off = _uleb(blob, off, end, what + ": merges")
            if a >= n_vocab or b >= n_vocab:
                raise PackError("%s: merge %d names a token >= n_vocab" % (what, len(self.merges)))
            self.merges.append((a, b))
        if len(self.merges) != n_merges:
            raise PackError("%s: %d merges, the header says %d" % (what, len(self.merges), n_merges))
        self.lookup = {}  # piece -> lowest id, normal and user-defined tokens
        self.added = {}  # ADDED token text -> lowest id
        self.byte_token = {}  # byte -> the token whose piece is that one byte
        for i, (t, p) in enumerate(zip(self.types, self.pieces)):
            if t & 3 in (TOK_NORMAL, TOK_USER):
                self.lookup.setdefault(p, i)
            if t & 3 == TOK_BYTE:
                if len(p) != 1:
                    raise PackError("%s: byte token %d has a %d-byte piece" % (what, i, len(p)))
                self.byte_token.setdefault(p[0], i)
            if t & TOK_ADDED:
                if not p:
                    raise PackError("%s: added token %d is empty" % (what, i))
                self.added.setdefault(p, i)
        self.ranks = {}
        for r, (a, b) in enumerate(self.merges):
            self.ranks.setdefault((a, b), r)
            if self.pieces[a] + self.pieces[b] not in self.lookup:
                raise PackError("%s: merge %d (%d, %d) makes no vocabulary piece" % (what, r, a, b))

    # -- decoding

    def token_bytes(self, i, prev=None):
        if self.types[i] & 3 == TOK_CONTROL:
            return b""
        p = self.pieces[i]
        if (self.kind == "spm" and self.flags & TOK_SPM_PREFIX and prev is not None and prev == self.bos_id
                and p.startswith(b" ")):
            p = p[1:]
        return p

    def decode(self, ids, prev=None, skip_special=True):
        out = []
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise PackError("token id %d out of range [0, %d)" % (i, self.vocab_size))
            out.append(self.token_bytes(i, prev))
            prev = i
        return b"".join(out)

    # -- encoding

    def encode(self, text, bos=True):
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
        ids = [self.bos_id] if bos and self.bos_id is not None else []
        contents = sorted(self.added, key=len, reverse=True)
        i = last = 0
        segments = []
        while i < len(data):
            hit = next((c for c in contents if data.startswith(c, i)), None)
            if hit is None:
                i += 1
                continue
            if last < i:
                segments.append((data[last:i], last))
            segments.append((hit, None))
            i += len(hit)
            last = i
        if last < len(data):
            segments.append((data[last:], last))
        for seg, start in segments:
            if start is None:
                ids.append(self.added[seg])
            elif self.kind == "spm":
                ids += self._spm(seg, start == 0)
            else:
                ids += self._bpe(seg)
        return ids

    def _byte(self, b):
        i = self.byte_token.get(b, self.lookup.get(bytes([b]) if self.kind == "bpe_gpt2" else None, self.unk_id))
        if i is None:
            raise PackError("%s: byte 0x%02x has no token and there is no unk" % (self.what, b))
        return i

    def _spm(self, seg, first):
        f = self.flags
        if f & TOK_SPM_SPACE_MARKER:
            seg = seg.replace("\u2581".encode(), b" ")
        if (f & TOK_SPM_PREFIX and seg and not (f & TOK_SPM_PREFIX_FIRST and not first)
                and not (f & TOK_SPM_PREFIX_NOSPACE and seg.startswith(b" "))):
            seg = b" " + seg
        toks = []
        for ch in _code_points(seg):
            j = self.lookup.get(ch)
            if j is not None:
                toks.append(j)
            else:
                toks += [self._byte(b) for b in ch]
        while True:
            best, best_i, best_id = -1e10, -1, -1
            for k in range(len(toks) - 1):
                a, b = toks[k], toks[k + 1]
                if self.types[a] & 3 in (TOK_BYTE, TOK_CONTROL) or self.types[b] & 3 in (TOK_BYTE, TOK_CONTROL):
                    continue
                j = self.lookup.get(self.pieces[a] + self.pieces[b])
                if j is not None and self.types[j] & 3 == TOK_NORMAL and self.scores[j] > best:
                    best, best_i, best_id = self.scores[j], k, j
            if best_i < 0:
                return toks
            toks[best_i:best_i + 2] = [best_id]

    def _bpe(self, seg):
        import tokenizer as T  # the reference's pre-tokenizer matchers
        text = seg.decode("utf-8", "surrogateescape")
        split = T.pretokenize_gpt2 if self.pretok == 1 else T.pretokenize_llama3
        out = []
        for piece in split(text):
            pb = piece.encode("utf-8", "surrogateescape")
            if self.flags & TOK_BPE_IGNORE_MERGES and pb in self.lookup:
                out.append(self.lookup[pb])
                continue
            toks = [self._byte(b) for b in pb]
            while len(toks) > 1:
                best = min(range(len(toks) - 1), key=lambda k: (self.ranks.get((toks[k], toks[k + 1]), 1 << 62), k))
                if (toks[best], toks[best + 1]) not in self.ranks:
                    break
                toks[best:best + 2] = [self.lookup[self.pieces[toks[best]] + self.pieces[toks[best + 1]]]]
            out += toks
        return out


def _code_points(data):
    """Strict UTF-8 code points (no overlong forms, no surrogates, nothing
    above U+10FFFF); a byte that starts none is its own item."""
    out, i, n = [], 0, len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            k, lo, hi = 1, 0, 0
        elif 0xC2 <= b <= 0xDF:
            k, lo, hi = 2, 0x80, 0xBF
        elif 0xE0 <= b <= 0xEF:
            k = 3
            lo, hi = (0xA0, 0xBF) if b == 0xE0 else (0x80, 0x9F) if b == 0xED else (0x80, 0xBF)
        elif 0xF0 <= b <= 0xF4:
            k = 4
            lo, hi = (0x90, 0xBF) if b == 0xF0 else (0x80, 0x8F) if b == 0xF4 else (0x80, 0xBF)
        else:
            k = 0
        ok = k > 0 and i + k <= n and (k == 1 or lo <= data[i + 1] <= hi) and all(
            0x80 <= data[i + j] <= 0xBF for j in range(2, k))
        if ok:
            out.append(data[i:i + k])
            i += k
        else:
            out.append(data[i:i + 1])
            i += 1
    return out
