/* hf.c - reader for Hugging Face model directories (LlamaForCausalLM,
 * BitNetForCausalLM): config.json, model.safetensors or a sharded
 * model.safetensors.index.json, tokenizer.json (+ tokenizer_config.json).
 *
 * HF checkpoints keep q/k in the layout of rotate_half, so the pack says
 * rope_style "half" and the weights are copied as they are (no permutation). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "trlc_internal.h"

/* ------------------------------------------------------------ config.json */

/* A positive int32 member; `dflt` < 0 means required. */
static int cfg_int(const tj_doc *d, const char *path, const char *key, int64_t dflt, int32_t *out, char *err,
                   size_t errlen) {
    int t = tj_obj_get(d, 0, key);
    if (t < 0 || tj_is_null(d, t)) {
        if (dflt < 0) return trlc_fail(err, errlen, "%s: %s: missing", path, key);
        *out = (int32_t)dflt;
        return 0;
    }
    int64_t v;
    if (d->toks[t].type != TJ_NUM)
        return trlc_fail(err, errlen, "%s: %s: expected a positive integer", path, key);
    if (tj_get_i64(d, t, &v) || v > INT32_MAX) {
        char txt[48];
        size_t n = d->toks[t].end - d->toks[t].start;
        if (n >= sizeof txt) n = sizeof txt - 1;
        memcpy(txt, d->src + d->toks[t].start, n);
        txt[n] = 0;
        return trlc_fail(err, errlen, "%s: %s: %s is not an integer that fits in 32 bits", path, key, txt);
    }
    if (v <= 0) return trlc_fail(err, errlen, "%s: %s: %lld must be positive", path, key, (long long)v);
    *out = (int32_t)v;
    return 0;
}

static int cfg_num(const tj_doc *d, const char *path, const char *key, double dflt, double *out, char *err,
                   size_t errlen) {
    int t = tj_obj_get(d, 0, key);
    if (t < 0 || tj_is_null(d, t)) {
        *out = dflt;
        return 0;
    }
    if (tj_get_f64(d, t, out)) return trlc_fail(err, errlen, "%s: %s: expected a finite number", path, key);
    return 0;
}

static int cfg_bool(const tj_doc *d, const char *path, const char *key, int dflt, int *out, char *err,
                    size_t errlen) {
    int t = tj_obj_get(d, 0, key);
    if (t < 0 || tj_is_null(d, t)) {
        *out = dflt;
        return 0;
    }
    if (tj_get_bool(d, t, out)) return trlc_fail(err, errlen, "%s: %s: expected true or false", path, key);
    return 0;
}

static void tok_text(const tj_doc *d, int t, char *buf, size_t cap) {
    if (t >= 0 && d->toks[t].type == TJ_STR) {
        if (tj_str_copy(d, t, buf, cap) < 0) snprintf(buf, cap, "?");
    } else {
        snprintf(buf, cap, "(not a string)");
    }
}

int trlc_hf_parse_config(const char *json, size_t len, const char *path, trl_config *cfg, double *rope_theta,
                         double *norm_eps, char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    tj_doc d;
    char jerr[128];
    if (tj_parse(json, len, &d, jerr, sizeof jerr)) return trlc_fail(err, errlen, "%s: bad JSON: %s", path, jerr);
    int rc = -1;
    if (d.toks[0].type != TJ_OBJ) {
        trlc_fail(err, errlen, "%s: expected a JSON object", path);
        goto done;
    }
    /* architecture: "architectures"[0], else "model_type" */
    int bitnet = -1;
    char what[96];
    int ta = tj_obj_get(&d, 0, "architectures");
    if (ta >= 0 && !tj_is_null(&d, ta)) {
        if (d.toks[ta].type != TJ_ARR || d.toks[ta].size < 1) {
            trlc_fail(err, errlen, "%s: architectures: expected a non-empty array of strings", path);
            goto done;
        }
        tok_text(&d, tj_first(&d, ta), what, sizeof what);
        if (!strcmp(what, "LlamaForCausalLM")) bitnet = 0;
        else if (!strcasecmp(what, "BitNetForCausalLM")) bitnet = 1;
        else {
            trlc_fail(err, errlen, "%s: architectures: '%s' is not supported (LlamaForCausalLM, BitNetForCausalLM are)",
                      path, what);
            goto done;
        }
    } else {
        int tm = tj_obj_get(&d, 0, "model_type");
        if (tm < 0) {
            trlc_fail(err, errlen, "%s: architectures: missing (and no model_type)", path);
            goto done;
        }
        tok_text(&d, tm, what, sizeof what);
        if (!strcmp(what, "llama")) bitnet = 0;
        else if (!strcmp(what, "bitnet")) bitnet = 1;
        else {
            trlc_fail(err, errlen, "%s: model_type: '%s' is not supported (llama, bitnet are)", path, what);
            goto done;
        }
    }
    cfg->arch = bitnet ? TRL_ARCH_BITNET : TRL_ARCH_LLAMA;
    cfg->sub_norms = bitnet;
    /* BitNet b1.58 quantizes activations to int8 before every BitLinear, but format
     * version 1 cores run float activations only: trillium-convert --act-quant int8
     * asks for the faithful setting. */
    cfg->act_quant = TRL_ACT_FLOAT;
    cfg->rope_style = TRL_ROPE_HALF;

    if (cfg_int(&d, path, "hidden_size", -1, &cfg->dim, err, errlen) ||
        cfg_int(&d, path, "intermediate_size", -1, &cfg->hidden_dim, err, errlen) ||
        cfg_int(&d, path, "num_hidden_layers", -1, &cfg->n_layers, err, errlen) ||
        cfg_int(&d, path, "num_attention_heads", -1, &cfg->n_heads, err, errlen) ||
        cfg_int(&d, path, "num_key_value_heads", cfg->n_heads, &cfg->n_kv_heads, err, errlen) ||
        cfg_int(&d, path, "vocab_size", -1, &cfg->vocab_size, err, errlen) ||
        cfg_int(&d, path, "max_position_embeddings", 2048, &cfg->max_seq_len, err, errlen))
        goto done;
    int th = tj_obj_get(&d, 0, "head_dim");
    if ((th < 0 || tj_is_null(&d, th)) && cfg->dim % cfg->n_heads) {
        trlc_fail(err, errlen, "%s: num_attention_heads: %d does not divide hidden_size %d (and no head_dim)", path,
                  cfg->n_heads, cfg->dim);
        goto done;
    }
    if (cfg_int(&d, path, "head_dim", cfg->dim / cfg->n_heads, &cfg->head_dim, err, errlen)) goto done;
    if (cfg->n_heads % cfg->n_kv_heads) {
        trlc_fail(err, errlen, "%s: num_key_value_heads: %d does not divide num_attention_heads %d", path,
                  cfg->n_kv_heads, cfg->n_heads);
        goto done;
    }
    if (cfg->head_dim % 2) {
        trlc_fail(err, errlen, "%s: head_dim: %d must be even (RoPE rotates pairs)", path, cfg->head_dim);
        goto done;
    }
    /* LlamaConfig's defaults */
    if (cfg_num(&d, path, "rope_theta", 10000.0, rope_theta, err, errlen) ||
        cfg_num(&d, path, "rms_norm_eps", 1e-6, norm_eps, err, errlen))
        goto done;
    if (!(*rope_theta > 0) || *rope_theta > 3.0e38) {
        trlc_fail(err, errlen, "%s: rope_theta: %g must be positive", path, *rope_theta);
        goto done;
    }
    if (!(*norm_eps >= 0) || !(*norm_eps < 1)) {
        trlc_fail(err, errlen, "%s: rms_norm_eps: %g must be in [0, 1)", path, *norm_eps);
        goto done;
    }
    cfg->rope_theta = (float)*rope_theta;
    cfg->norm_eps = (float)*norm_eps;
    int tied;
    if (cfg_bool(&d, path, "tie_word_embeddings", 0, &tied, err, errlen)) goto done;
    cfg->tied_embeddings = tied;
    int ta2 = tj_obj_get(&d, 0, "hidden_act");
    if (ta2 < 0 || tj_is_null(&d, ta2) || tj_str_eq(&d, ta2, "silu")) cfg->mlp = TRL_MLP_SWIGLU;
    else if (tj_str_eq(&d, ta2, "relu2")) cfg->mlp = TRL_MLP_RELU2;
    else {
        tok_text(&d, ta2, what, sizeof what);
        trlc_fail(err, errlen, "%s: hidden_act: '%s' is not supported (silu, relu2 are)", path, what);
        goto done;
    }
    /* refuse what would silently change the numerics */
    int rs = tj_obj_get(&d, 0, "rope_scaling");
    if (rs >= 0 && !tj_is_null(&d, rs)) {
        int ty = tj_obj_get(&d, rs, "rope_type");
        if (ty < 0) ty = tj_obj_get(&d, rs, "type");
        tok_text(&d, ty, what, sizeof what);
        if (!strcmp(what, "default")) goto scaling_ok;
        trlc_fail(err, errlen, "%s: rope_scaling: '%s' is not supported", path, what);
        goto done;
    }
scaling_ok:
    for (int i = 0; i < 2; i++) {
        const char *key = i ? "mlp_bias" : "attention_bias";
        int b;
        if (cfg_bool(&d, path, key, 0, &b, err, errlen)) goto done;
        if (b) {
            trlc_fail(err, errlen, "%s: %s: biases are not supported", path, key);
            goto done;
        }
    }
    trl_error e;
    if (trl_config_validate(cfg, &e) != TRL_OK) {
        trlc_fail(err, errlen, "%s: %s", path, e.msg);
        goto done;
    }
    rc = 0;
done:
    tj_free(&d);
    return rc;
}

/* ------------------------------------------------------------ tensor names */

static const struct {
    const char *hf, *pack;
} LAYER_NAMES[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.attn_sub_norm.weight", "attn_sub_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.ffn_sub_norm.weight", "ffn_sub_norm.weight"},
};
#define N_LAYER_NAMES (sizeof LAYER_NAMES / sizeof LAYER_NAMES[0])

static const struct {
    const char *hf, *pack;
} GLOBAL_NAMES[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

/* 1: mapped into out; 0: a buffer to skip; -1: unknown name. */
static int map_name(const char *hf, char *out, size_t cap) {
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(hf, GLOBAL_NAMES[i].hf)) {
            snprintf(out, cap, "%s", GLOBAL_NAMES[i].pack);
            return 1;
        }
    size_t n = strlen(hf);
    if (n >= 9 && !strcmp(hf + n - 9, ".inv_freq") && strstr(hf, "rotary_emb")) return 0;
    static const char pre[] = "model.layers.";
    if (strncmp(hf, pre, sizeof pre - 1)) return -1;
    const char *p = hf + sizeof pre - 1;
    long layer = 0;
    if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    while (*p >= '0' && *p <= '9') {
        layer = layer * 10 + (*p++ - '0');
        if (layer > 1000000) return -1;
    }
    if (*p++ != '.') return -1;
    for (size_t i = 0; i < N_LAYER_NAMES; i++)
        if (!strcmp(p, LAYER_NAMES[i].hf)) {
            snprintf(out, cap, "blk.%ld.%s", layer, LAYER_NAMES[i].pack);
            return 1;
        }
    return -1;
}

/* The HF name of a pack name, for "missing tensor" messages. */
static void hf_name_of(const char *pack, char *out, size_t cap) {
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(pack, GLOBAL_NAMES[i].pack)) {
            snprintf(out, cap, "%s", GLOBAL_NAMES[i].hf);
            return;
        }
    int layer = 0, k = 0;
    if (sscanf(pack, "blk.%d.%n", &layer, &k) == 1 && k > 0)
        for (size_t i = 0; i < N_LAYER_NAMES; i++)
            if (!strcmp(pack + k, LAYER_NAMES[i].pack)) {
                snprintf(out, cap, "model.layers.%d.%s", layer, LAYER_NAMES[i].hf);
                return;
            }
    snprintf(out, cap, "%s", pack);
}

static void shape_str(int nd, const int64_t *s, char *buf, size_t cap) {
    if (nd == 0) snprintf(buf, cap, "[]");
    else if (nd == 1) snprintf(buf, cap, "[%lld]", (long long)s[0]);
    else if (nd == 2) snprintf(buf, cap, "[%lld, %lld]", (long long)s[0], (long long)s[1]);
    else snprintf(buf, cap, "[%lld, %lld, ...] (%d dims)", (long long)s[0], (long long)s[1], nd);
}

/* ------------------------------------------------------------ the reader */

/* Shard file names from model.safetensors.index.json, and a check that each
 * weight_map entry lies in its shard (done after the shards are open). */
typedef struct shard_index {
    char *json;
    size_t len;
    tj_doc doc;
    int map; /* weight_map token */
    char **files;
    size_t n_files;
} shard_index;

static void index_free(shard_index *ix) {
    for (size_t i = 0; i < ix->n_files; i++) free(ix->files[i]);
    free(ix->files);
    tj_free(&ix->doc);
    free(ix->json);
    memset(ix, 0, sizeof *ix);
}

static int index_read(const char *path, shard_index *ix, char *err, size_t errlen) {
    memset(ix, 0, sizeof *ix);
    if (trlc_file_read(path, &ix->json, &ix->len, err, errlen)) return -1;
    char jerr[128];
    if (tj_parse(ix->json, ix->len, &ix->doc, jerr, sizeof jerr)) {
        trlc_fail(err, errlen, "%s: bad JSON: %s", path, jerr);
        goto fail;
    }
    ix->map = tj_obj_get(&ix->doc, 0, "weight_map");
    if (ix->map < 0 || ix->doc.toks[ix->map].type != TJ_OBJ) {
        trlc_fail(err, errlen, "%s: weight_map: missing or not an object", path);
        goto fail;
    }
    ix->files = calloc(ix->doc.toks[ix->map].size + 1, sizeof *ix->files);
    if (!ix->files) {
        trlc_fail(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (int k = tj_first(&ix->doc, ix->map); k >= 0; k = tj_next(&ix->doc, ix->map, k + 1)) {
        int v = k + 1;
        char name[256], file[256];
        tok_text(&ix->doc, k, name, sizeof name);
        if (ix->doc.toks[v].type != TJ_STR || tj_str_copy(&ix->doc, v, file, sizeof file) >= (long)sizeof file ||
            !trlc_plain_filename(file)) {
            trlc_fail(err, errlen, "%s: weight_map.%s: expected a plain file name", path, name);
            goto fail;
        }
        size_t j = 0;
        while (j < ix->n_files && strcmp(ix->files[j], file)) j++;
        if (j == ix->n_files) {
            ix->files[j] = malloc(strlen(file) + 1);
            if (!ix->files[j]) {
                trlc_fail(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            strcpy(ix->files[j], file);
            ix->n_files++;
        }
    }
    if (!ix->n_files) {
        trlc_fail(err, errlen, "%s: weight_map: empty", path);
        goto fail;
    }
    return 0;
fail:
    index_free(ix);
    return -1;
}

static int open_shards(const char *dir, trlc_model_src *src, char *err, size_t errlen) {
    char *ixpath = trlc_path_join(dir, "model.safetensors.index.json");
    char *single = trlc_path_join(dir, "model.safetensors");
    int rc = -1;
    shard_index ix;
    memset(&ix, 0, sizeof ix);
    if (!ixpath || !single) {
        trlc_fail(err, errlen, "%s: out of memory", dir);
        goto done;
    }
    if (trlc_exists(ixpath)) {
        if (index_read(ixpath, &ix, err, errlen)) goto done;
        src->st = calloc(ix.n_files, sizeof *src->st);
        if (!src->st) {
            trlc_fail(err, errlen, "%s: out of memory", dir);
            goto done;
        }
        for (size_t i = 0; i < ix.n_files; i++) {
            char *p = trlc_path_join(dir, ix.files[i]);
            if (!p) {
                trlc_fail(err, errlen, "%s: out of memory", dir);
                goto done;
            }
            int r = trlc_safetensors_open(p, &src->st[i], err, errlen);
            free(p);
            if (r) goto done;
            src->n_st++;
        }
        for (int k = tj_first(&ix.doc, ix.map); k >= 0; k = tj_next(&ix.doc, ix.map, k + 1)) {
            char name[256], file[256];
            tok_text(&ix.doc, k, name, sizeof name);
            tok_text(&ix.doc, k + 1, file, sizeof file);
            size_t j = 0;
            while (j < ix.n_files && strcmp(ix.files[j], file)) j++;
            if (!trlc_safetensors_find(&src->st[j], name)) {
                trlc_fail(err, errlen, "%s: weight_map.%s: says %s holds it, but it does not", ixpath, name, file);
                goto done;
            }
        }
    } else if (trlc_exists(single)) {
        src->st = calloc(1, sizeof *src->st);
        if (!src->st) {
            trlc_fail(err, errlen, "%s: out of memory", dir);
            goto done;
        }
        if (trlc_safetensors_open(single, &src->st[0], err, errlen)) goto done;
        src->n_st = 1;
    } else {
        trlc_fail(err, errlen, "%s: no model.safetensors or model.safetensors.index.json", dir);
        goto done;
    }
    rc = 0;
done:
    index_free(&ix);
    free(ixpath);
    free(single);
    return rc;
}

static int bind_tensors(const char *dir, trlc_model_src *src, char *err, size_t errlen) {
    const trl_config *c = &src->cfg;
    size_t n = trlc_tensor_specs(c, NULL), have = 0;
    /* the config sizes the tables below: bound it by what the files hold first (loosely: a
     * checkpoint missing a few tensors gets the message naming them, below) */
    for (size_t f = 0; f < src->n_st; f++) have += src->st[f].n_tensors;
    if (n > 2 * have + 64)
        return trlc_fail(err, errlen, "%s: config.json needs %zu tensors (num_hidden_layers %d) but the checkpoint has %zu",
                         dir, n, c->n_layers, have);
    trlc_tensor_spec *spec = calloc(n, sizeof *spec);
    src->tensors = calloc(n, sizeof *src->tensors);
    const trlc_st_tensor **slot = calloc(n, sizeof *slot);
    const trlc_safetensors **from = calloc(n, sizeof *from);
    int rc = -1;
    if (!spec || !src->tensors || !slot || !from) {
        trlc_fail(err, errlen, "%s: out of memory", dir);
        goto done;
    }
    trlc_tensor_specs(c, spec);
    const char *arch = c->arch == TRL_ARCH_BITNET ? "BitNetForCausalLM" : "LlamaForCausalLM";
    for (size_t f = 0; f < src->n_st; f++) {
        const trlc_safetensors *st = &src->st[f];
        for (size_t i = 0; i < st->n_tensors; i++) {
            const trlc_st_tensor *t = &st->tensors[i];
            char pack[64];
            int m = map_name(t->name, pack, sizeof pack);
            if (m == 0) continue;
            if (m < 0) {
                trlc_fail(err, errlen, "%s: tensor '%s': unknown tensor name (not a %s weight)", st->path, t->name,
                          arch);
                goto done;
            }
            if (c->tied_embeddings && !strcmp(pack, "output.weight")) continue; /* HF ties it to the embedding */
            size_t k = 0;
            while (k < n && strcmp(spec[k].name, pack)) k++;
            if (k == n) {
                int layer;
                if (sscanf(pack, "blk.%d.", &layer) == 1 && layer >= c->n_layers)
                    trlc_fail(err, errlen, "%s: tensor '%s': layer %d, but num_hidden_layers is %d", st->path,
                              t->name, layer, c->n_layers);
                else
                    trlc_fail(err, errlen, "%s: tensor '%s': not used by a %s model (sub-norms are BitNet-only)",
                              st->path, t->name, arch);
                goto done;
            }
            if (slot[k]) {
                trlc_fail(err, errlen, "%s: tensor '%s': also in %s", st->path, t->name, from[k]->path);
                goto done;
            }
            if (t->dtype != TRLC_DT_F32 && t->dtype != TRLC_DT_F16 && t->dtype != TRLC_DT_BF16) {
                trlc_fail(err, errlen, "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16 are)", st->path,
                          t->name, trlc_dtype_name(t->dtype));
                goto done;
            }
            int ok = t->n_dims == spec[k].n_dims && t->shape[0] == spec[k].shape[0] &&
                     (spec[k].n_dims == 1 || t->shape[1] == spec[k].shape[1]);
            if (!ok) {
                char have[64], want[64];
                shape_str(t->n_dims, t->shape, have, sizeof have);
                shape_str(spec[k].n_dims, spec[k].shape, want, sizeof want);
                trlc_fail(err, errlen, "%s: tensor '%s': shape %s, but config.json implies %s", st->path, t->name,
                          have, want);
                goto done;
            }
            slot[k] = t;
            from[k] = st;
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (!slot[k]) {
            char hf[128];
            hf_name_of(spec[k].name, hf, sizeof hf);
            trlc_fail(err, errlen, "%s: missing tensor '%s' (%s)%s", dir, hf, spec[k].name,
                      !strcmp(spec[k].name, "output.weight") ? "; tie_word_embeddings is false" : "");
            goto done;
        }
        trlc_src_tensor *o = &src->tensors[k];
        snprintf(o->name, sizeof o->name, "%s", spec[k].name);
        snprintf(o->origin, sizeof o->origin, "%s: %s", from[k]->path, slot[k]->name);
        o->dtype = slot[k]->dtype;
        o->n_dims = spec[k].n_dims;
        o->shape[0] = spec[k].shape[0];
        o->shape[1] = spec[k].shape[1];
        o->data = slot[k]->data;
        o->nbytes = slot[k]->nbytes;
    }
    src->n_tensors = n;
    rc = 0;
done:
    free(spec);
    free(slot);
    free(from);
    return rc;
}

int trlc_hf_open(const char *dir, const char *tokenizer_path, trlc_model_src **out, char *err, size_t errlen) {
    *out = NULL;
    trlc_model_src *src = trlc_source_new();
    char *cpath = trlc_path_join(dir, "config.json");
    char *tj = trlc_path_join(dir, "tokenizer.json");
    char *tc = trlc_path_join(dir, "tokenizer_config.json");
    char *json = NULL;
    size_t len = 0;
    int rc = -1;
    if (!src || !cpath || !tj || !tc) {
        trlc_fail(err, errlen, "%s: out of memory", dir);
        goto done;
    }
    if (!trlc_exists(cpath)) {
        trlc_fail(err, errlen, "%s: no config.json: not a Hugging Face model directory", dir);
        goto done;
    }
    if (trlc_file_read(cpath, &json, &len, err, errlen)) goto done;
    if (trlc_hf_parse_config(json, len, cpath, &src->cfg, &src->rope_theta, &src->norm_eps, err, errlen))
        goto done;
    trlc_basename(dir, NULL, src->name, sizeof src->name);
    snprintf(src->source, sizeof src->source, "hf:%s", src->name);
    if (open_shards(dir, src, err, errlen) || bind_tensors(dir, src, err, errlen)) goto done;
    if (tokenizer_path) {
        size_t n = strlen(tokenizer_path);
        if (n >= 5 && !strcmp(tokenizer_path + n - 5, ".json")) {
            /* its tokenizer_config.json (bos/eos, chat template) sits beside it */
            char tdir[4096];
            snprintf(tdir, sizeof tdir, "%s", tokenizer_path);
            char *slash = strrchr(tdir, '/');
            if (slash) slash[1] = 0;
            else snprintf(tdir, sizeof tdir, "./");
            char *cfgp = trlc_path_join(tdir, "tokenizer_config.json");
            int r = trlc_source_load_tokenizer_hf(src, tokenizer_path, cfgp && trlc_exists(cfgp) ? cfgp : NULL, err,
                                                  errlen);
            free(cfgp);
            if (r) goto done;
        } else if (trlc_source_load_tokenizer_llama2c(src, tokenizer_path, err, errlen)) {
            goto done;
        }
    } else if (trlc_exists(tj)) {
        if (trlc_source_load_tokenizer_hf(src, tj, trlc_exists(tc) ? tc : NULL, err, errlen)) goto done;
    } /* else no tokenizer: the pack writer refuses such a source with a hint */
    *out = src;
    src = NULL;
    rc = 0;
done:
    trlc_source_free(src);
    free(json);
    free(cpath);
    free(tj);
    free(tc);
    return rc;
}
