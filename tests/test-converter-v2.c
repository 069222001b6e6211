/* test-converter-v2.c - format version 2 through the writer and the loader:
 * already-ternary shards convert losslessly (t2 and t1, every scale axis) and
 * run like the f32 model; bcq and residual packs load and run; a rank-r variant
 * read as a prefix of a bigger pack's slices gives the same logits as a pack
 * converted at rank r alone; full rank gives the dense model back; tiers,
 * variants and the manifest's v2 members; the loader's v2 errors. */
#include "converter/testutil.h"
#include <math.h>

#include "converter/fakesrc.h"

static char err[1024];
static char *root;

static trl_config config(int dim, int hidden, int layers, int heads, int kv, int hd, int vocab) {
    trl_config c;
    memset(&c, 0, sizeof c);
    c.arch = TRL_ARCH_LLAMA, c.mlp = TRL_MLP_SWIGLU, c.rope_style = TRL_ROPE_HALF, c.act_quant = TRL_ACT_FLOAT;
    c.dim = dim, c.hidden_dim = hidden, c.n_layers = layers, c.n_heads = heads, c.n_kv_heads = kv, c.head_dim = hd;
    c.vocab_size = vocab, c.max_seq_len = 32, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    return c;
}

static int write_p(const fake *f, const char *dir, const trlc_write_opts *o, trlc_write_summary *s) {
    err[0] = 0;
    int rc = trlc_pack_write(f->src, dir, o, s, err, sizeof err);
    if (rc) fprintf(stderr, "trlc_pack_write(%s): %s\n", dir, err);
    return rc;
}

static trlc_pack *open_pack(const char *dir) {
    trlc_pack *p = NULL;
    if (trlc_pack_open(dir, &p, err, sizeof err)) fprintf(stderr, "trlc_pack_open(%s): %s\n", dir, err);
    return p;
}

static double max_abs_diff(const float *a, const float *b, int n, double *scale) {
    double d = 0.0, s = 0.0;
    for (int i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    if (scale) *scale = s;
    return d;
}

static const int32_t TOKS[5] = {1, 7, 3, 30, 12};

/* --------------------------------------------------- ternary, lossless */

/* Shards as TriLM / BitNet checkpoints have them, one scale layout per layer type. */
typedef struct shard_spec {
    const char *suffix;
    int axis, blocks;
} shard_spec;

static const shard_spec SHARDS[] = {
    {".attn_q.weight", TRL_SCALE_TENSOR, 0},      {".attn_k.weight", TRL_SCALE_ROW, 0},
    {".attn_v.weight", TRL_SCALE_ROW_BLOCKS, 2},  {".attn_output.weight", TRL_SCALE_COL_BLOCKS, 2},
    {".ffn_gate.weight", TRL_SCALE_ROW_BLOCKS, 3}, {".ffn_up.weight", TRL_SCALE_ROW, 0},
    {".ffn_down.weight", TRL_SCALE_COL_BLOCKS, 3},
};

static const shard_spec *shard_of(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof SHARDS / sizeof *SHARDS; i++) {
        size_t k = strlen(SHARDS[i].suffix);
        if (n > k && !strcmp(name + n - k, SHARDS[i].suffix)) return &SHARDS[i];
    }
    return NULL;
}

typedef struct tern_truth {
    int8_t *t[16];
    float scales[16][512];
    size_t idx[16];
    int n;
} tern_truth;

static void fill_ternary(void *ud, size_t i, const trlc_tensor_spec *spec, float *v) {
    tern_truth *tt = ud;
    const shard_spec *sh = shard_of(spec->name);
    if (!sh || spec->n_dims != 2) return;
    uint64_t rows = (uint64_t)spec->shape[0], cols = (uint64_t)spec->shape[1];
    int k = tt->n++;
    trl_enc_params p = {0, 0, 0, sh->axis, sh->blocks};
    uint64_t ns = sh->axis == TRL_SCALE_TENSOR ? 1 : sh->axis == TRL_SCALE_ROW ? rows : (uint64_t)sh->blocks;
    for (uint64_t j = 0; j < ns; j++) tt->scales[k][j] = (0.03f + 0.002f * (float)j) / sqrtf((float)cols) * 3.1f;
    tt->t[k] = malloc(rows * cols);
    tt->idx[k] = i;
    unsigned s = (unsigned)i * 977u + 5u;
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++) {
            s = s * 1664525u + 1013904223u;
            int8_t x = (int8_t)((int)((s >> 16) % 3) - 1);
            tt->t[k][r * cols + c] = x;
            v[r * cols + c] = trlc_ternary_scale_at(&p, tt->scales[k], rows, cols, r, c) * (float)x;
        }
}

typedef struct counts {
    int n, lossless, slices;
    double base, total;
} counts;

static void count_report(void *user, const trlc_tensor_report *r) {
    counts *c = user;
    c->n++;
    c->lossless += r->lossless;
    c->slices += r->n_slices;
    c->base += r->base_rel_error;
    c->total += r->rel_error;
}

static void test_ternary_lossless(void) {
    /* dim 256 and hidden 384: column blocks of 128 for attn_output (2) and ffn_down (3) */
    trl_config c = config(256, 384, 1, 4, 2, 64, 64);
    tern_truth tt;
    memset(&tt, 0, sizeof tt);
    fake f = make_fake_fill(c, 21, fill_ternary, &tt);
    CHECK(tt.n == 7);
    char *d32 = join(root, "tern-f32");
    trlc_write_opts o = trlc_write_default_opts();
    trlc_write_summary s;
    CHECK(write_p(&f, d32, &o, &s) == 0 && s.version == 1);
    trlc_pack *pf = open_pack(d32);
    float *ref = pf ? pack_logits(pf, TOKS, 5, -1) : NULL;
    CHECK(ref != NULL);
    for (int layout = TRL_ENC_T2; layout <= TRL_ENC_T1; layout++) {
        char *d = join(root, layout == TRL_ENC_T2 ? "tern-t2" : "tern-t1");
        o = trlc_write_default_opts();
        o.linear = TRLC_LINEAR_TERNARY;
        o.ternary_encoding = (trl_encoding)layout;
        o.ternary_scale = TRL_SCALE_ROW; /* absmean's axis; the exact layouts win over it */
        o.chunk_bytes = 16384;
        counts cnt = {0};
        o.on_tensor = count_report;
        o.user = &cnt;
        CHECK(write_p(&f, d, &o, &s) == 0);
        CHECK(s.version == 2 && s.n_variants == 1 && s.variant_rank_slices[0] == -1);
        CHECK(cnt.n == 7 && cnt.lossless == 7 && cnt.base == 0.0);
        trlc_pack *p = open_pack(d);
        CHECK(p != NULL);
        if (!p) continue;
        CHECK(p->version == 2);
        for (int k = 0; k < tt.n; k++) {
            const trlc_src_tensor *st = &f.src->tensors[tt.idx[k]];
            const trl_tensor *t = trlc_pack_find(p, st->name);
            const shard_spec *sh = shard_of(st->name);
            CHECK(t && (int)t->encoding == layout);
            if (!t) continue;
            CHECK(t->params.scale_axis == sh->axis && t->params.scale_blocks == sh->blocks);
            CHECK(!t->params.bits && !t->params.group && !t->params.pow2);
            uint64_t rows = (uint64_t)t->shape[0], cols = (uint64_t)t->shape[1];
            int8_t *back = malloc(rows * cols);
            CHECK(trl_ternary_unpack(t->encoding, t->data, rows, cols, back) == TRL_OK);
            CHECK(!memcmp(back, tt.t[k], rows * cols));
            uint64_t ns = sh->axis == TRL_SCALE_TENSOR ? 1 : sh->axis == TRL_SCALE_ROW ? rows : (uint64_t)sh->blocks;
            CHECK(t->bytes == rows * trl_encoding_row_bytes(t->encoding, cols) + 4 * ns);
            CHECK(!memcmp((const uint8_t *)t->data + t->bytes - 4 * ns, tt.scales[k], 4 * ns));
            free(back);
        }
        /* the manifest says the params it should, and only the non-zero members */
        CHECK(strstr(p->manifest, "\"version\": 2,") != NULL);
        CHECK(strstr(p->manifest, "\"params\": { \"scale_axis\": 3, \"scale_blocks\": 2 }") != NULL);
        CHECK(strstr(p->manifest, "\"params\": { \"scale_axis\": 1 }") != NULL);
        CHECK(strstr(p->manifest, "\"params\": {}") != NULL);
        CHECK(strstr(p->manifest, "\"name\": \"token_embd.weight\", \"encoding\": \"f32\", \"shape\": [64, 256], "
                                  "\"chunk\"") != NULL);
        /* lossless: the same model as the f32 pack, up to summation order */
        float *lg = pack_logits(p, TOKS, 5, -1);
        CHECK(lg != NULL);
        if (lg && ref) {
            double sc, dd = max_abs_diff(lg, ref, c.vocab_size, &sc);
            printf("ternary lossless %s pack vs f32 pack: max |logit diff| %.2e (logits up to %.2f)\n",
                   trl_encoding_name((trl_encoding)layout), dd, sc);
            CHECK(dd < 1e-4 * (sc > 1.0 ? sc : 1.0));
        }
        free(lg);
        trlc_pack_close(p);
        free(d);
    }
    free(ref);
    trlc_pack_close(pf);
    for (int k = 0; k < tt.n; k++) free(tt.t[k]);
    free(d32);
    free_fake(&f);
}

/* ------------------------------------------------------- bcq, residual */

static void test_bcq_and_residual(void) {
    trl_config c = config(64, 96, 2, 4, 2, 16, 50);
    fake f = make_fake(c, 33);
    char *dref = join(root, "dense");
    trlc_write_opts o = trlc_write_default_opts();
    CHECK(write_p(&f, dref, &o, NULL) == 0);
    trlc_pack *pr = open_pack(dref);
    float *ref = pr ? pack_logits(pr, TOKS, 5, -1) : NULL;
    CHECK(ref != NULL);
    double prev = 1e9;
    for (int bits = 1; bits <= 4; bits++) {
        char name[32];
        snprintf(name, sizeof name, "bcq%d", bits);
        char *d = join(root, name);
        o = trlc_write_default_opts();
        o.linear = TRLC_LINEAR_BCQ;
        o.bcq.bits = bits;
        o.bcq.group = 32;
        counts cnt = {0};
        o.on_tensor = count_report;
        o.user = &cnt;
        trlc_write_summary s;
        CHECK(write_p(&f, d, &o, &s) == 0 && s.version == 2);
        CHECK(cnt.n == 14 && cnt.lossless == 0);
        double mean = cnt.base / cnt.n;
        printf("bcq %d bit%s g32 through the writer: mean relative weight error %.4f\n", bits, bits > 1 ? "s" : "",
               mean);
        CHECK(mean < prev);
        prev = mean;
        trlc_pack *p = open_pack(d);
        CHECK(p != NULL);
        if (p) {
            const trl_tensor *t = trlc_pack_find(p, "blk.1.ffn_down.weight");
            CHECK(t && t->encoding == TRL_ENC_BCQ && t->params.bits == bits && t->params.group == 32 && !t->params.pow2);
            char want[64];
            snprintf(want, sizeof want, "\"params\": { \"bits\": %d, \"group\": 32 }", bits);
            CHECK(strstr(p->manifest, want) != NULL);
            float *lg = pack_logits(p, TOKS, 5, -1);
            CHECK(lg != NULL);
            int finite = 1;
            for (int i = 0; lg && i < c.vocab_size; i++) finite &= isfinite(lg[i]) != 0;
            CHECK(finite);
            free(lg);
            trlc_pack_close(p);
        }
        free(d);
    }
    /* residual: quantized base plus a low-rank term for W - Q(W) */
#ifdef TRLC_HAVE_LAPACK
    double dist[3];
    for (int mode = 0; mode < 3; mode++) { /* ternary alone, + rank 16, + full rank */
        static const char *const names[3] = {"tern", "tern-r16", "tern-full"};
        char *d = join(root, names[mode]);
        o = trlc_write_default_opts();
        o.linear = TRLC_LINEAR_TERNARY;
        o.residual_rank = mode == 0 ? 0 : mode == 1 ? 16 : 1000;
        counts cnt = {0};
        o.on_tensor = count_report;
        o.user = &cnt;
        trlc_write_summary s;
        CHECK(write_p(&f, d, &o, &s) == 0);
        if (mode) {
            CHECK(cnt.total < cnt.base);
            CHECK(s.n_variants == 1 && !strcmp(s.variant_id[0], "base") && s.variant_rank_slices[0] >= 1);
        }
        if (mode == 2) CHECK(cnt.total / cnt.n < 1e-5); /* full rank: W exactly, up to f32 */
        printf("ternary%s: mean relative weight error %.4f\n",
               mode == 0 ? "" : mode == 1 ? " + residual rank 16" : " + full-rank residual", cnt.total / cnt.n);
        trlc_pack *p = open_pack(d);
        float *lg = p ? pack_logits(p, TOKS, 5, -1) : NULL;
        CHECK(lg != NULL);
        double sc;
        dist[mode] = lg && ref ? max_abs_diff(lg, ref, c.vocab_size, &sc) : 1e9;
        if (p && mode) {
            CHECK(trlc_pack_find(p, "blk.0.attn_q.weight") && trlc_pack_find(p, "blk.0.attn_q.lr_v.0") &&
                  trlc_pack_find(p, "blk.0.attn_q.lr_u.0"));
        }
        free(lg);
        trlc_pack_close(p);
        free(d);
    }
    printf("ternary packs vs the dense model: max |logit diff| %.3g alone, %.3g with rank 16, %.3g with full rank\n",
           dist[0], dist[1], dist[2]);
    CHECK(dist[1] < dist[0]);
    CHECK(dist[2] < 1e-3);
#endif
    free(ref);
    trlc_pack_close(pr);
    free(dref);
    free_fake(&f);
}

/* ----------------------------------------------------------- low rank */

#ifdef TRLC_HAVE_LAPACK
static trlc_pack *lowrank_pack(const fake *f, const char *name, const char *ranks, int slice, trl_encoding enc,
                               trlc_write_summary *s) {
    char *d = join(root, name);
    trlc_write_opts o = trlc_write_default_opts();
    o.linear = TRLC_LINEAR_LOWRANK;
    o.matrix_encoding = enc;
    o.slice_rows = slice;
    o.chunk_bytes = 8192;
    CHECK(trlc_parse_ranks(ranks, &o, err, sizeof err) == 0);
    trlc_pack *p = NULL;
    if (write_p(f, d, &o, s) == 0) p = open_pack(d);
    CHECK(p != NULL);
    free(d);
    return p;
}

/* Logits of variant `vid` of big == logits of small (all its slices). */
static void check_prefix(trlc_pack *big, const char *vid, trlc_pack *small, int exact) {
    const trlc_pack_variant *v = trlc_pack_variant_find(big, vid);
    CHECK(v != NULL);
    if (!v || !small) return;
    float *a = pack_logits(big, TOKS, 5, v->rank_slices), *b = pack_logits(small, TOKS, 5, -1);
    CHECK(a && b);
    if (a && b) {
        double sc, dd = max_abs_diff(a, b, big->config.vocab_size, &sc);
        printf("variant %s (rank_slices %d) of the big pack vs a pack converted at %s alone: max |logit diff| %.3g\n",
               vid, (int)v->rank_slices, vid, dd);
        if (exact) CHECK(!memcmp(a, b, (size_t)big->config.vocab_size * sizeof *a));
        else CHECK(dd < 1e-4 * (sc > 1.0 ? sc : 1.0));
    }
    free(a);
    free(b);
}

static void check_tiers(const trlc_pack *p, const trlc_write_summary *s) {
    /* chunks in tier order, the tokenizer first; each variant's download = its tiers */
    for (size_t i = 1; i < p->n_chunks; i++) CHECK(p->chunks[i].tier >= p->chunks[i - 1].tier);
    CHECK(p->tokenizer == p->chunks[0].data && p->chunks[0].tier == 0);
    CHECK((int)p->n_variants == s->n_variants);
    uint64_t prev_res = 0;
    for (size_t k = 0; k < p->n_variants; k++) {
        const trlc_pack_variant *v = &p->variants[k];
        uint64_t dl = 0, res = p->tokenizer_bytes;
        for (size_t i = 0; i < p->n_chunks; i++)
            if (p->chunks[i].tier <= (int32_t)k) dl += p->chunks[i].bytes;
        for (size_t i = 0; i < p->n_tensors; i++)
            for (size_t j = 0; j < p->n_chunks; j++) {
                const uint8_t *d = p->tensors[i].data;
                if (d >= p->chunks[j].data && d < p->chunks[j].data + p->chunks[j].bytes && p->chunks[j].tier <= (int32_t)k)
                    res += p->tensors[i].bytes;
            }
        CHECK(v->download_bytes == dl && v->resident_bytes == res && res > prev_res);
        CHECK(v->rank_slices == s->variant_rank_slices[k] && !strcmp(v->id, s->variant_id[k]));
        prev_res = res;
    }
    /* nothing but slices beyond tier 0 */
    for (size_t i = 0; i < p->n_tensors; i++)
        for (size_t j = 0; j < p->n_chunks; j++) {
            const uint8_t *d = p->tensors[i].data;
            if (d >= p->chunks[j].data && d < p->chunks[j].data + p->chunks[j].bytes && p->chunks[j].tier > 0)
                CHECK(strstr(p->tensors[i].name, ".lr_") != NULL);
        }
}
#endif

static void test_lowrank(void) {
#ifdef TRLC_HAVE_LAPACK
    /* full ranks: 64 (q, o, gate, up, down), 32 (k, v) */
    trl_config c = config(64, 96, 2, 4, 2, 16, 50);
    fake f = make_fake(c, 44);
    trlc_write_summary s3, s1, s2;
    trlc_pack *big = lowrank_pack(&f, "lr-48-32-16", "48,16,32", 8, TRL_ENC_F32, &s3);
    trlc_pack *r16 = lowrank_pack(&f, "lr-16", "16", 8, TRL_ENC_F32, &s1);
    trlc_pack *r32 = lowrank_pack(&f, "lr-32", "32", 8, TRL_ENC_F32, &s2);
    if (big) {
        CHECK(s3.version == 2 && s3.n_variants == 3);
        CHECK(!strcmp(s3.variant_id[0], "r16") && !strcmp(s3.variant_id[1], "r32") && !strcmp(s3.variant_id[2], "r48"));
        CHECK(s3.variant_rank_slices[0] == 2 && s3.variant_rank_slices[1] == 4 && s3.variant_rank_slices[2] == 6);
        check_tiers(big, &s3);
        /* no base weights; k/v stop at their full rank 32 (4 slices), the others go on to 48 (6) */
        CHECK(!trlc_pack_find(big, "blk.0.attn_q.weight"));
        const trl_tensor *v5 = trlc_pack_find(big, "blk.1.ffn_down.lr_v.5"), *u5 = trlc_pack_find(big, "blk.1.ffn_down.lr_u.5");
        CHECK(v5 && u5 && v5->shape[0] == 8 && v5->shape[1] == 96 && u5->shape[0] == 8 && u5->shape[1] == 64);
        CHECK(trlc_pack_find(big, "blk.0.attn_k.lr_v.3") && !trlc_pack_find(big, "blk.0.attn_k.lr_v.4"));
        CHECK(strstr(big->manifest, "\"id\": \"r32\", \"tiers\": [0, 1], \"rank_slices\": 4,") != NULL);
        check_prefix(big, "r16", r16, 1);
        check_prefix(big, "r32", r32, 1);
    }
    trlc_pack_close(big), trlc_pack_close(r16), trlc_pack_close(r32);

    /* fractions, q8_0 slices: every layer keeps its share of its own rank */
    big = lowrank_pack(&f, "lr-frac", "0.75,0.5,0.25", 16, TRL_ENC_Q8_0, &s3);
    trlc_pack *small = lowrank_pack(&f, "lr-frac-25", "0.25", 16, TRL_ENC_Q8_0, &s1);
    trlc_pack *mid = lowrank_pack(&f, "lr-frac-50", "0.5", 16, TRL_ENC_Q8_0, &s2);
    if (big) {
        CHECK(!strcmp(s3.variant_id[0], "r0.25") && !strcmp(s3.variant_id[2], "r0.75"));
        check_tiers(big, &s3);
        /* rank 0.75 * 64 = 48 in q, 0.75 * 32 = 24 in k */
        int32_t rq = 0, rk = 0;
        for (size_t i = 0; i < big->n_tensors; i++) {
            if (!strncmp(big->tensors[i].name, "blk.0.attn_q.lr_v.", 18)) rq += (int32_t)big->tensors[i].shape[0];
            if (!strncmp(big->tensors[i].name, "blk.0.attn_k.lr_v.", 18)) rk += (int32_t)big->tensors[i].shape[0];
        }
        CHECK(rq == 48 && rk == 24);
        check_prefix(big, "r0.25", small, 1);
        check_prefix(big, "r0.5", mid, 0);
    }
    trlc_pack_close(big), trlc_pack_close(small), trlc_pack_close(mid);

    /* full rank: the dense model back (f32 factors) */
    char *dd = join(root, "lr-dense");
    trlc_write_opts o = trlc_write_default_opts();
    CHECK(write_p(&f, dd, &o, NULL) == 0);
    trlc_pack *pd = open_pack(dd);
    trlc_pack *full = lowrank_pack(&f, "lr-full", "1.0", 16, TRL_ENC_F32, &s1);
    float *a = pd ? pack_logits(pd, TOKS, 5, -1) : NULL, *b = full ? pack_logits(full, TOKS, 5, -1) : NULL;
    CHECK(a && b);
    if (a && b) {
        double sc, d = max_abs_diff(b, a, c.vocab_size, &sc);
        printf("full-rank slices vs the dense pack: max |logit diff| %.3g (logits up to %.2f)\n", d, sc);
        CHECK(d < 1e-4 * (sc > 1.0 ? sc : 1.0));
    }
    free(a), free(b), free(dd);
    trlc_pack_close(pd), trlc_pack_close(full);

    /* refusals, before anything is written */
    int before = count_entries(root);
    char *dx = join(root, "refused");
    o = trlc_write_default_opts();
    o.linear = TRLC_LINEAR_LOWRANK;
    CHECK(trlc_parse_ranks("32,64,128", &o, err, sizeof err) == 0);
    CHECK(trlc_pack_write(f.src, dx, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "variant r128", "adds no rank");
    CHECK(trlc_parse_ranks("64", &o, err, sizeof err) == 0);
    /* 1-row slices would make 64; k and v (rank 32) can only be cut in 32, so
     * every layer gets 32 slices (2 rows in the rank-64 ones) */
    o.slice_rows = 1;
    trlc_write_summary s4;
    CHECK(trlc_pack_write(f.src, dx, &o, &s4, err, sizeof err) == 0 && s4.variant_rank_slices[0] == 32);
    rm_tree(dx);
    o.slice_rows = 16;
    o.residual_rank = 4;
    CHECK(trlc_pack_write(f.src, dx, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "--residual-rank");
    CHECK(count_entries(root) == before);
    free(dx);
    free_fake(&f);
#else
    printf("low rank: built without LAPACK; skipped\n");
#endif
}

static void test_parse_ranks(void) {
    trlc_write_opts o = trlc_write_default_opts();
    CHECK(trlc_parse_ranks("64", &o, err, sizeof err) == 0 && o.n_ranks == 1 && o.ranks[0] == 64 && !o.rank_fractions);
    CHECK(trlc_parse_ranks("0.75,0.5,0.35", &o, err, sizeof err) == 0 && o.n_ranks == 3 && o.rank_fractions);
    CHECK(o.ranks[2] == 0.35);
    CHECK(trlc_parse_ranks("1.0", &o, err, sizeof err) == 0 && o.ranks[0] == 1.0 && o.rank_fractions);
    CHECK(trlc_parse_ranks("64,0.5", &o, err, sizeof err) == -1);
    CHECK_ERR(err, "not both");
    CHECK(trlc_parse_ranks("32,32", &o, err, sizeof err) == -1);
    CHECK_ERR(err, "twice");
    CHECK(trlc_parse_ranks("1.5", &o, err, sizeof err) == -1);
    CHECK(trlc_parse_ranks("0", &o, err, sizeof err) == -1);
    CHECK(trlc_parse_ranks("", &o, err, sizeof err) == -1);
    CHECK(trlc_parse_ranks("8,", &o, err, sizeof err) == -1);
    CHECK(trlc_parse_ranks("x", &o, err, sizeof err) == -1);
    CHECK(trlc_parse_ranks("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", &o, err, sizeof err) == -1);
    CHECK_ERR(err, "more than 16");
    /* options the writer refuses */
    trl_config c = config(64, 96, 1, 4, 2, 16, 50);
    fake f = make_fake(c, 5);
    char *dx = join(root, "never");
    o = trlc_write_default_opts();
    o.linear = TRLC_LINEAR_BCQ;
    o.bcq.bits = 5;
    CHECK(trlc_pack_write(f.src, dx, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "--bcq", "bits");
    o.bcq.bits = 2, o.bcq.group = 48;
    CHECK(trlc_pack_write(f.src, dx, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "--bcq", "group");
    o = trlc_write_default_opts();
    o.residual_rank = 8;
    CHECK(trlc_pack_write(f.src, dx, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "--residual-rank needs --ternary or --bcq");
    o = trlc_write_default_opts();
    o.linear = TRLC_LINEAR_TERNARY;
    o.ternary_encoding = TRL_ENC_Q8_0;
    CHECK(trlc_pack_write(f.src, dx, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "--ternary-layout");
    CHECK(access(dx, F_OK) != 0);
    free(dx);
    free_fake(&f);
}

/* ------------------------------------------------------- loader, v2 */

static char *good;
static fake gfake;
static trlc_write_opts gopts;

static void fresh(void) {
    rm_tree(good);
    CHECK(trlc_pack_write(gfake.src, good, &gopts, NULL, err, sizeof err) == 0);
}

#define EXPECT_OPEN_FAIL(...)                                                                                      \
    do {                                                                                                           \
        trlc_pack *p_ = NULL;                                                                                      \
        err[0] = 0;                                                                                                \
        CHECK(trlc_pack_open(good, &p_, err, sizeof err) == -1);                                                   \
        CHECK(p_ == NULL);                                                                                         \
        CHECK_ERR(err, __VA_ARGS__);                                                                               \
    } while (0)

static void test_loader_v2(void) {
    gfake = make_fake(config(64, 96, 1, 4, 2, 16, 50), 55);
    good = join(root, "good2");
    char *mp = join(good, "manifest.json");
    /* t2 per-row ternary + bcq can't share a pack; one pack each */
    gopts = trlc_write_default_opts();
    gopts.linear = TRLC_LINEAR_TERNARY;
    gopts.ternary_scale = TRL_SCALE_ROW;
    fresh();
    trlc_pack *p = open_pack(good);
    CHECK(p && p->version == 2 && p->n_variants == 1 && p->variants[0].rank_slices == -1);
    trlc_pack_close(p);
    CHECK(edit_file(mp, "\"version\": 2,", "\"version\": 1,") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tensors[2].encoding", "t2 needs format version 2", "blk.0.attn_q.weight");
    fresh();
    CHECK(edit_file(mp, "\"params\": { \"scale_axis\": 1 }", "\"params\": { \"scale_axis\": 1, \"dither\": 1 }") == 0);
    EXPECT_OPEN_FAIL("tensors[2].params", "unknown member \"dither\"", "newer trillium");
    fresh();
    CHECK(edit_file(mp, "\"params\": { \"scale_axis\": 1 }", "\"params\": { \"scale_axis\": 7 }") == 0);
    EXPECT_OPEN_FAIL("tensors[2].params.scale_axis", "blk.0.attn_q.weight");
    fresh();
    CHECK(edit_file(mp, "\"params\": { \"scale_axis\": 1 }", "\"params\": { \"scale_axis\": 0 }") == 0);
    EXPECT_OPEN_FAIL("tensors[2].bytes", "t2");
    fresh();
    CHECK(edit_file(mp, "\"params\": { \"scale_axis\": 1 }", "\"params\": { \"scale_axis\": \"row\" }") == 0);
    EXPECT_OPEN_FAIL("tensors[2].params.scale_axis", "integer");
    fresh();
    CHECK(edit_file(mp, "\"params\": { \"scale_axis\": 1 }", "\"params\": [1]") == 0);
    EXPECT_OPEN_FAIL("tensors[2].params", "object");
    fresh();
    CHECK(edit_file(mp, "\"encoding\": \"f32\", \"shape\": [64]", "\"encoding\": \"f32\", \"shape\": [64], \"params\": { \"bits\": 2 }") == 0);
    EXPECT_OPEN_FAIL("tensors[1]", "f32 takes no parameters");
    fresh();
    CHECK(edit_file(mp, "\"tiers\": [0]", "\"tiers\": [0, 5]") == 0);
    EXPECT_OPEN_FAIL("variants[0].tiers", "no chunk has tier 5");
    fresh();
    CHECK(edit_file(mp, "\"tiers\": [0], \"download_bytes\": ", "\"tiers\": [0], \"download_bytes\": 1") == 0);
    EXPECT_OPEN_FAIL("variants[0].download_bytes", "its tiers' chunks hold");
    fresh();
    CHECK(edit_file(mp, "\"tier\": 0", "\"tier\": -1") == 0);
    EXPECT_OPEN_FAIL("chunks[0].tier");
    fresh();
    CHECK(edit_file(mp, "\"id\": \"base\"", "\"id\": 7") == 0);
    EXPECT_OPEN_FAIL("variants[0].id");
    /* a v1 pack cannot carry params */
    gopts = trlc_write_default_opts();
    fresh();
    CHECK(edit_file(mp, "\"encoding\": \"f32\", \"shape\": [64]", "\"encoding\": \"f32\", \"shape\": [64], \"params\": {}") == 0);
    EXPECT_OPEN_FAIL("tensors[1].params", "needs format version 2");
    /* bcq: the byte count follows the params */
    gopts = trlc_write_default_opts();
    gopts.linear = TRLC_LINEAR_BCQ;
    gopts.bcq.bits = 3;
    gopts.bcq.pow2 = 1;
    fresh();
    p = open_pack(good);
    const trl_tensor *t = p ? trlc_pack_find(p, "blk.0.ffn_down.weight") : NULL;
    CHECK(t && t->encoding == TRL_ENC_BCQ && t->params.bits == 3 && t->params.group == 128 && t->params.pow2 == 1);
    trlc_pack_close(p);
    CHECK(edit_file(mp, "\"params\": { \"bits\": 3, \"group\": 128, \"pow2\": 1 }",
                    "\"params\": { \"bits\": 2, \"group\": 128, \"pow2\": 1 }") == 0);
    EXPECT_OPEN_FAIL("tensors[2].bytes", "bcq");
    fresh();
    CHECK(edit_file(mp, "\"params\": { \"bits\": 3, \"group\": 128, \"pow2\": 1 }",
                    "\"params\": { \"bits\": 3, \"bits\": 3, \"group\": 128, \"pow2\": 1 }") == 0);
    EXPECT_OPEN_FAIL("tensors[2].params.bits", "twice");
#ifdef TRLC_HAVE_LAPACK
    /* rank slices: variants and their tiers */
    gopts = trlc_write_default_opts();
    gopts.linear = TRLC_LINEAR_LOWRANK;
    trlc_parse_ranks("16,32", &gopts, err, sizeof err);
    fresh();
    p = open_pack(good);
    CHECK(p && p->n_variants == 2 && p->variants[0].rank_slices == 1 && p->variants[1].rank_slices == 2);
    CHECK(p && trlc_pack_variant_find(p, "r32") == &p->variants[1] && !trlc_pack_variant_find(p, "r64"));
    trlc_pack_close(p);
    CHECK(edit_file(mp, "\"id\": \"r32\"", "\"id\": \"r16\"") == 0);
    EXPECT_OPEN_FAIL("variants", "\"r16\" appears twice");
    fresh();
    CHECK(edit_file(mp, "\"tiers\": [0, 1]", "\"tiers\": [1, 0]") == 0);
    EXPECT_OPEN_FAIL("variants[1].tiers", "increasing");
    fresh();
    CHECK(edit_file(mp, "\"rank_slices\": 2", "\"rank_slices\": -2") == 0);
    EXPECT_OPEN_FAIL("variants[1].rank_slices");
#endif
    free(mp);
    free(good);
    free_fake(&gfake);
}

int main(void) {
    root = make_tmpdir("v2");
    test_parse_ranks();
    test_ternary_lossless();
    test_bcq_and_residual();
    test_lowrank();
    test_loader_v2();
    rm_tree(root);
    free(root);
    return test_done("test-converter-v2");
}
