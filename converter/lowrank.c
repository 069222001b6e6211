/* lowrank.c - truncated SVD for trillium-convert --lowrank / --residual-rank
 * (DESIGN.md "Numerics": W = U S V^T -> U_r S_r^(1/2), S_r^(1/2) V_r^T).
 *
 * LAPACK's divide-and-conquer SVD (dgesdd) in double precision, through
 * LAPACKE. Built only where CMake found LAPACKE (Debian: liblapacke-dev);
 * elsewhere trlc_lowrank fails with a message saying so. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trlc_internal.h"

#ifdef TRLC_HAVE_LAPACK
#include <lapacke.h>
#include <limits.h>

int trlc_have_lapack(void) { return 1; }

int trlc_lowrank(const float *w, uint64_t rows, uint64_t cols, uint64_t rank, float *vt, float *ut, double *sigma,
                 char *err, size_t errlen) {
    const uint64_t kmin = rows < cols ? rows : cols;
    if (!w || !rows || !cols || rank > kmin || (rank && (!vt || !ut)))
        return trlc_fail(err, errlen, "low-rank: bad arguments (rank %llu of a %llu x %llu matrix)",
                         (unsigned long long)rank, (unsigned long long)rows, (unsigned long long)cols);
    uint64_t mn;
    if (rows > INT_MAX || cols > INT_MAX || trlc_mul_u64(rows, cols, &mn) || mn > SIZE_MAX / sizeof(double) / 2)
        return trlc_fail(err, errlen, "low-rank: a %llu x %llu matrix is too large for LAPACK",
                         (unsigned long long)rows, (unsigned long long)cols);
    /* The row-major (rows, cols) W is the column-major (cols, rows) W^T, so
     * LAPACK factorises W^T = V S U^T with no transposing copy: its "U" is
     * our V (cols x kmin, columns contiguous) and its "VT" our U^T. */
    const lapack_int m = (lapack_int)cols, n = (lapack_int)rows, k = (lapack_int)kmin;
    double *a = malloc((size_t)mn * sizeof *a), *s = malloc((size_t)kmin * sizeof *s);
    double *v = malloc((size_t)cols * (size_t)kmin * sizeof *v), *u_t = malloc((size_t)kmin * (size_t)rows * sizeof *u_t);
    int rc = -1;
    if (!a || !s || !v || !u_t) {
        trlc_fail(err, errlen, "low-rank: out of memory for the SVD of a %llu x %llu matrix", (unsigned long long)rows,
                  (unsigned long long)cols);
        goto done;
    }
    for (uint64_t i = 0; i < mn; i++) a[i] = (double)w[i];
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', m, n, a, m, s, v, m, u_t, k);
    if (info != 0) {
        trlc_fail(err, errlen, "low-rank: LAPACK dgesdd failed (info %d) on a %llu x %llu matrix", (int)info,
                  (unsigned long long)rows, (unsigned long long)cols);
        goto done;
    }
    if (sigma) memcpy(sigma, s, (size_t)kmin * sizeof *s);
    for (uint64_t i = 0; i < rank; i++) {
        const double *vi = v + i * cols; /* column i of V */
        /* a singular vector's sign is arbitrary: make V's largest entry
         * positive so every LAPACK gives the same factors */
        uint64_t big = 0;
        for (uint64_t c = 1; c < cols; c++)
            if (fabs(vi[c]) > fabs(vi[big])) big = c;
        double f = sqrt(s[i]) * (vi[big] < 0.0 ? -1.0 : 1.0);
        for (uint64_t c = 0; c < cols; c++) vt[i * cols + c] = (float)(f * vi[c]);
        for (uint64_t r = 0; r < rows; r++) ut[i * rows + r] = (float)(f * u_t[i + r * kmin]);
    }
    rc = 0;
done:
    free(a);
    free(s);
    free(v);
    free(u_t);
    return rc;
}

#else

int trlc_have_lapack(void) { return 0; }

int trlc_lowrank(const float *w, uint64_t rows, uint64_t cols, uint64_t rank, float *vt, float *ut, double *sigma,
                 char *err, size_t errlen) {
    (void)w, (void)rows, (void)cols, (void)rank, (void)vt, (void)ut, (void)sigma;
    return trlc_fail(err, errlen,
                     "low-rank factorisation needs LAPACK: this trillium-convert was built without LAPACKE "
                     "(install liblapacke-dev and rebuild)");
}

#endif
