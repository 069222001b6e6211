/*
 * trillium_wasm.c - the C side of the WebAssembly boundary.
 *
 * A thin layer over core/include/trillium.h, in the spirit of sqlite's wasm
 * binding: JS calls the public API directly wherever the arguments are plain
 * i32/f32 values, and calls a trlw_ wrapper where the API wants something JS
 * cannot pass cheaply:
 *   - out-parameters (trl_model **out): wrappers return the handle, 0 on failure;
 *   - structs by value or pointer (trl_ctx_params, trl_sampler_params,
 *     trl_tensor arrays): wrappers take the fields as arguments;
 *   - 64-bit integers (seeds, shapes): split or widened so JS never needs BigInt.
 * Enum values and struct sizes come from trlw_constants_json() so the JS side
 * hard-codes none of them.
 *
 * Everything here is single-instance per wasm module, but keeps no state of
 * its own: every handle is owned by JS and freed by it.
 *
 * The same file builds twice: trillium.wasm (standalone, one thread) and,
 * against the -pthread core, trillium-mt.wasm with Emscripten's JS glue
 * (pthreads need it). Only trlw_max_threads tells them apart.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trillium.h"

#ifdef __EMSCRIPTEN__
#include <emscripten/emscripten.h>
#define TRLW_API EMSCRIPTEN_KEEPALIVE
#else
#define TRLW_API
#endif

/* ------------------------------------------------------------ memory */

/* Chunks are copied straight into the heap and tensors point into them; the
 * pack format aligns tensors to 64 bytes inside a chunk, so the chunk base must
 * be 64-aligned too for that guarantee to survive (SIMD kernels rely on it for
 * speed, not correctness). Free with free(). */
TRLW_API void *trlw_alloc_aligned(uint32_t bytes) {
    size_t n = bytes ? bytes : 1;
    size_t rounded = (n + 63u) & ~(size_t)63u;
    if (rounded < n) return NULL;
    return aligned_alloc(64, rounded);
}

/* ------------------------------------------------------------ errors */

TRLW_API trl_error *trlw_error_new(void) { return calloc(1, sizeof(trl_error)); }
TRLW_API int trlw_error_status(const trl_error *e) { return e ? (int)e->status : TRL_ERR_INVALID_ARG; }
TRLW_API const char *trlw_error_msg(const trl_error *e) { return e ? e->msg : ""; }
TRLW_API void trlw_error_clear(trl_error *e) {
    if (e) memset(e, 0, sizeof *e);
}

static void set_err(trl_error *e, trl_status s, const char *msg) {
    if (!e) return;
    e->status = s;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
}

/* ------------------------------------------------------------ constants */

/* A bounded appender: keeps counting past `cap` so the caller learns the
 * full length, like snprintf. */
typedef struct {
    char *buf;
    size_t cap, len;
} outbuf;

static void out(outbuf *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL, o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

/* Enum values, sizes and versions as one JSON object, so a change in the
 * header cannot silently desynchronise the JS side. Returns the full length
 * (call again with a larger buffer if it exceeds cap), like snprintf. */
TRLW_API uint32_t trlw_constants_json(char *buf, uint32_t cap) {
    static const struct {
        const char *name;
        int v;
    } st[] = {
        {"OK", TRL_OK},
        {"ERR_INVALID_ARG", TRL_ERR_INVALID_ARG},
        {"ERR_BAD_CONFIG", TRL_ERR_BAD_CONFIG},
        {"ERR_BAD_TENSOR", TRL_ERR_BAD_TENSOR},
        {"ERR_BAD_FORMAT", TRL_ERR_BAD_FORMAT},
        {"ERR_NO_MEMORY", TRL_ERR_NO_MEMORY},
        {"ERR_CONTEXT_FULL", TRL_ERR_CONTEXT_FULL},
        {"ERR_UNSUPPORTED", TRL_ERR_UNSUPPORTED},
    };
    outbuf o = {buf, cap, 0};
    out(&o, "{\"version\":\"%d.%d.%d\",\"pack_format_version\":%d,\"max_dims\":%d,", TRL_VERSION_MAJOR,
        TRL_VERSION_MINOR, TRL_VERSION_PATCH, TRL_PACK_FORMAT_VERSION, TRL_MAX_DIMS);
    out(&o, "\"sizeof\":{\"trl_error\":%zu,\"trl_tensor\":%zu,\"trl_config\":%zu,\"pointer\":%zu},",
        sizeof(trl_error), sizeof(trl_tensor), sizeof(trl_config), sizeof(void *));
    out(&o, "\"status\":{");
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) out(&o, "%s\"%s\":%d", i ? "," : "", st[i].name, st[i].v);
    out(&o, "},\"encodings\":{");
    for (int e = 0; e < TRL_ENC_COUNT; e++) out(&o, "%s\"%s\":%d", e ? "," : "", trl_encoding_name((trl_encoding)e), e);
    out(&o, "},\"tokenizer_kinds\":{\"spm\":%d,\"bpe_gpt2\":%d}}", TRL_TOK_SPM, TRL_TOK_BPE_GPT2);
    return (uint32_t)o.len;
}

/* ------------------------------------------------------------ encodings */

/* Widened to double so JS can pass any shape without BigInt; returns 0 on
 * overflow or bad arguments, like trl_encoding_bytes. */
TRLW_API double trlw_encoding_bytes(int enc, double rows, double cols) {
    if (enc < 0 || enc >= TRL_ENC_COUNT || !(rows >= 0) || !(cols >= 0) || rows > 9.0e15 || cols > 9.0e15)
        return 0;
    return (double)trl_encoding_bytes((trl_encoding)enc, (uint64_t)rows, (uint64_t)cols);
}

TRLW_API double trlw_encoding_bits_per_weight(int enc) {
    if (enc < 0 || enc >= TRL_ENC_COUNT) return 0;
    return trl_encoding_bits_per_weight((trl_encoding)enc);
}

/* ------------------------------------------------------------ config */

TRLW_API trl_config *trlw_config_from_json(const char *json, uint32_t len, trl_error *err) {
    trl_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        set_err(err, TRL_ERR_NO_MEMORY, "out of memory for a trl_config");
        return NULL;
    }
    if (trl_config_from_json(json, len, cfg, err) != TRL_OK || trl_config_validate(cfg, err) != TRL_OK) {
        free(cfg);
        return NULL;
    }
    return cfg;
}

TRLW_API void trlw_config_free(trl_config *cfg) { free(cfg); }

static const char *arch_name(trl_arch a) {
    return a == TRL_ARCH_LLAMA ? "llama" : a == TRL_ARCH_BITNET ? "bitnet" : "?";
}
static const char *mlp_name(trl_mlp m) {
    return m == TRL_MLP_SWIGLU ? "swiglu" : m == TRL_MLP_RELU2 ? "relu2" : "?";
}
static const char *rope_name(trl_rope_style r) {
    return r == TRL_ROPE_INTERLEAVED ? "interleaved" : r == TRL_ROPE_HALF ? "half" : "?";
}
static const char *actq_name(trl_act_quant q) {
    return q == TRL_ACT_FLOAT ? "float" : q == TRL_ACT_INT8 ? "int8" : "?";
}

/* The shortest %g text that reads back as the same float (1e-05, not
 * 9.99999975e-06), so the JSON shows what the pack author wrote. */
static const char *float_str(float v, char buf[32]) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, 32, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

/* The config as the core understood it (defaults filled in), in the manifest's
 * own field names. Same return convention as trlw_constants_json. */
TRLW_API uint32_t trlw_config_json(const trl_config *c, char *buf, uint32_t cap) {
    if (!c) return 0;
    char theta[32], eps[32];
    int n = snprintf(buf, cap,
                     "{\"arch\":\"%s\",\"mlp\":\"%s\",\"rope_style\":\"%s\",\"act_quant\":\"%s\","
                     "\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,"
                     "\"head_dim\":%d,\"vocab_size\":%d,\"max_seq_len\":%d,\"rope_theta\":%s,"
                     "\"norm_eps\":%s,\"tied_embeddings\":%s,\"sub_norms\":%s,\"n_params\":%.17g}",
                     arch_name(c->arch), mlp_name(c->mlp), rope_name(c->rope_style), actq_name(c->act_quant),
                     (int)c->dim, (int)c->hidden_dim, (int)c->n_layers, (int)c->n_heads, (int)c->n_kv_heads,
                     (int)c->head_dim, (int)c->vocab_size, (int)c->max_seq_len, float_str(c->rope_theta, theta),
                     float_str(c->norm_eps, eps), c->tied_embeddings ? "true" : "false",
                     c->sub_norms ? "true" : "false", (double)trl_config_n_params(c));
    return n < 0 ? 0 : (uint32_t)n;
}

TRLW_API int trlw_config_vocab_size(const trl_config *c) { return c ? c->vocab_size : 0; }
TRLW_API int trlw_config_max_seq_len(const trl_config *c) { return c ? c->max_seq_len : 0; }

/* ------------------------------------------------------------ tensors */

/* JS builds the descriptor array field by field through trlw_tensor_set, so it
 * never depends on trl_tensor's layout or on 64-bit shape fields. */
TRLW_API trl_tensor *trlw_tensors_new(uint32_t n) { return calloc(n ? n : 1, sizeof(trl_tensor)); }
TRLW_API void trlw_tensors_free(trl_tensor *t) { free(t); }

/* `name` must outlive the model (JS keeps it in the heap next to the chunks).
 * Shapes arrive as doubles: exact for every integer below 2^53. */
TRLW_API int trlw_tensor_set(trl_tensor *arr, uint32_t i, const char *name, int enc, int n_dims, double d0,
                             double d1, const void *data, uint32_t bytes) {
    if (!arr || !name || n_dims < 1 || n_dims > TRL_MAX_DIMS || !(d0 >= 0) || !(d1 >= 0) || d0 > 9.0e15 ||
        d1 > 9.0e15)
        return TRL_ERR_INVALID_ARG;
    trl_tensor *t = &arr[i];
    t->name = name;
    t->encoding = (trl_encoding)enc;
    t->n_dims = n_dims;
    t->shape[0] = (int64_t)d0;
    t->shape[1] = n_dims > 1 ? (int64_t)d1 : 0;
    t->data = data;
    t->bytes = bytes;
    return TRL_OK;
}

/* Encoding parameters (bcq bits/group/pow2, ternary scale axis/blocks) of tensor i. */
TRLW_API int trlw_tensor_set_params(trl_tensor *arr, uint32_t i, int bits, int group, int pow2, int scale_axis,
                                    int scale_blocks) {
    if (!arr) return TRL_ERR_INVALID_ARG;
    trl_enc_params p = {bits, group, pow2, scale_axis, scale_blocks};
    arr[i].params = p;
    return TRL_OK;
}

/* trl_tensor_bytes with the parameters spelled out; 0 when they do not fit the shape. */
TRLW_API double trlw_tensor_bytes(int enc, double rows, double cols, int bits, int group, int pow2, int scale_axis,
                                  int scale_blocks) {
    if (enc < 0 || enc >= TRL_ENC_COUNT || !(rows >= 1) || !(cols >= 1) || rows > 9.0e15 || cols > 9.0e15) return 0;
    trl_enc_params p = {bits, group, pow2, scale_axis, scale_blocks};
    return (double)trl_tensor_bytes((trl_encoding)enc, &p, (uint64_t)rows, (uint64_t)cols);
}

/* ------------------------------------------------------------ model */

TRLW_API trl_model *trlw_model_create(const trl_config *cfg, const trl_tensor *tensors, uint32_t n,
                                      trl_error *err) {
    trl_model *m = NULL;
    if (trl_model_create(cfg, tensors, n, &m, err) != TRL_OK) {
        trl_model_free(m);
        return NULL;
    }
    return m;
}

TRLW_API double trlw_model_weight_bytes(const trl_model *m) {
    return m ? (double)trl_model_weight_bytes(m) : 0;
}

/* ------------------------------------------------------------ context */

static trl_ctx_params ctx_params(int n_ctx, int n_batch) {
    trl_ctx_params p = trl_ctx_default_params();
    if (n_ctx >= 0) p.n_ctx = n_ctx;
    if (n_batch > 0) p.n_batch = n_batch;
    return p;
}

/* Double: a 4 GiB+ estimate must reach JS intact even though size_t is 32-bit
 * here (the core reports overflow as 0 or SIZE_MAX, both visible to JS). The
 * scratch grows with the thread count, so the estimate takes it too;
 * n_threads <= 1 is the single-thread figure. */
TRLW_API double trlw_ctx_memory_bytes_mt(const trl_config *cfg, int n_ctx, int n_batch, int n_threads) {
    if (!cfg) return 0;
    trl_ctx_params p = ctx_params(n_ctx, n_batch);
    p.n_threads = n_threads > 1 ? n_threads : 1;
    return (double)trl_ctx_memory_bytes(cfg, &p);
}

TRLW_API double trlw_ctx_memory_bytes(const trl_config *cfg, int n_ctx, int n_batch) {
    return trlw_ctx_memory_bytes_mt(cfg, n_ctx, n_batch, 1);
}

/* n_ctx < 0 or n_batch <= 0: the core's default. n_threads > 1 needs the
 * pthreads build (trillium-mt.wasm) and that many workers in its pool, less
 * the calling thread: the standalone build refuses it with TRL_ERR_UNSUPPORTED,
 * and an exhausted pool fails pthread_create (PTHREAD_POOL_SIZE_STRICT=2)
 * instead of waiting for a worker the blocked caller could never start. */
TRLW_API trl_ctx *trlw_ctx_create_mt(const trl_model *m, int n_ctx, int n_batch, int n_threads, trl_error *err) {
    trl_ctx_params p = ctx_params(n_ctx, n_batch);
    p.n_threads = n_threads > 1 ? n_threads : 1;
    trl_ctx *c = NULL;
    if (trl_ctx_create(m, &p, &c, err) != TRL_OK) {
        trl_ctx_free(c);
        return NULL;
    }
    return c;
}

TRLW_API trl_ctx *trlw_ctx_create(const trl_model *m, int n_ctx, int n_batch, trl_error *err) {
    return trlw_ctx_create_mt(m, n_ctx, n_batch, 1, err);
}

/* Most threads a context of this build can run: 1 for the standalone module;
 * for the pthreads module the core's own limit (trl_ctx_create checks it), the
 * loader's worker pool being the practical one. */
TRLW_API int trlw_max_threads(void) {
#ifdef __EMSCRIPTEN_PTHREADS__
    return 64;
#else
    return 1;
#endif
}

/* ------------------------------------------------------------ sampler */

TRLW_API trl_sampler *trlw_sampler_create(int vocab_size, float temperature, int top_k, float top_p,
                                          float min_p, float repeat_penalty, int repeat_last_n,
                                          uint32_t seed_lo, uint32_t seed_hi, trl_error *err) {
    trl_sampler_params p = trl_sampler_default_params();
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = repeat_penalty;
    if (repeat_last_n >= 0) p.repeat_last_n = repeat_last_n;
    p.seed = ((uint64_t)seed_hi << 32) | seed_lo;
    trl_sampler *s = NULL;
    if (trl_sampler_create(&p, vocab_size, &s, err) != TRL_OK) {
        trl_sampler_free(s);
        return NULL;
    }
    return s;
}

TRLW_API void trlw_sampler_reset(trl_sampler *s, uint32_t seed_lo, uint32_t seed_hi) {
    trl_sampler_reset(s, ((uint64_t)seed_hi << 32) | seed_lo);
}

/* Sample from the context's current logits and record the pick for the
 * repetition penalty: one boundary crossing per generated token. -1 on error. */
TRLW_API int32_t trlw_sample_next(trl_sampler *s, const trl_ctx *c) {
    const float *logits = c ? trl_ctx_logits(c) : NULL;
    if (!s || !logits) return -1;
    int32_t tok = trl_sampler_sample(s, logits);
    if (tok >= 0) trl_sampler_accept(s, tok);
    return tok;
}

TRLW_API void trlw_sampler_accept_many(trl_sampler *s, const int32_t *tokens, int32_t n) {
    for (int32_t i = 0; s && tokens && i < n; i++) trl_sampler_accept(s, tokens[i]);
}

/* ------------------------------------------------------------ tokenizer */

TRLW_API trl_tokenizer *trlw_tokenizer_create(const void *blob, uint32_t len, trl_error *err) {
    trl_tokenizer *t = NULL;
    if (trl_tokenizer_create(blob, len, &t, err) != TRL_OK) {
        trl_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* ------------------------------------------------------------ checks */

/* Fails to compile if the header's types stop matching what the wrappers assume. */
_Static_assert(sizeof(int32_t) == sizeof(int), "i32 arguments");
#ifdef __wasm32__
_Static_assert(sizeof(void *) == 4, "wasm32 pointers");
#endif
