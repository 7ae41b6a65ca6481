/* A fixed training run of an integer-only model, for test_hybrid.c (the normal core) and
 * test_nofloat.c (the FLIPNET_NO_FLOAT core): both must give the CRC-32 values below, which
 * were produced by the core before FP32 layers existed (models without FP32 layers compute
 * bit for bit as before). Public API only. */
#ifndef FN_INTEGER_RUN_H
#define FN_INTEGER_RUN_H

#include "fn_test.h"

#define FN_INTEGER_RUN_CRC0 4085479729u /* counters off */
#define FN_INTEGER_RUN_CRC1 1817042177u /* counters on */

/* 24-12-10-4 (ternary, binary, ternary), weighted net vote, margin 8, batch 16, 6 steps with
 * calibration first; returns the CRC-32 of the weight area (counters included). */
static inline uint32_t fn_integer_run(int counters)
{
    flipnet_arch a;
    flipnet_model m;
    flipnet_step_params p;
    flipnet_step_stats st;
    size_t mb = 0, sb = 0, i;
    void *area, *sc;
    int8_t x[16 * 24];
    uint16_t y[16];
    uint32_t crc, l, s;
    memset(&a, 0, sizeof(a));
    a.n_layers = 3;
    a.sizes[0] = 24;
    a.sizes[1] = 12;
    a.sizes[2] = 10;
    a.sizes[3] = 4;
    a.kinds[0] = FLIPNET_TERNARY;
    a.kinds[1] = FLIPNET_BINARY;
    a.kinds[2] = FLIPNET_TERNARY;
    a.counters = (uint8_t)counters;
    REQUIRE(flipnet_model_size(&a, &mb) == FLIPNET_OK);
    area = malloc(mb);
    REQUIRE(area != NULL);
    REQUIRE(flipnet_model_init(&m, &a, area, mb, 1234) == FLIPNET_OK);
    m.rule.vote = FLIPNET_VOTE_WEIGHTED;
    m.rule.filter = FLIPNET_FILTER_NET;
    m.rule.margin = 8;
    m.rule.calib_target = 40;
    if (counters) {
        m.rule.counter_shift = 2;
        m.rule.counter_threshold = 3;
    }
    REQUIRE(flipnet_scratch_size(&m, 16, 1, &sb) == FLIPNET_OK);
    sc = malloc(sb);
    REQUIRE(sc != NULL);
    fn_test_fill_s8(x, sizeof(x), 99);
    for (i = 0; i < sizeof(x); i++) if (x[i] == -128) x[i] = -127;
    for (i = 0; i < 16; i++) y[i] = (uint16_t)(flipnet_rand(7, 1, i) % 4u);
    REQUIRE(flipnet_calibrate(&m, x, 16, sc, sb) == FLIPNET_OK);
    memset(&p, 0, sizeof(p));
    for (s = 0; s < 6; s++) {
        for (l = 0; l < 3; l++) {
            p.k[l] = 5u + s;
            p.p_q16[l] = 40000u;
        }
        REQUIRE(flipnet_train_step(&m, x, y, 16, &p, &st, sc, sb) == FLIPNET_OK);
    }
    crc = flipnet_crc32(0, (const uint8_t *)area, mb);
    free(sc);
    free(area);
    return crc;
}

#endif
