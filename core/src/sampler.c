/* sampler.c - token sampling: repetition penalty, temperature, top-k, top-p,
 * min-p, and a seeded RNG. Deterministic: the same seed and logits give the
 * same token on every platform (own RNG, own exp, ties broken by token id). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct trl_sampler {
    trl_sampler_params p;
    int32_t vocab;
    uint64_t rng[2];
    int32_t *history; /* ring of the last repeat_last_n accepted tokens */
    int32_t hist_n, hist_pos;
    cand *cands;      /* (vocab) */
    float *probs;     /* (vocab) */
};

trl_sampler_params trl_sampler_default_params(void) {
    trl_sampler_params p = {0.8f, 40, 0.95f, 0.0f, 1.0f, 64, 0};
    return p;
}

/* splitmix64 to seed, xorshift128+ to draw. */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t next_u64(trl_sampler *s) {
    uint64_t a = s->rng[0], b = s->rng[1];
    s->rng[0] = b;
    a ^= a << 23;
    s->rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return s->rng[1] + b;
}

/* Uniform in [0, 1) with 24 random bits: exact in f32. */
static float next_f32(trl_sampler *s) { return (float)(next_u64(s) >> 40) * (1.0f / 16777216.0f); }

void trl_sampler_reset(trl_sampler *s, uint64_t seed) {
    if (!s) return;
    uint64_t x = seed;
    s->rng[0] = splitmix(&x);
    s->rng[1] = splitmix(&x);
    s->hist_n = s->hist_pos = 0;
}

trl_status trl_sampler_create(const trl_sampler_params *p, int32_t vocab, trl_sampler **out, trl_error *err) {
    if (!p || !out) return trl_set_error(err, TRL_ERR_INVALID_ARG, "sampler: NULL argument");
    *out = NULL;
    if (vocab <= 0 || vocab > (1 << 24))
        return trl_set_error(err, TRL_ERR_INVALID_ARG, "sampler: vocab_size %d out of range", vocab);
    if (!(p->temperature == p->temperature) || !(p->top_p == p->top_p) || !(p->min_p == p->min_p) ||
        !(p->repeat_penalty > 0.0f))
        return trl_set_error(err, TRL_ERR_INVALID_ARG, "sampler: temperature, top_p, min_p must be numbers and "
                                                       "repeat_penalty positive");
    if (p->repeat_last_n < 0 || p->repeat_last_n > (1 << 20))
        return trl_set_error(err, TRL_ERR_INVALID_ARG, "sampler: repeat_last_n %d out of range", p->repeat_last_n);
    size_t hist = (size_t)p->repeat_last_n;
    size_t bytes = sizeof(trl_sampler) + (size_t)vocab * (sizeof(cand) + sizeof(float)) + hist * sizeof(int32_t);
    trl_sampler *s = malloc(bytes);
    if (!s) return trl_set_error(err, TRL_ERR_NO_MEMORY, "sampler: cannot allocate %zu bytes", bytes);
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->vocab = vocab;
    s->cands = (cand *)(s + 1);
    s->probs = (float *)(s->cands + vocab);
    s->history = (int32_t *)(s->probs + vocab);
    trl_sampler_reset(s, p->seed);
    *out = s;
    return TRL_OK;
}

void trl_sampler_free(trl_sampler *s) { free(s); }

void trl_sampler_accept(trl_sampler *s, int32_t token) {
    if (!s || s->p.repeat_last_n <= 0) return;
    s->history[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_n < s->p.repeat_last_n) s->hist_n++;
}

/* Descending logit, then ascending id: a total order, so any correct sort agrees. */
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Move the k best candidates to the front (unsorted), in O(n) expected. */
static void select_top(cand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        cand pivot = c[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_cmp(&c[i], &pivot) < 0) i++;
            while (cand_cmp(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                cand t = c[i];
                c[i] = c[j], c[j] = t;
                i++, j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

int32_t trl_sampler_sample(trl_sampler *s, const float *logits) {
    if (!s || !logits) return -1;
    const int V = s->vocab;
    cand *c = s->cands;
    for (int i = 0; i < V; i++) c[i].logit = logits[i], c[i].id = i;
    /* repetition penalty, once per distinct recent token */
    if (s->p.repeat_penalty != 1.0f && s->hist_n > 0) {
        for (int h = 0; h < s->hist_n; h++) {
            int32_t t = s->history[h];
            if (t < 0 || t >= V) continue;
            int dup = 0;
            for (int g = 0; g < h; g++) dup |= s->history[g] == t;
            if (dup) continue;
            float l = c[t].logit;
            c[t].logit = l > 0.0f ? l / s->p.repeat_penalty : l * s->p.repeat_penalty;
        }
    }
    if (s->p.temperature <= 0.0f) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (c[i].logit > c[best].logit) best = i;
        return c[best].id;
    }
    int n = V;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        select_top(c, n, s->p.top_k);
        n = s->p.top_k;
    }
    qsort(c, (size_t)n, sizeof *c, cand_cmp);
    /* softmax at temperature */
    const float inv_t = 1.0f / s->p.temperature;
    float *pr = s->probs, sum = 0.0f;
    for (int i = 0; i < n; i++) {
        pr[i] = trl_expf((c[i].logit - c[0].logit) * inv_t);
        sum += pr[i];
    }
    for (int i = 0; i < n; i++) pr[i] /= sum;
    /* min-p: keep tokens with p >= min_p * p_max (p_max = pr[0]) */
    if (s->p.min_p > 0.0f) {
        float thr = s->p.min_p * pr[0];
        int k = 1;
        while (k < n && pr[k] >= thr) k++;
        n = k;
    }
    /* top-p: the smallest prefix whose mass reaches top_p */
    if (s->p.top_p < 1.0f) {
        float cum = 0.0f;
        int k = 0;
        while (k < n) {
            cum += pr[k++];
            if (cum >= s->p.top_p) break;
        }
        n = k;
    }
    float mass = 0.0f;
    for (int i = 0; i < n; i++) mass += pr[i];
    float r = next_f32(s) * mass, acc = 0.0f;
    for (int i = 0; i < n; i++) {
        acc += pr[i];
        if (r < acc) return c[i].id;
    }
    return c[n - 1].id;
}
