/* kernels.h - the linear-layer kernel interface, private to the core.
 *
 * Every weight encoding provides the same operations, in a scalar reference
 * version (ref/, always built, the oracle of the tests) and SIMD versions
 * (simd128/, x86/) with the same results:
 *
 *   prepare: turn float activations x (ntok, cols) into what the kernel reads
 *            (int8 quantized rows, lookup tables, ...) in caller-provided
 *            scratch of act_bytes(w, ntok) bytes. Done once per matmul and
 *            shared by every row range (so threads never repeat it).
 *   matmul:  y[t*ldy + r] = dot(W[r, :], x_t) for tokens t in [0, act->ntok)
 *            and rows r in [r0, r1).
 *   decode:  columns [c0, c0+n) of row r as floats (embedding lookup, tests);
 *            c0 a multiple of TRL_KCHUNK.
 *
 * The row range lets threads split work by output rows; ntok > 1 lets prefill
 * reuse each weight load for a block of tokens.
 *
 * Float encodings (f32, f16, q8_0, ternary with float activations) share one
 * canonical summation order, so every implementation gives the same bits: the
 * dot of the dequantized row (every f16, d*q, and ternary value is exact in f32)
 * with x, accumulated in 8 lanes (element i into lane i % 8, the row
 * zero-padded to a multiple of 8), then reduced as
 * ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)). Integer encodings (ternary with int8
 * activations, bcq) accumulate exactly in integers, then apply their float
 * factors in the order docs/FORMAT.md gives. Compiled with -ffp-contract=off:
 * no FMA, on any platform. */
#ifndef TRL_KERNELS_H
#define TRL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "trillium.h"

typedef struct trl_weight {
    trl_encoding enc;
    int32_t rows;  /* out features */
    int32_t cols;  /* in features */
    size_t row_bytes;
    const uint8_t *data;   /* rows * row_bytes bytes of codes / values */
    trl_enc_params params;
    const float *scales;   /* t2: n_scales scales (after the codes); else NULL */
    int32_t n_scales;
    int32_t act_int8;      /* t2: 1 = BitNet int8 activations, 0 = float activations */
} trl_weight;

/* Activations as prepared for one matmul call. */
typedef struct trl_act {
    int ntok;
    int32_t cols;
    const float *x;      /* (ntok, cols) the float activations, always set */
    const int8_t *q;     /* (ntok, cols_pad) int8 activations, or NULL */
    const float *qscale; /* (ntok) max|x| / 127 per token, with q */
    const void *aux;     /* encoding-specific (lookup tables, partial sums), or NULL */
    size_t aux_stride;   /* bytes of aux per token */
} trl_act;

/* Decoded weights are processed in chunks of this many columns (a multiple of 8,
 * of the q8_0 block and of the t2 block), so the canonical lanes line up across chunks. */
#define TRL_KCHUNK 256
/* The most tokens one matmul call takes (the caller splits larger batches). */
#define TRL_KMAX_TOKENS 64
/* Upper bound of act_bytes per token and column, for every encoding: the context
 * sizes its scratch from the config alone with it (tests check each act_bytes). */
#define TRL_ACT_BYTES_PER_COL 24
#define TRL_ACT_BYTES_PER_TOKEN 256
static inline size_t trl_act_bytes_bound(int32_t max_cols, int ntok) {
    return (size_t)ntok * ((size_t)(max_cols + 256) * TRL_ACT_BYTES_PER_COL + TRL_ACT_BYTES_PER_TOKEN);
}

typedef size_t (*trl_act_bytes_fn)(const trl_weight *w, int ntok);
typedef void (*trl_prepare_fn)(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act);
typedef void (*trl_matmul_fn)(const trl_weight *w, const trl_act *act, float *y, int ldy, int r0, int r1);
typedef void (*trl_decode_fn)(const trl_weight *w, int row, int c0, int n, float *out);

typedef struct trl_kernel_ops {
    const char *name;         /* "ref", "simd128", "avx2", "ref-lut", ... */
    trl_act_bytes_fn act_bytes;
    trl_prepare_fn prepare;
    trl_matmul_fn matmul;
    trl_decode_fn decode;
} trl_kernel_ops;

/* Reference kernels (always available), per encoding. NULL if none. */
const trl_kernel_ops *trl_kernels_ref(const trl_weight *w);
/* The fastest kernels this build has for a weight (may be the reference). */
const trl_kernel_ops *trl_kernels_best(const trl_weight *w);
#ifdef __wasm_simd128__
const trl_kernel_ops *trl_kernels_simd128(const trl_weight *w);
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRL_HAVE_X86_KERNELS 1
/* NULL when the CPU lacks AVX2/F16C or the encoding has no AVX2 kernel. */
const trl_kernel_ops *trl_kernels_avx2(const trl_weight *w);
#endif

/* Per-encoding tables, one function each, defined in the encoding's files. */
const trl_kernel_ops *trl_dense_ref(const trl_weight *w);   /* f32, f16, q8_0 */
const trl_kernel_ops *trl_ternary_ref(const trl_weight *w); /* t2 */
const trl_kernel_ops *trl_bcq_ref(const trl_weight *w);     /* bcq */
#ifdef __wasm_simd128__
const trl_kernel_ops *trl_dense_simd128(const trl_weight *w);
const trl_kernel_ops *trl_ternary_simd128(const trl_weight *w);
const trl_kernel_ops *trl_bcq_simd128(const trl_weight *w);
#endif
#ifdef TRL_HAVE_X86_KERNELS
const trl_kernel_ops *trl_dense_avx2(const trl_weight *w);
const trl_kernel_ops *trl_ternary_avx2(const trl_weight *w);
const trl_kernel_ops *trl_bcq_avx2(const trl_weight *w);
#endif

/* A token whose max|x| is below this quantizes to all zeros (so 127 / max|x|
 * never overflows); docs/FORMAT.md states the same. */
#define TRL_ACT_MIN_ABSMAX 1e-30f

/* Shared helpers for prepare(): the int8 per-token quantizer of docs/FORMAT.md
 * (q = clamp(roundf(x * 127 / a), -128, 127), padded with zeros to cols_pad),
 * returning a / 127. */
float trl_quantize_act_i8(const float *x, int32_t cols, int32_t cols_pad, int8_t *q);
/* prepare() of the q8_0 kernels: each token's activations quantized per block
 * of 32 columns with the q8_0 quantizer (ggml's Q8_0 x Q8_0 numerics, see
 * docs/FORMAT.md): act->aux = (ntok, ceil(cols/32)) trl_block_q8_0 (stride
 * act->aux_stride bytes per token), act->qscale = their scales as f32, same
 * shape. With act_int8 the int8 rounding of the model comes first. */
size_t trl_act_bytes_q8_0(const trl_weight *w, int ntok);
void trl_prepare_q8_0(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act);

/* prepare() for kernels that read the float activations as they are. */
size_t trl_act_bytes_none(const trl_weight *w, int ntok);
void trl_prepare_float(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act);

/* y = W x for all tokens and rows with the best kernels; scratch holds
 * trl_act_bytes_bound(w->cols, min(ntok, TRL_KMAX_TOKENS)) bytes. */
void trl_matmul(const trl_weight *w, const float *x, int ntok, float *y, int ldy, void *scratch);

/* The U half of a rank slice: y[t][o] += sum_k U^T[k][o] * t[t][k], k in order,
 * for the output columns of chunks [ch0, ch1) of TRL_KCHUNK (threads split by
 * chunks). u is [r, out] (U transposed), t is (nt, r). */
void trl_lowrank_accumulate(const trl_weight *u, const float *t, int nt, float *y, int ldy, int ch0, int ch1);

/* The canonical 8-lane reduction. */
static inline float trl_reduce8(const float l[8]) {
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

#endif
