/* safetensors.c - reader for Hugging Face .safetensors files.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data section; offsets are relative to its start. Nothing in the
 * header is trusted: every length, offset and shape is checked against the
 * file before a tensor is handed out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "trlc_internal.h"

/* The safetensors project caps headers at 100 MB; a bigger one is a broken file. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

static int dtype_from(const tj_doc *d, int tok, trlc_dtype *out) {
    for (int t = 0; t < TRLC_DT_SAFETENSORS_END; t++) /* not GGUF's block types */
        if (tj_str_eq(d, tok, trlc_dtype_name((trlc_dtype)t))) {
            *out = (trlc_dtype)t;
            return 0;
        }
    return -1;
}

static void tensor_name(const tj_doc *d, int key, char *buf, size_t cap) {
    long n = tj_str_copy(d, key, buf, cap);
    if (n < 0) snprintf(buf, cap, "?");
    else if ((size_t)n >= cap && cap > 4) memcpy(buf + cap - 4, "...", 4);
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const trlc_st_tensor *)a)->name, ((const trlc_st_tensor *)b)->name);
}

void trlc_safetensors_close(trlc_safetensors *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    trlc_file_unmap(&st->file);
    free(st->path);
    memset(st, 0, sizeof *st);
}

static int parse_tensor(const char *path, const tj_doc *d, int key, const uint8_t *data, uint64_t data_len,
                        trlc_st_tensor *t, char *err, size_t errlen) {
    char name[160];
    tensor_name(d, key, name, sizeof name);
    int v = key + 1;
    if (d->toks[v].type != TJ_OBJ)
        return trlc_fail(err, errlen, "%s: header: tensor '%s': expected an object", path, name);
    int jd = tj_obj_get(d, v, "dtype"), js = tj_obj_get(d, v, "shape"), jo = tj_obj_get(d, v, "data_offsets");
    if (jd < 0 || d->toks[jd].type != TJ_STR)
        return trlc_fail(err, errlen, "%s: header: tensor '%s': dtype: missing or not a string", path, name);
    if (dtype_from(d, jd, &t->dtype)) {
        char dt[32];
        tensor_name(d, jd, dt, sizeof dt);
        return trlc_fail(err, errlen, "%s: header: tensor '%s': dtype: unknown dtype '%s'", path, name, dt);
    }
    if (js < 0 || d->toks[js].type != TJ_ARR)
        return trlc_fail(err, errlen, "%s: header: tensor '%s': shape: missing or not an array", path, name);
    if (d->toks[js].size > TRLC_ST_MAX_DIMS)
        return trlc_fail(err, errlen, "%s: header: tensor '%s': shape: %u dimensions (at most %d)", path, name,
                         d->toks[js].size, TRLC_ST_MAX_DIMS);
    t->n_dims = 0;
    uint64_t numel = 1;
    for (int e = tj_first(d, js); e >= 0; e = tj_next(d, js, e)) {
        int64_t dim;
        if (tj_get_i64(d, e, &dim) || dim < 0)
            return trlc_fail(err, errlen, "%s: header: tensor '%s': shape[%d]: not a non-negative integer", path,
                             name, t->n_dims);
        if (trlc_mul_u64(numel, (uint64_t)dim, &numel) || numel > (uint64_t)INT64_MAX)
            return trlc_fail(err, errlen, "%s: header: tensor '%s': shape: element count overflows", path, name);
        t->shape[t->n_dims++] = dim;
    }
    uint64_t nbytes;
    if (trlc_mul_u64(numel, trlc_dtype_size(t->dtype), &nbytes))
        return trlc_fail(err, errlen, "%s: header: tensor '%s': shape: byte size overflows", path, name);
    if (jo < 0 || d->toks[jo].type != TJ_ARR || d->toks[jo].size != 2)
        return trlc_fail(err, errlen, "%s: header: tensor '%s': data_offsets: expected [begin, end]", path, name);
    int64_t b, e;
    if (tj_get_i64(d, tj_arr_at(d, jo, 0), &b) || tj_get_i64(d, tj_arr_at(d, jo, 1), &e) || b < 0 || e < b)
        return trlc_fail(err, errlen, "%s: header: tensor '%s': data_offsets: not 0 <= begin <= end", path, name);
    if ((uint64_t)e > data_len)
        return trlc_fail(err, errlen,
                         "%s: header: tensor '%s': data_offsets: [%lld, %lld] runs past the data section (%llu bytes)",
                         path, name, (long long)b, (long long)e, (unsigned long long)data_len);
    if ((uint64_t)(e - b) != nbytes)
        return trlc_fail(err, errlen,
                         "%s: header: tensor '%s': data_offsets: %lld bytes but shape and dtype %s need %llu", path,
                         name, (long long)(e - b), trlc_dtype_name(t->dtype), (unsigned long long)nbytes);
    t->numel = numel;
    t->nbytes = (size_t)nbytes;
    t->data = data + b;
    t->name = malloc(d->toks[key].end - d->toks[key].start + 1);
    if (!t->name) return trlc_fail(err, errlen, "%s: out of memory", path);
    tj_str_copy(d, key, t->name, d->toks[key].end - d->toks[key].start + 1);
    return 0;
}

int trlc_safetensors_open(const char *path, trlc_safetensors *st, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    st->path = malloc(strlen(path) + 1);
    if (!st->path) return trlc_fail(err, errlen, "%s: out of memory", path);
    strcpy(st->path, path);
    if (trlc_file_map(path, &st->file, err, errlen)) goto fail;
    const uint8_t *p = st->file.data;
    size_t size = st->file.size;
    if (size < 8) {
        trlc_fail(err, errlen, "%s: truncated: %zu bytes, a safetensors file starts with an 8-byte header length",
                  path, size);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | p[i];
    if (n > size - 8) {
        trlc_fail(err, errlen, "%s: header length %llu exceeds the file size (%zu bytes); truncated or not safetensors",
                  path, (unsigned long long)n, size);
        goto fail;
    }
    if (n > ST_MAX_HEADER) {
        trlc_fail(err, errlen, "%s: header length %llu is larger than the 100 MB safetensors limit", path,
                  (unsigned long long)n);
        goto fail;
    }
    tj_doc d;
    char jerr[128];
    if (tj_parse((const char *)p + 8, (size_t)n, &d, jerr, sizeof jerr)) {
        trlc_fail(err, errlen, "%s: header: bad JSON: %s", path, jerr);
        goto fail;
    }
    if (d.toks[0].type != TJ_OBJ) {
        tj_free(&d);
        trlc_fail(err, errlen, "%s: header: expected a JSON object", path);
        goto fail;
    }
    st->tensors = calloc(d.toks[0].size ? d.toks[0].size : 1, sizeof *st->tensors);
    if (!st->tensors) {
        tj_free(&d);
        trlc_fail(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    const uint8_t *data = p + 8 + n;
    uint64_t data_len = size - 8 - n;
    for (int k = tj_first(&d, 0); k >= 0; k = tj_next(&d, 0, k + 1)) {
        if (tj_str_eq(&d, k, "__metadata__")) continue;
        if (parse_tensor(path, &d, k, data, data_len, &st->tensors[st->n_tensors], err, errlen)) {
            tj_free(&d);
            goto fail;
        }
        st->n_tensors++;
    }
    tj_free(&d);
    /* sorted by name: duplicates become neighbours and lookups are a binary search */
    qsort(st->tensors, st->n_tensors, sizeof *st->tensors, cmp_tensor);
    for (size_t j = 1; j < st->n_tensors; j++)
        if (!strcmp(st->tensors[j - 1].name, st->tensors[j].name)) {
            trlc_fail(err, errlen, "%s: header: tensor '%s' appears twice", path, st->tensors[j].name);
            goto fail;
        }
    return 0;
fail:
    trlc_safetensors_close(st);
    return -1;
}

const trlc_st_tensor *trlc_safetensors_find(const trlc_safetensors *st, const char *name) {
    trlc_st_tensor key;
    key.name = (char *)name;
    if (!st->n_tensors) return NULL;
    return bsearch(&key, st->tensors, st->n_tensors, sizeof key, cmp_tensor);
}
