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

typedef struct trl_layer {
    trl_weight w[TRL_LT_COUNT];      /* matrices (unused slots for the norms) */
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
};

#endif
