/* test-kernels-bcq.c - the binary-coded (bcq, ShiftAddLLM) matrix kernels:
 * every implementation this build has (ref, simd128 in wasm, avx2 natively)
 * bit-identical to the reference, the reference against a plain double
 * computation of the docs/FORMAT.md formula, the integer sums exact, decode,
 * scratch sizes, row ranges, parameter checks.
 *
 *   test-kernels-bcq            the tests
 *   test-kernels-bcq --bench    also time k=2, g=128 bcq against q8_0 at 4096 x 4096 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kernels/kernels.h"
#include "trillium.h"

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            if (++failures <= 30) {                                                                                    \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                            \
                printf(__VA_ARGS__);                                                                                   \
                printf("\n");                                                                                          \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float frand(void) { return (float)(rnd() & 0xFFFFFF) / 8388608.0f - 1.0f; } /* [-1, 1) */

/* ------------------------------------------------------------ a test matrix */

enum { SC_RANDOM, SC_POW2, SC_ONE, SC_MIXED };

typedef struct bcq_mat {
    trl_weight w;
    uint8_t *data;
    int8_t *signs;  /* (rows, k, cols) */
    float *scales;  /* (rows, ng, k), as stored (f16-rounded) */
    int ng;
} bcq_mat;

static float pick_scale(int mode) {
    switch (mode) {
    case SC_POW2: return ldexpf(rnd() & 1 ? -1.0f : 1.0f, -(int)(rnd() % 12));
    case SC_ONE: return 1.0f;
    case SC_MIXED: { /* ShiftAddLLM-like positive powers of two, plus odd ones: 0, subnormal halves, negatives */
        uint32_t u = rnd() % 16;
        if (u == 0) return 0.0f;
        if (u == 1) return 3e-7f;
        if (u == 2) return -frand() * 60000.0f;
        return ldexpf(1.0f, -(int)(rnd() % 20));
    }
    default: return frand() * 0.25f;
    }
}

static int mat_make(bcq_mat *m, int rows, int cols, int k, int g, int mode) {
    trl_enc_params p = {k, g, mode == SC_POW2 || mode == SC_ONE, 0, 0};
    size_t rb = trl_tensor_bytes(TRL_ENC_BCQ, &p, 1, (uint64_t)cols);
    memset(m, 0, sizeof *m);
    m->ng = (cols + g - 1) / g;
    m->data = malloc(rb * (size_t)rows + 1);
    m->signs = malloc((size_t)rows * k * cols);
    m->scales = malloc(sizeof(float) * (size_t)rows * m->ng * k);
    if (!rb || !m->data || !m->signs || !m->scales) return 0;
    for (int r = 0; r < rows; r++) {
        int8_t *sg = m->signs + (size_t)r * k * cols;
        float *sc = m->scales + (size_t)r * m->ng * k;
        for (int i = 0; i < k * cols; i++) sg[i] = rnd() & 1 ? 1 : -1;
        for (int i = 0; i < m->ng * k; i++) sc[i] = trl_f16_to_f32(trl_f32_to_f16(pick_scale(mode)));
        if (trl_bcq_pack_row(&p, sg, sc, (uint64_t)cols, m->data + rb * (size_t)r) != TRL_OK) return 0;
    }
    trl_weight w = {TRL_ENC_BCQ, rows, cols, rb, m->data, p, NULL, 0, 0};
    m->w = w;
    return 1;
}

static void mat_free(bcq_mat *m) { free(m->data), free(m->signs), free(m->scales); }

/* ------------------------------------------------------------ the kernels under test */

typedef struct impl {
    const char *label;
    const trl_kernel_ops *ops;
} impl;

static int impls_of(const trl_weight *w, impl out[4]) {
    int n = 0;
    out[n++] = (impl){"ref", trl_bcq_ref(w)};
#ifdef __wasm_simd128__
    out[n++] = (impl){"simd128", trl_bcq_simd128(w)};
#endif
#ifdef TRL_HAVE_X86_KERNELS
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) out[n++] = (impl){"avx2", trl_bcq_avx2(w)};
#endif
    out[n++] = (impl){"best", trl_kernels_best(w)};
    return n;
}

/* y (ntok, ldy) = W x through one implementation, rows [r0, r1) only. */
static void run(const trl_kernel_ops *ops, const trl_weight *w, const float *x, int ntok, float *y, int ldy, int r0,
                int r1) {
    size_t nb = ops->act_bytes(w, ntok);
    CHECK(nb <= trl_act_bytes_bound(w->cols, ntok), "%s act_bytes %zu over the bound %zu (cols %d, ntok %d)",
          ops->name, nb, trl_act_bytes_bound(w->cols, ntok), w->cols, ntok);
    void *scratch = malloc(nb ? nb : 1);
    trl_act act;
    ops->prepare(w, x, ntok, scratch, &act);
    CHECK(act.ntok == ntok && act.qscale && act.aux, "%s prepare", ops->name);
    ops->matmul(w, &act, y, ldy, r0, r1);
    free(scratch);
}

/* The int8 activation quantizer written out again (the kernels call trl_quantize_act_i8). As that
 * helper: x * (127 / a); FORMAT.md's "x * 127 / a" rounds differently for about 1 value in 5e6. */
static float quantize(const float *x, int cols, int *q) {
    float amax = 0.0f;
    for (int c = 0; c < cols; c++) amax = fabsf(x[c]) > amax ? fabsf(x[c]) : amax;
    float f = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int c = 0; c < cols; c++) {
        float v = roundf(x[c] * f);
        q[c] = v > 127.0f ? 127 : v < -128.0f ? -128 : (int)v;
    }
    return amax;
}

/* Exact integer sum d of (row r, group gi, plane i) with the quantized q. */
static long dsum(const bcq_mat *m, int r, int gi, int i, const int *q) {
    const int cols = m->w.cols, g = m->w.params.group, k = m->w.params.bits;
    const int8_t *sg = m->signs + ((size_t)r * k + i) * cols;
    long d = 0;
    for (int c = gi * g; c < (gi + 1) * g && c < cols; c++) d += sg[c] * q[c];
    return d;
}

/* Everything about one matrix and one batch of activations. */
static void check_case(const bcq_mat *m, const float *x, int ntok, const char *what) {
    const trl_weight *w = &m->w;
    const int rows = w->rows, cols = w->cols, k = w->params.bits, g = w->params.group;
    const int ldy = rows + 3;
    const size_t ny = (size_t)ntok * ldy;
    float *yref = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny);
    int *q = malloc(sizeof(int) * (size_t)cols);
    impl im[4];
    int ni = impls_of(w, im);
    for (int j = 0; j < ni; j++) CHECK(im[j].ops != NULL, "%s: no %s kernels", what, im[j].label);
    if (!im[0].ops) goto done;

    for (size_t i = 0; i < ny; i++) yref[i] = -7.0f; /* sentinel in the ldy padding */
    run(im[0].ops, w, x, ntok, yref, ldy, 0, rows);

    /* the reference against the formula in double */
    int scale_one = 1;
    for (size_t i = 0; i < (size_t)rows * m->ng * k; i++) scale_one &= m->scales[i] == 1.0f;
    double worst = 0;
    for (int t = 0; t < ntok; t++) {
        float amax = quantize(x + (size_t)t * cols, cols, q);
        for (int r = 0; r < rows; r++) {
            double s = 0, mag = 0;
            long dtot = 0;
            for (int gi = 0; gi < m->ng; gi++)
                for (int i = 0; i < k; i++) {
                    long d = dsum(m, r, gi, i, q);
                    double sc = m->scales[((size_t)r * m->ng + gi) * k + i];
                    s += sc * (double)d, mag += fabs(sc * (double)d), dtot += d;
                }
            double yd = (double)amax / 127.0 * s, err = fabs(yref[(size_t)t * ldy + r] - yd);
            double rel = err / ((double)amax / 127.0 * mag + 1e-30);
            if (!(rel <= worst)) worst = rel; /* catches NaN */
            if (scale_one) /* unit scales: every float partial sum is an exact integer */
                CHECK(yref[(size_t)t * ldy + r] == (amax / 127.0f) * (float)dtot,
                      "%s: unit scales, row %d tok %d: %.9g != exact %ld * a/127", what, r, t,
                      yref[(size_t)t * ldy + r], dtot);
        }
        for (int r = rows; r < ldy; r++) CHECK(yref[(size_t)t * ldy + r] == -7.0f, "%s: ref wrote past rows", what);
    }
    CHECK(worst <= 1e-6, "%s: ref vs double: relative error %g", what, worst);

    /* every implementation == ref, over the whole matrix and split into row ranges */
    for (int j = 1; j < ni; j++) {
        if (!im[j].ops) continue;
        for (size_t i = 0; i < ny; i++) y[i] = -7.0f;
        run(im[j].ops, w, x, ntok, y, ldy, 0, rows);
        CHECK(!memcmp(y, yref, sizeof(float) * ny), "%s: %s (%s) != ref", what, im[j].label, im[j].ops->name);
        int cut1 = rows / 3, cut2 = rows - rows / 5;
        for (size_t i = 0; i < ny; i++) y[i] = -7.0f;
        run(im[j].ops, w, x, ntok, y, ldy, cut1, cut2);
        run(im[j].ops, w, x, ntok, y, ldy, cut2, rows);
        run(im[j].ops, w, x, ntok, y, ldy, 0, cut1);
        CHECK(!memcmp(y, yref, sizeof(float) * ny), "%s: %s by row ranges %d/%d != ref", what, im[j].label, cut1,
              cut2);
        for (size_t i = 0; i < ny; i++) y[i] = -7.0f;
        run(im[j].ops, w, x, ntok, y, ldy, cut1, cut1); /* empty range: nothing written */
        int untouched = 1;
        for (size_t i = 0; i < ny; i++) untouched &= y[i] == -7.0f;
        CHECK(untouched, "%s: %s wrote on an empty row range", what, im[j].label);
    }

    /* decode: every implementation == ref == the sum of the signed scales */
    float *d0 = malloc(sizeof(float) * 300), *d1 = malloc(sizeof(float) * 300);
    for (int c0 = 0; c0 < cols; c0 += TRL_KCHUNK) {
        int n = cols - c0 < 300 ? cols - c0 : 300, r = (c0 / TRL_KCHUNK) % rows;
        im[0].ops->decode(w, r, c0, n, d0);
        int bad = 0;
        for (int c = 0; c < n; c++) {
            float v = 0.0f;
            int gi = (c0 + c) / g;
            for (int i = 0; i < k; i++) {
                float s = m->scales[((size_t)r * m->ng + gi) * k + i];
                v += m->signs[((size_t)r * k + i) * cols + c0 + c] > 0 ? s : -s;
            }
            bad += memcmp(&v, d0 + c, 4) != 0;
        }
        CHECK(!bad, "%s: ref decode of row %d at %d: %d values wrong", what, r, c0, bad);
        for (int j = 1; j < ni; j++) {
            if (!im[j].ops) continue;
            im[j].ops->decode(w, r, c0, n, d1);
            CHECK(!memcmp(d0, d1, sizeof(float) * n), "%s: %s decode != ref", what, im[j].label);
        }
    }
    free(d0), free(d1);
done:
    free(yref), free(y), free(q);
}

static float *random_x(int ntok, int cols, int kind) {
    float *x = malloc(sizeof(float) * (size_t)ntok * cols);
    for (int t = 0; t < ntok; t++) {
        float amp = ldexpf(1.0f, (int)(rnd() % 16) - 8);
        for (int c = 0; c < cols; c++) x[(size_t)t * cols + c] = frand() * amp;
        if (kind == 1 && t % 3 == 1) /* an all-zero token between live ones */
            memset(x + (size_t)t * cols, 0, sizeof(float) * cols);
        if (kind == 2) /* outliers: most q small, one at +-127 */
            x[(size_t)t * cols + rnd() % cols] = 50.0f * amp;
    }
    return x;
}

/* ------------------------------------------------------------ the tests */

static void test_shapes(void) {
    const int groups[] = {32, 64, 96, 128, 160, 224, 256};
    const int colss[] = {1, 37, 100, 200, 256, 333, 512};
    const int rowss[] = {1, 7, 17, 33, 45, 15, 31};
    const int ntoks[] = {1, 2, 3, 5, 16, 64, 1, 9};
    int n = 0;
    for (int k = 1; k <= 4; k++)
        for (size_t gi = 0; gi < sizeof groups / sizeof *groups; gi++)
            for (size_t ci = 0; ci < sizeof colss / sizeof *colss; ci++, n++) {
                int g = groups[gi], cols = colss[ci], rows = rowss[n % 7], ntok = ntoks[n % 8];
                int mode = n % 4, xkind = (n / 4) % 3;
                bcq_mat m;
                char what[128];
                snprintf(what, sizeof what, "k=%d g=%d %dx%d ntok=%d scales=%d x=%d", k, g, rows, cols, ntok, mode,
                         xkind);
                if (!mat_make(&m, rows, cols, k, g, mode)) {
                    CHECK(0, "%s: could not build the matrix", what);
                    mat_free(&m);
                    continue;
                }
                float *x = random_x(ntok, cols, xkind);
                check_case(&m, x, ntok, what);
                free(x);
                mat_free(&m);
            }
}

/* Every token count 1..64 on one shape (the prefill paths share weight loads across tokens). */
static void test_ntok(void) {
    bcq_mat m;
    CHECK(mat_make(&m, 35, 333, 3, 128, SC_RANDOM), "ntok matrix");
    float *x = random_x(TRL_KMAX_TOKENS, 333, 1);
    for (int ntok = 1; ntok <= TRL_KMAX_TOKENS; ntok++) {
        char what[64];
        snprintf(what, sizeof what, "ntok sweep %d", ntok);
        check_case(&m, x, ntok, what);
    }
    free(x);
    mat_free(&m);
}

/* The largest sums: every q at +-127 with the signs agreeing, |d| = 127 * g. */
static void test_extremes(void) {
    const int groups[] = {32, 128, 192, 256};
    for (int k = 1; k <= 4; k++)
        for (int gi = 0; gi < 4; gi++) {
            int g = groups[gi], rows = 19, cols = 2 * g + 40;
            bcq_mat m;
            CHECK(mat_make(&m, rows, cols, k, g, SC_ONE), "extreme matrix");
            float *x = malloc(sizeof(float) * 2 * cols);
            for (int c = 0; c < cols; c++) {
                x[c] = m.signs[c] > 0 ? 3.0f : -3.0f;  /* row 0, plane 0 */
                x[cols + c] = m.signs[c] > 0 ? -1.0f : 1.0f;
            }
            /* make rows 1.. agree in every plane with row 0's plane 0 for this k */
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < k; i++)
                    for (int c = 0; c < cols; c++)
                        m.signs[((size_t)r * k + i) * cols + c] = (r + i) % 2 ? -m.signs[c] : m.signs[c];
            trl_enc_params p = m.w.params;
            for (int r = 0; r < rows; r++)
                trl_bcq_pack_row(&p, m.signs + (size_t)r * k * cols, m.scales + (size_t)r * m.ng * k, (uint64_t)cols,
                                 m.data + m.w.row_bytes * (size_t)r);
            char what[64];
            snprintf(what, sizeof what, "extreme k=%d g=%d", k, g);
            check_case(&m, x, 2, what);
            free(x);
            mat_free(&m);
        }
}

static void test_params(void) {
    uint8_t buf[4096] = {0};
    const int bad[][2] = {{0, 128}, {5, 128}, {2, 0}, {2, 16}, {2, 48}, {2, 288}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        trl_weight w = {TRL_ENC_BCQ, 4, 100, 1000, buf, {bad[i][0], bad[i][1], 0, 0, 0}, NULL, 0, 0};
        impl im[4];
        int n = impls_of(&w, im);
        for (int j = 0; j < n - 1; j++) /* "best" falls back to the reference, itself NULL here */
            CHECK(im[j].ops == NULL, "%s accepted bits=%d group=%d", im[j].label, bad[i][0], bad[i][1]);
    }
    trl_weight w = {TRL_ENC_BCQ, 4, 100, 10, buf, {2, 32, 0, 0, 0}, NULL, 0, 0}; /* row_bytes too small */
    CHECK(trl_bcq_ref(&w) == NULL, "ref accepted a short row");
    w.row_bytes = trl_bcq_row_bytes(&w.params, 100);
    CHECK(w.row_bytes == 2 * 128 / 8 + 2 * 2 * 4, "row bytes %zu", w.row_bytes);
    CHECK(trl_bcq_ref(&w) != NULL, "ref refused a valid weight");
    w.enc = TRL_ENC_Q8_0;
    CHECK(trl_bcq_ref(&w) == NULL, "bcq kernels for a q8_0 weight");
    w.enc = TRL_ENC_BCQ;
    const char *best = trl_kernels_best(&w)->name;
#if defined(__wasm_simd128__)
    CHECK(!strcmp(best, "simd128"), "best kernel in wasm is %s", best);
#elif defined(TRL_HAVE_X86_KERNELS)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c"))
        CHECK(!strcmp(best, "avx2"), "best kernel on this CPU is %s", best);
#endif
    printf("bcq kernels: %s\n", best);
}

/* ------------------------------------------------------------ timing */

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC); /* C11; CLOCK_MONOTONIC would need POSIX */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per matmul (prepare included) of ntok tokens: the best of 5 rounds,
 * each as many calls as fill min_s (timespec_get ticks in milliseconds under Node). */
static double time_matmul(const trl_kernel_ops *ops, const trl_weight *w, const float *x, int ntok, float *y,
                          double min_s) {
    void *scratch = malloc(ops->act_bytes(w, ntok) + 1);
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        double t0 = now_s(), t;
        int calls = 0;
        do {
            trl_act act;
            ops->prepare(w, x, ntok, scratch, &act);
            ops->matmul(w, &act, y, w->rows, 0, w->rows);
            calls++;
        } while ((t = now_s() - t0) < min_s);
        if (t / calls < best) best = t / calls;
    }
    free(scratch);
    return best;
}

static void bench(void) {
    const int rows = 4096, cols = 4096, maxtok = 16;
    bcq_mat m;
    if (!mat_make(&m, rows, cols, 2, 128, SC_POW2)) {
        printf("bench: out of memory\n");
        return;
    }
    size_t rb8 = trl_encoding_row_bytes(TRL_ENC_Q8_0, cols);
    uint8_t *q8 = malloc(rb8 * rows);
    float *x = random_x(maxtok, cols, 0), *y = malloc(sizeof(float) * rows * maxtok), *wrow = malloc(4 * cols);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) wrow[c] = frand();
        trl_encode_row(TRL_ENC_Q8_0, wrow, cols, q8 + rb8 * r);
    }
    trl_weight wq = {TRL_ENC_Q8_0, rows, cols, rb8, q8, {0, 0, 0, 0, 0}, NULL, 0, 0};
    const trl_kernel_ops *kb = trl_kernels_best(&m.w), *kq = trl_kernels_best(&wq);
    printf("4096 x 4096 matmul, best of reps, prepare included (ms per call; per token for ntok > 1)\n");
    printf("  bcq k=2 g=128: %.2f MB   q8_0: %.2f MB\n", m.w.row_bytes * (double)rows / 1e6, rb8 * (double)rows / 1e6);
    const int toks[] = {1, 4, 16};
    for (int i = 0; i < 3; i++) {
        int nt = toks[i];
        double tb = time_matmul(kb, &m.w, x, nt, y, 0.1) / nt;
        double tq = time_matmul(kq, &wq, x, nt, y, 0.1) / nt;
        printf("  ntok %2d: bcq %-7s %8.3f ms   q8_0 %-7s %8.3f ms   q8_0/bcq %.2fx\n", nt, kb->name, tb * 1e3,
               kq->name, tq * 1e3, tq / tb);
    }
    const trl_kernel_ops *kr = trl_bcq_ref(&m.w);
    printf("  ntok  1: bcq ref     %8.3f ms\n\n", time_matmul(kr, &m.w, x, 1, y, 0.1) * 1e3);
    free(q8), free(x), free(y), free(wrow);
    mat_free(&m);
}

int main(int argc, char **argv) {
    test_params();
    test_shapes();
    test_ntok();
    test_extremes();
    printf("%d checks, %d failures\n", checks, failures);
    if (argc > 1 && !strcmp(argv[1], "--bench")) bench();
    return failures ? 1 : 0;
}
