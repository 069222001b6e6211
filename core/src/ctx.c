/* ctx.c - the inference context: KV cache, activations, and the forward pass.
 *
 * One allocation per context, sized from the config before it is made
 * (trl_ctx_memory_bytes); the forward pass allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "threads.h"

#define ALIGN 64
/* Below this many multiply-adds a fork-join (~10 us) costs more than it saves:
 * run on the calling thread. The result is the same either way. */
#define MT_MIN_WORK ((int64_t)1 << 16)

struct trl_ctx {
    const trl_model *m;
    int32_t n_ctx, n_batch, n_past;
    /* all in one arena, each (shape) in floats */
    float *k_cache;   /* (n_layers, n_ctx, kv_dim) */
    float *v_cache;   /* (n_layers, n_ctx, kv_dim) */
    float *rope;      /* (n_ctx, head_dim/2, 2): cos, sin */
    float *x;         /* (n_batch, dim) residual stream */
    float *xn;        /* (n_batch, max(dim, q_dim)) normed input of a linear layer */
    float *xb;        /* (n_batch, dim) output of attn_output / ffn_down */
    float *q;         /* (n_batch, q_dim) */
    float *att;       /* (n_batch, q_dim) attention output, heads concatenated */
    float *hb;        /* (n_batch, hidden) */
    float *hb2;       /* (n_batch, hidden) */
    float *scores;    /* (n_ctx) */
    float *logits;    /* (vocab) of the last token */
    float *lr_t;      /* (n_batch, TRL_MAX_SLICE_RANK) V x of a rank slice */
    void *act;        /* kernel activation scratch, trl_act_bytes_bound(max cols, n_batch) bytes */
    int32_t rank_slices; /* active rank slices; INT32_MAX = all */
    trl_pool *pool;   /* n_threads workers (in the arena) */
    int64_t mt_min_work; /* smaller jobs run on the calling thread (MT_MIN_WORK) */
    int32_t n_threads;
    char err[256];
    int has_logits;
    trl_linear_observer observer; /* NULL: none (trl_ctx_set_linear_observer) */
    void *observer_user;
};

/* The arena plan: every region's size in floats, in order. Returns total bytes or 0 on overflow. */
typedef struct plan { uint64_t k, v, rope, x, xn, xb, q, att, hb, hb2, scores, logits, lr_t, act, pool; } plan;
#define PLAN_N 15

static uint64_t align_up(uint64_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static size_t make_plan(const trl_config *c, int64_t n_ctx, int64_t nb, int nth, plan *p) {
    uint64_t qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t D = (uint64_t)c->dim;
    p->k = p->v = (uint64_t)c->n_layers * (uint64_t)n_ctx * kvd; /* each factor < 2^24: < 2^72? check below */
    if ((uint64_t)c->n_layers * (uint64_t)n_ctx > UINT64_MAX / (kvd ? kvd : 1)) return 0;
    p->rope = (uint64_t)n_ctx * (uint64_t)c->head_dim;
    p->x = p->xb = nb * D;
    p->xn = nb * (D > qd ? D : qd);
    if ((uint64_t)c->hidden_dim > D && (uint64_t)c->hidden_dim > qd) p->xn = nb * (uint64_t)c->hidden_dim;
    p->q = p->att = nb * qd;
    p->hb = p->hb2 = nb * (uint64_t)c->hidden_dim;
    p->scores = (uint64_t)n_ctx * (uint64_t)nth; /* one row per thread */
    p->logits = (uint64_t)c->vocab_size;
    p->lr_t = nb * TRL_MAX_SLICE_RANK;
    uint64_t maxc = D > qd ? D : qd;
    if ((uint64_t)c->hidden_dim > maxc) maxc = (uint64_t)c->hidden_dim;
    p->act = (trl_act_bytes_bound((int32_t)maxc, (int)(nb < TRL_KMAX_TOKENS ? nb : TRL_KMAX_TOKENS)) + 3) / 4;
    p->pool = (trl_pool_bytes(nth) + 3) / 4;
    const uint64_t *f = &p->k;
    uint64_t total = align_up(sizeof(struct trl_ctx));
    for (int i = 0; i < PLAN_N; i++) {
        if (f[i] > (UINT64_MAX / 8) / 4) return 0;
        total += align_up(f[i] * 4);
        if (total > (uint64_t)SIZE_MAX - ALIGN) return 0;
    }
    return (size_t)total;
}

trl_ctx_params trl_ctx_default_params(void) {
    trl_ctx_params p = {0, 64, 1};
    return p;
}

static void resolve(const trl_config *c, const trl_ctx_params *p, int32_t *n_ctx, int32_t *nb, int *nth) {
    *n_ctx = p->n_ctx > 0 ? p->n_ctx : c->max_seq_len;
    *nb = p->n_batch > 0 ? p->n_batch : 64;
    if (*nb > *n_ctx) *nb = *n_ctx;
    *nth = p->n_threads > 1 ? p->n_threads : 1;
}

size_t trl_ctx_memory_bytes(const trl_config *cfg, const trl_ctx_params *p) {
    if (!cfg || !p || trl_config_validate(cfg, NULL) || p->n_ctx < 0 || p->n_batch < 0) return 0;
    int32_t n_ctx, nb;
    int nth;
    resolve(cfg, p, &n_ctx, &nb, &nth);
    plan pl;
    return make_plan(cfg, n_ctx, nb, nth, &pl);
}

trl_status trl_ctx_create(const trl_model *m, const trl_ctx_params *p, trl_ctx **out, trl_error *err) {
    if (!m || !p || !out) return trl_set_error(err, TRL_ERR_INVALID_ARG, "trl_ctx_create: NULL argument");
    *out = NULL;
    const trl_config *c = &m->cfg;
    if (p->n_ctx < 0) return trl_set_error(err, TRL_ERR_INVALID_ARG, "ctx.n_ctx: %d is negative", p->n_ctx);
    if (p->n_batch < 0) return trl_set_error(err, TRL_ERR_INVALID_ARG, "ctx.n_batch: %d is negative", p->n_batch);
    if (p->n_threads < 0 || p->n_threads > TRL_MAX_THREADS)
        return trl_set_error(err, TRL_ERR_INVALID_ARG, "ctx.n_threads: %d is not 0..%d", p->n_threads, TRL_MAX_THREADS);
    if (p->n_threads > 1 && !trl_threads_available())
        return trl_set_error(err, TRL_ERR_UNSUPPORTED,
                             "ctx.n_threads: %d, but this build runs one thread (use the pthreads build)", p->n_threads);
    int32_t n_ctx, nb;
    int nth;
    resolve(c, p, &n_ctx, &nb, &nth);
    plan pl;
    size_t bytes = make_plan(c, n_ctx, nb, nth, &pl);
    if (!bytes) return trl_set_error(err, TRL_ERR_NO_MEMORY, "ctx: size overflows for n_ctx %d", n_ctx);
    char *mem = malloc(bytes);
    if (!mem) return trl_set_error(err, TRL_ERR_NO_MEMORY, "ctx: cannot allocate %zu bytes for n_ctx %d", bytes, n_ctx);
    trl_ctx *x = (trl_ctx *)mem;
    memset(x, 0, sizeof *x);
    x->m = m;
    x->n_ctx = n_ctx;
    x->n_batch = nb;
    char *cur = mem + align_up(sizeof(struct trl_ctx));
    float *act, *pool;
    float **dst[PLAN_N] = {&x->k_cache, &x->v_cache, &x->rope, &x->x, &x->xn, &x->xb, &x->q,
                           &x->att, &x->hb, &x->hb2, &x->scores, &x->logits, &x->lr_t, &act, &pool};
    const uint64_t *f = &pl.k;
    for (int i = 0; i < PLAN_N; i++) {
        *dst[i] = (float *)cur;
        cur += align_up(f[i] * 4);
    }
    x->act = act;
    x->rank_slices = INT32_MAX;
    x->n_threads = nth;
    x->mt_min_work = MT_MIN_WORK;
    x->pool = trl_pool_init(pool, nth);
    if (!x->pool) {
        free(mem);
        return trl_set_error(err, TRL_ERR_NO_MEMORY, "ctx.n_threads: could not start %d threads", nth);
    }
    /* RoPE table in double precision, rounded once: identical on every platform. */
    int half = c->head_dim / 2;
    for (int32_t pos = 0; pos < n_ctx; pos++)
        for (int i = 0; i < half; i++) {
            double freq = pow((double)c->rope_theta, -2.0 * i / (double)c->head_dim);
            double a = (double)pos * freq;
            x->rope[((size_t)pos * half + i) * 2] = (float)cos(a);
            x->rope[((size_t)pos * half + i) * 2 + 1] = (float)sin(a);
        }
    *out = x;
    return TRL_OK;
}

void trl_ctx_free(trl_ctx *c) {
    if (!c) return;
    trl_pool_destroy(c->pool);
    free(c);
}

const char *trl_ctx_last_error(const trl_ctx *c) { return c ? c->err : "NULL context"; }
const float *trl_ctx_logits(const trl_ctx *c) { return c && c->has_logits ? c->logits : NULL; }
int32_t trl_ctx_n_past(const trl_ctx *c) { return c ? c->n_past : 0; }
int32_t trl_ctx_n_ctx(const trl_ctx *c) { return c ? c->n_ctx : 0; }

trl_status trl_ctx_truncate(trl_ctx *c, int32_t n) {
    if (!c) return TRL_ERR_INVALID_ARG;
    if (n < 0 || n > c->n_past) {
        snprintf(c->err, sizeof c->err, "truncate: %d is outside [0, %d]", n, c->n_past);
        return TRL_ERR_INVALID_ARG;
    }
    c->n_past = n;
    c->has_logits = 0;
    return TRL_OK;
}

void trl_ctx_set_mt_min_work(trl_ctx *c, int64_t work) {
    if (c) c->mt_min_work = work < 0 ? MT_MIN_WORK : work;
}

void trl_ctx_set_linear_observer(trl_ctx *c, trl_linear_observer fn, void *user) {
    if (!c) return;
    c->observer = fn;
    c->observer_user = user;
}

trl_status trl_ctx_set_rank_slices(trl_ctx *c, int32_t n) {
    if (!c) return TRL_ERR_INVALID_ARG;
    c->rank_slices = n < 0 ? INT32_MAX : n;
    return TRL_OK;
}

int32_t trl_ctx_rank_slices(const trl_ctx *c) {
    if (!c) return 0;
    int32_t m = c->m->max_slices;
    return c->rank_slices < m ? c->rank_slices : m;
}

/* ------------------------------------------------------------ forward pass */

/* Matmuls that read the same activations (q, k, v; gate, up) run as one job:
 * one prepare, one fork-join, their 8-row blocks split over threads as if the
 * matrices were stacked. Every row is computed exactly as with one thread and
 * one matrix, so results depend neither on the thread count nor the grouping. */
#define MM_MAX 3
typedef struct mm_task {
    const trl_kernel_ops *k;
    const trl_act *act;
    int n;
    const trl_weight *w[MM_MAX];
    float *y[MM_MAX];
    int ldy[MM_MAX];
} mm_task;

static void mm_run(void *arg, int ith, int nth) {
    const mm_task *t = arg;
    int blocks = 0;
    for (int j = 0; j < t->n; j++) blocks += (t->w[j]->rows + 7) / 8;
    const int b0 = (int)((int64_t)blocks * ith / nth), b1 = (int)((int64_t)blocks * (ith + 1) / nth);
    int off = 0;
    for (int j = 0; j < t->n && off < b1; j++) {
        const trl_weight *w = t->w[j];
        const int nb = (w->rows + 7) / 8;
        const int lo = b0 > off ? b0 - off : 0, hi = b1 - off < nb ? b1 - off : nb;
        if (lo < hi) t->k->matmul(w, t->act, t->y[j], t->ldy[j], lo * 8, hi * 8 < w->rows ? hi * 8 : w->rows);
        off += nb;
    }
}

static void run_split(trl_ctx *c, trl_task_fn fn, void *arg, int64_t work) {
    if (work < c->mt_min_work) fn(arg, 0, 1);
    else trl_pool_run(c->pool, fn, arg);
}

/* Whether one prepare() of x serves both weights (prepare reads only these). */
static int same_act(const trl_weight *a, const trl_weight *b) {
    return trl_kernels_best(a) == trl_kernels_best(b) && a->enc == b->enc && a->cols == b->cols &&
           a->act_int8 == b->act_int8 && !memcmp(&a->params, &b->params, sizeof a->params);
}

/* y_j (nt, ldy_j) = W_j x for n <= MM_MAX weights that same_act() pairs. */
static void matmul_group(trl_ctx *c, int n, const trl_weight *const *w, const float *x, int nt, float *const *y,
                         const int *ldy) {
    const trl_kernel_ops *k = trl_kernels_best(w[0]);
    for (int t0 = 0; t0 < nt; t0 += TRL_KMAX_TOKENS) {
        const int m = nt - t0 < TRL_KMAX_TOKENS ? nt - t0 : TRL_KMAX_TOKENS;
        trl_act act;
        k->prepare(w[0], x + (size_t)t0 * w[0]->cols, m, c->act, &act);
        mm_task task = {k, &act, n, {0}, {0}, {0}};
        int64_t work = 0;
        for (int j = 0; j < n; j++) {
            task.w[j] = w[j];
            task.y[j] = y[j] + (size_t)t0 * ldy[j];
            task.ldy[j] = ldy[j];
            work += (int64_t)w[j]->rows * w[j]->cols * m;
        }
        run_split(c, mm_run, &task, work);
    }
}

static void matmul_mt(trl_ctx *c, const trl_weight *w, const float *x, int nt, float *y, int ldy) {
    matmul_group(c, 1, &w, x, nt, &y, &ldy);
}

/* y += U_s (V_s x) for one rank slice, split over threads by output columns
 * (each element still sums its rank components in order). */
typedef struct lr_task {
    const trl_weight *u;
    const float *t; /* (nt, r) */
    float *y;
    int nt, ldy;
} lr_task;

static void lr_run(void *arg, int ith, int nth) {
    const lr_task *a = arg;
    const int chunks = (a->u->cols + TRL_KCHUNK - 1) / TRL_KCHUNK;
    trl_lowrank_accumulate(a->u, a->t, a->nt, a->y, a->ldy, chunks * ith / nth, chunks * (ith + 1) / nth);
}

/* y_j (nt, ldy_j) = W_j x for the n linear layers lt[j] of block l, which all
 * read x: each one's base weight (if any) plus its active rank slices. Base
 * weights whose activations prepare alike run as one job (matmul_group). */
static void linear(trl_ctx *c, int l, int n, const int *lt, const float *x, int nt, float *const *y,
                   const int *ldy) {
    const trl_layer *L = &c->m->layers[l];
    const trl_weight *w[MM_MAX];
    int grouped = n > 1;
    for (int j = 0; j < n; j++) {
        w[j] = &L->w[lt[j]];
        grouped = grouped && w[j]->rows && same_act(w[0], w[j]);
    }
    for (int j = 0; j < n && c->observer; j++) {
        const trl_lowrank *lr = &L->lr[lt[j]];
        c->observer(c->observer_user, l, lt[j], x, nt, w[j]->rows ? w[j]->cols : (lr->n_slices ? lr->v[0].cols : 0));
    }
    if (grouped) matmul_group(c, n, w, x, nt, y, ldy);
    for (int j = 0; j < n; j++) {
        const trl_lowrank *lr = &L->lr[lt[j]];
        const int rows = w[j]->rows ? w[j]->rows : (lr->n_slices ? lr->u[0].cols : 0);
        if (!w[j]->rows)
            for (int t = 0; t < nt; t++) memset(y[j] + (size_t)t * ldy[j], 0, sizeof(float) * (size_t)rows);
        else if (!grouped) matmul_mt(c, w[j], x, nt, y[j], ldy[j]);
        const int ns = lr->n_slices < c->rank_slices ? lr->n_slices : c->rank_slices;
        for (int s = 0; s < ns; s++) {
            const trl_weight *v = &lr->v[s];
            matmul_mt(c, v, x, nt, c->lr_t, v->rows);
            lr_task task = {&lr->u[s], c->lr_t, y[j], nt, ldy[j]};
            run_split(c, lr_run, &task, (int64_t)lr->u[s].rows * lr->u[s].cols * nt);
        }
    }
}

static void linear1(trl_ctx *c, int l, int lt, const float *x, int nt, float *y, int ldy) {
    linear(c, l, 1, &lt, x, nt, &y, &ldy);
}

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) o[i] = x[i] * inv * w[i];
}

static void rope(float *v, int n_heads, int hd, const float *cs, trl_rope_style style) {
    int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float c = cs[2 * i], s = cs[2 * i + 1];
            int a = style == TRL_ROPE_INTERLEAVED ? 2 * i : i;
            int b = style == TRL_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

static void add(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* q . k in the kernels' canonical order (kernels.h): element i into lane i % 8,
 * lanes reduced as ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)). Eight independent
 * sums vectorize, and the order is the same on every platform. */
static float dot8(const float *a, const float *b, int n) {
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) l[j] += a[i + j] * b[i + j];
    for (int j = 0; i + j < n; j++) l[j] += a[i + j] * b[i + j];
    return trl_reduce8(l);
}

/* dot8 of a with two vectors at once (each load of a serves both; same bits). */
static void dot8x2(const float *a, const float *b0, const float *b1, int n, float *r0, float *r1) {
    float l0[8] = {0, 0, 0, 0, 0, 0, 0, 0}, l1[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            l0[j] += a[i + j] * b0[i + j];
            l1[j] += a[i + j] * b1[i + j];
        }
    for (int j = 0; i + j < n; j++) {
        l0[j] += a[i + j] * b0[i + j];
        l1[j] += a[i + j] * b1[i + j];
    }
    *r0 = trl_reduce8(l0);
    *r1 = trl_reduce8(l1);
}

/* Causal attention for every (token, head) pair, split over threads by pairs;
 * each thread has its own row of scores. */
typedef struct att_task {
    trl_ctx *x;
    const float *kc, *vc;
    int nt, pos0;
    float scale;
} att_task;

static void att_run(void *arg, int ith, int nth) {
    const att_task *a = arg;
    trl_ctx *x = a->x;
    const trl_config *c = &x->m->cfg;
    const int hd = c->head_dim, nh = c->n_heads, kvd = c->n_kv_heads * hd, qd = nh * hd;
    const int group = nh / c->n_kv_heads, pairs = a->nt * nh;
    float *sc = x->scores + (size_t)ith * x->n_ctx;
    for (int pi = pairs * ith / nth; pi < pairs * (ith + 1) / nth; pi++) {
        const int t = pi / nh, h = pi % nh, p = a->pos0 + t, kvh = h / group;
        const float *qh = x->q + (size_t)t * qd + (size_t)h * hd;
        const float *kh = a->kc + (size_t)kvh * hd;
        int j = 0;
        for (; j + 1 <= p; j += 2) dot8x2(qh, kh + (size_t)j * kvd, kh + (size_t)(j + 1) * kvd, hd, &sc[j], &sc[j + 1]);
        if (j == p) sc[j] = dot8(qh, kh + (size_t)j * kvd, hd);
        float mx = -INFINITY;
        for (j = 0; j <= p; j++) {
            sc[j] *= a->scale;
            if (sc[j] > mx) mx = sc[j];
        }
        float sum = 0.0f;
        for (int j = 0; j <= p; j++) sc[j] -= mx;
        trl_expf_n(sc, sc, (size_t)p + 1);
        for (int j = 0; j <= p; j++) sum += sc[j];
        const float inv = 1.0f / sum;
        for (int j = 0; j <= p; j++) sc[j] *= inv;
        /* o = sum_j w_j v_j, each element summed over j in order; 16 elements at a
         * time so they stay in registers while v streams past */
        float *o = x->att + (size_t)t * qd + (size_t)h * hd;
        const float *vh = a->vc + (size_t)kvh * hd;
        for (int i0 = 0; i0 < hd; i0 += 16) {
            const int m = hd - i0 < 16 ? hd - i0 : 16;
            float acc[16] = {0};
            if (m == 16)
                for (int j = 0; j <= p; j++) {
                    const float *vj = vh + (size_t)j * kvd + i0;
                    for (int i = 0; i < 16; i++) acc[i] += sc[j] * vj[i];
                }
            else
                for (int j = 0; j <= p; j++) {
                    const float *vj = vh + (size_t)j * kvd + i0;
                    for (int i = 0; i < m; i++) acc[i] += sc[j] * vj[i];
                }
            memcpy(o + i0, acc, sizeof(float) * (size_t)m);
        }
    }
}

/* Run tokens [0, nt) at positions n_past.. through the model. */
static trl_status forward_batch(trl_ctx *x, const int32_t *tokens, int nt, float *all_logits) {
    const trl_model *m = x->m;
    const trl_config *c = &m->cfg;
    const int D = c->dim, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    const int qd = nh * hd, kvd = nkv * hd, H = c->hidden_dim, V = c->vocab_size;
    const int pos0 = x->n_past;
    const float scale = 1.0f / sqrtf((float)hd);
    const trl_kernel_ops *ek = trl_kernels_best(&m->tok_embd);

    for (int t = 0; t < nt; t++) ek->decode(&m->tok_embd, tokens[t], 0, D, x->x + (size_t)t * D);

    for (int l = 0; l < c->n_layers; l++) {
        const trl_layer *L = &m->layers[l];
        float *kc = x->k_cache + (size_t)l * x->n_ctx * kvd;
        float *vc = x->v_cache + (size_t)l * x->n_ctx * kvd;
        /* attention */
        for (int t = 0; t < nt; t++)
            rmsnorm(x->xn + (size_t)t * D, x->x + (size_t)t * D, L->norm[TRL_LT_ATTN_NORM], D, c->norm_eps);
        {
            const int lt[3] = {TRL_LT_ATTN_Q, TRL_LT_ATTN_K, TRL_LT_ATTN_V}, ldy[3] = {qd, kvd, kvd};
            float *y[3] = {x->q, kc + (size_t)pos0 * kvd, vc + (size_t)pos0 * kvd};
            linear(x, l, 3, lt, x->xn, nt, y, ldy);
        }
        for (int t = 0; t < nt; t++) {
            const float *cs = x->rope + (size_t)(pos0 + t) * hd;
            rope(x->q + (size_t)t * qd, nh, hd, cs, c->rope_style);
            rope(kc + (size_t)(pos0 + t) * kvd, nkv, hd, cs, c->rope_style);
        }
        att_task at = {x, kc, vc, nt, pos0, scale};
        run_split(x, att_run, &at, (int64_t)nt * nh * (pos0 + nt) * hd * 2);
        const float *ao = x->att;
        if (c->sub_norms) {
            for (int t = 0; t < nt; t++)
                rmsnorm(x->xn + (size_t)t * qd, x->att + (size_t)t * qd, L->norm[TRL_LT_ATTN_SUB_NORM], qd,
                        c->norm_eps);
            ao = x->xn;
        }
        linear1(x, l, TRL_LT_ATTN_OUTPUT, ao, nt, x->xb, D);
        add(x->x, x->xb, (size_t)nt * D);

        /* MLP */
        for (int t = 0; t < nt; t++)
            rmsnorm(x->xn + (size_t)t * D, x->x + (size_t)t * D, L->norm[TRL_LT_FFN_NORM], D, c->norm_eps);
        {
            const int lt[2] = {TRL_LT_FFN_GATE, TRL_LT_FFN_UP}, ldy[2] = {H, H};
            float *y[2] = {x->hb, x->hb2};
            linear(x, l, 2, lt, x->xn, nt, y, ldy);
        }
        const size_t nh_all = (size_t)nt * H;
        if (c->mlp == TRL_MLP_SWIGLU) {
            float e[64];
            for (size_t i0 = 0; i0 < nh_all; i0 += 64) {
                const size_t m = nh_all - i0 < 64 ? nh_all - i0 : 64;
                for (size_t k = 0; k < m; k++) e[k] = -x->hb[i0 + k];
                trl_expf_n(e, e, m);
                for (size_t k = 0; k < m; k++) {
                    const float g = x->hb[i0 + k];
                    x->hb[i0 + k] = g / (1.0f + e[k]) * x->hb2[i0 + k];
                }
            }
        } else {
            for (size_t i = 0; i < nh_all; i++) {
                float g = x->hb[i] > 0.0f ? x->hb[i] : 0.0f;
                x->hb[i] = g * g * x->hb2[i];
            }
        }
        const float *mo = x->hb;
        if (c->sub_norms) {
            for (int t = 0; t < nt; t++)
                rmsnorm(x->xn + (size_t)t * H, x->hb + (size_t)t * H, L->norm[TRL_LT_FFN_SUB_NORM], H, c->norm_eps);
            mo = x->xn;
        }
        linear1(x, l, TRL_LT_FFN_DOWN, mo, nt, x->xb, D);
        add(x->x, x->xb, (size_t)nt * D);
    }

    /* head: every token's logits if asked, else only the last one's */
    int first = all_logits ? 0 : nt - 1;
    for (int t = first; t < nt; t++)
        rmsnorm(x->xn + (size_t)(t - first) * D, x->x + (size_t)t * D, m->output_norm, D, c->norm_eps);
    if (all_logits) {
        matmul_mt(x, &m->output, x->xn, nt, all_logits, V);
        memcpy(x->logits, all_logits + (size_t)(nt - 1) * V, (size_t)V * 4);
    } else {
        matmul_mt(x, &m->output, x->xn, 1, x->logits, V);
    }
    x->n_past += nt;
    x->has_logits = 1;
    return TRL_OK;
}

trl_status trl_ctx_prefill(trl_ctx *x, const int32_t *tokens, int32_t n, float *all_logits) {
    if (!x) return TRL_ERR_INVALID_ARG;
    if (!tokens || n <= 0) {
        snprintf(x->err, sizeof x->err, "prefill: no tokens");
        return TRL_ERR_INVALID_ARG;
    }
    const trl_config *c = &x->m->cfg;
    if (n > x->n_ctx - x->n_past) {
        snprintf(x->err, sizeof x->err, "prefill: %d tokens do not fit: %d of %d context positions used", n,
                 x->n_past, x->n_ctx);
        return TRL_ERR_CONTEXT_FULL;
    }
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) {
            snprintf(x->err, sizeof x->err, "prefill: token %d at index %d is outside the vocabulary [0, %d)",
                     tokens[i], i, c->vocab_size);
            return TRL_ERR_INVALID_ARG;
        }
    for (int32_t i = 0; i < n; i += x->n_batch) {
        int nt = n - i < x->n_batch ? n - i : x->n_batch;
        trl_status s = forward_batch(x, tokens + i, nt, all_logits ? all_logits + (size_t)i * c->vocab_size : NULL);
        if (s) return s;
    }
    return TRL_OK;
}

trl_status trl_ctx_decode(trl_ctx *x, int32_t token) { return trl_ctx_prefill(x, &token, 1, NULL); }
