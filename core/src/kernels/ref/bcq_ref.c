/* bcq_ref.c - scalar reference kernels for binary-coded weights (ShiftAddLLM
 * BCQ, docs/FORMAT.md "Binary-coded: bcq"): the oracle of the SIMD versions.
 *
 * W[r][c] = sum_i a[r][g][i] * B_i[r][c], B_i in {-1, +1}. The activations are
 * quantized to int8 per token, and for every 4 columns (a "quad") prepare()
 * builds the 16 signed partial sums T[idx] = sum_j (bit j of idx ? +q_j : -q_j).
 * A 4-bit nibble of a bit plane then selects its quad's contribution with one
 * lookup (T-MAC with g = 4): the row is never multiplied by a weight, and every
 * per-(row, group, plane) sum d is an exact integer. The float part follows
 * FORMAT.md: acc += f32(scale) * (float)d in (group, plane) order from 0, then
 * y = (a / 127) * acc. */
#include <stdint.h>
#include <string.h>

#include "../../internal.h"
#include "../bcq.h"
#include "../kernels.h"

/* ------------------------------------------------------------ prepare */

/* Scratch as bcq.h lays it out, each quad's table 16 int16 entries. */
static void prepare_ref(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
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
    for (int t = 0; t < ntok; t++) {
        int8_t *qt = q + (size_t)t * cp;
        int16_t *T = (int16_t *)(tabs + (size_t)t * stride);
        qs[t] = trl_quantize_act_i8(x + (size_t)t * w->cols, w->cols, G.cols_pad, qt);
        for (size_t j = 0; j < cp / 4; j++)
            for (int idx = 0; idx < 16; idx++) {
                int s = 0;
                for (int b = 0; b < 4; b++) s += (idx >> b) & 1 ? qt[4 * j + b] : -qt[4 * j + b];
                T[16 * j + idx] = (int16_t)s;
            }
    }
    act->q = q;
    act->qscale = qs;
    act->aux = tabs;
    act->aux_stride = stride;
}

/* ------------------------------------------------------------ matmul / decode */

static void matmul_ref(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    bcq_geom G;
    if (!bcq_geom_of(w, &G)) return;
    const int ntok = act->ntok, gb = G.g / 8;
    float acc[TRL_KMAX_TOKENS];
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < ntok; t++) acc[t] = 0.0f;
        for (int gi = 0; gi < G.ng; gi++)
            for (int i = 0; i < G.k; i++) {
                const uint8_t *bits = row + (size_t)i * G.pb + (size_t)gi * (size_t)gb;
                const float s = bcq_scale_at(row, &G, gi, i);
                for (int t = 0; t < ntok; t++) {
                    /* the quads of this group: 2 per byte, low nibble first */
                    const int16_t *T = (const int16_t *)((const uint8_t *)act->aux + (size_t)t * act->aux_stride) +
                                       (size_t)gi * (size_t)G.g * 4;
                    int32_t d = 0;
                    for (int b = 0; b < gb; b++) d += T[32 * b + (bits[b] & 15)] + T[32 * b + 16 + (bits[b] >> 4)];
                    acc[t] += s * (float)d;
                }
            }
        for (int t = 0; t < ntok; t++) y[(size_t)t * ldy + r] = act->qscale[t] * acc[t];
    }
}

/* Scalar decode, shared by every bcq kernel table (it is not a hot path). */
void trl_bcq_decode_ref(const trl_weight *w, int row, int c0, int n, float *out) {
    bcq_geom G;
    if (!bcq_geom_of(w, &G)) {
        memset(out, 0, (size_t)n * sizeof *out);
        return;
    }
    const uint8_t *r = w->data + (size_t)row * w->row_bytes;
    for (int j = 0; j < n; j++) {
        int c = c0 + j, gi = c / G.g;
        float v = 0.0f;
        for (int i = 0; i < G.k; i++) {
            float s = bcq_scale_at(r, &G, gi, i);
            v += (r[(size_t)i * G.pb + (size_t)(c >> 3)] >> (c & 7)) & 1 ? s : -s;
        }
        out[j] = v;
    }
}

static const trl_kernel_ops ref_ops = {"ref", bcq_act_bytes, prepare_ref, matmul_ref, trl_bcq_decode_ref};

const trl_kernel_ops *trl_bcq_ref(const trl_weight *w) {
    bcq_geom G;
    return bcq_geom_of(w, &G) ? &ref_ops : NULL;
}
