/* tokenizer.h - internals of the tokenizer that the tests reach (the public
 * API is in trillium.h). Private to the core. */
#ifndef TRL_TOKENIZER_H
#define TRL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* End (exclusive) of the pre-tokenizer piece that starts at s[pos], pos < n,
 * for pretok TRL_PRETOK_GPT2 or TRL_PRETOK_LLAMA3 (tokenizer_blob.h): the
 * match the regex would find there (docs/FORMAT.md, "Tokenizer blob").
 * Always > pos. Any other pretok value gives n (the whole rest). */
size_t trl_pretok_next(int pretok, const uint8_t *s, size_t n, size_t pos);

#endif
