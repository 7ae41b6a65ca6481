/*
 * flipnet core: integer-only, gradient-free training of binary/ternary dense networks.
 *
 * Portable C99. No malloc, no libc beyond <stdint.h>, <stddef.h>, <string.h> (no <math.h>:
 * the float code of FP32 layers brings its own exp, log and sqrt).
 * Every public function returns a flipnet_status (0 = OK, stable negative codes).
 * The exact rule is specified in docs/rule.md; python/flipnet/reference.py is its
 * NumPy oracle and this core matches it bit for bit. Integer (ternary/binary) layers use no
 * floating point at all; only FP32 layers (FLIPNET_FP32, docs/rule.md section 8 "Hybrid
 * layers") compute in float, and building with -DFLIPNET_NO_FLOAT removes all float code
 * (FP32 layers are then refused with FLIPNET_E_ARG at init, load and train).
 *
 * Memory: the caller owns all memory.
 *   - a flipnet_model struct (fixed size, no pointers to the heap),
 *   - the weight area, flipnet_model_size() bytes, 4-byte aligned,
 *   - a scratch area for forward / training, flipnet_scratch_size() bytes, 4-byte aligned.
 * The core never reads or writes outside these.
 */
#ifndef FLIPNET_H
#define FLIPNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLIPNET_VERSION_MAJOR 0
#define FLIPNET_VERSION_MINOR 2
#define FLIPNET_VERSION_PATCH 0
/* The binary interface: bumped whenever a public struct, enum value or function signature
 * changes, so that a caller built against another header is refused (flipnet_abi_check). */
#define FLIPNET_ABI 2

#define FLIPNET_MAX_LAYERS 8        /* dense layers in one model */
#define FLIPNET_MAX_WIDTH 65535u    /* max inputs / outputs of one layer */
#define FLIPNET_MAX_BATCH 65535u    /* max samples in one call */

/* ---- status codes (stable; append only) ---------------------------------------------- */
typedef enum {
    FLIPNET_OK = 0,
    FLIPNET_E_NULL = -1,            /* a required pointer is NULL */
    FLIPNET_E_ARG = -2,             /* an argument is out of range (batch 0, bad kind, k > weights, p > 1) */
    FLIPNET_E_SHAPE = -3,           /* layer sizes invalid (0, > FLIPNET_MAX_WIDTH, too many layers, don't chain) */
    FLIPNET_E_NOMEM = -4,           /* the memory area given is smaller than the size query answered */
    FLIPNET_E_ALIGN = -5,           /* a memory area is not 4-byte aligned */
    FLIPNET_E_LABEL = -6,           /* a label is >= the number of classes */
    FLIPNET_E_INPUT = -7,           /* an input value is -128 (inputs must be in [-127, 127]) */
    FLIPNET_E_ABI = -8,             /* the caller was built against another flipnet.h (ABI or
                                       struct sizes differ): rebuild it with this library's */
    FLIPNET_E_FMT_MAGIC = -20,      /* model file: not a flipnet model (wrong magic) */
    FLIPNET_E_FMT_VERSION = -21,    /* model file: format version this core does not know */
    FLIPNET_E_FMT_TRUNCATED = -22,  /* model file: ends before the sizes it declares */
    FLIPNET_E_FMT_SIZE = -23,       /* model file: size fields disagree with each other / the layers */
    FLIPNET_E_FMT_CRC = -24,        /* model file: CRC-32 mismatch (corrupted) */
    FLIPNET_E_FMT_VALUE = -25       /* model file: a field has an invalid value (layer kind, shift, ...) */
} flipnet_status;

/* Human-readable, static string for a status code ("unknown status" for others). */
const char *flipnet_status_str(int status);

/* ---- version and compatibility ---------------------------------------------------------- */
/* The library's version: (major << 16) | (minor << 8) | patch. */
uint32_t flipnet_version(void);
/* FLIPNET_OK when a caller compiled with FLIPNET_ABI `abi` and these struct sizes can use this
 * library, else FLIPNET_E_ABI. Call it once at start-up as FLIPNET_ABI_CHECK(). */
flipnet_status flipnet_abi_check(uint32_t abi, size_t model_size, size_t arch_size,
                                 size_t params_size, size_t stats_size, size_t view_size);
#define FLIPNET_ABI_CHECK()                                                                        \
    flipnet_abi_check(FLIPNET_ABI, sizeof(flipnet_model), sizeof(flipnet_arch),                   \
                      sizeof(flipnet_step_params), sizeof(flipnet_step_stats),                    \
                      sizeof(flipnet_model_view))

/* ---- kernels ------------------------------------------------------------------------------ */
/* The core's hot loops come in kernel sets per target, all bit-identical (docs/speed.md):
 * "portable" (plain C), "avx2" and "avx512vnni" (x86-64), "neon" and "neon-dot" (aarch64),
 * "dsp" (Cortex-M4/M7/M33). By default the core uses the fastest set this build and CPU run. */
/* The name of the set in use. */
const char *flipnet_kernels(void);
/* The i-th set this build and CPU can run (0: the fastest), NULL past the last. */
const char *flipnet_kernels_available(uint32_t i);
/* Use the set `name` ("auto": the fastest available). FLIPNET_E_ARG when this build or CPU
 * does not have it. Process-wide: call it while no other thread is inside the core. */
flipnet_status flipnet_use_kernels(const char *name);

/* ---- layers, rule options, model ---------------------------------------------------- */
typedef enum {
    FLIPNET_TERNARY = 1, /* weights in {-1,0,+1}: 2 bit planes (pos, neg) per row */
    FLIPNET_BINARY = 2,  /* weights in {-1,+1}:   1 bit plane  (neg) per row      */
    FLIPNET_FP32 = 3     /* float32 W (m, n) and bias (m), trained with AdamW (docs/rule.md 8);
                            not available with FLIPNET_NO_FLOAT */
} flipnet_kind;

/* Vote (docs/rule.md section 3). Paper mode = SIGN + HURT + BP_SIGN. */
typedef enum {
    FLIPNET_VOTE_SIGN = 0,     /* wish = sign(x) * delta        (paper: count samples) */
    FLIPNET_VOTE_WEIGHTED = 1  /* wish = x * delta              (weighted by |x|)      */
} flipnet_vote;

typedef enum {
    FLIPNET_FILTER_HURT = 0,   /* count only wishes of samples the weight hurts (paper eq. 10) */
    FLIPNET_FILTER_NET = 1     /* count all wishes (net vote; saturated weights not eligible)  */
} flipnet_filter;

typedef enum {
    FLIPNET_BP_SIGN = 0        /* delta_prev = sign(delta W^T) where |a_prev| < 127, else 0 */
} flipnet_backprop;

typedef struct {
    uint8_t vote;     /* flipnet_vote */
    uint8_t filter;   /* flipnet_filter */
    uint8_t backprop; /* flipnet_backprop */
    uint8_t calib_target; /* calibration: target mean |activation|, 1..127 (paper: 32), rule.md 1 */
    int32_t margin;   /* output error when logit[y] <= max_{j!=y} logit[j] + margin; >= 0 */
    uint8_t counter_shift;     /* counters: H += round(E / 2^shift), 0..31 (rule.md 7.1) */
    uint8_t counter_threshold; /* counters: move a weight when |H| >= this, 1..127; 0 = off */
    uint8_t counter_decay;     /* counters: |H| -= |H| >> decay each step, 1..7; 0 = off
                                  (rule.md 7.1; needs counter_threshold > 0) */
    uint8_t counter_round;     /* counters: how E / 2^shift is rounded, FLIPNET_ROUND_*
                                  (rule.md 7.2; STOCHASTIC needs counter_threshold > 0) */
} flipnet_rule;

/* Rounding of the counters' increment (docs/rule.md 7.1, 7.2). */
typedef enum {
    FLIPNET_ROUND_NEAREST = 0,   /* round(E / 2^shift), half up */
    FLIPNET_ROUND_STOCHASTIC = 1 /* floor(E / 2^shift), plus 1 with probability of the rest */
} flipnet_round;

/* Architecture: n_layers dense layers, sizes[0] inputs, sizes[n_layers] classes. */
typedef struct {
    uint32_t n_layers;                   /* 1 .. FLIPNET_MAX_LAYERS */
    uint32_t sizes[FLIPNET_MAX_LAYERS + 1];
    uint8_t kinds[FLIPNET_MAX_LAYERS];   /* flipnet_kind per layer */
    uint8_t counters;                    /* 1: one hysteresis counter per weight of the
                                            ternary/binary layers (rule.md 7.1), else 0 */
    uint8_t counter_bits[FLIPNET_MAX_LAYERS]; /* with counters: bits per counter of each
                                            ternary/binary layer, 8, 4 or 2 (0 = 8); values in
                                            [-(2^(bits-1) - 1), 2^(bits-1) - 1] (rule.md 7.1) */
} flipnet_arch;

typedef struct {
    uint8_t kind;       /* flipnet_kind */
    uint8_t shift;      /* activation shift s: a = clamp(z >> s, -127, 127); unused on the last layer.
                           FP32 layer (0..15): output scale when the next layer is integer,
                           a = clamp(round(z * 2^s), -127, 127); unused otherwise */
    uint16_t reserved;
    uint32_t n;         /* inputs */
    uint32_t m;         /* outputs (rows) */
    uint32_t bpr;       /* bytes per bit plane per row = ceil(n / 8); 0 for FP32 layers */
    uint32_t offset;    /* byte offset of this layer's rows in the weight area (a multiple of 4) */
} flipnet_layer;

/*
 * Weight layout (packed, resident, bytes): for layer l, output row j (0..m-1) occupies
 * planes * bpr bytes starting at byte offset + j * planes * bpr:
 *   ternary: [pos plane: bpr bytes][neg plane: bpr bytes]; w = pos - neg, never both set
 *   binary:  [neg plane: bpr bytes];                       w = neg ? -1 : +1
 * Input i of the row is bit (i % 8) of byte (i / 8) of a plane; padding bits are 0.
 * Each layer's m * planes * bpr bytes are followed by 0..3 zero bytes, so the next layer
 * starts 4-byte aligned: offset of layer l = sum_{l' < l} round_up(m * planes * bpr, 4).
 * That is 2 bits per ternary / 1 bit per binary weight, plus < 8 padding bits per plane row
 * (none when n is a multiple of 8) and < 4 bytes per layer.
 * FP32 layer: 4 * (m * n + m) bytes at offset: W as float (m, n) row-major (W[j*n + i] from
 * input i to output j, as torch.nn.Linear.weight), then the bias, float (m); bpr = 0.
 * So offset of layer l = sum_{l' < l} bytes(l'), bytes = round_up(m * planes * bpr, 4) for
 * ternary/binary layers and 4 * (m * n + m) for FP32 layers (always 4-byte aligned).
 */
typedef struct {
    uint32_t n_layers;
    flipnet_layer layers[FLIPNET_MAX_LAYERS];
    flipnet_rule rule;
    uint64_t seed;       /* seed of the counter-based RNG */
    uint64_t steps;      /* training steps taken (the RNG counter of the next step) */
    uint64_t samples;    /* training samples seen */
    uint8_t *weights;    /* caller's weight area (4-byte aligned) */
    size_t weight_bytes; /* bytes used by the packed weights (a multiple of 4) */
    int8_t *counters;    /* hysteresis counters (arch.counters, rule.md 7.1), NULL without:
                            right after the packed weights in the weight area. Layer l's m rows
                            of n counters of b = counter_bits[l] bits start at byte
                            sum_{l' < l} round_up(m * ceil(n b / 8), 4); row j at j * ceil(n b / 8);
                            counter i of a row is the b-bit two's complement field at bit i * b
                            (little-endian within a byte; 8 bits: one int8), padding bits 0 */
    size_t counter_bytes; /* bytes of the counters, 0 without */
    uint8_t counter_bits[FLIPNET_MAX_LAYERS]; /* with counters: bits per counter of each layer,
                                            8, 4 or 2, 0 for FP32 layers; not read without */
    float *opt;          /* AdamW state of the FP32 layers (docs/rule.md 8), NULL without FP32
                            layers: right after the counters (or the packed weights) in the
                            weight area; for each FP32 layer in order, its first moments
                            (m*n + m floats: W then bias) then its second moments (same).
                            May be NULL for inference only (training needs it). */
    size_t opt_bytes;    /* bytes of the AdamW state: sum over FP32 layers of 8 * (m*n + m) */
} flipnet_model;

/* A read-only model for inference: the layers and packed weights of a flipnet_model as const
 * data (e.g. a model compiled into flash by `flipnet export --format c`, docs/export.md), for
 * flipnet_view_scratch_size / flipnet_view_forward / flipnet_view_predict; weights are never
 * written through it. */
typedef struct {
    uint32_t n_layers;
    flipnet_layer layers[FLIPNET_MAX_LAYERS];
    const uint8_t *weights; /* packed weights (4-byte aligned), weight_bytes long */
    size_t weight_bytes;
} flipnet_model_view;

/* ---- RNG ------------------------------------------------------------------------------- */
/* Counter-based: a pure function of (seed, stream, index); see docs/rule.md section 6. */
uint64_t flipnet_rand(uint64_t seed, uint64_t stream, uint64_t index);

/* ---- sizes and setup ------------------------------------------------------------------ */
/* Bytes of the weight area for an architecture: the packed weights (weight_bytes), then with
 * arch->counters = 1 one int8 counter per weight of the ternary/binary layers (each layer's n*m
 * rounded up to 4 bytes; FP32 layers have none), then, when an FP32 layer exists, the AdamW
 * state (opt_bytes). */
flipnet_status flipnet_model_size(const flipnet_arch *arch, size_t *bytes);

/* Lay out `model` over `weights` (>= flipnet_model_size bytes, 4-byte aligned) and draw
 * random weights from `seed`; counters (if any) start at 0. FP32 layers: W and bias uniform in
 * [-1/sqrt(n), 1/sqrt(n)) (torch.nn.Linear's default init; docs/rule.md 8), AdamW moments 0.
 * Shifts start at 0 (call flipnet_calibrate), rule = paper mode: margin 0, calib_target 32,
 * counter_shift 0, counter_threshold 0 (set model->rule afterwards to change it).
 * arch->counters must be 0 or 1, counter_bits 0, 2, 4 or 8 (ignored without counters and for
 * FP32 layers), and kinds 1..3 (FLIPNET_E_ARG; kind 3 too with FLIPNET_NO_FLOAT). */
flipnet_status flipnet_model_init(flipnet_model *model, const flipnet_arch *arch, void *weights,
                                  size_t weights_bytes, uint64_t seed);

/* Bytes of scratch for forward / calibrate / train_step on batches of up to `batch` samples.
 * training = 0: forward, predict, calibrate only; training != 0: also train_step. */
flipnet_status flipnet_scratch_size(const flipnet_model *model, uint32_t batch, int training,
                                    size_t *bytes);
/* The same from an architecture alone (no model laid out), for planning memory before
 * touching it; the same statuses as flipnet_model_size for a bad architecture. */
flipnet_status flipnet_arch_scratch_size(const flipnet_arch *arch, uint32_t batch, int training,
                                         size_t *bytes);

/* ---- forward, predict, calibrate ------------------------------------------------------ */
/* flipnet_forward, flipnet_predict, flipnet_scratch_size, flipnet_layer_get and
 * flipnet_counters_get never write through model->weights or model->counters;
 * flipnet_calibrate writes only the shifts in the struct; training and flipnet_layer_set need
 * writable weights. For weights in const memory (flash) use a flipnet_model_view. */
/* x is (batch, sizes[0]) int8 in [-127, 127], row-major; logits is (batch, classes) int32.
 * A model whose last layer is FP32 has float logits: FLIPNET_E_ARG, use flipnet_forward_f32. */
flipnet_status flipnet_forward(const flipnet_model *model, const int8_t *x, uint32_t batch,
                               int32_t *logits, void *scratch, size_t scratch_bytes);

/* The same for every model, logits (batch, classes) as float: the FP32 last layer's z, or an
 * integer last layer's int32 logits converted (exact up to 2^24). With FLIPNET_NO_FLOAT:
 * FLIPNET_E_ARG. */
flipnet_status flipnet_forward_f32(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                   float *logits, void *scratch, size_t scratch_bytes);

/* classes[b] = argmax of the logits (lowest index wins ties). */
flipnet_status flipnet_predict(const flipnet_model *model, const int8_t *x, uint32_t batch,
                               uint16_t *classes, void *scratch, size_t scratch_bytes);

/* Set every hidden layer's shift from batch x (docs/rule.md section 1), layer by layer, with
 * target model->rule.calib_target (1..127, else FLIPNET_E_ARG). An FP32 layer followed by an
 * integer layer gets the s in 0..15 whose mean |clamp(round(z * 2^s))| is closest to the target
 * (docs/rule.md 8); an FP32 layer followed by an FP32 layer gets 0. */
flipnet_status flipnet_calibrate(flipnet_model *model, const int8_t *x, uint32_t batch,
                                 void *scratch, size_t scratch_bytes);
/* The same for the hidden layers from `first` on (0: flipnet_calibrate); an earlier layer keeps
 * its shift unless at least 90% of its outputs on x are at the clamp (then it is calibrated
 * too): a recalibration that leaves the first layer's shift at its first calibration
 * (first = 1) keeps training from swinging, and one that would silence it is not kept
 * (docs/rule.md 1, docs/benchmarks.md). */
flipnet_status flipnet_calibrate_from(flipnet_model *model, uint32_t first, const int8_t *x,
                                      uint32_t batch, void *scratch, size_t scratch_bytes);

/* The same for a read-only model (flipnet_model_view): scratch bytes for forward / predict of
 * up to `batch` samples, then forward and predict as above (a view with an FP32 last layer:
 * FLIPNET_E_ARG from flipnet_view_forward). The view is checked as a model is. */
flipnet_status flipnet_view_scratch_size(const flipnet_model_view *view, uint32_t batch,
                                         size_t *bytes);
flipnet_status flipnet_view_forward(const flipnet_model_view *view, const int8_t *x,
                                    uint32_t batch, int32_t *logits, void *scratch,
                                    size_t scratch_bytes);
flipnet_status flipnet_view_predict(const flipnet_model_view *view, const int8_t *x,
                                    uint32_t batch, uint16_t *classes, void *scratch,
                                    size_t scratch_bytes);

/* ---- training ------------------------------------------------------------------------- */
/* FLIPNET_OK when `rule` is one flipnet_train_step accepts for a model with (has_counters = 1)
 * or without counters, else FLIPNET_E_ARG (NULL: FLIPNET_E_NULL): known vote / filter /
 * backprop, margin >= 0, calib_target 1..127, counter_shift <= 31, counter_threshold <= 127
 * (> 0 only with counters), counter_decay <= 7 (> 0 only with counter_threshold > 0),
 * counter_round a flipnet_round (STOCHASTIC only with counter_threshold > 0). */
flipnet_status flipnet_rule_check(const flipnet_rule *rule, int has_counters);

typedef struct {
    uint32_t k[FLIPNET_MAX_LAYERS];     /* weights to select per layer this step (<= n*m) */
    uint32_t p_q16[FLIPNET_MAX_LAYERS]; /* change probability per layer, Q16: 65536 = 1.0 */
    /* AdamW of the FP32 layers (PyTorch's torch.optim.AdamW, docs/rule.md 8); ignored by a
     * model without FP32 layers (zero them). With one: finite, lr >= 0, weight_decay >= 0,
     * 0 <= beta1, beta2 < 1, eps > 0, else FLIPNET_E_ARG. PyTorch's defaults: 1e-3, 1e-2,
     * 0.9, 0.999, 1e-8. */
    float lr;
    float weight_decay;
    float beta1;
    float beta2;
    float eps;
} flipnet_step_params;

typedef struct {
    uint32_t correct;                      /* samples whose forward prediction was right */
    uint32_t errors;                       /* samples with a nonzero output error */
    uint32_t changes[FLIPNET_MAX_LAYERS];  /* weights changed per layer */
    uint32_t eligible[FLIPNET_MAX_LAYERS]; /* weights the vote would change per layer */
    uint32_t clipped[FLIPNET_MAX_LAYERS];  /* hidden activations clamped: (Z >> s) outside [-127, 127]
                                              (FP32 layer feeding an integer one: round(z 2^s)) */
    float loss;  /* mean cross-entropy of the batch when the last layer is FP32, else 0 */
} flipnet_step_stats;

/* One training step on x (batch, sizes[0]) int8 in [-127,127] and labels y (batch) < classes.
 * Updates the weights (and the counters with rule.counter_threshold > 0, rule.md 7.1, 7.2),
 * model->steps += 1, model->samples += batch; stats may be NULL. A model with FP32 layers
 * (docs/rule.md 8) also needs its AdamW state (model->opt, else FLIPNET_E_NULL) and valid
 * AdamW parameters; every FP32 parameter is updated every step.
 * Needs classes >= 2 (FLIPNET_E_SHAPE otherwise) and a valid model->rule (FLIPNET_E_ARG):
 * known vote/filter/backprop, margin >= 0, calib_target 1..127, counter_shift <= 31,
 * counter_threshold <= 127, counter_round known, and counters in the model when
 * counter_threshold > 0 (flipnet_rule_check).
 * On any error status nothing is changed. */
flipnet_status flipnet_train_step(flipnet_model *model, const int8_t *x, const uint16_t *y,
                                  uint32_t batch, const flipnet_step_params *params,
                                  flipnet_step_stats *stats, void *scratch, size_t scratch_bytes);

/* ---- threads (docs/speed.md) ------------------------------------------------------------ */
/* The core starts no threads: a caller that has them passes a runner, and each pass over a
 * layer (forward, error, vote, update) is split into parts (blocks of output rows, inputs or
 * samples), which the runner hands out to its threads; each thread works in its own workspace
 * in the scratch. The results (logits, weights, counters, statistics) are bit-identical for any
 * number of threads and any order in which the parts run. */
#define FLIPNET_MAX_THREADS 64u
typedef void (*flipnet_part_fn)(void *arg, uint32_t part, uint32_t thread);
typedef struct {
    uint32_t threads; /* 1..FLIPNET_MAX_THREADS */
    /* Call fn(arg, p, t) once for every part p in [0, parts), in any order, and return when
     * every call has returned; t in [0, threads) names the thread that runs the call: no two
     * calls at the same time may have the same t. */
    void (*run)(void *ctx, flipnet_part_fn fn, void *arg, uint32_t parts);
    void *ctx;
} flipnet_runner;
/* Bytes of scratch for `threads` threads (1: flipnet_scratch_size); FLIPNET_E_ARG for threads
 * 0 or above FLIPNET_MAX_THREADS. */
flipnet_status flipnet_scratch_size_mt(const flipnet_model *model, uint32_t batch, int training,
                                       uint32_t threads, size_t *bytes);
/* flipnet_train_step, flipnet_forward and flipnet_predict with a runner (NULL: one thread, as
 * the plain calls); the scratch must be sized for runner->threads (else FLIPNET_E_NOMEM).
 * FLIPNET_E_ARG: runner->threads 0 or above FLIPNET_MAX_THREADS, or runner->run NULL. FP32
 * layers run on the calling thread. */
flipnet_status flipnet_train_step_mt(flipnet_model *model, const int8_t *x, const uint16_t *y,
                                     uint32_t batch, const flipnet_step_params *params,
                                     flipnet_step_stats *stats, void *scratch,
                                     size_t scratch_bytes, const flipnet_runner *runner);
flipnet_status flipnet_forward_mt(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                  int32_t *logits, void *scratch, size_t scratch_bytes,
                                  const flipnet_runner *runner);
flipnet_status flipnet_predict_mt(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                  uint16_t *classes, void *scratch, size_t scratch_bytes,
                                  const flipnet_runner *runner);

/* ---- weights access ------------------------------------------------------------------- */
/* Unpack layer l to w (m, n) int8 row-major (w[j*n + i] = weight from input i to output j).
 * FP32 layers: FLIPNET_E_ARG (use flipnet_layer_get_f32). */
flipnet_status flipnet_layer_get(const flipnet_model *model, uint32_t layer, int8_t *w);
/* Pack w (m, n) int8 into layer l; values must fit the layer kind. FP32 layers: FLIPNET_E_ARG. */
flipnet_status flipnet_layer_set(flipnet_model *model, uint32_t layer, const int8_t *w);
/* FP32 layer l: w = W (m, n) row-major then the bias (m), m*n + m floats. Other kinds, or
 * FLIPNET_NO_FLOAT: FLIPNET_E_ARG. */
flipnet_status flipnet_layer_get_f32(const flipnet_model *model, uint32_t layer, float *w);
/* Set FP32 layer l from w (W then bias, as get); every value finite, else FLIPNET_E_ARG. The
 * AdamW state is left as it is. */
flipnet_status flipnet_layer_set_f32(flipnet_model *model, uint32_t layer, const float *w);
/* Counters of layer l as h (m, n) int8 row-major (same indexing as flipnet_layer_get).
 * A model without counters, or an FP32 layer (it has none): FLIPNET_E_ARG. */
flipnet_status flipnet_counters_get(const flipnet_model *model, uint32_t layer, int8_t *h);
/* Set the counters of layer l from h (m, n); values in [-(2^(b-1) - 1), 2^(b-1) - 1] for the
 * layer's counter_bits b (8 bits: [-127, 127]; else FLIPNET_E_ARG). */
flipnet_status flipnet_counters_set(flipnet_model *model, uint32_t layer, const int8_t *h);

/* ---- model file format v1 / v2 (docs/format.md) --------------------------------------- */
#define FLIPNET_FILE_MAGIC "FLIPNET\0"
/* Version of the files of models without FP32 layers (and of the packed ternary/binary
 * layout, which v2 keeps): they are written as v1, byte for byte as before v2 existed. */
#define FLIPNET_FILE_VERSION 1u
/* Models with FP32 layers are written as v2 (FP32 layer blocks, AdamW state). */
#define FLIPNET_FILE_VERSION_F32 2u
/* Newest version this core reads (it reads 1 and 2). */
#define FLIPNET_FILE_VERSION_MAX 2u

/* Bytes of the file for this model with a metadata blob of meta_bytes. The metadata is
 * opaque to the core (the Python side stores UTF-8 JSON: schedule, history, ...). */
flipnet_status flipnet_file_size(const flipnet_model *model, size_t meta_bytes, size_t *bytes);
/* Serialize to buf (>= flipnet_file_size bytes); *written = bytes written (written may be
 * NULL). meta may be NULL when meta_bytes is 0. Refuses (FLIPNET_E_ARG) a model the reader
 * would reject: invalid rule, a ternary weight with both bits set, a padding bit set, a counter
 * of -128, a NaN/Inf FP32 weight or moment, a negative second moment. The counters block is
 * written exactly when model->counters != NULL, the AdamW block when model->opt != NULL. */
flipnet_status flipnet_file_write(const flipnet_model *model, const uint8_t *meta,
                                  size_t meta_bytes, uint8_t *buf, size_t buf_bytes,
                                  size_t *written);
/* The same file in pieces, without a buffer of its size (e.g. a device sending its model in
 * frames): flipnet_file_crc gives the CRC-32 field of the file flipnet_file_write would write
 * (one pass over the model, same checks), flipnet_file_write_range writes its bytes
 * [offset, offset + len) to out, given that CRC (offset + len <= flipnet_file_size, else
 * FLIPNET_E_ARG). The model and meta must not change in between. */
flipnet_status flipnet_file_crc(const flipnet_model *model, const uint8_t *meta,
                                size_t meta_bytes, uint32_t *crc);
flipnet_status flipnet_file_write_range(const flipnet_model *model, const uint8_t *meta,
                                        size_t meta_bytes, uint32_t crc, size_t offset,
                                        uint8_t *out, size_t len);
/* Check a whole file (magic, version, sizes, CRC, weight values) and return its architecture,
 * so the caller can size the weight area (arch may be NULL: check only). Never reads outside
 * buf[0..len). The order of the checks and their statuses: docs/format.md. */
flipnet_status flipnet_file_peek(const uint8_t *buf, size_t len, flipnet_arch *arch);
/* Locate the metadata blob of a checked file: *meta points into buf. */
flipnet_status flipnet_file_meta(const uint8_t *buf, size_t len, const uint8_t **meta,
                                 size_t *meta_bytes);
/* Load a file into model over weights (>= flipnet_model_size of the file's architecture,
 * which flipnet_file_peek returns, counters and AdamW state included; a v2 file without the
 * AdamW block gets zero moments). A valid file with FP32 layers under FLIPNET_NO_FLOAT:
 * FLIPNET_E_ARG (peek and meta still check it and report its architecture; model_size of that
 * architecture is FLIPNET_E_ARG too). */
flipnet_status flipnet_file_read(flipnet_model *model, const uint8_t *buf, size_t len,
                                 void *weights, size_t weights_bytes);

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32); crc = 0 to start, chainable. */
uint32_t flipnet_crc32(uint32_t crc, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* FLIPNET_H */
