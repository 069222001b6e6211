/* fuzz_gguf.c - the GGUF reader (converter/gguf.c): parse; as a llama model
 * source (config, tensors, the embedded tokenizer into a blob); every tensor
 * decoded row by row; and, for the files that get that far, the pack writer
 * (into a RAM directory) and the loader and the core's model binding on what
 * it wrote. */
#include "fuzz_util.h"
#include "trlc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[1024];
    trlc_gguf g;
    if (trlc_gguf_parse(data, size, "fuzz.gguf", &g, err, sizeof err) == 0) {
        for (size_t i = 0; i < g.n_kv; i++) (void)trlc_gguf_type_name(g.kv[i].type);
        trlc_gguf_close(&g);
    }
    trlc_model_src *src = NULL;
    if (trlc_gguf_model_from_mem(data, size, "fuzz.gguf", &src, err, sizeof err)) return 0;
    float *row = NULL;
    for (size_t i = 0; i < src->n_tensors; i++) {
        const trlc_src_tensor *t = &src->tensors[i];
        uint64_t rows = t->n_dims == 2 ? (uint64_t)t->shape[0] : 1;
        uint64_t cols = t->n_dims == 2 ? (uint64_t)t->shape[1] : (uint64_t)t->shape[0];
        uint64_t rb = trlc_dtype_row_bytes(t->dtype, cols);
        if (!rb || rows * rb != t->nbytes) abort(); /* the reader promised this */
        float *r = realloc(row, (size_t)cols * sizeof *r);
        if (!r) break;
        row = r;
        for (uint64_t k = 0; k < rows; k++) trlc_dtype_to_f32(t->dtype, t->data + k * rb, (size_t)cols, row);
    }
    free(row);
    if (src->tok.blob) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/pack", fuzz_scratch());
        trlc_write_opts o = trlc_write_default_opts();
        o.force = 1;
        o.chunk_bytes = 1 << 16;
        if (trlc_pack_write(src, dir, &o, NULL, err, sizeof err) == 0) {
            trlc_pack *p = NULL;
            if (trlc_pack_open(dir, &p, err, sizeof err) == 0) {
                trl_model *m = NULL;
                trl_error e;
                if (trl_model_create(&p->config, p->tensors, p->n_tensors, &m, &e) == TRL_OK) trl_model_free(m);
                trlc_pack_close(p);
            } else {
                abort(); /* a pack the writer wrote must load */
            }
        }
    }
    trlc_source_free(src);
    return 0;
}
