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

void trlc_tokenizer_info_free(trlc_tokenizer_info *info);

#ifdef __cplusplus
}
#endif
#endif
