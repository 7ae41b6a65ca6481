/* flipnet core: the train driver, one training step (docs/rule.md sections 2-5, 7.1 and 8).
 *
 * Forward through every layer keeping each layer's input (the forward driver, forward.c), the
 * last layer's output error, then from the last layer to the first: the error at the layer's
 * inputs (computed with the weights before this step), then the layer's update. Each of these
 * is its kind's operation (kinds.c). Errors are int8 (m, B) transposed, or float (B, m) from
 * the topmost FP32 layer down (docs/rule.md 8): below an FP32 layer every layer passes a float
 * error down, and an integer layer votes on a discretized copy of it (adapt.c). */
#include "fn_internal.h"

/* Checks of flipnet_train_step (model, pointers, batch, rule, k, p, classes, scratch, inputs,
 * labels); fills plan. */
static flipnet_status fn_train_args(const flipnet_model *model, const int8_t *x, const uint16_t *y,
                                    uint32_t batch, const flipnet_step_params *params,
                                    void *scratch, size_t scratch_bytes,
                                    const flipnet_runner *runner, fn_plan *plan)
{
    uint32_t l, L, C, b;
    flipnet_status st = fn_model_check(model);
    if (st != FLIPNET_OK) return st;
    if (x == NULL || y == NULL || params == NULL || scratch == NULL) return FLIPNET_E_NULL;
    if (batch < 1u || batch > FLIPNET_MAX_BATCH) return FLIPNET_E_ARG;
    if (!fn_rule_valid(&model->rule, model->counters != NULL)) return FLIPNET_E_ARG;
    L = model->n_layers;
    for (l = 0; l < L; l++) {
        if ((uint64_t)params->k[l] > (uint64_t)model->layers[l].n * model->layers[l].m ||
            params->p_q16[l] > 65536u)
            return FLIPNET_E_ARG;
    }
    C = model->layers[L - 1u].m;
    if (C < 2u) return FLIPNET_E_SHAPE; /* the output error needs a wrong class */
    if ((st = fn_runner_check(runner)) != FLIPNET_OK) return st;
    if (fn_misaligned(scratch)) return FLIPNET_E_ALIGN;
    st = fn_plan_make_mt(model, batch, 1, runner != NULL ? runner->threads : 1u, plan);
    if (st != FLIPNET_OK) return st;
    if (scratch_bytes < plan->total) return FLIPNET_E_NOMEM;
    if (fn_input_has_m128(x, (size_t)batch * model->layers[0].n)) return FLIPNET_E_INPUT;
    for (b = 0; b < batch; b++) {
        if (y[b] >= C) return FLIPNET_E_LABEL;
    }
    return FLIPNET_OK;
}

flipnet_status flipnet_train_step(flipnet_model *model, const int8_t *x, const uint16_t *y,
                                  uint32_t batch, const flipnet_step_params *params,
                                  flipnet_step_stats *stats, void *scratch, size_t scratch_bytes)
{
    return flipnet_train_step_mt(model, x, y, batch, params, stats, scratch, scratch_bytes, NULL);
}

flipnet_status flipnet_train_step_mt(flipnet_model *model, const int8_t *x, const uint16_t *y,
                                     uint32_t batch, const flipnet_step_params *params,
                                     flipnet_step_stats *stats, void *scratch,
                                     size_t scratch_bytes, const flipnet_runner *runner)
{
    fn_plan plan;
    fn_ctx c;
    flipnet_step_stats s;
    uint32_t l, L;
    int8_t *cur, *nxt, *t8;
    float *fcur = NULL, *fnxt = NULL;
    void *logits;
    int ferr, has_float = 0;
    flipnet_status st = fn_train_args(model, x, y, batch, params, scratch, scratch_bytes, runner,
                                      &plan);
    if (st != FLIPNET_OK) return st;
    L = model->n_layers;
    for (l = 0; l < L; l++) { /* every kind's own checks, before anything changes */
        const fn_kind_train *k = fn_kind_train_ops(model->layers[l].kind);
        if (k->prepare != NULL && (st = k->prepare(model, params)) != FLIPNET_OK) return st;
        has_float |= fn_kind_fwd_ops(model->layers[l].kind)->out_float;
    }
    c.sc = (uint8_t *)scratch;
    c.plan = &plan;
    c.batch = batch;
    c.params = params;
    c.runner = runner;
    memset(&s, 0, sizeof(s));
    logits = c.sc + plan.logits;
    cur = (int8_t *)(c.sc + plan.d[0]);
    nxt = (int8_t *)(c.sc + plan.d[1]);
#ifndef FLIPNET_NO_FLOAT
    fcur = (float *)(void *)(c.sc + plan.f[0]);
    fnxt = (float *)(void *)(c.sc + plan.f[1]);
#endif

    fn_net_forward(model, NULL, 0, x, logits, &c, FN_PASS_TRAIN, s.clipped);
    fn_kind_train_ops(model->layers[L - 1u].kind)->output_error(model, logits, y, batch, cur, fcur,
                                                                &s);
    ferr = fn_kind_fwd_ops(model->layers[L - 1u].kind)->out_float;

    /* an integer network with no error and no counters changes nothing (FP32 layers always
     * step: AdamW's moments and weight decay) */
    if (s.errors != 0 || model->rule.counter_threshold != 0u || has_float) {
        for (l = L; l-- > 0;) {
            const fn_kind_fwd *kf = fn_kind_fwd_ops(model->layers[l].kind);
            const fn_kind_train *k = fn_kind_train_ops(model->layers[l].kind);
            fn_io in;
            memset(&in, 0, sizeof(in));
            in.x8 = l == 0 ? x : (const int8_t *)(c.sc + plan.act[l - 1u]);
#ifndef FLIPNET_NO_FLOAT
            if (kf->in_float) in.xf = (const float *)(const void *)(c.sc + plan.xf[l]);
            if (kf->out_float && !ferr) { /* an integer error enters the float path */
                fn_err_s8_to_f32(cur, model->layers[l].m, batch, fcur);
                ferr = 1;
            } else if (!kf->out_float && ferr) { /* the integer layer votes on a discretized copy */
                fn_err_f32_to_s8(fcur, batch, model->layers[l].m, cur);
            }
            if (ferr && l > 0) {
                const fn_kind_fwd *below = fn_kind_fwd_ops(model->layers[l - 1u].kind);
                int below_float = below->out_float && kf->in_float; /* ReLU'd float output */
                k->error_down_f32(model, l, fcur, fnxt, &c);
                fn_kind_train_ops(model->layers[l - 1u].kind)->act_grad(
                    model, l - 1u, fnxt, batch,
                    below_float ? NULL : (const int8_t *)(c.sc + plan.act[l - 1u]),
                    below_float ? in.xf : NULL, kf->in_float && !below->out_float ? -7 : 0);
            }
#else
            (void)kf;
#endif
            if (!ferr && l > 0) k->error_down(model, l, cur, in.x8, nxt, &c);
            k->update(model, l, &in, cur, fcur, &c, &s.changes[l], &s.eligible[l]);
            if (ferr) {
                float *tf = fcur;
                fcur = fnxt;
                fnxt = tf;
            } else {
                t8 = cur;
                cur = nxt;
                nxt = t8;
            }
        }
    }
    model->steps += 1u;
    model->samples += batch;
    if (stats != NULL) *stats = s;
    return FLIPNET_OK;
}
