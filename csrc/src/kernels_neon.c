/* flipnet core: aarch64 kernel sets (docs/speed.md), for Pi-class boards:
 *   "neon":     int8 x int8 products with SMLAL/SMLAL2 (16-bit sums, widened every 64 steps
 *               with SADALP), 2 rows x 4 samples a tile; any aarch64 CPU;
 *   "neon-dot": SDOT (16 products an instruction into 32-bit sums), 2 rows x 4 samples;
 *               Armv8.2 dot product extension (Cortex-A55/A76 and later: Pi 5, not Pi 4),
 *               compiled with a per-function target attribute, chosen when the CPU has it.
 * Both multiply signed by signed, so no offset is needed (unlike x86's unsigned x signed
 * products). Weight rows are unpacked to int8 into the wrow scratch (2 rows of n); the last
 * n % 16 inputs go through zero-padded copies. */
#include "fn_internal.h"

#if FN_HAVE_NEON
#include <arm_neon.h> /* compiler intrinsics header, not libc */

#define FN_INLINE inline __attribute__((always_inline))
#define FN_TDOT __attribute__((target("arch=armv8.2-a+dotprod")))

/* 16 bits c (inputs 16 c ..) of a packed plane of bpr bytes; bits past the plane 0. */
static inline uint32_t fn_plane16(const uint8_t *plane, uint32_t bpr, uint32_t c)
{
    uint32_t at = 2u * c;
    if (at + 2u <= bpr) return (uint32_t)plane[at] | ((uint32_t)plane[at + 1u] << 8);
    return at < bpr ? plane[at] : 0u;
}

static const uint8_t fn_bitsel[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};

/* Bytes 0xFF (-1) where bit i of v (16 bits) is set. */
static FN_INLINE int8x16_t fn_bits16(uint32_t v, uint8x16_t sel)
{
    uint8x16_t b = vcombine_u8(vdup_n_u8((uint8_t)v), vdup_n_u8((uint8_t)(v >> 8)));
    return vreinterpretq_s8_u8(vtstq_u8(b, sel));
}

/* Row `row` (kind, n inputs) as int8 into w8[0..n). */
static void fn_unpack8_neon(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int8_t *w8)
{
    const uint8x16_t sel = vld1q_u8(fn_bitsel);
    uint32_t c, chunks = (n + 15u) / 16u;
    int ternary = kind == FLIPNET_TERNARY;
    const uint8_t *neg = ternary ? row + bpr : row;
    for (c = 0; c < chunks; c++) {
        uint32_t rem = n - 16u * c, valid = rem >= 16u ? 0xFFFFu : ((1u << rem) - 1u);
        int8x16_t mq = fn_bits16(fn_plane16(neg, bpr, c) & valid, sel), v;
        if (ternary) /* +1 where the plus plane is set, -1 where the minus plane is */
            v = vsubq_s8(mq, fn_bits16(fn_plane16(row, bpr, c) & valid, sel));
        else /* binary: -1 where the plane is set, else +1 */
            v = vandq_s8(fn_bits16(valid, sel), vaddq_s8(vdupq_n_s8(1), vaddq_s8(mq, mq)));
        if (rem >= 16u) {
            vst1q_s8(w8 + 16u * c, v);
        } else {
            int8_t t[16];
            vst1q_s8(t, v);
            memcpy(w8 + 16u * c, t, rem);
        }
    }
}

/* 2 rows (w0, w1) x NS samples (NS = 4 or 1; x, stride xs) over inputs [0, len), len a
 * multiple of 16, added to acc[s * 2 + r]. SMLAL: a 16-bit lane gains two products of at most
 * 128 a step, so 64 steps fit before SADALP widens them. */
static FN_INLINE void fn_dot_neon(const int8_t *w0, const int8_t *w1, const int8_t *x, size_t xs,
                                  uint32_t len, int NS, int32x4_t *acc)
{
    uint32_t i = 0;
    int s;
    while (i < len) {
        uint32_t end = len - i > 64u * 16u ? i + 64u * 16u : len;
        int16x8_t a16[8];
        for (s = 0; s < 2 * NS; s++) a16[s] = vdupq_n_s16(0);
        for (; i < end; i += 16u) {
            int8x16_t a = vld1q_s8(w0 + i), b = vld1q_s8(w1 + i);
            for (s = 0; s < NS; s++) {
                int8x16_t v = vld1q_s8(x + (size_t)s * xs + i);
                a16[2 * s] = vmlal_s8(a16[2 * s], vget_low_s8(v), vget_low_s8(a));
                a16[2 * s] = vmlal_high_s8(a16[2 * s], v, a);
                a16[2 * s + 1] = vmlal_s8(a16[2 * s + 1], vget_low_s8(v), vget_low_s8(b));
                a16[2 * s + 1] = vmlal_high_s8(a16[2 * s + 1], v, b);
            }
        }
        for (s = 0; s < 2 * NS; s++) acc[s] = vpadalq_s16(acc[s], a16[s]);
    }
}

FN_TDOT static FN_INLINE void fn_dot_sdot(const int8_t *w0, const int8_t *w1, const int8_t *x,
                                          size_t xs, uint32_t len, int NS, int32x4_t *acc)
{
    uint32_t i;
    int s;
    for (i = 0; i < len; i += 16u) {
        int8x16_t a = vld1q_s8(w0 + i), b = vld1q_s8(w1 + i);
        for (s = 0; s < NS; s++) {
            int8x16_t v = vld1q_s8(x + (size_t)s * xs + i);
            acc[2 * s] = vdotq_s32(acc[2 * s], v, a);
            acc[2 * s + 1] = vdotq_s32(acc[2 * s + 1], v, b);
        }
    }
}

/* 2 rows x NS samples: out[s * 2 + r] = sum_i x_si w_ri, the last n % 16 inputs from
 * zero-padded copies. DOT: the dot-product body above. */
#define FN_TILE(NAME, ATTR, DOT)                                                                   \
    ATTR static FN_INLINE void NAME(const int8_t *w0, const int8_t *w1, const int8_t *x,           \
                                    uint32_t n, int NS, int32_t *out)                              \
    {                                                                                              \
        int32x4_t acc[8];                                                                          \
        uint32_t full = n & ~15u, rem = n - full;                                                  \
        int s;                                                                                     \
        for (s = 0; s < 2 * NS; s++) acc[s] = vdupq_n_s32(0);                                      \
        DOT(w0, w1, x, n, full, NS, acc);                                                          \
        if (rem != 0u) {                                                                           \
            int8_t tw[2][16], tx[4][16];                                                           \
            memset(tw, 0, sizeof(tw));                                                             \
            memset(tx, 0, sizeof(tx));                                                             \
            memcpy(tw[0], w0 + full, rem);                                                         \
            memcpy(tw[1], w1 + full, rem);                                                         \
            for (s = 0; s < NS; s++) memcpy(tx[s], x + (size_t)s * n + full, rem);                 \
            DOT(tw[0], tw[1], tx[0], 16, 16, NS, acc);                                             \
        }                                                                                          \
        for (s = 0; s < 2 * NS; s++) out[s] = vaddvq_s32(acc[s]);                                  \
    }

/* Samples per block of the forward: the block's inputs stay in the caches while every row
 * pair passes over them (each block unpacks the rows again). */
static uint32_t fn_sample_block_neon(uint32_t n)
{
    uint32_t sb = (uint32_t)(32768u / (n != 0u ? n : 1u)) & ~3u;
    return sb < 16u ? 16u : (sb > 256u ? 256u : sb);
}

#define FN_FORWARD(NAME, ATTR, TILE)                                                               \
    ATTR static void NAME(const flipnet_layer *L, const uint8_t *w, uint32_t j0, uint32_t j1,      \
                          const int8_t *x, uint32_t batch, fn_fwd_sink *sink, int16_t *wrow)       \
    {                                                                                              \
        uint32_t n = L->n, j, b0, bb, s, r, sb = fn_sample_block_neon(n);                          \
        size_t rb = (size_t)fn_planes(L->kind) * L->bpr;                                           \
        int8_t *w8 = (int8_t *)wrow;                                                               \
        int32_t zt[8], zo[8];                                                                      \
        for (bb = 0; bb < batch; bb += sb) {                                                       \
            uint32_t be = batch - bb > sb ? bb + sb : batch;                                       \
            for (j = j0; j < j1; j += 2u) {                                                        \
                uint32_t nr = j1 - j >= 2u ? 2u : 1u;                                              \
                const int8_t *w1 = nr == 2u ? w8 + n : w8;                                         \
                fn_unpack8_neon(w + (size_t)j * rb, L->kind, n, L->bpr, w8);                       \
                if (nr == 2u) fn_unpack8_neon(w + (size_t)(j + 1u) * rb, L->kind, n, L->bpr, w8 + n); \
                for (b0 = bb; b0 < be;) {                                                          \
                    uint32_t ns = be - b0 >= 4u ? 4u : 1u;                                         \
                    const int8_t *xb = x + (size_t)b0 * n;                                         \
                    if (ns == 4u) TILE(w8, w1, xb, n, 4, zt);                                      \
                    else TILE(w8, w1, xb, n, 1, zt);                                               \
                    for (s = 0; s < ns; s++) {                                                     \
                        for (r = 0; r < nr; r++) zo[s * nr + r] = zt[s * 2u + r];                  \
                    }                                                                              \
                    fn_fwd_store(sink, b0, ns, j, nr, zo);                                         \
                    b0 += ns;                                                                      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

FN_TILE(fn_tile_neon, , fn_dot_neon)
FN_FORWARD(fn_forward_neon, , fn_tile_neon)
FN_TILE(fn_tile_sdot, FN_TDOT, fn_dot_sdot)
FN_FORWARD(fn_forward_sdot, FN_TDOT, fn_tile_sdot)

/* Bits of 16 compare results (0xFF / 0), lane i to bit i. */
static FN_INLINE uint32_t fn_movemask16(uint8x16_t m, uint8x16_t sel)
{
    uint8x16_t b = vandq_u8(m, sel);
    return (uint32_t)vaddv_u8(vget_low_u8(b)) | ((uint32_t)vaddv_u8(vget_high_u8(b)) << 8);
}

static void fn_thresh_masks_neon(const int8_t *h, uint32_t n, int32_t tau, uint32_t *up,
                                 uint32_t *dn)
{
    const uint8x16_t sel = vld1q_u8(fn_bitsel);
    const int8x16_t tu = vdupq_n_s8((int8_t)tau), td = vdupq_n_s8((int8_t)-tau);
    uint32_t k, full = n / 32u;
    for (k = 0; k < full; k++) {
        int8x16_t v0 = vld1q_s8(h + 32u * k), v1 = vld1q_s8(h + 32u * k + 16u);
        up[k] = fn_movemask16(vcgeq_s8(v0, tu), sel) | (fn_movemask16(vcgeq_s8(v1, tu), sel) << 16);
        dn[k] = fn_movemask16(vcleq_s8(v0, td), sel) | (fn_movemask16(vcleq_s8(v1, td), sel) << 16);
    }
    if (full * 32u < n) /* the last n % 32 counters: the plain C */
        fn_kernels_portable.thresh_masks(h + 32u * full, n - 32u * full, tau, up + full,
                                         dn + full);
}

const fn_kernels fn_kernels_neon = {"neon", fn_forward_neon, fn_thresh_masks_neon};
const fn_kernels fn_kernels_neon_dot = {"neon-dot", fn_forward_sdot, fn_thresh_masks_neon};

#else
typedef int fn_kernels_neon_unused; /* ISO C: a translation unit is not empty */
#endif
