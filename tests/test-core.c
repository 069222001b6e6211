/* test-core.c - unit tests of the core: formats, kernels (SIMD == reference),
 * config and model validation, forward-pass invariants, sampler. Runs
 * natively and, in the wasm build, under Node. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels/kernels.h"
#include "threads.h"
#include "trillium.h"

static int failures = 0, checks = 0, threaded_runs = 0;
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

static uint64_t rng_state = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

/* ------------------------------------------------------------ formats */

static void test_formats(void) {
    CHECK(trl_encoding_row_bytes(TRL_ENC_F32, 10) == 40, "f32 row");
    CHECK(trl_encoding_row_bytes(TRL_ENC_F16, 10) == 20, "f16 row");
    CHECK(trl_encoding_row_bytes(TRL_ENC_Q8_0, 32) == 34, "q8_0 row 32");
    CHECK(trl_encoding_row_bytes(TRL_ENC_Q8_0, 33) == 68, "q8_0 row 33 (padded block)");
    CHECK(trl_encoding_row_bytes(TRL_ENC_Q8_0, 0) == 0, "zero cols");
    CHECK(trl_encoding_bytes(TRL_ENC_F32, (uint64_t)1 << 40, (uint64_t)1 << 40) == 0, "overflow -> 0");
    CHECK(trl_encoding_from_name("q8_0", 4) == TRL_ENC_Q8_0, "name lookup");
    CHECK(trl_encoding_from_name("q4_0", 4) == -1, "unknown name");

    /* f16: exact values, rounding to nearest even, subnormals, overflow */
    CHECK(trl_f32_to_f16(1.0f) == 0x3C00, "1.0");
    CHECK(trl_f32_to_f16(-2.0f) == 0xC000, "-2.0");
    CHECK(trl_f32_to_f16(65504.0f) == 0x7BFF, "max half");
    CHECK(trl_f32_to_f16(65520.0f) == 0x7C00, "rounds to inf");
    CHECK(trl_f32_to_f16(5.9604645e-8f) == 0x0001, "smallest subnormal");
    CHECK(trl_f32_to_f16(1.0f + 1.0f / 2048.0f) == 0x3C00, "tie to even (down)");
    CHECK(trl_f32_to_f16(1.0f + 3.0f / 2048.0f) == 0x3C02, "tie to even (up)");
    CHECK(trl_f16_to_f32(0x0001) == 5.9604645e-8f, "subnormal decode");
    int bad = 0;
    for (uint32_t h = 0; h < 0x7C00; h++) { /* every finite positive half round-trips */
        float f = trl_f16_to_f32((uint16_t)h);
        if (trl_f32_to_f16(f) != h || trl_f32_to_f16(-f) != (h | 0x8000)) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);
    CHECK(trl_bf16_to_f32(0x3F80) == 1.0f, "bf16 1.0");

    /* q8_0: max element maps to +-127, error <= d/2 */
    float x[70], y[70];
    uint8_t buf[3 * 34];
    for (int i = 0; i < 70; i++) x[i] = frand() * 3.0f;
    CHECK(trl_encode_row(TRL_ENC_Q8_0, x, 70, buf) == TRL_OK, "encode q8_0");
    CHECK(trl_decode_row(TRL_ENC_Q8_0, buf, 70, y) == TRL_OK, "decode q8_0");
    float maxerr = 0;
    for (int i = 0; i < 70; i++) maxerr = fmaxf(maxerr, fabsf(x[i] - y[i]));
    CHECK(maxerr < 3.0f / 127.0f, "q8_0 max error %g", maxerr);
    for (int i = 0; i < 32; i++) CHECK(buf[34 + 2 + i] <= 127 || buf[34 + 2 + i] >= 129, "q in [-127,127]");
    CHECK(buf[2 * 34 + 2 + 6] == 0 && buf[2 * 34 + 2 + 31] == 0, "padding of the last block is zero");
}

/* ------------------------------------------------------------ math */

static void test_expf(void) {
    int worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
        float a = trl_expf(x), b = (float)exp((double)x);
        int32_t ia, ib;
        memcpy(&ia, &a, 4), memcpy(&ib, &b, 4);
        int d = abs(ia - ib);
        if (d > worst) worst = d;
    }
    CHECK(worst <= 2, "trl_expf is %d ulp off", worst);
    CHECK(trl_expf(0.0f) == 1.0f, "exp(0) == 1");
    CHECK(trl_expf(-200.0f) == 0.0f && isinf(trl_expf(100.0f)), "exp range ends");

    /* trl_expf_n (SIMD where the build has it) gives trl_expf's bits for every input:
     * a sweep, the special cases next to ordinary lanes, every offset of the tail */
    enum { N = 4099 };
    static float xs[N], ys[N];
    const float special[] = {NAN, INFINITY, -INFINITY, 88.0f, 87.99999f, -87.0f, -87.00001f, 88.7228394f,
                             88.8f, -103.9f, -104.0f, -126.0f, 1e-30f, -0.0f, 0.0f, 0.5f, -0.5f, 1e30f};
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        xs[i] = i % 7 == 3 ? special[(seed >> 8) % (sizeof special / sizeof special[0])]
                           : ((float)(seed >> 8) / 16777216.0f - 0.5f) * 240.0f;
    }
    for (int off = 0; off < 5; off++) {
        trl_expf_n(ys, xs + off, N - off);
        int bad = 0;
        for (int i = 0; i < N - off; i++) {
            float a = trl_expf(xs[off + i]);
            bad += memcmp(&a, &ys[i], 4) != 0;
        }
        CHECK(bad == 0, "trl_expf_n differs from trl_expf in %d of %d values (offset %d)", bad, N - off, off);
    }
    memcpy(ys, xs, sizeof xs);
    trl_expf_n(ys, ys, N); /* in place */
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float a = trl_expf(xs[i]);
        bad += memcmp(&a, &ys[i], 4) != 0;
    }
    CHECK(bad == 0, "trl_expf_n in place differs in %d values", bad);
}

/* ------------------------------------------------------------ kernels */

static void test_kernels(void) {
    const int shapes[][2] = {{1, 1}, {3, 7}, {5, 8}, {9, 31}, {4, 32}, {7, 33}, {16, 255}, {3, 256}, {2, 257}, {5, 600}};
    const trl_encoding encs[] = {TRL_ENC_F32, TRL_ENC_F16, TRL_ENC_Q8_0};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], cols = shapes[si][1];
        for (size_t ei = 0; ei < 3; ei++) {
            trl_encoding e = encs[ei];
            size_t rb = trl_encoding_row_bytes(e, (uint64_t)cols);
            uint8_t *wdata = malloc(rb * rows);
            float *wf = malloc(sizeof(float) * rows * cols), *deq = malloc(sizeof(float) * rows * cols);
            for (int i = 0; i < rows * cols; i++) wf[i] = frand();
            for (int r = 0; r < rows; r++) trl_encode_row(e, wf + (size_t)r * cols, cols, wdata + r * rb);
            for (int r = 0; r < rows; r++) trl_decode_row(e, wdata + r * rb, cols, deq + (size_t)r * cols);
            trl_weight w = {e, rows, cols, rb, wdata};
            for (int ntok = 1; ntok <= 5; ntok += 4) {
                float *x = malloc(sizeof(float) * ntok * cols);
                float *y1 = malloc(sizeof(float) * ntok * rows), *y2 = malloc(sizeof(float) * ntok * rows);
                for (int i = 0; i < ntok * cols; i++) x[i] = frand();
                trl_act act;
                const trl_kernel_ops *kr = trl_kernels_ref(&w), *kb = trl_kernels_best(&w);
                size_t sb = kr->act_bytes(&w, ntok) > kb->act_bytes(&w, ntok) ? kr->act_bytes(&w, ntok)
                                                                               : kb->act_bytes(&w, ntok);
                CHECK(sb <= trl_act_bytes_bound(cols, ntok), "%s act_bytes %zu over the bound",
                      trl_encoding_name(e), sb);
                void *scratch = malloc(sb + 64);
                kr->prepare(&w, x, ntok, scratch, &act);
                kr->matmul(&w, &act, y1, rows, 0, rows);
                kb->prepare(&w, x, ntok, scratch, &act);
                kb->matmul(&w, &act, y2, rows, 0, rows);
                free(scratch);
                int diff = memcmp(y1, y2, sizeof(float) * ntok * rows);
                CHECK(!diff, "%s kernel %s != ref at %dx%d ntok %d", trl_encoding_name(e),
                      trl_kernels_best(&w)->name, rows, cols, ntok);
                /* the reference agrees with a plain double dot of the dequantized row */
                double worst = 0;
                for (int t = 0; t < ntok; t++)
                    for (int r = 0; r < rows; r++) {
                        double s = 0, mag = 0;
                        /* q8_0 computes on q8_0-quantized activations (FORMAT.md) */
                        float xq[600];
                        if (e == TRL_ENC_Q8_0) {
                            uint8_t xb[19 * 34];
                            trl_encode_row(TRL_ENC_Q8_0, x + (size_t)t * cols, cols, xb);
                            trl_decode_row(TRL_ENC_Q8_0, xb, cols, xq);
                        } else memcpy(xq, x + (size_t)t * cols, sizeof(float) * cols);
                        for (int c = 0; c < cols; c++) {
                            s += (double)deq[(size_t)r * cols + c] * xq[c];
                            mag += fabs((double)deq[(size_t)r * cols + c] * xq[c]);
                        }
                        double err = fabs(y1[(size_t)t * rows + r] - s) / (mag + 1e-30);
                        if (err > worst) worst = err;
                    }
                CHECK(worst < 1e-5, "%s ref dot error %g at %dx%d", trl_encoding_name(e), worst, rows, cols);
                /* decoding a row with the best kernel == reference decode */
                float *d1 = malloc(sizeof(float) * cols);
                trl_kernels_best(&w)->decode(&w, rows - 1, 0, cols, d1);
                CHECK(!memcmp(d1, deq + (size_t)(rows - 1) * cols, sizeof(float) * cols), "decode %s",
                      trl_encoding_name(e));
                free(d1);
                free(x), free(y1), free(y2);
            }
            free(wdata), free(wf), free(deq);
        }
    }
}

/* ------------------------------------------------------------ config */

static void test_config(void) {
    trl_config c;
    trl_error err;
    const char *ok = "{\"format\":\"trillium-pack\",\"config\":{\"arch\":\"llama\",\"dim\":64,\"hidden_dim\":172,"
                     "\"n_layers\":5,\"n_heads\":8,\"n_kv_heads\":4,\"vocab_size\":512,\"max_seq_len\":512,"
                     "\"rope_theta\":10000.0,\"norm_eps\":1e-5,\"tied_embeddings\":true}}";
    CHECK(trl_config_from_json(ok, strlen(ok), &c, &err) == TRL_OK, "good config: %s", err.msg);
    CHECK(c.head_dim == 8 && c.n_kv_heads == 4 && c.tied_embeddings == 1 && c.rope_style == TRL_ROPE_INTERLEAVED,
          "config fields");
    struct {
        const char *json, *field;
    } bad[] = {
        {"{\"dim\":0,\"hidden_dim\":1,\"n_layers\":1,\"n_heads\":1,\"vocab_size\":1,\"max_seq_len\":1}", "config.dim"},
        {"{\"dim\":-4,\"hidden_dim\":1,\"n_layers\":1,\"n_heads\":1,\"vocab_size\":1,\"max_seq_len\":1}", "config.dim"},
        {"{\"dim\":8,\"hidden_dim\":99999999999,\"n_layers\":1,\"n_heads\":1,\"vocab_size\":1,\"max_seq_len\":1}",
         "config.hidden_dim"},
        {"{\"dim\":8,\"hidden_dim\":8,\"n_layers\":1,\"n_heads\":3,\"n_kv_heads\":2,\"head_dim\":2,\"vocab_size\":1,"
         "\"max_seq_len\":1}",
         "config.n_kv_heads"},
        {"{\"dim\":8,\"hidden_dim\":8,\"n_layers\":1,\"n_heads\":8,\"vocab_size\":1,\"max_seq_len\":1}",
         "config.head_dim"},
        {"{\"dim\":8,\"hidden_dim\":8,\"n_heads\":2,\"vocab_size\":1,\"max_seq_len\":1}", "config.n_layers"},
        {"{\"arch\":\"gpt9\",\"dim\":8,\"hidden_dim\":8,\"n_layers\":1,\"n_heads\":2,\"vocab_size\":1,\"max_seq_len\":1}",
         "config.arch"},
        {"{\"dim\":8.5,\"hidden_dim\":8,\"n_layers\":1,\"n_heads\":2,\"vocab_size\":1,\"max_seq_len\":1}", "config.dim"},
        {"{\"dim\":8,", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        trl_status s = trl_config_from_json(bad[i].json, strlen(bad[i].json), &c, &err);
        CHECK(s != TRL_OK && strstr(err.msg, bad[i].field), "bad config %zu: status %d msg '%s' should name %s", i,
              s, err.msg, bad[i].field);
    }
}

/* ------------------------------------------------------------ model */

typedef struct toy {
    trl_config cfg;
    trl_tensor t[64];
    char names[64][48];
    void *bufs[64];
    int n;
} toy;

static void toy_add(toy *m, const char *name, trl_encoding e, int rows, int cols, float scale, float bias) {
    int i = m->n++;
    snprintf(m->names[i], sizeof m->names[i], "%s", name);
    size_t bytes = cols ? trl_encoding_bytes(e, rows, cols) : (size_t)rows * 4;
    float *f = malloc(sizeof(float) * rows * (cols ? cols : 1));
    for (int k = 0; k < rows * (cols ? cols : 1); k++) f[k] = bias + scale * frand();
    uint8_t *d = malloc(bytes);
    if (cols) {
        size_t rb = trl_encoding_row_bytes(e, cols);
        for (int r = 0; r < rows; r++) trl_encode_row(e, f + (size_t)r * cols, cols, d + r * rb);
    } else memcpy(d, f, bytes);
    free(f);
    m->bufs[i] = d;
    trl_tensor t = {m->names[i], cols ? e : TRL_ENC_F32, cols ? 2 : 1, {rows, cols}, d, bytes};
    m->t[i] = t;
}

static void toy_make(toy *m, trl_encoding e, int tied, int sub_norms, trl_mlp mlp) {
    memset(m, 0, sizeof *m);
    trl_config c = {sub_norms ? TRL_ARCH_BITNET : TRL_ARCH_LLAMA, mlp, TRL_ROPE_HALF, TRL_ACT_FLOAT,
                    24, 40, 2, 4, 2, 6, 50, 64, 10000.0f, 1e-5f, tied, sub_norms};
    m->cfg = c;
    int qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    toy_add(m, "token_embd.weight", e, c.vocab_size, c.dim, 1.0f, 0);
    toy_add(m, "output_norm.weight", e, c.dim, 0, 0.1f, 1.0f);
    if (!tied) toy_add(m, "output.weight", e, c.vocab_size, c.dim, 0.5f, 0);
    char nm[48];
    for (int l = 0; l < c.n_layers; l++) {
#define ADD(s, r, k, sc, b) snprintf(nm, sizeof nm, "blk.%d." s ".weight", l), toy_add(m, nm, e, r, k, sc, b)
        ADD("attn_norm", c.dim, 0, 0.1f, 1.0f);
        ADD("attn_q", qd, c.dim, 0.4f, 0);
        ADD("attn_k", kvd, c.dim, 0.4f, 0);
        ADD("attn_v", kvd, c.dim, 0.4f, 0);
        ADD("attn_output", c.dim, qd, 0.3f, 0);
        ADD("ffn_norm", c.dim, 0, 0.1f, 1.0f);
        ADD("ffn_gate", c.hidden_dim, c.dim, 0.3f, 0);
        ADD("ffn_up", c.hidden_dim, c.dim, 0.3f, 0);
        ADD("ffn_down", c.dim, c.hidden_dim, 0.3f, 0);
        if (sub_norms) {
            ADD("attn_sub_norm", qd, 0, 0.1f, 1.0f);
            ADD("ffn_sub_norm", c.hidden_dim, 0, 0.1f, 1.0f);
        }
#undef ADD
    }
}

static void toy_free(toy *m) {
    for (int i = 0; i < m->n; i++) free(m->bufs[i]);
}

static void test_model_validation(void) {
    toy m;
    toy_make(&m, TRL_ENC_F32, 1, 0, TRL_MLP_SWIGLU);
    trl_model *model = NULL;
    trl_error err;
    CHECK(trl_model_create(&m.cfg, m.t, m.n, &model, &err) == TRL_OK, "toy model binds: %s", err.msg);
    trl_model_free(model);
    trl_model_free(NULL);

    trl_tensor saved = m.t[3];
    m.t[3].shape[1] += 1;
    CHECK(trl_model_create(&m.cfg, m.t, m.n, &model, &err) == TRL_ERR_BAD_TENSOR && strstr(err.msg, m.t[3].name),
          "wrong shape named: %s", err.msg);
    m.t[3] = saved;
    m.t[3].bytes -= 1;
    CHECK(trl_model_create(&m.cfg, m.t, m.n, &model, &err) == TRL_ERR_BAD_TENSOR && strstr(err.msg, "bytes"),
          "wrong byte count: %s", err.msg);
    m.t[3] = saved;
    m.t[3].name = "blk.0.attn_qq.weight";
    CHECK(trl_model_create(&m.cfg, m.t, m.n, &model, &err) == TRL_ERR_BAD_TENSOR && strstr(err.msg, "unknown name"),
          "unknown name: %s", err.msg);
    m.t[3].name = "blk.7.attn_q.weight";
    CHECK(trl_model_create(&m.cfg, m.t, m.n, &model, &err) == TRL_ERR_BAD_TENSOR, "layer out of range: %s", err.msg);
    m.t[3] = saved;
    CHECK(trl_model_create(&m.cfg, m.t, m.n - 1, &model, &err) == TRL_ERR_BAD_TENSOR && strstr(err.msg, "missing"),
          "missing tensor: %s", err.msg);
    m.t[m.n] = m.t[3];
    CHECK(trl_model_create(&m.cfg, m.t, m.n + 1, &model, &err) == TRL_ERR_BAD_TENSOR && strstr(err.msg, "twice"),
          "duplicate tensor: %s", err.msg);
    m.t[1].encoding = TRL_ENC_F16;
    CHECK(trl_model_create(&m.cfg, m.t, m.n, &model, &err) == TRL_ERR_BAD_TENSOR && strstr(err.msg, "f32"),
          "norm must be f32: %s", err.msg);
    m.t[1].encoding = TRL_ENC_F32;
    toy_free(&m);
}

static void test_forward(trl_encoding e, int tied, int sub_norms, trl_mlp mlp) {
    toy m;
    toy_make(&m, e, tied, sub_norms, mlp);
    trl_model *model;
    trl_error err;
    if (trl_model_create(&m.cfg, m.t, m.n, &model, &err) != TRL_OK) {
        CHECK(0, "bind: %s", err.msg);
        toy_free(&m);
        return;
    }
    const int V = m.cfg.vocab_size, N = 13;
    int32_t toks[13];
    for (int i = 0; i < N; i++) toks[i] = (i * 7 + 3) % V;
    trl_ctx_params p = trl_ctx_default_params();
    p.n_ctx = 32;
    p.n_batch = 5; /* forces the prompt to be split across batches */
    trl_ctx *a, *b;
    CHECK(trl_ctx_create(model, &p, &a, &err) == TRL_OK, "ctx: %s", err.msg);
    CHECK(trl_ctx_create(model, &p, &b, &err) == TRL_OK, "ctx: %s", err.msg);
    float *all = malloc(sizeof(float) * N * V);
    CHECK(trl_ctx_prefill(a, toks, N, all) == TRL_OK, "prefill: %s", trl_ctx_last_error(a));
    /* batched prefill == token-by-token decode, bit for bit */
    int mismatch = 0;
    for (int i = 0; i < N; i++) {
        CHECK(trl_ctx_decode(b, toks[i]) == TRL_OK, "decode");
        if (memcmp(trl_ctx_logits(b), all + (size_t)i * V, sizeof(float) * V)) mismatch++;
    }
    CHECK(mismatch == 0, "%d positions differ between batched prefill and single decode", mismatch);
    /* any thread count gives the same bits (work is split by rows and heads only) */
    if (trl_threads_available()) {
        for (int nth = 2; nth <= 3; nth++) {
            trl_ctx_params pt = p;
            pt.n_threads = nth;
            trl_ctx *c3;
            CHECK(trl_ctx_create(model, &pt, &c3, &err) == TRL_OK, "ctx with %d threads: %s", nth, err.msg);
            trl_ctx_set_mt_min_work(c3, 0); /* split even these tiny matmuls */
            float *all3 = malloc(sizeof(float) * N * V);
            CHECK(trl_ctx_prefill(c3, toks, N, all3) == TRL_OK, "threaded prefill");
            CHECK(!memcmp(all, all3, sizeof(float) * N * V), "%d threads differ from one thread", nth);
            CHECK(trl_ctx_decode(c3, 5) == TRL_OK && trl_ctx_decode(c3, 6) == TRL_OK, "threaded decode");
            free(all3);
            trl_ctx_free(c3);
        }
        threaded_runs++;
    }
    CHECK(!memcmp(trl_ctx_logits(a), all + (size_t)(N - 1) * V, sizeof(float) * V), "last logits");
    /* causality: changing a later token leaves earlier logits alone; truncate + redo reproduces */
    CHECK(trl_ctx_truncate(b, 6) == TRL_OK, "truncate");
    CHECK(trl_ctx_decode(b, (toks[6] + 1) % V) == TRL_OK, "decode after truncate");
    CHECK(memcmp(trl_ctx_logits(b), all + 6 * V, sizeof(float) * V) != 0, "different token, different logits");
    CHECK(trl_ctx_truncate(b, 6) == TRL_OK && trl_ctx_decode(b, toks[6]) == TRL_OK &&
              !memcmp(trl_ctx_logits(b), all + 6 * V, sizeof(float) * V),
          "truncate and redo gives the same logits");
    int finite = 1;
    for (int i = 0; i < N * V; i++) finite &= isfinite(all[i]) != 0;
    CHECK(finite, "logits finite");
    /* context full and bad tokens are errors, not crashes */
    int32_t big[40] = {0};
    CHECK(trl_ctx_prefill(a, big, 40, NULL) == TRL_ERR_CONTEXT_FULL && strstr(trl_ctx_last_error(a), "context"),
          "context full: %s", trl_ctx_last_error(a));
    int32_t badtok = V;
    CHECK(trl_ctx_prefill(a, &badtok, 1, NULL) == TRL_ERR_INVALID_ARG, "token out of range");
    CHECK(trl_ctx_memory_bytes(&m.cfg, &p) > (size_t)(2 * 2 * 32 * 12 * 4), "memory estimate covers the KV cache");
    free(all);
    trl_ctx_free(a), trl_ctx_free(b);
    trl_model_free(model);
    toy_free(&m);
}

/* ------------------------------------------------------------ low-rank */

/* Replace every attn_q and ffn_up of a toy model by rank slices and compare the
 * logits with a model whose dense weights are the products of the active slices. */
static void test_lowrank(trl_encoding slice_enc) {
    toy base;
    toy_make(&base, TRL_ENC_F32, 1, 0, TRL_MLP_SWIGLU);
    const trl_config c = base.cfg;
    enum { NS = 3, R = 4 };
    const int lin[2] = {1 /* blk.N.attn_q */, 7 /* blk.N.ffn_up */};
    /* slices: V_s (R, in), U_s^T (R, out), as toy tensors */
    toy lr = base; /* shares the dense buffers; slices appended below */
    lr.n = 0;
    for (int i = 0; i < base.n; i++) {
        const char *nm = base.t[i].name;
        int skip = strstr(nm, "attn_q.weight") || strstr(nm, "ffn_up.weight");
        if (!skip) lr.t[lr.n] = base.t[i], snprintf(lr.names[lr.n], 48, "%s", nm), lr.t[lr.n].name = lr.names[lr.n],
                   lr.bufs[lr.n] = NULL, lr.n++;
    }
    float *vf[2][2][NS], *uf[2][2][NS];
    char nm[48];
    for (int l = 0; l < c.n_layers; l++)
        for (int k = 0; k < 2; k++) {
            int out = lin[k] == 1 ? c.n_heads * c.head_dim : c.hidden_dim, in = c.dim;
            for (int s2 = 0; s2 < NS; s2++) {
                float scale = 0.5f / (float)(s2 + 1); /* decreasing importance */
                snprintf(nm, sizeof nm, "blk.%d.%s.lr_v.%d", l, k ? "ffn_up" : "attn_q", s2);
                toy_add(&lr, nm, slice_enc, R, in, scale, 0);
                vf[l][k][s2] = malloc(sizeof(float) * R * in);
                for (int r = 0; r < R; r++)
                    trl_decode_row(slice_enc, (const uint8_t *)lr.t[lr.n - 1].data + r * trl_encoding_row_bytes(slice_enc, in),
                                   in, vf[l][k][s2] + r * in);
                snprintf(nm, sizeof nm, "blk.%d.%s.lr_u.%d", l, k ? "ffn_up" : "attn_q", s2);
                toy_add(&lr, nm, slice_enc, R, out, 0.5f, 0);
                uf[l][k][s2] = malloc(sizeof(float) * R * out);
                for (int r = 0; r < R; r++)
                    trl_decode_row(slice_enc, (const uint8_t *)lr.t[lr.n - 1].data + r * trl_encoding_row_bytes(slice_enc, out),
                                   out, uf[l][k][s2] + r * out);
            }
        }
    trl_error err;
    trl_model *mlr;
    CHECK(trl_model_create(&c, lr.t, lr.n, &mlr, &err) == TRL_OK, "low-rank model binds: %s", err.msg);
    CHECK(trl_model_max_rank_slices(mlr) == NS, "max slices");
    const int V = c.vocab_size;
    int32_t toks[6] = {3, 9, 27, 31, 2, 44};
    for (int active = 1; active <= NS; active++) {
        /* dense equivalent: W = sum_{s<active} U_s V_s, in double, stored f32 */
        toy dn = base;
        dn.n = 0;
        float *dense_bufs[2][2];
        for (int i = 0; i < base.n; i++) {
            dn.t[dn.n] = base.t[i];
            dn.names[dn.n][0] = 0;
            int l = -1, k = -1;
            if (sscanf(base.t[i].name, "blk.%d.", &l) == 1) {
                if (strstr(base.t[i].name, "attn_q.weight")) k = 0;
                if (strstr(base.t[i].name, "ffn_up.weight")) k = 1;
            }
            if (k >= 0) {
                int out = k == 0 ? c.n_heads * c.head_dim : c.hidden_dim, in = c.dim;
                float *w = malloc(sizeof(float) * out * in);
                for (int o = 0; o < out; o++)
                    for (int j = 0; j < in; j++) {
                        double acc = 0;
                        for (int s2 = 0; s2 < active; s2++)
                            for (int r = 0; r < R; r++)
                                acc += (double)uf[l][k][s2][r * out + o] * vf[l][k][s2][r * in + j];
                        w[o * in + j] = (float)acc;
                    }
                dense_bufs[l][k] = w;
                dn.t[dn.n].data = w;
                dn.t[dn.n].encoding = TRL_ENC_F32;
                dn.t[dn.n].bytes = sizeof(float) * out * in;
            }
            dn.n++;
        }
        trl_model *md;
        CHECK(trl_model_create(&c, dn.t, dn.n, &md, &err) == TRL_OK, "dense equivalent binds: %s", err.msg);
        trl_ctx_params p = trl_ctx_default_params();
        p.n_ctx = 16;
        trl_ctx *a, *b;
        trl_ctx_create(mlr, &p, &a, &err);
        trl_ctx_create(md, &p, &b, &err);
        /* start at full rank, then lower it: the setting must take effect without rebuilding */
        trl_ctx_set_rank_slices(a, NS);
        trl_ctx_prefill(a, toks, 3, NULL);
        trl_ctx_truncate(a, 0);
        trl_ctx_set_rank_slices(a, active);
        CHECK(trl_ctx_rank_slices(a) == active, "rank slices set");
        CHECK(trl_ctx_prefill(a, toks, 6, NULL) == TRL_OK, "low-rank prefill: %s", trl_ctx_last_error(a));
        trl_ctx_prefill(b, toks, 6, NULL);
        double worst = 0, mag = 0;
        for (int i = 0; i < V; i++) {
            worst = fmax(worst, fabs((double)trl_ctx_logits(a)[i] - trl_ctx_logits(b)[i]));
            mag = fmax(mag, fabs((double)trl_ctx_logits(b)[i]));
        }
        /* q8_0 slices see q8_0-quantized activations (V x), which the f32 dense
         * product does not: allow that error (~1/254 per element), not more */
        const double tol = slice_enc == TRL_ENC_Q8_0 ? 2e-2 : 1e-5;
        CHECK(worst / mag < tol, "%s slices, %d active: low-rank vs dense product rel err %g",
              trl_encoding_name(slice_enc), active, worst / mag);
        trl_ctx_free(a), trl_ctx_free(b);
        trl_model_free(md);
        for (int l = 0; l < c.n_layers; l++) free(dense_bufs[l][0]), free(dense_bufs[l][1]);
    }
    /* a slice without its partner is refused, naming it */
    lr.n--;
    trl_model *broken = NULL;
    CHECK(trl_model_create(&c, lr.t, lr.n, &broken, &err) == TRL_ERR_BAD_TENSOR && !broken &&
              strstr(err.msg, "lr_u"),
          "missing lr_u slice: %s", err.msg);
    lr.n++;
    trl_model_free(mlr);
    for (int i = 0; i < lr.n; i++) free(lr.bufs[i]);
    for (int l = 0; l < c.n_layers; l++)
        for (int k = 0; k < 2; k++)
            for (int s2 = 0; s2 < NS; s2++) free(vf[l][k][s2]), free(uf[l][k][s2]);
    toy_free(&base);
}

/* ------------------------------------------------------------ sampler */

static void test_sampler(void) {
    enum { V = 100 };
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = frand() * 3.0f;
    logits[42] = 10.0f;
    trl_sampler_params p = trl_sampler_default_params();
    trl_sampler *s;
    trl_error err;
    p.temperature = 0;
    CHECK(trl_sampler_create(&p, V, &s, &err) == TRL_OK, "greedy sampler");
    CHECK(trl_sampler_sample(s, logits) == 42, "greedy picks argmax");
    trl_sampler_free(s);

    p = trl_sampler_default_params();
    p.top_k = 1;
    p.seed = 7;
    trl_sampler_create(&p, V, &s, &err);
    CHECK(trl_sampler_sample(s, logits) == 42, "top_k 1 is greedy");
    trl_sampler_free(s);

    /* same seed, same sequence; a different seed, (almost surely) a different one */
    float flat[V];
    for (int i = 0; i < V; i++) flat[i] = 0.01f * (float)(i % 7);
    p = trl_sampler_default_params();
    p.temperature = 1.0f, p.top_k = 0, p.top_p = 1.0f, p.seed = 1234;
    trl_sampler *s1, *s2, *s3;
    trl_sampler_create(&p, V, &s1, &err);
    trl_sampler_create(&p, V, &s2, &err);
    p.seed = 999;
    trl_sampler_create(&p, V, &s3, &err);
    int same = 1, differ = 0, hist[V] = {0};
    for (int i = 0; i < 2000; i++) {
        int a = trl_sampler_sample(s1, flat), b = trl_sampler_sample(s2, flat), c = trl_sampler_sample(s3, flat);
        same &= a == b;
        differ |= a != c;
        hist[a]++;
    }
    CHECK(same, "same seed gives the same tokens");
    CHECK(differ, "another seed gives other tokens");
    int covered = 0;
    for (int i = 0; i < V; i++) covered += hist[i] > 0;
    CHECK(covered > 90, "near-uniform distribution covers the vocab (%d of %d)", covered, V);
    trl_sampler_free(s1), trl_sampler_free(s2), trl_sampler_free(s3);

    /* top-p keeps only the head of the distribution */
    float peaked[V];
    for (int i = 0; i < V; i++) peaked[i] = -10.0f;
    peaked[3] = 5.0f, peaked[4] = 4.5f, peaked[5] = 0.0f;
    p.top_p = 0.9f, p.seed = 3;
    trl_sampler_create(&p, V, &s, &err);
    int ok = 1;
    for (int i = 0; i < 500; i++) {
        int t = trl_sampler_sample(s, peaked);
        ok &= t == 3 || t == 4;
    }
    CHECK(ok, "top_p 0.9 keeps tokens 3 and 4 only");
    trl_sampler_free(s);
    /* min-p 0.5: p(4)/p(3) = e^-0.5 = 0.61 -> kept; token 5 -> dropped */
    p.top_p = 1.0f, p.min_p = 0.5f;
    trl_sampler_create(&p, V, &s, &err);
    int seen4 = 0;
    ok = 1;
    for (int i = 0; i < 500; i++) {
        int t = trl_sampler_sample(s, peaked);
        ok &= t == 3 || t == 4;
        seen4 |= t == 4;
    }
    CHECK(ok && seen4, "min_p keeps 3 and 4");
    trl_sampler_free(s);
    /* repetition penalty pushes a repeated argmax down */
    float two[V];
    for (int i = 0; i < V; i++) two[i] = -5.0f;
    two[10] = 2.0f, two[11] = 1.5f;
    p = trl_sampler_default_params();
    p.temperature = 0, p.repeat_penalty = 1.5f, p.repeat_last_n = 8;
    trl_sampler_create(&p, V, &s, &err);
    CHECK(trl_sampler_sample(s, two) == 10, "before penalty");
    trl_sampler_accept(s, 10);
    CHECK(trl_sampler_sample(s, two) == 11, "after penalty 2.0/1.5 < 1.5");
    trl_sampler_free(s);
    p.repeat_penalty = 0.0f;
    CHECK(trl_sampler_create(&p, V, &s, &err) == TRL_ERR_INVALID_ARG, "zero penalty refused");
}

int main(void) {
    trl_weight probe = {TRL_ENC_F32, 1, 8, 32, (const uint8_t *)"", {0}, 0, 0, 0};
    printf("kernels: %s\n", trl_kernels_best(&probe)->name);
    test_formats();
    test_expf();
    test_kernels();
    test_config();
    test_model_validation();
    test_forward(TRL_ENC_F32, 1, 0, TRL_MLP_SWIGLU);
    test_forward(TRL_ENC_F16, 0, 0, TRL_MLP_SWIGLU);
    test_forward(TRL_ENC_Q8_0, 0, 1, TRL_MLP_RELU2);
    test_sampler();
    test_lowrank(TRL_ENC_F32);
    test_lowrank(TRL_ENC_Q8_0);
    printf("threads: %s (%d forward tests compared across thread counts)\n",
           trl_threads_available() ? "yes" : "no (single-thread build)", threaded_runs);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
