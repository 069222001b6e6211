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
import math
import os
import random
import re
import shutil
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
import pack as P  # noqa: E402
import safetensors  # noqa: E402
import tokenizer as T  # noqa: E402
from sample_text import SAMPLE_TEXT  # noqa: E402

STORIES = os.environ.get("TRL_STORIES260K_DIR",
                         os.path.join(os.path.dirname(os.path.dirname(HERE)), "models", "stories260K"))
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

    def test_space_is_unicode_white_space(self):
        # FORMAT.md: \s is White_Space, not str.isspace() (which adds U+001C..U+001F)
        self.assertEqual([c for c in map(chr, range(0x3001)) if T.is_space(c)],
                         list("\t\n\x0b\x0c\r \x85\xa0\u1680") + [chr(c) for c in range(0x2000, 0x200b)]
                         + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"])
        self.assertEqual(T.pretokenize_gpt2("a\x1c\x1c b"), ["a", "\x1c\x1c", " b"])

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


# ------------------------------------------------------------------- packs
#
# A tiny pack writer, written from FORMAT.md's sentences one element at a time
# (pack.py's reader is vectorised numpy), so a round trip checks both readings
# of the layout against each other; hand-made bytes pin the layouts down.


def t2_encode(trits):
    """FORMAT.md t2: per row ceil(cols/128) blocks of 32 bytes; byte j of
    block b holds columns 128b + 32k + j in bits 2k..2k+1, code T + 1;
    columns past cols hold code 1."""
    rows, cols = trits.shape
    nb = -(-cols // 128)
    out = bytearray(rows * nb * 32)
    for r in range(rows):
        for b in range(nb):
            for j in range(32):
                byte = 0
                for k in range(4):
                    c = 128 * b + 32 * k + j
                    u = int(trits[r, c]) + 1 if c < cols else 1
                    byte |= u << (2 * k)
                out[(r * nb + b) * 32 + j] = byte
    return bytes(out)


def t1_encode(trits):
    """FORMAT.md t1: each row padded with code 1 to a multiple of 5 columns,
    groups of five (u0..u4) -> u0 + 3 u1 + 9 u2 + 27 u3 + 81 u4."""
    rows, cols = trits.shape
    out = bytearray()
    for r in range(rows):
        codes = [int(t) + 1 for t in trits[r]] + [1] * (-cols % 5)
        for g in range(0, len(codes), 5):
            out.append(sum(u * 3 ** i for i, u in enumerate(codes[g:g + 5])))
    return bytes(out)


def ternary_bytes(enc, trits, scales):
    return (t2_encode if enc == "t2" else t1_encode)(trits) + struct.pack("<%df" % len(scales), *scales)


def bcq_encode(signs, scales, group):
    """FORMAT.md bcq: per row the k bit planes (cols_pad / 8 bytes each, bit j
    of byte b = column 8b + j, 1 = +1, padding 0), then n_groups * k binary16
    scales ordered (group, plane). signs (rows, k, cols), scales (rows, ng, k)."""
    rows, k, cols = signs.shape
    ng = -(-cols // group)
    out = bytearray()
    for r in range(rows):
        for i in range(k):
            plane = bytearray(ng * group // 8)
            for c in range(cols):
                if signs[r, i, c] > 0:
                    plane[c // 8] |= 1 << (c % 8)
            out += plane
        for g in range(ng):
            for i in range(k):
                out += np.float16(scales[r, g, i]).tobytes()
    return bytes(out)


def dense_bytes(enc, w):
    w = np.asarray(w, dtype=np.float32)
    if enc == "f32":
        return w.astype("<f4").tobytes()
    if enc == "f16":
        return w.astype("<f2").tobytes()
    return M.q8_0_bytes(np.atleast_2d(w))


def write_pack(d, cfg, tensors, version=2, tokenizer_blob=None, tiers=None, name="test"):
    """tensors: [(name, encoding, shape, bytes, params or None)]; tiers: name
    -> tier (default 0), one chunk per tier. -> manifest dict."""
    os.makedirs(d, exist_ok=True)
    tiers = tiers or {}
    chunks, entries = {}, []

    def place(tier, data):
        buf = chunks.setdefault(tier, bytearray())
        buf += b"\0" * (-len(buf) % 64)
        off = len(buf)
        buf += data
        return off

    tok = None
    if tokenizer_blob is not None:
        tok = {"kind": "spm", "chunk": 0, "offset": place(0, tokenizer_blob), "bytes": len(tokenizer_blob),
               "bos_id": 1, "eos_id": 2, "chat_template": None}
    for tname, enc, shape, data, params in tensors:
        tier = tiers.get(tname, 0)
        e = {"name": tname, "encoding": enc, "shape": list(shape), "chunk": tier, "offset": place(tier, data),
             "bytes": len(data)}
        if params:
            e["params"] = params
        entries.append(e)
    clist = []
    for tier in sorted(chunks):
        assert tier == len(clist)
        fname = "chunk-%04d.bin" % tier
        with open(os.path.join(d, fname), "wb") as f:
            f.write(chunks[tier])
        clist.append({"file": fname, "bytes": len(chunks[tier]), "sha256": hashlib.sha256(chunks[tier]).hexdigest(),
                      "tier": tier})
    variants = [{"id": "base" if t == 0 else "tier%d" % t, "tiers": list(range(t + 1)),
                 "download_bytes": sum(c["bytes"] for c in clist[:t + 1]), "resident_bytes": 0,
                 "context_bytes": {}} for t in range(len(clist))]
    conf = {k: getattr(cfg, k) for k in ("arch", "mlp", "rope_style", "act_quant", "dim", "hidden_dim", "n_layers",
                                         "n_heads", "n_kv_heads", "head_dim", "vocab_size", "max_seq_len",
                                         "rope_theta", "norm_eps", "tied_embeddings", "sub_norms")}
    m = {"format": "trillium-pack", "version": version, "name": name, "source": "test_reference.py",
         "config": conf, "tensors": entries, "chunks": clist, "variants": variants}
    if tok:
        m["tokenizer"] = tok
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(m, f, indent=1)
    return m


def spm_blob(pieces):
    """A tokenizer blob (FORMAT.md "Tokenizer blob"), kind spm with
    SPM_PREFIX: ids 0..2 control (<unk>, BOS, EOS), the rest normal pieces."""
    types = bytes([2, 2, 2] + [0] * (len(pieces) - 3))
    lens = bytearray()
    for p in pieces:
        n = len(p)
        while True:
            lens.append((n & 0x7F) | (0x80 if n >= 0x80 else 0))
            n >>= 7
            if not n:
                break
    body = b"".join(pieces)
    scores = struct.pack("<%df" % len(pieces), *[-float(i) for i in range(len(pieces))])
    hdr = struct.pack("<4sHBBIIIiiiIIII", b"TRLT", 1, 0, 0, 1, len(pieces), 0, 1, 2, 0, len(lens), len(body), 0, 0)
    return hdr + types + bytes(lens) + body + scores


def ternary_weights(cfg, seed):
    """Random norms / f32 embeddings and ternary block matrices s * T."""
    rng = np.random.default_rng(seed)
    W, T = {}, {}
    for name, shape in M.expected_shapes(cfg).items():
        if len(shape) == 1:
            W[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif name.startswith("blk."):
            T[name] = rng.integers(-1, 2, size=shape).astype(np.int8)
        else:
            W[name] = (rng.standard_normal(shape) * 2.5 / np.sqrt(shape[1])).astype(np.float32)
    return W, T, rng


def mixed_pack(d, act_quant, seed=11, version=2):
    """A small model whose block layers use every v2 representation:
    t2 / t1 with each scale axis, bcq, low-rank with and without a base.
    -> (Pack, Config, {name: dense float64 W_eff with all slices}, manifest)."""
    cfg = small_config(dim=40, hidden_dim=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, vocab_size=40,
                       mlp="relu2", sub_norms=True, arch="bitnet", act_quant=act_quant)
    W, T, rng = ternary_weights(cfg, seed)
    tensors, dense, tiers = [], {}, {}
    for name, w in W.items():
        enc = "f32" if w.ndim == 1 else "q8_0"
        tensors.append((name, enc, w.shape, dense_bytes(enc, w), None))
        dense[name] = w.astype(np.float64) if enc == "f32" else M.q8_0_roundtrip(w)
    plan = {"attn_q": ("t2", 0), "attn_k": ("t1", 1), "attn_v": ("t2", 2), "attn_output": ("t1", 0),
            "ffn_gate": ("bcq", None), "ffn_up": ("lr", None), "ffn_down": ("t2", 3)}
    for name, t in T.items():
        rows, cols = t.shape
        kind, axis = plan[name.split(".")[2]]
        if name == "blk.1.ffn_down.weight":
            kind, axis = "t1", 3
        if name == "blk.1.ffn_gate.weight":
            kind = "lr+base"
        scale = lambda n: (rng.uniform(0.5, 1.5, n) / np.sqrt(cols)).astype(np.float32)  # noqa: E731
        if kind in ("t2", "t1"):
            k = {0: 0, 1: 0, 2: 2, 3: cols // 128}[axis]
            n = {0: 1, 1: rows, 2: k, 3: k}[axis]
            s = scale(n)
            params = {"scale_axis": axis, "scale_blocks": k} if axis else {"scale_axis": 0}
            tensors.append((name, kind, t.shape, ternary_bytes(kind, t, s), params))
            sr = np.empty((rows, cols))
            for r in range(rows):
                for c in range(cols):
                    sr[r, c] = s[[0, r, r // (rows // max(k, 1)), c // (cols // max(k, 1))][axis]]
            dense[name] = sr * t
        elif kind == "bcq":
            kb, g = 3, 32  # 40 columns: the second group is 24 columns of padding
            signs = rng.choice([-1, 1], size=(rows, kb, cols)).astype(np.int8)
            ng = -(-cols // g)
            sc = (2.0 ** rng.integers(-6, -2, size=(rows, ng, kb))).astype(np.float16)
            tensors.append((name, "bcq", t.shape, bcq_encode(signs, sc, g), {"bits": kb, "group": g, "pow2": 1}))
            col_scales = sc.astype(np.float64)[:, np.arange(cols) // g, :]  # (rows, cols, planes)
            dense[name] = np.einsum("rci,ric->rc", col_scales, signs.astype(np.float64))
        else:
            base = None
            if kind == "lr+base":
                base = (rng.standard_normal((rows, cols)) * 0.3 / np.sqrt(cols)).astype(np.float32)
                tensors.append((name, "f16", t.shape, dense_bytes("f16", base), None))
            acc = M.f16_roundtrip(base) if base is not None else 0.0
            prefix = name[:-len(".weight")]
            for s, (r, enc) in enumerate(((3, "f32"), (2, "q8_0"), (4, "f16"))):
                u = (rng.standard_normal((r, rows)) / np.sqrt(r)).astype(np.float32)
                v = (rng.standard_normal((r, cols)) / np.sqrt(cols)).astype(np.float32)
                for nm, a in ((prefix + ".lr_u.%d" % s, u), (prefix + ".lr_v.%d" % s, v)):
                    tensors.append((nm, enc, a.shape, dense_bytes(enc, a), None))
                    tiers[nm] = min(s, 1)
                dec = {"f32": lambda a: a.astype(np.float64), "f16": M.f16_roundtrip, "q8_0": M.q8_0_roundtrip}[enc]
                acc = acc + dec(u).T @ dec(v)
            dense[name] = acc
    m = write_pack(d, cfg, tensors, version=version, tiers=tiers,
                   tokenizer_blob=spm_blob([b"<unk>", b"<s>", b"</s>"] + [b" w%d" % i for i in range(37)]))
    return P.Pack(d), cfg, dense, m


def emulated_linear(cfg, Wd, pk, n=None):
    """The activation rules over dense matrices: int8 configs quantize the
    input of every block layer's base; bcq layers always do; the head and
    rank slices never (their sum, for the first n slices, is split off here)."""
    def lin(name, x, head=False):
        prefix = name[:-len(".weight")]
        lr = 0.0
        if prefix in pk.slices:
            base = pk.dense(name) if name in pk.tensors else np.zeros(Wd[name].shape)
            for u, v in (pk.slices[prefix] if n is None else pk.slices[prefix][:n]):
                xv = M.q8_0_act(x) if pk.tensors[v]["encoding"] == "q8_0" else x  # q8_0 x q8_0
                lr = lr + (xv @ pk.dense(v).T) @ pk.dense(u)
        else:
            base = Wd[name]
        enc = pk.tensors[name]["encoding"] if name in pk.tensors else None
        if not head and (cfg.act_quant == "int8" or enc == "bcq"):
            x = M.act_quant_int8(x)
        if enc == "q8_0":
            x = M.q8_0_act(x)
        return x @ base.T + lr
    return lin


def f32_scalar_int8(xs):
    """FORMAT.md's int8 activation quantizer, one binary32 operation at a time."""
    xs = [_f32(v) for v in xs]
    a = max(abs(v) for v in xs)
    f = _f32(127.0 / a) if a else 0.0
    out = []
    for v in xs:
        if a == 0:
            out.append(0)
            continue
        p = _f32(v * f)
        q = int(math.floor(abs(p) + 0.5)) * (1 if p >= 0 else -1)  # roundf
        out.append(max(-128, min(127, q)))
    return out, a


class TestPackEncodings(unittest.TestCase):
    def _pack(self, name, tensors, cfg=None, version=2):
        cfg = cfg or small_config()
        d = os.path.join(tmpdir(), "enc-" + name)
        # the model check needs every tensor: fill in the rest with f32
        have = {t[0] for t in tensors}
        full = list(tensors)
        for n, shape in M.expected_shapes(cfg).items():
            if n not in have and not any(h.startswith(n[:-len("weight")] + "lr_") for h in have):
                full.append((n, "f32", shape, dense_bytes("f32", np.ones(shape)), None))
        write_pack(d, cfg, full, version=version)
        return P.Pack(d)

    def test_dense_round_trip(self):
        cfg = small_config()
        rng = np.random.default_rng(1)
        w = (rng.standard_normal((40, 24)) * 0.1).astype(np.float32)  # 24 cols: a partial q8_0 block
        for enc, want in (("f32", w.astype(np.float64)), ("f16", M.f16_roundtrip(w)), ("q8_0", M.q8_0_roundtrip(w))):
            for version in (1, 2):
                p = self._pack("dense-%s-%d" % (enc, version),
                               [("blk.0.ffn_gate.weight", enc, w.shape, dense_bytes(enc, w), None)], cfg, version)
                self.assertEqual(p.version, version)
                np.testing.assert_array_equal(p.dense("blk.0.ffn_gate.weight"), want)

    def test_t2_layout_by_hand(self):
        # one row of 130 columns: all 0 except column 33 = +1 and column 129 = -1.
        # Code 1 everywhere is 0b01010101 = 0x55; column 33 = block 0, k 1, j 1:
        # byte 1 bits 2-3 = 2 -> 0x59; column 129 = block 1, k 0, j 1: byte 33
        # bits 0-1 = 0 -> 0x54.
        t = np.zeros((1, 130), np.int8)
        t[0, 33], t[0, 129] = 1, -1
        want = bytearray([0x55] * 64)
        want[1], want[33] = 0x59, 0x54
        self.assertEqual(t2_encode(t), bytes(want))
        codes = P.t2_codes(bytes(want), 1, 130)
        np.testing.assert_array_equal(codes.astype(int) - 1, t)
        bad = bytearray(want)
        bad[40] = 0x55 ^ 0x10  # column 128 + 64 + 8 (padding) gets code 0
        with self.assertRaises(P.PackError):
            P.t2_codes(bytes(bad), 1, 130)

    def test_t1_layout_by_hand(self):
        # trits (1, 0, -1, 1, 1 | 0 + 4 padding) -> codes (2,1,0,2,2 | 1,1,1,1,1)
        t = np.array([[1, 0, -1, 1, 1, 0]], np.int8)
        want = bytes([2 + 3 * 1 + 9 * 0 + 27 * 2 + 81 * 2, 1 + 3 + 9 + 27 + 81])
        self.assertEqual(t1_encode(t), want)
        self.assertEqual(list(want), [221, 121])
        np.testing.assert_array_equal(P.t1_codes(want, 1, 6).astype(int) - 1, t)
        with self.assertRaises(P.PackError):
            P.t1_codes(bytes([243, 121]), 1, 6)

    def test_bcq_layout_by_hand(self):
        # one row, 40 columns, group 32 -> cols_pad 64, 2 groups, k = 1:
        # plane bytes 8 (bit j of byte b = column 8b + j), then scales (g0, g1).
        signs = -np.ones((1, 1, 40), np.int8)
        signs[0, 0, [0, 9, 39]] = 1
        data = bcq_encode(signs, np.array([[[0.5], [-2.0]]]), 32)
        self.assertEqual(data[:8], bytes([0x01, 0x02, 0, 0, 0x80, 0, 0, 0]))
        self.assertEqual(data[8:], struct.pack("<ee", 0.5, -2.0))
        b = P.decode_bcq(data, 1, 40, {"bits": 1, "group": 32, "pow2": 1, "scale_axis": 0, "scale_blocks": 0})
        want = np.where(signs[0, 0] > 0, 1.0, -1.0) * np.where(np.arange(40) < 32, 0.5, -2.0)
        np.testing.assert_array_equal(b.dense()[0], want)

    def test_ternary_round_trip_every_axis_t1_equals_t2(self):
        rng = np.random.default_rng(2)
        rows, cols = 12, 256
        cfg = small_config(hidden_dim=rows, dim=cols, n_heads=4, head_dim=8)
        t = rng.integers(-1, 2, size=(rows, cols)).astype(np.int8)
        for axis, k in ((0, 0), (1, 0), (2, 3), (2, 12), (3, 2), (3, 1)):
            n = {0: 1, 1: rows, 2: k, 3: k}[axis]
            s = rng.uniform(0.1, 2.0, n).astype(np.float32)
            want = np.empty((rows, cols))
            for r in range(rows):
                for c in range(cols):
                    which = [0, r, r // max(1, rows // max(k, 1)), c // (cols // max(k, 1))][axis]
                    want[r, c] = t[r, c] * float(s[which])
            got = {}
            for enc in ("t2", "t1"):
                p = self._pack("tern-%s-%d-%d" % (enc, axis, k),
                               [("blk.0.ffn_gate.weight", enc, (rows, cols), ternary_bytes(enc, t, s),
                                 {"scale_axis": axis, "scale_blocks": k})], cfg)
                got[enc] = p.tensor("blk.0.ffn_gate.weight")
                np.testing.assert_array_equal(got[enc].trits, t)
                np.testing.assert_array_equal(got[enc].scales, s)
                np.testing.assert_array_equal(got[enc].dense(), want)
            np.testing.assert_array_equal(got["t1"].dense(), got["t2"].dense())
            x = rng.standard_normal((3, cols))
            for act in ("float", "int8"):
                np.testing.assert_array_equal(got["t1"].apply(x, act), got["t2"].apply(x, act))
                xin = M.act_quant_int8(x) if act == "int8" else x
                np.testing.assert_allclose(got["t2"].apply(x, act), xin @ want.T, rtol=1e-12, atol=1e-12)
        # odd shapes: t2 pads to 128 columns, t1 to 5
        t = rng.integers(-1, 2, size=(3, 131)).astype(np.int8)
        a = P.decode_ternary("t2", ternary_bytes("t2", t, [1.5]), 3, 131, {"scale_axis": 0, "scale_blocks": 0})
        b = P.decode_ternary("t1", ternary_bytes("t1", t, [1.5]), 3, 131, {"scale_axis": 0, "scale_blocks": 0})
        np.testing.assert_array_equal(a.trits, t)
        np.testing.assert_array_equal(b.trits, t)

    def test_ternary_int8_is_exact_integer_dots(self):
        # y = (a/127) * s * (T . q) with T . q an exact integer
        t = np.array([[1, -1, 0, 1], [0, 0, -1, -1]], np.int8)
        tern = P.Ternary(t, np.array([0.25], np.float32), 0)
        x = np.array([[2.0, -1.0, 0.5, 1.0]])
        q = [127, -64, 32, 64]  # -63.5 -> -64, 31.75 -> 32, 63.5 -> 64
        want = [(q[0] - q[1] + q[3]) * 0.25 * 2 / 127, (-q[2] - q[3]) * 0.25 * 2 / 127]
        np.testing.assert_allclose(tern.apply(x, "int8")[0], want, rtol=1e-15)

    def test_bcq_round_trip_and_int8_numerics(self):
        rng = np.random.default_rng(3)
        rows, cols, k, g = 5, 100, 3, 64  # cols_pad 128, the last group half padding
        signs = rng.choice([-1, 1], size=(rows, k, cols)).astype(np.int8)
        for pow2 in (0, 1):
            sc = (2.0 ** rng.integers(-4, 2, size=(rows, 2, k)) if pow2 else rng.uniform(-1, 1, (rows, 2, k)))
            sc = sc.astype(np.float16)
            data = bcq_encode(signs, sc, g)
            params = {"bits": k, "group": g, "pow2": pow2, "scale_axis": 0, "scale_blocks": 0}
            self.assertEqual(len(data), rows * P.row_bytes("bcq", cols, params))
            b = P.decode_bcq(data, rows, cols, params)
            want = np.zeros((rows, cols))
            for r in range(rows):
                for c in range(cols):
                    want[r, c] = sum(float(sc[r, c // g, i]) * signs[r, i, c] for i in range(k))
            np.testing.assert_array_equal(b.dense(), want)
            np.testing.assert_array_equal(b.signs[:, :, :cols], signs)
            x = rng.standard_normal((4, cols))
            np.testing.assert_allclose(b.apply(x), M.act_quant_int8(x) @ want.T, rtol=1e-12, atol=1e-12)
        with self.assertRaises(P.PackError):  # pow2 promised, 0.75 is not
            sc = np.full((rows, 2, k), 0.75, np.float16)
            P.decode_bcq(bcq_encode(signs, sc, g), rows, cols, dict(params, pow2=1))

    def test_int8_rounds_half_away_from_zero_in_float32(self):
        # a = 127: x * 127 / a = x exactly, so halves stay halves
        x = np.array([[127.0, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 126.5]])
        q, a = M.int8_quantize(x)
        self.assertEqual(float(a[0]), 127.0)
        self.assertEqual(list(q[0]), [127, 3, -3, 1, -1, 2, -2, 127])
        self.assertNotEqual(list(np.round(x[0])), list(q[0]))  # numpy: half to even
        zero, a0 = M.int8_quantize(np.zeros((1, 4)))
        self.assertEqual(list(zero[0]), [0, 0, 0, 0])
        with M.TieMargin() as tm:
            M.int8_quantize(x)
        self.assertEqual(tm.value, 0.0)  # 2.5 is a tie
        with M.TieMargin() as tm:
            M.int8_quantize(np.array([[127.0, 2.25, -1.0]]))
        self.assertEqual(tm.value, 0.25)
        # against a scalar binary32 replica, with values that round differently
        # in float64 (x*127/a landing on .5 in float32 but not exactly)
        rng = np.random.default_rng(4)
        rows = [rng.standard_normal(33) for _ in range(200)]
        rows += [np.append((np.arange(-40, 40) + 0.5) / 127 * 3.1 + 1e-9 * rng.standard_normal(80), 3.1)
                 for _ in range(20)]
        f64_differs = 0
        for row in rows:
            q, a = M.int8_quantize(row[None])
            qs, as_ = f32_scalar_int8(row)
            self.assertEqual(list(q[0]), qs)
            self.assertEqual(float(a[0]), as_)
            r64 = np.abs(row).max()
            f64_differs += np.sum(M.round_half_away(row * 127 / r64) != q[0])
        self.assertGreater(f64_differs, 0)  # float32 arithmetic matters

    def test_low_rank_exact_svd(self):
        rng = np.random.default_rng(5)
        out_, in_ = 24, 20
        cfg = small_config(dim=in_, hidden_dim=out_, n_heads=4, head_dim=6)
        w = rng.standard_normal((out_, in_))
        U, S, Vt = np.linalg.svd(w, full_matrices=False)
        tensors, bounds = [], [0, 2, 7, in_]
        for s in range(3):
            r0, r1 = bounds[s], bounds[s + 1]
            u = U[:, r0:r1].T  # lr_u.S is [r, out], U transposed
            v = S[r0:r1, None] * Vt[r0:r1]  # lr_v.S is [r, in]
            tensors += [("blk.1.ffn_up.lr_u.%d" % s, "f32", u.shape, dense_bytes("f32", u), None),
                        ("blk.1.ffn_up.lr_v.%d" % s, "f32", v.shape, dense_bytes("f32", v), None)]
        p = self._pack("lowrank", tensors, cfg)
        self.assertEqual(len(p.slices["blk.1.ffn_up"]), 3)
        full = p.effective("blk.1.ffn_up.weight")
        np.testing.assert_allclose(full, w, rtol=0, atol=1e-5)  # f32 storage of an exact SVD
        for n in (0, 1, 2):
            err = np.linalg.norm(p.effective("blk.1.ffn_up.weight", n) - w)
            self.assertAlmostEqual(err, np.sqrt(np.sum(S[bounds[n]:] ** 2)), delta=1e-4)  # Eckart-Young
        x = rng.standard_normal((2, in_))
        lin = P.Linear(None, [(p.dense("blk.1.ffn_up.lr_u.%d" % s), p.dense("blk.1.ffn_up.lr_v.%d" % s), False)
                              for s in range(3)], (out_, in_))
        np.testing.assert_allclose(lin.apply(x, "float"), x @ w.T, atol=1e-5)

    def test_manifest_errors(self):
        cfg = small_config()
        w = np.ones((40, 24), np.float32)
        good = [("blk.0.ffn_gate.weight", "f32", w.shape, dense_bytes("f32", w), None)]
        d = os.path.join(tmpdir(), "enc-bad")

        def refused(tensors, version=2, edit=None, msg=""):
            shutil.rmtree(d, ignore_errors=True)
            full = list(tensors)
            have = {t[0] for t in tensors}
            for n, shape in M.expected_shapes(cfg).items():
                if n not in have and not any(h.startswith(n[:-len("weight")] + "lr_") for h in have):
                    full.append((n, "f32", shape, dense_bytes("f32", np.ones(shape)), None))
            m = write_pack(d, cfg, full, version=version)
            if edit:
                edit(m)
                with open(os.path.join(d, "manifest.json"), "w") as f:
                    json.dump(m, f)
            with self.assertRaisesRegex(P.PackError, msg):
                P.Pack(d).chunk(0)

        t = np.zeros((40, 24), np.int8)
        tern = [("blk.0.ffn_gate.weight", "t2", t.shape, ternary_bytes("t2", t, [1.0]), {"scale_axis": 0})]
        refused(tern, version=1, msg="version 2")
        refused(good, edit=lambda m: m.update(version=3), msg="format version 3")
        refused(good, edit=lambda m: m["chunks"][0].update(sha256="0" * 64), msg="sha256")
        refused(good, edit=lambda m: m["tensors"][0].update(bytes=8), msg="bytes")
        refused(good, edit=lambda m: m["tensors"][0].update(offset=32), msg="multiple of 64")
        refused(good, edit=lambda m: m["chunks"][0].update(file="../x"), msg="plain file name")
        refused(good, edit=lambda m: m["config"].update(n_kv_heads=3), msg="n_kv_heads")
        refused(good + [("blk.0.ffn_up.lr_u.0", "f32", (2, 40), dense_bytes("f32", np.ones((2, 40))), None)],
                msg="lr_v.0 is missing")
        refused([("blk.0.ffn_gate.weight", "t2", t.shape, ternary_bytes("t2", t, [1.0] * 2),
                  {"scale_axis": 3, "scale_blocks": 2})], msg="scale_blocks")


class TestPackModels(unittest.TestCase):
    def test_mixed_pack_forward_equals_dense(self):
        for act in ("float", "int8"):
            p, cfg, dense, m = mixed_pack(os.path.join(tmpdir(), "mixed-" + act), act)
            self.assertEqual(len(p.chunks), 2)  # rank slices 1.. in tier 1
            for name, w in dense.items():
                got = p.effective(name) if name.startswith("blk.") and w.ndim == 2 else p.dense(name)
                np.testing.assert_allclose(got, w, rtol=0, atol=1e-12, err_msg=name)
            pm = P.PackModel(p)
            toks = [1, 5, 9, 13, 2, 7, 30]
            want = M.forward(cfg, dense, toks, linear=emulated_linear(cfg, dense, p))
            np.testing.assert_allclose(pm.forward(toks), want, rtol=1e-10, atol=1e-10)
            g1, gaps1 = pm.greedy(toks, 6)
            g2, gaps2 = pm.greedy(toks, 6, recompute=True)
            self.assertEqual(g1, g2)
            np.testing.assert_allclose(gaps1, gaps2, atol=1e-10)
        # int8 and float activations differ (the mode is read from the config)
        self.assertGreater(np.max(np.abs(P.PackModel(P.Pack(os.path.join(tmpdir(), "mixed-float"))).forward(toks)
                                         - pm.forward(toks))), 1e-4)

    def test_rank_slices_prefix(self):
        p, cfg, dense, _ = mixed_pack(os.path.join(tmpdir(), "mixed-rank"), "int8")
        toks = [3, 4, 5]
        outs = []
        for n in (0, 1, 2, 3, None):
            pm = P.PackModel(p, n)
            np.testing.assert_allclose(pm.forward(toks), M.forward(cfg, dense, toks,
                                                                   linear=emulated_linear(cfg, dense, p, n)),
                                       rtol=1e-10, atol=1e-10)
            outs.append(pm.forward(toks))
        np.testing.assert_array_equal(outs[3], outs[4])  # 3 slices are all of them
        self.assertGreater(np.max(np.abs(outs[0] - outs[1])), 1e-4)
        # base only: tier 1 (slices 1..) is never read
        p2 = P.Pack(os.path.join(tmpdir(), "mixed-rank"))
        P.PackModel(p2, 1).forward(toks)
        self.assertEqual(sorted(p2._data), [0])

    def test_bitnet_t2_pack_equals_checkpoint_int8(self):
        # BitNet's checkpoint weights are s * T per tensor: as t2 packs (t2 and
        # t1, scale_axis 0) with int8 activations they must give what the
        # dense int8 path gives on the checkpoint.
        d = preset_dir("bitnet")
        cfg, W, _ = M.load_hf(d)
        cfg.act_quant = "int8"
        for enc in ("t2", "t1"):
            tensors = []
            for name, w in W.items():
                if w.ndim == 2 and name.startswith("blk."):
                    s = np.float32(np.max(np.abs(w)))
                    t = np.rint(w / s).astype(np.int8)
                    np.testing.assert_array_equal(t * s, w)
                    tensors.append((name, enc, w.shape, ternary_bytes(enc, t, [s]), {"scale_axis": 0}))
                else:
                    tensors.append((name, "f32", w.shape, dense_bytes("f32", w), None))
            pd = os.path.join(tmpdir(), "bitnet-" + enc)
            write_pack(pd, cfg, tensors)
            pm = P.PackModel(P.Pack(pd))
            toks = [cfg.vocab_size - 5, 70, 80, 90, 100]
            want = M.forward(cfg, M.encode_weights(W, "f32"), toks)
            np.testing.assert_allclose(pm.forward(toks), want, rtol=1e-10, atol=1e-10)
            if enc == "t1":
                continue
            out = subprocess.run([sys.executable, os.path.join(HERE, "golden.py"), "--pack", pd, "--hf", d,
                                  "--prompt", "Once upon a time", "--greedy", "5"],
                                 check=True, capture_output=True, text=True).stdout
            ref = subprocess.run([sys.executable, os.path.join(HERE, "golden.py"), "--hf", d, "--act-quant", "int8",
                                  "--prompt", "Once upon a time", "--greedy", "5"],
                                 check=True, capture_output=True, text=True).stdout
            a, b = json.loads(out), json.loads(ref)
            self.assertEqual(a["tokens"], b["tokens"])
            self.assertEqual(a["generated"], b["generated"])
            self.assertEqual(a["text_hex"], b["text_hex"])
            np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-8, atol=1e-8)

    def test_golden_cli_pack(self):
        # a v1 q8_0 pack of a checkpoint gives exactly the --hf --dtype q8_0 JSON
        d = preset_dir("llama-odd")
        cfg, W, _ = M.load_hf(d)
        pd = os.path.join(tmpdir(), "odd-q8")
        write_pack(pd, cfg, [(n, "q8_0" if w.ndim == 2 else "f32", w.shape,
                              dense_bytes("q8_0" if w.ndim == 2 else "f32", w), None) for n, w in W.items()],
                   version=1)
        golden = os.path.join(HERE, "golden.py")
        args = ["--prompt", "Hello", "naïve café", "--greedy", "4"]
        a = subprocess.run([sys.executable, golden, "--pack", pd, "--hf", d] + args,
                           check=True, capture_output=True, text=True).stdout
        b = subprocess.run([sys.executable, golden, "--hf", d, "--dtype", "q8_0"] + args,
                           check=True, capture_output=True, text=True).stdout
        self.assertEqual(a, b)
        # v2 pack, --tokens, --rank-slices; text from the pack's tokenizer blob
        p, cfg, dense, _ = mixed_pack(os.path.join(tmpdir(), "mixed-cli"), "int8")
        for n in (None, 1):
            extra = [] if n is None else ["--rank-slices", str(n)]
            res = json.loads(subprocess.run([sys.executable, golden, "--pack", p.path, "--tokens", "1,5,9",
                                             "--greedy", "3", "--all-logits"] + extra,
                                            check=True, capture_output=True, text=True).stdout)
            pm = P.PackModel(p, n)
            self.assertEqual(res["tokens"], [1, 5, 9])
            self.assertGreaterEqual(res["act_tie_margin"], 0.0)  # int8 pack: the margin is reported
            np.testing.assert_allclose(res["all_logits"], pm.forward([1, 5, 9]), rtol=1e-8, atol=1e-8)
            gen = pm.greedy([1, 5, 9], 3)[0]
            self.assertEqual(res["generated"], gen)
            self.assertEqual(bytes.fromhex(res["text_hex"]), b"".join(b" w%d" % (i - 3) for i in gen))
        blob = P.BlobTokenizer(p.tokenizer_blob())
        self.assertEqual(blob.decode([1, 3, 4, 2]), b"w0 w1")  # SPM_PREFIX: space after BOS dropped, EOS nothing
        r = subprocess.run([sys.executable, golden, "--pack", p.path, "--tokens", "1", "--dtype", "f16"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--dtype", r.stderr)


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
        q8 = [k for k, w in W.items() if np.ndim(w) == 2]  # every matrix is q8_0: q8_0 x q8_0
        logits = M.forward(cfg, M.encode_weights(W, "q8_0"), ids, q8=q8)
        np.testing.assert_allclose(res[0]["logits"], logits[-1], rtol=1e-8, atol=1e-8)
        self.assertEqual(len(res[0]["all_logits"]), len(ids))
        self.assertEqual(res[0]["generated"], M.greedy(cfg, M.encode_weights(W, "q8_0"), ids, 4, q8=q8)[0])

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
