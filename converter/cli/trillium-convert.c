/* trillium-convert - turn a checkpoint into a Trillium model pack.
 *
 *   trillium-convert INPUT -o PACKDIR [--dtype f32|f16|q8_0] [--tokenizer FILE]
 *                    [--name NAME] [--chunk-mb N] [--act-quant float|int8] [--force]
 *                    [--ternary [--ternary-scale tensor|row] [--ternary-layout t2|t1]]
 *                    [--bcq BITS [--group G] [--pow2]]
 *                    [--lowrank RANKS] [--residual-rank R] [--slice R]
 *                    [--layers attn,mlp] [--embed f32|f16|q8_0] [--head f32|f16|q8_0]
 *                    [--calib FILE [--calib-tokens N]] [--family DIR...] [--json]
 *
 * INPUT is a Hugging Face model directory (config.json + safetensors), a GGUF
 * file (llama architecture) or a llama2.c .bin checkpoint (then --tokenizer
 * tokenizer.bin is required). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trlc_internal.h"

static const char USAGE[] =
    "usage: trillium-convert INPUT -o PACKDIR [--dtype f32|f16|q8_0] [--tokenizer FILE]\n"
    "                        [--name NAME] [--chunk-mb N] [--act-quant float|int8] [--force]\n"
    "                        [--ternary [--ternary-scale tensor|row] [--ternary-layout t2|t1]]\n"
    "                        [--bcq BITS [--group G] [--pow2]]\n"
    "                        [--lowrank RANKS] [--residual-rank R] [--slice R] [--dequant]\n"
    "  INPUT        a Hugging Face model directory, a GGUF file (llama) or a llama2.c .bin checkpoint\n"
    "  -o PACKDIR   the pack directory to write (refused if it exists, unless --force)\n"
    "  --dtype      encoding of the weight matrices and rank slices (default f32; norms are always f32)\n"
    "  --tokenizer  tokenizer file: llama2.c tokenizer.bin, or a tokenizer.json (for a GGUF: instead of\n"
    "               the one it embeds)\n"
    "  --name       the pack's name (default: the input's base name)\n"
    "  --chunk-mb   most MiB per chunk file (default 4)\n"
    "  --act-quant  activations before each linear layer: float (default) or int8 (BitNet b1.58's\n"
    "               absmax per token; the faithful setting for BitNet checkpoints)\n"
    "  --force      replace an existing pack at PACKDIR\n"
    "GGUF input keeps what is already a pack encoding, losslessly: Q8_0 tensors stay q8_0 and TQ1_0/TQ2_0\n"
    "linear layers become ternary (t2, or t1 with --ternary-layout t1) with their exact scales; F32/F16/BF16\n"
    "and Q4_0 tensors are converted to --dtype.\n"
    "  --dequant    convert every GGUF tensor to --dtype instead\n"
    "The linear layers (attn_q/k/v/output, ffn_gate/up/down; not embeddings, head or norms) can instead be\n"
    "(these write format version 2):\n"
    "  --ternary    ternary, absmean s = mean|W|, T = clamp(round(W/s), -1, 1); weights that are already\n"
    "               s*T (per tensor, row, or block of rows/columns) are stored exactly\n"
    "  --ternary-scale  tensor (default) or row: where absmean takes its mean\n"
    "  --ternary-layout t2 (2 bits, default) or t1 (1.6 bits, smaller download)\n"
    "  --bcq BITS   binary-coded quantization (ShiftAddLLM), BITS 1..4\n"
    "  --group G    bcq columns per scale group (32..256, a multiple of 32; default 128)\n"
    "  --pow2       bcq scales rounded to powers of two\n"
    "  --lowrank RANKS  truncated SVD into rank slices, no base weight. RANKS: ranks (\"64\", \"64,32\")\n"
    "               or fractions of each layer's full rank (\"0.75,0.5,0.35\"); each value is a variant\n"
    "  --residual-rank R  with --ternary or --bcq: also store the quantization error W - Q(W) at rank R\n"
    "  --slice R    rows per rank slice (default 16)\n"
    "  --layers L   the linear layers those options touch: attn, mlp, attn,mlp (default) or names\n"
    "               (q,k,v,o,gate,up,down); the others stay --dtype\n"
    "  --embed E    token embeddings as f32, f16 or q8_0 (default: --dtype)\n"
    "  --head E     output head (untied models) as f32, f16 or q8_0 (default: --dtype)\n"
    "  --calib FILE calibration text: the source model (f32) is run over it by the core; --bcq weights\n"
    "               its objective by each layer's input statistics E[x^2]; every variant's perplexity\n"
    "               is measured on the written pack and goes into the manifest and a table\n"
    "  --calib-tokens N  most calibration tokens (default 512)\n"
    "  --calib-unweighted  measure perplexity only; --bcq keeps its unweighted objective\n"
    "  --family DIR...  more checkpoints of INPUT's family (same config, tokenizer, embeddings, norms,\n"
    "               head; linear layers fine-tuned apart, e.g. PLRD members at each rank): one pack\n"
    "               (format version 3) whose variants share tier 0 and each has a tier of its own\n"
    "               linear layers. Each variant's id is its base name (less .bin/.gguf), or ID with ID=DIR\n"
    "  --json       quiet: one JSON summary on stdout (warnings and errors included)\n";

static int json_mode;

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "trillium-convert: %s%s%s (see --help)\n", msg, arg ? ": " : "", arg ? arg : "");
    if (json_mode) {
        trlc_buf b = {0};
        char m[1024];
        snprintf(m, sizeof m, "%s%s%s", msg, arg ? ": " : "", arg ? arg : "");
        trlc_buf_puts(&b, "{\"ok\": false, \"errors\": [");
        trlc_buf_json_str(&b, m, strlen(m));
        trlc_buf_puts(&b, "]}\n");
        if (!b.oom) fputs(b.data, stdout);
        trlc_buf_free(&b);
    }
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* One linear layer's report, kept for the summary (--json). */
typedef struct kept_report {
    char name[96];
    trlc_tensor_report r;
} kept_report;

/* Per-layer lines and the totals the summary prints. */
typedef struct report_state {
    int n, n_lossless;
    double sum_base, sum_total, sum_out;
    int n_out;
    int any_slices, any_base;
    kept_report *reps;
    size_t n_reps, cap_reps;
    trlc_buf warnings; /* JSON strings, comma-separated */
    int n_warnings;
    /* progress bar (stderr on a terminal, not with --json) */
    int bar;
    int bar_shown;
    char bar_what[64];
    int bar_last; /* last permille drawn */
} report_state;

static void bar_clear(report_state *st) {
    if (st->bar_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        st->bar_shown = 0;
    }
}

static void on_progress(void *user, const char *what, uint64_t done, uint64_t total) {
    report_state *st = user;
    if (!st->bar || !total) return;
    int permille = (int)(done >= total ? 1000 : done * 1000 / total);
    if (st->bar_shown && !strcmp(st->bar_what, what) && permille - st->bar_last < 5 && done < total) return;
    snprintf(st->bar_what, sizeof st->bar_what, "%s", what);
    st->bar_last = permille;
    char bar[41];
    int fill = permille * 40 / 1000;
    for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
    bar[40] = 0;
    fprintf(stderr, "\r\033[K%-24s [%s] %3d%% (%llu/%llu)", what, bar, permille / 10, (unsigned long long)done,
            (unsigned long long)total);
    fflush(stderr);
    st->bar_shown = 1;
}

static void on_warning(void *user, const char *msg) {
    report_state *st = user;
    if (json_mode) {
        if (st->n_warnings++) trlc_buf_puts(&st->warnings, ", ");
        trlc_buf_json_str(&st->warnings, msg, strlen(msg));
        return;
    }
    bar_clear(st);
    fflush(stdout);
    fprintf(stderr, "trillium-convert: warning: %s\n", msg);
}

static void on_tensor(void *user, const trlc_tensor_report *r) {
    report_state *st = user;
    int has_base = r->encoding == TRL_ENC_T2 || r->encoding == TRL_ENC_T1 || r->encoding == TRL_ENC_BCQ;
    st->n++;
    st->n_lossless += r->lossless;
    st->sum_base += r->base_rel_error;
    st->sum_total += r->rel_error;
    if (r->out_rel_error >= 0.0) st->sum_out += r->out_rel_error, st->n_out++;
    st->any_slices |= r->rank > 0;
    st->any_base |= has_base;
    if (st->n_reps == st->cap_reps) {
        size_t cap = st->cap_reps ? st->cap_reps * 2 : 64;
        kept_report *v = realloc(st->reps, cap * sizeof *v);
        if (v) st->reps = v, st->cap_reps = cap;
    }
    if (st->n_reps < st->cap_reps) {
        kept_report *k = &st->reps[st->n_reps++];
        snprintf(k->name, sizeof k->name, "%s", r->name);
        k->r = *r;
        k->r.name = k->name;
    }
    if (json_mode) return;
    char what[64];
    if (r->encoding == TRL_ENC_T2 || r->encoding == TRL_ENC_T1) {
        static const char *const axes[] = {"tensor", "row", "row blocks", "col blocks"};
        int a = r->params.scale_axis >= 0 && r->params.scale_axis <= 3 ? r->params.scale_axis : 0;
        if (a >= 2) snprintf(what, sizeof what, "%s, %d %s", trl_encoding_name(r->encoding), r->params.scale_blocks,
                             axes[a]);
        else snprintf(what, sizeof what, "%s, %s scale", trl_encoding_name(r->encoding), axes[a]);
    } else if (r->encoding == TRL_ENC_BCQ) {
        snprintf(what, sizeof what, "bcq %d bit%s, g%d%s", r->params.bits, r->params.bits > 1 ? "s" : "",
                 r->params.group, r->params.pow2 ? ", pow2" : "");
    } else {
        snprintf(what, sizeof what, "%s slices", trl_encoding_name(r->encoding));
    }
    bar_clear(st);
    printf("  %-28s %-24s", r->name, what);
    if (has_base) {
        if (r->lossless) printf(" lossless (already ternary)");
        else printf(" rel. error %.4f", r->base_rel_error);
        if (r->out_rel_error >= 0.0) printf(" (activation-weighted %.4f)", r->out_rel_error);
    }
    if (r->rank)
        printf("%s rank %d of %d in %d slice%s: rel. error %.4f", has_base ? " +" : "", (int)r->rank, (int)r->full_rank,
               (int)r->n_slices, r->n_slices == 1 ? "" : "s", r->rel_error);
    printf("\n");
    fflush(stdout);
}

static void put_num(trlc_buf *b, double v) {
    if (isfinite(v)) trlc_buf_printf(b, "%.9g", v);
    else trlc_buf_puts(b, "null");
}

/* The --json summary. */
static void json_summary(trlc_buf *b, const char *out, const trlc_write_summary *s, const report_state *st,
                         const char *error) {
    trlc_buf_printf(b, "{\"ok\": %s", error ? "false" : "true");
    if (!error) {
        trlc_buf_puts(b, ", \"output\": ");
        trlc_buf_json_str(b, out, strlen(out));
        trlc_buf_printf(b, ", \"format_version\": %d, \"n_params\": %llu, \"download_bytes\": %llu, \"chunks\": %zu",
                        s->version, (unsigned long long)s->n_params, (unsigned long long)s->download_bytes,
                        s->n_chunks);
        trlc_buf_printf(b, ",\n \"tensors\": {\"count\": %zu, \"bytes\": %llu, \"linear\": [", s->n_tensors,
                        (unsigned long long)s->tensor_bytes);
        for (size_t i = 0; i < st->n_reps; i++) {
            const trlc_tensor_report *r = &st->reps[i].r;
            trlc_buf_puts(b, i ? ",\n   {\"name\": " : "\n   {\"name\": ");
            trlc_buf_json_str(b, r->name, strlen(r->name));
            trlc_buf_printf(b, ", \"encoding\": \"%s\"", trl_encoding_name(r->encoding));
            if (r->encoding == TRL_ENC_BCQ)
                trlc_buf_printf(b, ", \"bits\": %d, \"group\": %d, \"pow2\": %s", r->params.bits, r->params.group,
                                r->params.pow2 ? "true" : "false");
            if (r->encoding == TRL_ENC_T2 || r->encoding == TRL_ENC_T1)
                trlc_buf_printf(b, ", \"scale_axis\": %d, \"scale_blocks\": %d", r->params.scale_axis,
                                r->params.scale_blocks);
            trlc_buf_printf(b, ", \"lossless\": %s, \"base_rel_error\": ", r->lossless ? "true" : "false");
            put_num(b, r->base_rel_error);
            trlc_buf_puts(b, ", \"rel_error\": ");
            put_num(b, r->rel_error);
            if (r->out_rel_error >= 0.0) {
                trlc_buf_puts(b, ", \"activation_weighted_rel_error\": ");
                put_num(b, r->out_rel_error);
            }
            if (r->rank)
                trlc_buf_printf(b, ", \"rank\": %d, \"full_rank\": %d, \"slices\": %d", (int)r->rank,
                                (int)r->full_rank, (int)r->n_slices);
            trlc_buf_puts(b, "}");
        }
        trlc_buf_printf(b, "]},\n \"lossless\": {\"count\": %d, \"of\": %d},\n \"calibration\": ", st->n_lossless,
                        st->n);
        if (s->parent_ppl > 0.0) {
            trlc_buf_printf(b, "{\"text_sha256\": \"%s\", \"tokens\": %d, \"parent_perplexity\": ", s->calib_sha256,
                            (int)s->calib_tokens);
            put_num(b, s->parent_ppl);
            trlc_buf_puts(b, "}");
        } else {
            trlc_buf_puts(b, "null");
        }
        trlc_buf_puts(b, ",\n \"variants\": [");
        for (int k = 0; k < s->n_variants; k++) {
            trlc_buf_puts(b, k ? ",\n   {\"id\": " : "\n   {\"id\": ");
            trlc_buf_json_str(b, s->variant_id[k], strlen(s->variant_id[k]));
            if (s->variant_rank_slices[k] >= 0) trlc_buf_printf(b, ", \"rank_slices\": %d", (int)s->variant_rank_slices[k]);
            trlc_buf_printf(b, ", \"download_bytes\": %llu, \"resident_bytes\": %llu, \"bits_per_weight\": ",
                            (unsigned long long)s->variant_download_bytes[k],
                            (unsigned long long)s->variant_resident_bytes[k]);
            put_num(b, s->variant_bits_per_weight[k]);
            trlc_buf_puts(b, ", \"perplexity\": ");
            if (s->variant_ppl[k] > 0.0) {
                put_num(b, s->variant_ppl[k]);
                trlc_buf_puts(b, ", \"perplexity_delta\": ");
                put_num(b, s->variant_ppl[k] - s->parent_ppl);
            } else {
                trlc_buf_puts(b, "null");
            }
            trlc_buf_puts(b, "}");
        }
        trlc_buf_puts(b, "],\n ");
    } else {
        trlc_buf_puts(b, ", ");
    }
    trlc_buf_puts(b, "\"warnings\": [");
    if (st->warnings.len) trlc_buf_put(b, st->warnings.data, st->warnings.len);
    trlc_buf_puts(b, "], \"errors\": [");
    if (error) trlc_buf_json_str(b, error, strlen(error));
    trlc_buf_puts(b, "]}\n");
}

/* The perplexity table (--calib). */
static void print_ppl_table(const trlc_write_summary *s) {
    printf("perplexity on %d calibration tokens (text sha256 %.16s...):\n", (int)s->calib_tokens, s->calib_sha256);
    printf("  %-16s %11s %10s %12s %18s\n", "variant", "bits/weight", "MB", "perplexity", "delta vs parent");
    printf("  %-16s %11.2f %10.2f %12.4f %18s\n", "parent (f32)", 32.0, (double)s->n_params * 4.0 / 1e6,
           s->parent_ppl, "-");
    for (int k = 0; k < s->n_variants; k++) {
        double d = s->variant_ppl[k] - s->parent_ppl;
        char delta[48];
        snprintf(delta, sizeof delta, "%+.4f (%+.1f%%)", d, 100.0 * d / s->parent_ppl);
        printf("  %-16s %11.2f %10.2f %12.4f %18s\n", s->variant_id[k], s->variant_bits_per_weight[k],
               (double)s->variant_download_bytes[k] / 1e6, s->variant_ppl[k], delta);
    }
}

int main(int argc, char **argv) {
    const char *input = NULL, *out = NULL, *tok = NULL, *lowrank = NULL;
    const char *fam_paths[TRLC_MAX_VARIANTS];
    char fam_ids[TRLC_MAX_VARIANTS][32];
    int n_fam = 0;
    int act_quant = -1, ternary = 0, bcq = 0, have_scale = 0, have_layout = 0, have_group = 0, have_pow2 = 0,
        have_slice = 0, have_calib_tokens = 0;
    char err[1024];
    trlc_write_opts o = trlc_write_default_opts();
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--json")) json_mode = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        long v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!more) return usage_error("missing value for", a);
            out = argv[++i];
        } else if (!strcmp(a, "--dtype")) {
            if (!more) return usage_error("missing value for", a);
            const char *s = argv[++i];
            int e = trl_encoding_from_name(s, strlen(s));
            if (e != TRL_ENC_F32 && e != TRL_ENC_F16 && e != TRL_ENC_Q8_0)
                return usage_error("--dtype must be f32, f16 or q8_0, not", s);
            o.matrix_encoding = (trl_encoding)e;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!more) return usage_error("missing value for", a);
            tok = argv[++i];
        } else if (!strcmp(a, "--name")) {
            if (!more) return usage_error("missing value for", a);
            o.name = argv[++i];
        } else if (!strcmp(a, "--chunk-mb")) {
            if (!more) return usage_error("missing value for", a);
            if (parse_long(argv[++i], 1, 4096, &v))
                return usage_error("--chunk-mb must be an integer from 1 to 4096, not", argv[i]);
            o.chunk_bytes = (uint64_t)v << 20;
        } else if (!strcmp(a, "--act-quant")) {
            if (!more) return usage_error("missing value for", a);
            const char *s = argv[++i];
            if (!strcmp(s, "float")) act_quant = TRL_ACT_FLOAT;
            else if (!strcmp(s, "int8")) act_quant = TRL_ACT_INT8;
            else return usage_error("--act-quant must be float or int8, not", s);
        } else if (!strcmp(a, "--json")) {
            /* seen above */
        } else if (!strcmp(a, "--layers")) {
            if (!more) return usage_error("missing value for", a);
            if (trlc_parse_layers(argv[++i], &o.layers, err, sizeof err)) return usage_error(err, NULL);
        } else if (!strcmp(a, "--embed") || !strcmp(a, "--head")) {
            if (!more) return usage_error("missing value for", a);
            const char *s = argv[++i];
            int e = trl_encoding_from_name(s, strlen(s));
            if (e != TRL_ENC_F32 && e != TRL_ENC_F16 && e != TRL_ENC_Q8_0)
                return usage_error(a[2] == 'e' ? "--embed must be f32, f16 or q8_0, not" : "--head must be f32, f16 or q8_0, not", s);
            if (a[2] == 'e') o.embed_encoding = e;
            else o.head_encoding = e;
        } else if (!strcmp(a, "--family")) {
            if (!more || argv[i + 1][0] == '-') return usage_error("--family needs one or more directories", NULL);
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                if (n_fam + 2 > TRLC_MAX_VARIANTS - 1)
                    return usage_error("--family: too many members; the most is", "15");
                fam_paths[n_fam++] = argv[++i];
            }
        } else if (!strcmp(a, "--calib")) {
            if (!more) return usage_error("missing value for", a);
            o.calib_path = argv[++i];
        } else if (!strcmp(a, "--calib-unweighted")) {
            o.calib_weights = 0;
            have_calib_tokens = 1;
        } else if (!strcmp(a, "--calib-tokens")) {
            if (!more || parse_long(argv[++i], 2, 1 << 20, &v))
                return usage_error("--calib-tokens needs a count from 2 to 1048576", more ? argv[i] : NULL);
            o.calib_tokens = (int32_t)v;
            have_calib_tokens = 1;
        } else if (!strcmp(a, "--force")) {
            o.force = 1;
        } else if (!strcmp(a, "--dequant")) {
            o.keep_quant = 0;
        } else if (!strcmp(a, "--ternary")) {
            ternary = 1;
        } else if (!strcmp(a, "--ternary-scale")) {
            if (!more) return usage_error("missing value for", a);
            const char *s = argv[++i];
            if (!strcmp(s, "tensor")) o.ternary_scale = TRL_SCALE_TENSOR;
            else if (!strcmp(s, "row")) o.ternary_scale = TRL_SCALE_ROW;
            else return usage_error("--ternary-scale must be tensor or row, not", s);
            have_scale = 1;
        } else if (!strcmp(a, "--ternary-layout")) {
            if (!more) return usage_error("missing value for", a);
            const char *s = argv[++i];
            if (!strcmp(s, "t2")) o.ternary_encoding = TRL_ENC_T2;
            else if (!strcmp(s, "t1")) o.ternary_encoding = TRL_ENC_T1;
            else return usage_error("--ternary-layout must be t2 or t1, not", s);
            have_layout = 1;
        } else if (!strcmp(a, "--bcq")) {
            if (!more || parse_long(argv[++i], 1, 4, &v))
                return usage_error("--bcq needs a bit count from 1 to 4", more ? argv[i] : NULL);
            o.bcq.bits = (int32_t)v;
            bcq = 1;
        } else if (!strcmp(a, "--group")) {
            if (!more || parse_long(argv[++i], 32, 256, &v) || v % 32)
                return usage_error("--group must be a multiple of 32 from 32 to 256", more ? argv[i] : NULL);
            o.bcq.group = (int32_t)v;
            have_group = 1;
        } else if (!strcmp(a, "--pow2")) {
            o.bcq.pow2 = 1;
            have_pow2 = 1;
        } else if (!strcmp(a, "--lowrank")) {
            if (!more) return usage_error("missing value for", a);
            lowrank = argv[++i];
            if (trlc_parse_ranks(lowrank, &o, err, sizeof err)) return usage_error(err, NULL);
        } else if (!strcmp(a, "--residual-rank")) {
            if (!more || parse_long(argv[++i], 1, 1 << 30, &v))
                return usage_error("--residual-rank needs a positive rank", more ? argv[i] : NULL);
            o.residual_rank = (int32_t)v;
        } else if (!strcmp(a, "--slice")) {
            if (!more || parse_long(argv[++i], 1, 256, &v))
                return usage_error("--slice needs a row count from 1 to 256", more ? argv[i] : NULL);
            o.slice_rows = (int32_t)v;
            have_slice = 1;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option", a);
        } else if (!input) {
            input = a;
        } else {
            return usage_error("more than one INPUT", a);
        }
    }
    if (!input) return usage_error("missing INPUT", NULL);
    if (!out) return usage_error("missing -o PACKDIR", NULL);
    if (ternary + bcq + (lowrank != NULL) > 1)
        return usage_error("--ternary, --bcq and --lowrank are alternatives: give one", NULL);
    if (have_scale && !ternary) return usage_error("--ternary-scale needs --ternary", NULL);
    if ((have_group || have_pow2) && !bcq) return usage_error("--group / --pow2 need --bcq", NULL);
    if (o.residual_rank && !ternary && !bcq) return usage_error("--residual-rank needs --ternary or --bcq", NULL);
    if (have_slice && !lowrank && !o.residual_rank) return usage_error("--slice needs --lowrank or --residual-rank", NULL);
    if (have_calib_tokens && !o.calib_path) return usage_error("--calib-tokens / --calib-unweighted need --calib", NULL);
    if (n_fam && (lowrank || o.residual_rank))
        return usage_error("--family does not combine with --lowrank / --residual-rank (its members are the variants)", NULL);
    if (o.layers && !ternary && !bcq && !lowrank)
        return usage_error("--layers needs --ternary, --bcq or --lowrank", NULL);
    o.linear = ternary ? TRLC_LINEAR_TERNARY : bcq ? TRLC_LINEAR_BCQ : lowrank ? TRLC_LINEAR_LOWRANK : TRLC_LINEAR_DENSE;
    report_state st;
    memset(&st, 0, sizeof st);
    st.bar = !json_mode && isatty(2);
    o.on_tensor = on_tensor;
    o.on_warning = on_warning;
    o.on_progress = on_progress;
    o.user = &st;

    trlc_model_src *src = NULL, *fam[TRLC_MAX_VARIANTS] = {0};
    const char *fam_id_ptr[TRLC_MAX_VARIANTS];
    trlc_write_summary s;
    memset(&s, 0, sizeof s);
    int rc = 1;
    if (trlc_source_open(input, tok, &src, err, sizeof err)) goto fail;
    if (n_fam) {
        /* ids: "ID=DIR", else the directory's base name */
        for (int k = 0; k <= n_fam; k++) {
            const char *pth = k ? fam_paths[k - 1] : input, *eq = strchr(pth, '=');
            if (k && eq && !memchr(pth, '/', (size_t)(eq - pth))) {
                snprintf(fam_ids[k], sizeof fam_ids[k], "%.*s", (int)(eq - pth), pth);
                fam_paths[k - 1] = eq + 1;
            } else {
                size_t pl = strlen(pth);
                const char *ext = pl > 5 && !strcmp(pth + pl - 5, ".gguf") ? ".gguf" : ".bin";
                trlc_basename(pth, ext, fam_ids[k], sizeof fam_ids[k]);
            }
            fam_id_ptr[k] = fam_ids[k];
        }
        for (int k = 0; k < n_fam; k++)
            if (trlc_source_open(fam_paths[k], tok, &fam[k], err, sizeof err)) goto fail;
        o.family = (const trlc_model_src *const *)fam;
        o.n_family = n_fam;
        o.family_ids = fam_id_ptr;
    }
    if (!src->tok.blob) {
        snprintf(err, sizeof err, "%s: no tokenizer; pass --tokenizer FILE%s", input,
                 src->cfg.rope_style == TRL_ROPE_INTERLEAVED ? " (the llama2.c tokenizer.bin)" : "");
        goto fail;
    }
    if (have_layout && !ternary && strncmp(src->source, "gguf:", 5)) {
        trlc_source_free(src);
        return usage_error("--ternary-layout needs --ternary (or a GGUF input with ternary tensors)", NULL);
    }
    if (act_quant >= 0) {
        src->cfg.act_quant = (trl_act_quant)act_quant;
        for (int k = 0; k < n_fam; k++) fam[k]->cfg.act_quant = (trl_act_quant)act_quant;
    }
    if (o.linear != TRLC_LINEAR_DENSE) fflush(stdout);
    rc = trlc_pack_write(src, out, &o, &s, err, sizeof err) ? 1 : 0;
    bar_clear(&st);
fail:
    if (json_mode) {
        trlc_buf b = {0};
        json_summary(&b, out, &s, &st, rc ? err : NULL);
        if (!b.oom) fputs(b.data, stdout);
        trlc_buf_free(&b);
        if (rc) fprintf(stderr, "trillium-convert: %s\n", err);
    } else if (rc) {
        fflush(stdout);
        fprintf(stderr, "trillium-convert: %s\n", err);
    } else {
        if (st.n && ternary)
            printf("ternary: %d of %d linear tensors were already ternary and are stored exactly%s\n", st.n_lossless,
                   st.n, st.n_lossless < st.n ? "; the others are absmean-quantized" : "");
        else if (st.n_lossless)
            printf("ternary: %d GGUF TQ1_0/TQ2_0 tensors are stored exactly as %s\n", st.n_lossless,
                   trl_encoding_name(o.ternary_encoding));
        if (st.n && st.any_base && st.n_lossless < st.n)
            printf("mean relative weight error (||W - Q(W)||_F / ||W||_F) over %d tensors: %.4f\n", st.n,
                   st.sum_base / st.n);
        if (st.n && st.any_slices)
            printf("mean relative weight error with the rank slices: %.4f\n", st.sum_total / st.n);
        printf("wrote %s: %zu tensors (%llu parameters, %s), %llu bytes in %zu chunk%s, format version %d\n", out,
               s.n_tensors, (unsigned long long)s.n_params,
               o.linear == TRLC_LINEAR_TERNARY ? trl_encoding_name(o.ternary_encoding)
               : o.linear == TRLC_LINEAR_BCQ   ? "bcq"
                                               : trl_encoding_name(o.matrix_encoding),
               (unsigned long long)s.download_bytes, s.n_chunks, s.n_chunks == 1 ? "" : "s", s.version);
        for (int k = 0; k < s.n_variants; k++) {
            printf("  variant %s: %llu bytes to download", s.variant_id[k],
                   (unsigned long long)s.variant_download_bytes[k]);
            if (s.variant_rank_slices[k] >= 0) printf(", rank_slices %d", (int)s.variant_rank_slices[k]);
            printf("\n");
        }
        if (st.n_out)
            printf("mean activation-weighted relative error (calibration statistics) over %d tensors: %.4f\n", st.n_out,
                   st.sum_out / st.n_out);
        if (s.parent_ppl > 0.0) print_ppl_table(&s);
    }
    trlc_source_free(src);
    for (int k = 0; k < n_fam; k++) trlc_source_free(fam[k]);
    free(st.reps);
    trlc_buf_free(&st.warnings);
    return rc;
}
