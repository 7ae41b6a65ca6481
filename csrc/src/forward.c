/* flipnet core: the forward driver (docs/rule.md 1 and 8) and forward, predict, calibrate,
 * forward_f32. The driver walks the layers and calls each kind's operations (kinds.c); between
 * an integer and a float layer it converts with the adapters (adapt.c). */
#include "fn_internal.h"

flipnet_status fn_forward_args(const flipnet_model *model, const int8_t *x, uint32_t batch,
                               const void *out, void *scratch, size_t scratch_bytes,
                               fn_plan *plan)
{
    return fn_forward_args_mt(model, x, batch, out, scratch, scratch_bytes, NULL, plan);
}

flipnet_status fn_runner_check(const flipnet_runner *runner)
{
    if (runner == NULL) return FLIPNET_OK;
    if (runner->threads < 1u || runner->threads > FLIPNET_MAX_THREADS || runner->run == NULL)
        return FLIPNET_E_ARG;
    return FLIPNET_OK;
}

flipnet_status fn_forward_args_mt(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                  const void *out, void *scratch, size_t scratch_bytes,
                                  const flipnet_runner *runner, fn_plan *plan)
{
    flipnet_status st = fn_model_check(model);
    if (st != FLIPNET_OK) return st;
    if (x == NULL || out == NULL || scratch == NULL) return FLIPNET_E_NULL;
    if (batch < 1u || batch > FLIPNET_MAX_BATCH) return FLIPNET_E_ARG;
    if ((st = fn_runner_check(runner)) != FLIPNET_OK) return st;
    if (fn_misaligned(scratch)) return FLIPNET_E_ALIGN;
    st = fn_plan_make_mt(model, batch, 0, runner != NULL ? runner->threads : 1u, plan);
    if (st != FLIPNET_OK) return st;
    if (scratch_bytes < plan->total) return FLIPNET_E_NOMEM;
    if (fn_input_has_m128(x, (size_t)batch * model->layers[0].n)) return FLIPNET_E_INPUT;
    return FLIPNET_OK;
}

/* Layer l's buffers: its int8 output, and the float buffer for its float output (or for its
 * int8 output converted for a float layer above). Training keeps every layer's: act[l], and
 * the float input xf[l + 1] of the layer above (f[0] when it reads int8); the other passes use
 * ping-pong buffers act[l & 1], f[l & 1]. */
static int8_t *fn_out8(const fn_ctx *c, uint32_t l, int train)
{
    return (int8_t *)(c->sc + c->plan->act[train ? l : (l & 1u)]);
}
static float *fn_outf(const fn_ctx *c, uint32_t l, int train, int next_float)
{
    size_t at = train ? (next_float ? c->plan->xf[l + 1u] : c->plan->f[0]) : c->plan->f[l & 1u];
    return (float *)(void *)(c->sc + at);
}

void fn_net_forward(const flipnet_model *model, flipnet_model *calib, uint32_t calib_first,
                    const int8_t *x, void *logits, const fn_ctx *c, int pass, uint32_t *clipped)
{
    uint32_t l, L = model->n_layers;
    int train = pass == FN_PASS_TRAIN;
    fn_io io;
    const int8_t *in8 = x;
    const float *inf = NULL;
#ifndef FLIPNET_NO_FLOAT
    if (fn_kind_fwd_ops(model->layers[0].kind)->in_float) { /* the input as float (a / 128) */
        float *x0 = (float *)(void *)(c->sc + (train ? c->plan->xf[0] : c->plan->f[1]));
        fn_s8_to_f32(x, (size_t)c->batch * model->layers[0].n, x0);
        inf = x0;
    }
#endif
    for (l = 0; l < L; l++) {
        const fn_kind_fwd *k = fn_kind_fwd_ops(model->layers[l].kind);
        int last = l + 1u == L;
        int next_float = !last && fn_kind_fwd_ops(model->layers[l + 1u].kind)->in_float;
        memset(&io, 0, sizeof(io));
        io.x8 = in8;
        io.xf = inf;
        if (last) {
            if (pass == FN_PASS_CALIBRATE) break; /* the last layer has no shift */
            io.logits = logits;
        } else {
            if (!k->out_float || !next_float) io.a8 = fn_out8(c, l, train);
            if (k->out_float) io.af = fn_outf(c, l, train, next_float);
            if (train) io.clipped = &clipped[l];
        }
        if (pass == FN_PASS_CALIBRATE) {
            int recal = l >= calib_first;
            if (!recal) { /* a kept shift, unless 90% or more of the batch's outputs clamp */
                uint32_t clip = 0;
                io.clipped = &clip;
                k->forward(model, l, &io, c);
                io.clipped = NULL;
                recal = (uint64_t)clip * 10u >= (uint64_t)c->batch * model->layers[l].m * 9u;
            }
            if (recal) calib->layers[l].shift = k->calibrate(model, l, &io, c);
        }
        k->forward(model, l, &io, c);
        if (last) break;
        in8 = io.a8;
        inf = io.af;
#ifndef FLIPNET_NO_FLOAT
        if (next_float && !k->out_float) { /* int8 output, float reader: the adapter */
            float *f = fn_outf(c, l, train, 1);
            fn_s8_to_f32(io.a8, (size_t)c->batch * model->layers[l].m, f);
            inf = f;
        }
#endif
    }
}

/* The forward pass of a checked call into logits (int32 or float, as the last kind computes). */
static void fn_forward_run(const flipnet_model *model, flipnet_model *calib, uint32_t first,
                           const int8_t *x, uint32_t batch, void *logits, void *scratch,
                           const fn_plan *plan, int pass, const flipnet_runner *runner)
{
    fn_ctx c;
    c.sc = (uint8_t *)scratch;
    c.plan = plan;
    c.batch = batch;
    c.params = NULL;
    c.runner = runner;
    fn_net_forward(model, calib, first, x, logits, &c, pass, NULL);
}

static const fn_kind_fwd *fn_last_kind(const flipnet_model *model)
{
    return fn_kind_fwd_ops(model->layers[model->n_layers - 1u].kind);
}

flipnet_status flipnet_forward(const flipnet_model *model, const int8_t *x, uint32_t batch,
                               int32_t *logits, void *scratch, size_t scratch_bytes)
{
    return flipnet_forward_mt(model, x, batch, logits, scratch, scratch_bytes, NULL);
}

flipnet_status flipnet_forward_mt(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                  int32_t *logits, void *scratch, size_t scratch_bytes,
                                  const flipnet_runner *runner)
{
    fn_plan plan;
    flipnet_status st = fn_forward_args_mt(model, x, batch, logits, scratch, scratch_bytes,
                                           runner, &plan);
    if (st != FLIPNET_OK) return st;
    if (fn_last_kind(model)->out_float) return FLIPNET_E_ARG; /* float logits: forward_f32 */
    fn_forward_run(model, NULL, 0, x, batch, logits, scratch, &plan, FN_PASS_INFER, runner);
    return FLIPNET_OK;
}

flipnet_status flipnet_predict(const flipnet_model *model, const int8_t *x, uint32_t batch,
                               uint16_t *classes, void *scratch, size_t scratch_bytes)
{
    return flipnet_predict_mt(model, x, batch, classes, scratch, scratch_bytes, NULL);
}

flipnet_status flipnet_predict_mt(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                  uint16_t *classes, void *scratch, size_t scratch_bytes,
                                  const flipnet_runner *runner)
{
    fn_plan plan;
    void *logits;
    flipnet_status st = fn_forward_args_mt(model, x, batch, classes, scratch, scratch_bytes,
                                           runner, &plan);
    if (st != FLIPNET_OK) return st;
    logits = (uint8_t *)scratch + plan.logits;
    fn_forward_run(model, NULL, 0, x, batch, logits, scratch, &plan, FN_PASS_INFER, runner);
    fn_last_kind(model)->argmax(logits, batch, model->layers[model->n_layers - 1u].m, classes);
    return FLIPNET_OK;
}

flipnet_status flipnet_calibrate_from(flipnet_model *model, uint32_t first, const int8_t *x,
                                      uint32_t batch, void *scratch, size_t scratch_bytes)
{
    fn_plan plan;
    flipnet_status st = fn_forward_args(model, x, batch, x, scratch, scratch_bytes, &plan);
    if (st != FLIPNET_OK) return st;
    if (model->rule.calib_target < 1u || model->rule.calib_target > 127u) return FLIPNET_E_ARG;
    fn_forward_run(model, model, first, x, batch, (uint8_t *)scratch + plan.logits, scratch,
                   &plan, FN_PASS_CALIBRATE, NULL);
    return FLIPNET_OK;
}

flipnet_status flipnet_calibrate(flipnet_model *model, const int8_t *x, uint32_t batch,
                                 void *scratch, size_t scratch_bytes)
{
    return flipnet_calibrate_from(model, 0, x, batch, scratch, scratch_bytes);
}

flipnet_status flipnet_forward_f32(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                   float *logits, void *scratch, size_t scratch_bytes)
{
#ifndef FLIPNET_NO_FLOAT
    fn_plan plan;
    int32_t *zi;
    flipnet_status st = fn_forward_args(model, x, batch, logits, scratch, scratch_bytes, &plan);
    if (st != FLIPNET_OK) return st;
    if (fn_last_kind(model)->out_float) { /* float logits directly */
        fn_forward_run(model, NULL, 0, x, batch, logits, scratch, &plan, FN_PASS_INFER, NULL);
        return FLIPNET_OK;
    }
    zi = (int32_t *)(void *)((uint8_t *)scratch + plan.logits);
    fn_forward_run(model, NULL, 0, x, batch, zi, scratch, &plan, FN_PASS_INFER, NULL);
    fn_s32_to_f32(zi, (size_t)batch * model->layers[model->n_layers - 1u].m, logits);
    return FLIPNET_OK;
#else
    (void)model; (void)x; (void)batch; (void)logits; (void)scratch; (void)scratch_bytes;
    return FLIPNET_E_ARG; /* no float code in this build */
#endif
}

/* ---- read-only models ----------------------------------------------------------------------- */
/* A model struct over a view's layers and weights, for the read-only passes above (which never
 * write through model->weights: the one place the const of a view's weights is set aside);
 * NULL for a NULL view (the passes answer FLIPNET_E_NULL). */
static const flipnet_model *fn_view_model(const flipnet_model_view *view, flipnet_model *model)
{
    if (view == NULL) return NULL;
    memset(model, 0, sizeof(*model));
    model->n_layers = view->n_layers;
    memcpy(model->layers, view->layers, sizeof(model->layers));
    model->weights = (uint8_t *)(uintptr_t)view->weights;
    model->weight_bytes = view->weight_bytes;
    return model;
}

flipnet_status flipnet_view_scratch_size(const flipnet_model_view *view, uint32_t batch,
                                         size_t *bytes)
{
    flipnet_model m;
    return flipnet_scratch_size(fn_view_model(view, &m), batch, 0, bytes);
}

flipnet_status flipnet_view_forward(const flipnet_model_view *view, const int8_t *x,
                                    uint32_t batch, int32_t *logits, void *scratch,
                                    size_t scratch_bytes)
{
    flipnet_model m;
    return flipnet_forward(fn_view_model(view, &m), x, batch, logits, scratch, scratch_bytes);
}

flipnet_status flipnet_view_predict(const flipnet_model_view *view, const int8_t *x,
                                    uint32_t batch, uint16_t *classes, void *scratch,
                                    size_t scratch_bytes)
{
    flipnet_model m;
    return flipnet_predict(fn_view_model(view, &m), x, batch, classes, scratch, scratch_bytes);
}
