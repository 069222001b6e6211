/* ternary_avx2.c - x86-64 AVX2 kernels for t2, for native builds; bit-identical
 * to ref/ternary_ref.c (ternary.h gives the shared numerics). Compiled for
 * AVX2 per function and used only when the CPU reports it (dispatch.c).
 *
 * int8 activations: a 32-byte t2 block is 128 columns; (w >> 2k) & 3 gives the
 * codes u in {0..3} of the 32 columns 128b + 32k + j, and
 * _mm256_maddubs_epi16(u, q) (unsigned x signed, |2 * 3 * 128| fits int16, so
 * it never saturates) multiplies them with the int8 activations, summed in
 * int16 for 8 blocks, then widened with _mm256_madd_epi16(., 1).
 * dot(T, q) = dot(u, q) - sum(q). Each weight load serves a tile of rows x
 * tokens.
 *
 * float activations: the canonical 8 lanes are one __m256; the codes of 8
 * columns are zero-extended to i32 lanes and turned into T = u - 1 with one
 * _mm256_permutevar8x32_ps from {-1, 0, 1, 2, -1, 0, 1, 2}. */
#include "../kernels.h"
#ifdef TRL_HAVE_X86_KERNELS
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../../internal.h"
#include "../ternary.h"

#define TARGET __attribute__((target("avx2,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,f16c")))
#define MAXR 4
/* Full unrolling of the tile loops (constant trip counts once inlined) keeps the
 * accumulators in registers, also at -O2. */
#define UNROLL _Pragma("GCC unroll 16")
#define MAXT 4
#ifndef AVX_RP
#define AVX_RP 2 /* prefill tile: rows x tokens (measured best on Zen 4) */
#endif
#ifndef AVX_TP
#define AVX_TP 2
#endif

typedef void (*tile_fn)(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,
                        int32_t out[MAXR][MAXT]);

INLINE int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* ------------------------------------------------------------ int8 activations */

/* trl_quantize_act_i8, eight floats at a time with the same results: max|x| ignores
 * NaN as its scalar loop does (maxps returns the second operand on NaN), roundf is
 * trunc(v) + copysign(1, v) when |v - trunc(v)| >= 0.5, NaN lanes give 0 as
 * (int8_t)(int)NaN does on x86, and the saturating packs are the clamp. */
TARGET static float quantize_avx2(const float *x, int32_t cols, int32_t cols_pad, int8_t *q) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 m = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 8 <= cols; i += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), m);
    float l[8], amax = 0.0f;
    _mm256_storeu_ps(l, m);
    for (int k = 0; k < 8; k++)
        if (l[k] > amax) amax = l[k];
    for (; i < cols; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > amax) amax = a;
    }
    if (amax < TRL_ACT_MIN_ABSMAX) { /* 0, or so small that 127/amax overflows */
        memset(q, 0, (size_t)cols_pad);
        return 0.0f;
    }
    const float f = 127.0f / amax;
    const __m256 vf = _mm256_set1_ps(f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 sign = _mm256_set1_ps(-0.0f);
    for (i = 0; i + 32 <= cols; i += 32) {
        __m256i r[4];
        UNROLL for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), vf);
            __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256 up = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(v, t), absmask), half, _CMP_GE_OQ);
            __m256 rv = _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(_mm256_and_ps(v, sign), one)));
            __m256i ord = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_ORD_Q));
            r[k] = _mm256_and_si256(_mm256_cvttps_epi32(rv), ord);
        }
        /* packs work per 128-bit lane: put the 32 bytes back in column order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + i), p);
    }
    for (; i < cols; i++) {
        float v = roundf(x[i] * f);
        q[i] = (int8_t)(v > 127.0f ? 127 : v < -128.0f ? -128 : (int)v);
    }
    memset(q + cols, 0, (size_t)(cols_pad - cols));
    return amax / 127.0f;
}

static size_t act_bytes_i8(const trl_weight *w, int ntok) { return trl_t2_act_bytes_i8(w, ntok, 0); }

static void prepare_i8(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    trl_t2_prepare_i8(w, x, ntok, scratch, 0, quantize_avx2, act);
}

INLINE void i8_tile(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1, int32_t out[MAXR][MAXT],
                    const int R, const int TN) {
    const int32_t cols_pad = (act->cols + TRL_T2_BLOCK - 1) / TRL_T2_BLOCK * TRL_T2_BLOCK;
    const int8_t *qp[MAXT];
    UNROLL for (int t = 0; t < TN; t++) qp[t] = act->q + (size_t)(t0 + t) * cols_pad;
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i tot[MAXR][MAXT];
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < TN; t++) tot[i][t] = _mm256_setzero_si256();
    /* |maddubs| <= 768 per int16 lane, 4 per block: 8 blocks stay below 2^15 */
    for (int bc = b0; bc < b1; bc += 8) {
        const int be = b1 - bc < 8 ? b1 : bc + 8;
        __m256i acc[MAXR][MAXT];
        UNROLL for (int i = 0; i < R; i++)
            UNROLL for (int t = 0; t < TN; t++) acc[i][t] = _mm256_setzero_si256();
        for (int b = bc; b < be; b++) {
            __m256i wv[MAXR];
            UNROLL for (int i = 0; i < R; i++) wv[i] = _mm256_loadu_si256((const __m256i *)(rp[i] + (size_t)b * 32));
            UNROLL for (int k = 0; k < 4; k++) {
                __m256i c[MAXR];
                UNROLL for (int i = 0; i < R; i++) c[i] = _mm256_and_si256(_mm256_srli_epi16(wv[i], 2 * k), m3);
                UNROLL for (int t = 0; t < TN; t++) {
                    __m256i qv = _mm256_loadu_si256((const __m256i *)(qp[t] + (size_t)b * 128 + 32 * k));
                    UNROLL for (int i = 0; i < R; i++)
                        acc[i][t] = _mm256_add_epi16(acc[i][t], _mm256_maddubs_epi16(c[i], qv));
                }
            }
        }
        UNROLL for (int i = 0; i < R; i++)
            UNROLL for (int t = 0; t < TN; t++)
                tot[i][t] = _mm256_add_epi32(tot[i][t], _mm256_madd_epi16(acc[i][t], ones));
    }
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < TN; t++) out[i][t] = hsum_epi32(tot[i][t]);
}

#define TILE(R, TN)                                                                                                    \
    TARGET static void i8_tile_##R##_##TN(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,        \
                                          int32_t out[MAXR][MAXT]) {                                                   \
        i8_tile(rp, act, t0, b0, b1, out, R, TN);                                                                      \
    }
TILE(1, 1) TILE(2, 1) TILE(4, 1) TILE(1, 2) TILE(2, 2) TILE(4, 2) TILE(1, 4) TILE(2, 4) TILE(4, 4)
static const tile_fn i8_tiles[3][3] = {{i8_tile_1_1, i8_tile_1_2, i8_tile_1_4},
                                       {i8_tile_2_1, i8_tile_2_2, i8_tile_2_4},
                                       {i8_tile_4_1, i8_tile_4_2, i8_tile_4_4}};

static void drive_i8(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1, int rmax, int tmax) {
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
                    i8_tiles[ri][ti](rp, act, t0, b0, b1, part);
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

static void matmul_i8(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    if (act->ntok == 1) drive_i8(w, act, y, ldy, r0, r1, 4, 1);
    else drive_i8(w, act, y, ldy, r0, r1, AVX_RP, AVX_TP);
}

/* ------------------------------------------------------------ float activations */

static size_t act_bytes_f32(const trl_weight *w, int ntok) { return trl_t2_act_bytes_fpad(w, ntok); }

INLINE float reduce8_m256(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return trl_reduce8(l);
}

/* Decode one block of a row into T floats, in column order. */
INLINE void decode_block_f32(const uint8_t *p, float *tb) {
    const __m256 tab = _mm256_setr_ps(-1.0f, 0.0f, 1.0f, 2.0f, -1.0f, 0.0f, 1.0f, 2.0f);
    UNROLL for (int g = 0; g < 4; g++) {
        __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * g)));
        UNROLL for (int k = 0; k < 4; k++)
            _mm256_store_ps(tb + 32 * k + 8 * g, _mm256_permutevar8x32_ps(tab, _mm256_srli_epi32(e, 2 * k)));
    }
}

/* Prefill: R rows x TN tokens over blocks [b0, b1); each decoded block serves TN
 * tokens, each activation load R rows. out[i][t] = reduce8 of the lanes. */
INLINE void f32_tile(const uint8_t *const *rp, const float *const *xp, int b0, int b1, float out[MAXR][MAXT],
                     const int R, const int TN) {
    float tb[MAXR][128] __attribute__((aligned(32)));
    __m256 acc[MAXR][MAXT];
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < TN; t++) acc[i][t] = _mm256_setzero_ps();
    for (int b = b0; b < b1; b++) {
        UNROLL for (int i = 0; i < R; i++) decode_block_f32(rp[i] + (size_t)b * 32, tb[i]);
        for (int c = 0; c < 128; c += 8) {
            __m256 wv[MAXR];
            UNROLL for (int i = 0; i < R; i++) wv[i] = _mm256_load_ps(tb[i] + c);
            UNROLL for (int t = 0; t < TN; t++) {
                __m256 xv = _mm256_loadu_ps(xp[t] + (size_t)b * 128 + c);
                UNROLL for (int i = 0; i < R; i++) acc[i][t] = _mm256_add_ps(acc[i][t], _mm256_mul_ps(wv[i], xv));
            }
        }
    }
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < TN; t++) out[i][t] = reduce8_m256(acc[i][t]);
}

typedef void (*ftile_fn)(const uint8_t *const *rp, const float *const *xp, int b0, int b1, float out[MAXR][MAXT]);
#define FTILE(R, TN)                                                                                                   \
    TARGET static void f32_tile_##R##_##TN(const uint8_t *const *rp, const float *const *xp, int b0, int b1,           \
                                           float out[MAXR][MAXT]) {                                                    \
        f32_tile(rp, xp, b0, b1, out, R, TN);                                                                          \
    }
FTILE(1, 1) FTILE(2, 1) FTILE(1, 2) FTILE(2, 2) FTILE(1, 4) FTILE(2, 4)
static const ftile_fn f32_tiles[2][3] = {{f32_tile_1_1, f32_tile_1_2, f32_tile_1_4},
                                         {f32_tile_2_1, f32_tile_2_2, f32_tile_2_4}};

TARGET static void matmul_f32(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int nsb = trl_t2_nsb(w), sbb = trl_t2_sb_blocks(w), nblk = trl_t2_nblk(w), ntok = act->ntok;
    const float *xpad = act->aux;
    const size_t xs = act->aux_stride / 4;
    if (ntok == 1) {
        /* matvec: the codes go straight from the i32 lanes to T, no buffer */
        const __m256 tab = _mm256_setr_ps(-1.0f, 0.0f, 1.0f, 2.0f, -1.0f, 0.0f, 1.0f, 2.0f);
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = w->data + (size_t)r * w->row_bytes;
            float yr = 0.0f;
            for (int sb = 0; sb < nsb; sb++) {
                int b0 = sb * sbb, b1 = nsb == 1 ? nblk : b0 + sbb;
                __m256 a = _mm256_setzero_ps();
                for (int b = b0; b < b1; b++) {
                    const uint8_t *p = row + (size_t)b * 32;
                    const float *xb = xpad + (size_t)b * 128;
                    __m256i e[4];
                    UNROLL for (int g = 0; g < 4; g++)
                        e[g] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * g)));
                    UNROLL for (int k = 0; k < 4; k++)
                        UNROLL for (int g = 0; g < 4; g++) {
                            __m256 tv = _mm256_permutevar8x32_ps(tab, _mm256_srli_epi32(e[g], 2 * k));
                            a = _mm256_add_ps(a, _mm256_mul_ps(tv, _mm256_loadu_ps(xb + 32 * k + 8 * g)));
                        }
                }
                float v = trl_t2_scale(w, r, sb) * reduce8_m256(a);
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

static const trl_kernel_ops i8_ops = {"avx2", act_bytes_i8, prepare_i8, matmul_i8, trl_t2_decode};
static const trl_kernel_ops f32_ops = {"avx2", act_bytes_f32, trl_t2_prepare_fpad, matmul_f32, trl_t2_decode};

const trl_kernel_ops *trl_ternary_avx2(const trl_weight *w) {
    if (w->enc != TRL_ENC_T2) return NULL;
    return w->act_int8 ? &i8_ops : &f32_ops;
}
#endif
