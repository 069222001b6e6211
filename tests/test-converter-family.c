/* test-converter-family.c - --family packs (docs/FORMAT.md "Families", format
 * version 3): members sharing embeddings, norms, head and tokenizer but with
 * their own linear layers go into one pack; each variant, bound by the native
 * loader from its tiers, computes bit for bit the logits of that member
 * converted alone (dense f32 and bcq); members that do not share what they
 * must are refused, naming the tensor; the loader refuses a version-3 pack in
 * which a variant would see one name twice. */
#include "converter/testutil.h"

#include "converter/fakesrc.h"

static char *tmp;

typedef struct fam_fill {
    unsigned seed; /* linear layers of this member: another draw */
} fam_fill;

static void fill_linear(void *ud, size_t i, const trlc_tensor_spec *spec, float *v) {
    (void)i;
    fam_fill *f = ud;
    if (strncmp(spec->name, "blk.", 4) || spec->n_dims != 2) return;
    size_t n = (size_t)(spec->shape[0] * spec->shape[1]);
    for (size_t k = 0; k < n; k++) v[k] = 0.2f * rnd(&f->seed);
}

static float *variant_logits(const trlc_pack *p, const char *id, const int32_t *toks, int n) {
    const trlc_pack_variant *v = trlc_pack_variant_find(p, id);
    if (!v) return NULL;
    size_t nt;
    trl_tensor *t = trlc_pack_variant_tensors(p, v, &nt);
    trlc_pack q = *p; /* the same pack seen through the variant's tensors */
    q.tensors = t;
    q.n_tensors = nt;
    float *out = t ? pack_logits(&q, toks, n, v->rank_slices) : NULL;
    free(t);
    return out;
}

static void test_family(trlc_linear_mode mode) {
    trl_config c = {TRL_ARCH_LLAMA, TRL_MLP_SWIGLU, TRL_ROPE_INTERLEAVED, TRL_ACT_FLOAT, 64, 96, 2, 4, 2, 16, 80,
                    64, 10000.0f, 1e-5f, 0, 0};
    fam_fill fa = {11}, fb = {22};
    fake a = make_fake_fill(c, 5, fill_linear, &fa), b = make_fake_fill(c, 5, fill_linear, &fb);
    char err[1024];
    trlc_write_opts o = trlc_write_default_opts();
    o.linear = mode;
    o.chunk_bytes = 16384;
    char *pa = join(tmp, "a"), *pb = join(tmp, "b"), *pf = join(tmp, "fam");
    o.force = 1;
    CHECK(trlc_pack_write(a.src, pa, &o, NULL, err, sizeof err) == 0);
    CHECK(trlc_pack_write(b.src, pb, &o, NULL, err, sizeof err) == 0);
    const trlc_model_src *members[1] = {b.src};
    const char *ids[2] = {"ra", "rb"};
    o.family = members;
    o.n_family = 1;
    o.family_ids = ids;
    trlc_write_summary s;
    int rc = trlc_pack_write(a.src, pf, &o, &s, err, sizeof err);
    CHECK(rc == 0);
    if (rc) fprintf(stderr, "family write: %s\n", err);
    CHECK(s.version == 3 && s.n_variants == 2 && !strcmp(s.variant_id[0], "ra") && !strcmp(s.variant_id[1], "rb"));
    trlc_pack *P = NULL, *A = NULL, *B = NULL;
    CHECK(trlc_pack_open(pf, &P, err, sizeof err) == 0);
    CHECK(trlc_pack_open(pa, &A, err, sizeof err) == 0);
    CHECK(trlc_pack_open(pb, &B, err, sizeof err) == 0);
    if (P && A && B) {
        CHECK(P->version == 3 && P->n_variants == 2);
        /* the shared tier is downloaded once: the family is smaller than the two packs */
        uint64_t da = 0, db = 0, df = 0;
        for (size_t i = 0; i < A->n_chunks; i++) da += A->chunks[i].bytes;
        for (size_t i = 0; i < B->n_chunks; i++) db += B->chunks[i].bytes;
        for (size_t i = 0; i < P->n_chunks; i++) df += P->chunks[i].bytes;
        CHECK(df < da + db);
        CHECK(P->variants[0].download_bytes < df && P->variants[1].download_bytes < df);
        const int32_t toks[] = {1, 5, 9, 33, 2, 70, 4};
        float *la = pack_logits(A, toks, 7, -1), *lb = pack_logits(B, toks, 7, -1);
        float *fa_ = variant_logits(P, "ra", toks, 7), *fb_ = variant_logits(P, "rb", toks, 7);
        CHECK(la && lb && fa_ && fb_);
        if (la && lb && fa_ && fb_) {
            CHECK(!memcmp(la, fa_, sizeof(float) * 80)); /* bit for bit */
            CHECK(!memcmp(lb, fb_, sizeof(float) * 80));
            CHECK(memcmp(la, lb, sizeof(float) * 80)); /* and the members do differ */
        }
        printf("family (%s): 2 members, %llu bytes vs %llu + %llu alone; each variant's logits equal its member's "
               "pack's\n",
               mode == TRLC_LINEAR_BCQ ? "bcq" : "f32", (unsigned long long)df, (unsigned long long)da,
               (unsigned long long)db);
        free(la), free(lb), free(fa_), free(fb_);
        /* all tensors at once: names repeat, the core refuses (bound twice) */
        trl_model *m = NULL;
        trl_error e;
        CHECK(trl_model_create(&P->config, P->tensors, P->n_tensors, &m, &e) != TRL_OK);
        trl_model_free(m);
    }
    trlc_pack_close(P);
    trlc_pack_close(A);
    trlc_pack_close(B);

    /* a variant whose tiers hold a name twice is refused by the loader */
    if (mode == TRLC_LINEAR_DENSE) {
        char *mpath = join(pf, "manifest.json");
        size_t n;
        char *json = read_file(mpath, &n);
        /* variant rb also claims ra's tier 1; its download_bytes is dropped so only the names are wrong */
        char *at = json ? strstr(json, "\"id\": \"rb\", \"tiers\": [0, 2], \"download_bytes\": ") : NULL;
        CHECK(at != NULL);
        if (at) {
            char *num = at + strlen("\"id\": \"rb\", \"tiers\": [0, 2], ");
            char *end = strchr(num, ',') + 1;
            trlc_buf nb = {0};
            trlc_buf_put(&nb, json, (size_t)(at - json));
            trlc_buf_puts(&nb, "\"id\": \"rb\", \"tiers\": [0, 1, 2], ");
            trlc_buf_puts(&nb, end);
            write_file(mpath, nb.data, nb.len);
            trlc_buf_free(&nb);
            CHECK(trlc_pack_open(pf, &P, err, sizeof err) == -1);
            CHECK_ERR(err, "variants[1] (rb)", "is in two of its tiers");
        }
        free(json);
        free(mpath);
    }

    /* members must share embeddings, norms and head, and have distinct ids */
    char *never = join(tmp, "never");
    fake d = make_fake_fill(c, 6, fill_linear, &fb); /* other embeddings */
    const trlc_model_src *bad[1] = {d.src};
    o.family = bad;
    CHECK(trlc_pack_write(a.src, never, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "--family", "token_embd.weight", "differs");
    o.family = members;
    const char *same[2] = {"x", "x"};
    o.family_ids = same;
    CHECK(trlc_pack_write(a.src, never, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "--family", "\"x\"", "twice");
    o.family_ids = ids;
    o.linear = TRLC_LINEAR_LOWRANK;
    o.n_ranks = 1, o.ranks[0] = 4;
    CHECK(trlc_pack_write(a.src, never, &o, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "--family", "--lowrank");
    CHECK(!trlc_exists(never));
    free(never);
    free_fake(&d);
    free_fake(&a);
    free_fake(&b);
    free(pa), free(pb), free(pf);
}

int main(void) {
    tmp = make_tmpdir("family");
    test_family(TRLC_LINEAR_DENSE);
    test_family(TRLC_LINEAR_BCQ);
    rm_tree(tmp);
    free(tmp);
    return test_done("test-converter-family");
}
