/* test-converter-llama2c.c - the llama2.c checkpoint reader on the real
 * stories260K model (path from ARGS), truncated / padded copies and bad headers.
 *   test-converter-llama2c [stories260K.bin [tok512.bin]] */
#include "converter/testutil.h"
#include <stdint.h>
#include "trlc.h"

static char err[1024];

static const char *first_existing(const char *a, const char *b) { return access(a, R_OK) == 0 ? a : b; }

static float f32_at(const unsigned char *p, size_t off) {
    float v;
    memcpy(&v, p + off, 4);
    return v;
}

static void write_model(const char *path, const int32_t h[7], size_t extra_floats) {
    /* header + as many floats as the header implies (computed by the test, not the reader) */
    int64_t D = h[0], H = h[1], L = h[2], nh = h[3], nkv = h[4], V = h[5] < 0 ? -h[5] : h[5], S = h[6];
    int64_t hd = D / nh, kv = nkv * hd;
    int64_t n = V * D + L * D + L * D * D + 2 * L * kv * D + L * D * D + L * D + 3 * L * H * D + D + 2 * S * hd / 2;
    if (h[5] < 0) n += V * D;
    n += (int64_t)extra_floats;
    size_t bytes = 28 + (size_t)n * 4;
    unsigned char *buf = calloc(bytes, 1);
    memcpy(buf, h, 28);
    unsigned s = 7;
    for (int64_t i = 0; i < n; i++) {
        float v = rnd(&s);
        memcpy(buf + 28 + 4 * i, &v, 4);
    }
    write_file(path, buf, bytes);
    free(buf);
}

static void test_real(const char *path, const char *tok) {
    size_t n;
    unsigned char *raw = read_file(path, &n);
    if (!raw) {
        fprintf(stderr, "cannot read %s\n", path);
        g_fail++;
        return;
    }
    trlc_model_src *s;
    CHECK(trlc_llama2c_open(path, NULL, &s, err, sizeof err) == 0);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        free(raw);
        return;
    }
    const trl_config *c = &s->cfg;
    CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5 && c->n_heads == 8 && c->n_kv_heads == 4);
    CHECK(c->head_dim == 8 && c->vocab_size == 512 && c->max_seq_len == 512 && c->tied_embeddings);
    CHECK(c->rope_style == TRL_ROPE_INTERLEAVED && c->mlp == TRL_MLP_SWIGLU && c->arch == TRL_ARCH_LLAMA);
    CHECK(c->rope_theta == 10000.0f && c->norm_eps == 1e-5f);
    CHECK(s->n_tensors == 1 + 5 * 9 + 1);
    CHECK(!strcmp(s->name, "stories260K") && !strcmp(s->source, "llama2.c:stories260K.bin"));
    /* offsets computed here independently: V=512, D=64, L=5, kv=32, H=172 */
    size_t o_emb = 28, o_ratt = o_emb + 4 * 512 * 64, o_wq = o_ratt + 4 * 5 * 64, o_wk = o_wq + 4 * 5 * 64 * 64,
           o_wv = o_wk + 4 * 5 * 32 * 64, o_wo = o_wv + 4 * 5 * 32 * 64, o_rffn = o_wo + 4 * 5 * 64 * 64,
           o_w1 = o_rffn + 4 * 5 * 64, o_w2 = o_w1 + 4 * 5 * 172 * 64, o_w3 = o_w2 + 4 * 5 * 64 * 172,
           o_rfin = o_w3 + 4 * 5 * 172 * 64;
    struct {
        const char *name;
        size_t off;
        int64_t r, c;
    } want[] = {
        {"token_embd.weight", o_emb, 512, 64},
        {"blk.0.attn_norm.weight", o_ratt, 64, 0},
        {"blk.0.attn_q.weight", o_wq, 64, 64},
        {"blk.2.attn_k.weight", o_wk + 2 * 4 * 32 * 64, 32, 64},
        {"blk.3.attn_v.weight", o_wv + 3 * 4 * 32 * 64, 32, 64},
        {"blk.4.attn_output.weight", o_wo + 4 * 4 * 64 * 64, 64, 64},
        {"blk.1.ffn_norm.weight", o_rffn + 1 * 4 * 64, 64, 0},
        {"blk.1.ffn_gate.weight", o_w1 + 1 * 4 * 172 * 64, 172, 64},
        {"blk.4.ffn_down.weight", o_w2 + 4 * 4 * 64 * 172, 64, 172},
        {"blk.2.ffn_up.weight", o_w3 + 2 * 4 * 172 * 64, 172, 64},
        {"output_norm.weight", o_rfin, 64, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const trlc_src_tensor *t = NULL;
        for (size_t k = 0; k < s->n_tensors; k++)
            if (!strcmp(s->tensors[k].name, want[i].name)) t = &s->tensors[k];
        CHECK(t != NULL);
        if (!t) continue;
        CHECK(t->dtype == TRLC_DT_F32 && t->shape[0] == want[i].r);
        CHECK(want[i].c ? (t->n_dims == 2 && t->shape[1] == want[i].c) : t->n_dims == 1);
        CHECK(t->nbytes == (size_t)(want[i].r * (want[i].c ? want[i].c : 1) * 4));
        float v0, vl;
        trlc_dtype_to_f32(TRLC_DT_F32, t->data, 1, &v0);
        trlc_dtype_to_f32(TRLC_DT_F32, t->data + t->nbytes - 4, 1, &vl);
        CHECK(v0 == f32_at(raw, want[i].off));
        CHECK(vl == f32_at(raw, want[i].off + t->nbytes - 4));
    }
    /* the norms of a trained model are near 1, not noise: a cheap check that offsets are right */
    float g;
    trlc_dtype_to_f32(TRLC_DT_F32, s->tensors[s->n_tensors - 1].data, 1, &g);
    CHECK(g > 0.1f && g < 10.0f);

    if (tok) {
        int r = trlc_source_load_tokenizer_llama2c(s, tok, err, sizeof err);
        if (r && strstr(err, "without tokenizer import")) {
            printf("(skipping the tokenizer check: %s)\n", err);
        } else {
            CHECK(r == 0);
            CHECK(s->tok.blob && s->tok.len > 0 && s->tok.kind == TRL_TOK_SPM);
            CHECK(s->tok.bos_id == 1 && s->tok.eos_id == 2);
        }
    }
    trlc_source_free(s);

    /* truncated and padded copies */
    char *dir = make_tmpdir("l2c");
    char *p = join(dir, "cut.bin");
    write_file(p, raw, n - 4);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "1056536 bytes", "implies 1056540", "truncated");
    write_file(p, raw, n / 2);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "truncated");
    unsigned char *more = malloc(n + 8);
    memcpy(more, raw, n);
    memset(more + n, 0, 8);
    write_file(p, more, n + 8);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "trailing bytes");
    write_file(p, raw, 20);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "truncated", "28");
    free(more);
    free(p);
    rm_tree(dir);
    free(dir);
    free(raw);
}

static void test_synthetic(void) {
    char *dir = make_tmpdir("l2c");
    char *p = join(dir, "m.bin");
    trlc_model_src *s;
    /* untied classifier: negative vocab_size */
    int32_t h[7] = {8, 12, 2, 2, 1, -10, 4};
    write_model(p, h, 0);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == 0);
    if (s) {
        CHECK(!s->cfg.tied_embeddings && s->cfg.vocab_size == 10 && s->n_tensors == 1 + 2 * 9 + 2);
        const trlc_src_tensor *o = &s->tensors[s->n_tensors - 1];
        CHECK(!strcmp(o->name, "output.weight") && o->shape[0] == 10 && o->shape[1] == 8);
        CHECK(strstr(o->origin, "wcls") != NULL);
        trlc_source_free(s);
    }
    /* bad headers: each names the field */
    int32_t bad1[7] = {8, 12, -2, 2, 1, 10, 4};
    write_model(p, (int32_t[7]){8, 12, 2, 2, 1, 10, 4}, 0);
    size_t n;
    unsigned char *raw = read_file(p, &n);
    memcpy(raw, bad1, 28);
    write_file(p, raw, n);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "header", "n_layers", "-2 must be positive");
    int32_t bad2[7] = {8, 12, 2, 3, 1, 10, 4};
    memcpy(raw, bad2, 28);
    write_file(p, raw, n);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "n_heads", "does not divide dim");
    int32_t bad3[7] = {8, 12, 2, 2, 0, 10, 4};
    memcpy(raw, bad3, 28);
    write_file(p, raw, n);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "n_kv_heads", "must be positive");
    int32_t bad4[7] = {1 << 30, 1 << 30, 1 << 30, 1, 1, 10, 4};
    memcpy(raw, bad4, 28);
    write_file(p, raw, n);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "header");
    int32_t bad5[7] = {8, 12, 2, 2, 1, INT32_MIN, 4};
    memcpy(raw, bad5, 28);
    write_file(p, raw, n);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "vocab_size");
    int32_t bad6[7] = {6, 12, 2, 2, 1, 10, 4}; /* head size 3: odd */
    memcpy(raw, bad6, 28);
    write_file(p, raw, n);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "must be even");
    int32_t magic[7] = {0x616b3432, 1, 8, 12, 2, 2, 1};
    memcpy(raw, magic, 28);
    write_file(p, raw, n);
    CHECK(trlc_llama2c_open(p, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, p, "version 1 is not supported", "--version 0");
    free(raw);
    /* trlc_source_open: a file goes to the llama2.c reader, a .safetensors file gets a hint */
    write_model(p, h, 0);
    CHECK(trlc_source_open(p, NULL, &s, err, sizeof err) == 0);
    trlc_source_free(s);
    char *stp = join(dir, "model.safetensors");
    write_file(stp, "x", 1);
    CHECK(trlc_source_open(stp, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "pass the model directory");
    char *none = join(dir, "none.bin");
    CHECK(trlc_source_open(none, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "none.bin", "no such file");
    free(none);
    free(stp);
    free(p);
    rm_tree(dir);
    free(dir);
}

int main(int argc, char **argv) {
    const char *model = argc > 1 ? argv[1]
                                 : first_existing("models/stories260K/stories260K.bin",
                                                  "/work/shared/models/stories260K/stories260K.bin");
    const char *tok = argc > 2 ? argv[2]
                               : first_existing("models/stories260K/tok512.bin",
                                                "/work/shared/models/stories260K/tok512.bin");
    test_real(model, tok);
    test_synthetic();
    return test_done("test-converter-llama2c");
}
