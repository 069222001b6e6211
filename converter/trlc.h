/*
 * trlc.h - Trillium's converter library: checkpoint readers, the pack writer
 * and the native pack loader. Native only (it does file I/O); the CLIs in
 * converter/cli/ and the tests link it.
 *
 *     trlc_model_src *src;
 *     if (trlc_source_open("stories260K.bin", "tok512.bin", &src, err, sizeof err)) fail(err);
 *     trlc_write_opts o = trlc_write_default_opts();
 *     if (trlc_pack_write(src, "packs/stories260K", &o, NULL, err, sizeof err)) fail(err);
 *     trlc_source_free(src);
 *
 *     trlc_pack *p;
 *     if (trlc_pack_open("packs/stories260K", &p, err, sizeof err)) fail(err);
 *     trl_model_create(&p->config, p->tensors, p->n_tensors, &model, &e);
 *     ...
 *     trlc_pack_close(p);   // after the model is freed: the model points into p's chunks
 *
 * Every function that can fail returns 0 on success and -1 on failure, with a
 * one-line message in err that names the file and the field at fault.
 */
#ifndef TRLC_H
#define TRLC_H

#include <stddef.h>
#include <stdint.h>

#include "trillium.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ mapped files */

/* A read-only view of a whole file (mmap; an empty file has data == NULL). */
typedef struct trlc_file {
    const uint8_t *data;
    size_t size;
} trlc_file;

int trlc_file_map(const char *path, trlc_file *f, char *err, size_t errlen);
void trlc_file_unmap(trlc_file *f);
/* Read a whole (small) file into a NUL-terminated malloc'd buffer. */
int trlc_file_read(const char *path, char **data, size_t *size, char *err, size_t errlen);

/* ----------------------------------------------------------- source dtypes */

typedef enum trlc_dtype {
    TRLC_DT_F32 = 0,
    TRLC_DT_F16,
    TRLC_DT_BF16,
    /* known to safetensors, sized and bounds-checked, but not convertible */
    TRLC_DT_F64,
    TRLC_DT_I64,
    TRLC_DT_I32,
    TRLC_DT_I16,
    TRLC_DT_I8,
    TRLC_DT_U64,
    TRLC_DT_U32,
    TRLC_DT_U16,
    TRLC_DT_U8,
    TRLC_DT_BOOL,
    TRLC_DT_F8_E4M3,
    TRLC_DT_F8_E5M2,
    TRLC_DT_COUNT
} trlc_dtype;

const char *trlc_dtype_name(trlc_dtype t); /* safetensors spelling: "F32", "BF16", ... */
size_t trlc_dtype_size(trlc_dtype t);
/* Convert `n` little-endian elements (any alignment) to f32; -1 for a dtype
 * that is not F32/F16/BF16. */
int trlc_dtype_to_f32(trlc_dtype t, const void *src, size_t n, float *dst);

/* ------------------------------------------------------------- safetensors */

#define TRLC_ST_MAX_DIMS 8

typedef struct trlc_st_tensor {
    char *name;
    trlc_dtype dtype;
    int n_dims;
    int64_t shape[TRLC_ST_MAX_DIMS];
    uint64_t numel;
    const uint8_t *data; /* inside the mapping; not aligned */
    size_t nbytes;
} trlc_st_tensor;

typedef struct trlc_safetensors {
    char *path;
    trlc_file file;
    trlc_st_tensor *tensors;
    size_t n_tensors;
} trlc_safetensors;

/* Map and validate a .safetensors file: header length within the file, strict
 * JSON, known dtypes, shapes whose element count does not overflow, offsets
 * inside the data section, end - begin == numel * dtype size. */
int trlc_safetensors_open(const char *path, trlc_safetensors *st, char *err, size_t errlen);
void trlc_safetensors_close(trlc_safetensors *st);
const trlc_st_tensor *trlc_safetensors_find(const trlc_safetensors *st, const char *name);

/* ---------------------------------------------------------- model sources */

/* One tensor to write, already under its pack name, with its data still in
 * the source's mapping (converted row by row while the pack is written). */
typedef struct trlc_src_tensor {
    char name[64];     /* pack (GGUF-style) name */
    char origin[256];  /* "file: source name", for messages */
    trlc_dtype dtype;  /* F32, F16 or BF16 */
    int n_dims;        /* 1 or 2 */
    int64_t shape[2];  /* (rows, cols) or (n) */
    const uint8_t *data;
    size_t nbytes;
} trlc_src_tensor;

/* Tokenizer blob (docs/FORMAT.md "Tokenizer blob") and what the manifest says of it. */
typedef struct trlc_src_tokenizer {
    void *blob; /* malloc'd, owned by the source */
    size_t len;
    int kind; /* trl_tokenizer_kind */
    int32_t bos_id, eos_id; /* -1 if none */
    char *chat_template;    /* malloc'd or NULL */
    int32_t vocab_size;
} trlc_src_tokenizer;

typedef struct trlc_model_src {
    trl_config cfg;
    /* rope_theta / norm_eps as read, so the manifest keeps e.g. 1e-06 exactly */
    double rope_theta, norm_eps;
    char name[128];
    char source[512];
    trlc_src_tensor *tensors; /* in pack order */
    size_t n_tensors;
    trlc_src_tokenizer tok; /* tok.blob == NULL until a tokenizer is attached */
    /* private: mappings the tensors point into */
    trlc_file *files;
    size_t n_files;
    trlc_safetensors *st;
    size_t n_st;
} trlc_model_src;

/* A Hugging Face model directory: config.json plus model.safetensors or
 * model.safetensors.index.json. Also reads tokenizer.json (+ tokenizer_config.json)
 * when present; tokenizer_path overrides it (.json: HF, else llama2.c .bin). */
int trlc_hf_open(const char *dir, const char *tokenizer_path, trlc_model_src **out, char *err, size_t errlen);
/* Just the config.json part (exposed for tests). `path` names the file in messages. */
int trlc_hf_parse_config(const char *json, size_t len, const char *path, trl_config *cfg, double *rope_theta,
                         double *norm_eps, char *err, size_t errlen);

/* A llama2.c legacy (version 0) checkpoint. tokenizer_path (llama2.c
 * tokenizer.bin) may be NULL: then the source has no tokenizer. */
int trlc_llama2c_open(const char *path, const char *tokenizer_path, trlc_model_src **out, char *err,
                      size_t errlen);

/* A HF directory or a llama2.c .bin, by what `input` is. */
int trlc_source_open(const char *input, const char *tokenizer_path, trlc_model_src **out, char *err,
                     size_t errlen);
void trlc_source_free(trlc_model_src *src);

/* Attach a tokenizer to a source (replacing any). Used by the readers. */
int trlc_source_load_tokenizer_llama2c(trlc_model_src *src, const char *path, char *err, size_t errlen);
int trlc_source_load_tokenizer_hf(trlc_model_src *src, const char *tokenizer_json, const char *tokenizer_config,
                                  char *err, size_t errlen);

/* ------------------------------------------------------------- pack writer */

typedef struct trlc_write_opts {
    trl_encoding matrix_encoding; /* 2-D tensors; 1-D tensors are always f32 */
    uint64_t chunk_bytes;         /* most bytes per chunk (a bigger tensor gets its own) */
    int force;                    /* replace an existing pack */
    const char *name;             /* NULL: the source's name */
} trlc_write_opts;

trlc_write_opts trlc_write_default_opts(void); /* f32, 4 MiB, no force */

typedef struct trlc_write_summary {
    size_t n_tensors;
    uint64_t tensor_bytes;   /* sum of tensor bytes */
    uint64_t download_bytes; /* sum of chunk sizes */
    size_t n_chunks;
    uint64_t n_params;
} trlc_write_summary;

/* Write docs/FORMAT.md v1 into `out_dir`: everything goes into a temporary
 * sibling directory that is renamed into place once complete and synced, so a
 * failure never leaves a half-written pack. An existing out_dir is refused
 * unless opts->force, and then only if it is empty or a trillium pack. */
int trlc_pack_write(const trlc_model_src *src, const char *out_dir, const trlc_write_opts *opts,
                    trlc_write_summary *summary, char *err, size_t errlen);

/* ------------------------------------------------------------- pack loader */

typedef struct trlc_pack_chunk {
    char file[64];
    uint8_t *data; /* 64-byte aligned */
    size_t bytes;
} trlc_pack_chunk;

typedef struct trlc_pack {
    char *dir;
    char *manifest; /* the raw manifest.json, NUL-terminated */
    size_t manifest_len;
    char *name;             /* "name" or "" */
    trl_config config;
    trl_tensor *tensors;    /* names and data point into this pack */
    size_t n_tensors;
    const void *tokenizer;  /* blob inside chunk data */
    size_t tokenizer_bytes;
    int tokenizer_kind;
    int32_t bos_id, eos_id;
    char *chat_template;    /* NULL if none */
    trlc_pack_chunk *chunks;
    size_t n_chunks;
} trlc_pack;

/* Read and check a pack: the manifest (format, version, every field), each
 * chunk's size and sha256 (before a byte of it is used), every tensor entry.
 * The pack must outlive models made from its tensors. */
int trlc_pack_open(const char *dir, trlc_pack **out, char *err, size_t errlen);
void trlc_pack_close(trlc_pack *p);
const trl_tensor *trlc_pack_find(const trlc_pack *p, const char *name);

/* ------------------------------------------------------------------ misc */

/* Shortest decimal text that reads back as the same float ("1e-05", not
 * "9.99999975e-06"). buf: at least 32 bytes. */
void trlc_format_float(float v, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TRLC_H */
