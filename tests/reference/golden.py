#!/usr/bin/python3
"""Print golden numbers (JSON on stdout) from the numpy reference.

    golden.py (--hf DIR | --llama2c BIN --tokenizer TOKBIN) [--dtype f32|f16|q8_0]
              (--prompt TEXT [TEXT ...] | --tokens 1,2,3) [--greedy N] [--all-logits]
              [--no-bos] [--act-quant float|int8] [--f32-tensors NAMES]

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
  prompt      the prompt text, when given (prompt_hex: its exact bytes)

--dtype is the pack encoding every matrix (token_embd and output included)
goes through before the float64 forward pass; norm vectors stay f32, and so
do the matrices named by --f32-tensors (pack names). --act-quant int8 applies
BitNet's per-token absmax int8 activation quantization before every linear
layer but the output head.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import llama2c  # noqa: E402
import model as M  # noqa: E402
import tokenizer as T  # noqa: E402


def fmt(x):
    return float("%.9g" % x)


def load(args):
    if args.hf:
        cfg, W, _ = M.load_hf(args.hf)
        tok = T.Gpt2BpeTokenizer.from_files(os.path.join(args.hf, "tokenizer.json"),
                                            os.path.join(args.hf, "tokenizer_config.json"))
    else:
        cfg, W = llama2c.load(args.llama2c)
        tok = T.SpmTokenizer.from_llama2c(args.tokenizer, cfg.vocab_size)
    cfg.act_quant = args.act_quant
    keep = [n for n in (args.f32_tensors or "").split(",") if n]
    unknown = [n for n in keep if n not in W]
    if unknown:
        raise ValueError("--f32-tensors: no tensor named %s" % ", ".join(unknown))
    return cfg, M.encode_weights(W, args.dtype, keep), tok


def run_one(cfg, W, tok, tokens, args, prompt=None):
    if not tokens:
        raise ValueError("no input tokens (empty prompt with --no-bos?)")
    if len(tokens) + args.greedy > cfg.max_seq_len:
        raise ValueError("%d tokens + %d greedy steps exceed the model's context of %d"
                         % (len(tokens), args.greedy, cfg.max_seq_len))
    logits = M.forward(cfg, W, tokens)
    out = {"tokens": tokens, "logits": [fmt(v) for v in logits[-1]]}
    if prompt is not None:
        raw = T.to_bytes(prompt)
        out["prompt"] = raw.decode("utf-8", "replace")
        out["prompt_hex"] = raw.hex()
    if args.greedy:
        gen, gaps = M.greedy(cfg, W, tokens, args.greedy)
        data = tok.decode(gen, prev=tokens[-1])
        out["generated"] = gen
        out["text"] = data.decode("utf-8", "replace")
        out["text_hex"] = data.hex()
        out["min_gap"] = fmt(min(gaps))
    if args.all_logits:
        out["all_logits"] = [[fmt(v) for v in row] for row in logits]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="golden numbers from the numpy reference")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--hf", metavar="DIR", help="Hugging Face model directory")
    src.add_argument("--llama2c", metavar="BIN", help="llama2.c legacy checkpoint")
    ap.add_argument("--tokenizer", metavar="TOKBIN", help="llama2.c tokenizer.bin (with --llama2c)")
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "q8_0"])
    inp = ap.add_mutually_exclusive_group(required=True)
    inp.add_argument("--prompt", nargs="+", action="extend", metavar="TEXT")
    inp.add_argument("--tokens", metavar="IDS", help="comma-separated ids, used as is")
    ap.add_argument("--greedy", type=int, default=0, metavar="N")
    ap.add_argument("--all-logits", action="store_true")
    ap.add_argument("--no-bos", action="store_true")
    ap.add_argument("--act-quant", default="float", choices=["float", "int8"])
    ap.add_argument("--f32-tensors", metavar="NAMES",
                    help="comma-separated pack tensor names kept f32 whatever --dtype says "
                         "(e.g. token_embd.weight,output.weight)")
    args = ap.parse_args(argv)
    if args.llama2c and not args.tokenizer:
        ap.error("--llama2c needs --tokenizer")
    try:
        cfg, W, tok = load(args)
        if args.tokens is not None:
            ids = [int(t) for t in args.tokens.split(",") if t.strip()]
            result = run_one(cfg, W, tok, ids, args)
        else:
            results = [run_one(cfg, W, tok, tok.encode(p, bos=not args.no_bos), args, p) for p in args.prompt]
            result = results[0] if len(results) == 1 else results
    except (ValueError, NotImplementedError, OSError, KeyError) as e:
        sys.stderr.write("golden.py: %s\n" % (e,))
        return 1
    json.dump(result, sys.stdout, ensure_ascii=True, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
