/* writer.c - the pack writer (docs/FORMAT.md, versions 1 and 2).
 *
 * Plain tensors are converted one row at a time straight into the chunk files,
 * so memory stays at a row or two whatever the model's size; a quantized or
 * factorised linear layer is held whole, one at a time (its scale, its SVD).
 * Version 1 is written unless the pack needs 2 (t2/t1/bcq, rank slices). Everything is
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

/* Chunks are written per tier: each tier has its own open chunk, so a layer's
 * rank slices go straight to their tiers while the layer's SVD is at hand.
 * Files are named part-NNNN.bin as they are created and renamed chunk-NNNN.bin
 * in tier order at the end. */
typedef struct chunk_rec {
    char file[32];
    uint64_t bytes;
    char sha[65];
    int tier;
} chunk_rec;

typedef struct stream {
    FILE *f;
    char *fpath;
    trlc_sha256_ctx sha;
    uint64_t off; /* bytes in the open chunk */
    size_t rec;   /* its chunk_rec */
} stream;

typedef struct writer {
    const char *tmpdir;
    uint64_t limit;
    stream s[TRLC_MAX_VARIANTS];
    chunk_rec *chunks;
    size_t n_chunks, cap_chunks;
    char *err;
    size_t errlen;
} writer;

static int w_close(writer *w, int tier) {
    stream *s = &w->s[tier];
    if (!s->f) return 0;
    int bad = fflush(s->f) != 0 || fsync(fileno(s->f)) != 0;
    int e = errno;
    bad |= fclose(s->f) != 0;
    s->f = NULL;
    if (bad) return trlc_fail(w->err, w->errlen, "%s: write failed: %s", s->fpath, strerror(e ? e : errno));
    chunk_rec *c = &w->chunks[s->rec];
    uint8_t dg[32];
    trlc_sha256_final(&s->sha, dg);
    trlc_sha256_hex(dg, c->sha);
    c->bytes = s->off;
    return 0;
}

static int w_open(writer *w, int tier) {
    stream *s = &w->s[tier];
    if (w->n_chunks == w->cap_chunks) {
        size_t cap = w->cap_chunks ? w->cap_chunks * 2 : 16;
        chunk_rec *c = realloc(w->chunks, cap * sizeof *c);
        if (!c) return trlc_fail(w->err, w->errlen, "out of memory");
        w->chunks = c;
        w->cap_chunks = cap;
    }
    if (w->n_chunks >= 10000) return trlc_fail(w->err, w->errlen, "more than 9999 chunks; raise --chunk-mb");
    chunk_rec *c = &w->chunks[w->n_chunks];
    memset(c, 0, sizeof *c);
    c->tier = tier;
    snprintf(c->file, sizeof c->file, "part-%04zu.bin", w->n_chunks);
    free(s->fpath);
    s->fpath = trlc_path_join(w->tmpdir, c->file);
    if (!s->fpath) return trlc_fail(w->err, w->errlen, "out of memory");
    s->f = fopen(s->fpath, "wbx");
    if (!s->f) return trlc_fail(w->err, w->errlen, "%s: cannot create: %s", s->fpath, strerror(errno));
    s->rec = w->n_chunks++;
    trlc_sha256_init(&s->sha);
    s->off = 0;
    return 0;
}

static int w_write(writer *w, int tier, const void *p, size_t n) {
    stream *s = &w->s[tier];
    if (n && fwrite(p, 1, n, s->f) != n)
        return trlc_fail(w->err, w->errlen, "%s: write failed: %s", s->fpath, strerror(errno));
    trlc_sha256_update(&s->sha, p, n);
    s->off += n;
    return 0;
}

/* Find room for `size` bytes in a tier: 64-aligned in its open chunk if it
 * fits under the limit, else at the start of a new chunk (a tensor larger than
 * the limit gets a chunk of its own). Sets *chunk (creation index) and *offset. */
static int w_place(writer *w, int tier, uint64_t size, size_t *chunk, uint64_t *offset) {
    stream *s = &w->s[tier];
    uint64_t aligned = (s->off + ALIGN - 1) / ALIGN * ALIGN;
    if (s->f && s->off > 0 && (aligned > w->limit || size > w->limit - aligned)) {
        if (w_close(w, tier)) return -1;
    }
    if (!s->f) {
        if (w_open(w, tier)) return -1;
        aligned = 0;
    }
    static const uint8_t zero[ALIGN];
    if (w_write(w, tier, zero, (size_t)(aligned - s->off))) return -1;
    *chunk = s->rec;
    *offset = aligned;
    return 0;
}

/* After a tensor: a full chunk is closed at once, so its file is complete on disk. */
static int w_done(writer *w, int tier) { return w->s[tier].f && w->s[tier].off >= w->limit ? w_close(w, tier) : 0; }

/* ------------------------------------------------------------ output tensors */

typedef struct out_tensor {
    char name[96];
    trl_encoding enc;
    trl_enc_params params;
    int n_dims;
    int64_t shape[2];
    size_t chunk;
    uint64_t offset, bytes;
    int tier;
} out_tensor;

typedef struct out_list {
    out_tensor *v;
    size_t n, cap;
} out_list;

static out_tensor *out_add(out_list *l) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        out_tensor *v = realloc(l->v, cap * sizeof *v);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    out_tensor *t = &l->v[l->n++];
    memset(t, 0, sizeof *t);
    return t;
}

/* --------------------------------------------------------- rank-slice plan */

#define MAX_SLICES 64      /* the core's limit on slices per layer (core/src/model.h) */
#define MAX_SLICE_RANK 256 /* ... and on rows per slice */

/* One linear layer's slices: slice s is rows [b[s], b[s+1]) of the factors, in tier t[s]. */
typedef struct layer_plan {
    int32_t full, rank, n_slices;
    int32_t b[MAX_SLICES + 1];
    uint8_t t[MAX_SLICES];
} layer_plan;

static int is_linear_name(const char *name) {
    static const char *const lin[] = {".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight",
                                      ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"};
    if (strncmp(name, "blk.", 4)) return 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof lin / sizeof *lin; i++) {
        size_t k = strlen(lin[i]);
        if (n > k && !strcmp(name + n - k, lin[i])) return 1;
    }
    return 0;
}

uint32_t trlc_layer_bit(const char *name) {
    static const char *const lin[] = {".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight",
                                      ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"};
    if (!is_linear_name(name)) return 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof lin / sizeof *lin; i++) {
        size_t k = strlen(lin[i]);
        if (n > k && !strcmp(name + n - k, lin[i])) return 1u << i;
    }
    return 0;
}

/* A linear layer the version-2 mode touches (--layers). */
static int selected(const trlc_write_opts *o, const char *name) {
    return (trlc_layer_bit(name) & (o->layers ? o->layers : (uint32_t)TRLC_LAYER_ALL)) != 0;
}

int trlc_parse_layers(const char *s, uint32_t *mask, char *err, size_t errlen) {
    static const struct { const char *name; uint32_t bits; } names[] = {
        {"attn", TRLC_LAYER_ATTN}, {"mlp", TRLC_LAYER_MLP}, {"ffn", TRLC_LAYER_MLP}, {"all", TRLC_LAYER_ALL},
        {"q", TRLC_LAYER_Q}, {"k", TRLC_LAYER_K}, {"v", TRLC_LAYER_V}, {"o", TRLC_LAYER_O},
        {"gate", TRLC_LAYER_GATE}, {"up", TRLC_LAYER_UP}, {"down", TRLC_LAYER_DOWN},
        {"attn_q", TRLC_LAYER_Q}, {"attn_k", TRLC_LAYER_K}, {"attn_v", TRLC_LAYER_V},
        {"attn_output", TRLC_LAYER_O}, {"ffn_gate", TRLC_LAYER_GATE}, {"ffn_up", TRLC_LAYER_UP},
        {"ffn_down", TRLC_LAYER_DOWN}};
    *mask = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p), i;
        for (i = 0; i < sizeof names / sizeof *names; i++)
            if (strlen(names[i].name) == n && !strncmp(p, names[i].name, n)) break;
        if (i == sizeof names / sizeof *names)
            return trlc_fail(err, errlen,
                             "--layers: \"%.*s\" is not attn, mlp or a layer (q, k, v, o, gate, up, down)", (int)n,
                             p);
        *mask |= names[i].bits;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Variant k's rank in a layer of full rank `full`. */
static int64_t variant_rank(const trlc_write_opts *o, double v, int64_t full) {
    int64_t r = o->rank_fractions ? llround(v * (double)full) : (int64_t)v;
    return r < 1 ? 1 : r > full ? full : r;
}

/* Cut every factorised layer's rank into slices (see trlc_pack_write in trlc.h).
 * vals: the n_seg variant values, ascending (ranks or fractions). */
static int plan_slices(const trlc_model_src *src, const trlc_write_opts *o, const double *vals, int n_seg,
                       const char (*ids)[32], layer_plan *lp, int32_t *seg_slices, char *err, size_t errlen) {
    const int64_t R = o->slice_rows;
    int64_t (*r)[TRLC_MAX_VARIANTS] = calloc(src->n_tensors ? src->n_tensors : 1, sizeof *r);
    if (!r) return trlc_fail(err, errlen, "out of memory");
    int rc = -1;
    for (size_t i = 0; i < src->n_tensors; i++) {
        const trlc_src_tensor *t = &src->tensors[i];
        if (!selected(o, t->name)) continue;
        int64_t full = t->shape[0] < t->shape[1] ? t->shape[0] : t->shape[1];
        lp[i].full = (int32_t)full;
        for (int k = 0; k < n_seg; k++) {
            int64_t x = variant_rank(o, vals[k], full);
            /* each variant adds rank to every layer that has rank left */
            if (k > 0 && x <= r[i][k - 1]) x = r[i][k - 1] + 1 <= full ? r[i][k - 1] + 1 : full;
            r[i][k] = x;
        }
    }
    int64_t total = 0;
    for (int k = 0; k < n_seg; k++) {
        int64_t dmax = 0, dmin = INT64_MAX;
        for (size_t i = 0; i < src->n_tensors; i++) {
            if (!lp[i].full) continue;
            int64_t d = r[i][k] - (k ? r[i][k - 1] : 0);
            if (d > dmax) dmax = d;
            if (d > 0 && d < dmin) dmin = d;
        }
        if (dmax == 0) {
            trlc_fail(err, errlen, "--lowrank: variant %s adds no rank to any layer (every layer is at its full rank)",
                      ids[k]);
            goto out;
        }
        int64_t S = (dmax + R - 1) / R;
        if (S > dmin) S = dmin; /* a slice has at least one row in every layer that grows */
        if ((dmax + S - 1) / S > MAX_SLICE_RANK) {
            trlc_fail(err, errlen,
                      "--slice: variant %s needs slices of %lld rows in some layer; the core takes at most %d "
                      "(use closer --lowrank values)",
                      ids[k], (long long)((dmax + S - 1) / S), MAX_SLICE_RANK);
            goto out;
        }
        seg_slices[k] = (int32_t)S;
        total += S;
    }
    if (total > MAX_SLICES) {
        trlc_fail(err, errlen, "--slice: %lld rank slices per layer; the core takes at most %d (raise --slice)",
                  (long long)total, MAX_SLICES);
        goto out;
    }
    for (size_t i = 0; i < src->n_tensors; i++) {
        layer_plan *p = &lp[i];
        if (!p->full) continue;
        int32_t at = 0;
        p->b[0] = 0;
        for (int k = 0; k < n_seg; k++) {
            int64_t d = r[i][k] - (k ? r[i][k - 1] : 0), S = seg_slices[k];
            if (d == 0) continue;
            int even = !((S - 1) * R < d && d <= S * R);
            for (int64_t j = 0; j < S; j++) {
                int64_t len = even ? d / S + (j < d % S) : (j < S - 1 ? R : d - (S - 1) * R);
                p->b[at + 1] = p->b[at] + (int32_t)len;
                p->t[at] = (uint8_t)k;
                at++;
            }
        }
        p->n_slices = at;
        p->rank = p->b[at];
    }
    rc = 0;
out:
    free(r);
    return rc;
}

int trlc_parse_ranks(const char *s, trlc_write_opts *o, char *err, size_t errlen) {
    o->n_ranks = 0;
    int fr = -1;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char tok[64];
        if (n == 0 || n >= sizeof tok)
            return trlc_fail(err, errlen, "--lowrank: \"%s\": expected ranks (64,32) or fractions (0.75,0.5)", s);
        memcpy(tok, p, n);
        tok[n] = 0;
        int is_fr = strchr(tok, '.') != NULL;
        char *end;
        errno = 0;
        double v = is_fr ? strtod(tok, &end) : (double)strtol(tok, &end, 10);
        if (errno || *end || end == tok || (is_fr ? !(v > 0.0 && v <= 1.0) : !(v >= 1 && v <= (1 << 30))))
            return trlc_fail(err, errlen, "--lowrank: \"%s\" is not a rank (1, 2, ...) or a fraction in (0, 1]", tok);
        if (fr >= 0 && fr != is_fr)
            return trlc_fail(err, errlen, "--lowrank: \"%s\": give all ranks or all fractions, not both", s);
        fr = is_fr;
        if (o->n_ranks == TRLC_MAX_VARIANTS)
            return trlc_fail(err, errlen, "--lowrank: more than %d values", TRLC_MAX_VARIANTS);
        for (int i = 0; i < o->n_ranks; i++)
            if (o->ranks[i] == v) return trlc_fail(err, errlen, "--lowrank: %s appears twice", tok);
        o->ranks[o->n_ranks++] = v;
        if (!e) break;
        p = e + 1;
    }
    o->rank_fractions = fr;
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

static int dense_enc(trl_encoding e) { return e == TRL_ENC_F32 || e == TRL_ENC_F16 || e == TRL_ENC_Q8_0; }

/* "params": only the non-zero members (docs/FORMAT.md: absent members are 0). */
static void put_params(trlc_buf *b, const trl_enc_params *p) {
    const char *names[5] = {"bits", "group", "pow2", "scale_axis", "scale_blocks"};
    const int32_t vals[5] = {p->bits, p->group, p->pow2, p->scale_axis, p->scale_blocks};
    trlc_buf_puts(b, ", \"params\": {");
    int first = 1;
    for (int i = 0; i < 5; i++)
        if (vals[i]) {
            trlc_buf_printf(b, "%s\"%s\": %d", first ? " " : ", ", names[i], (int)vals[i]);
            first = 0;
        }
    trlc_buf_puts(b, first ? "}" : " }");
}

/* strlcpy (not in C11): a truncated copy, always terminated. */
static void copy_str(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

typedef struct variant_rec {
    char id[32];
    uint32_t tiers;      /* bit t: tier t */
    int32_t rank_slices; /* -1: the pack has none */
    uint64_t download, resident;
    double ppl;          /* 0: not measured */
} variant_rec;

static char *build_manifest(const trlc_model_src *src, const char *name, int version, const out_tensor *tok,
                            const out_list *outs, const writer *w, const variant_rec *vr, int n_var,
                            uint64_t ctx_bytes, const trlc_calib *calib) {
    const trl_config *c = &src->cfg;
    trlc_buf b = {0};
    trlc_buf_puts(&b, "{\n  \"format\": \"trillium-pack\",\n");
    trlc_buf_printf(&b, "  \"version\": %d,\n  \"name\": ", version);
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
    if (calib && calib->parent_ppl > 0.0)
        trlc_buf_printf(&b,
                        "  \"calibration\": { \"text_sha256\": \"%s\", \"tokens\": %d, \"parent_perplexity\": %.9g },\n",
                        calib->text_sha256, (int)calib->n_ids, calib->parent_ppl);
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
    for (size_t i = 0; i < outs->n; i++) {
        const out_tensor *t = &outs->v[i];
        trlc_buf_puts(&b, "    { \"name\": ");
        trlc_buf_json_str(&b, t->name, strlen(t->name));
        trlc_buf_printf(&b, ", \"encoding\": \"%s\", \"shape\": ", trl_encoding_name(t->enc));
        if (t->n_dims == 2) trlc_buf_printf(&b, "[%lld, %lld]", (long long)t->shape[0], (long long)t->shape[1]);
        else trlc_buf_printf(&b, "[%lld]", (long long)t->shape[0]);
        if (!dense_enc(t->enc)) put_params(&b, &t->params);
        trlc_buf_printf(&b, ", \"chunk\": %zu, \"offset\": %llu, \"bytes\": %llu }%s\n", t->chunk,
                        (unsigned long long)t->offset, (unsigned long long)t->bytes, i + 1 < outs->n ? "," : "");
    }
    trlc_buf_puts(&b, "  ],\n  \"chunks\": [\n");
    for (size_t i = 0; i < w->n_chunks; i++)
        trlc_buf_printf(&b, "    { \"file\": \"%s\", \"bytes\": %llu, \"sha256\": \"%s\", \"tier\": %d }%s\n",
                        w->chunks[i].file, (unsigned long long)w->chunks[i].bytes, w->chunks[i].sha,
                        w->chunks[i].tier, i + 1 < w->n_chunks ? "," : "");
    trlc_buf_puts(&b, "  ],\n  \"variants\": [\n");
    for (int k = 0; k < n_var; k++) {
        trlc_buf_puts(&b, "    { \"id\": ");
        trlc_buf_json_str(&b, vr[k].id, strlen(vr[k].id));
        trlc_buf_puts(&b, ", \"tiers\": [");
        for (int t = 0, first = 1; t < TRLC_MAX_VARIANTS; t++)
            if (vr[k].tiers >> t & 1) trlc_buf_printf(&b, first ? "%d" : ", %d", t), first = 0;
        trlc_buf_puts(&b, "], ");
        if (vr[k].rank_slices >= 0) trlc_buf_printf(&b, "\"rank_slices\": %d, ", (int)vr[k].rank_slices);
        trlc_buf_printf(&b,
                        "\"download_bytes\": %llu, \"resident_bytes\": %llu,\n      \"context_bytes\": { \"%d\": "
                        "%llu }",
                        (unsigned long long)vr[k].download, (unsigned long long)vr[k].resident, c->max_seq_len,
                        (unsigned long long)ctx_bytes);
        if (calib && vr[k].ppl > 0.0)
            trlc_buf_printf(&b,
                            ",\n      \"perplexity\": { \"text_sha256\": \"%s\", \"tokens\": %d, \"value\": %.9g }",
                            calib->text_sha256, (int)calib->n_ids, vr[k].ppl);
        trlc_buf_printf(&b, " }%s\n", k + 1 < n_var ? "," : "");
    }
    trlc_buf_puts(&b, "  ]\n}\n");
    if (b.oom) {
        trlc_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ------------------------------------------------------------ the writer */

/* Convert one tensor row by row into the open chunk of tier 0. A GGUF Q8_0
 * tensor written as q8_0 is copied block for block: the same layout. */
static int write_dense(writer *w, int tier, const trlc_src_tensor *t, trl_encoding enc, float *fbuf, void *obuf) {
    uint64_t rows = t->n_dims == 2 ? (uint64_t)t->shape[0] : 1;
    uint64_t cols = t->n_dims == 2 ? (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
    uint64_t srb = trlc_dtype_row_bytes(t->dtype, cols);
    size_t rb = trl_encoding_row_bytes(enc, cols);
    int copy = enc == TRL_ENC_Q8_0 && t->dtype == TRLC_DT_Q8_0 && srb == rb;
    for (uint64_t r = 0; r < rows; r++) {
        const uint8_t *row = t->data + r * srb;
        if (copy) {
            for (uint64_t b = 0; b < cols / 32; b++)
                if ((row[34 * b + 1] & 0x7C) == 0x7C) /* f16 exponent all ones */
                    return trlc_fail(w->err, w->errlen, "%s: row %llu, block %llu: the scale is %s; the file is broken",
                                     t->origin, (unsigned long long)r, (unsigned long long)b,
                                     (row[34 * b + 1] & 0x03) || row[34 * b] ? "NaN" : "infinite");
            if (w_write(w, tier, row, rb)) return -1;
            continue;
        }
        if (trlc_dtype_to_f32(t->dtype, row, (size_t)cols, fbuf))
            return trlc_fail(w->err, w->errlen, "%s: dtype %s cannot be converted", t->origin,
                             trlc_dtype_name(t->dtype));
        for (uint64_t i = 0; i < cols; i++)
            if (!isfinite(fbuf[i]))
                return trlc_fail(w->err, w->errlen, "%s: row %llu, column %llu: %s value; the checkpoint is broken",
                                 t->origin, (unsigned long long)r, (unsigned long long)i,
                                 isnan(fbuf[i]) ? "NaN" : "infinite");
        if (trl_encode_row(enc, fbuf, cols, obuf) != TRL_OK)
            return trlc_fail(w->err, w->errlen, "%s: cannot encode as %s", t->origin, trl_encoding_name(enc));
        if (w_write(w, tier, obuf, rb)) return -1;
    }
    return 0;
}

/* A whole matrix as f32 (malloc'd), every value checked finite. */
static float *load_matrix(writer *w, const trlc_src_tensor *t) {
    uint64_t rows = (uint64_t)t->shape[0], cols = (uint64_t)t->shape[1];
    uint64_t srb = trlc_dtype_row_bytes(t->dtype, cols);
    float *m = malloc((size_t)(rows * cols) * sizeof *m);
    if (!m) {
        trlc_fail(w->err, w->errlen, "%s: out of memory for a %llu x %llu matrix", t->origin,
                  (unsigned long long)rows, (unsigned long long)cols);
        return NULL;
    }
    for (uint64_t r = 0; r < rows; r++) {
        float *x = m + r * cols;
        if (trlc_dtype_to_f32(t->dtype, t->data + r * srb, (size_t)cols, x)) {
            trlc_fail(w->err, w->errlen, "%s: dtype %s cannot be converted", t->origin, trlc_dtype_name(t->dtype));
            free(m);
            return NULL;
        }
        for (uint64_t i = 0; i < cols; i++)
            if (!isfinite(x[i])) {
                trlc_fail(w->err, w->errlen, "%s: row %llu, column %llu: %s value; the checkpoint is broken",
                          t->origin, (unsigned long long)r, (unsigned long long)i, isnan(x[i]) ? "NaN" : "infinite");
                free(m);
                return NULL;
            }
    }
    return m;
}

/* Place and write one in-memory tensor. */
static int emit(writer *w, out_list *outs, const char *name, trl_encoding enc, const trl_enc_params *p, int64_t rows,
                int64_t cols, const void *data, uint64_t bytes, int tier) {
    out_tensor *o = out_add(outs);
    if (!o) return trlc_fail(w->err, w->errlen, "out of memory");
    snprintf(o->name, sizeof o->name, "%s", name);
    o->enc = enc;
    if (p) o->params = *p;
    o->n_dims = 2;
    o->shape[0] = rows;
    o->shape[1] = cols;
    o->bytes = bytes;
    o->tier = tier;
    if (w_place(w, tier, bytes, &o->chunk, &o->offset) || w_write(w, tier, data, (size_t)bytes)) return -1;
    return w_done(w, tier);
}

/* Rank slices of m (rows x cols) as planned in lp, written to their tiers.
 * Returns the squared Frobenius norm the slices leave unexplained (from the
 * singular values) in *rest2, or -1. */
static int write_slices(writer *w, out_list *outs, const trlc_src_tensor *t, const float *m, const layer_plan *lp,
                        trl_encoding enc, double norm2, double *rest2) {
    const uint64_t rows = (uint64_t)t->shape[0], cols = (uint64_t)t->shape[1], kmin = rows < cols ? rows : cols;
    const uint64_t rank = (uint64_t)lp->rank;
    float *vt = malloc((size_t)(rank * cols) * sizeof *vt), *ut = malloc((size_t)(rank * rows) * sizeof *ut);
    double *sigma = malloc((size_t)kmin * sizeof *sigma);
    size_t rbv = trl_encoding_row_bytes(enc, cols), rbu = trl_encoding_row_bytes(enc, rows);
    uint8_t *buf = malloc((size_t)MAX_SLICE_RANK * (rbv > rbu ? rbv : rbu));
    int rc = -1;
    if (!vt || !ut || !sigma || !buf) {
        trlc_fail(w->err, w->errlen, "%s: out of memory for rank %llu factors", t->origin, (unsigned long long)rank);
        goto out;
    }
    char lerr[256];
    if (trlc_lowrank(m, rows, cols, rank, vt, ut, sigma, lerr, sizeof lerr)) {
        trlc_fail(w->err, w->errlen, "%s: %s", t->origin, lerr);
        goto out;
    }
    double kept = 0.0;
    for (uint64_t i = 0; i < rank; i++) kept += sigma[i] * sigma[i];
    *rest2 = norm2 - kept > 0.0 ? norm2 - kept : 0.0;
    /* "blk.N.X.weight" -> "blk.N.X" */
    char base[80];
    snprintf(base, sizeof base, "%.*s", (int)(strlen(t->name) - strlen(".weight")), t->name);
    for (int32_t s = 0; s < lp->n_slices; s++) {
        const uint64_t r0 = (uint64_t)lp->b[s], rs = (uint64_t)(lp->b[s + 1] - lp->b[s]);
        char name[96];
        for (int uv = 0; uv < 2; uv++) {
            const uint64_t len = uv ? rows : cols; /* lr_v: [r, in]; lr_u: [r, out] */
            const size_t rb = uv ? rbu : rbv;
            const float *src = (uv ? ut : vt) + r0 * len;
            for (uint64_t i = 0; i < rs; i++)
                if (trl_encode_row(enc, src + i * len, len, buf + i * rb) != TRL_OK) {
                    trlc_fail(w->err, w->errlen, "%s: slice %d: cannot encode as %s (a factor overflows?)", t->origin,
                              (int)s, trl_encoding_name(enc));
                    goto out;
                }
            snprintf(name, sizeof name, "%s.lr_%c.%d", base, uv ? 'u' : 'v', (int)s);
            if (emit(w, outs, name, enc, NULL, (int64_t)rs, (int64_t)len, buf, (uint64_t)(rs * rb), lp->t[s]))
                goto out;
        }
    }
    rc = 0;
out:
    free(vt);
    free(ut);
    free(sigma);
    free(buf);
    return rc;
}

/* A linear layer in a version-2 mode: quantized base (ternary / bcq) and/or rank slices. */
static int write_linear(writer *w, int tier, out_list *outs, const trlc_src_tensor *t, const trlc_write_opts *o,
                        const layer_plan *lp, const trlc_calib *calib) {
    const uint64_t rows = (uint64_t)t->shape[0], cols = (uint64_t)t->shape[1];
    float *m = load_matrix(w, t);
    if (!m) return -1;
    trlc_tensor_report rep;
    memset(&rep, 0, sizeof rep);
    rep.name = t->name;
    rep.out_rel_error = -1.0;
    /* column weights: E[x_c^2] of the layer's input on the calibration text */
    const float *d = trlc_calib_col_weights(calib, t->name, cols);
    double dnorm2 = 0.0, dbase2 = 0.0;
    if (d)
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t c = 0; c < cols; c++) dnorm2 += (double)d[c] * m[r * cols + c] * m[r * cols + c];
    rep.full_rank = (int32_t)(rows < cols ? rows : cols);
    double norm2 = 0.0;
    for (uint64_t i = 0; i < rows * cols; i++) norm2 += (double)m[i] * m[i];
    int8_t *trits = NULL, *signs = NULL;
    float *scales = NULL;
    uint8_t *buf = NULL;
    int rc = -1;
    double base2 = norm2; /* what the base leaves: all of W when there is none */
    if (o->linear == TRLC_LINEAR_TERNARY || o->linear == TRLC_LINEAR_BCQ) {
        trl_enc_params p;
        trl_encoding enc;
        size_t bytes;
        if (o->linear == TRLC_LINEAR_TERNARY) {
            enc = o->ternary_encoding;
            trits = malloc((size_t)(rows * cols));
            scales = malloc((size_t)rows * sizeof *scales);
            if (!trits || !scales ||
                trlc_ternary_quantize(m, rows, cols, o->ternary_scale, trits, scales, &p, &rep.lossless)) {
                trlc_fail(w->err, w->errlen, "%s: out of memory quantizing", t->origin);
                goto out;
            }
            bytes = trl_tensor_bytes(enc, &p, rows, cols);
            int64_t ns = p.scale_axis == TRL_SCALE_TENSOR ? 1 : p.scale_axis == TRL_SCALE_ROW ? (int64_t)rows
                                                                                                 : p.scale_blocks;
            if (!bytes || !(buf = malloc(bytes))) {
                trlc_fail(w->err, w->errlen, "%s: cannot size or allocate the %s tensor", t->origin,
                          trl_encoding_name(enc));
                goto out;
            }
            trl_ternary_pack(enc, trits, rows, cols, buf);
            memcpy(buf + bytes - (size_t)ns * 4, scales, (size_t)ns * 4);
            /* m becomes the residual W - s T */
            base2 = 0.0;
            for (uint64_t r = 0; r < rows; r++)
                for (uint64_t c = 0; c < cols; c++) {
                    float q = trlc_ternary_scale_at(&p, scales, rows, cols, r, c) * (float)trits[r * cols + c];
                    float e = m[r * cols + c] - q;
                    m[r * cols + c] = e;
                    base2 += (double)e * e;
                    if (d) dbase2 += (double)d[c] * e * e;
                }
        } else {
            enc = TRL_ENC_BCQ;
            memset(&p, 0, sizeof p);
            p.bits = o->bcq.bits, p.group = o->bcq.group, p.pow2 = o->bcq.pow2;
            bytes = trl_tensor_bytes(enc, &p, rows, cols);
            size_t rb = bytes / rows;
            uint64_t ng = (cols + (uint64_t)p.group - 1) / (uint64_t)p.group;
            signs = malloc((size_t)(cols * (uint64_t)p.bits));
            scales = malloc((size_t)(ng * (uint64_t)p.bits + cols) * sizeof *scales); /* scales, then a row */
            if (!bytes || !signs || !scales || !(buf = malloc(bytes))) {
                trlc_fail(w->err, w->errlen, "%s: cannot size or allocate the bcq tensor", t->origin);
                goto out;
            }
            float *deq = scales + ng * (uint64_t)p.bits;
            base2 = 0.0;
            for (uint64_t r = 0; r < rows; r++) {
                float *x = m + r * cols;
                if (trlc_bcq_quantize_row_weighted(x, d, cols, &p, signs, scales, deq) ||
                    trl_bcq_pack_row(&p, signs, scales, cols, buf + r * rb) != TRL_OK) {
                    trlc_fail(w->err, w->errlen, "%s: row %llu: bcq quantization failed", t->origin,
                              (unsigned long long)r);
                    goto out;
                }
                for (uint64_t c = 0; c < cols; c++) {
                    x[c] -= deq[c];
                    base2 += (double)x[c] * x[c];
                    if (d) dbase2 += (double)d[c] * x[c] * x[c];
                }
            }
        }
        rep.encoding = enc;
        rep.params = p;
        if (emit(w, outs, t->name, enc, &p, (int64_t)rows, (int64_t)cols, buf, bytes, tier)) goto out;
    } else {
        rep.encoding = o->matrix_encoding;
    }
    rep.base_rel_error = norm2 > 0.0 ? sqrt(base2 / norm2) : 0.0;
    if (d && (o->linear == TRLC_LINEAR_TERNARY || o->linear == TRLC_LINEAR_BCQ)) rep.out_rel_error = dnorm2 > 0.0 ? sqrt(dbase2 / dnorm2) : 0.0;
    double rest2 = base2;
    if (lp->n_slices) {
        if (write_slices(w, outs, t, m, lp, o->matrix_encoding, base2, &rest2)) goto out;
        rep.rank = lp->rank;
        rep.n_slices = lp->n_slices;
    }
    rep.rel_error = norm2 > 0.0 ? sqrt(rest2 / norm2) : 0.0;
    if (o->on_tensor) o->on_tensor(o->user, &rep);
    rc = 0;
out:
    free(m);
    free(trits);
    free(signs);
    free(scales);
    free(buf);
    return rc;
}

/* A GGUF TQ1_0 / TQ2_0 linear layer (keep_quant): its own trits and scales as
 * t2 / t1. ggml's blocks carry one f16 scale per 256 weights; the pack has one
 * per tensor, row block, column block or row, so the block scales must fit
 * one of those: the lossless detection of trlc_ternary_quantize finds which
 * (every value d * t is exact in f32). Returns 1, having written nothing,
 * when none fits. */
static int write_tq(writer *w, int tier, out_list *outs, const trlc_src_tensor *t, const trlc_write_opts *o) {
    const uint64_t rows = (uint64_t)t->shape[0], cols = (uint64_t)t->shape[1];
    float *m = load_matrix(w, t);
    if (!m) return -1;
    int8_t *trits = malloc((size_t)(rows * cols));
    float *scales = malloc((size_t)rows * sizeof *scales);
    uint8_t *buf = NULL;
    trl_enc_params p;
    int lossless = 0, rc = -1;
    if (!trits || !scales || trlc_ternary_quantize(m, rows, cols, TRL_SCALE_ROW, trits, scales, &p, &lossless)) {
        trlc_fail(w->err, w->errlen, "%s: out of memory reading the ternary weights", t->origin);
        goto out;
    }
    if (!lossless) {
        rc = 1;
        goto out;
    }
    trl_encoding enc = o->ternary_encoding == TRL_ENC_T1 ? TRL_ENC_T1 : TRL_ENC_T2;
    size_t bytes = trl_tensor_bytes(enc, &p, rows, cols);
    size_t ns = p.scale_axis == TRL_SCALE_TENSOR ? 1 : p.scale_axis == TRL_SCALE_ROW ? (size_t)rows : (size_t)p.scale_blocks;
    if (!bytes || !(buf = malloc(bytes))) {
        trlc_fail(w->err, w->errlen, "%s: cannot size or allocate the %s tensor", t->origin, trl_encoding_name(enc));
        goto out;
    }
    trl_ternary_pack(enc, trits, rows, cols, buf);
    memcpy(buf + bytes - ns * 4, scales, ns * 4);
    if (emit(w, outs, t->name, enc, &p, (int64_t)rows, (int64_t)cols, buf, bytes, tier)) goto out;
    if (o->on_tensor) {
        trlc_tensor_report rep;
        memset(&rep, 0, sizeof rep);
        rep.name = t->name;
        rep.encoding = enc;
        rep.params = p;
        rep.lossless = 1;
        rep.full_rank = (int32_t)(rows < cols ? rows : cols);
        o->on_tensor(o->user, &rep);
    }
    rc = 0;
out:
    free(m);
    free(trits);
    free(scales);
    free(buf);
    return rc;
}

/* A tensor is written: its pages of the source mapping can go (trlc_file_release). */
static void release_tensor(const trlc_model_src *src, const trlc_src_tensor *t) { trlc_source_release(src, t); }

static const trlc_src_tensor *find_tensor(const trlc_model_src *src, const char *name) {
    for (size_t i = 0; i < src->n_tensors; i++)
        if (!strcmp(src->tensors[i].name, name)) return &src->tensors[i];
    return NULL;
}

static int check_source(const trlc_model_src *src, uint64_t *max_cols, char *err, size_t errlen);

/* --family: every member has src's config and tokenizer, and the same bytes in
 * every tensor that is not a linear layer (embeddings, norms, head). */
static int check_family(const trlc_model_src *src, const trlc_write_opts *o, char *err, size_t errlen) {
    if (o->n_family < 1 || o->n_family + 1 > TRLC_MAX_VARIANTS - 1 || !o->family || !o->family_ids)
        return trlc_fail(err, errlen, "--family: 2 to %d members", TRLC_MAX_VARIANTS - 1);
    if (o->linear == TRLC_LINEAR_LOWRANK || o->residual_rank)
        return trlc_fail(err, errlen, "--family: the members are the variants; --lowrank / --residual-rank do not combine with it");
    for (int k = 0; k <= o->n_family; k++) {
        const char *id = o->family_ids[k];
        if (!id || !*id || strlen(id) >= 32) return trlc_fail(err, errlen, "--family: member %d: the id must be 1 to 31 bytes", k);
        for (int j = 0; j < k; j++)
            if (!strcmp(id, o->family_ids[j])) return trlc_fail(err, errlen, "--family: id \"%s\" is given twice", id);
    }
    for (int k = 0; k < o->n_family; k++) {
        const trlc_model_src *m = o->family[k];
        uint64_t mc;
        if (check_source(m, &mc, err, errlen)) return -1;
        if (memcmp(&m->cfg, &src->cfg, sizeof m->cfg))
            return trlc_fail(err, errlen, "--family: %s: config differs from %s's (a family shares every dimension)",
                             m->source, src->source);
        if (m->tok.len != src->tok.len || memcmp(m->tok.blob, src->tok.blob, src->tok.len))
            return trlc_fail(err, errlen, "--family: %s: tokenizer differs from %s's", m->source, src->source);
        for (size_t i = 0; i < src->n_tensors; i++) {
            const trlc_src_tensor *a = &src->tensors[i], *b = find_tensor(m, a->name);
            if (!b) return trlc_fail(err, errlen, "--family: %s: missing tensor %s", m->source, a->name);
            if (is_linear_name(a->name)) continue;
            if (a->dtype != b->dtype || a->nbytes != b->nbytes || memcmp(a->data, b->data, a->nbytes))
                return trlc_fail(err, errlen,
                                 "--family: %s: tensor %s differs from %s's; members share embeddings, norms and head",
                                 b->origin, a->name, src->source);
        }
    }
    return 0;
}

/* Check the source before touching the disk. */
static int check_source(const trlc_model_src *src, uint64_t *max_cols, char *err, size_t errlen) {
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
        uint64_t want, srb = trlc_dtype_row_bytes(t->dtype, cols), numel;
        if (!srb || trlc_mul_u64(rows, srb, &want) || trlc_mul_u64(rows, cols, &numel) || numel > SIZE_MAX / 8) {
            uint32_t bk;
            trlc_dtype_block(t->dtype, &bk, NULL);
            if (!srb && bk > 1 && cols % bk)
                trlc_fail(err, errlen, "%s: %llu columns are not whole %s blocks of %u", t->origin,
                          (unsigned long long)cols, trlc_dtype_name(t->dtype), bk);
            else trlc_fail(err, errlen, "%s: size overflows", t->origin);
            goto out;
        }
        if (want != t->nbytes) {
            trlc_fail(err, errlen, "%s: %zu bytes of data, shape needs %llu", t->origin, t->nbytes,
                      (unsigned long long)want);
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

static int check_opts(const trlc_write_opts *o, char *err, size_t errlen) {
    if (!dense_enc(o->matrix_encoding))
        return trlc_fail(err, errlen, "matrix encoding %s is not supported (f32, f16, q8_0 are)",
                         trl_encoding_name(o->matrix_encoding));
    if (o->embed_encoding >= 0 && !dense_enc((trl_encoding)o->embed_encoding))
        return trlc_fail(err, errlen, "--embed: %s is not f32, f16 or q8_0", trl_encoding_name((trl_encoding)o->embed_encoding));
    if (o->head_encoding >= 0 && !dense_enc((trl_encoding)o->head_encoding))
        return trlc_fail(err, errlen, "--head: %s is not f32, f16 or q8_0", trl_encoding_name((trl_encoding)o->head_encoding));
    if (o->layers & ~(uint32_t)TRLC_LAYER_ALL) return trlc_fail(err, errlen, "--layers: unknown layer bits");
    if (o->chunk_bytes < ALIGN)
        return trlc_fail(err, errlen, "chunk size %llu is too small", (unsigned long long)o->chunk_bytes);
    switch (o->linear) {
    case TRLC_LINEAR_DENSE: break;
    case TRLC_LINEAR_TERNARY:
        if (o->ternary_encoding != TRL_ENC_T2 && o->ternary_encoding != TRL_ENC_T1)
            return trlc_fail(err, errlen, "--ternary-layout: %s is not t2 or t1", trl_encoding_name(o->ternary_encoding));
        if (o->ternary_scale != TRL_SCALE_TENSOR && o->ternary_scale != TRL_SCALE_ROW)
            return trlc_fail(err, errlen, "--ternary-scale: axis %d is not tensor or row", (int)o->ternary_scale);
        break;
    case TRLC_LINEAR_BCQ: {
        trl_enc_params p = {o->bcq.bits, o->bcq.group, o->bcq.pow2, 0, 0};
        trl_error e;
        if (trl_enc_params_check(TRL_ENC_BCQ, &p, 1, (uint64_t)(p.group > 0 ? p.group : 1), &e) != TRL_OK)
            return trlc_fail(err, errlen, "--bcq: %s", e.msg);
        break;
    }
    case TRLC_LINEAR_LOWRANK:
        if (o->n_ranks < 1 || o->n_ranks > TRLC_MAX_VARIANTS)
            return trlc_fail(err, errlen, "--lowrank: give 1 to %d ranks", TRLC_MAX_VARIANTS);
        for (int i = 0; i < o->n_ranks; i++)
            if (!(o->rank_fractions ? o->ranks[i] > 0.0 && o->ranks[i] <= 1.0
                                    : o->ranks[i] >= 1.0 && o->ranks[i] <= (double)(1 << 30) &&
                                          o->ranks[i] == floor(o->ranks[i])))
                return trlc_fail(err, errlen, "--lowrank: %g is not a %s", o->ranks[i],
                                 o->rank_fractions ? "fraction in (0, 1]" : "positive integer rank");
        if (o->residual_rank)
            return trlc_fail(err, errlen, "--residual-rank goes with --ternary or --bcq, not --lowrank");
        break;
    default: return trlc_fail(err, errlen, "unknown linear-layer mode %d", (int)o->linear);
    }
    if (o->residual_rank < 0 || (o->residual_rank && o->linear != TRLC_LINEAR_TERNARY && o->linear != TRLC_LINEAR_BCQ))
        return trlc_fail(err, errlen, "--residual-rank needs --ternary or --bcq");
    if ((o->linear == TRLC_LINEAR_LOWRANK || o->residual_rank) && (o->slice_rows < 1 || o->slice_rows > MAX_SLICE_RANK))
        return trlc_fail(err, errlen, "--slice: %d is not 1..%d", (int)o->slice_rows, MAX_SLICE_RANK);
    if ((o->linear == TRLC_LINEAR_LOWRANK || o->residual_rank) && !trlc_have_lapack())
        return trlc_fail(err, errlen,
                         "low-rank factorisation needs LAPACK: this trillium-convert was built without LAPACKE "
                         "(install liblapacke-dev and rebuild)");
    return 0;
}

/* Rename part-NNNN.bin to chunk-NNNN.bin in tier order (stable), and renumber
 * what points at chunks. */
static int order_chunks(writer *w, out_list *outs, out_tensor *tok) {
    size_t n = w->n_chunks;
    size_t *newidx = malloc((n ? n : 1) * sizeof *newidx);
    chunk_rec *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!newidx || !sorted) {
        free(newidx);
        free(sorted);
        return trlc_fail(w->err, w->errlen, "out of memory");
    }
    size_t at = 0;
    for (int t = 0; t < TRLC_MAX_VARIANTS; t++)
        for (size_t i = 0; i < n; i++)
            if (w->chunks[i].tier == t) newidx[i] = at, sorted[at++] = w->chunks[i];
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char *from = trlc_path_join(w->tmpdir, sorted[i].file);
        snprintf(sorted[i].file, sizeof sorted[i].file, "chunk-%04zu.bin", i);
        char *to = trlc_path_join(w->tmpdir, sorted[i].file);
        if (!from || !to) rc = trlc_fail(w->err, w->errlen, "out of memory");
        else if (rename(from, to)) rc = trlc_fail(w->err, w->errlen, "%s: cannot rename: %s", from, strerror(errno));
        free(from);
        free(to);
    }
    if (!rc) {
        memcpy(w->chunks, sorted, n * sizeof *sorted);
        for (size_t i = 0; i < outs->n; i++) outs->v[i].chunk = newidx[outs->v[i].chunk];
        tok->chunk = newidx[tok->chunk];
    }
    free(newidx);
    free(sorted);
    return rc;
}

trlc_write_opts trlc_write_default_opts(void) {
    trlc_write_opts o;
    memset(&o, 0, sizeof o);
    o.matrix_encoding = TRL_ENC_F32;
    o.chunk_bytes = 4u << 20;
    o.linear = TRLC_LINEAR_DENSE;
    o.ternary_encoding = TRL_ENC_T2;
    o.ternary_scale = TRL_SCALE_TENSOR;
    o.bcq.bits = 2;
    o.bcq.group = 128;
    o.slice_rows = 16;
    o.keep_quant = 1;
    o.embed_encoding = -1;
    o.head_encoding = -1;
    o.calib_tokens = 512;
    o.calib_weights = 1;
    return o;
}

int trlc_pack_write(const trlc_model_src *src, const char *out_dir, const trlc_write_opts *opts,
                    trlc_write_summary *summary, char *err, size_t errlen) {
    trlc_write_opts o = opts ? *opts : trlc_write_default_opts();
    if (check_opts(&o, err, errlen)) return -1;
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

    uint64_t max_cols;
    if (check_source(src, &max_cols, err, errlen)) return -1;
    if (o.n_family && check_family(src, &o, err, errlen)) return -1;
    if (o.head_encoding >= 0 && src->cfg.tied_embeddings)
        return trlc_fail(err, errlen,
                         "--head: %s ties its output head to the embeddings (no output.weight); use --embed",
                         src->source);
    const char *name = o.name ? o.name : src->name;

    /* the variants and, for factorised layers, the slices of each */
    int n_seg = 0; /* rank segments (= tiers) */
    double vals[TRLC_MAX_VARIANTS];
    char ids[TRLC_MAX_VARIANTS][32];
    int32_t seg_slices[TRLC_MAX_VARIANTS] = {0};
    if (o.linear == TRLC_LINEAR_LOWRANK) {
        n_seg = o.n_ranks;
        memcpy(vals, o.ranks, sizeof(double) * (size_t)n_seg);
        qsort(vals, (size_t)n_seg, sizeof *vals, cmp_double);
        for (int k = 0; k < n_seg; k++) {
            if (k && vals[k] == vals[k - 1]) return trlc_fail(err, errlen, "--lowrank: %g appears twice", vals[k]);
            snprintf(ids[k], sizeof ids[k], o.rank_fractions ? "r%g" : "r%.0f", vals[k]);
        }
    } else if (o.residual_rank) {
        n_seg = 1;
        vals[0] = o.residual_rank;
        o.rank_fractions = 0;
        snprintf(ids[0], sizeof ids[0], "base");
    }
    layer_plan *lp = calloc(src->n_tensors ? src->n_tensors : 1, sizeof *lp);
    if (!lp) return trlc_fail(err, errlen, "out of memory");
    if (n_seg && plan_slices(src, &o, vals, n_seg, (const char(*)[32])ids, lp, seg_slices, err, errlen)) {
        free(lp);
        return -1;
    }
    int version = o.n_family ? 3 : o.linear != TRLC_LINEAR_DENSE || n_seg ? 2 : 1;

    /* like mkdir -p: create missing parents of the output directory */
    for (size_t i = 1; i < pn; i++) {
        if (parent[i] != '/') continue;
        parent[i] = 0;
        if (mkdir(parent, 0777) && errno != EEXIST) {
            int e = errno;
            parent[i] = '/';
            free(lp);
            return trlc_fail(err, errlen, "%s: cannot create the output's parent directory: %s", parent, strerror(e));
        }
        parent[i] = '/';
    }
    char tmp[8192 + 64], prefix[8192];
    snprintf(prefix, sizeof prefix, "%s.%s.tmp-", parent, base);
    if (make_unique_dir(tmp, sizeof tmp, prefix)) {
        free(lp);
        return trlc_fail(err, errlen, "%s: cannot create a temporary directory: %s", parent, strerror(errno));
    }
    writer w;
    memset(&w, 0, sizeof w);
    w.tmpdir = tmp;
    w.limit = o.chunk_bytes;
    w.err = err;
    w.errlen = errlen;
    out_list outs = {0};
    float *fbuf = malloc((size_t)max_cols * sizeof(float));
    void *obuf = malloc(trl_encoding_row_bytes(TRL_ENC_F32, max_cols));
    char *manifest = NULL, *mpath = NULL;
    trlc_calib *calib = NULL;
    trlc_pack *tp = NULL;
    int rc = -1;
    if (!fbuf || !obuf) {
        trlc_fail(err, errlen, "out of memory for a row of %llu weights", (unsigned long long)max_cols);
        goto done;
    }
    if (o.calib_path) {
        /* the source over the text: the parent's perplexity, and activation statistics for bcq */
        if (trlc_calib_open(src, o.calib_path, o.calib_tokens > 0 ? o.calib_tokens : 512, &calib, err, errlen) ||
            trlc_calib_run_source(src, calib, o.linear == TRLC_LINEAR_BCQ && o.calib_weights, o.on_progress, o.user, err, errlen))
            goto done;
    }
    out_tensor tok;
    memset(&tok, 0, sizeof tok);
    tok.bytes = src->tok.len;
    if (w_place(&w, 0, tok.bytes, &tok.chunk, &tok.offset) || w_write(&w, 0, src->tok.blob, src->tok.len) ||
        w_done(&w, 0))
        goto done;
    const int n_mem = 1 + o.n_family;
    const uint64_t n_steps = (uint64_t)src->n_tensors * (uint64_t)n_mem;
    for (size_t step = 0; step < n_steps; step++) {
        /* family members one after another: member m's linear layers go to tier
         * 1 + m; the rest (shared, checked equal) is written once, from src */
        const int mem = (int)(step / src->n_tensors);
        const size_t i = step % src->n_tensors;
        const trlc_model_src *ms = mem ? o.family[mem - 1] : src;
        const int fam_linear = o.n_family && is_linear_name(src->tensors[i].name);
        if (mem && !fam_linear) continue;
        const trlc_src_tensor *t = mem ? find_tensor(ms, src->tensors[i].name) : &src->tensors[i];
        const int tier = fam_linear ? 1 + mem : 0;
        if (o.on_progress) o.on_progress(o.user, "tensors", step, n_steps);
        if (o.linear != TRLC_LINEAR_DENSE && selected(&o, t->name)) {
            if (write_linear(&w, tier, &outs, t, &o, &lp[i], calib)) goto done;
            release_tensor(ms, t);
            continue;
        }
        int is_tq = t->dtype == TRLC_DT_TQ1_0 || t->dtype == TRLC_DT_TQ2_0;
        if (o.keep_quant && is_tq && t->n_dims == 2 && is_linear_name(t->name)) {
            int r = write_tq(&w, tier, &outs, t, &o);
            if (r < 0) goto done;
            if (r == 0) {
                release_tensor(ms, t);
                continue;
            }
            if (o.on_warning) {
                char msg[512];
                snprintf(msg, sizeof msg,
                         "%s: %s block scales vary within rows in a way no pack scale layout holds (per tensor, row "
                         "blocks, column blocks, row): stored dequantized as %s",
                         t->name, trlc_dtype_name(t->dtype), trl_encoding_name(o.matrix_encoding));
                o.on_warning(o.user, msg);
            }
        }
        out_tensor *ot = out_add(&outs);
        if (!ot) {
            trlc_fail(err, errlen, "out of memory");
            goto done;
        }
        uint64_t rows = t->n_dims == 2 ? (uint64_t)t->shape[0] : 1;
        uint64_t cols = t->n_dims == 2 ? (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
        snprintf(ot->name, sizeof ot->name, "%s", t->name);
        int forced = !strcmp(t->name, "token_embd.weight") ? o.embed_encoding
                     : !strcmp(t->name, "output.weight")   ? o.head_encoding
                                                           : -1;
        ot->enc = t->n_dims != 2                                ? TRL_ENC_F32
                  : forced >= 0                                 ? (trl_encoding)forced
                  : o.keep_quant && t->dtype == TRLC_DT_Q8_0 ? TRL_ENC_Q8_0
                                                              : o.matrix_encoding;
        ot->n_dims = t->n_dims;
        ot->shape[0] = t->shape[0];
        ot->shape[1] = t->shape[1];
        ot->bytes = trl_encoding_bytes(ot->enc, rows, cols);
        ot->tier = tier;
        if (!ot->bytes) {
            trlc_fail(err, errlen, "%s: encoded size overflows", t->origin);
            goto done;
        }
        if (w_place(&w, tier, ot->bytes, &ot->chunk, &ot->offset) || write_dense(&w, tier, t, ot->enc, fbuf, obuf) ||
            w_done(&w, tier))
            goto done;
        release_tensor(ms, t);
    }
    if (o.on_progress) o.on_progress(o.user, "tensors", n_steps, n_steps);
    for (int t = 0; t < TRLC_MAX_VARIANTS; t++)
        if (w_close(&w, t)) goto done;
    for (int k = 0; k < n_seg; k++) {
        int has = 0;
        for (size_t i = 0; i < w.n_chunks; i++) has |= w.chunks[i].tier == k;
        if (!has) { /* cannot happen with the plan's checks; a variant must have its tier */
            trlc_fail(err, errlen, "internal error: tier %d has no chunk", k);
            goto done;
        }
    }
    if (order_chunks(&w, &outs, &tok)) goto done;
    for (size_t i = 0; i < outs.n; i++)
        if (!dense_enc(outs.v[i].enc) && version < 2) version = 2; /* e.g. a GGUF's ternary layers kept as t2/t1 */

    /* variants: variant k needs tiers 0..k (rank families), or 0 and 1 + k (a --family) */
    variant_rec vr[TRLC_MAX_VARIANTS];
    int n_var = o.linear == TRLC_LINEAR_LOWRANK ? n_seg : n_mem;
    memset(vr, 0, sizeof vr);
    for (int k = 0; k < n_var; k++) {
        copy_str(vr[k].id, sizeof vr[k].id, o.n_family ? o.family_ids[k] : n_seg ? ids[k] : "base");
        vr[k].tiers = o.n_family ? 1u | 1u << (1 + k) : o.linear == TRLC_LINEAR_LOWRANK ? (2u << k) - 1u : 1u;
        vr[k].rank_slices = -1;
        if (n_seg) {
            vr[k].rank_slices = 0;
            for (int j = 0; j < (o.linear == TRLC_LINEAR_LOWRANK ? k + 1 : n_seg); j++)
                vr[k].rank_slices += seg_slices[j];
        }
        vr[k].resident = tok.bytes;
        for (size_t i = 0; i < outs.n; i++)
            if (vr[k].tiers >> outs.v[i].tier & 1) vr[k].resident += outs.v[i].bytes;
        for (size_t i = 0; i < w.n_chunks; i++)
            if (vr[k].tiers >> w.chunks[i].tier & 1) vr[k].download += w.chunks[i].bytes;
    }

    trl_ctx_params cp = trl_ctx_default_params();
    cp.n_ctx = src->cfg.max_seq_len;
    uint64_t ctx_bytes = trl_ctx_memory_bytes(&src->cfg, &cp);
    mpath = trlc_path_join(tmp, "manifest.json");
    if (!mpath) {
        trlc_fail(err, errlen, "out of memory");
        goto done;
    }
    for (int pass = 0; pass < (calib ? 2 : 1); pass++) {
        /* with calibration text the pack is written, loaded back by the
         * native loader (every chunk's sha256 checked), each variant's
         * perplexity measured by the core, and the manifest written again */
        free(manifest);
        manifest = build_manifest(src, name, version, &tok, &outs, &w, vr, n_var, ctx_bytes, pass ? calib : NULL);
        if (!manifest) {
            trlc_fail(err, errlen, "out of memory building manifest.json");
            goto done;
        }
        FILE *f = fopen(mpath, pass ? "wb" : "wbx");
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
        if (pass || !calib) continue;
        char perr[768];
        if (trlc_pack_open(tmp, &tp, perr, sizeof perr)) {
            trlc_fail(err, errlen, "internal error: the pack just written does not load: %s", perr);
            goto done;
        }
        for (int k = 0; k < n_var; k++) {
            trl_model *pm = NULL;
            trl_error e;
            char what[64];
            snprintf(what, sizeof what, "perplexity %.40s", vr[k].id);
            const trlc_pack_variant *pv = trlc_pack_variant_find(tp, vr[k].id);
            size_t nvt = 0;
            trl_tensor *vt = pv ? trlc_pack_variant_tensors(tp, pv, &nvt) : NULL;
            trl_status ms = vt ? trl_model_create(&tp->config, vt, nvt, &pm, &e) : TRL_ERR_NO_MEMORY;
            free(vt);
            if (!vt) snprintf(e.msg, sizeof e.msg, "out of memory, or no such variant");
            if (ms != TRL_OK) {
                trlc_fail(err, errlen, "internal error: variant %s of the pack just written: %s", vr[k].id, e.msg);
                goto done;
            }
            int r = trlc_perplexity(pm, vr[k].rank_slices, calib->ids, calib->n_ids, &vr[k].ppl, o.on_progress,
                                    o.user, what, err, errlen);
            trl_model_free(pm);
            if (r) goto done;
        }
        trlc_pack_close(tp);
        tp = NULL;
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
        memset(summary, 0, sizeof *summary);
        summary->n_tensors = outs.n;
        for (size_t i = 0; i < outs.n; i++) summary->tensor_bytes += outs.v[i].bytes;
        for (size_t i = 0; i < w.n_chunks; i++) summary->download_bytes += w.chunks[i].bytes;
        summary->n_chunks = w.n_chunks;
        summary->n_params = trl_config_n_params(&src->cfg);
        summary->version = version;
        summary->n_variants = n_var;
        for (int k = 0; k < n_var; k++) {
            copy_str(summary->variant_id[k], sizeof summary->variant_id[k], vr[k].id);
            summary->variant_rank_slices[k] = vr[k].rank_slices;
            summary->variant_download_bytes[k] = vr[k].download;
            summary->variant_resident_bytes[k] = vr[k].resident;
            summary->variant_bits_per_weight[k] =
                summary->n_params ? 8.0 * (double)(vr[k].resident - tok.bytes) / (double)summary->n_params : 0.0;
            summary->variant_ppl[k] = vr[k].ppl;
        }
        if (calib) {
            summary->parent_ppl = calib->parent_ppl;
            summary->calib_tokens = calib->n_ids;
            copy_str(summary->calib_sha256, sizeof summary->calib_sha256, calib->text_sha256);
        }
    }
    rc = 0;
done:
    for (int t = 0; t < TRLC_MAX_VARIANTS; t++) {
        if (w.s[t].f) fclose(w.s[t].f);
        free(w.s[t].fpath);
    }
    trlc_pack_close(tp);
    trlc_calib_free(calib);
    if (rc) remove_tree(tmp);
    free(w.chunks);
    free(outs.v);
    free(fbuf);
    free(obuf);
    free(manifest);
    free(mpath);
    free(lp);
    return rc;
}
