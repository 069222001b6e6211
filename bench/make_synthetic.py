#!/usr/bin/env python3
"""Write a synthetic LLaMA-shaped Hugging Face checkpoint for benchmarks.

    bench/make_synthetic.py OUT_DIR [--size 100m|700m|1b] [--seed S]

100m: hidden 768, 12 layers, 12 heads, MLP 2048, vocab 32000 (about 110M parameters);
700m: hidden 1536, 24 layers, 16 heads, MLP 4096, vocab 32000;
1b: hidden 2048, 22 layers, 32 heads, 4 kv heads, MLP 5632, vocab 32000 (TinyLlama-1.1B's shape, about 1.1B).
Weights are random (f16 safetensors, ternary-friendly: the converter's --ternary makes them
exactly ternary); the tokenizer is the byte-level BPE of the reference generator's llama-tied
preset (its ids fit in the larger vocabulary). Speed does not depend on the values.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(os.path.dirname(HERE), "tests", "reference")
sys.path.insert(0, REF)
import safetensors  # noqa: E402  (tests/reference/safetensors.py)

SIZES = {
    "100m": dict(hidden=768, layers=12, heads=12, inter=2048, vocab=32000),
    "700m": dict(hidden=1536, layers=24, heads=16, inter=4096, vocab=32000),
    "1b": dict(hidden=2048, layers=22, heads=32, kv_heads=4, inter=5632, vocab=32000),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--size", choices=sorted(SIZES), default="100m")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    p = SIZES[a.size]
    D, H, L, V, nh = p["hidden"], p["inter"], p["layers"], p["vocab"], p["heads"]
    nkv = p.get("kv_heads", nh)
    kvd = D // nh * nkv
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:  # borrow a real tokenizer
        subprocess.run([sys.executable, os.path.join(REF, "gen_model.py"), tmp, "--preset", "llama-tied"],
                       check=True, capture_output=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(tmp, f), os.path.join(a.out, f))
        with open(os.path.join(tmp, "config.json")) as f:
            small = json.load(f)

    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D,
        "intermediate_size": H, "num_hidden_layers": L, "num_attention_heads": nh,
        "num_key_value_heads": nkv, "vocab_size": V, "max_position_embeddings": 2048,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "hidden_act": "silu",
        "bos_token_id": small.get("bos_token_id"), "eos_token_id": small.get("eos_token_id"),
        "torch_dtype": "float16",
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=np.float32) / np.sqrt(cols)).astype(np.float16)

    t = {"model.embed_tokens.weight": mat(V, D), "lm_head.weight": mat(V, D),
         "model.norm.weight": np.ones(D, np.float16)}
    for i in range(L):
        b = "model.layers.%d." % i
        t[b + "input_layernorm.weight"] = np.ones(D, np.float16)
        t[b + "post_attention_layernorm.weight"] = np.ones(D, np.float16)
        for n in ("q", "k", "v", "o"):
            t[b + "self_attn.%s_proj.weight" % n] = mat(kvd if n in "kv" else D, D)
        t[b + "mlp.gate_proj.weight"] = mat(H, D)
        t[b + "mlp.up_proj.weight"] = mat(H, D)
        t[b + "mlp.down_proj.weight"] = mat(D, H)
    safetensors.write(os.path.join(a.out, "model.safetensors"), t, dtype="F16")
    n = sum(v.size for v in t.values())
    print("wrote %s: %.1fM parameters" % (a.out, n / 1e6))


if __name__ == "__main__":
    main()
