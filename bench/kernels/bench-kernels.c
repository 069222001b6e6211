/* bench-kernels.c - linear-layer kernel benchmark: matvec (1 token) and prefill
 * matmul (64 tokens) for f32, q8_0, ternary t2 (int8 activations, every
 * SIMD128 design in wasm; float activations), binary-coded bcq (k=2, g=128,
 * power-of-two scales) and a low-rank f16 layer against the dense f16 matvec,
 * on LLaMA-7B-like shapes, plus a
 * memcpy line as the bandwidth ceiling. One JSON object per case on stdout
 * (for scripts that build tables), a readable table on stderr.
 *
 *   bench-kernels [--quick] [--shapes 2048x2048,4096x4096] [--ntok 1,64] [--filter t2] [--threads N]
 *                 [--min-time S]   (seconds of timed calls per case, default 0.4: more on a busy machine)
 *
 * A case times prepare + matmul over all rows (what trl_matmul does), best of
 * N calls after one warm-up; with --threads N (the -mt build in wasm) the
 * matmul is split by 8-row blocks over N threads. Shapes are rows x cols
 * (out x in). The same C runs natively, under Node (bench-kernels.js) and in
 * a browser (bench-kernels-web*.js, driven by bench/kernels/browser.mjs). */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kernels/kernels.h"
#include "threads.h"
#include "kernels/ternary.h"
#include "trillium.h"

#ifdef __EMSCRIPTEN__
#define PLATFORM "wasm"
#else
#define PLATFORM "native"
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)rng;
}
static float frand(void) { return (float)(urand() & 0xFFFFFF) / 8388608.0f - 1.0f; }

static int quick = 0;
static trl_pool *pool = NULL; /* --threads N: the matmul split by 8-row blocks, as the context does */
static int nthreads = 1;

typedef struct mm_arg {
    const trl_kernel_ops *k;
    const trl_weight *w;
    const trl_act *act;
    float *y;
} mm_arg;

static void mm_part(void *v, int ith, int nth) {
    const mm_arg *a = v;
    const int blocks = (a->w->rows + 7) / 8;
    const int r0 = blocks * ith / nth * 8, r1e = blocks * (ith + 1) / nth * 8;
    const int r1 = r1e < a->w->rows ? r1e : a->w->rows;
    if (r0 < r1) a->k->matmul(a->w, a->act, a->y, a->w->rows, r0, r1);
}
static double min_time = 0.4; /* seconds of timed calls per case (at least 3 calls) */

typedef struct result {
    double best_s, prep_s; /* prepare + matmul; prepare alone */
    int reps;
} result;

/* Best time of prepare + matmul(all rows) for one kernel table. */
static result time_kernel(const trl_kernel_ops *k, const trl_weight *w, const float *x, int ntok, float *y,
                          void *scratch) {
    result r = {1e30, 1e30, 0};
    double total = 0;
    for (int it = -1; it < 2000; it++) {
        double t0 = now_s();
        trl_act act;
        k->prepare(w, x, ntok, scratch, &act);
        double t1 = now_s();
        if (pool) {
            mm_arg a = {k, w, &act, y};
            trl_pool_run(pool, mm_part, &a);
        } else {
            k->matmul(w, &act, y, w->rows, 0, w->rows);
        }
        double dt = now_s() - t0;
        if (it < 0) continue; /* warm-up */
        if (dt < r.best_s) r.best_s = dt;
        if (t1 - t0 < r.prep_s) r.prep_s = t1 - t0;
        total += dt;
        r.reps++;
        if (r.reps >= 3 && total >= min_time) break;
        if (quick && r.reps >= 2) break;
    }
    return r;
}

static void report(const char *enc, const char *act, const char *kernel, int rows, int cols, int ntok,
                   size_t wbytes, result r) {
    double gbps = (double)wbytes / r.best_s / 1e9;
    double gops = 2.0 * rows * cols * ntok / r.best_s / 1e9;
    printf("{\"bench\":\"kernels\",\"platform\":\"%s\",\"enc\":\"%s\",\"act\":\"%s\",\"kernel\":\"%s\",\"rows\":%d,"
           "\"cols\":%d,\"ntok\":%d,\"ms\":%.4f,\"prepare_ms\":%.4f,\"weight_bytes\":%zu,\"weight_gbps\":%.3f,"
           "\"gops\":%.3f,\"reps\":%d,\"threads\":%d}\n",
           PLATFORM, enc, act, kernel, rows, cols, ntok, r.best_s * 1e3, r.prep_s * 1e3, wbytes, gbps, gops, r.reps,
           nthreads);
    fflush(stdout);
    fprintf(stderr, "%-6s %-5s %-16s %6dx%-6d %4d %10.3f ms %8.2f GB/s %8.2f GOP/s  (prepare %.3f ms)\n", enc, act,
            kernel, rows, cols, ntok, r.best_s * 1e3, gbps, gops, r.prep_s * 1e3);
}

static void bench_memcpy(void) {
    const size_t n = (size_t)256 << 20;
    uint8_t *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        fprintf(stderr, "memcpy: out of memory\n");
        free(a), free(b);
        return;
    }
    memset(a, 1, n), memset(b, 2, n);
    double best = 1e30;
    for (int it = 0; it < (quick ? 2 : 5); it++) {
        double t0 = now_s();
        memcpy(b, a, n);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
        a[it] = b[n - 1 - it]; /* keep both live */
    }
    /* GB/s of bytes copied (each byte read once and written once) */
    printf("{\"bench\":\"kernels\",\"platform\":\"%s\",\"enc\":\"memcpy\",\"bytes\":%zu,\"ms\":%.4f,\"gbps\":%.3f,"
           "\"threads\":%d}\n",
           PLATFORM, n, best * 1e3, (double)n / best / 1e9, nthreads);
    fprintf(stderr, "memcpy %zu MiB: %.3f ms, %.2f GB/s copied\n", n >> 20, best * 1e3, (double)n / best / 1e9);
    free(a), free(b);
}

static int want(const char *filter, const char *s) { return !filter || strstr(s, filter); }


static uint8_t *random_f16(int rows, int cols) {
    uint8_t *d = malloc((size_t)rows * cols * 2);
    float *row = malloc(sizeof(float) * cols);
    if (!d || !row) {
        free(d), free(row);
        return NULL;
    }
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) row[c] = frand();
        trl_encode_row(TRL_ENC_F16, row, (uint64_t)cols, d + (size_t)r * cols * 2);
    }
    free(row);
    return d;
}

static void f16_dense_and_lowrank(int rows, int cols, const float *x, float *y, void *scratch) {
    uint8_t *dense = random_f16(rows, cols);
    if (!dense) return;
    trl_weight w;
    memset(&w, 0, sizeof w);
    w.enc = TRL_ENC_F16, w.rows = rows, w.cols = cols, w.row_bytes = (size_t)cols * 2, w.data = dense;
    const trl_kernel_ops *k = trl_kernels_best(&w);
    result rd = time_kernel(k, &w, x, 1, y, scratch);
    report("f16", "f32", k->name, rows, cols, 1, (size_t)rows * cols * 2, rd);
    free(dense);
    if (nthreads > 1) return; /* the low-rank layer below runs on one thread: no row for N threads */
    const int ranks[2] = {rows < cols ? rows / 8 : cols / 8, rows < cols ? rows / 4 : cols / 4};
    for (int ri = 0; ri < 2; ri++) {
        const int r = ranks[ri];
        uint8_t *vd = random_f16(r, cols), *ud = random_f16(r, rows);
        float *t = malloc(sizeof(float) * r);
        if (!vd || !ud || !t) {
            free(vd), free(ud), free(t);
            continue;
        }
        trl_weight v, u;
        memset(&v, 0, sizeof v);
        memset(&u, 0, sizeof u);
        v.enc = u.enc = TRL_ENC_F16;
        v.rows = u.rows = r, v.cols = cols, u.cols = rows;
        v.row_bytes = (size_t)cols * 2, u.row_bytes = (size_t)rows * 2, v.data = vd, u.data = ud;
        const trl_kernel_ops *kv = trl_kernels_best(&v);
        result best = {1e30, 0, 0};
        double total = 0;
        for (int it = -1; it < 2000; it++) {
            double t0 = now_s();
            trl_act act;
            kv->prepare(&v, x, 1, scratch, &act);
            kv->matmul(&v, &act, t, r, 0, r);
            memset(y, 0, sizeof(float) * rows);
            trl_lowrank_accumulate(&u, t, 1, y, rows, 0, (rows + TRL_KCHUNK - 1) / TRL_KCHUNK);
            double dt = now_s() - t0;
            if (it < 0) continue;
            if (dt < best.best_s) best.best_s = dt;
            total += dt;
            best.reps++;
            if (best.reps >= 3 && total >= min_time) break;
            if (quick && best.reps >= 2) break;
        }
        char name[32];
        snprintf(name, sizeof name, "lowrank-r%d", r);
        report("f16", "f32", name, rows, cols, 1, (size_t)r * (rows + cols) * 2, best);
        double ideal = (double)r * (rows + cols) / ((double)rows * cols);
        fprintf(stderr, "  rank %d: %.3f of the dense f16 time; ideal %.3f; ratio to ideal %.2f\n", r,
                best.best_s / rd.best_s, ideal, best.best_s / rd.best_s / ideal);
        free(vd), free(ud), free(t);
    }
}

static void bench_shape(int rows, int cols, const int *ntoks, int nn, const char *filter) {
    float *x = malloc(sizeof(float) * (size_t)TRL_KMAX_TOKENS * cols);
    float *y = malloc(sizeof(float) * (size_t)TRL_KMAX_TOKENS * rows);
    void *scratch = malloc(trl_act_bytes_bound(cols, TRL_KMAX_TOKENS));
    for (size_t i = 0; i < (size_t)TRL_KMAX_TOKENS * cols; i++) x[i] = frand();

    /* dense: f32 and q8_0 */
    for (int e = 0; e < 2; e++) {
        trl_encoding enc = e ? TRL_ENC_Q8_0 : TRL_ENC_F32;
        if (!want(filter, trl_encoding_name(enc))) continue;
        size_t rb = trl_encoding_row_bytes(enc, (uint64_t)cols), bytes = rb * (size_t)rows;
        uint8_t *data = malloc(bytes);
        float *row = malloc(sizeof(float) * cols);
        if (!data || !row) {
            fprintf(stderr, "%s %dx%d: out of memory\n", trl_encoding_name(enc), rows, cols);
            free(data), free(row);
            continue;
        }
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) row[c] = frand();
            trl_encode_row(enc, row, (uint64_t)cols, data + (size_t)r * rb);
        }
        trl_weight w;
        memset(&w, 0, sizeof w);
        w.enc = enc, w.rows = rows, w.cols = cols, w.row_bytes = rb, w.data = data;
        const trl_kernel_ops *k = trl_kernels_best(&w);
        for (int ni = 0; ni < nn; ni++)
            report(trl_encoding_name(enc), "f32", k->name, rows, cols, ntoks[ni], bytes,
                   time_kernel(k, &w, x, ntoks[ni], y, scratch));
        free(data), free(row);
    }

    /* binary-coded: k=2 bit planes, groups of g=128 columns, power-of-two f16 scales
     * (ShiftAddLLM's option), random signs */
    if (want(filter, "bcq")) {
        const trl_enc_params p = {2, 128, 1, 0, 0};
        size_t rb = trl_tensor_bytes(TRL_ENC_BCQ, &p, 1, (uint64_t)cols), bytes = rb * (size_t)rows;
        const int ng = (cols + p.group - 1) / p.group;
        uint8_t *data = rb ? malloc(bytes) : NULL;
        int8_t *signs = malloc((size_t)p.bits * cols);
        float *sc = malloc(sizeof(float) * (size_t)ng * p.bits);
        int ok = data && signs && sc;
        for (int r = 0; ok && r < rows; r++) {
            for (int i = 0; i < p.bits * cols; i++) signs[i] = urand() & 1 ? 1 : -1;
            for (int i = 0; i < ng * p.bits; i++) sc[i] = 1.0f / (float)(1 << (urand() % 8));
            ok = trl_bcq_pack_row(&p, signs, sc, (uint64_t)cols, data + rb * (size_t)r) == TRL_OK;
        }
        if (!ok) {
            fprintf(stderr, "bcq %dx%d: out of memory or bad parameters\n", rows, cols);
        } else {
            trl_weight w;
            memset(&w, 0, sizeof w);
            w.enc = TRL_ENC_BCQ, w.rows = rows, w.cols = cols, w.row_bytes = rb, w.data = data, w.params = p;
            const trl_kernel_ops *k = trl_kernels_best(&w);
            for (int ni = 0; ni < nn; ni++)
                report("bcq", "int8", k->name, rows, cols, ntoks[ni], bytes,
                       time_kernel(k, &w, x, ntoks[ni], y, scratch));
        }
        free(data), free(signs), free(sc);
    }

    /* low-rank: a rank-r layer (V [r, cols], U^T [r, rows], f16, as trillium-convert --lowrank
     * writes) against the dense f16 matvec of the same shape; one token. The ideal time fraction
     * is r (rows + cols) / (rows cols). */
    if (want(filter, "lowrank")) {
        f16_dense_and_lowrank(rows, cols, x, y, scratch);
    }

    /* ternary t2: valid codes only, one scale per row */
    if (want(filter, "t2")) {
        size_t rb = trl_encoding_row_bytes(TRL_ENC_T2, (uint64_t)cols), codes = rb * (size_t)rows;
        size_t bytes = codes + 4 * (size_t)rows;
        uint8_t *data = malloc(bytes);
        if (!data) {
            fprintf(stderr, "t2 %dx%d: out of memory\n", rows, cols);
        } else {
            uint8_t valid[81];
            for (int v = 0; v < 81; v++) /* the 81 bytes of four codes in {0, 1, 2} */
                valid[v] = (uint8_t)(v % 3 | (v / 3 % 3) << 2 | (v / 9 % 3) << 4 | (v / 27) << 6);
            for (size_t i = 0; i < codes; i++) data[i] = valid[urand() % 81];
            float *scales = (float *)(void *)(data + codes);
            for (int r = 0; r < rows; r++) scales[r] = 0.01f + 0.001f * frand();
            trl_weight w;
            memset(&w, 0, sizeof w);
            w.enc = TRL_ENC_T2, w.rows = rows, w.cols = cols, w.row_bytes = rb, w.data = data;
            w.params.scale_axis = TRL_SCALE_ROW, w.scales = scales, w.n_scales = rows;
            for (int mode = 1; mode >= 0; mode--) {
                w.act_int8 = mode;
                const char *act = mode ? "int8" : "f32";
                const trl_kernel_ops *ks[8];
                int nk = 0;
#ifdef __wasm_simd128__
                if (mode)
                    for (int v = 0; v < TRL_T2_SIMD_NVARIANTS; v++) ks[nk++] = trl_ternary_simd128_variant(&w, v);
                else
                    ks[nk++] = trl_kernels_best(&w);
#else
                ks[nk++] = trl_kernels_best(&w);
#endif
                for (int ki = 0; ki < nk; ki++)
                    for (int ni = 0; ni < nn; ni++)
                        report("t2", act, ks[ki]->name, rows, cols, ntoks[ni], bytes,
                               time_kernel(ks[ki], &w, x, ntoks[ni], y, scratch));
            }
            free(data);
        }
    }
    free(x), free(y), free(scratch);
}

int main(int argc, char **argv) {
    int shapes[16][2] = {{2048, 2048}, {4096, 4096}, {4096, 11008}, {11008, 4096}};
    int nshape = 4, ntoks[8] = {1, 64}, nn = 2;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1, min_time = 0.05;
        } else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) {
            nshape = 0;
            for (char *s = argv[++i]; *s && nshape < 16;) {
                char *end;
                shapes[nshape][0] = (int)strtol(s, &end, 10);
                if (*end != 'x') break;
                shapes[nshape][1] = (int)strtol(end + 1, &end, 10);
                nshape++;
                s = *end == ',' ? end + 1 : end;
            }
        } else if (!strcmp(argv[i], "--ntok") && i + 1 < argc) {
            nn = 0;
            for (char *s = argv[++i]; *s && nn < 8;) {
                char *end;
                int v = (int)strtol(s, &end, 10);
                if (end == s) break;
                if (v >= 1 && v <= TRL_KMAX_TOKENS) ntoks[nn++] = v;
                s = *end == ',' ? end + 1 : end;
            }
        } else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) {
            min_time = atof(argv[++i]);
            if (!(min_time > 0 && min_time <= 60)) {
                fprintf(stderr, "--min-time: seconds in (0, 60], got %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
            filter = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            int n = atoi(argv[++i]);
            if (n > 1) {
                if (!trl_threads_available()) {
                    fprintf(stderr, "--threads: this build has no threads (use the -mt build)\n");
                    return 2;
                }
                pool = trl_pool_init(malloc(trl_pool_bytes(n)), n);
                if (!pool) return 2;
                nthreads = n;
            }
        } else {
            fprintf(stderr, "usage: %s [--quick] [--shapes RxC,...] [--ntok N,...] [--filter f32|q8_0|t2|bcq|lowrank] [--threads N] [--min-time S]\n", argv[0]);
            return 2;
        }
    }
    fprintf(stderr, "%-6s %-5s %-16s %13s %4s %13s %13s %14s\n", "enc", "act", "kernel", "rows x cols", "ntok",
            "time/call", "weights", "2*r*c*ntok");
    bench_memcpy();
    for (int s = 0; s < nshape; s++) bench_shape(shapes[s][0], shapes[s][1], ntoks, nn, filter);
    return 0;
}
