/* test-converter-quant.c - the converter's quantizers and SVD on their own:
 * ternary lossless detection (per tensor / row / row blocks / column blocks)
 * and absmean numerics on a known matrix, bcq error falling with every added
 * bit and its bytes decoding to what the quantizer says, and the truncated SVD
 * against LAPACK's singular values of the full matrix. Numbers go to stdout. */
#include "converter/testutil.h"
#include <math.h>

#include "trlc_internal.h"
#ifdef TRLC_HAVE_LAPACK
#include <lapacke.h>
#endif

/* Gaussian-ish deterministic values (sum of 4 uniforms). */
static float gauss(unsigned *s) { return 0.5f * (rnd(s) + rnd(s) + rnd(s) + rnd(s)); }

/* ---------------------------------------------------------------- ternary */

/* A tensor that is exactly s * T with the scale layout of p; T random with ~1/3 zeros. */
static void make_ternary(uint64_t rows, uint64_t cols, const trl_enc_params *p, const float *scales, unsigned seed,
                         float *w, int8_t *t) {
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++) {
            seed = seed * 1664525u + 1013904223u;
            int8_t v = (int8_t)((int)((seed >> 16) % 3) - 1);
            t[r * cols + c] = v;
            w[r * cols + c] = trlc_ternary_scale_at(p, scales, rows, cols, r, c) * (float)v;
        }
}

/* The synthetic shards convert exactly: the same T back from the packed codes (t2 and t1), the same scales. */
static void check_lossless(uint64_t rows, uint64_t cols, int axis, int blocks, const char *what) {
    trl_enc_params want = {0, 0, 0, axis, blocks};
    uint64_t ns = axis == TRL_SCALE_TENSOR ? 1 : axis == TRL_SCALE_ROW ? rows : (uint64_t)blocks;
    float *scales = malloc(rows * sizeof *scales), *w = malloc(rows * cols * sizeof *w);
    float *got_s = malloc(rows * sizeof *got_s);
    int8_t *t = malloc(rows * cols), *got_t = malloc(rows * cols), *back = malloc(rows * cols);
    /* awkward f32 scales (not round numbers): exactness must not depend on luck */
    for (uint64_t i = 0; i < ns; i++) scales[i] = 0.0123456789f * (float)(i + 1) + 1e-3f / (float)(i + 3);
    make_ternary(rows, cols, &want, scales, (unsigned)(rows * 31 + cols + (uint64_t)axis), w, t);
    trl_enc_params p;
    int lossless = -1;
    CHECK(trlc_ternary_quantize(w, rows, cols, TRL_SCALE_ROW, got_t, got_s, &p, &lossless) == 0);
    CHECK(lossless == 1);
    CHECK(p.scale_axis == axis && p.scale_blocks == blocks && !p.bits && !p.group && !p.pow2);
    CHECK(!memcmp(t, got_t, rows * cols));
    CHECK(!memcmp(scales, got_s, ns * sizeof *scales)); /* bit-exact f32 scales */
    for (int e = TRL_ENC_T2; e <= TRL_ENC_T1; e++) {
        size_t rb = trl_encoding_row_bytes((trl_encoding)e, cols);
        uint8_t *codes = malloc(rows * rb);
        CHECK(trl_ternary_pack((trl_encoding)e, got_t, rows, cols, codes) == TRL_OK);
        memset(back, 9, rows * cols);
        CHECK(trl_ternary_unpack((trl_encoding)e, codes, rows, cols, back) == TRL_OK);
        CHECK(!memcmp(back, t, rows * cols));
        CHECK(trl_enc_params_check((trl_encoding)e, &p, rows, cols, NULL) == TRL_OK);
        free(codes);
    }
    printf("ternary lossless %-22s [%llu x %llu]: %s\n", what, (unsigned long long)rows, (unsigned long long)cols,
           g_fail ? "FAILED" : "exact");
    free(scales), free(w), free(got_s), free(t), free(got_t), free(back);
}

static void test_ternary(void) {
    check_lossless(24, 200, TRL_SCALE_TENSOR, 0, "per tensor");
    check_lossless(24, 200, TRL_SCALE_ROW, 0, "per row");
    check_lossless(24, 200, TRL_SCALE_ROW_BLOCKS, 3, "per 3 row blocks");
    check_lossless(12, 256, TRL_SCALE_COL_BLOCKS, 2, "per 2 column blocks");
    check_lossless(10, 768, TRL_SCALE_COL_BLOCKS, 6, "per 6 column blocks");
    check_lossless(30, 128, TRL_SCALE_ROW_BLOCKS, 5, "per 5 row blocks");

    /* absmean on a known matrix: s = mean|W| = 5 / 8 = 0.625; W/s is 0.5 at
     * (0, 2) and -0.5 at (1, 1): round half away from zero gives +1 and -1 */
    const float w[8] = {0.5f, -1.0f, 0.3125f, 0.0f, 2.0f, -0.3125f, 0.1875f, -0.6875f};
    const int8_t want_t[8] = {1, -1, 1, 0, 1, -1, 0, -1};
    int8_t t[8];
    float s[2];
    trl_enc_params p;
    int lossless = -1;
    CHECK(trlc_ternary_quantize(w, 2, 4, TRL_SCALE_TENSOR, t, s, &p, &lossless) == 0);
    CHECK(lossless == 0 && p.scale_axis == TRL_SCALE_TENSOR && p.scale_blocks == 0);
    CHECK(s[0] == 0.625f);
    CHECK(!memcmp(t, want_t, 8));
    /* per row: s0 = 1.8125 / 4 = 0.453125, s1 = 3.1875 / 4 = 0.796875 */
    const int8_t want_r[8] = {1, -1, 1, 0, 1, 0, 0, -1};
    CHECK(trlc_ternary_quantize(w, 2, 4, TRL_SCALE_ROW, t, s, &p, &lossless) == 0);
    CHECK(lossless == 0 && p.scale_axis == TRL_SCALE_ROW);
    CHECK(s[0] == 0.453125f && s[1] == 0.796875f);
    CHECK(!memcmp(t, want_r, 8));
    /* all zero: exact, scale 0 */
    const float z[4] = {0};
    CHECK(trlc_ternary_quantize(z, 2, 2, TRL_SCALE_ROW, t, s, &p, &lossless) == 0);
    CHECK(lossless == 1 && p.scale_axis == TRL_SCALE_TENSOR && s[0] == 0.0f && !t[0] && !t[3]);
    /* one value off the ternary grid: not lossless */
    float w2[256 * 2];
    int8_t t2[256 * 2];
    float s2[2];
    for (int i = 0; i < 512; i++) w2[i] = (i % 3 - 1) * 0.25f;
    CHECK(trlc_ternary_quantize(w2, 2, 256, TRL_SCALE_TENSOR, t2, s2, &p, &lossless) == 0 && lossless == 1);
    w2[300] = 0.2500001f;
    CHECK(trlc_ternary_quantize(w2, 2, 256, TRL_SCALE_TENSOR, t2, s2, &p, &lossless) == 0 && lossless == 0);
    CHECK(trlc_ternary_quantize(w2, 2, 256, (trl_scale_axis)TRL_SCALE_ROW_BLOCKS, t2, s2, &p, &lossless) == -1);
}

/* -------------------------------------------------------------------- bcq */

/* Decode one bcq row from its bytes, by docs/FORMAT.md alone. */
static void bcq_decode_row(const trl_enc_params *p, const uint8_t *row, uint64_t cols, float *out) {
    uint64_t g = (uint64_t)p->group, ng = (cols + g - 1) / g, plane = ng * g / 8;
    const uint8_t *sc = row + (uint64_t)p->bits * plane;
    for (uint64_t c = 0; c < cols; c++) {
        float v = 0.0f;
        for (int i = 0; i < p->bits; i++) {
            int bit = row[(uint64_t)i * plane + c / 8] >> (c % 8) & 1;
            uint16_t h;
            memcpy(&h, sc + 2 * ((c / g) * (uint64_t)p->bits + (uint64_t)i), 2);
            v += trl_f16_to_f32(h) * (bit ? 1.0f : -1.0f);
        }
        out[c] = v;
    }
}

static double bcq_rel_error(const float *w, uint64_t rows, uint64_t cols, int bits, int group, int pow2) {
    trl_enc_params p = {bits, group, pow2, 0, 0};
    uint64_t ng = (cols + (uint64_t)group - 1) / (uint64_t)group;
    int8_t *signs = malloc(cols * (uint64_t)bits);
    float *scales = malloc(ng * (uint64_t)bits * sizeof *scales), *deq = malloc(cols * sizeof *deq),
          *dec = malloc(cols * sizeof *dec);
    size_t rb = trl_tensor_bytes(TRL_ENC_BCQ, &p, 1, cols);
    uint8_t *row = malloc(rb);
    double e2 = 0.0, n2 = 0.0;
    int same = 1, p2 = 1;
    for (uint64_t r = 0; r < rows; r++) {
        const float *x = w + r * cols;
        CHECK(trlc_bcq_quantize_row(x, cols, &p, signs, scales, deq) == 0);
        CHECK(trl_bcq_pack_row(&p, signs, scales, cols, row) == TRL_OK);
        bcq_decode_row(&p, row, cols, dec);
        for (uint64_t c = 0; c < cols; c++) {
            same &= dec[c] == deq[c];
            e2 += ((double)x[c] - dec[c]) * ((double)x[c] - dec[c]);
            n2 += (double)x[c] * x[c];
        }
        for (uint64_t k = 0; k < ng * (uint64_t)bits; k++) {
            int ex;
            p2 &= !pow2 || (scales[k] > 0.0f && frexpf(scales[k], &ex) == 0.5f);
            p2 &= scales[k] >= 0.0f;
        }
    }
    CHECK(same); /* the packed bytes hold exactly what the quantizer reports */
    CHECK(p2);   /* scales positive, and powers of two with pow2 */
    free(signs), free(scales), free(deq), free(dec), free(row);
    return sqrt(e2 / n2);
}

static void test_bcq(void) {
    const uint64_t rows = 16, cols = 300; /* 300: a partial last group for g = 128 and 32 */
    float *w = malloc(rows * cols * sizeof *w);
    unsigned seed = 7;
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = gauss(&seed);
    for (int pow2 = 0; pow2 <= 1; pow2++)
        for (int g = 32; g <= 128; g += 96) {
            double prev = 1e9;
            printf("bcq g%d%s relative error ||W - Q||_F / ||W||_F:", g, pow2 ? " pow2" : "");
            for (int k = 1; k <= 4; k++) {
                double e = bcq_rel_error(w, rows, cols, k, g, pow2);
                printf(" %d bit%s %.4f", k, k > 1 ? "s" : "", e);
                /* with f16 scales every bit must help; the pow2 rounding is coarser, so only "clearly better" */
                if (!pow2) CHECK(e < prev);
                else CHECK(e < prev * 1.02);
                prev = e;
            }
            printf("\n");
            CHECK(prev < (pow2 ? 0.2 : 0.12)); /* 4 bits on Gaussian weights */
        }
    /* one bit is sign and mean |w| per group, in f16 */
    trl_enc_params p = {1, 32, 0, 0, 0};
    int8_t signs[64];
    float scales[2];
    float x[64];
    for (int c = 0; c < 64; c++) x[c] = c == 5 ? 0.0f : gauss(&seed);
    CHECK(trlc_bcq_quantize_row(x, 64, &p, signs, scales, NULL) == 0);
    for (int gi = 0; gi < 2; gi++) {
        double sum = 0.0;
        for (int c = 0; c < 32; c++) sum += fabs((double)x[gi * 32 + c]);
        CHECK(scales[gi] == trl_f16_to_f32(trl_f32_to_f16((float)(sum / 32))));
    }
    int ok = 1;
    for (int c = 0; c < 64; c++) ok &= signs[c] == (x[c] >= 0.0f ? 1 : -1);
    CHECK(ok && signs[5] == 1);
    /* zeros: pow2 scales stay powers of two (the smallest normal half), the row decodes to ~0 */
    float zero[40] = {0}, deq[40];
    trl_enc_params pz = {3, 32, 1, 0, 0};
    int8_t sz[120];
    float scz[6];
    CHECK(trlc_bcq_quantize_row(zero, 40, &pz, sz, scz, deq) == 0);
    for (int k = 0; k < 6; k++) CHECK(scz[k] == ldexpf(1.0f, -14));
    for (int c = 0; c < 40; c++) CHECK(fabsf(deq[c]) <= ldexpf(1.0f, -14));
    /* deterministic: the same row, the same answer */
    int8_t s1[600], s2[600];
    float c1[12], c2[12];
    trl_enc_params p3 = {2, 64, 0, 0, 0};
    CHECK(trlc_bcq_quantize_row(w, 300, &p3, s1, c1, NULL) == 0 && trlc_bcq_quantize_row(w, 300, &p3, s2, c2, NULL) == 0);
    CHECK(!memcmp(s1, s2, 600) && !memcmp(c1, c2, 10 * sizeof *c1)); /* 5 groups x 2 planes */
    free(w);
}

/* -------------------------------------------------------------------- svd */

static void check_svd(uint64_t rows, uint64_t cols, uint64_t rank) {
#ifdef TRLC_HAVE_LAPACK
    uint64_t kmin = rows < cols ? rows : cols;
    float *w = malloc(rows * cols * sizeof *w), *vt = malloc(rank * cols * sizeof *vt), *ut = malloc(rank * rows * sizeof *ut);
    double *sig = malloc(kmin * sizeof *sig), *ref = malloc(kmin * sizeof *ref), *a = malloc(rows * cols * sizeof *a);
    unsigned seed = (unsigned)(rows * 7 + cols);
    for (uint64_t i = 0; i < rows * cols; i++) w[i] = gauss(&seed);
    char err[256];
    CHECK(trlc_lowrank(w, rows, cols, rank, vt, ut, sig, err, sizeof err) == 0);
    /* singular values of the full matrix, by another LAPACK driver (QR iteration, no vectors) */
    for (uint64_t i = 0; i < rows * cols; i++) a[i] = w[i];
    double *superb = malloc(kmin * sizeof *superb);
    CHECK(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)rows, (lapack_int)cols, a, (lapack_int)cols, ref, NULL,
                         1, NULL, 1, superb) == 0);
    double maxd = 0.0;
    for (uint64_t i = 0; i < kmin; i++) maxd = fmax(maxd, fabs(sig[i] - ref[i]) / ref[0]);
    CHECK(maxd < 1e-12);
    /* ||W - U_r S_r V_r^T||_F^2 == sum of the discarded sigma^2 */
    double e2 = 0.0, tail = 0.0, n2 = 0.0;
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++) {
            double s = 0.0;
            for (uint64_t i = 0; i < rank; i++) s += (double)ut[i * rows + r] * vt[i * cols + c];
            double d = w[r * cols + c] - s;
            e2 += d * d;
            n2 += (double)w[r * cols + c] * w[r * cols + c];
        }
    for (uint64_t i = rank; i < kmin; i++) tail += ref[i] * ref[i];
    double rel = fabs(sqrt(e2) - sqrt(tail)) / sqrt(n2);
    printf("svd [%llu x %llu] rank %llu: ||W - W_r||_F = %.6f, sqrt(sum of discarded sigma^2) = %.6f (LAPACK dgesvd), "
           "difference %.2e of ||W||_F\n",
           (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)rank, sqrt(e2), sqrt(tail), rel);
    CHECK(rel < 1e-5); /* the factors are f32 */
    /* the two factors carry sqrt(sigma) each, and the slices come in decreasing order */
    for (uint64_t i = 0; i < rank; i++) {
        double nv = 0.0, nu = 0.0, big = 0.0;
        for (uint64_t c = 0; c < cols; c++) {
            nv += (double)vt[i * cols + c] * vt[i * cols + c];
            if (fabs(vt[i * cols + c]) > fabs(big)) big = vt[i * cols + c];
        }
        for (uint64_t r = 0; r < rows; r++) nu += (double)ut[i * rows + r] * ut[i * rows + r];
        CHECK(fabs(nv - ref[i]) < 1e-4 * ref[0] && fabs(nu - ref[i]) < 1e-4 * ref[0]);
        CHECK(big > 0.0); /* the sign convention */
    }
    /* rank 0 and too large a rank */
    CHECK(trlc_lowrank(w, rows, cols, 0, NULL, NULL, sig, err, sizeof err) == 0);
    CHECK(trlc_lowrank(w, rows, cols, kmin + 1, vt, ut, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "rank");
    free(w), free(vt), free(ut), free(sig), free(ref), free(a), free(superb);
#else
    (void)rows, (void)cols, (void)rank;
    char err[256];
    CHECK(!trlc_have_lapack());
    float w[4] = {1, 2, 3, 4}, v[2], u[2];
    CHECK(trlc_lowrank(w, 2, 2, 1, v, u, NULL, err, sizeof err) == -1);
    CHECK_ERR(err, "LAPACK", "liblapacke-dev");
    printf("svd: built without LAPACK; skipped\n");
#endif
}

static void test_svd(void) {
    check_svd(40, 24, 10);
    check_svd(24, 40, 7);
    check_svd(64, 64, 63);
    check_svd(96, 160, 16);
}

int main(void) {
    test_ternary();
    test_bcq();
    test_svd();
    return test_done("test-converter-quant");
}
