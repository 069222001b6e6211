/* trillium-eval - run a pack on a prompt and print logits as JSON, for
 * comparing the core with the numpy reference.
 *
 *   trillium-eval PACK (--tokens 1,2,3 | --prompt TEXT) [--greedy N] [--all-logits] [--n-ctx N] [--no-bos]
 *                 [--variant ID | --rank-slices N]
 *
 * Prints {"tokens": [prompt ids], "logits": [last position], "generated": [N greedy ids],
 * "text": "the generated ids detokenized", "text_hex": its exact bytes}
 * (+ "all_logits": one row per prompt token). Invalid UTF-8 in "text" becomes U+FFFD.
 * Greedy = argmax, lowest id on ties; exactly N tokens, EOS does not stop it.
 * --prompt tokenizes with BOS unless --no-bos. --variant runs a pack variant (its
 * rank_slices), --rank-slices N the first N rank slices of every factorised
 * layer; the default is all of them (the largest variant). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trlc_internal.h"

static const char USAGE[] =
    "usage: trillium-eval PACK (--tokens 1,2,3 | --prompt TEXT) [--greedy N] [--all-logits] [--n-ctx N]\n"
    "                     [--no-bos] [--variant ID | --rank-slices N]\n";

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "trillium-eval: %s%s%s (see --help)\n", msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* "1,2,3" -> ids; -1 on a malformed list */
static int parse_tokens(const char *s, int32_t **ids, int32_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *ids = malloc(cap * sizeof **ids);
    if (!*ids) return -1;
    *n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX) return -1;
        (*ids)[(*n)++] = (int32_t)v;
        if (*end == 0) return 0;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

static void put_floats(trlc_buf *b, const float *x, int32_t n) {
    trlc_buf_puts(b, "[");
    for (int32_t i = 0; i < n; i++) {
        if (i) trlc_buf_puts(b, ",");
        if (isfinite(x[i])) trlc_buf_printf(b, "%.9g", (double)x[i]);
        else trlc_buf_puts(b, "null");
    }
    trlc_buf_puts(b, "]");
}

static void put_ids(trlc_buf *b, const int32_t *x, int32_t n) {
    trlc_buf_puts(b, "[");
    for (int32_t i = 0; i < n; i++) trlc_buf_printf(b, i ? ",%d" : "%d", (int)x[i]);
    trlc_buf_puts(b, "]");
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    const char *pack_dir = NULL, *tokens_arg = NULL, *prompt = NULL;
    long greedy = 0, n_ctx = 0, rank_slices = -1;
    const char *variant = NULL;
    int all = 0, bos = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--tokens")) {
            if (!more) return usage_error("missing value for", a);
            tokens_arg = argv[++i];
        } else if (!strcmp(a, "--prompt")) {
            if (!more) return usage_error("missing value for", a);
            prompt = argv[++i];
        } else if (!strcmp(a, "--greedy")) {
            if (!more || parse_int(argv[++i], 0, 1 << 24, &greedy))
                return usage_error("--greedy needs a count from 0", more ? argv[i] : NULL);
        } else if (!strcmp(a, "--n-ctx")) {
            if (!more || parse_int(argv[++i], 0, 1 << 24, &n_ctx))
                return usage_error("--n-ctx needs a non-negative integer", more ? argv[i] : NULL);
        } else if (!strcmp(a, "--variant")) {
            if (!more) return usage_error("missing value for", a);
            variant = argv[++i];
        } else if (!strcmp(a, "--rank-slices")) {
            if (!more || parse_int(argv[++i], 0, INT32_MAX, &rank_slices))
                return usage_error("--rank-slices needs a non-negative integer", more ? argv[i] : NULL);
        } else if (!strcmp(a, "--no-bos")) {
            bos = 0;
        } else if (!strcmp(a, "--all-logits")) {
            all = 1;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option", a);
        } else if (!pack_dir) {
            pack_dir = a;
        } else {
            return usage_error("more than one PACK", a);
        }
    }
    if (!pack_dir) return usage_error("missing PACK", NULL);
    if (!tokens_arg == !prompt) return usage_error("give exactly one of --tokens and --prompt", NULL);
    if (variant && rank_slices >= 0) return usage_error("give at most one of --variant and --rank-slices", NULL);

    char err[1024];
    int rc = 1;
    trlc_pack *pack = NULL;
    trl_model *model = NULL;
    trl_ctx *ctx = NULL;
    trl_tokenizer *tok = NULL;
    int32_t *ids = NULL, *gen = NULL, n = 0;
    float *all_logits = NULL;
    char *text = NULL;
    trlc_buf out = {0};
    trl_error e;
    trl_tensor *vt = NULL;

    if (trlc_pack_open(pack_dir, &pack, err, sizeof err)) {
        fprintf(stderr, "trillium-eval: %s\n", err);
        goto done;
    }
    /* the variant's tensors: those of its tiers. By default all of them, or,
     * in a version-3 pack (a --family, where members share names), the last variant */
    const trlc_pack_variant *pv = NULL;
    if (variant) {
        pv = trlc_pack_variant_find(pack, variant);
        if (!pv) {
            fprintf(stderr, "trillium-eval: --variant: %s has no variant \"%s\"%s", pack_dir, variant,
                    pack->n_variants ? " (it has" : "\n");
            for (size_t i = 0; i < pack->n_variants; i++)
                fprintf(stderr, " %s%s", pack->variants[i].id, i + 1 < pack->n_variants ? "," : ")\n");
            goto done;
        }
    } else if (pack->version >= 3 && pack->n_variants) {
        pv = &pack->variants[pack->n_variants - 1];
    }
    size_t n_bound = pack->n_tensors;
    vt = pv ? trlc_pack_variant_tensors(pack, pv, &n_bound) : NULL;
    if (pv && !vt) {
        fprintf(stderr, "trillium-eval: out of memory\n");
        goto done;
    }
    if (trl_model_create(&pack->config, vt ? vt : pack->tensors, n_bound, &model, &e) != TRL_OK) {
        fprintf(stderr, "trillium-eval: %s: %s\n", pack_dir, e.msg);
        goto done;
    }
    if (trl_tokenizer_create(pack->tokenizer, pack->tokenizer_bytes, &tok, &e) != TRL_OK) {
        fprintf(stderr, "trillium-eval: %s: tokenizer: %s\n", pack_dir, e.msg);
        goto done;
    }
    const int32_t V = pack->config.vocab_size;
    if (tokens_arg) {
        if (parse_tokens(tokens_arg, &ids, &n)) {
            fprintf(stderr, "trillium-eval: --tokens: expected comma-separated token ids, got \"%s\"\n", tokens_arg);
            goto done;
        }
    } else {
        int32_t need = trl_tokenize(tok, prompt, strlen(prompt), bos, NULL, 0);
        if (need < 0 || !(ids = malloc(((size_t)need + 1) * sizeof *ids)) ||
            trl_tokenize(tok, prompt, strlen(prompt), bos, ids, need) != need) {
            fprintf(stderr, "trillium-eval: --prompt: cannot tokenize the text\n");
            goto done;
        }
        n = need;
    }
    if (n == 0) {
        fprintf(stderr, "trillium-eval: the prompt has no tokens\n");
        goto done;
    }
    for (int32_t i = 0; i < n; i++)
        if (ids[i] >= V) {
            fprintf(stderr, "trillium-eval: --tokens: id %d is out of range (vocab_size %d)\n", (int)ids[i], (int)V);
            goto done;
        }
    trl_ctx_params cp = trl_ctx_default_params();
    cp.n_ctx = (int32_t)n_ctx;
    int32_t ctx_len = n_ctx ? (int32_t)n_ctx : pack->config.max_seq_len;
    int64_t needed = (int64_t)n + (greedy > 0 ? greedy - 1 : 0);
    if (needed > ctx_len) {
        fprintf(stderr, "trillium-eval: %lld tokens (prompt %d + greedy %ld) do not fit a context of %d; raise --n-ctx\n",
                (long long)needed, (int)n, greedy, (int)ctx_len);
        goto done;
    }
    if (trl_ctx_create(model, &cp, &ctx, &e) != TRL_OK) {
        fprintf(stderr, "trillium-eval: %s\n", e.msg);
        goto done;
    }
    if (pv) rank_slices = pv->rank_slices;
    if (rank_slices >= 0 && trl_ctx_set_rank_slices(ctx, (int32_t)rank_slices) != TRL_OK) {
        fprintf(stderr, "trillium-eval: rank slices: %s\n", trl_ctx_last_error(ctx));
        goto done;
    }
    if (all && !(all_logits = malloc((size_t)n * (size_t)V * sizeof *all_logits))) {
        fprintf(stderr, "trillium-eval: out of memory for %d x %d logits\n", (int)n, (int)V);
        goto done;
    }
    if (trl_ctx_prefill(ctx, ids, n, all_logits) != TRL_OK) {
        fprintf(stderr, "trillium-eval: prefill: %s\n", trl_ctx_last_error(ctx));
        goto done;
    }
    trlc_buf_puts(&out, "{\"tokens\":");
    put_ids(&out, ids, n);
    trlc_buf_puts(&out, ",\"logits\":");
    put_floats(&out, trl_ctx_logits(ctx), V);
    if (all) {
        trlc_buf_puts(&out, ",\"all_logits\":[");
        for (int32_t i = 0; i < n; i++) {
            if (i) trlc_buf_puts(&out, ",");
            put_floats(&out, all_logits + (size_t)i * (size_t)V, V);
        }
        trlc_buf_puts(&out, "]");
    }
    gen = malloc(((size_t)greedy + 1) * sizeof *gen);
    if (!gen) {
        fprintf(stderr, "trillium-eval: out of memory\n");
        goto done;
    }
    for (long i = 0; i < greedy; i++) {
        gen[i] = argmax(trl_ctx_logits(ctx), V);
        if (i + 1 < greedy && trl_ctx_decode(ctx, gen[i]) != TRL_OK) {
            fprintf(stderr, "trillium-eval: decode: %s\n", trl_ctx_last_error(ctx));
            goto done;
        }
    }
    trlc_buf_puts(&out, ",\"generated\":");
    put_ids(&out, gen, (int32_t)greedy);
    int32_t tl = trl_detokenize(tok, gen, (int32_t)greedy, NULL, 0);
    if (tl < 0 || !(text = malloc((size_t)tl + 1)) || trl_detokenize(tok, gen, (int32_t)greedy, text, tl + 1) != tl) {
        fprintf(stderr, "trillium-eval: cannot detokenize the generated ids\n");
        goto done;
    }
    trlc_buf_puts(&out, ",\"text\":");
    trlc_buf_json_str(&out, text, (size_t)tl);
    trlc_buf_puts(&out, ",\"text_hex\":\"");
    for (int32_t i = 0; i < tl; i++) trlc_buf_printf(&out, "%02x", (unsigned char)text[i]);
    trlc_buf_puts(&out, "\"");
    trlc_buf_puts(&out, "}\n");
    if (out.oom) {
        fprintf(stderr, "trillium-eval: out of memory for the output\n");
        goto done;
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout)) {
        fprintf(stderr, "trillium-eval: cannot write the output\n");
        goto done;
    }
    rc = 0;
done:
    trlc_buf_free(&out);
    free(text);
    free(gen);
    free(all_logits);
    free(ids);
    trl_ctx_free(ctx);
    trl_tokenizer_free(tok);
    trl_model_free(model);
    free(vt);
    trlc_pack_close(pack);
    return rc;
}
