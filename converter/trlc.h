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

/* -------------------------------------------------------------- quantizers */

/* The format versions this library writes and reads (docs/FORMAT.md). A pack
 * is written as version 1 unless it needs version 2 (t2/t1/bcq tensors or rank
 * slices), so plain packs stay readable by version-1 readers. */
#define TRLC_FORMAT_VERSION_MAX TRL_PACK_FORMAT_VERSION /* the newest pack version read and written */

/* Ternary W = s * T (DESIGN.md "Numerics"). If w is already exactly s * T with
 * one magnitude per tensor, per block of rows, per block of columns (2 to 6
 * equal blocks: TriLM's model-parallel shards; column blocks a multiple of
 * 128 wide) or per row, that is used, in this order of preference (fewest
 * scales first), with the exact magnitudes as scales: *lossless = 1.
 * Otherwise absmean with `axis` (TRL_SCALE_TENSOR or TRL_SCALE_ROW):
 * s = mean |W| (summed in double, rounded to f32), T = clamp(roundf(w / s), -1, 1)
 * in binary32 (roundf: half away from zero; s = 0 gives T = 0).
 * trits: rows * cols; scales: room for `rows` floats (the most any axis needs);
 * params: the scale axis and blocks, as the manifest will say them. */
int trlc_ternary_quantize(const float *w, uint64_t rows, uint64_t cols, trl_scale_axis axis, int8_t *trits,
                          float *scales, trl_enc_params *params, int *lossless);
/* The scale of weight (r, c) under params (docs/FORMAT.md's scale table). */
float trlc_ternary_scale_at(const trl_enc_params *p, const float *scales, uint64_t rows, uint64_t cols, uint64_t r,
                            uint64_t c);

/* Binary-coded quantization of one row (ShiftAddLLM): per group of p->group
 * columns, w ~ sum_{i < p->bits} a_i b_i, b_i in {-1, +1}. Planes are added one
 * at a time: plane i is the greedy one on the residual (b = sign(r), sign(0) =
 * +1, a = mean |r|), then all planes so far are refined by alternating least
 * squares (a few rounds: the k x k least-squares scales given the signs, then
 * each column's best of the 2^k sign combinations given the scales, ties to
 * +1 in the later planes, so sign(0) = +1 with one plane). The
 * scales are then rounded as stored (f16, or with p->pow2 the nearest power of
 * two in 2^-14 .. 2^15) and the signs re-picked for them. Deterministic; the
 * error never rises with an added bit.
 * signs: bits * cols ([plane][col], what trl_bcq_pack_row takes); scales:
 * n_groups * bits, (group, plane); deq (may be NULL): the row as stored. */
int trlc_bcq_quantize_row(const float *w, uint64_t cols, const trl_enc_params *p, int8_t *signs, float *scales,
                          float *deq);

/* 1 if this library was built with LAPACK (low-rank factorisation). */
int trlc_have_lapack(void);
/* Truncated SVD of the row-major (rows, cols) w, in double (LAPACK dgesdd):
 * vt gets the first `rank` rows of S^(1/2) V^T (rank x cols), ut the same rows
 * of (U S^(1/2))^T (rank x rows), in decreasing singular-value order, each
 * pair's sign fixed so V's largest entry is positive. sigma (may be NULL):
 * all min(rows, cols) singular values, descending. */
int trlc_lowrank(const float *w, uint64_t rows, uint64_t cols, uint64_t rank, float *vt, float *ut, double *sigma,
                 char *err, size_t errlen);

/* ------------------------------------------------------------- pack writer */

/* What becomes of the linear layers (attn_q/k/v/output, ffn_gate/up/down);
 * embeddings, the output head and norms are never quantized or factorised. */
typedef enum trlc_linear_mode {
    TRLC_LINEAR_DENSE = 0,   /* matrix_encoding, like everything else */
    TRLC_LINEAR_TERNARY = 1, /* t2 / t1 (trlc_ternary_quantize) */
    TRLC_LINEAR_BCQ = 2,     /* bcq (trlc_bcq_quantize_row) */
    TRLC_LINEAR_LOWRANK = 3  /* rank slices only, no base weight */
} trlc_linear_mode;

#define TRLC_MAX_VARIANTS 16

/* What the writer did to one linear layer (trlc_write_opts.on_tensor). */
typedef struct trlc_tensor_report {
    const char *name;          /* the layer's weight name, e.g. "blk.0.attn_q.weight" */
    trl_encoding encoding;     /* of the base (ternary / bcq), or of the slices without a base */
    trl_enc_params params;
    int lossless;              /* ternary: the weights were already s * T and are stored exactly */
    double base_rel_error;     /* ||W - Q(W)||_F / ||W||_F of the base (ternary / bcq) */
    double rel_error;          /* the same for all the pack holds: base and every slice */
    int32_t full_rank;         /* min(rows, cols) */
    int32_t rank;              /* stored rank of the slices (0: none) */
    int32_t n_slices;
} trlc_tensor_report;

typedef struct trlc_write_opts {
    trl_encoding matrix_encoding; /* 2-D tensors and rank slices; 1-D tensors are always f32 */
    uint64_t chunk_bytes;         /* most bytes per chunk (a bigger tensor gets its own) */
    int force;                    /* replace an existing pack */
    const char *name;             /* NULL: the source's name */
    /* format version 2 */
    trlc_linear_mode linear;
    trl_encoding ternary_encoding; /* TRL_ENC_T2 (default) or TRL_ENC_T1 */
    trl_scale_axis ternary_scale;  /* absmean axis: TRL_SCALE_TENSOR (default) or TRL_SCALE_ROW */
    trl_enc_params bcq;            /* bits (1..4), group (default 128), pow2 */
    /* TRLC_LINEAR_LOWRANK: one variant per entry. rank_fractions = 0: ranks
     * are ranks (capped at each layer's min(rows, cols)); 1: fractions in
     * (0, 1] of each layer's min(rows, cols). Any order; the largest is stored. */
    double ranks[TRLC_MAX_VARIANTS];
    int n_ranks;
    int rank_fractions;
    int32_t slice_rows;            /* rows per rank slice (default 16; see trlc_pack_write) */
    int32_t residual_rank;         /* ternary / bcq: also store W - Q(W) at this rank as rank slices */
    void (*on_tensor)(void *user, const trlc_tensor_report *r);
    void *user;
} trlc_write_opts;

/* f32, 4 MiB, no force, dense linear layers; t2, tensor scale, bcq 2 bits g128, 16-row slices. */
trlc_write_opts trlc_write_default_opts(void);

/* Parse a --lowrank list ("64" or "64,32" ranks; "0.75,0.5" fractions: any
 * value with a '.') into opts->ranks / n_ranks / rank_fractions. */
int trlc_parse_ranks(const char *s, trlc_write_opts *opts, char *err, size_t errlen);

typedef struct trlc_write_summary {
    size_t n_tensors;
    uint64_t tensor_bytes;   /* sum of tensor bytes */
    uint64_t download_bytes; /* sum of chunk sizes */
    size_t n_chunks;
    uint64_t n_params;
    int version;             /* format version written */
    int n_variants;
    char variant_id[TRLC_MAX_VARIANTS][32];
    int32_t variant_rank_slices[TRLC_MAX_VARIANTS]; /* -1: the pack has no slices */
    uint64_t variant_download_bytes[TRLC_MAX_VARIANTS];
} trlc_write_summary;

/* Write a pack (docs/FORMAT.md) into `out_dir`: everything goes into a
 * temporary sibling directory that is renamed into place once complete and
 * synced, so a failure never leaves a half-written pack. An existing out_dir
 * is refused unless opts->force, and then only if it is empty or a trillium pack.
 *
 * Rank slices (lowrank, residual): each layer's stored rank is cut at every
 * variant's rank into segments, segment k going to tier k; all layers cut
 * segment k into the same number of slices, so one count (the variant's
 * "rank_slices") selects every layer's prefix. That count is
 * ceil(largest segment / slice_rows); a layer's segment is cut into slices of
 * slice_rows rows (the last smaller) when that gives the count, else as evenly
 * as possible. A layer that reaches its full rank early stops there (the core
 * uses fewer slices where a layer has fewer). */
int trlc_pack_write(const trlc_model_src *src, const char *out_dir, const trlc_write_opts *opts,
                    trlc_write_summary *summary, char *err, size_t errlen);

/* ------------------------------------------------------------- pack loader */

typedef struct trlc_pack_chunk {
    char file[64];
    uint8_t *data; /* 64-byte aligned */
    size_t bytes;
    int32_t tier;
} trlc_pack_chunk;

typedef struct trlc_pack_variant {
    char id[64];
    int32_t rank_slices; /* -1 when the manifest gives none: all slices */
    uint64_t download_bytes, resident_bytes;
} trlc_pack_variant;

typedef struct trlc_pack {
    char *dir;
    char *manifest; /* the raw manifest.json, NUL-terminated */
    size_t manifest_len;
    int version;            /* format version, 1 or 2 */
    char *name;             /* "name" or "" */
    trl_config config;
    trl_tensor *tensors;    /* names and data point into this pack; params filled (version 2) */
    size_t n_tensors;
    const void *tokenizer;  /* blob inside chunk data */
    size_t tokenizer_bytes;
    int tokenizer_kind;
    int32_t bos_id, eos_id;
    char *chat_template;    /* NULL if none */
    trlc_pack_chunk *chunks;
    size_t n_chunks;
    trlc_pack_variant *variants;
    size_t n_variants;
} trlc_pack;

/* Read and check a pack (format version 1 or 2): the manifest (format,
 * version, every field, tensor params, variants), each chunk's size and sha256
 * (before a byte of it is used), every tensor entry. A newer version is
 * refused with "this pack needs format version N ... (upgrade trillium)".
 * The pack must outlive models made from its tensors. */
int trlc_pack_open(const char *dir, trlc_pack **out, char *err, size_t errlen);
void trlc_pack_close(trlc_pack *p);
const trl_tensor *trlc_pack_find(const trlc_pack *p, const char *name);
/* A variant by id; NULL if the pack has none of that name. */
const trlc_pack_variant *trlc_pack_variant_find(const trlc_pack *p, const char *id);

/* ------------------------------------------------------------------ misc */

/* Shortest decimal text that reads back as the same float ("1e-05", not
 * "9.99999975e-06"). buf: at least 32 bytes. */
void trlc_format_float(float v, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TRLC_H */
