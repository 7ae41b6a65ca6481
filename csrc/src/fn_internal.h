/*
 * flipnet core internals: shared by the csrc/src sources and the C tests; not a public API.
 * Portable C99. Integer only, except the float functions declared at the end
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
#define FN_PURPOSE_COUNTER 4u
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
/* Check a rule (flipnet_rule_check) for a model with or without counters; 1 = valid. */
int fn_rule_valid(const flipnet_rule *rule, int has_counters);
/* Check an architecture and compute its layer table; returns the packed weight bytes in *bytes. */
flipnet_status fn_arch_layout(const flipnet_arch *arch, flipnet_layer *layers, uint64_t *bytes);

/* Counters (rule.md 7.1): layer l's m rows of n counters of `bits` bits, each row padded to
 * whole bytes, the layer's area rounded up to 4 bytes; FP32 layers (and bits 0) have none. */
static inline uint32_t fn_counter_row_bytes(uint32_t n, uint32_t bits)
{
    return (uint32_t)(((uint64_t)n * bits + 7u) / 8u);
}
static inline uint64_t fn_counter_layer_bytes(uint32_t n, uint32_t m, uint32_t bits)
{
    return ((uint64_t)m * fn_counter_row_bytes(n, bits) + 3u) & ~(uint64_t)3u;
}
/* The largest counter value of a width: 2^(bits-1) - 1 (127, 7, 1). */
static inline int32_t fn_counter_max(uint32_t bits) { return ((int32_t)1 << (bits - 1u)) - 1; }
/* A counter width the core knows (8, 4, 2). */
static inline int fn_counter_bits_ok(uint32_t bits) { return bits == 8u || bits == 4u || bits == 2u; }
/* Byte offset of layer l's counters in the counter area. */
static inline size_t fn_counter_offset(const flipnet_model *model, uint32_t l)
{
    uint32_t k;
    size_t off = 0;
    for (k = 0; k < l; k++)
        off += (size_t)fn_counter_layer_bytes(model->layers[k].n, model->layers[k].m,
                                              model->counter_bits[k]);
    return off;
}
/* Counters i0 .. i0 + n - 1 of a packed row of `bits`-bit counters, as int8 in h (and back). */
void fn_counters_unpack(const uint8_t *row, uint32_t bits, uint32_t n, int8_t *h);
void fn_counters_pack(uint8_t *row, uint32_t bits, uint32_t n, const int8_t *h);
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

/* First byte of row j of integer layer L (read only, and writable for the update). */
static inline const uint8_t *fn_row(const flipnet_model *model, const flipnet_layer *L,
                                    uint32_t j)
{
    return model->weights + L->offset + (size_t)j * fn_planes(L->kind) * L->bpr;
}
static inline uint8_t *fn_row_w(flipnet_model *model, const flipnet_layer *L, uint32_t j)
{
    return model->weights + L->offset + (size_t)j * fn_planes(L->kind) * L->bpr;
}

/* ---- scratch plan (model.c lays it out; each layer kind carves its own workspace) --------- */
typedef struct {
    /* the drivers' buffers (forward.c, train.c) */
    size_t logits;                       /* int32 or float (B, classes) */
    size_t act[FLIPNET_MAX_LAYERS];      /* int8 (B, m_l) hidden activations (training), or
                                            act[0], act[1] ping-pong (forward only) */
    size_t d[2];                         /* training: int8 (mmax, B) error buffers, transposed */
    size_t xf[FLIPNET_MAX_LAYERS];       /* training: float (B, n_l) input of FP32 layer l */
    size_t f[2];                         /* float (B, fmax): training, the float errors; forward,
                                            ping-pong activations (fmax also covers sizes[0]) */
    /* the integer kinds' workspace (kind_int.c) */
    size_t wrow;                         /* int16 (nmax) one unpacked weight row */
    size_t list;                         /* uint16 (B) samples with nonzero error on a row */
    size_t dl;                           /* int8 (B) their errors */
    size_t g;                            /* int16 or int32 (B, hmax) backprop accumulator (union with
                                            the vote's p, n, hist, rowmax, afull, ulist, clist) */
    size_t p, n;                         /* vote sums of one row: n = int16 S/E + int16 A (nmax
                                            each); for B > 258 also p: int32 S/E, n: int32 A */
    size_t hist;                         /* uint32 (256) */
    size_t rowmax;                       /* uint8 (mmax) max key per row */
    size_t afull;                        /* int16 (nmax) sum of |t| over all error samples */
    size_t ulist, clist;                 /* uint16 (B) error samples; those not on a row */
    size_t hbuf;                         /* int8 (nmax) one row of counters narrower than 8 bits
                                            (only when a layer has such counters) */
    /* the FP32 kind's workspace (kind_fp32.c) */
    size_t frow;                         /* float (max(4 nmax, mmax)): a gradient row, four
                                            integer rows as float, the bias gradients */
    /* parts 1..threads-1 of a threaded pass: their own workspace (fn_ws), tstride bytes each
       from tbase (part 0 uses the fields above) */
    uint32_t threads;
    size_t tbase, tstride;
    uint32_t to[9]; /* offsets in a part's block: list, dl, wrow, hbuf, p, n, hist, clist, res */
    size_t total;
} fn_plan;

/* Take `bytes` (rounded up to 16) at *off for a plan field. */
static inline size_t fn_plan_take(uint64_t *off, uint64_t bytes)
{
    size_t at = (size_t)*off;
    *off = (*off + bytes + 15u) & ~(uint64_t)15u;
    return at;
}

flipnet_status fn_plan_make(const flipnet_model *model, uint32_t batch, int training, fn_plan *plan);
/* The same for `threads` parts (fn_plan_make: 1). */
flipnet_status fn_plan_make_mt(const flipnet_model *model, uint32_t batch, int training,
                               uint32_t threads, fn_plan *plan);

/* A pass's working memory: the scratch area, its plan, the batch, and for training the step's
 * parameters. */
typedef struct {
    uint8_t *sc;
    const fn_plan *plan;
    uint32_t batch;
    const flipnet_step_params *params; /* training only, else NULL */
    const flipnet_runner *runner;      /* NULL: one thread */
} fn_ctx;

/* The workspace of one thread of a pass (kind_int.c lays it out). */
typedef struct {
    uint16_t *list; /* training: samples with an error on a row (B) */
    int8_t *dl;     /* training: their errors (B) */
    int16_t *wrow;  /* one unpacked weight row (2 nmax bytes) */
    int8_t *hbuf;   /* training, packed counters: one row of counters (nmax) */
    int32_t *P, *N; /* training: the vote sums of one row */
    uint32_t *hist; /* training: the part's key histogram (FN_KEY_BINS) */
    uint16_t *clist; /* training: samples of U not on a row (B) */
    uint64_t *res;   /* threads 1..: two results of the thread's parts for the caller to merge;
                        NULL for thread 0, whose results the caller keeps itself (fn_res) */
} fn_ws;
void fn_ws_get(const fn_ctx *c, uint32_t thread, fn_ws *w);
/* Threads of a pass: the runner's, at most the plan's (1 without a runner). */
uint32_t fn_threads(const fn_ctx *c);
/* Parts to split `work` operations over `items` rows (inputs, samples) into: 1 with one thread;
 * else up to FN_PARTS_PER_THREAD per thread, at most one per 2^14 operations, at most `items`. */
uint32_t fn_parts(const fn_ctx *c, uint64_t work, uint32_t items);
/* fn(arg, p, t) for p in [0, parts): through the runner, or here (thread 0) when parts is 1. */
void fn_run_parts(const fn_ctx *c, flipnet_part_fn fn, void *arg, uint32_t parts);
/* Thread t's two result slots: res0 (the caller's) for thread 0, else the thread's fn_ws.res;
 * fn_res_clear zeroes every thread's. */
uint64_t *fn_res(const fn_ctx *c, uint32_t thread, uint64_t *res0);
void fn_res_clear(const fn_ctx *c, uint64_t *res0);
/* Items [lo, hi) of `count` for part p of `parts`. */
static inline void fn_part_range(uint32_t count, uint32_t p, uint32_t parts, uint32_t *lo,
                                 uint32_t *hi)
{
    *lo = (uint32_t)((uint64_t)count * p / parts);
    *hi = (uint32_t)((uint64_t)count * (p + 1u) / parts);
}

/* ---- layer kinds: operations tables (kinds.c looks them up; one file per kind) ------------ */
/* What one layer reads and writes in a forward pass; the driver fills it, unused members NULL:
 * input x8 (B, n) int8 (integer kinds) or xf (B, n) float (FP32 layers); output: the last
 * layer's logits ((B, m) int32 for integer kinds, float for FP32), else a hidden output: a8
 * (B, m) int8 for an integer layer above, af (B, m) float for an FP32 layer above (an FP32
 * layer also keeps its z there when it quantizes into a8). */
typedef struct {
    const int8_t *x8;
    const float *xf;
    int8_t *a8;
    float *af;
    void *logits;
    uint32_t *clipped; /* training: += hidden activations at the clamp; else NULL */
} fn_io;

/* Operations of a kind in a forward pass (forward.c; also what an inference image links). */
typedef struct {
    uint8_t in_float;  /* the layer reads float inputs (xf), else int8 (x8) */
    uint8_t out_float; /* the layer computes float outputs (af / float logits) and trains from
                          float errors; else int8 / int32 outputs and int8 errors */
    /* Carve the kind's workspace out of the scratch plan at *off; called once per model for
     * each distinct plan function (kinds that share one share their workspace). */
    void (*plan)(const flipnet_model *model, uint32_t batch, int training, fn_plan *plan,
                 uint64_t *off);
    void (*forward)(const flipnet_model *model, uint32_t l, const fn_io *io, const fn_ctx *c);
    /* The hidden layer's shift for the inputs of io (docs/rule.md 1 and 8); io as forward. */
    uint8_t (*calibrate)(const flipnet_model *model, uint32_t l, const fn_io *io,
                         const fn_ctx *c);
    /* classes[b] = argmax of the logits (lowest index on ties). */
    void (*argmax)(const void *logits, uint32_t batch, uint32_t classes, uint16_t *out);
} fn_kind_fwd;

/* Operations of a kind in training (train.c) and at model init (model.c). Errors at a layer's
 * outputs are int8 (m, B), transposed, +1 = the output should grow (docs/rule.md 2), or float
 * (B, m), a gradient dLoss/dz (docs/rule.md 8); fn_kind_fwd.out_float says which the kind
 * updates from. */
typedef struct {
    void (*init)(flipnet_model *model, uint32_t l); /* random weights from the INIT stream */
    /* Checks before the step changes anything (NULL: none); a status to return. */
    flipnet_status (*prepare)(const flipnet_model *model, const flipnet_step_params *params);
    /* The last layer's error from its logits into d8 (C, B) or df (B, C); counts correct,
     * errors (and the loss) in s. */
    void (*output_error)(const flipnet_model *model, const void *logits, const uint16_t *y,
                         uint32_t batch, int8_t *d8, float *df, flipnet_step_stats *s);
    /* Integer error at the inputs (n, B) from d (m, B), masked where a_prev (B, n) is at the
     * clamp (docs/rule.md 3); NULL for kinds that only take float errors. */
    void (*error_down)(const flipnet_model *model, uint32_t l, const int8_t *d,
                       const int8_t *a_prev, int8_t *out, const fn_ctx *c);
#ifndef FLIPNET_NO_FLOAT
    /* Float error at the inputs g (B, n) = delta (B, m) W (docs/rule.md 8). */
    void (*error_down_f32)(const flipnet_model *model, uint32_t l, const float *delta, float *g,
                           const fn_ctx *c);
    /* g (B, m) *= the derivative of layer l's output activation (docs/rule.md 8): a8 its int8
     * output or NULL, af its float output (ReLU) or NULL; in_log2: the exponent of the scale
     * by which the layer above reads an int8 output (-7: a / 128), else 0. */
    void (*act_grad)(const flipnet_model *model, uint32_t l, float *g, uint32_t batch,
                     const int8_t *a8, const float *af, int32_t in_log2);
#endif
    /* Update layer l from its input (in->x8 or in->xf) and output error (d8 or df);
     * changes / eligible: the step's statistics of the layer. */
    void (*update)(flipnet_model *model, uint32_t l, const fn_io *in, const int8_t *d8,
                   const float *df, const fn_ctx *c, uint32_t *changes, uint32_t *eligible);
} fn_kind_train;

/* The tables of a kind (NULL for a kind this build does not know). */
const fn_kind_fwd *fn_kind_fwd_ops(uint8_t kind);
const fn_kind_train *fn_kind_train_ops(uint8_t kind);

/* ---- integer kernels (kernels.c) ---------------------------------------------------------- */
/* w[0..n) = weights of one packed row (ternary or binary). */
void fn_unpack_row_ref(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int8_t *w);
/* Pack w[0..n) (values legal for kind) into a row (planes * bpr bytes, padding bits 0). */
void fn_pack_row_ref(uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, const int8_t *w);
/* The same row as int16 (the kernels' form: int8 x int16 products vectorize well). */
/* Cortex-M with the DSP extension (M4, M7, M33...): SMLAD/SXTB16/SADD16 kernels (kernels.c) */
#if defined(__ARM_FEATURE_DSP) && (defined(__GNUC__) || defined(__clang__))
#define FN_DOT_DSP 1
#else
#define FN_DOT_DSP 0
#endif
#if FN_DOT_DSP
/* S[i] += sum_c dl[c] x[list[c]][i], dl[c] = +-1, x in [-127, 127], sums within int16. */
void fn_rows_acc16_dsp(int16_t *S, const int8_t *x, uint32_t n, const uint16_t *list,
                       const int8_t *dl, uint32_t cnt);
#endif
void fn_unpack_row_s16(const uint8_t *row, uint8_t kind, uint32_t n, uint32_t bpr, int16_t *w);
/* z[b] = sum_i x[b*n + i] * w[i] for b < batch. */
void fn_dot_rows_s8(const int8_t *x, const int16_t *w, uint32_t n, uint32_t batch, int32_t *z);
/* One integer layer forward. x (B, n) int8; either act (B, m) int8 with shift s (hidden) or
 * z (B, m) int32 (logits). *sum_abs += sum |Z| and *clipped += count of (Z >> s) outside
 * [-127, 127] when the pointers are non-NULL. Split into parts by rows (c->runner). */
void fn_int_layer_forward(const flipnet_model *model, uint32_t l, const int8_t *x,
                          uint32_t batch, int8_t *act, int32_t *z, uint64_t *sum_abs,
                          uint32_t *clipped, const fn_ctx *c);
/* 1 when x (count values) holds a -128. */
int fn_input_has_m128(const int8_t *x, size_t count);

/* ---- kernels per target (kernels.c portable, kernels_x86.c, kernels_neon.c; kselect.c picks
 * one at run time). Every kernel is bit-identical to the portable one: integer sums are exact
 * in any order, so a kernel may tile, reorder and widen as it likes. --------------------------- */
/* Where a layer forward puts its outputs: Z (B, m) int32 into z, and/or clamp(Z >> shift) (B,
 * m) int8 into act; sums |Z| and counts the clamped outputs when asked. */
typedef struct {
    int32_t *z;
    int8_t *act;
    uint64_t sum_abs;
    uint32_t clipped;
    uint32_t m, shift;
    int want_sum, want_clip;
} fn_fwd_sink;
/* A tile of Z into the sink: zt[s * nr + r] is Z of sample b0 + s and output j0 + r. */
void fn_fwd_store(fn_fwd_sink *k, uint32_t b0, uint32_t ns, uint32_t j0, uint32_t nr,
                  const int32_t *zt);
typedef struct {
    const char *name;
    /* Z of rows [j0, j1) of layer L (weight rows at w, row j at w + j * planes * bpr) for x
     * (B, n) into the sink; wrow: 2 n bytes of scratch, 16-byte aligned. */
    void (*forward)(const flipnet_layer *L, const uint8_t *w, uint32_t j0, uint32_t j1,
                    const int8_t *x, uint32_t batch, fn_fwd_sink *sink, int16_t *wrow);
    /* Threshold masks of n int8 counters, 32 to a word (bit b of word k: counter 32 k + b):
     * up: h >= tau, dn: h <= -tau, 1 <= tau <= 127; ceil(n / 32) words each, bits past n 0. */
    void (*thresh_masks)(const int8_t *h, uint32_t n, int32_t tau, uint32_t *up, uint32_t *dn);
} fn_kernels;
/* The kernels in use (the best this CPU runs unless flipnet_use_kernels chose others). */
const fn_kernels *fn_kern(void);
extern const fn_kernels fn_kernels_portable;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(FLIPNET_NO_SIMD)
#define FN_HAVE_X86 1
extern const fn_kernels fn_kernels_avx2, fn_kernels_avx512vnni;
#else
#define FN_HAVE_X86 0
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(FLIPNET_NO_SIMD)
#define FN_HAVE_NEON 1
extern const fn_kernels fn_kernels_neon, fn_kernels_neon_dot;
#else
#define FN_HAVE_NEON 0
#endif
/* Word k (32 inputs from 32 k on) of a packed plane of bpr bytes; bits past the plane 0. */
static inline uint32_t fn_plane_word(const uint8_t *plane, uint32_t bpr, uint32_t k)
{
    uint32_t at = 4u * k, v = 0, b;
    if (at + 4u <= bpr) return fn_rd32(plane + at);
    for (b = 0; at + b < bpr; b++) v |= (uint32_t)plane[at + b] << (8u * b);
    return v;
}
static inline uint32_t fn_ctz32(uint32_t v) /* v != 0 */
{
#if defined(__GNUC__) || defined(__clang__)
    return (uint32_t)__builtin_ctz(v);
#else
    uint32_t n = 0;
    while (!(v & 1u)) { v >>= 1; n++; }
    return n;
#endif
}

/* ---- what ternary and binary layers share (kind_int.c, vote.c) ---------------------------- */
void fn_int_plan(const flipnet_model *model, uint32_t batch, int training, fn_plan *plan,
                 uint64_t *off);
void fn_int_init(flipnet_model *model, uint32_t l, int32_t (*draw)(uint64_t r));
void fn_int_forward(const flipnet_model *model, uint32_t l, const fn_io *io, const fn_ctx *c);
uint8_t fn_int_calibrate(const flipnet_model *model, uint32_t l, const fn_io *io,
                         const fn_ctx *c);
void fn_int_argmax(const void *logits, uint32_t batch, uint32_t classes, uint16_t *out);
#ifndef FLIPNET_NO_FLOAT
void fn_int_error_down_f32(const flipnet_model *model, uint32_t l, const float *delta, float *g,
                           const fn_ctx *c);
void fn_int_act_grad(const flipnet_model *model, uint32_t l, float *g, uint32_t batch,
                     const int8_t *a8, const float *af, int32_t in_log2);
#endif
/* vote.c: docs/rule.md sections 2-5 and 7.1 */
void fn_int_output_error(const flipnet_model *model, const void *logits, const uint16_t *y,
                         uint32_t batch, int8_t *d8, float *df, flipnet_step_stats *s);
void fn_int_error_down(const flipnet_model *model, uint32_t l, const int8_t *d,
                       const int8_t *a_prev, int8_t *out, const fn_ctx *c);
void fn_int_update(flipnet_model *model, uint32_t l, const fn_io *in, const int8_t *d8,
                   const float *df, const fn_ctx *c, uint32_t *changes, uint32_t *eligible);

/* The forward operations of both integer kinds (kind_int.c), and the training operations of one
 * integer kind with its init (kind_ternary.c, kind_binary.c). */
extern const fn_kind_fwd fn_int_fwd;
#ifndef FLIPNET_NO_FLOAT
#define FN_INT_F32_OPS fn_int_error_down_f32, fn_int_act_grad,
#else
#define FN_INT_F32_OPS
#endif
#define FN_INT_TRAIN_OPS(init)                                                                     \
    {init, NULL, fn_int_output_error, fn_int_error_down, FN_INT_F32_OPS fn_int_update}

/* ---- the drivers (forward.c, train.c) ----------------------------------------------------- */
#define FN_PASS_INFER 0     /* activations in ping-pong buffers */
#define FN_PASS_CALIBRATE 1 /* also set every hidden layer's shift before its forward */
#define FN_PASS_TRAIN 2     /* keep every layer's input for the train driver, count clipped */
/* The forward driver: x (B, sizes[0]) through every layer into logits (int32 or float as the
 * last kind computes). calib: NULL, or the model itself (writable) with FN_PASS_CALIBRATE,
 * which sets the shifts of the hidden layers from calib_first on; clipped: per layer
 * (FN_PASS_TRAIN), else NULL. */
void fn_net_forward(const flipnet_model *model, flipnet_model *calib, uint32_t calib_first,
                    const int8_t *x, void *logits, const fn_ctx *c, int pass, uint32_t *clipped);
/* Argument checks of forward / predict / calibrate; fills plan (for runner->threads parts with
 * the _mt form). */
flipnet_status fn_forward_args(const flipnet_model *model, const int8_t *x, uint32_t batch,
                               const void *out, void *scratch, size_t scratch_bytes,
                               fn_plan *plan);
flipnet_status fn_forward_args_mt(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                  const void *out, void *scratch, size_t scratch_bytes,
                                  const flipnet_runner *runner, fn_plan *plan);
/* FLIPNET_E_ARG for a runner with threads outside 1..FLIPNET_MAX_THREADS or no run; NULL ok. */
flipnet_status fn_runner_check(const flipnet_runner *runner);

/* ---- FP32 layers: float code, absent with FLIPNET_NO_FLOAT -------------------------------- */
#ifndef FLIPNET_NO_FLOAT
/* Math without <math.h> (fmath.c; accuracy in docs/rule.md 8): exp and log of a double,
 * sqrt of a double (within 1 ulp) and of a float (correctly rounded), x^t by squaring. */
double fn_exp(double x);
double fn_log(double x);
double fn_sqrt(double x);
float fn_sqrtf(float x);
double fn_powi(double x, uint64_t t);

/* Float kernels (kernels_f32.c): fixed summation orders, the same bits on every target. */
/* z (B, m) = x (B, n) W^T + bias. */
void fn_f32_dense(const float *W, const float *bias, const float *x, uint32_t n, uint32_t m,
                  uint32_t batch, float *z);
/* g (B, n) = delta (B, m) W, W float rows (row j at W + j*n) or, with W = NULL, layer l's
 * integer rows unpacked to float in frow (4 n floats; wrow: n int16). */
void fn_f32_backprop(const flipnet_model *model, uint32_t l, const float *W, const float *delta,
                     uint32_t batch, float *g, float *frow, int16_t *wrow);
/* grad (n) = sum_b delta[b*m + j] x_b (increasing b): the gradient of row j of W. */
void fn_f32_grad_row(const float *delta, const float *x, uint32_t batch, uint32_t n, uint32_t m,
                     uint32_t j, float *grad);

/* The adapters between the integer and the float domains (adapt.c; docs/rule.md 8). */
/* x = a / 128 (exact): an FP32 layer reading int8 values. */
void fn_s8_to_f32(const int8_t *a, size_t count, float *x);
/* An integer error d (n, B) entering the float path as a gradient: g (B, n) = -d. */
void fn_err_s8_to_f32(const int8_t *d, uint32_t n, uint32_t batch, float *g);
/* A float error delta (B, m) as the integer rule's error d (m, B): -sign(delta) where |delta|
 * >= the mean |delta|, else 0. */
void fn_err_f32_to_s8(const float *delta, uint32_t batch, uint32_t m, int8_t *d);
/* Integer logits as float (exact up to 2^24). */
void fn_s32_to_f32(const int32_t *z, size_t count, float *out);
#endif

#endif /* FLIPNET_INTERNAL_H */
