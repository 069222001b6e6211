/* model_src.c - model sources: the tensor list a config implies, tokenizer
 * attachment, and picking a reader for an input path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trlc_internal.h"
#include "tokenizer_import.h"

size_t trlc_tensor_specs(const trl_config *c, trlc_tensor_spec *out) {
    size_t n = 0;
    int64_t D = c->dim, H = c->hidden_dim, V = c->vocab_size;
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
#define ADD(nd, r, cl, ...)                                                                                        \
    do {                                                                                                           \
        if (out) {                                                                                                 \
            snprintf(out[n].name, sizeof out[n].name, __VA_ARGS__);                                                \
            out[n].n_dims = (nd);                                                                                  \
            out[n].shape[0] = (r);                                                                                 \
            out[n].shape[1] = (nd) == 2 ? (cl) : 0;                                                                \
        }                                                                                                          \
        n++;                                                                                                       \
    } while (0)
    ADD(2, V, D, "token_embd.weight");
    for (int l = 0; l < c->n_layers; l++) {
        ADD(1, D, 0, "blk.%d.attn_norm.weight", l);
        ADD(2, qd, D, "blk.%d.attn_q.weight", l);
        ADD(2, kvd, D, "blk.%d.attn_k.weight", l);
        ADD(2, kvd, D, "blk.%d.attn_v.weight", l);
        if (c->sub_norms) ADD(1, qd, 0, "blk.%d.attn_sub_norm.weight", l);
        ADD(2, D, qd, "blk.%d.attn_output.weight", l);
        ADD(1, D, 0, "blk.%d.ffn_norm.weight", l);
        ADD(2, H, D, "blk.%d.ffn_gate.weight", l);
        ADD(2, H, D, "blk.%d.ffn_up.weight", l);
        if (c->sub_norms) ADD(1, H, 0, "blk.%d.ffn_sub_norm.weight", l);
        ADD(2, D, H, "blk.%d.ffn_down.weight", l);
    }
    ADD(1, D, 0, "output_norm.weight");
    if (!c->tied_embeddings) ADD(2, V, D, "output.weight");
#undef ADD
    return n;
}

trlc_model_src *trlc_source_new(void) { return calloc(1, sizeof(trlc_model_src)); }

void trlc_basename(const char *path, const char *strip_ext, char *out, size_t cap) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t n = len - start;
    size_t el = strip_ext ? strlen(strip_ext) : 0;
    if (el && n > el && !memcmp(path + start + n - el, strip_ext, el)) n -= el;
    if (n >= cap) n = cap - 1;
    memcpy(out, path + start, n);
    out[n] = 0;
}

static void tok_clear(trlc_src_tokenizer *t) {
    free(t->blob);
    free(t->chat_template);
    memset(t, 0, sizeof *t);
}

void trlc_source_release(const trlc_model_src *src, const trlc_src_tensor *t) {
    for (size_t i = 0; i < src->n_files; i++) trlc_file_release(&src->files[i], t->data, t->nbytes);
    for (size_t i = 0; i < src->n_st; i++) trlc_file_release(&src->st[i].file, t->data, t->nbytes);
}

void trlc_source_free(trlc_model_src *src) {
    if (!src) return;
    free(src->tensors);
    tok_clear(&src->tok);
    for (size_t i = 0; i < src->n_files; i++) trlc_file_unmap(&src->files[i]);
    free(src->files);
    for (size_t i = 0; i < src->n_st; i++) trlc_safetensors_close(&src->st[i]);
    free(src->st);
    free(src);
}

static int take_tokenizer(trlc_model_src *src, void *blob, size_t len, const trlc_tokenizer_info *info) {
    tok_clear(&src->tok);
    src->tok.blob = blob;
    src->tok.len = len;
    src->tok.kind = (int)info->kind;
    src->tok.bos_id = info->bos_id;
    src->tok.eos_id = info->eos_id;
    src->tok.vocab_size = info->vocab_size;
    src->tok.chat_template = info->chat_template;
    return 0;
}

void trlc_source_set_tokenizer(trlc_model_src *src, void *blob, size_t len, const trlc_tokenizer_info *info) {
    take_tokenizer(src, blob, len, info);
}

int trlc_source_load_tokenizer_llama2c(trlc_model_src *src, const char *path, char *err, size_t errlen) {
    void *blob = NULL;
    size_t len = 0;
    trlc_tokenizer_info info;
    memset(&info, 0, sizeof info);
    if (trlc_tokenizer_from_llama2c(path, src->cfg.vocab_size, &blob, &len, &info, err, errlen)) return -1;
    return take_tokenizer(src, blob, len, &info);
}

int trlc_source_load_tokenizer_hf(trlc_model_src *src, const char *tokenizer_json, const char *tokenizer_config,
                                  char *err, size_t errlen) {
    void *blob = NULL;
    size_t len = 0;
    trlc_tokenizer_info info;
    memset(&info, 0, sizeof info);
    if (trlc_tokenizer_from_hf(tokenizer_json, tokenizer_config, &blob, &len, &info, err, errlen)) return -1;
    if (info.vocab_size > src->cfg.vocab_size) {
        free(blob);
        free(info.chat_template);
        return trlc_fail(err, errlen, "%s: the tokenizer has %d tokens but the model's vocab_size is %d",
                         tokenizer_json, (int)info.vocab_size, (int)src->cfg.vocab_size);
    }
    return take_tokenizer(src, blob, len, &info);
}

int trlc_source_load_tokenizer_file(trlc_model_src *src, const char *path, char *err, size_t errlen) {
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 5, ".json")) return trlc_source_load_tokenizer_llama2c(src, path, err, errlen);
    /* its tokenizer_config.json (bos/eos, chat template) sits beside it */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else snprintf(dir, sizeof dir, "./");
    char *cfg = trlc_path_join(dir, "tokenizer_config.json");
    if (!cfg) return trlc_fail(err, errlen, "out of memory");
    int rc = trlc_source_load_tokenizer_hf(src, path, trlc_exists(cfg) ? cfg : NULL, err, errlen);
    free(cfg);
    return rc;
}

/* 1 if the file starts with GGUF's magic. */
static int has_gguf_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[4];
    int yes = fread(m, 1, 4, f) == 4 && !memcmp(m, "GGUF", 4);
    fclose(f);
    return yes;
}

int trlc_source_open(const char *input, const char *tokenizer_path, trlc_model_src **out, char *err,
                     size_t errlen) {
    *out = NULL;
    if (trlc_is_dir(input)) return trlc_hf_open(input, tokenizer_path, out, err, errlen);
    if (!trlc_exists(input)) return trlc_fail(err, errlen, "%s: no such file or directory", input);
    size_t n = strlen(input);
    if (n >= 12 && !strcmp(input + n - 12, ".safetensors"))
        return trlc_fail(err, errlen, "%s: pass the model directory (with config.json), not the .safetensors file",
                         input);
    if ((n >= 5 && !strcmp(input + n - 5, ".gguf")) || has_gguf_magic(input))
        return trlc_gguf_model_open(input, tokenizer_path, out, err, errlen);
    return trlc_llama2c_open(input, tokenizer_path, out, err, errlen);
}
