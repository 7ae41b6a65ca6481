/* flipnet core: the adapters between the integer and the float domains of a hybrid network
 * (docs/rule.md 8): activations int8 -> float, errors int8 -> float and float -> int8, logits
 * int32 -> float. Compiled out with FLIPNET_NO_FLOAT. */
#include "fn_internal.h"

#ifndef FLIPNET_NO_FLOAT

/* a/128 for int8 a (exact). */
void fn_s8_to_f32(const int8_t *a, size_t count, float *x)
{
    size_t i;
    for (i = 0; i < count; i++) x[i] = (float)a[i] * 0.0078125f;
}

/* The integer error (sign(G), 0 at the clamp; +1 = the output should increase) enters the
 * float path as a gradient: g = -d, transposed from (n, B) to (B, n). */
void fn_err_s8_to_f32(const int8_t *d, uint32_t n, uint32_t batch, float *g)
{
    uint32_t b, i;
    for (b = 0; b < batch; b++) {
        for (i = 0; i < n; i++) g[(size_t)b * n + i] = -(float)d[(size_t)i * batch + b];
    }
}

/* The vote's error of an integer layer from a float error delta (B, m): d (m, B) =
 * -sign(delta) where |delta| >= the mean |delta| over the B x m errors, else 0. delta is a
 * gradient (positive: the output should decrease), d is the integer rule's error (+1: the
 * output should increase, docs/rule.md 2), hence the sign. */
void fn_err_f32_to_s8(const float *delta, uint32_t batch, uint32_t m, int8_t *d)
{
    size_t i, cnt = (size_t)batch * m;
    uint32_t b, j;
    double sum = 0.0, mean;
    for (i = 0; i < cnt; i++) sum += delta[i] < 0.0f ? -(double)delta[i] : (double)delta[i];
    mean = sum / (double)cnt;
    for (b = 0; b < batch; b++) {
        for (j = 0; j < m; j++) {
            float v = delta[(size_t)b * m + j];
            double av = v < 0.0f ? -(double)v : (double)v;
            d[(size_t)j * batch + b] = (int8_t)(av != 0.0 && av >= mean ? (v > 0.0f ? -1 : 1) : 0);
        }
    }
}

void fn_s32_to_f32(const int32_t *z, size_t count, float *out)
{
    size_t i;
    for (i = 0; i < count; i++) out[i] = (float)z[i];
}

#else
typedef int fn_adapt_no_float; /* ISO C: a translation unit needs a declaration */
#endif /* FLIPNET_NO_FLOAT */
