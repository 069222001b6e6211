/*
 * trillium.h - the public C API of Trillium's inference core.
 *
 * The core runs LLaMA-family and BitNet b1.58 language models from weights the
 * caller already holds in memory. It never reads files, keeps no global state,
 * and sizes every allocation before it makes it.
 *
 * Usage:
 *
 *     trl_config cfg;                       // from the pack manifest's "config"
 *     trl_error err;
 *     if (trl_config_from_json(json, json_len, &cfg, &err) != TRL_OK) fail(err.msg);
 *     trl_tensor t[] = {{"token_embd.weight", TRL_ENC_F32, {vocab, dim}, bytes, nbytes}, ...};
 *     trl_model *m;
 *     if (trl_model_create(&cfg, t, n, &m, &err) != TRL_OK) fail(err.msg);
 *     trl_ctx_params cp = trl_ctx_default_params();
 *     trl_ctx *ctx;
 *     trl_ctx_create(m, &cp, &ctx, &err);
 *     trl_ctx_prefill(ctx, prompt_ids, n_prompt, NULL);   // batched: one matmul per layer
 *     const float *logits = trl_ctx_logits(ctx);            // (vocab) for the last position
 *     trl_ctx_decode(ctx, next_id);                          // one token
 *     trl_ctx_free(ctx); trl_model_free(m);
 *
 * Ownership: tensor bytes and tokenizer blobs belong to the caller and must
 * outlive the model / tokenizer made from them. Every handle is freed with its
 * *_free function; *_free(NULL) is a no-op. Functions that create a handle
 * report failure in a trl_error the caller provides (may be NULL); functions
 * on a handle keep their last error message on it (trl_*_last_error).
 */
#ifndef TRILLIUM_H
#define TRILLIUM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRL_VERSION_MAJOR 0
#define TRL_VERSION_MINOR 1
#define TRL_VERSION_PATCH 0
#define TRL_PACK_FORMAT_VERSION 3 /* the newest docs/FORMAT.md version this core reads (it reads 1..3) */

/* ---------------------------------------------------------------- status */

typedef enum trl_status {
    TRL_OK = 0,
    TRL_ERR_INVALID_ARG = 1,  /* a NULL, negative or out-of-range argument */
    TRL_ERR_BAD_CONFIG = 2,   /* impossible dimensions, unknown architecture */
    TRL_ERR_BAD_TENSOR = 3,   /* missing, unknown, wrong shape / size / encoding */
    TRL_ERR_BAD_FORMAT = 4,   /* malformed bytes: JSON, tokenizer blob, ... */
    TRL_ERR_NO_MEMORY = 5,    /* an allocation failed (its size is in the message) */
    TRL_ERR_CONTEXT_FULL = 6, /* more tokens than the context length */
    TRL_ERR_UNSUPPORTED = 7   /* valid but not implemented (e.g. a future encoding) */
} trl_status;

/* A static, never-NULL string for a status code. */
const char *trl_status_str(trl_status s);

/* Filled by the functions that create a handle. */
typedef struct trl_error {
    trl_status status;
    char msg[256];
} trl_error;

/* -------------------------------------------------------------- encodings */

/*
 * Weight encodings. Layouts are defined once, in docs/FORMAT.md, and are the
 * same on every platform. A matrix is stored row-major, (rows = out features,
 * cols = in features); every encoding stores each row in trl_encoding_row_bytes()
 * bytes, rows back to back. Values are little-endian.
 */
typedef enum trl_encoding {
    TRL_ENC_F32 = 0,  /* 32 bits per weight */
    TRL_ENC_F16 = 1,  /* 16 bits per weight, IEEE half */
    TRL_ENC_Q8_0 = 2, /* blocks of 32: f16 scale d, 32 x int8 q; w = d*q; 8.5 bits per weight.
                         A row whose length is not a multiple of 32 ends in a
                         zero-padded block. */
    TRL_ENC_T2 = 3,   /* ternary, 2 bits per weight (compute layout) + f32 scales (format v2) */
    TRL_ENC_T1 = 4,   /* ternary, 1.6 bits per weight, 5 trits per byte (download layout) + f32 scales */
    TRL_ENC_BCQ = 5,  /* binary-coded: k bit planes in {-1,+1} + f16 scale per (row, group, plane) */
    TRL_ENC_COUNT
} trl_encoding;

/* Where the scales of a ternary matrix apply (docs/FORMAT.md, "Ternary"). */
typedef enum trl_scale_axis {
    TRL_SCALE_TENSOR = 0,     /* one scale */
    TRL_SCALE_ROW = 1,        /* one per row */
    TRL_SCALE_ROW_BLOCKS = 2, /* scale_blocks equal blocks of rows (column-parallel shards) */
    TRL_SCALE_COL_BLOCKS = 3  /* scale_blocks equal blocks of columns (row-parallel shards) */
} trl_scale_axis;

/* Parameters of the encodings that have them; all zero for f32, f16, q8_0. */
typedef struct trl_enc_params {
    int32_t bits;         /* bcq: bit planes k, 1..4 */
    int32_t group;        /* bcq: columns per scale group, 32..256, a multiple of 32 */
    int32_t pow2;         /* bcq: 1 if every scale is a power of two */
    int32_t scale_axis;   /* t2/t1: a trl_scale_axis */
    int32_t scale_blocks; /* t2/t1 with *_BLOCKS: number of blocks, 1..64 */
} trl_enc_params;

const char *trl_encoding_name(trl_encoding e);           /* "f32", "f16", "q8_0" */
int trl_encoding_from_name(const char *name, size_t len); /* -1 if unknown */
/* Bytes one row of `cols` weights takes (for t2/t1 the codes only, for bcq
 * with the default parameters k=2, g=128); 0 on overflow or bad arguments. */
size_t trl_encoding_row_bytes(trl_encoding e, uint64_t cols);
/* Bytes of a (rows, cols) matrix of an encoding without parameters (f32, f16,
 * q8_0); 0 on overflow or bad arguments. */
size_t trl_encoding_bytes(trl_encoding e, uint64_t rows, uint64_t cols);
/* Bytes of a (rows, cols) matrix with its parameters (p may be NULL for the
 * encodings that have none): codes, scales and all. 0 if the parameters are
 * invalid for the shape (see trl_enc_params_check) or on overflow. */
size_t trl_tensor_bytes(trl_encoding e, const trl_enc_params *p, uint64_t rows, uint64_t cols);
/* Check parameters against an encoding and shape; the message names the field. */
trl_status trl_enc_params_check(trl_encoding e, const trl_enc_params *p, uint64_t rows, uint64_t cols,
                                trl_error *err);
/* Bits per weight, for reporting (q8_0: 8.5). */
double trl_encoding_bits_per_weight(trl_encoding e);

/* Packing helpers for the quantized encodings (the converter and the tests use
 * them; the layouts are in docs/FORMAT.md). `trits` holds T in {-1, 0, +1},
 * row-major (rows, cols); dst has rows * trl_encoding_row_bytes(e, cols) bytes
 * (codes only: the scales are written by the caller after them). */
trl_status trl_ternary_pack(trl_encoding e, const int8_t *trits, uint64_t rows, uint64_t cols, void *dst);
/* The inverse: codes (t2 or t1) back to trits. */
trl_status trl_ternary_unpack(trl_encoding e, const void *src, uint64_t rows, uint64_t cols, int8_t *trits);
/* One bcq row: signs[i * cols + c] in {-1, +1} for plane i < p->bits, scales
 * [(group, plane)] as floats (rounded to f16 here); dst has
 * trl_tensor_bytes(TRL_ENC_BCQ, p, 1, cols) bytes. */
trl_status trl_bcq_pack_row(const trl_enc_params *p, const int8_t *signs, const float *scales, uint64_t cols,
                            void *dst);

/* IEEE half <-> float, round-to-nearest-even, the same on every platform. */
uint16_t trl_f32_to_f16(float f);
float trl_f16_to_f32(uint16_t h);
/* bfloat16 -> float (exact). */
float trl_bf16_to_f32(uint16_t h);

/* Encode `n` floats (one row) into `dst` (trl_encoding_row_bytes(e, n) bytes).
 * Used by the converter; f32 copies, f16 rounds, q8_0 uses d = max|x|/127. */
trl_status trl_encode_row(trl_encoding e, const float *src, uint64_t n, void *dst);
/* Decode one row back to floats. */
trl_status trl_decode_row(trl_encoding e, const void *src, uint64_t n, float *dst);

/* ----------------------------------------------------------------- config */

typedef enum trl_arch {
    TRL_ARCH_LLAMA = 0, /* RMSNorm, RoPE, GQA attention, SwiGLU MLP */
    TRL_ARCH_BITNET = 1 /* BitNet b1.58: LLaMA + sub-norms (attn_sub_norm, ffn_sub_norm) */
} trl_arch;

typedef enum trl_mlp {
    TRL_MLP_SWIGLU = 0, /* down(silu(gate x) * up x) */
    TRL_MLP_RELU2 = 1   /* down(relu(gate x)^2 * up x) (BitNet b1.58 2B4T) */
} trl_mlp;

typedef enum trl_rope_style {
    TRL_ROPE_INTERLEAVED = 0, /* rotate pairs (2i, 2i+1): llama2.c, Meta, GGUF "norm" */
    TRL_ROPE_HALF = 1         /* rotate pairs (i, i+hd/2): Hugging Face rotate_half, GGUF "neox" */
} trl_rope_style;

typedef enum trl_act_quant {
    TRL_ACT_FLOAT = 0, /* activations stay f32 (TriLM, plain LLaMA) */
    TRL_ACT_INT8 = 1   /* int8 absmax per token before each quantized linear (BitNet) */
} trl_act_quant;

typedef struct trl_config {
    trl_arch arch;
    trl_mlp mlp;
    trl_rope_style rope_style;
    trl_act_quant act_quant;
    int32_t dim;         /* model width */
    int32_t hidden_dim;  /* MLP inner width */
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads;  /* == n_heads without GQA */
    int32_t head_dim;    /* usually dim / n_heads */
    int32_t vocab_size;
    int32_t max_seq_len; /* the longest context the model was trained for */
    float rope_theta;    /* 10000 for Llama 2, 500000 for Llama 3 */
    float norm_eps;      /* RMSNorm epsilon */
    int32_t tied_embeddings; /* 1: output head = token_embd.weight */
    int32_t sub_norms;       /* 1: attn_sub_norm before attn_output, ffn_sub_norm before ffn_down */
} trl_config;

/* Parse the "config" object of a pack manifest (docs/FORMAT.md). `json` may be
 * the object itself or a whole manifest containing a "config" member. */
trl_status trl_config_from_json(const char *json, size_t len, trl_config *cfg, trl_error *err);
/* Check dimensions (positive, divisible, no overflow). */
trl_status trl_config_validate(const trl_config *cfg, trl_error *err);
/* Number of weights of the model, for reporting. */
uint64_t trl_config_n_params(const trl_config *cfg);

/* ----------------------------------------------------------------- model */

#define TRL_MAX_DIMS 2

/* One weight tensor, bound by name (GGUF-style names, docs/FORMAT.md):
 * token_embd.weight, output_norm.weight, output.weight,
 * blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, attn_sub_norm,
 *        ffn_norm, ffn_gate, ffn_up, ffn_down, ffn_sub_norm}.weight
 * shape[0] = rows (out features), shape[1] = cols (in features); 1-D tensors
 * (norm weights) have n_dims = 1 and shape[0] = length and must be f32. */
typedef struct trl_tensor {
    const char *name;
    trl_encoding encoding;
    int32_t n_dims;
    int64_t shape[TRL_MAX_DIMS];
    const void *data; /* caller-owned, must outlive the model */
    size_t bytes;     /* must equal trl_tensor_bytes(encoding, &params, rows, cols) */
    trl_enc_params params; /* zero for f32, f16, q8_0 */
} trl_tensor;

typedef struct trl_model trl_model;

/* Bind tensors to a model. Every tensor the config needs must be present
 * exactly once with the right shape, encoding and byte size; unknown names are
 * refused. The model copies the config and the tensor descriptors, not the bytes. */
trl_status trl_model_create(const trl_config *cfg, const trl_tensor *tensors, size_t n_tensors,
                            trl_model **out, trl_error *err);
void trl_model_free(trl_model *m);
const trl_config *trl_model_config(const trl_model *m);
/* Sum of the bound tensors' bytes. */
size_t trl_model_weight_bytes(const trl_model *m);
/* The most rank slices (blk.N.X.lr_v.S) any factorised layer has; 0 if none. */
int32_t trl_model_max_rank_slices(const trl_model *m);

/* ---------------------------------------------------------------- context */

typedef struct trl_ctx_params {
    int32_t n_ctx;   /* KV cache length in tokens; 0 = the model's max_seq_len */
    int32_t n_batch; /* most tokens per prefill matmul; prompts longer are split; default 64 */
    int32_t n_threads; /* threads for this context (0 or 1: one); more than one needs a build with
                          threads (native, or the pthreads wasm build): else TRL_ERR_UNSUPPORTED */
} trl_ctx_params;

trl_ctx_params trl_ctx_default_params(void);

/* Bytes a context will allocate for these parameters (KV cache + activations
 * + logits): the same function trl_ctx_create uses, so estimates agree. */
size_t trl_ctx_memory_bytes(const trl_config *cfg, const trl_ctx_params *p);

typedef struct trl_ctx trl_ctx;

trl_status trl_ctx_create(const trl_model *m, const trl_ctx_params *p, trl_ctx **out, trl_error *err);
void trl_ctx_free(trl_ctx *c);
const char *trl_ctx_last_error(const trl_ctx *c);

/* Run `n` tokens through the model, appending them to the KV cache, in
 * matmuls of up to n_batch tokens. If `all_logits` is not NULL it receives
 * (n, vocab) logits, one row per token; the last row is always available
 * from trl_ctx_logits afterwards. */
trl_status trl_ctx_prefill(trl_ctx *c, const int32_t *tokens, int32_t n, float *all_logits);
/* One token; equivalent to trl_ctx_prefill(c, &token, 1, NULL). */
trl_status trl_ctx_decode(trl_ctx *c, int32_t token);
/* (vocab) logits of the last token evaluated; owned by the context. */
const float *trl_ctx_logits(const trl_ctx *c);
int32_t trl_ctx_n_past(const trl_ctx *c);
int32_t trl_ctx_n_ctx(const trl_ctx *c);
/* Forget everything after the first `n` tokens (n = 0 clears the cache). */
trl_status trl_ctx_truncate(trl_ctx *c, int32_t n);
/* Use the first `n` rank slices of every factorised layer (fewer where a
 * layer has fewer); n < 0 means all. Takes effect at the next token, copies
 * nothing: a smaller variant is a prefix of a larger one. */
trl_status trl_ctx_set_rank_slices(trl_ctx *c, int32_t n);
int32_t trl_ctx_rank_slices(const trl_ctx *c);

/* ---------------------------------------------------------------- sampler */

typedef struct trl_sampler_params {
    float temperature;    /* <= 0: greedy (argmax, lowest id on ties) */
    int32_t top_k;        /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off; keep tokens with p >= min_p * p_max */
    float repeat_penalty; /* 1: off; llama.cpp semantics (divide positive logits, multiply negative) */
    int32_t repeat_last_n;/* how many recent tokens the penalty looks at; 0: off */
    uint64_t seed;
} trl_sampler_params;

trl_sampler_params trl_sampler_default_params(void);

typedef struct trl_sampler trl_sampler;

trl_status trl_sampler_create(const trl_sampler_params *p, int32_t vocab_size, trl_sampler **out,
                              trl_error *err);
void trl_sampler_free(trl_sampler *s);
/* Pick the next token from `logits` (vocab_size floats, not modified). The
 * same seed and logits give the same token on every platform. */
int32_t trl_sampler_sample(trl_sampler *s, const float *logits);
/* Record a token (prompt or generated) for the repetition penalty. */
void trl_sampler_accept(trl_sampler *s, int32_t token);
void trl_sampler_reset(trl_sampler *s, uint64_t seed);

/* -------------------------------------------------------------- tokenizer */

typedef enum trl_tokenizer_kind {
    TRL_TOK_SPM = 0,     /* SentencePiece-style BPE by piece score, byte fallback <0xNN> (llama2.c tokenizer.bin) */
    TRL_TOK_BPE_GPT2 = 1 /* byte-level BPE by merge rank, GPT-2 / Llama 3 pre-tokenizer regex */
} trl_tokenizer_kind;

typedef struct trl_tokenizer trl_tokenizer;

/* Make a tokenizer from a tokenizer blob (docs/FORMAT.md, "Tokenizer blob").
 * The blob is caller-owned and must outlive the tokenizer. */
trl_status trl_tokenizer_create(const void *blob, size_t len, trl_tokenizer **out, trl_error *err);
void trl_tokenizer_free(trl_tokenizer *t);
trl_tokenizer_kind trl_tokenizer_get_kind(const trl_tokenizer *t);
int32_t trl_tokenizer_vocab_size(const trl_tokenizer *t);
int32_t trl_tokenizer_bos(const trl_tokenizer *t); /* -1 if none */
int32_t trl_tokenizer_eos(const trl_tokenizer *t); /* -1 if none */

/* Encode UTF-8 text (any bytes: invalid UTF-8 is kept through byte tokens).
 * Writes at most `cap` ids and returns the number the full encoding needs
 * (call again with a larger buffer if it exceeds cap), or -1 on error.
 * add_bos: prepend the BOS token if the tokenizer has one. */
int32_t trl_tokenize(const trl_tokenizer *t, const char *text, size_t len, int add_bos, int32_t *ids,
                     int32_t cap);
/* The bytes of one token as they appear in text (byte tokens give one raw byte;
 * SPM's leading-space marker becomes ' '). Writes at most `cap` bytes and
 * returns the full length, or -1 for an id out of range. Concatenating the
 * pieces of an encoding gives back the input exactly (SPM: minus the one
 * leading space the encoder adds). */
int32_t trl_token_to_bytes(const trl_tokenizer *t, int32_t id, char *buf, int32_t cap);
/* Decode a sequence to bytes (with SPM's leading space after BOS removed).
 * Same return convention. */
int32_t trl_detokenize(const trl_tokenizer *t, const int32_t *ids, int32_t n, char *buf, int32_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TRILLIUM_H */
