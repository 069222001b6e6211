/* fuzz_llama2c.c - the llama2.c checkpoint reader (converter/llama2c.c): the
 * header, the exact size it implies, the tensor table; every tensor read. */
#include "fuzz_util.h"
#include "trlc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], err[1024];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    trlc_model_src *src = NULL;
    if (trlc_llama2c_open(path, NULL, &src, err, sizeof err) == 0) {
        float acc = 0.0f, buf[64];
        for (size_t i = 0; i < src->n_tensors; i++) {
            const trlc_src_tensor *t = &src->tensors[i];
            for (size_t at = 0; at + 4 <= t->nbytes; at += 4 * 64) {
                size_t n = (t->nbytes - at) / 4 < 64 ? (t->nbytes - at) / 4 : 64;
                trlc_dtype_to_f32(t->dtype, t->data + at, n, buf);
                acc += buf[0];
            }
        }
        (void)acc;
        trlc_source_free(src);
    }
    close(fd);
    return 0;
}
