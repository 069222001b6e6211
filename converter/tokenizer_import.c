/* tokenizer_import.c - llama2.c tokenizer.bin and Hugging Face tokenizer.json
 * to the tokenizer blob (docs/FORMAT.md, "Tokenizer blob"); see
 * tokenizer_import.h. */
#include "tokenizer_import.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tokenizer_blob.h"
#include "trillium.h"

#define MAX_VOCAB (1 << 24) /* far above any real vocab; keeps a bad id from sizing a huge table */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int errf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    *data = NULL;
    *len = 0;
    if (!path) return errf(err, errlen, "no path given");
    FILE *f = fopen(path, "rb");
    if (!f) return errf(err, errlen, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return errf(err, errlen, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap > ((size_t)1 << 31)) {
                free(buf);
                fclose(f);
                return errf(err, errlen, "%s: larger than 2 GiB, not a tokenizer", path);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return errf(err, errlen, "%s: out of memory reading %zu bytes", path, cap * 2);
            }
            buf = nb, cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return errf(err, errlen, "%s: read error", path);
    }
    *data = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------ blob builder */

typedef struct tb {
    int kind, pretok;
    uint32_t flags;
    int32_t n, bos, eos, unk;
    uint8_t *types;  /* (n) */
    uint32_t *plen;  /* (n) */
    size_t *poff;    /* (n) into arena */
    float *scores;   /* (n) spm */
    uint8_t *arena;
    size_t arena_n, arena_cap;
    uint32_t *merges; /* (2 * merge_cap) */
    uint32_t n_merges, merge_cap;
} tb;

static int tb_init(tb *b, int kind, int32_t n) {
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->n = n;
    b->bos = b->eos = b->unk = -1;
    b->types = calloc((size_t)n, 1);
    b->plen = calloc((size_t)n, sizeof *b->plen);
    b->poff = calloc((size_t)n, sizeof *b->poff);
    b->scores = calloc((size_t)n, sizeof *b->scores);
    return (b->types && b->plen && b->poff && b->scores) ? 0 : -1;
}

static void tb_free(tb *b) {
    free(b->types);
    free(b->plen);
    free(b->poff);
    free(b->scores);
    free(b->arena);
    free(b->merges);
    memset(b, 0, sizeof *b);
}

static int tb_set_piece(tb *b, int32_t id, const void *p, size_t len) {
    if (len > UINT32_MAX) return -1;
    if (b->arena_cap - b->arena_n < len) {
        size_t cap = b->arena_cap ? b->arena_cap : 4096;
        while (cap - b->arena_n < len) {
            if (cap > SIZE_MAX / 2) return -1;
            cap *= 2;
        }
        uint8_t *na = realloc(b->arena, cap);
        if (!na) return -1;
        b->arena = na, b->arena_cap = cap;
    }
    if (len) memcpy(b->arena + b->arena_n, p, len);
    b->poff[id] = b->arena_n;
    b->plen[id] = (uint32_t)len;
    b->arena_n += len;
    return 0;
}

static int tb_add_merge(tb *b, uint32_t l, uint32_t r) {
    if (b->n_merges == b->merge_cap) {
        uint32_t cap = b->merge_cap ? b->merge_cap * 2 : 1024;
        if (cap > (1u << 28)) return -1;
        uint32_t *nm = realloc(b->merges, sizeof(uint32_t) * 2 * cap);
        if (!nm) return -1;
        b->merges = nm, b->merge_cap = cap;
    }
    b->merges[2 * b->n_merges] = l;
    b->merges[2 * b->n_merges + 1] = r;
    b->n_merges++;
    return 0;
}

static size_t uleb_size(uint32_t v) {
    size_t k = 1;
    while (v >= 0x80) v >>= 7, k++;
    return k;
}
static uint8_t *uleb_put(uint8_t *p, uint32_t v) {
    while (v >= 0x80) *p++ = (uint8_t)(v | 0x80), v >>= 7;
    *p++ = (uint8_t)v;
    return p;
}
static uint8_t *put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static int tb_write(const tb *b, const char *name, void **blob, size_t *blob_len, char *err, size_t errlen) {
    uint64_t len_bytes = 0, piece_bytes = 0, merge_bytes = 0;
    for (int32_t i = 0; i < b->n; i++) len_bytes += uleb_size(b->plen[i]), piece_bytes += b->plen[i];
    for (uint32_t i = 0; i < 2 * b->n_merges; i++) merge_bytes += uleb_size(b->merges[i]);
    uint64_t score_bytes = b->kind == 0 ? 4ull * (uint64_t)b->n : 0;
    if (len_bytes > UINT32_MAX || piece_bytes > UINT32_MAX || merge_bytes > UINT32_MAX)
        return errf(err, errlen, "%s: tokenizer too large for the blob format (pieces %llu bytes)", name,
                    (unsigned long long)piece_bytes);
    uint64_t total = TRL_TOKBLOB_HEADER_BYTES + (uint64_t)b->n + len_bytes + piece_bytes + score_bytes + merge_bytes;
    if (total > SIZE_MAX / 2) return errf(err, errlen, "%s: tokenizer too large", name);
    uint8_t *out = malloc((size_t)total), *p = out;
    if (!out) return errf(err, errlen, "%s: out of memory for a %llu-byte blob", name, (unsigned long long)total);
    memcpy(p, TRL_TOKBLOB_MAGIC, 4), p += 4;
    *p++ = TRL_TOKBLOB_VERSION & 0xFF;
    *p++ = TRL_TOKBLOB_VERSION >> 8;
    *p++ = (uint8_t)b->kind;
    *p++ = (uint8_t)b->pretok;
    p = put_u32(p, b->flags);
    p = put_u32(p, (uint32_t)b->n);
    p = put_u32(p, b->n_merges);
    p = put_u32(p, (uint32_t)b->bos);
    p = put_u32(p, (uint32_t)b->eos);
    p = put_u32(p, (uint32_t)b->unk);
    p = put_u32(p, (uint32_t)len_bytes);
    p = put_u32(p, (uint32_t)piece_bytes);
    p = put_u32(p, (uint32_t)merge_bytes);
    p = put_u32(p, 0);
    memcpy(p, b->types, (size_t)b->n), p += b->n;
    for (int32_t i = 0; i < b->n; i++) p = uleb_put(p, b->plen[i]);
    for (int32_t i = 0; i < b->n; i++) {
        if (b->plen[i]) memcpy(p, b->arena + b->poff[i], b->plen[i]);
        p += b->plen[i];
    }
    if (b->kind == 0)
        for (int32_t i = 0; i < b->n; i++) {
            uint32_t u;
            memcpy(&u, &b->scores[i], 4);
            p = put_u32(p, u);
        }
    for (uint32_t i = 0; i < 2 * b->n_merges; i++) p = uleb_put(p, b->merges[i]);
    /* what the importer accepts, the core must load: check with the core itself */
    trl_tokenizer *t = NULL;
    trl_error e;
    if (trl_tokenizer_create(out, (size_t)total, &t, &e) != TRL_OK) {
        free(out);
        return errf(err, errlen, "%s: the converted tokenizer does not load: %s", name, e.msg);
    }
    trl_tokenizer_free(t);
    *blob = out;
    *blob_len = (size_t)total;
    return 0;
}

/* "<0xNN>" -> NN, else -1 */
static int byte_piece(const uint8_t *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

static const uint8_t MARKER[3] = {0xE2, 0x96, 0x81}; /* U+2581, SentencePiece's space */

static int has_marker(const uint8_t *s, size_t n) {
    for (size_t i = 0; i + 3 <= n; i++)
        if (!memcmp(s + i, MARKER, 3)) return 1;
    return 0;
}

/* U+2581 -> ' ' in place; returns the new length */
static size_t unmark(uint8_t *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(s + i, MARKER, 3)) s[o++] = ' ', i += 3;
        else s[o++] = s[i++];
    }
    return o;
}

static void info_init(trlc_tokenizer_info *info, const tb *b, int32_t add_bos) {
    memset(info, 0, sizeof *info);
    info->bos_id = b->bos;
    info->eos_id = b->eos;
    info->kind = b->kind;
    info->vocab_size = b->n;
    info->add_bos = add_bos;
}

void trlc_tokenizer_info_free(trlc_tokenizer_info *info) {
    if (!info) return;
    free(info->chat_template);
    info->chat_template = NULL;
}

/* ------------------------------------------------------------ llama2.c */

static int32_t rd_i32(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

int trlc_tokenizer_from_llama2c_mem(const void *data, size_t len, int32_t vocab_size, const char *name,
                                    void **blob, size_t *blob_len, trlc_tokenizer_info *info, char *err,
                                    size_t errlen) {
    if (!name) name = "tokenizer.bin";
    if (!blob || !blob_len || !info) return errf(err, errlen, "%s: NULL output argument", name);
    const uint8_t *d = data;
    if (!d || len < 4)
        return errf(err, errlen, "%s: %zu bytes, shorter than the 4-byte max_token_length header", name,
                    d ? len : 0);
    int32_t maxlen = rd_i32(d);
    if (maxlen < 0) return errf(err, errlen, "%s: max_token_length %d is negative", name, maxlen);
    /* first pass: count and bound-check every token */
    size_t pos = 4;
    int32_t count = 0;
    int any_space = 0, any_marker = 0;
    while (vocab_size > 0 ? count < vocab_size : pos < len) {
        if (len - pos < 8) {
            if (vocab_size > 0)
                return errf(err, errlen, "%s: the file ends after %d of %d tokens (offset %zu)", name, count,
                            vocab_size, pos);
            return errf(err, errlen, "%s: token %d: truncated score/length at offset %zu", name, count, pos);
        }
        int32_t l = rd_i32(d + pos + 4);
        if (l < 0 || (size_t)l > len - pos - 8)
            return errf(err, errlen, "%s: token %d: length %d at offset %zu runs past the end (%zu bytes)", name,
                        count, l, pos + 4, len);
        if (memchr(d + pos + 8, ' ', (size_t)l)) any_space = 1;
        if (has_marker(d + pos + 8, (size_t)l)) any_marker = 1;
        pos += 8 + (size_t)l;
        if (++count > MAX_VOCAB) return errf(err, errlen, "%s: more than %d tokens", name, MAX_VOCAB);
    }
    if (count == 0) return errf(err, errlen, "%s: no tokens", name);
    tb b;
    if (tb_init(&b, 0, count)) {
        tb_free(&b);
        return errf(err, errlen, "%s: out of memory for %d tokens", name, count);
    }
    /* llama2.c's export stores plain spaces; a file that kept U+2581 (and has
     * no plain space anywhere) gets the same treatment as HF Llama. */
    int unmark_spaces = any_marker && !any_space;
    b.flags = TRL_TOKF_SPM_PREFIX | (unmark_spaces ? TRL_TOKF_SPM_SPACE_MARKER : 0);
    b.bos = count > 1 ? 1 : -1; /* llama2.c hard-codes BOS 1, EOS 2 */
    b.eos = count > 2 ? 2 : -1;
    uint8_t *tmp = malloc((size_t)maxlen + 1 > len ? len : (size_t)maxlen + 1);
    size_t tmpcap = (size_t)maxlen + 1 > len ? len : (size_t)maxlen + 1;
    int rc = tmp ? 0 : -1;
    pos = 4;
    for (int32_t i = 0; i < count && !rc; i++) {
        float score;
        memcpy(&score, d + pos, 4); /* the file is little-endian, as is every target */
        size_t l = (size_t)rd_i32(d + pos + 4);
        const uint8_t *s = d + pos + 8;
        pos += 8 + l;
        if (l > tmpcap) {
            uint8_t *nt = realloc(tmp, l);
            if (!nt) {
                rc = -1;
                break;
            }
            tmp = nt, tmpcap = l;
        }
        if (l) memcpy(tmp, s, l);
        if (unmark_spaces) l = unmark(tmp, l);
        int bv = byte_piece(tmp, l);
        uint8_t type = TRL_TOKT_NORMAL;
        if (bv >= 0) {
            type = TRL_TOKT_BYTE;
            tmp[0] = (uint8_t)bv, l = 1;
        } else if (i == b.bos || i == b.eos || (i == 0 && l == 5 && !memcmp(tmp, "<unk>", 5))) {
            type = TRL_TOKT_CONTROL;
            if (i == 0) b.unk = 0;
        }
        b.types[i] = type;
        b.scores[i] = score;
        if (tb_set_piece(&b, i, tmp, l)) rc = -1;
    }
    free(tmp);
    if (rc) {
        tb_free(&b);
        return errf(err, errlen, "%s: out of memory", name);
    }
    void *out;
    size_t out_len;
    rc = tb_write(&b, name, &out, &out_len, err, errlen);
    if (!rc) {
        info_init(info, &b, 1);
        *blob = out;
        *blob_len = out_len;
    }
    tb_free(&b);
    return rc;
}

int trlc_tokenizer_from_llama2c(const char *path, int32_t vocab_size, void **blob, size_t *blob_len,
                                trlc_tokenizer_info *info, char *err, size_t errlen) {
    char *data;
    size_t len;
    if (read_file(path, &data, &len, err, errlen)) return -1;
    int rc = trlc_tokenizer_from_llama2c_mem(data, len, vocab_size, path, blob, blob_len, info, err, errlen);
    free(data);
    return rc;
}

/* ------------------------------------------------------------ Hugging Face */

static const char REGEX_GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char REGEX_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* string -> id, open addressing over strings kept elsewhere */
typedef struct smap_ent {
    const char *s;
    uint32_t len;
    int32_t id;
} smap_ent;
typedef struct smap {
    smap_ent *e;
    uint32_t mask;
} smap;

static uint32_t str_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h ^ (h >> 15);
}

static int smap_init(smap *m, uint32_t n) {
    uint32_t cap = 16;
    while (cap < n * 2u + 1) cap <<= 1;
    m->e = calloc(cap, sizeof *m->e);
    m->mask = cap - 1;
    return m->e ? 0 : -1;
}

static int32_t smap_get(const smap *m, const char *s, size_t n) {
    for (uint32_t i = str_hash(s, n) & m->mask;; i = (i + 1) & m->mask) {
        const smap_ent *e = &m->e[i];
        if (!e->s) return -1;
        if (e->len == n && !memcmp(e->s, s, n)) return e->id;
    }
}

/* 0 added, 1 already present */
static int smap_put(smap *m, const char *s, uint32_t n, int32_t id) {
    uint32_t i = str_hash(s, n) & m->mask;
    for (; m->e[i].s; i = (i + 1) & m->mask)
        if (m->e[i].len == n && !memcmp(m->e[i].s, s, n)) return 1;
    m->e[i] = (smap_ent){s, n, id};
    return 0;
}

/* GPT-2's bytes_to_unicode, inverted: code point (< 324) -> byte, -1 if none */
static void byte_decoder(int16_t u2b[324]) {
    for (int i = 0; i < 324; i++) u2b[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable) u2b[b] = (int16_t)b;
        else u2b[256 + n++] = (int16_t)b;
    }
}

/* decode a byte-level token string in place; -1 on a character outside the
 * map (its code point in *bad) */
static long bytelevel_decode(uint8_t *s, size_t n, const int16_t u2b[324], uint32_t *bad) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k;
        uint8_t c = s[i];
        if (c < 0x80) cp = c, k = 1;
        else if ((c & 0xE0) == 0xC0 && i + 1 < n) cp = (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F), k = 2;
        else {
            *bad = c;
            return -1;
        }
        if (cp >= 324 || u2b[cp] < 0) {
            *bad = cp;
            return -1;
        }
        s[o++] = (uint8_t)u2b[cp];
        i += k;
    }
    return (long)o;
}

typedef struct hf {
    const char *name;  /* tokenizer.json's name for messages */
    const tj_doc *d;
    char *err;
    size_t errlen;
    /* what the pre-tokenizer / normalizer walk found */
    int bytelevel, bl_use_regex, split_pretok, metaspace, ms_flags, prepend, marker, nfc;
} hf;

static int is_type(const tj_doc *d, int obj, const char *type) {
    return tj_str_eq(d, tj_obj_get(d, obj, "type"), type);
}

/* copy a string token into a malloc'd NUL-terminated buffer */
static char *str_dup_tok(const tj_doc *d, int tok, size_t *len) {
    long n = tj_str_copy(d, tok, NULL, 0);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    tj_str_copy(d, tok, s, (size_t)n + 1);
    if (len) *len = (size_t)n;
    return s;
}

static int opt_bool(hf *h, int obj, const char *key, int dflt, const char *field, int *out) {
    int t = tj_obj_get(h->d, obj, key);
    *out = dflt;
    if (t < 0 || tj_is_null(h->d, t)) return 0;
    if (tj_get_bool(h->d, t, out)) return errf(h->err, h->errlen, "%s: %s.%s: not a boolean", h->name, field, key);
    return 0;
}

static int walk_pretok(hf *h, int tok, const char *field) {
    const tj_doc *d = h->d;
    if (tok < 0 || tj_is_null(d, tok)) return 0;
    if (d->toks[tok].type != TJ_OBJ) return errf(h->err, h->errlen, "%s: %s: not an object", h->name, field);
    char sub[160];
    if (is_type(d, tok, "Sequence")) {
        int arr = tj_obj_get(d, tok, "pretokenizers");
        if (arr < 0 || d->toks[arr].type != TJ_ARR)
            return errf(h->err, h->errlen, "%s: %s.pretokenizers: missing or not an array", h->name, field);
        uint32_t i = 0;
        for (int e = tj_first(d, arr); e >= 0; e = tj_next(d, arr, e), i++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%u]", field, i);
            if (walk_pretok(h, e, sub)) return -1;
        }
        return 0;
    }
    if (is_type(d, tok, "ByteLevel")) {
        int aps;
        if (opt_bool(h, tok, "add_prefix_space", 0, field, &aps) ||
            opt_bool(h, tok, "use_regex", 1, field, &h->bl_use_regex))
            return -1;
        if (aps)
            return errf(h->err, h->errlen, "%s: %s.add_prefix_space: true is not supported (the text would change)",
                        h->name, field);
        h->bytelevel = 1;
        return 0;
    }
    if (is_type(d, tok, "Split")) {
        int pat = tj_obj_get(d, tok, "pattern");
        int rx = tj_obj_get(d, pat, "Regex");
        if (rx < 0 || d->toks[rx].type != TJ_STR)
            return errf(h->err, h->errlen, "%s: %s.pattern: only a {\"Regex\": ...} pattern is supported", h->name,
                        field);
        int which = tj_str_eq(d, rx, REGEX_GPT2) ? TRL_PRETOK_GPT2 : tj_str_eq(d, rx, REGEX_LLAMA3) ? TRL_PRETOK_LLAMA3 : 0;
        if (!which) {
            /* tj_str_eq compares at most 255 bytes after unescaping; compare in full */
            size_t n;
            char *s = str_dup_tok(d, rx, &n);
            if (s && !strcmp(s, REGEX_GPT2)) which = TRL_PRETOK_GPT2;
            else if (s && !strcmp(s, REGEX_LLAMA3)) which = TRL_PRETOK_LLAMA3;
            free(s);
        }
        if (!which)
            return errf(h->err, h->errlen,
                        "%s: %s.pattern.Regex: unknown pre-tokenizer regex (supported: the GPT-2 and Llama 3 ones)",
                        h->name, field);
        int beh = tj_obj_get(d, tok, "behavior");
        if (beh >= 0 && !tj_str_eq(d, beh, "Isolated"))
            return errf(h->err, h->errlen, "%s: %s.behavior: only \"Isolated\" is supported", h->name, field);
        int inv;
        if (opt_bool(h, tok, "invert", 0, field, &inv)) return -1;
        if (inv) return errf(h->err, h->errlen, "%s: %s.invert: true is not supported", h->name, field);
        if (h->split_pretok)
            return errf(h->err, h->errlen, "%s: %s: more than one Split regex is not supported", h->name, field);
        h->split_pretok = which;
        return 0;
    }
    if (is_type(d, tok, "Metaspace")) {
        int rep = tj_obj_get(d, tok, "replacement");
        if (rep >= 0 && !tj_str_eq(d, rep, "\xE2\x96\x81"))
            return errf(h->err, h->errlen, "%s: %s.replacement: only U+2581 is supported", h->name, field);
        int split;
        if (opt_bool(h, tok, "split", 1, field, &split)) return -1;
        if (split)
            return errf(h->err, h->errlen,
                        "%s: %s.split: true is not supported (SentencePiece does not split on spaces)", h->name,
                        field);
        int ps = tj_obj_get(d, tok, "prepend_scheme");
        if (ps >= 0) {
            if (tj_str_eq(d, ps, "always")) h->ms_flags = TRL_TOKF_SPM_PREFIX | TRL_TOKF_SPM_PREFIX_NOSPACE;
            else if (tj_str_eq(d, ps, "first"))
                h->ms_flags = TRL_TOKF_SPM_PREFIX | TRL_TOKF_SPM_PREFIX_FIRST | TRL_TOKF_SPM_PREFIX_NOSPACE;
            else if (tj_str_eq(d, ps, "never")) h->ms_flags = 0;
            else
                return errf(h->err, h->errlen, "%s: %s.prepend_scheme: not \"always\", \"first\" or \"never\"",
                            h->name, field);
        } else {
            int aps;
            if (opt_bool(h, tok, "add_prefix_space", 1, field, &aps)) return -1;
            h->ms_flags = aps ? TRL_TOKF_SPM_PREFIX | TRL_TOKF_SPM_PREFIX_NOSPACE : 0;
        }
        h->metaspace = 1;
        return 0;
    }
    return errf(h->err, h->errlen, "%s: %s.type: this pre-tokenizer is not supported", h->name, field);
}

static int walk_normalizer(hf *h, int tok, const char *field) {
    const tj_doc *d = h->d;
    if (tok < 0 || tj_is_null(d, tok)) return 0;
    if (d->toks[tok].type != TJ_OBJ) return errf(h->err, h->errlen, "%s: %s: not an object", h->name, field);
    char sub[160];
    if (is_type(d, tok, "Sequence")) {
        int arr = tj_obj_get(d, tok, "normalizers");
        if (arr < 0 || d->toks[arr].type != TJ_ARR)
            return errf(h->err, h->errlen, "%s: %s.normalizers: missing or not an array", h->name, field);
        uint32_t i = 0;
        for (int e = tj_first(d, arr); e >= 0; e = tj_next(d, arr, e), i++) {
            snprintf(sub, sizeof sub, "%s.normalizers[%u]", field, i);
            if (walk_normalizer(h, e, sub)) return -1;
        }
        return 0;
    }
    if (is_type(d, tok, "Prepend")) {
        if (!tj_str_eq(d, tj_obj_get(d, tok, "prepend"), "\xE2\x96\x81"))
            return errf(h->err, h->errlen, "%s: %s.prepend: only U+2581 is supported", h->name, field);
        h->prepend = 1;
        return 0;
    }
    if (is_type(d, tok, "Replace")) {
        int pat = tj_obj_get(d, tok, "pattern");
        if (!tj_str_eq(d, tj_obj_get(d, pat, "String"), " ") ||
            !tj_str_eq(d, tj_obj_get(d, tok, "content"), "\xE2\x96\x81"))
            return errf(h->err, h->errlen, "%s: %s: only Replace(\" \", U+2581) is supported", h->name, field);
        h->marker = 1;
        return 0;
    }
    if (is_type(d, tok, "NFC")) {
        h->nfc = 1;
        return 0;
    }
    return errf(h->err, h->errlen, "%s: %s.type: this normalizer is not supported", h->name, field);
}

/* id of the token whose text is s: an added token's content first, then a vocab piece */
static int32_t find_token(const tb *b, const char *s, size_t n) {
    for (int pass = 0; pass < 2; pass++)
        for (int32_t i = 0; i < b->n; i++) {
            int added = (b->types[i] & TRL_TOKT_ADDED) != 0;
            if (added == (pass == 0) && b->plen[i] == n && !memcmp(b->arena + b->poff[i], s, n)) return i;
        }
    return -1;
}

/* bos_token / eos_token of tokenizer_config.json: "text" or {"content": "text"}.
 * Returns 0 with *id = -1 when absent or null, -1 on a malformed value. */
static int config_token(hf *h, const tj_doc *c, const char *cname, const tb *b, const char *key, int32_t *id,
                        int *present) {
    *id = -1;
    *present = 0;
    int t = tj_obj_get(c, 0, key);
    if (t < 0 || tj_is_null(c, t)) return 0;
    if (c->toks[t].type == TJ_OBJ) t = tj_obj_get(c, t, "content");
    if (t < 0 || c->toks[t].type != TJ_STR)
        return errf(h->err, h->errlen, "%s: %s: not a string or {\"content\": string}", cname, key);
    size_t n;
    char *s = str_dup_tok(c, t, &n);
    if (!s) return errf(h->err, h->errlen, "%s: out of memory", cname);
    *id = find_token(b, s, n);
    *present = 1;
    if (*id < 0) {
        errf(h->err, h->errlen, "%s: %s: \"%.60s\" is not a token of %s", cname, key, s, h->name);
        free(s);
        return -1;
    }
    free(s);
    return 0;
}

/* A TemplateProcessing post-processor (possibly inside a Sequence): the
 * special tokens around $A in "single" give BOS (before) and EOS (after). */
static void template_tokens(hf *h, const tb *b, int tok, int32_t *bos, int32_t *eos, int depth) {
    const tj_doc *d = h->d;
    if (tok < 0 || d->toks[tok].type != TJ_OBJ || depth > 4) return;
    if (is_type(d, tok, "Sequence")) {
        int arr = tj_obj_get(d, tok, "processors");
        if (arr < 0 || d->toks[arr].type != TJ_ARR) return;
        for (int e = tj_first(d, arr); e >= 0; e = tj_next(d, arr, e)) template_tokens(h, b, e, bos, eos, depth + 1);
        return;
    }
    if (!is_type(d, tok, "TemplateProcessing")) return;
    int single = tj_obj_get(d, tok, "single");
    if (single < 0 || d->toks[single].type != TJ_ARR) return;
    int seen_seq = 0;
    for (int e = tj_first(d, single); e >= 0; e = tj_next(d, single, e)) {
        if (tj_obj_get(d, e, "Sequence") >= 0) {
            seen_seq = 1;
            continue;
        }
        int st = tj_obj_get(d, tj_obj_get(d, e, "SpecialToken"), "id");
        if (st < 0 || d->toks[st].type != TJ_STR) continue;
        size_t n;
        char *s = str_dup_tok(d, st, &n);
        if (!s) continue;
        int32_t id = find_token(b, s, n);
        free(s);
        if (id < 0) continue;
        if (!seen_seq && *bos < 0) *bos = id;
        if (seen_seq && *eos < 0) *eos = id;
    }
}

static int hf_build(hf *h, const tj_doc *c, const char *cname, tb *b, trlc_tokenizer_info *info) {
    const tj_doc *d = h->d;
    const char *nm = h->name;
    char *err = h->err;
    size_t errlen = h->errlen;
    if (d->n == 0 || d->toks[0].type != TJ_OBJ) return errf(err, errlen, "%s: the top level is not an object", nm);
    int model = tj_obj_get(d, 0, "model");
    if (model < 0 || d->toks[model].type != TJ_OBJ)
        return errf(err, errlen, "%s: model: missing or not an object", nm);
    int mt = tj_obj_get(d, model, "type");
    if (mt >= 0 && !tj_str_eq(d, mt, "BPE"))
        return errf(err, errlen, "%s: model.type: only \"BPE\" is supported (Unigram, WordPiece are not)", nm);
    int vocab = tj_obj_get(d, model, "vocab"), merges = tj_obj_get(d, model, "merges");
    if (vocab < 0 || d->toks[vocab].type != TJ_OBJ)
        return errf(err, errlen, "%s: model.vocab: missing or not an object", nm);
    if (merges < 0 || d->toks[merges].type != TJ_ARR)
        return errf(err, errlen, "%s: model.merges: missing or not an array", nm);
    int byte_fallback, ignore_merges;
    if (opt_bool(h, model, "byte_fallback", 0, "model", &byte_fallback) ||
        opt_bool(h, model, "ignore_merges", 0, "model", &ignore_merges))
        return -1;
    static const char *const affixes[2] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        int t = tj_obj_get(d, model, affixes[k]);
        if (t >= 0 && !tj_is_null(d, t) && !tj_str_eq(d, t, ""))
            return errf(err, errlen, "%s: model.%s: not supported", nm, affixes[k]);
    }
    if (walk_pretok(h, tj_obj_get(d, 0, "pre_tokenizer"), "pre_tokenizer") ||
        walk_normalizer(h, tj_obj_get(d, 0, "normalizer"), "normalizer"))
        return -1;
    int kind, pretok = TRL_PRETOK_NONE;
    uint32_t flags = h->nfc ? TRL_TOKF_NFC : 0;
    if (h->bytelevel) {
        kind = 1;
        if (h->metaspace || h->prepend || h->marker)
            return errf(err, errlen, "%s: pre_tokenizer/normalizer: ByteLevel mixed with Metaspace/Prepend/Replace", nm);
        if (h->split_pretok && h->bl_use_regex)
            return errf(err, errlen,
                        "%s: pre_tokenizer: a Split regex and a ByteLevel with use_regex true (two regexes) is not "
                        "supported",
                        nm);
        pretok = h->split_pretok ? h->split_pretok : h->bl_use_regex ? TRL_PRETOK_GPT2 : 0;
        if (!pretok) return errf(err, errlen, "%s: pre_tokenizer: ByteLevel with use_regex false and no Split regex", nm);
        if (ignore_merges) flags |= TRL_TOKF_BPE_IGNORE_MERGES;
    } else if (h->split_pretok) {
        return errf(err, errlen, "%s: pre_tokenizer: a Split regex without ByteLevel is not supported", nm);
    } else if (byte_fallback || h->metaspace || h->marker || h->prepend) {
        kind = 0;
        if (h->metaspace || h->marker) flags |= TRL_TOKF_SPM_SPACE_MARKER;
        if (h->prepend) flags |= TRL_TOKF_SPM_PREFIX;
        else flags |= (uint32_t)h->ms_flags;
    } else {
        int dec = tj_obj_get(d, 0, "decoder");
        if (dec >= 0 && is_type(d, dec, "ByteLevel"))
            return errf(err, errlen, "%s: decoder is ByteLevel but pre_tokenizer has no ByteLevel", nm);
        return errf(err, errlen,
                    "%s: model: neither byte-level (a ByteLevel pre_tokenizer) nor SentencePiece-style "
                    "(byte_fallback, Metaspace or a U+2581 normalizer)",
                    nm);
    }

    /* ids: vocab members and added tokens; holes stay empty control tokens */
    int64_t max_id = -1;
    uint32_t n_entries = 0;
    for (int k = tj_first(d, vocab); k >= 0; k = tj_next(d, vocab, k + 1)) {
        int64_t id;
        if (tj_get_i64(d, k + 1, &id) || id < 0 || id >= MAX_VOCAB)
            return errf(err, errlen, "%s: model.vocab: entry %u: id is not an integer in [0, %d)", nm, n_entries,
                        MAX_VOCAB);
        if (id > max_id) max_id = id;
        n_entries++;
    }
    int added = tj_obj_get(d, 0, "added_tokens");
    if (added >= 0 && !tj_is_null(d, added) && d->toks[added].type != TJ_ARR)
        return errf(err, errlen, "%s: added_tokens: not an array", nm);
    if (added >= 0 && d->toks[added].type != TJ_ARR) added = -1;
    uint32_t ai = 0;
    for (int e = added >= 0 ? tj_first(d, added) : -1; e >= 0; e = tj_next(d, added, e), ai++) {
        int64_t id;
        int ct = tj_obj_get(d, e, "content");
        if (tj_get_i64(d, tj_obj_get(d, e, "id"), &id) || id < 0 || id >= MAX_VOCAB)
            return errf(err, errlen, "%s: added_tokens[%u].id: not an integer in [0, %d)", nm, ai, MAX_VOCAB);
        if (ct < 0 || d->toks[ct].type != TJ_STR)
            return errf(err, errlen, "%s: added_tokens[%u].content: missing or not a string", nm, ai);
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return errf(err, errlen, "%s: model.vocab: empty", nm);
    if (max_id >= 2 * ((int64_t)n_entries + ai) + 1024)
        return errf(err, errlen, "%s: model.vocab/added_tokens: id %lld is far beyond the %u tokens listed", nm,
                    (long long)max_id, n_entries + ai);
    int32_t n = (int32_t)max_id + 1;
    if (tb_init(b, kind, n)) return errf(err, errlen, "%s: out of memory for %d tokens", nm, n);
    b->pretok = pretok;
    b->flags = flags;
    for (int32_t i = 0; i < n; i++) b->types[i] = TRL_TOKT_CONTROL, b->scores[i] = -1e30f;
    uint8_t *seen = calloc((size_t)n, 1);
    char *keys = malloc(d->len + 1); /* unescaped keys never outgrow the JSON text */
    smap map = {0};
    char *mbuf = NULL;
    int rc = -1;
    if (!seen || !keys || smap_init(&map, n_entries)) {
        errf(err, errlen, "%s: out of memory", nm);
        goto done;
    }
    int16_t u2b[324];
    byte_decoder(u2b);
    size_t kn = 0;
    for (int k = tj_first(d, vocab); k >= 0; k = tj_next(d, vocab, k + 1)) {
        int64_t id64;
        tj_get_i64(d, k + 1, &id64);
        int32_t id = (int32_t)id64;
        long l = tj_str_copy(d, k, keys + kn, d->len + 1 - kn);
        if (l < 0 || (size_t)l >= d->len + 1 - kn) {
            errf(err, errlen, "%s: model.vocab: bad key for id %d", nm, id);
            goto done;
        }
        char *key = keys + kn;
        kn += (size_t)l + 1;
        if (seen[id]) {
            errf(err, errlen, "%s: model.vocab: id %d is used twice", nm, id);
            goto done;
        }
        seen[id] = 1;
        if (smap_put(&map, key, (uint32_t)l, id)) {
            errf(err, errlen, "%s: model.vocab: \"%.60s\" appears twice", nm, key);
            goto done;
        }
        /* the piece as raw bytes, built in a scratch copy */
        uint8_t tmpb[256];
        uint8_t *tmp = (size_t)l <= sizeof tmpb ? tmpb : malloc((size_t)l);
        if (!tmp) {
            errf(err, errlen, "%s: out of memory", nm);
            goto done;
        }
        memcpy(tmp, key, (size_t)l);
        long pl = l;
        uint8_t type = TRL_TOKT_NORMAL;
        if (kind == 1) {
            uint32_t bad = 0;
            pl = bytelevel_decode(tmp, (size_t)l, u2b, &bad);
            if (pl < 0) {
                if (tmp != tmpb) free(tmp);
                errf(err, errlen, "%s: model.vocab: \"%.60s\" (id %d) is not byte-level text (U+%04X)", nm, key, id,
                     bad);
                goto done;
            }
        } else {
            if (flags & TRL_TOKF_SPM_SPACE_MARKER) pl = (long)unmark(tmp, (size_t)l);
            int bv = byte_fallback ? byte_piece(tmp, (size_t)pl) : -1;
            if (bv >= 0) type = TRL_TOKT_BYTE, tmp[0] = (uint8_t)bv, pl = 1;
        }
        b->types[id] = type;
        int sr = tb_set_piece(b, id, tmp, (size_t)pl);
        if (tmp != tmpb) free(tmp);
        if (sr) {
            errf(err, errlen, "%s: out of memory", nm);
            goto done;
        }
    }
    ai = 0;
    for (int e = added >= 0 ? tj_first(d, added) : -1; e >= 0; e = tj_next(d, added, e), ai++) {
        int64_t id;
        tj_get_i64(d, tj_obj_get(d, e, "id"), &id);
        int special;
        if (opt_bool(h, e, "special", 0, "added_tokens[]", &special)) goto done;
        size_t cl;
        char *content = str_dup_tok(d, tj_obj_get(d, e, "content"), &cl);
        if (!content) {
            errf(err, errlen, "%s: out of memory", nm);
            goto done;
        }
        if (cl == 0) {
            free(content);
            errf(err, errlen, "%s: added_tokens[%u].content: empty", nm, ai);
            goto done;
        }
        if (seen[id] && (b->plen[id] != cl || memcmp(b->arena + b->poff[id], content, cl))) {
            /* one id, two texts: the blob has one piece per id */
            errf(err, errlen, "%s: added_tokens[%u]: \"%.40s\" has id %lld, which model.vocab gives to another token",
                 nm, ai, content, (long long)id);
            free(content);
            goto done;
        }
        b->types[id] = (uint8_t)((special ? TRL_TOKT_CONTROL : TRL_TOKT_USER) | TRL_TOKT_ADDED);
        int sr = tb_set_piece(b, (int32_t)id, content, cl);
        free(content);
        if (sr) {
            errf(err, errlen, "%s: out of memory", nm);
            goto done;
        }
    }

    /* merges: "a b" or ["a", "b"], in rank order */
    size_t mcap = 0;
    uint32_t r = 0;
    for (int e = tj_first(d, merges); e >= 0; e = tj_next(d, merges, e), r++) {
        int ta = -1, tb2 = -1;
        if (d->toks[e].type == TJ_STR) ta = e;
        else if (d->toks[e].type == TJ_ARR && d->toks[e].size == 2) ta = tj_first(d, e), tb2 = tj_next(d, e, ta);
        if (ta < 0 || d->toks[ta].type != TJ_STR || (tb2 >= 0 && d->toks[tb2].type != TJ_STR)) {
            errf(err, errlen, "%s: model.merges[%u]: neither \"a b\" nor [\"a\", \"b\"]", nm, r);
            goto done;
        }
        size_t need = (d->toks[ta].end - d->toks[ta].start) + (tb2 >= 0 ? d->toks[tb2].end - d->toks[tb2].start : 0) + 2;
        if (need > mcap) {
            char *nb = realloc(mbuf, need * 2);
            if (!nb) {
                errf(err, errlen, "%s: out of memory", nm);
                goto done;
            }
            mbuf = nb, mcap = need * 2;
        }
        size_t la, lb;
        char *a = mbuf, *bb;
        long l1 = tj_str_copy(d, ta, mbuf, mcap);
        if (tb2 < 0) {
            char *sp = memchr(mbuf, ' ', (size_t)l1);
            if (!sp || memchr(sp + 1, ' ', (size_t)l1 - (size_t)(sp + 1 - mbuf))) {
                errf(err, errlen, "%s: model.merges[%u]: \"%.60s\" is not two tokens split by one space", nm, r, mbuf);
                goto done;
            }
            la = (size_t)(sp - mbuf);
            bb = sp + 1;
            lb = (size_t)l1 - la - 1;
            /* join in place: "a b" -> "ab" after the pair for the lookup */
        } else {
            la = (size_t)l1;
            bb = mbuf + la + 1;
            lb = (size_t)tj_str_copy(d, tb2, bb, mcap - la - 1);
        }
        int32_t ia = smap_get(&map, a, la), ib = smap_get(&map, bb, lb);
        if (ia < 0 || ib < 0) {
            errf(err, errlen, "%s: model.merges[%u]: \"%.40s\" is not in model.vocab", nm, r,
                 ia < 0 ? (a[la] = 0, a) : bb);
            goto done;
        }
        memmove(a + la, bb, lb); /* a ++ b */
        int32_t ic = smap_get(&map, a, la + lb);
        if (ic < 0) {
            a[la + lb] = 0;
            errf(err, errlen, "%s: model.merges[%u]: the joined \"%.60s\" is not in model.vocab", nm, r, a);
            goto done;
        }
        if (kind == 1) {
            if (tb_add_merge(b, (uint32_t)ia, (uint32_t)ib)) {
                errf(err, errlen, "%s: model.merges: too many merges", nm);
                goto done;
            }
        } else if (-(float)r > b->scores[ic]) {
            /* SentencePiece merges by the score of the joined piece: its first merge's rank */
            b->scores[ic] = -(float)r;
        }
    }

    /* unk, bos, eos */
    int unk = tj_obj_get(d, model, "unk_token");
    if (unk >= 0 && d->toks[unk].type == TJ_STR) {
        size_t ul;
        char *u = str_dup_tok(d, unk, &ul);
        if (u) {
            b->unk = smap_get(&map, u, ul);
            if (b->unk < 0) b->unk = find_token(b, u, ul);
        }
        free(u);
    }
    int32_t tbos = -1, teos = -1;
    template_tokens(h, b, tj_obj_get(d, 0, "post_processor"), &tbos, &teos, 0);
    int32_t add_bos = tbos >= 0;
    b->bos = tbos;
    b->eos = teos;
    if (c) {
        if (c->n == 0 || c->toks[0].type != TJ_OBJ) {
            errf(err, errlen, "%s: the top level is not an object", cname);
            goto done;
        }
        int32_t id;
        int present;
        if (config_token(h, c, cname, b, "bos_token", &id, &present)) goto done;
        if (present) b->bos = id;
        if (config_token(h, c, cname, b, "eos_token", &id, &present)) goto done;
        if (present) b->eos = id;
        int ab = tj_obj_get(c, 0, "add_bos_token"), v;
        if (ab >= 0 && !tj_get_bool(c, ab, &v)) add_bos = v;
        int ctpl = tj_obj_get(c, 0, "chat_template");
        if (ctpl >= 0 && c->toks[ctpl].type == TJ_ARR) { /* [{"name", "template"}]: "default", else the first */
            int pick = -1;
            for (int e = tj_first(c, ctpl); e >= 0; e = tj_next(c, ctpl, e)) {
                int tt = tj_obj_get(c, e, "template");
                if (tt < 0) continue;
                if (pick < 0 || tj_str_eq(c, tj_obj_get(c, e, "name"), "default")) pick = tt;
            }
            ctpl = pick;
        }
        if (ctpl >= 0 && c->toks[ctpl].type == TJ_STR) {
            info->chat_template = str_dup_tok(c, ctpl, NULL);
            if (!info->chat_template) {
                errf(err, errlen, "%s: out of memory", cname);
                goto done;
            }
        } else if (ctpl >= 0 && !tj_is_null(c, ctpl)) {
            errf(err, errlen, "%s: chat_template: not a string or a list of {name, template}", cname);
            goto done;
        }
    } else {
        /* no config: the usual names */
        static const char *const bos_names[] = {"<s>", "<|begin_of_text|>"};
        static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>"};
        for (int k = 0; k < 2 && b->bos < 0; k++) b->bos = find_token(b, bos_names[k], strlen(bos_names[k]));
        for (int k = 0; k < 3 && b->eos < 0; k++) b->eos = find_token(b, eos_names[k], strlen(eos_names[k]));
    }
    info->add_bos = add_bos;
    rc = 0;
done:
    free(seen);
    free(keys);
    free(map.e);
    free(mbuf);
    return rc;
}

int trlc_tokenizer_from_hf_mem(const char *json, size_t json_len, const char *json_name, const char *config,
                               size_t config_len, const char *config_name, void **blob, size_t *blob_len,
                               trlc_tokenizer_info *info, char *err, size_t errlen) {
    if (!json_name) json_name = "tokenizer.json";
    if (!config_name) config_name = "tokenizer_config.json";
    if (!json || !blob || !blob_len || !info) return errf(err, errlen, "%s: NULL argument", json_name);
    char jerr[128];
    tj_doc d, c;
    memset(&c, 0, sizeof c);
    if (tj_parse(json, json_len, &d, jerr, sizeof jerr)) return errf(err, errlen, "%s: bad JSON: %s", json_name, jerr);
    if (config && tj_parse(config, config_len, &c, jerr, sizeof jerr)) {
        tj_free(&d);
        return errf(err, errlen, "%s: bad JSON: %s", config_name, jerr);
    }
    hf h;
    memset(&h, 0, sizeof h);
    h.name = json_name;
    h.d = &d;
    h.err = err;
    h.errlen = errlen;
    tb b;
    memset(&b, 0, sizeof b);
    trlc_tokenizer_info tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = hf_build(&h, config ? &c : NULL, config_name, &b, &tmp);
    void *out = NULL;
    size_t out_len = 0;
    if (!rc) rc = tb_write(&b, json_name, &out, &out_len, err, errlen);
    if (!rc) {
        char *tpl = tmp.chat_template;
        int32_t ab = tmp.add_bos;
        info_init(info, &b, ab);
        info->chat_template = tpl;
        *blob = out;
        *blob_len = out_len;
    } else {
        free(tmp.chat_template);
    }
    tb_free(&b);
    tj_free(&d);
    tj_free(&c);
    return rc;
}

int trlc_tokenizer_from_hf(const char *tokenizer_json_path, const char *tokenizer_config_path, void **blob,
                           size_t *blob_len, trlc_tokenizer_info *info, char *err, size_t errlen) {
    char *j, *c = NULL;
    size_t jl, cl = 0;
    if (read_file(tokenizer_json_path, &j, &jl, err, errlen)) return -1;
    if (tokenizer_config_path && read_file(tokenizer_config_path, &c, &cl, err, errlen)) {
        free(j);
        return -1;
    }
    int rc = trlc_tokenizer_from_hf_mem(j, jl, tokenizer_json_path, c, cl, tokenizer_config_path, blob, blob_len,
                                        info, err, errlen);
    free(j);
    free(c);
    return rc;
}

/* ------------------------------------------------------------ vocab arrays */

#define MAX_PIECE (1u << 20) /* bytes; far above any real token, keeps lengths in 32 bits */

int trlc_tokenizer_from_vocab(const trlc_vocab_spec *v, void **blob, size_t *blob_len, trlc_tokenizer_info *info,
                              char *err, size_t errlen) {
    const char *nm = v && v->name ? v->name : "vocabulary";
    if (!v || !blob || !blob_len || !info || (!v->tokens && v->n_tokens > 0))
        return errf(err, errlen, "%s: NULL argument", nm);
    if (v->kind != 0 && v->kind != 1) return errf(err, errlen, "%s: unknown tokenizer kind %d", nm, v->kind);
    if (v->n_tokens < 1 || v->n_tokens > MAX_VOCAB)
        return errf(err, errlen, "%s: %d tokens (1 to %d are supported)", nm, (int)v->n_tokens, MAX_VOCAB);
    if (v->kind == 1 && v->pretok != TRL_PRETOK_GPT2 && v->pretok != TRL_PRETOK_LLAMA3)
        return errf(err, errlen, "%s: unknown pre-tokenizer %d", nm, v->pretok);
    uint32_t allowed = v->kind == 0 ? TRL_TOKF_SPM_PREFIX | TRL_TOKF_SPM_PREFIX_FIRST | TRL_TOKF_SPM_PREFIX_NOSPACE
                                    : TRL_TOKF_BPE_IGNORE_MERGES;
    if (v->flags & ~(allowed | TRL_TOKF_NFC)) return errf(err, errlen, "%s: flags 0x%x not valid for this kind", nm, v->flags);
    const int32_t n = v->n_tokens;
    const int32_t ids[3] = {v->bos_id, v->eos_id, v->unk_id};
    static const char *const idn[3] = {"bos", "eos", "unknown"};
    for (int k = 0; k < 3; k++)
        if (ids[k] < -1 || ids[k] >= n)
            return errf(err, errlen, "%s: %s token id %d is not one of the %d tokens", nm, idn[k], (int)ids[k], (int)n);
    size_t maxlen = 0;
    int marker = 0;
    for (int32_t i = 0; i < n; i++) {
        if (v->tokens[i].n > MAX_PIECE || (v->tokens[i].n && !v->tokens[i].s))
            return errf(err, errlen, "%s: token %d is %zu bytes long (at most %u)", nm, (int)i, v->tokens[i].n, MAX_PIECE);
        if (v->tokens[i].n > maxlen) maxlen = v->tokens[i].n;
        int ty = v->types ? v->types[i] : TRLC_TOKTYPE_NORMAL;
        if (v->kind == 0 && (ty == TRLC_TOKTYPE_NORMAL || ty == TRLC_TOKTYPE_UNDEFINED) &&
            has_marker((const uint8_t *)v->tokens[i].s, v->tokens[i].n))
            marker = 1;
    }
    tb b;
    if (tb_init(&b, v->kind, n)) {
        tb_free(&b);
        return errf(err, errlen, "%s: out of memory for %d tokens", nm, (int)n);
    }
    b.pretok = v->kind == 1 ? v->pretok : TRL_PRETOK_NONE;
    b.flags = v->flags | (marker ? TRL_TOKF_SPM_SPACE_MARKER : 0);
    b.bos = v->bos_id, b.eos = v->eos_id, b.unk = v->unk_id;
    int16_t u2b[324];
    byte_decoder(u2b);
    uint8_t *tmp = malloc(maxlen ? maxlen : 1);
    smap map = {0};
    char *mbuf = NULL;
    int rc = -1;
    if (!tmp) {
        errf(err, errlen, "%s: out of memory", nm);
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        const trlc_tokstr *t = &v->tokens[i];
        int ty = v->types ? v->types[i] : TRLC_TOKTYPE_NORMAL;
        size_t l = t->n;
        if (l) memcpy(tmp, t->s, l);
        uint8_t type;
        switch (ty) {
        case TRLC_TOKTYPE_UNDEFINED:
        case TRLC_TOKTYPE_NORMAL:
        case TRLC_TOKTYPE_BYTE:
            if (v->kind == 1) {
                uint32_t bad = 0;
                long dl = bytelevel_decode(tmp, l, u2b, &bad);
                if (dl < 0) {
                    errf(err, errlen, "%s: token %d \"%.*s\" is not byte-level text (U+%04X)", nm, (int)i,
                         (int)(t->n < 40 ? t->n : 40), t->s ? t->s : "", bad);
                    goto done;
                }
                l = (size_t)dl;
                type = TRL_TOKT_NORMAL;
            } else if (ty == TRLC_TOKTYPE_BYTE) {
                int bv = byte_piece(tmp, l);
                if (bv < 0) {
                    errf(err, errlen, "%s: token %d has type byte but is not <0xNN>", nm, (int)i);
                    goto done;
                }
                tmp[0] = (uint8_t)bv, l = 1;
                type = TRL_TOKT_BYTE;
            } else {
                if (marker) l = unmark(tmp, l);
                type = TRL_TOKT_NORMAL;
            }
            if (l == 0) type = TRL_TOKT_CONTROL; /* nothing to match or merge into */
            break;
        case TRLC_TOKTYPE_UNKNOWN:
        case TRLC_TOKTYPE_CONTROL:
            if (ty == TRLC_TOKTYPE_UNKNOWN && b.unk < 0) b.unk = i;
            type = (uint8_t)(TRL_TOKT_CONTROL | (l ? TRL_TOKT_ADDED : 0));
            break;
        case TRLC_TOKTYPE_USER_DEFINED:
            type = (uint8_t)(l ? TRL_TOKT_USER | TRL_TOKT_ADDED : TRL_TOKT_CONTROL);
            break;
        case TRLC_TOKTYPE_UNUSED:
            type = TRL_TOKT_CONTROL, l = 0; /* a placeholder: its text means nothing */
            break;
        default:
            errf(err, errlen, "%s: token %d: unknown token type %d", nm, (int)i, ty);
            goto done;
        }
        b.types[i] = type;
        float sc = v->scores ? v->scores[i] : 0.0f;
        if (sc != sc) {
            errf(err, errlen, "%s: the score of token %d is NaN", nm, (int)i);
            goto done;
        }
        b.scores[i] = sc;
        if (tb_set_piece(&b, i, tmp, l)) {
            errf(err, errlen, "%s: out of memory", nm);
            goto done;
        }
    }
    if (v->kind == 1) {
        /* merges name tokens by their byte-level text: look them up as written */
        if (smap_init(&map, (uint32_t)n)) {
            errf(err, errlen, "%s: out of memory", nm);
            goto done;
        }
        for (int32_t i = 0; i < n; i++) smap_put(&map, v->tokens[i].s ? v->tokens[i].s : "", (uint32_t)v->tokens[i].n, i);
        size_t mcap = 0;
        for (size_t r = 0; r < v->n_merges; r++) {
            const trlc_tokstr *m = &v->merges[r];
            const char *sp = m->n ? memchr(m->s, ' ', m->n) : NULL;
            if (!sp || memchr(sp + 1, ' ', m->n - (size_t)(sp + 1 - m->s))) {
                errf(err, errlen, "%s: merge %zu \"%.*s\" is not two tokens split by one space", nm, r,
                     (int)(m->n < 40 ? m->n : 40), m->s ? m->s : "");
                goto done;
            }
            size_t la = (size_t)(sp - m->s), lb = m->n - la - 1;
            int32_t ia = smap_get(&map, m->s, la), ib = smap_get(&map, sp + 1, lb);
            if (ia < 0 || ib < 0) {
                size_t bl = ia < 0 ? la : lb;
                errf(err, errlen, "%s: merge %zu: \"%.*s\" is not a token", nm, r, (int)(bl < 40 ? bl : 40),
                     ia < 0 ? m->s : sp + 1);
                goto done;
            }
            if (la + lb > mcap) {
                char *nb = realloc(mbuf, la + lb);
                if (!nb) {
                    errf(err, errlen, "%s: out of memory", nm);
                    goto done;
                }
                mbuf = nb, mcap = la + lb;
            }
            memcpy(mbuf, m->s, la);
            memcpy(mbuf + la, sp + 1, lb);
            if (smap_get(&map, mbuf, la + lb) < 0) {
                errf(err, errlen, "%s: merge %zu: the joined \"%.*s\" is not a token", nm, r,
                     (int)(la + lb < 60 ? la + lb : 60), mbuf);
                goto done;
            }
            if (tb_add_merge(&b, (uint32_t)ia, (uint32_t)ib)) {
                errf(err, errlen, "%s: too many merges", nm);
                goto done;
            }
        }
    }
    char *tpl = NULL;
    if (v->chat_template) {
        tpl = malloc(v->chat_template_len + 1);
        if (!tpl) {
            errf(err, errlen, "%s: out of memory", nm);
            goto done;
        }
        memcpy(tpl, v->chat_template, v->chat_template_len);
        tpl[v->chat_template_len] = 0;
    }
    void *out;
    size_t out_len;
    if (tb_write(&b, nm, &out, &out_len, err, errlen)) {
        free(tpl);
        goto done;
    }
    info_init(info, &b, v->add_bos);
    info->chat_template = tpl;
    *blob = out;
    *blob_len = out_len;
    rc = 0;
done:
    free(tmp);
    free(map.e);
    free(mbuf);
    tb_free(&b);
    return rc;
}
