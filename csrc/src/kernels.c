/* flipnet core: integer kernels: packed rows (unpack, pack), int8 x int16 dot products written so
 * that GCC/Clang -O3 auto-vectorize them, a Cortex-M DSP variant of the forward dot product (ACLE
 * __smlad, selected by __ARM_FEATURE_DSP; Cortex-M4/M7/M33) bit-exact with the portable one, and
 * one integer layer forward. */
#include "fn_internal.h"

#if FN_DOT_DSP
#include <arm_acle.h> /* compiler intrinsics header, not libc */
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

#if FN_DOT_DSP
/* Cortex-M DSP unpacking, 4 weights a step: a plane's nibble m gives two words of int16 lanes
 * (bit k of m in lane k: 0 or 1) from a 16-entry table, SSUB16 takes the minus plane's from the
 * plus plane's (ternary) or 2 x the plane's from 1 (binary). FN_NAT: lanes in input order;
 * FN_DSPO: in the order w0 w2 w1 w3 that fn_dot_dsp's SXTB16 lanes want. */
#define FN_NAT(m) {((m) & 1u) | (((m) >> 1) & 1u) << 16, (((m) >> 2) & 1u) | (((m) >> 3) & 1u) << 16}
#define FN_DSPO(m) {((m) & 1u) | (((m) >> 2) & 1u) << 16, (((m) >> 1) & 1u) | (((m) >> 3) & 1u) << 16}
#define FN_TAB16(F) {F(0u), F(1u), F(2u), F(3u), F(4u), F(5u), F(6u), F(7u), F(8u), F(9u), \
                     F(10u), F(11u), F(12u), F(13u), F(14u), F(15u)}
static const uint32_t fn_nib_nat[16][2] = FN_TAB16(FN_NAT);
/* Ternary, DSP order, both planes at once: entry p | q << 4 (p, q: a nibble of the plus and the
 * minus plane) holds the four weights p_k - q_k (2 KB of flash, one load pair per 4 weights). */
#define FN_V(m, k) ((uint32_t)(uint16_t)(int16_t)((int)(((m) >> (k)) & 1u) - (int)(((m) >> ((k) + 4)) & 1u)))
#define FN_E(m) {FN_V(m, 0) | FN_V(m, 2) << 16, FN_V(m, 1) | FN_V(m, 3) << 16}
#define FN_R16(b) FN_E((b) + 0u), FN_E((b) + 1u), FN_E((b) + 2u), FN_E((b) + 3u), FN_E((b) + 4u), \
    FN_E((b) + 5u), FN_E((b) + 6u), FN_E((b) + 7u), FN_E((b) + 8u), FN_E((b) + 9u), FN_E((b) + 10u), \
    FN_E((b) + 11u), FN_E((b) + 12u), FN_E((b) + 13u), FN_E((b) + 14u), FN_E((b) + 15u)
static const uint32_t fn_tern_dsp[256][2] = {
    FN_R16(0u), FN_R16(16u), FN_R16(32u), FN_R16(48u), FN_R16(64u), FN_R16(80u), FN_R16(96u),
    FN_R16(112u), FN_R16(128u), FN_R16(144u), FN_R16(160u), FN_R16(176u), FN_R16(192u),
    FN_R16(208u), FN_R16(224u), FN_R16(240u)};
#undef FN_V
#undef FN_E
#undef FN_R16
static const uint32_t fn_nib_dsp[16][2] = FN_TAB16(FN_DSPO);
#undef FN_NAT
#undef FN_DSPO
#undef FN_TAB16

/* The full 32-input words of a row into w (int16, 2 words per 4 weights), from table tab. */
static void fn_unpack_words_dsp(const uint8_t *row, uint8_t kind, uint32_t full, uint32_t bpr,
                                int16_t *w, const uint32_t (*tab)[2])
{
    uint32_t wi, k, *o = (uint32_t *)(void *)w; /* w: 4-byte aligned scratch */
    if (kind == FLIPNET_TERNARY && tab == fn_nib_dsp) {
        for (wi = 0; wi < full; wi++) {
            uint32_t p = fn_rd32(row + 4u * wi), q = fn_rd32(row + bpr + 4u * wi);
            for (k = 0; k < 8u; k++, p >>= 4, q >>= 4, o += 2) {
                const uint32_t *t = fn_tern_dsp[(p & 15u) | ((q & 15u) << 4)];
                o[0] = t[0];
                o[1] = t[1];
            }
        }
    } else if (kind == FLIPNET_TERNARY) {
        for (wi = 0; wi < full; wi++) {
            uint32_t p = fn_rd32(row + 4u * wi), q = fn_rd32(row + bpr + 4u * wi);
            for (k = 0; k < 8u; k++, p >>= 4, q >>= 4, o += 2) {
                const uint32_t *tp = tab[p & 15u], *tq = tab[q & 15u];
                o[0] = (uint32_t)__ssub16((int16x2_t)tp[0], (int16x2_t)tq[0]);
                o[1] = (uint32_t)__ssub16((int16x2_t)tp[1], (int16x2_t)tq[1]);
            }
        }
    } else {
        const int16x2_t one = (int16x2_t)0x00010001u;
        for (wi = 0; wi < full; wi++) {
            uint32_t q = fn_rd32(row + 4u * wi);
            for (k = 0; k < 8u; k++, q >>= 4, o += 2) {
                const uint32_t *tq = tab[q & 15u];
                o[0] = (uint32_t)__ssub16(one, (int16x2_t)(tq[0] << 1));
                o[1] = (uint32_t)__ssub16(one, (int16x2_t)(tq[1] << 1));
            }
        }
    }
}
#endif

/* Rows are bytes (any alignment); 32 inputs at a time are read as one little-endian word
 * (fn_rd32: a single load on x86-64, aarch64 and Cortex-M4) and expanded as before. */
FN_HOT void fn_unpack_row_s16(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int16_t *w)
{
    uint32_t full_done = 0, full = n / 32u, wi, b, tail = n & 31u;
#if FN_DOT_DSP
    if (((uintptr_t)w & 3u) == 0u) { /* the full words by table; the tail below */
        fn_unpack_words_dsp(row, kind, full, bpr, w, fn_nib_nat);
        full_done = full;
    }
#endif
    if (kind == FLIPNET_TERNARY) {
        const uint8_t *restrict pos = row, *restrict neg = row + bpr;
        for (wi = full_done; wi < full; wi++) {
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
        for (wi = full_done; wi < full; wi++) {
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
    uint32_t i = 0, full = n / 32u;
    if (((uintptr_t)w & 3u) == 0u) { /* full words in DSP order by table, the tail below */
        fn_unpack_words_dsp(row, kind, full, bpr, w, fn_nib_dsp);
        i = 32u * full;
        if (i < n) fn_unpack_row_s16(row + 4u * full, kind, n - i, bpr, w + i);
    } else {
        fn_unpack_row_s16(row, kind, n, bpr, w);
    }
    for (; i + 4u <= n; i += 4u) {
        int16_t t = w[i + 1u];
        w[i + 1u] = w[i + 2u];
        w[i + 2u] = t;
    }
}

/* SXTB16 of x rotated right by 8: lanes (x1, x3); one instruction (the intrinsic plus a rotate
 * would be two). */
static inline uint32_t fn_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
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
        s = __smlad(fn_sxtb16_ror8(xv), w13, s);
    }
    for (; i < n; i++) s += (int32_t)x[i] * w[i];
    return s;
}

/* Four samples (x, stride n) against the same row: each weight pair feeds four SMLADs. */
static void fn_dot4_dsp(const int8_t *x, uint32_t n, const int16_t *w, int32_t *z)
{
    const int8_t *x0 = x, *x1 = x + n, *x2 = x1 + n, *x3 = x2 + n;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint32_t i = 0;
    for (; i + 4u <= n; i += 4u) {
        uint32_t a, b, c, d, w02, w13;
        memcpy(&w02, w + i, 4);
        memcpy(&w13, w + i + 2u, 4);
        memcpy(&a, x0 + i, 4);
        memcpy(&b, x1 + i, 4);
        memcpy(&c, x2 + i, 4);
        memcpy(&d, x3 + i, 4);
        s0 = __smlad(__sxtb16(a), w02, s0);
        s1 = __smlad(__sxtb16(b), w02, s1);
        s2 = __smlad(__sxtb16(c), w02, s2);
        s3 = __smlad(__sxtb16(d), w02, s3);
        s0 = __smlad(fn_sxtb16_ror8(a), w13, s0);
        s1 = __smlad(fn_sxtb16_ror8(b), w13, s1);
        s2 = __smlad(fn_sxtb16_ror8(c), w13, s2);
        s3 = __smlad(fn_sxtb16_ror8(d), w13, s3);
    }
    for (; i < n; i++) {
        s0 += (int32_t)x0[i] * w[i];
        s1 += (int32_t)x1[i] * w[i];
        s2 += (int32_t)x2[i] * w[i];
        s3 += (int32_t)x3[i] * w[i];
    }
    z[0] = s0;
    z[1] = s1;
    z[2] = s2;
    z[3] = s3;
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
        s0 = __smlad(fn_sxtb16_ror8(a), w13, s0);
        s1 = __smlad(fn_sxtb16_ror8(b), w13, s1);
    }
    for (; i < n; i++) {
        s0 += (int32_t)x0[i] * w[i];
        s1 += (int32_t)x1[i] * w[i];
    }
    z[0] = s0;
    z[1] = s1;
}
#endif

#if FN_DOT_DSP
/* SXTAB16 with x rotated right by 8: acc + (x1, x3) lane by lane; one instruction. */
static inline uint32_t fn_sxtab16_ror8(uint32_t acc, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}

/* Byte lanes of a negated where m = 0xFFFFFFFF (m = 0: a): ~a + 1 lane by lane (UADD8 does not
 * carry across lanes). Bytes are in [-127, 127] (the core refuses -128 inputs, activations
 * clamp at +-127), so the negation is exact. */
static inline uint32_t fn_neg8_if(uint32_t a, uint32_t m)
{
    return (uint32_t)__uadd8(a ^ m, m & 0x01010101u);
}

/* S[i] += sum_c dl[c] x[list[c]][i] for dl = +-1, int16 lanes (the caller knows the sums fit),
 * K rows a pass: SXTAB16 adds the rows' bytes (0, 2) and (1, 3) into 16-bit lanes, PKHBT/PKHTB
 * put them back in input order, SADD16 adds them to S. */
#define FN_ROWS_ACC(NAME, K)                                                                       \
    static void NAME(int16_t *S, const int8_t *x, uint32_t n, const uint16_t *list,               \
                     const int8_t *dl)                                                             \
    {                                                                                              \
        const int8_t *xr[K];                                                                       \
        uint32_t m[K], i, q;                                                                       \
        for (q = 0; q < (K); q++) {                                                                \
            xr[q] = x + (size_t)list[q] * n;                                                       \
            m[q] = dl[q] < 0 ? 0xFFFFFFFFu : 0u;                                                   \
        }                                                                                          \
        for (i = 0; i + 4u <= n; i += 4u) {                                                        \
            uint32_t a, lo = 0, hi = 0, p01, p23, s01, s23;                                        \
            for (q = 0; q < (K); q++) {                                                            \
                memcpy(&a, xr[q] + i, 4);                                                          \
                a = fn_neg8_if(a, m[q]);                                                           \
                lo = (uint32_t)__sxtab16(lo, a);                                                   \
                hi = fn_sxtab16_ror8(hi, a);                                                       \
            }                                                                                      \
            p01 = (lo & 0xFFFFu) | (hi << 16);     /* PKHBT: lanes i, i + 1 */                     \
            p23 = (hi & 0xFFFF0000u) | (lo >> 16); /* PKHTB: lanes i + 2, i + 3 */                 \
            memcpy(&s01, S + i, 4);                                                                \
            memcpy(&s23, S + i + 2u, 4);                                                           \
            s01 = (uint32_t)__sadd16(s01, p01);                                                    \
            s23 = (uint32_t)__sadd16(s23, p23);                                                    \
            memcpy(S + i, &s01, 4);                                                                \
            memcpy(S + i + 2u, &s23, 4);                                                           \
        }                                                                                          \
        for (; i < n; i++) {                                                                       \
            int32_t t = S[i];                                                                      \
            for (q = 0; q < (K); q++) t += dl[q] * xr[q][i];                                       \
            S[i] = (int16_t)t;                                                                     \
        }                                                                                          \
    }
FN_ROWS_ACC(fn_rows_acc1, 1u)
FN_ROWS_ACC(fn_rows_acc2, 2u)
FN_ROWS_ACC(fn_rows_acc3, 3u)
FN_ROWS_ACC(fn_rows_acc4, 4u)
#undef FN_ROWS_ACC

void fn_rows_acc16_dsp(int16_t *S, const int8_t *x, uint32_t n, const uint16_t *list,
                       const int8_t *dl, uint32_t cnt)
{
    uint32_t c = 0;
    for (; c + 4u <= cnt; c += 4u) fn_rows_acc4(S, x, n, list + c, dl + c);
    if (cnt - c == 3u) fn_rows_acc3(S, x, n, list + c, dl + c);
    else if (cnt - c == 2u) fn_rows_acc2(S, x, n, list + c, dl + c);
    else if (cnt - c == 1u) fn_rows_acc1(S, x, n, list + c, dl + c);
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
            for (c = 0; c + 3u < cnt; c += 4u) fn_dot4_dsp(x + (size_t)(b0 + c) * n, n, wrow, zb + c);
            for (; c + 1u < cnt; c += 2u) {
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

#if FN_DOT_DSP
/* Threshold masks with the Cortex-M DSP byte SIMD: SSUB8 sets the GE flag of each byte whose
 * full-precision difference is >= 0 (h - tau >= 0: up; -tau - h >= 0: dn), SEL turns the flags
 * into 0x80 bytes, and a multiply gathers the four top bits into bits 28..31 (the partial
 * products land on distinct bits, so nothing carries). */
static inline uint32_t fn_gather4(uint32_t m80) { return (m80 * 0x00204081u) >> 28; }

static void fn_thresh_masks_dsp(const int8_t *h, uint32_t n, int32_t tau, uint32_t *up,
                                uint32_t *dn)
{
    uint32_t k, q, full = n / 32u, t = (uint8_t)tau, nt = (uint8_t)(int8_t)-tau;
    const int8x4_t tu = (int8x4_t)(t * 0x01010101u), td = (int8x4_t)(nt * 0x01010101u);
    const uint8x4_t hi = (uint8x4_t)0x80808080u, zero = (uint8x4_t)0u;
    for (k = 0; k < full; k++) {
        const int8_t *hk = h + 32u * k;
        uint32_t u = 0, d = 0;
        for (q = 0; q < 8u; q++) {
            int32_t v;
            memcpy(&v, hk + 4u * q, 4); /* one LDR: the M4 loads unaligned words */
            (void)__ssub8((int8x4_t)v, tu);
            u |= fn_gather4((uint32_t)__sel(hi, zero)) << (4u * q);
            (void)__ssub8(td, (int8x4_t)v);
            d |= fn_gather4((uint32_t)__sel(hi, zero)) << (4u * q);
        }
        up[k] = u;
        dn[k] = d;
    }
    if (full * 32u < n) fn_thresh_masks_portable(h + 32u * full, n - 32u * full, tau, up + full,
                                                 dn + full);
}
#endif

const fn_kernels fn_kernels_portable = {
#if FN_DOT_DSP
    "dsp", fn_forward_portable, fn_thresh_masks_dsp};
#else
    "portable", fn_forward_portable, fn_thresh_masks_portable};
#endif

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
