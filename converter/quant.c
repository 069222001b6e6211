/* quant.c - the quantizers behind trillium-convert --ternary and --bcq
 * (DESIGN.md "Numerics", docs/FORMAT.md "Ternary" and "Binary-coded").
 *
 * Both work on a whole f32 matrix (or row) in memory and are pure functions of
 * it: the same weights give the same bytes on every machine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trlc_internal.h"

/* ================================================================ ternary */

/* The one magnitude of a set of values that are all 0 or +-m: 0 while only
 * zeros were seen, -1 once two different magnitudes were. */
static void mag_add(float *m, float v) {
    float a = fabsf(v);
    if (a == 0.0f || *m < 0.0f) return;
    if (*m == 0.0f) *m = a;
    else if (*m != a) *m = -1.0f;
}

/* Merge magnitude b into a (same convention). */
static void mag_merge(float *a, float b) {
    if (*a < 0.0f || b == 0.0f) return;
    if (b < 0.0f) *a = -1.0f;
    else if (*a == 0.0f) *a = b;
    else if (*a != b) *a = -1.0f;
}

/* The TriLM shard counts we look for: up to 6 equal blocks. */
#define MAX_SHARDS 6

/* Lossless detection: is w exactly s*T with one s per tensor, per block of
 * rows or columns, or per row? Fills params and scales and returns 1 if so,
 * preferring the fewest scales. rowmag: rows floats of scratch. */
static int ternary_detect(const float *w, uint64_t rows, uint64_t cols, float *rowmag, trl_enc_params *p,
                          float *scales) {
    int per_row = 1;
    for (uint64_t r = 0; r < rows; r++) {
        float m = 0.0f;
        const float *x = w + r * cols;
        for (uint64_t c = 0; c < cols; c++) mag_add(&m, x[c]);
        rowmag[r] = m;
        if (m < 0.0f) per_row = 0;
    }
    memset(p, 0, sizeof *p);
    if (per_row) {
        float m = 0.0f;
        for (uint64_t r = 0; r < rows; r++) mag_merge(&m, rowmag[r]);
        if (m >= 0.0f) { /* one scale for the whole tensor */
            p->scale_axis = TRL_SCALE_TENSOR;
            scales[0] = m;
            return 1;
        }
        /* blocks of rows: column-parallel shards (q, k, v, gate, up) */
        for (uint64_t k = 2; k <= MAX_SHARDS && k <= rows; k++) {
            if (rows % k) continue;
            uint64_t br = rows / k;
            int ok = 1;
            for (uint64_t b = 0; b < k && ok; b++) {
                float m2 = 0.0f;
                for (uint64_t r = b * br; r < (b + 1) * br; r++) mag_merge(&m2, rowmag[r]);
                if (m2 < 0.0f) ok = 0;
                else scales[b] = m2;
            }
            if (ok) {
                p->scale_axis = TRL_SCALE_ROW_BLOCKS;
                p->scale_blocks = (int32_t)k;
                return 1;
            }
        }
    }
    /* blocks of columns: row-parallel shards (o, down); a row may mix magnitudes */
    for (uint64_t k = 2; k <= MAX_SHARDS; k++) {
        if (cols % k || (cols / k) % 128) continue;
        uint64_t bc = cols / k;
        float m[MAX_SHARDS] = {0};
        int ok = 1;
        for (uint64_t r = 0; r < rows && ok; r++)
            for (uint64_t b = 0; b < k && ok; b++) {
                const float *x = w + r * cols + b * bc;
                for (uint64_t c = 0; c < bc; c++) mag_add(&m[b], x[c]);
                if (m[b] < 0.0f) ok = 0;
            }
        if (ok) {
            p->scale_axis = TRL_SCALE_COL_BLOCKS;
            p->scale_blocks = (int32_t)k;
            for (uint64_t b = 0; b < k; b++) scales[b] = m[b];
            return 1;
        }
    }
    if (per_row) {
        p->scale_axis = TRL_SCALE_ROW;
        for (uint64_t r = 0; r < rows; r++) scales[r] = rowmag[r];
        return 1;
    }
    return 0;
}

/* T = clamp(roundf(w / s), -1, 1) in binary32; roundf rounds half away from zero. */
static int8_t trit(float w, float s) {
    if (s == 0.0f) return 0;
    float q = roundf(w / s);
    return (int8_t)(q > 1.0f ? 1 : q < -1.0f ? -1 : (int)q);
}

float trlc_ternary_scale_at(const trl_enc_params *p, const float *scales, uint64_t rows, uint64_t cols, uint64_t r,
                            uint64_t c) {
    switch (p->scale_axis) {
    case TRL_SCALE_ROW: return scales[r];
    case TRL_SCALE_ROW_BLOCKS: return scales[r / (rows / (uint64_t)p->scale_blocks)];
    case TRL_SCALE_COL_BLOCKS: return scales[c / (cols / (uint64_t)p->scale_blocks)];
    default: return scales[0];
    }
}

int trlc_ternary_quantize(const float *w, uint64_t rows, uint64_t cols, trl_scale_axis axis, int8_t *trits,
                          float *scales, trl_enc_params *params, int *lossless) {
    if (!w || !trits || !scales || !params || !rows || !cols) return -1;
    if (axis != TRL_SCALE_TENSOR && axis != TRL_SCALE_ROW) return -1;
    float *rowmag = malloc((size_t)rows * sizeof *rowmag);
    if (!rowmag) return -1;
    int exact = ternary_detect(w, rows, cols, rowmag, params, scales);
    free(rowmag);
    if (lossless) *lossless = exact;
    if (!exact) {
        /* absmean: s = mean |W| over the tensor or the row, summed in double */
        memset(params, 0, sizeof *params);
        params->scale_axis = axis;
        if (axis == TRL_SCALE_TENSOR) {
            double sum = 0.0;
            for (uint64_t i = 0; i < rows * cols; i++) sum += fabs((double)w[i]);
            scales[0] = (float)(sum / (double)(rows * cols));
        } else {
            for (uint64_t r = 0; r < rows; r++) {
                double sum = 0.0;
                for (uint64_t c = 0; c < cols; c++) sum += fabs((double)w[r * cols + c]);
                scales[r] = (float)(sum / (double)cols);
            }
        }
    }
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++)
            trits[r * cols + c] = trit(w[r * cols + c], trlc_ternary_scale_at(params, scales, rows, cols, r, c));
    return 0;
}

/* ==================================================================== bcq */

#define BCQ_ITERS 4 /* alternating rounds per added plane; each round can only lower the error */

/* Solve the k x k system g a = h (Gaussian elimination, partial pivoting, in
 * place). -1 if it is (numerically) singular: planes that are equal or opposite. */
static int solve(int k, double g[4][4], double h[4], double *a) {
    double scale = 0.0;
    for (int i = 0; i < k; i++) scale = fmax(scale, fabs(g[i][i]));
    for (int c = 0; c < k; c++) {
        int piv = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(g[r][c]) > fabs(g[piv][c])) piv = r;
        if (!(fabs(g[piv][c]) > 1e-9 * scale)) return -1;
        if (piv != c) {
            for (int j = 0; j < k; j++) {
                double t = g[c][j];
                g[c][j] = g[piv][j], g[piv][j] = t;
            }
            double t = h[c];
            h[c] = h[piv], h[piv] = t;
        }
        for (int r = c + 1; r < k; r++) {
            double f = g[r][c] / g[c][c];
            for (int j = c; j < k; j++) g[r][j] -= f * g[c][j];
            h[r] -= f * h[c];
        }
    }
    for (int c = k - 1; c >= 0; c--) {
        double s = h[c];
        for (int j = c + 1; j < k; j++) s -= g[c][j] * a[j];
        a[c] = s / g[c][c];
    }
    return 0;
}

/* Given the scales, the best sign combination for each column by trying all
 * 2^k; on a tie the combination with more +1 in the later planes wins (for one
 * plane: sign(0) = +1, as in the greedy step). Returns the squared error. */
static double pick_signs(const float *w, const float *d, int n, int k, const double *a, int8_t *b, int stride) {
    double v[16];
    for (int m = 0; m < (1 << k); m++) {
        double s = 0.0;
        for (int i = 0; i < k; i++) s += (m >> i & 1) ? a[i] : -a[i];
        v[m] = s;
    }
    double err = 0.0;
    for (int c = 0; c < n; c++) {
        int best = 0;
        double be = fabs((double)w[c] - v[0]);
        for (int m = 1; m < (1 << k); m++) {
            double e = fabs((double)w[c] - v[m]);
            if (e <= be) be = e, best = m;
        }
        for (int i = 0; i < k; i++) b[i * stride + c] = (best >> i & 1) ? 1 : -1;
        err += (d ? (double)d[c] : 1.0) * be * be;
    }
    return err;
}

static double sq_error(const float *w, const float *d, int n, int k, const double *a, const int8_t *b, int stride) {
    double err = 0.0;
    for (int c = 0; c < n; c++) {
        double s = 0.0;
        for (int i = 0; i < k; i++) s += a[i] * b[i * stride + c];
        double e = (double)w[c] - s;
        err += (d ? (double)d[c] : 1.0) * e * e;
    }
    return err;
}

/* Alternating least squares on k planes: scales by least squares given the
 * signs, signs by exhaustive search given the scales. Never raises the error. */
static double refine(const float *w, const float *d, int n, int k, double *a, int8_t *b, int stride) {
    double err = sq_error(w, d, n, k, a, b, stride);
    for (int it = 0; it < BCQ_ITERS; it++) {
        double g[4][4] = {{0}}, h[4] = {0}, na[4];
        for (int c = 0; c < n; c++) {
            const double dc = d ? (double)d[c] : 1.0;
            for (int i = 0; i < k; i++) {
                h[i] += dc * ((double)w[c] * b[i * stride + c]);
                for (int j = 0; j < k; j++) g[i][j] += dc * (double)(b[i * stride + c] * b[j * stride + c]);
            }
        }
        if (solve(k, g, h, na) == 0) {
            double e = sq_error(w, d, n, k, na, b, stride);
            if (e <= err) memcpy(a, na, sizeof(double) * (size_t)k), err = e;
        }
        double e = pick_signs(w, d, n, k, a, b, stride);
        if (!(e < err * (1.0 - 1e-12))) {
            err = e;
            break;
        }
        err = e;
    }
    return err;
}

/* The power of two nearest to a > 0 (ties up), within the normal f16 range:
 * a shift-and-add kernel needs a plain exponent. */
static double nearest_pow2(double a) {
    if (!(a > 0.0)) return ldexp(1.0, -14);
    int e;
    double m = frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
    if (m >= 0.75) e++;
    e -= 1;
    if (e < -14) e = -14;
    if (e > 15) e = 15;
    return ldexp(1.0, e);
}

int trlc_bcq_quantize_row(const float *w, uint64_t cols, const trl_enc_params *p, int8_t *signs, float *scales,
                          float *deq) {
    return trlc_bcq_quantize_row_weighted(w, NULL, cols, p, signs, scales, deq);
}

int trlc_bcq_quantize_row_weighted(const float *wrow, const float *drow, uint64_t cols, const trl_enc_params *p,
                                   int8_t *signs, float *scales, float *deq) {
    const float *w = wrow;
    if (!w || !signs || !scales || !p || p->bits < 1 || p->bits > 4 || p->group < 1 || !cols) return -1;
    const int k = p->bits;
    const uint64_t g = (uint64_t)p->group, ng = (cols + g - 1) / g;
    float *r = malloc((size_t)g * sizeof *r);
    int8_t *b = malloc((size_t)g * (size_t)k);
    if (!r || !b) {
        free(r);
        free(b);
        return -1;
    }
    for (uint64_t gi = 0; gi < ng; gi++) {
        const uint64_t c0 = gi * g;
        const int n = (int)(cols - c0 < g ? cols - c0 : g);
        const float *x = w + c0;
        const float *d = drow ? drow + c0 : NULL;
        if (d) { /* a group whose weights are all 0 is fitted unweighted */
            double dsum = 0.0;
            for (int c = 0; c < n; c++) dsum += d[c];
            if (!(dsum > 0.0)) d = NULL;
        }
        double a[4] = {0};
        /* planes one at a time: the greedy plane on the residual, then refine
         * all planes so far; k+1 planes start from k's answer, so the error
         * falls with every added bit */
        for (int i = 0; i < k; i++) {
            for (int c = 0; c < n; c++) {
                double s = 0.0;
                for (int j = 0; j < i; j++) s += a[j] * b[j * n + c];
                r[c] = (float)((double)x[c] - s);
            }
            double sum = 0.0, dsum = 0.0;
            for (int c = 0; c < n; c++) {
                b[i * n + c] = r[c] >= 0.0f ? 1 : -1;
                const double dc = d ? (double)d[c] : 1.0;
                sum += dc * fabs((double)r[c]);
                dsum += dc;
            }
            a[i] = sum / dsum;
            refine(x, d, n, i + 1, a, b, n);
        }
        /* the scales as stored (f16, or powers of two), positive (a sign
         * belongs to the plane), then the signs that suit them best */
        for (int i = 0; i < k; i++) {
            double v = fabs(a[i]);
            if (v > 65504.0) v = 65504.0; /* the largest half */
            a[i] = p->pow2 ? nearest_pow2(v) : (double)trl_f16_to_f32(trl_f32_to_f16((float)v));
        }
        pick_signs(x, d, n, k, a, b, n);
        for (int i = 0; i < k; i++) {
            scales[gi * (uint64_t)k + (uint64_t)i] = (float)a[i];
            memcpy(signs + (uint64_t)i * cols + c0, b + (size_t)i * (size_t)n, (size_t)n);
        }
        if (deq)
            for (int c = 0; c < n; c++) {
                float s = 0.0f;
                for (int i = 0; i < k; i++) s += (float)a[i] * (float)b[i * n + c];
                deq[c0 + (uint64_t)c] = s;
            }
    }
    free(r);
    free(b);
    return 0;
}
