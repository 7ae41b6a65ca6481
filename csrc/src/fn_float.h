/* flipnet core internals of the float code (FP32 layers, docs/rule.md 8): bit-level helpers and
 * the inline float sqrt, shared by fmath.c and kind_fp32.c. Not included with FLIPNET_NO_FLOAT. */
#ifndef FLIPNET_FLOAT_H
#define FLIPNET_FLOAT_H

#include "fn_internal.h"

#ifndef FLIPNET_NO_FLOAT
/* The bits of a float / double as an integer and back (memcpy: no aliasing issue). */
#define FN_BITCAST(NAME, TO, FROM)                                                                 \
    static inline TO NAME(FROM v)                                                                  \
    {                                                                                              \
        TO r;                                                                                      \
        memcpy(&r, &v, sizeof(r));                                                                 \
        return r;                                                                                  \
    }
FN_BITCAST(fn_from_bits64, double, uint64_t)
FN_BITCAST(fn_bits64, uint64_t, double)
FN_BITCAST(fn_from_bits32, float, uint32_t)
FN_BITCAST(fn_bits32, uint32_t, float)
#undef FN_BITCAST

#define FN_DBL_MAX 1.7976931348623157e308
#define FN_FLT_MAX 3.40282346638528859812e+38F

/* 2^k as a double for k in [-1022, 1023] (exact). */
static inline double fn_pow2(int32_t k) { return fn_from_bits64((uint64_t)(int64_t)(k + 1023) << 52); }

/* 2^k as a float for k in [-126, 127] (exact). */
static inline float fn_pow2f(int32_t k) { return fn_from_bits32((uint32_t)(k + 127) << 23); }

/* Correctly rounded sqrt of a float (as IEEE sqrtf): 1/sqrt in double by Newton (relative error
 * < 1e-10), then the float result is corrected by one ulp when the exact midpoint test says so
 * (a midpoint of two floats has 25 significant bits: its square is exact in double). No
 * division and no branch in the common path, so a loop of it vectorizes. */
static inline float fn_sqrtf_inline(float v)
{
    double d = (double)v;
    double y = fn_from_bits64(UINT64_C(0x5FE6EB50C7B537A9) - (fn_bits64(d) >> 1));
    double hi, lo;
    float r, up, dn;
    uint32_t u;
    y = y * (1.5 - 0.5 * d * y * y);
    y = y * (1.5 - 0.5 * d * y * y);
    y = y * (1.5 - 0.5 * d * y * y);
    r = (float)(d * y);
    u = fn_bits32(r);
    up = fn_from_bits32(u + 1u);
    dn = fn_from_bits32(u - 1u);
    hi = ((double)r + (double)up) * 0.5;
    lo = ((double)r + (double)dn) * 0.5;
    r = hi * hi < d ? up : r;
    r = lo * lo > d ? dn : r;
    r = v > FN_FLT_MAX ? v : r;                    /* +inf */
    r = v < 0.0f ? fn_from_bits32(0x7FC00000u) : r; /* negative: NaN */
    return r;                                       /* 0 -> 0, NaN -> NaN by themselves */
}

#endif /* FLIPNET_NO_FLOAT */
#endif /* FLIPNET_FLOAT_H */
