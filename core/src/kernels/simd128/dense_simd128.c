/* dense_simd128.c - WebAssembly SIMD128 kernels for f32, f16 and q8_0.
 * Same canonical summation order as ref/dense_ref.c (see kernels.h): lanes
 * 0-3 of the 8 live in accumulator `a`, lanes 4-7 in `b`. */
#ifdef __wasm_simd128__
#include <string.h>
#include <wasm_simd128.h>

#include "../../internal.h"
#include "../kernels.h"

/* Exact f16 -> f32 for finite values: move exponent+mantissa into f32
 * position and rescale by 2^112 (handles subnormals too), then the sign. */
static inline v128_t f16x4_to_f32x4(v128_t h32) {
    v128_t mag = wasm_i32x4_shl(wasm_v128_and(h32, wasm_i32x4_splat(0x7FFF)), 13);
    v128_t f = wasm_f32x4_mul(mag, wasm_f32x4_splat(0x1p112f));
    v128_t sign = wasm_i32x4_shl(wasm_v128_and(h32, wasm_i32x4_splat(0x8000)), 16);
    return wasm_v128_or(f, sign);
}

static void decode_simd(const trl_weight *w, int row, int c0, int n, float *out) {
    const uint8_t *r = w->data + (size_t)row * w->row_bytes;
    int i = 0;
    switch (w->enc) {
    case TRL_ENC_F32: memcpy(out, r + (size_t)c0 * 4, (size_t)n * 4); return;
    case TRL_ENC_F16: {
        const uint8_t *p = r + (size_t)c0 * 2;
        for (; i + 8 <= n; i += 8) {
            v128_t h = wasm_v128_load(p + 2 * i);
            wasm_v128_store(out + i, f16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(h)));
            wasm_v128_store(out + i + 4, f16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(h)));
        }
        for (; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = trl_f16_to_f32(h);
        }
        return;
    }
    case TRL_ENC_Q8_0:
        for (; i < n; i += TRL_Q8_0_BLOCK) {
            const uint8_t *b = r + (size_t)((c0 + i) / TRL_Q8_0_BLOCK) * TRL_Q8_0_BLOCK_BYTES;
            uint16_t dh;
            memcpy(&dh, b, 2);
            float d = trl_f16_to_f32(dh);
            int m = n - i < TRL_Q8_0_BLOCK ? n - i : TRL_Q8_0_BLOCK;
            if (m == TRL_Q8_0_BLOCK) {
                v128_t vd = wasm_f32x4_splat(d);
                for (int h = 0; h < 2; h++) {
                    v128_t q = wasm_v128_load(b + 2 + 16 * h);
                    v128_t lo = wasm_i16x8_extend_low_i8x16(q), hi = wasm_i16x8_extend_high_i8x16(q);
                    float *o = out + i + 16 * h;
                    wasm_v128_store(o, wasm_f32x4_mul(vd, wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(lo))));
                    wasm_v128_store(o + 4, wasm_f32x4_mul(vd, wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(lo))));
                    wasm_v128_store(o + 8, wasm_f32x4_mul(vd, wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(hi))));
                    wasm_v128_store(o + 12, wasm_f32x4_mul(vd, wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(hi))));
                }
            } else {
                for (int j = 0; j < m; j++) out[i + j] = d * (float)(int8_t)b[2 + j];
            }
        }
        return;
    default: memset(out, 0, (size_t)n * 4); return;
    }
}

static void matmul_simd(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const float *x = act->x;
    const int ntok = act->ntok;
    float wbuf[TRL_KCHUNK] __attribute__((aligned(16)));
    float xpad[8] __attribute__((aligned(16)));
    v128_t acc_a[TRL_KMAX_TOKENS], acc_b[TRL_KMAX_TOKENS];
    const int cols = w->cols;
    for (int r = r0; r < r1; r++) {
        for (int t = 0; t < ntok; t++) acc_a[t] = acc_b[t] = wasm_f32x4_splat(0.0f);
        for (int c0 = 0; c0 < cols; c0 += TRL_KCHUNK) {
            int n = cols - c0 < TRL_KCHUNK ? cols - c0 : TRL_KCHUNK;
            decode_simd(w, r, c0, n, wbuf);
            int n8 = n & ~7;
            for (int i = n; i < ((n + 7) & ~7); i++) wbuf[i] = 0.0f;
            for (int t = 0; t < ntok; t++) {
                const float *xt = x + (size_t)t * cols + c0;
                v128_t a = acc_a[t], b = acc_b[t];
                for (int i = 0; i < n8; i += 8) {
                    a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(wbuf + i), wasm_v128_load(xt + i)));
                    b = wasm_f32x4_add(b, wasm_f32x4_mul(wasm_v128_load(wbuf + i + 4), wasm_v128_load(xt + i + 4)));
                }
                if (n8 < n) {
                    for (int l = 0; l < 8; l++) xpad[l] = n8 + l < n ? xt[n8 + l] : 0.0f;
                    a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(wbuf + n8), wasm_v128_load(xpad)));
                    b = wasm_f32x4_add(b, wasm_f32x4_mul(wasm_v128_load(wbuf + n8 + 4), wasm_v128_load(xpad + 4)));
                }
                acc_a[t] = a, acc_b[t] = b;
            }
        }
        for (int t = 0; t < ntok; t++) {
            float l[8];
            wasm_v128_store(l, acc_a[t]);
            wasm_v128_store(l + 4, acc_b[t]);
            y[(size_t)t * ldy + r] = trl_reduce8(l);
        }
    }
}

static const trl_kernel_ops simd_ops = {"simd128", trl_act_bytes_none, trl_prepare_float, matmul_simd, decode_simd};

const trl_kernel_ops *trl_dense_simd128(const trl_weight *w) {
    switch (w->enc) {
    case TRL_ENC_F32:
    case TRL_ENC_F16:
    case TRL_ENC_Q8_0: return &simd_ops;
    default: return NULL;
    }
}
#endif
