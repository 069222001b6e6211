#!/usr/bin/python3
"""Write synthetic LLaMA GGUF files (and, with --convert, the Trillium packs made from them)
for the Trillium vs wllama benchmark (bench/wllama/).

    bench/make_gguf.py OUT_DIR [--size 100m|700m] [--types tq2_0,tq1_0,q4_0,q8_0,f16] [--seed S]
                       [--convert build/native/converter/trillium-convert] [--variants bcq2,lowrank]

100m: hidden 768, 12 layers, 12 heads, MLP 2048, vocab 32000 (about 110M parameters);
700m: hidden 1536, 24 layers, 16 heads, MLP 4096, vocab 32000 (about 780M parameters).
Writes OUT_DIR/synth-SIZE-TYPE.gguf through tests/reference/gguf_writer.py (block layouts as
ggml defines them) and, with --convert, OUT_DIR/synth-SIZE-TYPE/ (a pack) per GGUF, plus the
Trillium-only variants from the F16 GGUF (bcq2: 2-bit binary-coded; lowrank: rank slices at half
the full rank). Files that exist are kept (delete them to rebuild).

Weights are random and seeded: every linear layer is an f16 per-row scale times {-1, 0, +1}, so
TQ1_0/TQ2_0 hold them exactly and the converter turns them into Trillium ternary losslessly (one
scale per row: every 256-block of a row has the same d). The other types quantize the same
values. Embeddings and the output head: Q8_0 for every quantized type (TQ2_0, TQ1_0, Q4_0, Q8_0)
and F16 for F16. (llama-quantize would pick Q4_K/Q6_K for TQ* embeddings/head, which Trillium's
converter does not read; Q8_0 is the nearest type both engines load unchanged, so both engines run
the same head.) Norms are F32. Untied head. The tokenizer is the byte-level BPE of the reference
generator's llama-tied preset, padded to 32000 ids with unused tokens; the bench feeds token ids.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(os.path.dirname(HERE), "tests", "reference")
sys.path.insert(0, REF)
import gguf_writer as G  # noqa: E402
import model as M  # noqa: E402
import tokenizer as T  # noqa: E402

SIZES = {
    "100m": dict(dim=768, n_layers=12, n_heads=12, hidden_dim=2048),
    "700m": dict(dim=1536, n_layers=24, n_heads=16, hidden_dim=4096),
}
TYPES = ["tq2_0", "tq1_0", "q4_0", "q8_0", "f16"]
VOCAB = 32000

# trillium-convert arguments per GGUF type (GGUF Q8_0 and TQ* tensors are kept losslessly;
# F16/Q4_0 tensors become --dtype). Ternary packs run with int8 activations, as llama.cpp's
# TQ2_0 x Q8_K dot products quantize activations to int8 per 256-block.
CONVERT = {
    "tq2_0": ["--act-quant", "int8", "--dtype", "q8_0"],
    "tq1_0": ["--act-quant", "int8", "--dtype", "q8_0", "--ternary-layout", "t1"],
    "q4_0": ["--dtype", "q8_0"],
    "q8_0": ["--dtype", "q8_0"],
    "f16": ["--dtype", "f16"],
}
# Trillium-only variants, converted from the F16 GGUF (embeddings/head q8_0, as the quantized rows)
VARIANTS = {
    "bcq2": ["--dequant", "--dtype", "q8_0", "--bcq", "2"],
    "lowrank": ["--dequant", "--dtype", "q8_0", "--lowrank", "0.5"],
}


def head_type(typ):
    return "f16" if typ == "f16" else "q8_0"


def weights(cfg, seed):
    """name -> float32 array, tensor by tensor (a generator: the 700m model is 3 GB as f32)."""
    rng = np.random.default_rng(seed)
    D, H, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size

    def ternary(rows, cols):
        t = rng.integers(-1, 2, size=(rows, cols), dtype=np.int8).astype(np.float32)
        s = (rng.uniform(0.7, 1.4, size=(rows, 1)) / np.sqrt(cols * 0.67)).astype(np.float16).astype(np.float32)
        return t * s

    yield "token_embd.weight", rng.standard_normal((V, D), dtype=np.float32) * np.float32(1 / np.sqrt(D))
    for l in range(cfg.n_layers):
        p = "blk.%d." % l
        yield p + "attn_norm.weight", np.ones(D, np.float32)
        for n, (r, c) in (("attn_q", (D, D)), ("attn_k", (D, D)), ("attn_v", (D, D)), ("attn_output", (D, D))):
            yield p + n + ".weight", ternary(r, c)
        yield p + "ffn_norm.weight", np.ones(D, np.float32)
        for n, (r, c) in (("ffn_gate", (H, D)), ("ffn_up", (H, D)), ("ffn_down", (D, H))):
            yield p + n + ".weight", ternary(r, c)
    yield "output_norm.weight", np.ones(D, np.float32)
    yield "output.weight", rng.standard_normal((V, D), dtype=np.float32) * np.float32(1 / np.sqrt(D))


def write_gguf(path, size, typ, seed, tokdir):
    cfg = M.Config(arch="llama", vocab_size=VOCAB, max_seq_len=2048, rope_style="interleaved",
                   tied_embeddings=False, **SIZES[size])
    g = G.Writer()
    G.add_llama_config(g, cfg, "synth-%s-%s" % (size, typ))
    g.add("general.file_type", G.U32, {"f16": 1, "q4_0": 2, "q8_0": 7, "tq1_0": 36, "tq2_0": 37}[typ])
    G.add_hf_tokenizer(g, tokdir, VOCAB)
    n = 0
    for name, w in weights(cfg, seed):
        n += w.size
        t = typ if name.startswith("blk.") else head_type(typ)
        g.add_tensor(name, w, t)
    tmp = path + ".part"
    g.write(tmp)
    os.replace(tmp, path)
    print("wrote %s: %.1fM parameters, %.1f MB" % (path, n / 1e6, os.path.getsize(path) / 1e6), flush=True)


def write_non_ascii(path, tokdir):
    """The ids whose bytes are not all ASCII: llama-server (wllama) throws on a completion whose
    text is not valid UTF-8, which a random model's byte tokens make; the bench bans these ids
    in wllama's sampler (logit_bias) so its greedy decode always produces valid text."""
    import json
    with open(os.path.join(tokdir, "tokenizer.json")) as f:
        vocab = json.load(f)["model"]["vocab"]
    char_to_byte = {c: b for b, c in T.BYTE_TO_CHAR.items()}
    ids = sorted(i for s, i in vocab.items() if any(char_to_byte.get(c, 0x80) >= 0x80 for c in s))
    with open(path, "w") as f:
        json.dump({"note": "token ids whose bytes are not all ASCII (see make_gguf.py)", "ids": ids}, f)


def convert(converter, gguf, pack, args):
    cmd = [converter, gguf, "-o", pack, "--force", "--name", os.path.basename(pack)] + args
    print(" ".join(cmd), flush=True)
    tmp = pack + ".part"
    subprocess.run(cmd[:3] + [tmp] + cmd[4:], check=True, stdout=subprocess.DEVNULL)
    if os.path.exists(pack):
        import shutil
        shutil.rmtree(pack)
    os.replace(tmp, pack)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--size", choices=sorted(SIZES), default="100m")
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--convert", metavar="TRILLIUM_CONVERT")
    ap.add_argument("--variants", default="", help="comma list of %s (needs --convert and f16)" % ",".join(VARIANTS))
    a = ap.parse_args()
    types = [t for t in a.types.split(",") if t]
    variants = [v for v in a.variants.split(",") if v]
    for t in types:
        if t not in TYPES:
            ap.error("--types: unknown type %s (known: %s)" % (t, ",".join(TYPES)))
    for v in variants:
        if v not in VARIANTS:
            ap.error("--variants: unknown variant %s (known: %s)" % (v, ",".join(VARIANTS)))
    if variants and not a.convert:
        ap.error("--variants needs --convert")
    os.makedirs(a.out, exist_ok=True)
    need = set(types) | ({"f16"} if variants else set())
    with tempfile.TemporaryDirectory() as tok:  # borrow a real tokenizer, as make_synthetic.py does
        subprocess.run([sys.executable, os.path.join(REF, "gen_model.py"), tok, "--preset", "llama-tied"],
                       check=True, capture_output=True)
        write_non_ascii(os.path.join(a.out, "non-ascii-tokens.json"), tok)
        for t in TYPES:
            path = os.path.join(a.out, "synth-%s-%s.gguf" % (a.size, t))
            if t in need and not os.path.exists(path):
                write_gguf(path, a.size, t, a.seed, tok)
    if a.convert:
        for t in types:
            gguf = os.path.join(a.out, "synth-%s-%s.gguf" % (a.size, t))
            pack = os.path.join(a.out, "synth-%s-%s" % (a.size, t))
            if not os.path.exists(os.path.join(pack, "manifest.json")):
                convert(a.convert, gguf, pack, CONVERT[t])
        for v in variants:
            gguf = os.path.join(a.out, "synth-%s-f16.gguf" % a.size)
            pack = os.path.join(a.out, "synth-%s-%s" % (a.size, v))
            if not os.path.exists(os.path.join(pack, "manifest.json")):
                convert(a.convert, gguf, pack, VARIANTS[v])


if __name__ == "__main__":
    main()
