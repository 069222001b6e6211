#!/usr/bin/env python3
"""Rewrite the relaxed-SIMD placeholders of a linked module into the final opcodes.

Debian's clang 14 has no builtins for relaxed SIMD's integer dot products and
emits the relaxed-SIMD prototype's opcodes, which engines no longer accept. The
core's relaxed kernels (core/src/kernels/simd128/ternary_simd128.c, built with
TRL_RELAXED_SIMD) therefore spell them as prototype instructions with the same
operand stack that nothing else in the core uses, which clang 14 and Binaryen
108 carry through:
  i8x16.relaxed_swizzle (0xfd 0xa2 0x01, v128 v128 -> v128)
      -> i16x8.relaxed_dot_i8x16_i7x16_s (0xfd 0x92 0x02)
  f32x4.fma (0xfd 0xaf 0x01, v128 v128 v128 -> v128)
      -> i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x93 0x02)
This tool walks every instruction of the code section (so bytes inside
immediates are never touched), rewrites those opcodes and fails on anything it
cannot account for: an unknown opcode or a module without a placeholder
(--min). Then
`wasm-validate --enable-relaxed-simd` (wabt 1.0.32 knows the final opcodes;
0xaf is no final SIMD opcode, and any other prototype opcode left over fails
there) checks the result when wabt is installed.

usage: wasm_relaxed.py IN.wasm OUT.wasm [--min N]
"""
import shutil
import subprocess
import sys

# prototype opcode -> final opcode (both two-byte LEB128s, so sizes do not change)
REWRITE = {0xA2: 0x112, 0xAF: 0x113}


class WasmError(Exception):
    pass


class Reader:
    def __init__(self, b, pos, end):
        self.b, self.pos, self.end = b, pos, end

    def byte(self):
        if self.pos >= self.end:
            raise WasmError("unexpected end at offset %d" % self.pos)
        v = self.b[self.pos]
        self.pos += 1
        return v

    def uleb(self):
        v = shift = 0
        while True:
            c = self.byte()
            v |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return v
            if shift > 63:
                raise WasmError("LEB128 too long at offset %d" % self.pos)

    sleb = uleb  # only skipped: the value does not matter

    def skip(self, n):
        if self.pos + n > self.end:
            raise WasmError("unexpected end at offset %d" % self.pos)
        self.pos += n


def memarg(r):
    r.uleb()
    r.uleb()


def blocktype(r):
    c = r.b[r.pos]
    if c == 0x40 or c in (0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F):
        r.pos += 1
    else:
        r.sleb()


def simd(r, at):
    """Skip a 0xfd instruction's immediates; return (subopcode, offset of its LEB, LEB length)."""
    p0 = r.pos
    op = r.uleb()
    n = r.pos - p0
    if op <= 11 or op in (92, 93):
        memarg(r)
    elif op in (12, 13):
        r.skip(16)
    elif 21 <= op <= 34:
        r.skip(1)
    elif 84 <= op <= 91:
        memarg(r)
        r.skip(1)
    elif op > 0x113:
        raise WasmError("unknown SIMD opcode 0x%x at offset %d" % (op, at))
    return op, p0, n


def walk_body(r, fixes, counts):
    for _ in range(r.uleb()):  # locals
        r.uleb()
        r.byte()
    while r.pos < r.end:
        at = r.pos
        op = r.byte()
        if op in (0x02, 0x03, 0x04, 0x06):
            blocktype(r)
        elif op in (0x07, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x12, 0x18, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0xD2):
            r.uleb()
        elif op == 0x0E:
            for _ in range(r.uleb() + 1):
                r.uleb()
        elif op in (0x11, 0x13):
            r.uleb()
            r.uleb()
        elif op == 0x1C:
            r.skip(r.uleb())
        elif 0x28 <= op <= 0x3E:
            memarg(r)
        elif op in (0x3F, 0x40):
            r.uleb()
        elif op in (0x41, 0x42):
            r.sleb()
        elif op == 0x43:
            r.skip(4)
        elif op == 0x44:
            r.skip(8)
        elif op == 0xD0:
            r.byte()
        elif op == 0xFC:
            sub = r.uleb()
            if sub in (8, 10, 12, 14):
                r.uleb()
                r.uleb()
            elif sub in (9, 11, 13, 15, 16, 17):
                r.uleb()
            elif sub > 17:
                raise WasmError("unknown 0xfc opcode %d at offset %d" % (sub, at))
        elif op == 0xFD:
            sub, p, n = simd(r, at)
            if sub in REWRITE:
                if n != 2:
                    raise WasmError("opcode 0x%x with a %d-byte LEB128 at offset %d" % (sub, n, at))
                fixes.append((p, REWRITE[sub]))
            counts["simd"] += 1
        elif op == 0xFE:
            sub = r.uleb()
            if sub == 0x03:
                r.byte()
            else:
                memarg(r)
        elif op in (0x00, 0x01, 0x05, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1) or 0x45 <= op <= 0xC4:
            pass
        else:
            raise WasmError("unknown opcode 0x%x at offset %d" % (op, at))
    if r.pos != r.end or r.b[r.end - 1] != 0x0B:
        raise WasmError("function body does not end with 'end' at offset %d" % r.end)


def rewrite(b):
    if b[:8] != b"\0asm\1\0\0\0":
        raise WasmError("not a wasm module (version 1)")
    out = bytearray(b)
    fixes, counts = [], {"simd": 0}
    r = Reader(b, 8, len(b))
    while r.pos < len(b):
        sid = r.byte()
        size = r.uleb()
        start, end = r.pos, r.pos + size
        if end > len(b):
            raise WasmError("section %d overruns the file" % sid)
        if sid == 10:
            s = Reader(b, start, end)
            for _ in range(s.uleb()):
                fsize = s.uleb()
                walk_body(Reader(b, s.pos, s.pos + fsize), fixes, counts)
                s.pos += fsize
            if s.pos != end:
                raise WasmError("code section size mismatch")
        r.pos = end
    for p, op in fixes:
        out[p:p + 2] = bytes([0x80 | (op & 0x7F), op >> 7])
    return bytes(out), len(fixes)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    lo = 1
    if "--min" in argv:
        lo = int(argv[argv.index("--min") + 1])
        args.remove(str(lo))
    if len(args) != 2:
        sys.exit(__doc__)
    src, dst = args
    with open(src, "rb") as f:
        b = f.read()
    try:
        out, n = rewrite(b)
    except WasmError as e:
        sys.exit("wasm_relaxed.py: %s: %s" % (src, e))
    if n < lo:
        sys.exit("wasm_relaxed.py: %s: %d placeholder(s), expected at least %d (was it built with TRL_RELAXED_SIMD "
                 "and -mrelaxed-simd?)" % (src, n, lo))
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    validate = shutil.which("wasm-validate")
    if validate:
        res = subprocess.run([validate, "--enable-relaxed-simd", "--enable-threads", tmp], capture_output=True, text=True)
        if res.returncode:
            sys.exit("wasm_relaxed.py: %s: the rewritten module does not validate:\n%s" % (src, res.stderr))
    import os
    os.replace(tmp, dst)
    print("wasm_relaxed.py: %s: %d relaxed-SIMD instruction(s)" % (dst, n))


if __name__ == "__main__":
    main(sys.argv[1:])
