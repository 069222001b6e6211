/* test-converter-gguf.c - the GGUF reader and GGUF sources through the writer.
 *
 *   test-converter-gguf [PYTHON]      (default /usr/bin/python3, which has numpy)
 *
 * Fixtures come from tests/reference/gguf_writer.py at test time (models from
 * tests/reference/gen_model.py): metadata of every value type; Q8_0 blocks
 * copied into q8_0 byte for byte; TQ1_0 / TQ2_0 layers into t2 and t1 with the
 * trits and scales the writer put in the blocks (checked against its
 * --expect file through trl_ternary_unpack); block scales no pack layout
 * holds fall back, with a warning, to exact f32; the embedded tokenizer gives
 * the same blob as the Hugging Face tokenizer.json it came from. Without that
 * Python those parts are skipped (and said so). Then hand-made files
 * (tests/converter/ggufbuild.h): a valid tiny model and one fault at a time,
 * each with a message naming the file and the field; every prefix of a file
 * (truncation) and seeded byte corruption, run under the sanitizers. */
#include "converter/testutil.h"
#include <math.h>
#include <sys/wait.h>

#include "converter/ggufbuild.h"
#include "tokenizer_blob.h"
#include "tokenizer_import.h"
#include "trlc.h"

static char err[1024];
static const char *PY = "/usr/bin/python3";
static char *tmp;

/* ------------------------------------------------------------- helpers */

static int sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static char *path(const char *name) {
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

static int have_numpy(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", PY);
    return system(cmd) == 0;
}

static trlc_model_src *open_src(const char *file) {
    trlc_model_src *s = NULL;
    err[0] = 0;
    if (trlc_source_open(file, NULL, &s, err, sizeof err)) fprintf(stderr, "open %s: %s\n", file, err);
    return s;
}

static int n_warnings;
static char last_warning[512];
static void on_warning(void *user, const char *msg) {
    (void)user;
    n_warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", msg);
}

static trlc_pack *convert(trlc_model_src *s, const char *dir, trlc_write_opts *o) {
    o->force = 1;
    o->on_warning = on_warning;
    err[0] = 0;
    if (trlc_pack_write(s, dir, o, NULL, err, sizeof err)) {
        fprintf(stderr, "write %s: %s\n", dir, err);
        return NULL;
    }
    trlc_pack *p = NULL;
    if (trlc_pack_open(dir, &p, err, sizeof err)) fprintf(stderr, "pack_open %s: %s\n", dir, err);
    return p;
}

static const trlc_src_tensor *src_find(const trlc_model_src *s, const char *name) {
    for (size_t i = 0; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i].name, name)) return &s->tensors[i];
    return NULL;
}

/* ------------------------------------------------------------ metadata */

static void test_metadata(void) {
    trlc_gguf g;
    if (trlc_gguf_open(path("lt-f32.gguf"), &g, err, sizeof err)) {
        fprintf(stderr, "gguf_open: %s\n", err);
        CHECK(0);
        return;
    }
    CHECK(g.version == 3);
    CHECK(g.alignment == 64);
    CHECK(g.data_offset % 64 == 0);
    const trlc_gguf_kv *kv;
#define KV(key, t) ((kv = trlc_gguf_find(&g, key)) && kv->type == (t))
    CHECK(KV("test.u8", TRLC_GGUF_U8) && kv->i == 200);
    CHECK(KV("test.i8", TRLC_GGUF_I8) && kv->i == -100);
    CHECK(KV("test.u16", TRLC_GGUF_U16) && kv->i == 60000);
    CHECK(KV("test.i16", TRLC_GGUF_I16) && kv->i == -30000);
    CHECK(KV("test.u32", TRLC_GGUF_U32) && kv->i == 4000000000LL);
    CHECK(KV("test.i32", TRLC_GGUF_I32) && kv->i == -2000000000LL);
    CHECK(KV("test.f32", TRLC_GGUF_F32) && kv->f == 0.25);
    CHECK(KV("test.bool", TRLC_GGUF_BOOL) && kv->i == 1);
    CHECK(KV("test.string", TRLC_GGUF_STRING) && kv->str_len == 6 && !memcmp(kv->str, "h\xc3\xa9llo", 6));
    CHECK(KV("test.u64", TRLC_GGUF_U64) && kv->u == (1ull << 63) + 5);
    CHECK(KV("test.i64", TRLC_GGUF_I64) && kv->i == -(1LL << 62));
    CHECK(KV("test.f64", TRLC_GGUF_F64) && kv->f == -1.5e300);
    CHECK(KV("test.arr_u8", TRLC_GGUF_ARRAY) && kv->arr_type == TRLC_GGUF_U8 && kv->arr_n == 3 && kv->arr[2] == 255);
    CHECK(KV("test.arr_i16", TRLC_GGUF_ARRAY) && kv->arr_type == TRLC_GGUF_I16 && kv->arr_n == 2 &&
          kv->arr[0] == 0xFF && kv->arr[1] == 0xFF);
    CHECK(KV("test.arr_f32", TRLC_GGUF_ARRAY) && kv->arr_type == TRLC_GGUF_F32 && kv->arr_n == 2);
    CHECK(KV("test.arr_bool", TRLC_GGUF_ARRAY) && kv->arr_type == TRLC_GGUF_BOOL && kv->arr[1] == 1);
    CHECK(KV("test.arr_str", TRLC_GGUF_ARRAY) && kv->arr_type == TRLC_GGUF_STRING && kv->arr_n == 3);
    CHECK(KV("test.arr_u64", TRLC_GGUF_ARRAY) && kv->arr_type == TRLC_GGUF_U64 && kv->arr[0] == 7);
    CHECK(KV("test.arr_f64", TRLC_GGUF_ARRAY) && kv->arr_type == TRLC_GGUF_F64 && kv->arr_n == 1);
    CHECK(KV("test.arr_empty", TRLC_GGUF_ARRAY) && kv->arr_type == TRLC_GGUF_I32 && kv->arr_n == 0);
    CHECK(KV("general.architecture", TRLC_GGUF_STRING));
    CHECK(!trlc_gguf_find(&g, "test.nope"));
#undef KV
    const trlc_gguf_tensor *t = trlc_gguf_find_tensor(&g, "token_embd.weight");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 384 && t->type == TRLC_GGML_F32 &&
          t->nbytes == 64 * 384 * 4 && t->offset % 64 == 0);
    t = trlc_gguf_find_tensor(&g, "blk.1.ffn_down.weight");
    CHECK(t && t->ne[0] == 160 && t->ne[1] == 64);
    CHECK(!strcmp(trlc_ggml_type_name(34), "TQ1_0") && !strcmp(trlc_ggml_type_name(4), "?"));
    trlc_gguf_close(&g);
}

/* -------------------------------------------------- tokenizer, config */

static void test_same_as_hf(const char *hfdir, const char *gguf) {
    trlc_model_src *h = open_src(path(hfdir)), *g = open_src(path(gguf));
    CHECK(h && g);
    if (h && g) {
        CHECK(h->tok.len == g->tok.len && !memcmp(h->tok.blob, g->tok.blob, h->tok.len));
        CHECK(h->tok.bos_id == g->tok.bos_id && h->tok.eos_id == g->tok.eos_id && h->tok.kind == g->tok.kind);
        CHECK(h->tok.chat_template && g->tok.chat_template && !strcmp(h->tok.chat_template, g->tok.chat_template));
        const trl_config *a = &h->cfg, *b = &g->cfg;
        CHECK(a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers &&
              a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
              a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len &&
              a->tied_embeddings == b->tied_embeddings && a->rope_theta == b->rope_theta && a->norm_eps == b->norm_eps);
        CHECK(h->rope_theta == g->rope_theta && h->norm_eps == g->norm_eps); /* 1e-05, not its float */
        CHECK(a->rope_style == TRL_ROPE_HALF && b->rope_style == TRL_ROPE_INTERLEAVED);
        CHECK(!strncmp(g->source, "gguf:", 5));
    }
    trlc_source_free(h);
    trlc_source_free(g);
}

/* ------------------------------------------------------------------ Q8_0 */

static void test_q8_0(void) {
    trlc_model_src *s = open_src(path("lt-q8.gguf"));
    if (!s) {
        CHECK(0);
        return;
    }
    trlc_write_opts o = trlc_write_default_opts(); /* f32: the Q8_0 tensors still stay q8_0 */
    trlc_pack *p = convert(s, path("p-q8"), &o);
    CHECK(p != NULL);
    int n = 0;
    for (size_t i = 0; p && i < s->n_tensors; i++) {
        const trlc_src_tensor *t = &s->tensors[i];
        const trl_tensor *pt = trlc_pack_find(p, t->name);
        CHECK(pt != NULL);
        if (!pt) continue;
        if (t->n_dims == 1) {
            CHECK(pt->encoding == TRL_ENC_F32);
            continue;
        }
        CHECK(t->dtype == TRLC_DT_Q8_0 && pt->encoding == TRL_ENC_Q8_0);
        CHECK(pt->bytes == t->nbytes && !memcmp(pt->data, t->data, t->nbytes));
        n++;
    }
    CHECK(n == 15 && p && p->version == 1);
    trlc_pack_close(p);
    /* --dequant: the same values as f32 */
    o = trlc_write_default_opts();
    o.keep_quant = 0;
    p = convert(s, path("p-q8-f32"), &o);
    const trlc_src_tensor *t = src_find(s, "blk.0.ffn_up.weight");
    const trl_tensor *pt = p ? trlc_pack_find(p, "blk.0.ffn_up.weight") : NULL;
    CHECK(t && pt && pt->encoding == TRL_ENC_F32);
    if (t && pt) {
        size_t nw = (size_t)(t->shape[0] * t->shape[1]);
        float *w = malloc(nw * sizeof *w);
        CHECK(!trlc_dtype_to_f32(TRLC_DT_Q8_0, t->data, nw, w));
        CHECK(!memcmp(w, pt->data, nw * 4));
        free(w);
    }
    trlc_pack_close(p);
    trlc_source_free(s);

    /* the writer's Q8_0 is the converter's q8_0: rows of an HF --dtype q8_0 pack are the GGUF's blocks */
    trlc_model_src *h = open_src(path("llama-tied")), *g = open_src(path("lt-q8.gguf"));
    o = trlc_write_default_opts();
    o.matrix_encoding = TRL_ENC_Q8_0;
    trlc_pack *ph = h ? convert(h, path("p-hf-q8"), &o) : NULL;
    CHECK(ph && g);
    static const char *const same[] = {"token_embd.weight", "blk.0.attn_v.weight", "blk.1.ffn_down.weight"};
    for (int i = 0; ph && g && i < 3; i++) {
        const trlc_src_tensor *gt = src_find(g, same[i]);
        const trl_tensor *ht = trlc_pack_find(ph, same[i]);
        CHECK(gt && ht && ht->bytes == gt->nbytes && !memcmp(ht->data, gt->data, gt->nbytes));
    }
    trlc_pack_close(ph);
    trlc_source_free(h);
    trlc_source_free(g);
}

/* ------------------------------------------------------------ TQ1_0, TQ2_0 */

typedef struct expect_t {
    char name[64];
    uint32_t rows, cols;
    const int8_t *trits;
    const uint8_t *d; /* f32 (rows, cols / 256), unaligned */
} expect_t;

static float ex_d(const expect_t *e, size_t i) {
    float f;
    memcpy(&f, e->d + 4 * i, 4);
    return f;
}

static int read_expect(const char *file, uint8_t **buf, expect_t *ex, int cap) {
    size_t n;
    *buf = read_file(file, &n);
    if (!*buf || n < 8 || memcmp(*buf, "TQEX", 4)) return -1;
    uint32_t count;
    memcpy(&count, *buf + 4, 4);
    size_t at = 8;
    int k = 0;
    for (uint32_t i = 0; i < count && k < cap; i++, k++) {
        uint32_t nl;
        memcpy(&nl, *buf + at, 4);
        at += 4;
        snprintf(ex[k].name, sizeof ex[k].name, "%.*s", (int)nl, (const char *)*buf + at);
        at += nl;
        memcpy(&ex[k].rows, *buf + at, 4);
        memcpy(&ex[k].cols, *buf + at + 4, 4);
        at += 8;
        ex[k].trits = (const int8_t *)*buf + at;
        at += (size_t)ex[k].rows * ex[k].cols;
        ex[k].d = *buf + at;
        at += (size_t)ex[k].rows * ex[k].cols / 256 * 4;
        if (at > n) return -1;
    }
    return k;
}

static void test_tq(const char *gguf, const char *expect_file, trl_encoding enc) {
    expect_t ex[32];
    uint8_t *buf = NULL;
    int nex = read_expect(path(expect_file), &buf, ex, 32);
    CHECK(nex == 14);
    trlc_model_src *s = open_src(path(gguf));
    trlc_write_opts o = trlc_write_default_opts();
    o.ternary_encoding = enc;
    n_warnings = 0;
    char dir[64];
    snprintf(dir, sizeof dir, "p-%s-%s", gguf, trl_encoding_name(enc));
    trlc_pack *p = s ? convert(s, path(dir), &o) : NULL;
    CHECK(p && p->version == 2 && n_warnings == 0);
    int axes[4] = {0};
    for (int k = 0; p && k < nex; k++) {
        const trl_tensor *t = trlc_pack_find(p, ex[k].name);
        CHECK(t && t->encoding == enc && t->shape[0] == (int64_t)ex[k].rows && t->shape[1] == (int64_t)ex[k].cols);
        if (!t || t->encoding != enc) continue;
        uint64_t rows = ex[k].rows, cols = ex[k].cols;
        int8_t *tr = malloc(rows * cols);
        CHECK(trl_ternary_unpack(enc, t->data, rows, cols, tr) == TRL_OK);
        size_t codes = rows * trl_encoding_row_bytes(enc, cols);
        const float *scales = (const float *)((const uint8_t *)t->data + codes);
        int bad_t = 0, bad_s = 0;
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t c = 0; c < cols; c++) {
                int8_t want = ex[k].trits[r * cols + c];
                if (tr[r * cols + c] != want) bad_t++;
                if (want && trlc_ternary_scale_at(&t->params, scales, rows, cols, r, c) != ex_d(&ex[k], r * (cols / 256) + c / 256))
                    bad_s++;
            }
        if (bad_t || bad_s) fprintf(stderr, "%s %s: %d trits and %d scales differ\n", gguf, ex[k].name, bad_t, bad_s);
        CHECK(bad_t == 0 && bad_s == 0);
        if (t->params.scale_axis >= 0 && t->params.scale_axis < 4) axes[t->params.scale_axis]++;
        free(tr);
    }
    CHECK(axes[0] && axes[1] && axes[2] && axes[3]); /* every scale layout was met */
    trlc_pack_close(p);
    trlc_source_free(s);
    free(buf);
}

/* Block scales that vary within rows: exact f32 instead, with a warning. */
static void test_tq_fallback(void) {
    trlc_model_src *s = open_src(path("rt-block.gguf"));
    trlc_write_opts o = trlc_write_default_opts();
    n_warnings = 0;
    trlc_pack *p = s ? convert(s, path("p-block"), &o) : NULL;
    CHECK(p && n_warnings == 2);
    CHECK_ERR(last_warning, "ffn_down.weight", "TQ2_0", "f32");
    const trlc_src_tensor *t = s ? src_find(s, "blk.0.ffn_down.weight") : NULL;
    const trl_tensor *pt = p ? trlc_pack_find(p, "blk.0.ffn_down.weight") : NULL;
    CHECK(t && pt && pt->encoding == TRL_ENC_F32);
    if (t && pt) {
        size_t nw = (size_t)(t->shape[0] * t->shape[1]);
        float *w = malloc(nw * sizeof *w);
        CHECK(!trlc_dtype_to_f32(TRLC_DT_TQ2_0, t->data, nw, w) && !memcmp(w, pt->data, nw * 4));
        free(w);
    }
    pt = p ? trlc_pack_find(p, "blk.0.attn_q.weight") : NULL; /* 256 columns: one block a row, so per-row scales */
    CHECK(pt && pt->encoding == TRL_ENC_T2 && pt->params.scale_axis == TRL_SCALE_ROW);
    trlc_pack_close(p);
    trlc_source_free(s);
}

/* Q4_0 and BF16 are dequantized: the pack holds exactly ggml's values. */
static void test_dequantized(const char *gguf, trlc_dtype dt) {
    trlc_model_src *s = open_src(path(gguf));
    trlc_write_opts o = trlc_write_default_opts();
    char dir[64];
    snprintf(dir, sizeof dir, "p-%s", gguf);
    trlc_pack *p = s ? convert(s, path(dir), &o) : NULL;
    CHECK(p != NULL);
    const trlc_src_tensor *t = s ? src_find(s, "blk.1.attn_output.weight") : NULL;
    const trl_tensor *pt = p ? trlc_pack_find(p, "blk.1.attn_output.weight") : NULL;
    CHECK(t && t->dtype == dt && pt && pt->encoding == TRL_ENC_F32);
    if (t && pt) {
        size_t nw = (size_t)(t->shape[0] * t->shape[1]);
        float *w = malloc(nw * sizeof *w);
        CHECK(!trlc_dtype_to_f32(dt, t->data, nw, w) && !memcmp(w, pt->data, nw * 4));
        free(w);
    }
    trlc_pack_close(p);
    trlc_source_free(s);
}

/* ------------------------------------------------------ hand-made files */

static int parse_buf(const gb *b, const char *name) {
    trlc_gguf g;
    err[0] = 0;
    int rc = trlc_gguf_parse(b->d, b->n, name, &g, err, sizeof err);
    if (!rc) trlc_gguf_close(&g);
    return rc;
}

static int model_buf(const gb *b, const char *name) {
    trlc_model_src *s = NULL;
    err[0] = 0;
    int rc = trlc_gguf_model_from_mem(b->d, b->n, name, &s, err, sizeof err);
    trlc_source_free(s);
    return rc;
}

static void tiny(gb *b, const tiny_opts *o) {
    free(b->d);
    memset(b, 0, sizeof *b);
    tiny_build(b, o);
}

/* The offset of the n-th occurrence of bytes in b. */
static size_t find(const gb *b, const void *s, size_t n, int nth) {
    for (size_t i = 0; i + n <= b->n; i++)
        if (!memcmp(b->d + i, s, n) && nth-- == 0) return i;
    return (size_t)-1;
}

static void put64(gb *b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) b->d[at + i] = (uint8_t)(v >> (8 * i));
}

static void test_handmade(void) {
    gb b = {0};
    tiny_opts o;
    memset(&o, 0, sizeof o);
    tiny(&b, &o);
    CHECK(model_buf(&b, "tiny.gguf") == 0);
    if (err[0]) fprintf(stderr, "tiny: %s\n", err);
    /* the valid model converts and runs */
    {
        trlc_model_src *s = NULL;
        CHECK(!trlc_gguf_model_from_mem(b.d, b.n, "tiny.gguf", &s, err, sizeof err));
        trlc_write_opts wo = trlc_write_default_opts();
        trlc_pack *p = s ? convert(s, path("p-tiny"), &wo) : NULL;
        CHECK(p && p->n_tensors == 11 && p->config.tied_embeddings && p->config.rope_style == TRL_ROPE_INTERLEAVED);
        trl_model *m = NULL;
        trl_error e;
        CHECK(p && trl_model_create(&p->config, p->tensors, p->n_tensors, &m, &e) == TRL_OK);
        trl_model_free(m);
        trlc_pack_close(p);
        trlc_source_free(s);
    }
    o.spm = 1;
    tiny(&b, &o);
    CHECK(model_buf(&b, "tiny-spm.gguf") == 0);
    if (err[0]) fprintf(stderr, "tiny-spm: %s\n", err);
    o.spm = 0;
    o.q_type = 8; /* Q8_0 */
    tiny(&b, &o);
    CHECK(model_buf(&b, "tiny-q8.gguf") == 0);
    o.q_type = 0;
    o.alignment = 128;
    tiny(&b, &o);
    CHECK(model_buf(&b, "tiny-a128.gguf") == 0);
    o.alignment = 0;

    /* header faults */
    tiny(&b, &o);
    memcpy(b.d, "GGUG", 4);
    CHECK(parse_buf(&b, "bad.gguf") != 0);
    CHECK_ERR(err, "bad.gguf", "not a GGUF file");
    tiny(&b, &o);
    b.d[4] = 2;
    CHECK(parse_buf(&b, "v2.gguf") != 0);
    CHECK_ERR(err, "v2.gguf", "version 2 is not supported");
    b.d[4] = 1;
    CHECK(parse_buf(&b, "v1.gguf") != 0);
    CHECK_ERR(err, "v1.gguf", "version 1");
    b.d[4] = 0, b.d[7] = 3;
    CHECK(parse_buf(&b, "be.gguf") != 0);
    CHECK_ERR(err, "be.gguf", "big-endian");
    tiny(&b, &o);
    put64(&b, 16, 1ull << 60);
    CHECK(parse_buf(&b, "kv.gguf") != 0);
    CHECK_ERR(err, "kv.gguf", "metadata count", "cannot fit");
    tiny(&b, &o);
    put64(&b, 8, 0xFFFFFFFFFFFFFFFFull);
    CHECK(parse_buf(&b, "tc.gguf") != 0);
    CHECK_ERR(err, "tc.gguf", "tensor count", "cannot fit");
    /* a key's string length past the end */
    tiny(&b, &o);
    put64(&b, 24, 1ull << 40);
    CHECK(parse_buf(&b, "keylen.gguf") != 0);
    CHECK_ERR(err, "keylen.gguf", "metadata entry 0", "string length", "past the end");
    /* a string value's length past the end */
    tiny(&b, &o);
    size_t at = find(&b, "llama", 5, 0); /* general.architecture's value */
    put64(&b, at - 8, 1ull << 33);
    CHECK(parse_buf(&b, "vallen.gguf") != 0);
    CHECK_ERR(err, "vallen.gguf", "general.architecture", "past the end");
    /* an array count past the end */
    tiny(&b, &o);
    at = find(&b, "tokenizer.ggml.tokens", 21, 0) + 21 + 4 + 4;
    put64(&b, at, 1ull << 50);
    CHECK(parse_buf(&b, "arr.gguf") != 0);
    CHECK_ERR(err, "arr.gguf", "tokenizer.ggml.tokens", "cannot fit");
    /* unknown value type, nested array */
    tiny(&b, &o);
    at = find(&b, "general.name", 12, 0) + 12;
    b.d[at] = 13;
    CHECK(parse_buf(&b, "vt.gguf") != 0);
    CHECK_ERR(err, "vt.gguf", "general.name", "unknown value type 13");
    tiny(&b, &o);
    at = find(&b, "tokenizer.ggml.tokens", 21, 0) + 21 + 4;
    b.d[at] = 9;
    CHECK(parse_buf(&b, "nest.gguf") != 0);
    CHECK_ERR(err, "nest.gguf", "arrays of arrays");
    /* duplicate key: head_count_kv renamed head_count */
    tiny(&b, &o);
    at = find(&b, "llama.attention.head_count_kv", 29, 0);
    memcpy(b.d + at, "llama.attention.head_count\0\0\0", 29);
    b.d[at - 8] = 26; /* the key's length */
    memmove(b.d + at + 26, b.d + at + 29, b.n - at - 29);
    b.n -= 3;
    CHECK(parse_buf(&b, "dup.gguf") != 0);
    CHECK_ERR(err, "dup.gguf", "llama.attention.head_count", "appears twice");
    /* tensor faults: the first tensor info follows the last key/value */
    size_t ti;
#define TENSOR0(buf) (ti = find(&(buf), "token_embd.weight", 17, 0) + 17)
    tiny(&b, &o);
    TENSOR0(b);
    b.d[ti] = 5; /* n_dims */
    CHECK(parse_buf(&b, "dims.gguf") != 0);
    CHECK_ERR(err, "dims.gguf", "token_embd.weight", "5 dimensions");
    tiny(&b, &o);
    TENSOR0(b);
    b.d[ti + 4 + 16] = 99; /* type */
    CHECK(parse_buf(&b, "type.gguf") != 0);
    CHECK_ERR(err, "type.gguf", "token_embd.weight", "unknown ggml type 99");
    tiny(&b, &o);
    TENSOR0(b);
    b.d[ti + 4 + 16] = 8; /* Q8_0: ne[0] 32 is one block: fine, but the size shrinks; make ne[0] 33 */
    b.d[ti + 4] = 33;
    CHECK(parse_buf(&b, "blk.gguf") != 0);
    CHECK_ERR(err, "blk.gguf", "token_embd.weight", "not a multiple", "Q8_0");
    tiny(&b, &o);
    TENSOR0(b);
    put64(&b, ti + 4 + 16 + 4, 1ull << 40); /* offset */
    CHECK(parse_buf(&b, "off.gguf") != 0);
    CHECK_ERR(err, "off.gguf", "token_embd.weight", "past the end of the data section");
    tiny(&b, &o);
    TENSOR0(b);
    put64(&b, ti + 4 + 16 + 4, 16); /* not a multiple of 32 */
    CHECK(parse_buf(&b, "align.gguf") != 0);
    CHECK_ERR(err, "align.gguf", "token_embd.weight", "alignment");
    tiny(&b, &o);
    TENSOR0(b);
    put64(&b, ti + 4 + 8, 1ull << 62); /* ne[1]: the size overflows */
    CHECK(parse_buf(&b, "ovf.gguf") != 0);
    CHECK_ERR(err, "ovf.gguf", "token_embd.weight");
    tiny(&b, &o);
    TENSOR0(b);
    put64(&b, ti - 17 - 8, 1000); /* the name's length */
    CHECK(parse_buf(&b, "name.gguf") != 0);
    CHECK_ERR(err, "name.gguf", "tensor info 0");
    o.alignment = 48;
    tiny(&b, &o);
    CHECK(parse_buf(&b, "al48.gguf") != 0);
    CHECK_ERR(err, "al48.gguf", "general.alignment", "power of two");
    o.alignment = 0;
    /* a bool that is neither 0 nor 1 */
    {
        gb c = {0};
        gb_put(&c, "GGUF", 4), gb_u32(&c, 3), gb_u64(&c, 0), gb_u64(&c, 1);
        gb_kv_bool(&c, "x.flag", 1);
        c.d[c.n - 1] = 2;
        CHECK(parse_buf(&c, "bool.gguf") != 0);
        CHECK_ERR(err, "bool.gguf", "x.flag", "bool");
        c.d[c.n - 1] = 1;
        CHECK(parse_buf(&c, "bool.gguf") == 0); /* a file with no tensors is a valid GGUF */
        CHECK(model_buf(&c, "bool.gguf") != 0);
        CHECK_ERR(err, "bool.gguf", "general.architecture", "missing");
        free(c.d);
    }

    /* model faults */
    o.arch = "gpt2";
    tiny(&b, &o);
    CHECK(model_buf(&b, "arch.gguf") != 0);
    CHECK_ERR(err, "arch.gguf", "general.architecture", "gpt2", "not supported");
    o.arch = NULL;
    for (int k = 1; k <= 3; k++) {
        o.drop_key = k;
        tiny(&b, &o);
        CHECK(model_buf(&b, "key.gguf") != 0);
        CHECK_ERR(err, "key.gguf", k == 1 ? "llama.block_count" : k == 2 ? "llama.embedding_length"
                                                                          : "layer_norm_rms_epsilon",
                  "missing");
    }
    o.drop_key = 0;
    o.q_type = 12; /* Q4_K: sized and parsed; 256 columns is not this config's shape */
    o.q_cols = 256;
    tiny(&b, &o);
    CHECK(parse_buf(&b, "q4k.gguf") == 0);
    CHECK(model_buf(&b, "q4k.gguf") != 0);
    CHECK_ERR(err, "q4k.gguf", "blk.0.attn_q.weight", "shape", "expected [32, 32]");
    o.q_cols = 0;
    o.q_type = 26; /* I32: the right shape, a type the converter cannot read */
    tiny(&b, &o);
    CHECK(model_buf(&b, "i32.gguf") != 0);
    CHECK_ERR(err, "i32.gguf", "blk.0.attn_q.weight", "type I32", "supported");
    o.q_type = 0;
    o.extra_tensor = "rope_freqs.weight";
    tiny(&b, &o);
    CHECK(model_buf(&b, "rf.gguf") != 0);
    CHECK_ERR(err, "rf.gguf", "rope_freqs.weight", "not supported");
    o.extra_tensor = "blk.0.attn_q.bias";
    tiny(&b, &o);
    CHECK(model_buf(&b, "bias.gguf") != 0);
    CHECK_ERR(err, "bias.gguf", "blk.0.attn_q.bias", "not part of");
    o.extra_tensor = NULL;
    o.rope_scaling = "yarn";
    tiny(&b, &o);
    CHECK(model_buf(&b, "yarn.gguf") != 0);
    CHECK_ERR(err, "yarn.gguf", "llama.rope.scaling.type", "yarn");
    o.rope_scaling = "none";
    tiny(&b, &o);
    CHECK(model_buf(&b, "none.gguf") == 0);
    o.rope_scaling = NULL;
    o.tok_pre = "default";
    tiny(&b, &o);
    CHECK(model_buf(&b, "pre.gguf") != 0);
    CHECK_ERR(err, "pre.gguf", "tokenizer.ggml.pre", "default", "--tokenizer");
    o.tok_pre = "llama-bpe";
    tiny(&b, &o);
    CHECK(model_buf(&b, "pre3.gguf") == 0);
    o.tok_pre = NULL;
    o.tok_model = "bert";
    tiny(&b, &o);
    CHECK(model_buf(&b, "bert.gguf") != 0);
    CHECK_ERR(err, "bert.gguf", "tokenizer.ggml.model", "bert");
    o.tok_model = NULL;
    /* a merge that names no token */
    tiny(&b, &o);
    at = find(&b, "a b", 3, 0);
    b.d[at + 2] = 'z';
    CHECK(model_buf(&b, "merge.gguf") != 0);
    CHECK_ERR(err, "merge.gguf", "tokenizer.ggml", "merge 0", "not a token");
    /* a bos id past the vocabulary */
    tiny(&b, &o);
    at = find(&b, "tokenizer.ggml.bos_token_id", 27, 0) + 27 + 4;
    b.d[at] = 200;
    CHECK(model_buf(&b, "bos.gguf") != 0);
    CHECK_ERR(err, "bos.gguf", "tokenizer.ggml.bos_token_id", "out of range");
    /* a key of the wrong type */
    tiny(&b, &o);
    at = find(&b, "llama.block_count", 17, 0) + 17;
    b.d[at] = 6; /* F32 */
    CHECK(model_buf(&b, "kt.gguf") != 0);
    CHECK_ERR(err, "kt.gguf", "llama.block_count", "F32", "integer");
    /* no tokenizer: the source opens, the writer asks for one */
    o.no_tokenizer = 1;
    tiny(&b, &o);
    {
        trlc_model_src *s = NULL;
        CHECK(!trlc_gguf_model_from_mem(b.d, b.n, "notok.gguf", &s, err, sizeof err));
        trlc_write_opts wo = trlc_write_default_opts();
        CHECK(s && trlc_pack_write(s, path("p-notok"), &wo, NULL, err, sizeof err) != 0);
        CHECK_ERR(err, "no tokenizer", "--tokenizer");
        trlc_source_free(s);
    }
    o.no_tokenizer = 0;
    free(b.d);
}

/* trlc_tokenizer_from_vocab directly: what it makes of each token type, and its errors. */
static void test_vocab(void) {
    static const trlc_tokstr toks[9] = {{"<unk>", 5}, {"<0x41>", 6}, {"\xe2\x96\x81hi", 5},
                                        {"hi", 2},    {"[PAD]", 5},  {"<u>", 3},
                                        {"\xe2\x96\x81", 3}, {"h", 1}, {"i", 1}};
    int32_t types[9] = {TRLC_TOKTYPE_UNKNOWN, TRLC_TOKTYPE_BYTE,         TRLC_TOKTYPE_NORMAL,
                        TRLC_TOKTYPE_NORMAL,  TRLC_TOKTYPE_UNUSED,       TRLC_TOKTYPE_USER_DEFINED,
                        TRLC_TOKTYPE_NORMAL,  TRLC_TOKTYPE_NORMAL,       TRLC_TOKTYPE_NORMAL};
    float scores[9] = {0, 0, -1, -2, 0, 0, -3, -4, -5};
    trlc_vocab_spec v;
    memset(&v, 0, sizeof v);
    v.name = "vocab";
    v.kind = 0;
    v.flags = TRL_TOKF_SPM_PREFIX;
    v.n_tokens = 9;
    v.tokens = toks;
    v.types = types;
    v.scores = scores;
    v.bos_id = v.eos_id = v.unk_id = -1;
    void *blob = NULL;
    size_t len = 0;
    trlc_tokenizer_info info;
    CHECK(trlc_tokenizer_from_vocab(&v, &blob, &len, &info, err, sizeof err) == 0);
    trl_tokenizer *t = NULL;
    trl_error e;
    CHECK(blob && trl_tokenizer_create(blob, len, &t, &e) == TRL_OK);
    if (t) {
        char buf[16];
        CHECK(trl_token_to_bytes(t, 1, buf, sizeof buf) == 1 && buf[0] == 'A');    /* byte token */
        CHECK(trl_token_to_bytes(t, 2, buf, sizeof buf) == 3 && !memcmp(buf, " hi", 3)); /* U+2581 -> ' ' */
        CHECK(trl_token_to_bytes(t, 0, buf, sizeof buf) == 0);                       /* control */
        CHECK(trl_token_to_bytes(t, 4, buf, sizeof buf) == 0);                       /* unused placeholder */
        CHECK(trl_token_to_bytes(t, 5, buf, sizeof buf) == 3);                       /* user-defined: its text */
        int32_t ids[8];
        int32_t k = trl_tokenize(t, "hi<u>", 5, 0, ids, 8);
        CHECK(k == 2 && ids[0] == 2 && ids[1] == 5); /* the prefix space, merges by score, an ADDED token */
        trl_tokenizer_free(t);
    }
    free(blob);
    trlc_tokenizer_info_free(&info);
    types[1] = TRLC_TOKTYPE_BYTE;
    types[3] = TRLC_TOKTYPE_BYTE; /* "hi" is not <0xNN> */
    CHECK(trlc_tokenizer_from_vocab(&v, &blob, &len, &info, err, sizeof err) != 0);
    CHECK_ERR(err, "vocab", "token 3", "byte");
    types[3] = 9;
    CHECK(trlc_tokenizer_from_vocab(&v, &blob, &len, &info, err, sizeof err) != 0);
    CHECK_ERR(err, "vocab", "token 3", "unknown token type 9");
    types[3] = TRLC_TOKTYPE_NORMAL;
    scores[2] = NAN;
    CHECK(trlc_tokenizer_from_vocab(&v, &blob, &len, &info, err, sizeof err) != 0);
    CHECK_ERR(err, "vocab", "token 2", "NaN");
    scores[2] = -1;
    v.bos_id = 9;
    CHECK(trlc_tokenizer_from_vocab(&v, &blob, &len, &info, err, sizeof err) != 0);
    CHECK_ERR(err, "vocab", "bos token id 9");
    v.bos_id = -1;
    /* byte-level: a normal token outside GPT-2's byte alphabet */
    static const trlc_tokstr bl[2] = {{"a", 1}, {"\xe2\x96\x81", 3}};
    v.kind = 1, v.pretok = TRL_PRETOK_GPT2, v.flags = 0, v.n_tokens = 2, v.tokens = bl, v.types = NULL, v.scores = NULL;
    CHECK(trlc_tokenizer_from_vocab(&v, &blob, &len, &info, err, sizeof err) != 0);
    CHECK_ERR(err, "vocab", "token 1", "byte-level");
}

/* Every prefix of a file fails cleanly; seeded corruption never crashes. */
static void test_truncation_and_corruption(void) {
    gb b = {0};
    tiny_opts o;
    memset(&o, 0, sizeof o);
    tiny(&b, &o);
    int failed = 0;
    for (size_t n = 0; n < b.n; n++) {
        trlc_model_src *s = NULL;
        /* a copy of exactly n bytes, so ASan sees any read past them */
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, b.d, n);
        if (trlc_gguf_model_from_mem(c, n, "cut.gguf", &s, err, sizeof err) == 0) failed++;
        else if (!strstr(err, "cut.gguf")) failed++;
        trlc_source_free(s);
        free(c);
    }
    CHECK(failed == 0);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int ok = 0;
    for (int it = 0; it < 3000; it++) {
        uint8_t *c = malloc(b.n);
        memcpy(c, b.d, b.n);
        int flips = 1 + it % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x % (b.n > 1200 ? 1200 : b.n)); /* the header, metadata and infos */
            c[at] = (uint8_t)(x >> 32);
        }
        trlc_model_src *s = NULL;
        if (trlc_gguf_model_from_mem(c, b.n, "fuzz.gguf", &s, err, sizeof err) == 0) ok++;
        else if (!strstr(err, "fuzz.gguf")) failed++;
        trlc_source_free(s);
        free(c);
    }
    CHECK(failed == 0);
    printf("corruption: %d of 3000 corrupted files still opened (the rest were refused, naming the file)\n", ok);
    free(b.d);
}

int main(int argc, char **argv) {
    if (argc > 1) PY = argv[1];
    tmp = make_tmpdir("gguf");
    test_handmade();
    test_vocab();
    test_truncation_and_corruption();
    if (!have_numpy()) {
        printf("test-converter-gguf: SKIPPED the gguf_writer.py fixtures (%s has no numpy)\n", PY);
    } else {
        const char *R = "tests/reference";
        int bad = sh("%s %s/gen_model.py %s --preset llama-tied --no-check", PY, R, path("llama-tied")) ||
                  sh("%s %s/gen_model.py %s --preset llama-untied-gqa --no-check", PY, R, path("ugqa")) ||
                  sh("%s %s/gguf_writer.py %s --hf %s --all-types --alignment 64", PY, R, path("lt-f32.gguf"),
                     path("llama-tied")) ||
                  sh("%s %s/gguf_writer.py %s --hf %s --type q8_0", PY, R, path("lt-q8.gguf"), path("llama-tied")) ||
                  sh("%s %s/gguf_writer.py %s --hf %s --type q4_0", PY, R, path("lt-q4.gguf"), path("llama-tied")) ||
                  sh("%s %s/gguf_writer.py %s --hf %s --type bf16", PY, R, path("ug-bf16.gguf"), path("ugqa")) ||
                  sh("%s %s/gguf_writer.py %s --random-ternary --hf %s --type tq2_0 --expect %s", PY, R,
                     path("rt-tq2.gguf"), path("llama-tied"), path("rt-tq2.expect")) ||
                  sh("%s %s/gguf_writer.py %s --random-ternary --hf %s --type tq1_0 --expect %s", PY, R,
                     path("rt-tq1.gguf"), path("llama-tied"), path("rt-tq1.expect")) ||
                  sh("%s %s/gguf_writer.py %s --random-ternary --hf %s --type tq2_0 --scales block", PY, R,
                     path("rt-block.gguf"), path("llama-tied"));
        CHECK(!bad);
        if (!bad) {
            test_metadata();
            test_same_as_hf("llama-tied", "lt-f32.gguf");
            test_same_as_hf("ugqa", "ug-bf16.gguf");
            test_q8_0();
            test_tq("rt-tq2.gguf", "rt-tq2.expect", TRL_ENC_T2);
            test_tq("rt-tq2.gguf", "rt-tq2.expect", TRL_ENC_T1);
            test_tq("rt-tq1.gguf", "rt-tq1.expect", TRL_ENC_T2);
            test_tq("rt-tq1.gguf", "rt-tq1.expect", TRL_ENC_T1);
            test_tq_fallback();
            test_dequantized("lt-q4.gguf", TRLC_DT_Q4_0);
            test_dequantized("ug-bf16.gguf", TRLC_DT_BF16);
        }
    }
    rm_tree(tmp);
    free(tmp);
    return test_done("test-converter-gguf");
}
