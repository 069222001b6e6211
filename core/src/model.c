/* model.c - bind caller-owned tensors to a model: check every name, shape,
 * encoding, size and alignment once, so the forward pass never has to. */
#include <stdlib.h>
#include <string.h>

#include "model.h"

static const char *const layer_names[TRL_LT_COUNT] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_sub_norm", "attn_output",
    "ffn_norm", "ffn_gate", "ffn_up", "ffn_sub_norm", "ffn_down",
};

/* Expected shape of a layer tensor: rows (or length for vectors), cols (0 = vector). */
static void layer_shape(const trl_config *c, int lt, int64_t *rows, int64_t *cols) {
    int64_t D = c->dim, H = c->hidden_dim, qd = (int64_t)c->n_heads * c->head_dim,
            kvd = (int64_t)c->n_kv_heads * c->head_dim;
    switch (lt) {
    case TRL_LT_ATTN_NORM: case TRL_LT_FFN_NORM: *rows = D, *cols = 0; break;
    case TRL_LT_ATTN_Q: *rows = qd, *cols = D; break;
    case TRL_LT_ATTN_K: case TRL_LT_ATTN_V: *rows = kvd, *cols = D; break;
    case TRL_LT_ATTN_SUB_NORM: *rows = qd, *cols = 0; break;
    case TRL_LT_ATTN_OUTPUT: *rows = D, *cols = qd; break;
    case TRL_LT_FFN_GATE: case TRL_LT_FFN_UP: *rows = H, *cols = D; break;
    case TRL_LT_FFN_SUB_NORM: *rows = H, *cols = 0; break;
    case TRL_LT_FFN_DOWN: *rows = D, *cols = H; break;
    default: *rows = *cols = 0;
    }
}

/* Parse "blk.N.<name>.weight" -> layer N, tensor kind; or a global name. Returns
 * -1 if the name is not one the format knows. */
static int parse_name(const char *name, int n_layers, int *layer, int *lt) {
    if (!strcmp(name, "token_embd.weight")) return *layer = -1, *lt = 0, 0;
    if (!strcmp(name, "output_norm.weight")) return *layer = -1, *lt = 1, 0;
    if (!strcmp(name, "output.weight")) return *layer = -1, *lt = 2, 0;
    if (strncmp(name, "blk.", 4)) return -1;
    const char *p = name + 4;
    long n = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') {
        n = n * 10 + (*p++ - '0');
        if (n >= n_layers) return -1;
    }
    if (*p++ != '.') return -1;
    for (int i = 0; i < TRL_LT_COUNT; i++) {
        size_t k = strlen(layer_names[i]);
        if (!strncmp(p, layer_names[i], k) && !strcmp(p + k, ".weight")) {
            *layer = (int)n, *lt = i;
            return 0;
        }
    }
    return -1;
}

static trl_status bind_one(const trl_tensor *t, int64_t rows, int64_t cols, const trl_weight **unused,
                           trl_weight *w, const float **vec, trl_error *err) {
    (void)unused;
    if ((unsigned)t->encoding >= TRL_ENC_COUNT)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: unknown encoding %d", t->name, (int)t->encoding);
    if (!t->data) return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: no data", t->name);
    if (cols == 0) { /* vector */
        if (t->n_dims != 1 || t->shape[0] != rows)
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: shape must be [%lld]", t->name, (long long)rows);
        if (t->encoding != TRL_ENC_F32)
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: norm weights must be f32, not %s", t->name,
                                 trl_encoding_name(t->encoding));
        if (t->bytes != (size_t)rows * 4)
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: %zu bytes, expected %lld", t->name, t->bytes,
                                 (long long)rows * 4);
        if ((uintptr_t)t->data % 4)
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: data not 4-byte aligned", t->name);
        *vec = t->data;
        return TRL_OK;
    }
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: shape must be [%lld, %lld]", t->name,
                             (long long)rows, (long long)cols);
    size_t want = trl_encoding_bytes(t->encoding, (uint64_t)rows, (uint64_t)cols);
    if (!want || t->bytes != want)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: %zu bytes, expected %zu for [%lld, %lld] %s",
                             t->name, t->bytes, want, (long long)rows, (long long)cols, trl_encoding_name(t->encoding));
    size_t align = t->encoding == TRL_ENC_F32 ? 4 : t->encoding == TRL_ENC_F16 ? 2 : 1;
    if ((uintptr_t)t->data % align)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: data not %zu-byte aligned", t->name, align);
    w->enc = t->encoding;
    w->rows = (int32_t)rows;
    w->cols = (int32_t)cols;
    w->row_bytes = trl_encoding_row_bytes(t->encoding, (uint64_t)cols);
    w->data = t->data;
    return TRL_OK;
}

trl_status trl_model_create(const trl_config *cfg, const trl_tensor *tensors, size_t n_tensors, trl_model **out,
                            trl_error *err) {
    if (!cfg || !out || (!tensors && n_tensors))
        return trl_set_error(err, TRL_ERR_INVALID_ARG, "trl_model_create: NULL argument");
    *out = NULL;
    trl_status s = trl_config_validate(cfg, err);
    if (s) return s;
    if (cfg->act_quant == TRL_ACT_INT8)
        return trl_set_error(err, TRL_ERR_UNSUPPORTED,
                             "config.act_quant: \"int8\" needs the ternary kernels (format version 2)");
    size_t nl = (size_t)cfg->n_layers;
    size_t bytes = sizeof(trl_model) + nl * sizeof(trl_layer);
    trl_model *m = calloc(1, bytes);
    if (!m) return trl_set_error(err, TRL_ERR_NO_MEMORY, "model: cannot allocate %zu bytes", bytes);
    m->cfg = *cfg;
    m->layers = (trl_layer *)(m + 1);

    for (size_t i = 0; i < n_tensors; i++) {
        const trl_tensor *t = &tensors[i];
        int layer, lt;
        if (!t->name || parse_name(t->name, cfg->n_layers, &layer, &lt)) {
            s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: unknown name", t->name ? t->name : "(null)");
            goto fail;
        }
        int64_t rows, cols;
        trl_weight *w = NULL;
        const float **vec = NULL;
        int *seen;
        if (layer < 0) {
            seen = &m->seen_global[lt];
            if (lt == 0) rows = cfg->vocab_size, cols = cfg->dim, w = &m->tok_embd;
            else if (lt == 1) rows = cfg->dim, cols = 0, vec = &m->output_norm;
            else {
                if (cfg->tied_embeddings) {
                    s = trl_set_error(err, TRL_ERR_BAD_TENSOR,
                                      "tensor output.weight: present but config.tied_embeddings is true");
                    goto fail;
                }
                rows = cfg->vocab_size, cols = cfg->dim, w = &m->output;
            }
        } else {
            trl_layer *L = &m->layers[layer];
            seen = &L->seen[lt];
            if ((lt == TRL_LT_ATTN_SUB_NORM || lt == TRL_LT_FFN_SUB_NORM) && !cfg->sub_norms) {
                s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: present but config.sub_norms is false",
                                  t->name);
                goto fail;
            }
            layer_shape(cfg, lt, &rows, &cols);
            if (cols) w = &L->w[lt];
            else vec = &L->norm[lt];
        }
        if (*seen) {
            s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: bound twice", t->name);
            goto fail;
        }
        trl_weight dummy;
        const float *dummy_vec;
        s = bind_one(t, rows, cols, NULL, w ? w : &dummy, vec ? vec : &dummy_vec, err);
        if (s) goto fail;
        *seen = 1;
        m->weight_bytes += t->bytes;
    }
    /* everything the config needs is there */
    if (!m->seen_global[0]) { s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor token_embd.weight: missing"); goto fail; }
    if (!m->seen_global[1]) { s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor output_norm.weight: missing"); goto fail; }
    if (!cfg->tied_embeddings && !m->seen_global[2]) {
        s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor output.weight: missing (config.tied_embeddings is false)");
        goto fail;
    }
    if (cfg->tied_embeddings) m->output = m->tok_embd;
    for (int l = 0; l < cfg->n_layers; l++)
        for (int lt = 0; lt < TRL_LT_COUNT; lt++) {
            int needed = !(lt == TRL_LT_ATTN_SUB_NORM || lt == TRL_LT_FFN_SUB_NORM) || cfg->sub_norms;
            if (needed && !m->layers[l].seen[lt]) {
                s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor blk.%d.%s.weight: missing", l, layer_names[lt]);
                goto fail;
            }
        }
    *out = m;
    return TRL_OK;
fail:
    free(m);
    return s;
}

void trl_model_free(trl_model *m) { free(m); }

const trl_config *trl_model_config(const trl_model *m) { return m ? &m->cfg : NULL; }

size_t trl_model_weight_bytes(const trl_model *m) { return m ? m->weight_bytes : 0; }
