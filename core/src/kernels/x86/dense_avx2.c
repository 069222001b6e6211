/* dense_avx2.c - x86-64 AVX2 (+F16C) kernels for f32, f16 and q8_0, for native
 * builds (the converter evaluates packs natively). The 8 canonical lanes of
 * kernels.h are exactly one __m256, so results equal the reference bit for bit.
 * Compiled for AVX2 per function and used only when the CPU reports it. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <string.h>

#include "../../internal.h"
#include "../kernels.h"

#define TARGET __attribute__((target("avx2,f16c")))

TARGET static void decode_avx2(const trl_weight *w, int row, int c0, int n, float *out) {
    const uint8_t *r = w->data + (size_t)row * w->row_bytes;
    int i = 0;
    switch (w->enc) {
    case TRL_ENC_F32: memcpy(out, r + (size_t)c0 * 4, (size_t)n * 4); return;
    case TRL_ENC_F16: {
        const uint8_t *p = r + (size_t)c0 * 2;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
        for (; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = trl_f16_to_f32(h);
        }
        return;
    }
    case TRL_ENC_Q8_0:
        for (; i < n; i += TRL_Q8_0_BLOCK) {
            const uint8_t *b = r + (size_t)((c0 + i) / TRL_Q8_0_BLOCK) * TRL_Q8_0_BLOCK_BYTES;
            uint16_t dh;
            memcpy(&dh, b, 2);
            float d = trl_f16_to_f32(dh);
            int m = n - i < TRL_Q8_0_BLOCK ? n - i : TRL_Q8_0_BLOCK;
            if (m == TRL_Q8_0_BLOCK) {
                __m256 vd = _mm256_set1_ps(d);
                for (int k = 0; k < 32; k += 8) {
                    __m128i q8 = _mm_loadl_epi64((const __m128i *)(b + 2 + k));
                    __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
                    _mm256_storeu_ps(out + i + k, _mm256_mul_ps(vd, q));
                }
            } else {
                for (int j = 0; j < m; j++) out[i + j] = d * (float)(int8_t)b[2 + j];
            }
        }
        return;
    default: memset(out, 0, (size_t)n * 4); return;
    }
}

TARGET static void matmul_avx2(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const float *x = act->x;
    const int ntok = act->ntok;
    float wbuf[TRL_KCHUNK] __attribute__((aligned(32)));
    float xpad[8] __attribute__((aligned(32)));
    __m256 acc[TRL_KMAX_TOKENS];
    const int cols = w->cols;
    for (int r = r0; r < r1; r++) {
        for (int t = 0; t < ntok; t++) acc[t] = _mm256_setzero_ps();
        for (int c0 = 0; c0 < cols; c0 += TRL_KCHUNK) {
            int n = cols - c0 < TRL_KCHUNK ? cols - c0 : TRL_KCHUNK;
            decode_avx2(w, r, c0, n, wbuf);
            int n8 = n & ~7;
            for (int i = n; i < ((n + 7) & ~7); i++) wbuf[i] = 0.0f;
            int t = 0;
            /* two tokens at a time share each weight load */
            for (; t + 2 <= ntok; t += 2) {
                const float *x0 = x + (size_t)t * cols + c0, *x1 = x0 + cols;
                __m256 a0 = acc[t], a1 = acc[t + 1];
                for (int i = 0; i < n8; i += 8) {
                    __m256 wv = _mm256_load_ps(wbuf + i);
                    a0 = _mm256_add_ps(a0, _mm256_mul_ps(wv, _mm256_loadu_ps(x0 + i)));
                    a1 = _mm256_add_ps(a1, _mm256_mul_ps(wv, _mm256_loadu_ps(x1 + i)));
                }
                acc[t] = a0, acc[t + 1] = a1;
            }
            for (; t < ntok; t++) {
                const float *xt = x + (size_t)t * cols + c0;
                __m256 a = acc[t];
                for (int i = 0; i < n8; i += 8)
                    a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_load_ps(wbuf + i), _mm256_loadu_ps(xt + i)));
                acc[t] = a;
            }
            if (n8 < n) {
                __m256 wv = _mm256_load_ps(wbuf + n8);
                for (t = 0; t < ntok; t++) {
                    const float *xt = x + (size_t)t * cols + c0;
                    for (int l = 0; l < 8; l++) xpad[l] = n8 + l < n ? xt[n8 + l] : 0.0f;
                    acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(wv, _mm256_load_ps(xpad)));
                }
            }
        }
        for (int t = 0; t < ntok; t++) {
            float l[8];
            _mm256_storeu_ps(l, acc[t]);
            y[(size_t)t * ldy + r] = trl_reduce8(l);
        }
    }
}

/* q8_0 x q8_0 (see ref/dense_ref.c): |w| x sign(x, w) with maddubs (exact:
 * every pair sum <= 2 * 127 * 127), madd to i32, a horizontal sum per block,
 * then the float terms in block order. */
TARGET static inline int32_t block_dot_avx2(const uint8_t *w, const uint8_t *x) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 2)), xv = _mm256_loadu_si256((const __m256i *)(x + 2));
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    __m256i s = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h);
}

TARGET static void matmul_q8_avx2(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1) {
    const int nb = (w->cols + TRL_Q8_0_BLOCK - 1) / TRL_Q8_0_BLOCK;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < act->ntok; t++) {
            const uint8_t *xr = (const uint8_t *)act->aux + (size_t)t * act->aux_stride;
            const float *dx = act->qscale + (size_t)t * nb;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                const uint8_t *wb = row + (size_t)b * TRL_Q8_0_BLOCK_BYTES;
                uint16_t dh;
                memcpy(&dh, wb, 2);
                int32_t dot = block_dot_avx2(wb, xr + (size_t)b * TRL_Q8_0_BLOCK_BYTES);
                acc += (float)dot * (trl_h2f_finite(dh) * dx[b]);
            }
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

static const trl_kernel_ops avx2_ops = {"avx2", trl_act_bytes_none, trl_prepare_float, matmul_avx2, decode_avx2};
static const trl_kernel_ops avx2_q8_ops = {"avx2", trl_act_bytes_q8_0, trl_prepare_q8_0, matmul_q8_avx2, decode_avx2};

const trl_kernel_ops *trl_dense_avx2(const trl_weight *w) {
    switch (w->enc) {
    case TRL_ENC_F32:
    case TRL_ENC_F16: return &avx2_ops;
    case TRL_ENC_Q8_0: return &avx2_q8_ops;
    default: return NULL;
    }
}
#endif
