/* formats.c - weight encodings: sizes, half floats, row encode/decode.
 * The on-disk layouts are specified in docs/FORMAT.md; this file is their one
 * implementation, shared by the core and the converter. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* q8_0: 2-byte f16 scale + 32 int8 = 34 bytes per 32 weights. */
_Static_assert(sizeof(trl_block_q8_0) == TRL_Q8_0_BLOCK_BYTES, "q8_0 block must be 34 bytes");

static const char *const enc_names[TRL_ENC_COUNT] = {"f32", "f16", "q8_0", "t2", "t1", "bcq"};

const char *trl_encoding_name(trl_encoding e) {
    return (unsigned)e < TRL_ENC_COUNT ? enc_names[e] : "unknown";
}

int trl_encoding_from_name(const char *name, size_t len) {
    if (!name) return -1;
    for (int i = 0; i < TRL_ENC_COUNT; i++)
        if (strlen(enc_names[i]) == len && !memcmp(enc_names[i], name, len)) return i;
    return -1;
}

double trl_encoding_bits_per_weight(trl_encoding e) {
    switch (e) {
    case TRL_ENC_F32: return 32.0;
    case TRL_ENC_F16: return 16.0;
    case TRL_ENC_Q8_0: return 8.0 * TRL_Q8_0_BLOCK_BYTES / TRL_Q8_0_BLOCK;
    case TRL_ENC_T2: return 2.0;
    case TRL_ENC_T1: return 8.0 / 5.0;
    case TRL_ENC_BCQ: return 2.0 + 2.0 * 16.0 / 128.0; /* k=2, g=128; see trl_tensor_bytes */
    default: return 0.0;
    }
}

size_t trl_encoding_row_bytes(trl_encoding e, uint64_t cols) {
    if (cols == 0 || cols > ((uint64_t)1 << 40)) return 0;
    switch (e) {
    case TRL_ENC_F32: return (size_t)(cols * 4);
    case TRL_ENC_F16: return (size_t)(cols * 2);
    case TRL_ENC_Q8_0: return (size_t)((cols + TRL_Q8_0_BLOCK - 1) / TRL_Q8_0_BLOCK * TRL_Q8_0_BLOCK_BYTES);
    case TRL_ENC_T2: return (size_t)((cols + TRL_T2_BLOCK - 1) / TRL_T2_BLOCK * TRL_T2_BLOCK_BYTES);
    case TRL_ENC_T1: return (size_t)((cols + 4) / 5);
    case TRL_ENC_BCQ: {
        trl_enc_params p = {2, 128, 0, 0, 0};
        return trl_bcq_row_bytes(&p, cols);
    }
    default: return 0;
    }
}

size_t trl_bcq_row_bytes(const trl_enc_params *p, uint64_t cols) {
    if (!p || p->bits < 1 || p->bits > 4 || p->group < 32 || p->group > 256 || p->group % 32) return 0;
    uint64_t g = (uint64_t)p->group, ng = (cols + g - 1) / g;
    return (size_t)((uint64_t)p->bits * (ng * g / 8) + 2 * (uint64_t)p->bits * ng);
}

int64_t trl_ternary_n_scales(const trl_enc_params *p, uint64_t rows) {
    switch (p ? p->scale_axis : -1) {
    case TRL_SCALE_TENSOR: return 1;
    case TRL_SCALE_ROW: return (int64_t)rows;
    case TRL_SCALE_ROW_BLOCKS:
    case TRL_SCALE_COL_BLOCKS: return p->scale_blocks;
    default: return -1;
    }
}

trl_status trl_enc_params_check(trl_encoding e, const trl_enc_params *p, uint64_t rows, uint64_t cols,
                                trl_error *err) {
    static const trl_enc_params zero;
    if (!p) p = &zero;
    if (rows == 0 || cols == 0) return trl_set_error(err, TRL_ERR_BAD_TENSOR, "shape: zero dimension");
    switch (e) {
    case TRL_ENC_F32:
    case TRL_ENC_F16:
    case TRL_ENC_Q8_0:
        if (memcmp(p, &zero, sizeof zero))
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params: %s takes no parameters", trl_encoding_name(e));
        return TRL_OK;
    case TRL_ENC_T2:
    case TRL_ENC_T1:
        if (p->bits || p->group || p->pow2)
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params: bits/group/pow2 are for bcq, not %s",
                                 trl_encoding_name(e));
        if (p->scale_axis < TRL_SCALE_TENSOR || p->scale_axis > TRL_SCALE_COL_BLOCKS)
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params.scale_axis: %d is not 0..3", p->scale_axis);
        if (p->scale_axis >= TRL_SCALE_ROW_BLOCKS) {
            uint64_t k = (uint64_t)p->scale_blocks, n = p->scale_axis == TRL_SCALE_ROW_BLOCKS ? rows : cols;
            if (p->scale_blocks < 1 || p->scale_blocks > 64)
                return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params.scale_blocks: %d is not 1..64", p->scale_blocks);
            if (n % k)
                return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params.scale_blocks: %d does not divide %llu",
                                     p->scale_blocks, (unsigned long long)n);
            if (p->scale_axis == TRL_SCALE_COL_BLOCKS && (cols / k) % TRL_T2_BLOCK)
                return trl_set_error(err, TRL_ERR_BAD_TENSOR,
                                     "params.scale_blocks: column blocks of %llu are not a multiple of %d",
                                     (unsigned long long)(cols / k), TRL_T2_BLOCK);
        } else if (p->scale_blocks) {
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params.scale_blocks: only with scale_axis 2 or 3");
        }
        return TRL_OK;
    case TRL_ENC_BCQ:
        if (p->bits < 1 || p->bits > 4)
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params.bits: %d is not 1..4", p->bits);
        if (p->group < 32 || p->group > 256 || p->group % 32)
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params.group: %d is not a multiple of 32 in 32..256",
                                 p->group);
        if (p->scale_axis || p->scale_blocks || (p->pow2 != 0 && p->pow2 != 1))
            return trl_set_error(err, TRL_ERR_BAD_TENSOR, "params: scale_axis/scale_blocks are for ternary");
        return TRL_OK;
    default: return trl_set_error(err, TRL_ERR_BAD_TENSOR, "encoding %d: unknown", (int)e);
    }
}

size_t trl_tensor_bytes(trl_encoding e, const trl_enc_params *p, uint64_t rows, uint64_t cols) {
    if (trl_enc_params_check(e, p, rows, cols, NULL)) return 0;
    size_t rb;
    switch (e) {
    case TRL_ENC_T2:
    case TRL_ENC_T1: {
        rb = trl_encoding_row_bytes(e, cols);
        if (!rb || rows > SIZE_MAX / rb) return 0;
        if (e == TRL_ENC_T1) { /* t1 packs the whole matrix in fives, row by row (rows padded to 5) */
            rb = (size_t)((cols + 4) / 5);
        }
        int64_t ns = trl_ternary_n_scales(p, rows);
        size_t codes = (size_t)rows * rb;
        if (ns < 0 || (uint64_t)ns > (SIZE_MAX - codes) / 4) return 0;
        return codes + (size_t)ns * 4;
    }
    case TRL_ENC_BCQ: rb = trl_bcq_row_bytes(p, cols); break;
    default: rb = trl_encoding_row_bytes(e, cols); break;
    }
    if (!rb || rows > SIZE_MAX / rb) return 0;
    return (size_t)rows * rb;
}

size_t trl_encoding_bytes(trl_encoding e, uint64_t rows, uint64_t cols) {
    if (e != TRL_ENC_F32 && e != TRL_ENC_F16 && e != TRL_ENC_Q8_0) return 0;
    size_t rb = trl_encoding_row_bytes(e, cols);
    if (!rb || rows == 0 || rows > SIZE_MAX / rb) return 0;
    return (size_t)rows * rb;
}

/* ------------------------------------------------------------ half floats */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t trl_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xFFu;
    uint32_t man = x & 0x7FFFFFu;
    if (exp == 0xFF) return (uint16_t)(sign | 0x7C00u | (man ? 0x200u | (man >> 13) : 0)); /* inf / nan */
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7C00u); /* overflow -> inf */
    if (e <= 0) {
        /* subnormal half (or zero): shift the full mantissa, round to nearest even */
        if (e < -10) return (uint16_t)sign;
        uint32_t m = man | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into the exponent: correct */
    return (uint16_t)h;
}

float trl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0) {
        if (!man) return bits_f32(sign);
        /* subnormal: value = man * 2^-24, exact in f32 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7F800000u | (man << 13));
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

float trl_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* ------------------------------------------------------------ rows */

void trl_quantize_block_q8_0(const float *x, int n, trl_block_q8_0 *b) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) amax = a;
    }
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = trl_f32_to_f16(d);
    for (int i = 0; i < TRL_Q8_0_BLOCK; i++) {
        float q = i < n ? roundf(x[i] * id) : 0.0f;
        if (q > 127.0f) q = 127.0f;
        if (q < -127.0f) q = -127.0f;
        b->qs[i] = (int8_t)q;
    }
}

trl_status trl_encode_row(trl_encoding e, const float *src, uint64_t n, void *dst) {
    if (!src || !dst || !trl_encoding_row_bytes(e, n)) return TRL_ERR_INVALID_ARG;
    switch (e) {
    case TRL_ENC_F32: memcpy(dst, src, (size_t)n * 4); return TRL_OK;
    case TRL_ENC_F16: {
        uint8_t *o = dst;
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h = trl_f32_to_f16(src[i]);
            memcpy(o + 2 * i, &h, 2);
        }
        return TRL_OK;
    }
    case TRL_ENC_Q8_0: {
        trl_block_q8_0 b;
        uint8_t *o = dst;
        for (uint64_t i = 0; i < n; i += TRL_Q8_0_BLOCK) {
            int len = n - i < TRL_Q8_0_BLOCK ? (int)(n - i) : TRL_Q8_0_BLOCK;
            trl_quantize_block_q8_0(src + i, len, &b);
            memcpy(o + (i / TRL_Q8_0_BLOCK) * TRL_Q8_0_BLOCK_BYTES, &b, sizeof b);
        }
        return TRL_OK;
    }
    default: return TRL_ERR_UNSUPPORTED;
    }
}

trl_status trl_decode_row(trl_encoding e, const void *src, uint64_t n, float *dst) {
    if (!src || !dst || !trl_encoding_row_bytes(e, n)) return TRL_ERR_INVALID_ARG;
    const uint8_t *s = src;
    switch (e) {
    case TRL_ENC_F32: memcpy(dst, src, (size_t)n * 4); return TRL_OK;
    case TRL_ENC_F16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = trl_f16_to_f32(h);
        }
        return TRL_OK;
    case TRL_ENC_Q8_0:
        for (uint64_t i = 0; i < n; i += TRL_Q8_0_BLOCK) {
            trl_block_q8_0 b;
            memcpy(&b, s + (i / TRL_Q8_0_BLOCK) * TRL_Q8_0_BLOCK_BYTES, sizeof b);
            float d = trl_f16_to_f32(b.d);
            for (uint64_t j = 0; j < TRL_Q8_0_BLOCK && i + j < n; j++) dst[i + j] = d * (float)b.qs[j];
        }
        return TRL_OK;
    default: return TRL_ERR_UNSUPPORTED;
    }
}

/* ------------------------------------------------------------ ternary and bcq packing */

trl_status trl_ternary_pack(trl_encoding e, const int8_t *trits, uint64_t rows, uint64_t cols, void *dst) {
    size_t rb = trl_encoding_row_bytes(e, cols);
    if (!trits || !dst || !rb || (e != TRL_ENC_T2 && e != TRL_ENC_T1)) return TRL_ERR_INVALID_ARG;
    uint8_t *o = dst;
    for (uint64_t r = 0; r < rows; r++) {
        const int8_t *t = trits + r * cols;
        uint8_t *row = o + r * rb;
        for (uint64_t c = 0; c < cols; c++)
            if (t[c] < -1 || t[c] > 1) return TRL_ERR_INVALID_ARG;
        if (e == TRL_ENC_T2) {
            memset(row, 0x55, rb); /* code 1 (weight 0) everywhere, padding included */
            for (uint64_t c = 0; c < cols; c++) trl_t2_set_code(row, c, (unsigned)(t[c] + 1));
        } else {
            for (uint64_t g = 0; g < rb; g++) {
                unsigned v = 0, m = 1;
                for (int i = 0; i < 5; i++, m *= 3) {
                    uint64_t c = g * 5 + (uint64_t)i;
                    v += (c < cols ? (unsigned)(t[c] + 1) : 1u) * m;
                }
                row[g] = (uint8_t)v;
            }
        }
    }
    return TRL_OK;
}

trl_status trl_ternary_unpack(trl_encoding e, const void *src, uint64_t rows, uint64_t cols, int8_t *trits) {
    size_t rb = trl_encoding_row_bytes(e, cols);
    if (!trits || !src || !rb || (e != TRL_ENC_T2 && e != TRL_ENC_T1)) return TRL_ERR_INVALID_ARG;
    const uint8_t *s = src;
    for (uint64_t r = 0; r < rows; r++) {
        const uint8_t *row = s + r * rb;
        int8_t *t = trits + r * cols;
        if (e == TRL_ENC_T2) {
            for (uint64_t c = 0; c < cols; c++) {
                unsigned u = trl_t2_get_code(row, c);
                if (u == 3) return TRL_ERR_BAD_FORMAT;
                t[c] = (int8_t)((int)u - 1);
            }
        } else {
            for (uint64_t g = 0; g < rb; g++) {
                unsigned v = row[g];
                if (v > 242) return TRL_ERR_BAD_FORMAT;
                for (int i = 0; i < 5; i++, v /= 3) {
                    uint64_t c = g * 5 + (uint64_t)i;
                    if (c < cols) t[c] = (int8_t)((int)(v % 3) - 1);
                }
            }
        }
    }
    return TRL_OK;
}

trl_status trl_bcq_pack_row(const trl_enc_params *p, const int8_t *signs, const float *scales, uint64_t cols,
                            void *dst) {
    size_t rb = trl_bcq_row_bytes(p, cols);
    if (!rb || !signs || !scales || !dst) return TRL_ERR_INVALID_ARG;
    uint64_t g = (uint64_t)p->group, ng = (cols + g - 1) / g, plane = ng * g / 8;
    uint8_t *o = dst;
    memset(o, 0, rb);
    for (int i = 0; i < p->bits; i++)
        for (uint64_t c = 0; c < cols; c++) {
            int8_t sg = signs[(uint64_t)i * cols + c];
            if (sg != 1 && sg != -1) return TRL_ERR_INVALID_ARG;
            if (sg > 0) o[(uint64_t)i * plane + c / 8] |= (uint8_t)(1u << (c % 8));
        }
    uint8_t *sc = o + (uint64_t)p->bits * plane;
    for (uint64_t k = 0; k < ng * (uint64_t)p->bits; k++) {
        uint16_t h = trl_f32_to_f16(scales[k]);
        memcpy(sc + 2 * k, &h, 2);
    }
    return TRL_OK;
}

/* ------------------------------------------------------------ status */

const char *trl_status_str(trl_status s) {
    switch (s) {
    case TRL_OK: return "ok";
    case TRL_ERR_INVALID_ARG: return "invalid argument";
    case TRL_ERR_BAD_CONFIG: return "bad model config";
    case TRL_ERR_BAD_TENSOR: return "bad tensor";
    case TRL_ERR_BAD_FORMAT: return "malformed data";
    case TRL_ERR_NO_MEMORY: return "out of memory";
    case TRL_ERR_CONTEXT_FULL: return "context full";
    case TRL_ERR_UNSUPPORTED: return "unsupported";
    default: return "unknown status";
    }
}

trl_status trl_set_error(trl_error *err, trl_status s, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = s;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}
