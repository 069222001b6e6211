/* trlc_internal.h - helpers shared by the converter library's files. */
#ifndef TRLC_INTERNAL_H
#define TRLC_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "trlc.h"

#if defined(__GNUC__)
#define TRLC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TRLC_PRINTF(a, b)
#endif

/* Write a message into err and return -1. */
int trlc_fail(char *err, size_t errlen, const char *fmt, ...) TRLC_PRINTF(3, 4);

/* Checked arithmetic: 0 on success, -1 on overflow. */
static inline int trlc_mul_u64(uint64_t a, uint64_t b, uint64_t *r) {
    if (a && b > UINT64_MAX / a) return -1;
    *r = a * b;
    return 0;
}
static inline int trlc_add_u64(uint64_t a, uint64_t b, uint64_t *r) {
    if (b > UINT64_MAX - a) return -1;
    *r = a + b;
    return 0;
}

/* Growable byte buffer for building text. Allocation failure is sticky (oom). */
typedef struct trlc_buf {
    char *data;
    size_t len, cap;
    int oom;
} trlc_buf;

void trlc_buf_put(trlc_buf *b, const char *s, size_t n);
void trlc_buf_puts(trlc_buf *b, const char *s);
void trlc_buf_printf(trlc_buf *b, const char *fmt, ...) TRLC_PRINTF(2, 3);
/* A JSON string literal (quotes included). Invalid UTF-8 becomes U+FFFD so the output stays valid JSON. */
void trlc_buf_json_str(trlc_buf *b, const char *s, size_t n);
void trlc_buf_free(trlc_buf *b);

/* "dir/name" into a malloc'd string (NULL on OOM). */
char *trlc_path_join(const char *dir, const char *name);
int trlc_is_dir(const char *path);
int trlc_exists(const char *path);
/* A plain file name: non-empty, no '/', no '\\', not "." or "..", no control characters. */
int trlc_plain_filename(const char *s);

#endif

/* ------------------------------------------------- tensor list of a config */

/* The tensors a config needs, in pack order: token_embd, then per layer
 * attn_norm, attn_q, attn_k, attn_v, [attn_sub_norm], attn_output, ffn_norm,
 * ffn_gate, ffn_up, [ffn_sub_norm], ffn_down; then output_norm, [output]. */
typedef struct trlc_tensor_spec {
    char name[64];
    int n_dims;
    int64_t shape[2];
} trlc_tensor_spec;

/* Fills `out` (if not NULL) and returns the count. cfg must be valid. */
size_t trlc_tensor_specs(const trl_config *cfg, trlc_tensor_spec *out);

/* Give a source a tokenizer blob (malloc'd; the source takes it and info's chat_template). */
struct trlc_tokenizer_info;
void trlc_source_set_tokenizer(trlc_model_src *src, void *blob, size_t len, const struct trlc_tokenizer_info *info);

/* A new, empty source (calloc'd). */
trlc_model_src *trlc_source_new(void);
/* Basename of a path without a trailing '/' and without `strip_ext` if it ends in it. */
void trlc_basename(const char *path, const char *strip_ext, char *out, size_t cap);
