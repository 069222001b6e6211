"""Read llama2.c legacy checkpoints (the format run.c reads).

Header: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
seq_len); a negative vocab_size means the classifier is not shared with the
token embedding and is stored last. Then float32 arrays, in this order:

    token_embedding (V, D)      rms_att (L, D)
    wq (L, D, D)                wk (L, kvd, D)     wv (L, kvd, D)    wo (L, D, D)
    rms_ffn (L, D)
    w1 (L, H, D)                w2 (L, D, H)       w3 (L, H, D)
    rms_final (D)
    freq_cis_real (seq_len, hs/2)   freq_cis_imag (seq_len, hs/2)   (unused: RoPE is recomputed)
    [wcls (V, D)]               only when vocab_size < 0

with hs = D / n_heads and kvd = n_kv_heads * hs. run.c's semantics: RoPE on
interleaved pairs with theta 10000, RMSNorm eps 1e-5, SwiGLU (w1 gate, w3 up,
w2 down).
"""

import struct

import numpy as np

from model import Config, check_weights

LLAMA2C_MAGIC = 0x616B3432  # "ak42": the newer export versions, not this format


def load(path):
    """-> (Config, float32 weights by pack name)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 28:
        raise ValueError("%s: shorter than the 28-byte header" % path)
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack_from("<7i", data, 0)
    if dim == LLAMA2C_MAGIC:
        raise ValueError("%s: llama2.c export version 1/2 (magic ak42), not the legacy format" % path)
    shared = vocab > 0
    vocab = abs(vocab)
    for k, v in dict(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads,
                     n_kv_heads=n_kv, vocab_size=vocab, seq_len=seq_len).items():
        if v <= 0:
            raise ValueError("%s: header field %s = %d" % (path, k, v))
    if dim % n_heads or n_heads % n_kv:
        raise ValueError("%s: dim %d, n_heads %d, n_kv_heads %d do not divide" % (path, dim, n_heads, n_kv))
    hs = dim // n_heads
    kvd = n_kv * hs
    L, D, H, V = n_layers, dim, hidden, vocab
    layout = [("token_embedding", (V, D)), ("rms_att", (L, D)), ("wq", (L, D, D)), ("wk", (L, kvd, D)),
              ("wv", (L, kvd, D)), ("wo", (L, D, D)), ("rms_ffn", (L, D)), ("w1", (L, H, D)),
              ("w2", (L, D, H)), ("w3", (L, H, D)), ("rms_final", (D,)),
              ("freq_cis_real", (seq_len, hs // 2)), ("freq_cis_imag", (seq_len, hs // 2))]
    if not shared:
        layout.append(("wcls", (V, D)))
    need = 28 + 4 * sum(int(np.prod(s)) for _, s in layout)
    if len(data) < need:
        raise ValueError("%s: %d bytes, the header implies %d" % (path, len(data), need))
    arrays, off = {}, 28
    for name, shape in layout:
        n = int(np.prod(shape))
        arrays[name] = np.frombuffer(data, dtype="<f4", count=n, offset=off).astype(np.float32).reshape(shape)
        off += 4 * n
    cfg = Config(arch="llama", dim=D, hidden_dim=H, n_layers=L, n_heads=n_heads, n_kv_heads=n_kv,
                 head_dim=hs, vocab_size=V, max_seq_len=seq_len, rope_theta=10000.0, norm_eps=1e-5,
                 rope_style="interleaved", mlp="swiglu", sub_norms=False, tied_embeddings=shared)
    W = {"token_embd.weight": arrays["token_embedding"], "output_norm.weight": arrays["rms_final"]}
    if not shared:
        W["output.weight"] = arrays["wcls"]
    for l in range(L):
        p = "blk.%d." % l
        W[p + "attn_norm.weight"] = arrays["rms_att"][l]
        W[p + "attn_q.weight"] = arrays["wq"][l]
        W[p + "attn_k.weight"] = arrays["wk"][l]
        W[p + "attn_v.weight"] = arrays["wv"][l]
        W[p + "attn_output.weight"] = arrays["wo"][l]
        W[p + "ffn_norm.weight"] = arrays["rms_ffn"][l]
        W[p + "ffn_gate.weight"] = arrays["w1"][l]
        W[p + "ffn_up.weight"] = arrays["w3"][l]
        W[p + "ffn_down.weight"] = arrays["w2"][l]
    check_weights(cfg, W)
    return cfg, W


def write(path, cfg, W):
    """Write a legacy checkpoint (used by tests to make small llama2.c files).
    freq_cis tables are filled as llama2.c's export does (theta 10000)."""
    hs = cfg.dim // cfg.n_heads
    if cfg.head_dim != hs or cfg.rope_style != "interleaved":
        raise ValueError("llama2.c checkpoints need head_dim == dim / n_heads and interleaved RoPE")
    L = cfg.n_layers
    vocab = cfg.vocab_size if cfg.tied_embeddings else -cfg.vocab_size
    parts = [struct.pack("<7i", cfg.dim, cfg.hidden_dim, L, cfg.n_heads, cfg.n_kv_heads, vocab, cfg.max_seq_len)]

    def put(a):
        parts.append(np.ascontiguousarray(a, dtype="<f4").tobytes())

    def stack(n):
        return np.stack([W["blk.%d.%s" % (l, n)] for l in range(L)])

    put(W["token_embd.weight"])
    for n in ("attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
              "ffn_norm.weight", "ffn_gate.weight", "ffn_down.weight", "ffn_up.weight"):
        put(stack(n))
    put(W["output_norm.weight"])
    freqs = 1.0 / (10000.0 ** (np.arange(0, hs, 2)[: hs // 2] / hs))
    ang = np.outer(np.arange(cfg.max_seq_len), freqs)
    put(np.cos(ang))
    put(np.sin(ang))
    if not cfg.tied_embeddings:
        put(W["output.weight"])
    with open(path, "wb") as f:
        f.write(b"".join(parts))
