"""Shared helpers of the converter CLI tests (test_cli*.py): run a command,
record failed checks (each script reports `failures` at its end), convert."""
import subprocess
import sys

failures = []


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAILED:", what, file=sys.stderr)
    return cond


def convert(convert_bin, model, pack, *flags, expect=0):
    """trillium-convert MODEL -o PACK FLAGS..., checked to exit with `expect`; (stdout, stderr)."""
    code, out, err = run([convert_bin, model, "-o", pack] + list(flags))
    check(code == expect, "convert %s: exit %d, expected %d: %s" % (" ".join(flags), code, expect, err.strip()))
    return out, err
