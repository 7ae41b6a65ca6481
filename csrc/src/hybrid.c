/* flipnet core: FP32 layers (docs/rule.md section 8, "Hybrid layers").
 *
 * Initialization, forward and calibration of models with FP32 layers, their training step (the
 * error travels down in float from the topmost FP32 layer as straight-through backprop; the
 * ternary/binary layers vote on a discretized copy of it with the integer rule of train.c; the
 * FP32 layers are updated with PyTorch's AdamW), and the math this needs without <math.h>.
 * Float arithmetic lives here (and in forward.c's float argmax / forward_f32); the whole file is
 * compiled out with FLIPNET_NO_FLOAT. Built with -ffp-contract=off: no fused multiply-adds, so
 * every float operation rounds as written and results do not depend on the compiler's choice.
 *
 * Float loops are written so that GCC/Clang -O3 vectorize them without reassociating a sum:
 * dot products keep 8 partial sums (one per input index mod 8) added in a fixed order at the
 * end; backprop and gradients are AXPY loops (y[i] += a * x[i], four at a time). Every float
 * result is therefore the same on every target and vector width.
 */
#include "fn_internal.h"

#ifndef FLIPNET_NO_FLOAT

/* ---- math without <math.h> ------------------------------------------------------------------ */
static double fn_from_bits64(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}
static uint64_t fn_bits64(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
static float fn_from_bits32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t fn_bits32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

#define FN_DBL_MAX 1.7976931348623157e308
#define FN_FLT_MAX 3.40282346638528859812e+38F

/* 2^k as a double for k in [-1022, 1023] (exact). */
static double fn_pow2(int32_t k) { return fn_from_bits64((uint64_t)(int64_t)(k + 1023) << 52); }

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

/* 2^k as a float for k in [-126, 127] (exact). */
static float fn_pow2f(int32_t k) { return fn_from_bits32((uint32_t)(k + 127) << 23); }

/* ---- init ---------------------------------------------------------------------------------- */
void fn_f32_init_layer(flipnet_model *model, uint32_t l)
{
    const flipnet_layer *L = &model->layers[l];
    float *w = (float *)(void *)(model->weights + L->offset);
    uint64_t base = fn_rand_base(model->seed, fn_stream(FN_PURPOSE_INIT, l, 0));
    uint64_t k, cnt = fn_f32_params(L->n, L->m);
    double bound = 1.0 / fn_sqrt((double)L->n);
    for (k = 0; k < cnt; k++) {
        /* 24 random bits: u in [0, 1), 2u - 1 in [-1, 1) exactly; W[j][i] at j*n + i, bias j at
         * m*n + j (docs/rule.md 8) */
        double u = (double)(fn_rand_at(base, k) >> 40) * (1.0 / 16777216.0);
        w[k] = (float)((2.0 * u - 1.0) * bound);
    }
}

/* ---- kernels -------------------------------------------------------------------------------- */
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
FN_HOT static void fn_f32_dense(const float *W, const float *bias, const float *x, uint32_t n,
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
FN_HOT static void fn_f32_backprop(const flipnet_model *model, uint32_t l, const float *W,
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
                flipnet_unpack_row_s16(fn_row(model, L, j + q), L->kind, n, L->bpr, wrow);
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

/* a/128 for int8 a (exact). */
static void fn_s8_to_f32(const int8_t *a, size_t count, float *x)
{
    size_t i;
    for (i = 0; i < count; i++) x[i] = (float)a[i] * 0.0078125f;
}

static void fn_relu(float *z, size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) z[i] = z[i] > 0.0f ? z[i] : 0.0f;
}

/* clamp(round_half_away_from_zero(z * scale), -127, 127); NaN -> 0. */
static inline int32_t fn_quant(float z, float scale)
{
    float v = z * scale;
    if (v >= 127.0f) return 127;
    if (v <= -127.0f) return -127;
    if (!(v == v)) return 0;
    /* |v| < 127: v + 0.5 in double is exact or rounds away from the next integer */
    return v >= 0.0f ? (int32_t)((double)v + 0.5) : -(int32_t)(0.5 - (double)v);
}

/* int8 output of an FP32 layer feeding an integer one; returns the clipped count
 * (|round(z 2^s)| > 127). */
static uint32_t fn_f32_quantize(const float *z, size_t count, uint32_t s, int8_t *a)
{
    size_t i;
    uint32_t clip = 0;
    float scale = fn_pow2f((int32_t)s);
    for (i = 0; i < count; i++) {
        float v = z[i] * scale;
        clip += (uint32_t)(v >= 127.5f || v <= -127.5f);
        a[i] = (int8_t)fn_quant(z[i], scale);
    }
    return clip;
}

/* Calibration of an FP32 layer feeding an integer one: the s in 0..15 whose mean
 * |clamp(round(z 2^s))| is closest to target (exactly: |sum - target * count| smallest; ties to
 * the smaller s). */
static uint8_t fn_f32_calib_shift(const float *z, size_t count, uint32_t target)
{
    uint32_t s, best = 0;
    uint64_t best_diff = UINT64_MAX, want = (uint64_t)target * count;
    for (s = 0; s < 16u; s++) {
        float scale = fn_pow2f((int32_t)s);
        uint64_t sum = 0, diff;
        size_t i;
        for (i = 0; i < count; i++) {
            int32_t a = fn_quant(z[i], scale);
            sum += (uint64_t)(a < 0 ? -a : a);
        }
        diff = sum > want ? sum - want : want - sum;
        if (diff < best_diff) {
            best_diff = diff;
            best = s;
        }
    }
    return (uint8_t)best;
}

static const float *fn_f32_w(const flipnet_model *model, uint32_t l)
{
    return (const float *)(const void *)(model->weights + model->layers[l].offset);
}

/* ---- forward (forward / predict / calibrate) -------------------------------------------------- */
void fn_hybrid_forward(flipnet_model *model, const int8_t *x, uint32_t batch, void *logits,
                       uint8_t *sc, const fn_plan *plan, int calibrate)
{
    uint32_t l, L = model->n_layers;
    int16_t *wrow = (int16_t *)(void *)(sc + plan->wrow);
    const int8_t *in8 = x;
    const float *inf = NULL;
    if (model->layers[0].kind == FLIPNET_FP32) { /* layer l's output lives at index l & 1 */
        float *x0 = (float *)(void *)(sc + plan->f[1]);
        fn_s8_to_f32(x, (size_t)batch * model->layers[0].n, x0);
        inf = x0;
    }
    for (l = 0; l < L; l++) {
        flipnet_layer *Ly = &model->layers[l];
        size_t cnt = (size_t)batch * Ly->m;
        int last = l + 1u == L;
        uint8_t next = last ? 0u : model->layers[l + 1u].kind;
        int8_t *a8 = (int8_t *)(sc + plan->act[l & 1u]);
        float *af = (float *)(void *)(sc + plan->f[l & 1u]);
        if (Ly->kind == FLIPNET_FP32) {
            const float *W = fn_f32_w(model, l);
            float *z = last ? (float *)logits : af;
            fn_f32_dense(W, W + (size_t)Ly->m * Ly->n, inf, Ly->n, Ly->m, batch, z);
            if (last) break;
            if (next == FLIPNET_FP32) {
                if (calibrate) Ly->shift = 0;
                fn_relu(z, cnt);
                inf = z;
            } else {
                if (calibrate) Ly->shift = fn_f32_calib_shift(z, cnt, model->rule.calib_target);
                fn_f32_quantize(z, cnt, Ly->shift, a8);
                in8 = a8;
            }
        } else if (last) {
            fn_layer_forward(model, l, in8, batch, NULL, (int32_t *)logits, NULL, NULL, wrow);
        } else {
            if (calibrate) fn_calib_int_shift(model, l, in8, batch, wrow);
            fn_layer_forward(model, l, in8, batch, a8, NULL, NULL, NULL, wrow);
            in8 = a8;
            if (next == FLIPNET_FP32) {
                fn_s8_to_f32(a8, cnt, af);
                inf = af;
            }
        }
    }
}

/* ---- training ------------------------------------------------------------------------------- */
typedef struct {
    float decay; /* 1 - lr * wd */
    float w1;    /* 1 - beta1: the lerp weight of the first moment */
    float omw1;  /* 1 - w1 (float), the lerp's other branch */
    int small;   /* |w1| < 0.5: torch's lerp branch */
    float b2, c2; /* beta2, 1 - beta2 */
    float nstep; /* -lr / (1 - beta1^t) */
    float bc2s;  /* sqrt(1 - beta2^t) */
    float eps;
} fn_adamw;

static int fn_finite(float v) { return v == v && v - v == 0.0f; }

static int fn_adamw_valid(const flipnet_step_params *p)
{
    return fn_finite(p->lr) && fn_finite(p->weight_decay) && fn_finite(p->beta1) &&
           fn_finite(p->beta2) && fn_finite(p->eps) && p->lr >= 0.0f &&
           p->weight_decay >= 0.0f && p->beta1 >= 0.0f && p->beta1 < 1.0f &&
           p->beta2 >= 0.0f && p->beta2 < 1.0f && p->eps > 0.0f;
}

/* The step's scalars, as torch.optim.AdamW computes them: in double from the (float)
 * hyperparameters, then rounded to float where the tensor op takes them. */
static void fn_adamw_setup(fn_adamw *h, const flipnet_step_params *p, uint64_t t)
{
    double lr = p->lr, wd = p->weight_decay, b1 = p->beta1, b2 = p->beta2;
    double bc1 = 1.0 - fn_powi(b1, t), bc2 = 1.0 - fn_powi(b2, t);
    h->decay = (float)(1.0 - lr * wd);
    h->w1 = (float)(1.0 - b1);
    h->omw1 = 1.0f - h->w1;
    h->small = h->w1 < 0.5f;
    h->b2 = (float)b2;
    h->c2 = (float)(1.0 - b2);
    h->nstep = (float)(-(lr / bc1));
    h->bc2s = (float)fn_sqrt(bc2);
    h->eps = p->eps;
}

/* AdamW on n parameters p with gradients g and moments m1, m2 (torch's single-tensor AdamW:
 * p *= 1 - lr wd; m1 = lerp(m1, g, 1 - b1); m2 = m2 b2 + (1 - b2) g g;
 * p += (-lr / bc1) m1 / (sqrt(m2) / sqrt(bc2) + eps), each op rounded to float as written). */
FN_HOT static void fn_adamw_update(float *restrict p, float *restrict m1, float *restrict m2,
                                   const float *restrict g, uint32_t n, const fn_adamw *h)
{
    const float decay = h->decay, w1 = h->w1, omw1 = h->omw1, b2 = h->b2, c2 = h->c2;
    const float nstep = h->nstep, bc2s = h->bc2s, eps = h->eps;
    uint32_t i;
    if (h->small) {
        for (i = 0; i < n; i++) {
            float gi = g[i], mi = m1[i] + w1 * (gi - m1[i]);
            float vi = m2[i] * b2 + c2 * gi * gi;
            float den = fn_sqrtf_inline(vi) / bc2s + eps;
            p[i] = p[i] * decay + (nstep * mi) / den;
            m1[i] = mi;
            m2[i] = vi;
        }
    } else {
        for (i = 0; i < n; i++) {
            float gi = g[i], mi = gi - (gi - m1[i]) * omw1;
            float vi = m2[i] * b2 + c2 * gi * gi;
            float den = fn_sqrtf_inline(vi) / bc2s + eps;
            p[i] = p[i] * decay + (nstep * mi) / den;
            m1[i] = mi;
            m2[i] = vi;
        }
    }
}

/* Gradients of FP32 layer l from its output error delta (B, m) and input x (B, n), and the
 * AdamW update, row by row (grad W_j = sum_b delta[b][j] x_b, in increasing b), then the bias
 * (grad b_j = sum_b delta[b][j]). frow: max(n, m) floats. */
FN_HOT static void fn_f32_layer_update(flipnet_model *model, uint32_t l, const float *delta,
                                       const float *x, uint32_t batch, const fn_adamw *h,
                                       float *frow)
{
    const flipnet_layer *L = &model->layers[l];
    uint32_t n = L->n, m = L->m, j, b;
    size_t np = (size_t)fn_f32_params(n, m);
    float *W = (float *)(void *)(model->weights + L->offset);
    float *m1 = model->opt + fn_opt_offset(model, l), *m2 = m1 + np;
    for (j = 0; j < m; j++) {
        memset(frow, 0, sizeof(float) * n);
        for (b = 0; b + 3u < batch; b += 4u) {
            const float *xb = x + (size_t)b * n;
            fn_axpy4(frow, delta[(size_t)b * m + j], xb, delta[(size_t)(b + 1u) * m + j], xb + n,
                     delta[(size_t)(b + 2u) * m + j], xb + 2u * (size_t)n,
                     delta[(size_t)(b + 3u) * m + j], xb + 3u * (size_t)n, n);
        }
        for (; b < batch; b++) fn_axpy(frow, delta[(size_t)b * m + j], x + (size_t)b * n, n);
        fn_adamw_update(W + (size_t)j * n, m1 + (size_t)j * n, m2 + (size_t)j * n, frow, n, h);
    }
    for (j = 0; j < m; j++) {
        float s = 0.0f;
        for (b = 0; b < batch; b++) s += delta[(size_t)b * m + j];
        frow[j] = s;
    }
    fn_adamw_update(W + (size_t)m * n, m1 + (size_t)m * n, m2 + (size_t)m * n, frow, m, h);
}

/* The error at layer l-1's outputs from g = dLoss/d(input of layer l) (B, n), in place:
 * docs/rule.md 8. FP32 below FP32: ReLU' (input > 0). FP32 below an integer layer:
 * a = clamp(round(z 2^s)), so x 2^s where |a| < 127, else 0. Integer below: a = clamp(z >> s),
 * so x 2^-s where |a| < 127, else 0, and x 1/128 more when layer l is FP32 (it reads a/128). */
static void fn_f32_derivative(const flipnet_model *model, uint32_t l, float *g, uint32_t batch,
                              const int8_t *a, const float *xl)
{
    const flipnet_layer *below = &model->layers[l - 1u];
    size_t i, cnt = (size_t)batch * model->layers[l].n;
    int f32 = model->layers[l].kind == FLIPNET_FP32;
    float scale;
    if (below->kind == FLIPNET_FP32 && f32) {
        for (i = 0; i < cnt; i++) g[i] = xl[i] > 0.0f ? g[i] : 0.0f;
        return;
    }
    if (below->kind == FLIPNET_FP32) scale = fn_pow2f((int32_t)below->shift);
    else scale = fn_pow2f(-(int32_t)below->shift - (f32 ? 7 : 0));
    for (i = 0; i < cnt; i++) g[i] = (a[i] != 127 && a[i] != -127) ? g[i] * scale : 0.0f;
}

/* The vote's error of an integer layer from a float error delta (B, m): d (m, B) =
 * -sign(delta) where |delta| >= the mean |delta| over the B x m errors, else 0. delta is a
 * gradient (positive: the output should decrease), d is the integer rule's error (+1: the
 * output should increase, docs/rule.md 2), hence the sign. */
static void fn_discretize(const float *delta, uint32_t batch, uint32_t m, int8_t *d)
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

/* Output error of an FP32 last layer: delta = (softmax(z) - onehot(y)) / B (the gradient of
 * the mean cross-entropy), in double, rounded to float; counts correct (argmax, lowest index on
 * ties), errors (samples with a nonzero error row) and the loss. */
static void fn_softmax_error(const float *z, const uint16_t *y, uint32_t batch, uint32_t C,
                             float *delta, flipnet_step_stats *s)
{
    uint32_t b, j;
    double loss = 0.0;
    for (b = 0; b < batch; b++) {
        const float *zb = z + (size_t)b * C;
        float *db = delta + (size_t)b * C;
        uint32_t pred = 0, nz = 0;
        double zmax, sum = 0.0;
        for (j = 1; j < C; j++) {
            if (zb[j] > zb[pred]) pred = j;
        }
        zmax = zb[pred];
        for (j = 0; j < C; j++) sum += fn_exp((double)zb[j] - zmax);
        for (j = 0; j < C; j++) {
            double p = fn_exp((double)zb[j] - zmax) / sum - (j == y[b] ? 1.0 : 0.0);
            db[j] = (float)(p / (double)batch);
            nz |= db[j] != 0.0f;
        }
        loss += fn_log(sum) + zmax - (double)zb[y[b]];
        s->correct += (uint32_t)(pred == y[b]);
        s->errors += nz;
    }
    s->loss = (float)(loss / (double)batch);
}

flipnet_status fn_hybrid_train_step(flipnet_model *model, const int8_t *x, const uint16_t *y,
                                    uint32_t batch, const flipnet_step_params *params,
                                    flipnet_step_stats *stats, uint8_t *sc, const fn_plan *plan)
{
    flipnet_step_stats s;
    uint32_t l, L = model->n_layers, C = model->layers[L - 1u].m;
    int8_t *act[FLIPNET_MAX_LAYERS] = {0}, *cur, *nxt;
    float *xf[FLIPNET_MAX_LAYERS] = {0}, *fcur, *fnxt, *frow;
    int16_t *wrow;
    void *logits;
    fn_vote_mem mem;
    fn_adamw h;
    int counters, fmode;

    if (model->opt == NULL) return FLIPNET_E_NULL;
    if (!fn_adamw_valid(params)) return FLIPNET_E_ARG;
    fn_adamw_setup(&h, params, model->steps + 1u);

    memset(&s, 0, sizeof(s));
    logits = sc + plan->logits;
    wrow = (int16_t *)(void *)(sc + plan->wrow);
    frow = (float *)(void *)(sc + plan->frow);
    fcur = (float *)(void *)(sc + plan->f[0]);
    fnxt = (float *)(void *)(sc + plan->f[1]);
    for (l = 0; l < L; l++) {
        act[l] = l + 1u < L ? (int8_t *)(sc + plan->act[l]) : NULL;
        xf[l] = model->layers[l].kind == FLIPNET_FP32 ? (float *)(void *)(sc + plan->xf[l]) : NULL;
    }

    /* ---- forward, keeping every layer's input (int8 act, float xf) ---- */
    if (model->layers[0].kind == FLIPNET_FP32)
        fn_s8_to_f32(x, (size_t)batch * model->layers[0].n, xf[0]);
    for (l = 0; l < L; l++) {
        const flipnet_layer *Ly = &model->layers[l];
        size_t cnt = (size_t)batch * Ly->m;
        int last = l + 1u == L;
        uint8_t next = last ? 0u : model->layers[l + 1u].kind;
        if (Ly->kind == FLIPNET_FP32) {
            const float *W = fn_f32_w(model, l);
            float *z = last ? (float *)logits : (next == FLIPNET_FP32 ? xf[l + 1u] : fcur);
            fn_f32_dense(W, W + (size_t)Ly->m * Ly->n, xf[l], Ly->n, Ly->m, batch, z);
            if (last) break;
            if (next == FLIPNET_FP32) fn_relu(z, cnt);
            else s.clipped[l] = fn_f32_quantize(z, cnt, Ly->shift, act[l]);
        } else {
            const int8_t *in = l == 0 ? x : act[l - 1u];
            if (last) {
                fn_layer_forward(model, l, in, batch, NULL, (int32_t *)logits, NULL, NULL, wrow);
            } else {
                fn_layer_forward(model, l, in, batch, act[l], NULL, NULL, &s.clipped[l], wrow);
                if (next == FLIPNET_FP32) fn_s8_to_f32(act[l], cnt, xf[l + 1u]);
            }
        }
    }

    /* ---- output error ---- */
    cur = (int8_t *)(sc + plan->d[0]);
    nxt = (int8_t *)(sc + plan->d[1]);
    fmode = model->layers[L - 1u].kind == FLIPNET_FP32;
    if (fmode) fn_softmax_error((const float *)logits, y, batch, C, fcur, &s);
    else fn_output_error(model, (const int32_t *)logits, y, batch, cur, &s);

    /* ---- last layer to first: error propagation (with the weights before this step), then
     * each layer's update ---- */
    counters = model->rule.counter_threshold != 0u;
    fn_vote_mem_init(&mem, sc, plan);
    for (l = L; l-- > 0;) {
        const flipnet_layer *Ly = &model->layers[l];
        if (Ly->kind == FLIPNET_FP32) { /* always in float mode */
            float *tmp;
            if (l > 0) {
                fn_f32_backprop(model, l, fn_f32_w(model, l), fcur, batch, fnxt, frow, wrow);
                fn_f32_derivative(model, l, fnxt, batch, act[l - 1u], xf[l]);
            }
            fn_f32_layer_update(model, l, fcur, xf[l], batch, &h, frow);
            tmp = fcur;
            fcur = fnxt;
            fnxt = tmp;
        } else {
            const int8_t *xl = l == 0 ? x : act[l - 1u];
            int8_t *d = cur, *tmp8;
            if (fmode) {
                fn_discretize(fcur, batch, Ly->m, d);
                if (l > 0) {
                    fn_f32_backprop(model, l, NULL, fcur, batch, fnxt, frow, wrow);
                    fn_f32_derivative(model, l, fnxt, batch, act[l - 1u], xf[l]);
                }
            } else if (l > 0) {
                fn_backprop_layer(model, l, cur, batch, act[l - 1u], nxt, sc, plan, &mem);
                if (model->layers[l - 1u].kind == FLIPNET_FP32) {
                    /* the integer error (sign(G), 0 at the clamp; +1 = should increase) enters
                     * the float path as a gradient: delta = -D */
                    uint32_t n = Ly->n, i, b;
                    for (b = 0; b < batch; b++) {
                        for (i = 0; i < n; i++) fnxt[(size_t)b * n + i] = -(float)nxt[(size_t)i * batch + b];
                    }
                }
            }
            if (counters) {
                fn_counter_vote_update(model, l, xl, d, batch, params->k[l], params->p_q16[l],
                                       &s.changes[l], &s.eligible[l], &mem);
            } else {
                fn_vote_update(model, l, xl, d, batch, params->k[l], params->p_q16[l],
                               &s.changes[l], &s.eligible[l], &mem);
            }
            if (fmode) {
                float *tmp = fcur;
                fcur = fnxt;
                fnxt = tmp;
            } else {
                tmp8 = cur;
                cur = nxt;
                nxt = tmp8;
                if (l > 0 && model->layers[l - 1u].kind == FLIPNET_FP32) {
                    float *tmp = fcur;
                    fcur = fnxt;
                    fnxt = tmp;
                    fmode = 1;
                }
            }
        }
    }
    model->steps += 1u;
    model->samples += batch;
    if (stats != NULL) *stats = s;
    return FLIPNET_OK;
}

#else
typedef int fn_hybrid_no_float; /* ISO C: a translation unit needs a declaration */
#endif /* FLIPNET_NO_FLOAT */
