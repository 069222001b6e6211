#!/usr/bin/python3
"""Self-check of the numpy reference against facts that do not come from
this project: llama2.c's published greedy output of stories260K, the Hugging
Face course's GPT-2 pre-tokenization example, Python's own `re` engine for the
pre-tokenizer regexes, IEEE half / bfloat16 rounding, and mathematical
invariants of the forward pass (causality, RoPE, GQA == MHA with repeated
heads, the HF <-> Meta RoPE permutation).

    /usr/bin/python3 tests/reference/test_reference.py        (or -m unittest)
"""

import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen_model as G  # noqa: E402
import llama2c  # noqa: E402
import model as M  # noqa: E402
import safetensors  # noqa: E402
import tokenizer as T  # noqa: E402
from sample_text import SAMPLE_TEXT  # noqa: E402

STORIES = os.environ.get("TRL_STORIES260K_DIR", "/work/shared/models/stories260K")
STORIES_BIN = os.path.join(STORIES, "stories260K.bin")
STORIES_TOK = os.path.join(STORIES, "tok512.bin")

# llama2.c test_all.py (karpathy/llama2.c): `./run stories260K.bin -z tok512.bin -t 0.0 -n 200`
# prints exactly this (plus a final newline run.c adds).
LLAMA2C_EXPECTED = (
    b'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. '
    b'One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n'
    b'Lily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do. '
    b'She said, "I want to play with your ball, but I can\'t find it."\n'
    b'Lily was sad and didn\'t know what to do. She said, "I\'m sorry, Lily. I didn\'t know what to do."\n'
    b'Lily didn\'t want to help her mom, so she')

_tmp = None


def tmpdir():
    global _tmp
    if _tmp is None:
        _tmp = tempfile.TemporaryDirectory(prefix="trl-ref-")
    return _tmp.name


_generated = {}


def preset_dir(name, **kw):
    key = (name, tuple(sorted(kw.items())))
    if key not in _generated:
        d = os.path.join(tmpdir(), "%s-%d" % (name, len(_generated)))
        G.generate(d, name, check=False, **kw)
        _generated[key] = d
    return _generated[key]


def small_config(**kw):
    c = dict(dim=24, hidden_dim=40, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, vocab_size=50,
             max_seq_len=64, rope_theta=10000.0, norm_eps=1e-5, rope_style="half")
    c.update(kw)
    return M.Config(**c)


def random_weights(cfg, seed=0):
    rng = np.random.default_rng(seed)
    W = {}
    for name, shape in M.expected_shapes(cfg).items():
        if len(shape) == 1:
            W[name] = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            W[name] = rng.standard_normal(shape) / np.sqrt(shape[1]) * (2.0 if "embd" in name else 1.0)
    return W


# ------------------------------------------------------------------ llama2.c


@unittest.skipUnless(os.path.exists(STORIES_BIN), "stories260K not found")
class TestStories260K(unittest.TestCase):
    def test_files_are_the_published_ones(self):
        want = {"stories260K.bin": "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696",
                "tok512.bin": "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312"}
        for f, h in want.items():
            with open(os.path.join(STORIES, f), "rb") as fh:
                self.assertEqual(hashlib.sha256(fh.read()).hexdigest(), h, f)

    def test_greedy_200_matches_llama2c(self):
        cfg, W = llama2c.load(STORIES_BIN)
        self.assertEqual((cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size,
                          cfg.max_seq_len, cfg.tied_embeddings), (64, 172, 5, 8, 4, 512, 512, True))
        tok = T.SpmTokenizer.from_llama2c(STORIES_TOK)
        prompt = tok.encode("", bos=True)
        self.assertEqual(prompt, [1])
        # run.c -n 200: 200 forward passes, each printing the token it picks
        gen, gaps = M.greedy(cfg, M.encode_weights(W, "f32"), prompt, 200)
        self.assertEqual(tok.decode(gen, prev=prompt[-1]), LLAMA2C_EXPECTED)
        self.assertGreater(min(gaps), 1e-3)  # far enough from a tie for an f32 core to agree

    def test_tokenizer_round_trip_and_pieces(self):
        tok = T.SpmTokenizer.from_llama2c(STORIES_TOK)
        ids = tok.encode("Once upon a time", bos=True)
        self.assertEqual([tok.pieces[i] for i in ids[1:]], [b" Once", b" upon", b" a", b" time"])
        for text in ["Lily's mom said, \"hi!\"\n", "  two spaces", "caf\u00e9 \u65e5\u672c \U0001F642", "",
                     b"\xff\xfe bad \xe4\xbd utf8 \x80"]:
            raw = T.to_bytes(T.to_text(text))
            self.assertEqual(tok.decode(tok.encode(text, bos=True)), raw)
        # byte fallback: U+65E5 is not a piece -> its three UTF-8 bytes as <0xNN> (ids byte + 3)
        ids = tok.encode("\u65e5", bos=False)
        self.assertEqual(ids[1:], [0xE6 + 3, 0x97 + 3, 0xA5 + 3])


class TestLlama2cFormat(unittest.TestCase):
    def test_untied_round_trip(self):
        d = preset_dir("llama2c-untied")
        cfg, W = llama2c.load(os.path.join(d, "model.bin"))
        with open(os.path.join(d, "model.bin"), "rb") as f:
            hdr = struct.unpack("<7i", f.read(28))
        self.assertLess(hdr[5], 0)  # negative vocab: untied classifier
        self.assertFalse(cfg.tied_embeddings)
        self.assertEqual(cfg.rope_style, "interleaved")
        p = os.path.join(tmpdir(), "again.bin")
        llama2c.write(p, cfg, W)
        cfg2, W2 = llama2c.load(p)
        for k in W:
            np.testing.assert_array_equal(W[k], W2[k])
        tok = T.SpmTokenizer.from_llama2c(os.path.join(d, "tokenizer.bin"))
        self.assertEqual(tok.vocab_size, cfg.vocab_size)
        self.assertEqual(tok.decode(tok.encode(SAMPLE_TEXT, bos=True)), SAMPLE_TEXT.encode("utf-8"))


# --------------------------------------------------------------- tokenizers


def _re_pattern(pat):
    # Python's re has no \p{..}. On an alphabet without No/Nl characters,
    # \w is letters, Nd digits and '_', so \p{N} is \d and \p{L} is [^\W\d_];
    # the negated classes become "not \w, or '_'".
    for a, b in ((r"[^\s\p{L}\p{N}]", r"(?:[^\s\w]|_)"), (r"[^\r\n\p{L}\p{N}]", r"(?:[^\r\n\w]|_)"),
                 (r"\p{L}", r"[^\W\d_]"), (r"\p{N}", r"\d")):
        pat = pat.replace(a, b)
    return re.compile(pat)


ALPHABET = list("abcXYZ019 '\t\n\r.,!?-_\"") + ["s", "t", "re", "ve", "ll", "m", "d", "S", "RE", "LL",
                                                "\u017f", "\u00e9", "\u00df", "\u65e5", "\u03b1", "\u0663",
                                                "\u20ac", "\U0001F642", "\u00a0", "\u3000", "\x0b", "\x0c",
                                                "  ", "\r\n", "\udcff"]


class TestPretokenizers(unittest.TestCase):
    def test_hf_course_gpt2_example(self):
        # Hugging Face NLP course, "Normalization and pre-tokenization":
        # gpt2 pre_tokenize_str("Hello, how are  you?")
        self.assertEqual(T.pretokenize_gpt2("Hello, how are  you?"),
                         ["Hello", ",", " how", " are", " ", " you", "?"])

    def test_against_python_re(self):
        rng = random.Random(1234)
        cases = [SAMPLE_TEXT, "I'M here  \n\n  x", "a  \t\n b", "'S'sS ſ'ſ 'll'LL"]
        for _ in range(3000):
            cases.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14))))
        for pat, fn in ((T.GPT2_PATTERN, T.pretokenize_gpt2), (T.LLAMA3_PATTERN, T.pretokenize_llama3)):
            rx = _re_pattern(pat)
            for s in cases:
                self.assertEqual(fn(s), rx.findall(s), "%s on %r" % (fn.__name__, s))

    def test_llama3_specifics(self):
        self.assertEqual(T.pretokenize_llama3("x  31415 I'M\n\n  y"),
                         ["x", " ", " ", "314", "15", " I", "'M", "\n\n", " ", " y"])


class TestBpeTokenizers(unittest.TestCase):
    def test_generated_tokenizers(self):
        for name in ("llama-tied", "llama-untied-gqa", "llama-odd", "bitnet"):
            d = preset_dir(name)
            with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
                tj = json.load(f)
            with open(os.path.join(d, "config.json")) as f:
                hf = json.load(f)
            with open(os.path.join(d, "tokenizer_config.json")) as f:
                tc = json.load(f)
            tok = T.Gpt2BpeTokenizer.from_files(os.path.join(d, "tokenizer.json"),
                                                os.path.join(d, "tokenizer_config.json"))
            self.assertEqual(tok.vocab_size, hf["vocab_size"], name)
            self.assertEqual(tok.bos_id, hf["bos_token_id"])
            self.assertEqual(tok.eos_id, hf["eos_token_id"])
            self.assertIn("chat_template", tc)
            vocab = tj["model"]["vocab"]
            self.assertEqual([vocab[T.BYTE_TO_CHAR[b]] for b in T.BYTE_ORDER], list(range(256)))
            for m in tj["model"]["merges"]:
                a, b = m.split(" ") if isinstance(m, str) else m
                self.assertIn(a, vocab)
                self.assertIn(b, vocab)
                self.assertIn(a + b, vocab)
            self.assertTrue(all(t["special"] for t in tj["added_tokens"]))
            ids = tok.encode(SAMPLE_TEXT)
            self.assertLess(len(ids), len(SAMPLE_TEXT.encode("utf-8")) * 0.9, name)  # real merges
            for text in [SAMPLE_TEXT, "", " x", "\U0001F642\u200d", b"\xff\xc3(\xe4\xbd\x80 ok"]:
                self.assertEqual(tok.decode(tok.encode(text)), T.to_bytes(T.to_text(text)), name)
            chat = tc["bos_token"] + "hi" + tc["eos_token"]
            self.assertEqual(tok.encode(chat)[0], tok.bos_id)
            self.assertEqual(tok.encode(chat)[-1], tok.eos_id)
            self.assertEqual(tok.decode(tok.encode(chat)), b"hi")
            self.assertEqual(tok.decode(tok.encode(chat), skip_special=False), chat.encode())
        with open(os.path.join(preset_dir("llama-untied-gqa"), "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        pre = tj["pre_tokenizer"]
        self.assertEqual(pre["type"], "Sequence")
        self.assertEqual(pre["pretokenizers"][0]["pattern"]["Regex"], T.LLAMA3_PATTERN)
        self.assertFalse(pre["pretokenizers"][1]["use_regex"])

    def test_bpe_merge_by_rank(self):
        ranks = {("a", "b"): 0, ("b", "c"): 1, ("ab", "c"): 2, ("a", "a"): 3}
        self.assertEqual(T.bpe_merge(list("abc"), ranks), ["abc"])
        self.assertEqual(T.bpe_merge(list("bcab"), ranks), ["bc", "ab"])
        self.assertEqual(T.bpe_merge(list("aaa"), ranks), ["aa", "a"])


# ---------------------------------------------------------------- encodings


def _f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def q8_0_scalar(row):
    """ggml's quantize_row_q8_0_ref, one float32 operation at a time."""
    out = []
    row = list(row) + [0.0] * (-len(row) % 32)
    for b in range(0, len(row), 32):
        blk = [_f32(v) for v in row[b:b + 32]]
        amax = max(abs(v) for v in blk)
        d = _f32(amax / 127.0)
        inv = _f32(1.0 / d) if d else 0.0
        qs = []
        for v in blk:
            p = _f32(v * inv)
            qs.append(int(np.sign(p) * np.floor(abs(p) + 0.5)))
        out.append((np.float16(np.float32(d)), qs))
    return out


class TestEncodings(unittest.TestCase):
    def test_f16_rounding(self):
        self.assertEqual(np.float16(np.float32(1 / 3)).view(np.uint16), 0x3555)
        self.assertEqual(M.f16_roundtrip([1 + 2 ** -11])[0], 1.0)  # tie -> even
        self.assertEqual(M.f16_roundtrip([1 + 3 * 2 ** -11])[0], 1 + 2 ** -9)  # tie -> even (up)
        self.assertEqual(M.f16_roundtrip([65504.0])[0], 65504.0)

    def test_bf16_rounding(self):
        bits = safetensors.f32_to_bf16_bits(np.array([1.00390625, 1.01171875, -2.0, 1.0 + 2 ** -9], np.float32))
        self.assertEqual(list(bits), [0x3F80, 0x3F82, 0xC000, 0x3F80])
        self.assertEqual(safetensors.bf16_bits_to_f32(np.array([0x3F82], np.uint16))[0], 1.015625)

    def test_q8_0_ties_round_away_from_zero(self):
        row = np.zeros(32, np.float32)
        row[:6] = [127.0, 2.5, -2.5, 0.5, -0.5, 1.5]  # d = 1 exactly, so x * id = x
        d16, q = M.q8_0_quantize(row[None])
        self.assertEqual(float(d16[0, 0]), 1.0)
        self.assertEqual(list(q[0, 0, :6]), [127, 3, -3, 1, -1, 2])

    def test_q8_0_matches_scalar_ggml(self):
        rng = np.random.default_rng(7)
        w = (rng.standard_normal((5, 100)) * 0.05).astype(np.float32)
        w[1, 32:64] = 0.0  # an all-zero block: d = 0, q = 0
        w[2, :] = np.round(w[2, :] * 1000) / 1000  # values with many near-ties
        d16, q = M.q8_0_quantize(w)
        self.assertEqual(d16.shape, (5, 4))  # 100 cols -> 4 blocks, the last one padded
        for r in range(5):
            for b, (d, qs) in enumerate(q8_0_scalar(w[r])):
                self.assertEqual(d16[r, b].view(np.uint16), d.view(np.uint16))
                self.assertEqual(list(q[r, b]), qs)
        self.assertEqual(len(M.q8_0_bytes(w)), 5 * 4 * 34)
        deq = M.q8_0_roundtrip(w)
        self.assertEqual(deq.shape, w.shape)
        self.assertTrue(np.all(deq[1, 32:64] == 0))
        self.assertLess(np.max(np.abs(deq - w)), np.max(np.abs(w)) / 127)

    def test_act_quant_int8(self):
        x = np.array([[2.0, -1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
        y = M.act_quant_int8(x)
        np.testing.assert_allclose(y[0], np.array([127, -64, 32, 0]) * 2.0 / 127)  # -63.5 -> -64, 31.75 -> 32
        self.assertTrue(np.all(y[1] == 0))


class TestSafetensors(unittest.TestCase):
    def test_round_trip_all_dtypes_and_shards(self):
        rng = np.random.default_rng(3)
        t = {"a.weight": rng.standard_normal((3, 5)).astype(np.float32),
             "b": rng.standard_normal(7).astype(np.float32),
             "c.weight": rng.standard_normal((2, 2, 2)).astype(np.float32)}
        for dt, conv in (("F32", lambda a: a), ("F16", lambda a: a.astype(np.float16).astype(np.float32)),
                         ("BF16", lambda a: safetensors.bf16_bits_to_f32(safetensors.f32_to_bf16_bits(a)))):
            for shards in (1, 2, 3):
                d = os.path.join(tmpdir(), "st-%s-%d" % (dt, shards))
                os.makedirs(d, exist_ok=True)
                files = safetensors.write_sharded(d, t, dt, shards, metadata={"format": "pt"})
                self.assertEqual(len(files), shards)
                got, dtypes = safetensors.read_dir(d)
                for k in t:
                    np.testing.assert_array_equal(got[k], conv(t[k]))
                    self.assertEqual(dtypes[k], dt)
                with open(os.path.join(d, files[0]), "rb") as f:
                    n = struct.unpack("<Q", f.read(8))[0]
                    h = json.loads(f.read(n))
                self.assertEqual(h["__metadata__"], {"format": "pt"})
                self.assertEqual(n % 8, 0)


# ------------------------------------------------------------------ forward


class TestForward(unittest.TestCase):
    def test_rope_position_zero_is_identity(self):
        x = np.random.default_rng(0).standard_normal((1, 3, 8))
        for style in ("half", "interleaved"):
            np.testing.assert_array_equal(M.rope(x, [0], 10000.0, style), x)

    def test_rope_is_relative(self):
        rng = np.random.default_rng(1)
        q, k = rng.standard_normal((1, 1, 16)), rng.standard_normal((1, 1, 16))
        for style in ("half", "interleaved"):
            a = np.sum(M.rope(q, [7], 500000.0, style) * M.rope(k, [3], 500000.0, style))
            b = np.sum(M.rope(q, [107], 500000.0, style) * M.rope(k, [103], 500000.0, style))
            self.assertAlmostEqual(a, b, places=10)
            self.assertAlmostEqual(np.linalg.norm(M.rope(q, [5], 10000.0, style)), np.linalg.norm(q), places=12)
        # pair i turns by p * theta^(-2i/hd): check pair 1 of interleaved by hand
        x = np.zeros((1, 1, 4))
        x[0, 0, 2] = 1.0
        y = M.rope(x, [3], 100.0, "interleaved")
        ang = 3 * 100.0 ** (-2 * 1 / 4)
        np.testing.assert_allclose(y[0, 0], [0, 0, np.cos(ang), np.sin(ang)], atol=1e-15)
        y = M.rope(np.array([[[0, 1.0, 0, 0]]]), [3], 100.0, "half")
        np.testing.assert_allclose(y[0, 0], [0, np.cos(ang), 0, np.sin(ang)], atol=1e-15)

    def test_causal(self):
        for kw in (dict(), dict(mlp="relu2", sub_norms=True), dict(rope_style="interleaved")):
            cfg = small_config(**kw)
            W = random_weights(cfg)
            a = M.forward(cfg, W, [1, 5, 9, 13, 2, 7])
            b = M.forward(cfg, W, [1, 5, 9, 40, 41, 42])
            np.testing.assert_array_equal(a[:3], b[:3])
            self.assertGreater(np.max(np.abs(a[3:] - b[3:])), 1e-3)

    def test_gqa_equals_mha_with_repeated_kv(self):
        cfg = small_config(n_heads=4, n_kv_heads=2)
        W = random_weights(cfg, 5)
        cfg2 = small_config(n_heads=4, n_kv_heads=4)
        W2 = dict(W)
        hd, group = cfg.head_dim, cfg.n_heads // cfg.n_kv_heads
        for l in range(cfg.n_layers):
            for n in ("attn_k.weight", "attn_v.weight"):
                w = W["blk.%d.%s" % (l, n)]
                W2["blk.%d.%s" % (l, n)] = np.concatenate(
                    [w[(h // group) * hd:(h // group + 1) * hd] for h in range(cfg.n_heads)])
        toks = [3, 1, 4, 1, 5, 9, 2, 6]
        np.testing.assert_allclose(M.forward(cfg, W, toks), M.forward(cfg2, W2, toks), rtol=0, atol=1e-12)

    def test_half_equals_interleaved_after_permutation(self):
        # HF's rotate_half layout is Meta's interleaved layout with the q/k rows
        # of each head permuted: HF row i <-> Meta row 2i, HF row i+hd/2 <-> 2i+1.
        cfg = small_config(rope_style="half", head_dim=8, n_heads=3, n_kv_heads=1, dim=20)
        W = random_weights(cfg, 9)
        hd = cfg.head_dim
        perm = np.empty(hd, dtype=int)
        perm[0::2] = np.arange(hd // 2)
        perm[1::2] = np.arange(hd // 2) + hd // 2
        W2 = dict(W)
        for l in range(cfg.n_layers):
            for n in ("attn_q.weight", "attn_k.weight"):
                w = W["blk.%d.%s" % (l, n)]
                W2["blk.%d.%s" % (l, n)] = w.reshape(-1, hd, w.shape[1])[:, perm, :].reshape(w.shape)
        cfg2 = small_config(rope_style="interleaved", head_dim=8, n_heads=3, n_kv_heads=1, dim=20)
        toks = list(range(1, 12))
        np.testing.assert_allclose(M.forward(cfg, W, toks), M.forward(cfg2, W2, toks), rtol=0, atol=1e-12)

    def test_first_position_attends_to_itself(self):
        rng = np.random.default_rng(2)
        q, k, v = rng.standard_normal((3, 4, 8)), rng.standard_normal((3, 2, 8)), rng.standard_normal((3, 2, 8))
        o = M.attention(q, k, v, 2).reshape(3, 4, 8)
        np.testing.assert_allclose(o[0], np.repeat(v[0], 2, axis=0))

    def test_cache_equals_recompute(self):
        cfg = small_config(sub_norms=True, mlp="relu2")
        W = random_weights(cfg, 4)
        g1, gap1 = M.greedy(cfg, W, [1, 2, 3], 12)
        g2, gap2 = M.greedy(cfg, W, [1, 2, 3], 12, recompute=True)
        self.assertEqual(g1, g2)
        np.testing.assert_allclose(gap1, gap2, atol=1e-12)

    def test_argmax_ties_lowest_id(self):
        self.assertEqual(M.argmax_lowest(np.array([1.0, 3.0, 2.0, 3.0])), 1)

    def test_sub_norms_and_relu2_matter(self):
        cfg = small_config(mlp="relu2", sub_norms=True)
        W = random_weights(cfg, 6)
        a = M.forward(cfg, W, [1, 2, 3])
        W2 = dict(W)
        W2["blk.0.ffn_sub_norm.weight"] = W["blk.0.ffn_sub_norm.weight"] * 2
        self.assertGreater(np.max(np.abs(M.forward(cfg, W2, [1, 2, 3]) - a)), 1e-3)
        cfg2 = small_config(mlp="swiglu", sub_norms=True)
        self.assertGreater(np.max(np.abs(M.forward(cfg2, W, [1, 2, 3]) - a)), 1e-3)


# ------------------------------------------------------- generated models


class TestGeneratedModels(unittest.TestCase):
    def test_presets_load(self):
        for name in ("llama-tied", "llama-untied-gqa", "llama-odd", "bitnet"):
            d = preset_dir(name)
            cfg, W, hf = M.load_hf(d)
            p = G.PRESETS[name]
            self.assertEqual(cfg.tied_embeddings, p["tied"])
            self.assertEqual(cfg.sub_norms, name == "bitnet")
            self.assertEqual(cfg.mlp, "relu2" if name == "bitnet" else "swiglu")
            self.assertEqual(cfg.head_dim, p["head_dim"])
            self.assertEqual(hf["max_position_embeddings"], 256)
            logits = M.forward(cfg, M.encode_weights(W, "f32"), [hf["bos_token_id"], 70, 80, 90])
            self.assertGreater(np.std(logits[-1]), 0.5)  # well spread
        cfg, _, hf = M.load_hf(preset_dir("llama-odd"))
        self.assertNotEqual(cfg.head_dim, cfg.dim // cfg.n_heads)
        self.assertNotEqual(cfg.rope_theta, 10000.0)
        self.assertTrue(cfg.dim % 32 and cfg.hidden_dim % 32)
        _, W, _ = M.load_hf(preset_dir("bitnet"))
        for n, w in W.items():  # BitNet linear weights are already ternary
            if w.ndim == 2 and n.startswith("blk."):
                self.assertLessEqual(len(np.unique(np.abs(w))), 2, n)

    def test_sharded_and_dtypes_load_the_same(self):
        _, W, _ = M.load_hf(preset_dir("llama-untied-gqa"))
        _, Ws, _ = M.load_hf(preset_dir("llama-untied-gqa", shards=3))
        self.assertTrue(os.path.exists(os.path.join(preset_dir("llama-untied-gqa", shards=3),
                                                    "model.safetensors.index.json")))
        for k in W:
            np.testing.assert_array_equal(W[k], Ws[k])
        _, Wh, _ = M.load_hf(preset_dir("llama-untied-gqa", dtype="bf16"))
        for k in W:
            np.testing.assert_array_equal(
                Wh[k], safetensors.bf16_bits_to_f32(safetensors.f32_to_bf16_bits(W[k])))

    def test_golden_cli(self):
        d = preset_dir("llama-tied")
        out = subprocess.run([sys.executable, os.path.join(HERE, "golden.py"), "--hf", d, "--dtype", "q8_0",
                              "--prompt", "Once upon a time", "Hello", "--greedy", "4", "--all-logits"],
                             check=True, capture_output=True, text=True).stdout
        res = json.loads(out)
        self.assertEqual(len(res), 2)
        cfg, W, _ = M.load_hf(d)
        tok = T.Gpt2BpeTokenizer.from_files(os.path.join(d, "tokenizer.json"),
                                            os.path.join(d, "tokenizer_config.json"))
        ids = tok.encode("Once upon a time", bos=True)
        self.assertEqual(res[0]["tokens"], ids)
        logits = M.forward(cfg, M.encode_weights(W, "q8_0"), ids)
        np.testing.assert_allclose(res[0]["logits"], logits[-1], rtol=1e-8, atol=1e-8)
        self.assertEqual(len(res[0]["all_logits"]), len(ids))
        self.assertEqual(res[0]["generated"], M.greedy(cfg, M.encode_weights(W, "q8_0"), ids, 4)[0])

    @unittest.skipUnless(os.path.exists(STORIES_BIN), "stories260K not found")
    def test_golden_cli_llama2c(self):
        out = subprocess.run([sys.executable, os.path.join(HERE, "golden.py"), "--llama2c", STORIES_BIN,
                              "--tokenizer", STORIES_TOK, "--prompt", "", "--greedy", "30"],
                             check=True, capture_output=True, text=True).stdout
        res = json.loads(out)
        self.assertEqual(res["tokens"], [1])
        self.assertEqual(bytes.fromhex(res["text_hex"]), LLAMA2C_EXPECTED[:len(bytes.fromhex(res["text_hex"]))])
        self.assertTrue(res["text"].startswith("Once upon a time, there was a little girl named Lily."))


if __name__ == "__main__":
    unittest.main(verbosity=1)
