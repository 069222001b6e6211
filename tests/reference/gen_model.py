#!/usr/bin/python3
"""Generate a small seeded random model in Hugging Face layout (or llama2.c's).

    gen_model.py OUT_DIR --preset NAME [--seed S] [--dtype f32|f16|bf16] [--shards N]

HF presets write OUT_DIR/config.json, model.safetensors (or model-0000k-of-
0000n.safetensors + model.safetensors.index.json with --shards N > 1),
tokenizer.json and tokenizer_config.json. The llama2c preset writes
OUT_DIR/model.bin (legacy llama2.c checkpoint) and OUT_DIR/tokenizer.bin.

Weights are random normals scaled so that each layer changes the residual
stream noticeably and the logits are spread over a few units (the greedy
continuation then has a clear winner at each step; a summary of the top-2
gaps on the golden prompts goes to stderr). The tokenizers are real: BPE
merges learned by a small trainer on sample_text.SAMPLE_TEXT.
Everything is a pure function of (preset, seed, dtype, shards).
"""

import argparse
import collections
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import llama2c  # noqa: E402
import model as M  # noqa: E402
import safetensors  # noqa: E402
import tokenizer as T  # noqa: E402
from sample_text import GOLDEN_PROMPTS, SAMPLE_TEXT  # noqa: E402

# ------------------------------------------------------------------ presets

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>"]
CHATML_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"]

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

PRESETS = {
    # Tied head, plain multi-head attention, GPT-2 ByteLevel pre-tokenizer;
    # the special tokens are also in model.vocab (as GPT-2 has <|endoftext|>),
    # merges as "a b" strings.
    "llama-tied": dict(
        arch="llama", hidden=64, inter=160, layers=2, heads=4, kv_heads=4, head_dim=16, vocab=384,
        theta=10000.0, eps=1e-5, tied=True, act="silu", pretok="gpt2", specials=CHATML_SPECIALS,
        specials_in_vocab=True, merges_as_pairs=False, ignore_merges=False, template=CHATML_TEMPLATE,
        seed=9),
    # Untied head, GQA 8 heads / 2 kv heads, Llama 3 pre-tokenizer (Split +
    # ByteLevel without regex, ignore_merges), merges as ["a", "b"] pairs,
    # rope_theta 500000 like Llama 3.
    "llama-untied-gqa": dict(
        arch="llama", hidden=128, inter=352, layers=3, heads=8, kv_heads=2, head_dim=16, vocab=512,
        theta=500000.0, eps=1e-5, tied=False, act="silu", pretok="llama3", specials=LLAMA3_SPECIALS,
        specials_in_vocab=False, merges_as_pairs=True, ignore_merges=True, template=LLAMA3_TEMPLATE,
        seed=10),
    # Odd shapes: hidden 48, intermediate 100, vocab 300 (none a multiple of
    # 32: partial q8_0 blocks), head_dim 20 != 48 / 4, rope_theta 1e6.
    "llama-odd": dict(
        arch="llama", hidden=48, inter=100, layers=2, heads=4, kv_heads=2, head_dim=20, vocab=300,
        theta=1000000.0, eps=1e-6, tied=True, act="silu", pretok="gpt2", specials=CHATML_SPECIALS,
        specials_in_vocab=False, merges_as_pairs=False, ignore_merges=False, template=CHATML_TEMPLATE,
        seed=4),
    # BitNet b1.58: relu2 MLP, attn/ffn sub-norms, tied, GQA, Llama 3
    # tokenizer like bitnet-b1.58-2B-4T. Linear weights are already ternary
    # (per-tensor scale s times {-1, 0, +1}), as in a BitNet checkpoint.
    "bitnet": dict(
        arch="bitnet", hidden=64, inter=172, layers=2, heads=4, kv_heads=2, head_dim=16, vocab=448,
        theta=10000.0, eps=1e-5, tied=True, act="relu2", pretok="llama3", specials=LLAMA3_SPECIALS,
        specials_in_vocab=False, merges_as_pairs=False, ignore_merges=True, template=LLAMA3_TEMPLATE,
        seed=5),
    # llama2.c legacy checkpoint with an untied classifier (negative vocab in
    # the header) and GQA, plus a SentencePiece-style tokenizer.bin.
    "llama2c-untied": dict(
        arch="llama", hidden=64, inter=172, layers=2, heads=4, kv_heads=2, head_dim=16, vocab=512,
        theta=10000.0, eps=1e-5, tied=False, act="silu", seed=15, format="llama2c"),
}
MAX_POS = 256


# ------------------------------------------------------------------ weights


def make_weights(p, rng):
    """float32 weights by pack name for preset p."""
    D, H, V, L = p["hidden"], p["inter"], p["vocab"], p["layers"]
    qd, kvd = p["heads"] * p["head_dim"], p["kv_heads"] * p["head_dim"]
    ternary = p["arch"] == "bitnet"

    # Gains: 1.2 into the attention / MLP, 3.5 out of them (o_proj, down_proj),
    # so the layers outweigh the token's own embedding in the residual stream.
    # Smaller ones make random models repeat the last token for ever (tied
    # heads especially), which would make greedy goldens weak tests.
    def linear(rows, cols, gain=1.2):
        if ternary:
            t = rng.choice(np.array([-1.0, 0.0, 1.0]), size=(rows, cols), p=[1 / 3, 1 / 3, 1 / 3])
            s = np.float32(gain / np.sqrt(cols * 2 / 3) * rng.uniform(0.8, 1.25))
            return (t * s).astype(np.float32)
        return (rng.standard_normal((rows, cols)) * (gain / np.sqrt(cols))).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    # Logit spread: the normed final state has rms ~1, so a head with std
    # 2.5/sqrt(D) gives logits with std ~2.5.
    W = {"token_embd.weight": (rng.standard_normal((V, D)) * (2.5 / np.sqrt(D))).astype(np.float32)}
    for l in range(L):
        b = "blk.%d." % l
        W[b + "attn_norm.weight"] = norm(D)
        W[b + "attn_q.weight"] = linear(qd, D)
        W[b + "attn_k.weight"] = linear(kvd, D)
        W[b + "attn_v.weight"] = linear(kvd, D)
        W[b + "attn_output.weight"] = linear(D, qd, 3.5)
        W[b + "ffn_norm.weight"] = norm(D)
        W[b + "ffn_gate.weight"] = linear(H, D)
        W[b + "ffn_up.weight"] = linear(H, D)
        W[b + "ffn_down.weight"] = linear(D, H, 3.5)
        if p["arch"] == "bitnet":
            W[b + "attn_sub_norm.weight"] = norm(qd)
            W[b + "ffn_sub_norm.weight"] = norm(H)
    W["output_norm.weight"] = norm(D)
    if not p["tied"]:
        W["output.weight"] = (rng.standard_normal((V, D)) * (2.5 / np.sqrt(D))).astype(np.float32)
    return W


PACK_TO_HF = {v: k for k, v in M.HF_NAMES.items()}
PACK_TO_HF_LAYER = {v: k for k, v in M.HF_LAYER_NAMES.items()}


def to_hf_names(W):
    out = {}
    for name, t in W.items():
        if name in PACK_TO_HF:
            out[PACK_TO_HF[name]] = t
        else:
            _, l, rest = name.split(".", 2)
            out["model.layers.%s.%s" % (l, PACK_TO_HF_LAYER[rest])] = t
    return out


def model_config(p):
    return M.Config(arch=p["arch"], dim=p["hidden"], hidden_dim=p["inter"], n_layers=p["layers"],
                    n_heads=p["heads"], n_kv_heads=p["kv_heads"], head_dim=p["head_dim"],
                    vocab_size=p["vocab"], max_seq_len=MAX_POS, rope_theta=p["theta"], norm_eps=p["eps"],
                    rope_style="interleaved" if p.get("format") == "llama2c" else "half",
                    mlp="relu2" if p["act"] == "relu2" else "swiglu", sub_norms=p["arch"] == "bitnet",
                    tied_embeddings=p["tied"])


def hf_config(p, name, dtype="f32"):
    bos, eos = p["vocab"] - len(p["specials"]), p["vocab"] - len(p["specials"]) + 1
    c = {
        "architectures": ["BitnetForCausalLM"] if p["arch"] == "bitnet" else ["LlamaForCausalLM"],
        "model_type": "bitnet" if p["arch"] == "bitnet" else "llama",
        "hidden_size": p["hidden"], "intermediate_size": p["inter"], "num_hidden_layers": p["layers"],
        "num_attention_heads": p["heads"], "num_key_value_heads": p["kv_heads"], "head_dim": p["head_dim"],
        "vocab_size": p["vocab"], "max_position_embeddings": MAX_POS, "rope_theta": p["theta"],
        "rope_scaling": None, "rms_norm_eps": p["eps"], "tie_word_embeddings": p["tied"],
        "hidden_act": p["act"], "bos_token_id": bos, "eos_token_id": eos, "attention_bias": False,
        "mlp_bias": False, "initializer_range": 0.02, "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype],
        "transformers_version": "4.46.0", "_trillium_preset": name,
    }
    return c


# ------------------------------------------------------- byte-level BPE trainer


def train_bpe(text, n_tokens, pretokenize):
    """Learn merges until there are n_tokens base + merged tokens.
    Counts pair frequencies over the pre-tokenized words; the most frequent
    pair wins, ties broken by the smaller (a, b) so training is deterministic.
    -> (vocab list in id order, merges list of (a, b))."""
    words = collections.Counter(T.byte_encode(w) for w in pretokenize(text))
    splits = {w: list(w) for w in words}
    vocab = [T.BYTE_TO_CHAR[b] for b in T.BYTE_ORDER]
    known = set(vocab)
    merges = []
    while len(vocab) < n_tokens:
        pairs = collections.Counter()
        for w, f in words.items():
            s = splits[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += f
        if not pairs:
            raise ValueError("sample text too small for %d tokens" % n_tokens)
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        new = best[0] + best[1]
        if new not in known:
            known.add(new)
            vocab.append(new)
        for w in words:
            s = splits[w]
            if len(s) < 2:
                continue
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == best[0] and s[i + 1] == best[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    return vocab, merges


def make_tokenizer_json(p):
    specials = p["specials"]
    n_model = p["vocab"] - (0 if p["specials_in_vocab"] else len(specials))
    n_learned = p["vocab"] - len(specials)
    pretok = T.pretokenize_llama3 if p["pretok"] == "llama3" else T.pretokenize_gpt2
    vocab, merges = train_bpe(SAMPLE_TEXT, n_learned, pretok)
    vocab_map = {s: i for i, s in enumerate(vocab)}
    added = []
    for k, s in enumerate(specials):
        i = n_learned + k
        if p["specials_in_vocab"]:
            vocab_map[s] = i
        added.append({"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    assert len(vocab_map) == n_model
    if p["pretok"] == "llama3":
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": T.LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
        bos = specials[0]
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {bos: {"id": bos, "ids": [n_learned], "tokens": [bos]}}}
    else:
        pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
        post = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": pre, "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": p["ignore_merges"], "vocab": vocab_map,
                  "merges": [list(m) if p["merges_as_pairs"] else "%s %s" % m for m in merges]},
    }


def make_tokenizer_config(p):
    s = p["specials"]
    decoder = {}
    for k, tok in enumerate(s):
        decoder[str(p["vocab"] - len(s) + k)] = {"content": tok, "lstrip": False, "normalized": False,
                                                  "rstrip": False, "single_word": False, "special": True}
    return {"added_tokens_decoder": decoder, "bos_token": s[0], "eos_token": s[1],
            "clean_up_tokenization_spaces": False, "model_max_length": MAX_POS,
            "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": p["template"]}


# --------------------------------------------- SentencePiece-style (llama2.c)


def train_spm(text, vocab_size):
    """A llama2.c tokenizer.bin vocabulary: <unk>, <s>, </s>, the 256 byte
    tokens <0x00>..<0xFF>, then BPE pieces over code points (each word carries
    its leading space, as SentencePiece's U+2581 does; llama2.c stores it as a
    real space), then the single characters. Scores: 0 for the first 259, then
    0, -1, -2, ... in order, as in llama2.c's exports.
    -> (pieces as bytes, scores)."""
    body = " " + " ".join(text.split())  # SentencePiece folds whitespace; newlines go to byte fallback
    words = collections.Counter()
    for w in body.split(" ")[1:]:
        words[" " + w] += 1
    chars = collections.Counter(c for w, f in words.items() for c in w for _ in range(f))
    char_pieces = sorted((c for c, n in chars.items() if n >= 2), key=lambda c: (-chars[c], c))
    splits = {w: list(w) for w in words}
    n_pieces = vocab_size - 259 - len(char_pieces)
    merged, known = [], set(char_pieces)
    while len(merged) < n_pieces:
        pairs = collections.Counter()
        for w, f in words.items():
            s = splits[w]
            for a, b in zip(s, s[1:]):
                if a in known and b in known:
                    pairs[(a, b)] += f
        if not pairs:
            raise ValueError("sample text too small for %d pieces" % vocab_size)
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        new = best[0] + best[1]
        if new not in known:
            known.add(new)
            merged.append(new)
        for w in words:
            s, out, i = splits[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == best[0] and s[i + 1] == best[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % b for b in range(256)]
    scores = [0.0] * len(pieces)
    for k, s in enumerate(merged + char_pieces):
        pieces.append(s.encode("utf-8"))
        scores.append(-float(k))
    return pieces, scores


def write_tokenizer_bin(path, pieces, scores):
    out = [struct.pack("<i", max(len(p) for p in pieces))]
    for p, s in zip(pieces, scores):
        out.append(struct.pack("<fi", s, len(p)) + p)
    with open(path, "wb") as f:
        f.write(b"".join(out))


# ------------------------------------------------------------------- checks


def check_gaps(cfg, W, tok, bos, n=32):
    """Smallest top-2 logit gap along the greedy continuation of each golden
    prompt, over the pack encodings f32, f16 and q8_0. A gap near 0 would
    make greedy comparisons with an f32 core flaky."""
    gaps = []
    for prompt in GOLDEN_PROMPTS:
        ids = tok.encode(prompt, bos=bos)
        g = float("inf")
        for enc in ("f32", "f16", "q8_0"):
            g = min(g, min(M.greedy(cfg, M.encode_weights(W, enc), ids, n)[1]))
        gaps.append(g)
    return gaps


# --------------------------------------------------------------------- main


def generate(out_dir, preset, seed=None, dtype="f32", shards=1, check=True):
    p = PRESETS[preset]
    seed = p["seed"] if seed is None else seed
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    cfg = model_config(p)
    W = make_weights(p, rng)
    if p.get("format") == "llama2c":
        cfg.max_seq_len = MAX_POS
        llama2c.write(os.path.join(out_dir, "model.bin"), cfg, W)
        pieces, scores = train_spm(SAMPLE_TEXT, p["vocab"])
        write_tokenizer_bin(os.path.join(out_dir, "tokenizer.bin"), pieces, scores)
        tok = T.SpmTokenizer(pieces, scores)
        gaps = check_gaps(cfg, W, tok, True) if check else []
        return gaps
    st_dtype = {"f32": "F32", "f16": "F16", "bf16": "BF16"}[dtype]
    for old in os.listdir(out_dir):
        if old.startswith("model") and (old.endswith(".safetensors") or old.endswith(".index.json")):
            os.remove(os.path.join(out_dir, old))
    safetensors.write_sharded(out_dir, to_hf_names(W), st_dtype, shards)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(p, preset, dtype), f, indent=2)
        f.write("\n")
    tj = make_tokenizer_json(p)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(make_tokenizer_config(p), f, indent=2, ensure_ascii=False)
        f.write("\n")
    if not check:
        return []
    cfg2, W2, _ = M.load_hf(out_dir)  # what golden.py will see (after dtype rounding)
    tok = T.Gpt2BpeTokenizer(tj, p["specials"][0], p["specials"][1])
    return check_gaps(cfg2, W2, tok, True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=None, help="default: the preset's")
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--no-check", action="store_true", help="skip the top-2 gap check")
    a = ap.parse_args(argv)
    gaps = generate(a.out_dir, a.preset, a.seed, a.dtype, max(1, a.shards), not a.no_check)
    if gaps:
        sys.stderr.write("gen_model: %s: smallest top-2 logit gap per golden prompt (32 greedy steps, f32/f16/q8_0): %s\n"
                         % (a.preset, ", ".join("%.4f" % g for g in gaps)))
        if min(gaps) < 1e-3:
            sys.stderr.write("gen_model: warning: a gap below 1e-3; greedy goldens may be flaky, "
                             "try another --seed\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
