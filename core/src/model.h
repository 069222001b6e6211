/* model.h - the model and context structures, private to the core. */
#ifndef TRL_MODEL_H
#define TRL_MODEL_H

#include "internal.h"
#include "kernels/kernels.h"

enum {
    TRL_LT_ATTN_NORM,
    TRL_LT_ATTN_Q,
    TRL_LT_ATTN_K,
    TRL_LT_ATTN_V,
    TRL_LT_ATTN_SUB_NORM,
    TRL_LT_ATTN_OUTPUT,
    TRL_LT_FFN_NORM,
    TRL_LT_FFN_GATE,
    TRL_LT_FFN_UP,
    TRL_LT_FFN_SUB_NORM,
    TRL_LT_FFN_DOWN,
    TRL_LT_COUNT
};

/* Rank slices of a factorised linear layer: y += U_s (V_s x) for s < active. */
typedef struct trl_lowrank {
    int32_t n_slices;
    trl_weight *v; /* (n_slices): [r_s, in] */
    trl_weight *u; /* (n_slices): [r_s, out], U transposed */
} trl_lowrank;

/* The most rows one rank slice may have (sizes the context's scratch). */
#define TRL_MAX_SLICE_RANK 256
#define TRL_MAX_SLICES 64

typedef struct trl_layer {
    trl_weight w[TRL_LT_COUNT];      /* matrices (unused slots for the norms); rows == 0: no base */
    trl_lowrank lr[TRL_LT_COUNT];    /* rank slices (n_slices == 0: none) */
    const float *norm[TRL_LT_COUNT]; /* norm vectors (unused slots for matrices) */
    int seen[TRL_LT_COUNT];
} trl_layer;

struct trl_model {
    trl_config cfg;
    trl_weight tok_embd; /* (vocab, dim) */
    trl_weight output;   /* (vocab, dim); a copy of tok_embd when tied */
    const float *output_norm; /* (dim) */
    trl_layer *layers;   /* (n_layers), in the same allocation as the model */
    int seen_global[3];
    size_t weight_bytes;
    uint8_t *expanded; /* t1 tensors expanded to t2, owned by the model (NULL if none) */
    int32_t max_slices; /* the most rank slices of any layer */
};

#endif
