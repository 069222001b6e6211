/* fakesrc.h - in-memory model sources for the converter tests: every tensor the
 * config needs, f32, in one pool, plus a stand-in tokenizer blob (the writer
 * and loader carry the blob without reading it). Include after testutil.h. */
#ifndef TRLC_FAKESRC_H
#define TRLC_FAKESRC_H

#include "trlc_internal.h"

typedef struct fake {
    trlc_model_src *src;
    float *pool;
} fake;

static const char TEMPLATE[] = "{% for m in messages %}\"{{ m.content }}\"\n{% endfor %}\\ \xc3\xa9";

/* fill(ud, tensor index, spec, values): overwrite a tensor's values (already
 * pseudo-random) if it wants to; may be NULL. */
typedef void (*fake_fill_fn)(void *ud, size_t i, const trlc_tensor_spec *spec, float *v);

static inline fake make_fake_fill(trl_config c, unsigned seed, fake_fill_fn fill, void *ud) {
    fake f;
    f.src = trlc_source_new();
    trlc_model_src *s = f.src;
    s->cfg = c;
    s->rope_theta = 10000.0, s->norm_eps = 1e-5;
    snprintf(s->name, sizeof s->name, "fake");
    snprintf(s->source, sizeof s->source, "test:fake");
    size_t n = trlc_tensor_specs(&c, NULL);
    trlc_tensor_spec *spec = calloc(n, sizeof *spec);
    trlc_tensor_specs(&c, spec);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += (size_t)(spec[i].shape[0] * (spec[i].n_dims == 2 ? spec[i].shape[1] : 1));
    f.pool = malloc(total * sizeof(float));
    s->tensors = calloc(n, sizeof *s->tensors);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        trlc_src_tensor *t = &s->tensors[i];
        size_t cnt = (size_t)(spec[i].shape[0] * (spec[i].n_dims == 2 ? spec[i].shape[1] : 1));
        for (size_t k = 0; k < cnt; k++) {
            float v = rnd(&seed);
            f.pool[at + k] = spec[i].n_dims == 1 ? 1.0f + 0.1f * v : 0.2f * v;
        }
        if (fill) fill(ud, i, &spec[i], f.pool + at);
        snprintf(t->name, sizeof t->name, "%s", spec[i].name);
        snprintf(t->origin, sizeof t->origin, "fake: %s", spec[i].name);
        t->dtype = TRLC_DT_F32;
        t->n_dims = spec[i].n_dims;
        t->shape[0] = spec[i].shape[0];
        t->shape[1] = spec[i].shape[1];
        t->data = (const uint8_t *)(f.pool + at);
        t->nbytes = cnt * 4;
        at += cnt;
    }
    s->n_tensors = n;
    free(spec);
    s->tok.len = 100;
    s->tok.blob = malloc(100);
    for (int i = 0; i < 100; i++) ((unsigned char *)s->tok.blob)[i] = (unsigned char)(i * 7 + 3);
    s->tok.kind = TRL_TOK_SPM;
    s->tok.bos_id = 1;
    s->tok.eos_id = 2;
    s->tok.vocab_size = c.vocab_size;
    s->tok.chat_template = malloc(sizeof TEMPLATE);
    memcpy(s->tok.chat_template, TEMPLATE, sizeof TEMPLATE);
    return f;
}

static inline fake make_fake(trl_config c, unsigned seed) { return make_fake_fill(c, seed, NULL, NULL); }

static inline void free_fake(fake *f) {
    trlc_source_free(f->src);
    free(f->pool);
}

/* Logits of the last of `n` tokens through a pack (NULL on failure, message on
 * stderr); rank_slices < 0: all. The caller frees the result. */
static inline float *pack_logits(const trlc_pack *p, const int32_t *toks, int n, int32_t rank_slices) {
    trl_model *m = NULL;
    trl_ctx *ctx = NULL;
    trl_error e;
    float *out = NULL;
    if (trl_model_create(&p->config, p->tensors, p->n_tensors, &m, &e) != TRL_OK) {
        fprintf(stderr, "trl_model_create: %s\n", e.msg);
        return NULL;
    }
    trl_ctx_params cp = trl_ctx_default_params();
    if (trl_ctx_create(m, &cp, &ctx, &e) != TRL_OK) {
        fprintf(stderr, "trl_ctx_create: %s\n", e.msg);
    } else if (trl_ctx_set_rank_slices(ctx, rank_slices) != TRL_OK || trl_ctx_prefill(ctx, toks, n, NULL) != TRL_OK) {
        fprintf(stderr, "prefill: %s\n", trl_ctx_last_error(ctx));
    } else {
        out = malloc((size_t)p->config.vocab_size * sizeof *out);
        memcpy(out, trl_ctx_logits(ctx), (size_t)p->config.vocab_size * sizeof *out);
    }
    trl_ctx_free(ctx);
    trl_model_free(m);
    return out;
}

#endif
