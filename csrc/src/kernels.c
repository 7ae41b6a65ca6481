/* flipnet core: integer kernels: packed rows (unpack, pack), int8 x int16 dot products written so
 * that GCC/Clang -O3 auto-vectorize them, a Cortex-M DSP variant of the forward dot product (ACLE
 * __smlad, selected by __ARM_FEATURE_DSP; Cortex-M4/M7/M33) bit-exact with the portable one, and
 * one integer layer forward. */
#include "fn_internal.h"

#if defined(__ARM_FEATURE_DSP) && (defined(__GNUC__) || defined(__clang__))
#include <arm_acle.h> /* compiler intrinsics header, not libc */
#define FN_DOT_DSP 1
#else
#define FN_DOT_DSP 0
#endif

void fn_unpack_row_ref(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int8_t *w)
{
    uint32_t i;
    if (kind == FLIPNET_TERNARY) {
        const uint8_t *pos = row, *neg = row + bpr;
        for (i = 0; i < n; i++) {
            w[i] = (int8_t)((int32_t)((pos[i >> 3] >> (i & 7u)) & 1u) -
                            (int32_t)((neg[i >> 3] >> (i & 7u)) & 1u));
        }
    } else {
        for (i = 0; i < n; i++) w[i] = (int8_t)(1 - 2 * (int32_t)((row[i >> 3] >> (i & 7u)) & 1u));
    }
}

void fn_pack_row_ref(uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, const int8_t *w)
{
    uint32_t i;
    memset(row, 0, (size_t)fn_planes(kind) * bpr);
    if (kind == FLIPNET_TERNARY) {
        for (i = 0; i < n; i++) {
            if (w[i] > 0) row[i >> 3] |= (uint8_t)(1u << (i & 7u));
            else if (w[i] < 0) row[bpr + (i >> 3)] |= (uint8_t)(1u << (i & 7u));
        }
    } else {
        for (i = 0; i < n; i++) {
            if (w[i] < 0) row[i >> 3] |= (uint8_t)(1u << (i & 7u));
        }
    }
}

/* bit b of a word; a table (not 1u << b) so that the unpack loops vectorize without per-lane
 * variable shifts */
static const uint32_t fn_bit[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

/* The last (n % 32) inputs of a plane: its remaining 1..4 bytes as a little-endian word (never
 * reads past the plane's bpr bytes). */
static inline uint32_t fn_rd_tail(const uint8_t *p, uint32_t bits)
{
    uint32_t v = 0, k;
    for (k = 0; 8u * k < bits; k++) v |= (uint32_t)p[k] << (8u * k);
    return v;
}

/* Rows are bytes (any alignment); 32 inputs at a time are read as one little-endian word
 * (fn_rd32: a single load on x86-64, aarch64 and Cortex-M4) and expanded as before. */
FN_HOT void fn_unpack_row_s16(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int16_t *w)
{
    uint32_t full = n / 32u, wi, b, tail = n & 31u;
    if (kind == FLIPNET_TERNARY) {
        const uint8_t *restrict pos = row, *restrict neg = row + bpr;
        for (wi = 0; wi < full; wi++) {
            uint32_t p = fn_rd32(pos + 4u * wi), q = fn_rd32(neg + 4u * wi);
            int16_t *restrict o = w + (size_t)wi * 32u;
            for (b = 0; b < 32u; b++)
                o[b] = (int16_t)((int32_t)((p & fn_bit[b]) != 0) - (int32_t)((q & fn_bit[b]) != 0));
        }
        if (tail != 0) {
            uint32_t p = fn_rd_tail(pos + 4u * full, tail), q = fn_rd_tail(neg + 4u * full, tail);
            for (b = 0; b < tail; b++)
                w[full * 32u + b] = (int16_t)((int32_t)((p & fn_bit[b]) != 0) - (int32_t)((q & fn_bit[b]) != 0));
        }
    } else {
        for (wi = 0; wi < full; wi++) {
            uint32_t q = fn_rd32(row + 4u * wi);
            int16_t *restrict o = w + (size_t)wi * 32u;
            for (b = 0; b < 32u; b++) o[b] = (int16_t)(1 - 2 * (int32_t)((q & fn_bit[b]) != 0));
        }
        if (tail != 0) {
            uint32_t q = fn_rd_tail(row + 4u * full, tail);
            for (b = 0; b < tail; b++) w[full * 32u + b] = (int16_t)(1 - 2 * (int32_t)((q & fn_bit[b]) != 0));
        }
    }
}

static int32_t fn_dot_s8(const int8_t *restrict a, const int16_t *restrict b, uint32_t n)
{
    int32_t s = 0;
    uint32_t i;
    for (i = 0; i < n; i++) s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

/* Four samples against the same weight row: each weight load feeds four products. */
static void fn_dot4_s8(const int8_t *restrict a0, const int8_t *restrict a1,
                       const int8_t *restrict a2, const int8_t *restrict a3,
                       const int16_t *restrict w, uint32_t n, int32_t *z)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint32_t i;
    for (i = 0; i < n; i++) {
        int32_t v = w[i];
        s0 += (int32_t)a0[i] * v;
        s1 += (int32_t)a1[i] * v;
        s2 += (int32_t)a2[i] * v;
        s3 += (int32_t)a3[i] * v;
    }
    z[0] = s0;
    z[1] = s1;
    z[2] = s2;
    z[3] = s3;
}

FN_HOT void fn_dot_rows_s8(const int8_t *x, const int16_t *w, uint32_t n, uint32_t batch, int32_t *z)
{
    uint32_t b = 0;
    for (; b + 3u < batch; b += 4u) {
        const int8_t *xb = x + (size_t)b * n;
        fn_dot4_s8(xb, xb + n, xb + 2u * (size_t)n, xb + 3u * (size_t)n, w, n, z + b);
    }
    for (; b < batch; b++) z[b] = fn_dot_s8(x + (size_t)b * n, w, n);
}

int fn_input_has_m128(const int8_t *x, size_t count)
{
    size_t i;
    int bad = 0;
    for (i = 0; i < count; i++) bad |= (x[i] == -128);
    return bad;
}

#if FN_DOT_DSP
/* Row for fn_dot_dsp: in every full group of 4 inputs the int16 weights are stored in the order
 * w0 w2 w1 w3, matching the lanes of __sxtb16(x) = (x0, x2) and __sxtb16(x ror 8) = (x1, x3). */
static void fn_unpack_row_dsp(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int16_t *w)
{
    uint32_t i;
    fn_unpack_row_s16(row, kind, n, bpr, w);
    for (i = 0; i + 4u <= n; i += 4u) {
        int16_t t = w[i + 1u];
        w[i + 1u] = w[i + 2u];
        w[i + 2u] = t;
    }
}

/* sum_i x[i] * w[i] with w from fn_unpack_row_dsp: 4 products per 2 SMLAD. */
static int32_t fn_dot_dsp(const int8_t *x, const int16_t *w, uint32_t n)
{
    int32_t s = 0;
    uint32_t i = 0;
    for (; i + 4u <= n; i += 4u) {
        uint32_t xv, w02, w13;
        memcpy(&xv, x + i, 4); /* unaligned loads are fine on ARMv7-M (one LDR) */
        memcpy(&w02, w + i, 4);
        memcpy(&w13, w + i + 2u, 4);
        s = __smlad(__sxtb16(xv), w02, s);
        s = __smlad(__sxtb16((xv >> 8) | (xv << 24)), w13, s);
    }
    for (; i < n; i++) s += (int32_t)x[i] * w[i];
    return s;
}

/* Two samples against the same row: each weight load feeds two SMLADs. */
static void fn_dot2_dsp(const int8_t *x0, const int8_t *x1, const int16_t *w, uint32_t n,
                        int32_t *z)
{
    int32_t s0 = 0, s1 = 0;
    uint32_t i = 0;
    for (; i + 4u <= n; i += 4u) {
        uint32_t a, b, w02, w13;
        memcpy(&a, x0 + i, 4);
        memcpy(&b, x1 + i, 4);
        memcpy(&w02, w + i, 4);
        memcpy(&w13, w + i + 2u, 4);
        s0 = __smlad(__sxtb16(a), w02, s0);
        s1 = __smlad(__sxtb16(b), w02, s1);
        s0 = __smlad(__sxtb16((a >> 8) | (a << 24)), w13, s0);
        s1 = __smlad(__sxtb16((b >> 8) | (b << 24)), w13, s1);
    }
    for (; i < n; i++) {
        s0 += (int32_t)x0[i] * w[i];
        s1 += (int32_t)x1[i] * w[i];
    }
    z[0] = s0;
    z[1] = s1;
}
#endif

#define FN_ZCHUNK 16u

void fn_fwd_store(fn_fwd_sink *k, uint32_t b0, uint32_t ns, uint32_t j0, uint32_t nr,
                  const int32_t *zt)
{
    uint32_t s, r, sh = k->shift;
    uint64_t sa = 0;
    uint32_t clip = 0;
    for (s = 0; s < ns; s++) {
        size_t at = (size_t)(b0 + s) * k->m + j0;
        const int32_t *zs = zt + (size_t)s * nr;
        if (k->z != NULL) memcpy(k->z + at, zs, sizeof(int32_t) * nr);
        if (k->want_sum) {
            for (r = 0; r < nr; r++) sa += (uint64_t)(zs[r] < 0 ? -(int64_t)zs[r] : (int64_t)zs[r]);
        }
        if (k->act != NULL) {
            for (r = 0; r < nr; r++) {
                int32_t a = fn_floor_shift(zs[r], sh);
                clip += (uint32_t)(a > 127 || a < -127);
                k->act[at + r] = (int8_t)fn_clamp127(a);
            }
        } else if (k->want_clip) {
            for (r = 0; r < nr; r++) {
                int32_t a = fn_floor_shift(zs[r], sh);
                clip += (uint32_t)(a > 127 || a < -127);
            }
        }
    }
    k->sum_abs += sa;
    k->clipped += clip;
}

/* The portable forward: one row at a time, unpacked to int16, against 16 samples at a time
 * (the Cortex-M DSP build: SMLAD on pairs). */
static void fn_forward_portable(const flipnet_layer *L, const uint8_t *w, uint32_t j0, uint32_t j1,
                                const int8_t *x, uint32_t batch, fn_fwd_sink *sink, int16_t *wrow)
{
    uint32_t n = L->n, j, b0, c;
    size_t rb = (size_t)fn_planes(L->kind) * L->bpr;
    int32_t zb[FN_ZCHUNK];
    for (j = j0; j < j1; j++) {
#if FN_DOT_DSP
        fn_unpack_row_dsp(w + (size_t)j * rb, L->kind, n, L->bpr, wrow);
#else
        fn_unpack_row_s16(w + (size_t)j * rb, L->kind, n, L->bpr, wrow);
#endif
        for (b0 = 0; b0 < batch; b0 += FN_ZCHUNK) {
            uint32_t cnt = batch - b0 < FN_ZCHUNK ? batch - b0 : FN_ZCHUNK;
#if FN_DOT_DSP
            for (c = 0; c + 1u < cnt; c += 2u) {
                const int8_t *xa = x + (size_t)(b0 + c) * n;
                fn_dot2_dsp(xa, xa + n, wrow, n, zb + c);
            }
            if (c < cnt) zb[c] = fn_dot_dsp(x + (size_t)(b0 + c) * n, wrow, n);
#else
            (void)c;
            fn_dot_rows_s8(x + (size_t)b0 * n, wrow, n, cnt, zb);
#endif
            fn_fwd_store(sink, b0, cnt, j, 1, zb);
        }
    }
}

/* Threshold masks (fn_kernels.thresh_masks), plain C. */
FN_HOT static void fn_thresh_masks_portable(const int8_t *h, uint32_t n, int32_t tau,
                                            uint32_t *up, uint32_t *dn)
{
    uint32_t k, b, words = (n + 31u) / 32u;
    for (k = 0; k < words; k++) {
        const int8_t *hk = h + 32u * k;
        uint32_t u = 0, d = 0, cnt = n - 32u * k < 32u ? n - 32u * k : 32u;
        for (b = 0; b < cnt; b++) {
            u |= (uint32_t)(hk[b] >= tau) << b;
            d |= (uint32_t)(hk[b] <= -tau) << b;
        }
        up[k] = u;
        dn[k] = d;
    }
}

const fn_kernels fn_kernels_portable = {
#if FN_DOT_DSP
    "dsp",
#else
    "portable",
#endif
    fn_forward_portable, fn_thresh_masks_portable};

/* ---- packed counters (docs/rule.md 7.1) ----------------------------------------------------- */
/* Counter i of a row of b-bit counters: the b-bit two's complement field at bit i * b, low bits
 * first within a byte (b = 8: the row is int8). */
void fn_counters_unpack(const uint8_t *row, uint32_t bits, uint32_t n, int8_t *h)
{
    uint32_t i, per = 8u / bits, mask = (1u << bits) - 1u, sign = 1u << (bits - 1u);
    if (bits == 8u) {
        memcpy(h, row, n);
        return;
    }
    for (i = 0; i < n; i++) {
        uint32_t v = ((uint32_t)row[i / per] >> ((i % per) * bits)) & mask;
        h[i] = (int8_t)((int32_t)(v ^ sign) - (int32_t)sign); /* sign-extend b bits */
    }
}

void fn_counters_pack(uint8_t *row, uint32_t bits, uint32_t n, const int8_t *h)
{
    uint32_t i, per = 8u / bits, mask = (1u << bits) - 1u;
    if (bits == 8u) {
        memcpy(row, h, n);
        return;
    }
    memset(row, 0, (n + per - 1u) / per); /* padding bits 0 */
    for (i = 0; i < n; i++)
        row[i / per] |= (uint8_t)(((uint32_t)(uint8_t)h[i] & mask) << ((i % per) * bits));
}
