#!/usr/bin/env python3
"""trillium-convert + trillium-eval end to end on the real stories260K model, and
the CLIs' one-line errors on bad input.

    test_cli.py CONVERT EVAL MODEL_DIR

MODEL_DIR holds stories260K.bin and tok512.bin. The greedy continuation of
"Once upon a time" is llama2.c's own (temperature 0) output for this model."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

CONVERT, EVAL, MODELS = sys.argv[1:4]
BIN = os.path.join(MODELS, "stories260K.bin")
TOK = os.path.join(MODELS, "tok512.bin")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cliutil import check, failures, run  # noqa: E402


def expect_error(cmd, rc, *needles):
    code, out, err = run(cmd)
    lines = err.strip().splitlines()
    check(code == rc, "%s: exit %d, expected %d (%s)" % (" ".join(cmd[1:]), code, rc, err.strip()))
    check(len(lines) == 1, "%s: %d stderr lines, expected one: %r" % (" ".join(cmd[1:]), len(lines), err))
    for n in needles:
        check(n in err, "%s: stderr %r lacks %r" % (" ".join(cmd[1:]), err.strip(), n))


work = tempfile.mkdtemp(prefix="trlc-cli-")
try:
    pack = os.path.join(work, "s260")
    code, out, err = run([CONVERT, BIN, "--tokenizer", TOK, "-o", pack, "--dtype", "q8_0", "--chunk-mb", "1"])
    check(code == 0 and "47 tensors" in out, "convert: %d %s %s" % (code, out, err))
    code, out, err = run([EVAL, pack, "--prompt", "Once upon a time", "--greedy", "32"])
    check(code == 0, "eval: %d %s" % (code, err))
    if code == 0:
        d = json.loads(out)
        check(d["tokens"][0] == 1 and len(d["logits"]) == 512 and len(d["generated"]) == 32, "eval output shape")
        check(d["text"].startswith(", there was a little girl named Lily. She loved to play outside"),
              "greedy text: %r" % d["text"])
        check(bytes.fromhex(d["text_hex"]).decode() == d["text"], "text_hex")
    code, out, err = run([EVAL, pack, "--tokens", "1,403,407", "--all-logits"])
    check(code == 0 and len(json.loads(out)["all_logits"]) == 3, "all_logits")

    # bad input: one line on stderr, non-zero exit
    expect_error([CONVERT, BIN, "--tokenizer", TOK, "-o", pack], 1, pack, "already exists", "--force")
    expect_error([CONVERT, BIN, "-o", os.path.join(work, "x")], 1, "no tokenizer", "--tokenizer")
    expect_error([CONVERT, BIN, "--tokenizer", TOK, "-o", os.path.join(work, "x"), "--dtype", "q4"], 2, "--dtype")
    expect_error([CONVERT, BIN, "--tokenizer", TOK], 2, "-o")
    expect_error([CONVERT, os.path.join(work, "missing.bin"), "-o", os.path.join(work, "x")], 1, "missing.bin")
    cut = os.path.join(work, "cut.bin")
    with open(BIN, "rb") as f, open(cut, "wb") as g:
        g.write(f.read()[:-100])
    expect_error([CONVERT, cut, "--tokenizer", TOK, "-o", os.path.join(work, "x")], 1, "cut.bin", "truncated")
    check(not os.path.exists(os.path.join(work, "x")), "no pack left after failures")
    check(sorted(os.listdir(work)) == ["cut.bin", "s260"], "leftovers in %s: %s" % (work, os.listdir(work)))
    expect_error([EVAL, pack], 2, "--tokens")
    expect_error([EVAL, pack, "--tokens", "1,x"], 1, "--tokens")
    expect_error([EVAL, pack, "--tokens", "5000"], 1, "out of range")
    chunk = os.path.join(pack, "chunk-0000.bin")
    with open(chunk, "r+b") as f:
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 1]))
    expect_error([EVAL, pack, "--tokens", "1"], 1, "chunk-0000.bin", "sha256")
    # --force replaces the damaged pack
    code, out, err = run([CONVERT, BIN, "--tokenizer", TOK, "-o", pack, "--force"])
    check(code == 0, "convert --force: %s" % err)
    code, out, err = run([EVAL, pack, "--tokens", "1"])
    check(code == 0, "eval after --force: %s" % err)
finally:
    shutil.rmtree(work, ignore_errors=True)

print("test_cli: %s" % ("FAILED (%d)" % len(failures) if failures else "all checks passed"))
sys.exit(1 if failures else 0)
