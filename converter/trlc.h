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
/* Drop the whole pages of [p, p + n) from the process's memory if they lie in
 * f's mapping (madvise MADV_DONTNEED; the page cache keeps them): the writer
 * calls it after each tensor, so the resident size stays near one tensor
 * rather than growing to the checkpoint's size. Anything else: nothing. */
void trlc_file_release(const trlc_file *f, const void *p, size_t n);
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
    /* GGUF block types (ggml's layouts, docs/FORMAT.md's q8_0 is the same
     * block as Q8_0): a row is whole blocks, so trlc_dtype_size is 0 and
     * trlc_dtype_row_bytes gives the size. Never read from safetensors. */
    TRLC_DT_Q8_0,  /* 32 weights in 34 bytes: f16 d, int8 q[32]; w = d q */
    TRLC_DT_Q4_0,  /* 32 weights in 18 bytes: f16 d, nibbles; w = d (q - 8) */
    TRLC_DT_TQ1_0, /* 256 weights in 54 bytes: base-3 qs[48], qh[4], f16 d */
    TRLC_DT_TQ2_0, /* 256 weights in 66 bytes: 2-bit qs[64], f16 d; w = d (code - 1) */
    TRLC_DT_COUNT
} trlc_dtype;
#define TRLC_DT_SAFETENSORS_END TRLC_DT_Q8_0 /* safetensors dtypes are those below */

const char *trlc_dtype_name(trlc_dtype t); /* safetensors spelling: "F32", "BF16", ...; GGUF's: "Q8_0", "TQ2_0" */
size_t trlc_dtype_size(trlc_dtype t);      /* bytes per element; 0 for the block types */
/* Elements per block (1 for the element types) and bytes per block. */
void trlc_dtype_block(trlc_dtype t, uint32_t *block, uint32_t *block_bytes);
/* Bytes of `cols` elements (a row); 0 if cols is not a whole number of blocks
 * or on overflow. */
uint64_t trlc_dtype_row_bytes(trlc_dtype t, uint64_t cols);
/* Convert `n` little-endian elements (any alignment) to f32; -1 for a dtype
 * that is not F32/F16/BF16 or one of the block types (then n must be a whole
 * number of blocks). Block types decode as ggml's dequantize_row_* does. */
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
    trlc_dtype dtype;  /* F32, F16, BF16, or (GGUF) Q8_0, Q4_0, TQ1_0, TQ2_0 */
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

/* A HF directory, a GGUF file (".gguf" or the "GGUF" magic) or a llama2.c
 * .bin, by what `input` is. */
int trlc_source_open(const char *input, const char *tokenizer_path, trlc_model_src **out, char *err,
                     size_t errlen);
void trlc_source_free(trlc_model_src *src);
/* Drop a tensor's pages from memory in whichever of the source's mappings it
 * lies (trlc_file_release): after the writer or the calibration used it. */
void trlc_source_release(const trlc_model_src *src, const trlc_src_tensor *t);

/* Attach a tokenizer to a source (replacing any). Used by the readers. */
int trlc_source_load_tokenizer_llama2c(trlc_model_src *src, const char *path, char *err, size_t errlen);
int trlc_source_load_tokenizer_hf(trlc_model_src *src, const char *tokenizer_json, const char *tokenizer_config,
                                  char *err, size_t errlen);
/* By the file's name: ".json" is a HF tokenizer.json (with the
 * tokenizer_config.json beside it, if there is one), anything else llama2.c. */
int trlc_source_load_tokenizer_file(trlc_model_src *src, const char *path, char *err, size_t errlen);

/* -------------------------------------------------------------------- GGUF */

/* GGUF v3 (llama.cpp / ggml model files; ggml's docs/gguf.md). Little-endian
 * only. Every count, length and offset is checked against the file before it
 * is used, and nothing is allocated from a size field beyond what the file's
 * own size bounds. Strings point into the file and are not NUL-terminated. */

enum {
    TRLC_GGUF_U8 = 0, TRLC_GGUF_I8 = 1, TRLC_GGUF_U16 = 2, TRLC_GGUF_I16 = 3, TRLC_GGUF_U32 = 4,
    TRLC_GGUF_I32 = 5, TRLC_GGUF_F32 = 6, TRLC_GGUF_BOOL = 7, TRLC_GGUF_STRING = 8, TRLC_GGUF_ARRAY = 9,
    TRLC_GGUF_U64 = 10, TRLC_GGUF_I64 = 11, TRLC_GGUF_F64 = 12, TRLC_GGUF_TYPE_COUNT = 13
};

/* ggml tensor types this converter reads (the others are sized and checked, then refused if used). */
enum {
    TRLC_GGML_F32 = 0, TRLC_GGML_F16 = 1, TRLC_GGML_Q4_0 = 2, TRLC_GGML_Q8_0 = 8, TRLC_GGML_BF16 = 30,
    TRLC_GGML_TQ1_0 = 34, TRLC_GGML_TQ2_0 = 35
};

typedef struct trlc_gguf_kv {
    const char *key;
    size_t key_len;
    uint32_t type; /* TRLC_GGUF_* */
    /* scalars: integers and bools in i (or u for U64), floats in f */
    int64_t i;
    uint64_t u;
    double f;
    /* STRING: the bytes; ARRAY: the element type, count and first byte of the elements */
    const char *str;
    size_t str_len;
    uint32_t arr_type;
    uint64_t arr_n;
    const uint8_t *arr;
} trlc_gguf_kv;

#define TRLC_GGUF_MAX_DIMS 4

typedef struct trlc_gguf_tensor {
    char name[64];          /* GGUF caps names at 63 bytes; NUL-terminated copy */
    uint32_t n_dims;
    uint64_t ne[TRLC_GGUF_MAX_DIMS]; /* ggml order: ne[0] is the row length (columns); unused dims are 1 */
    uint32_t type;          /* ggml type */
    uint64_t offset;        /* in the data section */
    const uint8_t *data;
    uint64_t nbytes;
} trlc_gguf_tensor;

typedef struct trlc_gguf {
    char *name;             /* the file, for messages */
    trlc_file file;         /* the mapping (trlc_gguf_open), or empty (trlc_gguf_parse) */
    const uint8_t *data;
    size_t size;
    uint32_t version;
    uint64_t alignment;     /* general.alignment, default 32 */
    uint64_t data_offset;   /* start of the tensor data section in the file */
    trlc_gguf_kv *kv;
    size_t n_kv;
    trlc_gguf_tensor *tensors;
    size_t n_tensors;
} trlc_gguf;

/* Parse GGUF bytes in memory (data must outlive g); `name` is used in messages. */
int trlc_gguf_parse(const void *data, size_t size, const char *name, trlc_gguf *g, char *err, size_t errlen);
/* Map a file and parse it. */
int trlc_gguf_open(const char *path, trlc_gguf *g, char *err, size_t errlen);
void trlc_gguf_close(trlc_gguf *g);
const trlc_gguf_kv *trlc_gguf_find(const trlc_gguf *g, const char *key);
const trlc_gguf_tensor *trlc_gguf_find_tensor(const trlc_gguf *g, const char *name);
/* "U32", "STRING", "ARRAY", ...; ggml type names ("F32", "Q4_K", "TQ2_0"; "?" if unknown). */
const char *trlc_gguf_type_name(uint32_t type);
const char *trlc_ggml_type_name(uint32_t type);

/* A llama-architecture GGUF as a model source (rope_style "interleaved":
 * llama.cpp's converter permutes q/k for it; tensors keep their GGUF names and
 * types, the tokenizer comes from tokenizer.ggml.* unless tokenizer_path is
 * given). The source owns the mapping. */
int trlc_gguf_model_open(const char *path, const char *tokenizer_path, trlc_model_src **out, char *err,
                         size_t errlen);
/* The same from bytes in memory, which must outlive the source. */
int trlc_gguf_model_from_mem(const void *data, size_t size, const char *name, trlc_model_src **out, char *err,
                             size_t errlen);

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

/* The same with column weights d (cols floats, >= 0; NULL: all 1), the
 * objective ShiftAddLLM uses with activation statistics: per group, minimise
 * sum_c d_c (w_c - sum_i a_i b_ic)^2. The greedy plane's scale is the weighted
 * mean a = sum d|r| / sum d (the unweighted mean if the group's d are all 0),
 * the least-squares scales solve the weighted normal equations, and the sign
 * search is per column (its best combination does not depend on d_c). With
 * d == NULL it is exactly trlc_bcq_quantize_row. */
int trlc_bcq_quantize_row_weighted(const float *w, const float *d, uint64_t cols, const trl_enc_params *p,
                                   int8_t *signs, float *scales, float *deq);

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

/* The linear layers of a block, as bits (trlc_write_opts.layers). */
enum {
    TRLC_LAYER_Q = 1, TRLC_LAYER_K = 2, TRLC_LAYER_V = 4, TRLC_LAYER_O = 8,
    TRLC_LAYER_GATE = 16, TRLC_LAYER_UP = 32, TRLC_LAYER_DOWN = 64,
    TRLC_LAYER_ATTN = 15, TRLC_LAYER_MLP = 112, TRLC_LAYER_ALL = 127
};
/* "attn,mlp" | "attn" | "mlp" | names: q,k,v,o,gate,up,down (also attn_q, ffn_down, ...). */
int trlc_parse_layers(const char *s, uint32_t *mask, char *err, size_t errlen);
/* The TRLC_LAYER_* bit of a tensor name "blk.N.<layer>.weight"; 0 if not a linear layer's weight. */
uint32_t trlc_layer_bit(const char *name);

/* ------------------------------------------------------------- calibration */

/* Progress of a long step: `what` ("layers", "calibration", "perplexity r32"), done of total. */
typedef void (*trlc_progress_fn)(void *user, const char *what, uint64_t done, uint64_t total);

/* Calibration text, tokenized by the source's tokenizer (BOS, then the text),
 * at most max_tokens ids; and what running the source over it gave. */
typedef struct trlc_calib {
    int32_t *ids;
    int32_t n_ids;
    char text_sha256[65];   /* of the file's bytes */
    int32_t n_layers;
    float **col_ms;          /* (n_layers * 11): E[x_c^2] of each linear layer's input (indexed by the
                                core's TRL_LT_* slot), NULL where not collected */
    int32_t *col_n;          /* their lengths */
    double parent_ppl;       /* the source in f32, by the core; 0 until trlc_calib_run_source */
} trlc_calib;

int trlc_calib_open(const trlc_model_src *src, const char *path, int32_t max_tokens, trlc_calib **out, char *err,
                    size_t errlen);
/* Build the source as an f32 model in memory (f32 tensors of the mapping are
 * used in place), run the core over the tokens: the parent's perplexity and,
 * if `stats`, every linear layer's per-input-column mean square activation. */
int trlc_calib_run_source(const trlc_model_src *src, trlc_calib *c, int stats, trlc_progress_fn progress,
                          void *user, char *err, size_t errlen);
/* The column weights of a linear layer ("blk.N.attn_q.weight"), or NULL. */
const float *trlc_calib_col_weights(const trlc_calib *c, const char *name, uint64_t cols);
void trlc_calib_free(trlc_calib *c);
/* Perplexity of a model on ids: windows of at most the model's max_seq_len
 * tokens, each from an empty cache; exp of the mean negative log-likelihood
 * (log-softmax in double) of every token after the first of its window.
 * rank_slices < 0: all. */
int trlc_perplexity(const trl_model *m, int32_t rank_slices, const int32_t *ids, int32_t n, double *ppl,
                    trlc_progress_fn progress, void *user, const char *what, char *err, size_t errlen);

/* What the writer did to one linear layer (trlc_write_opts.on_tensor). */
typedef struct trlc_tensor_report {
    const char *name;          /* the layer's weight name, e.g. "blk.0.attn_q.weight" */
    trl_encoding encoding;     /* of the base (ternary / bcq), or of the slices without a base */
    trl_enc_params params;
    int lossless;              /* ternary: the weights were already s * T and are stored exactly */
    double base_rel_error;     /* ||W - Q(W)||_F / ||W||_F of the base (ternary / bcq) */
    double rel_error;          /* the same for all the pack holds: base and every slice */
    double out_rel_error;      /* with calibration statistics d (E[x_c^2]) for this layer: the base's
                                  sqrt(sum d_c (W - Q(W))_rc^2 / sum d_c W_rc^2), an estimate of the
                                  relative output error; -1 without */
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
    /* GGUF sources: tensors already in a pack encoding keep it, whatever
     * matrix_encoding says: Q8_0 blocks are copied into q8_0 (2-D tensors),
     * TQ1_0 / TQ2_0 linear layers become ternary_encoding (t2 / t1) with their
     * exact trits and scales when the block scales fit a pack scale layout
     * (per tensor, row blocks, column blocks or row; else on_warning and
     * matrix_encoding). 0: everything is dequantized to matrix_encoding.
     * In the version-2 modes (ternary, bcq, lowrank) linear layers are always
     * dequantized first and go through that mode. */
    int keep_quant;
    /* TRLC_LAYER_* bits: the linear layers the version-2 mode (ternary, bcq,
     * lowrank, residual) touches; the others stay matrix_encoding. 0: all. */
    uint32_t layers;
    /* token_embd / output (untied) encoding: f32, f16 or q8_0; -1: as matrix_encoding
     * (a GGUF Q8_0 tensor kept as q8_0 with keep_quant). */
    int embed_encoding, head_encoding;
    /* Calibration text (NULL: none): activation statistics weight the bcq
     * objective, and every variant's perplexity goes into the manifest. */
    const char *calib_path;
    int32_t calib_tokens; /* most tokens used (default 512) */
    int calib_weights;    /* 1 (default): weight the bcq objective by the statistics; 0: perplexity only */
    /* Non-nesting family (--family): n_family more sources of the same
     * config, tokenizer, embeddings, norms and head; each member is a variant
     * with its own linear layers under the prefix "<id>/" in its own tier
     * (docs/FORMAT.md "Families"). family_ids: n_family + 1 ids (the first for src). */
    const trlc_model_src *const *family;
    int n_family;
    const char *const *family_ids;
    trlc_progress_fn on_progress; /* may be NULL */
    void (*on_tensor)(void *user, const trlc_tensor_report *r);
    /* A one-line note about a tensor the writer had to store differently than asked (may be NULL). */
    void (*on_warning)(void *user, const char *msg);
    void *user;
} trlc_write_opts;

/* f32, 4 MiB, no force, dense linear layers; t2, tensor scale, bcq 2 bits g128, 16-row slices; keep_quant. */
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
    uint64_t variant_resident_bytes[TRLC_MAX_VARIANTS];
    double variant_bits_per_weight[TRLC_MAX_VARIANTS]; /* 8 * weight bytes / parameters */
    double variant_ppl[TRLC_MAX_VARIANTS];             /* 0: not measured */
    double parent_ppl;                                 /* 0: no calibration text */
    int32_t calib_tokens;
    char calib_sha256[65];
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
    size_t tiers_at, n_tiers; /* its tiers: trlc_pack.variant_tiers[tiers_at .. tiers_at + n_tiers) */
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
    int32_t *variant_tiers;
    int32_t *tensor_tier;   /* (n_tensors) the tier of each tensor's chunk */
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
/* The tensors of a variant's tiers (a malloc'd array of copies pointing into
 * the pack; *n their count), what trl_model_create takes for that variant;
 * NULL on out of memory. In a version-3 pack (a --family) the same name may be
 * in several tiers, never twice in one variant's. */
trl_tensor *trlc_pack_variant_tensors(const trlc_pack *p, const trlc_pack_variant *v, size_t *n);

/* ------------------------------------------------------------------ misc */

/* Shortest decimal text that reads back as the same float ("1e-05", not
 * "9.99999975e-06"). buf: at least 32 bytes. */
void trlc_format_float(float v, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TRLC_H */
