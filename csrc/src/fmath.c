/* flipnet core: the math of the FP32 layers without <math.h> (docs/rule.md 8): exp and log of a
 * double, sqrt of a double and of a float, x^t by squaring. Compiled out with FLIPNET_NO_FLOAT. */
#include "fn_float.h"

#ifndef FLIPNET_NO_FLOAT

/* x^t by squaring (t >= 0); x^0 = 1. At most 2 log2(t) roundings. */
double fn_powi(double x, uint64_t t)
{
    double r = 1.0;
    while (t != 0) {
        if (t & 1u) r *= x;
        x *= x;
        t >>= 1;
    }
    return r;
}

/* sqrt of a double: 1/sqrt by Newton from a bit-level guess, then one Newton step on sqrt;
 * within 1 ulp. 0 -> 0, +inf -> +inf, negative or NaN -> NaN. */
double fn_sqrt(double x)
{
    double y, s, scale = 1.0;
    int i;
    if (!(x > 0.0)) return x == 0.0 ? x : fn_from_bits64(UINT64_C(0x7FF8000000000000));
    if (x > FN_DBL_MAX) return x;
    if (x < 2.2250738585072014e-308) { /* subnormal: scale into the normal range */
        x *= fn_pow2(600);
        scale = fn_pow2(-300);
    }
    y = fn_from_bits64(UINT64_C(0x5FE6EB50C7B537A9) - (fn_bits64(x) >> 1)); /* ~3.5% */
    for (i = 0; i < 4; i++) y = y * (1.5 - 0.5 * x * y * y);               /* 1/sqrt(x) */
    s = x * y;
    s = 0.5 * (s + x / s); /* one Newton step on sqrt: within 1 ulp */
    return s * scale;
}

float fn_sqrtf(float v) { return fn_sqrtf_inline(v); }

/* e^x: x = k ln2 + r, |r| <= ln2 / 2, Taylor series of e^r to degree 13 (truncation < 2e-16),
 * times 2^k. Relative error below 1e-15 for x in [-708, 709]; 0 below -745.2, +inf above
 * 709.78, NaN -> NaN. */
double fn_exp(double x)
{
    const double ln2_hi = 6.93147180369123816490e-01; /* 33 bits: k * ln2_hi is exact */
    const double ln2_lo = 1.90821492927058770002e-10;
    const double inv_ln2 = 1.44269504088896338700e+00;
    double r, p;
    int32_t k;
    if (!(x == x)) return x;
    if (x > 709.782712893384) return fn_from_bits64(UINT64_C(0x7FF0000000000000));
    if (x < -745.2) return 0.0;
    p = x * inv_ln2;
    k = (int32_t)(p >= 0.0 ? p + 0.5 : p - 0.5);
    r = (x - (double)k * ln2_hi) - (double)k * ln2_lo;
    p = 1.0 / 6227020800.0; /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    if (k > 1023) return p * fn_pow2(k - 1) * 2.0;
    if (k < -1022) return p * fn_pow2(k + 600) * fn_pow2(-600); /* subnormal result */
    return p * fn_pow2(k);
}

/* ln x: x = 2^e m, m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(f), f = (m - 1) / (m + 1),
 * |f| < 0.172, series to f^23 (truncation < 1e-18). Relative error below 1e-15 away from x = 1
 * (absolute below 1e-16 near it). 0 -> -inf, negative or NaN -> NaN, +inf -> +inf. */
double fn_log(double x)
{
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    uint64_t u;
    int32_t e;
    double m, f, f2, s;
    int i;
    if (!(x > 0.0))
        return x == 0.0 ? fn_from_bits64(UINT64_C(0xFFF0000000000000))
                        : fn_from_bits64(UINT64_C(0x7FF8000000000000));
    if (x > FN_DBL_MAX) return x;
    e = 0;
    if (x < 2.2250738585072014e-308) {
        x *= fn_pow2(600);
        e = -600;
    }
    u = fn_bits64(x);
    e += (int32_t)((u >> 52) & 0x7FFu) - 1023;
    m = fn_from_bits64((u & UINT64_C(0x000FFFFFFFFFFFFF)) | UINT64_C(0x3FF0000000000000));
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e += 1;
    }
    f = (m - 1.0) / (m + 1.0);
    f2 = f * f;
    s = 1.0 / 23.0;
    for (i = 21; i >= 1; i -= 2) s = s * f2 + 1.0 / (double)i;
    return (double)e * ln2_lo + (2.0 * f * s + (double)e * ln2_hi);
}

#else
typedef int fn_fmath_no_float; /* ISO C: a translation unit needs a declaration */
#endif /* FLIPNET_NO_FLOAT */
