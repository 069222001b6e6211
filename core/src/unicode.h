/* unicode.h - the little Unicode the tokenizer needs: strict UTF-8 decoding
 * and the three character classes of the GPT-2 / Llama 3 pre-tokenizer
 * regexes. Private to the core. */
#ifndef TRL_UNICODE_H
#define TRL_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum { TRL_UC_OTHER = 0, TRL_UC_L = 1, TRL_UC_N = 2, TRL_UC_WS = 3 };

/* A byte that does not start a valid UTF-8 sequence decodes to this value
 * (above U+10FFFF, so no table lists it: its class is "other"). */
#define TRL_UTF8_INVALID 0x110000u

/* Decode the code point at s[0..n), n >= 1. Strict (Unicode Table 3-7): no
 * overlong forms, no surrogates, nothing above U+10FFFF. On an invalid or
 * truncated sequence returns TRL_UTF8_INVALID with *len = 1, so every bad
 * byte becomes a character of its own. */
uint32_t trl_utf8_decode(const uint8_t *s, size_t n, size_t *len);

/* TRL_UC_* class of a code point (or TRL_UTF8_INVALID: other). */
int trl_unicode_class(uint32_t cp);

/* The Unicode version the tables were generated from ("14.0.0"). */
const char *trl_unicode_version(void);

#endif
