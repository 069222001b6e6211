/* bcq.h - geometry of a binary-coded (bcq) weight row and its activation
 * scratch, shared by the bcq kernels (ref, simd128, avx2). Private. */
#ifndef TRL_BCQ_H
#define TRL_BCQ_H

#include "../internal.h"
#include "kernels.h"

typedef struct bcq_geom {
    int k;          /* bit planes */
    int g;          /* columns per group */
    int ng;         /* groups per row */
    int cols_pad;   /* ng * g */
    size_t pb;      /* bytes per plane: cols_pad / 8 */
    size_t sc_off;  /* offset of the (group, plane) f16 scales in the row */
} bcq_geom;

/* Fill G from a bcq weight; 0 if the weight is not a valid bcq matrix. */
static inline int bcq_geom_of(const trl_weight *w, bcq_geom *G) {
    const trl_enc_params *p = &w->params;
    if (w->enc != TRL_ENC_BCQ || w->cols < 1 || w->rows < 0) return 0;
    size_t rb = trl_bcq_row_bytes(p, (uint64_t)w->cols);
    if (!rb || w->row_bytes < rb) return 0;
    G->k = p->bits;
    G->g = p->group;
    G->ng = (w->cols + p->group - 1) / p->group;
    G->cols_pad = G->ng * G->g;
    G->pb = (size_t)G->cols_pad / 8;
    G->sc_off = (size_t)G->k * G->pb;
    return 1;
}

/* Scale of (group gi, plane i) of a row. */
static inline float bcq_scale_at(const uint8_t *row, const bcq_geom *G, int gi, int i) {
    const uint8_t *s = row + G->sc_off + 2 * ((size_t)gi * (size_t)G->k + (size_t)i);
    return trl_f16_to_f32((uint16_t)(s[0] | (s[1] << 8)));
}

/* Scratch of every bcq kernel: [qscale: ntok f32, padded to 32 bytes]
 * [q: ntok * cols_pad int8][tables: ntok * cols_pad/4 quads * 32 bytes], from
 * a 32-byte aligned start (the table layout within a quad is the kernel's). */
static inline size_t bcq_act_bytes(const trl_weight *w, int ntok) {
    bcq_geom G;
    if (!bcq_geom_of(w, &G) || ntok < 1) return 0;
    size_t n = (size_t)ntok, cp = (size_t)G.cols_pad;
    return 32 + ((4 * n + 31) & ~(size_t)31) + n * cp + n * (cp / 4) * 32;
}

/* Columns [c0, c0+n) of a row as floats (ref/bcq_ref.c; every table uses it). */
void trl_bcq_decode_ref(const trl_weight *w, int row, int c0, int n, float *out);

#endif
