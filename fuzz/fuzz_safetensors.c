/* fuzz_safetensors.c - the .safetensors reader (converter/safetensors.c): open
 * (header length, JSON header, dtypes, shapes, offsets), look tensors up, and
 * decode every F32/F16/BF16 tensor. */
#include "fuzz_util.h"
#include "trlc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], err[1024];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    trlc_safetensors st;
    if (trlc_safetensors_open(path, &st, err, sizeof err) == 0) {
        float buf[256];
        for (size_t i = 0; i < st.n_tensors; i++) {
            const trlc_st_tensor *t = &st.tensors[i];
            if (trlc_safetensors_find(&st, t->name) == NULL) abort();
            size_t es = trlc_dtype_size(t->dtype);
            if (!es || t->numel * es != t->nbytes) abort(); /* the reader promised this */
            for (uint64_t at = 0; at < t->numel; at += 256) {
                size_t n = t->numel - at < 256 ? (size_t)(t->numel - at) : 256;
                trlc_dtype_to_f32(t->dtype, t->data + at * es, n, buf);
            }
        }
        trlc_safetensors_find(&st, "model.embed_tokens.weight");
        trlc_safetensors_close(&st);
    }
    close(fd);
    return 0;
}
