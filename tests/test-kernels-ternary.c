/* test-kernels-ternary.c - the t2 kernels: every implementation this build has
 * (reference, best, each SIMD128 design in wasm, AVX2 natively) gives the
 * reference's bits for both activation modes, every scale axis, odd shapes,
 * row ranges and 1..64 tokens; the reference agrees with a plain double
 * evaluation of the docs/FORMAT.md formulas; t1/t2 packing round-trips. Runs
 * natively and, in the wasm build, under Node. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels/kernels.h"
#include "kernels/ternary.h"
#include "trillium.h"

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            if (failures < 50) {                                                                                       \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                            \
                printf(__VA_ARGS__);                                                                                   \
                printf("\n");                                                                                          \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float frand(void) { return (float)(urand() & 0xFFFFFF) / 8388608.0f - 1.0f; } /* [-1, 1) */

/* ------------------------------------------------------------ the implementations */

typedef struct impl {
    const trl_kernel_ops *ops;
    char name[32];
} impl;

static int list_impls(const trl_weight *w, impl *out) {
    int n = 0;
    out[n].ops = trl_kernels_ref(w), snprintf(out[n].name, sizeof out[n].name, "ref"), n++;
    out[n].ops = trl_kernels_best(w), snprintf(out[n].name, sizeof out[n].name, "best(%s)", out[n].ops->name), n++;
#ifdef __wasm_simd128__
    for (int v = 0; v < TRL_T2_SIMD_NVARIANTS; v++) {
        const trl_kernel_ops *k = trl_ternary_simd128_variant(w, v);
        if (k) out[n].ops = k, snprintf(out[n].name, sizeof out[n].name, "variant%d(%s)", v, k->name), n++;
    }
#endif
#ifdef TRL_HAVE_X86_KERNELS
    if (trl_kernels_avx2(w)) out[n].ops = trl_kernels_avx2(w), snprintf(out[n].name, sizeof out[n].name, "avx2"), n++;
#endif
    return n;
}

/* Run one implementation over rows [r0, r1) into y (ldy), scratch exactly act_bytes long
 * and deliberately misaligned (prepare must align it itself). */
static void run(const impl *im, const trl_weight *w, const float *x, int ntok, float *y, int ldy, int r0, int r1) {
    size_t ab = im->ops->act_bytes(w, ntok);
    CHECK(ab <= trl_act_bytes_bound(w->cols, ntok), "%s act_bytes %zu > bound %zu (cols %d ntok %d)", im->name, ab,
          trl_act_bytes_bound(w->cols, ntok), w->cols, ntok);
    uint8_t *buf = malloc(ab + 1);
    trl_act act;
    im->ops->prepare(w, x, ntok, ab ? buf + 1 : NULL, &act);
    im->ops->matmul(w, &act, y, ldy, r0, r1);
    free(buf);
}

/* ------------------------------------------------------------ one case */

typedef struct tcase {
    int rows, cols, axis, blocks, act_int8;
    int code3; /* raw random bytes: code 3 (T = 2) included */
} tcase;

static const char *axis_name[] = {"tensor", "row", "row_blocks", "col_blocks"};

static void test_case(const tcase *tc, const int *ntoks, int n_ntok) {
    const int rows = tc->rows, cols = tc->cols;
    trl_enc_params p = {0};
    p.scale_axis = tc->axis;
    p.scale_blocks = tc->axis >= 2 ? tc->blocks : 0;
    trl_error err;
    if (trl_enc_params_check(TRL_ENC_T2, &p, (uint64_t)rows, (uint64_t)cols, &err) != TRL_OK) {
        CHECK(0, "bad test case %dx%d axis %d: %s", rows, cols, tc->axis, err.msg);
        return;
    }
    size_t rb = trl_encoding_row_bytes(TRL_ENC_T2, (uint64_t)cols);
    size_t bytes = trl_tensor_bytes(TRL_ENC_T2, &p, (uint64_t)rows, (uint64_t)cols);
    int ns = (int)trl_ternary_n_scales(&p, (uint64_t)rows);
    CHECK(bytes == rows * rb + 4 * (size_t)ns, "tensor bytes");
    uint8_t *data = malloc(bytes);
    int8_t *tr = malloc((size_t)rows * cols); /* the T the kernels must see */
    if (tc->code3) {
        for (size_t i = 0; i < rows * rb; i++) data[i] = (uint8_t)urand();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                int b = c / 128, k = (c % 128) / 32, j = c % 32;
                tr[(size_t)r * cols + c] = (int8_t)(((data[r * rb + b * 32 + j] >> (2 * k)) & 3) - 1);
            }
    } else {
        for (int i = 0; i < rows * cols; i++) tr[i] = (int8_t)(urand() % 3) - 1;
        CHECK(trl_ternary_pack(TRL_ENC_T2, tr, (uint64_t)rows, (uint64_t)cols, data) == TRL_OK, "pack");
    }
    float *scales = (float *)(void *)(data + rows * rb);
    for (int i = 0; i < ns; i++) scales[i] = frand() * 2.0f; /* negative scales too */

    trl_weight w;
    memset(&w, 0, sizeof w);
    w.enc = TRL_ENC_T2;
    w.rows = rows, w.cols = cols, w.row_bytes = rb, w.data = data, w.params = p;
    w.scales = scales, w.n_scales = ns, w.act_int8 = tc->act_int8;
    impl im[8];
    int nim = list_impls(&w, im);
    const int nsb = tc->axis == TRL_SCALE_COL_BLOCKS ? tc->blocks : 1, sbc = cols / nsb;
    const char *mode = tc->act_int8 ? "int8" : "float";

    for (int ni = 0; ni < n_ntok; ni++) {
        const int ntok = ntoks[ni];
        float *x = malloc(sizeof(float) * ntok * cols);
        for (int t = 0; t < ntok; t++) {
            float mag = t % 3 == 2 ? 300.0f : t % 3 == 1 ? 0.01f : 1.0f;
            for (int c = 0; c < cols; c++) x[(size_t)t * cols + c] = frand() * mag;
            if (t == 1) memset(x + (size_t)t * cols, 0, sizeof(float) * cols); /* a = 0: q = 0 */
            if (t == 3 && cols > 2) x[(size_t)t * cols + cols - 1] = -1000.0f;     /* the max at the edge */
        }
        const int ldy = rows + 3;
        float *yref = malloc(sizeof(float) * ntok * ldy), *y = malloc(sizeof(float) * ntok * ldy);
        for (int i = 0; i < ntok * ldy; i++) yref[i] = -7.0f;
        run(&im[0], &w, x, ntok, yref, ldy, 0, rows);

        /* the reference against the formulas in double */
        double worst = 0;
        int qbad = 0, padbad = 0;
        for (int t = 0; t < ntok; t++) {
            const float *xt = x + (size_t)t * cols;
            float amax = 0;
            for (int c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(xt[c]));
            int8_t *q = malloc((size_t)cols);
            for (int c = 0; c < cols; c++) {
                float v = amax == 0.0f ? 0.0f : roundf(xt[c] * (127.0f / amax));
                q[c] = (int8_t)(v > 127.0f ? 127 : v < -128.0f ? -128 : (int)v);
            }
            if (tc->act_int8) { /* the reference's prepare quantizes exactly so */
                size_t ab = im[0].ops->act_bytes(&w, ntok);
                uint8_t *buf = malloc(ab);
                trl_act act;
                im[0].ops->prepare(&w, x, ntok, buf, &act);
                int32_t cp = (cols + 127) / 128 * 128;
                if (memcmp(act.q + (size_t)t * cp, q, (size_t)cols)) qbad++;
                for (int c = cols; c < cp; c++) padbad += act.q[(size_t)t * cp + c] != 0;
                if (act.qscale[t] != amax / 127.0f) qbad++;
                free(buf);
            }
            for (int r = 0; r < rows; r++) {
                double want = 0, mag = 0;
                for (int sb = 0; sb < nsb; sb++) {
                    double s = scales[tc->axis == TRL_SCALE_ROW ? r
                                      : tc->axis == TRL_SCALE_ROW_BLOCKS ? r / (rows / tc->blocks)
                                      : tc->axis == TRL_SCALE_COL_BLOCKS ? sb
                                                                         : 0];
                    if (tc->act_int8) {
                        long long d = 0, dm = 0;
                        for (int c = sb * sbc; c < (sb + 1) * sbc; c++) {
                            d += (long long)tr[(size_t)r * cols + c] * q[c];
                            dm += llabs((long long)tr[(size_t)r * cols + c] * q[c]);
                        }
                        want += s * (double)d * ((double)amax / 127.0);
                        mag += fabs(s) * (double)dm * ((double)amax / 127.0);
                    } else {
                        double d = 0, dm = 0;
                        for (int c = sb * sbc; c < (sb + 1) * sbc; c++) {
                            d += (double)tr[(size_t)r * cols + c] * xt[c];
                            dm += fabs((double)tr[(size_t)r * cols + c] * xt[c]);
                        }
                        want += s * d;
                        mag += fabs(s) * dm;
                    }
                }
                double got = yref[(size_t)t * ldy + r];
                double e = fabs(got - want) / (mag + 1e-30);
                if (mag == 0) e = got == 0 ? 0 : 1;
                if (e > worst) worst = e;
            }
            free(q);
        }
        CHECK(!qbad && !padbad, "ref int8 quantization differs from the formula (%d, pad %d)", qbad, padbad);
        CHECK(worst <= (tc->act_int8 ? 1e-6 : 1e-5), "ref %s error %g at %dx%d %s ntok %d", mode, worst, rows, cols,
              axis_name[tc->axis], ntok);
        int pad_ok = 1;
        for (int t = 0; t < ntok; t++)
            for (int r = rows; r < ldy; r++) pad_ok &= yref[(size_t)t * ldy + r] == -7.0f;
        CHECK(pad_ok, "ref wrote outside its rows");

        /* every implementation == the reference, bit for bit, whole and in row ranges */
        for (int k = 1; k < nim; k++) {
            for (int i = 0; i < ntok * ldy; i++) y[i] = -7.0f;
            run(&im[k], &w, x, ntok, y, ldy, 0, rows);
            CHECK(!memcmp(y, yref, sizeof(float) * ntok * ldy), "%s != ref: %s %dx%d %s%s ntok %d", im[k].name, mode,
                  rows, cols, axis_name[tc->axis], tc->code3 ? " code3" : "", ntok);
            if (rows > 2) {
                int cut = rows / 3 + 1;
                for (int i = 0; i < ntok * ldy; i++) y[i] = -7.0f;
                run(&im[k], &w, x, ntok, y, ldy, cut, rows - 1);
                int ok = 1;
                for (int t = 0; t < ntok; t++)
                    for (int r = 0; r < ldy; r++) {
                        float want = r >= cut && r < rows - 1 ? yref[(size_t)t * ldy + r] : -7.0f;
                        ok &= !memcmp(&y[(size_t)t * ldy + r], &want, 4);
                    }
                CHECK(ok, "%s rows [%d, %d) != ref: %s %dx%d ntok %d", im[k].name, cut, rows - 1, mode, rows, cols,
                      ntok);
            }
        }
        free(x), free(y), free(yref);
    }

    /* decode: s * T, from any 256-column chunk start, in every implementation */
    float *d = malloc(sizeof(float) * cols);
    for (int k = 0; k < nim; k++)
        for (int r = 0; r < rows; r += rows > 3 ? rows / 3 : 1) {
            for (int c0 = 0; c0 < cols; c0 += TRL_KCHUNK) {
                int n = cols - c0 < TRL_KCHUNK ? cols - c0 : TRL_KCHUNK;
                im[k].ops->decode(&w, r, c0, n, d + c0);
            }
            int ok = 1;
            for (int c = 0; c < cols; c++) {
                float s = scales[tc->axis == TRL_SCALE_ROW ? r
                                 : tc->axis == TRL_SCALE_ROW_BLOCKS ? r / (rows / tc->blocks)
                                 : tc->axis == TRL_SCALE_COL_BLOCKS ? c / sbc
                                                                    : 0];
                float want = s * (float)tr[(size_t)r * cols + c];
                ok &= !memcmp(&d[c], &want, 4);
            }
            CHECK(ok, "%s decode row %d of %dx%d", im[k].name, r, rows, cols);
        }
    free(d);
    free(data), free(tr);
}

/* ------------------------------------------------------------ packing */

static void test_pack(void) {
    const int shapes[][2] = {{1, 1}, {3, 5}, {2, 7}, {4, 128}, {3, 129}, {5, 300}, {2, 1000}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], cols = shapes[si][1];
        int8_t *tr = malloc((size_t)rows * cols), *back = malloc((size_t)rows * cols);
        for (int i = 0; i < rows * cols; i++) tr[i] = (int8_t)(urand() % 3) - 1;
        size_t rb2 = trl_encoding_row_bytes(TRL_ENC_T2, (uint64_t)cols);
        size_t rb1 = trl_encoding_row_bytes(TRL_ENC_T1, (uint64_t)cols);
        CHECK(rb2 == (size_t)(cols + 127) / 128 * 32 && rb1 == (size_t)(cols + 4) / 5, "row bytes of %d", cols);
        uint8_t *t2 = malloc(rows * rb2), *t1 = malloc(rows * rb1), *t2b = malloc(rows * rb2);
        CHECK(trl_ternary_pack(TRL_ENC_T2, tr, rows, cols, t2) == TRL_OK, "pack t2");
        CHECK(trl_ternary_unpack(TRL_ENC_T2, t2, rows, cols, back) == TRL_OK, "unpack t2");
        CHECK(!memcmp(tr, back, (size_t)rows * cols), "t2 round trip %dx%d", rows, cols);
        CHECK(trl_ternary_pack(TRL_ENC_T1, tr, rows, cols, t1) == TRL_OK, "pack t1");
        memset(back, 9, (size_t)rows * cols);
        CHECK(trl_ternary_unpack(TRL_ENC_T1, t1, rows, cols, back) == TRL_OK, "unpack t1");
        CHECK(!memcmp(tr, back, (size_t)rows * cols), "t1 round trip %dx%d", rows, cols);
        /* t1 -> trits -> t2 is the expansion the model does: same bytes as packing t2 directly */
        CHECK(trl_ternary_pack(TRL_ENC_T2, back, rows, cols, t2b) == TRL_OK && !memcmp(t2, t2b, rows * rb2),
              "t1 -> t2 bytes %dx%d", rows, cols);
        /* the layout of docs/FORMAT.md, padding code 1 included */
        int lay = 1;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < (int)rb2 * 4; c++) {
                int b = c / 128, k = (c % 128) / 32, j = c % 32;
                int u = (t2[r * rb2 + b * 32 + j] >> (2 * k)) & 3;
                lay &= u == (c < cols ? tr[(size_t)r * cols + c] + 1 : 1);
            }
        for (int r = 0; r < rows; r++)
            for (size_t g = 0; g < rb1; g++) {
                int v = t1[r * rb1 + g], m = 1, want = 0;
                for (int i = 0; i < 5; i++, m *= 3) {
                    int c = (int)g * 5 + i;
                    want += (c < cols ? tr[(size_t)r * cols + c] + 1 : 1) * m;
                }
                lay &= v == want;
            }
        CHECK(lay, "t1/t2 byte layout %dx%d", rows, cols);
        /* invalid codes are refused */
        t2[0] |= 3;
        CHECK(trl_ternary_unpack(TRL_ENC_T2, t2, rows, cols, back) == TRL_ERR_BAD_FORMAT, "t2 code 3 refused");
        t1[0] = 243;
        CHECK(trl_ternary_unpack(TRL_ENC_T1, t1, rows, cols, back) == TRL_ERR_BAD_FORMAT, "t1 byte 243 refused");
        tr[0] = 2;
        CHECK(trl_ternary_pack(TRL_ENC_T2, tr, rows, cols, t2) == TRL_ERR_INVALID_ARG, "trit 2 refused");
        free(tr), free(back), free(t2), free(t1), free(t2b);
    }
}

/* ------------------------------------------------------------ int8 quantization */

/* Every prepare() quantizes exactly as trl_quantize_act_i8: ties (x * 127 / a = n + 0.5
 * round away from zero), the clamp, signed zeros, subnormals, odd lengths. */
static void test_quantize(void) {
    const int lens[] = {1, 3, 4, 15, 16, 17, 31, 32, 33, 100, 130, 257};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int cols = lens[li], ntok = 4;
        trl_weight w;
        memset(&w, 0, sizeof w);
        w.enc = TRL_ENC_T2, w.rows = 1, w.cols = cols, w.act_int8 = 1;
        w.row_bytes = trl_encoding_row_bytes(TRL_ENC_T2, (uint64_t)cols);
        const int32_t cp = (cols + 127) / 128 * 128;
        float *x = malloc(sizeof(float) * ntok * cols);
        for (int c = 0; c < cols; c++) {
            x[c] = (float)((int)(urand() % 255) - 127) + 0.5f * (float)(urand() % 2); /* a = 127: ties */
            x[cols + c] = frand() * 1e-3f;
            x[2 * cols + c] = c % 3 ? -0.0f : 1e-40f; /* subnormals and signed zeros */
            x[3 * cols + c] = frand() * 50.0f;
        }
        x[urand() % cols] = 127.0f;
        x[cols + urand() % cols] = -2.0f;
        /* a normal maximum: with max|x| below 127 / FLT_MAX, 127 / a is inf and 0 * inf is NaN */
        x[2 * cols + urand() % cols] = 0.75f;
        impl im[8];
        int nim = list_impls(&w, im);
        int8_t *want = malloc((size_t)ntok * cp);
        float ws[4];
        for (int t = 0; t < ntok; t++)
            ws[t] = trl_quantize_act_i8(x + (size_t)t * cols, cols, cp, want + (size_t)t * cp);
        for (int k = 0; k < nim; k++) {
            size_t ab = im[k].ops->act_bytes(&w, ntok);
            uint8_t *buf = malloc(ab);
            trl_act act;
            im[k].ops->prepare(&w, x, ntok, buf, &act);
            CHECK(act.q && !memcmp(act.q, want, (size_t)ntok * cp) && !memcmp(act.qscale, ws, sizeof ws),
                  "%s quantizes differently (cols %d)", im[k].name, cols);
            free(buf);
        }
        free(x), free(want);
    }
}

/* ------------------------------------------------------------ main */

int main(void) {
    {
        trl_weight probe;
        memset(&probe, 0, sizeof probe);
        probe.enc = TRL_ENC_T2, probe.rows = 1, probe.cols = 128, probe.row_bytes = 32, probe.act_int8 = 1;
        printf("t2 kernels: best %s\n", trl_kernels_best(&probe)->name);
    }
    test_pack();
    test_quantize();
    const int few[] = {1, 2, 5}, many[] = {1, 2, 3, 4, 7, 64};
    /* rows, cols, axis, blocks */
    const int shapes[][4] = {
        {1, 1, 0, 0},      {3, 7, 1, 0},      {5, 128, 0, 0},   {2, 129, 1, 0},    {17, 255, 0, 0},
        {16, 256, 1, 0},   {33, 300, 2, 3},   {6, 1000, 2, 2},  {7, 384, 3, 3},    {9, 512, 3, 2},
        {20, 1024, 3, 4},  {4, 640, 3, 5},    {31, 130, 2, 31}, {15, 2048, 1, 0},  {64, 256, 3, 2},
        {40, 896, 0, 0},   {12, 8192, 3, 64},
    };
    for (int mode = 0; mode < 2; mode++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            tcase tc = {shapes[si][0], shapes[si][1], shapes[si][2], shapes[si][3], mode, 0};
            int big = tc.rows * tc.cols > 20000;
            test_case(&tc, big ? few : many, big ? 3 : 6);
        }
    /* invalid code 3 (T = 2): still the same bits everywhere */
    for (int mode = 0; mode < 2; mode++) {
        tcase a = {19, 700, 1, 0, mode, 1}, b = {18, 512, 3, 2, mode, 1};
        test_case(&a, few, 3);
        test_case(&b, few, 3);
    }
    /* one prefill shape large enough for every tile size at 64 tokens */
    for (int mode = 0; mode < 2; mode++) {
        tcase tc = {37, 1152, 0, 0, mode, 0};
        const int n64[] = {64, 6};
        test_case(&tc, n64, 2);
    }
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
