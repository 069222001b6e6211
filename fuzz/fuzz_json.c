/* fuzz_json.c - the strict JSON reader (core/src/json.c): parse, then visit
 * every token with every accessor. */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"

static void walk(const tj_doc *d, int tok, int depth) {
    int64_t i;
    double f;
    int b;
    char buf[64];
    tj_get_i64(d, tok, &i);
    tj_get_f64(d, tok, &f);
    tj_get_bool(d, tok, &b);
    tj_is_null(d, tok);
    long n = tj_str_copy(d, tok, NULL, 0);
    if (n >= 0) {
        char *s = malloc((size_t)n + 1);
        tj_str_copy(d, tok, s, (size_t)n + 1);
        free(s);
        tj_str_copy(d, tok, buf, sizeof buf); /* a short buffer too */
        tj_str_eq(d, tok, "dtype");
    }
    tj_obj_get(d, tok, "model");
    tj_arr_at(d, tok, 3);
    if (depth > 70) return;
    for (int c = tj_first(d, tok); c >= 0; c = tj_next(d, tok, c)) {
        walk(d, c, depth + 1);
        if (d->toks[tok].type == TJ_OBJ /* c is a key, its value is c + 1 */) {
            walk(d, c + 1, depth + 1);
            c = c + 1;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tj_doc d;
    char err[128];
    if (tj_parse((const char *)data, size, &d, err, sizeof err) == 0) {
        if (d.n) walk(&d, 0, 0);
        tj_free(&d);
    }
    return 0;
}
