/* mathfn.c - deterministic elementary functions (see internal.h). Plain f32
 * arithmetic in a fixed order, no FMA (-ffp-contract=off), so every IEEE
 * platform computes the same bits. */
#include <string.h>

#include "internal.h"

static float pow2i(int n) { /* 2^n for n in [-126, 127] */
    uint32_t u = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float trl_expf(float x) {
    if (x != x) return x;
    if (x > 88.7228394f) return 1.0f / 0.0f;
    if (x < -103.972076f) return 0.0f;
    /* x = n ln2 + r, |r| <= ln2/2; ln2 split so n*ln2_hi is exact */
    float t = x * 1.44269504f;
    int n = (int)(t >= 0.0f ? t + 0.5f : t - 0.5f);
    float r = (x - (float)n * 0.693145751953125f) - (float)n * 1.42860677e-6f;
    /* Cephes expf minimax polynomial on [-ln2/2, ln2/2] */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    if (n < -126) return p * pow2i(n + 64) * pow2i(-64);
    if (n > 127) return p * pow2i(n - 1) * 2.0f;
    return p * pow2i(n);
}

/* trl_expf over an array, four at a time where SIMD is available: the same
 * operations in the same order on each lane, so the same bits as trl_expf.
 * Lanes whose result needs the special cases (NaN, overflow, underflow, a
 * subnormal scale) send their group of four to the scalar function. */
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
typedef v128_t vf4;
#define VSPLAT(c) wasm_f32x4_splat(c)
#define VLOAD(p) wasm_v128_load(p)
#define VSTORE(p, v) wasm_v128_store(p, v)
#define VADD(a, b) wasm_f32x4_add(a, b)
#define VSUB(a, b) wasm_f32x4_sub(a, b)
#define VMUL(a, b) wasm_f32x4_mul(a, b)
#define VIN_RANGE(x) wasm_i32x4_all_true(wasm_v128_and(wasm_f32x4_gt(x, VSPLAT(-87.0f)), wasm_f32x4_lt(x, VSPLAT(88.0f))))
#define VSEL_GE0(t, a, b) wasm_v128_bitselect(a, b, wasm_f32x4_ge(t, VSPLAT(0.0f)))
#define VTRUNC_I(v) wasm_i32x4_trunc_sat_f32x4(v)
#define VCVT_F(i) wasm_f32x4_convert_i32x4(i)
#define VPOW2(n) wasm_i32x4_shl(wasm_i32x4_add(n, wasm_i32x4_splat(127)), 23)
#define TRL_VEXP 1
#elif defined(__SSE2__)
#include <emmintrin.h>
typedef __m128 vf4;
#define VSPLAT(c) _mm_set1_ps(c)
#define VLOAD(p) _mm_loadu_ps(p)
#define VSTORE(p, v) _mm_storeu_ps(p, v)
#define VADD(a, b) _mm_add_ps(a, b)
#define VSUB(a, b) _mm_sub_ps(a, b)
#define VMUL(a, b) _mm_mul_ps(a, b)
#define VIN_RANGE(x) (_mm_movemask_ps(_mm_and_ps(_mm_cmpgt_ps(x, VSPLAT(-87.0f)), _mm_cmplt_ps(x, VSPLAT(88.0f)))) == 15)
#define VSEL_GE0(t, a, b) _mm_or_ps(_mm_and_ps(_mm_cmpge_ps(t, VSPLAT(0.0f)), a), _mm_andnot_ps(_mm_cmpge_ps(t, VSPLAT(0.0f)), b))
#define VTRUNC_I(v) _mm_cvttps_epi32(v)
#define VCVT_F(i) _mm_cvtepi32_ps(i)
#define VPOW2(n) _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(n, _mm_set1_epi32(127)), 23))
#define TRL_VEXP 1
#endif

void trl_expf_n(float *y, const float *x, size_t n) {
    size_t i = 0;
#ifdef TRL_VEXP
    for (; i + 4 <= n; i += 4) {
        vf4 v = VLOAD(x + i);
        if (!VIN_RANGE(v)) { /* NaN, or n outside [-126, 127]: the scalar path's special cases */
            for (size_t j = i; j < i + 4; j++) y[j] = trl_expf(x[j]);
            continue;
        }
        vf4 t = VMUL(v, VSPLAT(1.44269504f));
        vf4 nf = VCVT_F(VTRUNC_I(VADD(t, VSEL_GE0(t, VSPLAT(0.5f), VSPLAT(-0.5f)))));
        vf4 r = VSUB(VSUB(v, VMUL(nf, VSPLAT(0.693145751953125f))), VMUL(nf, VSPLAT(1.42860677e-6f)));
        vf4 p = VSPLAT(1.9875691500e-4f);
        p = VADD(VMUL(p, r), VSPLAT(1.3981999507e-3f));
        p = VADD(VMUL(p, r), VSPLAT(8.3334519073e-3f));
        p = VADD(VMUL(p, r), VSPLAT(4.1665795894e-2f));
        p = VADD(VMUL(p, r), VSPLAT(1.6666665459e-1f));
        p = VADD(VMUL(p, r), VSPLAT(5.0000001201e-1f));
        p = VADD(VADD(VMUL(p, VMUL(r, r)), r), VSPLAT(1.0f));
        VSTORE(y + i, VMUL(p, (vf4)VPOW2(VTRUNC_I(nf))));
    }
#endif
    for (; i < n; i++) y[i] = trl_expf(x[i]);
}
