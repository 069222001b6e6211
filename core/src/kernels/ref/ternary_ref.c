/* ternary_ref.c - scalar reference kernels for t2 (BitNet b1.58 / TriLM
 * ternary weights), both activation modes: the oracle of the SIMD kernels.
 * Also the prepare()/decode() helpers every t2 implementation shares
 * (ternary.h). Written for clarity: one code at a time. */
#include <string.h>

#include "../../internal.h"
#include "../kernels.h"
#include "../ternary.h"

/* T + 1 of (row, column c); code 3 (invalid) reads as T = 2 everywhere. */
static inline int t2_code(const uint8_t *row, int c) {
    int b = c / TRL_T2_BLOCK, k = (c % TRL_T2_BLOCK) / 32, j = c % 32;
    return (row[b * TRL_T2_BLOCK_BYTES + j] >> (2 * k)) & 3;
}

static uint8_t *align64(void *p) { return (uint8_t *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* ------------------------------------------------------------ shared helpers */

void trl_t2_prepare_i8(const trl_weight *w, const float *x, int ntok, void *scratch, size_t design_bytes_per_col,
                       trl_t2_quant_fn quant, trl_act *act) {
    const int32_t cols = w->cols, cols_pad = trl_t2_cols_pad(w);
    const int nsb = trl_t2_nsb(w), sbc = trl_t2_sb_blocks(w) * TRL_T2_BLOCK;
    uint8_t *p = align64(scratch);
    int8_t *q = (int8_t *)p;
    p += ((size_t)ntok * (size_t)cols_pad + 63) & ~(size_t)63;
    float *qscale = (float *)(void *)p;
    p += ((size_t)ntok * 4 + 63) & ~(size_t)63;
    memset(act, 0, sizeof *act);
    act->ntok = ntok;
    act->cols = cols;
    act->x = x;
    act->q = q;
    act->qscale = qscale;
    act->aux = p;
    act->aux_stride = trl_t2_aux_stride(w, design_bytes_per_col);
    for (int t = 0; t < ntok; t++) {
        int8_t *qt = q + (size_t)t * cols_pad;
        qscale[t] = quant(x + (size_t)t * cols, cols, cols_pad, qt);
        int32_t *bsum = (int32_t *)(void *)(p + (size_t)t * act->aux_stride);
        for (int sb = 0; sb < nsb; sb++) {
            int32_t s = 0;
            int c1 = nsb == 1 ? cols_pad : (sb + 1) * sbc;
            for (int c = sb * sbc; c < c1; c++) s += qt[c];
            bsum[sb] = s;
        }
    }
}

void trl_t2_prepare_fpad(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    const int32_t cols = w->cols, cols_pad = trl_t2_cols_pad(w);
    float *xp = (float *)(void *)align64(scratch);
    for (int t = 0; t < ntok; t++) {
        memcpy(xp + (size_t)t * cols_pad, x + (size_t)t * cols, (size_t)cols * 4);
        memset(xp + (size_t)t * cols_pad + cols, 0, (size_t)(cols_pad - cols) * 4);
    }
    memset(act, 0, sizeof *act);
    act->ntok = ntok;
    act->cols = cols;
    act->x = x;
    act->aux = xp;
    act->aux_stride = (size_t)cols_pad * 4;
}

void trl_t2_decode(const trl_weight *w, int row, int c0, int n, float *out) {
    const uint8_t *r = w->data + (size_t)row * w->row_bytes;
    const int sbc = trl_t2_sb_blocks(w) * TRL_T2_BLOCK, nsb = trl_t2_nsb(w);
    for (int i = 0; i < n; i++) {
        int c = c0 + i, sb = nsb == 1 ? 0 : c / sbc;
        out[i] = trl_t2_scale(w, row, sb) * (float)(t2_code(r, c) - 1);
    }
}

/* ------------------------------------------------------------ int8 activations */

static size_t act_bytes_i8_ref(const trl_weight *w, int ntok) { return trl_t2_act_bytes_i8(w, ntok, 0); }

static void prepare_i8_ref(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    trl_t2_prepare_i8(w, x, ntok, scratch, 0, trl_quantize_act_i8, act);
}

static void matmul_i8_ref(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int32_t cols = w->cols, cols_pad = trl_t2_cols_pad(w);
    const int nsb = trl_t2_nsb(w), sbc = trl_t2_sb_blocks(w) * TRL_T2_BLOCK;
    int32_t dot[64];
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < act->ntok; t++) {
            const int8_t *q = act->q + (size_t)t * cols_pad;
            for (int sb = 0; sb < nsb; sb++) {
                int64_t d = 0;
                int c1 = nsb == 1 ? cols : (sb + 1) * sbc;
                for (int c = sb * sbc; c < c1; c++) d += (int64_t)(t2_code(row, c) - 1) * q[c];
                dot[sb] = (int32_t)d;
            }
            y[(size_t)t * ldy + r] = trl_t2_finish_i8(w, r, dot, nsb, act->qscale[t]);
        }
    }
}

/* ------------------------------------------------------------ float activations */

static void matmul_f32_ref(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int32_t cols = w->cols;
    const int nsb = trl_t2_nsb(w), sbc = trl_t2_sb_blocks(w) * TRL_T2_BLOCK;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < act->ntok; t++) {
            const float *x = act->x + (size_t)t * cols;
            float yr = 0.0f;
            for (int sb = 0; sb < nsb; sb++) {
                float l[8] = {0};
                int c0 = sb * sbc, c1 = nsb == 1 ? cols : c0 + sbc;
                /* a zero-padded tail would add T * 0.0f, which leaves a lane as it is (a lane
                 * starting at +0.0f is never -0.0f), so it is skipped */
                for (int c = c0; c < c1; c++) l[(c - c0) % 8] += (float)(t2_code(row, c) - 1) * x[c];
                float v = trl_t2_scale(w, r, sb) * trl_reduce8(l);
                yr = sb ? yr + v : v;
            }
            y[(size_t)t * ldy + r] = yr;
        }
    }
}

static const trl_kernel_ops ref_i8_ops = {"ref", act_bytes_i8_ref, prepare_i8_ref, matmul_i8_ref, trl_t2_decode};
static const trl_kernel_ops ref_f32_ops = {"ref", trl_act_bytes_none, trl_prepare_float, matmul_f32_ref,
                                           trl_t2_decode};

const trl_kernel_ops *trl_ternary_ref(const trl_weight *w) {
    if (w->enc != TRL_ENC_T2) return NULL;
    return w->act_int8 ? &ref_i8_ops : &ref_f32_ops;
}
