#!/usr/bin/python3
"""Print golden numbers (JSON on stdout) from the numpy reference.

    golden.py (--hf DIR | --llama2c BIN --tokenizer TOKBIN) [--dtype f32|f16|q8_0]
              (--prompt TEXT [TEXT ...] | --tokens 1,2,3) [--greedy N] [--all-logits]
              [--no-bos] [--act-quant float|int8] [--f32-tensors NAMES]
    golden.py --pack DIR [--rank-slices N] [--hf DIR | --llama2c BIN --tokenizer TOKBIN | --tokenizer-from-pack]
              (--prompt TEXT [TEXT ...] | --tokens 1,2,3) [--greedy N] [--all-logits] [--no-bos]

One result object per prompt (a JSON list when several --prompt are given):
  tokens      the input ids (BOS first unless --no-bos; --tokens are taken as is)
  logits      logits of the last input position, %.9g
  generated   N greedy ids (argmax, lowest id on ties; does not stop at EOS)
  text        the generated ids decoded (UTF-8, invalid bytes as U+FFFD;
              BOS/EOS and special added tokens give nothing)
  text_hex    the same bytes, exactly, in hex
  min_gap     smallest top-1 minus top-2 logit over the greedy steps (how far
              the continuation is from a tie; compare with your tolerance)
  all_logits  (--all-logits) logits of every input position
  act_tie_margin  only when activations were quantized to int8 (--act-quant
              int8, a pack with act_quant int8 or bcq layers): the smallest
              distance of any x*127/a from a rounding tie over the prompt's
              forward pass, in units of q. Below ~1e-4 an f32 core may round
              one element the other way (its activations differ by ~1e-7
              relative) and its logits then differ by up to ~1e-2 relative.
  prompt      the prompt text, when given (prompt_hex: its exact bytes)

--dtype is the pack encoding every matrix (token_embd and output included)
goes through before the float64 forward pass; norm vectors stay f32, and so
do the matrices named by --f32-tensors (pack names). --act-quant int8 applies
BitNet's per-token absmax int8 activation quantization before every linear
layer but the output head.

--pack runs a Trillium model pack (docs/FORMAT.md versions 1 and 2, read by
pack.py: every encoding, ternary / bcq / low-rank included, with the config's
act_quant) instead of a checkpoint; the pack decides encodings and
activations, so --dtype, --act-quant and --f32-tensors are refused with it.
--rank-slices N uses the first N rank slices of each factorised layer (all by
default; 0 = the base weights only). --hf / --llama2c then only name the
tokenizer for --prompt (no weights are read from them).
--tokenizer-from-pack tokenizes --prompt with the pack's own tokenizer blob
(pack.BlobTokenizer, FORMAT.md's encoding steps; NFC first when the blob's
NFC flag says so, as a caller must): comparing its ids with the source's
checks the converter's tokenizer import. Without a source tokenizer the
generated text is decoded with the pack's blob.
"""

import argparse
import json
import os

import numpy as np
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import llama2c  # noqa: E402
import model as M  # noqa: E402
import pack as P  # noqa: E402
import tokenizer as T  # noqa: E402


def fmt(x):
    return float("%.9g" % x)


class SourceModel:
    """A checkpoint's weights through model.forward (PackModel's interface)."""

    def __init__(self, cfg, W, q8=()):
        self.cfg, self.W, self.q8 = cfg, W, frozenset(q8)

    def forward(self, tokens):
        return M.forward(self.cfg, self.W, tokens, q8=self.q8)

    def greedy(self, tokens, n):
        return M.greedy(self.cfg, self.W, tokens, n, q8=self.q8)


def source_tokenizer(args, vocab_size=None):
    if args.hf:
        return T.Gpt2BpeTokenizer.from_files(os.path.join(args.hf, "tokenizer.json"),
                                             os.path.join(args.hf, "tokenizer_config.json"))
    if args.llama2c:
        return T.SpmTokenizer.from_llama2c(args.tokenizer, vocab_size)
    return None


def load(args):
    if args.pack:
        pk = P.Pack(args.pack)
        m = P.PackModel(pk, args.rank_slices)
        tok = source_tokenizer(args, pk.config.vocab_size)
        if tok is None and pk.tokenizer is not None:
            tok = P.BlobTokenizer(pk.tokenizer_blob(), "%s: tokenizer blob" % args.pack)
        elif args.tokenizer_from_pack:
            raise ValueError("%s: the pack has no tokenizer" % args.pack)
        return m, tok
    if args.hf:
        cfg, W, _ = M.load_hf(args.hf)
    else:
        cfg, W = llama2c.load(args.llama2c)
    tok = source_tokenizer(args, cfg.vocab_size)
    cfg.act_quant = args.act_quant or "float"
    keep = [n for n in (args.f32_tensors or "").split(",") if n]
    unknown = [n for n in keep if n not in W]
    if unknown:
        raise ValueError("--f32-tensors: no tensor named %s" % ", ".join(unknown))
    q8 = [n for n, w in W.items() if np.ndim(w) == 2 and n not in keep] if args.dtype == "q8_0" else []
    return SourceModel(cfg, M.encode_weights(W, args.dtype or "f32", keep), q8), tok


def prompt_text(tok, p):
    if isinstance(tok, P.BlobTokenizer) and tok.flags & P.TOK_NFC:
        return unicodedata.normalize("NFC", p)
    return p


def run_one(model, tok, tokens, args, prompt=None):
    cfg = model.cfg
    if not tokens:
        raise ValueError("no input tokens (empty prompt with --no-bos?)")
    if len(tokens) + args.greedy > cfg.max_seq_len:
        raise ValueError("%d tokens + %d greedy steps exceed the model's context of %d"
                         % (len(tokens), args.greedy, cfg.max_seq_len))
    with M.TieMargin() as tie:
        logits = model.forward(tokens)
    out = {"tokens": tokens, "logits": [fmt(v) for v in logits[-1]]}
    if tie.value is not None:
        out["act_tie_margin"] = fmt(tie.value)
    if prompt is not None:
        raw = T.to_bytes(prompt)
        out["prompt"] = raw.decode("utf-8", "replace")
        out["prompt_hex"] = raw.hex()
    if args.greedy:
        gen, gaps = model.greedy(tokens, args.greedy)
        out["generated"] = gen
        if tok is not None:
            data = tok.decode(gen, prev=tokens[-1])
            out["text"] = data.decode("utf-8", "replace")
            out["text_hex"] = data.hex()
        out["min_gap"] = fmt(min(gaps))
    if args.all_logits:
        out["all_logits"] = [[fmt(v) for v in row] for row in logits]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="golden numbers from the numpy reference")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--hf", metavar="DIR", help="Hugging Face model directory")
    src.add_argument("--llama2c", metavar="BIN", help="llama2.c legacy checkpoint")
    ap.add_argument("--tokenizer", metavar="TOKBIN", help="llama2.c tokenizer.bin (with --llama2c)")
    ap.add_argument("--pack", metavar="DIR", help="a Trillium model pack (then --hf / --llama2c only tokenize)")
    ap.add_argument("--rank-slices", type=int, default=None, metavar="N",
                    help="with --pack: first N rank slices of each factorised layer (default all)")
    ap.add_argument("--tokenizer-from-pack", action="store_true",
                    help="with --pack: tokenize --prompt with the pack's tokenizer blob")
    ap.add_argument("--dtype", choices=["f32", "f16", "q8_0"], help="checkpoint weight encoding (default f32)")
    inp = ap.add_mutually_exclusive_group(required=True)
    inp.add_argument("--prompt", nargs="+", action="extend", metavar="TEXT")
    inp.add_argument("--tokens", metavar="IDS", help="comma-separated ids, used as is")
    ap.add_argument("--greedy", type=int, default=0, metavar="N")
    ap.add_argument("--all-logits", action="store_true")
    ap.add_argument("--no-bos", action="store_true")
    ap.add_argument("--act-quant", choices=["float", "int8"], help="default float")
    ap.add_argument("--f32-tensors", metavar="NAMES",
                    help="comma-separated pack tensor names kept f32 whatever --dtype says "
                         "(e.g. token_embd.weight,output.weight)")
    args = ap.parse_args(argv)
    if args.llama2c and not args.tokenizer:
        ap.error("--llama2c needs --tokenizer")
    if not (args.hf or args.llama2c or args.pack):
        ap.error("one of --hf, --llama2c or --pack is required")
    if args.pack:
        for opt in ("dtype", "act_quant", "f32_tensors"):
            if getattr(args, opt) is not None:
                ap.error("--%s: a pack's manifest fixes it" % opt.replace("_", "-"))
        if args.tokenizer_from_pack and (args.hf or args.llama2c):
            ap.error("--tokenizer-from-pack and --hf / --llama2c both name a tokenizer")
        if args.prompt is not None and not (args.hf or args.llama2c or args.tokenizer_from_pack):
            ap.error("--prompt with --pack needs a tokenizer: --hf, --llama2c or --tokenizer-from-pack")
    elif args.rank_slices is not None or args.tokenizer_from_pack:
        ap.error("--rank-slices and --tokenizer-from-pack need --pack")
    try:
        model, tok = load(args)
        if args.tokens is not None:
            ids = [int(t) for t in args.tokens.split(",") if t.strip()]
            result = run_one(model, tok, ids, args)
        else:
            results = [run_one(model, tok, tok.encode(prompt_text(tok, p), bos=not args.no_bos), args, p)
                       for p in args.prompt]
            result = results[0] if len(results) == 1 else results
    except (ValueError, NotImplementedError, OSError, KeyError) as e:
        sys.stderr.write("golden.py: %s\n" % (e,))
        return 1
    json.dump(result, sys.stdout, ensure_ascii=True, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
