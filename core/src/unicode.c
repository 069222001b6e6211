/* unicode.c - see unicode.h. The class table is generated at build time by
 * tools/gen_unicode_tables.py (never committed). */
#include "unicode.h"

#include "unicode_tables.h"

uint32_t trl_utf8_decode(const uint8_t *s, size_t n, size_t *len) {
    uint8_t c = s[0];
    *len = 1;
    if (c < 0x80) return c;
    size_t need;
    uint32_t cp;
    uint8_t lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1Fu;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, cp = c & 0x0Fu;
        if (c == 0xE0) lo = 0xA0;      /* no overlong */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, cp = c & 0x07u;
        if (c == 0xF0) lo = 0x90;      /* no overlong */
        else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else return TRL_UTF8_INVALID;
    if (n < need + 1) return TRL_UTF8_INVALID;
    if (s[1] < lo || s[1] > hi) return TRL_UTF8_INVALID;
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) return TRL_UTF8_INVALID;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    *len = need + 1;
    return cp;
}

int trl_unicode_class(uint32_t cp) {
    if (cp >= 0x110000u) return TRL_UC_OTHER;
    /* last boundary whose first code point is <= cp (entry 0 is U+0000) */
    uint32_t key = (cp << 2) | 3u;
    size_t lo = 0, hi = TRL_UNICODE_N_BOUNDS;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (trl_unicode_bounds[mid] <= key) lo = mid;
        else hi = mid;
    }
    return (int)(trl_unicode_bounds[lo] & 3u);
}

const char *trl_unicode_version(void) { return TRL_UNICODE_VERSION; }
