/* flipnet core: splitting a pass into parts for a caller's runner (flipnet_runner, docs/speed.md).
 * The core starts no threads; every part writes its own rows or samples and its own workspace
 * (fn_ws), so the result does not depend on how many parts there are. */
#include "fn_internal.h"

#define FN_PART_GRAIN 16384u /* operations below which one more part is not worth a thread */

uint32_t fn_parts(const fn_ctx *c, uint64_t work, uint32_t items)
{
    uint64_t p;
    if (c->runner == NULL || c->runner->threads <= 1u || c->plan->threads <= 1u) return 1u;
    p = work / FN_PART_GRAIN;
    if (p > c->runner->threads) p = c->runner->threads;
    if (p > c->plan->threads) p = c->plan->threads;
    if (p > items) p = items;
    return p < 1u ? 1u : (uint32_t)p;
}

void fn_run_parts(const fn_ctx *c, flipnet_part_fn fn, void *arg, uint32_t parts)
{
    if (parts <= 1u) fn(arg, 0);
    else c->runner->run(c->runner->ctx, fn, arg, parts);
}
