/* flipnet core: forward, predict, calibrate (docs/rule.md section 1). */
#include "fn_internal.h"

/* Common argument checks of forward / predict / calibrate. */
static flipnet_status fn_forward_args(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                      const void *out, void *scratch, size_t scratch_bytes,
                                      fn_plan *plan)
{
    flipnet_status st = fn_model_check(model);
    if (st != FLIPNET_OK) return st;
    if (x == NULL || out == NULL || scratch == NULL) return FLIPNET_E_NULL;
    if (batch < 1u || batch > FLIPNET_MAX_BATCH) return FLIPNET_E_ARG;
    if (fn_misaligned(scratch)) return FLIPNET_E_ALIGN;
    st = fn_plan_make(model, batch, 0, plan);
    if (st != FLIPNET_OK) return st;
    if (scratch_bytes < plan->total) return FLIPNET_E_NOMEM;
    if (fn_input_has_m128(x, (size_t)batch * model->layers[0].n)) return FLIPNET_E_INPUT;
    return FLIPNET_OK;
}

/* Forward through all layers with ping-pong activations; logits (B, classes). */
static void fn_forward_run(const flipnet_model *model, const int8_t *x, uint32_t batch,
                           int32_t *logits, uint8_t *scratch, const fn_plan *plan)
{
    uint32_t l, L = model->n_layers;
    const int8_t *in = x;
    int16_t *wrow = (int16_t *)(scratch + plan->wrow);
    for (l = 0; l + 1u < L; l++) {
        int8_t *out = (int8_t *)(scratch + plan->act[l & 1u]);
        fn_layer_forward(model, l, in, batch, out, NULL, NULL, NULL, wrow);
        in = out;
    }
    fn_layer_forward(model, L - 1u, in, batch, NULL, logits, NULL, NULL, wrow);
}

flipnet_status flipnet_forward(const flipnet_model *model, const int8_t *x, uint32_t batch,
                               int32_t *logits, void *scratch, size_t scratch_bytes)
{
    fn_plan plan;
    flipnet_status st = fn_forward_args(model, x, batch, logits, scratch, scratch_bytes, &plan);
    if (st != FLIPNET_OK) return st;
    if (model->layers[model->n_layers - 1u].kind == FLIPNET_FP32) return FLIPNET_E_ARG;
#ifndef FLIPNET_NO_FLOAT
    if (fn_has_f32(model)) { /* read-only: calibrate = 0 never writes the model */
        fn_hybrid_forward((flipnet_model *)(uintptr_t)model, x, batch, logits, (uint8_t *)scratch,
                          &plan, 0);
        return FLIPNET_OK;
    }
#endif
    fn_forward_run(model, x, batch, logits, (uint8_t *)scratch, &plan);
    return FLIPNET_OK;
}

flipnet_status flipnet_predict(const flipnet_model *model, const int8_t *x, uint32_t batch,
                               uint16_t *classes, void *scratch, size_t scratch_bytes)
{
    fn_plan plan;
    uint32_t b, j, C;
    int32_t *logits;
    flipnet_status st = fn_forward_args(model, x, batch, classes, scratch, scratch_bytes, &plan);
    if (st != FLIPNET_OK) return st;
    logits = (int32_t *)(void *)((uint8_t *)scratch + plan.logits);
    C = model->layers[model->n_layers - 1u].m;
#ifndef FLIPNET_NO_FLOAT
    if (fn_has_f32(model)) {
        fn_hybrid_forward((flipnet_model *)(uintptr_t)model, x, batch, logits, (uint8_t *)scratch,
                          &plan, 0);
        if (model->layers[model->n_layers - 1u].kind == FLIPNET_FP32) {
            const float *zf = (const float *)(const void *)logits;
            for (b = 0; b < batch; b++) { /* argmax, lowest index on ties; NaN never wins */
                const float *z = zf + (size_t)b * C;
                uint32_t best = 0;
                for (j = 1; j < C; j++) {
                    if (z[j] > z[best] || (!(z[best] == z[best]) && z[j] == z[j])) best = j;
                }
                classes[b] = (uint16_t)best;
            }
            return FLIPNET_OK;
        }
    } else
#endif
    {
        fn_forward_run(model, x, batch, logits, (uint8_t *)scratch, &plan);
    }
    for (b = 0; b < batch; b++) {
        const int32_t *z = logits + (size_t)b * C;
        uint32_t best = 0;
        for (j = 1; j < C; j++) {
            if (z[j] > z[best]) best = j;
        }
        classes[b] = (uint16_t)best;
    }
    return FLIPNET_OK;
}

void fn_calib_int_shift(flipnet_model *model, uint32_t l, const int8_t *x, uint32_t batch,
                        int16_t *wrow)
{
    uint64_t sum = 0, mabs;
    uint32_t s = 0;
    fn_layer_forward(model, l, x, batch, NULL, NULL, &sum, NULL, wrow);
    mabs = sum / ((uint64_t)batch * model->layers[l].m);
    while (s < 31u && (mabs >> s) > model->rule.calib_target) s++;
    model->layers[l].shift = (uint8_t)s;
}

flipnet_status flipnet_calibrate(flipnet_model *model, const int8_t *x, uint32_t batch,
                                 void *scratch, size_t scratch_bytes)
{
    fn_plan plan;
    uint32_t l, L;
    const int8_t *in = x;
    uint8_t *sc = (uint8_t *)scratch;
    int16_t *wrow;
    flipnet_status st = fn_forward_args(model, x, batch, x, scratch, scratch_bytes, &plan);
    if (st != FLIPNET_OK) return st;
    if (model->rule.calib_target < 1u || model->rule.calib_target > 127u) return FLIPNET_E_ARG;
#ifndef FLIPNET_NO_FLOAT
    if (fn_has_f32(model)) {
        fn_hybrid_forward(model, x, batch, sc + plan.logits, sc, &plan, 1);
        return FLIPNET_OK;
    }
#endif
    L = model->n_layers;
    wrow = (int16_t *)(sc + plan.wrow);
    for (l = 0; l + 1u < L; l++) {
        int8_t *out = (int8_t *)(sc + plan.act[l & 1u]);
        fn_calib_int_shift(model, l, in, batch, wrow);
        fn_layer_forward(model, l, in, batch, out, NULL, NULL, NULL, wrow);
        in = out;
    }
    return FLIPNET_OK;
}

flipnet_status flipnet_forward_f32(const flipnet_model *model, const int8_t *x, uint32_t batch,
                                   float *logits, void *scratch, size_t scratch_bytes)
{
#ifndef FLIPNET_NO_FLOAT
    fn_plan plan;
    uint8_t *sc = (uint8_t *)scratch;
    size_t i, cnt;
    const int32_t *zi;
    flipnet_status st = fn_forward_args(model, x, batch, logits, scratch, scratch_bytes, &plan);
    if (st != FLIPNET_OK) return st;
    if (model->layers[model->n_layers - 1u].kind == FLIPNET_FP32) { /* float logits directly */
        fn_hybrid_forward((flipnet_model *)(uintptr_t)model, x, batch, logits, sc, &plan, 0);
        return FLIPNET_OK;
    }
    zi = (const int32_t *)(const void *)(sc + plan.logits);
    if (fn_has_f32(model))
        fn_hybrid_forward((flipnet_model *)(uintptr_t)model, x, batch, sc + plan.logits, sc, &plan, 0);
    else
        fn_forward_run(model, x, batch, (int32_t *)(void *)(sc + plan.logits), sc, &plan);
    cnt = (size_t)batch * model->layers[model->n_layers - 1u].m;
    for (i = 0; i < cnt; i++) logits[i] = (float)zi[i];
    return FLIPNET_OK;
#else
    (void)model; (void)x; (void)batch; (void)logits; (void)scratch; (void)scratch_bytes;
    return FLIPNET_E_ARG; /* no float code in this build */
#endif
}
