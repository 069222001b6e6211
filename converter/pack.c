/* pack.c - the native pack loader (docs/FORMAT.md, versions 1 and 2).
 *
 * The whole manifest is checked before a chunk is read; each chunk is read
 * into a 64-byte aligned buffer and its sha256 verified before any tensor
 * points into it. Messages name the file and the field:
 *   "mypack/manifest.json: tensors[3].bytes: 100 does not match shape [8, 16] in q8_0 (expected 136)" */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "sha256.h"
#include "trlc_internal.h"

#define ALIGN 64

/* Parsed manifest entries, before any chunk is read. */
typedef struct chunk_ent {
    uint64_t bytes;
    char sha[65];
} chunk_ent;

typedef struct ctx {
    const char *mpath; /* "dir/manifest.json" for messages */
    tj_doc *d;
    char *err;
    size_t errlen;
    size_t n_vtiers, cap_vtiers; /* entries of trlc_pack.variant_tiers */
} ctx;

#define FAIL(c, ...) trlc_fail((c)->err, (c)->errlen, __VA_ARGS__)

static int get_u64(ctx *c, int obj, const char *key, const char *where, uint64_t *out) {
    int t = tj_obj_get(c->d, obj, key);
    int64_t v;
    if (t < 0) return FAIL(c, "%s: %s.%s: missing", c->mpath, where, key);
    if (tj_get_i64(c->d, t, &v) || v < 0)
        return FAIL(c, "%s: %s.%s: expected a non-negative integer", c->mpath, where, key);
    *out = (uint64_t)v;
    return 0;
}

/* An id that may be null (-1). */
static int get_id(ctx *c, int obj, const char *key, const char *where, int32_t *out) {
    int t = tj_obj_get(c->d, obj, key);
    int64_t v;
    *out = -1;
    if (t < 0 || tj_is_null(c->d, t)) return 0;
    if (tj_get_i64(c->d, t, &v) || v < -1 || v > INT32_MAX)
        return FAIL(c, "%s: %s.%s: expected a token id or null", c->mpath, where, key);
    *out = (int32_t)v;
    return 0;
}

static int is_hex64(const tj_doc *d, int t, char out[65]) {
    if (t < 0 || d->toks[t].type != TJ_STR || d->toks[t].end - d->toks[t].start != 64) return 0;
    const char *s = d->src + d->toks[t].start;
    for (int i = 0; i < 64; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return 0;
        out[i] = ch;
    }
    out[64] = 0;
    return 1;
}

/* chunk index, offset and byte count of a blob (tensor or tokenizer), checked against the chunk table */
static int get_place(ctx *c, int obj, const char *where, const chunk_ent *ch, size_t n_chunks,
                     const trlc_pack_chunk *files, uint64_t *chunk, uint64_t *offset, uint64_t *bytes) {
    if (get_u64(c, obj, "chunk", where, chunk) || get_u64(c, obj, "offset", where, offset) ||
        get_u64(c, obj, "bytes", where, bytes))
        return -1;
    if (*chunk >= n_chunks)
        return FAIL(c, "%s: %s.chunk: %llu, but the pack has %zu chunks", c->mpath, where,
                    (unsigned long long)*chunk, n_chunks);
    if (*offset % ALIGN)
        return FAIL(c, "%s: %s.offset: %llu is not a multiple of %d", c->mpath, where, (unsigned long long)*offset,
                    ALIGN);
    uint64_t end;
    if (trlc_add_u64(*offset, *bytes, &end) || end > ch[*chunk].bytes)
        return FAIL(c, "%s: %s: offset %llu + bytes %llu runs past the end of %s (%llu bytes)", c->mpath, where,
                    (unsigned long long)*offset, (unsigned long long)*bytes, files[*chunk].file,
                    (unsigned long long)ch[*chunk].bytes);
    return 0;
}

/* "params" of a tensor entry: version 2 only, known members only (an unknown
 * one would change what the bytes mean), each an int32; absent members are 0. */
static int get_params(ctx *c, int obj, const char *where, const char *nm, int version, trl_enc_params *p) {
    memset(p, 0, sizeof *p);
    int jp = tj_obj_get(c->d, obj, "params");
    if (jp < 0) return 0;
    if (version < 2)
        return FAIL(c, "%s: %s.params: needs format version 2, but the pack says version %d (%s)", c->mpath, where,
                    version, nm);
    if (c->d->toks[jp].type != TJ_OBJ) return FAIL(c, "%s: %s.params: expected an object (%s)", c->mpath, where, nm);
    static const char *const keys[5] = {"bits", "group", "pow2", "scale_axis", "scale_blocks"};
    int32_t *vals[5] = {&p->bits, &p->group, &p->pow2, &p->scale_axis, &p->scale_blocks};
    int seen[5] = {0};
    for (int k = tj_first(c->d, jp); k >= 0; k = tj_next(c->d, jp, k + 1)) {
        /* k is the key token; its value is k + 1 */
        int found = -1;
        for (int i = 0; i < 5; i++)
            if (tj_str_eq(c->d, k, keys[i])) found = i;
        char key[32];
        if (tj_str_copy(c->d, k, key, sizeof key) < 0) snprintf(key, sizeof key, "?");
        if (found < 0)
            return FAIL(c, "%s: %s.params: unknown member \"%s\" (%s); this pack may need a newer trillium", c->mpath,
                        where, key, nm);
        if (seen[found]++) return FAIL(c, "%s: %s.params.%s: appears twice (%s)", c->mpath, where, key, nm);
        int64_t v;
        if (tj_get_i64(c->d, k + 1, &v) || v < INT32_MIN || v > INT32_MAX)
            return FAIL(c, "%s: %s.params.%s: expected an integer (%s)", c->mpath, where, key, nm);
        *vals[found] = (int32_t)v;
    }
    return 0;
}

typedef struct tier_bytes {
    int32_t tier;
    uint64_t bytes; /* of all chunks of the tier */
} tier_bytes;

static int cmp_tier(const void *a, const void *b) {
    int32_t x = ((const tier_bytes *)a)->tier, y = ((const tier_bytes *)b)->tier;
    return (x > y) - (x < y);
}

static int cmp_variant(const void *a, const void *b) {
    return strcmp(((const trlc_pack_variant *)a)->id, ((const trlc_pack_variant *)b)->id);
}

static int check_variants(ctx *c, trlc_pack *p, int jv, const tier_bytes *tiers, size_t nt);

/* "variants": each an object with an id and its tiers (that chunks have);
 * rank_slices optional. Kept so tools can pick a variant by id. */
static int get_variants(ctx *c, trlc_pack *p, const chunk_ent *ce) {
    const tj_doc *d = c->d;
    int jv = tj_obj_get(d, 0, "variants");
    if (jv < 0) return 0;
    if (d->toks[jv].type != TJ_ARR) return FAIL(c, "%s: variants: expected an array", c->mpath);
    size_t nv = d->toks[jv].size;
    p->variants = calloc(nv ? nv : 1, sizeof *p->variants);
    /* bytes per tier, sorted by tier: a hostile manifest cannot make the lookups quadratic */
    tier_bytes *tiers = malloc((p->n_chunks ? p->n_chunks : 1) * sizeof *tiers);
    if (!p->variants || !tiers) {
        free(tiers);
        return FAIL(c, "out of memory");
    }
    for (size_t j = 0; j < p->n_chunks; j++) tiers[j].tier = p->chunks[j].tier, tiers[j].bytes = ce[j].bytes;
    qsort(tiers, p->n_chunks, sizeof *tiers, cmp_tier);
    size_t nt = 0;
    for (size_t j = 0; j < p->n_chunks; j++) {
        if (nt && tiers[nt - 1].tier == tiers[j].tier) tiers[nt - 1].bytes += tiers[j].bytes; /* sizes were checked */
        else tiers[nt++] = tiers[j];
    }
    int rc = check_variants(c, p, jv, tiers, nt);
    free(tiers);
    return rc;
}

static int check_variants(ctx *c, trlc_pack *p, int jv, const tier_bytes *tiers, size_t nt) {
    const tj_doc *d = c->d;
    size_t i = 0;
    for (int k = tj_first(d, jv); k >= 0; k = tj_next(d, jv, k), i++) {
        char where[48];
        snprintf(where, sizeof where, "variants[%zu]", i);
        trlc_pack_variant *v = &p->variants[i];
        if (d->toks[k].type != TJ_OBJ) return FAIL(c, "%s: %s: expected an object", c->mpath, where);
        int ji = tj_obj_get(d, k, "id");
        if (ji < 0 || d->toks[ji].type != TJ_STR || tj_str_copy(d, ji, v->id, sizeof v->id) >= (long)sizeof v->id ||
            strlen(v->id) != d->toks[ji].end - d->toks[ji].start || !v->id[0])
            return FAIL(c, "%s: %s.id: expected a non-empty string of at most %zu bytes", c->mpath, where,
                        sizeof v->id - 1);
        int jt = tj_obj_get(d, k, "tiers");
        if (jt < 0 || d->toks[jt].type != TJ_ARR) return FAIL(c, "%s: %s.tiers: expected an array", c->mpath, where);
        v->tiers_at = c->n_vtiers;
        v->n_tiers = 0;
        uint64_t download = 0;
        int64_t last = -1;
        for (int x = tj_first(d, jt); x >= 0; x = tj_next(d, jt, x)) {
            int64_t t;
            if (tj_get_i64(d, x, &t) || t <= last || t > INT32_MAX)
                return FAIL(c, "%s: %s.tiers: expected increasing non-negative integers", c->mpath, where);
            last = t;
            tier_bytes key = {(int32_t)t, 0};
            const tier_bytes *tb = bsearch(&key, tiers, nt, sizeof *tiers, cmp_tier);
            if (!tb) return FAIL(c, "%s: %s.tiers: no chunk has tier %lld", c->mpath, where, (long long)t);
            if (c->n_vtiers == c->cap_vtiers) { /* each entry is a token of the manifest: bounded by its size */
                size_t cap = c->cap_vtiers ? c->cap_vtiers * 2 : 16;
                int32_t *nv = realloc(p->variant_tiers, cap * sizeof *nv);
                if (!nv) return FAIL(c, "out of memory");
                p->variant_tiers = nv;
                c->cap_vtiers = cap;
            }
            p->variant_tiers[c->n_vtiers++] = (int32_t)t;
            v->n_tiers++;
            if (trlc_add_u64(download, tb->bytes, &download))
                return FAIL(c, "%s: %s: download size overflows", c->mpath, where);
        }
        v->rank_slices = -1;
        int jr = tj_obj_get(d, k, "rank_slices");
        if (jr >= 0) {
            int64_t r;
            if (tj_get_i64(d, jr, &r) || r < 0 || r > INT32_MAX)
                return FAIL(c, "%s: %s.rank_slices: expected a non-negative integer", c->mpath, where);
            v->rank_slices = (int32_t)r;
        }
        if ((tj_obj_get(d, k, "download_bytes") >= 0 && get_u64(c, k, "download_bytes", where, &v->download_bytes)) ||
            (tj_obj_get(d, k, "resident_bytes") >= 0 && get_u64(c, k, "resident_bytes", where, &v->resident_bytes)))
            return -1;
        if (tj_obj_get(d, k, "download_bytes") >= 0 && v->download_bytes != download)
            return FAIL(c, "%s: %s.download_bytes: %llu, but its tiers' chunks hold %llu bytes", c->mpath, where,
                        (unsigned long long)v->download_bytes, (unsigned long long)download);
        p->n_variants = i + 1;
    }
    /* unique ids (a sorted copy, like the tensor names) */
    trlc_pack_variant *sv = malloc((p->n_variants ? p->n_variants : 1) * sizeof *sv);
    if (!sv) return FAIL(c, "out of memory");
    if (p->n_variants) memcpy(sv, p->variants, p->n_variants * sizeof *sv);
    qsort(sv, p->n_variants, sizeof *sv, cmp_variant);
    int rc = 0;
    for (size_t j = 1; j < p->n_variants && !rc; j++)
        if (!strcmp(sv[j - 1].id, sv[j].id)) rc = FAIL(c, "%s: variants: id \"%s\" appears twice", c->mpath, sv[j].id);
    free(sv);
    return rc;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const trl_tensor *)a)->name, ((const trl_tensor *)b)->name);
}

/* (name, tier) pairs, for version 3's "unique within a tier" */
typedef struct name_tier {
    const char *name;
    int32_t tier;
} name_tier;

static int cmp_name_tier(const void *a, const void *b) {
    const name_tier *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->tier > y->tier) - (x->tier < y->tier);
}

static int variant_has_tier(const trlc_pack *p, const trlc_pack_variant *v, int32_t t) {
    for (size_t j = 0; j < v->n_tiers; j++)
        if (p->variant_tiers[v->tiers_at + j] == t) return 1;
    return 0;
}

trl_tensor *trlc_pack_variant_tensors(const trlc_pack *p, const trlc_pack_variant *v, size_t *n) {
    *n = 0;
    trl_tensor *t = malloc((p->n_tensors ? p->n_tensors : 1) * sizeof *t);
    if (!t) return NULL;
    for (size_t i = 0; i < p->n_tensors; i++)
        if (variant_has_tier(p, v, p->tensor_tier[i])) t[(*n)++] = p->tensors[i];
    return t;
}

/* Version 3: no variant may see one name twice (sorted: not quadratic in the tensors). */
static int check_variant_names(ctx *c, trlc_pack *p) {
    name_tier *nt = malloc((p->n_tensors ? p->n_tensors : 1) * sizeof *nt);
    if (!nt) return FAIL(c, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < p->n_variants && !rc; k++) {
        const trlc_pack_variant *v = &p->variants[k];
        size_t m = 0;
        for (size_t i = 0; i < p->n_tensors; i++)
            if (variant_has_tier(p, v, p->tensor_tier[i])) nt[m].name = p->tensors[i].name, nt[m++].tier = 0;
        qsort(nt, m, sizeof *nt, cmp_name_tier);
        for (size_t j = 1; j < m && !rc; j++)
            if (!strcmp(nt[j - 1].name, nt[j].name))
                rc = FAIL(c, "%s: variants[%zu] (%s): tensor %s is in two of its tiers", c->mpath, k, v->id, nt[j].name);
    }
    free(nt);
    return rc;
}

/* Read one chunk into an aligned buffer, checking size and sha256 first. */
static int read_chunk(ctx *c, const char *dir, size_t i, const chunk_ent *ce, trlc_pack_chunk *pc) {
    char *path = trlc_path_join(dir, pc->file);
    if (!path) return FAIL(c, "out of memory");
    int rc = -1;
    trlc_file f = {0};
    char ferr[512];
    if (trlc_file_map(path, &f, ferr, sizeof ferr)) {
        FAIL(c, "%s (%s: chunks[%zu].file)", ferr, c->mpath, i);
        goto done;
    }
    if (f.size != ce->bytes) {
        FAIL(c, "%s: %zu bytes, but %s: chunks[%zu].bytes says %llu; the file is truncated or was modified", path,
             f.size, c->mpath, i, (unsigned long long)ce->bytes);
        goto done;
    }
    uint8_t dg[32];
    char hex[65];
    trlc_sha256(f.data, f.size, dg);
    trlc_sha256_hex(dg, hex);
    if (strcmp(hex, ce->sha)) {
        FAIL(c, "%s: sha256 %s does not match %s: chunks[%zu].sha256 (%s); the file is corrupt or was modified",
             path, hex, c->mpath, i, ce->sha);
        goto done;
    }
    size_t cap = (f.size + ALIGN - 1) / ALIGN * ALIGN;
    pc->data = aligned_alloc(ALIGN, cap ? cap : ALIGN);
    if (!pc->data) {
        FAIL(c, "%s: out of memory for %zu bytes", path, f.size);
        goto done;
    }
    if (f.size) memcpy(pc->data, f.data, f.size);
    pc->bytes = f.size;
    rc = 0;
done:
    trlc_file_unmap(&f);
    free(path);
    return rc;
}

void trlc_pack_close(trlc_pack *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_chunks; i++) free(p->chunks[i].data);
    free(p->chunks);
    free(p->variants);
    free(p->variant_tiers);
    free(p->tensor_tier);
    if (p->tensors)
        for (size_t i = 0; i < p->n_tensors; i++) free((char *)p->tensors[i].name);
    free(p->tensors);
    free(p->chat_template);
    free(p->name);
    free(p->manifest);
    free(p->dir);
    free(p);
}

int trlc_pack_open(const char *dir, trlc_pack **out, char *err, size_t errlen) {
    *out = NULL;
    trlc_pack *p = calloc(1, sizeof *p);
    char *mpath = trlc_path_join(dir, "manifest.json");
    chunk_ent *ce = NULL;
    trl_tensor *sorted = NULL;
    uint64_t *tchunk = NULL, *toffs = NULL;
    tj_doc d = {0};
    ctx c = {mpath, &d, err, errlen};
    int rc = -1;
    if (!p || !mpath || !(p->dir = malloc(strlen(dir) + 1))) {
        trlc_fail(err, errlen, "out of memory");
        goto done;
    }
    strcpy(p->dir, dir);
    if (!trlc_is_dir(dir)) {
        trlc_fail(err, errlen, "%s: not a directory (a pack is a directory with manifest.json)", dir);
        goto done;
    }
    if (trlc_file_read(mpath, &p->manifest, &p->manifest_len, err, errlen)) goto done;
    char jerr[128];
    if (tj_parse(p->manifest, p->manifest_len, &d, jerr, sizeof jerr)) {
        FAIL(&c, "%s: bad JSON: %s", mpath, jerr);
        goto done;
    }
    if (d.toks[0].type != TJ_OBJ) {
        FAIL(&c, "%s: expected a JSON object", mpath);
        goto done;
    }
    /* ---- format, version */
    int t = tj_obj_get(&d, 0, "format");
    if (!tj_str_eq(&d, t, "trillium-pack")) {
        FAIL(&c, "%s: format: expected \"trillium-pack\"; not a trillium model pack", mpath);
        goto done;
    }
    int64_t version;
    t = tj_obj_get(&d, 0, "version");
    if (t < 0 || tj_get_i64(&d, t, &version) || version < 1) {
        FAIL(&c, "%s: version: missing or not a positive integer", mpath);
        goto done;
    }
    if (version > TRLC_FORMAT_VERSION_MAX) {
        FAIL(&c, "%s: version: this pack needs format version %lld; this reader knows versions 1 to %d (upgrade "
                 "trillium)",
             mpath, (long long)version, TRLC_FORMAT_VERSION_MAX);
        goto done;
    }
    p->version = (int)version;
    t = tj_obj_get(&d, 0, "name");
    {
        long n = t >= 0 && d.toks[t].type == TJ_STR ? tj_str_copy(&d, t, NULL, 0) : 0;
        p->name = malloc((size_t)n + 1);
        if (!p->name) {
            FAIL(&c, "out of memory");
            goto done;
        }
        p->name[0] = 0;
        if (n) tj_str_copy(&d, t, p->name, (size_t)n + 1);
    }
    /* ---- config */
    trl_error e;
    if (tj_obj_get(&d, 0, "config") < 0) {
        FAIL(&c, "%s: config: missing", mpath);
        goto done;
    }
    if (trl_config_from_json(p->manifest, p->manifest_len, &p->config, &e) != TRL_OK) {
        FAIL(&c, "%s: %s", mpath, e.msg);
        goto done;
    }
    /* ---- chunks */
    int jc = tj_obj_get(&d, 0, "chunks");
    if (jc < 0 || d.toks[jc].type != TJ_ARR || d.toks[jc].size == 0) {
        FAIL(&c, "%s: chunks: missing or not a non-empty array", mpath);
        goto done;
    }
    size_t nc = d.toks[jc].size;
    ce = calloc(nc, sizeof *ce);
    p->chunks = calloc(nc, sizeof *p->chunks);
    if (!ce || !p->chunks) {
        FAIL(&c, "out of memory");
        goto done;
    }
    p->n_chunks = nc;
    size_t i = 0;
    for (int k = tj_first(&d, jc); k >= 0; k = tj_next(&d, jc, k), i++) {
        char where[48];
        snprintf(where, sizeof where, "chunks[%zu]", i);
        if (d.toks[k].type != TJ_OBJ) {
            FAIL(&c, "%s: %s: expected an object", mpath, where);
            goto done;
        }
        int tf = tj_obj_get(&d, k, "file");
        if (tf < 0 || d.toks[tf].type != TJ_STR ||
            tj_str_copy(&d, tf, p->chunks[i].file, sizeof p->chunks[i].file) >= (long)sizeof p->chunks[i].file ||
            strlen(p->chunks[i].file) != d.toks[tf].end - d.toks[tf].start ||
            !trlc_plain_filename(p->chunks[i].file)) {
            FAIL(&c, "%s: %s.file: expected a plain file name (no '/', no '..')", mpath, where);
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->chunks[j].file, p->chunks[i].file)) {
                FAIL(&c, "%s: %s.file: %s is also chunks[%zu]", mpath, where, p->chunks[i].file, j);
                goto done;
            }
        if (get_u64(&c, k, "bytes", where, &ce[i].bytes)) goto done;
        if (ce[i].bytes > SIZE_MAX - ALIGN) {
            FAIL(&c, "%s: %s.bytes: too large", mpath, where);
            goto done;
        }
        if (!is_hex64(&d, tj_obj_get(&d, k, "sha256"), ce[i].sha)) {
            FAIL(&c, "%s: %s.sha256: expected 64 lowercase hex digits", mpath, where);
            goto done;
        }
        uint64_t tier = 0;
        if (tj_obj_get(&d, k, "tier") >= 0 && get_u64(&c, k, "tier", where, &tier)) goto done;
        if (tier > INT32_MAX) {
            FAIL(&c, "%s: %s.tier: too large", mpath, where);
            goto done;
        }
        p->chunks[i].tier = (int32_t)tier;
    }
    /* ---- tokenizer */
    int jt = tj_obj_get(&d, 0, "tokenizer");
    if (jt < 0 || d.toks[jt].type != TJ_OBJ) {
        FAIL(&c, "%s: tokenizer: missing or not an object", mpath);
        goto done;
    }
    int tk = tj_obj_get(&d, jt, "kind");
    if (tj_str_eq(&d, tk, "spm")) p->tokenizer_kind = TRL_TOK_SPM;
    else if (tj_str_eq(&d, tk, "bpe_gpt2")) p->tokenizer_kind = TRL_TOK_BPE_GPT2;
    else {
        FAIL(&c, "%s: tokenizer.kind: expected \"spm\" or \"bpe_gpt2\"", mpath);
        goto done;
    }
    uint64_t tch, toff, tbytes;
    if (get_place(&c, jt, "tokenizer", ce, nc, p->chunks, &tch, &toff, &tbytes) ||
        get_id(&c, jt, "bos_id", "tokenizer", &p->bos_id) || get_id(&c, jt, "eos_id", "tokenizer", &p->eos_id))
        goto done;
    int tt = tj_obj_get(&d, jt, "chat_template");
    if (tt >= 0 && !tj_is_null(&d, tt)) {
        if (d.toks[tt].type != TJ_STR) {
            FAIL(&c, "%s: tokenizer.chat_template: expected a string or null", mpath);
            goto done;
        }
        long n = tj_str_copy(&d, tt, NULL, 0);
        if (!(p->chat_template = malloc((size_t)n + 1))) {
            FAIL(&c, "out of memory");
            goto done;
        }
        tj_str_copy(&d, tt, p->chat_template, (size_t)n + 1);
    }
    /* ---- tensors */
    int jts = tj_obj_get(&d, 0, "tensors");
    if (jts < 0 || d.toks[jts].type != TJ_ARR) {
        FAIL(&c, "%s: tensors: missing or not an array", mpath);
        goto done;
    }
    size_t nt = d.toks[jts].size;
    p->tensors = calloc(nt ? nt : 1, sizeof *p->tensors);
    tchunk = calloc(nt ? nt : 1, sizeof *tchunk);
    toffs = calloc(nt ? nt : 1, sizeof *toffs);
    if (!p->tensors || !tchunk || !toffs) {
        FAIL(&c, "out of memory");
        goto done;
    }
    i = 0;
    int bad = 0;
    for (int k = tj_first(&d, jts); k >= 0 && !bad; k = tj_next(&d, jts, k), i++) {
        char where[48];
        snprintf(where, sizeof where, "tensors[%zu]", i);
        trl_tensor *tn = &p->tensors[i];
        bad = 1;
        if (d.toks[k].type != TJ_OBJ) {
            FAIL(&c, "%s: %s: expected an object", mpath, where);
            break;
        }
        int jn = tj_obj_get(&d, k, "name");
        if (jn < 0 || d.toks[jn].type != TJ_STR || d.toks[jn].end == d.toks[jn].start ||
            d.toks[jn].end - d.toks[jn].start > 200) {
            FAIL(&c, "%s: %s.name: expected a non-empty string", mpath, where);
            break;
        }
        char *nm = malloc(d.toks[jn].end - d.toks[jn].start + 1);
        if (!nm) {
            FAIL(&c, "out of memory");
            break;
        }
        tj_str_copy(&d, jn, nm, d.toks[jn].end - d.toks[jn].start + 1);
        tn->name = nm;
        p->n_tensors = i + 1; /* so close() frees the names so far */
        int je = tj_obj_get(&d, k, "encoding");
        int enc = -1;
        if (je >= 0 && d.toks[je].type == TJ_STR)
            enc = trl_encoding_from_name(d.src + d.toks[je].start, d.toks[je].end - d.toks[je].start);
        if (enc < 0) {
            char v[32];
            if (je < 0 || tj_str_copy(&d, je, v, sizeof v) < 0) snprintf(v, sizeof v, "(missing)");
            FAIL(&c, "%s: %s.encoding: unknown encoding \"%s\" (%s)", mpath, where, v, nm);
            break;
        }
        tn->encoding = (trl_encoding)enc;
        if (version < 2 && enc != TRL_ENC_F32 && enc != TRL_ENC_F16 && enc != TRL_ENC_Q8_0) {
            FAIL(&c, "%s: %s.encoding: %s needs format version 2, but the pack says version %lld (%s)", mpath, where,
                 trl_encoding_name(tn->encoding), (long long)version, nm);
            break;
        }
        if (get_params(&c, k, where, nm, (int)version, &tn->params)) break;
        int js = tj_obj_get(&d, k, "shape");
        if (js < 0 || d.toks[js].type != TJ_ARR || d.toks[js].size < 1 || d.toks[js].size > 2) {
            FAIL(&c, "%s: %s.shape: expected [rows, cols] or [n] (%s)", mpath, where, nm);
            break;
        }
        tn->n_dims = (int32_t)d.toks[js].size;
        int dim_ok = 1, di = 0;
        for (int x = tj_first(&d, js); x >= 0; x = tj_next(&d, js, x), di++) {
            int64_t v;
            if (tj_get_i64(&d, x, &v) || v <= 0 || v > ((int64_t)1 << 40)) dim_ok = 0;
            else tn->shape[di] = v;
        }
        if (!dim_ok) {
            FAIL(&c, "%s: %s.shape: dimensions must be positive integers (%s)", mpath, where, nm);
            break;
        }
        if (tn->n_dims == 1 && tn->encoding != TRL_ENC_F32) {
            FAIL(&c, "%s: %s.encoding: a 1-D tensor must be f32, not %s (%s)", mpath, where,
                 trl_encoding_name(tn->encoding), nm);
            break;
        }
        uint64_t rows = tn->n_dims == 2 ? (uint64_t)tn->shape[0] : 1;
        uint64_t cols = tn->n_dims == 2 ? (uint64_t)tn->shape[1] : (uint64_t)tn->shape[0];
        uint64_t bytes;
        if (get_place(&c, k, where, ce, nc, p->chunks, &tchunk[i], &toffs[i], &bytes)) break;
        trl_error pe;
        if (trl_enc_params_check(tn->encoding, &tn->params, rows, cols, &pe) != TRL_OK) {
            FAIL(&c, "%s: %s.%s (%s)", mpath, where, pe.msg, nm);
            break;
        }
        size_t want = trl_tensor_bytes(tn->encoding, &tn->params, rows, cols);
        if (!want || bytes != want) {
            char shp[64];
            if (tn->n_dims == 2) snprintf(shp, sizeof shp, "[%llu, %llu]", (unsigned long long)rows,
                                          (unsigned long long)cols);
            else snprintf(shp, sizeof shp, "[%llu]", (unsigned long long)cols);
            FAIL(&c, "%s: %s.bytes: %llu does not match shape %s in %s (expected %zu) (%s)", mpath, where,
                 (unsigned long long)bytes, shp, trl_encoding_name(tn->encoding), want, nm);
            break;
        }
        tn->bytes = want;
        bad = 0;
    }
    if (bad) {
        goto done;
    }
    p->tensor_tier = malloc((nt ? nt : 1) * sizeof *p->tensor_tier);
    if (!p->tensor_tier) {
        FAIL(&c, "out of memory");
        goto done;
    }
    for (i = 0; i < nt; i++) p->tensor_tier[i] = p->chunks[tchunk[i]].tier;
    if (version >= 3) {
        /* a family: a name may repeat in other tiers (each member's tier), never within one */
        name_tier *pairs = malloc((nt ? nt : 1) * sizeof *pairs);
        if (!pairs) {
            FAIL(&c, "out of memory");
            goto done;
        }
        for (i = 0; i < nt; i++) pairs[i].name = p->tensors[i].name, pairs[i].tier = p->tensor_tier[i];
        qsort(pairs, nt, sizeof *pairs, cmp_name_tier);
        for (size_t j = 1; j < nt; j++)
            if (!cmp_name_tier(&pairs[j - 1], &pairs[j])) {
                FAIL(&c, "%s: tensors: name %s appears twice in tier %d", mpath, pairs[j].name, (int)pairs[j].tier);
                free(pairs);
                goto done;
            }
        free(pairs);
    } else {
        /* unique names (sorted copy: a hostile manifest cannot make this quadratic) */
        sorted = malloc((nt ? nt : 1) * sizeof *sorted);
        if (!sorted) {
            FAIL(&c, "out of memory");
            goto done;
        }
        if (nt) memcpy(sorted, p->tensors, nt * sizeof *sorted);
        qsort(sorted, nt, sizeof *sorted, cmp_name);
        for (size_t j = 1; j < nt; j++)
            if (!strcmp(sorted[j - 1].name, sorted[j].name)) {
                FAIL(&c, "%s: tensors: name %s appears twice", mpath, sorted[j].name);
                goto done;
            }
    }
    /* ---- chunk data: size and sha256 before a byte is used */
    for (i = 0; i < nc; i++)
        if (read_chunk(&c, dir, i, &ce[i], &p->chunks[i])) {
            goto done;
        }
    /* ---- variants: after the chunks, so a chunk whose size the manifest
     * misstates is reported as such, not as a variant's wrong total */
    if (get_variants(&c, p, ce)) goto done;
    if (version >= 3 && check_variant_names(&c, p)) goto done;
    for (i = 0; i < nt; i++) p->tensors[i].data = p->chunks[tchunk[i]].data + toffs[i];
    p->tokenizer = p->chunks[tch].data + toff;
    p->tokenizer_bytes = (size_t)tbytes;
    *out = p;
    p = NULL;
    rc = 0;
done:
    tj_free(&d);
    free(tchunk);
    free(toffs);
    free(sorted);
    free(ce);
    free(mpath);
    trlc_pack_close(p);
    return rc;
}

const trl_tensor *trlc_pack_find(const trlc_pack *p, const char *name) {
    for (size_t i = 0; i < p->n_tensors; i++)
        if (!strcmp(p->tensors[i].name, name)) return &p->tensors[i];
    return NULL;
}

const trlc_pack_variant *trlc_pack_variant_find(const trlc_pack *p, const char *id) {
    for (size_t i = 0; i < p->n_variants; i++)
        if (!strcmp(p->variants[i].id, id)) return &p->variants[i];
    return NULL;
}
