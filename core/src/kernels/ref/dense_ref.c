/* dense_ref.c - scalar reference kernels for the float encodings (f32, f16,
 * q8_0): the oracle every SIMD kernel is tested against. */
#include <string.h>

#include "../../internal.h"
#include "../kernels.h"

/* Decode columns [c0, c0+n) of one row; c0 is a multiple of TRL_KCHUNK. */
static void decode_ref(const trl_weight *w, int row, int c0, int n, float *out) {
    const uint8_t *r = w->data + (size_t)row * w->row_bytes;
    switch (w->enc) {
    case TRL_ENC_F32: memcpy(out, r + (size_t)c0 * 4, (size_t)n * 4); break;
    case TRL_ENC_F16:
        for (int i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, r + 2 * (size_t)(c0 + i), 2);
            out[i] = trl_f16_to_f32(h);
        }
        break;
    case TRL_ENC_Q8_0:
        for (int i = 0; i < n; i += TRL_Q8_0_BLOCK) {
            trl_block_q8_0 b;
            memcpy(&b, r + (size_t)((c0 + i) / TRL_Q8_0_BLOCK) * TRL_Q8_0_BLOCK_BYTES, sizeof b);
            float d = trl_f16_to_f32(b.d);
            int m = n - i < TRL_Q8_0_BLOCK ? n - i : TRL_Q8_0_BLOCK;
            for (int j = 0; j < m; j++) out[i + j] = d * (float)b.qs[j];
        }
        break;
    default: memset(out, 0, (size_t)n * 4); break;
    }
}

static void matmul_ref(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const float *x = act->x;
    const int ntok = act->ntok;
    float wbuf[TRL_KCHUNK];
    float acc[TRL_KMAX_TOKENS][8];
    const int cols = w->cols;
    for (int r = r0; r < r1; r++) {
        memset(acc, 0, sizeof(float) * 8 * (size_t)ntok);
        for (int c0 = 0; c0 < cols; c0 += TRL_KCHUNK) {
            int n = cols - c0 < TRL_KCHUNK ? cols - c0 : TRL_KCHUNK;
            decode_ref(w, r, c0, n, wbuf);
            int n8 = (n + 7) & ~7;
            for (int i = n; i < n8; i++) wbuf[i] = 0.0f;
            for (int t = 0; t < ntok; t++) {
                const float *xt = x + (size_t)t * cols + c0;
                float *a = acc[t];
                int i = 0;
                for (; i + 8 <= n; i += 8)
                    for (int l = 0; l < 8; l++) a[l] += wbuf[i + l] * xt[i + l];
                if (i < n8) { /* zero-padded tail: the padding contributes 0 * 0 */
                    for (int l = 0; l < 8; l++) a[l] += wbuf[i + l] * (i + l < n ? xt[i + l] : 0.0f);
                }
            }
        }
        for (int t = 0; t < ntok; t++) y[(size_t)t * ldy + r] = trl_reduce8(acc[t]);
    }
}

/* q8_0 weights x q8_0 activations: exact integer dot per block of 32, then
 * acc += (float)dot * (d_w * d_x), block after block (ggml's vec_dot_q8_0_q8_0). */
static void matmul_q8_ref(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int nb = (w->cols + TRL_Q8_0_BLOCK - 1) / TRL_Q8_0_BLOCK;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < act->ntok; t++) {
            const trl_block_q8_0 *xb = (const trl_block_q8_0 *)(const void *)((const char *)act->aux + (size_t)t * act->aux_stride);
            const float *dx = act->qscale + (size_t)t * nb;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                trl_block_q8_0 wb;
                memcpy(&wb, row + (size_t)b * TRL_Q8_0_BLOCK_BYTES, sizeof wb);
                int32_t dot = 0;
                for (int i = 0; i < TRL_Q8_0_BLOCK; i++) dot += (int32_t)wb.qs[i] * xb[b].qs[i];
                acc += (float)dot * (trl_f16_to_f32(wb.d) * dx[b]);
            }
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

static const trl_kernel_ops ref_ops = {"ref", trl_act_bytes_none, trl_prepare_float, matmul_ref, decode_ref};
static const trl_kernel_ops ref_q8_ops = {"ref", trl_act_bytes_q8_0, trl_prepare_q8_0, matmul_q8_ref, decode_ref};

const trl_kernel_ops *trl_dense_ref(const trl_weight *w) {
    switch (w->enc) {
    case TRL_ENC_F32:
    case TRL_ENC_F16: return &ref_ops;
    case TRL_ENC_Q8_0: return &ref_q8_ops;
    default: return NULL;
    }
}
