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
    logits = (int32_t *)((uint8_t *)scratch + plan.logits);
    fn_forward_run(model, x, batch, logits, (uint8_t *)scratch, &plan);
    C = model->layers[model->n_layers - 1u].m;
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
    L = model->n_layers;
    wrow = (int16_t *)(sc + plan.wrow);
    for (l = 0; l + 1u < L; l++) {
        flipnet_layer *Ly = &model->layers[l];
        int8_t *out = (int8_t *)(sc + plan.act[l & 1u]);
        uint64_t sum = 0, mabs;
        uint32_t s = 0;
        fn_layer_forward(model, l, in, batch, NULL, NULL, &sum, NULL, wrow);
        mabs = sum / ((uint64_t)batch * Ly->m);
        while (s < 31u && (mabs >> s) > model->rule.calib_target) s++;
        Ly->shift = (uint8_t)s;
        fn_layer_forward(model, l, in, batch, out, NULL, NULL, NULL, wrow);
        in = out;
    }
    return FLIPNET_OK;
}
