/* Tiny assertion helpers for the flipnet C tests (no framework). */
#ifndef FN_TEST_H
#define FN_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flipnet/flipnet.h"

static int fn_test_failures = 0;
static int fn_test_checks = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        fn_test_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            fn_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long fn_a_ = (long long)(a), fn_b_ = (long long)(b);                                  \
        fn_test_checks++;                                                                          \
        if (fn_a_ != fn_b_) {                                                                      \
            fn_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", __FILE__, __LINE__,  \
                    #a, fn_a_, #b, fn_b_);                                                         \
        }                                                                                          \
    } while (0)

#define CHECK_ST(expr, want) CHECK_EQ((int)(expr), (int)(want))

/* Stop a test on the first failure of a precondition. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        int fn_ok_ = (cond) ? 1 : 0;                                                               \
        CHECK(fn_ok_);                                                                             \
        if (!fn_ok_) {                                                                             \
            fprintf(stderr, "aborting test\n");                                                    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline int fn_test_done(const char *name)
{
    if (fn_test_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, fn_test_failures, fn_test_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, fn_test_checks);
    return 0;
}

/* Deterministic test data from the core's RNG (stream 0xEE..., reproducible in Python). */
static inline void fn_test_fill_s8(int8_t *x, size_t count, uint64_t seed)
{
    size_t i;
    for (i = 0; i < count; i++) {
        x[i] = (int8_t)((int)((flipnet_rand(seed, 0xEEull << 56, i) >> 32) % 255u) - 127);
    }
}

/* Build a model over a malloc'd weight area; returns the area (free it). */
static inline void *fn_test_model(flipnet_model *model, uint32_t n_layers, const uint32_t *sizes,
                           const uint8_t *kinds, uint64_t seed)
{
    flipnet_arch arch;
    size_t bytes = 0;
    void *w;
    uint32_t l;
    memset(&arch, 0, sizeof(arch));
    arch.n_layers = n_layers;
    for (l = 0; l <= n_layers; l++) arch.sizes[l] = sizes[l];
    for (l = 0; l < n_layers; l++) arch.kinds[l] = kinds[l];
    REQUIRE(flipnet_model_size(&arch, &bytes) == FLIPNET_OK);
    w = malloc(bytes ? bytes : 4);
    REQUIRE(w != NULL);
    REQUIRE(flipnet_model_init(model, &arch, w, bytes, seed) == FLIPNET_OK);
    return w;
}

static inline void *fn_test_scratch(const flipnet_model *model, uint32_t batch, int training, size_t *bytes)
{
    void *s;
    REQUIRE(flipnet_scratch_size(model, batch, training, bytes) == FLIPNET_OK);
    s = malloc(*bytes ? *bytes : 4);
    REQUIRE(s != NULL);
    return s;
}

/* A fixed training run for CRC pins: a model of arch, seeded seed, with rule; batch samples
 * (fn_test_fill_s8 from xseed, -128 mapped to -127) and labels flipnet_rand(yseed, ystream, i)
 * mod classes; calibration, then steps training steps with the parameters params_at gives
 * for each step. Returns the CRC-32 of the whole weight area (weights, counters, AdamW state). */
typedef void (*fn_test_params_fn)(flipnet_step_params *p, uint32_t step);
static inline uint32_t fn_test_run_crc(const flipnet_arch *a, uint64_t seed,
                                       const flipnet_rule *rule, uint32_t batch,
                                       uint64_t xseed, uint64_t yseed, uint64_t ystream,
                                       uint32_t classes, uint32_t steps,
                                       fn_test_params_fn params_at)
{
    flipnet_model m;
    flipnet_step_params p;
    size_t mb = 0, sb = 0, i, nx = (size_t)batch * a->sizes[0];
    void *area, *sc;
    int8_t *x = malloc(nx);
    uint16_t *y = malloc(sizeof(uint16_t) * batch);
    uint32_t crc, s;
    REQUIRE(x != NULL && y != NULL);
    REQUIRE(flipnet_model_size(a, &mb) == FLIPNET_OK);
    area = malloc(mb);
    REQUIRE(area != NULL);
    REQUIRE(flipnet_model_init(&m, a, area, mb, seed) == FLIPNET_OK);
    m.rule = *rule;
    REQUIRE(flipnet_scratch_size(&m, batch, 1, &sb) == FLIPNET_OK);
    sc = malloc(sb);
    REQUIRE(sc != NULL);
    fn_test_fill_s8(x, nx, xseed);
    for (i = 0; i < nx; i++) if (x[i] == -128) x[i] = -127;
    for (i = 0; i < batch; i++) y[i] = (uint16_t)(flipnet_rand(yseed, ystream, i) % classes);
    REQUIRE(flipnet_calibrate(&m, x, batch, sc, sb) == FLIPNET_OK);
    for (s = 0; s < steps; s++) {
        memset(&p, 0, sizeof(p));
        params_at(&p, s);
        REQUIRE(flipnet_train_step(&m, x, y, batch, &p, NULL, sc, sb) == FLIPNET_OK);
    }
    crc = flipnet_crc32(0, (const uint8_t *)area, mb);
    free(sc);
    free(area);
    free(y);
    free(x);
    return crc;
}

#endif
