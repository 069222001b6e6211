/* calib.c - calibration text: activation statistics for the bcq objective and
 * perplexity, both measured by the core (trillium-convert --calib).
 *
 * The source model is built in memory in f32 (its f32 tensors are used in
 * place from the mapping, the others converted) and run over the tokenized
 * text with an observer on the context that sees each linear layer's input
 * (core/src/internal.h, trl_ctx_set_linear_observer). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "model.h"
#include "sha256.h"
#include "trlc_internal.h"

#define PPL_BATCH 64 /* tokens per prefill: the logits buffer is PPL_BATCH x vocab floats */

void trlc_calib_free(trlc_calib *c) {
    if (!c) return;
    if (c->col_ms)
        for (size_t i = 0; i < (size_t)c->n_layers * TRL_LT_COUNT; i++) free(c->col_ms[i]);
    free(c->col_ms);
    free(c->col_n);
    free(c->ids);
    free(c);
}

int trlc_calib_open(const trlc_model_src *src, const char *path, int32_t max_tokens, trlc_calib **out, char *err,
                    size_t errlen) {
    *out = NULL;
    if (max_tokens < 2) return trlc_fail(err, errlen, "--calib-tokens: %d is fewer than 2", (int)max_tokens);
    if (!src->tok.blob) return trlc_fail(err, errlen, "%s: --calib needs the model's tokenizer", path);
    char *text = NULL;
    size_t len = 0;
    if (trlc_file_read(path, &text, &len, err, errlen)) return -1;
    trlc_calib *c = calloc(1, sizeof *c);
    trl_tokenizer *tok = NULL;
    trl_error e;
    int rc = -1;
    if (!c) {
        trlc_fail(err, errlen, "out of memory");
        goto out;
    }
    uint8_t dg[32];
    trlc_sha256(text, len, dg);
    trlc_sha256_hex(dg, c->text_sha256);
    if (trl_tokenizer_create(src->tok.blob, src->tok.len, &tok, &e) != TRL_OK) {
        trlc_fail(err, errlen, "%s: tokenizer: %s", src->source, e.msg);
        goto out;
    }
    /* tokenize a prefix long enough for max_tokens (a token has at least one
     * byte, but byte fallback can make more tokens than bytes: try, then grow) */
    size_t take = len;
    if ((uint64_t)take > (uint64_t)max_tokens * 64) take = (size_t)max_tokens * 64;
    int32_t need = trl_tokenize(tok, text, take, 1, NULL, 0);
    if (need < 0) {
        trlc_fail(err, errlen, "%s: the model's tokenizer cannot encode this text", path);
        goto out;
    }
    c->ids = malloc(((size_t)need + 1) * sizeof *c->ids);
    if (!c->ids || trl_tokenize(tok, text, take, 1, c->ids, need) != need) {
        trlc_fail(err, errlen, "%s: cannot tokenize the calibration text", path);
        goto out;
    }
    c->n_ids = need < max_tokens ? need : max_tokens;
    if (c->n_ids < 2) {
        trlc_fail(err, errlen, "%s: %d token%s; perplexity needs at least 2", path, (int)c->n_ids,
                  c->n_ids == 1 ? "" : "s");
        goto out;
    }
    for (int32_t i = 0; i < c->n_ids; i++)
        if (c->ids[i] < 0 || c->ids[i] >= src->cfg.vocab_size) {
            trlc_fail(err, errlen, "%s: token id %d is outside the model's vocabulary (%d)", path, (int)c->ids[i],
                      (int)src->cfg.vocab_size);
            goto out;
        }
    c->n_layers = src->cfg.n_layers;
    rc = 0;
out:
    trl_tokenizer_free(tok);
    free(text);
    if (rc) trlc_calib_free(c);
    else *out = c;
    return rc;
}

/* ------------------------------------------------------------- perplexity */

typedef struct ppl_acc {
    double nll;
    uint64_t n;
} ppl_acc;

/* -log softmax(row)[target], in double */
static double nll_of(const float *row, int32_t V, int32_t target) {
    double mx = -INFINITY;
    for (int32_t i = 0; i < V; i++)
        if (row[i] > mx) mx = row[i];
    double s = 0.0;
    for (int32_t i = 0; i < V; i++) s += exp((double)row[i] - mx);
    return log(s) + mx - (double)row[target];
}

static int run_ppl(const trl_model *m, trl_ctx *ctx, const int32_t *ids, int32_t n, ppl_acc *acc,
                   trlc_progress_fn progress, void *user, const char *what, char *err, size_t errlen) {
    const trl_config *cfg = trl_model_config(m);
    const int32_t V = cfg->vocab_size, W = trl_ctx_n_ctx(ctx);
    float *logits = malloc((size_t)PPL_BATCH * (size_t)V * sizeof *logits);
    if (!logits) return trlc_fail(err, errlen, "out of memory for %d x %d logits", PPL_BATCH, (int)V);
    int rc = -1;
    for (int32_t s = 0; s < n; s += W) {
        const int32_t e = n - s < W ? n : s + W;
        if (trl_ctx_truncate(ctx, 0) != TRL_OK) {
            trlc_fail(err, errlen, "perplexity: %s", trl_ctx_last_error(ctx));
            goto out;
        }
        for (int32_t b = s; b < e; b += PPL_BATCH) {
            const int32_t nb = e - b < PPL_BATCH ? e - b : PPL_BATCH;
            if (trl_ctx_prefill(ctx, ids + b, nb, logits) != TRL_OK) {
                trlc_fail(err, errlen, "perplexity: %s", trl_ctx_last_error(ctx));
                goto out;
            }
            for (int32_t t = 0; t < nb; t++) {
                const int32_t i = b + t; /* row t predicts ids[i + 1] */
                if (i + 1 >= e) break;
                double v = nll_of(logits + (size_t)t * V, V, ids[i + 1]);
                if (!isfinite(v)) {
                    trlc_fail(err, errlen, "perplexity: the logits at token %d are not finite", (int)i);
                    goto out;
                }
                acc->nll += v;
                acc->n++;
            }
            if (progress) progress(user, what, (uint64_t)(b + nb), (uint64_t)n);
        }
    }
    rc = 0;
out:
    free(logits);
    return rc;
}

static int make_ctx(const trl_model *m, int32_t n, trl_ctx **ctx, char *err, size_t errlen) {
    const trl_config *cfg = trl_model_config(m);
    trl_ctx_params cp = trl_ctx_default_params();
    cp.n_ctx = n < cfg->max_seq_len ? n : cfg->max_seq_len;
    cp.n_batch = PPL_BATCH;
    trl_error e;
    if (trl_ctx_create(m, &cp, ctx, &e) != TRL_OK) return trlc_fail(err, errlen, "perplexity: %s", e.msg);
    return 0;
}

int trlc_perplexity(const trl_model *m, int32_t rank_slices, const int32_t *ids, int32_t n, double *ppl,
                    trlc_progress_fn progress, void *user, const char *what, char *err, size_t errlen) {
    if (!m || !ids || n < 2 || !ppl) return trlc_fail(err, errlen, "perplexity: needs a model and 2 or more tokens");
    trl_ctx *ctx;
    if (make_ctx(m, n, &ctx, err, errlen)) return -1;
    trl_ctx_set_rank_slices(ctx, rank_slices);
    ppl_acc acc = {0, 0};
    int rc = run_ppl(m, ctx, ids, n, &acc, progress, user, what, err, errlen);
    trl_ctx_free(ctx);
    if (rc) return -1;
    if (!acc.n) return trlc_fail(err, errlen, "perplexity: no token to predict (raise --calib-tokens)");
    *ppl = exp(acc.nll / (double)acc.n);
    return 0;
}

/* ------------------------------------------------- statistics of the source */

typedef struct stats_acc {
    int32_t n_layers;
    double **sum; /* (n_layers * TRL_LT_COUNT) sums of x^2 per column */
    int32_t *cols;
    uint64_t *count;
    int oom;
} stats_acc;

static void observe(void *user, int l, int lt, const float *x, int nt, int cols) {
    stats_acc *s = user;
    if (l < 0 || l >= s->n_layers || lt < 0 || lt >= TRL_LT_COUNT || cols <= 0) return;
    const size_t k = (size_t)l * TRL_LT_COUNT + (size_t)lt;
    if (!s->sum[k]) {
        s->sum[k] = calloc((size_t)cols, sizeof **s->sum);
        if (!s->sum[k]) {
            s->oom = 1;
            return;
        }
        s->cols[k] = cols;
    }
    if (s->cols[k] != cols) return;
    double *d = s->sum[k];
    for (int t = 0; t < nt; t++) {
        const float *r = x + (size_t)t * (size_t)cols;
        for (int c = 0; c < cols; c++) d[c] += (double)r[c] * r[c];
    }
    s->count[k] += (uint64_t)nt;
}

int trlc_calib_run_source(const trlc_model_src *src, trlc_calib *c, int stats, trlc_progress_fn progress,
                          void *user, char *err, size_t errlen) {
    const size_t nt = src->n_tensors, nslots = (size_t)src->cfg.n_layers * TRL_LT_COUNT;
    trl_tensor *tt = calloc(nt ? nt : 1, sizeof *tt);
    float **owned = calloc(nt ? nt : 1, sizeof *owned);
    stats_acc acc;
    memset(&acc, 0, sizeof acc);
    acc.n_layers = src->cfg.n_layers;
    acc.sum = calloc(nslots, sizeof *acc.sum);
    acc.cols = calloc(nslots, sizeof *acc.cols);
    acc.count = calloc(nslots, sizeof *acc.count);
    trl_model *m = NULL;
    trl_ctx *ctx = NULL;
    int rc = -1;
    if (!tt || !owned || !acc.sum || !acc.cols || !acc.count) {
        trlc_fail(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nt; i++) {
        const trlc_src_tensor *t = &src->tensors[i];
        uint64_t rows = t->n_dims == 2 ? (uint64_t)t->shape[0] : 1;
        uint64_t cols = t->n_dims == 2 ? (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
        uint64_t numel, srb = trlc_dtype_row_bytes(t->dtype, cols);
        if (trlc_mul_u64(rows, cols, &numel) || numel > SIZE_MAX / 4 || !srb) {
            trlc_fail(err, errlen, "%s: size overflows", t->origin);
            goto out;
        }
        tt[i].name = t->name;
        tt[i].encoding = TRL_ENC_F32;
        tt[i].n_dims = t->n_dims;
        tt[i].shape[0] = t->shape[0];
        tt[i].shape[1] = t->n_dims == 2 ? t->shape[1] : 0;
        tt[i].bytes = (size_t)numel * 4;
        if (t->dtype == TRLC_DT_F32 && (uintptr_t)t->data % 4 == 0) {
            tt[i].data = t->data; /* in place: the mapping is little-endian f32 already */
            continue;
        }
        /* mapped, not malloc'd: the pages go back to the system when unmapped
         * (glibc would keep sub-32 MiB blocks in its heap after free) */
        void *mp = mmap(NULL, (size_t)numel * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        owned[i] = mp == MAP_FAILED ? NULL : mp;
        if (!owned[i]) {
            trlc_fail(err, errlen, "%s: out of memory for the f32 copy (%llu weights)", t->origin,
                      (unsigned long long)numel);
            goto out;
        }
        for (uint64_t r = 0; r < rows; r++)
            if (trlc_dtype_to_f32(t->dtype, t->data + r * srb, (size_t)cols, owned[i] + r * cols)) {
                trlc_fail(err, errlen, "%s: dtype %s cannot be converted", t->origin, trlc_dtype_name(t->dtype));
                goto out;
            }
        tt[i].data = owned[i];
        trlc_source_release(src, t); /* the f32 copy is what runs: the mapped pages can go */
    }
    trl_error e;
    if (trl_model_create(&src->cfg, tt, nt, &m, &e) != TRL_OK) {
        trlc_fail(err, errlen, "%s: %s", src->source, e.msg);
        goto out;
    }
    if (make_ctx(m, c->n_ids, &ctx, err, errlen)) goto out;
    if (stats) trl_ctx_set_linear_observer(ctx, observe, &acc);
    ppl_acc pa = {0, 0};
    if (run_ppl(m, ctx, c->ids, c->n_ids, &pa, progress, user, "calibration", err, errlen)) goto out;
    if (acc.oom) {
        trlc_fail(err, errlen, "out of memory for the activation statistics");
        goto out;
    }
    if (!pa.n) {
        trlc_fail(err, errlen, "perplexity: no token to predict");
        goto out;
    }
    c->parent_ppl = exp(pa.nll / (double)pa.n);
    if (stats) {
        if (!c->col_ms) {
            c->col_ms = calloc(nslots, sizeof *c->col_ms);
            c->col_n = calloc(nslots, sizeof *c->col_n);
            if (!c->col_ms || !c->col_n) {
                trlc_fail(err, errlen, "out of memory");
                goto out;
            }
        }
        for (size_t k = 0; k < nslots; k++) {
            if (!acc.sum[k] || !acc.count[k]) continue;
            free(c->col_ms[k]);
            if (!(c->col_ms[k] = malloc((size_t)acc.cols[k] * sizeof **c->col_ms))) {
                trlc_fail(err, errlen, "out of memory");
                goto out;
            }
            for (int32_t j = 0; j < acc.cols[k]; j++)
                c->col_ms[k][j] = (float)(acc.sum[k][j] / (double)acc.count[k]);
            c->col_n[k] = acc.cols[k];
        }
    }
    rc = 0;
out:
    trl_ctx_free(ctx);
    trl_model_free(m);
    for (size_t i = 0; owned && i < nt; i++)
        if (owned[i]) munmap(owned[i], tt[i].bytes);
    for (size_t k = 0; acc.sum && k < nslots; k++) free(acc.sum[k]);
    free(acc.sum);
    free(acc.cols);
    free(acc.count);
    free(owned);
    free(tt);
    return rc;
}

const float *trlc_calib_col_weights(const trlc_calib *c, const char *name, uint64_t cols) {
    static const char *const lt_names[TRL_LT_COUNT] = {
        NULL, "attn_q", "attn_k", "attn_v", NULL, "attn_output", NULL, "ffn_gate", "ffn_up", NULL, "ffn_down",
    };
    if (!c || !c->col_ms || strncmp(name, "blk.", 4)) return NULL;
    char *end;
    long l = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || l < 0 || l >= c->n_layers) return NULL;
    for (int lt = 0; lt < TRL_LT_COUNT; lt++) {
        if (!lt_names[lt]) continue;
        size_t k = strlen(lt_names[lt]);
        if (strncmp(end + 1, lt_names[lt], k) || strcmp(end + 1 + k, ".weight")) continue;
        size_t slot = (size_t)l * TRL_LT_COUNT + (size_t)lt;
        return c->col_ms[slot] && (uint64_t)c->col_n[slot] == cols ? c->col_ms[slot] : NULL;
    }
    return NULL;
}
