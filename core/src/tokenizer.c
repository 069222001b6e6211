/* tokenizer.c - tokenizer blob reader, SPM and byte-level BPE encoders, and
 * the decoder. Blob layout: docs/FORMAT.md, "Tokenizer blob". */
#include "tokenizer.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_blob.h"
#include "trillium.h"
#include "unicode.h"

/* ------------------------------------------------------------ the handle */

typedef struct merge_slot {
    uint32_t left, right; /* token ids; left == UINT32_MAX: empty slot */
    uint32_t rank;
    int32_t result;
} merge_slot;

struct trl_tokenizer {
    trl_tokenizer_kind kind;
    int pretok;
    uint32_t flags;
    int32_t n_vocab;
    int32_t bos, eos, unk;
    uint32_t max_piece_len;
    const uint8_t *types;  /* (n_vocab), in the blob */
    const uint8_t *pieces; /* piece bytes, in the blob */
    uint32_t *off;         /* (n_vocab + 1): piece i is pieces[off[i] .. off[i+1]) */
    float *scores;         /* (n_vocab), spm only */
    int32_t *hash;         /* piece bytes -> id (normal and user pieces), -1 = empty */
    uint32_t hash_mask;
    merge_slot *merges;    /* (left, right) -> rank, result; bpe only */
    uint32_t merge_mask;
    int32_t *added;        /* ids of ADDED tokens grouped by first byte */
    uint32_t added_start[257];
    int32_t byte_id[256];  /* the token of each single byte, -1 if none */
};

static int tok_type(const trl_tokenizer *t, int32_t id) { return t->types[id] & TRL_TOKT_TYPE_MASK; }

/* ------------------------------------------------------------ hashing */

static uint32_t hash_mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

/* FNV-1a over the concatenation a ++ b, so a merged pair hashes without
 * being copied. */
static uint32_t hash_bytes2(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < na; i++) h = (h ^ a[i]) * 16777619u;
    for (size_t i = 0; i < nb; i++) h = (h ^ b[i]) * 16777619u;
    return hash_mix(h);
}

static int32_t lookup2(const trl_tokenizer *t, const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
    if (na + nb > t->max_piece_len || na + nb == 0) return -1;
    uint32_t i = hash_bytes2(a, na, b, nb) & t->hash_mask;
    for (;;) {
        int32_t id = t->hash[i];
        if (id < 0) return -1;
        const uint8_t *p = t->pieces + t->off[id];
        if (t->off[id + 1] - t->off[id] == na + nb && !memcmp(p, a, na) && (!nb || !memcmp(p + na, b, nb)))
            return id;
        i = (i + 1) & t->hash_mask;
    }
}

static int32_t lookup(const trl_tokenizer *t, const uint8_t *s, size_t n) { return lookup2(t, s, n, NULL, 0); }

static uint32_t merge_hash(uint32_t l, uint32_t r) { return hash_mix(l * 0x9E3779B1u ^ hash_mix(r + 0x7F4A7C15u)); }

static const merge_slot *merge_find(const trl_tokenizer *t, int32_t l, int32_t r) {
    uint32_t i = merge_hash((uint32_t)l, (uint32_t)r) & t->merge_mask;
    for (;;) {
        const merge_slot *m = &t->merges[i];
        if (m->left == UINT32_MAX) return NULL;
        if (m->left == (uint32_t)l && m->right == (uint32_t)r) return m;
        i = (i + 1) & t->merge_mask;
    }
}

/* ------------------------------------------------------------ blob reading */

static uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static int32_t rd_i32(const uint8_t *p) {
    uint32_t u = rd_u32(p);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

/* ULEB128, at most 5 bytes and 32 bits. Returns bytes read, 0 if malformed
 * or past `end`. */
static size_t rd_uleb(const uint8_t *p, const uint8_t *end, uint32_t *out) {
    uint64_t v = 0;
    for (size_t i = 0; i < 5; i++) {
        if (p + i >= end) return 0;
        v |= (uint64_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (v > UINT32_MAX) return 0;
            *out = (uint32_t)v;
            return i + 1;
        }
    }
    return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static trl_status fail(trl_error *err, trl_status st, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        int k = snprintf(err->msg, sizeof err->msg, "tokenizer blob: ");
        if (k < 0 || (size_t)k >= sizeof err->msg) k = 0;
        vsnprintf(err->msg + k, sizeof err->msg - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return st;
}

static size_t align8(size_t x) { return (x + 7) & ~(size_t)7; }

/* smallest power of two >= n * 4/3 + 1 (load factor <= 3/4), n small enough
 * by the caller's checks (n <= blob length) */
static uint64_t table_cap(uint64_t n) {
    uint64_t want = n + n / 3 + 1, c = 16;
    while (c < want) c <<= 1;
    return c;
}

trl_status trl_tokenizer_create(const void *blob, size_t len, trl_tokenizer **out, trl_error *err) {
    if (err) err->status = TRL_OK, err->msg[0] = 0;
    if (!out) return fail(err, TRL_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!blob) return fail(err, TRL_ERR_INVALID_ARG, "blob is NULL");
    const uint8_t *b = blob;
    if (len < TRL_TOKBLOB_HEADER_BYTES)
        return fail(err, TRL_ERR_BAD_FORMAT, "%zu bytes, shorter than the %d-byte header", len,
                    TRL_TOKBLOB_HEADER_BYTES);
    if (memcmp(b, TRL_TOKBLOB_MAGIC, 4))
        return fail(err, TRL_ERR_BAD_FORMAT, "bad magic (want \"TRLT\"): not a tokenizer blob");
    uint32_t version = (uint32_t)b[4] | (uint32_t)b[5] << 8;
    if (version != TRL_TOKBLOB_VERSION)
        return fail(err, TRL_ERR_UNSUPPORTED,
                    "version %u, this core reads version %d; re-run trillium-convert or upgrade trillium",
                    version, TRL_TOKBLOB_VERSION);
    uint32_t kind = b[TRL_TOKBLOB_OFF_KIND], pretok = b[TRL_TOKBLOB_OFF_PRETOK];
    uint32_t flags = rd_u32(b + TRL_TOKBLOB_OFF_FLAGS);
    uint32_t n_vocab = rd_u32(b + TRL_TOKBLOB_OFF_N_VOCAB);
    uint32_t n_merges = rd_u32(b + TRL_TOKBLOB_OFF_N_MERGES);
    int32_t bos = rd_i32(b + TRL_TOKBLOB_OFF_BOS), eos = rd_i32(b + TRL_TOKBLOB_OFF_EOS),
            unk = rd_i32(b + TRL_TOKBLOB_OFF_UNK);
    uint32_t len_bytes = rd_u32(b + TRL_TOKBLOB_OFF_LEN_BYTES);
    uint32_t piece_bytes = rd_u32(b + TRL_TOKBLOB_OFF_PIECE_BYTES);
    uint32_t merge_bytes = rd_u32(b + TRL_TOKBLOB_OFF_MERGE_BYTES);
    uint32_t reserved = rd_u32(b + TRL_TOKBLOB_OFF_RESERVED);

    if (kind != TRL_TOK_SPM && kind != TRL_TOK_BPE_GPT2)
        return fail(err, TRL_ERR_UNSUPPORTED, "kind %u unknown (0 spm, 1 bpe_gpt2)", kind);
    if (kind == TRL_TOK_SPM ? pretok != TRL_PRETOK_NONE
                            : (pretok != TRL_PRETOK_GPT2 && pretok != TRL_PRETOK_LLAMA3))
        return fail(err, TRL_ERR_UNSUPPORTED, "pretok %u not valid for kind %u", pretok, kind);
    uint32_t allowed = TRL_TOKF_NFC | (kind == TRL_TOK_SPM ? TRL_TOKF_SPM_MASK : TRL_TOKF_BPE_MASK);
    if (flags & ~allowed)
        return fail(err, TRL_ERR_UNSUPPORTED, "flags 0x%x has bits this core does not know for kind %u",
                    flags, kind);
    if (reserved) return fail(err, TRL_ERR_BAD_FORMAT, "reserved header field is %u, not 0", reserved);
    if (n_vocab == 0 || n_vocab > (uint32_t)INT32_MAX - 1)
        return fail(err, TRL_ERR_BAD_FORMAT, "n_vocab %u out of range", n_vocab);
    if (kind == TRL_TOK_SPM && (n_merges || merge_bytes))
        return fail(err, TRL_ERR_BAD_FORMAT, "an spm blob has n_merges %u / merge_bytes %u, want 0", n_merges,
                    merge_bytes);
    if (bos < -1 || bos >= (int32_t)n_vocab)
        return fail(err, TRL_ERR_BAD_FORMAT, "bos_id %d outside the vocab of %u", bos, n_vocab);
    if (eos < -1 || eos >= (int32_t)n_vocab)
        return fail(err, TRL_ERR_BAD_FORMAT, "eos_id %d outside the vocab of %u", eos, n_vocab);
    if (unk < -1 || unk >= (int32_t)n_vocab)
        return fail(err, TRL_ERR_BAD_FORMAT, "unk_id %d outside the vocab of %u", unk, n_vocab);

    /* section sizes add up to the blob exactly (64-bit sums cannot overflow) */
    uint64_t score_bytes = kind == TRL_TOK_SPM ? 4ull * n_vocab : 0;
    uint64_t want = (uint64_t)TRL_TOKBLOB_HEADER_BYTES + n_vocab + len_bytes + piece_bytes + score_bytes +
                    merge_bytes;
    if (want != (uint64_t)len)
        return fail(err, TRL_ERR_BAD_FORMAT,
                    "sections need %llu bytes (header %d + types %u + lengths %u + pieces %u + scores %llu "
                    "+ merges %u) but the blob has %zu",
                    (unsigned long long)want, TRL_TOKBLOB_HEADER_BYTES, n_vocab, len_bytes, piece_bytes,
                    (unsigned long long)score_bytes, merge_bytes, len);
    if ((uint64_t)n_merges * 2 > merge_bytes)
        return fail(err, TRL_ERR_BAD_FORMAT, "n_merges %u cannot fit in merge_bytes %u", n_merges, merge_bytes);
    const uint8_t *types = b + TRL_TOKBLOB_HEADER_BYTES;
    const uint8_t *lens = types + n_vocab;
    const uint8_t *pieces = lens + len_bytes;
    const uint8_t *scores = pieces + piece_bytes;
    const uint8_t *mrg = scores + score_bytes;

    /* first pass: types, to count the added tokens before sizing */
    uint32_t n_added = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (types[i] & ~(TRL_TOKT_TYPE_MASK | TRL_TOKT_ADDED))
            return fail(err, TRL_ERR_BAD_FORMAT, "token %u: type byte 0x%02x has unknown bits", i, types[i]);
        if (types[i] & TRL_TOKT_ADDED) n_added++;
    }

    uint64_t hcap = table_cap(n_vocab);
    uint64_t mcap = kind == TRL_TOK_BPE_GPT2 ? table_cap(n_merges) : 0;
    size_t sz_off = align8(sizeof(uint32_t) * ((size_t)n_vocab + 1));
    size_t sz_scores = align8(kind == TRL_TOK_SPM ? sizeof(float) * (size_t)n_vocab : 0);
    size_t sz_hash = align8(sizeof(int32_t) * (size_t)hcap);
    size_t sz_merges = align8(sizeof(merge_slot) * (size_t)mcap);
    size_t sz_added = align8(sizeof(int32_t) * (size_t)n_added);
    uint64_t total = align8(sizeof(trl_tokenizer)) + (uint64_t)sz_off + sz_scores + sz_hash + sz_merges + sz_added;
    if (total > SIZE_MAX / 2)
        return fail(err, TRL_ERR_NO_MEMORY, "tokenizer tables need %llu bytes", (unsigned long long)total);
    uint8_t *mem = malloc((size_t)total);
    if (!mem)
        return fail(err, TRL_ERR_NO_MEMORY, "out of memory for %llu bytes of tokenizer tables",
                    (unsigned long long)total);
    trl_tokenizer *t = (trl_tokenizer *)mem;
    memset(t, 0, sizeof *t);
    uint8_t *p = mem + align8(sizeof(trl_tokenizer));
    t->off = (uint32_t *)p, p += sz_off;
    t->scores = kind == TRL_TOK_SPM ? (float *)p : NULL, p += sz_scores;
    t->hash = (int32_t *)p, p += sz_hash;
    t->merges = kind == TRL_TOK_BPE_GPT2 ? (merge_slot *)p : NULL, p += sz_merges;
    t->added = (int32_t *)p;
    t->kind = (trl_tokenizer_kind)kind;
    t->pretok = (int)pretok;
    t->flags = flags;
    t->n_vocab = (int32_t)n_vocab;
    t->bos = bos, t->eos = eos, t->unk = unk;
    t->types = types;
    t->pieces = pieces;
    t->hash_mask = (uint32_t)(hcap - 1);
    t->merge_mask = mcap ? (uint32_t)(mcap - 1) : 0;
    trl_status st = TRL_OK;

    /* piece lengths -> offsets */
    {
        const uint8_t *q = lens, *qend = lens + len_bytes;
        uint64_t acc = 0;
        uint32_t maxlen = 0;
        for (uint32_t i = 0; i < n_vocab; i++) {
            uint32_t l;
            size_t k = rd_uleb(q, qend, &l);
            if (!k) {
                st = fail(err, TRL_ERR_BAD_FORMAT, "token %u: malformed or truncated piece length", i);
                goto out;
            }
            q += k;
            t->off[i] = (uint32_t)acc;
            acc += l;
            if (acc > piece_bytes) {
                st = fail(err, TRL_ERR_BAD_FORMAT, "token %u: piece lengths exceed piece_bytes %u", i,
                          piece_bytes);
                goto out;
            }
            if (l > maxlen) maxlen = l;
            int ty = types[i] & TRL_TOKT_TYPE_MASK;
            if (ty == TRL_TOKT_BYTE && l != 1) {
                st = fail(err, TRL_ERR_BAD_FORMAT, "token %u: a byte token has %u bytes, want 1", i, l);
                goto out;
            }
            if ((types[i] & TRL_TOKT_ADDED) && l == 0) {
                st = fail(err, TRL_ERR_BAD_FORMAT, "token %u: an added token is empty", i);
                goto out;
            }
        }
        if (q != qend || acc != piece_bytes) {
            st = fail(err, TRL_ERR_BAD_FORMAT, "lengths section: %zu of %u bytes used, pieces sum to %llu of %u",
                      (size_t)(q - lens), len_bytes, (unsigned long long)acc, piece_bytes);
            goto out;
        }
        t->off[n_vocab] = (uint32_t)acc;
        t->max_piece_len = maxlen;
    }
    if (kind == TRL_TOK_SPM)
        for (uint32_t i = 0; i < n_vocab; i++) {
            uint32_t u = rd_u32(scores + 4 * (size_t)i);
            memcpy(&t->scores[i], &u, 4);
        }

    /* piece hash (the first id of equal pieces wins) and the byte tokens */
    for (uint64_t i = 0; i < hcap; i++) t->hash[i] = -1;
    for (int k = 0; k < 256; k++) t->byte_id[k] = -1;
    for (uint32_t i = 0; i < n_vocab; i++) {
        int ty = types[i] & TRL_TOKT_TYPE_MASK;
        uint32_t l = t->off[i + 1] - t->off[i];
        if (ty == TRL_TOKT_BYTE) {
            if (kind == TRL_TOK_SPM && t->byte_id[pieces[t->off[i]]] < 0) t->byte_id[pieces[t->off[i]]] = (int32_t)i;
            continue;
        }
        if ((ty != TRL_TOKT_NORMAL && ty != TRL_TOKT_USER) || l == 0) continue;
        if (lookup(t, pieces + t->off[i], l) >= 0) continue;
        uint32_t h = hash_bytes2(pieces + t->off[i], l, NULL, 0) & t->hash_mask;
        while (t->hash[h] >= 0) h = (h + 1) & t->hash_mask;
        t->hash[h] = (int32_t)i;
    }
    if (kind == TRL_TOK_BPE_GPT2) {
        for (int k = 0; k < 256; k++) {
            uint8_t c = (uint8_t)k;
            t->byte_id[k] = lookup(t, &c, 1);
        }
        for (uint32_t i = 0; i < n_vocab; i++) /* byte tokens only fill gaps */
            if (tok_type(t, (int32_t)i) == TRL_TOKT_BYTE && t->byte_id[pieces[t->off[i]]] < 0)
                t->byte_id[pieces[t->off[i]]] = (int32_t)i;
        for (uint64_t i = 0; i < mcap; i++) t->merges[i].left = UINT32_MAX;
        const uint8_t *q = mrg, *qend = mrg + merge_bytes;
        for (uint32_t r = 0; r < n_merges; r++) {
            uint32_t l, rt;
            size_t k1 = rd_uleb(q, qend, &l);
            size_t k2 = k1 ? rd_uleb(q + k1, qend, &rt) : 0;
            if (!k2) {
                st = fail(err, TRL_ERR_BAD_FORMAT, "merge %u: malformed or truncated id", r);
                goto out;
            }
            q += k1 + k2;
            if (l >= n_vocab || rt >= n_vocab) {
                st = fail(err, TRL_ERR_BAD_FORMAT, "merge %u: token id %u outside the vocab of %u", r,
                          l >= n_vocab ? l : rt, n_vocab);
                goto out;
            }
            int32_t res = lookup2(t, pieces + t->off[l], t->off[l + 1] - t->off[l], pieces + t->off[rt],
                                  t->off[rt + 1] - t->off[rt]);
            if (res < 0) {
                st = fail(err, TRL_ERR_BAD_FORMAT, "merge %u: tokens %u and %u joined are not in the vocab", r,
                          l, rt);
                goto out;
            }
            if (merge_find(t, (int32_t)l, (int32_t)rt)) continue; /* the lower rank stays */
            uint32_t h = merge_hash(l, rt) & t->merge_mask;
            while (t->merges[h].left != UINT32_MAX) h = (h + 1) & t->merge_mask;
            t->merges[h] = (merge_slot){l, rt, r, res};
        }
        if (q != qend) {
            st = fail(err, TRL_ERR_BAD_FORMAT, "merges section: %zu of %u bytes used", (size_t)(q - mrg),
                      merge_bytes);
            goto out;
        }
    }

    /* added tokens bucketed by first byte (counting sort keeps id order) */
    {
        uint32_t cnt[257] = {0};
        for (uint32_t i = 0; i < n_vocab; i++)
            if (types[i] & TRL_TOKT_ADDED) cnt[pieces[t->off[i]] + 1]++;
        for (int k = 0; k < 256; k++) cnt[k + 1] += cnt[k];
        memcpy(t->added_start, cnt, sizeof cnt);
        for (uint32_t i = 0; i < n_vocab; i++)
            if (types[i] & TRL_TOKT_ADDED) t->added[cnt[pieces[t->off[i]]]++] = (int32_t)i;
    }
out:
    if (st != TRL_OK) {
        free(mem);
        return st;
    }
    *out = t;
    return TRL_OK;
}

void trl_tokenizer_free(trl_tokenizer *t) { free(t); }

trl_tokenizer_kind trl_tokenizer_get_kind(const trl_tokenizer *t) { return t ? t->kind : TRL_TOK_SPM; }
int32_t trl_tokenizer_vocab_size(const trl_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t trl_tokenizer_bos(const trl_tokenizer *t) { return t ? t->bos : -1; }
int32_t trl_tokenizer_eos(const trl_tokenizer *t) { return t ? t->eos : -1; }

/* ------------------------------------------------------------ encoding */

/* Both encoders merge a sequence of symbols (spans of the text) pair by pair,
 * best pair first, leftmost on ties, as llama2.c's encode() and HF's BPE do,
 * but in O(n log n): symbols are a linked list indexed by their first byte
 * and candidate pairs wait in a binary min-heap keyed (priority << 32 | left
 * position). A pair is stale when either symbol has changed length since it
 * was pushed; such entries are dropped when popped. */

typedef struct heap_ent {
    uint64_t key;
    uint32_t llen, rlen;
} heap_ent;

typedef struct scratch {
    size_t cap; /* positions the arrays hold */
    uint8_t *buf; /* (cap) the spm segment with its prefix */
    uint32_t *len; /* (cap) symbol length at its first byte, 0 inside / dead */
    int32_t *prev; /* (cap) previous symbol's first byte, -1 */
    int32_t *id;   /* (cap) token id of the symbol */
    heap_ent *heap; /* (2 cap): n - 1 initial pairs, then each merge pops one and pushes <= 2 */
    size_t hn;
    void *mem;
} scratch;

static int scratch_fit(scratch *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n) cap *= 2;
    if (cap > ((size_t)INT32_MAX >> 1)) return -1;
    size_t per = 1 + 4 + 4 + 4 + 2 * sizeof(heap_ent);
    if (cap > SIZE_MAX / per - 1) return -1;
    void *mem = malloc(cap * per + 64);
    if (!mem) return -1;
    free(s->mem);
    s->mem = mem;
    s->cap = cap;
    uint8_t *p = mem;
    s->heap = (heap_ent *)p, p += 2 * cap * sizeof(heap_ent);
    s->len = (uint32_t *)p, p += 4 * cap;
    s->prev = (int32_t *)p, p += 4 * cap;
    s->id = (int32_t *)p, p += 4 * cap;
    s->buf = p;
    return 0;
}

static void heap_push(scratch *s, uint64_t key, uint32_t llen, uint32_t rlen) {
    size_t i = s->hn++;
    heap_ent e = {key, llen, rlen};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent].key <= key) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = e;
}

static heap_ent heap_pop(scratch *s) {
    heap_ent top = s->heap[0], last = s->heap[--s->hn];
    size_t i = 0, n = s->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && s->heap[c + 1].key < s->heap[c].key) c++;
        if (s->heap[c].key >= last.key) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

typedef struct out_ids {
    int32_t *ids;
    int64_t cap, n;
} out_ids;

static void emit(out_ids *o, int32_t id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

/* higher score -> smaller key; NaN never gets here */
static uint32_t score_key(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending with f */
    return ~u;
}

/* The priority of merging the symbols at a and b = a + len[a], or 0 if they
 * do not merge. Keys are (priority << 32 | a); 0 is never a real key because
 * a score key is never 0 for a finite score > -1e10 and ranks get +1. */
static uint64_t pair_key(const trl_tokenizer *t, const scratch *s, const uint8_t *text, uint32_t a, uint32_t b) {
    int32_t ia = s->id[a], ib = s->id[b];
    if (t->kind == TRL_TOK_SPM) {
        int ta = tok_type(t, ia), tb = tok_type(t, ib);
        if (ta == TRL_TOKT_BYTE || ta == TRL_TOKT_CONTROL || tb == TRL_TOKT_BYTE || tb == TRL_TOKT_CONTROL)
            return 0;
        int32_t r = lookup(t, text + a, (size_t)s->len[a] + s->len[b]);
        if (r < 0 || tok_type(t, r) != TRL_TOKT_NORMAL || !(t->scores[r] > TRL_TOK_SPM_MIN_SCORE)) return 0;
        return (uint64_t)score_key(t->scores[r]) << 32 | a;
    }
    const merge_slot *m = merge_find(t, ia, ib);
    if (!m) return 0;
    return (uint64_t)(m->rank + 1) << 32 | a;
}

static int32_t pair_result(const trl_tokenizer *t, const scratch *s, const uint8_t *text, uint32_t a, uint32_t b) {
    if (t->kind == TRL_TOK_SPM) return lookup(t, text + a, (size_t)s->len[a] + s->len[b]);
    return merge_find(t, s->id[a], s->id[b])->result;
}

static void push_pair(const trl_tokenizer *t, scratch *s, const uint8_t *text, size_t n, int32_t a) {
    if (a < 0) return;
    uint32_t b = (uint32_t)a + s->len[a];
    if (b >= n) return;
    uint64_t key = pair_key(t, s, text, (uint32_t)a, b);
    if (key) heap_push(s, key, s->len[a], s->len[b]);
}

/* Merge the symbols already laid out in s over text[0..n) and emit them. */
static void merge_and_emit(const trl_tokenizer *t, scratch *s, const uint8_t *text, size_t n, out_ids *o) {
    s->hn = 0;
    for (uint32_t a = 0; a < n; a += s->len[a]) push_pair(t, s, text, n, (int32_t)a);
    while (s->hn) {
        heap_ent e = heap_pop(s);
        uint32_t a = (uint32_t)(e.key & 0xFFFFFFFFu);
        if (s->len[a] != e.llen) continue;
        uint32_t b = a + e.llen;
        if (b >= n || s->len[b] != e.rlen) continue;
        s->id[a] = pair_result(t, s, text, a, b);
        s->len[a] += s->len[b];
        s->len[b] = 0;
        uint32_t c = a + s->len[a];
        if (c < n) s->prev[c] = (int32_t)a;
        push_pair(t, s, text, n, s->prev[a]);
        push_pair(t, s, text, n, (int32_t)a);
    }
    for (uint32_t a = 0; a < n; a += s->len[a]) emit(o, s->id[a]);
}

static void add_symbol(scratch *s, uint32_t pos, uint32_t len, int32_t id, int32_t *last) {
    s->len[pos] = len;
    s->id[pos] = id;
    s->prev[pos] = *last;
    for (uint32_t k = 1; k < len; k++) s->len[pos + k] = 0;
    *last = (int32_t)pos;
}

static int spm_segment(const trl_tokenizer *t, scratch *s, const uint8_t *seg, size_t n, size_t offset,
                       out_ids *o) {
    if (n == 0) return 0;
    if (scratch_fit(s, n + 1)) return -1;
    /* the segment goes to buf[1..]; buf[0] is room for the prefix */
    size_t m = n;
    if (t->flags & TRL_TOKF_SPM_SPACE_MARKER) {
        /* SentencePiece reads U+2581 in the text as the space it stands for */
        m = 0;
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && seg[i] == 0xE2 && seg[i + 1] == 0x96 && seg[i + 2] == 0x81) s->buf[1 + m++] = ' ', i += 3;
            else s->buf[1 + m++] = seg[i++];
        }
    } else {
        memcpy(s->buf + 1, seg, n);
    }
    int prefix = (t->flags & TRL_TOKF_SPM_PREFIX) && (!(t->flags & TRL_TOKF_SPM_PREFIX_FIRST) || offset == 0) &&
                 (!(t->flags & TRL_TOKF_SPM_PREFIX_NOSPACE) || s->buf[1] != ' ');
    s->buf[0] = ' ';
    const uint8_t *text = s->buf + 1 - prefix;
    m += (size_t)prefix;
    int32_t last = -1;
    for (size_t pos = 0; pos < m;) {
        size_t cl;
        uint32_t cp = trl_utf8_decode(text + pos, m - pos, &cl);
        int32_t id = cp == TRL_UTF8_INVALID ? -1 : lookup(t, text + pos, cl);
        if (id >= 0) {
            add_symbol(s, (uint32_t)pos, (uint32_t)cl, id, &last);
        } else {
            for (size_t k = pos; k < pos + cl; k++) { /* byte fallback */
                int32_t bid = t->byte_id[text[k]] >= 0 ? t->byte_id[text[k]] : t->unk;
                if (bid < 0) return -1;
                add_symbol(s, (uint32_t)k, 1, bid, &last);
            }
        }
        pos += cl;
    }
    merge_and_emit(t, s, text, m, o);
    return 0;
}

static int bpe_piece(const trl_tokenizer *t, scratch *s, const uint8_t *piece, size_t n, out_ids *o) {
    if (t->flags & TRL_TOKF_BPE_IGNORE_MERGES) {
        int32_t id = lookup(t, piece, n);
        if (id >= 0) {
            emit(o, id);
            return 0;
        }
    }
    if (scratch_fit(s, n)) return -1;
    int32_t last = -1;
    for (size_t k = 0; k < n; k++) {
        int32_t bid = t->byte_id[piece[k]] >= 0 ? t->byte_id[piece[k]] : t->unk;
        if (bid < 0) return -1;
        add_symbol(s, (uint32_t)k, 1, bid, &last);
    }
    merge_and_emit(t, s, piece, n, o);
    return 0;
}

static int bpe_segment(const trl_tokenizer *t, scratch *s, const uint8_t *seg, size_t n, out_ids *o) {
    for (size_t pos = 0; pos < n;) {
        size_t e = trl_pretok_next(t->pretok, seg, n, pos);
        if (bpe_piece(t, s, seg + pos, e - pos, o)) return -1;
        pos = e;
    }
    return 0;
}

static int encode_segment(const trl_tokenizer *t, scratch *s, const uint8_t *text, size_t start, size_t end,
                          out_ids *o) {
    if (t->kind == TRL_TOK_SPM) return spm_segment(t, s, text + start, end - start, start, o);
    return bpe_segment(t, s, text + start, end - start, o);
}

/* Longest ADDED token matching text[pos..], or -1. */
static int32_t match_added(const trl_tokenizer *t, const uint8_t *text, size_t len, size_t pos, size_t *mlen) {
    uint8_t c = text[pos];
    int32_t best = -1;
    size_t best_len = 0;
    for (uint32_t k = t->added_start[c]; k < t->added_start[c + 1]; k++) {
        int32_t id = t->added[k];
        size_t l = t->off[id + 1] - t->off[id];
        if (l > best_len && l <= len - pos && !memcmp(text + pos, t->pieces + t->off[id], l))
            best = id, best_len = l;
    }
    *mlen = best_len;
    return best;
}

int32_t trl_tokenize(const trl_tokenizer *t, const char *text_, size_t len, int add_bos, int32_t *ids,
                     int32_t cap) {
    if (!t || (!text_ && len) || cap < 0 || (!ids && cap > 0)) return -1;
    /* positions are int32 and every byte may become a token plus one prefix */
    if (len > (size_t)INT32_MAX / 4) return -1;
    const uint8_t *text = (const uint8_t *)text_;
    out_ids o = {ids, cap, 0};
    scratch s;
    memset(&s, 0, sizeof s);
    int rc = 0;
    if (add_bos && t->bos >= 0) emit(&o, t->bos);
    size_t seg = 0;
    if (t->added_start[256] > 0) {
        for (size_t pos = 0; pos < len && !rc;) {
            size_t ml;
            int32_t id = match_added(t, text, len, pos, &ml);
            if (id < 0) {
                pos++;
                continue;
            }
            rc = encode_segment(t, &s, text, seg, pos, &o);
            emit(&o, id);
            pos += ml;
            seg = pos;
        }
    }
    if (!rc) rc = encode_segment(t, &s, text, seg, len, &o);
    free(s.mem);
    if (rc || o.n > INT32_MAX) return -1;
    return (int32_t)o.n;
}

/* ------------------------------------------------------------ decoding */

int32_t trl_token_to_bytes(const trl_tokenizer *t, int32_t id, char *buf, int32_t cap) {
    if (!t || id < 0 || id >= t->n_vocab || cap < 0 || (!buf && cap > 0)) return -1;
    if (tok_type(t, id) == TRL_TOKT_CONTROL) return 0;
    uint32_t l = t->off[id + 1] - t->off[id];
    if (cap > 0) memcpy(buf, t->pieces + t->off[id], l < (uint32_t)cap ? l : (uint32_t)cap);
    return (int32_t)l;
}

int32_t trl_detokenize(const trl_tokenizer *t, const int32_t *ids, int32_t n, char *buf, int32_t cap) {
    if (!t || n < 0 || (!ids && n > 0) || cap < 0 || (!buf && cap > 0)) return -1;
    int strip = t->kind == TRL_TOK_SPM && (t->flags & TRL_TOKF_SPM_PREFIX) && t->bos >= 0;
    int64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) return -1;
        if (tok_type(t, id) == TRL_TOKT_CONTROL) continue;
        const uint8_t *p = t->pieces + t->off[id];
        uint32_t l = t->off[id + 1] - t->off[id];
        /* llama2.c: the piece after BOS drops the space the encoder added */
        if (strip && i > 0 && ids[i - 1] == t->bos && l && p[0] == ' ') p++, l--;
        for (uint32_t k = 0; k < l; k++, total++)
            if (total < cap) buf[total] = (char)p[k];
        if (total > INT32_MAX) return -1;
    }
    return (int32_t)total;
}
