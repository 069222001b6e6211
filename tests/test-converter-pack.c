/* test-converter-pack.c - the pack writer and loader: round trips in f32 / f16 /
 * q8_0, chunking, atomic replacement, no leftovers on failure, and the loader's
 * errors on damaged packs (each names the file and the field). */
#include "converter/testutil.h"
#include <math.h>

#include "converter/fakesrc.h"

static char err[1024];
static char *root;

/* dim 32, hidden 48, 2 layers, 4 heads, 2 kv heads, head_dim 8, vocab 40 */
static trl_config small_config(void) {
    trl_config c;
    memset(&c, 0, sizeof c);
    c.arch = TRL_ARCH_LLAMA, c.mlp = TRL_MLP_SWIGLU, c.rope_style = TRL_ROPE_INTERLEAVED;
    c.act_quant = TRL_ACT_FLOAT;
    c.dim = 32, c.hidden_dim = 48, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
    c.vocab_size = 40, c.max_seq_len = 16, c.rope_theta = 10000.0f, c.norm_eps = 1e-5f;
    return c;
}

static int write_pack(const fake *f, const char *dir, trl_encoding enc, uint64_t chunk, int force) {
    trlc_write_opts o = trlc_write_default_opts();
    o.matrix_encoding = enc;
    if (chunk) o.chunk_bytes = chunk;
    o.force = force;
    err[0] = 0;
    return trlc_pack_write(f->src, dir, &o, NULL, err, sizeof err);
}

/* ------------------------------------------------------------ round trips */

static void check_roundtrip(const fake *f, const char *dir, trl_encoding enc, uint64_t chunk) {
    trlc_write_opts o = trlc_write_default_opts();
    o.matrix_encoding = enc;
    if (chunk) o.chunk_bytes = chunk;
    trlc_write_summary sum;
    CHECK(trlc_pack_write(f->src, dir, &o, &sum, err, sizeof err) == 0);
    trlc_pack *p = NULL;
    CHECK(trlc_pack_open(dir, &p, err, sizeof err) == 0);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    const trl_config *a = &f->src->cfg, *b = &p->config;
    CHECK(a->arch == b->arch && a->mlp == b->mlp && a->rope_style == b->rope_style && a->act_quant == b->act_quant);
    CHECK(a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers);
    CHECK(a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim);
    CHECK(a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len);
    CHECK(a->rope_theta == b->rope_theta && a->norm_eps == b->norm_eps);
    CHECK(a->tied_embeddings == b->tied_embeddings && a->sub_norms == b->sub_norms);
    CHECK(!strcmp(p->name, "fake"));
    CHECK(p->tokenizer_bytes == 100 && !memcmp(p->tokenizer, f->src->tok.blob, 100));
    CHECK(p->tokenizer_kind == TRL_TOK_SPM && p->bos_id == 1 && p->eos_id == 2);
    CHECK(p->chat_template && !strcmp(p->chat_template, TEMPLATE));
    CHECK(p->n_tensors == f->src->n_tensors && sum.n_tensors == p->n_tensors);
    CHECK(sum.n_chunks == p->n_chunks);
    uint64_t dl = 0, tb = 0;
    for (size_t i = 0; i < p->n_chunks; i++) {
        dl += p->chunks[i].bytes;
        CHECK(((uintptr_t)p->chunks[i].data & 63) == 0);
    }
    CHECK(dl == sum.download_bytes);
    float *row = malloc(4096 * sizeof(float));
    unsigned char *enc_row = malloc(4096 * 4);
    for (size_t i = 0; i < p->n_tensors; i++) {
        const trl_tensor *t = &p->tensors[i];
        const trlc_src_tensor *s = &f->src->tensors[i];
        tb += t->bytes;
        CHECK(!strcmp(t->name, s->name));
        CHECK(t->n_dims == s->n_dims && t->shape[0] == s->shape[0] && (t->n_dims == 1 || t->shape[1] == s->shape[1]));
        trl_encoding want = s->n_dims == 2 ? enc : TRL_ENC_F32;
        CHECK(t->encoding == want);
        uint64_t rows = t->n_dims == 2 ? (uint64_t)t->shape[0] : 1;
        uint64_t cols = t->n_dims == 2 ? (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
        size_t rb = trl_encoding_row_bytes(want, cols);
        CHECK(t->bytes == rows * rb);
        /* the bytes are exactly what the core's encoder makes of the source rows */
        int same = 1;
        for (uint64_t r = 0; r < rows; r++) {
            trlc_dtype_to_f32(s->dtype, s->data + r * cols * 4, (size_t)cols, row);
            trl_encode_row(want, row, cols, enc_row);
            if (memcmp(enc_row, (const uint8_t *)t->data + r * rb, rb)) same = 0;
        }
        CHECK(same);
        /* aligned inside its chunk */
        int found = 0;
        for (size_t k = 0; k < p->n_chunks; k++) {
            const uint8_t *d = t->data;
            if (d >= p->chunks[k].data && d + t->bytes <= p->chunks[k].data + p->chunks[k].bytes) {
                found = 1;
                CHECK((size_t)(d - p->chunks[k].data) % 64 == 0);
            }
        }
        CHECK(found);
    }
    CHECK(tb == sum.tensor_bytes);
    /* the tokenizer comes first in chunk 0 */
    CHECK(p->tokenizer == p->chunks[0].data);
    /* chunk size limit: only a lone oversized blob may exceed it */
    if (chunk)
        for (size_t k = 0; k < p->n_chunks; k++) {
            if (p->chunks[k].bytes <= chunk) continue;
            int n_in = 0;
            for (size_t i = 0; i < p->n_tensors; i++) {
                const uint8_t *d = p->tensors[i].data;
                if (d >= p->chunks[k].data && d < p->chunks[k].data + p->chunks[k].bytes) n_in++;
            }
            if (k == 0) n_in++; /* the tokenizer */
            CHECK(n_in == 1);
        }
    /* the manifest says what FORMAT.md says it says */
    CHECK(strstr(p->manifest, "\"variants\"") && strstr(p->manifest, "\"id\": \"base\""));
    CHECK(strstr(p->manifest, "\"norm_eps\": 1e-05") && strstr(p->manifest, "\"rope_theta\": 10000"));
    if (!strstr(p->manifest, "\"norm_eps\": 1e-05")) fputs(p->manifest, stderr);
    char ctx_key[64];
    snprintf(ctx_key, sizeof ctx_key, "\"context_bytes\": { \"%d\": ", a->max_seq_len);
    CHECK(strstr(p->manifest, ctx_key) != NULL);

    /* and the core accepts it and runs it */
    trl_model *m = NULL;
    trl_error e;
    CHECK(trl_model_create(&p->config, p->tensors, p->n_tensors, &m, &e) == TRL_OK);
    if (m) {
        trl_ctx_params cp = trl_ctx_default_params();
        trl_ctx *ctx = NULL;
        CHECK(trl_ctx_create(m, &cp, &ctx, &e) == TRL_OK);
        if (ctx) {
            int32_t toks[4] = {1, 5, 9, 39};
            CHECK(trl_ctx_prefill(ctx, toks, 4, NULL) == TRL_OK);
            const float *lg = trl_ctx_logits(ctx);
            int finite = 1;
            for (int i = 0; i < p->config.vocab_size; i++) finite &= isfinite(lg[i]) != 0;
            CHECK(finite);
            trl_ctx_free(ctx);
        }
        trl_model_free(m);
    }
    free(row);
    free(enc_row);
    trlc_pack_close(p);
}

static void test_roundtrips(void) {
    fake f = make_fake(small_config(), 11);
    char *d1 = join(root, "f32"), *d2 = join(root, "f16"), *d3 = join(root, "q8");
    check_roundtrip(&f, d1, TRL_ENC_F32, 0);
    check_roundtrip(&f, d2, TRL_ENC_F16, 2048);
    /* token_embd in q8_0 is 40 * 34 = 1360 bytes: larger than a 1024-byte chunk */
    check_roundtrip(&f, d3, TRL_ENC_Q8_0, 1024);
    trlc_pack *p;
    if (trlc_pack_open(d1, &p, err, sizeof err) == 0) {
        CHECK(p->n_chunks == 1);
        trlc_pack_close(p);
    }
    if (trlc_pack_open(d3, &p, err, sizeof err) == 0) {
        CHECK(p->n_chunks > 3);
        trlc_pack_close(p);
    }
    free_fake(&f);
    /* tied + BitNet sub-norms */
    trl_config c = small_config();
    c.tied_embeddings = 1, c.arch = TRL_ARCH_BITNET, c.sub_norms = 1, c.mlp = TRL_MLP_RELU2;
    c.rope_style = TRL_ROPE_HALF;
    f = make_fake(c, 12);
    char *d4 = join(root, "bitnet");
    check_roundtrip(&f, d4, TRL_ENC_Q8_0, 0);
    free_fake(&f);
    free(d1), free(d2), free(d3), free(d4);
}

/* ------------------------------------------------------------ the writer */

static void test_writer_safety(void) {
    fake f = make_fake(small_config(), 13);
    char *d = join(root, "safe");
    CHECK(write_pack(&f, d, TRL_ENC_F32, 0, 0) == 0);
    /* exists: refused without --force, untouched */
    int before = count_entries(root);
    CHECK(write_pack(&f, d, TRL_ENC_F32, 0, 0) == -1);
    CHECK_ERR(err, d, "already exists", "--force");
    CHECK(count_entries(root) == before);
    char *dslash = malloc(strlen(d) + 2);
    sprintf(dslash, "%s/", d);
    CHECK(write_pack(&f, dslash, TRL_ENC_F32, 0, 0) == -1);
    CHECK_ERR(err, "already exists");
    free(dslash);
    /* --force replaces it */
    snprintf(f.src->name, sizeof f.src->name, "renamed");
    CHECK(write_pack(&f, d, TRL_ENC_Q8_0, 0, 1) == 0);
    trlc_pack *p;
    CHECK(trlc_pack_open(d, &p, err, sizeof err) == 0);
    if (p) {
        CHECK(!strcmp(p->name, "renamed") && p->tensors[0].encoding == TRL_ENC_Q8_0);
        trlc_pack_close(p);
    }
    CHECK(count_entries(root) == before); /* no .tmp / .old leftovers */

    /* --force does not replace what is not a pack */
    char *other = join(root, "notapack");
    mkdir(other, 0777);
    char *keep = join(other, "precious.txt");
    write_file(keep, "x", 1);
    CHECK(write_pack(&f, other, TRL_ENC_F32, 0, 1) == -1);
    CHECK_ERR(err, other, "not a trillium pack", "refusing");
    CHECK(access(keep, F_OK) == 0);
    char *file = join(root, "afile");
    write_file(file, "x", 1);
    CHECK(write_pack(&f, file, TRL_ENC_F32, 0, 1) == -1);
    CHECK_ERR(err, "not a trillium pack");
    /* an empty directory is fine to fill */
    char *empty = join(root, "emptydir");
    mkdir(empty, 0777);
    CHECK(write_pack(&f, empty, TRL_ENC_F32, 0, 1) == 0);
    CHECK(trlc_pack_open(empty, &p, err, sizeof err) == 0);
    trlc_pack_close(p);

    /* a failure half way leaves nothing behind, and the old pack intact */
    before = count_entries(root);
    f.pool[5000] = NAN; /* inside a layer matrix */
    char *fresh = join(root, "fresh");
    CHECK(write_pack(&f, fresh, TRL_ENC_F32, 1024, 0) == -1);
    CHECK_ERR(err, "NaN", "row");
    CHECK(access(fresh, F_OK) != 0);
    CHECK(count_entries(root) == before);
    size_t n1, n2;
    char *dm = join(d, "manifest.json");
    char *m1 = read_file(dm, &n1);
    CHECK(write_pack(&f, d, TRL_ENC_F32, 1024, 1) == -1);
    char *m2 = read_file(dm, &n2);
    free(dm);
    CHECK(m1 && m2 && n1 == n2 && !memcmp(m1, m2, n1));
    CHECK(count_entries(root) == before);
    CHECK(trlc_pack_open(d, &p, err, sizeof err) == 0);
    trlc_pack_close(p);
    f.pool[5000] = 0.0f;
    free(m1), free(m2);

    /* the source must match its config and have a tokenizer */
    void *blob = f.src->tok.blob;
    f.src->tok.blob = NULL;
    CHECK(write_pack(&f, fresh, TRL_ENC_F32, 0, 0) == -1);
    CHECK_ERR(err, "test:fake", "no tokenizer", "--tokenizer");
    f.src->tok.blob = blob;
    f.src->n_tensors--;
    CHECK(write_pack(&f, fresh, TRL_ENC_F32, 0, 0) == -1);
    CHECK_ERR(err, "missing tensor output.weight");
    f.src->n_tensors++;
    f.src->tensors[3].shape[0] = 8;
    CHECK(write_pack(&f, fresh, TRL_ENC_F32, 0, 0) == -1);
    CHECK_ERR(err, "blk.0.attn_k.weight", "shape");
    f.src->tensors[3].shape[0] = 16;
    CHECK(access(fresh, F_OK) != 0);
    CHECK(count_entries(root) == before);
    free(fresh), free(empty), free(file), free(keep), free(other), free(d);
    free_fake(&f);
}

/* ------------------------------------------------------------ the loader */

static char *good;   /* a good pack, re-written before each damage */
static fake gfake;

/* removed first: --force rightly refuses to replace a directory whose manifest is damaged */
static void fresh_pack(void) {
    rm_tree(good);
    CHECK(write_pack(&gfake, good, TRL_ENC_Q8_0, 1024, 0) == 0);
}

#define EXPECT_OPEN_FAIL(...)                                                                                      \
    do {                                                                                                           \
        trlc_pack *p_ = NULL;                                                                                      \
        err[0] = 0;                                                                                                \
        CHECK(trlc_pack_open(good, &p_, err, sizeof err) == -1);                                                   \
        CHECK(p_ == NULL);                                                                                         \
        CHECK_ERR(err, __VA_ARGS__);                                                                               \
    } while (0)

static void test_loader_errors(void) {
    gfake = make_fake(small_config(), 14);
    good = join(root, "good");
    char *mp = join(good, "manifest.json"), *c0 = join(good, "chunk-0000.bin"), *c1 = join(good, "chunk-0001.bin");
    fresh_pack();
    trlc_pack *p;
    CHECK(trlc_pack_open(good, &p, err, sizeof err) == 0);
    if (!p) return;
    size_t c0_bytes = p->chunks[0].bytes, c1_bytes = p->chunks[1].bytes;
    size_t t0_bytes = p->tensors[0].bytes;
    char t0_txt[256], t0_bad[256], t1_off[128], t1_bad[128];
    /* find tensor 0's and tensor 1's chunk/offset from the manifest text */
    const char *at = strstr(p->manifest, "\"name\": \"token_embd.weight\"");
    const char *bytes_at = at ? strstr(at, "\"bytes\": ") : NULL;
    snprintf(t0_txt, sizeof t0_txt, "\"bytes\": %zu }", t0_bytes);
    snprintf(t0_bad, sizeof t0_bad, "\"bytes\": %zu }", t0_bytes - 2);
    CHECK(bytes_at && !strncmp(bytes_at, t0_txt, strlen(t0_txt)));
    const char *t1 = strstr(p->manifest, "\"name\": \"blk.0.attn_norm.weight\"");
    const char *off_at = t1 ? strstr(t1, "\"offset\": ") : NULL;
    long off1 = off_at ? strtol(off_at + 10, NULL, 10) : 0;
    snprintf(t1_off, sizeof t1_off, "\"name\": \"blk.0.attn_norm.weight\", \"encoding\": \"f32\", \"shape\": [32], ");
    snprintf(t1_bad, sizeof t1_bad, "\"offset\": %ld,", off1 + 4);
    char t1_off_txt[64];
    snprintf(t1_off_txt, sizeof t1_off_txt, "\"offset\": %ld,", off1);
    trlc_pack_close(p);

    /* a missing chunk */
    remove(c1);
    EXPECT_OPEN_FAIL("chunk-0001.bin", "cannot open", "manifest.json: chunks[1].file");
    fresh_pack();
    /* one flipped byte */
    size_t n;
    unsigned char *raw = read_file(c0, &n);
    raw[n / 2] ^= 0x01;
    write_file(c0, raw, n);
    EXPECT_OPEN_FAIL("chunk-0000.bin", "sha256", "does not match", "chunks[0].sha256");
    /* a truncated chunk */
    write_file(c0, raw, n - 1);
    EXPECT_OPEN_FAIL("chunk-0000.bin", "bytes, but", "chunks[0].bytes");
    free(raw);
    fresh_pack();
    /* the manifest lies about a chunk's size */
    char from[96], to[96];
    snprintf(from, sizeof from, "\"file\": \"chunk-0001.bin\", \"bytes\": %zu,", c1_bytes);
    snprintf(to, sizeof to, "\"file\": \"chunk-0001.bin\", \"bytes\": %zu,", c1_bytes + 64);
    CHECK(edit_file(mp, from, to) == 0);
    EXPECT_OPEN_FAIL("chunk-0001.bin", "manifest.json: chunks[1].bytes says");
    fresh_pack();
    snprintf(from, sizeof from, "\"file\": \"chunk-0000.bin\", \"bytes\": %zu,", c0_bytes);
    snprintf(to, sizeof to, "\"file\": \"chunk-0000.bin\", \"bytes\": %zu,", c0_bytes - 64);
    CHECK(edit_file(mp, from, to) == 0);
    EXPECT_OPEN_FAIL("manifest.json");
    fresh_pack();
    /* the manifest lies about a tensor's size */
    CHECK(edit_file(mp, t0_txt, t0_bad) == 0);
    char msg[160];
    snprintf(msg, sizeof msg, "manifest.json: tensors[0].bytes: %zu does not match shape [40, 32] in q8_0",
             t0_bytes - 2);
    EXPECT_OPEN_FAIL(good, msg);
    fresh_pack();
    /* misaligned offset */
    CHECK(edit_file(mp, t1_off, t1_off) == 0);
    {
        size_t mn;
        char *m = read_file(mp, &mn);
        char *tt = strstr(m, "\"name\": \"blk.0.attn_norm.weight\"");
        CHECK(tt != NULL);
        if (tt) {
            char *o = strstr(tt, t1_off_txt);
            CHECK(o != NULL);
            if (o) {
                size_t pre = (size_t)(o - m);
                char *nm = malloc(mn + 16);
                memcpy(nm, m, pre);
                size_t k = pre + (size_t)sprintf(nm + pre, "%s", t1_bad);
                strcpy(nm + k, o + strlen(t1_off_txt));
                write_file(mp, nm, strlen(nm));
                free(nm);
            }
        }
        free(m);
    }
    EXPECT_OPEN_FAIL("manifest.json: tensors[1].offset", "not a multiple of 64");
    fresh_pack();
    /* unknown version, wrong format */
    CHECK(edit_file(mp, "\"version\": 1,", "\"version\": 4,") == 0);
    EXPECT_OPEN_FAIL("manifest.json: version", "this pack needs format version 4", "upgrade");
    fresh_pack();
    CHECK(edit_file(mp, "\"version\": 1,", "\"version\": \"1\",") == 0);
    EXPECT_OPEN_FAIL("manifest.json: version");
    fresh_pack();
    CHECK(edit_file(mp, "\"trillium-pack\"", "\"gguf\"") == 0);
    EXPECT_OPEN_FAIL("manifest.json: format");
    fresh_pack();
    /* unknown encoding, bad shape, chunk index, names */
    CHECK(edit_file(mp, "\"encoding\": \"q8_0\"", "\"encoding\": \"q4_k\"") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tensors[0].encoding", "q4_k");
    fresh_pack();
    CHECK(edit_file(mp, "\"shape\": [40, 32]", "\"shape\": [40, 0]") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tensors[0].shape");
    fresh_pack();
    CHECK(edit_file(mp, "\"shape\": [40, 32]", "\"shape\": [40, 32, 1]") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tensors[0].shape");
    fresh_pack();
    CHECK(edit_file(mp, "\"encoding\": \"f32\", \"shape\": [32]", "\"encoding\": \"q8_0\", \"shape\": [32]") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tensors[1].encoding", "1-D");
    fresh_pack();
    CHECK(edit_file(mp, "\"shape\": [40, 32], \"chunk\": ", "\"shape\": [40, 32], \"chunk\": 9") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tensors[0].chunk");
    fresh_pack();
    CHECK(edit_file(mp, "\"name\": \"blk.0.attn_q.weight\"", "\"name\": \"token_embd.weight\"") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tensors", "token_embd.weight appears twice");
    fresh_pack();
    CHECK(edit_file(mp, "\"file\": \"chunk-0000.bin\"", "\"file\": \"../chunk-0000.bin\"") == 0);
    EXPECT_OPEN_FAIL("manifest.json: chunks[0].file", "plain file name");
    fresh_pack();
    CHECK(edit_file(mp, "\"sha256\": \"", "\"sha256\": \"X") == 0);
    EXPECT_OPEN_FAIL("manifest.json: chunks[0].sha256");
    fresh_pack();
    CHECK(edit_file(mp, "\"kind\": \"spm\"", "\"kind\": \"wordpiece\"") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tokenizer.kind");
    fresh_pack();
    CHECK(edit_file(mp, "\"bytes\": 100,", "\"bytes\": 100000,") == 0);
    EXPECT_OPEN_FAIL("manifest.json: tokenizer", "runs past the end of chunk-0000.bin");
    fresh_pack();
    CHECK(edit_file(mp, "\"dim\": 32,", "\"dim\": 0,") == 0);
    EXPECT_OPEN_FAIL("manifest.json: config.dim");
    fresh_pack();
    CHECK(edit_file(mp, "\"n_layers\": 2,", "\"n_layers\": 99999999999999,") == 0);
    EXPECT_OPEN_FAIL("manifest.json: config.n_layers");
    fresh_pack();
    CHECK(edit_file(mp, "\"tensors\": [", "\"tensors\": [[") == 0);
    EXPECT_OPEN_FAIL("manifest.json: bad JSON");
    fresh_pack();
    remove(mp);
    EXPECT_OPEN_FAIL("manifest.json", "cannot open");
    fresh_pack();
    /* the core catches what the manifest cannot say: a model missing a tensor */
    CHECK(trlc_pack_open(good, &p, err, sizeof err) == 0);
    if (p) {
        trl_model *m = NULL;
        trl_error e;
        CHECK(trl_model_create(&p->config, p->tensors, p->n_tensors - 1, &m, &e) != TRL_OK);
        trl_model_free(m);
        trlc_pack_close(p);
    }
    char *nodir = join(root, "nothing-here");
    CHECK(trlc_pack_open(nodir, &p, err, sizeof err) == -1);
    CHECK_ERR(err, "nothing-here", "not a directory");
    free(nodir);
    free(mp), free(c0), free(c1), free(good);
    free_fake(&gfake);
}

int main(void) {
    root = make_tmpdir("pack");
    test_roundtrips();
    test_writer_safety();
    test_loader_errors();
    rm_tree(root);
    free(root);
    return test_done("test-converter-pack");
}
