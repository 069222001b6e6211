/* trillium-convert - turn a checkpoint into a Trillium model pack.
 *
 *   trillium-convert INPUT -o PACKDIR [--dtype f32|f16|q8_0] [--tokenizer FILE]
 *                    [--name NAME] [--chunk-mb N] [--act-quant float|int8] [--force]
 *
 * INPUT is a Hugging Face model directory (config.json + safetensors) or a
 * llama2.c .bin checkpoint (then --tokenizer tokenizer.bin is required). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trlc.h"

static const char USAGE[] =
    "usage: trillium-convert INPUT -o PACKDIR [--dtype f32|f16|q8_0] [--tokenizer FILE]\n"
    "                        [--name NAME] [--chunk-mb N] [--act-quant float|int8] [--force]\n"
    "  INPUT        a Hugging Face model directory or a llama2.c .bin checkpoint\n"
    "  -o PACKDIR   the pack directory to write (refused if it exists, unless --force)\n"
    "  --dtype      encoding of the weight matrices (default f32; norms are always f32)\n"
    "  --tokenizer  tokenizer file: llama2.c tokenizer.bin, or a tokenizer.json\n"
    "  --name       the pack's name (default: the input's base name)\n"
    "  --chunk-mb   most MiB per chunk file (default 4)\n"
    "  --act-quant  activations before each linear layer: float (default) or int8 (BitNet b1.58's\n"
    "               absmax per token; needs a core that supports it)\n"
    "  --force      replace an existing pack at PACKDIR\n";

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "trillium-convert: %s%s%s (see --help)\n", msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

int main(int argc, char **argv) {
    const char *input = NULL, *out = NULL, *tok = NULL;
    int act_quant = -1;
    trlc_write_opts o = trlc_write_default_opts();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!more) return usage_error("missing value for", a);
            out = argv[++i];
        } else if (!strcmp(a, "--dtype")) {
            if (!more) return usage_error("missing value for", a);
            const char *v = argv[++i];
            int e = trl_encoding_from_name(v, strlen(v));
            if (e != TRL_ENC_F32 && e != TRL_ENC_F16 && e != TRL_ENC_Q8_0)
                return usage_error("--dtype must be f32, f16 or q8_0, not", v);
            o.matrix_encoding = (trl_encoding)e;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!more) return usage_error("missing value for", a);
            tok = argv[++i];
        } else if (!strcmp(a, "--name")) {
            if (!more) return usage_error("missing value for", a);
            o.name = argv[++i];
        } else if (!strcmp(a, "--chunk-mb")) {
            if (!more) return usage_error("missing value for", a);
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 4096)
                return usage_error("--chunk-mb must be an integer from 1 to 4096, not", argv[i]);
            o.chunk_bytes = (uint64_t)v << 20;
        } else if (!strcmp(a, "--act-quant")) {
            if (!more) return usage_error("missing value for", a);
            const char *v = argv[++i];
            if (!strcmp(v, "float")) act_quant = TRL_ACT_FLOAT;
            else if (!strcmp(v, "int8")) act_quant = TRL_ACT_INT8;
            else return usage_error("--act-quant must be float or int8, not", v);
        } else if (!strcmp(a, "--force")) {
            o.force = 1;
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

    char err[1024];
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
    if (act_quant >= 0) src->cfg.act_quant = (trl_act_quant)act_quant;
    trlc_write_summary s;
    int rc = trlc_pack_write(src, out, &o, &s, err, sizeof err);
    if (rc) {
        fprintf(stderr, "trillium-convert: %s\n", err);
    } else {
        printf("wrote %s: %zu tensors (%llu parameters, %s), %llu bytes in %zu chunk%s\n", out, s.n_tensors,
               (unsigned long long)s.n_params, trl_encoding_name(o.matrix_encoding),
               (unsigned long long)s.download_bytes, s.n_chunks, s.n_chunks == 1 ? "" : "s");
    }
    trlc_source_free(src);
    return rc ? 1 : 0;
}
