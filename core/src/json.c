/* json.c - strict JSON reader; see json.h. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t len, pos;
    tj_tok *toks; /* NULL in the counting pass */
    uint32_t n;
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, const char *what) {
    if (p->err && p->errlen) snprintf(p->err, p->errlen, "offset %zu: %s", p->pos, what);
    return -1;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') p->pos++;
        else break;
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int new_tok(parser *p, tj_type t, size_t start) {
    if (p->n == UINT32_MAX - 1) return fail(p, "too many JSON values");
    if (p->toks) {
        tj_tok *k = &p->toks[p->n];
        k->type = t;
        k->size = 0;
        k->start = start;
        k->end = start;
        k->next = p->n + 1;
    }
    return (int)p->n++;
}

static int scan_string(parser *p, size_t *start, size_t *end) {
    /* p->pos at the opening quote */
    p->pos++;
    *start = p->pos;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            *end = p->pos;
            p->pos++;
            return 0;
        }
        if (c < 0x20) return fail(p, "control character in string");
        if (c == '\\') {
            p->pos++;
            if (p->pos >= p->len) break;
            char e = p->s[p->pos];
            if (e == 'u') {
                if (p->pos + 4 >= p->len) return fail(p, "truncated \\u escape");
                for (int i = 1; i <= 4; i++)
                    if (hexval(p->s[p->pos + i]) < 0) return fail(p, "bad \\u escape");
                p->pos += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == 0) {
                return fail(p, "bad escape in string");
            }
        }
        p->pos++;
    }
    return fail(p, "unterminated string");
}

static int scan_number(parser *p) {
    size_t i = p->pos;
    const char *s = p->s;
    if (i < p->len && s[i] == '-') i++;
    if (i >= p->len) return fail(p, "bad number");
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    else return fail(p, "bad number");
    if (i < p->len && s[i] == '.') {
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') return fail(p, "bad number fraction");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') return fail(p, "bad number exponent");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    p->pos = i;
    return 0;
}

static int parse_all(parser *p) {
    uint32_t stack[TJ_MAX_DEPTH];
    int depth = 0;
    int expect_key = 0; /* inside an object, a key comes next */
    tj_tok *T = p->toks;
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unexpected end of input");
        char c = p->s[p->pos];
        int parent = depth ? (int)stack[depth - 1] : -1;
        size_t start = p->pos;
        if (expect_key && c != '"') return fail(p, "expected object key");
        if (c == '{' || c == '[') {
            if (depth == TJ_MAX_DEPTH) return fail(p, "nesting too deep");
            int t = new_tok(p, c == '{' ? TJ_OBJ : TJ_ARR, start);
            if (t < 0) return -1;
            if (parent >= 0 && T[parent].type == TJ_ARR) T[parent].size++;
            stack[depth++] = (uint32_t)t;
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == (c == '{' ? '}' : ']')) goto close;
            expect_key = (c == '{');
            continue;
        }
        {
            size_t vs = start, ve;
            tj_type ty;
            if (c == '"') {
                if (scan_string(p, &vs, &ve)) return -1;
                ty = TJ_STR;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (scan_number(p)) return -1;
                ve = p->pos;
                ty = TJ_NUM;
            } else if (p->len - p->pos >= 4 && !memcmp(p->s + p->pos, "true", 4)) {
                p->pos += 4, ve = p->pos, ty = TJ_BOOL;
            } else if (p->len - p->pos >= 5 && !memcmp(p->s + p->pos, "false", 5)) {
                p->pos += 5, ve = p->pos, ty = TJ_BOOL;
            } else if (p->len - p->pos >= 4 && !memcmp(p->s + p->pos, "null", 4)) {
                p->pos += 4, ve = p->pos, ty = TJ_NULL;
            } else {
                return fail(p, "unexpected character");
            }
            int t = new_tok(p, ty, vs);
            if (t < 0) return -1;
            T[t].end = ve;
            if (expect_key) {
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected ':' after key");
                p->pos++;
                T[parent].size++;
                expect_key = 0;
                continue; /* now the value */
            }
            if (parent >= 0 && T[parent].type == TJ_ARR) T[parent].size++;
        }
        for (;;) { /* after a complete value */
            if (!depth) {
                skip_ws(p);
                if (p->pos != p->len) return fail(p, "trailing characters after JSON value");
                return 0;
            }
            skip_ws(p);
            if (p->pos >= p->len) return fail(p, "unexpected end of input");
            c = p->s[p->pos];
            if (c == ',') {
                p->pos++;
                expect_key = T[stack[depth - 1]].type == TJ_OBJ;
                break;
            }
            if (c != '}' && c != ']') return fail(p, "expected ',' or a closing bracket");
        close: {
            uint32_t t = stack[--depth];
            char want = T[t].type == TJ_OBJ ? '}' : ']';
            if (p->s[p->pos] != want) return fail(p, "mismatched bracket");
            T[t].end = p->pos + 1;
            T[t].next = p->n;
            p->pos++;
            expect_key = 0;
        }
        }
    }
}

int tj_parse(const char *src, size_t len, tj_doc *doc, char *err, size_t errlen) {
    memset(doc, 0, sizeof *doc);
    if (err && errlen) err[0] = 0;
    if (!src) return -1;
    /* Size the token array before allocating it: every value starts at a
     * quote or a bracket, or follows ',' ':' '[' (or is the whole document). */
    size_t bound = 1;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1, bound++;
        else if (c == '{' || c == '[' || c == ',' || c == ':') bound += 2;
    }
    if (bound >= UINT32_MAX / 2) {
        if (err && errlen) snprintf(err, errlen, "document too large");
        return -1;
    }
    size_t cap = bound + 1;
    tj_tok *toks = malloc(cap * sizeof *toks);
    if (!toks) {
        if (err && errlen) snprintf(err, errlen, "out of memory for %zu JSON tokens", cap);
        return -1;
    }
    parser p = {src, len, 0, toks, 0, err, errlen};
    if (parse_all(&p) != 0) {
        free(toks);
        return -1;
    }
    doc->src = src;
    doc->len = len;
    doc->toks = toks;
    doc->n = p.n;
    return 0;
}

void tj_free(tj_doc *doc) {
    if (!doc) return;
    free(doc->toks);
    doc->toks = NULL;
    doc->n = 0;
}

static int valid(const tj_doc *d, int t) { return d && t >= 0 && (uint32_t)t < d->n; }

int tj_first(const tj_doc *d, int tok) {
    if (!valid(d, tok)) return -1;
    const tj_tok *k = &d->toks[tok];
    if ((k->type != TJ_ARR && k->type != TJ_OBJ) || k->size == 0) return -1;
    return tok + 1;
}

int tj_next(const tj_doc *d, int parent, int tok) {
    if (!valid(d, parent) || !valid(d, tok)) return -1;
    uint32_t nx = d->toks[tok].next;
    if (nx >= d->toks[parent].next) return -1;
    return (int)nx;
}

int tj_obj_get(const tj_doc *d, int obj, const char *key) {
    if (!valid(d, obj) || d->toks[obj].type != TJ_OBJ) return -1;
    for (int k = tj_first(d, obj); k >= 0; k = tj_next(d, obj, k + 1)) {
        if (tj_str_eq(d, k, key)) return k + 1;
    }
    return -1;
}

int tj_arr_at(const tj_doc *d, int arr, uint32_t i) {
    if (!valid(d, arr) || d->toks[arr].type != TJ_ARR || i >= d->toks[arr].size) return -1;
    int t = tj_first(d, arr);
    while (i-- && t >= 0) t = tj_next(d, arr, t);
    return t;
}

int tj_get_f64(const tj_doc *d, int tok, double *out) {
    if (!valid(d, tok) || d->toks[tok].type != TJ_NUM) return -1;
    char buf[64];
    size_t n = d->toks[tok].end - d->toks[tok].start;
    if (n >= sizeof buf) return -1;
    memcpy(buf, d->src + d->toks[tok].start, n);
    buf[n] = 0;
    char *e;
    double v = strtod(buf, &e);
    if (*e || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int tj_get_i64(const tj_doc *d, int tok, int64_t *out) {
    if (!valid(d, tok) || d->toks[tok].type != TJ_NUM) return -1;
    const char *s = d->src + d->toks[tok].start;
    size_t n = d->toks[tok].end - d->toks[tok].start;
    size_t i = 0;
    int neg = 0;
    if (i < n && s[i] == '-') neg = 1, i++;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            /* allow 1.0 / 1e3 style if exactly integral */
            double f;
            if (tj_get_f64(d, tok, &f) || f != floor(f) || f < -9.2e18 || f > 9.2e18) return -1;
            *out = (int64_t)f;
            return 0;
        }
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int tj_get_bool(const tj_doc *d, int tok, int *out) {
    if (!valid(d, tok) || d->toks[tok].type != TJ_BOOL) return -1;
    *out = d->src[d->toks[tok].start] == 't';
    return 0;
}

int tj_is_null(const tj_doc *d, int tok) { return valid(d, tok) && d->toks[tok].type == TJ_NULL; }

static size_t put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const char *s) {
    return (uint32_t)(hexval(s[0]) << 12 | hexval(s[1]) << 8 | hexval(s[2]) << 4 | hexval(s[3]));
}

long tj_str_copy(const tj_doc *d, int tok, char *out, size_t cap) {
    if (!valid(d, tok) || d->toks[tok].type != TJ_STR) return -1;
    const char *s = d->src;
    size_t i = d->toks[tok].start, e = d->toks[tok].end, n = 0;
    char tmp[4];
    while (i < e) {
        size_t k;
        const char *w;
        if (s[i] != '\\') {
            tmp[0] = s[i++];
            w = tmp, k = 1;
        } else {
            char c = s[i + 1];
            i += 2;
            switch (c) {
            case 'b': tmp[0] = '\b'; k = 1; break;
            case 'f': tmp[0] = '\f'; k = 1; break;
            case 'n': tmp[0] = '\n'; k = 1; break;
            case 'r': tmp[0] = '\r'; k = 1; break;
            case 't': tmp[0] = '\t'; k = 1; break;
            case 'u': {
                uint32_t cp = hex4(s + i);
                i += 4;
                if (cp >= 0xD800 && cp < 0xDC00) {
                    if (i + 6 <= e && s[i] == '\\' && s[i + 1] == 'u') {
                        uint32_t lo = hex4(s + i + 2);
                        if (lo >= 0xDC00 && lo < 0xE000) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            i += 6;
                        } else cp = 0xFFFD;
                    } else cp = 0xFFFD;
                } else if (cp >= 0xDC00 && cp < 0xE000) cp = 0xFFFD;
                k = put_utf8(cp, tmp);
                break;
            }
            default: tmp[0] = c; k = 1; break; /* \" \\ \/ */
            }
            w = tmp;
        }
        for (size_t j = 0; j < k; j++, n++)
            if (out && n < cap) out[n] = w[j];
    }
    if (out && cap) out[n < cap ? n : cap - 1] = 0;
    return (long)n;
}

int tj_str_eq(const tj_doc *d, int tok, const char *str) {
    if (!valid(d, tok) || d->toks[tok].type != TJ_STR) return 0;
    size_t sl = strlen(str);
    const tj_tok *k = &d->toks[tok];
    /* fast path: no escapes */
    if (!memchr(d->src + k->start, '\\', k->end - k->start))
        return k->end - k->start == sl && !memcmp(d->src + k->start, str, sl);
    char buf[256];
    if (sl >= sizeof buf) return 0;
    long n = tj_str_copy(d, tok, buf, sizeof buf);
    return n == (long)sl && !memcmp(buf, str, sl);
}
