/*
 * flipnet core internals: shared by the csrc/src sources and the C tests; not a public API.
 * Portable C99. Integer only, except the FP32-layer functions of hybrid.c declared at the end
 * (absent with FLIPNET_NO_FLOAT).
 */
#ifndef FLIPNET_INTERNAL_H
#define FLIPNET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flipnet/flipnet.h"

#define FN_PURPOSE_INIT 1u
#define FN_PURPOSE_FLIP 2u
#define FN_PURPOSE_SHUFFLE 3u
#define FN_KEY_MAX_VALUE ((1u << 19) - 1u)
#define FN_KEY_BINS 256u
#define FN_CALIB_TARGET 32u

/* x86-64 + GCC + glibc: hot kernels get an AVX2 clone picked at load time (ifunc); elsewhere
 * (other compilers, Cortex-M, aarch64, -march=native builds) plain functions. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__) && \
    !defined(__AVX2__) && !defined(FLIPNET_NO_CLONES)
#define FN_HOT __attribute__((target_clones("avx2", "default")))
#else
#define FN_HOT
#endif

/* 1 when this build has FP32 layers (float code); 0 with FLIPNET_NO_FLOAT, where conditions
 * `FN_HAS_F32 && ...` let the compiler drop the FP32 branches of the integer files. */
#ifdef FLIPNET_NO_FLOAT
#define FN_HAS_F32 0
#else
#define FN_HAS_F32 1
#endif

/* ---- small helpers ----------------------------------------------------------------------- */
static inline uint32_t fn_planes(uint8_t kind) { return kind == FLIPNET_TERNARY ? 2u : 1u; }
static inline uint32_t fn_bpr(uint32_t n) { return (n + 7u) / 8u; }
/* Layer kinds this build knows: ternary, binary and (unless FLIPNET_NO_FLOAT) FP32. */
static inline int fn_kind_ok(uint8_t kind)
{
#ifdef FLIPNET_NO_FLOAT
    return kind == FLIPNET_TERNARY || kind == FLIPNET_BINARY;
#else
    return kind == FLIPNET_TERNARY || kind == FLIPNET_BINARY || kind == FLIPNET_FP32;
#endif
}
/* bpr of a layer: ceil(n / 8) for ternary/binary rows, 0 for FP32 layers. */
static inline uint32_t fn_layer_bpr(uint8_t kind, uint32_t n)
{
    return kind == FLIPNET_FP32 ? 0u : fn_bpr(n);
}
/* Parameters of an FP32 layer: W (m*n) and the bias (m). */
static inline uint64_t fn_f32_params(uint32_t n, uint32_t m) { return (uint64_t)m * n + m; }
/* Bytes of one layer in the weight area: packed rows m * planes * bpr rounded up to 4, or an
 * FP32 layer's 4 * (m*n + m). */
static inline uint64_t fn_layer_bytes(uint8_t kind, uint32_t n, uint32_t m)
{
    if (kind == FLIPNET_FP32) return 4u * fn_f32_params(n, m);
    return ((uint64_t)m * fn_planes(kind) * fn_bpr(n) + 3u) & ~(uint64_t)3u;
}
/* Bytes of one layer's AdamW state (two moments per parameter), 0 for integer layers. */
static inline uint64_t fn_opt_layer_bytes(uint8_t kind, uint32_t n, uint32_t m)
{
    return kind == FLIPNET_FP32 ? 8u * fn_f32_params(n, m) : 0u;
}
/* float32 bit pattern: not NaN / Inf (exponent not all ones). */
static inline int fn_f32_bits_finite(uint32_t u) { return (u & 0x7F800000u) != 0x7F800000u; }
/* float32 bit pattern of a valid second moment: finite and not below 0 (-0 allowed). */
static inline int fn_f32_bits_nonneg(uint32_t u)
{
    return fn_f32_bits_finite(u) && ((u >> 31) == 0 || (u & 0x7FFFFFFFu) == 0);
}

/* floor(z / 2^s) for any int32 z and s in [0, 31], without implementation-defined >> of a
 * negative number: for z < 0, floor(z / 2^s) = ~((~z) >> s) and ~z >= 0. */
static inline int32_t fn_floor_shift(int32_t z, uint32_t s)
{
    int32_t mask = -(int32_t)(z < 0); /* all ones when negative */
    return ((z ^ mask) >> s) ^ mask;
}

static inline int32_t fn_clamp127(int32_t v)
{
    return v > 127 ? 127 : (v < -127 ? -127 : v);
}

/* floor(log2 v) for v >= 1. */
static inline uint32_t fn_log2(uint32_t v)
{
#if defined(__GNUC__) || defined(__clang__)
    return 31u - (uint32_t)__builtin_clz(v);
#else
    uint32_t e = 0;
    if (v >= (1u << 16)) { v >>= 16; e += 16; }
    if (v >= (1u << 8)) { v >>= 8; e += 8; }
    if (v >= (1u << 4)) { v >>= 4; e += 4; }
    if (v >= (1u << 2)) { v >>= 2; e += 2; }
    if (v >= (1u << 1)) { e += 1; }
    return e;
#endif
}

/* Key of a vote magnitude (docs/rule.md section 5): 256 monotone bins. */
static inline uint32_t fn_key(uint32_t v)
{
    uint32_t e;
    if (v > FN_KEY_MAX_VALUE) v = FN_KEY_MAX_VALUE;
    if (v < 16u) return v;
    e = fn_log2(v);
    return (e - 3u) * 16u + ((v >> (e - 4u)) & 15u);
}

/* Smallest magnitude v with fn_key(v) == key (key in [0, 255]). */
static inline uint32_t fn_key_min(uint32_t key)
{
    uint32_t e;
    if (key < 16u) return key;
    e = key / 16u + 3u;
    return (1u << e) | ((key & 15u) << (e - 4u));
}

static inline uint64_t fn_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint64_t fn_stream(uint32_t purpose, uint32_t layer, uint64_t step)
{
    return ((uint64_t)(purpose & 0xFFu) << 56) | ((uint64_t)(layer & 0xFFu) << 48) |
           (step & ((UINT64_C(1) << 48) - 1u));
}

/* flipnet_rand split in two: base once per (seed, stream), then one mix64 per index. */
static inline uint64_t fn_rand_base(uint64_t seed, uint64_t stream)
{
    return fn_mix64(fn_mix64(seed ^ UINT64_C(0x243F6A8885A308D3)) ^ stream);
}
static inline uint64_t fn_rand_at(uint64_t base, uint64_t index)
{
    return fn_mix64(base + (index + 1u) * UINT64_C(0x9E3779B97F4A7C15));
}

/* ---- little-endian byte access ------------------------------------------------------------ */
static inline uint32_t fn_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t fn_rd64(const uint8_t *p)
{
    return (uint64_t)fn_rd32(p) | ((uint64_t)fn_rd32(p + 4) << 32);
}
static inline void fn_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void fn_wr64(uint8_t *p, uint64_t v)
{
    fn_wr32(p, (uint32_t)v);
    fn_wr32(p + 4, (uint32_t)(v >> 32));
}

static inline int fn_misaligned(const void *p) { return ((uintptr_t)p & 3u) != 0; }

/* ---- model structure (model.c) ------------------------------------------------------------ */
/* Check a model struct: non-NULL, aligned weights, layers valid, chained and laid out exactly
 * as flipnet_model_init lays them out, weight_bytes matching. */
flipnet_status fn_model_check(const flipnet_model *model);
/* Validate that every packed weight is legal (no pos+neg, zero padding bits). 0 = ok. */
int fn_weights_legal(const flipnet_model *model);
/* Check an architecture and compute its layer table; returns the packed weight bytes in *bytes. */
flipnet_status fn_arch_layout(const flipnet_arch *arch, flipnet_layer *layers, uint64_t *bytes);

/* Check a rule (flipnet.h train_step contract) for a model with or without counters. */
int fn_rule_valid(const flipnet_rule *rule, int has_counters);

/* Counters (rule.md 7.1): layer l's n*m int8, each layer's area rounded up to 4 bytes; FP32
 * layers have none. */
static inline uint64_t fn_counter_layer_bytes(uint8_t kind, uint32_t n, uint32_t m)
{
    if (kind == FLIPNET_FP32) return 0;
    return ((uint64_t)n * m + 3u) & ~(uint64_t)3u;
}
/* Byte offset of layer l's counters in the counter area. */
static inline size_t fn_counter_offset(const flipnet_model *model, uint32_t l)
{
    uint32_t k;
    size_t off = 0;
    for (k = 0; k < l; k++)
        off += (size_t)fn_counter_layer_bytes(model->layers[k].kind, model->layers[k].n,
                                              model->layers[k].m);
    return off;
}
/* Float offset of layer l's AdamW state in model->opt (first moments; the second moments
 * follow at + m*n + m). */
static inline size_t fn_opt_offset(const flipnet_model *model, uint32_t l)
{
    uint32_t k;
    size_t off = 0;
    for (k = 0; k < l; k++)
        off += (size_t)(fn_opt_layer_bytes(model->layers[k].kind, model->layers[k].n,
                                           model->layers[k].m) / 4u);
    return off;
}
/* 1 when the model has at least one FP32 layer. */
static inline int fn_has_f32(const flipnet_model *model)
{
    uint32_t l;
    for (l = 0; l < model->n_layers; l++) {
        if (model->layers[l].kind == FLIPNET_FP32) return 1;
    }
    return 0;
}

/* Pointer to the first byte of row j of layer L. */
static inline uint8_t *fn_row(const flipnet_model *model, const flipnet_layer *L, uint32_t j)
{
    return model->weights + L->offset + (size_t)j * fn_planes(L->kind) * L->bpr;
}

/* ---- scratch plan ------------------------------------------------------------------------- */
typedef struct {
    size_t logits;                       /* int32 (B, classes) */
    size_t act[FLIPNET_MAX_LAYERS];      /* int8 (B, m_l) hidden activations (training), or
                                            act[0], act[1] ping-pong (forward only) */
    size_t d[2];                         /* int8 (mmax, B) error buffers, transposed */
    size_t g;                            /* int16 or int32 (B, hmax) backprop accumulator (union with
                                            the vote's p, n, hist, rowmax) */
    size_t p, n;                         /* vote sums of one row: n = int16 S/E + int16 A (nmax
                                            each); for B > 258 also p: int32 S/E, n: int32 A */
    size_t hist;                         /* uint32 (256) */
    size_t rowmax;                       /* uint8 (mmax) max key per row */
    size_t afull;                        /* int16 (nmax) sum of |t| over all error samples */
    size_t ulist, clist;                 /* uint16 (B) error samples; those not on a row */
    size_t list;                         /* uint16 (B) samples with nonzero error on a row */
    size_t dl;                           /* int8 (B) their errors */
    size_t wrow;                         /* int16 (nmax) one unpacked weight row */
    /* models with FP32 layers only (appended after the integer plan, which is unchanged): */
    size_t xf[FLIPNET_MAX_LAYERS];       /* training: float (B, n_l) input of FP32 layer l */
    size_t f[2];                         /* float (B, fmax): training, the float errors; forward,
                                            ping-pong activations (fmax also covers sizes[0]) */
    size_t frow;                         /* float (max(4 nmax, mmax)): a gradient row, four
                                            ternary rows as float, the bias gradients */
    size_t total;
} fn_plan;

flipnet_status fn_plan_make(const flipnet_model *model, uint32_t batch, int training, fn_plan *plan);

/* ---- kernels (kernels.c) ------------------------------------------------------------------ */
/* w[0..n) = weights of one packed row (ternary or binary). */
void flipnet_unpack_row_ref(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int8_t *w);
/* Pack w[0..n) (values legal for kind) into a row (planes * bpr bytes, padding bits 0). */
void flipnet_pack_row_ref(uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, const int8_t *w);
/* The same row as int16 (the kernels' form: int8 x int16 products vectorize well). */
void flipnet_unpack_row_s16(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int16_t *w);
/* z[b] = sum_i x[b*n + i] * w[i] for b < batch. */
void flipnet_dot_rows_s8(const int8_t *x, const int16_t *w, uint32_t n, uint32_t batch, int32_t *z);

/* One dense layer forward. x (B, n) int8; either act (B, m) int8 with shift s (hidden) or
 * z (B, m) int32 (logits). *sum_abs += sum |Z| and *clipped += count of (Z >> s) outside
 * [-127, 127] when the pointers are non-NULL. wrow: n int16 of scratch. */
void fn_layer_forward(const flipnet_model *model, uint32_t l, const int8_t *x, uint32_t batch,
                      int8_t *act, int32_t *z, uint64_t *sum_abs, uint32_t *clipped, int16_t *wrow);
/* docs/rule.md section 1: set integer layer l's shift from its pre-activations on x (the
 * smallest s with mean|Z| >> s <= rule.calib_target, at most 31). */
void fn_calib_int_shift(flipnet_model *model, uint32_t l, const int8_t *x, uint32_t batch,
                        int16_t *wrow);

/* Check x (batch, n) has no -128. */
int fn_input_has_m128(const int8_t *x, size_t count);

/* ---- training internals shared by train.c and hybrid.c ------------------------------------- */
typedef struct {
    int32_t *P, *N; /* narrow: S then E (int16) and A (int16) in N, P unused (may be 0 bytes);
                       wide: S then E (int32) in P, A (int32) in N */
    uint32_t *hist;
    uint8_t *rowmax;
    uint16_t *list;
    int8_t *dl;
    int16_t *wrow;
    int16_t *afull;  /* sum over the layer's error samples U of |t| (HURT, narrow only) */
    uint16_t *ulist; /* U: samples with a nonzero error somewhere in this layer */
    uint16_t *clist; /* U minus the samples of the current row */
    uint32_t ucnt;   /* |U| */
    int use_afull;   /* afull is valid for this layer */
    const int16_t *e16; /* E of the current row: int16 (narrow) ... */
    const int32_t *e32; /* ... or int32 (wide) */
} fn_vote_mem;

/* The vote's working memory in a training scratch area laid out by plan. */
void fn_vote_mem_init(fn_vote_mem *mem, uint8_t *scratch, const fn_plan *plan);
/* Checks of flipnet_train_step shared by both paths (model, pointers, batch, rule, k, p,
 * classes, scratch, inputs, labels); fills plan. */
flipnet_status fn_train_args(const flipnet_model *model, const int8_t *x, const uint16_t *y,
                             uint32_t batch, const flipnet_step_params *params, void *scratch,
                             size_t scratch_bytes, fn_plan *plan);
/* docs/rule.md section 2: the integer output error of int32 logits (B, C) into cur (C, B),
 * transposed; counts correct and errors. */
void fn_output_error(const flipnet_model *model, const int32_t *logits, const uint16_t *y,
                     uint32_t batch, int8_t *cur, flipnet_step_stats *s);
/* docs/rule.md section 3 for integer layer l: cur (m, B) -> nxt (n, B), mask from a_prev. */
void fn_backprop_layer(const flipnet_model *model, uint32_t l, const int8_t *cur, uint32_t batch,
                       const int8_t *a_prev, int8_t *nxt, uint8_t *scratch, const fn_plan *plan,
                       fn_vote_mem *mem);
/* docs/rule.md sections 4-5 (or 7.1 with counters) for integer layer l with input x (B, n) and
 * error d (m, B): vote, select, update in place. */
void fn_vote_update(flipnet_model *model, uint32_t l, const int8_t *x, const int8_t *d,
                    uint32_t batch, uint32_t k, uint32_t p_q16, uint32_t *changes_out,
                    uint32_t *eligible_out, fn_vote_mem *mem);
void fn_counter_vote_update(flipnet_model *model, uint32_t l, const int8_t *x, const int8_t *d,
                            uint32_t batch, uint32_t k, uint32_t p_q16, uint32_t *changes_out,
                            uint32_t *eligible_out, fn_vote_mem *mem);

/* ---- FP32 layers (hybrid.c; docs/rule.md 8), absent with FLIPNET_NO_FLOAT ------------------ */
#ifndef FLIPNET_NO_FLOAT
/* Initial W and bias of FP32 layer l (uniform in [-1/sqrt(n), 1/sqrt(n)) from the INIT stream). */
void fn_f32_init_layer(flipnet_model *model, uint32_t l);
/* Forward of a model with FP32 layers through the forward plan (ping-pong buffers): int32
 * logits (integer last layer) or float logits (FP32 last layer) at logits; calibrate != 0 also
 * sets every hidden layer's shift on the way (flipnet_calibrate). */
void fn_hybrid_forward(flipnet_model *model, const int8_t *x, uint32_t batch, void *logits,
                       uint8_t *scratch, const fn_plan *plan, int calibrate);
/* flipnet_train_step of a model with FP32 layers (arguments checked by fn_train_args). */
flipnet_status fn_hybrid_train_step(flipnet_model *model, const int8_t *x, const uint16_t *y,
                                    uint32_t batch, const flipnet_step_params *params,
                                    flipnet_step_stats *stats, uint8_t *scratch,
                                    const fn_plan *plan);
/* Math without <math.h> (hybrid.c; accuracy in docs/rule.md 8): exp and log of a double,
 * sqrt of a double (within 1 ulp) and of a float (correctly rounded), x^t by squaring. */
double fn_exp(double x);
double fn_log(double x);
double fn_sqrt(double x);
float fn_sqrtf(float x);
double fn_powi(double x, uint64_t t);
#endif

#endif /* FLIPNET_INTERNAL_H */
