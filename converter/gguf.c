/* gguf.c - GGUF v3 files (llama.cpp / ggml) as model sources.
 *
 * Layout (ggml's docs/gguf.md), little-endian:
 *
 *   "GGUF", u32 version (3), u64 n_tensors, u64 n_kv
 *   n_kv      x { string key, u32 value type, value }        string = u64 length, bytes
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset }
 *   zero padding to general.alignment (default 32), then the tensor data;
 *   offsets are relative to the data section and multiples of the alignment.
 *
 * Nothing in the file is trusted. Every count is compared with the bytes left
 * before a loop runs on it, every length before it is skipped, every tensor's
 * size is computed with overflow checks and its offset checked against the
 * data section; arrays grow as entries are actually read, so a size field
 * never sizes an allocation by itself. Messages name the file and the entry. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_blob.h"
#include "tokenizer_import.h"
#include "trlc_internal.h"

#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NAME 64 /* ggml's GGML_MAX_NAME, terminator included */

/* ------------------------------------------------------------ type tables */

static const char *const VALUE_TYPE_NAMES[TRLC_GGUF_TYPE_COUNT] = {
    "U8", "I8", "U16", "I16", "U32", "I32", "F32", "BOOL", "STRING", "ARRAY", "U64", "I64", "F64"};
static const uint8_t VALUE_SIZE[TRLC_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *trlc_gguf_type_name(uint32_t t) { return t < TRLC_GGUF_TYPE_COUNT ? VALUE_TYPE_NAMES[t] : "?"; }

/* ggml's type traits: name, weights per block, bytes per block. Gaps are
 * types ggml removed; a file using them (or anything past the table) is refused. */
static const struct {
    const char *name;
    uint32_t block, bytes;
} GGML_TYPES[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},     [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},     [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},
    [10] = {"Q2_K", 256, 84},   [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50}, [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},  [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},       [29] = {"IQ1_M", 256, 56},
    [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},  [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};
#define N_GGML_TYPES (sizeof GGML_TYPES / sizeof GGML_TYPES[0])

const char *trlc_ggml_type_name(uint32_t t) { return t < N_GGML_TYPES && GGML_TYPES[t].name ? GGML_TYPES[t].name : "?"; }

/* ------------------------------------------------------------- the reader */

typedef struct rd {
    const uint8_t *p;
    size_t size, pos;
    const char *name;
    char *err;
    size_t errlen;
} rd;

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Up to 48 bytes of s for a message: non-printable bytes as '?', "..." if cut. */
static void show(char *out, size_t cap, const char *s, size_t n) {
    size_t k = 0, lim = n > 48 ? 48 : n;
    for (size_t i = 0; i < lim && k + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
    }
    if (n > lim && k + 4 <= cap) memcpy(out + k, "...", 3), k += 3;
    out[k] = 0;
}

static int need(rd *r, uint64_t n, const char *what) {
    if (n > r->size - r->pos)
        return trlc_fail(r->err, r->errlen,
                         "%s: %s at offset %zu needs %llu bytes but the file ends %zu bytes later (truncated?)", r->name,
                         what, r->pos, (unsigned long long)n, r->size - r->pos);
    return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *what) {
    if (need(r, 4, what)) return -1;
    *v = le32(r->p + r->pos);
    r->pos += 4;
    return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *what) {
    if (need(r, 8, what)) return -1;
    *v = le64(r->p + r->pos);
    r->pos += 8;
    return 0;
}

static int rd_str(rd *r, const char **s, size_t *n, const char *what) {
    uint64_t len;
    if (rd_u64(r, &len, what)) return -1;
    if (len > r->size - r->pos)
        return trlc_fail(r->err, r->errlen,
                         "%s: %s: string length %llu at offset %zu runs past the end of the file (%zu bytes left)",
                         r->name, what, (unsigned long long)len, r->pos - 8, r->size - r->pos);
    *s = (const char *)r->p + r->pos;
    *n = (size_t)len;
    r->pos += (size_t)len;
    return 0;
}

/* One scalar of type t at p into kv. */
static int scalar(rd *r, uint32_t t, const uint8_t *p, trlc_gguf_kv *kv, const char *what) {
    switch (t) {
    case TRLC_GGUF_U8: kv->i = p[0]; break;
    case TRLC_GGUF_I8: kv->i = (int8_t)p[0]; break;
    case TRLC_GGUF_U16: kv->i = (uint16_t)(p[0] | p[1] << 8); break;
    case TRLC_GGUF_I16: kv->i = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case TRLC_GGUF_U32: kv->i = le32(p); break;
    case TRLC_GGUF_I32: kv->i = (int32_t)le32(p); break;
    case TRLC_GGUF_U64: kv->u = le64(p), kv->i = kv->u > INT64_MAX ? INT64_MAX : (int64_t)kv->u; break;
    case TRLC_GGUF_I64: {
        uint64_t u = le64(p);
        memcpy(&kv->i, &u, 8);
        break;
    }
    case TRLC_GGUF_BOOL:
        if (p[0] > 1) return trlc_fail(r->err, r->errlen, "%s: %s: bool value %u is neither 0 nor 1", r->name, what, p[0]);
        kv->i = p[0];
        break;
    case TRLC_GGUF_F32: {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, 4);
        kv->f = f;
        return 0;
    }
    case TRLC_GGUF_F64: {
        uint64_t u = le64(p);
        memcpy(&kv->f, &u, 8);
        return 0;
    }
    default: return -1;
    }
    if (t != TRLC_GGUF_U64) kv->u = (uint64_t)kv->i;
    kv->f = (double)kv->i;
    return 0;
}

static int read_value(rd *r, trlc_gguf_kv *kv, const char *what) {
    uint32_t t = kv->type;
    if (t >= TRLC_GGUF_TYPE_COUNT)
        return trlc_fail(r->err, r->errlen, "%s: %s: unknown value type %u (GGUF has 0..12)", r->name, what, t);
    if (t == TRLC_GGUF_STRING) return rd_str(r, &kv->str, &kv->str_len, what);
    if (t != TRLC_GGUF_ARRAY) {
        if (need(r, VALUE_SIZE[t], what)) return -1;
        if (scalar(r, t, r->p + r->pos, kv, what)) return -1;
        r->pos += VALUE_SIZE[t];
        return 0;
    }
    uint32_t et;
    uint64_t n;
    if (rd_u32(r, &et, what) || rd_u64(r, &n, what)) return -1;
    if (et >= TRLC_GGUF_TYPE_COUNT)
        return trlc_fail(r->err, r->errlen, "%s: %s: array of unknown value type %u", r->name, what, et);
    if (et == TRLC_GGUF_ARRAY)
        return trlc_fail(r->err, r->errlen, "%s: %s: arrays of arrays are not supported", r->name, what);
    size_t left = r->size - r->pos;
    uint64_t min = et == TRLC_GGUF_STRING ? 8 : VALUE_SIZE[et];
    if (n > left / min)
        return trlc_fail(r->err, r->errlen,
                         "%s: %s: array of %llu %s values at offset %zu cannot fit in the %zu bytes left in the file",
                         r->name, what, (unsigned long long)n, VALUE_TYPE_NAMES[et], r->pos - 12, left);
    kv->arr_type = et;
    kv->arr_n = n;
    kv->arr = r->p + r->pos;
    if (et != TRLC_GGUF_STRING) {
        if (et == TRLC_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (kv->arr[i] > 1)
                    return trlc_fail(r->err, r->errlen, "%s: %s: element %llu: bool value %u is neither 0 nor 1",
                                     r->name, what, (unsigned long long)i, kv->arr[i]);
        r->pos += (size_t)(n * min);
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        const char *s;
        size_t l;
        char w[160];
        snprintf(w, sizeof w, "%s: element %llu", what, (unsigned long long)i);
        if (rd_str(r, &s, &l, w)) return -1;
    }
    return 0;
}

static int cmp_kv(const void *a, const void *b) {
    const trlc_gguf_kv *x = *(const trlc_gguf_kv *const *)a, *y = *(const trlc_gguf_kv *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp((*(const trlc_gguf_tensor *const *)a)->name, (*(const trlc_gguf_tensor *const *)b)->name);
}

/* Grow a array of `size`-byte entries to hold one more. */
static int grow(void **v, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    if (c > SIZE_MAX / size) return -1;
    void *p = realloc(*v, c * size);
    if (!p) return -1;
    *v = p;
    *cap = c;
    return 0;
}

void trlc_gguf_close(trlc_gguf *g) {
    if (!g) return;
    free(g->kv);
    free(g->tensors);
    free(g->name);
    trlc_file_unmap(&g->file);
    memset(g, 0, sizeof *g);
}

static int parse(trlc_gguf *g, char *err, size_t errlen) {
    rd r = {g->data, g->size, 0, g->name, err, errlen};
    if (g->size < 4 || memcmp(g->data, "GGUF", 4)) {
        char m[8];
        show(m, sizeof m, (const char *)g->data, g->size < 4 ? g->size : 4);
        return trlc_fail(err, errlen, "%s: not a GGUF file (it starts with \"%s\", not \"GGUF\")", g->name, m);
    }
    r.pos = 4;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&r, &version, "header: version")) return -1;
    if (version != GGUF_VERSION) {
        if (version && !(version & 0xFFFF))
            return trlc_fail(err, errlen, "%s: header: version %u: a big-endian GGUF? only little-endian files are supported",
                             g->name, version);
        return trlc_fail(err, errlen,
                         "%s: header: GGUF version %u is not supported (version 3 is%s)", g->name, version,
                         version < GGUF_VERSION ? "; re-convert the model with a current llama.cpp" : "");
    }
    g->version = version;
    if (rd_u64(&r, &n_tensors, "header: tensor count") || rd_u64(&r, &n_kv, "header: metadata count")) return -1;
    /* the smallest entries: a kv with an empty key and a one-byte value; a
     * one-dimensional tensor info with an empty name */
    if (n_kv > (g->size - r.pos) / 13)
        return trlc_fail(err, errlen, "%s: header: metadata count %llu cannot fit in a %zu-byte file", g->name,
                         (unsigned long long)n_kv, g->size);
    if (n_tensors > (g->size - r.pos) / 32)
        return trlc_fail(err, errlen, "%s: header: tensor count %llu cannot fit in a %zu-byte file", g->name,
                         (unsigned long long)n_tensors, g->size);

    size_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow((void **)&g->kv, &cap, g->n_kv, sizeof *g->kv))
            return trlc_fail(err, errlen, "%s: out of memory reading metadata", g->name);
        trlc_gguf_kv *kv = &g->kv[g->n_kv];
        memset(kv, 0, sizeof *kv);
        char what[160];
        snprintf(what, sizeof what, "metadata entry %llu: key", (unsigned long long)i);
        if (rd_str(&r, &kv->key, &kv->key_len, what)) return -1;
        char k[64];
        show(k, sizeof k, kv->key, kv->key_len);
        snprintf(what, sizeof what, "metadata entry %llu (%s)", (unsigned long long)i, k);
        if (rd_u32(&r, &kv->type, what) || read_value(&r, kv, what)) return -1;
        g->n_kv++;
    }
    const trlc_gguf_kv **sorted = malloc((g->n_kv ? g->n_kv : 1) * sizeof *sorted);
    if (!sorted) return trlc_fail(err, errlen, "%s: out of memory", g->name);
    for (size_t i = 0; i < g->n_kv; i++) sorted[i] = &g->kv[i];
    qsort(sorted, g->n_kv, sizeof *sorted, cmp_kv);
    for (size_t i = 1; i < g->n_kv; i++)
        if (!cmp_kv(&sorted[i - 1], &sorted[i])) {
            char k[64];
            show(k, sizeof k, sorted[i]->key, sorted[i]->key_len);
            free(sorted);
            return trlc_fail(err, errlen, "%s: metadata key '%s' appears twice", g->name, k);
        }
    free(sorted);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const trlc_gguf_kv *al = trlc_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != TRLC_GGUF_U32)
            return trlc_fail(err, errlen, "%s: metadata general.alignment: type %s, expected U32", g->name,
                             trlc_gguf_type_name(al->type));
        if (al->i == 0 || (al->i & (al->i - 1)))
            return trlc_fail(err, errlen, "%s: metadata general.alignment: %lld is not a power of two", g->name,
                             (long long)al->i);
        g->alignment = (uint64_t)al->i;
    }

    cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (grow((void **)&g->tensors, &cap, g->n_tensors, sizeof *g->tensors))
            return trlc_fail(err, errlen, "%s: out of memory reading tensor infos", g->name);
        trlc_gguf_tensor *t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof *t);
        char what[160];
        snprintf(what, sizeof what, "tensor info %llu: name", (unsigned long long)i);
        const char *nm;
        size_t nl;
        if (rd_str(&r, &nm, &nl, what)) return -1;
        char shown[64];
        show(shown, sizeof shown, nm, nl);
        if (nl == 0 || nl >= GGUF_MAX_NAME || memchr(nm, 0, nl))
            return trlc_fail(err, errlen, "%s: tensor info %llu: name '%s' is %s", g->name, (unsigned long long)i,
                             shown, nl == 0 ? "empty" : nl >= GGUF_MAX_NAME ? "longer than 63 bytes" : "not text");
        memcpy(t->name, nm, nl);
        t->name[nl] = 0;
        snprintf(what, sizeof what, "tensor '%s'", shown);
        if (rd_u32(&r, &t->n_dims, what)) return -1;
        if (t->n_dims < 1 || t->n_dims > TRLC_GGUF_MAX_DIMS)
            return trlc_fail(err, errlen, "%s: tensor '%s': %u dimensions (1 to %d are allowed)", g->name, shown,
                             t->n_dims, TRLC_GGUF_MAX_DIMS);
        for (int d = 0; d < TRLC_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (rd_u64(&r, &t->ne[d], what)) return -1;
            if (t->ne[d] > INT64_MAX)
                return trlc_fail(err, errlen, "%s: tensor '%s': dimension %u is %llu (negative as ggml's int64)",
                                 g->name, shown, d, (unsigned long long)t->ne[d]);
        }
        if (rd_u32(&r, &t->type, what) || rd_u64(&r, &t->offset, what)) return -1;
        if (t->type >= N_GGML_TYPES || !GGML_TYPES[t->type].name)
            return trlc_fail(err, errlen, "%s: tensor '%s': unknown ggml type %u (this reader knows types up to %u)",
                             g->name, shown, t->type, (unsigned)N_GGML_TYPES - 1);
        uint32_t bk = GGML_TYPES[t->type].block;
        if (t->ne[0] % bk)
            return trlc_fail(err, errlen, "%s: tensor '%s': row length %llu is not a multiple of %s's block of %u",
                             g->name, shown, (unsigned long long)t->ne[0], GGML_TYPES[t->type].name, bk);
        uint64_t nb = t->ne[0] / bk;
        if (trlc_mul_u64(nb, GGML_TYPES[t->type].bytes, &nb) || trlc_mul_u64(nb, t->ne[1], &nb) ||
            trlc_mul_u64(nb, t->ne[2], &nb) || trlc_mul_u64(nb, t->ne[3], &nb))
            return trlc_fail(err, errlen, "%s: tensor '%s': size overflows", g->name, shown);
        t->nbytes = nb;
        if (t->offset % g->alignment)
            return trlc_fail(err, errlen, "%s: tensor '%s': offset %llu is not a multiple of the alignment %llu",
                             g->name, shown, (unsigned long long)t->offset, (unsigned long long)g->alignment);
        g->n_tensors++;
    }
    const trlc_gguf_tensor **ts = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *ts);
    if (!ts) return trlc_fail(err, errlen, "%s: out of memory", g->name);
    for (size_t i = 0; i < g->n_tensors; i++) ts[i] = &g->tensors[i];
    qsort(ts, g->n_tensors, sizeof *ts, cmp_tensor);
    for (size_t i = 1; i < g->n_tensors; i++)
        if (!strcmp(ts[i - 1]->name, ts[i]->name)) {
            char shown[64];
            show(shown, sizeof shown, ts[i]->name, strlen(ts[i]->name));
            free(ts);
            return trlc_fail(err, errlen, "%s: tensor '%s' appears twice", g->name, shown);
        }
    free(ts);

    /* the data section starts at the next multiple of the alignment */
    uint64_t start = ((uint64_t)r.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (start > g->size) {
        if (g->n_tensors)
            return trlc_fail(err, errlen,
                             "%s: the tensor data would start at offset %llu, past the end of the file (%zu bytes; "
                             "truncated?)",
                             g->name, (unsigned long long)start, g->size);
        start = g->size;
    }
    g->data_offset = start;
    uint64_t avail = g->size - start;
    for (size_t i = 0; i < g->n_tensors; i++) {
        trlc_gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return trlc_fail(err, errlen,
                             "%s: tensor '%s': data [%llu, +%llu) runs past the end of the data section (%llu bytes; "
                             "truncated?)",
                             g->name, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                             (unsigned long long)avail);
        t->data = g->data + start + t->offset;
    }
    return 0;
}

int trlc_gguf_parse(const void *data, size_t size, const char *name, trlc_gguf *g, char *err, size_t errlen) {
    memset(g, 0, sizeof *g);
    g->name = strdup(name ? name : "model.gguf");
    if (!g->name) return trlc_fail(err, errlen, "out of memory");
    g->data = data;
    g->size = data ? size : 0;
    if (parse(g, err, errlen)) {
        trlc_gguf_close(g);
        return -1;
    }
    return 0;
}

int trlc_gguf_open(const char *path, trlc_gguf *g, char *err, size_t errlen) {
    memset(g, 0, sizeof *g);
    trlc_file f;
    if (trlc_file_map(path, &f, err, errlen)) return -1;
    if (trlc_gguf_parse(f.data, f.size, path, g, err, errlen)) {
        trlc_file_unmap(&f);
        return -1;
    }
    g->file = f;
    return 0;
}

const trlc_gguf_kv *trlc_gguf_find(const trlc_gguf *g, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key_len == n && !memcmp(g->kv[i].key, key, n)) return &g->kv[i];
    return NULL;
}

const trlc_gguf_tensor *trlc_gguf_find_tensor(const trlc_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

/* ------------------------------------------------------- metadata helpers */

static int is_int_type(uint32_t t) {
    return t <= TRLC_GGUF_I32 || t == TRLC_GGUF_U64 || t == TRLC_GGUF_I64;
}

/* An integer in [lo, hi]; absent: dflt if !required. *present (may be NULL) says which. */
static int meta_int(const trlc_gguf *g, const char *key, int required, int64_t lo, int64_t hi, int64_t dflt,
                    int64_t *out, int *present, char *err, size_t errlen) {
    const trlc_gguf_kv *kv = trlc_gguf_find(g, key);
    if (present) *present = kv != NULL;
    if (!kv) {
        if (required) return trlc_fail(err, errlen, "%s: metadata %s: missing", g->name, key);
        *out = dflt;
        return 0;
    }
    if (!is_int_type(kv->type))
        return trlc_fail(err, errlen, "%s: metadata %s: a %s%s, expected an integer", g->name, key,
                         trlc_gguf_type_name(kv->type),
                         kv->type == TRLC_GGUF_ARRAY ? " (per-layer values are not supported)" : "");
    if ((kv->type == TRLC_GGUF_U64 && kv->u > (uint64_t)INT64_MAX) || kv->i < lo || kv->i > hi)
        return trlc_fail(err, errlen, "%s: metadata %s: %llu is out of range (%lld to %lld)", g->name, key,
                         kv->type == TRLC_GGUF_U64 ? (unsigned long long)kv->u : (unsigned long long)kv->i,
                         (long long)lo, (long long)hi);
    *out = kv->i;
    return 0;
}

/* A finite positive number (F32 read back through its shortest decimal, so the
 * manifest says 1e-05, not 9.99999975e-06). */
static int meta_pos_float(const trlc_gguf *g, const char *key, int required, double dflt, double *out, char *err,
                          size_t errlen) {
    const trlc_gguf_kv *kv = trlc_gguf_find(g, key);
    if (!kv) {
        if (required) return trlc_fail(err, errlen, "%s: metadata %s: missing", g->name, key);
        *out = dflt;
        return 0;
    }
    if (kv->type != TRLC_GGUF_F32 && kv->type != TRLC_GGUF_F64 && !is_int_type(kv->type))
        return trlc_fail(err, errlen, "%s: metadata %s: a %s, expected a number", g->name, key,
                         trlc_gguf_type_name(kv->type));
    double v = kv->f;
    if (!isfinite(v) || v <= 0.0 || v > 3.0e38)
        return trlc_fail(err, errlen, "%s: metadata %s: %g is not a positive finite number", g->name, key, v);
    if (kv->type == TRLC_GGUF_F32) {
        char buf[40];
        trlc_format_float((float)v, buf, sizeof buf);
        v = strtod(buf, NULL);
    }
    *out = v;
    return 0;
}

static int meta_str(const trlc_gguf *g, const char *key, const char **s, size_t *n, char *err, size_t errlen) {
    const trlc_gguf_kv *kv = trlc_gguf_find(g, key);
    *s = NULL, *n = 0;
    if (!kv) return 0;
    if (kv->type != TRLC_GGUF_STRING)
        return trlc_fail(err, errlen, "%s: metadata %s: a %s, expected a string", g->name, key,
                         trlc_gguf_type_name(kv->type));
    *s = kv->str ? kv->str : "";
    *n = kv->str_len;
    return 0;
}

static int meta_bool(const trlc_gguf *g, const char *key, int dflt, int *out, char *err, size_t errlen) {
    const trlc_gguf_kv *kv = trlc_gguf_find(g, key);
    if (!kv) {
        *out = dflt;
        return 0;
    }
    if (kv->type != TRLC_GGUF_BOOL)
        return trlc_fail(err, errlen, "%s: metadata %s: a %s, expected a bool", g->name, key,
                         trlc_gguf_type_name(kv->type));
    *out = kv->i != 0;
    return 0;
}

static int str_is(const char *s, size_t n, const char *lit) { return s && n == strlen(lit) && !memcmp(s, lit, n); }

/* An array of `type` with `want` elements (want < 0: any count). NULL if absent. */
static int meta_array(const trlc_gguf *g, const char *key, uint32_t type, int64_t want, const trlc_gguf_kv **out,
                      char *err, size_t errlen) {
    const trlc_gguf_kv *kv = trlc_gguf_find(g, key);
    *out = NULL;
    if (!kv) return 0;
    if (kv->type != TRLC_GGUF_ARRAY || kv->arr_type != type)
        return trlc_fail(err, errlen, "%s: metadata %s: a %s%s%s, expected an array of %s", g->name, key,
                         trlc_gguf_type_name(kv->type), kv->type == TRLC_GGUF_ARRAY ? " of " : "",
                         kv->type == TRLC_GGUF_ARRAY ? trlc_gguf_type_name(kv->arr_type) : "",
                         trlc_gguf_type_name(type));
    if (want >= 0 && kv->arr_n != (uint64_t)want)
        return trlc_fail(err, errlen, "%s: metadata %s: %llu elements, expected %lld (one per token)", g->name, key,
                         (unsigned long long)kv->arr_n, (long long)want);
    *out = kv;
    return 0;
}

/* The strings of an array (validated by the parser): malloc'd, kv->arr_n entries. */
static trlc_tokstr *array_strings(const trlc_gguf_kv *kv) {
    trlc_tokstr *v = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof *v);
    if (!v) return NULL;
    const uint8_t *p = kv->arr;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        uint64_t n = le64(p);
        v[i].s = (const char *)p + 8;
        v[i].n = (size_t)n;
        p += 8 + n;
    }
    return v;
}

/* ---------------------------------------------------------------- tokenizer */

/* tokenizer.ggml.pre names whose pre-tokenizer regex is one of the two the
 * core has (llama.cpp's llama-vocab.cpp groups them so). */
static const struct {
    const char *name;
    int pretok, ignore_merges;
} PRETOKS[] = {
    {"gpt-2", TRL_PRETOK_GPT2, 0},      {"gpt2", TRL_PRETOK_GPT2, 0},        {"phi-2", TRL_PRETOK_GPT2, 0},
    {"mpt", TRL_PRETOK_GPT2, 0},        {"olmo", TRL_PRETOK_GPT2, 0},        {"jais", TRL_PRETOK_GPT2, 0},
    {"jina-es", TRL_PRETOK_GPT2, 0},    {"jina-de", TRL_PRETOK_GPT2, 0},     {"jina-v2-es", TRL_PRETOK_GPT2, 0},
    {"jina-v2-de", TRL_PRETOK_GPT2, 0}, {"gigachat", TRL_PRETOK_GPT2, 0},    {"llama3", TRL_PRETOK_LLAMA3, 1},
    {"llama-v3", TRL_PRETOK_LLAMA3, 1}, {"llama-bpe", TRL_PRETOK_LLAMA3, 1}, {"falcon3", TRL_PRETOK_LLAMA3, 1},
    {"pixtral", TRL_PRETOK_LLAMA3, 1},  {"dbrx", TRL_PRETOK_LLAMA3, 0},      {"smaug-bpe", TRL_PRETOK_LLAMA3, 0},
};

static int load_tokenizer(const trlc_gguf *g, trlc_model_src *src, char *err, size_t errlen) {
    const char *model, *s;
    size_t model_n, n;
    if (meta_str(g, "tokenizer.ggml.model", &model, &model_n, err, errlen)) return -1;
    if (!model) return 0; /* no tokenizer: the writer asks for --tokenizer */
    char shown[64];
    show(shown, sizeof shown, model, model_n);
    trlc_vocab_spec v;
    memset(&v, 0, sizeof v);
    char name[600];
    snprintf(name, sizeof name, "%s: tokenizer.ggml", g->name);
    v.name = name;
    if (str_is(model, model_n, "llama")) v.kind = TRL_TOK_SPM;
    else if (str_is(model, model_n, "gpt2")) v.kind = TRL_TOK_BPE_GPT2;
    else
        return trlc_fail(err, errlen,
                         "%s: metadata tokenizer.ggml.model: \"%s\" is not supported (\"llama\" and \"gpt2\" are); "
                         "pass --tokenizer with the model's tokenizer.json",
                         g->name, shown);
    const trlc_gguf_kv *toks, *scores, *types, *merges;
    if (meta_array(g, "tokenizer.ggml.tokens", TRLC_GGUF_STRING, -1, &toks, err, errlen)) return -1;
    if (!toks) return trlc_fail(err, errlen, "%s: metadata tokenizer.ggml.tokens: missing", g->name);
    if (toks->arr_n < 1 || toks->arr_n > (1u << 24))
        return trlc_fail(err, errlen, "%s: metadata tokenizer.ggml.tokens: %llu tokens (1 to 16777216 are supported)",
                         g->name, (unsigned long long)toks->arr_n);
    int64_t nt = (int64_t)toks->arr_n;
    if (nt > src->cfg.vocab_size)
        return trlc_fail(err, errlen, "%s: the tokenizer has %lld tokens but the model's vocab_size is %d", g->name,
                         (long long)nt, (int)src->cfg.vocab_size);
    if (meta_array(g, "tokenizer.ggml.scores", TRLC_GGUF_F32, nt, &scores, err, errlen) ||
        meta_array(g, "tokenizer.ggml.token_type", TRLC_GGUF_I32, nt, &types, err, errlen) ||
        meta_array(g, "tokenizer.ggml.merges", TRLC_GGUF_STRING, -1, &merges, err, errlen))
        return -1;
    v.n_tokens = (int32_t)nt;
    if (v.kind == TRL_TOK_SPM) {
        int prefix;
        if (meta_bool(g, "tokenizer.ggml.add_space_prefix", 1, &prefix, err, errlen)) return -1;
        v.flags = prefix ? TRL_TOKF_SPM_PREFIX : 0;
        merges = NULL; /* SentencePiece merges by score */
    } else {
        if (!merges) return trlc_fail(err, errlen, "%s: metadata tokenizer.ggml.merges: missing (a gpt2 tokenizer needs them)", g->name);
        if (meta_str(g, "tokenizer.ggml.pre", &s, &n, err, errlen)) return -1;
        show(shown, sizeof shown, s ? s : "", n);
        size_t k = 0;
        while (k < sizeof PRETOKS / sizeof *PRETOKS && !str_is(s, n, PRETOKS[k].name)) k++;
        if (k == sizeof PRETOKS / sizeof *PRETOKS)
            return trlc_fail(err, errlen,
                             "%s: metadata tokenizer.ggml.pre: %s%s%s: this pre-tokenizer is not supported (GPT-2's "
                             "\"gpt-2\" and Llama 3's \"llama-bpe\" are); pass --tokenizer with the model's "
                             "tokenizer.json",
                             g->name, s ? "\"" : "", s ? shown : "missing", s ? "\"" : "");
        v.pretok = PRETOKS[k].pretok;
        v.flags = PRETOKS[k].ignore_merges ? TRL_TOKF_BPE_IGNORE_MERGES : 0;
    }
    int64_t bos, eos, unk;
    int has_bos, has_eos;
    if (meta_int(g, "tokenizer.ggml.bos_token_id", 0, 0, nt - 1, -1, &bos, &has_bos, err, errlen) ||
        meta_int(g, "tokenizer.ggml.eos_token_id", 0, 0, nt - 1, -1, &eos, &has_eos, err, errlen) ||
        meta_int(g, "tokenizer.ggml.unknown_token_id", 0, 0, nt - 1, -1, &unk, NULL, err, errlen))
        return -1;
    v.bos_id = (int32_t)bos, v.eos_id = (int32_t)eos, v.unk_id = (int32_t)unk;
    int add_bos;
    if (meta_bool(g, "tokenizer.ggml.add_bos_token", v.kind == TRL_TOK_SPM, &add_bos, err, errlen)) return -1;
    v.add_bos = add_bos;
    if (meta_str(g, "tokenizer.chat_template", &v.chat_template, &v.chat_template_len, err, errlen)) return -1;

    trlc_tokstr *tv = array_strings(toks), *mv = merges ? array_strings(merges) : NULL;
    float *sc = scores ? malloc((size_t)nt * sizeof *sc) : NULL;
    int32_t *ty = types ? malloc((size_t)nt * sizeof *ty) : NULL;
    int rc = -1;
    if (!tv || (merges && !mv) || (scores && !sc) || (types && !ty)) {
        trlc_fail(err, errlen, "%s: out of memory for %lld tokens", g->name, (long long)nt);
        goto out;
    }
    for (int64_t i = 0; i < nt; i++) {
        if (sc) {
            uint32_t u = le32(scores->arr + 4 * i);
            memcpy(&sc[i], &u, 4);
        }
        if (ty) ty[i] = (int32_t)le32(types->arr + 4 * i);
    }
    v.tokens = tv;
    v.scores = sc;
    v.types = ty;
    v.merges = mv;
    v.n_merges = merges ? (size_t)merges->arr_n : 0;
    void *blob = NULL;
    size_t len = 0;
    trlc_tokenizer_info info;
    if (trlc_tokenizer_from_vocab(&v, &blob, &len, &info, err, errlen)) goto out;
    trlc_source_set_tokenizer(src, blob, len, &info);
    rc = 0;
out:
    free(tv);
    free(mv);
    free(sc);
    free(ty);
    return rc;
}

/* ------------------------------------------------------------ model source */

static int map_dtype(uint32_t ggml_type, trlc_dtype *out) {
    switch (ggml_type) {
    case TRLC_GGML_F32: *out = TRLC_DT_F32; return 0;
    case TRLC_GGML_F16: *out = TRLC_DT_F16; return 0;
    case TRLC_GGML_BF16: *out = TRLC_DT_BF16; return 0;
    case TRLC_GGML_Q8_0: *out = TRLC_DT_Q8_0; return 0;
    case TRLC_GGML_Q4_0: *out = TRLC_DT_Q4_0; return 0;
    case TRLC_GGML_TQ1_0: *out = TRLC_DT_TQ1_0; return 0;
    case TRLC_GGML_TQ2_0: *out = TRLC_DT_TQ2_0; return 0;
    default: return -1;
    }
}

/* The config from llama.* metadata and the tensor list. */
static int read_config(const trlc_gguf *g, trlc_model_src *src, char *err, size_t errlen) {
    const char *arch;
    size_t an;
    if (meta_str(g, "general.architecture", &arch, &an, err, errlen)) return -1;
    if (!arch) return trlc_fail(err, errlen, "%s: metadata general.architecture: missing", g->name);
    if (!str_is(arch, an, "llama")) {
        char shown[64];
        show(shown, sizeof shown, arch, an);
        return trlc_fail(err, errlen, "%s: metadata general.architecture: \"%s\" is not supported (\"llama\" is)",
                         g->name, shown);
    }
    const int64_t I32 = INT32_MAX;
    int64_t dim, hidden, layers, heads, kv_heads, ctx, key_len, val_len, rope_dims, vocab;
    int has_key, has_val, has_rope_dims, has_vocab;
    if (meta_int(g, "llama.embedding_length", 1, 1, I32, 0, &dim, NULL, err, errlen) ||
        meta_int(g, "llama.feed_forward_length", 1, 1, I32, 0, &hidden, NULL, err, errlen) ||
        meta_int(g, "llama.block_count", 1, 1, I32, 0, &layers, NULL, err, errlen) ||
        meta_int(g, "llama.attention.head_count", 1, 1, I32, 0, &heads, NULL, err, errlen) ||
        meta_int(g, "llama.attention.head_count_kv", 0, 1, I32, heads, &kv_heads, NULL, err, errlen) ||
        meta_int(g, "llama.context_length", 1, 1, I32, 0, &ctx, NULL, err, errlen) ||
        meta_int(g, "llama.attention.key_length", 0, 1, I32, 0, &key_len, &has_key, err, errlen) ||
        meta_int(g, "llama.attention.value_length", 0, 1, I32, 0, &val_len, &has_val, err, errlen) ||
        meta_int(g, "llama.rope.dimension_count", 0, 1, I32, 0, &rope_dims, &has_rope_dims, err, errlen) ||
        meta_int(g, "llama.vocab_size", 0, 1, I32, 0, &vocab, &has_vocab, err, errlen))
        return -1;
    /* bound block_count by the file before anything is sized by it (loosely: a block has 9
     * tensors, and a file missing a few gets the message naming them) */
    if ((uint64_t)layers > g->n_tensors)
        return trlc_fail(err, errlen, "%s: metadata llama.block_count %lld: the file has only %zu tensors", g->name,
                         (long long)layers, g->n_tensors);
    int64_t head_dim = key_len;
    if (!has_key) {
        if (dim % heads)
            return trlc_fail(err, errlen,
                             "%s: metadata llama.embedding_length %lld is not a multiple of llama.attention.head_count "
                             "%lld and llama.attention.key_length is missing",
                             g->name, (long long)dim, (long long)heads);
        head_dim = dim / heads;
    }
    if (has_val && val_len != head_dim)
        return trlc_fail(err, errlen,
                         "%s: metadata llama.attention.value_length %lld differs from the key length %lld (not supported)",
                         g->name, (long long)val_len, (long long)head_dim);
    if (has_rope_dims && rope_dims != head_dim)
        return trlc_fail(err, errlen,
                         "%s: metadata llama.rope.dimension_count %lld differs from the head size %lld (partial rotary "
                         "embeddings are not supported)",
                         g->name, (long long)rope_dims, (long long)head_dim);
    const char *sty;
    size_t sn;
    if (meta_str(g, "llama.rope.scaling.type", &sty, &sn, err, errlen)) return -1;
    if (sty && !str_is(sty, sn, "none")) {
        char shown[64];
        show(shown, sizeof shown, sty, sn);
        return trlc_fail(err, errlen, "%s: metadata llama.rope.scaling.type: \"%s\": RoPE scaling is not supported",
                         g->name, shown);
    }
    double scale;
    if (meta_pos_float(g, "llama.rope.scale_linear", 0, 1.0, &scale, err, errlen)) return -1;
    if (scale != 1.0)
        return trlc_fail(err, errlen, "%s: metadata llama.rope.scale_linear: %g: RoPE scaling is not supported", g->name,
                         scale);
    if (meta_pos_float(g, "llama.rope.freq_base", 0, 10000.0, &src->rope_theta, err, errlen) ||
        meta_pos_float(g, "llama.attention.layer_norm_rms_epsilon", 1, 0.0, &src->norm_eps, err, errlen))
        return -1;
    if (!has_vocab) {
        const trlc_gguf_kv *toks = trlc_gguf_find(g, "tokenizer.ggml.tokens");
        const trlc_gguf_tensor *emb = trlc_gguf_find_tensor(g, "token_embd.weight");
        if (toks && toks->type == TRLC_GGUF_ARRAY && toks->arr_n >= 1 && toks->arr_n <= (uint64_t)I32)
            vocab = (int64_t)toks->arr_n;
        else if (emb && emb->n_dims >= 2 && emb->ne[1] >= 1 && emb->ne[1] <= (uint64_t)I32)
            vocab = (int64_t)emb->ne[1];
        else
            return trlc_fail(err, errlen,
                             "%s: the vocabulary size is unknown (no llama.vocab_size, tokenizer.ggml.tokens or "
                             "token_embd.weight)",
                             g->name);
    }
    trl_config *c = &src->cfg;
    memset(c, 0, sizeof *c);
    c->arch = TRL_ARCH_LLAMA;
    c->mlp = TRL_MLP_SWIGLU;
    c->rope_style = TRL_ROPE_INTERLEAVED; /* llama.cpp's converter permutes HF q/k rows for it */
    c->act_quant = TRL_ACT_FLOAT;
    c->dim = (int32_t)dim, c->hidden_dim = (int32_t)hidden, c->n_layers = (int32_t)layers;
    c->n_heads = (int32_t)heads, c->n_kv_heads = (int32_t)kv_heads, c->head_dim = (int32_t)head_dim;
    c->vocab_size = (int32_t)vocab, c->max_seq_len = (int32_t)ctx;
    c->rope_theta = (float)src->rope_theta, c->norm_eps = (float)src->norm_eps;
    c->tied_embeddings = trlc_gguf_find_tensor(g, "output.weight") == NULL;
    c->sub_norms = 0;
    trl_error e;
    if (trl_config_validate(c, &e) != TRL_OK) return trlc_fail(err, errlen, "%s: metadata: %s", g->name, e.msg);
    return 0;
}

static int bind_tensors(const trlc_gguf *g, trlc_model_src *src, char *err, size_t errlen) {
    size_t n = trlc_tensor_specs(&src->cfg, NULL);
    trlc_tensor_spec *spec = calloc(n, sizeof *spec);
    src->tensors = calloc(n, sizeof *src->tensors);
    int rc = -1;
    if (!spec || !src->tensors) {
        trlc_fail(err, errlen, "%s: out of memory", g->name);
        goto out;
    }
    trlc_tensor_specs(&src->cfg, spec);
    for (size_t i = 0; i < g->n_tensors; i++) {
        const char *nm = g->tensors[i].name;
        size_t k = 0;
        while (k < n && strcmp(spec[k].name, nm)) k++;
        if (k < n) continue;
        if (!strcmp(nm, "rope_freqs.weight"))
            trlc_fail(err, errlen,
                      "%s: tensor 'rope_freqs.weight': RoPE frequency factors (Llama 3.1-style scaling) are not "
                      "supported",
                      g->name);
        else
            trlc_fail(err, errlen,
                      "%s: tensor '%s' is not part of a llama model of this config (token_embd, blk.N.attn_norm/q/k/v/"
                      "output, blk.N.ffn_norm/gate/up/down, output_norm, output)",
                      g->name, nm);
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        const trlc_gguf_tensor *gt = trlc_gguf_find_tensor(g, spec[k].name);
        if (!gt) {
            trlc_fail(err, errlen, "%s: tensor '%s' is missing", g->name, spec[k].name);
            goto out;
        }
        uint64_t rows = spec[k].n_dims == 2 ? (uint64_t)spec[k].shape[0] : 1;
        uint64_t cols = spec[k].n_dims == 2 ? (uint64_t)spec[k].shape[1] : (uint64_t)spec[k].shape[0];
        if (gt->ne[0] != cols || gt->ne[1] != rows || gt->ne[2] != 1 || gt->ne[3] != 1) {
            trlc_fail(err, errlen,
                      "%s: tensor '%s': shape [%llu, %llu, %llu, %llu] (ggml order: columns first), expected "
                      "[%llu, %llu] for this config",
                      g->name, gt->name, (unsigned long long)gt->ne[0], (unsigned long long)gt->ne[1],
                      (unsigned long long)gt->ne[2], (unsigned long long)gt->ne[3], (unsigned long long)cols,
                      (unsigned long long)rows);
            goto out;
        }
        trlc_src_tensor *t = &src->tensors[k];
        if (map_dtype(gt->type, &t->dtype)) {
            trlc_fail(err, errlen,
                      "%s: tensor '%s' has type %s; supported: F32, F16, BF16, Q8_0, Q4_0, TQ1_0, TQ2_0 (convert the "
                      "original checkpoint, or requantize the GGUF to Q8_0)",
                      g->name, gt->name, trlc_ggml_type_name(gt->type));
            goto out;
        }
        snprintf(t->name, sizeof t->name, "%s", spec[k].name);
        snprintf(t->origin, sizeof t->origin, "%.160s: tensor %s (%s)", g->name, gt->name, trlc_ggml_type_name(gt->type));
        t->n_dims = spec[k].n_dims;
        t->shape[0] = spec[k].shape[0];
        t->shape[1] = spec[k].shape[1];
        t->data = gt->data;
        t->nbytes = (size_t)gt->nbytes;
    }
    src->n_tensors = n;
    rc = 0;
out:
    free(spec);
    return rc;
}

/* Builds the source from a parsed file; takes the mapping (if any) from g. */
static int model_from(trlc_gguf *g, const char *tokenizer_path, trlc_model_src **out, char *err, size_t errlen) {
    *out = NULL;
    trlc_model_src *src = trlc_source_new();
    if (!src) {
        trlc_fail(err, errlen, "%s: out of memory", g->name);
        trlc_gguf_close(g);
        return -1;
    }
    if (g->file.data) {
        src->files = malloc(sizeof *src->files);
        if (!src->files) {
            trlc_fail(err, errlen, "%s: out of memory", g->name);
            goto fail;
        }
        src->files[0] = g->file;
        src->n_files = 1;
        g->file.data = NULL, g->file.size = 0;
    }
    if (read_config(g, src, err, errlen) || bind_tensors(g, src, err, errlen)) goto fail;
    trlc_basename(g->name, ".gguf", src->name, sizeof src->name);
    char base[256];
    trlc_basename(g->name, NULL, base, sizeof base);
    snprintf(src->source, sizeof src->source, "gguf:%s", base);
    if (tokenizer_path ? trlc_source_load_tokenizer_file(src, tokenizer_path, err, errlen)
                       : load_tokenizer(g, src, err, errlen))
        goto fail;
    trlc_gguf_close(g);
    *out = src;
    return 0;
fail:
    trlc_gguf_close(g);
    trlc_source_free(src);
    return -1;
}

int trlc_gguf_model_open(const char *path, const char *tokenizer_path, trlc_model_src **out, char *err,
                         size_t errlen) {
    *out = NULL;
    trlc_gguf g;
    if (trlc_gguf_open(path, &g, err, errlen)) return -1;
    return model_from(&g, tokenizer_path, out, err, errlen);
}

int trlc_gguf_model_from_mem(const void *data, size_t size, const char *name, trlc_model_src **out, char *err,
                             size_t errlen) {
    *out = NULL;
    trlc_gguf g;
    if (trlc_gguf_parse(data, size, name, &g, err, errlen)) return -1;
    return model_from(&g, NULL, out, err, errlen);
}
