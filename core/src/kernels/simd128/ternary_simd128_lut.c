/* ternary_simd128_lut.c - the lookup-table design of the SIMD128 t2 kernel for
 * int8 activations (T-MAC / bitnet.cpp TL1 style), kept next to the MAD
 * design of ternary_simd128.c for tests and benchmarks.
 *
 * A t2 byte holds two nibbles, each the codes of a column pair
 * (128b + 64h + j, 128b + 64h + 32 + j): index n = ua + 4 ub. prepare() builds,
 * per token and column pair, the 16 signed sums (ua - 1) qa + (ub - 1) qb
 * (|sum| <= 512, so int16, stored as a table of low bytes and a table of high
 * bytes). i8x16.swizzle looks up one table for 16 lanes at once, so the lanes
 * must be 16 rows at the same column pair: the kernel transposes each 16 x 32
 * byte block of 16 rows in registers, then per byte and nibble does two
 * swizzles (low, high), interleaves them back into int16 (rows 0-7, 8-15) and
 * adds. No weight multiplies and no sum(q) correction (the table holds T*q).
 * In V8 each swizzle is two instructions (a saturating add keeps indices >= 16
 * zeroing), so per 32 weights this is ~10 instructions against MAD's ~13 per
 * 32, but the transpose, the index extraction and the 16 KiB of tables per
 * 1024 columns and token make it ~15% slower than MAD in practice. */
#ifdef __wasm_simd128__
#include <string.h>
#include <wasm_simd128.h>

#include "../../internal.h"
#include "../kernels.h"
#include "../ternary.h"

#define MAXT 4
#define TAB_BYTES 64 /* per column byte j: nibble 0 (lo, hi), nibble 1 (lo, hi) */

/* design data per token: per block 32 x TAB_BYTES = 2048 bytes, 16 per column */
static size_t act_bytes_lut(const trl_weight *w, int ntok) { return trl_t2_act_bytes_i8(w, ntok, 16); }

static void prepare_lut(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    trl_t2_prepare_i8(w, x, ntok, scratch, 16, trl_t2_quantize_simd128, act);
    const int32_t cols_pad = trl_t2_cols_pad(w);
    /* entries 0-7 and 8-15 of a table: (ua - 1) * qa + (ub - 1) * qb, n = ua + 4 ub */
    const v128_t ka = wasm_i16x8_make(-1, 0, 1, 2, -1, 0, 1, 2);
    const v128_t kb0 = wasm_i16x8_make(-1, -1, -1, -1, 0, 0, 0, 0), kb1 = wasm_i16x8_make(1, 1, 1, 1, 2, 2, 2, 2);
    for (int t = 0; t < ntok; t++) {
        const int8_t *q = act->q + (size_t)t * cols_pad;
        uint8_t *tab = trl_t2_design(act, t);
        for (int32_t c = 0; c < cols_pad; c += TRL_T2_BLOCK)
            for (int h = 0; h < 2; h++)
                for (int j = 0; j < 32; j++) {
                    v128_t qa = wasm_i16x8_splat(q[c + 64 * h + j]), qb = wasm_i16x8_splat(q[c + 64 * h + 32 + j]);
                    v128_t qa_ka = wasm_i16x8_mul(ka, qa);
                    v128_t e0 = wasm_i16x8_add(qa_ka, wasm_i16x8_mul(kb0, qb));
                    v128_t e1 = wasm_i16x8_add(qa_ka, wasm_i16x8_mul(kb1, qb));
                    uint8_t *o = tab + (size_t)(c / TRL_T2_BLOCK) * 32 * TAB_BYTES + (size_t)j * TAB_BYTES + 32 * h;
                    wasm_v128_store(o, wasm_i8x16_shuffle(e0, e1, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                                          28, 30));
                    wasm_v128_store(o + 16, wasm_i8x16_shuffle(e0, e1, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25,
                                                               27, 29, 31));
                }
    }
}

/* out[j] = byte j of in[0..15] (a 16 x 16 byte transpose in four interleave stages). */
static inline __attribute__((always_inline)) void transpose16(const v128_t in[16], v128_t out[16]) {
    v128_t a[16], b[16];
    for (int p = 0; p < 8; p++) {
        a[p] = wasm_i8x16_shuffle(in[2 * p], in[2 * p + 1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        a[p + 8] = wasm_i8x16_shuffle(in[2 * p], in[2 * p + 1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                      15, 31);
    }
    /* a[8g + p]: 16-bit units j = 8g + 0..7 of rows 2p, 2p+1 */
    for (int g = 0; g < 2; g++)
        for (int qd = 0; qd < 4; qd++) {
            v128_t x = a[8 * g + 2 * qd], y = a[8 * g + 2 * qd + 1];
            b[8 * g + qd] = wasm_i16x8_shuffle(x, y, 0, 8, 1, 9, 2, 10, 3, 11);     /* j = 8g + 0..3 */
            b[8 * g + 4 + qd] = wasm_i16x8_shuffle(x, y, 4, 12, 5, 13, 6, 14, 7, 15); /* j = 8g + 4..7 */
        }
    /* b[4m + qd]: 32-bit units j = 4m + 0..3 of rows 4qd..4qd+3 */
    for (int m = 0; m < 4; m++)
        for (int s = 0; s < 2; s++) {
            v128_t x = b[4 * m + 2 * s], y = b[4 * m + 2 * s + 1];
            a[4 * m + s] = wasm_i32x4_shuffle(x, y, 0, 4, 1, 5);     /* j = 4m + 0, 1 */
            a[4 * m + 2 + s] = wasm_i32x4_shuffle(x, y, 2, 6, 3, 7); /* j = 4m + 2, 3 */
        }
    /* a[2e + s]: 64-bit units j = 2e + 0, 1 of rows 8s..8s+7 */
    for (int e = 0; e < 8; e++) {
        out[2 * e] = wasm_i64x2_shuffle(a[2 * e], a[2 * e + 1], 0, 2);
        out[2 * e + 1] = wasm_i64x2_shuffle(a[2 * e], a[2 * e + 1], 1, 3);
    }
}

/* dot(T, q) of 16 rows (rp[], duplicates allowed) and tokens t0..t0+TN over blocks [b0, b1). */
static inline __attribute__((always_inline)) void lut_tile(const uint8_t *const *rp, const trl_act *act, int t0,
                                                           int b0, int b1, int32_t out[16][MAXT], const int TN) {
    const uint8_t *tabs[MAXT];
    for (int t = 0; t < TN; t++) tabs[t] = trl_t2_design(act, t0 + t);
    const v128_t m4 = wasm_i8x16_splat(0x0F);
    v128_t tot[MAXT][4];
    for (int t = 0; t < TN; t++) tot[t][0] = tot[t][1] = tot[t][2] = tot[t][3] = wasm_i32x4_splat(0);
    for (int b = b0; b < b1; b++) {
        v128_t tr[32];
        for (int hb = 0; hb < 2; hb++) {
            v128_t in[16];
            for (int i = 0; i < 16; i++) in[i] = wasm_v128_load(rp[i] + (size_t)b * 32 + 16 * hb);
            transpose16(in, tr + 16 * hb);
        }
        /* |entry| <= 512 and 64 adds per lane and block: int16 holds one block (-32768 included) */
        v128_t acc[MAXT][2];
        for (int t = 0; t < TN; t++) acc[t][0] = acc[t][1] = wasm_i16x8_splat(0);
        for (int j = 0; j < 32; j++) {
            v128_t n0 = wasm_v128_and(tr[j], m4), n1 = wasm_v128_and(wasm_u16x8_shr(tr[j], 4), m4);
            for (int t = 0; t < TN; t++) {
                const uint8_t *tb = tabs[t] + (size_t)b * 32 * TAB_BYTES + (size_t)j * TAB_BYTES;
                v128_t lo0 = wasm_i8x16_swizzle(wasm_v128_load(tb), n0);
                v128_t hi0 = wasm_i8x16_swizzle(wasm_v128_load(tb + 16), n0);
                v128_t lo1 = wasm_i8x16_swizzle(wasm_v128_load(tb + 32), n1);
                v128_t hi1 = wasm_i8x16_swizzle(wasm_v128_load(tb + 48), n1);
                acc[t][0] = wasm_i16x8_add(acc[t][0], wasm_i8x16_shuffle(lo0, hi0, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20,
                                                                         5, 21, 6, 22, 7, 23));
                acc[t][1] = wasm_i16x8_add(acc[t][1], wasm_i8x16_shuffle(lo0, hi0, 8, 24, 9, 25, 10, 26, 11, 27, 12,
                                                                         28, 13, 29, 14, 30, 15, 31));
                acc[t][0] = wasm_i16x8_add(acc[t][0], wasm_i8x16_shuffle(lo1, hi1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20,
                                                                         5, 21, 6, 22, 7, 23));
                acc[t][1] = wasm_i16x8_add(acc[t][1], wasm_i8x16_shuffle(lo1, hi1, 8, 24, 9, 25, 10, 26, 11, 27, 12,
                                                                         28, 13, 29, 14, 30, 15, 31));
            }
        }
        for (int t = 0; t < TN; t++) {
            tot[t][0] = wasm_i32x4_add(tot[t][0], wasm_i32x4_extend_low_i16x8(acc[t][0]));
            tot[t][1] = wasm_i32x4_add(tot[t][1], wasm_i32x4_extend_high_i16x8(acc[t][0]));
            tot[t][2] = wasm_i32x4_add(tot[t][2], wasm_i32x4_extend_low_i16x8(acc[t][1]));
            tot[t][3] = wasm_i32x4_add(tot[t][3], wasm_i32x4_extend_high_i16x8(acc[t][1]));
        }
    }
    for (int t = 0; t < TN; t++) {
        int32_t l[16] __attribute__((aligned(16)));
        for (int v = 0; v < 4; v++) wasm_v128_store(l + 4 * v, tot[t][v]);
        for (int i = 0; i < 16; i++) out[i][t] = l[i];
    }
}

static void lut_tile_1(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1, int32_t out[16][MAXT]) {
    lut_tile(rp, act, t0, b0, b1, out, 1);
}
static void lut_tile_2(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1, int32_t out[16][MAXT]) {
    lut_tile(rp, act, t0, b0, b1, out, 2);
}
static void lut_tile_4(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1, int32_t out[16][MAXT]) {
    lut_tile(rp, act, t0, b0, b1, out, 4);
}

static void matmul_lut(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int nsb = trl_t2_nsb(w), sbb = trl_t2_sb_blocks(w), nblk = trl_t2_nblk(w);
    const int rblk = act->ntok == 1 ? r1 - r0 : trl_t2_row_block(w);
    int32_t dot[16][MAXT][64], part[16][MAXT];
    for (int rb = r0; rb < r1; rb += rblk) {
        const int rbe = r1 - rb < rblk ? r1 : rb + rblk;
        for (int t0 = 0; t0 < act->ntok;) {
            int TN = act->ntok - t0 >= 4 ? 4 : act->ntok - t0 >= 2 ? 2 : 1;
            for (int r = rb; r < rbe; r += 16) {
                const int R = rbe - r < 16 ? rbe - r : 16;
                const uint8_t *rp[16];
                /* a short tile repeats its last row; those lanes are dropped */
                for (int i = 0; i < 16; i++) rp[i] = w->data + (size_t)(r + (i < R ? i : R - 1)) * w->row_bytes;
                for (int sb = 0; sb < nsb; sb++) {
                    int b0 = sb * sbb, b1 = nsb == 1 ? nblk : b0 + sbb;
                    if (TN == 4) lut_tile_4(rp, act, t0, b0, b1, part);
                    else if (TN == 2) lut_tile_2(rp, act, t0, b0, b1, part);
                    else lut_tile_1(rp, act, t0, b0, b1, part);
                    for (int i = 0; i < R; i++)
                        for (int t = 0; t < TN; t++) dot[i][t][sb] = part[i][t];
                }
                for (int t = 0; t < TN; t++)
                    for (int i = 0; i < R; i++)
                        y[(size_t)(t0 + t) * ldy + r + i] =
                            trl_t2_finish_i8(w, r + i, dot[i][t], nsb, act->qscale[t0 + t]);
            }
            t0 += TN;
        }
    }
}

static const trl_kernel_ops lut_ops = {"simd128-lut", act_bytes_lut, prepare_lut, matmul_lut, trl_t2_decode};

const trl_kernel_ops *trl_ternary_simd128_lut(const trl_weight *w) {
    return w->enc == TRL_ENC_T2 && w->act_int8 ? &lut_ops : NULL;
}
#endif
