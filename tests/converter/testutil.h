/* testutil.h - small helpers for the converter tests: checks, temp dirs, files. */
#ifndef TRLC_TESTUTIL_H
#define TRLC_TESTUTIL_H

#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_fail = 0, g_checks = 0;

#define CHECK(cond)                                                                                                \
    do {                                                                                                           \
        g_checks++;                                                                                                \
        if (!(cond)) {                                                                                             \
            g_fail++;                                                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                               \
        }                                                                                                          \
    } while (0)

/* err must contain every one of the NULL-terminated substrings */
#define CHECK_ERR(err, ...) check_err_(__FILE__, __LINE__, err, __VA_ARGS__, (const char *)NULL)
static inline void check_err_(const char *file, int line, const char *err, ...) {
    va_list ap;
    va_start(ap, err);
    g_checks++;
    for (const char *s; (s = va_arg(ap, const char *));)
        if (!strstr(err, s)) {
            g_fail++;
            fprintf(stderr, "%s:%d: error message \"%s\" lacks \"%s\"\n", file, line, err, s);
        }
    va_end(ap);
}

static inline int test_done(const char *name) {
    if (g_fail) fprintf(stderr, "%s: %d of %d checks failed\n", name, g_fail, g_checks);
    else printf("%s: all %d checks passed\n", name, g_checks);
    return g_fail ? 1 : 0;
}

static inline void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

static inline void *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) sz = 0;
    buf[sz] = 0;
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static inline int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static inline void rm_tree(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static inline char *make_tmpdir(const char *tag) {
    const char *base = getenv("TMPDIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/trlc-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(p)) {
        fprintf(stderr, "cannot create a temp dir\n");
        exit(2);
    }
    return p;
}

static inline char *join(const char *a, const char *b) {
    char *p = malloc(strlen(a) + strlen(b) + 2);
    sprintf(p, "%s/%s", a, b);
    return p;
}

static inline int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Replace the first occurrence of `from` in a file by `to`. Returns 0 if found. */
static inline int edit_file(const char *path, const char *from, const char *to) {
    size_t n;
    char *s = read_file(path, &n);
    if (!s) return -1;
    char *at = strstr(s, from);
    if (!at) {
        free(s);
        return -1;
    }
    size_t a = (size_t)(at - s), fl = strlen(from), tl = strlen(to);
    char *o = malloc(n - fl + tl + 1);
    memcpy(o, s, a);
    memcpy(o + a, to, tl);
    memcpy(o + a + tl, at + fl, n - a - fl);
    write_file(path, o, n - fl + tl);
    free(o);
    free(s);
    return 0;
}

/* ------------------------------------------------------ safetensors files */

typedef struct st_builder {
    char header[65536];
    size_t hlen;
    unsigned char *data;
    size_t dlen;
} st_builder;

static inline void st_init(st_builder *b) {
    memset(b, 0, sizeof *b);
    b->hlen = (size_t)sprintf(b->header, "{\"__metadata__\":{\"format\":\"pt\"}");
}

/* Append a tensor: dtype name, shape, raw little-endian bytes. */
static inline void st_add(st_builder *b, const char *name, const char *dtype, int nd, const long long *shape,
                   const void *bytes, size_t n) {
    char shp[128] = "";
    size_t k = 0;
    for (int i = 0; i < nd; i++) k += (size_t)sprintf(shp + k, "%s%lld", i ? "," : "", shape[i]);
    b->hlen += (size_t)sprintf(b->header + b->hlen, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                               name, dtype, shp, b->dlen, b->dlen + n);
    b->data = realloc(b->data, b->dlen + n + 1);
    if (n) memcpy(b->data + b->dlen, bytes, n);
    b->dlen += n;
}

static inline void st_write(st_builder *b, const char *path) {
    b->header[b->hlen++] = '}';
    /* pad the header to 8 bytes like the reference writer does */
    while ((b->hlen) % 8) b->header[b->hlen++] = ' ';
    size_t total = 8 + b->hlen + b->dlen;
    unsigned char *f = malloc(total);
    for (int i = 0; i < 8; i++) f[i] = (unsigned char)((unsigned long long)b->hlen >> (8 * i));
    memcpy(f + 8, b->header, b->hlen);
    if (b->dlen) memcpy(f + 8 + b->hlen, b->data, b->dlen);
    write_file(path, f, total);
    free(f);
    free(b->data);
    b->data = NULL;
}

/* A raw file: 8-byte length + header text + data, no checks (for the bad-input tests). */
static inline void st_write_raw(const char *path, unsigned long long hlen, const char *header, const void *data,
                         size_t dlen) {
    size_t hl = strlen(header);
    unsigned char *f = malloc(8 + hl + dlen);
    for (int i = 0; i < 8; i++) f[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(f + 8, header, hl);
    if (dlen) memcpy(f + 8 + hl, data, dlen);
    write_file(path, f, 8 + hl + dlen);
    free(f);
}

/* Deterministic pseudo-random floats in [-1, 1). */
static inline float rnd(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

#endif
