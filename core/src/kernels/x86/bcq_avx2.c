/* bcq_avx2.c - x86-64 AVX2 (+F16C) kernels for binary-coded (bcq) weights,
 * bit-identical to ref/bcq_ref.c (see there for the numerics), for native
 * builds. Same scheme as simd128/bcq_simd128.c at twice the width:
 * _mm256_shuffle_epi8 looks up within each 128-bit lane, so blocks of 32 rows
 * are transposed with rows 0-15 in the low lanes and rows 16-31 in the high
 * lanes, and every 16-entry byte table is broadcast to both lanes. Compiled
 * for AVX2 per function and used only when the CPU reports it. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "../../internal.h"
#include "../bcq.h"
#include "../kernels.h"

#define TARGET __attribute__((target("avx2,f16c")))
#define INLINE TARGET static inline __attribute__((always_inline))

#define RB 32       /* rows per block: one byte lane each */

/* ------------------------------------------------------------ prepare */

/* Scratch as the reference's, but each quad's table is 16 low bytes then 16
 * high bytes (32 bytes per quad, 8 per column), as in the simd128 kernels. */
TARGET static void prepare_avx2(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    bcq_geom G;
    memset(act, 0, sizeof *act);
    act->ntok = ntok;
    act->cols = w->cols;
    act->x = x;
    if (!bcq_geom_of(w, &G)) return;
    const size_t n = (size_t)ntok, cp = (size_t)G.cols_pad, stride = (cp / 4) * 32;
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 31) & ~(uintptr_t)31);
    float *qs = (float *)base;
    int8_t *q = (int8_t *)(base + ((4 * n + 31) & ~(size_t)31));
    uint8_t *tabs = (uint8_t *)q + n * cp;
    /* the sign of q_j in entry idx is bit j of idx; entries 0-7 and 8-15 differ only in q_3 */
    const __m128i s0 = _mm_setr_epi16(-1, 1, -1, 1, -1, 1, -1, 1);
    const __m128i s1 = _mm_setr_epi16(-1, -1, 1, 1, -1, -1, 1, 1);
    const __m128i s2 = _mm_setr_epi16(-1, -1, -1, -1, 1, 1, 1, 1);
    const __m128i even = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int t = 0; t < ntok; t++) {
        int8_t *qt = q + (size_t)t * cp;
        uint8_t *T = tabs + (size_t)t * stride;
        qs[t] = trl_quantize_act_i8(x + (size_t)t * w->cols, w->cols, G.cols_pad, qt);
        for (size_t j = 0; j < cp / 4; j++) {
            const int8_t *qj = qt + 4 * j;
            __m128i b = _mm_add_epi16(_mm_add_epi16(_mm_sign_epi16(_mm_set1_epi16(qj[0]), s0),
                                                    _mm_sign_epi16(_mm_set1_epi16(qj[1]), s1)),
                                      _mm_sign_epi16(_mm_set1_epi16(qj[2]), s2));
            __m128i q3 = _mm_set1_epi16(qj[3]);
            /* entries 0-7 and 8-15, each split into its low bytes and high bytes */
            __m128i lo = _mm_shuffle_epi8(_mm_sub_epi16(b, q3), even);
            __m128i hi = _mm_shuffle_epi8(_mm_add_epi16(b, q3), even);
            _mm_storeu_si128((__m128i *)(T + 32 * j), _mm_unpacklo_epi64(lo, hi));
            _mm_storeu_si128((__m128i *)(T + 32 * j + 16), _mm_unpackhi_epi64(lo, hi));
        }
    }
    act->q = q;
    act->qscale = qs;
    act->aux = tabs;
    act->aux_stride = stride;
}

/* ------------------------------------------------------------ matmul */

/* Bytes [0, w) of 32 rows (r[l] = row l low lane, row l+16 high lane; w = 4,
 * 8 or 16, constant after inlining) -> v[b] = byte b of rows 0-15 | 16-31.
 * The same interleave rounds as the simd128 transpose, in both lanes. */
INLINE void transpose32(const __m256i r[16], __m256i v[16], const int w) {
    __m256i a[16], c[16];
    for (int m = 0; m < 8; m++) {
        a[m] = _mm256_unpacklo_epi8(r[2 * m], r[2 * m + 1]);
        if (w > 8) a[8 + m] = _mm256_unpackhi_epi8(r[2 * m], r[2 * m + 1]);
    }
    for (int h = 0; h < (w > 8 ? 2 : 1); h++)
        for (int m = 0; m < 4; m++) {
            c[8 * h + m] = _mm256_unpacklo_epi16(a[8 * h + 2 * m], a[8 * h + 2 * m + 1]);
            if (w > 4) c[8 * h + 4 + m] = _mm256_unpackhi_epi16(a[8 * h + 2 * m], a[8 * h + 2 * m + 1]);
        }
    for (int hu = 0; hu < w / 4; hu++) {
        const __m256i *cc = c + 4 * hu;
        __m256i e0 = _mm256_unpacklo_epi32(cc[0], cc[1]), e1 = _mm256_unpacklo_epi32(cc[2], cc[3]);
        __m256i f0 = _mm256_unpackhi_epi32(cc[0], cc[1]), f1 = _mm256_unpackhi_epi32(cc[2], cc[3]);
        v[4 * hu + 0] = _mm256_unpacklo_epi64(e0, e1);
        v[4 * hu + 1] = _mm256_unpackhi_epi64(e0, e1);
        v[4 * hu + 2] = _mm256_unpacklo_epi64(f0, f1);
        v[4 * hu + 3] = _mm256_unpackhi_epi64(f0, f1);
    }
}

INLINE __m128i load_w(const uint8_t *p, const int w) {
    if (w == 16) return _mm_loadu_si128((const __m128i *)p);
    if (w == 8) return _mm_loadl_epi64((const __m128i *)p);
    int32_t v;
    memcpy(&v, p, 4);
    return _mm_cvtsi32_si128(v);
}

/* One piece of w plane bytes (8w columns) of 32 rows at byte offset off:
 * add its exact sums for every token to d[t][0..3] (8 rows each: 0-7, 8-15,
 * 16-23, 24-31), or set them when first. */
INLINE void piece(const uint8_t *const rowp[RB], size_t off, const int w, const uint8_t *tab, size_t stride,
                  int ntok, __m256i (*d)[4], int first) {
    __m256i r[16], v[16], lo[16], hi[16];
    for (int l = 0; l < 16; l++)
        r[l] = _mm256_inserti128_si256(_mm256_castsi128_si256(load_w(rowp[l] + off, w)),
                                       load_w(rowp[l + 16] + off, w), 1);
    transpose32(r, v, w);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int b = 0; b < w; b++) {
        lo[b] = _mm256_and_si256(v[b], m4);
        hi[b] = _mm256_and_si256(_mm256_srli_epi16(v[b], 4), m4);
    }
    for (int t = 0; t < ntok; t++, tab += stride) {
        __m256i s0 = _mm256_setzero_si256(), s1 = s0; /* rows 0-7 | 16-23, 8-15 | 24-31 */
        for (int b = 0; b < w; b++)
            for (int h = 0; h < 2; h++) {
                const uint8_t *p = tab + 64 * b + 32 * h;
                __m256i idx = h ? hi[b] : lo[b];
                __m256i tl = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p)), idx);
                __m256i th =
                    _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 16))), idx);
                s0 = _mm256_add_epi16(s0, _mm256_unpacklo_epi8(tl, th));
                s1 = _mm256_add_epi16(s1, _mm256_unpackhi_epi8(tl, th));
            }
        __m256i e0 = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s0));
        __m256i e1 = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s1));
        __m256i e2 = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s0, 1));
        __m256i e3 = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s1, 1));
        if (first) {
            d[t][0] = e0, d[t][1] = e1, d[t][2] = e2, d[t][3] = e3;
        } else {
            d[t][0] = _mm256_add_epi32(d[t][0], e0), d[t][1] = _mm256_add_epi32(d[t][1], e1);
            d[t][2] = _mm256_add_epi32(d[t][2], e2), d[t][3] = _mm256_add_epi32(d[t][3], e3);
        }
    }
}

INLINE __m128i load_scales8(const uint8_t *p, int k, int direct) {
    if (direct) return _mm_loadl_epi64((const __m128i *)p);
    uint8_t buf[8] = {0};
    memcpy(buf, p, 2 * (size_t)k);
    return _mm_loadl_epi64((const __m128i *)buf);
}

/* The k f16 scales of group gi of 32 rows as floats: sc[i][u] = plane i,
 * rows 8u..8u+7 (the layout of d). The k halves of each row are transposed
 * with interleaves like the bit planes (F16C converts exactly, as
 * trl_f16_to_f32). Rows are read 8 bytes at a time where that stays inside
 * their scales. */
INLINE void group_scales(const uint8_t *const rowp[RB], const bcq_geom *G, int gi, __m256 sc[4][4]) {
    const int k = G->k, direct = (G->ng - gi) * k >= 4;
    const size_t off = G->sc_off + 2 * (size_t)gi * (size_t)k;
    __m256i r[16], a[8], c[4][2];
    for (int l = 0; l < 16; l++)
        r[l] = _mm256_inserti128_si256(_mm256_castsi128_si256(load_scales8(rowp[l] + off, k, direct)),
                                       load_scales8(rowp[l + 16] + off, k, direct), 1);
    for (int m = 0; m < 8; m++) a[m] = _mm256_unpacklo_epi16(r[2 * m], r[2 * m + 1]); /* rows 2m, 2m+1 */
    for (int m = 0; m < 4; m++) { /* c[m][z]: planes 2z, 2z+1 of rows 4m..4m+3 */
        c[m][0] = _mm256_unpacklo_epi32(a[2 * m], a[2 * m + 1]);
        if (k > 2) c[m][1] = _mm256_unpackhi_epi32(a[2 * m], a[2 * m + 1]);
    }
    for (int i = 0; i < k; i++)
        for (int h = 0; h < 2; h++) { /* rows 8h..8h+7 | 16+8h.. */
            __m256i v = i & 1 ? _mm256_unpackhi_epi64(c[2 * h][i / 2], c[2 * h + 1][i / 2])
                              : _mm256_unpacklo_epi64(c[2 * h][i / 2], c[2 * h + 1][i / 2]);
            sc[i][h] = _mm256_cvtph_ps(_mm256_castsi256_si128(v));
            sc[i][2 + h] = _mm256_cvtph_ps(_mm256_extracti128_si256(v, 1));
        }
}

/* Rows [rb0, rb0+nr) (nr <= 32) for ntok tokens; ntok is a constant 1 in one
 * inlined copy so that the decode path keeps its sums in registers. */
INLINE void row_block(const trl_weight *w, const bcq_geom *G, const trl_act *act, float *y, int ldy, int rb0, int nr,
                      const int ntok) {
    const int gb = G->g / 8;
    const uint8_t *tabs = act->aux;
    const size_t stride = act->aux_stride;
    __m256 acc[TRL_KMAX_TOKENS][4], sc[4][4];
    __m256i d[TRL_KMAX_TOKENS][4];
    const uint8_t *rowp[RB];
    /* a partial block repeats its last row; those lanes are never stored */
    for (int l = 0; l < RB; l++) rowp[l] = w->data + (size_t)(rb0 + (l < nr ? l : nr - 1)) * w->row_bytes;
    for (int t = 0; t < ntok; t++)
        for (int u = 0; u < 4; u++) acc[t][u] = _mm256_setzero_ps();
    for (int gi = 0; gi < G->ng; gi++) {
        group_scales(rowp, G, gi, sc);
        const uint8_t *tab0 = tabs + (size_t)gi * (size_t)G->g * 8; /* quad gi*g/4, 32 bytes each */
        for (int i = 0; i < G->k; i++) {
            size_t off = (size_t)i * G->pb + (size_t)gi * (size_t)gb;
            int o = 0;
            for (; o + 16 <= gb; o += 16) piece(rowp, off + o, 16, tab0 + 64 * o, stride, ntok, d, o == 0);
            if (o + 8 <= gb) piece(rowp, off + o, 8, tab0 + 64 * o, stride, ntok, d, o == 0), o += 8;
            if (o < gb) piece(rowp, off + o, 4, tab0 + 64 * o, stride, ntok, d, o == 0);
            for (int t = 0; t < ntok; t++)
                for (int u = 0; u < 4; u++)
                    acc[t][u] = _mm256_add_ps(acc[t][u], _mm256_mul_ps(sc[i][u], _mm256_cvtepi32_ps(d[t][u])));
        }
    }
    for (int t = 0; t < ntok; t++) {
        float out[RB];
        for (int u = 0; u < 4; u++) _mm256_storeu_ps(out + 8 * u, acc[t][u]);
        for (int l = 0; l < nr; l++) y[(size_t)t * ldy + rb0 + l] = act->qscale[t] * out[l];
    }
}

TARGET static void matmul_avx2(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    bcq_geom G;
    if (!bcq_geom_of(w, &G)) return;
    for (int rb0 = r0; rb0 < r1; rb0 += RB) {
        const int nr = r1 - rb0 < RB ? r1 - rb0 : RB;
        if (act->ntok == 1)
            row_block(w, &G, act, y, ldy, rb0, nr, 1);
        else
            row_block(w, &G, act, y, ldy, rb0, nr, act->ntok);
    }
}

static const trl_kernel_ops avx2_ops = {"avx2", bcq_act_bytes, prepare_avx2, matmul_avx2, trl_bcq_decode_ref};

const trl_kernel_ops *trl_bcq_avx2(const trl_weight *w) {
    bcq_geom G;
    return bcq_geom_of(w, &G) ? &avx2_ops : NULL;
}
#endif
