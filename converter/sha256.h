/* sha256.h - SHA-256 (FIPS 180-4), streaming. Used to fingerprint pack chunks. */
#ifndef TRLC_SHA256_H
#define TRLC_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct trlc_sha256_ctx {
    uint32_t h[8];
    uint64_t total; /* bytes fed so far */
    uint8_t buf[64];
    size_t nbuf;
} trlc_sha256_ctx;

void trlc_sha256_init(trlc_sha256_ctx *s);
void trlc_sha256_update(trlc_sha256_ctx *s, const void *data, size_t n);
void trlc_sha256_final(trlc_sha256_ctx *s, uint8_t out[32]);
/* One-shot digest. */
void trlc_sha256(const void *data, size_t n, uint8_t out[32]);
/* Lowercase hex, NUL-terminated (65 bytes). */
void trlc_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
