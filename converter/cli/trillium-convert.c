/* trillium-convert - turn a checkpoint into a Trillium model pack.
 *
 *   trillium-convert INPUT -o PACKDIR [--dtype f32|f16|q8_0] [--tokenizer FILE]
 *                    [--name NAME] [--chunk-mb N] [--act-quant float|int8] [--force]
 *                    [--ternary [--ternary-scale tensor|row] [--ternary-layout t2|t1]]
 *                    [--bcq BITS [--group G] [--pow2]]
 *                    [--lowrank RANKS] [--residual-rank R] [--slice R]
 *
 * INPUT is a Hugging Face model directory (config.json + safetensors), a GGUF
 * file (llama architecture) or a llama2.c .bin checkpoint (then --tokenizer
 * tokenizer.bin is required). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trlc.h"

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
    "  --slice R    rows per rank slice (default 16)\n";

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "trillium-convert: %s%s%s (see --help)\n", msg, arg ? ": " : "", arg ? arg : "");
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

/* Per-layer lines and the totals the summary prints. */
typedef struct report_state {
    int n, n_lossless;
    double sum_base, sum_total;
    int any_slices, any_base;
} report_state;

static void on_warning(void *user, const char *msg) {
    (void)user;
    fflush(stdout);
    fprintf(stderr, "trillium-convert: warning: %s\n", msg);
}

static void on_tensor(void *user, const trlc_tensor_report *r) {
    report_state *st = user;
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
    int has_base = r->encoding == TRL_ENC_T2 || r->encoding == TRL_ENC_T1 || r->encoding == TRL_ENC_BCQ;
    printf("  %-28s %-24s", r->name, what);
    if (has_base) {
        if (r->lossless) printf(" lossless (already ternary)");
        else printf(" rel. error %.4f", r->base_rel_error);
    }
    if (r->rank)
        printf("%s rank %d of %d in %d slice%s: rel. error %.4f", has_base ? " +" : "", (int)r->rank, (int)r->full_rank,
               (int)r->n_slices, r->n_slices == 1 ? "" : "s", r->rel_error);
    printf("\n");
    st->n++;
    st->n_lossless += r->lossless;
    st->sum_base += r->base_rel_error;
    st->sum_total += r->rel_error;
    st->any_slices |= r->rank > 0;
    st->any_base |= has_base;
}

int main(int argc, char **argv) {
    const char *input = NULL, *out = NULL, *tok = NULL, *lowrank = NULL;
    int act_quant = -1, ternary = 0, bcq = 0, have_scale = 0, have_layout = 0, have_group = 0, have_pow2 = 0,
        have_slice = 0;
    char err[1024];
    trlc_write_opts o = trlc_write_default_opts();
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
    o.linear = ternary ? TRLC_LINEAR_TERNARY : bcq ? TRLC_LINEAR_BCQ : lowrank ? TRLC_LINEAR_LOWRANK : TRLC_LINEAR_DENSE;
    report_state st = {0};
    o.on_tensor = on_tensor;
    o.on_warning = on_warning;
    o.user = &st;

    trlc_model_src *src = NULL;
    if (trlc_source_open(input, tok, &src, err, sizeof err)) {
        fprintf(stderr, "trillium-convert: %s\n", err);
        return 1;
    }
    if (!src->tok.blob) {
        fprintf(stderr, "trillium-convert: %s: no tokenizer; pass --tokenizer FILE%s\n", input,
                src->cfg.rope_style == TRL_ROPE_INTERLEAVED ? " (the llama2.c tokenizer.bin)" : "");
        trlc_source_free(src);
        return 1;
    }
    if (have_layout && !ternary && strncmp(src->source, "gguf:", 5)) {
        trlc_source_free(src);
        return usage_error("--ternary-layout needs --ternary (or a GGUF input with ternary tensors)", NULL);
    }
    if (act_quant >= 0) src->cfg.act_quant = (trl_act_quant)act_quant;
    if (o.linear != TRLC_LINEAR_DENSE) fflush(stdout);
    trlc_write_summary s;
    int rc = trlc_pack_write(src, out, &o, &s, err, sizeof err);
    if (rc) {
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
    }
    trlc_source_free(src);
    return rc ? 1 : 0;
}
