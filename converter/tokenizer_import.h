/* tokenizer_import.h - turn checkpoint tokenizers into the tokenizer blob the
 * core reads (docs/FORMAT.md, "Tokenizer blob"). Part of the converter
 * library; compiles on its own.
 *
 * Every function returns 0 on success and -1 on failure, with a message in
 * err that names the file and the field ("tokenizer.json: model.merges[12]:
 * ..."). On success *blob is malloc'd (the caller free()s it) and *info is
 * filled (release it with trlc_tokenizer_info_free). Nothing is written to
 * *blob / *info on failure. */
#ifndef TRLC_TOKENIZER_IMPORT_H
#define TRLC_TOKENIZER_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trlc_tokenizer_info {
    int32_t bos_id, eos_id; /* -1 if none */
    char *chat_template;    /* malloc'd, NUL-terminated, or NULL */
    int kind;               /* a trl_tokenizer_kind: 0 spm, 1 bpe_gpt2 */
    int32_t vocab_size;     /* ids the blob defines (may be below the model's padded vocab) */
    int32_t add_bos;        /* 1 if the source tokenizer prepends BOS by default */
} trlc_tokenizer_info;

/* llama2.c tokenizer.bin: int32 max_token_length, then per token f32 score,
 * int32 length, bytes. vocab_size comes from the checkpoint header (its
 * absolute value); vocab_size <= 0 reads tokens up to the end of the file. */
int trlc_tokenizer_from_llama2c(const char *path, int32_t vocab_size, void **blob, size_t *blob_len,
                                trlc_tokenizer_info *info, char *err, size_t errlen);
/* The same from bytes in memory; `name` is used in messages. */
int trlc_tokenizer_from_llama2c_mem(const void *data, size_t len, int32_t vocab_size, const char *name,
                                    void **blob, size_t *blob_len, trlc_tokenizer_info *info, char *err,
                                    size_t errlen);

/* Hugging Face tokenizer.json (model.type "BPE", byte-level or
 * SentencePiece-style with byte_fallback), with tokenizer_config.json for
 * bos/eos/chat_template when the path is not NULL. */
int trlc_tokenizer_from_hf(const char *tokenizer_json_path, const char *tokenizer_config_path, void **blob,
                           size_t *blob_len, trlc_tokenizer_info *info, char *err, size_t errlen);
/* The same from bytes in memory (config may be NULL); the names are used in messages. */
int trlc_tokenizer_from_hf_mem(const char *json, size_t json_len, const char *json_name, const char *config,
                               size_t config_len, const char *config_name, void **blob, size_t *blob_len,
                               trlc_tokenizer_info *info, char *err, size_t errlen);

/* A string that is not NUL-terminated. */
typedef struct trlc_tokstr {
    const char *s;
    size_t n;
} trlc_tokstr;

/* llama.cpp's token types (GGUF tokenizer.ggml.token_type). */
enum {
    TRLC_TOKTYPE_UNDEFINED = 0,
    TRLC_TOKTYPE_NORMAL = 1,
    TRLC_TOKTYPE_UNKNOWN = 2,
    TRLC_TOKTYPE_CONTROL = 3,
    TRLC_TOKTYPE_USER_DEFINED = 4,
    TRLC_TOKTYPE_UNUSED = 5,
    TRLC_TOKTYPE_BYTE = 6
};

/* A vocabulary given as arrays, as GGUF's tokenizer.ggml.* metadata has it.
 * spm (kind 0): pieces may use U+2581 for spaces (then SPM_SPACE_MARKER is
 * set and they are stored with ' '), BYTE tokens are "<0xNN>", scores merge.
 * bpe_gpt2 (kind 1): NORMAL pieces are GPT-2 byte-level text, merges are
 * "left right" in rank order. Either: UNKNOWN, CONTROL and USER_DEFINED
 * tokens are raw text matched verbatim in the input (the ADDED bit), UNUSED
 * ones placeholders that decode to nothing. */
typedef struct trlc_vocab_spec {
    const char *name;           /* for messages */
    int kind;                   /* 0 spm, 1 bpe_gpt2 */
    int pretok;                 /* bpe_gpt2: 1 GPT-2 regex, 2 Llama 3 regex */
    uint32_t flags;             /* spm: SPM_PREFIX (add_space_prefix); bpe: BPE_IGNORE_MERGES */
    int32_t n_tokens;
    const trlc_tokstr *tokens;  /* (n_tokens) */
    const float *scores;        /* spm: (n_tokens), NULL: all 0 */
    const int32_t *types;       /* (n_tokens) TRLC_TOKTYPE_*, NULL: all NORMAL */
    size_t n_merges;
    const trlc_tokstr *merges;  /* bpe_gpt2 */
    int32_t bos_id, eos_id, unk_id; /* -1: none (unk: else the first UNKNOWN token) */
    int32_t add_bos;
    const char *chat_template;  /* may be NULL */
    size_t chat_template_len;
} trlc_vocab_spec;

int trlc_tokenizer_from_vocab(const trlc_vocab_spec *v, void **blob, size_t *blob_len, trlc_tokenizer_info *info,
                              char *err, size_t errlen);

void trlc_tokenizer_info_free(trlc_tokenizer_info *info);

#ifdef __cplusplus
}
#endif
#endif
