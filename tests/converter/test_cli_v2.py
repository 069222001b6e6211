#!/usr/bin/python3
"""trillium-convert's format-version-2 options end to end: --ternary (t2/t1,
tensor/row absmean, lossless BitNet weights, --act-quant int8), --bcq, --lowrank
(ranks and fractions, variants), --residual-rank, and their usage errors.

    test_cli_v2.py CONVERT EVAL

Models come from the numpy reference's generator (tests/reference/gen_model.py:
llama-tied, and bitnet, whose linear weights are already ternary). Each pack must
load and run in trillium-eval. Where tests/reference/pack.py is present, the
logits are also checked against that independent reader of docs/FORMAT.md."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

CONVERT, EVAL = sys.argv[1:3]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF = os.path.join(ROOT, "tests", "reference")
PY = "/usr/bin/python3"
TOKENS = [1, 17, 42, 5, 99, 3]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cliutil  # noqa: E402
from cliutil import check, failures, run  # noqa: E402

sys.path.insert(0, REF)
import numpy as np  # noqa: E402
import pack as refpack  # noqa: E402 - the numpy reference's pack reader (required: no cross-check, no pass)


def convert(model, pack, *flags, expect=0):
    return cliutil.convert(CONVERT, model, pack, "--chunk-mb", "1", *flags, expect=expect)


def evaluate(pack, *flags):
    code, out, err = run([EVAL, pack, "--tokens", ",".join(map(str, TOKENS)), "--greedy", "4"] + list(flags))
    if not check(code == 0, "eval %s %s: %s" % (os.path.basename(pack), " ".join(flags), err.strip())):
        return None
    d = json.loads(out)
    check(len(d["generated"]) == 4 and all(x == x for x in d["logits"]), "eval output %s" % pack)
    return d["logits"]


def manifest(pack):
    with open(os.path.join(pack, "manifest.json")) as f:
        return json.load(f)


def cross_check(pack, logits, variant=None, rank_slices=None):
    """The core's logits against the numpy reader of the same pack."""
    if not check(logits is not None, "no logits from trillium-eval for %s" % pack):
        return
    try:
        p = refpack.Pack(pack)
        rs = rank_slices
        if variant:
            rs = [v for v in p.variants if v["id"] == variant][0].get("rank_slices")
        ref = refpack.PackModel(p, rank_slices=rs).forward(TOKENS)[-1]
    except Exception as e:  # noqa: BLE001
        check(False, "reference reader on %s: %s" % (pack, e))
        return
    d = float(np.max(np.abs(np.asarray(logits) - ref)))
    scale = max(1.0, float(np.max(np.abs(ref))))
    what = variant or ("%d slices" % rank_slices if rank_slices is not None else "")
    print("  %-24s %-8s core vs numpy reference: max |logit diff| %.2e" % (os.path.basename(pack), what, d))
    check(d < 1e-4 * scale, "%s %s: logits differ from the reference by %g" % (pack, variant or "", d))


def usage_error(model, work, rc, needle, *flags):
    code, out, err = run([CONVERT, model, "-o", os.path.join(work, "never")] + list(flags))
    check(code == rc and needle in err and len(err.strip().splitlines()) == 1,
          "%s: exit %d (want %d), stderr %r lacks %r" % (" ".join(flags), code, rc, err.strip(), needle))


work = tempfile.mkdtemp(prefix="trlc-cli-v2-")
try:
    tied, bitnet = os.path.join(work, "tied"), os.path.join(work, "bitnet")
    for d, preset in ((tied, "llama-tied"), (bitnet, "bitnet")):
        code, _, err = run([PY, os.path.join(REF, "gen_model.py"), d, "--preset", preset, "--no-check"])
        if code != 0:
            print("test_cli_v2: gen_model.py failed: %s" % err.strip(), file=sys.stderr)
            sys.exit(1)

    # --ternary, absmean per tensor (t2) and per row (t1)
    p = os.path.join(work, "tern")
    out, _ = convert(tied, p, "--ternary")
    check("rel. error" in out and "0 of 14 linear tensors were already ternary" in out, "ternary report: %s" % out)
    m = manifest(p)
    check(m["version"] == 2 and any(t["encoding"] == "t2" and t["params"] == {} for t in m["tensors"]),
          "ternary manifest")
    check(all(t["encoding"] == "f32" for t in m["tensors"] if not t["name"].startswith("blk.")
              or "norm" in t["name"]), "embeddings and norms stay f32")
    cross_check(p, evaluate(p))
    p = os.path.join(work, "tern-row-t1")
    convert(tied, p, "--ternary", "--ternary-scale", "row", "--ternary-layout", "t1", "--dtype", "q8_0")
    m = manifest(p)
    check(any(t["encoding"] == "t1" and t["params"] == {"scale_axis": 1} for t in m["tensors"]), "t1 row manifest")
    cross_check(p, evaluate(p))

    # BitNet weights are already ternary: lossless, and the same model as the plain pack
    p, plain = os.path.join(work, "bitnet-t1"), os.path.join(work, "bitnet-f32")
    out, _ = convert(bitnet, p, "--ternary", "--ternary-layout", "t1", "--act-quant", "int8")
    check("14 of 14 linear tensors were already ternary" in out and out.count("lossless") == 14,
          "bitnet lossless report: %s" % out)
    check(manifest(p)["config"]["act_quant"] == "int8", "--act-quant int8")
    convert(bitnet, plain, "--act-quant", "int8")
    a, b = evaluate(p), evaluate(plain)
    if a and b:
        d = max(abs(x - y) for x, y in zip(a, b))
        print("  bitnet lossless t1 vs f32, int8 activations: max |logit diff| %.2e" % d)
        check(d < 1e-3, "lossless ternary differs from f32 by %g" % d)
    cross_check(p, a)
    p = os.path.join(work, "bitnet-t2")
    convert(bitnet, p, "--ternary")
    check(manifest(p)["config"]["act_quant"] == "float", "act_quant stays float by default")
    cross_check(p, evaluate(p))

    # --bcq
    for flags in (["--bcq", "2"], ["--bcq", "3", "--group", "64", "--pow2"], ["--bcq", "1", "--group", "32"]):
        p = os.path.join(work, "bcq-" + "-".join(f.strip("-") for f in flags))
        out, _ = convert(tied, p, *flags)
        check("mean relative weight error" in out, "bcq report")
        t = [t for t in manifest(p)["tensors"] if t["encoding"] == "bcq"]
        check(len(t) == 14 and t[0]["params"]["bits"] == int(flags[1]), "bcq manifest %s" % flags)
        cross_check(p, evaluate(p))

    # a converter built without LAPACKE refuses --lowrank / --residual-rank, saying so
    code, _, err = run([CONVERT, tied, "-o", os.path.join(work, "probe"), "--lowrank", "8"])
    have_lapack = code == 0
    shutil.rmtree(os.path.join(work, "probe"), ignore_errors=True)
    if not have_lapack:
        check("LAPACK" in err, "no-LAPACK message: %r" % err)
        print("test_cli_v2: trillium-convert was built without LAPACKE; low-rank checks skipped")

    if have_lapack:
        # --lowrank: fractions -> variants, each runnable
        p = os.path.join(work, "lowrank")
        out, _ = convert(tied, p, "--lowrank", "0.75,0.5,0.25", "--dtype", "f16")
        m = manifest(p)
        ids = [v["id"] for v in m["variants"]]
        check(ids == ["r0.25", "r0.5", "r0.75"], "variant ids %s" % ids)
        check([v["tiers"] for v in m["variants"]] == [[0], [0, 1], [0, 1, 2]], "variant tiers")
        check(sorted({c["tier"] for c in m["chunks"]}) == [0, 1, 2], "chunk tiers")
        check(not any(t["name"].endswith("attn_q.weight") for t in m["tensors"]), "no base weight with --lowrank")
        for v in m["variants"]:
            check(v["download_bytes"] == sum(c["bytes"] for c in m["chunks"] if c["tier"] in v["tiers"]),
                  "download_bytes of %s" % v["id"])
            cross_check(p, evaluate(p, "--variant", v["id"]), v["id"])
        check("variant r0.5" in out and "rank_slices" in out, "lowrank summary: %s" % out)
        p = os.path.join(work, "lowrank-int")
        convert(tied, p, "--lowrank", "32", "--slice", "8", "--dtype", "q8_0")
        m = manifest(p)
        check(m["variants"][0]["rank_slices"] == 4, "rank 32 / slice 8")
        cross_check(p, evaluate(p))
        cross_check(p, evaluate(p, "--rank-slices", "2"), None, 2)

        # --residual-rank on a quantized base
        for flags in (["--ternary", "--residual-rank", "8"], ["--bcq", "2", "--residual-rank", "12", "--slice", "4"]):
            p = os.path.join(work, "resid-" + flags[0].strip("-"))
            out, _ = convert(tied, p, *flags)
            check("with the rank slices" in out, "residual report: %s" % out)
            names = [t["name"] for t in manifest(p)["tensors"]]
            check("blk.0.attn_q.weight" in names and "blk.0.attn_q.lr_v.0" in names, "residual tensors")
            cross_check(p, evaluate(p))

    # usage and option errors: one line, nothing written
    usage_error(tied, work, 2, "--bcq", "--bcq", "5")
    usage_error(tied, work, 2, "--group", "--bcq", "2", "--group", "48")
    usage_error(tied, work, 2, "alternatives", "--ternary", "--bcq", "2")
    usage_error(tied, work, 2, "alternatives", "--ternary", "--lowrank", "16")
    usage_error(tied, work, 2, "--residual-rank needs", "--residual-rank", "8")
    usage_error(tied, work, 2, "--slice needs", "--slice", "8")
    usage_error(tied, work, 2, "--ternary-scale", "--ternary-scale", "row")
    usage_error(tied, work, 2, "not both", "--lowrank", "0.5,32")
    if have_lapack:
        usage_error(tied, work, 1, "adds no rank", "--lowrank", "64,128")
    check(not os.path.exists(os.path.join(work, "never")), "no pack left after errors")
    check(not [f for f in os.listdir(work) if ".tmp-" in f], "no temporary directories left")
    if have_lapack:
        code, _, err = run([EVAL, os.path.join(work, "lowrank"), "--tokens", "1", "--variant", "r9"])
        check(code == 1 and "r0.25" in err, "eval --variant unknown: %r" % err)
finally:
    shutil.rmtree(work, ignore_errors=True)

print("test_cli_v2: %s" % ("FAILED (%d)" % len(failures) if failures else "all checks passed"))
sys.exit(1 if failures else 0)
