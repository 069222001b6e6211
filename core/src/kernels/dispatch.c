/* dispatch.c - pick the fastest kernels this build has, per encoding. */
#include "kernels.h"

const trl_kernel_ops *trl_kernels_best(trl_encoding e) {
#ifdef __wasm_simd128__
    const trl_kernel_ops *k = trl_kernels_simd128(e);
    if (k) return k;
#endif
#ifdef TRL_HAVE_X86_KERNELS
    const trl_kernel_ops *x = trl_kernels_avx2(e);
    if (x) return x;
#endif
    return trl_kernels_ref(e);
}

void trl_matmul(const trl_weight *w, const float *x, int ntok, float *y, int ldy) {
    const trl_kernel_ops *k = trl_kernels_best(w->enc);
    for (int t0 = 0; t0 < ntok; t0 += TRL_KMAX_TOKENS) {
        int nt = ntok - t0 < TRL_KMAX_TOKENS ? ntok - t0 : TRL_KMAX_TOKENS;
        k->matmul(w, x + (size_t)t0 * w->cols, nt, y + (size_t)t0 * ldy, ldy, 0, w->rows);
    }
}
