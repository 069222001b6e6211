/* internal.h - private declarations shared by the core's source files. */
#ifndef TRL_INTERNAL_H
#define TRL_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trillium.h"

#define TRL_Q8_0_BLOCK 32
#define TRL_Q8_0_BLOCK_BYTES 34

#define TRL_T2_BLOCK 128      /* columns per t2 block */
#define TRL_T2_BLOCK_BYTES 32 /* 4 codes per byte */

/* One code (T + 1, in 0..2) of a t2 row: set and get (docs/FORMAT.md layout),
 * and of a t1 row: get (5 trits per byte, base 3, least significant first). */
static inline void trl_t2_set_code(uint8_t *row, uint64_t c, unsigned u) {
    uint8_t *b = row + (c / TRL_T2_BLOCK) * TRL_T2_BLOCK_BYTES + c % 32;
    unsigned sh = (unsigned)(2 * ((c % TRL_T2_BLOCK) / 32));
    *b = (uint8_t)((*b & ~(3u << sh)) | (u << sh));
}
static inline unsigned trl_t2_get_code(const uint8_t *row, uint64_t c) {
    return (row[(c / TRL_T2_BLOCK) * TRL_T2_BLOCK_BYTES + c % 32] >> (2 * ((c % TRL_T2_BLOCK) / 32))) & 3u;
}
static inline unsigned trl_t1_get_code(const uint8_t *row, uint64_t c) {
    unsigned v = row[c / 5];
    for (uint64_t k = c % 5; k > 0; k--) v /= 3;
    return v % 3;
}

/* Bytes of one bcq row with these parameters; 0 if invalid. */
size_t trl_bcq_row_bytes(const trl_enc_params *p, uint64_t cols);
/* Number of f32 scales of a ternary matrix; -1 if the axis is invalid. */
int64_t trl_ternary_n_scales(const trl_enc_params *p, uint64_t rows);

typedef struct trl_block_q8_0 {
    uint16_t d;                  /* f16 scale */
    int8_t qs[TRL_Q8_0_BLOCK];   /* quants */
} trl_block_q8_0;

/* The q8_0 quantizer of docs/FORMAT.md for one block of n <= 32 values (the
 * rest zero-padded): weights in the converter, activations in the q8_0 kernels. */
void trl_quantize_block_q8_0(const float *x, int n, trl_block_q8_0 *b);

/* f16 -> f32 for finite values, inline (the kernels' inner loops). */
static inline float trl_h2f_finite(uint16_t h) {
    uint32_t mag = (uint32_t)(h & 0x7FFF) << 13, sign = (uint32_t)(h & 0x8000) << 16;
    float f;
    __builtin_memcpy(&f, &mag, 4);
    f *= 0x1p112f;
    uint32_t u;
    __builtin_memcpy(&u, &f, 4);
    u |= sign;
    __builtin_memcpy(&f, &u, 4);
    return f;
}

/* Fill err (if not NULL) and return s. vsnprintf formats into memory only: no I/O. */
trl_status trl_set_error(trl_error *err, trl_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Jobs of fewer multiply-adds than `work` run on the calling thread (default
 * 2^18; negative restores it). For tests, which use tiny models but must still
 * exercise the threads. */
void trl_ctx_set_mt_min_work(trl_ctx *c, int64_t work);

/* Called before each linear layer of the blocks with its input: `nt` rows of
 * `cols` floats (layer l, lt a TRL_LT_* index of model.h). The converter's
 * activation statistics (trillium-convert --calib); NULL turns it off. */
typedef void (*trl_linear_observer)(void *user, int l, int lt, const float *x, int nt, int cols);
void trl_ctx_set_linear_observer(trl_ctx *c, trl_linear_observer fn, void *user);

/* Deterministic transcendental functions: the same bits on every platform
 * (native libm and the wasm libc differ in the last ulp), so the sampler's
 * "same seed, same text" holds everywhere. */
float trl_expf(float x);
/* y[i] = trl_expf(x[i]) for i < n, four at a time with SIMD (same bits); y may be x. */
void trl_expf_n(float *y, const float *x, size_t n);

#endif
