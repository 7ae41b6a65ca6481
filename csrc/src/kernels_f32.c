/* flipnet core: the float kernels of FP32 layers (docs/rule.md 8), compiled out with
 * FLIPNET_NO_FLOAT. Built with -ffp-contract=off: no fused multiply-adds, so every float
 * operation rounds as written and results do not depend on the compiler's choice.
 *
 * Float loops are written so that GCC/Clang -O3 vectorize them without reassociating a sum:
 * dot products keep 8 partial sums (one per input index mod 8) added in a fixed order at the
 * end; backprop and gradients are AXPY loops (y[i] += a * x[i], four at a time). Every float
 * result is therefore the same on every target and vector width.
 */
#include "fn_internal.h"

#ifndef FLIPNET_NO_FLOAT

/* Dot products sum_i a[i] w[i] keep 8 partial sums, lane k over the i = k mod 8 (in increasing
 * i), added in a fixed order at the end, then the n mod 8 tail: the result is the same whatever
 * the vector width. GCC/Clang: 8-float vector extension types (one AVX register, two SSE ones,
 * or scalars: element-wise IEEE operations, so the lanes round exactly as the plain C below);
 * four samples share each load of w. */
#if defined(__GNUC__) || defined(__clang__)
typedef float fn_v8 __attribute__((vector_size(32)));
#define FN_V8_LOAD(v, p) memcpy(&(v), (p), 32)
#define FN_HAVE_V8 1
#else
#define FN_HAVE_V8 0
#endif

static inline float fn_sum8(const float *s)
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static inline float fn_dot_f32(const float *restrict a, const float *restrict w, uint32_t n)
{
    float s[8] = {0}, t = 0.0f;
    uint32_t i = 0, k;
    for (; i + 8u <= n; i += 8u) {
        for (k = 0; k < 8u; k++) s[k] += a[i + k] * w[i + k];
    }
    for (; i < n; i++) t += a[i] * w[i];
    return fn_sum8(s) + t;
}

/* z (B, m) = x (B, n) W^T + bias (the dot product first, then + bias[j]). */
FN_HOT void fn_f32_dense(const float *W, const float *bias, const float *x, uint32_t n,
                                uint32_t m, uint32_t batch, float *z)
{
    uint32_t j, b;
    for (j = 0; j < m; j++) {
        const float *w = W + (size_t)j * n;
        b = 0;
#if FN_HAVE_V8
        for (; b + 3u < batch; b += 4u) {
            const float *x0 = x + (size_t)b * n, *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;
            fn_v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, wv, v;
            float t[8], r[4];
            uint32_t i = 0, q;
            for (; i + 8u <= n; i += 8u) {
                FN_V8_LOAD(wv, w + i);
                FN_V8_LOAD(v, x0 + i);
                s0 += v * wv;
                FN_V8_LOAD(v, x1 + i);
                s1 += v * wv;
                FN_V8_LOAD(v, x2 + i);
                s2 += v * wv;
                FN_V8_LOAD(v, x3 + i);
                s3 += v * wv;
            }
            memcpy(t, &s0, 32);
            r[0] = fn_sum8(t);
            memcpy(t, &s1, 32);
            r[1] = fn_sum8(t);
            memcpy(t, &s2, 32);
            r[2] = fn_sum8(t);
            memcpy(t, &s3, 32);
            r[3] = fn_sum8(t);
            for (q = 0; q < 4u; q++) {
                const float *xq = x0 + (size_t)q * n;
                float tail = 0.0f;
                uint32_t k;
                for (k = i; k < n; k++) tail += xq[k] * w[k];
                z[(size_t)(b + q) * m + j] = (r[q] + tail) + bias[j];
            }
        }
#endif
        for (; b < batch; b++) z[(size_t)b * m + j] = fn_dot_f32(x + (size_t)b * n, w, n) + bias[j];
    }
}

/* y[i] = (((y[i] + a0 x0[i]) + a1 x1[i]) + a2 x2[i]) + a3 x3[i]: four AXPYs in one pass,
 * rounding as the four in sequence. */
static inline void fn_axpy4(float *restrict y, float a0, const float *restrict x0, float a1,
                            const float *restrict x1, float a2, const float *restrict x2, float a3,
                            const float *restrict x3, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) y[i] = (((y[i] + a0 * x0[i]) + a1 * x1[i]) + a2 * x2[i]) + a3 * x3[i];
}

/* y[0..n) += a * x[0..n) */
static inline void fn_axpy(float *restrict y, float a, const float *restrict x, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

/* g (B, n) = delta (B, m) W (m, n), W float rows (row j at W + j*n) or, with W = NULL, the
 * ternary/binary rows of layer l unpacked to float in frow (4 rows: 4 n floats). Sums over j
 * in increasing order, four rows per pass over g. */
FN_HOT void fn_f32_backprop(const flipnet_model *model, uint32_t l, const float *W,
                                   const float *delta, uint32_t batch, float *g, float *frow,
                                   int16_t *wrow)
{
    const flipnet_layer *L = &model->layers[l];
    uint32_t n = L->n, m = L->m, j, b, i, q;
    memset(g, 0, sizeof(float) * (size_t)batch * n);
    for (j = 0; j < m; j += 4u) {
        const float *w[4];
        uint32_t cnt = m - j < 4u ? m - j : 4u;
        for (q = 0; q < cnt; q++) {
            if (W != NULL) {
                w[q] = W + (size_t)(j + q) * n;
            } else {
                float *fr = frow + (size_t)q * n;
                fn_unpack_row_s16(fn_row(model, L, j + q), L->kind, n, L->bpr, wrow);
                for (i = 0; i < n; i++) fr[i] = (float)wrow[i];
                w[q] = fr;
            }
        }
        for (b = 0; b < batch; b++) {
            const float *d = delta + (size_t)b * m + j;
            float *gb = g + (size_t)b * n;
            if (cnt == 4u) {
                fn_axpy4(gb, d[0], w[0], d[1], w[1], d[2], w[2], d[3], w[3], n);
            } else {
                for (q = 0; q < cnt; q++) fn_axpy(gb, d[q], w[q], n);
            }
        }
    }
}


/* grad (n) = sum_b delta[b*m + j] x_b, four samples per pass over grad (increasing b). */
FN_HOT void fn_f32_grad_row(const float *delta, const float *x, uint32_t batch, uint32_t n,
                            uint32_t m, uint32_t j, float *grad)
{
    uint32_t b;
    memset(grad, 0, sizeof(float) * n);
    for (b = 0; b + 3u < batch; b += 4u) {
        const float *xb = x + (size_t)b * n;
        fn_axpy4(grad, delta[(size_t)b * m + j], xb, delta[(size_t)(b + 1u) * m + j], xb + n,
                 delta[(size_t)(b + 2u) * m + j], xb + 2u * (size_t)n,
                 delta[(size_t)(b + 3u) * m + j], xb + 3u * (size_t)n, n);
    }
    for (; b < batch; b++) fn_axpy(grad, delta[(size_t)b * m + j], x + (size_t)b * n, n);
}

#else
typedef int fn_kernels_f32_no_float; /* ISO C: a translation unit needs a declaration */
#endif /* FLIPNET_NO_FLOAT */
