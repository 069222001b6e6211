/* test-converter-sha256.c - SHA-256 against the FIPS 180-4 / NIST test vectors. */
#include "converter/testutil.h"
#include "sha256.h"

static void hex_of(const void *p, size_t n, char out[65]) {
    uint8_t d[32];
    trlc_sha256(p, n, d);
    trlc_sha256_hex(d, out);
}

int main(void) {
    char h[65];
    hex_of("", 0, h);
    CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    hex_of("abc", 3, h);
    CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m448, strlen(m448), h);
    CHECK(!strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    hex_of(m896, strlen(m896), h);
    CHECK(!strcmp(h, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));

    /* one million 'a', fed in uneven pieces to exercise the block buffer */
    static char a[1000000];
    memset(a, 'a', sizeof a);
    hex_of(a, sizeof a, h);
    CHECK(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    trlc_sha256_ctx s;
    trlc_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < sizeof a) {
        size_t k = step < sizeof a - off ? step : sizeof a - off;
        trlc_sha256_update(&s, a + off, k);
        off += k;
        step = step * 7 % 191 + 1;
    }
    uint8_t d[32];
    trlc_sha256_final(&s, d);
    trlc_sha256_hex(d, h);
    CHECK(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));

    /* every length around the padding boundary (55, 56, 63, 64 bytes) against one-shot */
    for (size_t n = 50; n <= 130; n++) {
        char ref[65];
        hex_of(a, n, ref);
        trlc_sha256_init(&s);
        for (size_t i = 0; i < n; i++) trlc_sha256_update(&s, a + i, 1);
        trlc_sha256_final(&s, d);
        trlc_sha256_hex(d, h);
        CHECK(!strcmp(h, ref));
    }
    /* 55 and 56 'a's: known digests (padding fits / does not fit in the last block) */
    hex_of(a, 55, h);
    CHECK(!strcmp(h, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"));
    hex_of(a, 56, h);
    CHECK(!strcmp(h, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"));
    return test_done("test-converter-sha256");
}
