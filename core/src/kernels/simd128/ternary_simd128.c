/* ternary_simd128.c - WebAssembly SIMD128 kernels for t2, bit-identical to
 * ref/ternary_ref.c (ternary.h gives the shared numerics).
 *
 * int8 activations, two "multiply" designs here (the lookup-table design is
 * in ternary_simd128_lut.c); all compute dot(T, q) = dot(u, q) - sum(q) with
 * u = T + 1 in {0, 1, 2} and the per-block sums of q from prepare():
 *
 *   MAD     8 bytes of codes zero-extended into i16 lanes (v128.load8x8_u);
 *           code k of each byte is kept in place by a mask (u * 4^k) instead of
 *           being shifted down, and prepare() stores the activations of the
 *           columns of code k as q * 4^(3-k) in i16, so one i32x4.dot_i16x8_s
 *           gives 64 * u * q for every k: one AND + one dot + one add per 8
 *           weights, into a single i32 accumulator per (row, token).
 *   EXTMUL  16 bytes of codes, u = (w >> 2k) & 3 per byte, i16x8.extmul_low /
 *           high_i8x16 against the int8 activations, i16 partial sums widened
 *           with i32x4.extadd_pairwise_i16x8_s every 4 blocks.
 *
 * Both share each weight load across a tile of rows and tokens (ROWS x TOKS
 * accumulators kept in registers across the row).
 *
 * float activations: codes -> f32 (T = u - 1, exact) and the canonical 8
 * lanes of kernels.h, lanes 0-3 in one f32x4 and 4-7 in another; x is copied
 * zero-padded to whole blocks by prepare() so the loops have no tail. */
#ifdef __wasm_simd128__
#include <string.h>
#include <wasm_simd128.h>

#include "../../internal.h"
#include "../kernels.h"
#include "../ternary.h"

#define INLINE static inline __attribute__((always_inline))
#define MAXR 4 /* largest row tile */
#ifndef MAD_BAR
#define MAD_BAR 1
#endif
#if MAD_BAR
#define MAD_BARRIER() __asm__ volatile("" ::: "memory")
#else
#define MAD_BARRIER() ((void)0)
#endif
#ifndef MAD_RV
#define MAD_RV 4
#endif
#define MAXT 4 /* largest token tile */

static inline int32_t hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
           wasm_i32x4_extract_lane(v, 3);
}

/* A tile computes dot(u, q) for rows rp[0..R) and tokens t0..t0+TN over t2
 * blocks [b0, b1): out[i][t]. */
typedef void (*tile_fn)(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,
                        int32_t out[MAXR][MAXT]);

/* ------------------------------------------------------------ MAD design */

/* design data per token: (cols_pad) int16, q * 4^(3-k) */
static size_t act_bytes_mad(const trl_weight *w, int ntok) { return trl_t2_act_bytes_i8(w, ntok, 2); }

static void prepare_mad(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    trl_t2_prepare_i8(w, x, ntok, scratch, 2, act);
    const int32_t cols_pad = trl_t2_cols_pad(w);
    for (int t = 0; t < ntok; t++) {
        const int8_t *q = act->q + (size_t)t * cols_pad;
        int16_t *qs = trl_t2_design(act, t);
        for (int32_t c = 0; c < cols_pad; c += 32) {
            int k = (c % TRL_T2_BLOCK) / 32;
            v128_t a = wasm_v128_load(q + c), b = wasm_v128_load(q + c + 16);
            wasm_v128_store(qs + c, wasm_i16x8_shl(wasm_i16x8_extend_low_i8x16(a), 6 - 2 * k));
            wasm_v128_store(qs + c + 8, wasm_i16x8_shl(wasm_i16x8_extend_high_i8x16(a), 6 - 2 * k));
            wasm_v128_store(qs + c + 16, wasm_i16x8_shl(wasm_i16x8_extend_low_i8x16(b), 6 - 2 * k));
            wasm_v128_store(qs + c + 24, wasm_i16x8_shl(wasm_i16x8_extend_high_i8x16(b), 6 - 2 * k));
        }
    }
}

INLINE void mad_tile(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1, int32_t out[MAXR][MAXT],
                     const int R, const int TN) {
    const int16_t *qs[MAXT];
    for (int t = 0; t < TN; t++) qs[t] = trl_t2_design(act, t0 + t);
    const v128_t m0 = wasm_i16x8_splat(3), m1 = wasm_i16x8_splat(3 << 2), m2 = wasm_i16x8_splat(3 << 4),
                 m3 = wasm_i16x8_splat(3 << 6);
    v128_t tot[MAXR][MAXT];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) tot[i][t] = wasm_i32x4_splat(0);
    /* 64 * u * q <= 24576, 32 per lane and block: 1024 blocks stay below 2^31 */
    for (int bc = b0; bc < b1; bc += 1024) {
        const int be = b1 - bc < 1024 ? b1 : bc + 1024;
        v128_t acc[MAXR][MAXT];
        for (int i = 0; i < R; i++)
            for (int t = 0; t < TN; t++) acc[i][t] = wasm_i32x4_splat(0);
        for (int b = bc; b < be; b++) {
#pragma clang loop unroll(disable)
            for (int j0 = 0; j0 < 32; j0 += 8) {
                v128_t wv[MAXR];
                for (int i = 0; i < R; i++) wv[i] = wasm_u16x8_load8x8(rp[i] + (size_t)b * 32 + j0);
#define MAD_K(k, m)                                                                                                    \
    do {                                                                                                               \
        v128_t c[MAXR];                                                                                                \
        for (int i = 0; i < R; i++) c[i] = wasm_v128_and(wv[i], m);                                                    \
        for (int t = 0; t < TN; t++) {                                                                                 \
            v128_t qv = wasm_v128_load(qs[t] + (size_t)b * 128 + 32 * (k) + j0);                                       \
            for (int i = 0; i < R; i++) acc[i][t] = wasm_i32x4_add(acc[i][t], wasm_i32x4_dot_i16x8(c[i], qv));         \
        }                                                                                                              \
    } while (0)
                MAD_K(0, m0);
                MAD_BARRIER();
                MAD_K(1, m1);
                MAD_BARRIER();
                MAD_K(2, m2);
                MAD_BARRIER();
                MAD_K(3, m3);
#undef MAD_K
            }
        }
        for (int i = 0; i < R; i++)
            for (int t = 0; t < TN; t++) tot[i][t] = wasm_i32x4_add(tot[i][t], wasm_i32x4_shr(acc[i][t], 6));
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) out[i][t] = hsum_i32x4(tot[i][t]);
}

/* ------------------------------------------------------------ EXTMUL design */

static size_t act_bytes_extmul(const trl_weight *w, int ntok) { return trl_t2_act_bytes_i8(w, ntok, 0); }

static void prepare_extmul(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    trl_t2_prepare_i8(w, x, ntok, scratch, 0, act);
}

INLINE void extmul_tile(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,
                        int32_t out[MAXR][MAXT], const int R, const int TN) {
    const int32_t cols_pad = (act->cols + TRL_T2_BLOCK - 1) / TRL_T2_BLOCK * TRL_T2_BLOCK;
    const int8_t *qp[MAXT];
    for (int t = 0; t < TN; t++) qp[t] = act->q + (size_t)(t0 + t) * cols_pad;
    const v128_t m = wasm_i8x16_splat(3);
    v128_t tot[MAXR][MAXT];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) tot[i][t] = wasm_i32x4_splat(0);
    /* |u * q| <= 384, 16 per i16 lane and block: 4 blocks stay below 2^15 */
    for (int bc = b0; bc < b1; bc += 4) {
        const int be = b1 - bc < 4 ? b1 : bc + 4;
        v128_t acc[MAXR][MAXT];
        for (int i = 0; i < R; i++)
            for (int t = 0; t < TN; t++) acc[i][t] = wasm_i16x8_splat(0);
        for (int b = bc; b < be; b++) {
            for (int h = 0; h < 32; h += 16) {
                v128_t wv[MAXR];
                for (int i = 0; i < R; i++) wv[i] = wasm_v128_load(rp[i] + (size_t)b * 32 + h);
                for (int k = 0; k < 4; k++) {
                    v128_t c[MAXR];
                    /* a 16-bit shift is enough: the mask drops what crosses a byte */
                    for (int i = 0; i < R; i++) c[i] = wasm_v128_and(wasm_u16x8_shr(wv[i], 2 * k), m);
                    for (int t = 0; t < TN; t++) {
                        v128_t qv = wasm_v128_load(qp[t] + (size_t)b * 128 + 32 * k + h);
                        for (int i = 0; i < R; i++)
                            acc[i][t] = wasm_i16x8_add(acc[i][t], wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(c[i], qv),
                                                                                 wasm_i16x8_extmul_high_i8x16(c[i], qv)));
                    }
                }
            }
        }
        for (int i = 0; i < R; i++)
            for (int t = 0; t < TN; t++) tot[i][t] = wasm_i32x4_add(tot[i][t], wasm_i32x4_extadd_pairwise_i16x8(acc[i][t]));
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) out[i][t] = hsum_i32x4(tot[i][t]);
}

/* ------------------------------------------------------------ tiles and the int8 driver */

#define TILE(design, R, TN)                                                                                            \
    static void design##_tile_##R##_##TN(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,         \
                                         int32_t out[MAXR][MAXT]) {                                                    \
        design##_tile(rp, act, t0, b0, b1, out, R, TN);                                                                \
    }
#define TILES(design)                                                                                                  \
    TILE(design, 1, 1) TILE(design, 2, 1) TILE(design, 4, 1) TILE(design, 1, 2) TILE(design, 2, 2) TILE(design, 4, 2) \
    TILE(design, 1, 4) TILE(design, 2, 4) TILE(design, 4, 4)                                                           \
    static const tile_fn design##_tiles[3][3] = {                                                                      \
        {design##_tile_1_1, design##_tile_1_2, design##_tile_1_4},                                                     \
        {design##_tile_2_1, design##_tile_2_2, design##_tile_2_4},                                                     \
        {design##_tile_4_1, design##_tile_4_2, design##_tile_4_4}};
TILES(mad)
TILES(extmul)

/* Tiles of up to rmax rows x tmax tokens (powers of two; smaller ones for the remainders). */
static void drive_i8(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1,
                     const tile_fn tiles[3][3], int rmax, int tmax) {
    const int nsb = trl_t2_nsb(w), sbb = trl_t2_sb_blocks(w), nblk = trl_t2_nblk(w);
    int32_t dot[MAXR][MAXT][64], part[MAXR][MAXT];
    for (int r = r0; r < r1;) {
        int R = rmax, ri = rmax == 4 ? 2 : rmax == 2 ? 1 : 0;
        while (R > r1 - r) R >>= 1, ri--;
        const uint8_t *rp[MAXR];
        for (int i = 0; i < R; i++) rp[i] = w->data + (size_t)(r + i) * w->row_bytes;
        for (int t0 = 0; t0 < act->ntok;) {
            int TN = tmax, ti = tmax == 4 ? 2 : tmax == 2 ? 1 : 0;
            while (TN > act->ntok - t0) TN >>= 1, ti--;
            for (int sb = 0; sb < nsb; sb++) {
                int b0 = sb * sbb, b1 = nsb == 1 ? nblk : b0 + sbb;
                tiles[ri][ti](rp, act, t0, b0, b1, part);
                for (int t = 0; t < TN; t++) {
                    int32_t bs = trl_t2_bsum(act, t0 + t)[sb];
                    for (int i = 0; i < R; i++) dot[i][t][sb] = part[i][t] - bs;
                }
            }
            for (int t = 0; t < TN; t++)
                for (int i = 0; i < R; i++)
                    y[(size_t)(t0 + t) * ldy + r + i] = trl_t2_finish_i8(w, r + i, dot[i][t], nsb, act->qscale[t0 + t]);
            t0 += TN;
        }
        r += R;
    }
}

static void matmul_mad(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    if (act->ntok == 1) drive_i8(w, act, y, ldy, r0, r1, mad_tiles, MAD_RV, 1);
    else drive_i8(w, act, y, ldy, r0, r1, mad_tiles, 2, 4);
}

static void matmul_extmul(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    if (act->ntok == 1) drive_i8(w, act, y, ldy, r0, r1, extmul_tiles, 4, 1);
    else drive_i8(w, act, y, ldy, r0, r1, extmul_tiles, 2, 4);
}

/* ------------------------------------------------------------ float activations */

static size_t act_bytes_f32(const trl_weight *w, int ntok) { return trl_t2_act_bytes_fpad(w, ntok); }

/* The T values (u - 1 as f32) of 8 columns whose codes sit at bits 2k of the
 * i32 lanes of e (low bytes of the columns 0-3 in lo, 4-7 in hi). */
INLINE v128_t codes_f32(v128_t e, int k) {
    v128_t u = wasm_v128_and(wasm_u32x4_shr(e, 2 * k), wasm_i32x4_splat(3));
    return wasm_f32x4_convert_i32x4(wasm_i32x4_sub(u, wasm_i32x4_splat(1)));
}

/* One row, one token: the codes of each 8-byte group stay in registers for all four k. */
static void f32_row_1(const uint8_t *row, const float *x, int b0, int b1, v128_t *pa, v128_t *pb) {
    v128_t a = wasm_f32x4_splat(0.0f), bb = wasm_f32x4_splat(0.0f);
    for (int b = b0; b < b1; b++) {
        const uint8_t *p = row + (size_t)b * 32;
        const float *xb = x + (size_t)b * 128;
        v128_t elo[4], ehi[4];
        for (int g = 0; g < 4; g++) {
            v128_t e = wasm_u16x8_load8x8(p + 8 * g);
            elo[g] = wasm_u32x4_extend_low_u16x8(e);
            ehi[g] = wasm_u32x4_extend_high_u16x8(e);
        }
        for (int k = 0; k < 4; k++)
            for (int g = 0; g < 4; g++) {
                const float *xc = xb + 32 * k + 8 * g;
                a = wasm_f32x4_add(a, wasm_f32x4_mul(codes_f32(elo[g], k), wasm_v128_load(xc)));
                bb = wasm_f32x4_add(bb, wasm_f32x4_mul(codes_f32(ehi[g], k), wasm_v128_load(xc + 4)));
            }
    }
    *pa = a, *pb = bb;
}

static float reduce_ab(v128_t a, v128_t b) {
    float l[8];
    wasm_v128_store(l, a);
    wasm_v128_store(l + 4, b);
    return trl_reduce8(l);
}

static void matmul_f32(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int nsb = trl_t2_nsb(w), sbb = trl_t2_sb_blocks(w), nblk = trl_t2_nblk(w), ntok = act->ntok;
    const float *xp = act->aux;
    const size_t xs = act->aux_stride / 4;
    float tb[128] __attribute__((aligned(16)));
    float yt[TRL_KMAX_TOKENS];
    v128_t acc_a[TRL_KMAX_TOKENS], acc_b[TRL_KMAX_TOKENS];
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int sb = 0; sb < nsb; sb++) {
            int b0 = sb * sbb, b1 = nsb == 1 ? nblk : b0 + sbb;
            const float s = trl_t2_scale(w, r, sb);
            if (ntok == 1) {
                v128_t a, b;
                f32_row_1(row, xp, b0, b1, &a, &b);
                float v = s * reduce_ab(a, b);
                yt[0] = sb ? yt[0] + v : v;
                continue;
            }
            /* prefill: decode each block once into tb, then every token reads it */
            for (int t = 0; t < ntok; t++) acc_a[t] = acc_b[t] = wasm_f32x4_splat(0.0f);
            for (int b = b0; b < b1; b++) {
                const uint8_t *p = row + (size_t)b * 32;
                for (int g = 0; g < 4; g++) {
                    v128_t e = wasm_u16x8_load8x8(p + 8 * g);
                    v128_t elo = wasm_u32x4_extend_low_u16x8(e), ehi = wasm_u32x4_extend_high_u16x8(e);
                    for (int k = 0; k < 4; k++) {
                        wasm_v128_store(tb + 32 * k + 8 * g, codes_f32(elo, k));
                        wasm_v128_store(tb + 32 * k + 8 * g + 4, codes_f32(ehi, k));
                    }
                }
                int t = 0;
                for (; t + 2 <= ntok; t += 2) {
                    const float *x0 = xp + (size_t)t * xs + (size_t)b * 128, *x1 = x0 + xs;
                    v128_t a0 = acc_a[t], b0v = acc_b[t], a1 = acc_a[t + 1], b1v = acc_b[t + 1];
                    for (int i = 0; i < 128; i += 8) {
                        v128_t wa = wasm_v128_load(tb + i), wb = wasm_v128_load(tb + i + 4);
                        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wa, wasm_v128_load(x0 + i)));
                        b0v = wasm_f32x4_add(b0v, wasm_f32x4_mul(wb, wasm_v128_load(x0 + i + 4)));
                        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wa, wasm_v128_load(x1 + i)));
                        b1v = wasm_f32x4_add(b1v, wasm_f32x4_mul(wb, wasm_v128_load(x1 + i + 4)));
                    }
                    acc_a[t] = a0, acc_b[t] = b0v, acc_a[t + 1] = a1, acc_b[t + 1] = b1v;
                }
                for (; t < ntok; t++) {
                    const float *x0 = xp + (size_t)t * xs + (size_t)b * 128;
                    v128_t a0 = acc_a[t], b0v = acc_b[t];
                    for (int i = 0; i < 128; i += 8) {
                        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(tb + i), wasm_v128_load(x0 + i)));
                        b0v = wasm_f32x4_add(b0v, wasm_f32x4_mul(wasm_v128_load(tb + i + 4), wasm_v128_load(x0 + i + 4)));
                    }
                    acc_a[t] = a0, acc_b[t] = b0v;
                }
            }
            for (int t = 0; t < ntok; t++) {
                float v = s * reduce_ab(acc_a[t], acc_b[t]);
                yt[t] = sb ? yt[t] + v : v;
            }
        }
        for (int t = 0; t < ntok; t++) y[(size_t)t * ldy + r] = yt[t];
    }
}

/* ------------------------------------------------------------ tables */

static const trl_kernel_ops mad_ops = {"simd128-mad", act_bytes_mad, prepare_mad, matmul_mad, trl_t2_decode};
static const trl_kernel_ops extmul_ops = {"simd128-extmul", act_bytes_extmul, prepare_extmul, matmul_extmul,
                                          trl_t2_decode};
static const trl_kernel_ops f32_ops = {"simd128", act_bytes_f32, trl_t2_prepare_fpad, matmul_f32, trl_t2_decode};

const trl_kernel_ops *trl_ternary_simd128_variant(const trl_weight *w, int which) {
    if (w->enc != TRL_ENC_T2) return NULL;
    if (!w->act_int8) return which >= 0 && which < TRL_T2_SIMD_NVARIANTS ? &f32_ops : NULL;
    switch (which) {
    case TRL_T2_SIMD_MAD: return &mad_ops;
    case TRL_T2_SIMD_LUT: return trl_ternary_simd128_lut(w);
    case TRL_T2_SIMD_EXTMUL: return &extmul_ops;
    default: return NULL;
    }
}

const trl_kernel_ops *trl_ternary_simd128(const trl_weight *w) {
    return trl_ternary_simd128_variant(w, TRL_T2_SIMD_MAD);
}
#endif
