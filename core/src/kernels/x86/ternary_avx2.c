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
#include <string.h>

#include "../../internal.h"
#include "../ternary.h"

#define TARGET __attribute__((target("avx2,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,f16c")))
#define MAXR 4
#define MAXT 4

typedef void (*tile_fn)(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1,
                        int32_t out[MAXR][MAXT]);

INLINE int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* ------------------------------------------------------------ int8 activations */

static size_t act_bytes_i8(const trl_weight *w, int ntok) { return trl_t2_act_bytes_i8(w, ntok, 0); }

static void prepare_i8(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    trl_t2_prepare_i8(w, x, ntok, scratch, 0, act);
}

INLINE void i8_tile(const uint8_t *const *rp, const trl_act *act, int t0, int b0, int b1, int32_t out[MAXR][MAXT],
                    const int R, const int TN) {
    const int32_t cols_pad = (act->cols + TRL_T2_BLOCK - 1) / TRL_T2_BLOCK * TRL_T2_BLOCK;
    const int8_t *qp[MAXT];
    for (int t = 0; t < TN; t++) qp[t] = act->q + (size_t)(t0 + t) * cols_pad;
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i tot[MAXR][MAXT];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) tot[i][t] = _mm256_setzero_si256();
    /* |maddubs| <= 768 per int16 lane, 4 per block: 8 blocks stay below 2^15 */
    for (int bc = b0; bc < b1; bc += 8) {
        const int be = b1 - bc < 8 ? b1 : bc + 8;
        __m256i acc[MAXR][MAXT];
        for (int i = 0; i < R; i++)
            for (int t = 0; t < TN; t++) acc[i][t] = _mm256_setzero_si256();
        for (int b = bc; b < be; b++) {
            __m256i wv[MAXR];
            for (int i = 0; i < R; i++) wv[i] = _mm256_loadu_si256((const __m256i *)(rp[i] + (size_t)b * 32));
            for (int k = 0; k < 4; k++) {
                __m256i c[MAXR];
                for (int i = 0; i < R; i++) c[i] = _mm256_and_si256(_mm256_srli_epi16(wv[i], 2 * k), m3);
                for (int t = 0; t < TN; t++) {
                    __m256i qv = _mm256_loadu_si256((const __m256i *)(qp[t] + (size_t)b * 128 + 32 * k));
                    for (int i = 0; i < R; i++) acc[i][t] = _mm256_add_epi16(acc[i][t], _mm256_maddubs_epi16(c[i], qv));
                }
            }
        }
        for (int i = 0; i < R; i++)
            for (int t = 0; t < TN; t++) tot[i][t] = _mm256_add_epi32(tot[i][t], _mm256_madd_epi16(acc[i][t], ones));
    }
    for (int i = 0; i < R; i++)
        for (int t = 0; t < TN; t++) out[i][t] = hsum_epi32(tot[i][t]);
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
                i8_tiles[ri][ti](rp, act, t0, b0, b1, part);
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

static void matmul_i8(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    if (act->ntok == 1) drive_i8(w, act, y, ldy, r0, r1, 4, 1);
    else drive_i8(w, act, y, ldy, r0, r1, 2, 4);
}

/* ------------------------------------------------------------ float activations */

static size_t act_bytes_f32(const trl_weight *w, int ntok) { return trl_t2_act_bytes_fpad(w, ntok); }

INLINE float reduce8_m256(__m256 v) {
    float l[8];
    _mm256_storeu_ps(l, v);
    return trl_reduce8(l);
}

TARGET static void matmul_f32(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int nsb = trl_t2_nsb(w), sbb = trl_t2_sb_blocks(w), nblk = trl_t2_nblk(w), ntok = act->ntok;
    const float *xp = act->aux;
    const size_t xs = act->aux_stride / 4;
    const __m256 tab = _mm256_setr_ps(-1.0f, 0.0f, 1.0f, 2.0f, -1.0f, 0.0f, 1.0f, 2.0f);
    float tb[128] __attribute__((aligned(32)));
    float yt[TRL_KMAX_TOKENS];
    __m256 acc[TRL_KMAX_TOKENS];
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int sb = 0; sb < nsb; sb++) {
            int b0 = sb * sbb, b1 = nsb == 1 ? nblk : b0 + sbb;
            const float s = trl_t2_scale(w, r, sb);
            for (int t = 0; t < ntok; t++) acc[t] = _mm256_setzero_ps();
            for (int b = b0; b < b1; b++) {
                const uint8_t *p = row + (size_t)b * 32;
                __m256i e[4];
                for (int g = 0; g < 4; g++) e[g] = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * g)));
                if (ntok == 1) {
                    const float *xb = xp + (size_t)b * 128;
                    __m256 a = acc[0];
                    for (int k = 0; k < 4; k++)
                        for (int g = 0; g < 4; g++) {
                            __m256 tv = _mm256_permutevar8x32_ps(tab, _mm256_srli_epi32(e[g], 2 * k));
                            a = _mm256_add_ps(a, _mm256_mul_ps(tv, _mm256_loadu_ps(xb + 32 * k + 8 * g)));
                        }
                    acc[0] = a;
                    continue;
                }
                for (int k = 0; k < 4; k++)
                    for (int g = 0; g < 4; g++)
                        _mm256_store_ps(tb + 32 * k + 8 * g, _mm256_permutevar8x32_ps(tab, _mm256_srli_epi32(e[g], 2 * k)));
                int t = 0;
                for (; t + 2 <= ntok; t += 2) {
                    const float *x0 = xp + (size_t)t * xs + (size_t)b * 128, *x1 = x0 + xs;
                    __m256 a0 = acc[t], a1 = acc[t + 1];
                    for (int i = 0; i < 128; i += 8) {
                        __m256 tv = _mm256_load_ps(tb + i);
                        a0 = _mm256_add_ps(a0, _mm256_mul_ps(tv, _mm256_loadu_ps(x0 + i)));
                        a1 = _mm256_add_ps(a1, _mm256_mul_ps(tv, _mm256_loadu_ps(x1 + i)));
                    }
                    acc[t] = a0, acc[t + 1] = a1;
                }
                for (; t < ntok; t++) {
                    const float *x0 = xp + (size_t)t * xs + (size_t)b * 128;
                    __m256 a0 = acc[t];
                    for (int i = 0; i < 128; i += 8)
                        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_load_ps(tb + i), _mm256_loadu_ps(x0 + i)));
                    acc[t] = a0;
                }
            }
            for (int t = 0; t < ntok; t++) {
                float v = s * reduce8_m256(acc[t]);
                yt[t] = sb ? yt[t] + v : v;
            }
        }
        for (int t = 0; t < ntok; t++) y[(size_t)t * ldy + r] = yt[t];
    }
}

static const trl_kernel_ops i8_ops = {"avx2", act_bytes_i8, prepare_i8, matmul_i8, trl_t2_decode};
static const trl_kernel_ops f32_ops = {"avx2", act_bytes_f32, trl_t2_prepare_fpad, matmul_f32, trl_t2_decode};

const trl_kernel_ops *trl_ternary_avx2(const trl_weight *w) {
    if (w->enc != TRL_ENC_T2) return NULL;
    return w->act_int8 ? &i8_ops : &f32_ops;
}
#endif
