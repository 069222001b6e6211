/* model.c - bind caller-owned tensors to a model: check every name, shape,
 * encoding, size and alignment once, so the forward pass never has to.
 *
 * One allocation holds the model, its layers and the rank-slice descriptors
 * (counted in a first pass over the names); a second one, only if the pack has
 * t1 (1.6-bit) tensors, holds their expansion to the t2 compute layout. */
#include <stdlib.h>
#include <string.h>

#include "model.h"

static const char *const layer_names[TRL_LT_COUNT] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_sub_norm", "attn_output",
    "ffn_norm", "ffn_gate", "ffn_up", "ffn_sub_norm", "ffn_down",
};

static int is_norm(int lt) {
    return lt == TRL_LT_ATTN_NORM || lt == TRL_LT_FFN_NORM || lt == TRL_LT_ATTN_SUB_NORM ||
           lt == TRL_LT_FFN_SUB_NORM;
}

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

enum { NAME_GLOBAL, NAME_WEIGHT, NAME_LR_V, NAME_LR_U };

typedef struct parsed {
    int kind;  /* NAME_* */
    int layer; /* -1 for globals */
    int lt;    /* layer tensor, or 0/1/2 = token_embd/output_norm/output */
    int slice;
} parsed;

static int parse_uint(const char **p, int limit, int *out) {
    long n = 0;
    if (**p < '0' || **p > '9') return -1;
    while (**p >= '0' && **p <= '9') {
        n = n * 10 + (*(*p)++ - '0');
        if (n >= limit) return -1;
    }
    *out = (int)n;
    return 0;
}

/* "token_embd.weight" | "blk.N.<name>.weight" | "blk.N.<name>.lr_v.S" | "blk.N.<name>.lr_u.S". */
static int parse_name(const char *name, int n_layers, parsed *o) {
    memset(o, 0, sizeof *o);
    o->layer = -1;
    if (!strcmp(name, "token_embd.weight")) return o->lt = 0, 0;
    if (!strcmp(name, "output_norm.weight")) return o->lt = 1, 0;
    if (!strcmp(name, "output.weight")) return o->lt = 2, 0;
    if (strncmp(name, "blk.", 4)) return -1;
    const char *p = name + 4;
    if (parse_uint(&p, n_layers, &o->layer) || *p++ != '.') return -1;
    for (int i = 0; i < TRL_LT_COUNT; i++) {
        size_t k = strlen(layer_names[i]);
        if (strncmp(p, layer_names[i], k)) continue;
        const char *q = p + k;
        o->lt = i;
        if (!strcmp(q, ".weight")) return o->kind = NAME_WEIGHT, 0;
        if (is_norm(i)) continue;
        if (!strncmp(q, ".lr_v.", 6) || !strncmp(q, ".lr_u.", 6)) {
            o->kind = q[4] == 'v' ? NAME_LR_V : NAME_LR_U;
            q += 6;
            if (parse_uint(&q, TRL_MAX_SLICES, &o->slice) || *q) return -1;
            return 0;
        }
    }
    return -1;
}

static int dense(trl_encoding e) { return e == TRL_ENC_F32 || e == TRL_ENC_F16 || e == TRL_ENC_Q8_0; }

/* Check a matrix tensor and describe it in w. Expected rows/cols; rows < 0: any rows (rank slices). */
static trl_status bind_matrix(const trl_tensor *t, int64_t rows, int64_t cols, trl_weight *w, trl_error *err) {
    if ((unsigned)t->encoding >= TRL_ENC_COUNT)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: unknown encoding %d", t->name, (int)t->encoding);
    if (!t->data) return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: no data", t->name);
    if (t->n_dims != 2 || (rows >= 0 && t->shape[0] != rows) || t->shape[1] != cols || t->shape[0] <= 0)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: shape must be [%lld, %lld]", t->name,
                             (long long)rows, (long long)cols);
    rows = t->shape[0];
    trl_error perr;
    if (trl_enc_params_check(t->encoding, &t->params, (uint64_t)rows, (uint64_t)cols, &perr))
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: %s", t->name, perr.msg);
    size_t want = trl_tensor_bytes(t->encoding, &t->params, (uint64_t)rows, (uint64_t)cols);
    if (!want || t->bytes != want)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: %zu bytes, expected %zu for [%lld, %lld] %s",
                             t->name, t->bytes, want, (long long)rows, (long long)cols, trl_encoding_name(t->encoding));
    size_t align = t->encoding == TRL_ENC_F32 || t->encoding == TRL_ENC_T2 ? 4 : t->encoding == TRL_ENC_F16 ? 2 : 1;
    if ((uintptr_t)t->data % align)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: data not %zu-byte aligned", t->name, align);
    memset(w, 0, sizeof *w);
    w->enc = t->encoding;
    w->rows = (int32_t)rows;
    w->cols = (int32_t)cols;
    w->params = t->params;
    w->data = t->data;
    switch (t->encoding) {
    case TRL_ENC_BCQ: w->row_bytes = trl_bcq_row_bytes(&t->params, (uint64_t)cols); break;
    case TRL_ENC_T1:
    case TRL_ENC_T2:
        w->row_bytes = trl_encoding_row_bytes(t->encoding, (uint64_t)cols);
        w->n_scales = (int32_t)trl_ternary_n_scales(&t->params, (uint64_t)rows);
        if (t->encoding == TRL_ENC_T2) w->scales = (const float *)(w->data + (size_t)rows * w->row_bytes);
        break;
    default: w->row_bytes = trl_encoding_row_bytes(t->encoding, (uint64_t)cols); break;
    }
    return TRL_OK;
}

static trl_status bind_vector(const trl_tensor *t, int64_t n, const float **vec, trl_error *err) {
    if (!t->data) return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: no data", t->name);
    if (t->n_dims != 1 || t->shape[0] != n)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: shape must be [%lld]", t->name, (long long)n);
    if (t->encoding != TRL_ENC_F32)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: norm weights must be f32, not %s", t->name,
                             trl_encoding_name(t->encoding));
    if (t->bytes != (size_t)n * 4)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: %zu bytes, expected %lld", t->name, t->bytes,
                             (long long)n * 4);
    if ((uintptr_t)t->data % 4)
        return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: data not 4-byte aligned", t->name);
    *vec = t->data;
    return TRL_OK;
}

/* Expand a bound t1 weight into t2 at dst (rows * t2 row bytes + scales). */
static void expand_t1(trl_weight *w, uint8_t *dst) {
    const size_t rb2 = trl_encoding_row_bytes(TRL_ENC_T2, (uint64_t)w->cols);
    for (int32_t r = 0; r < w->rows; r++) {
        const uint8_t *src = w->data + (size_t)r * w->row_bytes;
        uint8_t *row = dst + (size_t)r * rb2;
        memset(row, 0x55, rb2);
        for (int32_t c = 0; c < w->cols; c++) trl_t2_set_code(row, (uint64_t)c, trl_t1_get_code(src, (uint64_t)c));
    }
    const float *scales = (const float *)(void *)(w->data + (size_t)w->rows * w->row_bytes);
    float *ds = (float *)(void *)(dst + (size_t)w->rows * rb2);
    memcpy(ds, scales, (size_t)w->n_scales * 4);
    w->enc = TRL_ENC_T2;
    w->data = dst;
    w->row_bytes = rb2;
    w->scales = ds;
}

static size_t t2_bytes(const trl_weight *w) {
    return (size_t)w->rows * trl_encoding_row_bytes(TRL_ENC_T2, (uint64_t)w->cols) + (size_t)w->n_scales * 4;
}

trl_status trl_model_create(const trl_config *cfg, const trl_tensor *tensors, size_t n_tensors, trl_model **out,
                            trl_error *err) {
    if (!cfg || !out || (!tensors && n_tensors))
        return trl_set_error(err, TRL_ERR_INVALID_ARG, "trl_model_create: NULL argument");
    *out = NULL;
    trl_status s = trl_config_validate(cfg, err);
    if (s) return s;
    const size_t nl = (size_t)cfg->n_layers;

    /* pass 1: names, and how many rank slices each factorised layer has */
    int32_t *nslices = calloc(nl * TRL_LT_COUNT, sizeof *nslices);
    if (!nslices) return trl_set_error(err, TRL_ERR_NO_MEMORY, "model: out of memory");
    size_t total_slices = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        parsed pn;
        if (!tensors[i].name || parse_name(tensors[i].name, cfg->n_layers, &pn)) {
            free(nslices);
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: unknown name",
                                 tensors[i].name ? tensors[i].name : "(null)");
        }
        if (pn.kind == NAME_LR_V) {
            int32_t *n = &nslices[(size_t)pn.layer * TRL_LT_COUNT + (size_t)pn.lt];
            if (pn.slice + 1 > *n) total_slices += (size_t)(pn.slice + 1 - *n), *n = pn.slice + 1;
        }
    }
    size_t bytes = sizeof(trl_model) + nl * sizeof(trl_layer) + 2 * total_slices * sizeof(trl_weight);
    trl_model *m = calloc(1, bytes);
    if (!m) {
        free(nslices);
        return trl_set_error(err, TRL_ERR_NO_MEMORY, "model: cannot allocate %zu bytes", bytes);
    }
    m->cfg = *cfg;
    m->layers = (trl_layer *)(void *)((char *)m + sizeof *m);
    trl_weight *slice_mem = (trl_weight *)(m->layers + nl);
    for (size_t l = 0; l < nl; l++)
        for (int lt = 0; lt < TRL_LT_COUNT; lt++) {
            int32_t n = nslices[l * TRL_LT_COUNT + (size_t)lt];
            trl_lowrank *lr = &m->layers[l].lr[lt];
            lr->n_slices = n;
            lr->v = slice_mem, slice_mem += n;
            lr->u = slice_mem, slice_mem += n;
            if (n > m->max_slices) m->max_slices = n;
        }
    free(nslices);
    /* seen flags for slices live in the weights themselves: data != NULL */

    /* pass 2: bind */
    for (size_t i = 0; i < n_tensors; i++) {
        const trl_tensor *t = &tensors[i];
        parsed pn;
        parse_name(t->name, cfg->n_layers, &pn);
        int64_t rows, cols;
        if (pn.layer < 0) {
            int *seen = &m->seen_global[pn.lt];
            if (*seen) { s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: bound twice", t->name); goto fail; }
            if (pn.lt == 1) s = bind_vector(t, cfg->dim, &m->output_norm, err);
            else if (pn.lt == 0) {
                s = bind_matrix(t, cfg->vocab_size, cfg->dim, &m->tok_embd, err);
                if (!s && !dense(t->encoding))
                    s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: embeddings must be f32, f16 or q8_0, not %s",
                                      t->name, trl_encoding_name(t->encoding));
            } else {
                if (cfg->tied_embeddings)
                    s = trl_set_error(err, TRL_ERR_BAD_TENSOR,
                                      "tensor output.weight: present but config.tied_embeddings is true");
                else s = bind_matrix(t, cfg->vocab_size, cfg->dim, &m->output, err);
            }
            if (s) goto fail;
            *seen = 1;
        } else {
            trl_layer *L = &m->layers[pn.layer];
            if ((pn.lt == TRL_LT_ATTN_SUB_NORM || pn.lt == TRL_LT_FFN_SUB_NORM) && !cfg->sub_norms) {
                s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: present but config.sub_norms is false", t->name);
                goto fail;
            }
            layer_shape(cfg, pn.lt, &rows, &cols);
            if (pn.kind == NAME_WEIGHT) {
                int *seen = L->seen + pn.lt;
                if (*seen) { s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: bound twice", t->name); goto fail; }
                s = cols ? bind_matrix(t, rows, cols, &L->w[pn.lt], err) : bind_vector(t, rows, &L->norm[pn.lt], err);
                if (s) goto fail;
                *seen = 1;
            } else {
                trl_lowrank *lr = &L->lr[pn.lt];
                trl_weight *w = pn.kind == NAME_LR_V ? &lr->v[pn.slice] : &lr->u[pn.slice];
                if (pn.slice >= lr->n_slices) {
                    s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: lr_u slice without its lr_v", t->name);
                    goto fail;
                }
                if (w->data) { s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: bound twice", t->name); goto fail; }
                s = bind_matrix(t, -1, pn.kind == NAME_LR_V ? cols : rows, w, err);
                if (s) goto fail;
                if (!dense(t->encoding)) {
                    s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: rank slices must be f32, f16 or q8_0, not %s",
                                      t->name, trl_encoding_name(t->encoding));
                    goto fail;
                }
                if (w->rows > TRL_MAX_SLICE_RANK) {
                    s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor %s: %d rows, a rank slice has at most %d",
                                      t->name, w->rows, TRL_MAX_SLICE_RANK);
                    goto fail;
                }
            }
        }
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
    size_t expand_bytes = 0;
    for (int l = 0; l < cfg->n_layers; l++)
        for (int lt = 0; lt < TRL_LT_COUNT; lt++) {
            trl_layer *L = &m->layers[l];
            trl_lowrank *lr = &L->lr[lt];
            for (int32_t k = 0; k < lr->n_slices; k++)
                if (!lr->v[k].data || !lr->u[k].data || lr->v[k].rows != lr->u[k].rows) {
                    s = trl_set_error(err, TRL_ERR_BAD_TENSOR,
                                      "tensor blk.%d.%s.lr_%c.%d: missing, or its rank differs from its partner", l,
                                      layer_names[lt], lr->v[k].data ? 'u' : 'v', k);
                    goto fail;
                }
            int needed = is_norm(lt) ? !(lt == TRL_LT_ATTN_SUB_NORM || lt == TRL_LT_FFN_SUB_NORM) || cfg->sub_norms
                                     : lr->n_slices == 0;
            if (needed && !L->seen[lt]) {
                s = trl_set_error(err, TRL_ERR_BAD_TENSOR, "tensor blk.%d.%s.weight: missing", l, layer_names[lt]);
                goto fail;
            }
            if (!is_norm(lt) && L->seen[lt]) {
                trl_weight *w = &L->w[lt];
                w->act_int8 = cfg->act_quant == TRL_ACT_INT8;
                if (w->enc == TRL_ENC_T1) expand_bytes += (t2_bytes(w) + 63) / 64 * 64;
            }
        }
    if (m->output.enc == TRL_ENC_T1 && !cfg->tied_embeddings) expand_bytes += (t2_bytes(&m->output) + 63) / 64 * 64;
    if (expand_bytes) {
        m->expanded = malloc(expand_bytes);
        if (!m->expanded) {
            s = trl_set_error(err, TRL_ERR_NO_MEMORY, "model: cannot allocate %zu bytes to expand t1 tensors", expand_bytes);
            goto fail;
        }
        uint8_t *cur = m->expanded;
        for (int l = 0; l < cfg->n_layers; l++)
            for (int lt = 0; lt < TRL_LT_COUNT; lt++) {
                trl_weight *w = &m->layers[l].w[lt];
                if (!is_norm(lt) && m->layers[l].seen[lt] && w->enc == TRL_ENC_T1) {
                    size_t b = t2_bytes(w);
                    expand_t1(w, cur);
                    cur += (b + 63) / 64 * 64;
                }
            }
        if (m->output.enc == TRL_ENC_T1) expand_t1(&m->output, cur);
    }
    *out = m;
    return TRL_OK;
fail:
    free(m->expanded);
    free(m);
    return s;
}

void trl_model_free(trl_model *m) {
    if (!m) return;
    free(m->expanded);
    free(m);
}

const trl_config *trl_model_config(const trl_model *m) { return m ? &m->cfg : NULL; }

size_t trl_model_weight_bytes(const trl_model *m) { return m ? m->weight_bytes : 0; }

int32_t trl_model_max_rank_slices(const trl_model *m) { return m ? m->max_slices : 0; }
