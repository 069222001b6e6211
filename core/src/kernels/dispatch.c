/* dispatch.c - pick the kernels for a weight: the fastest this build and CPU
 * have, else the scalar reference. */
#include <math.h>
#include <string.h>

#include "../internal.h"
#include "kernels.h"

const trl_kernel_ops *trl_kernels_ref(const trl_weight *w) {
    switch (w->enc) {
    case TRL_ENC_F32:
    case TRL_ENC_F16:
    case TRL_ENC_Q8_0: return trl_dense_ref(w);
    case TRL_ENC_T2: return trl_ternary_ref(w);
    case TRL_ENC_BCQ: return trl_bcq_ref(w);
    default: return NULL; /* t1 is expanded to t2 before any kernel sees it */
    }
}

#ifdef __wasm_simd128__
const trl_kernel_ops *trl_kernels_simd128(const trl_weight *w) {
    switch (w->enc) {
    case TRL_ENC_F32:
    case TRL_ENC_F16:
    case TRL_ENC_Q8_0: return trl_dense_simd128(w);
    case TRL_ENC_T2: return trl_ternary_simd128(w);
    case TRL_ENC_BCQ: return trl_bcq_simd128(w);
    default: return NULL;
    }
}
#endif

#ifdef TRL_HAVE_X86_KERNELS
#include <cpuid.h>

/* F16C is CPUID leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c"). */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

const trl_kernel_ops *trl_kernels_avx2(const trl_weight *w) {
    if (!__builtin_cpu_supports("avx2") || !cpu_has_f16c()) return NULL;
    switch (w->enc) {
    case TRL_ENC_F32:
    case TRL_ENC_F16:
    case TRL_ENC_Q8_0: return trl_dense_avx2(w);
    case TRL_ENC_T2: return trl_ternary_avx2(w);
    case TRL_ENC_BCQ: return trl_bcq_avx2(w);
    default: return NULL;
    }
}
#endif

const trl_kernel_ops *trl_kernels_best(const trl_weight *w) {
    const trl_kernel_ops *k = NULL;
#ifdef __wasm_simd128__
    k = trl_kernels_simd128(w);
#endif
#ifdef TRL_HAVE_X86_KERNELS
    if (!k) k = trl_kernels_avx2(w);
#endif
    return k ? k : trl_kernels_ref(w);
}

void trl_matmul(const trl_weight *w, const float *x, int ntok, float *y, int ldy, void *scratch) {
    const trl_kernel_ops *k = trl_kernels_best(w);
    for (int t0 = 0; t0 < ntok; t0 += TRL_KMAX_TOKENS) {
        int nt = ntok - t0 < TRL_KMAX_TOKENS ? ntok - t0 : TRL_KMAX_TOKENS;
        trl_act act;
        k->prepare(w, x + (size_t)t0 * w->cols, nt, scratch, &act);
        k->matmul(w, &act, y + (size_t)t0 * ldy, ldy, 0, w->rows);
    }
}

/* ------------------------------------------------------------ shared prepare helpers */

/* The int8 per-token quantizer of docs/FORMAT.md, in parts shared by the true
 * int8 path and the dense "int8-rounded floats" path. act_scale: f = 127/a (0
 * when a < TRL_ACT_MIN_ABSMAX), returns a/127 (or 0). act_round: roundf and
 * clamp to [-128, 127], written so that NaN (from a non-finite x) lands on -128. */
static float act_scale(const float *x, int32_t n, float *f) {
    float amax = 0.0f;
    for (int32_t i = 0; i < n; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > amax) amax = a;
    }
    if (amax < TRL_ACT_MIN_ABSMAX) { /* 0, or so small that 127/amax overflows */
        *f = 0.0f;
        return 0.0f;
    }
    *f = 127.0f / amax;
    return amax / 127.0f;
}

static inline float act_round(float v) {
    v = roundf(v);
    return v > 127.0f ? 127.0f : v >= -128.0f ? v : -128.0f;
}

float trl_quantize_act_i8(const float *x, int32_t cols, int32_t cols_pad, int8_t *q) {
    float f;
    const float d = act_scale(x, cols, &f);
    for (int32_t i = 0; i < cols; i++) q[i] = (int8_t)(int)act_round(x[i] * f);
    memset(q + cols, 0, (size_t)(cols_pad - cols));
    return d;
}

/* Float-activation kernels need no scratch, unless the model quantizes its
 * activations (BitNet's act_quant int8) and this weight is dense: then the
 * kernel reads the int8-rounded values q * a/127 as floats. */
size_t trl_act_bytes_none(const trl_weight *w, int ntok) {
    return w->act_int8 ? (size_t)ntok * (size_t)w->cols * sizeof(float) : 0;
}

void trl_prepare_float(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    memset(act, 0, sizeof *act);
    act->ntok = ntok;
    act->cols = w->cols;
    act->x = x;
    if (!w->act_int8) return;
    float *o = scratch;
    for (int t = 0; t < ntok; t++) {
        const float *xt = x + (size_t)t * w->cols;
        float *ot = o + (size_t)t * w->cols;
        float f;
        const float d = act_scale(xt, w->cols, &f);
        for (int32_t i = 0; i < w->cols; i++) ot[i] = act_round(xt[i] * f) * d;
    }
    act->x = o;
}

size_t trl_act_bytes_q8_0(const trl_weight *w, int ntok) {
    const size_t nb = ((size_t)w->cols + TRL_Q8_0_BLOCK - 1) / TRL_Q8_0_BLOCK;
    const size_t fq = (trl_act_bytes_none(w, ntok) + 63) / 64 * 64;
    return fq + (size_t)ntok * nb * (sizeof(trl_block_q8_0) + sizeof(float)) + 64;
}

void trl_prepare_q8_0(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act) {
    trl_prepare_float(w, x, ntok, scratch, act); /* act->x: x, or its int8 rounding in scratch */
    const int cols = w->cols, nb = (cols + TRL_Q8_0_BLOCK - 1) / TRL_Q8_0_BLOCK;
    const size_t fq = (trl_act_bytes_none(w, ntok) + 63) / 64 * 64;
    float *dx = (float *)(void *)((char *)scratch + fq);
    trl_block_q8_0 *blk = (trl_block_q8_0 *)(void *)(dx + (size_t)ntok * (size_t)nb);
    for (int t = 0; t < ntok; t++)
        for (int b = 0; b < nb; b++) {
            const int c0 = b * TRL_Q8_0_BLOCK, n = cols - c0 < TRL_Q8_0_BLOCK ? cols - c0 : TRL_Q8_0_BLOCK;
            trl_block_q8_0 *o = &blk[(size_t)t * nb + b];
            trl_quantize_block_q8_0(act->x + (size_t)t * cols + c0, n, o);
            dx[(size_t)t * nb + b] = trl_f16_to_f32(o->d);
        }
    act->aux = blk;
    act->aux_stride = (size_t)nb * sizeof(trl_block_q8_0);
    act->qscale = dx;
}

void trl_lowrank_accumulate(const trl_weight *u, const float *t, int nt, float *y, int ldy, int ch0, int ch1) {
    const int r = u->rows, out = u->cols;
    const trl_kernel_ops *uk = trl_kernels_best(u);
    float ub[4][TRL_KCHUNK];
    for (int ch = ch0; ch < ch1; ch++) {
        const int o0 = ch * TRL_KCHUNK, n = out - o0 < TRL_KCHUNK ? out - o0 : TRL_KCHUNK;
        /* four rank components per pass over y: each element still adds them in k order */
        for (int k0 = 0; k0 < r; k0 += 4) {
            const int m = r - k0 < 4 ? r - k0 : 4;
            for (int j = 0; j < m; j++) uk->decode(u, k0 + j, o0, n, ub[j]);
            for (int tt = 0; tt < nt; tt++) {
                const float *tk = t + (size_t)tt * r + k0;
                float *yt = y + (size_t)tt * ldy + o0;
                if (m == 4) {
                    const float t0 = tk[0], t1 = tk[1], t2 = tk[2], t3 = tk[3];
                    for (int i = 0; i < n; i++) {
                        float a = yt[i];
                        a += ub[0][i] * t0;
                        a += ub[1][i] * t1;
                        a += ub[2][i] * t2;
                        a += ub[3][i] * t3;
                        yt[i] = a;
                    }
                } else {
                    for (int j = 0; j < m; j++)
                        for (int i = 0; i < n; i++) yt[i] += ub[j][i] * tk[j];
                }
            }
        }
    }
}
