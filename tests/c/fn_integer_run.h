/* A fixed training run of an integer-only model, for test_hybrid.c (the normal core) and
 * test_nofloat.c (the FLIPNET_NO_FLOAT core): both must give the CRC-32 values below, which
 * were first taken from the core before FP32 layers existed (models without FP32 layers
 * compute bit for bit as before). tests/c/golden.py recomputes them without the core: the
 * run in python/flipnet/reference.py, its weights and counters packed in NumPy into the
 * weight area's documented layout (csrc/include/flipnet/flipnet.h). Public API only. */
#ifndef FN_INTEGER_RUN_H
#define FN_INTEGER_RUN_H

#include "fn_test.h"

#define FN_INTEGER_RUN_CRC0 4085479729u /* counters off */
#define FN_INTEGER_RUN_CRC1 1817042177u /* counters on */
#define FN_INTEGER_RUN_CRC2 3571237565u /* 4/2/8-bit counters, stochastic rounding, decay 1 */

static void fn_integer_run_params(flipnet_step_params *p, uint32_t step)
{
    uint32_t l;
    for (l = 0; l < 3u; l++) {
        p->k[l] = 5u + step;
        p->p_q16[l] = 40000u;
    }
}

/* 24-12-10-4 (ternary, binary, ternary), weighted net vote, margin 8, batch 16, 6 steps with
 * calibration first; counters 0 off, 1 int8 (shift 2, threshold 3), 2 as 1 with 4-, 2- and
 * 8-bit counters, stochastic rounding and decay 1; returns the CRC-32 of the weight area
 * (counters included). */
static inline uint32_t fn_integer_run(int counters)
{
    flipnet_arch a;
    flipnet_rule r;
    memset(&a, 0, sizeof(a));
    a.n_layers = 3;
    a.sizes[0] = 24;
    a.sizes[1] = 12;
    a.sizes[2] = 10;
    a.sizes[3] = 4;
    a.kinds[0] = FLIPNET_TERNARY;
    a.kinds[1] = FLIPNET_BINARY;
    a.kinds[2] = FLIPNET_TERNARY;
    a.counters = (uint8_t)(counters != 0);
    if (counters == 2) {
        a.counter_bits[0] = 4;
        a.counter_bits[1] = 2;
        a.counter_bits[2] = 8;
    }
    memset(&r, 0, sizeof(r));
    r.vote = FLIPNET_VOTE_WEIGHTED;
    r.filter = FLIPNET_FILTER_NET;
    r.backprop = FLIPNET_BP_SIGN;
    r.margin = 8;
    r.calib_target = 40;
    if (counters) {
        r.counter_shift = 2;
        r.counter_threshold = 3;
    }
    if (counters == 2) {
        r.counter_round = FLIPNET_ROUND_STOCHASTIC;
        r.counter_decay = 1;
    }
    return fn_test_run_crc(&a, 1234, &r, 16, 99, 7, 1, 4, 6, fn_integer_run_params);
}

#endif
