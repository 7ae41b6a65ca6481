/* flipnet core: architecture layout, model init and checks, weight access, scratch plan. */
#include "fn_internal.h"

flipnet_status fn_arch_layout(const flipnet_arch *arch, flipnet_layer *layers, uint64_t *bytes)
{
    uint32_t l;
    uint64_t off = 0;
    if (arch->n_layers < 1u || arch->n_layers > FLIPNET_MAX_LAYERS) return FLIPNET_E_SHAPE;
    for (l = 0; l <= arch->n_layers; l++) {
        if (arch->sizes[l] < 1u || arch->sizes[l] > FLIPNET_MAX_WIDTH) return FLIPNET_E_SHAPE;
    }
    for (l = 0; l < arch->n_layers; l++) {
        uint8_t kind = arch->kinds[l];
        uint32_t n = arch->sizes[l], m = arch->sizes[l + 1];
        if (!fn_kind_ok(kind)) return FLIPNET_E_ARG;
        if (layers != NULL) {
            layers[l].kind = kind;
            layers[l].shift = 0;
            layers[l].reserved = 0;
            layers[l].n = n;
            layers[l].m = m;
            layers[l].bpr = fn_layer_bpr(kind, n);
            layers[l].offset = (uint32_t)off; /* checked below: the total fits 32 bits */
        }
        off += fn_layer_bytes(kind, n, m);
        if (off > UINT32_MAX) return FLIPNET_E_SHAPE; /* byte offsets are 32-bit */
    }
    *bytes = off;
    return FLIPNET_OK;
}

/* Bits per counter of layer l of an architecture: 0 without counters and for FP32 layers, else
 * its counter_bits (0 = 8). */
static uint32_t fn_arch_counter_bits(const flipnet_arch *arch, uint32_t l)
{
    if (!arch->counters || arch->kinds[l] == FLIPNET_FP32) return 0;
    return arch->counter_bits[l] ? arch->counter_bits[l] : 8u;
}

/* Bytes of the counters of a (checked) architecture: sum of the layers' counter areas. */
static uint64_t fn_arch_counter_bytes(const flipnet_arch *arch)
{
    uint32_t l;
    uint64_t total = 0;
    for (l = 0; l < arch->n_layers; l++)
        total += fn_counter_layer_bytes(arch->sizes[l], arch->sizes[l + 1u],
                                        fn_arch_counter_bits(arch, l));
    return total;
}

/* Bytes of the AdamW state of a (checked) architecture: 8 (m*n + m) per FP32 layer. */
static uint64_t fn_arch_opt_bytes(const flipnet_arch *arch)
{
    uint32_t l;
    uint64_t total = 0;
    for (l = 0; l < arch->n_layers; l++)
        total += fn_opt_layer_bytes(arch->kinds[l], arch->sizes[l], arch->sizes[l + 1u]);
    return total;
}

/* Bytes of the packed weights, of the counters and of the whole weight area (counters and
 * AdamW state included). */
static flipnet_status fn_arch_sizes(const flipnet_arch *arch, flipnet_layer *layers,
                                    uint64_t *wbytes, uint64_t *cbytes, uint64_t *total)
{
    flipnet_status st;
    uint32_t l;
    if (arch->counters > 1u) return FLIPNET_E_ARG;
    st = fn_arch_layout(arch, layers, wbytes);
    if (st != FLIPNET_OK) return st;
    for (l = 0; l < arch->n_layers; l++) {
        uint32_t b = fn_arch_counter_bits(arch, l);
        if (b != 0u && !fn_counter_bits_ok(b)) return FLIPNET_E_ARG;
    }
    *cbytes = fn_arch_counter_bytes(arch);
    /* weights < 2^32 (checked), counters < 2^35, AdamW state < 2 * 2^32: no overflow */
    *total = *wbytes + *cbytes + fn_arch_opt_bytes(arch);
    return FLIPNET_OK;
}

flipnet_status flipnet_model_size(const flipnet_arch *arch, size_t *bytes)
{
    uint64_t wbytes = 0, cbytes = 0, total = 0;
    flipnet_status st;
    if (arch == NULL || bytes == NULL) return FLIPNET_E_NULL;
    st = fn_arch_sizes(arch, NULL, &wbytes, &cbytes, &total);
    if (st != FLIPNET_OK) return st;
    if (total > (uint64_t)SIZE_MAX) return FLIPNET_E_SHAPE;
    *bytes = (size_t)total;
    return FLIPNET_OK;
}

flipnet_status flipnet_model_init(flipnet_model *model, const flipnet_arch *arch, void *weights,
                                  size_t weights_bytes, uint64_t seed)
{
    flipnet_layer layers[FLIPNET_MAX_LAYERS];
    uint64_t wbytes = 0, cbytes = 0, total = 0;
    uint32_t l;
    flipnet_status st;
    if (model == NULL || arch == NULL || weights == NULL) return FLIPNET_E_NULL;
    if (fn_misaligned(weights)) return FLIPNET_E_ALIGN;
    st = fn_arch_sizes(arch, layers, &wbytes, &cbytes, &total);
    if (st != FLIPNET_OK) return st;
    if (total > (uint64_t)SIZE_MAX || (uint64_t)weights_bytes < total) return FLIPNET_E_NOMEM;

    memset(model, 0, sizeof(*model));
    model->n_layers = arch->n_layers;
    memcpy(model->layers, layers, sizeof(flipnet_layer) * arch->n_layers);
    model->rule.vote = FLIPNET_VOTE_SIGN;
    model->rule.filter = FLIPNET_FILTER_HURT;
    model->rule.backprop = FLIPNET_BP_SIGN;
    model->rule.margin = 0;
    model->rule.calib_target = FN_CALIB_TARGET;
    model->rule.counter_shift = 0;
    model->rule.counter_threshold = 0;
    model->rule.counter_decay = 0;
    model->seed = seed;
    model->weights = (uint8_t *)weights;
    model->weight_bytes = (size_t)wbytes;
    memset(model->weights, 0, model->weight_bytes); /* padding bits and bytes are 0 */
    for (l = 0; l < model->n_layers; l++) model->counter_bits[l] = (uint8_t)fn_arch_counter_bits(arch, l);
    if (arch->counters) {
        model->counters = (int8_t *)weights + (size_t)wbytes;
        model->counter_bytes = (size_t)cbytes;
        memset(model->counters, 0, model->counter_bytes);
    }
    if (FN_HAS_F32 && total > wbytes + cbytes) { /* FP32 layers: the AdamW state, moments 0 */
        model->opt = (float *)(void *)((uint8_t *)weights + (size_t)(wbytes + cbytes));
        model->opt_bytes = (size_t)(total - wbytes - cbytes);
        memset(model->opt, 0, model->opt_bytes);
    }

    for (l = 0; l < model->n_layers; l++) fn_kind_train_ops(model->layers[l].kind)->init(model, l);
    return FLIPNET_OK;
}

flipnet_status fn_model_check(const flipnet_model *model)
{
    uint32_t l;
    uint64_t off = 0;
    if (model == NULL || model->weights == NULL) return FLIPNET_E_NULL;
    if (fn_misaligned(model->weights)) return FLIPNET_E_ALIGN;
    if (model->n_layers < 1u || model->n_layers > FLIPNET_MAX_LAYERS) return FLIPNET_E_SHAPE;
    uint64_t ob = 0;
    for (l = 0; l < model->n_layers; l++) {
        const flipnet_layer *L = &model->layers[l];
        if (!fn_kind_ok(L->kind)) return FLIPNET_E_ARG;
        if (L->shift > (L->kind == FLIPNET_FP32 ? 15u : 31u)) return FLIPNET_E_ARG;
        if (L->n < 1u || L->n > FLIPNET_MAX_WIDTH || L->m < 1u || L->m > FLIPNET_MAX_WIDTH)
            return FLIPNET_E_SHAPE;
        if (l > 0 && L->n != model->layers[l - 1].m) return FLIPNET_E_SHAPE;
        if (L->bpr != fn_layer_bpr(L->kind, L->n) || (uint64_t)L->offset != off)
            return FLIPNET_E_SHAPE;
        off += fn_layer_bytes(L->kind, L->n, L->m);
        if (off > UINT32_MAX) return FLIPNET_E_SHAPE;
        ob += fn_opt_layer_bytes(L->kind, L->n, L->m);
    }
    if ((uint64_t)model->weight_bytes != off) return FLIPNET_E_SHAPE;
    if (model->counters != NULL) { /* every integer layer has counters of a known width */
        uint64_t cb = 0;
        for (l = 0; l < model->n_layers; l++) {
            uint32_t b = model->counter_bits[l];
            if (model->layers[l].kind == FLIPNET_FP32 ? b != 0u : !fn_counter_bits_ok(b))
                return FLIPNET_E_SHAPE;
            cb += fn_counter_layer_bytes(model->layers[l].n, model->layers[l].m, b);
        }
        if ((uint64_t)model->counter_bytes != cb) return FLIPNET_E_SHAPE;
    } else if (model->counter_bytes != 0) { /* without counters, counter_bits is not read */
        return FLIPNET_E_SHAPE;
    }
    /* AdamW state: exactly its size, or absent (NULL, 0) for inference only */
    if (model->opt != NULL) {
        if (ob == 0 || (uint64_t)model->opt_bytes != ob) return FLIPNET_E_SHAPE;
        if (fn_misaligned(model->opt)) return FLIPNET_E_ALIGN;
    } else if (model->opt_bytes != 0) {
        return FLIPNET_E_SHAPE;
    }
    return FLIPNET_OK;
}

int fn_rule_valid(const flipnet_rule *r, int has_counters)
{
    return r->vote <= FLIPNET_VOTE_WEIGHTED && r->filter <= FLIPNET_FILTER_NET &&
           r->backprop == FLIPNET_BP_SIGN && r->margin >= 0 &&
           r->calib_target >= 1u && r->calib_target <= 127u && r->counter_shift <= 31u &&
           r->counter_threshold <= 127u && (r->counter_threshold == 0 || has_counters) &&
           r->counter_decay <= 7u && (r->counter_decay == 0 || r->counter_threshold != 0) &&
           r->counter_round <= FLIPNET_ROUND_STOCHASTIC &&
           (r->counter_round == FLIPNET_ROUND_NEAREST || r->counter_threshold != 0);
}

flipnet_status flipnet_rule_check(const flipnet_rule *rule, int has_counters)
{
    if (rule == NULL) return FLIPNET_E_NULL;
    return fn_rule_valid(rule, has_counters != 0) ? FLIPNET_OK : FLIPNET_E_ARG;
}

int fn_weights_legal(const flipnet_model *model)
{
    uint32_t l, j, w;
    for (l = 0; l < model->n_layers; l++) {
        const flipnet_layer *L = &model->layers[l];
        uint32_t planes = fn_planes(L->kind);
        uint32_t tail = L->n & 7u;
        uint32_t pad = tail ? 0xFFu & ~((1u << tail) - 1u) : 0u; /* padding bits of the last byte */
        if (FN_HAS_F32 && L->kind == FLIPNET_FP32) { /* every W and bias finite (read as bit patterns) */
            uint64_t k, cnt = fn_f32_params(L->n, L->m);
            const uint8_t *p = model->weights + L->offset;
            for (k = 0; k < cnt; k++) {
                uint32_t u;
                memcpy(&u, p + 4u * k, 4);
                if (!fn_f32_bits_finite(u)) return 0;
            }
            continue;
        }
        for (j = 0; j < L->m; j++) {
            const uint8_t *row = fn_row(model, L, j);
            uint32_t p;
            for (p = 0; p < planes; p++) {
                if (row[p * L->bpr + L->bpr - 1u] & pad) return 0;
            }
            if (L->kind == FLIPNET_TERNARY) {
                for (w = 0; w < L->bpr; w++) {
                    if (row[w] & row[L->bpr + w]) return 0;
                }
            }
        }
    }
    return 1;
}

/* Weights of integer layer l: a checked model, w not NULL, l an integer layer. */
static flipnet_status fn_int_layer_args(const flipnet_model *model, uint32_t layer, const void *w)
{
    flipnet_status st = fn_model_check(model);
    if (st != FLIPNET_OK) return st;
    if (w == NULL) return FLIPNET_E_NULL;
    if (layer >= model->n_layers || model->layers[layer].kind == FLIPNET_FP32) return FLIPNET_E_ARG;
    return FLIPNET_OK;
}

flipnet_status flipnet_layer_get(const flipnet_model *model, uint32_t layer, int8_t *w)
{
    uint32_t j;
    const flipnet_layer *L;
    flipnet_status st = fn_int_layer_args(model, layer, w);
    if (st != FLIPNET_OK) return st;
    L = &model->layers[layer];
    for (j = 0; j < L->m; j++) {
        fn_unpack_row_ref(fn_row(model, L, j), L->kind, L->n, L->bpr, w + (size_t)j * L->n);
    }
    return FLIPNET_OK;
}

flipnet_status flipnet_layer_set(flipnet_model *model, uint32_t layer, const int8_t *w)
{
    uint32_t j;
    size_t i, count;
    const flipnet_layer *L;
    flipnet_status st = fn_int_layer_args(model, layer, w);
    if (st != FLIPNET_OK) return st;
    L = &model->layers[layer];
    count = (size_t)L->n * L->m;
    for (i = 0; i < count; i++) { /* validate everything before touching the weights */
        int8_t v = w[i];
        if (L->kind == FLIPNET_TERNARY ? (v < -1 || v > 1) : (v != -1 && v != 1))
            return FLIPNET_E_ARG;
    }
    for (j = 0; j < L->m; j++) {
        fn_pack_row_ref(fn_row_w(model, L, j), L->kind, L->n, L->bpr, w + (size_t)j * L->n);
    }
    return FLIPNET_OK;
}

/* Counters of layer l: the model must have them; h is (m, n) row-major. */
static flipnet_status fn_counters_args(const flipnet_model *model, uint32_t layer, const void *h)
{
    flipnet_status st = fn_model_check(model);
    if (st != FLIPNET_OK) return st;
    if (h == NULL) return FLIPNET_E_NULL;
    if (layer >= model->n_layers || model->counters == NULL ||
        model->layers[layer].kind == FLIPNET_FP32)
        return FLIPNET_E_ARG;
    return FLIPNET_OK;
}

flipnet_status flipnet_counters_get(const flipnet_model *model, uint32_t layer, int8_t *h)
{
    uint32_t j, n, b;
    size_t rb;
    const uint8_t *area;
    flipnet_status st = fn_counters_args(model, layer, h);
    if (st != FLIPNET_OK) return st;
    n = model->layers[layer].n;
    b = model->counter_bits[layer];
    rb = fn_counter_row_bytes(n, b);
    area = (const uint8_t *)model->counters + fn_counter_offset(model, layer);
    for (j = 0; j < model->layers[layer].m; j++)
        fn_counters_unpack(area + (size_t)j * rb, b, n, h + (size_t)j * n);
    return FLIPNET_OK;
}

flipnet_status flipnet_counters_set(flipnet_model *model, uint32_t layer, const int8_t *h)
{
    size_t i, count, rb;
    uint32_t j, n, b;
    int32_t hmax;
    uint8_t *area;
    flipnet_status st = fn_counters_args(model, layer, h);
    if (st != FLIPNET_OK) return st;
    n = model->layers[layer].n;
    b = model->counter_bits[layer];
    hmax = fn_counter_max(b);
    count = (size_t)n * model->layers[layer].m;
    for (i = 0; i < count; i++) { /* validate everything before touching the counters */
        if (h[i] > hmax || h[i] < -hmax) return FLIPNET_E_ARG;
    }
    rb = fn_counter_row_bytes(n, b);
    area = (uint8_t *)model->counters + fn_counter_offset(model, layer);
    for (j = 0; j < model->layers[layer].m; j++)
        fn_counters_pack(area + (size_t)j * rb, b, n, h + (size_t)j * n);
    return FLIPNET_OK;
}

/* ---- scratch plan ------------------------------------------------------------------------- */
/* The drivers' buffers (logits; int8 activations; the integer errors when an integer layer
 * trains; the float activations / errors and FP32 layers' inputs when a kind computes in float),
 * then each kind's workspace (fn_kind_fwd.plan, once per distinct planner). Every region is
 * rounded up to 16 bytes. */
flipnet_status fn_plan_make(const flipnet_model *model, uint32_t batch, int training, fn_plan *plan)
{
    return fn_plan_make_mt(model, batch, training, 1, plan);
}

flipnet_status fn_plan_make_mt(const flipnet_model *model, uint32_t batch, int training,
                               uint32_t threads, fn_plan *plan)
{
    uint32_t l, q, L = model->n_layers, nplanners = 0;
    uint64_t B = batch, off = 0, hmax = 0, mmax = 0, fmax, classes = model->layers[L - 1].m;
    int has_float = 0, has_int = 0;
    void (*planners[FLIPNET_MAX_LAYERS])(const flipnet_model *, uint32_t, int, fn_plan *,
                                         uint64_t *);
    memset(plan, 0, sizeof(*plan));
    plan->threads = threads;
    for (l = 0; l < L; l++) {
        const fn_kind_fwd *k = fn_kind_fwd_ops(model->layers[l].kind);
        if (model->layers[l].m > mmax) mmax = model->layers[l].m;
        if (l + 1u < L && model->layers[l].m > hmax) hmax = model->layers[l].m;
        has_float |= k->in_float | k->out_float;
        has_int |= !k->out_float;
        for (q = 0; q < nplanners && planners[q] != k->plan; q++) {
        }
        if (q == nplanners) planners[nplanners++] = k->plan;
    }
    /* every term is < 2^16 * 2^16 * 4 * 8 layers: no 64-bit overflow */
    plan->logits = fn_plan_take(&off, B * classes * 4u);
    if (!training) {
        plan->act[0] = fn_plan_take(&off, B * hmax);
        plan->act[1] = fn_plan_take(&off, B * hmax);
    } else {
        for (l = 0; l + 1u < L; l++) plan->act[l] = fn_plan_take(&off, B * model->layers[l].m);
        if (has_int) { /* integer errors */
            plan->d[0] = fn_plan_take(&off, B * mmax);
            plan->d[1] = fn_plan_take(&off, B * mmax);
        }
    }
    if (has_float) {
        if (!training) {
            fmax = hmax;
            if (fn_kind_fwd_ops(model->layers[0].kind)->in_float && model->layers[0].n > fmax)
                fmax = model->layers[0].n;
            plan->f[0] = fn_plan_take(&off, B * fmax * 4u);
            plan->f[1] = fn_plan_take(&off, B * fmax * 4u);
        } else {
            for (l = 0; l < L; l++) {
                if (fn_kind_fwd_ops(model->layers[l].kind)->in_float)
                    plan->xf[l] = fn_plan_take(&off, B * model->layers[l].n * 4u);
            }
            plan->f[0] = fn_plan_take(&off, B * mmax * 4u);
            plan->f[1] = fn_plan_take(&off, B * mmax * 4u);
        }
    }
    for (q = 0; q < nplanners; q++) planners[q](model, batch, training, plan, &off);
    if (off > (uint64_t)SIZE_MAX) return FLIPNET_E_NOMEM;
    plan->total = (size_t)off;
    return FLIPNET_OK;
}

flipnet_status flipnet_scratch_size(const flipnet_model *model, uint32_t batch, int training,
                                    size_t *bytes)
{
    return flipnet_scratch_size_mt(model, batch, training, 1, bytes);
}

flipnet_status flipnet_scratch_size_mt(const flipnet_model *model, uint32_t batch, int training,
                                       uint32_t threads, size_t *bytes)
{
    fn_plan plan;
    flipnet_status st = fn_model_check(model);
    if (st != FLIPNET_OK) return st;
    if (bytes == NULL) return FLIPNET_E_NULL;
    if (batch < 1u || batch > FLIPNET_MAX_BATCH) return FLIPNET_E_ARG;
    if (threads < 1u || threads > FLIPNET_MAX_THREADS) return FLIPNET_E_ARG;
    st = fn_plan_make_mt(model, batch, training, threads, &plan);
    if (st != FLIPNET_OK) return st;
    *bytes = plan.total;
    return FLIPNET_OK;
}

flipnet_status flipnet_arch_scratch_size(const flipnet_arch *arch, uint32_t batch, int training,
                                         size_t *bytes)
{
    flipnet_model m; /* the layer table and counter widths only: the plan reads nothing else */
    fn_plan plan;
    uint64_t wbytes = 0, cbytes = 0, total = 0;
    uint32_t l;
    flipnet_status st;
    if (arch == NULL || bytes == NULL) return FLIPNET_E_NULL;
    if (batch < 1u || batch > FLIPNET_MAX_BATCH) return FLIPNET_E_ARG;
    memset(&m, 0, sizeof(m));
    st = fn_arch_sizes(arch, m.layers, &wbytes, &cbytes, &total);
    if (st != FLIPNET_OK) return st;
    m.n_layers = arch->n_layers;
    for (l = 0; l < m.n_layers; l++) m.counter_bits[l] = (uint8_t)fn_arch_counter_bits(arch, l);
    st = fn_plan_make(&m, batch, training, &plan);
    if (st != FLIPNET_OK) return st;
    *bytes = plan.total;
    return FLIPNET_OK;
}

/* ---- FP32 layers: float weights as bit patterns (no float arithmetic here) ----------------- */
static flipnet_status fn_f32_layer_args(const flipnet_model *model, uint32_t layer, const void *w)
{
    flipnet_status st;
    if (!FN_HAS_F32) return FLIPNET_E_ARG; /* no FP32 layers in this build */
    st = fn_model_check(model);
    if (st != FLIPNET_OK) return st;
    if (w == NULL) return FLIPNET_E_NULL;
    if (layer >= model->n_layers || model->layers[layer].kind != FLIPNET_FP32) return FLIPNET_E_ARG;
    return FLIPNET_OK;
}

flipnet_status flipnet_layer_get_f32(const flipnet_model *model, uint32_t layer, float *w)
{
    flipnet_status st = fn_f32_layer_args(model, layer, w);
    if (st != FLIPNET_OK) return st;
    memcpy(w, model->weights + model->layers[layer].offset,
           (size_t)fn_layer_bytes(FLIPNET_FP32, model->layers[layer].n, model->layers[layer].m));
    return FLIPNET_OK;
}

flipnet_status flipnet_layer_set_f32(flipnet_model *model, uint32_t layer, const float *w)
{
    size_t i, bytes;
    flipnet_status st = fn_f32_layer_args(model, layer, w);
    if (st != FLIPNET_OK) return st;
    bytes = (size_t)fn_layer_bytes(FLIPNET_FP32, model->layers[layer].n, model->layers[layer].m);
    for (i = 0; i < bytes; i += 4u) { /* validate everything before touching the weights */
        uint32_t u;
        memcpy(&u, (const uint8_t *)w + i, 4);
        if (!fn_f32_bits_finite(u)) return FLIPNET_E_ARG;
    }
    memcpy(model->weights + model->layers[layer].offset, w, bytes);
    return FLIPNET_OK;
}
