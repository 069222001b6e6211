/* ternary.h - private to the t2 kernels (ref/, simd128/, x86/), their test and
 * the kernel benchmark: the scratch layout every int8-mode prepare() shares,
 * the scale lookup, and the float finishing steps of docs/FORMAT.md, written
 * once so every implementation rounds the same way.
 *
 * Numerics (docs/FORMAT.md, "Ternary"): a code u is read as T = u - 1 by
 * every kernel, the integer dot products and the float lanes alike, so even
 * the invalid code 3 (T = 2) gives the same bits everywhere. The integer dots
 * are exact for cols < 2^22. Scale blocks: one block of all columns for the
 * tensor / row / row_blocks axes, params.scale_blocks blocks of cols/k columns
 * (a multiple of 128) for col_blocks. Each block's result is
 *   int8:  (s_blk * (float)dot_blk) * (a / 127)
 *   float: s_blk * reduce8(lanes_blk)
 * and the block results are added left to right starting from the first one
 * (no 0.0f in front, so a lone -0.0f stays -0.0f). */
#ifndef TRL_KERNELS_TERNARY_H
#define TRL_KERNELS_TERNARY_H

#include <stddef.h>
#include <stdint.h>

#include "../internal.h"
#include "kernels.h"

/* ------------------------------------------------------------ shape helpers */

/* t2 blocks of 128 columns per row. */
static inline int trl_t2_nblk(const trl_weight *w) { return (int)(w->row_bytes / TRL_T2_BLOCK_BYTES); }
/* Scale blocks along the columns (1 unless col_blocks). */
static inline int trl_t2_nsb(const trl_weight *w) {
    return w->params.scale_axis == TRL_SCALE_COL_BLOCKS ? w->params.scale_blocks : 1;
}
/* t2 blocks per column scale block (the last one may be shorter only when nsb = 1). */
static inline int trl_t2_sb_blocks(const trl_weight *w) {
    return w->params.scale_axis == TRL_SCALE_COL_BLOCKS ? w->cols / w->params.scale_blocks / TRL_T2_BLOCK
                                                         : trl_t2_nblk(w);
}
/* The scale of row r, column scale block sb. */
static inline float trl_t2_scale(const trl_weight *w, int r, int sb) {
    switch (w->params.scale_axis) {
    case TRL_SCALE_ROW: return w->scales[r];
    case TRL_SCALE_ROW_BLOCKS: return w->scales[r / (w->rows / w->params.scale_blocks)];
    case TRL_SCALE_COL_BLOCKS: return w->scales[sb];
    default: return w->scales[0];
    }
}

/* int8 mode: y from the exact per-block dots of one (row, token). */
static inline float trl_t2_finish_i8(const trl_weight *w, int r, const int32_t *dot, int nsb, float qscale) {
    float y = (trl_t2_scale(w, r, 0) * (float)dot[0]) * qscale;
    for (int sb = 1; sb < nsb; sb++) y += (trl_t2_scale(w, r, sb) * (float)dot[sb]) * qscale;
    return y;
}

/* ------------------------------------------------------------ int8-mode scratch
 *
 * scratch, 64-byte aligned inside:
 *   q       (ntok, cols_pad) int8, zero past cols       -> act->q
 *   qscale  (ntok) float, a / 127                        -> act->qscale
 *   aux     (ntok) x aux_stride bytes                    -> act->aux
 *     int32 bsum[nsb]: sum of q over each column scale block (for dot(T,q) = dot(u,q) - sum(q))
 *     at TRL_T2_AUX_DESIGN: per-design data of design_bytes_per_col * cols_pad bytes */
#define TRL_T2_AUX_DESIGN 256 /* 64 int32 sums, the most scale blocks */

static inline int32_t trl_t2_cols_pad(const trl_weight *w) { return trl_t2_nblk(w) * TRL_T2_BLOCK; }
static inline size_t trl_t2_aux_stride(const trl_weight *w, size_t design_bytes_per_col) {
    return TRL_T2_AUX_DESIGN + ((design_bytes_per_col * (size_t)trl_t2_cols_pad(w) + 63) & ~(size_t)63);
}
static inline size_t trl_t2_act_bytes_i8(const trl_weight *w, int ntok, size_t design_bytes_per_col) {
    size_t q = ((size_t)ntok * (size_t)trl_t2_cols_pad(w) + 63) & ~(size_t)63;
    size_t qs = ((size_t)ntok * 4 + 63) & ~(size_t)63;
    return 64 + q + qs + (size_t)ntok * trl_t2_aux_stride(w, design_bytes_per_col);
}
/* The per-token int8 quantizer: trl_quantize_act_i8 or a SIMD version with the same results. */
typedef float (*trl_t2_quant_fn)(const float *x, int32_t cols, int32_t cols_pad, int8_t *q);
/* Quantize x, fill q, qscale and the block sums; the design data is left to the caller. */
void trl_t2_prepare_i8(const trl_weight *w, const float *x, int ntok, void *scratch, size_t design_bytes_per_col,
                       trl_t2_quant_fn quant, trl_act *act);
/* Rows per row block of the prefill loops: the block's codes (about 64 KiB) stay in
 * L2 while every token tile passes over them. A multiple of 16. */
static inline int trl_t2_row_block(const trl_weight *w) {
    size_t n = ((size_t)64 << 10) / w->row_bytes;
    return n < 16 ? 16 : (int)(n & ~(size_t)15);
}
static inline const int32_t *trl_t2_bsum(const trl_act *act, int t) {
    return (const int32_t *)(const void *)((const uint8_t *)act->aux + (size_t)t * act->aux_stride);
}
static inline void *trl_t2_design(const trl_act *act, int t) {
    return (uint8_t *)(uintptr_t)act->aux + (size_t)t * act->aux_stride + TRL_T2_AUX_DESIGN;
}

/* float mode, SIMD kernels: x copied per token into (ntok, cols_pad) floats,
 * zero past cols, so the inner loops have no tail; act->aux points at it. */
static inline size_t trl_t2_act_bytes_fpad(const trl_weight *w, int ntok) {
    return 64 + (size_t)ntok * (size_t)trl_t2_cols_pad(w) * 4;
}
void trl_t2_prepare_fpad(const trl_weight *w, const float *x, int ntok, void *scratch, trl_act *act);

/* decode() shared by all: out[i] = s * (float)T. */
void trl_t2_decode(const trl_weight *w, int row, int c0, int n, float *out);

/* ------------------------------------------------------------ variants */

#ifdef __wasm_simd128__
/* The SIMD128 designs for int8 activations (float activations use one kernel in all):
 *   MAD    unpack codes into i16 lanes, multiply-add against prescaled i16 activations
 *   LUT    transpose 16 rows, two codes = a 4-bit index into per-token tables of signed pair sums
 *   EXTMUL unpack codes into i8 lanes, i16x8.extmul against the int8 activations */
enum { TRL_T2_SIMD_MAD = 0, TRL_T2_SIMD_LUT = 1, TRL_T2_SIMD_EXTMUL = 2, TRL_T2_SIMD_RELAXED = 3 };
/* RELAXED (builds with TRL_RELAXED_SIMD only, see ternary_simd128.c): codes
 * unpacked into i8 lanes, i16x8.relaxed_dot_i8x16_i7x16_s against the int8
 * activations. */
#ifdef TRL_RELAXED_SIMD
#define TRL_T2_SIMD_NVARIANTS 4
#else
#define TRL_T2_SIMD_NVARIANTS 3
#endif
/* NULL if which is out of range or w is not t2. The float-mode ops are the same for every which. */
const trl_kernel_ops *trl_ternary_simd128_variant(const trl_weight *w, int which);
/* trl_quantize_act_i8 in SIMD128, the same bits (ternary_simd128.c). */
float trl_t2_quantize_simd128(const float *x, int32_t cols, int32_t cols_pad, int8_t *q);
/* Defined in ternary_simd128_lut.c. */
const trl_kernel_ops *trl_ternary_simd128_lut(const trl_weight *w);
#endif

#endif
