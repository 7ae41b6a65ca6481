/* flipnet core: splitting a pass into parts for a caller's runner (flipnet_runner, docs/speed.md).
 * The core starts no threads. A pass is split into up to FN_PARTS_PER_THREAD parts per thread
 * (so that a runner handing parts out as threads come free evens out uneven rows); every part
 * writes its own rows, inputs or samples, and every thread its own workspace (fn_ws), whose
 * results are summed in a fixed order: the result does not depend on the threads. */
#include "fn_internal.h"

#define FN_PART_GRAIN 16384u    /* operations below which one more part is not worth it */
#define FN_PARTS_PER_THREAD 1u

uint32_t fn_threads(const fn_ctx *c)
{
    uint32_t t;
    if (c->runner == NULL) return 1u;
    t = c->runner->threads < c->plan->threads ? c->runner->threads : c->plan->threads;
    return t < 1u ? 1u : t;
}

uint32_t fn_parts(const fn_ctx *c, uint64_t work, uint32_t items)
{
    uint64_t p, t = fn_threads(c);
    if (t <= 1u) return 1u;
    p = work / FN_PART_GRAIN;
    if (p > t * FN_PARTS_PER_THREAD) p = t * FN_PARTS_PER_THREAD;
    if (p > items) p = items;
    return p < 1u ? 1u : (uint32_t)p;
}

void fn_run_parts(const fn_ctx *c, flipnet_part_fn fn, void *arg, uint32_t parts)
{
    if (parts <= 1u) fn(arg, 0, 0);
    else c->runner->run(c->runner->ctx, fn, arg, parts);
}

/* Thread `thread`'s workspace: the plan's own buffers for thread 0, else its slice of the
 * threads' area (fn_int_plan_parts). */
void fn_ws_get(const fn_ctx *c, uint32_t thread, fn_ws *w)
{
    const fn_plan *plan = c->plan;
    uint8_t *sc = c->sc;
    size_t o[9];
    uint32_t q;
    if (thread == 0u) {
        o[0] = plan->list;
        o[1] = plan->dl;
        o[2] = plan->wrow;
        o[3] = plan->hbuf;
        o[4] = plan->p;
        o[5] = plan->n;
        o[6] = plan->hist;
        o[7] = plan->clist;
        o[8] = 0;
    } else {
        size_t base = plan->tbase + plan->tstride * (thread - 1u);
        for (q = 0; q < 9u; q++) o[q] = base + plan->to[q];
    }
    w->list = (uint16_t *)(void *)(sc + o[0]);
    w->dl = (int8_t *)(sc + o[1]);
    w->wrow = (int16_t *)(void *)(sc + o[2]);
    w->hbuf = (int8_t *)(sc + o[3]);
    w->P = (int32_t *)(void *)(sc + o[4]);
    w->N = (int32_t *)(void *)(sc + o[5]);
    w->hist = (uint32_t *)(void *)(sc + o[6]);
    w->clist = (uint16_t *)(void *)(sc + o[7]);
    w->res = thread == 0u ? NULL : (uint64_t *)(void *)(sc + o[8]);
}

uint64_t *fn_res(const fn_ctx *c, uint32_t thread, uint64_t *res0)
{
    fn_ws ws;
    if (thread == 0u) return res0;
    fn_ws_get(c, thread, &ws);
    return ws.res;
}

void fn_res_clear(const fn_ctx *c, uint64_t *res0)
{
    uint32_t t, n = fn_threads(c);
    for (t = 0; t < n; t++) {
        uint64_t *r = fn_res(c, t, res0);
        r[0] = 0;
        r[1] = 0;
    }
}
