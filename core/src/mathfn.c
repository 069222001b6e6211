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
