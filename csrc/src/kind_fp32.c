/* flipnet core: the FP32 layer kind (docs/rule.md section 8, "Hybrid layers"): float32 W (m, n)
 * and bias, initialized as torch.nn.Linear, trained with PyTorch's AdamW from a float error
 * (straight-through backprop; the softmax cross-entropy error when it is the last layer); its
 * output is ReLU'd for an FP32 layer above, or quantized to int8 with a calibrated scale 2^s
 * for an integer layer above. Compiled out with FLIPNET_NO_FLOAT. Built with -ffp-contract=off
 * (kernels_f32.c): every float operation rounds as written, the same bits on every target. */
#include "fn_float.h"

#ifndef FLIPNET_NO_FLOAT

/* W and bias uniform in [-1/sqrt(n), 1/sqrt(n)) (torch.nn.Linear's default; docs/rule.md 8). */
static void fn_fp32_init(flipnet_model *model, uint32_t l)
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

/* ---- AdamW -------------------------------------------------------------------------------- */
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
static void fn_f32_layer_update(flipnet_model *model, uint32_t l, const float *delta,
                                const float *x, uint32_t batch, const fn_adamw *h, float *frow)
{
    const flipnet_layer *L = &model->layers[l];
    uint32_t n = L->n, m = L->m, j, b;
    size_t np = (size_t)fn_f32_params(n, m);
    float *W = (float *)(void *)(model->weights + L->offset);
    float *m1 = model->opt + fn_opt_offset(model, l), *m2 = m1 + np;
    for (j = 0; j < m; j++) {
        fn_f32_grad_row(delta, x, batch, n, m, j, frow);
        fn_adamw_update(W + (size_t)j * n, m1 + (size_t)j * n, m2 + (size_t)j * n, frow, n, h);
    }
    for (j = 0; j < m; j++) {
        float s = 0.0f;
        for (b = 0; b < batch; b++) s += delta[(size_t)b * m + j];
        frow[j] = s;
    }
    fn_adamw_update(W + (size_t)m * n, m1 + (size_t)m * n, m2 + (size_t)m * n, frow, m, h);
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

/* ---- the operations ------------------------------------------------------------------------- */
/* The FP32 kind's workspace: training, one float row of max(4 nmax, mmax) (a gradient row, four
 * integer rows as float for the float error through them, the bias gradients). */
static void fn_fp32_plan(const flipnet_model *model, uint32_t batch, int training, fn_plan *plan,
                         uint64_t *off)
{
    uint64_t nmax = 0, mmax = 0;
    uint32_t l;
    (void)batch;
    if (!training) return;
    for (l = 0; l < model->n_layers; l++) {
        if (model->layers[l].n > nmax) nmax = model->layers[l].n;
        if (model->layers[l].m > mmax) mmax = model->layers[l].m;
    }
    plan->frow = fn_plan_take(off, (4u * nmax > mmax ? 4u * nmax : mmax) * 4u);
}

/* z = x W^T + bias into the logits, or into af: then ReLU (an FP32 layer reads it) or
 * a8 = clamp(round(z 2^s)) (an integer layer reads it, docs/rule.md 8). */
static void fn_fp32_forward(const flipnet_model *model, uint32_t l, const fn_io *io,
                            const fn_ctx *c)
{
    const flipnet_layer *Ly = &model->layers[l];
    const float *W = fn_f32_w(model, l);
    size_t cnt = (size_t)c->batch * Ly->m;
    float *z = io->logits != NULL ? (float *)io->logits : io->af;
    fn_f32_dense(W, W + (size_t)Ly->m * Ly->n, io->xf, Ly->n, Ly->m, c->batch, z);
    if (io->logits != NULL) return;
    if (io->a8 != NULL) {
        uint32_t clip = fn_f32_quantize(z, cnt, Ly->shift, io->a8);
        if (io->clipped != NULL) *io->clipped += clip;
    } else {
        fn_relu(z, cnt);
    }
}

/* The output scale s of a layer an integer layer reads (fn_f32_calib_shift on its z, computed
 * into af); 0 (unused) when an FP32 layer reads it. */
static uint8_t fn_fp32_calibrate(const flipnet_model *model, uint32_t l, const fn_io *io,
                                 const fn_ctx *c)
{
    const flipnet_layer *Ly = &model->layers[l];
    const float *W = fn_f32_w(model, l);
    if (io->a8 == NULL) return 0;
    fn_f32_dense(W, W + (size_t)Ly->m * Ly->n, io->xf, Ly->n, Ly->m, c->batch, io->af);
    return fn_f32_calib_shift(io->af, (size_t)c->batch * Ly->m, model->rule.calib_target);
}

/* Lowest index on ties; NaN never wins. */
static void fn_fp32_argmax(const void *logits, uint32_t batch, uint32_t classes, uint16_t *out)
{
    uint32_t b, j;
    for (b = 0; b < batch; b++) {
        const float *z = (const float *)logits + (size_t)b * classes;
        uint32_t best = 0;
        for (j = 1; j < classes; j++) {
            if (z[j] > z[best] || (!(z[best] == z[best]) && z[j] == z[j])) best = j;
        }
        out[b] = (uint16_t)best;
    }
}

/* Training needs the AdamW state and valid AdamW parameters. */
static flipnet_status fn_fp32_prepare(const flipnet_model *model,
                                      const flipnet_step_params *params)
{
    if (model->opt == NULL) return FLIPNET_E_NULL;
    if (!fn_adamw_valid(params)) return FLIPNET_E_ARG;
    return FLIPNET_OK;
}

static void fn_fp32_output_error(const flipnet_model *model, const void *logits,
                                 const uint16_t *y, uint32_t batch, int8_t *d8, float *df,
                                 flipnet_step_stats *s)
{
    (void)d8;
    fn_softmax_error((const float *)logits, y, batch, model->layers[model->n_layers - 1u].m, df,
                     s);
}

static void fn_fp32_error_down(const flipnet_model *model, uint32_t l, const float *delta,
                               float *g, const fn_ctx *c)
{
    fn_f32_backprop(model, l, fn_f32_w(model, l), delta, c->batch, g,
                    (float *)(void *)(c->sc + c->plan->frow),
                    (int16_t *)(void *)(c->sc + c->plan->wrow));
}

/* Output read by an FP32 layer (af): ReLU', where af > 0. Read by an integer layer (a8 =
 * clamp(round(z 2^s))): x 2^s where |a| < 127, else 0. */
static void fn_fp32_act_grad(const flipnet_model *model, uint32_t l, float *g, uint32_t batch,
                             const int8_t *a8, const float *af, int32_t in_log2)
{
    size_t i, cnt = (size_t)batch * model->layers[l].m;
    float scale;
    if (af != NULL) {
        for (i = 0; i < cnt; i++) g[i] = af[i] > 0.0f ? g[i] : 0.0f;
        return;
    }
    scale = fn_pow2f((int32_t)model->layers[l].shift + in_log2);
    for (i = 0; i < cnt; i++) g[i] = (a8[i] != 127 && a8[i] != -127) ? g[i] * scale : 0.0f;
}

/* AdamW (torch.optim.AdamW) of W and bias from the input in->xf and the gradient df. */
static void fn_fp32_update(flipnet_model *model, uint32_t l, const fn_io *in, const int8_t *d8,
                           const float *df, const fn_ctx *c, uint32_t *changes,
                           uint32_t *eligible)
{
    fn_adamw h;
    (void)d8;
    (void)changes;
    (void)eligible;
    fn_adamw_setup(&h, c->params, model->steps + 1u);
    fn_f32_layer_update(model, l, df, in->xf, c->batch, &h,
                        (float *)(void *)(c->sc + c->plan->frow));
}

const fn_kind_fwd fn_fp32_fwd = {1, 1, fn_fp32_plan, fn_fp32_forward, fn_fp32_calibrate,
                                 fn_fp32_argmax};

const fn_kind_train fn_fp32_train = {fn_fp32_init, fn_fp32_prepare, fn_fp32_output_error, NULL,
                                     fn_fp32_error_down, fn_fp32_act_grad, fn_fp32_update};

#else
typedef int fn_kind_fp32_no_float; /* ISO C: a translation unit needs a declaration */
#endif /* FLIPNET_NO_FLOAT */
