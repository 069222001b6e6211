/* json.h - a small strict JSON reader (RFC 8259) shared by the core (pack
 * config), the converter (config.json, safetensors headers, tokenizer.json)
 * and the native pack loader. Private to Trillium: not part of trillium.h.
 *
 * The document is parsed into a flat array of tokens (no tree of mallocs):
 * a first pass counts the tokens, then one array of exactly that size is
 * allocated and filled. Strings stay in the source buffer; tj_str_copy
 * unescapes them on demand. */
#ifndef TRL_JSON_H
#define TRL_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum tj_type { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ } tj_type;

typedef struct tj_tok {
    tj_type type;
    uint32_t size;  /* array: elements; object: members (key/value pairs) */
    size_t start;   /* byte span in the source; for strings, inside the quotes */
    size_t end;
    uint32_t next;  /* index of the token after this one and all its children */
} tj_tok;

typedef struct tj_doc {
    const char *src;
    size_t len;
    tj_tok *toks;
    uint32_t n;
} tj_doc;

#define TJ_MAX_DEPTH 64

/* Parse `len` bytes. On failure returns -1 and writes "offset N: what" into err. */
int tj_parse(const char *src, size_t len, tj_doc *doc, char *err, size_t errlen);
void tj_free(tj_doc *doc);

/* Member value of object token `obj` with key `key`, or -1 (also if obj is not an object). */
int tj_obj_get(const tj_doc *d, int obj, const char *key);
/* i-th element of an array token, or -1. Linear in i: iterate with tj_first/tj_next instead. */
int tj_arr_at(const tj_doc *d, int arr, uint32_t i);
/* First child of an array (element) or object (key; its value is key+1), or -1 if empty. */
int tj_first(const tj_doc *d, int tok);
/* The sibling after `tok` inside the same container, or -1 at the end.
 * For objects, call it on a key to skip key and value together: use tj_next(d, key + 1). */
int tj_next(const tj_doc *d, int parent, int tok);

/* Typed reads; each returns 0 on success, -1 if the token has another type or
 * the value does not fit. */
int tj_get_i64(const tj_doc *d, int tok, int64_t *out); /* integer-valued numbers only */
int tj_get_f64(const tj_doc *d, int tok, double *out);
int tj_get_bool(const tj_doc *d, int tok, int *out);
int tj_is_null(const tj_doc *d, int tok);
/* Unescape a string token into out (NUL-terminated when cap > len). Returns the
 * unescaped length (excluding NUL), or -1 if not a string. \u0000 is kept as a
 * 0 byte; lone surrogates become U+FFFD. */
long tj_str_copy(const tj_doc *d, int tok, char *out, size_t cap);
/* 1 if string token `tok` equals the NUL-terminated `s` (after unescaping). */
int tj_str_eq(const tj_doc *d, int tok, const char *s);

#endif
