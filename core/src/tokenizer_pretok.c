/* tokenizer_pretok.c - the GPT-2 and Llama 3 pre-tokenizer regexes as
 * hand-written matchers (no regex engine in the core):
 *
 *   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *            | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * Each function returns where the regex's match starting at `pos` ends, with
 * a backtracking engine's semantics (alternatives tried in order, greedy
 * quantifiers giving back only as much as the rest needs). Every character
 * is \s, \p{L}, \p{N} or "other", so some alternative always matches and the
 * pieces tile the text. A byte that is not valid UTF-8 is one "other"
 * character. */
#include "tokenizer.h"

#include "tokenizer_blob.h"
#include "unicode.h"

typedef struct {
    uint32_t cp;
    size_t len;
    int cls;
} uchar;

static uchar at(const uint8_t *s, size_t n, size_t i) {
    uchar u;
    u.cp = trl_utf8_decode(s + i, n - i, &u.len);
    u.cls = trl_unicode_class(u.cp);
    return u;
}

static int cls_at(const uint8_t *s, size_t n, size_t i) {
    return i < n ? at(s, n, i).cls : -1;
}

/* end of the run of class `cls` characters starting at i */
static size_t run_end(const uint8_t *s, size_t n, size_t i, int cls) {
    while (i < n) {
        uchar u = at(s, n, i);
        if (u.cls != cls) break;
        i += u.len;
    }
    return i;
}

/* \s+(?!\S)|\s+ at i (a whitespace character): the whole run if it ends the
 * text or is one character long, else the run minus its last character (which
 * then leads the next piece, e.g. " world"). */
static size_t ws_tail(const uint8_t *s, size_t n, size_t i) {
    size_t e = i, last = i;
    while (e < n) {
        uchar u = at(s, n, e);
        if (u.cls != TRL_UC_WS) break;
        last = e;
        e += u.len;
    }
    if (e == n || last == i) return e;
    return last;
}

static size_t gpt2_next(const uint8_t *s, size_t n, size_t i) {
    if (s[i] == '\'' && i + 1 < n) {
        uint8_t a = s[i + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if (i + 2 < n) {
            uint8_t b = s[i + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        }
    }
    uchar c = at(s, n, i);
    /* ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` in that order */
    static const int classes[3] = {TRL_UC_L, TRL_UC_N, TRL_UC_OTHER};
    for (int k = 0; k < 3; k++) {
        int want = classes[k];
        if (s[i] == ' ' && cls_at(s, n, i + 1) == want) return run_end(s, n, i + 1, want);
        if (c.cls == want) return run_end(s, n, i, want);
    }
    return ws_tail(s, n, i); /* c is whitespace */
}

static int ci_eq(uint8_t c, char lower) { return c == (uint8_t)lower || c == (uint8_t)(lower - 32); }

static size_t llama3_next(const uint8_t *s, size_t n, size_t i) {
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d): case-insensitive as Unicode simple case
     * folding has it, so 's also matches U+017F LATIN SMALL LETTER LONG S. */
    if (s[i] == '\'' && i + 1 < n) {
        uint8_t a = s[i + 1];
        if (ci_eq(a, 's') || ci_eq(a, 't') || ci_eq(a, 'm') || ci_eq(a, 'd')) return i + 2;
        if (a == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return i + 3;
        if (i + 2 < n) {
            uint8_t b = s[i + 2];
            if ((ci_eq(a, 'r') && ci_eq(b, 'e')) || (ci_eq(a, 'v') && ci_eq(b, 'e')) ||
                (ci_eq(a, 'l') && ci_eq(b, 'l')))
                return i + 3;
        }
    }
    uchar c = at(s, n, i);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c.cls == TRL_UC_L) return run_end(s, n, i, TRL_UC_L);
    if (c.cp != '\r' && c.cp != '\n' && c.cls != TRL_UC_N && cls_at(s, n, i + c.len) == TRL_UC_L)
        return run_end(s, n, i + c.len, TRL_UC_L);
    /* \p{N}{1,3} */
    if (c.cls == TRL_UC_N) {
        size_t e = i;
        for (int k = 0; k < 3 && e < n; k++) {
            uchar u = at(s, n, e);
            if (u.cls != TRL_UC_N) break;
            e += u.len;
        }
        return e;
    }
    /* ` ?[^\s\p{L}\p{N}]+[\r\n]*` */
    size_t j = (s[i] == ' ' && cls_at(s, n, i + 1) == TRL_UC_OTHER) ? i + 1 : i;
    if (cls_at(s, n, j) == TRL_UC_OTHER) {
        size_t e = run_end(s, n, j, TRL_UC_OTHER);
        while (e < n && (s[e] == '\r' || s[e] == '\n')) e++;
        return e;
    }
    /* c is whitespace. `\s*[\r\n]+`: the run up to and including its last CR/LF */
    size_t e = i, nl = 0;
    int has_nl = 0;
    while (e < n) {
        uchar u = at(s, n, e);
        if (u.cls != TRL_UC_WS) break;
        if (u.cp == '\r' || u.cp == '\n') nl = e + 1, has_nl = 1;
        e += u.len;
    }
    if (has_nl) return nl;
    return ws_tail(s, n, i); /* \s+(?!\S)|\s+ */
}

size_t trl_pretok_next(int pretok, const uint8_t *s, size_t n, size_t pos) {
    if (pos >= n) return n;
    if (pretok == TRL_PRETOK_GPT2) return gpt2_next(s, n, pos);
    if (pretok == TRL_PRETOK_LLAMA3) return llama3_next(s, n, pos);
    return n;
}
