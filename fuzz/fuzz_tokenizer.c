/* fuzz_tokenizer.c - the tokenizer blob (core/src/tokenizer*.c):
 * trl_tokenizer_create, then tokenize and detokenize.
 *
 * Input: u16 little-endian text length L, L bytes of text, then the blob.
 * The text is tokenized with and without BOS, and a few fixed strings too
 * (invalid UTF-8, U+2581, special-token look-alikes); every id's bytes are
 * read back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trillium.h"

static const char *const FIXED[] = {"Once upon a time", " hello  world\n\n", "\xe2\x96\x81x \xff\xfe\xc3",
                                    "<s></s><|begin_of_text|><unk>", "12345 \xf0\x9f\x99\x82 na\xc3\xafve", ""};

static void run(const trl_tokenizer *t, const char *text, size_t n) {
    int32_t ids[512];
    char out[4096];
    for (int bos = 0; bos < 2; bos++) {
        int32_t k = trl_tokenize(t, text, n, bos, ids, 512);
        if (k > 512) { /* too many for the buffer: size it */
            int32_t *big = malloc((size_t)k * sizeof *big);
            if (!big) return;
            int32_t k2 = trl_tokenize(t, text, n, bos, big, k);
            if (k2 == k) trl_detokenize(t, big, k, out, sizeof out);
            free(big);
        } else if (k > 0) {
            trl_detokenize(t, ids, k, out, sizeof out);
            trl_detokenize(t, ids, k, out, 3); /* a short buffer */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t L = (size_t)(data[0] | data[1] << 8);
    if (L > size - 2) L = size - 2;
    const char *text = (const char *)data + 2;
    const uint8_t *blob = data + 2 + L;
    size_t blen = size - 2 - L;
    /* the core reads the blob in place: give it an exact-size copy so ASan sees overreads */
    uint8_t *copy = malloc(blen ? blen : 1);
    memcpy(copy, blob, blen);
    trl_tokenizer *t = NULL;
    trl_error e;
    if (trl_tokenizer_create(copy, blen, &t, &e) == TRL_OK) {
        run(t, text, L);
        for (size_t i = 0; i < sizeof FIXED / sizeof *FIXED; i++) run(t, FIXED[i], strlen(FIXED[i]));
        int32_t nv = trl_tokenizer_vocab_size(t);
        char buf[64];
        for (int32_t i = -1; i <= nv && i < 70000; i++) trl_token_to_bytes(t, i, buf, sizeof buf);
        trl_tokenizer_bos(t);
        trl_tokenizer_eos(t);
        trl_tokenizer_get_kind(t);
        trl_tokenizer_free(t);
    }
    free(copy);
    return 0;
}
