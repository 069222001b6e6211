/* llama2c.c - reader for llama2.c legacy (version 0) checkpoints.
 *
 * Header: 7 x int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len); a negative vocab_size means an untied classifier
 * follows at the end. Then f32 arrays, layers stacked:
 *   token_embedding (V, D), rms_att (L, D), wq (L, D, D), wk (L, kv, D),
 *   wv (L, kv, D), wo (L, D, D), rms_ffn (L, D), w1 (L, H, D), w2 (L, D, H),
 *   w3 (L, H, D), rms_final (D), freq_cis_real (seq, hd/2),
 *   freq_cis_imag (seq, hd/2), [wcls (V, D)]
 * llama2.c applies RoPE to interleaved pairs, so q/k are copied as they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trlc_internal.h"

#define LLAMA2C_MAGIC 0x616b3432u /* "ak42": export.py --version 1 / 2 */

static int32_t rd_i32(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

/* A region of the file: `count` f32 values, with overflow-checked offsets. */
typedef struct region {
    uint64_t off;   /* bytes from the start of the file */
    uint64_t count; /* floats */
} region;

static int take(uint64_t *cursor, uint64_t a, uint64_t b, uint64_t c, region *r) {
    uint64_t n, bytes;
    if (trlc_mul_u64(a, b, &n) || trlc_mul_u64(n, c, &n) || trlc_mul_u64(n, 4, &bytes)) return -1;
    r->off = *cursor;
    r->count = n;
    return trlc_add_u64(*cursor, bytes, cursor);
}

int trlc_llama2c_open(const char *path, const char *tokenizer_path, trlc_model_src **out, char *err,
                      size_t errlen) {
    *out = NULL;
    trlc_model_src *src = trlc_source_new();
    if (!src) return trlc_fail(err, errlen, "%s: out of memory", path);
    src->files = calloc(1, sizeof *src->files);
    if (!src->files) {
        trlc_source_free(src);
        return trlc_fail(err, errlen, "%s: out of memory", path);
    }
    if (trlc_file_map(path, &src->files[0], err, errlen)) {
        trlc_source_free(src);
        return -1;
    }
    src->n_files = 1;
    const uint8_t *base = src->files[0].data;
    uint64_t size = src->files[0].size;
    if (size < 28) {
        trlc_fail(err, errlen, "%s: truncated: %llu bytes, the llama2.c header alone is 28", path,
                  (unsigned long long)size);
        goto fail;
    }
    if ((uint32_t)rd_i32(base) == LLAMA2C_MAGIC) {
        trlc_fail(err, errlen, "%s: llama2.c export version %d is not supported; export with --version 0 (legacy)",
                  path, size >= 8 ? (int)rd_i32(base + 4) : -1);
        goto fail;
    }
    static const char *const field[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                         "seq_len"};
    int32_t h[7];
    for (int i = 0; i < 7; i++) h[i] = rd_i32(base + 4 * i);
    int shared = h[5] > 0;
    if (h[5] < 0) {
        if (h[5] == INT32_MIN) {
            trlc_fail(err, errlen, "%s: header: vocab_size: %d out of range", path, h[5]);
            goto fail;
        }
        h[5] = -h[5];
    }
    for (int i = 0; i < 7; i++)
        if (h[i] <= 0) {
            trlc_fail(err, errlen, "%s: header: %s: %d must be positive", path, field[i], h[i]);
            goto fail;
        }
    int32_t D = h[0], H = h[1], L = h[2], nh = h[3], nkv = h[4], V = h[5], S = h[6];
    if (D % nh) {
        trlc_fail(err, errlen, "%s: header: n_heads: %d does not divide dim %d", path, nh, D);
        goto fail;
    }
    if (nh % nkv) {
        trlc_fail(err, errlen, "%s: header: n_kv_heads: %d does not divide n_heads %d", path, nkv, nh);
        goto fail;
    }
    int32_t hd = D / nh;
    if (hd % 2) {
        trlc_fail(err, errlen, "%s: header: dim / n_heads = %d must be even (RoPE rotates pairs)", path, hd);
        goto fail;
    }
    uint64_t kvd = (uint64_t)nkv * (uint64_t)hd;
    region emb, ratt, wq, wk, wv, wo, rffn, w1, w2, w3, rfin, fr, fi, wcls = {0, 0};
    uint64_t cur = 28;
    if (take(&cur, V, D, 1, &emb) || take(&cur, L, D, 1, &ratt) || take(&cur, L, D, D, &wq) ||
        take(&cur, L, kvd, D, &wk) || take(&cur, L, kvd, D, &wv) || take(&cur, L, D, D, &wo) ||
        take(&cur, L, D, 1, &rffn) || take(&cur, L, H, D, &w1) || take(&cur, L, D, H, &w2) ||
        take(&cur, L, H, D, &w3) || take(&cur, D, 1, 1, &rfin) || take(&cur, S, hd / 2, 1, &fr) ||
        take(&cur, S, hd / 2, 1, &fi) || (!shared && take(&cur, V, D, 1, &wcls))) {
        trlc_fail(err, errlen, "%s: header: dimensions overflow (dim %d, hidden_dim %d, n_layers %d, vocab_size %d)",
                  path, D, H, L, V);
        goto fail;
    }
    if (cur != size) {
        trlc_fail(err, errlen,
                  "%s: file is %llu bytes but its header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                  "n_kv_heads %d, vocab_size %d, seq_len %d) implies %llu; %s",
                  path, (unsigned long long)size, D, H, L, nh, nkv, h[5] * (shared ? 1 : -1), S,
                  (unsigned long long)cur,
                  cur > size ? "truncated" : "trailing bytes (not a llama2.c version-0 checkpoint?)");
        goto fail;
    }
    (void)fr, (void)fi; /* the core computes RoPE itself */

    trl_config *c = &src->cfg;
    c->arch = TRL_ARCH_LLAMA;
    c->mlp = TRL_MLP_SWIGLU;
    c->rope_style = TRL_ROPE_INTERLEAVED;
    c->act_quant = TRL_ACT_FLOAT;
    c->dim = D, c->hidden_dim = H, c->n_layers = L, c->n_heads = nh, c->n_kv_heads = nkv;
    c->head_dim = hd, c->vocab_size = V, c->max_seq_len = S;
    src->rope_theta = 10000.0, src->norm_eps = 1e-5;
    c->rope_theta = 10000.0f, c->norm_eps = 1e-5f;
    c->tied_embeddings = shared;
    c->sub_norms = 0;
    trl_error e;
    if (trl_config_validate(c, &e) != TRL_OK) {
        trlc_fail(err, errlen, "%s: header: %s", path, e.msg);
        goto fail;
    }
    char base_name[128];
    trlc_basename(path, NULL, base_name, sizeof base_name);
    trlc_basename(path, ".bin", src->name, sizeof src->name);
    snprintf(src->source, sizeof src->source, "llama2.c:%s", base_name);

    size_t n = trlc_tensor_specs(c, NULL);
    trlc_tensor_spec *spec = calloc(n, sizeof *spec);
    src->tensors = calloc(n, sizeof *src->tensors);
    if (!spec || !src->tensors) {
        free(spec);
        trlc_fail(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    trlc_tensor_specs(c, spec);
    for (size_t k = 0; k < n; k++) {
        const char *nm = spec[k].name;
        const region *r = NULL;
        int layer = -1, pos = 0;
        char what[32] = "";
        if (!strcmp(nm, "token_embd.weight")) r = &emb, snprintf(what, sizeof what, "token_embedding");
        else if (!strcmp(nm, "output_norm.weight")) r = &rfin, snprintf(what, sizeof what, "rms_final");
        else if (!strcmp(nm, "output.weight")) r = &wcls, snprintf(what, sizeof what, "wcls");
        else if (sscanf(nm, "blk.%d.%n", &layer, &pos) == 1 && pos > 0) {
            static const struct {
                const char *pack, *l2c;
            } M[] = {{"attn_norm.weight", "rms_att"}, {"attn_q.weight", "wq"},   {"attn_k.weight", "wk"},
                     {"attn_v.weight", "wv"},         {"attn_output.weight", "wo"}, {"ffn_norm.weight", "rms_ffn"},
                     {"ffn_gate.weight", "w1"},       {"ffn_up.weight", "w3"},   {"ffn_down.weight", "w2"}};
            const region *R[] = {&ratt, &wq, &wk, &wv, &wo, &rffn, &w1, &w3, &w2};
            for (size_t i = 0; i < sizeof M / sizeof M[0]; i++)
                if (!strcmp(nm + pos, M[i].pack)) r = R[i], snprintf(what, sizeof what, "%s[%d]", M[i].l2c, layer);
        }
        if (!r) { /* cannot happen for a llama config; keep the check anyway */
            free(spec);
            trlc_fail(err, errlen, "%s: no source for tensor %s", path, nm);
            goto fail;
        }
        uint64_t count = (uint64_t)spec[k].shape[0] * (uint64_t)(spec[k].n_dims == 2 ? spec[k].shape[1] : 1);
        uint64_t off = r->off + (layer >= 0 ? (uint64_t)layer * count * 4 : 0);
        trlc_src_tensor *t = &src->tensors[k];
        snprintf(t->name, sizeof t->name, "%s", nm);
        snprintf(t->origin, sizeof t->origin, "%s: %s", path, what);
        t->dtype = TRLC_DT_F32;
        t->n_dims = spec[k].n_dims;
        t->shape[0] = spec[k].shape[0];
        t->shape[1] = spec[k].shape[1];
        t->data = base + off;
        t->nbytes = (size_t)(count * 4);
    }
    src->n_tensors = n;
    free(spec);
    if (tokenizer_path && trlc_source_load_tokenizer_llama2c(src, tokenizer_path, err, errlen)) goto fail;
    *out = src;
    return 0;
fail:
    trlc_source_free(src);
    return -1;
}
