/* base_pack.h - the small pack fuzz_pack reads its manifests beside, and that
 * make_seeds.c takes the manifest seed from: the tests' tiny GGUF model
 * (tests/converter/ggufbuild.h) through the converter, so the seed's chunk
 * sizes and sha256s match what fuzz_pack writes at start-up. */
#ifndef TRLC_FUZZ_BASE_PACK_H
#define TRLC_FUZZ_BASE_PACK_H

#include "trlc.h"

#include "../tests/converter/ggufbuild.h"

static inline int fuzz_base_pack(const char *dir, char *err, size_t errlen) {
    gb b = {0};
    tiny_opts o;
    memset(&o, 0, sizeof o);
    o.dim = 8, o.hidden = 16;
    tiny_build(&b, &o);
    trlc_model_src *src = NULL;
    trlc_write_opts wo = trlc_write_default_opts();
    wo.chunk_bytes = 2048; /* two chunks */
    wo.force = 1;
    int rc = trlc_gguf_model_from_mem(b.d, b.n, "tiny.gguf", &src, err, errlen) ||
             trlc_pack_write(src, dir, &wo, NULL, err, errlen);
    trlc_source_free(src);
    free(b.d);
    return rc ? -1 : 0;
}

#endif
