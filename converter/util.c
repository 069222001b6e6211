/* util.c - file mapping, dtypes and small helpers for the converter library. */
#define _DEFAULT_SOURCE /* madvise */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trlc_internal.h"

/* ------------------------------------------------------------------ errors */

int trlc_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------------- files */

int trlc_file_map(const char *path, trlc_file *f, char *err, size_t errlen) {
    f->data = NULL;
    f->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return trlc_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return trlc_fail(err, errlen, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return trlc_fail(err, errlen, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return trlc_fail(err, errlen, "%s: file too large for this platform", path);
    }
    size_t size = (size_t)st.st_size;
    if (size) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return trlc_fail(err, errlen, "%s: cannot map %zu bytes: %s", path, size, strerror(e));
        }
        f->data = m;
    }
    f->size = size;
    close(fd);
    return 0;
}

void trlc_file_release(const trlc_file *f, const void *p, size_t n) {
    if (!f || !f->data || !p || !n) return;
    uintptr_t b = (uintptr_t)f->data, e = b + f->size, s = (uintptr_t)p;
    if (s < b || s >= e || n > e - s) return; /* not in this mapping */
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) return;
    uintptr_t lo = (s + (uintptr_t)pg - 1) / (uintptr_t)pg * (uintptr_t)pg, hi = (s + n) / (uintptr_t)pg * (uintptr_t)pg;
    /* a read-only private file mapping: dropped pages are read again from the file if touched */
    if (lo < hi) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void trlc_file_unmap(trlc_file *f) {
    if (f && f->data) munmap((void *)f->data, f->size);
    if (f) f->data = NULL, f->size = 0;
}

int trlc_file_read(const char *path, char **data, size_t *size, char *err, size_t errlen) {
    *data = NULL;
    *size = 0;
    trlc_file f;
    if (trlc_file_map(path, &f, err, errlen)) return -1;
    char *buf = malloc(f.size + 1);
    if (!buf) {
        trlc_file_unmap(&f);
        return trlc_fail(err, errlen, "%s: out of memory reading %zu bytes", path, f.size);
    }
    if (f.size) memcpy(buf, f.data, f.size);
    buf[f.size] = 0;
    *data = buf;
    *size = f.size;
    trlc_file_unmap(&f);
    return 0;
}

char *trlc_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    int slash = a && dir[a - 1] != '/';
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a++] = '/';
    memcpy(p + a, name, b + 1);
    return p;
}

int trlc_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int trlc_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int trlc_plain_filename(const char *s) {
    if (!s || !*s || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (; *s; s++)
        if (*s == '/' || *s == '\\' || (unsigned char)*s < 0x20) return 0;
    return 1;
}

/* ------------------------------------------------------------------ dtypes */

static const struct {
    const char *name;
    size_t size;
    uint32_t block, block_bytes;
} DTYPES[TRLC_DT_COUNT] = {
    [TRLC_DT_F32] = {"F32", 4, 1, 4},       [TRLC_DT_F16] = {"F16", 2, 1, 2},     [TRLC_DT_BF16] = {"BF16", 2, 1, 2},
    [TRLC_DT_F64] = {"F64", 8, 1, 8},       [TRLC_DT_I64] = {"I64", 8, 1, 8},     [TRLC_DT_I32] = {"I32", 4, 1, 4},
    [TRLC_DT_I16] = {"I16", 2, 1, 2},       [TRLC_DT_I8] = {"I8", 1, 1, 1},       [TRLC_DT_U64] = {"U64", 8, 1, 8},
    [TRLC_DT_U32] = {"U32", 4, 1, 4},       [TRLC_DT_U16] = {"U16", 2, 1, 2},     [TRLC_DT_U8] = {"U8", 1, 1, 1},
    [TRLC_DT_BOOL] = {"BOOL", 1, 1, 1},     [TRLC_DT_F8_E4M3] = {"F8_E4M3", 1, 1, 1},
    [TRLC_DT_F8_E5M2] = {"F8_E5M2", 1, 1, 1},
    [TRLC_DT_Q8_0] = {"Q8_0", 0, 32, 34},   [TRLC_DT_Q4_0] = {"Q4_0", 0, 32, 18},
    [TRLC_DT_TQ1_0] = {"TQ1_0", 0, 256, 54}, [TRLC_DT_TQ2_0] = {"TQ2_0", 0, 256, 66},
};

const char *trlc_dtype_name(trlc_dtype t) { return (unsigned)t < TRLC_DT_COUNT ? DTYPES[t].name : "?"; }
size_t trlc_dtype_size(trlc_dtype t) { return (unsigned)t < TRLC_DT_COUNT ? DTYPES[t].size : 0; }

void trlc_dtype_block(trlc_dtype t, uint32_t *block, uint32_t *block_bytes) {
    int ok = (unsigned)t < TRLC_DT_COUNT;
    if (block) *block = ok ? DTYPES[t].block : 0;
    if (block_bytes) *block_bytes = ok ? DTYPES[t].block_bytes : 0;
}

uint64_t trlc_dtype_row_bytes(trlc_dtype t, uint64_t cols) {
    if ((unsigned)t >= TRLC_DT_COUNT || cols % DTYPES[t].block) return 0;
    uint64_t r;
    return trlc_mul_u64(cols / DTYPES[t].block, DTYPES[t].block_bytes, &r) ? 0 : r;
}

static float half_at(const uint8_t *p) { return trl_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* ggml's dequantize_row_{q8_0,q4_0,tq1_0,tq2_0}, one block of each. */
static void block_to_f32(trlc_dtype t, const uint8_t *b, float *y) {
    switch (t) {
    case TRLC_DT_Q8_0: {
        float d = half_at(b);
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
        break;
    }
    case TRLC_DT_Q4_0: {
        float d = half_at(b);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        break;
    }
    case TRLC_DT_TQ2_0: {
        /* byte j of each 32-byte half holds columns j, j+32, j+64, j+96 of its 128 (bits 0-1 first) */
        float d = half_at(b + 64);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++) y[128 * h + 32 * l + m] = (float)(((b[32 * h + m] >> (2 * l)) & 3) - 1) * d;
        break;
    }
    case TRLC_DT_TQ1_0: {
        /* each byte is a base-3 number scaled to 256/243 (rounded up): multiplying by 3^n (mod 256)
         * brings trit n to the top, and (q * 3) >> 8 reads it without a division */
        static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
        float d = half_at(b + 52);
        int at = 0;
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 32; m++) y[at++] = (float)((((uint8_t)(b[m] * pow3[n]) * 3) >> 8) - 1) * d;
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 16; m++) y[at++] = (float)((((uint8_t)(b[32 + m] * pow3[n]) * 3) >> 8) - 1) * d;
        for (int n = 0; n < 4; n++)
            for (int j = 0; j < 4; j++) y[at++] = (float)((((uint8_t)(b[48 + j] * pow3[n]) * 3) >> 8) - 1) * d;
        break;
    }
    default: break;
    }
}

int trlc_dtype_to_f32(trlc_dtype t, const void *src, size_t n, float *dst) {
    const uint8_t *p = src;
    switch (t) {
    case TRLC_DT_F32:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            memcpy(&dst[i], &u, 4);
        }
        return 0;
    case TRLC_DT_F16:
        for (size_t i = 0; i < n; i++) dst[i] = trl_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case TRLC_DT_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = trl_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case TRLC_DT_Q8_0:
    case TRLC_DT_Q4_0:
    case TRLC_DT_TQ1_0:
    case TRLC_DT_TQ2_0: {
        size_t bk = DTYPES[t].block, bb = DTYPES[t].block_bytes;
        if (n % bk) return -1;
        for (size_t i = 0; i < n / bk; i++) block_to_f32(t, p + i * bb, dst + i * bk);
        return 0;
    }
    default:
        return -1;
    }
}

/* ------------------------------------------------------------------ floats */

void trlc_format_float(float v, char *buf, size_t cap) {
    if (!isfinite(v)) {
        snprintf(buf, cap, "null");
        return;
    }
    if (v == floorf(v) && fabsf(v) < 1e15f) {
        snprintf(buf, cap, "%.0f", (double)v); /* 10000, not 1e+04 */
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
}

/* ----------------------------------------------------------------- buffers */

static void buf_reserve(trlc_buf *b, size_t extra) {
    if (b->oom) return;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return;
    }
    b->data = d;
    b->cap = cap;
}

void trlc_buf_put(trlc_buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    if (b->oom) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void trlc_buf_puts(trlc_buf *b, const char *s) { trlc_buf_put(b, s, strlen(s)); }

void trlc_buf_printf(trlc_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    buf_reserve(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) k = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) k = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) k = 4, cp = c & 0x07;
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return k;
}

void trlc_buf_json_str(trlc_buf *b, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    trlc_buf_put(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            trlc_buf_put(b, e, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': trlc_buf_puts(b, "\\n"); break;
            case '\r': trlc_buf_puts(b, "\\r"); break;
            case '\t': trlc_buf_puts(b, "\\t"); break;
            case '\b': trlc_buf_puts(b, "\\b"); break;
            case '\f': trlc_buf_puts(b, "\\f"); break;
            default: trlc_buf_printf(b, "\\u%04x", c); break;
            }
            i++;
        } else if (c < 0x80) {
            trlc_buf_put(b, (const char *)s + i, 1);
            i++;
        } else {
            size_t k = utf8_len(s + i, n - i);
            if (k) {
                trlc_buf_put(b, (const char *)s + i, k);
                i += k;
            } else {
                trlc_buf_puts(b, "\\ufffd");
                i++;
            }
        }
    }
    trlc_buf_put(b, "\"", 1);
}

void trlc_buf_free(trlc_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
