/* kernels.h - the linear-layer kernel interface, private to the core.
 *
 * Every weight encoding provides the same two operations, in a scalar
 * reference version (ref/, always built, the oracle of the tests) and SIMD
 * versions (simd128/, x86/ later) with the same results:
 *
 *   matmul:  y[t*ldy + r] = dot(W[r, :], x[t*cols : (t+1)*cols])
 *            for tokens t in [0, ntok) and rows r in [r0, r1)
 *   row:     decode row r of W to floats (embedding lookup)
 *
 * The row range lets threads split work by output rows; ntok > 1 lets prefill
 * reuse each decoded weight chunk for a block of tokens.
 *
 * Float encodings (f32, f16, q8_0) share one canonical summation order, so
 * every implementation gives the same bits: the dot of the dequantized row
 * (every f16 and every d*q is exact in f32) with x, accumulated in 8 lanes
 * (element i into lane i % 8, the row zero-padded to a multiple of 8), then
 * reduced as ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)). Compiled with
 * -ffp-contract=off: no FMA, on any platform. */
#ifndef TRL_KERNELS_H
#define TRL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "trillium.h"

typedef struct trl_weight {
    trl_encoding enc;
    int32_t rows; /* out features */
    int32_t cols; /* in features */
    size_t row_bytes;
    const uint8_t *data;
} trl_weight;

/* Decoded weights are processed in chunks of this many columns (a multiple of 8
 * and of the q8_0 block), so the canonical lanes line up across chunks. */
#define TRL_KCHUNK 256
/* The most tokens one matmul call takes (the caller splits larger batches). */
#define TRL_KMAX_TOKENS 64

typedef void (*trl_matmul_fn)(const trl_weight *w, const float *x, int ntok, float *y, int ldy, int r0,
                              int r1);
typedef void (*trl_decode_fn)(const trl_weight *w, int row, int c0, int n, float *out);

typedef struct trl_kernel_ops {
    const char *name;      /* "ref", "simd128", ... */
    trl_matmul_fn matmul;
    trl_decode_fn decode;  /* columns [c0, c0+n) of row `row` */
} trl_kernel_ops;

/* Reference kernels (always available). */
const trl_kernel_ops *trl_kernels_ref(trl_encoding e);
/* The fastest kernels this build has for an encoding (may be the reference). */
const trl_kernel_ops *trl_kernels_best(trl_encoding e);
#ifdef __wasm_simd128__
const trl_kernel_ops *trl_kernels_simd128(trl_encoding e);
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRL_HAVE_X86_KERNELS 1
/* NULL when the CPU lacks AVX2/F16C. */
const trl_kernel_ops *trl_kernels_avx2(trl_encoding e);
#endif

/* y = W x for all tokens and rows, with the best kernels. */
void trl_matmul(const trl_weight *w, const float *x, int ntok, float *y, int ldy);

/* The canonical 8-lane reduction. */
static inline float trl_reduce8(const float l[8]) {
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

#endif
