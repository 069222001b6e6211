/* ggufbuild.h - write small GGUF v3 files byte by byte, for the converter's
 * tests and the fuzz seeds: a tiny llama model whose every part a test can
 * change (a key's type, a count, an offset) to make one precise fault. */
#ifndef TRLC_GGUFBUILD_H
#define TRLC_GGUFBUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    uint8_t *d;
    size_t n, cap;
} gb;

static inline void gb_put(gb *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n) c *= 2;
        b->d = realloc(b->d, c);
        b->cap = c;
    }
    if (n) memcpy(b->d + b->n, p, n);
    b->n += n;
}
static inline void gb_u8(gb *b, uint8_t v) { gb_put(b, &v, 1); }
static inline void gb_u32(gb *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    gb_put(b, x, 4);
}
static inline void gb_u64(gb *b, uint64_t v) {
    gb_u32(b, (uint32_t)v);
    gb_u32(b, (uint32_t)(v >> 32));
}
static inline void gb_f32(gb *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    gb_u32(b, u);
}
static inline void gb_str(gb *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}
static inline void gb_key(gb *b, const char *k, uint32_t type) {
    gb_str(b, k);
    gb_u32(b, type);
}
static inline void gb_kv_u32(gb *b, const char *k, uint32_t v) { gb_key(b, k, 4), gb_u32(b, v); }
static inline void gb_kv_f32(gb *b, const char *k, float v) { gb_key(b, k, 6), gb_f32(b, v); }
static inline void gb_kv_bool(gb *b, const char *k, int v) { gb_key(b, k, 7), gb_u8(b, (uint8_t)v); }
static inline void gb_kv_str(gb *b, const char *k, const char *v) { gb_key(b, k, 8), gb_str(b, v); }
static inline void gb_kv_strs(gb *b, const char *k, const char *const *v, int n) {
    gb_key(b, k, 9);
    gb_u32(b, 8);
    gb_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) gb_str(b, v[i]);
}
static inline void gb_kv_i32s(gb *b, const char *k, const int32_t *v, int n) {
    gb_key(b, k, 9);
    gb_u32(b, 5);
    gb_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) gb_u32(b, (uint32_t)v[i]);
}
static inline void gb_kv_f32s(gb *b, const char *k, const float *v, int n) {
    gb_key(b, k, 9);
    gb_u32(b, 6);
    gb_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) gb_f32(b, v[i]);
}

/* ------------------------------------------------------------ tiny llama */

/* What a test may change in the tiny model. Zero-initialised = the valid model. */
typedef struct tiny_opts {
    uint32_t version;          /* 0: 3 */
    const char *arch;          /* NULL: "llama" */
    int drop_key;              /* 1..: leave out the n-th config key (1 block_count, 2 embedding_length, 3 rms eps) */
    const char *tok_model;     /* NULL: "gpt2" */
    const char *tok_pre;       /* NULL: "gpt-2" */
    int spm;                   /* a "llama" (SentencePiece) vocabulary instead */
    uint32_t q_type;           /* ggml type of blk.0.attn_q.weight (0: F32); only F32/Q8_0 get real data */
    int q_cols;                /* 0: dim */
    const char *extra_tensor;  /* a tensor the model does not have */
    const char *rope_scaling;  /* llama.rope.scaling.type */
    uint32_t alignment;        /* 0: default, no key */
    int no_tokenizer;
    uint32_t dim, hidden;      /* 0: TINY_DIM, TINY_HIDDEN (dim a multiple of 2 * TINY_HEADS) */
    uint32_t ffn_type;         /* ggml type of ffn_gate / ffn_up (0 F32, 1 F16) */
    uint32_t down_type;        /* ggml type of ffn_down (0 F32, 1 F16, 34 TQ1_0, 35 TQ2_0: hidden % 256 == 0) */
} tiny_opts;

#define TINY_DIM 32
#define TINY_HIDDEN 64
#define TINY_HEADS 2
#define TINY_VOCAB 8

typedef struct tiny_tensor {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[2];
    uint32_t type;
} tiny_tensor;

static inline uint64_t tiny_bytes(const tiny_tensor *t) {
    uint64_t n = t->ne[0] * (t->n_dims > 1 ? t->ne[1] : 1);
    if (t->type == 8) return n / 32 * 34;
    if (t->type == 34) return n / 256 * 54;
    if (t->type == 35) return n / 256 * 66;
    if (t->type == 1) return n * 2;
    if (t->type == 12) return n / 256 * 144; /* Q4_K: sized, not readable */
    return n * 4;
}

/* The whole file into b (appended). */
static inline void tiny_build(gb *b, const tiny_opts *o) {
    const uint32_t D = o->dim ? o->dim : TINY_DIM, H = o->hidden ? o->hidden : TINY_HIDDEN, V = TINY_VOCAB;
    static const char *const gpt2_toks[TINY_VOCAB] = {"a", "b", "c", "\xc4\xa0", "ab", "\xc4\xa0" "a", "<s>", "</s>"};
    static const char *const spm_toks[TINY_VOCAB] = {"<unk>", "<s>", "</s>", "<0x41>", "a", "b", "\xe2\x96\x81" "a", "ab"};
    static const int32_t gpt2_types[TINY_VOCAB] = {1, 1, 1, 1, 1, 1, 3, 3};
    static const int32_t spm_types[TINY_VOCAB] = {2, 3, 3, 6, 1, 1, 1, 1};
    static const float spm_scores[TINY_VOCAB] = {0, 0, 0, 0, -1, -2, -3, -4};
    static const char *const merges[2] = {"a b", "\xc4\xa0 a"};
    tiny_tensor ts[16];
    int nt = 0;
    ts[nt++] = (tiny_tensor){"token_embd.weight", 2, {D, V}, 0};
    ts[nt++] = (tiny_tensor){"blk.0.attn_norm.weight", 1, {D, 1}, 0};
    ts[nt++] = (tiny_tensor){"blk.0.attn_q.weight", 2, {o->q_cols ? (uint64_t)o->q_cols : D, D}, o->q_type};
    ts[nt++] = (tiny_tensor){"blk.0.attn_k.weight", 2, {D, D}, 0};
    ts[nt++] = (tiny_tensor){"blk.0.attn_v.weight", 2, {D, D}, 0};
    ts[nt++] = (tiny_tensor){"blk.0.attn_output.weight", 2, {D, D}, 0};
    ts[nt++] = (tiny_tensor){"blk.0.ffn_norm.weight", 1, {D, 1}, 0};
    ts[nt++] = (tiny_tensor){"blk.0.ffn_gate.weight", 2, {D, H}, o->ffn_type};
    ts[nt++] = (tiny_tensor){"blk.0.ffn_up.weight", 2, {D, H}, o->ffn_type};
    ts[nt++] = (tiny_tensor){"blk.0.ffn_down.weight", 2, {H, D}, o->down_type};
    ts[nt++] = (tiny_tensor){"output_norm.weight", 1, {D, 1}, 0};
    if (o->extra_tensor) ts[nt++] = (tiny_tensor){o->extra_tensor, 1, {D, 1}, 0};

    int nkv = 0;
    gb kv = {0};
    gb_kv_str(&kv, "general.architecture", o->arch ? o->arch : "llama"), nkv++;
    gb_kv_str(&kv, "general.name", "tiny"), nkv++;
    if (o->alignment) gb_kv_u32(&kv, "general.alignment", o->alignment), nkv++;
    gb_kv_u32(&kv, "llama.context_length", 64), nkv++;
    if (o->drop_key != 2) gb_kv_u32(&kv, "llama.embedding_length", D), nkv++;
    if (o->drop_key != 1) gb_kv_u32(&kv, "llama.block_count", 1), nkv++;
    gb_kv_u32(&kv, "llama.feed_forward_length", H), nkv++;
    gb_kv_u32(&kv, "llama.attention.head_count", TINY_HEADS), nkv++;
    gb_kv_u32(&kv, "llama.attention.head_count_kv", TINY_HEADS), nkv++;
    gb_kv_f32(&kv, "llama.rope.freq_base", 10000.0f), nkv++;
    if (o->drop_key != 3) gb_kv_f32(&kv, "llama.attention.layer_norm_rms_epsilon", 1e-5f), nkv++;
    if (o->rope_scaling) gb_kv_str(&kv, "llama.rope.scaling.type", o->rope_scaling), nkv++;
    if (!o->no_tokenizer) {
        if (o->spm) {
            gb_kv_str(&kv, "tokenizer.ggml.model", o->tok_model ? o->tok_model : "llama"), nkv++;
            gb_kv_strs(&kv, "tokenizer.ggml.tokens", spm_toks, TINY_VOCAB), nkv++;
            gb_kv_f32s(&kv, "tokenizer.ggml.scores", spm_scores, TINY_VOCAB), nkv++;
            gb_kv_i32s(&kv, "tokenizer.ggml.token_type", spm_types, TINY_VOCAB), nkv++;
            gb_kv_u32(&kv, "tokenizer.ggml.bos_token_id", 1), nkv++;
            gb_kv_u32(&kv, "tokenizer.ggml.eos_token_id", 2), nkv++;
        } else {
            gb_kv_str(&kv, "tokenizer.ggml.model", o->tok_model ? o->tok_model : "gpt2"), nkv++;
            gb_kv_str(&kv, "tokenizer.ggml.pre", o->tok_pre ? o->tok_pre : "gpt-2"), nkv++;
            gb_kv_strs(&kv, "tokenizer.ggml.tokens", gpt2_toks, TINY_VOCAB), nkv++;
            gb_kv_i32s(&kv, "tokenizer.ggml.token_type", gpt2_types, TINY_VOCAB), nkv++;
            gb_kv_strs(&kv, "tokenizer.ggml.merges", merges, 2), nkv++;
            gb_kv_u32(&kv, "tokenizer.ggml.bos_token_id", 6), nkv++;
            gb_kv_u32(&kv, "tokenizer.ggml.eos_token_id", 7), nkv++;
        }
        gb_kv_str(&kv, "tokenizer.chat_template", "{{ messages }}"), nkv++;
    }

    uint32_t align = o->alignment ? o->alignment : 32;
    gb_put(b, "GGUF", 4);
    gb_u32(b, o->version ? o->version : 3);
    gb_u64(b, (uint64_t)nt);
    gb_u64(b, (uint64_t)nkv);
    gb_put(b, kv.d, kv.n);
    free(kv.d);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        gb_str(b, ts[i].name);
        gb_u32(b, ts[i].n_dims);
        for (uint32_t d = 0; d < ts[i].n_dims; d++) gb_u64(b, ts[i].ne[d]);
        gb_u32(b, ts[i].type);
        gb_u64(b, off);
        off += (tiny_bytes(&ts[i]) + align - 1) / align * align;
    }
    while (b->n % align) gb_u8(b, 0); /* b holds just this file: offsets are from its start */
    /* data: small deterministic values, so the model runs and the logits are not all equal */
    for (int i = 0; i < nt; i++) {
        uint64_t nb = tiny_bytes(&ts[i]);
        if (ts[i].type == 8) {
            for (uint64_t k = 0; k < nb / 34; k++) {
                gb_u8(b, 0x00), gb_u8(b, 0x20); /* d = 2^-7 */
                for (int j = 0; j < 32; j++) gb_u8(b, (uint8_t)(int8_t)((int)((k * 7 + (uint64_t)j * 13) % 41) - 20));
            }
        } else if (ts[i].type == 34 || ts[i].type == 35) {
            /* valid ternary blocks, one scale (2^-4) for the whole tensor */
            uint32_t bb = ts[i].type == 34 ? 54 : 66;
            for (uint64_t k = 0; k < nb / bb; k++) {
                for (uint32_t j = 0; j < bb - 2; j++) {
                    uint32_t v = (uint32_t)(k * 131 + j * 17);
                    gb_u8(b, ts[i].type == 34 ? (uint8_t)v
                                              : (uint8_t)(v % 3 | (v / 3) % 3 << 2 | (v / 9) % 3 << 4 | (v / 27) % 3 << 6));
                }
                gb_u8(b, 0x00), gb_u8(b, 0x2C);
            }
        } else if (ts[i].type == 1) {
            for (uint64_t k = 0; k < nb / 2; k++) gb_u8(b, (uint8_t)(k * 37)), gb_u8(b, (uint8_t)(0x20 + k % 8));
        } else if (ts[i].type == 0) {
            int norm = ts[i].n_dims == 1;
            for (uint64_t k = 0; k < nb / 4; k++)
                gb_f32(b, norm ? 1.0f : (float)((int)((k * 2654435761u + (uint64_t)i * 97) % 2001) - 1000) * 2e-4f);
        } else {
            for (uint64_t k = 0; k < nb; k++) gb_u8(b, (uint8_t)(k * 31 + 7));
        }
        while (b->n % align) gb_u8(b, 0);
    }
}

#endif
