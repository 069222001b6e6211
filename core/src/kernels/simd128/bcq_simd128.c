/* bcq_simd128.c - WebAssembly SIMD128 kernels for binary-coded (bcq) weights,
 * bit-identical to ref/bcq_ref.c (see there for the numerics).
 *
 * The lookup is i8x16.swizzle: a 16-entry byte table indexed by 16 nibbles.
 * One swizzle uses one table, so its 16 lanes must be 16 *rows* at the same
 * nibble position (same 4 activations), not 16 positions of one row: blocks of
 * 16 rows are transposed on the fly (16 rows x 16 plane bytes -> 16 vectors,
 * vector b = byte b of every row, four rounds of interleaves). Each int16
 * table T (|T| <= 512) is kept as two byte tables, low bytes and high bytes;
 * the two swizzle results interleaved are the int16 values, summed exactly in
 * i16 over at most 128 columns (32 lookups: |sum| <= 16384) and then in i32.
 * With several tokens the transposed weights are shared by all their tables. */
#ifdef __wasm_simd128__
#include <stdint.h>
#include <string.h>
#include <wasm_simd128.h>

#include "../../internal.h"
#include "../bcq.h"
#include "../kernels.h"

#define RB 16       /* rows per block: one byte lane each */

/* Exact f16 -> f32 of 4 halves (sign-extended to i32 lanes), infinities and
 * NaNs included, as trl_f16_to_f32: exponent and mantissa moved into place
 * and rescaled by 2^112 (subnormals too); exponent 31 forced to 255. */
static inline v128_t f16x4_to_f32x4(v128_t h32) {
    v128_t m = wasm_v128_and(h32, wasm_i32x4_splat(0x7FFF));
    v128_t mag = wasm_i32x4_shl(m, 13);
    v128_t f = wasm_f32x4_mul(mag, wasm_f32x4_splat(0x1p112f));
    v128_t special = wasm_i32x4_gt(m, wasm_i32x4_splat(0x7BFF));
    f = wasm_v128_bitselect(wasm_v128_or(mag, wasm_i32x4_splat(0x7F800000)), f, special);
    return wasm_v128_or(f, wasm_v128_and(h32, wasm_i32x4_splat((int32_t)0x80000000u)));
}

/* ------------------------------------------------------------ prepare */

/* Scratch as the reference's, but each quad's table is 16 low bytes then 16
 * high bytes (32 bytes per quad, 8 per column). */
static void prepare_simd(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
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
    const v128_t s0 = wasm_i16x8_make(-1, 1, -1, 1, -1, 1, -1, 1);
    const v128_t s1 = wasm_i16x8_make(-1, -1, 1, 1, -1, -1, 1, 1);
    const v128_t s2 = wasm_i16x8_make(-1, -1, -1, -1, 1, 1, 1, 1);
    for (int t = 0; t < ntok; t++) {
        int8_t *qt = q + (size_t)t * cp;
        uint8_t *T = tabs + (size_t)t * stride;
        qs[t] = trl_quantize_act_i8(x + (size_t)t * w->cols, w->cols, G.cols_pad, qt);
        for (size_t j = 0; j < cp / 4; j++) {
            const int8_t *qj = qt + 4 * j;
            v128_t b = wasm_i16x8_add(wasm_i16x8_add(wasm_i16x8_mul(wasm_i16x8_splat(qj[0]), s0),
                                                     wasm_i16x8_mul(wasm_i16x8_splat(qj[1]), s1)),
                                      wasm_i16x8_mul(wasm_i16x8_splat(qj[2]), s2));
            v128_t q3 = wasm_i16x8_splat(qj[3]);
            v128_t lo = wasm_i16x8_sub(b, q3), hi = wasm_i16x8_add(b, q3);
            wasm_v128_store(T + 32 * j,
                            wasm_i8x16_shuffle(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
            wasm_v128_store(T + 32 * j + 16,
                            wasm_i8x16_shuffle(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31));
        }
    }
    act->q = q;
    act->qscale = qs;
    act->aux = tabs;
    act->aux_stride = stride;
}

/* ------------------------------------------------------------ matmul */

#define UNPACK8_LO(a, b) wasm_i8x16_shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define UNPACK8_HI(a, b) wasm_i8x16_shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#define UNPACK16_LO(a, b) wasm_i16x8_shuffle(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define UNPACK16_HI(a, b) wasm_i16x8_shuffle(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#define UNPACK32_LO(a, b) wasm_i32x4_shuffle(a, b, 0, 4, 1, 5)
#define UNPACK32_HI(a, b) wasm_i32x4_shuffle(a, b, 2, 6, 3, 7)
#define UNPACK64_LO(a, b) wasm_i64x2_shuffle(a, b, 0, 2)
#define UNPACK64_HI(a, b) wasm_i64x2_shuffle(a, b, 1, 3)

/* Bytes [0, w) of 16 rows (w = 4, 8 or 16, constant after inlining) -> v[b]
 * = byte b of rows 0..15. Rounds: byte pairs of rows (2m, 2m+1), then 4 rows
 * per 32-bit lane, 8 rows per 64-bit lane, 16 rows. */
static inline __attribute__((always_inline)) void transpose16(const v128_t r[RB], v128_t v[16], const int w) {
    v128_t a[16], c[16];
    for (int m = 0; m < 8; m++) {
        a[m] = UNPACK8_LO(r[2 * m], r[2 * m + 1]); /* bytes 0-7 of rows 2m, 2m+1 */
        if (w > 8) a[8 + m] = UNPACK8_HI(r[2 * m], r[2 * m + 1]);
    }
    /* c[8h + 4u + m]: bytes 8h+4u .. +3 of rows 4m .. 4m+3 */
    for (int h = 0; h < (w > 8 ? 2 : 1); h++)
        for (int m = 0; m < 4; m++) {
            c[8 * h + m] = UNPACK16_LO(a[8 * h + 2 * m], a[8 * h + 2 * m + 1]);
            if (w > 4) c[8 * h + 4 + m] = UNPACK16_HI(a[8 * h + 2 * m], a[8 * h + 2 * m + 1]);
        }
    for (int hu = 0; hu < w / 4; hu++) {
        const v128_t *cc = c + 4 * hu; /* bytes 4hu .. 4hu+3 */
        v128_t e0 = UNPACK32_LO(cc[0], cc[1]), e1 = UNPACK32_LO(cc[2], cc[3]); /* bytes +0, +1 */
        v128_t f0 = UNPACK32_HI(cc[0], cc[1]), f1 = UNPACK32_HI(cc[2], cc[3]); /* bytes +2, +3 */
        v[4 * hu + 0] = UNPACK64_LO(e0, e1);
        v[4 * hu + 1] = UNPACK64_HI(e0, e1);
        v[4 * hu + 2] = UNPACK64_LO(f0, f1);
        v[4 * hu + 3] = UNPACK64_HI(f0, f1);
    }
}

/* One piece of w plane bytes (8w columns) of 16 rows, at byte offset off of
 * each row: add its exact sums for every token to d[t][0..3] (rows 4u..4u+3
 * in d[t][u]), or set them when first. tab points at token 0's tables of the
 * piece's first quad. */
static inline __attribute__((always_inline)) void piece(const uint8_t *const rowp[RB], size_t off, const int w,
                                                        const uint8_t *tab, size_t stride, int ntok,
                                                        v128_t (*d)[4], int first) {
    v128_t r[RB], v[16], lo[16], hi[16];
    for (int l = 0; l < RB; l++)
        r[l] = w == 16  ? wasm_v128_load(rowp[l] + off)
               : w == 8 ? wasm_v128_load64_zero(rowp[l] + off)
                        : wasm_v128_load32_zero(rowp[l] + off);
    transpose16(r, v, w);
    const v128_t m4 = wasm_i8x16_splat(0x0F);
    for (int b = 0; b < w; b++) {
        lo[b] = wasm_v128_and(v[b], m4);
        hi[b] = wasm_u8x16_shr(v[b], 4);
    }
    for (int t = 0; t < ntok; t++, tab += stride) {
        v128_t s0 = wasm_i16x8_splat(0), s1 = s0; /* rows 0-7, 8-15 */
        for (int b = 0; b < w; b++)
            for (int h = 0; h < 2; h++) {
                const uint8_t *p = tab + 64 * b + 32 * h;
                v128_t idx = h ? hi[b] : lo[b];
                v128_t tl = wasm_i8x16_swizzle(wasm_v128_load(p), idx);
                v128_t th = wasm_i8x16_swizzle(wasm_v128_load(p + 16), idx);
                s0 = wasm_i16x8_add(s0, UNPACK8_LO(tl, th));
                s1 = wasm_i16x8_add(s1, UNPACK8_HI(tl, th));
            }
        v128_t e0 = wasm_i32x4_extend_low_i16x8(s0), e1 = wasm_i32x4_extend_high_i16x8(s0);
        v128_t e2 = wasm_i32x4_extend_low_i16x8(s1), e3 = wasm_i32x4_extend_high_i16x8(s1);
        if (first) {
            d[t][0] = e0, d[t][1] = e1, d[t][2] = e2, d[t][3] = e3;
        } else {
            d[t][0] = wasm_i32x4_add(d[t][0], e0), d[t][1] = wasm_i32x4_add(d[t][1], e1);
            d[t][2] = wasm_i32x4_add(d[t][2], e2), d[t][3] = wasm_i32x4_add(d[t][3], e3);
        }
    }
}

/* The k f16 scales of group gi of 16 rows as floats: sc[i][u] = plane i,
 * rows 4u..4u+3 (the layout of d). The k halves of each row are transposed
 * with interleaves like the bit planes. Rows are read 8 bytes at a time where
 * that stays inside their scales. */
static inline __attribute__((always_inline)) void group_scales(const uint8_t *const rowp[RB], const bcq_geom *G,
                                                               int gi, v128_t sc[4][4]) {
    const int k = G->k, direct = (G->ng - gi) * k >= 4;
    const size_t off = G->sc_off + 2 * (size_t)gi * (size_t)k;
    v128_t r[RB], a[8], c[4][2];
    for (int l = 0; l < RB; l++) {
        if (direct) {
            r[l] = wasm_v128_load64_zero(rowp[l] + off);
        } else {
            uint8_t buf[8] = {0};
            memcpy(buf, rowp[l] + off, 2 * (size_t)k);
            r[l] = wasm_v128_load64_zero(buf);
        }
    }
    for (int m = 0; m < 8; m++) a[m] = UNPACK16_LO(r[2 * m], r[2 * m + 1]); /* rows 2m, 2m+1 */
    for (int m = 0; m < 4; m++) { /* c[m][z]: planes 2z, 2z+1 of rows 4m..4m+3 */
        c[m][0] = UNPACK32_LO(a[2 * m], a[2 * m + 1]);
        if (k > 2) c[m][1] = UNPACK32_HI(a[2 * m], a[2 * m + 1]);
    }
    for (int i = 0; i < k; i++)
        for (int h = 0; h < 2; h++) { /* rows 8h..8h+7 */
            v128_t v = i & 1 ? UNPACK64_HI(c[2 * h][i / 2], c[2 * h + 1][i / 2])
                             : UNPACK64_LO(c[2 * h][i / 2], c[2 * h + 1][i / 2]);
            sc[i][2 * h] = f16x4_to_f32x4(wasm_i32x4_extend_low_i16x8(v));
            sc[i][2 * h + 1] = f16x4_to_f32x4(wasm_i32x4_extend_high_i16x8(v));
        }
}

/* Rows [rb0, rb0+nr) (nr <= 16) for ntok tokens; ntok is a constant 1 in one
 * inlined copy so that the decode path keeps its sums in locals. */
static inline __attribute__((always_inline)) void row_block(const trl_weight *w, const bcq_geom *G,
                                                            const trl_act *act, float *y, int ldy, int rb0, int nr,
                                                            const int ntok) {
    const int gb = G->g / 8;
    const uint8_t *tabs = act->aux;
    const size_t stride = act->aux_stride;
    v128_t acc[TRL_KMAX_TOKENS][4], d[TRL_KMAX_TOKENS][4], sc[4][4];
    const uint8_t *rowp[RB];
    /* a partial block repeats its last row; those lanes are never stored */
    for (int l = 0; l < RB; l++) rowp[l] = w->data + (size_t)(rb0 + (l < nr ? l : nr - 1)) * w->row_bytes;
    for (int t = 0; t < ntok; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = wasm_f32x4_splat(0.0f);
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
                    acc[t][u] = wasm_f32x4_add(acc[t][u], wasm_f32x4_mul(sc[i][u], wasm_f32x4_convert_i32x4(d[t][u])));
        }
    }
    for (int t = 0; t < ntok; t++) {
        float out[RB] __attribute__((aligned(16)));
        for (int u = 0; u < 4; u++) wasm_v128_store(out + 4 * u, acc[t][u]);
        for (int l = 0; l < nr; l++) y[(size_t)t * ldy + rb0 + l] = act->qscale[t] * out[l];
    }
}

static void matmul_simd(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
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

static const trl_kernel_ops simd_ops = {"simd128", bcq_act_bytes, prepare_simd, matmul_simd, trl_bcq_decode_ref};

const trl_kernel_ops *trl_bcq_simd128(const trl_weight *w) {
    bcq_geom G;
    return bcq_geom_of(w, &G) ? &simd_ops : NULL;
}
#endif
