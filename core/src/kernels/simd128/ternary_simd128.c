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
 *   RELAXED as EXTMUL, but one i16x8.relaxed_dot_i8x16_i7x16_s per 16
 *           weights (int8 q times u in [0, 127], where the relaxed result is
 *           exact; x86 engines emit pmaddubsw, as the native AVX2 kernel does)
 *           instead of two extmuls and an add. Only in the relaxed build
 *           (TRL_RELAXED_SIMD, trillium-relaxed.wasm), chosen by the loader
 *           where the engine computes relaxed SIMD correctly. (The i32 form,
 *           relaxed_dot_i8x16_i7x16_add_s, measured slower in Chromium 156:
 *           V8 builds a constant for its pmaddwd on every use.)
 *
 * All share each weight load across a tile of rows and tokens (R x TN i32
 * accumulators kept in registers across the row).
 *
 * Measured (bench/kernels, Node 20 on Zen 4, 4096 x 4096, prepare included):
 * matvec MAD 0.64 ms, LUT 0.74 ms, EXTMUL 0.81 ms; 64-token prefill MAD 42 ms,
 * EXTMUL 43 ms, LUT 48 ms. MAD is what trl_ternary_simd128 returns. All three
 * are bound by instruction throughput, not memory: SIMD128 has no u8 x i8
 * multiply-add (x86 pmaddubsw), so 8 weights cost at least a multiply-add and an
 * add (MAD: + one AND); the LUT design needs two swizzles (int16 sums split
 * into byte tables) plus an interleave per 32 weights and a 16 x 16 transpose.
 *
 * float activations: codes -> f32 (T = u - 1, exact) and the canonical 8
 * lanes of kernels.h, lanes 0-3 in one f32x4 and 4-7 in another; x is copied
 * zero-padded to whole blocks by prepare() so the loops have no tail. */
#ifdef __wasm_simd128__
#include <math.h>
#include <string.h>
#include <wasm_simd128.h>

#include "../../internal.h"
#include "../kernels.h"
#include "../ternary.h"

#define INLINE static inline __attribute__((always_inline))
#define MAXR 4 /* largest row tile */
/* Tiles (rows x tokens), measured on Zen 4 under Node 20: matvec 4 x 1, prefill 2 x 4. */
#ifndef MAD_RV
#define MAD_RV 4
#endif
#ifndef MAD_RP
#define MAD_RP 2
#endif
#ifndef MAD_TP
#define MAD_TP 4
#endif
#define MAXT 4 /* largest token tile */

static inline int32_t hsum_i32x4(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
           wasm_i32x4_extract_lane(v, 3);
}

/* ------------------------------------------------------------ prepare */

/* trl_quantize_act_i8, four floats at a time with the same results: max|x| ignores
 * NaN as its scalar loop does (pmax keeps the first operand on NaN), and roundf
 * (half away from zero) is trunc(v) + copysign(1, v) when |v - trunc(v)| >= 0.5;
 * the saturating narrows are the clamp to [-128, 127]. */
float trl_t2_quantize_simd128(const float *x, int32_t cols, int32_t cols_pad, int8_t *q) {
    v128_t m = wasm_f32x4_splat(0.0f);
    int32_t i = 0;
    for (; i + 4 <= cols; i += 4) m = wasm_f32x4_pmax(m, wasm_f32x4_abs(wasm_v128_load(x + i)));
    float amax = 0.0f;
    for (int l = 0; l < 4; l++) {
        float a = wasm_f32x4_extract_lane(m, 0);
        m = wasm_i32x4_shuffle(m, m, 1, 2, 3, 0);
        if (a > amax) amax = a;
    }
    for (; i < cols; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > amax) amax = a;
    }
    if (amax < TRL_ACT_MIN_ABSMAX) { /* 0, or so small that 127/amax overflows */
        memset(q, 0, (size_t)cols_pad);
        return 0.0f;
    }
    const float f = 127.0f / amax;
    const v128_t vf = wasm_f32x4_splat(f), half = wasm_f32x4_splat(0.5f), one = wasm_f32x4_splat(1.0f),
                 sign = wasm_f32x4_splat(-0.0f);
    for (i = 0; i + 16 <= cols; i += 16) {
        v128_t r[4];
        for (int k = 0; k < 4; k++) {
            v128_t v = wasm_f32x4_mul(wasm_v128_load(x + i + 4 * k), vf);
            v128_t t = wasm_f32x4_trunc(v);
            v128_t up = wasm_f32x4_ge(wasm_f32x4_abs(wasm_f32x4_sub(v, t)), half);
            v128_t adj = wasm_v128_and(up, wasm_v128_or(wasm_v128_and(v, sign), one));
            r[k] = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(t, adj));
        }
        wasm_v128_store(q + i, wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(r[0], r[1]),
                                                       wasm_i16x8_narrow_i32x4(r[2], r[3])));
    }
    for (; i < cols; i++) {
        float v = roundf(x[i] * f);
        q[i] = (int8_t)(v > 127.0f ? 127 : v < -128.0f ? -128 : (int)v);
    }
    memset(q + cols, 0, (size_t)(cols_pad - cols));
    return amax / 127.0f;
}

/* A tile computes dot(u, q) for rows rp[0..R) and tokens t0..t0+TN over t2
 * blocks [b0, b1): out[i][t]. */
typedef void (*tile_fn)(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,
                        int32_t out[MAXR][MAXT]);

/* ------------------------------------------------------------ MAD design */

/* design data per token: (cols_pad) int16, q * 4^(3-k) */
static size_t act_bytes_mad(const trl_weight *w, int ntok) { return trl_t2_act_bytes_i8(w, ntok, 2); }

static void prepare_mad(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    trl_t2_prepare_i8(w, x, ntok, scratch, 2, trl_t2_quantize_simd128, act);
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
            /* Kept rolled: unrolled, clang hoists all 32 loads of the block to its top
             * (wasm has no register pressure model) and V8 then spills half of them
             * (measured 2.2x slower). */
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
                MAD_K(1, m1);
                MAD_K(2, m2);
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
    trl_t2_prepare_i8(w, x, ntok, scratch, 0, trl_t2_quantize_simd128, act);
}

/* EXTMUL and RELAXED: codes unpacked into i8 lanes, sums of two u * q products
 * per i16 lane (two extmuls and an add, or one relaxed dot), widened to i32
 * every 4 blocks. */
#ifdef TRL_RELAXED_SIMD
/* i16x8.relaxed_dot_i8x16_i7x16_s(a, b): products of int8 a and b in [0, 127]
 * (exact there on every engine), adjacent pairs summed into i16 lanes; x86
 * engines emit one pmaddubsw. Debian's clang 14 has no builtin for it (and
 * emits the relaxed-SIMD prototype's opcodes), so it is spelled as the
 * prototype's i8x16.relaxed_swizzle, which has the same operand stack
 * (v128 v128 -> v128) and which nothing else in the core uses; after linking,
 * tools/wasm_relaxed.py rewrites each of those instructions into the final
 * opcode by walking the code section. Until then the module computes
 * nonsense, so every relaxed target runs that step after linking. */
#define DOT_I8_I7(a, b) ((v128_t)__builtin_wasm_relaxed_swizzle_i8x16((__i8x16)(a), (__i8x16)(b)))
#endif

/* The i16 sums of u * q over lanes: a pair of products per lane (which pair
 * differs between the two, the total does not). */
INLINE v128_t pair_products(v128_t c, v128_t q, const int relaxed) {
#ifdef TRL_RELAXED_SIMD
    if (relaxed) return DOT_I8_I7(q, c);
#else
    (void)relaxed;
#endif
    return wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(c, q), wasm_i16x8_extmul_high_i8x16(c, q));
}

INLINE void i8_tile(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1, int32_t out[MAXR][MAXT],
                    const int R, const int TN, const int relaxed) {
    const int32_t cols_pad = (act->cols + TRL_T2_BLOCK - 1) / TRL_T2_BLOCK * TRL_T2_BLOCK;
    const int8_t *qp[MAXT];
    for (int t = 0; t < TN; t++) qp[t] = act->q + (size_t)(t0 + t) * cols_pad;
    const v128_t m = wasm_i8x16_splat(3);
    v128_t tot[MAXR][MAXT];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) tot[i][t] = wasm_i32x4_splat(0);
    /* |u * q| <= 384 (codes up to 3), 16 per i16 lane and block: 4 blocks stay below 2^15 */
    for (int bc = b0; bc < b1; bc += 4) {
        const int be = b1 - bc < 4 ? b1 : bc + 4;
        v128_t acc[MAXR][MAXT];
        for (int i = 0; i < R; i++)
            for (int t = 0; t < TN; t++) acc[i][t] = wasm_i16x8_splat(0);
        for (int b = bc; b < be; b++) {
#pragma clang loop unroll(disable)
            for (int h = 0; h < 32; h += 16) {
                v128_t wv[MAXR];
                for (int i = 0; i < R; i++) wv[i] = wasm_v128_load(rp[i] + (size_t)b * 32 + h);
#pragma clang loop unroll(full)
                for (int k = 0; k < 4; k++) {
                    v128_t c[MAXR];
                    /* a 16-bit shift is enough: the mask drops what crosses a byte */
                    for (int i = 0; i < R; i++) c[i] = wasm_v128_and(wasm_u16x8_shr(wv[i], 2 * k), m);
                    for (int t = 0; t < TN; t++) {
                        v128_t qv = wasm_v128_load(qp[t] + (size_t)b * 128 + 32 * k + h);
                        for (int i = 0; i < R; i++)
                            acc[i][t] = wasm_i16x8_add(acc[i][t], pair_products(c[i], qv, relaxed));
                    }
                }
            }
        }
        for (int i = 0; i < R; i++)
            for (int t = 0; t < TN; t++)
                tot[i][t] = wasm_i32x4_add(tot[i][t], wasm_i32x4_extadd_pairwise_i16x8(acc[i][t]));
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) out[i][t] = hsum_i32x4(tot[i][t]);
}

INLINE void extmul_tile(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,
                        int32_t out[MAXR][MAXT], const int R, const int TN) {
    i8_tile(rp, act, t0, b0, b1, out, R, TN, 0);
}

#ifdef TRL_RELAXED_SIMD
INLINE void relaxed_tile(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,
                         int32_t out[MAXR][MAXT], const int R, const int TN) {
    i8_tile(rp, act, t0, b0, b1, out, R, TN, 1);
}
#endif

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
#ifdef TRL_RELAXED_SIMD
TILES(relaxed)
#endif

/* Tiles of up to rmax rows x tmax tokens (powers of two; smaller ones for the remainders). */
static void drive_i8(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1,
                     const tile_fn tiles[3][3], int rmax, int tmax) {
    const int nsb = trl_t2_nsb(w), sbb = trl_t2_sb_blocks(w), nblk = trl_t2_nblk(w);
    const int rblk = act->ntok == 1 ? r1 - r0 : trl_t2_row_block(w);
    int32_t dot[MAXR][MAXT][64], part[MAXR][MAXT];
    /* row blocks (codes stay in L2) x token tiles (activations stay in L1) x row tiles */
    for (int rb = r0; rb < r1; rb += rblk) {
        const int rbe = r1 - rb < rblk ? r1 : rb + rblk;
        for (int t0 = 0; t0 < act->ntok;) {
            int TN = tmax, ti = tmax == 4 ? 2 : tmax == 2 ? 1 : 0;
            while (TN > act->ntok - t0) TN >>= 1, ti--;
            for (int r = rb; r < rbe;) {
                int R = rmax, ri = rmax == 4 ? 2 : rmax == 2 ? 1 : 0;
                while (R > rbe - r) R >>= 1, ri--;
                const uint8_t *rp[MAXR];
                for (int i = 0; i < R; i++) rp[i] = w->data + (size_t)(r + i) * w->row_bytes;
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
                        y[(size_t)(t0 + t) * ldy + r + i] =
                            trl_t2_finish_i8(w, r + i, dot[i][t], nsb, act->qscale[t0 + t]);
                r += R;
            }
            t0 += TN;
        }
    }
}

static void matmul_mad(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    if (act->ntok == 1) drive_i8(w, act, y, ldy, r0, r1, mad_tiles, MAD_RV, 1);
    else drive_i8(w, act, y, ldy, r0, r1, mad_tiles, MAD_RP, MAD_TP);
}

static void matmul_extmul(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    if (act->ntok == 1) drive_i8(w, act, y, ldy, r0, r1, extmul_tiles, 4, 1);
    else drive_i8(w, act, y, ldy, r0, r1, extmul_tiles, 2, 4);
}

#ifdef TRL_RELAXED_SIMD
#ifndef RLX_RV
#define RLX_RV 4
#endif
#ifndef RLX_RP
#define RLX_RP 2
#endif
#ifndef RLX_TP
#define RLX_TP 4
#endif
static void matmul_relaxed(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    if (act->ntok == 1) drive_i8(w, act, y, ldy, r0, r1, relaxed_tiles, RLX_RV, 1);
    else drive_i8(w, act, y, ldy, r0, r1, relaxed_tiles, RLX_RP, RLX_TP);
}
#endif

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

/* Decode one block of a row into T floats, in column order. */
INLINE void decode_block_f32(const uint8_t *p, float *tb) {
    for (int g = 0; g < 4; g++) {
        v128_t e = wasm_u16x8_load8x8(p + 8 * g);
        v128_t elo = wasm_u32x4_extend_low_u16x8(e), ehi = wasm_u32x4_extend_high_u16x8(e);
        for (int k = 0; k < 4; k++) {
            wasm_v128_store(tb + 32 * k + 8 * g, codes_f32(elo, k));
            wasm_v128_store(tb + 32 * k + 8 * g + 4, codes_f32(ehi, k));
        }
    }
}

/* Prefill: R rows x TN tokens over blocks [b0, b1); each decoded block serves TN
 * tokens, each activation load R rows. out[i][t] = reduce8 of the lanes. */
INLINE void f32_tile(const uint8_t *const *rp, const float *const *xp, int b0, int b1, float out[MAXR][MAXT],
                     const int R, const int TN) {
    float tb[MAXR][128] __attribute__((aligned(16)));
    v128_t a[MAXR][MAXT], bb[MAXR][MAXT];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) a[i][t] = bb[i][t] = wasm_f32x4_splat(0.0f);
    for (int b = b0; b < b1; b++) {
        for (int i = 0; i < R; i++) decode_block_f32(rp[i] + (size_t)b * 32, tb[i]);
#pragma clang loop unroll(disable)
        for (int c = 0; c < 128; c += 8) {
            v128_t wa[MAXR], wb[MAXR];
            for (int i = 0; i < R; i++) wa[i] = wasm_v128_load(tb[i] + c), wb[i] = wasm_v128_load(tb[i] + c + 4);
            for (int t = 0; t < TN; t++) {
                const float *xc = xp[t] + (size_t)b * 128 + c;
                v128_t xa = wasm_v128_load(xc), xb = wasm_v128_load(xc + 4);
                for (int i = 0; i < R; i++) {
                    a[i][t] = wasm_f32x4_add(a[i][t], wasm_f32x4_mul(wa[i], xa));
                    bb[i][t] = wasm_f32x4_add(bb[i][t], wasm_f32x4_mul(wb[i], xb));
                }
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) out[i][t] = reduce_ab(a[i][t], bb[i][t]);
}

typedef void (*ftile_fn)(const uint8_t *const *rp, const float *const *xp, int b0, int b1, float out[MAXR][MAXT]);
#define FTILE(R, TN)                                                                                                   \
    static void f32_tile_##R##_##TN(const uint8_t *const *rp, const float *const *xp, int b0, int b1,                  \
                                    float out[MAXR][MAXT]) {                                                           \
        f32_tile(rp, xp, b0, b1, out, R, TN);                                                                          \
    }
FTILE(1, 1) FTILE(2, 1) FTILE(1, 2) FTILE(2, 2) FTILE(1, 4) FTILE(2, 4)
static const ftile_fn f32_tiles[2][3] = {{f32_tile_1_1, f32_tile_1_2, f32_tile_1_4},
                                         {f32_tile_2_1, f32_tile_2_2, f32_tile_2_4}};

static void matmul_f32(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int nsb = trl_t2_nsb(w), sbb = trl_t2_sb_blocks(w), nblk = trl_t2_nblk(w), ntok = act->ntok;
    const float *xpad = act->aux;
    const size_t xs = act->aux_stride / 4;
    if (ntok == 1) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = w->data + (size_t)r * w->row_bytes;
            float yr = 0.0f;
            for (int sb = 0; sb < nsb; sb++) {
                int b0 = sb * sbb, b1 = nsb == 1 ? nblk : b0 + sbb;
                v128_t a, b;
                f32_row_1(row, xpad, b0, b1, &a, &b);
                float v = trl_t2_scale(w, r, sb) * reduce_ab(a, b);
                yr = sb ? yr + v : v;
            }
            y[r] = yr;
        }
        return;
    }
    const int rblk = trl_t2_row_block(w);
    float yt[MAXR][MAXT], part[MAXR][MAXT];
    for (int rb = r0; rb < r1; rb += rblk) {
        const int rbe = r1 - rb < rblk ? r1 : rb + rblk;
        for (int t0 = 0; t0 < ntok;) {
            const int TN = ntok - t0 >= 4 ? 4 : ntok - t0 >= 2 ? 2 : 1, ti = TN == 4 ? 2 : TN == 2 ? 1 : 0;
            const float *xp[MAXT];
            for (int t = 0; t < TN; t++) xp[t] = xpad + (size_t)(t0 + t) * xs;
            for (int r = rb; r < rbe;) {
                const int R = rbe - r >= 2 ? 2 : 1;
                const uint8_t *rp[MAXR];
                for (int i = 0; i < R; i++) rp[i] = w->data + (size_t)(r + i) * w->row_bytes;
                for (int sb = 0; sb < nsb; sb++) {
                    int b0 = sb * sbb, b1 = nsb == 1 ? nblk : b0 + sbb;
                    f32_tiles[R - 1][ti](rp, xp, b0, b1, part);
                    for (int i = 0; i < R; i++)
                        for (int t = 0; t < TN; t++) {
                            float v = trl_t2_scale(w, r + i, sb) * part[i][t];
                            yt[i][t] = sb ? yt[i][t] + v : v;
                        }
                }
                for (int i = 0; i < R; i++)
                    for (int t = 0; t < TN; t++) y[(size_t)(t0 + t) * ldy + r + i] = yt[i][t];
                r += R;
            }
            t0 += TN;
        }
    }
}

/* ------------------------------------------------------------ tables */

static const trl_kernel_ops mad_ops = {"simd128-mad", act_bytes_mad, prepare_mad, matmul_mad, trl_t2_decode};
static const trl_kernel_ops extmul_ops = {"simd128-extmul", act_bytes_extmul, prepare_extmul, matmul_extmul,
                                          trl_t2_decode};
#ifdef TRL_RELAXED_SIMD
static const trl_kernel_ops relaxed_ops = {"simd128-relaxed", act_bytes_extmul, prepare_extmul, matmul_relaxed,
                                           trl_t2_decode};
#endif
static const trl_kernel_ops f32_ops = {"simd128", act_bytes_f32, trl_t2_prepare_fpad, matmul_f32, trl_t2_decode};

const trl_kernel_ops *trl_ternary_simd128_variant(const trl_weight *w, int which) {
    if (w->enc != TRL_ENC_T2) return NULL;
    if (!w->act_int8) return which >= 0 && which < TRL_T2_SIMD_NVARIANTS ? &f32_ops : NULL;
    switch (which) {
    case TRL_T2_SIMD_MAD: return &mad_ops;
    case TRL_T2_SIMD_LUT: return trl_ternary_simd128_lut(w);
    case TRL_T2_SIMD_EXTMUL: return &extmul_ops;
#ifdef TRL_RELAXED_SIMD
    case TRL_T2_SIMD_RELAXED: return &relaxed_ops;
#endif
    default: return NULL;
    }
}

const trl_kernel_ops *trl_ternary_simd128(const trl_weight *w) {
#ifdef TRL_RELAXED_SIMD
    return trl_ternary_simd128_variant(w, TRL_T2_SIMD_RELAXED);
#else
    return trl_ternary_simd128_variant(w, TRL_T2_SIMD_MAD);
#endif
}
#endif
