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

/* One token (decode): dequantize in registers and multiply straight away, with
 * no trip through a buffer. Same lanes and order as the buffered path. */
static inline void acc4(v128_t *a, v128_t w, const float *x) {
    *a = wasm_f32x4_add(*a, wasm_f32x4_mul(w, wasm_v128_load(x)));
}

static float dot_row_1(const trl_weight *w, int r, const float *x) {
    const uint8_t *row = w->data + (size_t)r * w->row_bytes;
    const int cols = w->cols;
    v128_t a = wasm_f32x4_splat(0.0f), b = a;
    int i = 0;
    switch (w->enc) {
    case TRL_ENC_F32:
        for (; i + 8 <= cols; i += 8) {
            acc4(&a, wasm_v128_load(row + 4 * (size_t)i), x + i);
            acc4(&b, wasm_v128_load(row + 4 * (size_t)i + 16), x + i + 4);
        }
        break;
    case TRL_ENC_F16:
        for (; i + 8 <= cols; i += 8) {
            v128_t h = wasm_v128_load(row + 2 * (size_t)i);
            acc4(&a, f16x4_to_f32x4(wasm_u32x4_extend_low_u16x8(h)), x + i);
            acc4(&b, f16x4_to_f32x4(wasm_u32x4_extend_high_u16x8(h)), x + i + 4);
        }
        break;
    case TRL_ENC_Q8_0:
        for (; i + TRL_Q8_0_BLOCK <= cols; i += TRL_Q8_0_BLOCK) {
            const uint8_t *blk = row + (size_t)(i / TRL_Q8_0_BLOCK) * TRL_Q8_0_BLOCK_BYTES;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            const v128_t vd = wasm_f32x4_splat(trl_f16_to_f32(dh));
            for (int h = 0; h < 2; h++) {
                v128_t q = wasm_v128_load(blk + 2 + 16 * h);
                v128_t lo = wasm_i16x8_extend_low_i8x16(q), hi = wasm_i16x8_extend_high_i8x16(q);
                const float *xh = x + i + 16 * h;
                acc4(&a, wasm_f32x4_mul(vd, wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(lo))), xh);
                acc4(&b, wasm_f32x4_mul(vd, wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(lo))), xh + 4);
                acc4(&a, wasm_f32x4_mul(vd, wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(hi))), xh + 8);
                acc4(&b, wasm_f32x4_mul(vd, wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(hi))), xh + 12);
            }
        }
        break;
    default: break;
    }
    if (i < cols) { /* the tail: decode the rest (at most one chunk) and pad with zeros */
        float wt[TRL_KCHUNK + 64] __attribute__((aligned(16)));
        float xt[TRL_KCHUNK + 8] __attribute__((aligned(16)));
        int c0 = i / TRL_KCHUNK * TRL_KCHUNK, n = cols - c0;
        decode_simd(w, r, c0, n, wt);
        int m = cols - i, m8 = (m + 7) & ~7;
        for (int k = 0; k < m8; k++) xt[k] = k < m ? x[i + k] : 0.0f;
        for (int k = m; k < m8; k++) wt[i - c0 + k] = 0.0f;
        for (int k = 0; k < m8; k += 8) {
            acc4(&a, wasm_v128_load(wt + (i - c0) + k), xt + k);
            acc4(&b, wasm_v128_load(wt + (i - c0) + k + 4), xt + k + 4);
        }
    }
    float l[8];
    wasm_v128_store(l, a);
    wasm_v128_store(l + 4, b);
    return trl_reduce8(l);
}

static void matmul_simd(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const float *x = act->x;
    const int ntok = act->ntok;
    if (ntok == 1) {
        for (int r = r0; r < r1; r++) y[r] = dot_row_1(w, r, x);
        return;
    }
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

/* q8_0 x q8_0 (see ref/dense_ref.c): exact integer block dots with extmul +
 * extadd, four blocks reduced together, then the float terms added block by
 * block in order, as the reference does. */
static inline v128_t block_dot4(const uint8_t *w, const uint8_t *x) {
    v128_t w0 = wasm_v128_load(w + 2), w1 = wasm_v128_load(w + 18);
    v128_t x0 = wasm_v128_load(x + 2), x1 = wasm_v128_load(x + 18);
    v128_t s = wasm_i32x4_add(wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_low_i8x16(w0, x0)),
                              wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_high_i8x16(w0, x0)));
    return wasm_i32x4_add(s, wasm_i32x4_add(wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_low_i8x16(w1, x1)),
                                            wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_extmul_high_i8x16(w1, x1))));
}

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return trl_h2f_finite(h);
}

static void matmul_q8_simd(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int nb = (w->cols + TRL_Q8_0_BLOCK - 1) / TRL_Q8_0_BLOCK, nb4 = nb & ~3;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < act->ntok; t++) {
            const uint8_t *xr = (const uint8_t *)act->aux + (size_t)t * act->aux_stride;
            const float *dx = act->qscale + (size_t)t * nb;
            float acc = 0.0f;
            int b = 0;
            for (; b < nb4; b += 4) {
                const uint8_t *wb = row + (size_t)b * TRL_Q8_0_BLOCK_BYTES, *xb = xr + (size_t)b * TRL_Q8_0_BLOCK_BYTES;
                v128_t s0 = block_dot4(wb, xb), s1 = block_dot4(wb + 34, xb + 34);
                v128_t s2 = block_dot4(wb + 68, xb + 68), s3 = block_dot4(wb + 102, xb + 102);
                v128_t a = wasm_i32x4_add(wasm_i32x4_shuffle(s0, s1, 0, 4, 1, 5), wasm_i32x4_shuffle(s0, s1, 2, 6, 3, 7));
                v128_t c = wasm_i32x4_add(wasm_i32x4_shuffle(s2, s3, 0, 4, 1, 5), wasm_i32x4_shuffle(s2, s3, 2, 6, 3, 7));
                v128_t d = wasm_i32x4_add(wasm_i32x4_shuffle(a, c, 0, 1, 4, 5), wasm_i32x4_shuffle(a, c, 2, 3, 6, 7));
                v128_t sc = wasm_f32x4_make(h2f(wb) * dx[b], h2f(wb + 34) * dx[b + 1], h2f(wb + 68) * dx[b + 2],
                                            h2f(wb + 102) * dx[b + 3]);
                float term[4];
                wasm_v128_store(term, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(d), sc));
                acc += term[0];
                acc += term[1];
                acc += term[2];
                acc += term[3];
            }
            for (; b < nb; b++) {
                const uint8_t *wb = row + (size_t)b * TRL_Q8_0_BLOCK_BYTES, *xb = xr + (size_t)b * TRL_Q8_0_BLOCK_BYTES;
                v128_t s0 = block_dot4(wb, xb);
                int32_t dot = wasm_i32x4_extract_lane(s0, 0) + wasm_i32x4_extract_lane(s0, 1) +
                              wasm_i32x4_extract_lane(s0, 2) + wasm_i32x4_extract_lane(s0, 3);
                acc += (float)dot * (h2f(wb) * dx[b]);
            }
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

static const trl_kernel_ops simd_ops = {"simd128", trl_act_bytes_none, trl_prepare_float, matmul_simd, decode_simd};
static const trl_kernel_ops simd_q8_ops = {"simd128", trl_act_bytes_q8_0, trl_prepare_q8_0, matmul_q8_simd, decode_simd};

const trl_kernel_ops *trl_dense_simd128(const trl_weight *w) {
    switch (w->enc) {
    case TRL_ENC_F32:
    case TRL_ENC_F16: return &simd_ops;
    case TRL_ENC_Q8_0: return &simd_q8_ops;
    default: return NULL;
    }
}
#endif
