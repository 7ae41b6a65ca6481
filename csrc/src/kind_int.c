/* flipnet core: what ternary and binary layers share in a pass (their tables: kind_ternary.c,
 * kind_binary.c; their training rule: vote.c): the scratch workspace, forward, calibration
 * (docs/rule.md 1), argmax, and, in hybrid networks, the float error through their weights and
 * the derivative of their activation (docs/rule.md 8). */
#include "fn_float.h"

/* The integer kinds' workspace, sized over the ternary/binary layers. Forward: one unpacked
 * row. Training: sample lists, one row, and the union of the backprop accumulator (int16, or
 * int32 when a layer above the first has more than 32767 outputs) with the vote's memory of
 * one row (int32 sums only when a row can have more than 258 errors). */
static void fn_int_plan_parts(fn_plan *plan, uint64_t B, uint64_t nmax, int training, int packed,
                              uint64_t *off);

void fn_int_plan(const flipnet_model *model, uint32_t batch, int training, fn_plan *plan,
                 uint64_t *off)
{
    uint64_t B = batch, nmax = 0, mmax = 0, gmax = 0, gbytes_per = 2, ubase, gbytes, vbytes;
    uint32_t l;
    int packed = 0;
    for (l = 0; l < model->n_layers; l++) {
        const flipnet_layer *L = &model->layers[l];
        if (L->kind == FLIPNET_FP32) continue;
        packed |= model->counter_bits[l] == 4u || model->counter_bits[l] == 2u;
        if (L->n > nmax) nmax = L->n;
        if (L->m > mmax) mmax = L->m;
        if (l >= 1u && L->n > gmax) gmax = L->n;
        if (l >= 1u && L->m > 32767u) gbytes_per = 4;
    }
    if (!training) {
        plan->wrow = fn_plan_take(off, nmax * 2u);
        fn_int_plan_parts(plan, B, nmax, 0, 0, off);
        return;
    }
    plan->list = fn_plan_take(off, B * 2u);
    plan->dl = fn_plan_take(off, B);
    plan->wrow = fn_plan_take(off, nmax * 2u);
    if (packed) plan->hbuf = fn_plan_take(off, nmax); /* counters of < 8 bits, unpacked */
    /* every term is < 2^16 * 2^16 * 4: no 64-bit overflow */
    ubase = *off;
    gbytes = (B * gmax * gbytes_per + 15u) & ~(uint64_t)15u;
    plan->p = fn_plan_take(off, B * 127u > 32767u ? nmax * 4u : 0u);
    plan->n = fn_plan_take(off, nmax * 4u);
    plan->hist = fn_plan_take(off, FN_KEY_BINS * 4u);
    plan->rowmax = fn_plan_take(off, mmax);
    plan->afull = fn_plan_take(off, nmax * 2u);
    plan->ulist = fn_plan_take(off, B * 2u);
    plan->clist = fn_plan_take(off, B * 2u);
    vbytes = *off - ubase;
    plan->g = (size_t)ubase;
    *off = ubase + (gbytes > vbytes ? gbytes : vbytes);
    fn_int_plan_parts(plan, B, nmax, 1, packed, off);
}

/* A part's own workspace (fn_ws) in a block of the scratch, in this order; with plain pointers
 * for part 0 (the fields of the plan). Shared by every part: the backprop accumulator g (each
 * part its own samples), rowmax (each part its own rows), afull and ulist (read only). */
static uint64_t fn_ws_layout(uint64_t B, uint64_t nmax, int training, int packed, uint64_t at,
                             size_t *o)
{
    uint64_t off = at;
    o[8] = fn_plan_take(&off, 16u); /* the part's results (fn_ws.res); not used by part 0 */
    if (!training) {
        o[2] = fn_plan_take(&off, nmax * 2u);
        return off - at;
    }
    o[0] = fn_plan_take(&off, B * 2u);
    o[1] = fn_plan_take(&off, B);
    o[2] = fn_plan_take(&off, nmax * 2u);
    o[3] = packed ? fn_plan_take(&off, nmax) : 0u;
    o[4] = fn_plan_take(&off, B * 127u > 32767u ? nmax * 4u : 0u);
    o[5] = fn_plan_take(&off, nmax * 4u);
    o[6] = fn_plan_take(&off, FN_KEY_BINS * 4u);
    o[7] = fn_plan_take(&off, B * 2u);
    return off - at;
}

static void fn_int_plan_parts(fn_plan *plan, uint64_t B, uint64_t nmax, int training, int packed,
                              uint64_t *off)
{
    size_t o[9];
    uint32_t q;
    memset(o, 0, sizeof(o));
    plan->tbase = (size_t)*off;
    plan->tstride = (size_t)fn_ws_layout(B, nmax, training, packed, 0, o);
    for (q = 0; q < 9u; q++) plan->to[q] = (uint32_t)o[q];
    *off += (uint64_t)plan->tstride * (plan->threads - 1u);
}

/* One part of a layer forward: rows [j0, j1) (fn_int_layer_forward). */
typedef struct {
    const flipnet_model *model;
    uint32_t l, batch;
    const int8_t *x;
    int8_t *act;
    int32_t *z;
    int want_sum, want_clip;
    const fn_ctx *c;
    uint64_t res0[2]; /* thread 0's sum |Z| and clipped count (threads 1..: their fn_ws.res) */
    uint32_t parts;
} fn_fwd_job;

static void fn_fwd_part(void *arg, uint32_t part, uint32_t thread)
{
    fn_fwd_job *jb = (fn_fwd_job *)arg;
    const flipnet_layer *L = &jb->model->layers[jb->l];
    fn_fwd_sink k;
    uint32_t j0, j1;
    uint64_t *res = fn_res(jb->c, thread, jb->res0);
    fn_ws ws;
    fn_ws_get(jb->c, thread, &ws);
    fn_part_range(L->m, part, jb->parts, &j0, &j1);
    k.z = jb->z;
    k.act = jb->act;
    k.sum_abs = 0;
    k.clipped = 0;
    k.m = L->m;
    k.shift = L->shift;
    k.want_sum = jb->want_sum;
    k.want_clip = jb->want_clip;
    fn_kern()->forward(L, jb->model->weights + L->offset, j0, j1, jb->x, jb->batch, &k, ws.wrow);
    res[0] += k.sum_abs;
    res[1] += k.clipped;
}

void fn_int_layer_forward(const flipnet_model *model, uint32_t l, const int8_t *x, uint32_t batch,
                          int8_t *act, int32_t *z, uint64_t *sum_abs, uint32_t *clipped,
                          const fn_ctx *c)
{
    const flipnet_layer *L = &model->layers[l];
    fn_fwd_job jb;
    uint32_t t, nt = fn_threads(c);
    jb.model = model;
    jb.l = l;
    jb.batch = batch;
    jb.x = x;
    jb.act = act;
    jb.z = z;
    jb.want_sum = sum_abs != NULL;
    jb.want_clip = clipped != NULL;
    jb.c = c;
    jb.parts = fn_parts(c, (uint64_t)L->n * L->m * batch, (L->m + 1u) / 2u);
    fn_res_clear(c, jb.res0);
    fn_run_parts(c, fn_fwd_part, &jb, jb.parts);
    for (t = 0; t < nt; t++) { /* fixed order (integer sums: any order is the same) */
        const uint64_t *res = fn_res(c, t, jb.res0);
        if (sum_abs != NULL) *sum_abs += res[0];
        if (clipped != NULL) *clipped += (uint32_t)res[1];
    }
}

/* Random init of integer layer l: weight (j, i) = draw(r), r the INIT stream's draw at index
 * j*n + i (docs/rule.md 6); the weight area starts zeroed. */
void fn_int_init(flipnet_model *model, uint32_t l, int32_t (*draw)(uint64_t r))
{
    const flipnet_layer *L = &model->layers[l];
    uint64_t base = fn_rand_base(model->seed, fn_stream(FN_PURPOSE_INIT, l, 0));
    uint32_t j, i, planes = fn_planes(L->kind);
    for (j = 0; j < L->m; j++) {
        uint8_t *pos = fn_row_w(model, L, j), *neg = pos + (planes - 1u) * L->bpr;
        uint64_t idx = (uint64_t)j * L->n;
        for (i = 0; i < L->n; i++) {
            int32_t w = draw(fn_rand_at(base, idx + i));
            uint8_t bit = (uint8_t)(1u << (i & 7u));
            if (w < 0) neg[i >> 3] |= bit;
            else if (w > 0 && planes == 2u) pos[i >> 3] |= bit; /* binary +1: no bit */
        }
    }
}

void fn_int_forward(const flipnet_model *model, uint32_t l, const fn_io *io, const fn_ctx *c)
{
    fn_int_layer_forward(model, l, io->x8, c->batch, io->a8, (int32_t *)io->logits, NULL,
                         io->clipped, c);
}

/* docs/rule.md section 1: the smallest s with mean|Z| >> s <= rule.calib_target (at most 31). */
uint8_t fn_int_calibrate(const flipnet_model *model, uint32_t l, const fn_io *io,
                         const fn_ctx *c)
{
    uint64_t sum = 0, mabs;
    uint32_t s = 0;
    fn_int_layer_forward(model, l, io->x8, c->batch, NULL, NULL, &sum, NULL, c);
    mabs = sum / ((uint64_t)c->batch * model->layers[l].m);
    while (s < 31u && (mabs >> s) > model->rule.calib_target) s++;
    return (uint8_t)s;
}

void fn_int_argmax(const void *logits, uint32_t batch, uint32_t classes, uint16_t *out)
{
    uint32_t b, j;
    for (b = 0; b < batch; b++) {
        const int32_t *z = (const int32_t *)logits + (size_t)b * classes;
        uint32_t best = 0;
        for (j = 1; j < classes; j++) {
            if (z[j] > z[best]) best = j;
        }
        out[b] = (uint16_t)best;
    }
}

#ifndef FLIPNET_NO_FLOAT
void fn_int_error_down_f32(const flipnet_model *model, uint32_t l, const float *delta, float *g,
                           const fn_ctx *c)
{
    fn_f32_backprop(model, l, NULL, delta, c->batch, g, (float *)(void *)(c->sc + c->plan->frow),
                    (int16_t *)(void *)(c->sc + c->plan->wrow));
}

/* a = clamp(z >> s): the float error times 2^-s where |a| < 127, else 0 (and times 2^in_log2
 * for the layer above's reading of a). */
void fn_int_act_grad(const flipnet_model *model, uint32_t l, float *g, uint32_t batch,
                     const int8_t *a8, const float *af, int32_t in_log2)
{
    size_t i, cnt = (size_t)batch * model->layers[l].m;
    float scale = fn_pow2f(-(int32_t)model->layers[l].shift + in_log2);
    (void)af;
    for (i = 0; i < cnt; i++) g[i] = (a8[i] != 127 && a8[i] != -127) ? g[i] * scale : 0.0f;
}
#endif

const fn_kind_fwd fn_int_fwd = {0, 0, fn_int_plan, fn_int_forward, fn_int_calibrate, fn_int_argmax};
