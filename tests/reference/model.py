"""Reference forward pass (numpy, float64) for LLaMA-family and BitNet b1.58
models, plus the weight encodings of the pack format (docs/FORMAT.md).

Weights live in a dict keyed by the pack's tensor names (token_embd.weight,
blk.N.attn_q.weight, ...), matrices (out, in) so y = W x. Loaders for Hugging
Face directories are here; llama2.c checkpoints are in llama2c.py.

Numerics: weights are first put through the pack encoding being tested
(f32: as is; f16: rounded to binary16; q8_0: quantized and dequantized exactly
as the converter must do it, see q8_0_roundtrip), then every operation runs in
float64, so the goldens carry no rounding of their own that an f32 core could
be blamed for. The one exception is int8 activation quantization
(int8_quantize), done in binary32 as FORMAT.md defines it.
"""

import json
import math
import os

import numpy as np

import safetensors

# ------------------------------------------------------------------- config


class Config:
    FIELDS = dict(dim=None, hidden_dim=None, n_layers=None, n_heads=None, n_kv_heads=None,
                  head_dim=None, vocab_size=None, max_seq_len=2048, rope_theta=10000.0,
                  norm_eps=1e-5, rope_style="half", mlp="swiglu", sub_norms=False,
                  tied_embeddings=False, arch="llama", act_quant="float")

    def __init__(self, **kw):
        for k, v in self.FIELDS.items():
            setattr(self, k, kw.pop(k, v))
        if kw:
            raise TypeError("unknown config fields %s" % sorted(kw))
        if self.head_dim is None:
            self.head_dim = self.dim // self.n_heads
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.n_heads % self.n_kv_heads or self.head_dim % 2:
            raise ValueError("n_heads must be a multiple of n_kv_heads and head_dim even")

    def as_dict(self):
        return {k: getattr(self, k) for k in self.FIELDS}


# ---------------------------------------------------------------- encodings

QK8_0 = 32


def f16_roundtrip(w):
    """float -> binary16 (round to nearest even, via float32) -> float64."""
    return np.asarray(w, dtype=np.float32).astype(np.float16).astype(np.float64)


def q8_0_quantize(w, log_ties=False):
    """Quantize a (rows, cols) matrix to q8_0 blocks along each row.

    Exactly GGUF/ggml's quantize_row_q8_0_ref, all in float32:
        amax = max |x| over the block (the zero padding of a short last block
               does not change it)
        d    = amax / 127                  (float32 division)
        id   = d != 0 ? 1 / d : 0           (float32)
        q    = roundf(x * id)               (float32 product; round half away from zero)
        stored scale = binary16(d)          (round to nearest even)
    so q is computed with the unrounded float32 d, not with the stored f16 one.
    Returns (d16 as float16 (rows, nblocks), q as int8 (rows, nblocks, 32)).
    """
    x = np.asarray(w, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError("q8_0 needs a matrix")
    rows, cols = x.shape
    nb = -(-cols // QK8_0)
    xp = np.zeros((rows, nb * QK8_0), dtype=np.float32)
    xp[:, :cols] = x
    xb = xp.reshape(rows, nb, QK8_0)
    amax = np.max(np.abs(xb), axis=2)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0))
    inv = inv.astype(np.float32)
    prod = (xb * inv[:, :, None]).astype(np.float32)
    # roundf: |p| + 0.5 is exact in float64 for these magnitudes, so floor of it
    # is the half-away-from-zero rounding of the float32 product.
    p64 = prod.astype(np.float64)
    q = np.sign(p64) * np.floor(np.abs(p64) + 0.5)
    q = np.clip(q, -128, 127).astype(np.int8)
    if _tie_log is not None and log_ties and np.any(amax > 0):
        # distance of x * id from a rounding tie: activations computed in float32 by a
        # core can sit on the other side of .5 when this is tiny (see TieMargin)
        ap = np.abs(p64[amax > 0])
        _tie_log.append(float(np.min(np.abs(ap - np.floor(ap) - 0.5))))
    return d.astype(np.float16), q


def q8_0_dequantize(d16, q, cols):
    w = d16.astype(np.float64)[:, :, None] * q.astype(np.float64)
    return w.reshape(w.shape[0], -1)[:, :cols]


def q8_0_roundtrip(w):
    d16, q = q8_0_quantize(w)
    return q8_0_dequantize(d16, q, np.shape(w)[1])


def q8_0_act(x):
    """The activations a q8_0 weight computes with (FORMAT.md: q8_0 x q8_0, as
    ggml): each row of x (tokens, in) through the q8_0 quantizer and back.
    Since every weight is d_w * q_w exactly, W @ q8_0_act(x) is the kernel's
    sum over blocks of d_w * d_x * (exact integer dot)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64)).astype(np.float32)
    d16, q = q8_0_quantize(x, log_ties=True)
    return q8_0_dequantize(d16, q, x.shape[1])


def q8_0_bytes(w):
    """The pack's bytes for a q8_0 matrix: per block f16 d then 32 int8."""
    d16, q = q8_0_quantize(w)
    rows, nb = d16.shape
    out = np.zeros((rows, nb, 34), dtype=np.uint8)
    out[:, :, 0:2] = d16.astype("<f2").view(np.uint8).reshape(rows, nb, 2)
    out[:, :, 2:] = q.view(np.uint8)
    return out.tobytes()


def encode_weights(weights, dtype, keep_f32=()):
    """Put every matrix (token_embd and output included) through the pack
    encoding `dtype` ("f32" | "f16" | "q8_0"); vectors (norm weights) and the
    matrices named in keep_f32 stay f32, as FORMAT.md requires for norms.
    Returns float64 arrays."""
    out = {}
    for name, w in weights.items():
        w = np.asarray(w)
        if name in keep_f32:
            out[name] = np.asarray(w, dtype=np.float32).astype(np.float64)
            continue
        if w.ndim == 2 and dtype == "f16":
            out[name] = f16_roundtrip(w)
        elif w.ndim == 2 and dtype == "q8_0":
            out[name] = q8_0_roundtrip(w)
        elif dtype in ("f32", "f16", "q8_0"):
            out[name] = np.asarray(w, dtype=np.float32).astype(np.float64)
        else:
            raise ValueError("unknown encoding %r" % dtype)
    return out


# ------------------------------------------------------------------ forward


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, theta, style):
    """x: (T, heads, hd). Pair i (< hd/2) turns by p * theta^(-2i/hd).
    style "interleaved": pairs (2i, 2i+1) (llama2.c, Meta, GGUF);
    style "half": pairs (i, i + hd/2) (Hugging Face rotate_half)."""
    hd = x.shape[-1]
    half = hd // 2
    inv_freq = float(theta) ** (-2.0 * np.arange(half, dtype=np.float64) / hd)
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = np.empty_like(x)
    if style == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
    elif style == "half":
        a, b = x[..., :half], x[..., half:]
        out[..., :half] = a * cos - b * sin
        out[..., half:] = b * cos + a * sin
    else:
        raise ValueError("unknown rope style %r" % style)
    return out


def round_half_away(p):
    """C's roundf / round: halves go away from zero (numpy's np.round goes to
    even). Exact for float32 inputs: |p| + 0.5 is exact in float64."""
    p = np.asarray(p, dtype=np.float64)
    return np.sign(p) * np.floor(np.abs(p) + 0.5)


def int8_quantize(x):
    """BitNet per-token absmax, in binary32 as FORMAT.md states it (the
    activation is rounded to float32 first, as a core holds it):
        a = max|x|,  f = 127 / a,  q = clamp(roundf(x * f), -128, 127),  q = 0 when a = 0
    with the reciprocal factor f and each product x * f a float32 operation.
    x (..., n) -> (q float64 integers (..., n), a float32 (...))."""
    x32 = np.asarray(x, dtype=np.float64).astype(np.float32)
    a = np.max(np.abs(x32), axis=-1)
    a = np.where(a < np.float32(1e-30), np.float32(0), a).astype(np.float32)  # FORMAT.md: q = 0, a = 0
    safe = np.where(a > 0, a, np.float32(1))
    with np.errstate(over="ignore"):
        f = (np.float32(127) / safe).astype(np.float32)
        p = (x32 * f[..., None]).astype(np.float32)
    q = np.clip(round_half_away(p), -128, 127)
    if _tie_log is not None and np.any(a > 0):
        ap = np.abs(p[a > 0].astype(np.float64))
        _tie_log.append(float(np.min(np.abs(ap - np.floor(ap) - 0.5))))
    return np.where((a > 0)[..., None], q, 0.0), a


_tie_log = None


class TieMargin:
    """with TieMargin() as tm: ... -> tm.value: the smallest distance, in
    units of q, of any x * 127 / a from a rounding tie (.5) over the
    int8_quantize calls made inside (None if none). A core computing the
    activations in float32 (relative error ~1e-7, so ~1e-5 in q units) can
    round an element the other way when this is below about 1e-4."""

    def __enter__(self):
        global _tie_log
        self._prev, _tie_log = _tie_log, []
        self.value = None
        return self

    def __exit__(self, *exc):
        global _tie_log
        if _tie_log:
            self.value = min(_tie_log)
        _tie_log = self._prev
        return False


def act_quant_int8(x):
    """int8_quantize, dequantized in float64: q * (a / 127)."""
    q, a = int8_quantize(x)
    return q * (a.astype(np.float64) / 127.0)[..., None]


def silu(x):
    return x / (1.0 + np.exp(-x))


def attention(q, k, v, n_kv_heads, start=0):
    """q: (T, nh, hd) at positions start..start+T-1; k, v: (start+T, nkv, hd);
    causal; q head h reads kv head h // (nh / nkv). -> (T, nh * hd)."""
    T, nh, hd = q.shape
    S = k.shape[0]
    group = nh // n_kv_heads
    k = np.repeat(k, group, axis=1)
    v = np.repeat(v, group, axis=1)
    scores = np.einsum("ihd,jhd->hij", q, k) / math.sqrt(hd)
    mask = np.arange(S)[None, :] > (start + np.arange(T))[:, None]
    scores = np.where(mask[None], -np.inf, scores)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    out = np.einsum("hij,jhd->ihd", p, v)
    return out.reshape(T, nh * hd)


def forward(cfg, W, tokens, cache=None, linear=None, q8=()):
    """tokens: list of ids -> logits (T, vocab) float64 for every position.
    W: float64 weights by pack name (see encode_weights).
    cache: None (tokens start at position 0), or a list that this call
    extends with each layer's (k, v) after RoPE, so the next call continues
    at the next position (used by greedy; the tests check it against a full
    recompute).
    linear: None, or linear(name, x, head=False) -> x W^T, which then does
    every block matmul and the output head (pack.py runs the pack encodings
    through it); W then needs only token_embd.weight and the norm vectors.
    q8: names of the q8_0-encoded matrices, whose inputs go through q8_0_act."""
    tokens = np.asarray(tokens, dtype=np.int64)
    T = len(tokens)
    if T == 0:
        return np.zeros((0, cfg.vocab_size))
    if tokens.min() < 0 or tokens.max() >= cfg.vocab_size:
        raise ValueError("token id out of range [0, %d)" % cfg.vocab_size)
    start = cache[0][0].shape[0] if cache else 0
    pos = start + np.arange(T)
    nh, nkv, hd, eps = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.norm_eps
    aq = act_quant_int8 if cfg.act_quant == "int8" else (lambda a: a)

    def lin(name, a):
        if linear:
            return linear(name, a)
        a = aq(a)
        return (q8_0_act(a) if name in q8 else a) @ W[name].T

    x = W["token_embd.weight"][tokens].astype(np.float64)
    for l in range(cfg.n_layers):
        p = "blk.%d." % l
        h = rmsnorm(x, W[p + "attn_norm.weight"], eps)
        q = lin(p + "attn_q.weight", h).reshape(T, nh, hd)
        k = lin(p + "attn_k.weight", h).reshape(T, nkv, hd)
        v = lin(p + "attn_v.weight", h).reshape(T, nkv, hd)
        q = rope(q, pos, cfg.rope_theta, cfg.rope_style)
        k = rope(k, pos, cfg.rope_theta, cfg.rope_style)
        if cache is not None:
            if len(cache) <= l:
                cache.append((k, v))
            else:
                k = np.concatenate([cache[l][0], k])
                v = np.concatenate([cache[l][1], v])
                cache[l] = (k, v)
        o = attention(q, k, v, nkv, start)
        if cfg.sub_norms:
            o = rmsnorm(o, W[p + "attn_sub_norm.weight"], eps)
        x = x + lin(p + "attn_output.weight", o)
        h = rmsnorm(x, W[p + "ffn_norm.weight"], eps)
        g = lin(p + "ffn_gate.weight", h)
        u = lin(p + "ffn_up.weight", h)
        if cfg.mlp == "swiglu":
            g = silu(g) * u
        elif cfg.mlp == "relu2":
            g = np.maximum(g, 0.0) ** 2 * u
        else:
            raise ValueError("unknown mlp %r" % cfg.mlp)
        if cfg.sub_norms:
            g = rmsnorm(g, W[p + "ffn_sub_norm.weight"], eps)
        x = x + lin(p + "ffn_down.weight", g)
    x = rmsnorm(x, W["output_norm.weight"], eps)
    head = "token_embd.weight" if cfg.tied_embeddings else "output.weight"
    if linear:
        return linear(head, x, head=True)
    return (q8_0_act(x) if head in q8 else x) @ W[head].T


def argmax_lowest(logits):
    """argmax with the lowest id on ties (np.argmax returns the first max)."""
    return int(np.argmax(logits))


def top2_gap(logits):
    s = np.sort(np.asarray(logits))
    return float(s[-1] - s[-2]) if len(s) > 1 else float("inf")


def greedy(cfg, W, tokens, n, recompute=False, linear=None, q8=()):
    """n greedy steps (argmax, lowest id on ties). Does not stop at EOS.
    With recompute, every step runs the whole sequence again (no KV cache);
    otherwise the prompt runs once and each new token is one cached step.
    -> (generated ids, top-2 logit gap at each step)."""
    seq, gen, gaps = list(tokens), [], []
    cache = None if recompute else []
    logits = None
    for i in range(n):
        if recompute:
            logits = forward(cfg, W, seq, linear=linear, q8=q8)[-1]
        elif i == 0:
            logits = forward(cfg, W, seq, cache, linear, q8)[-1]
        else:
            logits = forward(cfg, W, seq[-1:], cache, linear, q8)[-1]
        t = argmax_lowest(logits)
        gaps.append(top2_gap(logits))
        gen.append(t)
        seq.append(t)
    return gen, gaps


# ----------------------------------------------------- Hugging Face loading

HF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
HF_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.attn_sub_norm.weight": "attn_sub_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "mlp.ffn_sub_norm.weight": "ffn_sub_norm.weight",
}


def hf_to_pack_name(name):
    if name in HF_NAMES:
        return HF_NAMES[name]
    parts = name.split(".", 3)
    if len(parts) == 4 and parts[0] == "model" and parts[1] == "layers" and parts[3] in HF_LAYER_NAMES:
        return "blk.%d.%s" % (int(parts[2]), HF_LAYER_NAMES[parts[3]])
    return None


def config_from_hf(hf):
    if hf.get("rope_scaling"):
        raise NotImplementedError("rope_scaling %r is not modelled" % (hf["rope_scaling"],))
    archs = [a.lower() for a in hf.get("architectures") or []]
    bitnet = hf.get("model_type", "").lower() == "bitnet" or any("bitnet" in a for a in archs)
    act = hf.get("hidden_act", "silu")
    if act not in ("silu", "relu2"):
        raise NotImplementedError("hidden_act %r" % act)
    nh = hf["num_attention_heads"]
    return Config(
        arch="bitnet" if bitnet else "llama",
        dim=hf["hidden_size"], hidden_dim=hf["intermediate_size"], n_layers=hf["num_hidden_layers"],
        n_heads=nh, n_kv_heads=hf.get("num_key_value_heads") or nh,
        head_dim=hf.get("head_dim") or hf["hidden_size"] // nh,
        vocab_size=hf["vocab_size"], max_seq_len=hf.get("max_position_embeddings", 2048),
        rope_theta=float(hf.get("rope_theta", 10000.0)), norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        rope_style="half", mlp="relu2" if act == "relu2" else "swiglu", sub_norms=bitnet,
        tied_embeddings=bool(hf.get("tie_word_embeddings", False)))


def load_hf(model_dir):
    """-> (Config, float32 weights by pack name, HF config dict)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        hf = json.load(f)
    cfg = config_from_hf(hf)
    raw, _ = safetensors.read_dir(model_dir)
    W = {}
    for name, t in raw.items():
        pn = hf_to_pack_name(name)
        if pn is None:
            if name.endswith("rotary_emb.inv_freq"):
                continue
            raise ValueError("%s: unexpected tensor %s" % (model_dir, name))
        W[pn] = t
    if "output.weight" not in W:
        cfg.tied_embeddings = True  # what transformers does when lm_head is absent
    elif cfg.tied_embeddings:
        del W["output.weight"]
    check_weights(cfg, W)
    return cfg, W, hf


def expected_shapes(cfg):
    D, H, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size
    qd, kvd = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    s = {"token_embd.weight": (V, D), "output_norm.weight": (D,)}
    if not cfg.tied_embeddings:
        s["output.weight"] = (V, D)
    for l in range(cfg.n_layers):
        p = "blk.%d." % l
        s.update({p + "attn_norm.weight": (D,), p + "attn_q.weight": (qd, D),
                  p + "attn_k.weight": (kvd, D), p + "attn_v.weight": (kvd, D),
                  p + "attn_output.weight": (D, qd), p + "ffn_norm.weight": (D,),
                  p + "ffn_gate.weight": (H, D), p + "ffn_up.weight": (H, D),
                  p + "ffn_down.weight": (D, H)})
        if cfg.sub_norms:
            s[p + "attn_sub_norm.weight"] = (qd,)
            s[p + "ffn_sub_norm.weight"] = (H,)
    return s


def check_weights(cfg, W):
    want = expected_shapes(cfg)
    for name, shape in want.items():
        if name not in W:
            raise ValueError("missing tensor %s" % name)
        if tuple(W[name].shape) != shape:
            raise ValueError("tensor %s: shape %s, expected %s" % (name, W[name].shape, shape))
    extra = set(W) - set(want)
    if extra:
        raise ValueError("unexpected tensors %s" % sorted(extra)[:5])
