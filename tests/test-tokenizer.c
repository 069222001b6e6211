/* test-tokenizer.c - the tokenizer blob, the SPM and byte-level BPE encoders,
 * the pre-tokenizer regex matchers and the converter's importers.
 *
 *   test-tokenizer [path/to/tok512.bin]
 *
 * With a path, also checks llama2.c's stories260K tokenizer against ids made
 * by a line-by-line Python port of llama2.c's encode(). Runs natively and
 * under Node (wasm build, -sNODERAWFS so fopen reads real paths). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"
#include "tokenizer_blob.h"
#include "tokenizer_import.h"
#include "trillium.h"
#include "unicode.h"

static int n_fail, n_pass;

#define CHECK(cond)                                                                                              \
    do {                                                                                                         \
        if (cond) n_pass++;                                                                                      \
        else {                                                                                                   \
            n_fail++;                                                                                            \
            fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond);                                     \
        }                                                                                                        \
    } while (0)

#define CHECKF(cond, ...)                                                                                        \
    do {                                                                                                         \
        if (cond) n_pass++;                                                                                      \
        else {                                                                                                   \
            n_fail++;                                                                                            \
            fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond);                                     \
            fprintf(stderr, __VA_ARGS__);                                                                        \
            fputc('\n', stderr);                                                                                 \
        }                                                                                                        \
    } while (0)

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { /* splitmix64: same sequence on every platform */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        b->s = realloc(b->s, cap);
        if (!b->s) abort();
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) sb_add(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

static void put_utf8(sbuf *b, uint32_t cp) {
    uint8_t o[4];
    size_t n;
    if (cp < 0x80) o[0] = (uint8_t)cp, n = 1;
    else if (cp < 0x800) o[0] = (uint8_t)(0xC0 | cp >> 6), o[1] = (uint8_t)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        o[0] = (uint8_t)(0xE0 | cp >> 12), o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)),
        o[2] = (uint8_t)(0x80 | (cp & 0x3F)), n = 3;
    else
        o[0] = (uint8_t)(0xF0 | cp >> 18), o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F)),
        o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (uint8_t)(0x80 | (cp & 0x3F)), n = 4;
    sb_add(b, o, n);
}

/* encode, with the id count checked against a second sizing call */
static int32_t enc(const trl_tokenizer *t, const char *s, size_t n, int bos, int32_t *ids, int32_t cap) {
    int32_t k = trl_tokenize(t, s, n, bos, ids, cap);
    int32_t k0 = trl_tokenize(t, s, n, bos, NULL, 0);
    if (k != k0) {
        n_fail++;
        fprintf(stderr, "FAIL: sizing call gave %d, full call %d\n", k0, k);
    }
    return k;
}

static int ids_eq(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, sizeof(int32_t) * (size_t)na));
}

static void print_ids(const char *what, const int32_t *ids, int32_t n) {
    fprintf(stderr, "  %s (%d):", what, n);
    for (int32_t i = 0; i < n && i < 64; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

static void expect_ids(const trl_tokenizer *t, const char *s, size_t n, int bos, const int32_t *want, int32_t nwant,
                       int line) {
    int32_t got[256];
    int32_t k = enc(t, s, n, bos, got, 256);
    if (ids_eq(got, k, want, nwant)) {
        n_pass++;
        return;
    }
    n_fail++;
    fprintf(stderr, "%s:%d: FAIL: ids of \"%.*s\"\n", __FILE__, line, (int)n, s);
    print_ids("got", got, k);
    print_ids("want", want, nwant);
}
#define EXPECT_IDS(t, str, bos, ...)                                                                             \
    do {                                                                                                         \
        static const int32_t want_[] = {__VA_ARGS__};                                                            \
        expect_ids(t, str, strlen(str), bos, want_, (int32_t)(sizeof want_ / sizeof want_[0]), __LINE__);        \
    } while (0)

/* detokenize(tokenize(x)) == x; returns 1 if it held */
static int round_trip(const trl_tokenizer *t, const char *s, size_t n, int bos) {
    int32_t need = trl_tokenize(t, s, n, bos, NULL, 0);
    if (need < 0) {
        fprintf(stderr, "  tokenize failed on %zu bytes\n", n);
        return 0;
    }
    int32_t *ids = malloc(sizeof(int32_t) * ((size_t)need + 1));
    int32_t k = trl_tokenize(t, s, n, bos, ids, need);
    int32_t blen = trl_detokenize(t, ids, k, NULL, 0);
    char *out = malloc((size_t)(blen > 0 ? blen : 1));
    int32_t b2 = trl_detokenize(t, ids, k, out, blen);
    int ok = k == need && blen == b2 && (size_t)blen == n && (n == 0 || !memcmp(out, s, n));
    /* the pieces concatenate to the same bytes (SPM: plus the encoder's space) */
    if (ok && t && trl_tokenizer_get_kind(t) == TRL_TOK_BPE_GPT2) {
        size_t pos = 0;
        for (int32_t i = 0; i < k && ok; i++) {
            char piece[512];
            int32_t pl = trl_token_to_bytes(t, ids[i], piece, sizeof piece);
            ok = pl >= 0 && pl <= (int32_t)sizeof piece && pos + (size_t)pl <= n && !memcmp(s + pos, piece, (size_t)pl);
            pos += (size_t)(pl > 0 ? pl : 0);
        }
        ok = ok && pos == n;
    }
    if (!ok) fprintf(stderr, "  round trip failed: %zu bytes in, %d tokens, %d bytes out\n", n, k, blen);
    free(ids);
    free(out);
    return ok;
}

static int find_sub(const char *s, size_t n, const char *sub) {
    size_t k = strlen(sub);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, sub, k)) return 1;
    return 0;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sbuf b = {0};
    char tmp[4096];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) sb_add(&b, tmp, k);
    fclose(f);
    *len = b.n;
    return b.s ? b.s : calloc(1, 1);
}

/* a random string mixing ASCII words, whitespace runs, multi-byte text,
 * emoji and invalid UTF-8 */
static size_t random_text(char *out, size_t cap) {
    static const char *const parts[] = {
        "the", "a", " ", "  ", "\n", "\n\n", "\t", "\r\n", "Once", "upon", "time", "'s", "'t", "'LL", "123", "4567",
        ",", ".", "!?", "\xc3\xa9", "\xe2\x80\x9c", "\xe2\x80\x9d", "\xe4\xb8\xad\xe6\x96\x87", "\xf0\x9f\x98\x80",
        "\xe3\x80\x80", "\xc2\xa0", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\x80",
        "Lily", "ly", "\xd9\xa3\xd9\xa4", "\xc5\xbf", "<", "|", ">", "\xe2\x96\x81", "\x00", "ab", "bc"};
    size_t n = 0, want = rnd() % (cap > 200 ? 200 : cap);
    while (n < want) {
        if (rnd() % 8 == 0) { /* a raw random byte */
            out[n++] = (char)(rnd() & 0xFF);
            continue;
        }
        const char *p = parts[rnd() % (sizeof parts / sizeof parts[0])];
        size_t l = strlen(p);
        if (p[0] == 0) l = 1; /* the NUL part */
        if (n + l > cap) break;
        memcpy(out + n, p, l);
        n += l;
    }
    return n;
}

/* ------------------------------------------------------------ unicode */

static void test_unicode(void) {
    static const struct {
        const char *s;
        size_t n;
        uint32_t cp;
        size_t len;
    } cases[] = {
        {"a", 1, 'a', 1},
        {"\xc3\xa9", 2, 0xE9, 2},
        {"\xe4\xb8\xad", 3, 0x4E2D, 3},
        {"\xf0\x9f\x98\x80", 4, 0x1F600, 4},
        {"\xf4\x8f\xbf\xbf", 4, 0x10FFFF, 4},
        {"\xc0\x80", 2, TRL_UTF8_INVALID, 1},     /* overlong */
        {"\xc1\xbf", 2, TRL_UTF8_INVALID, 1},     /* overlong */
        {"\xe0\x80\x80", 3, TRL_UTF8_INVALID, 1}, /* overlong */
        {"\xed\xa0\x80", 3, TRL_UTF8_INVALID, 1}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, TRL_UTF8_INVALID, 1}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 4, TRL_UTF8_INVALID, 1},
        {"\xe4\xb8", 2, TRL_UTF8_INVALID, 1},     /* truncated */
        {"\xe4\xb8x", 3, TRL_UTF8_INVALID, 1},
        {"\x80", 1, TRL_UTF8_INVALID, 1},
        {"\xff", 1, TRL_UTF8_INVALID, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint32_t cp = trl_utf8_decode((const uint8_t *)cases[i].s, cases[i].n, &len);
        CHECKF(cp == cases[i].cp && len == cases[i].len, "case %zu: U+%X len %zu", i, cp, len);
    }
    static const struct {
        uint32_t cp;
        int cls;
    } cls[] = {
        {'a', TRL_UC_L},      {'Z', TRL_UC_L},      {'0', TRL_UC_N},      {' ', TRL_UC_WS},    {'\t', TRL_UC_WS},
        {'\n', TRL_UC_WS},    {'\r', TRL_UC_WS},    {0x0B, TRL_UC_WS},    {0x0C, TRL_UC_WS},   {0x85, TRL_UC_WS},
        {0xA0, TRL_UC_WS},    {0x1680, TRL_UC_WS},  {0x2000, TRL_UC_WS},  {0x200A, TRL_UC_WS}, {0x2028, TRL_UC_WS},
        {0x2029, TRL_UC_WS},  {0x202F, TRL_UC_WS},  {0x205F, TRL_UC_WS},  {0x3000, TRL_UC_WS}, {0x1C, TRL_UC_OTHER},
        {0x1F, TRL_UC_OTHER}, {0x200B, TRL_UC_OTHER}, {0x180E, TRL_UC_OTHER}, {'_', TRL_UC_OTHER},
        {'\'', TRL_UC_OTHER}, {'!', TRL_UC_OTHER},  {0, TRL_UC_OTHER},    {0x4E2D, TRL_UC_L},  {0x00E9, TRL_UC_L},
        {0x017F, TRL_UC_L},   {0x0663, TRL_UC_N},   {0x00BD, TRL_UC_N},   {0x2167, TRL_UC_N},  {0x00B2, TRL_UC_N},
        {0x1F600, TRL_UC_OTHER}, {0x2581, TRL_UC_OTHER}, {0x02B0, TRL_UC_L}, {0x3042, TRL_UC_L}, {0xAC00, TRL_UC_L},
        {0x10FFFF, TRL_UC_OTHER}, {TRL_UTF8_INVALID, TRL_UC_OTHER}, {0xFFFFFFFFu, TRL_UC_OTHER},
    };
    for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++)
        CHECKF(trl_unicode_class(cls[i].cp) == cls[i].cls, "U+%04X class %d, want %d", cls[i].cp,
               trl_unicode_class(cls[i].cp), cls[i].cls);
    CHECK(strlen(trl_unicode_version()) >= 3);
}

/* ------------------------------------------------------------ pre-tokenizers */

/* pieces separated by '|' in `want` (texts here hold no '|') */
static void expect_split(int pretok, const char *s, size_t n, const char *want, size_t wn, int line) {
    sbuf got = {0};
    size_t pos = 0;
    int guard = 0;
    while (pos < n && guard++ < 10000) {
        size_t e = trl_pretok_next(pretok, (const uint8_t *)s, n, pos);
        if (e <= pos || e > n) {
            sb_str(&got, "<BAD END>");
            break;
        }
        if (pos) sb_str(&got, "|");
        sb_add(&got, s + pos, e - pos);
        pos = e;
    }
    if (got.n == wn && (wn == 0 || !memcmp(got.s, want, wn))) n_pass++;
    else {
        n_fail++;
        fprintf(stderr, "%s:%d: FAIL: %s split of \"%.*s\"\n  got  \"%s\"\n  want \"%s\"\n", __FILE__, line,
                pretok == TRL_PRETOK_GPT2 ? "gpt2" : "llama3", (int)n, s, got.s ? got.s : "", want);
    }
    free(got.s);
}
#define SPLIT(p, s, want) expect_split(p, s, sizeof(s) - 1, want, sizeof(want) - 1, __LINE__)

static void test_pretok(void) {
    const int G = TRL_PRETOK_GPT2, L = TRL_PRETOK_LLAMA3;
    /* the brief's example, derived from the regex alternatives by hand:
     * "  \n\n x": \s+ takes all 5 whitespace, (?!\S) fails before 'x', so it gives back
     * one: "  \n\n" (GPT-2) / \s*[\r\n]+ ends at the last newline (Llama 3) */
    SPLIT(G, "Hello world's 123  \n\n x", "Hello| world|'s| 123|  \n\n| x");
    SPLIT(L, "Hello world's 123  \n\n x", "Hello| world|'s| |123|  \n\n| x");
    /* GPT-2 contractions are case-sensitive; Llama 3's are not; digits in threes */
    SPLIT(G, "I'M 12345 ab?!c", "I|'|M| 12345| ab|?!|c");
    SPLIT(L, "I'M 12345 ab?!c", "I|'M| |123|45| ab|?!|c");
    SPLIT(G, "DON'T don't we'll I've you're", "DON|'|T| don|'t| we|'ll| I|'ve| you|'re");
    SPLIT(L, "DON'T don't WE'LL I'Ve", "DON|'T| don|'t| WE|'LL| I|'Ve");
    /* punctuation then newlines: Llama 3 keeps the newlines with it */
    SPLIT(G, "!\n\nx\r\n  y", "!|\n|\n|x|\r\n | y");
    SPLIT(L, "!\n\nx\r\n  y", "!\n\n|x|\r\n| | y");
    /* trailing whitespace stays whole */
    SPLIT(G, "a  ", "a|  ");
    SPLIT(L, "a  ", "a|  ");
    SPLIT(G, "   ", "   ");
    SPLIT(L, " \n", " \n");
    SPLIT(L, "\n \n  ", "\n \n|  ");
    /* Llama 3 lets one non-letter lead a word; GPT-2 only a space */
    SPLIT(G, "\tword (x)", "\t|word| (|x|)");
    SPLIT(L, "\tword (x)", "\tword| (|x|)");
    SPLIT(L, "\nword", "\n|word");
    /* invalid UTF-8 bytes are "other" characters */
    SPLIT(G, "a\xff\xfe" "b", "a|\xff\xfe|b");
    SPLIT(L, "a\xff\xfe" "b", "a|\xff\xfe|b");
    SPLIT(L, "\xff" "b", "\xff" "b");
    SPLIT(G, " \xff", " \xff");
    /* CJK letters, emoji (So) + punctuation as one "other" run */
    SPLIT(G, "\xe4\xbd\xa0\xe5\xa5\xbd \xe4\xb8\x96\xe7\x95\x8c\xf0\x9f\x98\x80\xf0\x9f\x98\x80!",
          "\xe4\xbd\xa0\xe5\xa5\xbd| \xe4\xb8\x96\xe7\x95\x8c|\xf0\x9f\x98\x80\xf0\x9f\x98\x80!");
    /* non-ASCII digits; U+00A0 and U+3000 are \s */
    SPLIT(L, "\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6", "\xd9\xa3\xd9\xa4\xd9\xa5|\xd9\xa6");
    SPLIT(G, "a\xc2\xa0\xc2\xa0" "b", "a|\xc2\xa0|\xc2\xa0|b");
    SPLIT(L, "a\xc2\xa0\xc2\xa0" "b", "a|\xc2\xa0|\xc2\xa0" "b");
    SPLIT(G, "a\xe3\x80\x80\xe3\x80\x80" "b", "a|\xe3\x80\x80|\xe3\x80\x80|b");
    /* (?i) folds s to U+017F (long s) */
    SPLIT(L, "'\xc5\xbfx", "'\xc5\xbf|x");
    SPLIT(G, "'\xc5\xbfx", "'|\xc5\xbfx");
    /* an apostrophe that starts no contraction */
    SPLIT(G, "'x 'q", "'|x| '|q");
    SPLIT(L, "'x 'q", "'x| '|q");
    SPLIT(G, "'", "'");
    SPLIT(L, "'", "'");
    SPLIT(L, "x'", "x|'");
    /* NUL is "other" */
    SPLIT(G, "a\0b", "a|\0|b");
    /* the whole text is always covered */
    for (int it = 0; it < 300; it++) {
        char buf[256];
        size_t n = random_text(buf, sizeof buf);
        for (int p = 1; p <= 2; p++) {
            size_t pos = 0, pieces = 0;
            int ok = 1;
            while (pos < n && ok) {
                size_t e = trl_pretok_next(p, (const uint8_t *)buf, n, pos);
                ok = e > pos && e <= n;
                pos = e, pieces++;
            }
            CHECK(ok && pos == n);
        }
    }
}

/* ------------------------------------------------------------ SPM */

/* a llama2.c tokenizer.bin in memory */
static void *make_llama2c(const char *const *pieces, const float *scores, int n, size_t *len) {
    sbuf b = {0};
    int32_t maxlen = 0;
    for (int i = 0; i < n; i++)
        if ((int32_t)strlen(pieces[i]) > maxlen) maxlen = (int32_t)strlen(pieces[i]);
    sb_add(&b, &maxlen, 4);
    for (int i = 0; i < n; i++) {
        int32_t l = (int32_t)strlen(pieces[i]);
        sb_add(&b, &scores[i], 4);
        sb_add(&b, &l, 4);
        sb_add(&b, pieces[i], (size_t)l);
    }
    *len = b.n;
    return b.s;
}

typedef struct l2c_vocab {
    int n;
    char **piece;
    int32_t *len;
    float *score;
} l2c_vocab;

static int l2c_parse(const uint8_t *d, size_t n, l2c_vocab *v) {
    memset(v, 0, sizeof *v);
    size_t pos = 4;
    int cap = 0;
    while (pos + 8 <= n) {
        int32_t l;
        memcpy(&l, d + pos + 4, 4);
        if (l < 0 || pos + 8 + (size_t)l > n) return -1;
        if (v->n == cap) {
            cap = cap ? cap * 2 : 64;
            v->piece = realloc(v->piece, sizeof(char *) * (size_t)cap);
            v->len = realloc(v->len, sizeof(int32_t) * (size_t)cap);
            v->score = realloc(v->score, sizeof(float) * (size_t)cap);
        }
        memcpy(&v->score[v->n], d + pos, 4);
        v->len[v->n] = l;
        v->piece[v->n] = malloc((size_t)l + 1);
        memcpy(v->piece[v->n], d + pos + 8, (size_t)l);
        v->piece[v->n][l] = 0;
        v->n++;
        pos += 8 + (size_t)l;
    }
    return 0;
}

static void l2c_free(l2c_vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->piece[i]);
    free(v->piece);
    free(v->len);
    free(v->score);
}

static int l2c_lookup(const l2c_vocab *v, const char *s, size_t n) {
    for (int i = 0; i < v->n; i++)
        if ((size_t)v->len[i] == n && !memcmp(v->piece[i], s, n)) return i;
    return -1;
}

/* llama2.c's encode(), O(n^2), kept as the oracle; the one difference is the
 * documented one: text splits into strict UTF-8 code points, so a bad byte is
 * always a byte token of its own. */
static int32_t naive_spm(const l2c_vocab *v, const char *text, size_t len, int32_t *out) {
    int32_t n = 0;
    out[n++] = 1;
    if (len) out[n++] = l2c_lookup(v, " ", 1);
    for (size_t pos = 0; pos < len;) {
        size_t cl;
        uint32_t cp = trl_utf8_decode((const uint8_t *)text + pos, len - pos, &cl);
        int id = cp == TRL_UTF8_INVALID ? -1 : l2c_lookup(v, text + pos, cl);
        if (id >= 0) out[n++] = id;
        else
            for (size_t k = 0; k < cl; k++) out[n++] = (uint8_t)text[pos + k] + 3;
        pos += cl;
    }
    char buf[1024];
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_idx = -1;
        for (int32_t i = 1; i + 1 < n; i++) { /* from 1: BOS never merges */
            size_t la = (size_t)v->len[out[i]], lb = (size_t)v->len[out[i + 1]];
            if (la + lb > sizeof buf) continue;
            memcpy(buf, v->piece[out[i]], la);
            memcpy(buf + la, v->piece[out[i + 1]], lb);
            int id = l2c_lookup(v, buf, la + lb);
            if (id >= 0 && v->score[id] > best) best = v->score[id], best_id = id, best_idx = i;
        }
        if (best_idx < 0) break;
        out[best_idx] = best_id;
        memmove(out + best_idx + 1, out + best_idx + 2, sizeof(int32_t) * (size_t)(n - best_idx - 2));
        n--;
    }
    return n;
}

static trl_tokenizer *make_tok(const void *blob, size_t len) {
    trl_tokenizer *t = NULL;
    trl_error e;
    trl_status st = trl_tokenizer_create(blob, len, &t, &e);
    if (st != TRL_OK) fprintf(stderr, "  create failed: %s\n", e.msg);
    CHECK(st == TRL_OK && t);
    return t;
}

static double now_s(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* the encoder against the oracle on random text, round trips, long inputs */
static void spm_properties(const trl_tokenizer *t, const l2c_vocab *v, int iters) {
    char text[256];
    int32_t a[600], b[600];
    int bad = 0;
    for (int it = 0; it < iters; it++) {
        size_t n = random_text(text, sizeof text);
        int32_t na = enc(t, text, n, 1, a, 600);
        int32_t nb = naive_spm(v, text, n, b);
        if (!ids_eq(a, na, b, nb) && bad++ < 3) {
            fprintf(stderr, "  spm differs from llama2.c on %zu bytes\n", n);
            print_ids("got", a, na);
            print_ids("want", b, nb);
        }
        if (!round_trip(t, text, n, 1)) bad++;
    }
    CHECKF(bad == 0, "%d of %d random texts", bad, iters);
    /* random bytes */
    bad = 0;
    for (int it = 0; it < iters; it++) {
        size_t n = rnd() % 64;
        for (size_t i = 0; i < n; i++) text[i] = (char)rnd();
        if (!round_trip(t, text, n, 1)) bad++;
    }
    CHECK(bad == 0);
}

static void spm_long(const trl_tokenizer *t, const char *unit) {
    size_t ul = strlen(unit), n = 0, want = 300000;
    char *s = malloc(want + ul);
    while (n < want) memcpy(s + n, unit, ul), n += ul;
    double t0 = now_s();
    int32_t k = trl_tokenize(t, s, n, 1, NULL, 0);
    double dt = now_s() - t0;
    CHECK(k > 0);
    CHECK(round_trip(t, s, n, 1));
    printf("  %zu bytes of \"%s\"... -> %d tokens in %.3f s\n", n, unit[0] == ' ' ? "<spaces>" : unit, k, dt);
    free(s);
}

static void test_spm_synthetic(void) {
    /* ids 0..2 specials, 3..258 bytes, then pieces; scores favour "ab" over " a" */
    const char *pieces[270];
    float scores[270];
    static char bytebuf[256][7];
    int n = 0;
    pieces[n] = "<unk>", scores[n++] = 0;
    pieces[n] = "\n<s>\n", scores[n++] = 0;
    pieces[n] = "\n</s>\n", scores[n++] = 0;
    for (int i = 0; i < 256; i++) {
        snprintf(bytebuf[i], 7, "<0x%02X>", i);
        pieces[n] = bytebuf[i], scores[n++] = 0;
    }
    static const char *const extra[] = {" ", "a", "b", "c", " a", "ab", " ab", "bc", "abc", "aa", "\xc3\xa9"};
    static const float escore[] = {-100, -101, -102, -103, -3, -1, -2, -4, -5, -1, -104};
    for (int i = 0; i < 11; i++) pieces[n] = extra[i], scores[n] = escore[i], n++;
    /* ids: ' '=259 a=260 b=261 c=262 ' a'=263 ab=264 ' ab'=265 bc=266 abc=267 aa=268 e-acute=269 */
    size_t len;
    void *file = make_llama2c(pieces, scores, n, &len);
    void *blob;
    size_t blen;
    trlc_tokenizer_info info;
    char err[256];
    int rc = trlc_tokenizer_from_llama2c_mem(file, len, n, "synthetic.bin", &blob, &blen, &info, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    CHECK(info.bos_id == 1 && info.eos_id == 2 && info.kind == TRL_TOK_SPM && info.vocab_size == n &&
          info.add_bos == 1 && info.chat_template == NULL);
    trl_tokenizer *t = make_tok(blob, blen);
    if (!t) return;
    CHECK(trl_tokenizer_get_kind(t) == TRL_TOK_SPM && trl_tokenizer_vocab_size(t) == n);
    CHECK(trl_tokenizer_bos(t) == 1 && trl_tokenizer_eos(t) == 2);
    /* " ab": ab (-1) beats " a" (-3), then " " + "ab" -> " ab" (-2) */
    EXPECT_IDS(t, "ab", 1, 1, 265);
    EXPECT_IDS(t, "ab", 0, 265);
    /* " abc": ab first, then " ab" (-2) beats "abc" (-5) */
    EXPECT_IDS(t, "abc", 1, 1, 265, 262);
    /* "aaaa": ties merge leftmost first: " " a a a a -> " " aa a a -> " " aa aa */
    EXPECT_IDS(t, "aaaa", 1, 1, 259, 268, 268);
    EXPECT_IDS(t, "aaa", 1, 1, 259, 268, 260);
    /* unknown code point -> byte tokens; known two-byte piece -> its id */
    EXPECT_IDS(t, "\xc3\xa9\xe4\xb8\xad", 1, 1, 259, 269, 0xe4 + 3, 0xb8 + 3, 0xad + 3);
    /* an invalid byte cannot merge through */
    EXPECT_IDS(t, "a\xff" "b", 1, 1, 263, 0xff + 3, 261);
    EXPECT_IDS(t, "", 1, 1);
    int32_t none[1];
    CHECK(trl_tokenize(t, "", 0, 0, none, 1) == 0);
    /* decoding: BYTE -> raw byte, CONTROL -> nothing, the space after BOS dropped */
    char out[64];
    CHECK(trl_token_to_bytes(t, 0xe4 + 3, out, 64) == 1 && (uint8_t)out[0] == 0xe4);
    CHECK(trl_token_to_bytes(t, 1, out, 64) == 0);
    CHECK(trl_token_to_bytes(t, 265, out, 64) == 3 && !memcmp(out, " ab", 3));
    CHECK(trl_token_to_bytes(t, 265, out, 2) == 3 && !memcmp(out, " a", 2));
    CHECK(trl_token_to_bytes(t, 265, NULL, 0) == 3);
    CHECK(trl_token_to_bytes(t, n, out, 64) == -1 && trl_token_to_bytes(t, -1, out, 64) == -1);
    int32_t seq[] = {1, 265, 262, 2};
    CHECK(trl_detokenize(t, seq, 4, out, 64) == 3 && !memcmp(out, "abc", 3));
    CHECK(trl_detokenize(t, seq + 1, 2, out, 64) == 4 && !memcmp(out, " abc", 4)); /* no BOS: space stays */
    CHECK(trl_detokenize(t, seq, 4, out, 2) == 3 && !memcmp(out, "ab", 2));
    int32_t badseq[] = {1, 9999};
    CHECK(trl_detokenize(t, badseq, 2, out, 64) == -1);
    /* cap smaller than the encoding: returns the full count, writes only cap */
    int32_t ids[3] = {-7, -7, -7};
    CHECK(trl_tokenize(t, "abcabc", 6, 1, ids, 2) == 4 && ids[0] == 1 && ids[1] == 265 && ids[2] == -7);
    CHECK(trl_tokenize(NULL, "a", 1, 1, ids, 3) == -1);
    CHECK(trl_tokenize(t, NULL, 1, 1, ids, 3) == -1);
    CHECK(trl_tokenize(t, "a", 1, 1, NULL, 3) == -1);
    CHECK(trl_tokenize(t, "a", 1, 1, ids, -1) == -1);
    l2c_vocab v;
    CHECK(l2c_parse(file, len, &v) == 0);
    spm_properties(t, &v, 300);
    spm_long(t, "ab");
    spm_long(t, " ");
    spm_long(t, "\xff");
    l2c_free(&v);
    trl_tokenizer_free(t);
    trlc_tokenizer_info_free(&info);
    free(blob);
    free(file);
}

static void *tok512_blob(const char *path, size_t *blen) {
    void *blob;
    trlc_tokenizer_info info;
    char err[256];
    int rc = trlc_tokenizer_from_llama2c(path, 512, &blob, blen, &info, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return NULL;
    CHECK(info.bos_id == 1 && info.eos_id == 2 && info.vocab_size == 512 && info.kind == TRL_TOK_SPM);
    trlc_tokenizer_info_free(&info);
    return blob;
}

static void test_tok512(const char *path) {
    size_t blen;
    void *blob = tok512_blob(path, &blen);
    if (!blob) return;
    printf("  tok512.bin -> %zu-byte blob\n", blen);
    trl_tokenizer *t = make_tok(blob, blen);
    if (!t) {
        free(blob);
        return;
    }
    CHECK(trl_tokenizer_vocab_size(t) == 512);
    /* ids from a line-by-line Python port of llama2.c's encode() */
    EXPECT_IDS(t, "Once upon a time, there was a little girl named Lily.", 1, 1, 403, 407, 261, 378, 432, 383, 286,
               261, 376, 298, 315, 421, 395, 317, 426);
    EXPECT_IDS(t, "Hello world", 1, 1, 346, 306, 414, 263, 304, 341);
    EXPECT_IDS(t, "  two  spaces", 1, 1, 410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419);
    EXPECT_IDS(t,
               "caf\xc3\xa9 \xe2\x80\x9cquoted\xe2\x80\x9d \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80!", 1, 1, 280, 412,
               431, 485, 410, 465, 456, 425, 309, 266, 466, 410, 231, 187, 176, 233, 153, 138, 410, 243, 162, 155, 131,
               443);
    EXPECT_IDS(t, "\n", 1, 1, 410, 13);
    EXPECT_IDS(t, "a", 1, 1, 261);
    char out[256];
    int32_t ids[64];
    int32_t k = enc(t, "Hello world", 11, 1, ids, 64);
    int32_t ol = trl_detokenize(t, ids, k, out, sizeof out);
    CHECK(ol == 11 && !memcmp(out, "Hello world", 11));
    CHECK(round_trip(t, "", 0, 1));
    CHECK(round_trip(t, " leading", 8, 1));
    CHECK(round_trip(t, "\xf0\x9f\x98\x80\xe4\xb8\xad\xc0\x80\xed\xa0\x80", 12, 1));
    l2c_vocab v;
    size_t flen;
    char *file = read_all(path, &flen);
    CHECK(file && l2c_parse((const uint8_t *)file, flen, &v) == 0);
    spm_properties(t, &v, 200);
    spm_long(t, "Once upon a time, there was a little girl named Lily. ");
    spm_long(t, " ");
    l2c_free(&v);
    free(file);
    trl_tokenizer_free(t);
    free(blob);
}

/* ------------------------------------------------------------ byte-level BPE */

static uint32_t byte_to_unicode(int b) { /* GPT-2's bytes_to_unicode */
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable) return (uint32_t)b;
    int n = 0;
    for (int x = 0; x < b; x++) {
        int p = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
        if (!p) n++;
    }
    return 256u + (uint32_t)n;
}

static void put_bl_string(sbuf *b, const char *raw) { /* raw bytes -> byte-level JSON string */
    sb_str(b, "\"");
    for (const uint8_t *p = (const uint8_t *)raw; *p; p++) {
        uint32_t cp = byte_to_unicode(*p);
        if (cp == '"' || cp == '\\') sb_add(b, "\\", 1);
        put_utf8(b, cp);
    }
    sb_str(b, "\"");
}

/* merges in rank order as raw byte strings; token 256 + r is merge r's result */
static const char *const BPE_MERGES[][2] = {
    {" ", "t"},      {"h", "e"},   {" t", "he"},   {"l", "l"},   {"H", "e"},    {"He", "ll"},    {"Hell", "o"},
    {"o", "r"},      {" ", "w"},   {" w", "or"},   {"l", "d"},   {" wor", "ld"}, {"'", "s"},     {"1", "2"},
    {" ", "1"},      {"12", "3"},  {" ", "123"},   {"\n", "\n"}, {" ", " "},     {"\xe4", "\xb8"},
    {"\xe4\xb8", "\xad"}, {"\xf0", "\x9f"}, {"\xf0\x9f", "\x98"}, {"\xf0\x9f\x98", "\x80"}};
#define N_BPE_MERGES ((int)(sizeof BPE_MERGES / sizeof BPE_MERGES[0]))
/* then " xyz" (no merges: only ignore_merges finds it), <|endoftext|> (special), <tag> (not) */
#define BPE_XYZ (256 + N_BPE_MERGES)
#define BPE_EOT (BPE_XYZ + 1)
#define BPE_TAG (BPE_XYZ + 2)

static char *gpt2_json(int llama3_regex, int array_merges, int ignore_merges) {
    sbuf b = {0};
    sb_str(&b, "{\"version\": \"1.0\", \"added_tokens\": [");
    sb_printf(&b, "{\"id\": %d, \"content\": \"<|endoftext|>\", \"single_word\": false, \"lstrip\": false, "
                  "\"rstrip\": false, \"normalized\": false, \"special\": true},", BPE_EOT);
    sb_printf(&b, "{\"id\": %d, \"content\": \"<tag>\", \"special\": false}],\n", BPE_TAG);
    sb_str(&b, "\"normalizer\": null,\n\"pre_tokenizer\": ");
    if (llama3_regex)
        sb_str(&b, "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
                   "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| "
                   "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, "
                   "\"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": "
                   "false, \"trim_offsets\": true, \"use_regex\": false}]},\n");
    else
        sb_str(&b, "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},\n");
    sb_str(&b, "\"post_processor\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"},\n");
    sb_printf(&b, "\"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
                  "\"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": null, \"fuse_unk\": false, "
                  "\"byte_fallback\": false, \"ignore_merges\": %s, \"vocab\": {",
              ignore_merges ? "true" : "false");
    for (int i = 0; i < 256; i++) {
        char raw[2] = {(char)i, 0};
        if (i == 0) { /* NUL cannot sit in a C string: write U+0100 directly */
            sb_str(&b, "\"\\u0100\": 0");
        } else {
            put_bl_string(&b, raw);
            sb_printf(&b, ": %d", i);
        }
        sb_str(&b, ", ");
    }
    for (int r = 0; r < N_BPE_MERGES; r++) {
        char joined[32];
        snprintf(joined, sizeof joined, "%s%s", BPE_MERGES[r][0], BPE_MERGES[r][1]);
        put_bl_string(&b, joined);
        sb_printf(&b, ": %d, ", 256 + r);
    }
    put_bl_string(&b, " xyz");
    sb_printf(&b, ": %d, \"<|endoftext|>\": %d}, \"merges\": [", BPE_XYZ, BPE_EOT);
    for (int r = 0; r < N_BPE_MERGES; r++) {
        if (r) sb_str(&b, ", ");
        if (array_merges) {
            sb_str(&b, "[");
            put_bl_string(&b, BPE_MERGES[r][0]);
            sb_str(&b, ", ");
            put_bl_string(&b, BPE_MERGES[r][1]);
            sb_str(&b, "]");
        } else {
            /* "a b" as one byte-level string: join the encodings with a space */
            sbuf x = {0}, y = {0};
            put_bl_string(&x, BPE_MERGES[r][0]);
            put_bl_string(&y, BPE_MERGES[r][1]);
            x.s[x.n - 1] = 0, x.n--;                       /* drop the closing quote */
            sb_add(&b, x.s, x.n);
            sb_str(&b, " ");
            sb_add(&b, y.s + 1, y.n - 1);                  /* drop the opening quote */
            free(x.s);
            free(y.s);
        }
    }
    sb_str(&b, "]}}\n");
    return b.s;
}

static const char GPT2_CONFIG[] =
    "{\"bos_token\": \"<|endoftext|>\", \"eos_token\": {\"content\": \"<|endoftext|>\", \"lstrip\": false}, "
    "\"chat_template\": \"{% for m in messages %}{{ m['content'] }}{% endfor %}\", \"add_bos_token\": false}";

/* naive BPE over bytes: lowest rank first, leftmost on ties */
static int32_t naive_bpe(const char *piece, size_t n, int32_t *out) {
    static int32_t side[N_BPE_MERGES][2];
    static int ready;
    if (!ready) { /* the ids of each merge's two sides: a byte, or an earlier merge's result */
        for (int r = 0; r < N_BPE_MERGES; r++)
            for (int k = 0; k < 2; k++) {
                const char *m = BPE_MERGES[r][k];
                side[r][k] = strlen(m) == 1 ? (uint8_t)m[0] : -1;
                for (int q = 0; q < N_BPE_MERGES; q++) {
                    char j[32];
                    snprintf(j, sizeof j, "%s%s", BPE_MERGES[q][0], BPE_MERGES[q][1]);
                    if (!strcmp(j, m)) side[r][k] = 256 + q;
                }
            }
        ready = 1;
    }
    int32_t k = 0;
    for (size_t i = 0; i < n; i++) out[k++] = (uint8_t)piece[i];
    for (;;) {
        int best_r = -1, best_i = -1;
        for (int32_t i = 0; i + 1 < k; i++)
            for (int r = 0; r < N_BPE_MERGES && (best_r < 0 || r < best_r); r++)
                if (out[i] == side[r][0] && out[i + 1] == side[r][1]) best_r = r, best_i = i;
        if (best_i < 0) break;
        out[best_i] = 256 + best_r;
        memmove(out + best_i + 1, out + best_i + 2, sizeof(int32_t) * (size_t)(k - best_i - 2));
        k--;
    }
    return k;
}

static int32_t naive_bpe_text(int pretok, const char *s, size_t n, int32_t *out) {
    int32_t k = 0;
    for (size_t pos = 0; pos < n;) {
        size_t e = trl_pretok_next(pretok, (const uint8_t *)s, n, pos);
        k += naive_bpe(s + pos, e - pos, out + k);
        pos = e;
    }
    return k;
}

static void *gpt2_blob(int llama3, int array_merges, int ignore_merges, size_t *blen, trlc_tokenizer_info *info) {
    char *json = gpt2_json(llama3, array_merges, ignore_merges);
    void *blob = NULL;
    char err[256];
    int rc = trlc_tokenizer_from_hf_mem(json, strlen(json), "gpt2.json", GPT2_CONFIG, sizeof GPT2_CONFIG - 1,
                                        "gpt2_config.json", &blob, blen, info, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    free(json);
    return rc ? NULL : blob;
}

static void test_bpe(void) {
    for (int variant = 0; variant < 4; variant++) {
        int llama3 = variant & 1, array_merges = variant >> 1;
        size_t blen;
        trlc_tokenizer_info info;
        void *blob = gpt2_blob(llama3, array_merges, 0, &blen, &info);
        if (!blob) continue;
        CHECK(info.kind == TRL_TOK_BPE_GPT2 && info.bos_id == BPE_EOT && info.eos_id == BPE_EOT &&
              info.vocab_size == BPE_TAG + 1 && info.add_bos == 0);
        CHECK(info.chat_template && !strcmp(info.chat_template, "{% for m in messages %}{{ m['content'] }}{% endfor %}"));
        trl_tokenizer *t = make_tok(blob, blen);
        if (!t) {
            free(blob);
            continue;
        }
        CHECK(trl_tokenizer_get_kind(t) == TRL_TOK_BPE_GPT2);
        const char *s = "Hello world's 123  \n\n x";
        /* Hello | " world": or, " w", " wor", ld, " world" | 's | " 123": 12, 123, " 123" |
         * "  \n\n": "\n\n" (rank 17) before "  " (18) | " x": no merge */
        if (!llama3) EXPECT_IDS(t, s, 0, 262, 267, 268, 272, 274, 273, ' ', 'x');
        else EXPECT_IDS(t, s, 0, 262, 267, 268, ' ', 271, 274, 273, ' ', 'x');
        if (!llama3) EXPECT_IDS(t, s, 1, BPE_EOT, 262, 267, 268, 272, 274, 273, ' ', 'x');
        else EXPECT_IDS(t, s, 1, BPE_EOT, 262, 267, 268, ' ', 271, 274, 273, ' ', 'x');
        /* multi-byte: \xe4\xb8 + \xad -> one token; emoji in two steps */
        EXPECT_IDS(t, "\xe4\xb8\xad", 0, 256 + 20);
        EXPECT_IDS(t, "\xf0\x9f\x98\x80", 0, 256 + 23);
        /* added tokens split the text first; special ones decode to nothing */
        EXPECT_IDS(t, "a<|endoftext|>b<tag><|endoftext", 0, 'a', BPE_EOT, 'b', BPE_TAG, '<', '|', 'e', 'n', 'd', 'o',
                   'f', 't', 'e', 'x', 't');
        char out[64];
        int32_t ids[32];
        int32_t k = enc(t, "a<|endoftext|>b<tag>", 20, 0, ids, 32);
        CHECK(trl_detokenize(t, ids, k, out, 64) == 7 && !memcmp(out, "ab<tag>", 7));
        /* ignore_merges off: " xyz" is bytes */
        EXPECT_IDS(t, " xyz", 0, ' ', 'x', 'y', 'z');
        CHECK(round_trip(t, "", 0, 0));
        /* against the naive BPE, and round trips of random text / bytes */
        int bad = 0;
        char text[256];
        int32_t a[600], bb[600];
        for (int it = 0; it < 300; it++) {
            size_t n = random_text(text, sizeof text);
            /* the oracle knows no added tokens: compare only texts without them */
            int has_added = find_sub(text, n, "<tag>") || find_sub(text, n, "<|endoftext|>");
            int32_t na = enc(t, text, n, 0, a, 600);
            int32_t nb = has_added ? na : naive_bpe_text(llama3 ? TRL_PRETOK_LLAMA3 : TRL_PRETOK_GPT2, text, n, bb);
            if (has_added) memcpy(bb, a, sizeof(int32_t) * (size_t)(na > 0 ? na : 0));
            if (!ids_eq(a, na, bb, nb) && bad++ < 3) {
                fprintf(stderr, "  bpe differs from the naive merge loop on %zu bytes\n", n);
                print_ids("got", a, na);
                print_ids("want", bb, nb);
            }
            if (!round_trip(t, text, n, 0)) bad++;
            size_t rn = rnd() % 64;
            for (size_t i = 0; i < rn; i++) text[i] = (char)rnd();
            if (!find_sub(text, rn, "<|endoftext|>") && !round_trip(t, text, rn, 0)) bad++;
        }
        CHECKF(bad == 0, "%d failures (variant %d)", bad, variant);
        /* long runs: spaces, newlines, letters, digits */
        static const char *const units[] = {" ", "\n", "a", "1", "\xe4\xb8\xad", " \n"};
        for (int u = 0; u < 6; u++) {
            size_t n = 200000, ul = strlen(units[u]);
            char *big = malloc(n + ul);
            size_t m = 0;
            while (m < n) memcpy(big + m, units[u], ul), m += ul;
            double t0 = now_s();
            CHECK(round_trip(t, big, m, 0));
            if (variant == 1) printf("  bpe %zu bytes of unit %d round trip in %.3f s\n", m, u, now_s() - t0);
            free(big);
        }
        trl_tokenizer_free(t);
        trlc_tokenizer_info_free(&info);
        free(blob);
    }
    /* ignore_merges: a piece that is a whole vocab entry is one token */
    size_t blen;
    trlc_tokenizer_info info;
    void *blob = gpt2_blob(1, 1, 1, &blen, &info);
    if (blob) {
        trl_tokenizer *t = make_tok(blob, blen);
        if (t) {
            EXPECT_IDS(t, " xyz", 0, BPE_XYZ);
            EXPECT_IDS(t, "Hello", 0, 262);
            trl_tokenizer_free(t);
        }
        trlc_tokenizer_info_free(&info);
        free(blob);
    }
}

/* ------------------------------------------------------------ HF SentencePiece-style */

static const char *const HF_SPM_PIECES[] = {"\xe2\x96\x81", "a", "b", "c", "\xe2\x96\x81" "a", "ab",
                                            "\xe2\x96\x81" "ab", "bc", "abc", "aa", "\xc3\xa9"};
/* merges in rank order, as "left right" */
static const char *const HF_SPM_MERGES[] = {"a b", "a a", "\xe2\x96\x81 ab", "\xe2\x96\x81 a", "b c", "ab c"};

static char *hf_spm_json(int metaspace_first) {
    sbuf b = {0};
    sb_str(&b, "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true}, {\"id\": 1, \"content\": "
               "\"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}],\n");
    if (metaspace_first)
        sb_str(&b, "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", "
                   "\"prepend_scheme\": \"first\", \"split\": false},\n");
    else
        sb_str(&b, "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": "
                   "\"\\u2581\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
                   " \"pre_tokenizer\": null,\n");
    sb_str(&b, "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": "
               "\"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {}},\n");
    sb_str(&b, "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true, \"fuse_unk\": true, "
               "\"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (int i = 0; i < 256; i++) sb_printf(&b, ", \"<0x%02X>\": %d", i, 3 + i);
    for (int i = 0; i < 11; i++) {
        sb_str(&b, ", \"");
        sb_str(&b, HF_SPM_PIECES[i]);
        sb_printf(&b, "\": %d", 259 + i);
    }
    sb_str(&b, "}, \"merges\": [");
    for (int i = 0; i < 6; i++) {
        sb_str(&b, i ? ", \"" : "\"");
        sb_str(&b, HF_SPM_MERGES[i]);
        sb_str(&b, "\"");
    }
    sb_str(&b, "]}}");
    return b.s;
}

static void test_hf_spm(void) {
    /* the same vocab as llama2.c pieces, scored by merge rank: the two must agree */
    const char *pieces[270];
    float scores[270];
    static char bytebuf[256][7];
    int n = 0;
    pieces[n] = "<unk>", scores[n++] = 0;
    pieces[n] = "\n<s>\n", scores[n++] = 0;
    pieces[n] = "\n</s>\n", scores[n++] = 0;
    for (int i = 0; i < 256; i++) snprintf(bytebuf[i], 7, "<0x%02X>", i), pieces[n] = bytebuf[i], scores[n++] = 0;
    static const char *const plain[] = {" ", "a", "b", "c", " a", "ab", " ab", "bc", "abc", "aa", "\xc3\xa9"};
    static const float rank_score[] = {-1e30f, -1e30f, -1e30f, -1e30f, -3, -0.0f, -2, -4, -5, -1, -1e30f};
    for (int i = 0; i < 11; i++) pieces[n] = plain[i], scores[n] = rank_score[i], n++;
    size_t flen;
    void *file = make_llama2c(pieces, scores, n, &flen);
    l2c_vocab v;
    CHECK(l2c_parse(file, flen, &v) == 0);

    for (int ms = 0; ms < 2; ms++) {
        char *json = hf_spm_json(ms);
        void *blob;
        size_t blen;
        trlc_tokenizer_info info;
        char err[256];
        int rc = trlc_tokenizer_from_hf_mem(json, strlen(json), "llama.json", NULL, 0, NULL, &blob, &blen, &info, err,
                                            sizeof err);
        CHECKF(rc == 0, "%s", err);
        free(json);
        if (rc) continue;
        CHECK(info.kind == TRL_TOK_SPM && info.bos_id == 1 && info.eos_id == 2 && info.add_bos == 1 &&
              info.vocab_size == 270);
        trl_tokenizer *t = make_tok(blob, blen);
        if (t) {
            EXPECT_IDS(t, "ab", 1, 1, 265);
            EXPECT_IDS(t, "abc", 1, 1, 265, 262);
            EXPECT_IDS(t, "aab", 1, 1, 263, 264); /* "ab" (rank 0) before "aa" (rank 1) */
            EXPECT_IDS(t, "\xc3\xa9\xe4\xb8\xad", 1, 1, 259, 269, 0xe4 + 3, 0xb8 + 3, 0xad + 3);
            /* U+2581 in the text reads as a space, as in SentencePiece */
            if (!ms) EXPECT_IDS(t, "\xe2\x96\x81" "ab", 0, 259, 265);
            else EXPECT_IDS(t, "\xe2\x96\x81" "ab", 0, 265);
            if (!ms) {
                /* legacy Prepend: every segment between added tokens gets the space */
                EXPECT_IDS(t, "x<s>ab", 0, 259, 'x' + 3, 1, 265);
                EXPECT_IDS(t, " ab", 0, 259, 265);
            } else {
                /* Metaspace "first": only at offset 0, and not before an existing space */
                EXPECT_IDS(t, "x<s>ab", 0, 259, 'x' + 3, 1, 264);
                EXPECT_IDS(t, " ab", 0, 265);
            }
            char out[16];
            int32_t seq[] = {1, 265, 262};
            CHECK(trl_detokenize(t, seq, 3, out, 16) == 3 && !memcmp(out, "abc", 3));
            if (!ms) { /* Prepend (always) is SentencePiece: agree with llama2.c on anything */
                int bad = 0;
                char text[256];
                int32_t a[600], b[600];
                for (int it = 0; it < 300; it++) {
                    size_t tn = random_text(text, sizeof text);
                    if (find_sub(text, tn, "<s>") || find_sub(text, tn, "</s>") || find_sub(text, tn, "<unk>") ||
                        find_sub(text, tn, "\xe2\x96\x81"))
                        continue;
                    int32_t na = enc(t, text, tn, 1, a, 600), nb = naive_spm(&v, text, tn, b);
                    if (!ids_eq(a, na, b, nb) && bad++ < 3) {
                        print_ids("got", a, na);
                        print_ids("want", b, nb);
                    }
                    if (!round_trip(t, text, tn, 1)) bad++;
                }
                CHECKF(bad == 0, "%d differences", bad);
            }
            trl_tokenizer_free(t);
        }
        trlc_tokenizer_info_free(&info);
        free(blob);
    }
    l2c_free(&v);
    free(file);
}

/* ------------------------------------------------------------ robustness */

static void exercise(const trl_tokenizer *t) {
    char text[256], out[1024];
    int32_t ids[600];
    for (int k = 0; k < 3; k++) {
        size_t n = random_text(text, sizeof text);
        int32_t m = trl_tokenize(t, text, n, k & 1, ids, 600);
        if (m > 0) trl_detokenize(t, ids, m < 600 ? m : 600, out, sizeof out);
    }
    int32_t nv = trl_tokenizer_vocab_size(t);
    for (int32_t i = 0; i < nv && i < 2000; i++) trl_token_to_bytes(t, i, out, sizeof out);
    trl_tokenizer_bos(t);
    trl_tokenizer_eos(t);
}

/* every truncation fails; flipped bytes fail cleanly or give a usable tokenizer */
static void fuzz_blob(const char *what, const uint8_t *blob, size_t len, size_t stride) {
    int bad = 0, created = 0, tries = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* a fresh buffer, so ASan sees reads past n */
        memcpy(cut, blob, n);
        trl_tokenizer *t = NULL;
        trl_error e;
        if (trl_tokenizer_create(cut, n, &t, &e) == TRL_OK || t || e.msg[0] == 0) bad++;
        trl_tokenizer_free(t);
        free(cut);
    }
    uint8_t *copy = malloc(len);
    memcpy(copy, blob, len);
    static const uint8_t masks[] = {0x01, 0x80, 0xFF, 0x10};
    for (size_t pos = 0; pos < len; pos += stride) {
        for (int m = 0; m < 5; m++) {
            uint8_t mask = m < 4 ? masks[m] : (uint8_t)(rnd() | 1);
            copy[pos] ^= mask;
            trl_tokenizer *t = NULL;
            trl_error e;
            trl_status st = trl_tokenizer_create(copy, len, &t, &e);
            tries++;
            if (st == TRL_OK) {
                created++;
                exercise(t);
            } else if (t || e.msg[0] == 0 || e.status != st) {
                bad++;
            }
            trl_tokenizer_free(t);
            copy[pos] ^= mask;
        }
    }
    /* random garbage after a valid magic and version */
    for (int it = 0; it < 2000; it++) {
        size_t n = 48 + rnd() % 200;
        uint8_t *g = malloc(n);
        for (size_t i = 0; i < n; i++) g[i] = (uint8_t)rnd();
        memcpy(g, "TRLT\x01\x00", 6);
        g[6] = (uint8_t)(rnd() % 3), g[7] = (uint8_t)(rnd() % 3);
        trl_tokenizer *t = NULL;
        if (trl_tokenizer_create(g, n, &t, NULL) == TRL_OK) exercise(t);
        trl_tokenizer_free(t);
        free(g);
    }
    CHECKF(bad == 0, "%s: %d bad outcomes", what, bad);
    printf("  fuzz %s: %zu bytes, %d flips, %d still valid\n", what, len, tries, created);
    free(copy);
}

static void fuzz_importers(void) {
    /* llama2.c bytes: flips; whatever the importer accepts, the core must accept */
    const char *pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", "<0x41>", " ", "a", "b", " a", "ab"};
    float scores[] = {0, 0, 0, 0, -5, -6, -7, -1, -2};
    size_t flen;
    uint8_t *file = make_llama2c(pieces, scores, 9, &flen);
    int bad = 0;
    for (size_t pos = 0; pos < flen; pos++)
        for (int m = 0; m < 3; m++) {
            uint8_t mask = m == 0 ? 0x01 : m == 1 ? 0x80 : 0xFF;
            file[pos] ^= mask;
            void *blob;
            size_t blen;
            trlc_tokenizer_info info;
            char err[256];
            for (int vs = -1; vs <= 9; vs += 10) {
                if (trlc_tokenizer_from_llama2c_mem(file, flen, vs, "f.bin", &blob, &blen, &info, err, sizeof err) == 0) {
                    trl_tokenizer *t = NULL;
                    if (trl_tokenizer_create(blob, blen, &t, NULL) != TRL_OK) bad++;
                    else exercise(t);
                    trl_tokenizer_free(t);
                    trlc_tokenizer_info_free(&info);
                    free(blob);
                } else if (!err[0]) bad++;
            }
            file[pos] ^= mask;
        }
    for (size_t n = 0; n < flen; n++) {
        void *blob;
        size_t blen;
        trlc_tokenizer_info info;
        char err[256];
        if (trlc_tokenizer_from_llama2c_mem(file, n, 9, "f.bin", &blob, &blen, &info, err, sizeof err) == 0) bad++;
    }
    free(file);
    /* tokenizer.json: every truncation, and random bytes dropped in */
    char *json = gpt2_json(1, 0, 0);
    size_t jl = strlen(json);
    char *buf = malloc(jl);
    for (size_t n = 0; n < jl; n++) {
        void *blob;
        size_t blen;
        trlc_tokenizer_info info;
        char err[256];
        memcpy(buf, json, n);
        if (trlc_tokenizer_from_hf_mem(buf, n, "t.json", NULL, 0, NULL, &blob, &blen, &info, err, sizeof err) == 0) {
            if (n + 1 != jl) bad++; /* only the final newline may go */
            trlc_tokenizer_info_free(&info);
            free(blob);
        }
    }
    static const char junk[] = "\"{}[],:0\\ u-e.x\xff";
    for (size_t pos = 0; pos < jl; pos += 1) {
        memcpy(buf, json, jl);
        buf[pos] = junk[rnd() % (sizeof junk - 1)];
        void *blob;
        size_t blen;
        trlc_tokenizer_info info;
        char err[256];
        if (trlc_tokenizer_from_hf_mem(buf, jl, "t.json", GPT2_CONFIG, sizeof GPT2_CONFIG - 1, "c.json", &blob, &blen,
                                       &info, err, sizeof err) == 0) {
            trl_tokenizer *t = NULL;
            if (trl_tokenizer_create(blob, blen, &t, NULL) != TRL_OK) bad++;
            else exercise(t);
            trl_tokenizer_free(t);
            trlc_tokenizer_info_free(&info);
            free(blob);
        } else if (!err[0]) bad++;
    }
    free(buf);
    free(json);
    CHECKF(bad == 0, "%d bad importer outcomes", bad);
}

/* replace the first `from` in s (malloc'd result) */
static char *replaced(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    if (!p) return NULL;
    sbuf b = {0};
    sb_add(&b, s, (size_t)(p - s));
    sb_str(&b, to);
    sb_str(&b, p + strlen(from));
    return b.s;
}

static void expect_hf_error(const char *json, const char *config, const char *needle, int line) {
    void *blob = NULL;
    size_t blen;
    trlc_tokenizer_info info;
    char err[256] = "";
    int rc = json ? trlc_tokenizer_from_hf_mem(json, strlen(json), "tok.json", config, config ? strlen(config) : 0,
                                               "cfg.json", &blob, &blen, &info, err, sizeof err)
                  : -2;
    if (rc == -1 && strstr(err, needle)) {
        n_pass++;
        return;
    }
    n_fail++;
    fprintf(stderr, "%s:%d: FAIL: want an error naming \"%s\", got rc %d \"%s\"\n", __FILE__, line, needle, rc, err);
    if (rc == 0) {
        trlc_tokenizer_info_free(&info);
        free(blob);
    }
}
#define HF_ERROR(json, config, needle) expect_hf_error(json, config, needle, __LINE__)

static void test_import_errors(const char *tok512) {
    char err[256];
    void *blob;
    size_t blen;
    trlc_tokenizer_info info;
    CHECK(trlc_tokenizer_from_llama2c("/nonexistent/tok.bin", 512, &blob, &blen, &info, err, sizeof err) == -1 &&
          strstr(err, "/nonexistent/tok.bin"));
    if (tok512) {
        CHECK(trlc_tokenizer_from_llama2c(tok512, 600, &blob, &blen, &info, err, sizeof err) == -1 &&
              strstr(err, "512 of 600") && strstr(err, tok512));
        /* vocab_size <= 0 reads to the end */
        int rc = trlc_tokenizer_from_llama2c(tok512, 0, &blob, &blen, &info, err, sizeof err);
        CHECK(rc == 0 && info.vocab_size == 512);
        if (!rc) trlc_tokenizer_info_free(&info), free(blob);
    }
    CHECK(trlc_tokenizer_from_llama2c_mem("\x01\x00", 2, 1, "x.bin", &blob, &blen, &info, err, sizeof err) == -1 &&
          strstr(err, "x.bin"));
    CHECK(trlc_tokenizer_from_hf("/nonexistent/tokenizer.json", NULL, &blob, &blen, &info, err, sizeof err) == -1 &&
          strstr(err, "/nonexistent/tokenizer.json"));

    char *g = gpt2_json(0, 0, 0), *l3 = gpt2_json(1, 1, 0), *m;
    HF_ERROR("{\"model\": ", NULL, "tok.json: bad JSON");
    HF_ERROR("[]", NULL, "top level");
    HF_ERROR("{}", NULL, "model");
    HF_ERROR((m = replaced(g, "\"type\": \"BPE\"", "\"type\": \"Unigram\"")), NULL, "model.type");
    free(m);
    HF_ERROR((m = replaced(l3, "(?i:'s", "(?i:'x")), NULL, "pre_tokenizer.pretokenizers[0].pattern.Regex");
    free(m);
    HF_ERROR((m = replaced(g, "\"merges\": [\"", "\"merges\": [\"QQQ ")), NULL, "model.merges[0]");
    free(m);
    HF_ERROR((m = replaced(l3, "\"merges\": [[", "\"merges\": [[1, ")), NULL, "model.merges[0]");
    free(m);
    HF_ERROR((m = replaced(g, "\"content\": \"<tag>\"", "\"content\": 5")), NULL, "added_tokens[1].content");
    free(m);
    HF_ERROR((m = replaced(g, "\"use_regex\": true", "\"use_regex\": 1")), NULL, "pre_tokenizer.use_regex");
    free(m);
    HF_ERROR((m = replaced(g, "\"add_prefix_space\": false", "\"add_prefix_space\": true")), NULL,
             "pre_tokenizer.add_prefix_space");
    free(m);
    HF_ERROR((m = replaced(g, "\"normalizer\": null", "\"normalizer\": {\"type\": \"Lowercase\"}")), NULL,
             "normalizer.type");
    free(m);
    HF_ERROR((m = replaced(g, "\"vocab\": {", "\"vocab\": {\"zz\": -4, ")), NULL, "model.vocab");
    free(m);
    HF_ERROR((m = replaced(g, "\"vocab\": {", "\"vocab\": {\"\\u4e2d\": 9, ")), NULL, "model.vocab");
    free(m);
    HF_ERROR((m = replaced(g, "\"continuing_subword_prefix\": \"\"", "\"continuing_subword_prefix\": \"##\"")), NULL,
             "model.continuing_subword_prefix");
    free(m);
    {
        char idbuf[64];
        snprintf(idbuf, sizeof idbuf, "{\"id\": %d, \"content\": \"<tag>\"", BPE_TAG);
        HF_ERROR((m = replaced(g, idbuf, "{\"id\": 272, \"content\": \"<tag>\"")), NULL, "added_tokens[1]");
        free(m);
    }
    HF_ERROR(g, "{\"bos_token\": \"<nope>\"}", "cfg.json: bos_token");
    HF_ERROR(g, "{\"eos_token\": {\"content\": 3}}", "cfg.json: eos_token");
    HF_ERROR(g, "{\"chat_template\": 3}", "cfg.json: chat_template");
    HF_ERROR(g, "{\"bos_token\": ", "cfg.json: bad JSON");
    /* neither byte-level nor SentencePiece-style */
    HF_ERROR((m = replaced(g, "\"pre_tokenizer\": {\"type\": \"ByteLevel\"", "\"pre_tokenizer\": null, \"x\": {\"type\": \"ByteLevel\"")),
             NULL, "pre_tokenizer");
    free(m);
    char *spm = hf_spm_json(0);
    HF_ERROR((m = replaced(spm, "\"byte_fallback\": true", "\"byte_fallback\": \"yes\"")), NULL,
             "model.byte_fallback");
    free(m);
    char *msj = hf_spm_json(1);
    HF_ERROR((m = replaced(msj, "\"split\": false", "\"split\": true")), NULL, "pre_tokenizer.split");
    free(m);
    HF_ERROR((m = replaced(msj, "\"prepend_scheme\": \"first\"", "\"prepend_scheme\": \"sometimes\"")), NULL,
             "pre_tokenizer.prepend_scheme");
    free(m);
    /* a chat_template list picks "default" */
    void *b2;
    size_t b2l;
    trlc_tokenizer_info inf;
    const char *cfg = "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", "
                      "\"template\": \"D\\u00e9\"}], \"bos_token\": null, \"eos_token\": \"<|endoftext|>\"}";
    int rc = trlc_tokenizer_from_hf_mem(g, strlen(g), "g.json", cfg, strlen(cfg), "c.json", &b2, &b2l, &inf, err,
                                        sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (!rc) {
        CHECK(inf.chat_template && !strcmp(inf.chat_template, "D\xc3\xa9") && inf.bos_id == -1 &&
              inf.eos_id == BPE_EOT);
        trlc_tokenizer_info_free(&inf);
        trlc_tokenizer_info_free(&inf); /* twice is harmless */
        free(b2);
    }
    trlc_tokenizer_info_free(NULL);
    free(spm);
    free(msj);
    free(g);
    free(l3);
}

static void test_create_errors(void) {
    trl_tokenizer *t = (trl_tokenizer *)1;
    trl_error e;
    CHECK(trl_tokenizer_create(NULL, 10, &t, &e) == TRL_ERR_INVALID_ARG && t == NULL);
    CHECK(trl_tokenizer_create("TRLT", 4, NULL, &e) == TRL_ERR_INVALID_ARG);
    CHECK(trl_tokenizer_create("TRLT", 4, &t, NULL) == TRL_ERR_BAD_FORMAT);
    uint8_t hdr[48] = "XXXX";
    CHECK(trl_tokenizer_create(hdr, 48, &t, &e) == TRL_ERR_BAD_FORMAT && strstr(e.msg, "magic"));
    memcpy(hdr, "TRLT\x02\x00", 6);
    CHECK(trl_tokenizer_create(hdr, 48, &t, &e) == TRL_ERR_UNSUPPORTED && strstr(e.msg, "version 2"));
    trl_tokenizer_free(NULL);
    CHECK(trl_tokenizer_vocab_size(NULL) == 0 && trl_tokenizer_bos(NULL) == -1 && trl_tokenizer_eos(NULL) == -1);
    CHECK(trl_token_to_bytes(NULL, 0, NULL, 0) == -1 && trl_detokenize(NULL, NULL, 0, NULL, 0) == -1);
}

static double t_section;
static void section(const char *name) {
    double t = now_s();
    if (name) printf("[%s] (previous section %.2f s)\n", name, t - t_section);
    t_section = t;
}

int main(int argc, char **argv) {
    const char *tok512 = argc > 1 ? argv[1] : NULL;
    printf("unicode tables: Unicode %s\n", trl_unicode_version());
    section(NULL);
    test_unicode();
    test_pretok();
    test_create_errors();
    section("spm synthetic");
    test_spm_synthetic();
    section("tok512");
    if (tok512) test_tok512(tok512);
    else printf("SKIP: no tok512.bin path given\n");
    section("hf spm");
    test_hf_spm();
    section("bpe");
    test_bpe();
    section("import errors");
    test_import_errors(tok512);
    section("fuzz blobs");
    /* blob fuzzing */
    {
        size_t blen;
        trlc_tokenizer_info info;
        void *blob = gpt2_blob(1, 0, 1, &blen, &info);
        if (blob) fuzz_blob("bpe_gpt2", blob, blen, 1), trlc_tokenizer_info_free(&info), free(blob);
        char *json = hf_spm_json(1);
        char err[256];
        if (trlc_tokenizer_from_hf_mem(json, strlen(json), "s.json", NULL, 0, NULL, &blob, &blen, &info, err,
                                       sizeof err) == 0)
            fuzz_blob("spm", blob, blen, 1), trlc_tokenizer_info_free(&info), free(blob);
        free(json);
        if (tok512 && (blob = tok512_blob(tok512, &blen))) fuzz_blob("tok512", blob, blen, 3), free(blob);
    }
    section("fuzz importers");
    fuzz_importers();
    section("done");
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
