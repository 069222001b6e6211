/* fuzz_pack.c - the pack loader (converter/pack.c): the input is a
 * manifest.json, read beside fixed chunk files (a real small pack, written at
 * start-up by the converter itself, so the seeds' sha256s match); what loads
 * is bound to a model by the core (base_pack.h). */
#include "fuzz_util.h"
#include "base_pack.h"

static char dir[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char err[1024];
    snprintf(dir, sizeof dir, "%s/pack", fuzz_scratch());
    if (fuzz_base_pack(dir, err, sizeof err)) {
        fprintf(stderr, "fuzz_pack: cannot make the base pack: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[600], err[1024];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    trlc_pack *p = NULL;
    if (trlc_pack_open(dir, &p, err, sizeof err) == 0) {
        trl_model *m = NULL;
        trl_error e;
        for (size_t i = 0; i < p->n_variants; i++) trlc_pack_variant_find(p, p->variants[i].id);
        trlc_pack_find(p, "token_embd.weight");
        if (trl_model_create(&p->config, p->tensors, p->n_tensors, &m, &e) == TRL_OK) trl_model_free(m);
        if (p->tokenizer) {
            trl_tokenizer *t = NULL;
            if (trl_tokenizer_create(p->tokenizer, p->tokenizer_bytes, &t, &e) == TRL_OK) trl_tokenizer_free(t);
        }
        trlc_pack_close(p);
    }
    return 0;
}
