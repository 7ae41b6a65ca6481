/* flipnet core: x86-64 kernel sets (docs/speed.md), compiled with per-function target attributes
 * so that the library runs on any x86-64 and kselect.c picks a set the CPU has:
 *   "avx2":       int8 x int8 products with vpmaddubsw (16-bit sums), 2 rows x 4 samples a tile;
 *   "avx512vnni": vpdpbusd (64 products an instruction into 32-bit sums), 2 rows x 8 samples.
 * The products need one unsigned operand: x + 128 (x ^ 0x80 as a byte), and the sums subtract
 * 128 sum_i w_i, exact. Weight rows are unpacked to int8 into the wrow scratch (2 rows of n). */
#include "fn_internal.h"

#if FN_HAVE_X86
#include <immintrin.h> /* compiler intrinsics header, not libc */

#define FN_T512 __attribute__((target("avx2,popcnt,avx512f,avx512bw,avx512vl,avx512vnni")))
#define FN_T256 __attribute__((target("avx2,popcnt")))
#define FN_INLINE inline __attribute__((always_inline))

/* 8 bytes k of a plane of bpr bytes as a little-endian word (bits past the plane 0). */
static inline uint64_t fn_plane64(const uint8_t *plane, uint32_t bpr, uint32_t k)
{
    uint32_t at = 8u * k, b;
    uint64_t v = 0;
    if (at + 8u <= bpr) return fn_rd64(plane + at);
    for (b = 0; at + b < bpr; b++) v |= (uint64_t)plane[at + b] << (8u * b);
    return v;
}

/* ---- AVX-512 VNNI ------------------------------------------------------------------------- */
/* Row `row` as int8 into w8[0..n); returns the sum of its weights. */
FN_T512 static int32_t fn_unpack8_512(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr,
                                      int8_t *w8)
{
    uint32_t c, chunks = (n + 63u) / 64u;
    int32_t sum = 0;
    int ternary = kind == FLIPNET_TERNARY;
    const uint8_t *neg = ternary ? row + bpr : row;
    for (c = 0; c < chunks; c++) {
        uint32_t rem = n - 64u * c;
        uint64_t valid = rem >= 64u ? ~(uint64_t)0 : (((uint64_t)1 << rem) - 1u);
        uint64_t q = fn_plane64(neg, bpr, c) & valid;
        __m512i v;
        if (ternary) {
            uint64_t p = fn_plane64(row, bpr, c) & valid;
            v = _mm512_sub_epi8(_mm512_movm_epi8(q), _mm512_movm_epi8(p));
            sum += __builtin_popcountll(p) - __builtin_popcountll(q);
        } else {
            __m512i mq = _mm512_movm_epi8(q);
            v = _mm512_maskz_mov_epi8(valid, _mm512_add_epi8(_mm512_set1_epi8(1),
                                                             _mm512_add_epi8(mq, mq)));
            sum += __builtin_popcountll(valid) - 2 * __builtin_popcountll(q);
        }
        _mm512_mask_storeu_epi8(w8 + 64u * c, valid, v);
    }
    return sum;
}

/* Lane k of the result: the sum of the 16 lanes of a[k]. */
FN_T512 static FN_INLINE __m512i fn_hsum16x16(const __m512i *a)
{
    __m512i t[8], u[4], v0, v1;
    int k;
    for (k = 0; k < 8; k++)
        t[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * k], a[2 * k + 1]),
                                _mm512_unpackhi_epi32(a[2 * k], a[2 * k + 1]));
    for (k = 0; k < 4; k++)
        u[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * k], t[2 * k + 1]),
                                _mm512_unpackhi_epi64(t[2 * k], t[2 * k + 1]));
    v0 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
    v1 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[2], u[3], _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_i32x4(u[2], u[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(v0, v1, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(v0, v1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* 2 rows (w0, w1: int8, n) x 8 samples (x, stride n): out[s * 2 + r] = sum (x + 128) w.
 * Named accumulators (not an array), so that they stay in registers. */
#define FN_ACC2(s)                                                                                 \
    do {                                                                                           \
        __m512i xs_ = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, x + (size_t)(s) * n + i), off); \
        c##s##0 = _mm512_dpbusd_epi32(c##s##0, xs_, a);                                            \
        c##s##1 = _mm512_dpbusd_epi32(c##s##1, xs_, b);                                            \
    } while (0)
FN_T512 static void fn_tile512_2x8(const int8_t *w0, const int8_t *w1, const int8_t *x,
                                   uint32_t n, int32_t *out)
{
    const __m512i off = _mm512_set1_epi8((char)0x80);
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00;
    __m512i c61 = c00, c70 = c00, c71 = c00, acc[16];
    uint32_t i;
    for (i = 0; i < n; i += 64u) { /* masked loads: the last chunk reads only its n - i bytes */
        __mmask64 mk = n - i >= 64u ? ~(uint64_t)0 : (((uint64_t)1 << (n - i)) - 1u);
        __m512i a = _mm512_maskz_loadu_epi8(mk, w0 + i), b = _mm512_maskz_loadu_epi8(mk, w1 + i);
        FN_ACC2(0); FN_ACC2(1); FN_ACC2(2); FN_ACC2(3);
        FN_ACC2(4); FN_ACC2(5); FN_ACC2(6); FN_ACC2(7);
    }
    acc[0] = c00; acc[1] = c01; acc[2] = c10; acc[3] = c11;
    acc[4] = c20; acc[5] = c21; acc[6] = c30; acc[7] = c31;
    acc[8] = c40; acc[9] = c41; acc[10] = c50; acc[11] = c51;
    acc[12] = c60; acc[13] = c61; acc[14] = c70; acc[15] = c71;
    _mm512_storeu_si512((void *)out, fn_hsum16x16(acc));
}
#undef FN_ACC2

/* 2 rows x 1 sample: out[r] = sum (x + 128) w_r. */
FN_T512 static void fn_tile512_2x1(const int8_t *w0, const int8_t *w1, const int8_t *x, uint32_t n,
                                   int32_t *out)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    const __m512i off = _mm512_set1_epi8((char)0x80);
    uint32_t i = 0;
    for (; i + 64u <= n; i += 64u) {
        __m512i xs = _mm512_xor_si512(_mm512_loadu_si512((const void *)(x + i)), off);
        a0 = _mm512_dpbusd_epi32(a0, xs, _mm512_loadu_si512((const void *)(w0 + i)));
        a1 = _mm512_dpbusd_epi32(a1, xs, _mm512_loadu_si512((const void *)(w1 + i)));
    }
    if (i < n) {
        __mmask64 mk = (((uint64_t)1 << (n - i)) - 1u);
        __m512i xs = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, x + i), off);
        a0 = _mm512_dpbusd_epi32(a0, xs, _mm512_maskz_loadu_epi8(mk, w0 + i));
        a1 = _mm512_dpbusd_epi32(a1, xs, _mm512_maskz_loadu_epi8(mk, w1 + i));
    }
    out[0] = _mm512_reduce_add_epi32(a0);
    out[1] = _mm512_reduce_add_epi32(a1);
}

/* Samples per block of the forward: the block's inputs stay in the L1/L2 caches while every
 * row pair passes over them (the rows are unpacked again for each block: n/64 instructions a
 * row against the block's 2 n/64 * samples products). */
static uint32_t fn_sample_block(uint32_t n)
{
    uint32_t sb = (uint32_t)(49152u / (n != 0u ? n : 1u)) & ~7u;
    return sb < 16u ? 16u : (sb > 256u ? 256u : sb);
}

/* Z of a 2 x 8 tile (lane s * 2 + r: sample b0 + s, output j + r; lanes past ns or nr unused)
 * into the sink: logits, act = clamp(Z >> shift) with the clamped count, sum |Z|. */
FN_T512 static void fn_store512(fn_fwd_sink *k, uint32_t b0, uint32_t ns, uint32_t j,
                                uint32_t nr, __m512i zv)
{
    uint32_t s;
    __mmask16 valid;
    if (ns == 8u && nr == 2u) valid = 0xFFFFu;
    else if (nr == 2u) valid = (__mmask16)((1u << (2u * ns)) - 1u);
    else valid = (__mmask16)(0x5555u & ((1u << (2u * ns)) - 1u));
    if (k->z != NULL) {
        int32_t t[16];
        _mm512_storeu_si512((void *)t, zv);
        for (s = 0; s < ns; s++) memcpy(k->z + (size_t)(b0 + s) * k->m + j, t + 2u * s, 4u * nr);
    }
    if (k->want_sum) {
        __m512i a = _mm512_maskz_abs_epi32(valid, zv);
        k->sum_abs += (uint64_t)_mm512_reduce_add_epi64(
                          _mm512_cvtepu32_epi64(_mm512_castsi512_si256(a))) +
                      (uint64_t)_mm512_reduce_add_epi64(
                          _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(a, 1)));
    }
    if (k->act != NULL || k->want_clip) {
        __m512i a = _mm512_sra_epi32(zv, _mm_cvtsi32_si128((int)k->shift));
        const __m512i hi = _mm512_set1_epi32(127), lo = _mm512_set1_epi32(-127);
        __mmask16 out = _mm512_mask_cmpgt_epi32_mask(valid, a, hi) |
                        _mm512_mask_cmplt_epi32_mask(valid, a, lo);
        k->clipped += (uint32_t)__builtin_popcount((unsigned)out);
        if (k->act != NULL) {
            uint8_t t[16];
            _mm_storeu_si128((__m128i *)(void *)t,
                             _mm512_cvtepi32_epi8(_mm512_max_epi32(_mm512_min_epi32(a, hi), lo)));
            for (s = 0; s < ns; s++) memcpy(k->act + (size_t)(b0 + s) * k->m + j, t + 2u * s, nr);
        }
    }
}

FN_T512 static void fn_forward_512(const flipnet_layer *L, const uint8_t *w, uint32_t j0, uint32_t j1,
                                   const int8_t *x, uint32_t batch, fn_fwd_sink *sink,
                                   int16_t *wrow)
{
    uint32_t n = L->n, j, b0, bb, sb = fn_sample_block(n);
    size_t rb = (size_t)fn_planes(L->kind) * L->bpr;
    int8_t *w8 = (int8_t *)wrow;
    int32_t zt[16];
    for (bb = 0; bb < batch; bb += sb) {
        uint32_t be = batch - bb > sb ? bb + sb : batch;
        for (j = j0; j < j1; j += 2u) {
            uint32_t nr = j1 - j >= 2u ? 2u : 1u;
            const int8_t *w1 = nr == 2u ? w8 + n : w8;
            int32_t s0, s1;
            __m512i corr;
            s0 = fn_unpack8_512(w + (size_t)j * rb, L->kind, n, L->bpr, w8);
            s1 = nr == 2u ? fn_unpack8_512(w + (size_t)(j + 1u) * rb, L->kind, n, L->bpr, w8 + n)
                          : 0;
            /* lanes s * 2 + r: 128 sum_i w_{j+r, i} */
            corr = _mm512_set_epi32(128 * s1, 128 * s0, 128 * s1, 128 * s0, 128 * s1, 128 * s0,
                                    128 * s1, 128 * s0, 128 * s1, 128 * s0, 128 * s1, 128 * s0,
                                    128 * s1, 128 * s0, 128 * s1, 128 * s0);
            for (b0 = bb; b0 < be;) {
                uint32_t ns = be - b0 >= 8u ? 8u : 1u;
                const int8_t *xb = x + (size_t)b0 * n;
                if (ns == 8u) {
                    fn_tile512_2x8(w8, w1, xb, n, zt);
                } else {
                    memset(zt, 0, sizeof(zt));
                    fn_tile512_2x1(w8, w1, xb, n, zt);
                }
                fn_store512(sink, b0, ns, j, nr,
                            _mm512_sub_epi32(_mm512_loadu_si512((const void *)zt), corr));
                b0 += ns;
            }
        }
    }
}

FN_T512 static void fn_thresh_masks_512(const int8_t *h, uint32_t n, int32_t tau, uint32_t *up,
                                        uint32_t *dn)
{
    uint32_t k = 0, words = (n + 31u) / 32u;
    const __m512i tu = _mm512_set1_epi8((char)tau), td = _mm512_set1_epi8((char)-tau);
    for (; 64u * (k / 2u) + 64u <= n && k + 1u < words; k += 2u) {
        __m512i v = _mm512_loadu_si512((const void *)(h + 32u * k));
        uint64_t u = _mm512_cmpge_epi8_mask(v, tu), d = _mm512_cmple_epi8_mask(v, td);
        up[k] = (uint32_t)u;
        up[k + 1u] = (uint32_t)(u >> 32);
        dn[k] = (uint32_t)d;
        dn[k + 1u] = (uint32_t)(d >> 32);
    }
    if (k < words) {
        uint32_t rem = n - 32u * k;
        __mmask64 mk = rem >= 64u ? ~(uint64_t)0 : (((uint64_t)1 << rem) - 1u);
        __m512i v = _mm512_maskz_loadu_epi8(mk, h + 32u * k);
        uint64_t u = _mm512_mask_cmpge_epi8_mask(mk, v, tu), d = _mm512_mask_cmple_epi8_mask(mk, v, td);
        up[k] = (uint32_t)u;
        dn[k] = (uint32_t)d;
        if (k + 1u < words) {
            up[k + 1u] = (uint32_t)(u >> 32);
            dn[k + 1u] = (uint32_t)(d >> 32);
        }
    }
}

const fn_kernels fn_kernels_avx512vnni = {"avx512vnni", fn_forward_512, fn_thresh_masks_512};

/* ---- AVX2 --------------------------------------------------------------------------------- */
/* Bytes 0xFF where bit i of v is set (lane i of 32). */
FN_T256 static FN_INLINE __m256i fn_bits32_256(uint32_t v)
{
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                         2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), sel);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
}

/* Row `row` as int8 into w8[0..n); returns the sum of its weights. */
FN_T256 static int32_t fn_unpack8_256(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr,
                                      int8_t *w8)
{
    uint32_t c, chunks = (n + 31u) / 32u;
    int32_t sum = 0;
    int ternary = kind == FLIPNET_TERNARY;
    const uint8_t *neg = ternary ? row + bpr : row;
    for (c = 0; c < chunks; c++) {
        uint32_t rem = n - 32u * c, valid = rem >= 32u ? ~0u : ((1u << rem) - 1u);
        uint32_t q = fn_plane_word(neg, bpr, c) & valid;
        __m256i v, mq = fn_bits32_256(q);
        if (ternary) {
            uint32_t p = fn_plane_word(row, bpr, c) & valid;
            v = _mm256_sub_epi8(mq, fn_bits32_256(p));
            sum += __builtin_popcount(p) - __builtin_popcount(q);
        } else {
            v = _mm256_and_si256(fn_bits32_256(valid),
                                 _mm256_add_epi8(_mm256_set1_epi8(1), _mm256_add_epi8(mq, mq)));
            sum += __builtin_popcount(valid) - 2 * __builtin_popcount(q);
        }
        if (rem >= 32u) {
            _mm256_storeu_si256((__m256i *)(void *)(w8 + 32u * c), v);
        } else {
            int8_t t[32];
            _mm256_storeu_si256((__m256i *)(void *)t, v);
            memcpy(w8 + 32u * c, t, rem);
        }
    }
    return sum;
}

/* Lane k of the result: the sum of the 8 lanes of a[k]. */
FN_T256 static FN_INLINE __m256i fn_hsum8x8(const __m256i *a)
{
    __m256i h0 = _mm256_hadd_epi32(a[0], a[1]), h1 = _mm256_hadd_epi32(a[2], a[3]);
    __m256i h2 = _mm256_hadd_epi32(a[4], a[5]), h3 = _mm256_hadd_epi32(a[6], a[7]);
    __m256i g0 = _mm256_hadd_epi32(h0, h1), g1 = _mm256_hadd_epi32(h2, h3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20),
                            _mm256_permute2x128_si256(g0, g1, 0x31));
}

/* 2 rows x NS samples (NS = 4 or 1) over inputs [0, len), len a multiple of 32, into acc32
 * (8 int32 vectors, [s * 2 + r]). 16-bit sums: a pair of products is at most 2 * 255, so 64
 * chunks fit before they are widened. */
FN_T256 static FN_INLINE void fn_dot256(const int8_t *w0, const int8_t *w1, const int8_t *x,
                                        size_t xs, uint32_t len, int NS, __m256i *acc32)
{
    const __m256i off = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    uint32_t i = 0;
    int s;
    while (i < len) {
        uint32_t end = len - i > 64u * 32u ? i + 64u * 32u : len;
        __m256i a16[8];
        for (s = 0; s < 2 * NS; s++) a16[s] = _mm256_setzero_si256();
        for (; i < end; i += 32u) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(w0 + i));
            __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(w1 + i));
            for (s = 0; s < NS; s++) {
                __m256i v = _mm256_xor_si256(
                    _mm256_loadu_si256((const __m256i *)(const void *)(x + s * xs + i)), off);
                a16[2 * s] = _mm256_add_epi16(a16[2 * s], _mm256_maddubs_epi16(v, a));
                a16[2 * s + 1] = _mm256_add_epi16(a16[2 * s + 1], _mm256_maddubs_epi16(v, b));
            }
        }
        for (s = 0; s < 2 * NS; s++)
            acc32[s] = _mm256_add_epi32(acc32[s], _mm256_madd_epi16(a16[s], ones));
    }
}

/* 2 rows x NS samples: out[s * 2 + r] = sum (x + 128) w_r; the last n % 32 inputs from
 * zero-padded copies. */
FN_T256 static FN_INLINE void fn_tile256(const int8_t *w0, const int8_t *w1, const int8_t *x,
                                         uint32_t n, int NS, int32_t *out)
{
    __m256i acc[8];
    uint32_t full = n & ~31u, rem = n - full;
    int s;
    for (s = 0; s < 8; s++) acc[s] = _mm256_setzero_si256();
    fn_dot256(w0, w1, x, n, full, NS, acc);
    if (rem != 0u) {
        int8_t tw[2][32], tx[4][32];
        memset(tw, 0, sizeof(tw));
        memset(tx, 0, sizeof(tx));
        memcpy(tw[0], w0 + full, rem);
        memcpy(tw[1], w1 + full, rem);
        for (s = 0; s < NS; s++) memcpy(tx[s], x + (size_t)s * n + full, rem);
        fn_dot256(tw[0], tw[1], tx[0], 32, 32, NS, acc);
    }
    _mm256_storeu_si256((__m256i *)(void *)out, fn_hsum8x8(acc));
}

FN_T256 static void fn_forward_256(const flipnet_layer *L, const uint8_t *w, uint32_t j0, uint32_t j1,
                                   const int8_t *x, uint32_t batch, fn_fwd_sink *sink,
                                   int16_t *wrow)
{
    uint32_t n = L->n, j, b0, s, r;
    size_t rb = (size_t)fn_planes(L->kind) * L->bpr;
    int8_t *w8 = (int8_t *)wrow;
    int32_t zt[8], zo[8], sw[2];
    for (j = j0; j < j1; j += 2u) {
        uint32_t nr = j1 - j >= 2u ? 2u : 1u;
        const int8_t *w1 = nr == 2u ? w8 + n : w8;
        sw[0] = fn_unpack8_256(w + (size_t)j * rb, L->kind, n, L->bpr, w8);
        sw[1] = nr == 2u ? fn_unpack8_256(w + (size_t)(j + 1u) * rb, L->kind, n, L->bpr, w8 + n) : 0;
        for (b0 = 0; b0 < batch;) {
            uint32_t ns = batch - b0 >= 4u ? 4u : 1u;
            const int8_t *xb = x + (size_t)b0 * n;
            if (ns == 4u) fn_tile256(w8, w1, xb, n, 4, zt);
            else fn_tile256(w8, w1, xb, n, 1, zt);
            for (s = 0; s < ns; s++) {
                for (r = 0; r < nr; r++) zo[s * nr + r] = zt[s * 2u + r] - 128 * sw[r];
            }
            fn_fwd_store(sink, b0, ns, j, nr, zo);
            b0 += ns;
        }
    }
}

FN_T256 static void fn_thresh_masks_256(const int8_t *h, uint32_t n, int32_t tau, uint32_t *up,
                                        uint32_t *dn)
{
    uint32_t k, full = n / 32u;
    const __m256i tu = _mm256_set1_epi8((char)(tau - 1)), td = _mm256_set1_epi8((char)(1 - tau));
    for (k = 0; k < full; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(h + 32u * k));
        up[k] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(v, tu));
        dn[k] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(td, v));
    }
    if (full * 32u < n) /* the last n % 32 counters: the plain C */
        fn_kernels_portable.thresh_masks(h + 32u * full, n - 32u * full, tau, up + full,
                                         dn + full);
}

const fn_kernels fn_kernels_avx2 = {"avx2", fn_forward_256, fn_thresh_masks_256};

#else
typedef int fn_kernels_x86_unused; /* ISO C: a translation unit is not empty */
#endif
