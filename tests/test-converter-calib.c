/* test-converter-calib.c - the bcq quantizer against the numpy implementation
 * of the same algorithm (tests/reference/bcq.py), with and without column
 * weights; column weights (activation statistics) lowering the output error
 * on inputs with skewed column statistics; --layers parsing.
 *
 *   test-converter-calib [PYTHON]   (default /usr/bin/python3; skipped parts say so)
 *
 * The numpy side is run on the same seeded matrices through files. Float
 * order differs (numpy's reductions vs the C loops), so a sign can flip where
 * two combinations are within rounding of each other: the comparison is the
 * reconstruction error (relative difference below 1e-3 per row), the scales
 * (relative difference below 1e-3 where the bits agree) and the fraction of
 * matching bits (at least 99%). */
#include "converter/testutil.h"

#include <math.h>

#include "trlc_internal.h"

static const char *PY = "/usr/bin/python3";
static char *tmp;

static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int have_numpy(void) { return sh("%s -c 'import numpy' >/dev/null 2>&1", PY) == 0; }

static float gauss(unsigned *s) {
    float u1 = (rnd(s) + 1.0f) * 0.5f, u2 = (rnd(s) + 1.0f) * 0.5f;
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* sum_c d_c (w_c - q_c)^2 over a row (d NULL: 1) */
static double werr(const float *w, const float *q, const float *d, uint64_t n) {
    double e = 0.0;
    for (uint64_t c = 0; c < n; c++) {
        double x = (double)w[c] - q[c];
        e += (d ? d[c] : 1.0) * x * x;
    }
    return e;
}

/* One configuration: C and numpy on the same rows x cols matrix. */
static void compare_numpy(int bits, int group, int pow2, int weighted, unsigned seed) {
    const int rows = 12, cols = 200; /* 200: a partial last group for every group size */
    const int ng = (cols + group - 1) / group;
    float *w = malloc(sizeof(float) * rows * cols), *d = malloc(sizeof(float) * cols);
    for (int i = 0; i < rows * cols; i++) w[i] = gauss(&seed) * 0.05f;
    for (int c = 0; c < cols; c++) d[c] = expf(2.0f * gauss(&seed));
    trl_enc_params p = {bits, group, pow2, 0, 0};
    float *cs = malloc(sizeof(float) * rows * ng * bits), *cq = malloc(sizeof(float) * rows * cols);
    int8_t *cb = malloc((size_t)rows * bits * cols);
    for (int r = 0; r < rows; r++)
        CHECK(trlc_bcq_quantize_row_weighted(w + r * cols, weighted ? d : NULL, cols, &p, cb + r * bits * cols,
                                             cs + r * ng * bits, cq + r * cols) == 0);
    /* input file for bcq.py */
    char *in = join(tmp, "bcq-in.bin"), *out = join(tmp, "bcq-out.bin");
    FILE *f = fopen(in, "wb");
    int32_t hdr[6] = {rows, cols, bits, group, pow2, weighted};
    fwrite(hdr, 4, 6, f);
    fwrite(w, 4, (size_t)rows * cols, f);
    if (weighted) fwrite(d, 4, (size_t)cols, f);
    fclose(f);
    if (sh("%s tests/reference/bcq.py %s %s", PY, in, out)) {
        CHECK(!"bcq.py failed");
        goto done;
    }
    size_t n;
    uint8_t *o = read_file(out, &n);
    size_t want = 4 * (size_t)rows * ng * bits + (size_t)rows * bits * cols + 4 * (size_t)rows * cols;
    CHECK(o && n == want);
    if (!o || n != want) {
        free(o);
        goto done;
    }
    const float *ps = (const float *)o;
    const int8_t *pb = (const int8_t *)(o + 4 * (size_t)rows * ng * bits);
    const float *pq = (const float *)(o + 4 * (size_t)rows * ng * bits + (size_t)rows * bits * cols);
    size_t same = 0, total = (size_t)rows * bits * cols;
    for (size_t i = 0; i < total; i++) same += cb[i] == pb[i];
    double worst = 0.0, worst_scale = 0.0;
    for (int r = 0; r < rows; r++) {
        double ec = werr(w + r * cols, cq + r * cols, weighted ? d : NULL, cols);
        double ep = werr(w + r * cols, pq + r * cols, weighted ? d : NULL, cols);
        double rel = fabs(ec - ep) / (ep > 1e-30 ? ep : 1e-30);
        if (rel > worst) worst = rel;
        for (int g = 0; g < ng; g++) {
            int agree = 1; /* compare scales only where the group's bits agree */
            int c1 = (g + 1) * group < cols ? (g + 1) * group : cols;
            for (int i = 0; i < bits; i++)
                for (int c = g * group; c < c1; c++)
                    agree &= cb[(size_t)r * bits * cols + (size_t)i * cols + c] ==
                             pb[(size_t)r * bits * cols + (size_t)i * cols + c];
            if (!agree) continue;
            for (int i = 0; i < bits; i++) {
                double a = cs[(r * ng + g) * bits + i], b = ps[(r * ng + g) * bits + i];
                double sr = fabs(a - b) / fabs(b);
                if (sr > worst_scale) worst_scale = sr;
            }
        }
    }
    double frac = (double)same / (double)total;
    printf("bcq k=%d g=%d%s%s: C vs numpy: bits agree %.4f, worst row error rel. diff %.2e, worst scale rel. diff "
           "%.2e\n",
           bits, group, pow2 ? " pow2" : "", weighted ? " weighted" : "", frac, worst, worst_scale);
    CHECK(frac >= 0.99);
    CHECK(worst <= 1e-3);
    CHECK(worst_scale <= 1e-3);
    free(o);
done:
    free(in);
    free(out);
    free(w);
    free(d);
    free(cs);
    free(cq);
    free(cb);
}

/* Weighted bcq on a matrix whose inputs have skewed column statistics: the
 * activation-weighted error, and the output error ||(W - Q) X|| on inputs
 * drawn with those statistics, fall below the unweighted quantizer's; and
 * the weighted error still falls with every added bit. */
static void test_weighted_beats_unweighted(void) {
    const int rows = 64, cols = 256, ntok = 512;
    unsigned seed = 77;
    float *w = malloc(sizeof(float) * rows * cols), *d = malloc(sizeof(float) * cols), *sd = malloc(sizeof(float) * cols);
    float *x = malloc(sizeof(float) * ntok * cols);
    for (int i = 0; i < rows * cols; i++) w[i] = gauss(&seed) * 0.02f;
    for (int c = 0; c < cols; c++) {
        sd[c] = expf(1.5f * gauss(&seed)); /* a few columns carry most of the activation energy */
        d[c] = 0.0f;
    }
    for (int t = 0; t < ntok; t++)
        for (int c = 0; c < cols; c++) {
            float v = sd[c] * gauss(&seed);
            x[t * cols + c] = v;
            d[c] += v * v / (float)ntok; /* E[x_c^2], as --calib measures it */
        }
    float *qu = malloc(sizeof(float) * cols), *qw = malloc(sizeof(float) * cols);
    float *eu = malloc(sizeof(float) * rows * cols), *ew = malloc(sizeof(float) * rows * cols);
    float sc[64];
    int8_t sg[4 * 256];
    double prev = INFINITY;
    for (int bits = 1; bits <= 4; bits++) {
        trl_enc_params p = {bits, 64, 0, 0, 0};
        double au = 0.0, aw = 0.0;
        for (int r = 0; r < rows; r++) {
            CHECK(trlc_bcq_quantize_row_weighted(w + r * cols, NULL, cols, &p, sg, sc, qu) == 0);
            CHECK(trlc_bcq_quantize_row_weighted(w + r * cols, d, cols, &p, sg, sc, qw) == 0);
            au += werr(w + r * cols, qu, d, cols);
            aw += werr(w + r * cols, qw, d, cols);
            for (int c = 0; c < cols; c++) {
                eu[r * cols + c] = w[r * cols + c] - qu[c];
                ew[r * cols + c] = w[r * cols + c] - qw[c];
            }
        }
        /* output error on the tokens: sum_t ||E x_t||^2 */
        double ou = 0.0, ow = 0.0, oref = 0.0;
        for (int t = 0; t < ntok; t++)
            for (int r = 0; r < rows; r++) {
                double yu = 0.0, yw = 0.0, y = 0.0;
                for (int c = 0; c < cols; c++) {
                    yu += (double)eu[r * cols + c] * x[t * cols + c];
                    yw += (double)ew[r * cols + c] * x[t * cols + c];
                    y += (double)w[r * cols + c] * x[t * cols + c];
                }
                ou += yu * yu, ow += yw * yw, oref += y * y;
            }
        printf("bcq k=%d g64, skewed inputs: activation-weighted error unweighted %.4e, weighted %.4e; relative output "
               "error ||(W-Q)X||/||WX|| unweighted %.4f, weighted %.4f\n",
               bits, au, aw, sqrt(ou / oref), sqrt(ow / oref));
        CHECK(aw < au);
        CHECK(ow < 0.9 * ou); /* a clear gain, not noise */
        CHECK(aw <= prev);    /* more bits, less weighted error */
        prev = aw;
    }
    /* all-zero weights in a group: fitted unweighted, so the same as d == NULL */
    float z[256] = {0};
    trl_enc_params p = {2, 64, 0, 0, 0};
    int8_t s1[512], s2[512];
    float c1[8], c2[8];
    CHECK(trlc_bcq_quantize_row_weighted(w, z, cols, &p, s1, c1, qu) == 0);
    CHECK(trlc_bcq_quantize_row_weighted(w, NULL, cols, &p, s2, c2, qw) == 0);
    CHECK(!memcmp(s1, s2, sizeof s1) && !memcmp(c1, c2, sizeof c1));
    free(w), free(d), free(sd), free(x), free(qu), free(qw), free(eu), free(ew);
}

static void test_layers(void) {
    uint32_t m;
    char err[256];
    CHECK(trlc_parse_layers("attn,mlp", &m, err, sizeof err) == 0 && m == TRLC_LAYER_ALL);
    CHECK(trlc_parse_layers("attn", &m, err, sizeof err) == 0 && m == TRLC_LAYER_ATTN);
    CHECK(trlc_parse_layers("mlp", &m, err, sizeof err) == 0 && m == TRLC_LAYER_MLP);
    CHECK(trlc_parse_layers("q,down,ffn_up", &m, err, sizeof err) == 0 &&
          m == (TRLC_LAYER_Q | TRLC_LAYER_DOWN | TRLC_LAYER_UP));
    CHECK(trlc_parse_layers("attn,,mlp", &m, err, sizeof err) == -1);
    CHECK_ERR(err, "--layers", "\"\"");
    CHECK(trlc_parse_layers("embed", &m, err, sizeof err) == -1);
    CHECK_ERR(err, "--layers", "embed");
    CHECK(trlc_layer_bit("blk.3.attn_output.weight") == TRLC_LAYER_O);
    CHECK(trlc_layer_bit("blk.0.ffn_gate.weight") == TRLC_LAYER_GATE);
    CHECK(trlc_layer_bit("blk.0.attn_norm.weight") == 0);
    CHECK(trlc_layer_bit("token_embd.weight") == 0);
    CHECK(trlc_layer_bit("output.weight") == 0);
}

int main(int argc, char **argv) {
    if (argc > 1) PY = argv[1];
    tmp = make_tmpdir("calib");
    test_layers();
    test_weighted_beats_unweighted();
    if (!have_numpy()) {
        printf("test-converter-calib: SKIPPED the numpy comparison (%s has no numpy)\n", PY);
    } else {
        unsigned seed = 1;
        for (int weighted = 0; weighted <= 1; weighted++)
            for (int bits = 1; bits <= 4; bits++) compare_numpy(bits, bits == 3 ? 64 : 128, 0, weighted, seed++);
        compare_numpy(2, 32, 1, 0, seed++);
        compare_numpy(3, 128, 1, 1, seed++);
    }
    rm_tree(tmp);
    free(tmp);
    return test_done("test-converter-calib");
}
