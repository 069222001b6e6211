#!/usr/bin/python3
"""A numpy GGUF v3 writer, for the converter's test fixtures.

    gguf_writer.py OUT.gguf --hf DIR [--type T] [--alignment N] [--all-types]
    gguf_writer.py OUT.gguf --llama2c BIN --tokenizer TOKBIN [--type T]
    gguf_writer.py OUT.gguf --random-ternary --hf DIR --type tq1_0|tq2_0 [--scales S] [--expect FILE] [--seed N]

T is the type of the 2-D tensors: f32, f16, bf16, q8_0, q4_0, tq1_0, tq2_0
(norm vectors are always F32, as llama.cpp writes them). A matrix whose rows
are not whole blocks of T is written F16 instead, as llama.cpp's converter does.

--hf: a Hugging Face directory (from gen_model.py): q/k rows permuted from
HF's rotate_half order to the interleaved order llama.cpp's convert_hf_to_gguf
uses (the model then runs with interleaved RoPE), tokenizer.json embedded as
tokenizer.ggml.* ("gpt2" model; pre "gpt-2" or "llama-bpe"). --llama2c: a
llama2.c checkpoint (already interleaved) with its tokenizer.bin as a "llama"
(SentencePiece) vocabulary: spaces as U+2581, <0xNN> byte tokens.

--random-ternary: a seeded llama model whose linear layers are exactly f16
scale x {-1, 0, +1} (dims multiples of 256, as TQ1_0/TQ2_0 need), with the
vocabulary and tokenizer of --hf DIR. --scales picks the scale layout of the
linear layers: "mixed" (default: per tensor, per row, row blocks and column
blocks over the layers) or "block" (one scale per 256-block, varying within
rows: no pack layout holds them). --expect writes what the TQ blocks hold:

    "TQEX", u32 count, then per tensor: u32 name length, name, u32 rows,
    u32 cols, int8 trits[rows][cols], f32 d[rows][cols / 256]

--all-types adds test.* keys of every GGUF value type (values in ALL_TYPES).

Layout (ggml's docs/gguf.md): "GGUF", u32 version 3, u64 tensor count, u64
key/value count, the key/values (u64-length strings, u32 type, value), the
tensor infos (name, u32 n_dims, u64 ne[] with ne[0] the row length, u32 ggml
type, u64 offset into the data section), zero padding to general.alignment,
then the data, each tensor at a multiple of the alignment.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import llama2c  # noqa: E402
import model as M  # noqa: E402
import safetensors  # noqa: E402

# ------------------------------------------------------------------ format

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
              U64: "<Q", I64: "<q", F64: "<d"}

GGML = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8, "bf16": 30, "tq1_0": 34, "tq2_0": 35}
BLOCK = {"f32": 1, "f16": 1, "bf16": 1, "q4_0": 32, "q8_0": 32, "tq1_0": 256, "tq2_0": 256}

# llama.cpp token types
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6

ALL_TYPES = [
    ("test.u8", U8, 200), ("test.i8", I8, -100), ("test.u16", U16, 60000), ("test.i16", I16, -30000),
    ("test.u32", U32, 4000000000), ("test.i32", I32, -2000000000), ("test.f32", F32, 0.25),
    ("test.bool", BOOL, True), ("test.string", STRING, "h\u00e9llo"), ("test.u64", U64, 2 ** 63 + 5),
    ("test.i64", I64, -(2 ** 62)), ("test.f64", F64, -1.5e300),
    ("test.arr_u8", (ARRAY, U8), [1, 2, 255]), ("test.arr_i16", (ARRAY, I16), [-1, 2]),
    ("test.arr_f32", (ARRAY, F32), [0.5, -2.0]), ("test.arr_bool", (ARRAY, BOOL), [False, True]),
    ("test.arr_str", (ARRAY, STRING), ["a", "", "bc"]), ("test.arr_u64", (ARRAY, U64), [7]),
    ("test.arr_f64", (ARRAY, F64), [3.25]), ("test.arr_empty", (ARRAY, I32), []),
]


def gguf_string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, value):
    if isinstance(vtype, tuple):
        _, et = vtype
        out = struct.pack("<IQ", et, len(value))
        return out + b"".join(gguf_value(et, v) for v in value)
    if vtype == STRING:
        return gguf_string(value)
    return struct.pack(SCALAR_FMT[vtype], value)


class Writer:
    """Collects key/values and tensors, then writes a GGUF v3 file."""

    def __init__(self, alignment=32):
        self.kv = []
        self.tensors = []  # (name, ne list, ggml type, bytes)
        self.alignment = alignment
        self.expect = []  # (name, trits, d) of the TQ tensors

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def add_raw_tensor(self, name, ne, gtype, data):
        self.tensors.append((name, list(ne), gtype, bytes(data)))

    def add_tensor(self, name, w, typ):
        """w: float array, (n) or (rows, cols). 1-D tensors are always F32."""
        w = np.asarray(w, dtype=np.float32)
        if w.ndim == 1:
            self.add_raw_tensor(name, [w.shape[0]], GGML["f32"], w.astype("<f4").tobytes())
            return
        rows, cols = w.shape
        if cols % BLOCK[typ]:
            typ = "f16"  # llama.cpp's fallback for rows that are not whole blocks
        data = ENCODERS[typ](w)
        if typ in ("tq1_0", "tq2_0"):
            self.expect.append((name,) + tq_trits(w))
        self.add_raw_tensor(name, [cols, rows], GGML[typ], data)

    def to_bytes(self):
        out = bytearray(b"GGUF")
        out += struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, vtype, value in self.kv:
            out += gguf_string(key)
            out += struct.pack("<I", ARRAY if isinstance(vtype, tuple) else vtype)
            out += gguf_value(vtype, value)
        offset = 0
        offsets = []
        for name, ne, gtype, data in self.tensors:
            offsets.append(offset)
            out += gguf_string(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
            out += struct.pack("<IQ", gtype, offset)
            offset += -(-len(data) // self.alignment) * self.alignment
        out += b"\0" * (-len(out) % self.alignment)
        for (name, ne, gtype, data), off in zip(self.tensors, offsets):
            out += data + b"\0" * (-len(data) % self.alignment)
        return bytes(out)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.to_bytes())

    def write_expect(self, path):
        out = bytearray(b"TQEX") + struct.pack("<I", len(self.expect))
        for name, trits, d in self.expect:
            nb = name.encode()
            out += struct.pack("<I", len(nb)) + nb + struct.pack("<II", *trits.shape)
            out += trits.astype(np.int8).tobytes() + d.astype("<f4").tobytes()
        with open(path, "wb") as f:
            f.write(out)


# ------------------------------------------------------------ block encoders


def f16_bytes(h):
    return np.asarray(h, dtype=np.float16).astype("<f2").tobytes()


def roundf(x):
    """C's roundf (half away from zero) of float32 values, as float64 integers."""
    p = np.asarray(x, dtype=np.float32).astype(np.float64)
    return np.sign(p) * np.floor(np.abs(p) + 0.5)


def enc_f32(w):
    return np.asarray(w, dtype="<f4").tobytes()


def enc_f16(w):
    return np.asarray(w, dtype=np.float32).astype("<f2").tobytes()


def enc_bf16(w):
    return safetensors.encode(np.asarray(w, dtype=np.float32), "BF16")


def enc_q8_0(w):
    return M.q8_0_bytes(w)


def enc_q4_0(w):
    """ggml's quantize_row_q4_0_ref in float32: d = max / -8 (max: the value of
    largest magnitude, the first on ties), q = min(15, (int8)(x / d + 8.5)),
    nibble j low = x[j], high = x[j + 16]."""
    x = np.asarray(w, dtype=np.float32)
    rows, cols = x.shape
    xb = x.reshape(rows, cols // 32, 32)
    idx = np.argmax(np.abs(xb), axis=2)  # the first of equal magnitudes, as ggml's strict '<'
    mx = np.take_along_axis(xb, idx[:, :, None], axis=2)[:, :, 0]
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
    v = ((xb * inv[:, :, None]).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(v.astype(np.float64))).astype(np.uint8)  # (int8_t) truncates toward zero
    out = np.zeros((rows, cols // 32, 18), dtype=np.uint8)
    out[:, :, 0:2] = d.astype("<f2").view(np.uint8).reshape(rows, cols // 32, 2)
    out[:, :, 2:] = q[:, :, :16] | (q[:, :, 16:] << 4)
    return out.tobytes()


def tq_quantize(w):
    """The trits and f16 scales ggml's quantize_row_tq{1,2}_0_ref pick: per block
    of 256, d = max |x|, t = lroundf(x * (1 / d)) (float32; 0 when d = 0)."""
    x = np.asarray(w, dtype=np.float32)
    rows, cols = x.shape
    xb = x.reshape(rows, cols // 256, 256)
    d = np.max(np.abs(xb), axis=2).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
    t = roundf((xb * inv[:, :, None]).astype(np.float32)).astype(np.int8)
    return t, d.astype(np.float16)


def tq_trits(w):
    t, d16 = tq_quantize(w)
    rows = t.shape[0]
    return t.reshape(rows, -1), d16.astype(np.float32)


def enc_tq2_0(w):
    """qs[64] then f16 d: byte 32 h + m holds the codes (t + 1) of weights
    128 h + m (bits 0-1), + 32 (bits 2-3), + 64 (bits 4-5), + 96 (bits 6-7)."""
    t, d16 = tq_quantize(w)
    rows, nb, _ = t.shape
    u = (t.astype(np.int32) + 1).reshape(rows, nb, 2, 4, 32)  # (half, n, m)
    qs = (u[:, :, :, 0] | u[:, :, :, 1] << 2 | u[:, :, :, 2] << 4 | u[:, :, :, 3] << 6).astype(np.uint8)
    out = np.zeros((rows, nb, 66), dtype=np.uint8)
    out[:, :, :64] = qs.reshape(rows, nb, 64)
    out[:, :, 64:] = d16.astype("<f2").view(np.uint8).reshape(rows, nb, 2)
    return out.tobytes()


def tq1_byte(trits):
    """Five (or, for qh, four then a zero) codes, first most significant, as
    base 3, then scaled to 256/243 rounded up: the byte times 3^n (mod 256)
    has trit n in its top "digit", read as (q * 3) >> 8."""
    q = np.zeros(trits[0].shape, dtype=np.int32)
    for c in trits:
        q = q * 3 + c
    return ((q * 256 + 242) // 243).astype(np.uint8)


def enc_tq1_0(w):
    """qs[48], qh[4], f16 d. qs[m] (m < 32): weights m + 32 n, n = 0..4;
    qs[32 + m] (m < 16): 160 + m + 16 n; qh[j]: 240 + j + 4 n, n = 0..3."""
    t, d16 = tq_quantize(w)
    rows, nb, _ = t.shape
    u = t.astype(np.int32) + 1
    a = u[:, :, :160].reshape(rows, nb, 5, 32)
    b = u[:, :, 160:240].reshape(rows, nb, 5, 16)
    c = u[:, :, 240:].reshape(rows, nb, 4, 4)
    out = np.zeros((rows, nb, 54), dtype=np.uint8)
    out[:, :, 0:32] = tq1_byte([a[:, :, n] for n in range(5)])
    out[:, :, 32:48] = tq1_byte([b[:, :, n] for n in range(5)])
    out[:, :, 48:52] = tq1_byte([c[:, :, n] for n in range(4)] + [np.zeros_like(c[:, :, 0])])
    out[:, :, 52:54] = d16.astype("<f2").view(np.uint8).reshape(rows, nb, 2)
    return out.tobytes()


def dequantize(typ, data, rows, cols):
    """The weights a (rows, cols) tensor of `typ` holds, decoded as ggml's
    dequantize_row_* do (float32), written from the block layouts above."""
    b = np.frombuffer(bytes(data), dtype=np.uint8)
    if typ == "f32":
        return b.view("<f4").reshape(rows, cols).astype(np.float32)
    if typ == "f16":
        return b.view("<f2").reshape(rows, cols).astype(np.float32)
    if typ == "bf16":
        return (b.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(rows, cols)
    nb = cols // BLOCK[typ]
    blk = b.reshape(rows, nb, -1)
    if typ == "q8_0":
        d = blk[:, :, :2].copy().view("<f2").astype(np.float32)
        q = blk[:, :, 2:].view(np.int8).astype(np.float32)
        return (q * d).reshape(rows, cols)
    if typ == "q4_0":
        d = blk[:, :, :2].copy().view("<f2").astype(np.float32)
        qs = blk[:, :, 2:].astype(np.int32)
        q = np.concatenate([(qs & 15) - 8, (qs >> 4) - 8], axis=2).astype(np.float32)
        return (q * d).reshape(rows, cols)
    if typ == "tq2_0":
        d = blk[:, :, 64:66].copy().view("<f2").astype(np.float32)
        qs = blk[:, :, :64].reshape(rows, nb, 2, 1, 32).astype(np.int32)
        codes = (qs >> (2 * np.arange(4).reshape(1, 1, 1, 4, 1))) & 3  # (half, n, m)
        return ((codes.reshape(rows, nb, 256) - 1).astype(np.float32) * d).reshape(rows, cols)
    if typ == "tq1_0":
        d = blk[:, :, 52:54].copy().view("<f2").astype(np.float32)
        out = np.zeros((rows, nb, 256), dtype=np.float32)
        for r in range(rows):
            for k in range(nb):
                out[r, k] = np.array(tq1_decode(list(blk[r, k, :52])), dtype=np.float32) - 1
        return (out * d).reshape(rows, cols)
    raise ValueError("unknown type %r" % typ)


ENCODERS = {"f32": enc_f32, "f16": enc_f16, "bf16": enc_bf16, "q8_0": enc_q8_0, "q4_0": enc_q4_0,
            "tq1_0": enc_tq1_0, "tq2_0": enc_tq2_0}


def tq1_decode(block):
    """ggml's dequantize_row_tq1_0 order for one 54-byte block -> 256 codes (self-check)."""
    pow3 = [1, 3, 9, 27, 81, 243]
    out = []
    for n in range(5):
        out += [((block[m] * pow3[n] & 0xFF) * 3) >> 8 for m in range(32)]
    for n in range(5):
        out += [((block[32 + m] * pow3[n] & 0xFF) * 3) >> 8 for m in range(16)]
    for n in range(4):
        out += [((block[48 + j] * pow3[n] & 0xFF) * 3) >> 8 for j in range(4)]
    return out


# ------------------------------------------------------------------ models


def permute_interleaved(w, n_heads):
    """HF rotate_half rows -> the interleaved order (llama.cpp's permute):
    within each head, row i -> 2i and row i + hd/2 -> 2i + 1."""
    rows = w.shape[0]
    hd = rows // n_heads
    return w.reshape(n_heads, 2, hd // 2, -1).swapaxes(1, 2).reshape(w.shape)


def add_llama_config(g, cfg, name):
    g.add("general.architecture", STRING, "llama")
    g.add("general.name", STRING, name)
    if g.alignment != 32:
        g.add("general.alignment", U32, g.alignment)
    g.add("llama.context_length", U32, cfg.max_seq_len)
    g.add("llama.embedding_length", U32, cfg.dim)
    g.add("llama.block_count", U32, cfg.n_layers)
    g.add("llama.feed_forward_length", U32, cfg.hidden_dim)
    g.add("llama.attention.head_count", U32, cfg.n_heads)
    g.add("llama.attention.head_count_kv", U32, cfg.n_kv_heads)
    g.add("llama.rope.freq_base", F32, cfg.rope_theta)
    g.add("llama.attention.layer_norm_rms_epsilon", F32, cfg.norm_eps)
    g.add("llama.rope.dimension_count", U32, cfg.head_dim)
    if cfg.head_dim * cfg.n_heads != cfg.dim:
        g.add("llama.attention.key_length", U32, cfg.head_dim)
        g.add("llama.attention.value_length", U32, cfg.head_dim)
    g.add("llama.vocab_size", U32, cfg.vocab_size)


def add_hf_tokenizer(g, model_dir, vocab_size):
    with open(os.path.join(model_dir, "tokenizer.json")) as f:
        tj = json.load(f)
    tc = {}
    p = os.path.join(model_dir, "tokenizer_config.json")
    if os.path.exists(p):
        with open(p) as f:
            tc = json.load(f)
    tokens = [None] * vocab_size
    types = [TT_NORMAL] * vocab_size
    for s, i in tj["model"]["vocab"].items():
        tokens[i] = s
    for a in tj.get("added_tokens") or []:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = TT_CONTROL if a.get("special") else TT_USER_DEFINED
    for i, t in enumerate(tokens):
        if t is None:
            tokens[i], types[i] = "[PAD%d]" % i, TT_UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    pre = tj.get("pre_tokenizer") or {}
    llama3 = pre.get("type") == "Sequence"
    ids = {t: i for i, t in enumerate(tokens)}

    def token_id(v):
        if isinstance(v, dict):
            v = v.get("content")
        return ids.get(v)

    g.add("tokenizer.ggml.model", STRING, "gpt2")
    g.add("tokenizer.ggml.pre", STRING, "llama-bpe" if llama3 else "gpt-2")
    g.add("tokenizer.ggml.tokens", (ARRAY, STRING), tokens)
    g.add("tokenizer.ggml.token_type", (ARRAY, I32), types)
    g.add("tokenizer.ggml.merges", (ARRAY, STRING), merges)
    for key, field in (("bos_token_id", "bos_token"), ("eos_token_id", "eos_token")):
        i = token_id(tc.get(field))
        if i is not None:
            g.add("tokenizer.ggml." + key, U32, i)
    g.add("tokenizer.ggml.add_bos_token", BOOL, bool(tc.get("add_bos_token", llama3)))
    if isinstance(tc.get("chat_template"), str):
        g.add("tokenizer.chat_template", STRING, tc["chat_template"])


def add_spm_tokenizer(g, tokbin, vocab_size):
    import tokenizer as T
    tok = T.SpmTokenizer.from_llama2c(tokbin, vocab_size)
    tokens, types = [], []
    for i, p in enumerate(tok.pieces):
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            types.append(TT_BYTE)
        elif i == 0:
            types.append(TT_UNKNOWN)
        elif i in (1, 2):
            types.append(TT_CONTROL)
        else:
            types.append(TT_NORMAL)
        tokens.append(p.replace(b" ", "\u2581".encode()) if types[-1] == TT_NORMAL else p)
    g.add("tokenizer.ggml.model", STRING, "llama")
    g.add("tokenizer.ggml.tokens", (ARRAY, STRING), tokens)
    g.add("tokenizer.ggml.scores", (ARRAY, F32), tok.scores)
    g.add("tokenizer.ggml.token_type", (ARRAY, I32), types)
    g.add("tokenizer.ggml.bos_token_id", U32, 1)
    g.add("tokenizer.ggml.eos_token_id", U32, 2)
    g.add("tokenizer.ggml.unknown_token_id", U32, 0)
    g.add("tokenizer.ggml.add_bos_token", BOOL, True)
    g.add("tokenizer.ggml.add_space_prefix", BOOL, True)


def tensor_order(cfg):
    names = ["token_embd.weight"]
    for l in range(cfg.n_layers):
        names += ["blk.%d.%s.weight" % (l, n) for n in
                  ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                   "ffn_down")]
    names.append("output_norm.weight")
    if not cfg.tied_embeddings:
        names.append("output.weight")
    return names


def add_weights(g, cfg, W, typ, permute):
    for name in tensor_order(cfg):
        w = W[name]
        t = typ
        if typ in ("tq1_0", "tq2_0") and not name.startswith("blk."):
            t = "f16"  # llama.cpp keeps embeddings and head out of the ternary types
        if permute and name.endswith("attn_q.weight"):
            w = permute_interleaved(w, cfg.n_heads)
        elif permute and name.endswith("attn_k.weight"):
            w = permute_interleaved(w, cfg.n_kv_heads)
        g.add_tensor(name, w, t)


def random_ternary(cfg_hf, seed, scales):
    """A llama model with TQ-friendly dims whose linear layers are f16 s x T."""
    rng = np.random.default_rng(seed)
    D, H, L, nh, nkv = 256, 512, 2, 4, 2
    cfg = M.Config(arch="llama", dim=D, hidden_dim=H, n_layers=L, n_heads=nh, n_kv_heads=nkv, head_dim=D // nh,
                   vocab_size=cfg_hf.vocab_size, max_seq_len=256, rope_theta=10000.0, norm_eps=1e-5,
                   rope_style="interleaved", tied_embeddings=True)
    # one scale layout per layer type; column blocks need blocks a multiple of
    # 256 wide (a TQ block has one scale), so only ffn_down (512 columns) has them
    layouts = {"attn_q": ("tensor", "row"), "attn_k": ("row", "rowblocks"), "attn_v": ("rowblocks", "tensor"),
               "attn_output": ("row", "tensor"), "ffn_gate": ("rowblocks", "row"), "ffn_up": ("tensor", "row"),
               "ffn_down": ("colblocks", "colblocks")}

    def ternary(rows, cols, gain, name, layer):
        t = rng.choice(np.array([-1.0, 0.0, 1.0]), size=(rows, cols), p=[0.3, 0.4, 0.3])
        base = gain / np.sqrt(cols * 0.6)
        lay = "block" if scales == "block" else layouts[name][layer % 2]
        if lay == "tensor":
            s = np.full((rows, 1), base)
        elif lay == "row":
            s = base * rng.uniform(0.7, 1.4, size=(rows, 1))
        elif lay == "rowblocks":
            s = np.repeat(base * rng.uniform(0.7, 1.4, size=(2, 1)), rows // 2, axis=0)
        elif lay == "colblocks":
            s = np.repeat(base * rng.uniform(0.7, 1.4, size=(1, 2)), cols // 2, axis=1)
        else:
            s = np.repeat(base * rng.uniform(0.7, 1.4, size=(rows, cols // 256)), 256, axis=1)
        s = s.astype(np.float16).astype(np.float32)  # TQ keeps f16 scales
        w = (t * s).astype(np.float32)
        if lay == "row":
            w[rows // 3] = 0.0  # an all-zero row: its blocks get d = 0
        return w

    W = {"token_embd.weight": (rng.standard_normal((cfg.vocab_size, D)) * (2.5 / np.sqrt(D))).astype(np.float32),
         "output_norm.weight": (1.0 + 0.1 * rng.standard_normal(D)).astype(np.float32)}
    for l in range(L):
        p = "blk.%d." % l
        W[p + "attn_norm.weight"] = (1.0 + 0.1 * rng.standard_normal(D)).astype(np.float32)
        W[p + "ffn_norm.weight"] = (1.0 + 0.1 * rng.standard_normal(D)).astype(np.float32)
        for n, (r, c, gain) in (("attn_q", (D, D, 1.2)), ("attn_k", (D // nh * nkv, D, 1.2)),
                                ("attn_v", (D // nh * nkv, D, 1.2)), ("attn_output", (D, D, 3.5)),
                                ("ffn_gate", (H, D, 1.2)), ("ffn_up", (H, D, 1.2)), ("ffn_down", (D, H, 3.5))):
            W[p + n + ".weight"] = ternary(r, c, gain, n, l)
    return cfg, W


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--hf", metavar="DIR")
    ap.add_argument("--llama2c", metavar="BIN")
    ap.add_argument("--tokenizer", metavar="TOKBIN")
    ap.add_argument("--random-ternary", action="store_true")
    ap.add_argument("--type", default="f32", choices=sorted(ENCODERS))
    ap.add_argument("--alignment", type=int, default=32)
    ap.add_argument("--all-types", action="store_true")
    ap.add_argument("--scales", default="mixed", choices=["mixed", "block"])
    ap.add_argument("--expect", metavar="FILE")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    g = Writer(a.alignment)
    if a.random_ternary:
        if not a.hf:
            ap.error("--random-ternary needs --hf DIR for the tokenizer")
        cfg_hf, _, _ = M.load_hf(a.hf)
        cfg, W = random_ternary(cfg_hf, a.seed, a.scales)
        add_llama_config(g, cfg, "random-ternary")
        add_hf_tokenizer(g, a.hf, cfg.vocab_size)
        add_weights(g, cfg, W, a.type, permute=False)
    elif a.hf:
        cfg, W, _ = M.load_hf(a.hf)
        if cfg.arch != "llama":
            ap.error("%s: only llama models (GGUF has no BitNet sub-norms here)" % a.hf)
        add_llama_config(g, cfg, os.path.basename(a.hf.rstrip("/")))
        add_hf_tokenizer(g, a.hf, cfg.vocab_size)
        add_weights(g, cfg, W, a.type, permute=True)
    elif a.llama2c:
        if not a.tokenizer:
            ap.error("--llama2c needs --tokenizer TOKBIN")
        cfg, W = llama2c.load(a.llama2c)
        add_llama_config(g, cfg, os.path.basename(a.llama2c))
        add_spm_tokenizer(g, a.tokenizer, cfg.vocab_size)
        add_weights(g, cfg, W, a.type, permute=False)
    else:
        ap.error("give --hf, --llama2c or --random-ternary")
    if a.all_types:
        for key, vtype, value in ALL_TYPES:
            g.add(key, vtype, value)
    g.write(a.out)
    if a.expect:
        g.write_expect(a.expect)


if __name__ == "__main__":
    main()
