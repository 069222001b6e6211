/* writer.c - the pack writer (docs/FORMAT.md, version 1).
 *
 * Tensors are converted one row at a time straight into the chunk files, so
 * memory stays at a row or two whatever the model's size. Everything is
 * written into a temporary sibling of the output directory, synced, and
 * renamed into place only when complete: a failure or an interrupted run never
 * leaves a half-written pack, and never clobbers an existing one. */
#define _GNU_SOURCE /* renameat2 flags, nftw */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include "json.h"
#include "sha256.h"
#include "trlc_internal.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define ALIGN 64

trlc_write_opts trlc_write_default_opts(void) {
    trlc_write_opts o;
    memset(&o, 0, sizeof o);
    o.matrix_encoding = TRL_ENC_F32;
    o.chunk_bytes = 4u << 20;
    return o;
}

/* ------------------------------------------------------- directory helpers */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Remove a directory and what is in it, without following symlinks. */
static int remove_tree(const char *path) { return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* Create "<prefix>NNNN" with mode 0777 & ~umask (mkdtemp would make it 0700,
 * and the directory becomes the pack). */
static int make_unique_dir(char *path, size_t cap, const char *prefix) {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t x = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)path;
    for (int attempt = 0; attempt < 100; attempt++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        char sfx[9];
        for (int i = 0; i < 8; i++) sfx[i] = digits[(x >> (8 + 5 * i)) % 36];
        sfx[8] = 0;
        snprintf(path, cap, "%s%s", prefix, sfx);
        if (mkdir(path, 0777) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    return -1;
}

/* renameat2 where the kernel has it: -1 with errno ENOSYS/EINVAL where not. */
static int rename2(const char *from, const char *to, unsigned flags) {
#if defined(__linux__) && defined(SYS_renameat2)
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
#else
    (void)from, (void)to, (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

static int fsync_path(const char *path, int dir) {
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    /* some filesystems refuse fsync on directories; the data is synced already */
    if (r && dir && (errno == EINVAL || errno == EBADF)) r = 0;
    close(fd);
    return r;
}

/* 1 if `dir` is empty or holds a trillium pack manifest: the only directories --force replaces. */
static int replaceable(const char *dir) {
    char *m = trlc_path_join(dir, "manifest.json");
    if (!m) return 0;
    int ok = 0;
    char *json = NULL;
    size_t len;
    char e[8];
    if (trlc_exists(m) && !trlc_file_read(m, &json, &len, e, sizeof e)) {
        tj_doc d;
        if (!tj_parse(json, len, &d, NULL, 0)) {
            ok = tj_str_eq(&d, tj_obj_get(&d, 0, "format"), "trillium-pack");
            tj_free(&d);
        }
    } else if (!trlc_exists(m)) {
        DIR *dh = opendir(dir);
        if (dh) {
            ok = 1;
            for (struct dirent *de; (de = readdir(dh));)
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) ok = 0;
            closedir(dh);
        }
    }
    free(json);
    free(m);
    return ok;
}

/* ------------------------------------------------------------ chunk files */

typedef struct chunk_rec {
    char file[32];
    uint64_t bytes;
    char sha[65];
} chunk_rec;

typedef struct writer {
    const char *tmpdir;
    uint64_t limit;
    FILE *f;
    char *fpath;
    trlc_sha256_ctx sha;
    uint64_t off;      /* bytes in the open chunk */
    chunk_rec *chunks;
    size_t n_chunks, cap_chunks;
    char *err;
    size_t errlen;
} writer;

static int w_close(writer *w) {
    if (!w->f) return 0;
    int bad = fflush(w->f) != 0 || fsync(fileno(w->f)) != 0;
    int e = errno;
    bad |= fclose(w->f) != 0;
    w->f = NULL;
    if (bad) return trlc_fail(w->err, w->errlen, "%s: write failed: %s", w->fpath, strerror(e ? e : errno));
    chunk_rec *c = &w->chunks[w->n_chunks - 1];
    uint8_t dg[32];
    trlc_sha256_final(&w->sha, dg);
    trlc_sha256_hex(dg, c->sha);
    c->bytes = w->off;
    return 0;
}

static int w_open(writer *w) {
    if (w->n_chunks == w->cap_chunks) {
        size_t cap = w->cap_chunks ? w->cap_chunks * 2 : 16;
        chunk_rec *c = realloc(w->chunks, cap * sizeof *c);
        if (!c) return trlc_fail(w->err, w->errlen, "out of memory");
        w->chunks = c;
        w->cap_chunks = cap;
    }
    chunk_rec *c = &w->chunks[w->n_chunks];
    memset(c, 0, sizeof *c);
    snprintf(c->file, sizeof c->file, "chunk-%04zu.bin", w->n_chunks);
    free(w->fpath);
    w->fpath = trlc_path_join(w->tmpdir, c->file);
    if (!w->fpath) return trlc_fail(w->err, w->errlen, "out of memory");
    w->f = fopen(w->fpath, "wbx");
    if (!w->f) return trlc_fail(w->err, w->errlen, "%s: cannot create: %s", w->fpath, strerror(errno));
    w->n_chunks++;
    trlc_sha256_init(&w->sha);
    w->off = 0;
    return 0;
}

static int w_write(writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n)
        return trlc_fail(w->err, w->errlen, "%s: write failed: %s", w->fpath, strerror(errno));
    trlc_sha256_update(&w->sha, p, n);
    w->off += n;
    return 0;
}

/* Find room for `size` bytes: 64-aligned in the open chunk if it fits under
 * the limit, else at the start of a new chunk (a tensor larger than the limit
 * gets a chunk of its own). Sets *chunk and *offset. */
static int w_place(writer *w, uint64_t size, size_t *chunk, uint64_t *offset) {
    uint64_t aligned = (w->off + ALIGN - 1) / ALIGN * ALIGN;
    if (w->f && w->off > 0 && (aligned > w->limit || size > w->limit - aligned)) {
        if (w_close(w)) return -1;
    }
    if (!w->f) {
        if (w_open(w)) return -1;
        aligned = 0;
    }
    static const uint8_t zero[ALIGN];
    if (w_write(w, zero, (size_t)(aligned - w->off))) return -1;
    *chunk = w->n_chunks - 1;
    *offset = aligned;
    return 0;
}

/* ----------------------------------------------------------------- manifest */

static void put_double(trlc_buf *b, double v, float as_float) {
    char buf[40];
    if ((float)v != as_float || !isfinite(v)) {
        trlc_format_float(as_float, buf, sizeof buf);
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, sizeof buf, "%.0f", v); /* 10000, not 1e+04 */
    } else {
        for (int p = 1; p <= 17; p++) {
            snprintf(buf, sizeof buf, "%.*g", p, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
    trlc_buf_puts(b, buf);
}

static const char *kind_name(int k) { return k == TRL_TOK_BPE_GPT2 ? "bpe_gpt2" : "spm"; }

static void put_id(trlc_buf *b, int32_t id) {
    if (id < 0) trlc_buf_puts(b, "null");
    else trlc_buf_printf(b, "%d", (int)id);
}

typedef struct placed {
    trl_encoding enc;
    size_t chunk;
    uint64_t offset, bytes;
} placed;

static char *build_manifest(const trlc_model_src *src, const char *name, const placed *tok, const placed *pl,
                            const writer *w, uint64_t ctx_bytes, uint64_t *download, uint64_t *resident) {
    const trl_config *c = &src->cfg;
    trlc_buf b = {0};
    trlc_buf_puts(&b, "{\n  \"format\": \"trillium-pack\",\n");
    trlc_buf_printf(&b, "  \"version\": %d,\n  \"name\": ", TRL_PACK_FORMAT_VERSION);
    trlc_buf_json_str(&b, name, strlen(name));
    trlc_buf_puts(&b, ",\n  \"source\": ");
    trlc_buf_json_str(&b, src->source, strlen(src->source));
    trlc_buf_printf(&b,
                    ",\n  \"config\": {\n    \"arch\": \"%s\", \"mlp\": \"%s\", \"rope_style\": \"%s\", "
                    "\"act_quant\": \"%s\",\n",
                    c->arch == TRL_ARCH_BITNET ? "bitnet" : "llama", c->mlp == TRL_MLP_RELU2 ? "relu2" : "swiglu",
                    c->rope_style == TRL_ROPE_HALF ? "half" : "interleaved",
                    c->act_quant == TRL_ACT_INT8 ? "int8" : "float");
    trlc_buf_printf(&b,
                    "    \"dim\": %d, \"hidden_dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d,\n"
                    "    \"head_dim\": %d, \"vocab_size\": %d, \"max_seq_len\": %d,\n    \"rope_theta\": ",
                    c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                    c->max_seq_len);
    put_double(&b, src->rope_theta, c->rope_theta);
    trlc_buf_puts(&b, ", \"norm_eps\": ");
    put_double(&b, src->norm_eps, c->norm_eps);
    trlc_buf_printf(&b, ",\n    \"tied_embeddings\": %s, \"sub_norms\": %s\n  },\n",
                    c->tied_embeddings ? "true" : "false", c->sub_norms ? "true" : "false");
    trlc_buf_printf(&b, "  \"tokenizer\": {\n    \"kind\": \"%s\", \"chunk\": %zu, \"offset\": %llu, \"bytes\": %llu,\n",
                    kind_name(src->tok.kind), tok->chunk, (unsigned long long)tok->offset,
                    (unsigned long long)tok->bytes);
    trlc_buf_puts(&b, "    \"bos_id\": ");
    put_id(&b, src->tok.bos_id);
    trlc_buf_puts(&b, ", \"eos_id\": ");
    put_id(&b, src->tok.eos_id);
    trlc_buf_puts(&b, ",\n    \"chat_template\": ");
    if (src->tok.chat_template) trlc_buf_json_str(&b, src->tok.chat_template, strlen(src->tok.chat_template));
    else trlc_buf_puts(&b, "null");
    trlc_buf_puts(&b, "\n  },\n  \"tensors\": [\n");
    *resident = tok->bytes;
    for (size_t i = 0; i < src->n_tensors; i++) {
        const trlc_src_tensor *t = &src->tensors[i];
        trlc_buf_puts(&b, "    { \"name\": ");
        trlc_buf_json_str(&b, t->name, strlen(t->name));
        trlc_buf_printf(&b, ", \"encoding\": \"%s\", \"shape\": ", trl_encoding_name(pl[i].enc));
        if (t->n_dims == 2) trlc_buf_printf(&b, "[%lld, %lld]", (long long)t->shape[0], (long long)t->shape[1]);
        else trlc_buf_printf(&b, "[%lld]", (long long)t->shape[0]);
        trlc_buf_printf(&b, ", \"chunk\": %zu, \"offset\": %llu, \"bytes\": %llu }%s\n", pl[i].chunk,
                        (unsigned long long)pl[i].offset, (unsigned long long)pl[i].bytes,
                        i + 1 < src->n_tensors ? "," : "");
        *resident += pl[i].bytes;
    }
    trlc_buf_puts(&b, "  ],\n  \"chunks\": [\n");
    *download = 0;
    for (size_t i = 0; i < w->n_chunks; i++) {
        trlc_buf_printf(&b, "    { \"file\": \"%s\", \"bytes\": %llu, \"sha256\": \"%s\", \"tier\": 0 }%s\n",
                        w->chunks[i].file, (unsigned long long)w->chunks[i].bytes, w->chunks[i].sha,
                        i + 1 < w->n_chunks ? "," : "");
        *download += w->chunks[i].bytes;
    }
    trlc_buf_printf(&b,
                    "  ],\n  \"variants\": [\n    { \"id\": \"base\", \"tiers\": [0], \"download_bytes\": %llu, "
                    "\"resident_bytes\": %llu,\n      \"context_bytes\": { \"%d\": %llu } }\n  ]\n}\n",
                    (unsigned long long)*download, (unsigned long long)*resident, c->max_seq_len,
                    (unsigned long long)ctx_bytes);
    if (b.oom) {
        trlc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ------------------------------------------------------------ the writer */

/* Convert one tensor row by row into the open chunk. */
static int write_tensor(writer *w, const trlc_src_tensor *t, trl_encoding enc, float *fbuf, void *obuf) {
    uint64_t rows = t->n_dims == 2 ? (uint64_t)t->shape[0] : 1;
    uint64_t cols = t->n_dims == 2 ? (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
    size_t dsz = trlc_dtype_size(t->dtype);
    size_t rb = trl_encoding_row_bytes(enc, cols);
    for (uint64_t r = 0; r < rows; r++) {
        if (trlc_dtype_to_f32(t->dtype, t->data + r * cols * dsz, (size_t)cols, fbuf))
            return trlc_fail(w->err, w->errlen, "%s: dtype %s cannot be converted", t->origin,
                             trlc_dtype_name(t->dtype));
        for (uint64_t i = 0; i < cols; i++)
            if (!isfinite(fbuf[i]))
                return trlc_fail(w->err, w->errlen, "%s: row %llu, column %llu: %s value; the checkpoint is broken",
                                 t->origin, (unsigned long long)r, (unsigned long long)i,
                                 isnan(fbuf[i]) ? "NaN" : "infinite");
        if (trl_encode_row(enc, fbuf, cols, obuf) != TRL_OK)
            return trlc_fail(w->err, w->errlen, "%s: cannot encode as %s", t->origin, trl_encoding_name(enc));
        if (w_write(w, obuf, rb)) return -1;
    }
    return 0;
}

/* Check the source before touching the disk. Fills pl[i].enc/bytes. */
static int check_source(const trlc_model_src *src, const trlc_write_opts *o, placed *pl, uint64_t *max_cols,
                        char *err, size_t errlen) {
    trl_error e;
    if (trl_config_validate(&src->cfg, &e) != TRL_OK) return trlc_fail(err, errlen, "%s: %s", src->source, e.msg);
    if (!src->tok.blob || !src->tok.len)
        return trlc_fail(err, errlen, "%s: no tokenizer; pass --tokenizer FILE", src->source);
    *max_cols = 1;
    /* exactly the tensors the config needs, with their shapes: what the core will accept */
    size_t ns = trlc_tensor_specs(&src->cfg, NULL);
    trlc_tensor_spec *spec = calloc(ns, sizeof *spec);
    char *used = calloc(ns, 1);
    if (!spec || !used) {
        free(spec);
        free(used);
        return trlc_fail(err, errlen, "out of memory");
    }
    trlc_tensor_specs(&src->cfg, spec);
    int rc = -1;
    for (size_t i = 0; i < src->n_tensors; i++) {
        const trlc_src_tensor *t = &src->tensors[i];
        size_t k = 0;
        while (k < ns && strcmp(spec[k].name, t->name)) k++;
        if (k == ns) {
            trlc_fail(err, errlen, "%s: tensor %s is not part of this model", t->origin, t->name);
            goto out;
        }
        if (used[k]) {
            trlc_fail(err, errlen, "%s: tensor %s appears twice", t->origin, t->name);
            goto out;
        }
        used[k] = 1;
        if (t->n_dims != spec[k].n_dims || t->shape[0] != spec[k].shape[0] ||
            (t->n_dims == 2 && t->shape[1] != spec[k].shape[1])) {
            trlc_fail(err, errlen, "%s: tensor %s: shape does not match the config (expected [%lld%s%lld])",
                      t->origin, t->name, (long long)spec[k].shape[0], spec[k].n_dims == 2 ? ", " : "",
                      spec[k].n_dims == 2 ? (long long)spec[k].shape[1] : 0LL);
            goto out;
        }
        uint64_t rows = t->n_dims == 2 ? (uint64_t)t->shape[0] : 1;
        uint64_t cols = t->n_dims == 2 ? (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
        uint64_t want;
        if (trlc_mul_u64(rows, cols, &want) || trlc_mul_u64(want, trlc_dtype_size(t->dtype), &want) ||
            trlc_dtype_size(t->dtype) == 0) {
            trlc_fail(err, errlen, "%s: size overflows", t->origin);
            goto out;
        }
        if (want != t->nbytes) {
            trlc_fail(err, errlen, "%s: %zu bytes of data, shape needs %llu", t->origin, t->nbytes,
                      (unsigned long long)want);
            goto out;
        }
        pl[i].enc = t->n_dims == 2 ? o->matrix_encoding : TRL_ENC_F32;
        pl[i].bytes = trl_encoding_bytes(pl[i].enc, rows, cols);
        if (!pl[i].bytes) {
            trlc_fail(err, errlen, "%s: encoded size overflows", t->origin);
            goto out;
        }
        if (cols > *max_cols) *max_cols = cols;
    }
    for (size_t k = 0; k < ns; k++)
        if (!used[k]) {
            trlc_fail(err, errlen, "%s: missing tensor %s", src->source, spec[k].name);
            goto out;
        }
    rc = 0;
out:
    free(spec);
    free(used);
    return rc;
}

int trlc_pack_write(const trlc_model_src *src, const char *out_dir, const trlc_write_opts *opts,
                    trlc_write_summary *summary, char *err, size_t errlen) {
    trlc_write_opts o = opts ? *opts : trlc_write_default_opts();
    if (o.matrix_encoding != TRL_ENC_F32 && o.matrix_encoding != TRL_ENC_F16 && o.matrix_encoding != TRL_ENC_Q8_0)
        return trlc_fail(err, errlen, "matrix encoding %d is not supported (f32, f16, q8_0 are)",
                         (int)o.matrix_encoding);
    if (o.chunk_bytes < ALIGN) return trlc_fail(err, errlen, "chunk size %llu is too small",
                                                (unsigned long long)o.chunk_bytes);
    /* out_dir without trailing slashes; its parent holds the temporary directory */
    size_t n = strlen(out_dir);
    while (n > 1 && out_dir[n - 1] == '/') n--;
    char out[4096], parent[4096], base[256];
    if (n == 0 || n >= sizeof out) return trlc_fail(err, errlen, "output path: empty or too long");
    memcpy(out, out_dir, n);
    out[n] = 0;
    trlc_basename(out, NULL, base, sizeof base);
    if (!trlc_plain_filename(base)) return trlc_fail(err, errlen, "%s: not a usable output directory name", out);
    size_t pn = strlen(out) - strlen(base);
    memcpy(parent, out, pn);
    parent[pn] = 0;
    if (!pn) snprintf(parent, sizeof parent, "./");

    if (trlc_exists(out)) {
        if (!o.force) return trlc_fail(err, errlen, "%s: already exists; re-run with --force to replace it", out);
        if (!trlc_is_dir(out) || !replaceable(out))
            return trlc_fail(err, errlen, "%s: exists and is not a trillium pack; refusing to replace it", out);
    }

    placed *pl = calloc(src->n_tensors ? src->n_tensors : 1, sizeof *pl);
    if (!pl) return trlc_fail(err, errlen, "out of memory");
    uint64_t max_cols;
    if (check_source(src, &o, pl, &max_cols, err, errlen)) {
        free(pl);
        return -1;
    }
    const char *name = o.name ? o.name : src->name;

    /* like mkdir -p: create missing parents of the output directory */
    for (size_t i = 1; i < pn; i++) {
        if (parent[i] != '/') continue;
        parent[i] = 0;
        if (mkdir(parent, 0777) && errno != EEXIST) {
            int e = errno;
            parent[i] = '/';
            free(pl);
            return trlc_fail(err, errlen, "%s: cannot create the output's parent directory: %s", parent, strerror(e));
        }
        parent[i] = '/';
    }
    char tmp[8192 + 64], prefix[8192];
    snprintf(prefix, sizeof prefix, "%s.%s.tmp-", parent, base);
    if (make_unique_dir(tmp, sizeof tmp, prefix)) {
        free(pl);
        return trlc_fail(err, errlen, "%s: cannot create a temporary directory: %s", parent, strerror(errno));
    }
    writer w;
    memset(&w, 0, sizeof w);
    w.tmpdir = tmp;
    w.limit = o.chunk_bytes;
    w.err = err;
    w.errlen = errlen;
    float *fbuf = malloc((size_t)max_cols * sizeof(float));
    void *obuf = malloc(trl_encoding_row_bytes(TRL_ENC_F32, max_cols));
    char *manifest = NULL, *mpath = NULL;
    int rc = -1;
    if (!fbuf || !obuf) {
        trlc_fail(err, errlen, "out of memory for a row of %llu weights", (unsigned long long)max_cols);
        goto done;
    }
    placed tok = {TRL_ENC_F32, 0, 0, src->tok.len};
    if (w_place(&w, tok.bytes, &tok.chunk, &tok.offset) || w_write(&w, src->tok.blob, src->tok.len)) goto done;
    if (w.off >= w.limit && w_close(&w)) goto done;
    for (size_t i = 0; i < src->n_tensors; i++) {
        if (w_place(&w, pl[i].bytes, &pl[i].chunk, &pl[i].offset) ||
            write_tensor(&w, &src->tensors[i], pl[i].enc, fbuf, obuf))
            goto done;
        if (w.off >= w.limit && w_close(&w)) goto done;
    }
    if (w_close(&w)) goto done;

    trl_ctx_params cp = trl_ctx_default_params();
    cp.n_ctx = src->cfg.max_seq_len;
    uint64_t ctx_bytes = trl_ctx_memory_bytes(&src->cfg, &cp), download, resident;
    manifest = build_manifest(src, name, &tok, pl, &w, ctx_bytes, &download, &resident);
    mpath = trlc_path_join(tmp, "manifest.json");
    if (!manifest || !mpath) {
        trlc_fail(err, errlen, "out of memory building manifest.json");
        goto done;
    }
    FILE *f = fopen(mpath, "wbx");
    if (!f) {
        trlc_fail(err, errlen, "%s: cannot create: %s", mpath, strerror(errno));
        goto done;
    }
    size_t ml = strlen(manifest);
    int bad = fwrite(manifest, 1, ml, f) != ml || fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || fsync_path(tmp, 1)) {
        trlc_fail(err, errlen, "%s: write failed: %s", mpath, strerror(errno));
        goto done;
    }

    /* into place: atomically where the kernel can */
    if (trlc_exists(out)) {
        if (rename2(tmp, out, RENAME_EXCHANGE) == 0) {
            remove_tree(tmp); /* now the old pack */
        } else {
            char old[8192 + 64];
            snprintf(prefix, sizeof prefix, "%s.%s.old-", parent, base);
            if (make_unique_dir(old, sizeof old, prefix) || rename(out, old) != 0) {
                trlc_fail(err, errlen, "%s: cannot move the old pack aside: %s", out, strerror(errno));
                rmdir(old);
                goto done;
            }
            if (rename(tmp, out) != 0) {
                int e = errno;
                rename(old, out);
                trlc_fail(err, errlen, "%s: cannot rename %s into place: %s", out, tmp, strerror(e));
                goto done;
            }
            remove_tree(old);
        }
    } else {
        int r = rename2(tmp, out, RENAME_NOREPLACE);
        if (r != 0 && (errno == ENOSYS || errno == EINVAL)) r = rename(tmp, out);
        if (r != 0) {
            trlc_fail(err, errlen, "%s: cannot rename %s into place: %s", out, tmp, strerror(errno));
            goto done;
        }
    }
    fsync_path(parent, 1);
    if (summary) {
        summary->n_tensors = src->n_tensors;
        summary->tensor_bytes = resident - tok.bytes;
        summary->download_bytes = download;
        summary->n_chunks = w.n_chunks;
        summary->n_params = trl_config_n_params(&src->cfg);
    }
    rc = 0;
done:
    if (w.f) fclose(w.f);
    if (rc) remove_tree(tmp);
    free(w.fpath);
    free(w.chunks);
    free(fbuf);
    free(obuf);
    free(manifest);
    free(mpath);
    free(pl);
    return rc;
}
