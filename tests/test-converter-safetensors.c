/* test-converter-safetensors.c - the .safetensors reader on good and bad files. */
#include "converter/testutil.h"
#include "trlc.h"

static char *dir;
static char err[1024];

/* open a raw file, expect failure with every substring */
#define EXPECT_FAIL(path, ...)                                                                                     \
    do {                                                                                                           \
        trlc_safetensors st;                                                                                       \
        err[0] = 0;                                                                                                \
        CHECK(trlc_safetensors_open(path, &st, err, sizeof err) == -1);                                            \
        CHECK_ERR(err, path, __VA_ARGS__);                                                                         \
    } while (0)

static void test_good(void) {
    char *p = join(dir, "good.safetensors");
    st_builder b;
    st_init(&b);
    float f[6] = {1.0f, -2.5f, 0.125f, 3.0f, -0.0f, 65504.0f};
    long long s23[2] = {2, 3};
    st_add(&b, "a.f32", "F32", 2, s23, f, sizeof f);
    uint16_t h[3] = {0x3C00, 0xC000, 0x3800}; /* 1, -2, 0.5 */
    long long s3[1] = {3};
    st_add(&b, "b.f16", "F16", 1, s3, h, sizeof h);
    uint16_t bf[3] = {0x3F80, 0xC040, 0x3E00}; /* 1, -3, 0.125 */
    st_add(&b, "c.bf16", "BF16", 1, s3, bf, sizeof bf);
    st_add(&b, "d.empty", "F32", 2, (long long[]){0, 4}, NULL, 0);
    int8_t q[4] = {1, -1, 0, 1};
    st_add(&b, "e.i8", "I8", 1, (long long[]){4}, q, 4);
    st_write(&b, p);

    trlc_safetensors st;
    CHECK(trlc_safetensors_open(p, &st, err, sizeof err) == 0);
    CHECK(st.n_tensors == 5);
    const trlc_st_tensor *t = trlc_safetensors_find(&st, "a.f32");
    CHECK(t && t->dtype == TRLC_DT_F32 && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
          t->numel == 6 && t->nbytes == 24);
    float out[6];
    if (t) {
        CHECK(trlc_dtype_to_f32(t->dtype, t->data, 6, out) == 0);
        CHECK(!memcmp(out, f, sizeof f));
    }
    t = trlc_safetensors_find(&st, "b.f16");
    CHECK(t && t->dtype == TRLC_DT_F16);
    if (t) {
        trlc_dtype_to_f32(t->dtype, t->data, 3, out);
        CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.5f);
    }
    t = trlc_safetensors_find(&st, "c.bf16");
    CHECK(t && t->dtype == TRLC_DT_BF16);
    if (t) {
        trlc_dtype_to_f32(t->dtype, t->data, 3, out);
        CHECK(out[0] == 1.0f && out[1] == -3.0f && out[2] == 0.125f);
    }
    t = trlc_safetensors_find(&st, "d.empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0);
    t = trlc_safetensors_find(&st, "e.i8");
    CHECK(t && t->dtype == TRLC_DT_I8 && trlc_dtype_to_f32(t->dtype, t->data, 4, out) == -1);
    CHECK(trlc_safetensors_find(&st, "missing") == NULL);
    CHECK(trlc_safetensors_find(&st, "__metadata__") == NULL);
    trlc_safetensors_close(&st);
    trlc_safetensors_close(&st); /* a second close is harmless */
    free(p);
}

static void test_bad(void) {
    char *p = join(dir, "bad.safetensors");
    unsigned char data[64] = {0};

    write_file(p, "\x10\x00\x00", 3);
    EXPECT_FAIL(p, "truncated", "8-byte header length");

    write_file(p, "", 0);
    EXPECT_FAIL(p, "truncated");

    st_write_raw(p, 1000, "{}", NULL, 0);
    EXPECT_FAIL(p, "header length 1000 exceeds the file size");

    st_write_raw(p, 0xFFFFFFFFFFFFFFF0ull, "{}", NULL, 0);
    EXPECT_FAIL(p, "exceeds the file size");

    const char *bad_json = "{\"a\":{\"dtype\":\"F32\",";
    st_write_raw(p, strlen(bad_json), bad_json, NULL, 0);
    EXPECT_FAIL(p, "header: bad JSON");

    const char *arr = "[1,2]";
    st_write_raw(p, strlen(arr), arr, NULL, 0);
    EXPECT_FAIL(p, "header: expected a JSON object");

    const char *oob = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    st_write_raw(p, strlen(oob), oob, data, 8); /* data section only 8 bytes */
    EXPECT_FAIL(p, "tensor 'w'", "data_offsets", "runs past the data section");

    const char *wrong = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}";
    st_write_raw(p, strlen(wrong), wrong, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "data_offsets", "20 bytes but shape and dtype F32 need 24");

    const char *unk = "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    st_write_raw(p, strlen(unk), unk, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "dtype", "unknown dtype 'Q4_K'");

    const char *ovf = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}";
    st_write_raw(p, strlen(ovf), ovf, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "shape", "overflows");

    const char *ovf2 = "{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}";
    st_write_raw(p, strlen(ovf2), ovf2, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "shape", "overflows");

    const char *huge = "{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}";
    st_write_raw(p, strlen(huge), huge, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "shape[0]");

    const char *neg = "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}";
    st_write_raw(p, strlen(neg), neg, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "shape[0]", "not a non-negative integer");

    const char *rev = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}";
    st_write_raw(p, strlen(rev), rev, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "data_offsets", "begin <= end");

    const char *noff = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}";
    st_write_raw(p, strlen(noff), noff, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "data_offsets");

    const char *nodt = "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}";
    st_write_raw(p, strlen(nodt), nodt, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "dtype: missing");

    const char *dup = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    st_write_raw(p, strlen(dup), dup, data, 64);
    EXPECT_FAIL(p, "tensor 'w' appears twice");

    const char *dims = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}";
    st_write_raw(p, strlen(dims), dims, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "9 dimensions");

    const char *notobj = "{\"w\":[1,2]}";
    st_write_raw(p, strlen(notobj), notobj, data, 64);
    EXPECT_FAIL(p, "tensor 'w'", "expected an object");

    /* a good file cut short: the last tensor's data is gone */
    st_builder b;
    st_init(&b);
    float f[16] = {0};
    st_add(&b, "x", "F32", 1, (long long[]){16}, f, sizeof f);
    st_write(&b, p);
    size_t n = 0;
    char *whole = read_file(p, &n);
    write_file(p, whole, n - 10);
    EXPECT_FAIL(p, "tensor 'x'", "runs past the data section");
    write_file(p, whole, 20); /* inside the header */
    EXPECT_FAIL(p, "exceeds the file size");
    free(whole);

    char *none = join(dir, "does-not-exist.safetensors");
    EXPECT_FAIL(none, "cannot open");
    free(none);
    free(p);
}

int main(void) {
    dir = make_tmpdir("st");
    test_good();
    test_bad();
    rm_tree(dir);
    free(dir);
    return test_done("test-converter-safetensors");
}
