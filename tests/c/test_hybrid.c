/* FP32 layers and hybrid models (docs/rule.md 8, docs/format.md v2): layout and sizes, init,
 * float weight access, forward of hand-computed tiny nets, calibration of an FP32 layer's
 * output scale, AdamW steps against numbers computed here in double, gradients of the float
 * path (read back through AdamW), the math helpers, file format v2 round trip and corruption
 * statuses, and integer-only models unchanged by all this. */
#include "fn_internal.h"
#include "fn_test.h"

#define T FLIPNET_TERNARY
#define B2 FLIPNET_BINARY
#define F FLIPNET_FP32

static float *f32w(const flipnet_model *m, uint32_t l)
{
    return (float *)(void *)(m->weights + m->layers[l].offset);
}

static double dabs(double v) { return v < 0 ? -v : v; }

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double fn_x_ = (double)(a), fn_y_ = (double)(b), fn_s_ = dabs(fn_y_) > 1 ? dabs(fn_y_) : 1; \
        fn_test_checks++;                                                                          \
        if (!(dabs(fn_x_ - fn_y_) <= (tol) * fn_s_)) {                                             \
            fn_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.17g, %s = %.17g\n", __FILE__,        \
                    __LINE__, #a, fn_x_, #b, fn_y_);                                               \
        }                                                                                          \
    } while (0)

static flipnet_step_params adamw_params(float lr, float wd, float b1, float b2, float eps)
{
    flipnet_step_params p;
    memset(&p, 0, sizeof(p));
    p.lr = lr;
    p.weight_decay = wd;
    p.beta1 = b1;
    p.beta2 = b2;
    p.eps = eps;
    return p;
}

/* ---- layout, sizes, init ---------------------------------------------------------------------- */
static void test_layout(void)
{
    const uint32_t sizes[] = {5, 4, 3, 2};
    const uint8_t kinds[] = {F, T, F};
    flipnet_arch a;
    flipnet_model m, m2;
    size_t bytes = 0, sb = 0, sf = 0;
    void *w, *w2;
    uint32_t i;
    float bound = 0.4472136f; /* 1/sqrt(5) */
    float buf[24];
    int8_t w8[20];
    memset(&a, 0, sizeof(a));
    a.n_layers = 3;
    for (i = 0; i < 4; i++) a.sizes[i] = sizes[i];
    for (i = 0; i < 3; i++) a.kinds[i] = kinds[i];
    /* weights: 4 (4*5 + 4) = 96, ternary 3 rows x 2 planes x 1 byte = 6 -> 8, 4 (2*3 + 2) = 32;
     * AdamW: 8 * 24 + 8 * 8 = 256 */
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_OK);
    CHECK_EQ(bytes, 136u + 256u);
    a.counters = 1; /* + the ternary layer's 12 counters only */
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_OK);
    CHECK_EQ(bytes, 136u + 12u + 256u);
    a.counters = 0;

    w = fn_test_model(&m, 3, sizes, kinds, 42);
    CHECK_EQ(m.weight_bytes, 136u);
    CHECK_EQ(m.layers[0].offset, 0u);
    CHECK_EQ(m.layers[1].offset, 96u);
    CHECK_EQ(m.layers[2].offset, 104u);
    CHECK_EQ(m.layers[0].bpr, 0u);
    CHECK_EQ(m.layers[1].bpr, 1u);
    CHECK_EQ(m.layers[2].bpr, 0u);
    CHECK(m.counters == NULL && m.counter_bytes == 0);
    CHECK((uint8_t *)m.opt == m.weights + 136);
    CHECK_EQ(m.opt_bytes, 256u);
    for (i = 0; i < 64; i++) CHECK(m.opt[i] == 0.0f);
    /* init: uniform in [-1/sqrt(n), 1/sqrt(n)), deterministic, from the INIT stream */
    {
        const float *p = f32w(&m, 0);
        int distinct = 0;
        for (i = 0; i < 24; i++) {
            CHECK(p[i] >= -bound && p[i] < bound);
            distinct += i > 0 && p[i] != p[0];
        }
        CHECK(distinct > 20);
        /* W[0][0] from flipnet_rand(42, stream(INIT, 0, 0), 0): top 24 bits */
        {
            double u = (double)(flipnet_rand(42, fn_stream(FN_PURPOSE_INIT, 0, 0), 0) >> 40) / 16777216.0;
            CHECK(p[0] == (float)((2.0 * u - 1.0) * (1.0 / fn_sqrt(5.0))));
        }
        for (i = 0; i < 8; i++) CHECK(f32w(&m, 2)[i] >= -0.5774f && f32w(&m, 2)[i] < 0.5774f);
    }
    w2 = fn_test_model(&m2, 3, sizes, kinds, 42);
    CHECK(memcmp(m.weights, m2.weights, m.weight_bytes) == 0);
    free(w2);

    /* weight access: the float pair for FP32 layers, int8 for the others */
    CHECK_ST(flipnet_layer_get(&m, 0, w8), FLIPNET_E_ARG);
    CHECK_ST(flipnet_layer_set(&m, 2, w8), FLIPNET_E_ARG);
    CHECK_ST(flipnet_layer_get_f32(&m, 1, buf), FLIPNET_E_ARG);
    CHECK_ST(flipnet_layer_get_f32(&m, 3, buf), FLIPNET_E_ARG);
    CHECK_ST(flipnet_layer_get_f32(&m, 0, NULL), FLIPNET_E_NULL);
    CHECK_ST(flipnet_layer_get(&m, 1, w8), FLIPNET_OK);
    CHECK_ST(flipnet_layer_get_f32(&m, 0, buf), FLIPNET_OK);
    CHECK(memcmp(buf, f32w(&m, 0), 96) == 0);
    for (i = 0; i < 24; i++) buf[i] = (float)i * 0.25f - 2.0f;
    CHECK_ST(flipnet_layer_set_f32(&m, 0, buf), FLIPNET_OK);
    CHECK(f32w(&m, 0)[20] == 3.0f); /* bias 0 */
    {
        uint32_t nan = 0x7FC00000u, inf = 0x7F800000u;
        memcpy(&buf[7], &nan, 4);
        CHECK_ST(flipnet_layer_set_f32(&m, 0, buf), FLIPNET_E_ARG);
        buf[7] = 0.0f;
        memcpy(&buf[23], &inf, 4);
        CHECK_ST(flipnet_layer_set_f32(&m, 0, buf), FLIPNET_E_ARG);
        CHECK(f32w(&m, 0)[23] == 3.75f); /* unchanged by the refused calls */
    }
    CHECK_ST(flipnet_counters_get(&m, 0, w8), FLIPNET_E_ARG); /* no counters */

    /* the model check: FP32 layers have bpr 0 and shifts 0..15; the AdamW state its exact size */
    m.layers[0].shift = 15;
    CHECK_ST(flipnet_scratch_size(&m, 4, 1, &sb), FLIPNET_OK);
    m.layers[0].shift = 16;
    CHECK_ST(flipnet_scratch_size(&m, 4, 1, &sb), FLIPNET_E_ARG);
    m.layers[0].shift = 0;
    m.layers[0].bpr = 1;
    CHECK_ST(flipnet_scratch_size(&m, 4, 1, &sb), FLIPNET_E_SHAPE);
    m.layers[0].bpr = 0;
    m.opt_bytes = 252;
    CHECK_ST(flipnet_scratch_size(&m, 4, 1, &sb), FLIPNET_E_SHAPE);
    m.opt_bytes = 256;
    {
        float *opt = m.opt;
        m.opt = NULL; /* inference without the AdamW state: fine with opt_bytes 0 */
        CHECK_ST(flipnet_scratch_size(&m, 4, 0, &sf), FLIPNET_E_SHAPE);
        m.opt_bytes = 0;
        CHECK_ST(flipnet_scratch_size(&m, 4, 0, &sf), FLIPNET_OK);
        m.opt = opt;
        m.opt_bytes = 256;
    }

    /* scratch: training keeps float inputs of the FP32 layers (4*5, 4*3 floats per sample)
     * and two float error buffers; it is larger than forward's, and both grow with the batch */
    CHECK_ST(flipnet_scratch_size(&m, 4, 1, &sb), FLIPNET_OK);
    CHECK_ST(flipnet_scratch_size(&m, 4, 0, &sf), FLIPNET_OK);
    CHECK(sb > sf && sb >= 4u * 4u * (5u + 3u + 2u * 4u));
    {
        size_t sb8 = 0;
        CHECK_ST(flipnet_scratch_size(&m, 8, 1, &sb8), FLIPNET_OK);
        CHECK(sb8 > sb);
    }
    free(w);

    /* counters with FP32 layers: only the integer layer has them */
    {
        const uint32_t s2[] = {9, 7, 6, 3};
        const uint8_t k2[] = {T, F, B2};
        flipnet_model mc;
        size_t mb;
        void *area;
        memset(&a, 0, sizeof(a));
        a.n_layers = 3;
        a.counters = 1;
        for (i = 0; i < 4; i++) a.sizes[i] = s2[i];
        for (i = 0; i < 3; i++) a.kinds[i] = k2[i];
        REQUIRE(flipnet_model_size(&a, &mb) == FLIPNET_OK);
        area = malloc(mb);
        REQUIRE(area != NULL);
        CHECK_ST(flipnet_model_init(&mc, &a, area, mb, 5), FLIPNET_OK);
        /* ternary 7 x 2 x 2 = 28, FP32 4 (42 + 6) = 192, binary 3 x 1 x 1 = 3 -> 4 */
        CHECK_EQ(mc.weight_bytes, 28u + 192u + 4u);
        CHECK_EQ(mc.counter_bytes, 64u + 20u); /* 63 -> 64, 18 -> 20 */
        CHECK_EQ(fn_counter_offset(&mc, 2), 64u);
        CHECK((int8_t *)mc.counters == (int8_t *)area + 224);
        CHECK((uint8_t *)mc.opt == (uint8_t *)area + 224 + 84);
        CHECK_EQ(mc.opt_bytes, 384u);
        CHECK_EQ(mb, 224u + 84u + 384u);
        CHECK_ST(flipnet_model_init(&mc, &a, area, mb - 1u, 5), FLIPNET_E_NOMEM);
        CHECK_ST(flipnet_counters_get(&mc, 1, w8), FLIPNET_E_ARG);
        free(area);
    }
}

/* ---- forward -------------------------------------------------------------------------------- */
/* 2 -> FP32 (2) -> ternary (2) -> FP32 (2), every value a dyadic rational: exact in float. */
static void tiny_hybrid(flipnet_model *m, void **area)
{
    const uint32_t sizes[] = {2, 2, 2, 2};
    const uint8_t kinds[] = {F, T, F};
    const float w0[6] = {1.0f, 2.0f, -1.0f, 0.5f, 0.25f, -0.5f};
    const int8_t w1[4] = {1, -1, 1, 1};
    const float w2[6] = {2.0f, 0.0f, 1.0f, -4.0f, 0.0f, 1.0f};
    *area = fn_test_model(m, 3, sizes, kinds, 1);
    REQUIRE(flipnet_layer_set_f32(m, 0, w0) == FLIPNET_OK);
    REQUIRE(flipnet_layer_set(m, 1, w1) == FLIPNET_OK);
    REQUIRE(flipnet_layer_set_f32(m, 2, w2) == FLIPNET_OK);
    m->layers[0].shift = 6;
    m->layers[1].shift = 2;
}

static void test_forward(void)
{
    flipnet_model m;
    void *area, *sc;
    size_t sb;
    const int8_t x[4] = {64, -32, -64, 127};
    float lf[4];
    int32_t li[4];
    uint16_t cls[2];
    tiny_hybrid(&m, &area);
    sc = fn_test_scratch(&m, 2, 0, &sb);
    /* sample 0: x = (0.5, -0.25); z0 = (0.5 - 0.5 + 0.25, -0.5 - 0.125 - 0.5) = (0.25, -1.125);
     * a0 = round(z0 * 64) = (16, -72); z1 = (16 + 72, 16 - 72) = (88, -56), a1 = (22, -14);
     * x2 = a1 / 128; z2 = (2 * 22/128, 22/128 + 56/128 + 1) = (0.34375, 1.609375).
     * sample 1: x = (-0.5, 0.9921875); z0 = (-0.5 + 1.984375 + 0.25, 0.5 + 0.49609375 - 0.5)
     * = (1.734375, 0.49609375); a0 = (clamp(111), round(31.75) = 32); z1 = (79, 143),
     * a1 = (19, 35); z2 = (38/128, 19/128 - 140/128 + 1) = (0.296875, 0.0546875). */
    CHECK_ST(flipnet_forward_f32(&m, x, 2, lf, sc, sb), FLIPNET_OK);
    CHECK(lf[0] == 0.34375f && lf[1] == 1.609375f);
    CHECK(lf[2] == 0.296875f && lf[3] == 0.0546875f);
    CHECK_ST(flipnet_forward(&m, x, 2, li, sc, sb), FLIPNET_E_ARG); /* float logits */
    CHECK_ST(flipnet_predict(&m, x, 2, cls, sc, sb), FLIPNET_OK);
    CHECK(cls[0] == 1 && cls[1] == 0);
    CHECK_ST(flipnet_forward_f32(&m, x, 2, lf, sc, sb - 1u), FLIPNET_E_NOMEM);
    {
        int8_t bad[4] = {64, -128, 0, 0};
        CHECK_ST(flipnet_forward_f32(&m, bad, 2, lf, sc, sb), FLIPNET_E_INPUT);
    }
    /* rounding half away from zero and the clamp: z0 * 2^s = 2.5 -> 3, -2.5 -> -3, > 127 -> 127 */
    {
        const float w0[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0390625f, -0.0390625f}; /* 2.5 / 64 */
        const int8_t xz[2] = {0, 0};
        REQUIRE(flipnet_layer_set_f32(&m, 0, w0) == FLIPNET_OK);
        m.layers[1].shift = 0;
        /* a0 = (3, -3); z1 = (6, 0); z2 = (12/128, 6/128 + 1) */
        CHECK_ST(flipnet_forward_f32(&m, xz, 1, lf, sc, sb), FLIPNET_OK);
        CHECK(lf[0] == 0.09375f && lf[1] == 1.046875f);
        m.layers[0].shift = 12; /* +-2.5 * 64 = +-160 -> a0 = (127, -127), z1 = (254, 0),
                                   a1 = (127, 0) */
        CHECK_ST(flipnet_forward_f32(&m, xz, 1, lf, sc, sb), FLIPNET_OK);
        CHECK(lf[0] == 254.0f / 128.0f && lf[1] == 127.0f / 128.0f + 1.0f);
    }
    free(sc);
    free(area);

    /* FP32 then ternary last: integer logits; forward and forward_f32 agree */
    {
        const uint32_t sizes[] = {2, 2, 2};
        const uint8_t kinds[] = {F, T};
        const float w0[6] = {1.0f, 2.0f, -1.0f, 0.5f, 0.25f, -0.5f};
        const int8_t w1[4] = {1, -1, 1, 1};
        area = fn_test_model(&m, 2, sizes, kinds, 1);
        REQUIRE(flipnet_layer_set_f32(&m, 0, w0) == FLIPNET_OK);
        REQUIRE(flipnet_layer_set(&m, 1, w1) == FLIPNET_OK);
        m.layers[0].shift = 6;
        sc = fn_test_scratch(&m, 2, 0, &sb);
        CHECK_ST(flipnet_forward(&m, x, 2, li, sc, sb), FLIPNET_OK);
        CHECK(li[0] == 88 && li[1] == -56 && li[2] == 79 && li[3] == 143);
        CHECK_ST(flipnet_forward_f32(&m, x, 2, lf, sc, sb), FLIPNET_OK);
        CHECK(lf[0] == 88.0f && lf[1] == -56.0f && lf[2] == 79.0f && lf[3] == 143.0f);
        CHECK_ST(flipnet_predict(&m, x, 2, cls, sc, sb), FLIPNET_OK);
        CHECK(cls[0] == 0 && cls[1] == 1);
        free(sc);
        free(area);
    }
    /* all FP32 with ReLU between: 2 -> 2 -> 1 ... classes 2 */
    {
        const uint32_t sizes[] = {2, 2, 2};
        const uint8_t kinds[] = {F, F};
        const float w0[6] = {1.0f, 2.0f, -1.0f, 0.5f, 0.25f, -0.5f};
        const float w1[6] = {1.0f, 1.0f, -2.0f, 3.0f, 0.5f, 0.0f};
        area = fn_test_model(&m, 2, sizes, kinds, 1);
        REQUIRE(flipnet_layer_set_f32(&m, 0, w0) == FLIPNET_OK);
        REQUIRE(flipnet_layer_set_f32(&m, 1, w1) == FLIPNET_OK);
        sc = fn_test_scratch(&m, 2, 0, &sb);
        /* sample 0: z0 = (0.25, -1.125) -> relu (0.25, 0); z1 = (0.75, -0.5) */
        CHECK_ST(flipnet_forward_f32(&m, x, 2, lf, sc, sb), FLIPNET_OK);
        CHECK(lf[0] == 0.75f && lf[1] == -0.5f);
        /* sample 1: relu (1.734375, 0.49609375): z1 = (2.23046875 + 0.5, -3.46875 + 1.48828125) */
        CHECK(lf[2] == 2.73046875f && lf[3] == -1.98046875f);
        free(sc);
        free(area);
    }
}

/* Calibration of an FP32 layer feeding an integer one: s in 0..15 with mean |a| closest. */
static void test_calibrate(void)
{
    const uint32_t sizes[] = {3, 4, 2};
    const uint8_t kinds[] = {F, T};
    flipnet_model m;
    void *area, *sc;
    size_t sb;
    int8_t x[3 * 8];
    float z[4 * 8], lf[16];
    uint32_t b, j, i, s, best = 0;
    uint64_t bestd = UINT64_MAX;
    area = fn_test_model(&m, 2, sizes, kinds, 9);
    fn_test_fill_s8(x, sizeof(x), 4);
    m.rule.calib_target = 20;
    /* z of layer 0, as the core computes it (dot product of 3, then + bias) */
    for (b = 0; b < 8; b++) {
        for (j = 0; j < 4; j++) {
            const float *w = f32w(&m, 0);
            float acc = 0.0f;
            for (i = 0; i < 3; i++) acc += ((float)x[b * 3 + i] * 0.0078125f) * w[j * 3 + i];
            z[b * 4 + j] = acc + w[12 + j];
        }
    }
    for (s = 0; s < 16; s++) {
        uint64_t sum = 0, d;
        for (i = 0; i < 32; i++) {
            double v = (double)z[i] * (double)(1u << s);
            double r = v >= 0 ? (double)(int64_t)(v + 0.5) : -(double)(int64_t)(0.5 - v);
            if (r > 127) r = 127;
            if (r < -127) r = -127;
            sum += (uint64_t)(r < 0 ? -r : r);
        }
        d = sum > 20u * 32u ? sum - 20u * 32u : 20u * 32u - sum;
        if (d < bestd) {
            bestd = d;
            best = s;
        }
    }
    sc = fn_test_scratch(&m, 8, 0, &sb);
    CHECK_ST(flipnet_calibrate(&m, x, 8, sc, sb), FLIPNET_OK);
    CHECK_EQ(m.layers[0].shift, best);
    CHECK(best > 0 && best < 15);
    CHECK_ST(flipnet_forward_f32(&m, x, 8, lf, sc, sb), FLIPNET_OK);
    free(sc);
    free(area);
    /* FP32 followed by FP32: shift 0 */
    {
        const uint8_t k2[] = {F, F};
        area = fn_test_model(&m, 2, sizes, k2, 9);
        m.layers[0].shift = 5;
        sc = fn_test_scratch(&m, 8, 0, &sb);
        CHECK_ST(flipnet_calibrate(&m, x, 8, sc, sb), FLIPNET_OK);
        CHECK_EQ(m.layers[0].shift, 0);
        free(sc);
        free(area);
    }
}

/* ---- training: AdamW against numbers computed here -------------------------------------------- */
/* One FP32 layer 2 -> 2, batch 1: softmax cross-entropy gradient and two AdamW steps. */
static void test_adamw(void)
{
    const uint32_t sizes[] = {2, 2};
    const uint8_t kinds[] = {F};
    const float w0[6] = {0.5f, -0.25f, 0.125f, 0.75f, 0.1f, -0.2f};
    const int8_t x[2] = {64, -96}; /* (0.5, -0.75) */
    const uint16_t y[1] = {1};
    flipnet_model m;
    flipnet_step_params p = adamw_params(0.01f, 0.1f, 0.9f, 0.999f, 1e-8f);
    flipnet_step_stats st;
    void *area, *sc;
    size_t sb;
    double P[6], M1[6] = {0}, M2[6] = {0}, xin[2] = {0.5, -0.75};
    int t, k;
    area = fn_test_model(&m, 1, sizes, kinds, 3);
    REQUIRE(flipnet_layer_set_f32(&m, 0, w0) == FLIPNET_OK);
    for (k = 0; k < 6; k++) P[k] = w0[k];
    sc = fn_test_scratch(&m, 1, 1, &sb);
    for (t = 1; t <= 2; t++) {
        double z0 = P[0] * xin[0] + P[1] * xin[1] + P[4], z1 = P[2] * xin[0] + P[3] * xin[1] + P[5];
        double mx = z0 > z1 ? z0 : z1, e0 = fn_exp(z0 - mx), e1 = fn_exp(z1 - mx);
        double d0 = e0 / (e0 + e1), d1 = e1 / (e0 + e1) - 1.0;
        double g[6], lr = (double)p.lr, wd = (double)p.weight_decay;
        double b1 = (double)p.beta1, b2 = (double)p.beta2, eps = (double)p.eps;
        double loss = fn_log(e0 + e1) + mx - z1;
        g[0] = d0 * xin[0];
        g[1] = d0 * xin[1];
        g[2] = d1 * xin[0];
        g[3] = d1 * xin[1];
        g[4] = d0;
        g[5] = d1;
        for (k = 0; k < 6; k++) { /* AdamW, in double */
            double bc1 = 1.0 - fn_powi(b1, (uint64_t)t), bc2 = 1.0 - fn_powi(b2, (uint64_t)t);
            P[k] *= 1.0 - lr * wd;
            M1[k] = b1 * M1[k] + (1.0 - b1) * g[k];
            M2[k] = b2 * M2[k] + (1.0 - b2) * g[k] * g[k];
            P[k] -= lr / bc1 * M1[k] / (fn_sqrt(M2[k]) / fn_sqrt(bc2) + eps);
        }
        CHECK_ST(flipnet_train_step(&m, x, y, 1, &p, &st, sc, sb), FLIPNET_OK);
        CHECK_NEAR(st.loss, loss, 1e-6);
        CHECK_EQ(st.correct, z1 > z0 ? 1 : 0);
        CHECK_EQ(st.errors, 1);
        for (k = 0; k < 6; k++) {
            CHECK_NEAR(f32w(&m, 0)[k], P[k], 2e-6);
            CHECK_NEAR(m.opt[k], M1[k], 2e-6);
            CHECK_NEAR(m.opt[6 + k], M2[k], 2e-6);
        }
    }
    CHECK_EQ(m.steps, 2);
    CHECK_EQ(m.samples, 2);
    /* bad AdamW parameters: refused, nothing changes */
    {
        float before[6];
        const float bad[][5] = {{-1e-3f, 0.0f, 0.9f, 0.999f, 1e-8f}, {1e-3f, -1.0f, 0.9f, 0.999f, 1e-8f},
                                {1e-3f, 0.0f, 1.0f, 0.999f, 1e-8f}, {1e-3f, 0.0f, 0.9f, -0.1f, 1e-8f},
                                {1e-3f, 0.0f, 0.9f, 0.999f, 0.0f}};
        uint32_t nan = 0x7FC00000u;
        flipnet_step_params q;
        memcpy(before, f32w(&m, 0), sizeof(before));
        for (k = 0; k < 5; k++) {
            q = adamw_params(bad[k][0], bad[k][1], bad[k][2], bad[k][3], bad[k][4]);
            CHECK_ST(flipnet_train_step(&m, x, y, 1, &q, &st, sc, sb), FLIPNET_E_ARG);
        }
        q = adamw_params(1e-3f, 0.0f, 0.9f, 0.999f, 1e-8f);
        memcpy(&q.lr, &nan, 4);
        CHECK_ST(flipnet_train_step(&m, x, y, 1, &q, &st, sc, sb), FLIPNET_E_ARG);
        q = adamw_params(0.0f, 0.0f, 0.0f, 0.0f, 1e-8f); /* all legal limits */
        {
            float *opt = m.opt;
            m.opt = NULL;
            m.opt_bytes = 0;
            CHECK_ST(flipnet_train_step(&m, x, y, 1, &q, &st, sc, sb), FLIPNET_E_NULL);
            m.opt = opt;
            m.opt_bytes = 48;
        }
        CHECK(memcmp(before, f32w(&m, 0), sizeof(before)) == 0);
        CHECK_EQ(m.steps, 2);
        CHECK_ST(flipnet_train_step(&m, x, y, 1, &q, &st, sc, sb), FLIPNET_OK);
        CHECK(memcmp(before, f32w(&m, 0), sizeof(before)) == 0); /* lr 0: no change */
    }
    free(sc);
    free(area);
}

/* Gradients of the float path, read back through one AdamW step with a large eps:
 * at t = 1, p1 - p0 = -lr g / (|g| + eps), so g = -d (|g| + eps) / lr with |g| = |d| eps /
 * (lr - |d|). Checked against the straight-through gradients computed here. */
static double grad_from_step(double p0, double p1, double lr, double eps)
{
    double d = p1 - p0, ad = dabs(d), ag = ad * eps / (lr - ad);
    return -d * (ag + eps) / lr;
}

static void test_gradients(void)
{
    const int8_t x[4] = {64, -32, -64, 127};
    const uint16_t y[2] = {0, 1};
    const double xin[2][2] = {{0.5, -0.25}, {-0.5, 0.9921875}};
    flipnet_step_params p = adamw_params(1000.0f, 0.0f, 0.9f, 0.999f, 1000.0f);
    flipnet_step_stats st;
    flipnet_model m;
    void *area, *sc;
    size_t sb;
    int b, j, i, k;
    /* (a) all FP32 2 -> 2 -> 2 with ReLU */
    {
        const uint32_t sizes[] = {2, 2, 2};
        const uint8_t kinds[] = {F, F};
        const float w0[6] = {1.0f, 2.0f, -1.0f, 0.5f, 0.25f, -0.5f};
        const float w1[6] = {1.0f, 1.0f, -2.0f, 3.0f, 0.5f, 0.0f};
        double G0[6] = {0}, G1[6] = {0};
        area = fn_test_model(&m, 2, sizes, kinds, 1);
        REQUIRE(flipnet_layer_set_f32(&m, 0, w0) == FLIPNET_OK);
        REQUIRE(flipnet_layer_set_f32(&m, 1, w1) == FLIPNET_OK);
        for (b = 0; b < 2; b++) {
            double z0[2], h[2], z1[2], e[2], s, d1[2], d0[2], mx;
            for (j = 0; j < 2; j++) {
                z0[j] = w0[j * 2] * xin[b][0] + w0[j * 2 + 1] * xin[b][1] + w0[4 + j];
                h[j] = z0[j] > 0 ? z0[j] : 0;
            }
            for (j = 0; j < 2; j++) z1[j] = w1[j * 2] * h[0] + w1[j * 2 + 1] * h[1] + w1[4 + j];
            mx = z1[0] > z1[1] ? z1[0] : z1[1];
            e[0] = fn_exp(z1[0] - mx);
            e[1] = fn_exp(z1[1] - mx);
            s = e[0] + e[1];
            for (j = 0; j < 2; j++) d1[j] = (e[j] / s - (j == y[b])) / 2.0;
            for (j = 0; j < 2; j++) {
                for (i = 0; i < 2; i++) G1[j * 2 + i] += d1[j] * h[i];
                G1[4 + j] += d1[j];
            }
            for (i = 0; i < 2; i++) d0[i] = z0[i] > 0 ? d1[0] * w1[i] + d1[1] * w1[2 + i] : 0.0;
            for (j = 0; j < 2; j++) {
                for (i = 0; i < 2; i++) G0[j * 2 + i] += d0[j] * xin[b][i];
                G0[4 + j] += d0[j];
            }
        }
        sc = fn_test_scratch(&m, 2, 1, &sb);
        CHECK_ST(flipnet_train_step(&m, x, y, 2, &p, &st, sc, sb), FLIPNET_OK);
        for (k = 0; k < 6; k++) {
            CHECK_NEAR(grad_from_step(w0[k], f32w(&m, 0)[k], 1000.0, 1000.0), G0[k], 1e-4);
            CHECK_NEAR(grad_from_step(w1[k], f32w(&m, 1)[k], 1000.0, 1000.0), G1[k], 1e-4);
        }
        CHECK(G0[1] != 0.0 && G0[3] != 0.0);
        free(sc);
        free(area);
    }
    /* (b) the paper's hybrid shape: FP32 -> ternary -> FP32, straight-through */
    {
        flipnet_step_params q = p;
        double G0[6] = {0}, G2[6] = {0};
        const float w0[6] = {1.0f, 2.0f, -1.0f, 0.5f, 0.25f, -0.5f};
        const double w1[4] = {1, -1, 1, 1};
        const float w2[6] = {2.0f, 0.0f, 1.0f, -4.0f, 0.0f, 1.0f};
        int8_t w1after[4];
        tiny_hybrid(&m, &area);
        for (b = 0; b < 2; b++) {
            /* activations from test_forward's comments */
            const double a0[2][2] = {{16, -72}, {111, 32}}, a1[2][2] = {{22, -14}, {19, 35}};
            const double z0c[2][2] = {{0.25 * 64, -1.125 * 64}, {1.734375 * 64, 0.49609375 * 64}};
            double z2[2], e[2], s, d2[2], g1[2], d1[2], g0[2], d0[2], mx;
            for (j = 0; j < 2; j++)
                z2[j] = w2[j * 2] * a1[b][0] / 128 + w2[j * 2 + 1] * a1[b][1] / 128 + w2[4 + j];
            mx = z2[0] > z2[1] ? z2[0] : z2[1];
            e[0] = fn_exp(z2[0] - mx);
            e[1] = fn_exp(z2[1] - mx);
            s = e[0] + e[1];
            for (j = 0; j < 2; j++) d2[j] = (e[j] / s - (j == y[b])) / 2.0;
            for (j = 0; j < 2; j++) {
                for (i = 0; i < 2; i++) G2[j * 2 + i] += d2[j] * a1[b][i] / 128;
                G2[4 + j] += d2[j];
            }
            /* into the ternary layer's outputs: x 1/128 (x = a/128), x 2^-2 (a1 = z1 >> 2) */
            for (i = 0; i < 2; i++) g1[i] = d2[0] * w2[i] + d2[1] * w2[2 + i];
            for (i = 0; i < 2; i++) d1[i] = dabs(a1[b][i]) < 127 ? g1[i] / 128 / 4 : 0.0;
            /* through the ternary weights, then x 2^6 where a0 is not at the clamp */
            for (i = 0; i < 2; i++) g0[i] = d1[0] * w1[i] + d1[1] * w1[2 + i];
            for (i = 0; i < 2; i++) d0[i] = dabs(a0[b][i]) < 127 ? g0[i] * 64 : 0.0;
            (void)z0c;
            for (j = 0; j < 2; j++) {
                for (i = 0; i < 2; i++) G0[j * 2 + i] += d0[j] * xin[b][i];
                G0[4 + j] += d0[j];
            }
        }
        q.k[1] = 0; /* the ternary layer votes but changes nothing here */
        sc = fn_test_scratch(&m, 2, 1, &sb);
        CHECK_ST(flipnet_train_step(&m, x, y, 2, &q, &st, sc, sb), FLIPNET_OK);
        for (k = 0; k < 6; k++) {
            CHECK_NEAR(grad_from_step(w0[k], f32w(&m, 0)[k], 1000.0, 1000.0), G0[k], 1e-4);
            CHECK_NEAR(grad_from_step(w2[k], f32w(&m, 2)[k], 1000.0, 1000.0), G2[k], 1e-4);
        }
        CHECK(G0[0] != 0.0);
        CHECK(st.eligible[1] > 0 && st.changes[1] == 0);
        CHECK_ST(flipnet_layer_get(&m, 1, w1after), FLIPNET_OK);
        CHECK(w1after[0] == 1 && w1after[1] == -1 && w1after[2] == 1 && w1after[3] == 1);
        /* with k = all and p = 1 the ternary layer moves toward the discretized error */
        q.k[1] = 4;
        q.p_q16[1] = 65536;
        CHECK_ST(flipnet_train_step(&m, x, y, 2, &q, &st, sc, sb), FLIPNET_OK);
        CHECK(st.changes[1] > 0 && st.changes[1] == st.eligible[1]);
        free(sc);
        free(area);
    }
}

/* Integer last layer with an FP32 layer below: the integer output error and backprop, cast to
 * float at the FP32 layer (sign(G), 0 at the clamp). */
static void test_integer_top(void)
{
    const uint32_t sizes[] = {2, 2, 2};
    const uint8_t kinds[] = {F, T};
    const float w0[6] = {1.0f, 2.0f, -1.0f, 0.5f, 0.25f, -0.5f};
    const int8_t w1[4] = {1, -1, 1, 1};
    const int8_t x[2] = {64, -32};
    const uint16_t y[1] = {1};
    flipnet_step_params p = adamw_params(1000.0f, 0.0f, 0.9f, 0.999f, 1000.0f);
    flipnet_step_stats st;
    flipnet_model m;
    void *area, *sc;
    size_t sb;
    int k;
    double G0[6];
    area = fn_test_model(&m, 2, sizes, kinds, 1);
    REQUIRE(flipnet_layer_set_f32(&m, 0, w0) == FLIPNET_OK);
    REQUIRE(flipnet_layer_set(&m, 1, w1) == FLIPNET_OK);
    m.layers[0].shift = 6;
    /* logits (88, -56), label 1: error D = (-1, +1) (+1: increase); G = D W1 = (-1 + 1, 1 + 1)
     * = (0, 2), D0 = (sign 0, sign 2) = (0, 1) (a0 = (16, -72) not at the clamp); as a gradient
     * delta0 = -D0 = (0, -1): z0[1] is to increase */
    G0[0] = 0; G0[1] = 0; G0[4] = 0;
    G0[2] = -1.0 * 0.5; G0[3] = -1.0 * -0.25; G0[5] = -1.0;
    sc = fn_test_scratch(&m, 1, 1, &sb);
    CHECK_ST(flipnet_train_step(&m, x, y, 1, &p, &st, sc, sb), FLIPNET_OK);
    CHECK_EQ(st.errors, 1);
    CHECK_EQ(st.correct, 0);
    CHECK(st.loss == 0.0f);
    for (k = 0; k < 6; k++) CHECK_NEAR(grad_from_step(w0[k], f32w(&m, 0)[k], 1000.0, 1000.0), G0[k], 1e-4);
    free(sc);
    free(area);
}

/* The integer layer under an FP32 layer votes with d = -sign(delta) (delta a gradient, d the
 * rule's "increase" sign): ternary 2 -> 2 with W = 0 under FP32 2 -> 2, one sample. */
static void test_vote_direction(void)
{
    const uint32_t sizes[] = {2, 2, 2};
    const uint8_t kinds[] = {T, F};
    const int8_t zero[4] = {0, 0, 0, 0}, x[2] = {64, -32};
    const float w1[6] = {1.0f, -1.0f, -1.0f, 1.0f, 0.0f, 0.0f};
    const uint16_t y[1] = {0};
    flipnet_step_params p = adamw_params(0.0f, 0.0f, 0.9f, 0.999f, 1e-8f);
    flipnet_step_stats st;
    flipnet_model m;
    int8_t w0[4];
    void *area, *sc;
    size_t sb;
    area = fn_test_model(&m, 2, sizes, kinds, 1);
    REQUIRE(flipnet_layer_set(&m, 0, zero) == FLIPNET_OK);
    REQUIRE(flipnet_layer_set_f32(&m, 1, w1) == FLIPNET_OK);
    /* a0 = 0, logits = bias = (0, 0): delta2 = (0.5 - 1, 0.5) / 1; g = delta2 W1 = (-1, 1):
     * unit 0 should increase (d = +1), unit 1 decrease (d = -1); with k = all, p = 1 every
     * weight moves one step to d_j sign(x_i) */
    p.k[0] = 4;
    p.p_q16[0] = 65536;
    sc = fn_test_scratch(&m, 1, 1, &sb);
    CHECK_ST(flipnet_train_step(&m, x, y, 1, &p, &st, sc, sb), FLIPNET_OK);
    CHECK_ST(flipnet_layer_get(&m, 0, w0), FLIPNET_OK);
    CHECK(w0[0] == 1 && w0[1] == -1 && w0[2] == -1 && w0[3] == 1);
    CHECK_EQ(st.changes[0], 4);
    free(sc);
    free(area);
}

/* ---- math helpers ------------------------------------------------------------------------------ */
static void test_math(void)
{
    uint32_t u;
    float v, r;
    /* fn_sqrtf is correctly rounded: r^2 brackets v within half an ulp either side */
    for (u = 0; u < 200000u; u++) {
        uint32_t bits = (uint32_t)(flipnet_rand(5, 77, u) >> 32) & 0x7F7FFFFFu; /* finite, >= 0 */
        double lo, hi;
        float up, dn;
        uint32_t rb;
        memcpy(&v, &bits, 4);
        r = fn_sqrtf(v);
        memcpy(&rb, &r, 4);
        rb++;
        memcpy(&up, &rb, 4);
        rb -= 2u;
        memcpy(&dn, &rb, 4);
        hi = ((double)r + (double)up) / 2;
        lo = ((double)r + (double)dn) / 2;
        if (v == 0.0f) {
            CHECK(r == 0.0f);
            continue;
        }
        if (!(hi * hi > (double)v && lo * lo < (double)v)) {
            CHECK(0);
            fprintf(stderr, "sqrtf(%.9g) = %.9g not correctly rounded\n", (double)v, (double)r);
            break;
        }
    }
    CHECK(fn_sqrtf(4.0f) == 2.0f && fn_sqrtf(2.0f) == 1.41421354f && fn_sqrtf(0.0f) == 0.0f);
    {
        uint32_t inf = 0x7F800000u, b2;
        float fi, res;
        memcpy(&fi, &inf, 4);
        res = fn_sqrtf(fi);
        memcpy(&b2, &res, 4);
        CHECK_EQ(b2, inf);
        res = fn_sqrtf(-1.0f);
        CHECK(!(res == res));
    }
    CHECK(fn_sqrt(4.0) == 2.0 && fn_sqrt(0.0) == 0.0);
    CHECK_NEAR(fn_sqrt(2.0), 1.4142135623730951, 3e-16);
    {
        double v = 1.0, r2 = 1.0;
        int q;
        for (q = 0; q < 1060; q++) v *= 0.5; /* 2^-1060, subnormal */
        for (q = 0; q < 530; q++) r2 *= 0.5;
        CHECK(fn_sqrt(v) == r2);
        CHECK(fn_sqrt(v * 3.0) > r2 * 1.7320508 && fn_sqrt(v * 3.0) < r2 * 1.7320509);
    }
    CHECK_NEAR(fn_exp(1.0), 2.718281828459045, 1e-15);
    CHECK_NEAR(fn_exp(-1.0) / 0.36787944117144233, 1.0, 1e-15);
    CHECK_NEAR(fn_exp(-20.5) / 1.2501528663867426e-09, 1.0, 1e-15);
    CHECK_NEAR(fn_exp(700.0) / 1.0142320547350045e+304, 1.0, 1e-14);
    CHECK(fn_exp(0.0) == 1.0 && fn_exp(-800.0) == 0.0);
    CHECK(fn_exp(-740.0) > 0.0 && fn_exp(-740.0) < 1e-320);
    CHECK_NEAR(fn_log(2.0), 0.6931471805599453, 1e-16);
    CHECK_NEAR(fn_log(10.0), 2.302585092994046, 1e-15);
    CHECK_NEAR(fn_log(1e-300) / -690.7755278982137, 1.0, 1e-15);
    CHECK(fn_log(1.0) == 0.0);
    CHECK_NEAR(fn_log(fn_exp(3.25)), 3.25, 1e-15);
    CHECK(fn_powi(0.9, 0) == 1.0 && fn_powi(0.5, 3) == 0.125 && fn_powi(0.0, 5) == 0.0);
    CHECK_NEAR(fn_powi(0.999, 1000) / 0.36769542477096373, 1.0, 1e-13);
}

/* ---- file format v2 ------------------------------------------------------------------------------ */
static uint8_t *write_file(const flipnet_model *m, size_t *len)
{
    uint8_t *buf;
    size_t fs = 0, wr = 0;
    const uint8_t meta[3] = {'{', '}', '\n'};
    REQUIRE(flipnet_file_size(m, 3, &fs) == FLIPNET_OK);
    buf = malloc(fs);
    REQUIRE(buf != NULL);
    CHECK_ST(flipnet_file_write(m, meta, 3, buf, fs, &wr), FLIPNET_OK);
    CHECK_EQ(wr, fs);
    *len = fs;
    return buf;
}

static void reseal(uint8_t *buf, size_t len) { fn_wr32(buf + len - 4u, flipnet_crc32(0, buf, len - 4u)); }

static int peek_copy(const uint8_t *buf, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    flipnet_arch a;
    int st;
    REQUIRE(c != NULL);
    memcpy(c, buf, len);
    st = flipnet_file_peek(c, len, &a);
    free(c);
    return st;
}

static void test_file(void)
{
    const uint32_t sizes[] = {10, 9, 6, 3};
    const uint8_t kinds[] = {F, T, F};
    flipnet_arch a;
    flipnet_model m, r;
    void *area, *sc, *area2;
    size_t sb, len, mb, hdr, wb, cb, ob, i;
    uint8_t *buf, *b;
    int8_t x[10 * 6];
    uint16_t y[6] = {0, 1, 2, 0, 1, 2};
    flipnet_step_params p = adamw_params(1e-2f, 1e-2f, 0.9f, 0.999f, 1e-8f);
    memset(&a, 0, sizeof(a));
    a.n_layers = 3;
    a.counters = 1;
    for (i = 0; i < 4; i++) a.sizes[i] = sizes[i];
    for (i = 0; i < 3; i++) a.kinds[i] = kinds[i];
    REQUIRE(flipnet_model_size(&a, &mb) == FLIPNET_OK);
    area = malloc(mb);
    REQUIRE(area != NULL);
    REQUIRE(flipnet_model_init(&m, &a, area, mb, 21) == FLIPNET_OK);
    m.rule.counter_threshold = 2;
    m.rule.counter_shift = 1;
    m.rule.vote = FLIPNET_VOTE_WEIGHTED;
    fn_test_fill_s8(x, sizeof(x), 8);
    for (i = 0; i < sizeof(x); i++) if (x[i] == -128) x[i] = -127;
    sc = fn_test_scratch(&m, 6, 1, &sb);
    REQUIRE(flipnet_calibrate(&m, x, 6, sc, sb) == FLIPNET_OK);
    p.k[1] = 20;
    p.p_q16[1] = 65536;
    for (i = 0; i < 5; i++) REQUIRE(flipnet_train_step(&m, x, y, 6, &p, NULL, sc, sb) == FLIPNET_OK);
    m.layers[2].shift = 0;
    buf = write_file(&m, &len);
    hdr = 64u + 24u * 3u;
    wb = m.weight_bytes;
    cb = m.counter_bytes;
    ob = m.opt_bytes;
    CHECK_EQ(wb, 4u * 99u + 6u * 2u * 2u + 4u * 21u);
    CHECK_EQ(cb, 56u);
    CHECK_EQ(ob, 8u * 99u + 8u * 21u);
    CHECK_EQ(len, hdr + wb + cb + ob + 3u + 4u);
    CHECK_EQ(fn_rd32(buf + 8), 2);
    CHECK_EQ(buf[62], 3); /* counters and AdamW state */
    CHECK_EQ(buf[64], F);
    CHECK_EQ(fn_rd32(buf + 64 + 12), 0);              /* bpr of an FP32 layer */
    CHECK_EQ(fn_rd32(buf + 64 + 24 + 16), 4u * 99u);  /* offset of the ternary layer */
    CHECK_EQ(fn_rd32(buf + 64 + 48 + 20), 56u);       /* counter_offset of layer 2 */
    {
        uint32_t u;
        memcpy(&u, f32w(&m, 0) + 5, 4);
        CHECK_EQ(fn_rd32(buf + hdr + 20), u); /* W[0][5] as its float32 bit pattern, LE */
        memcpy(&u, m.opt + 99 + 3, 4);
        CHECK_EQ(fn_rd32(buf + hdr + wb + cb + 4u * (99u + 3u)), u);
    }
    CHECK_ST(flipnet_file_peek(buf, len, &a), FLIPNET_OK);
    CHECK(a.kinds[0] == F && a.kinds[1] == T && a.kinds[2] == F && a.counters == 1);
    REQUIRE(flipnet_model_size(&a, &mb) == FLIPNET_OK);
    area2 = malloc(mb);
    REQUIRE(area2 != NULL);
    CHECK_ST(flipnet_file_read(&r, buf, len, area2, mb - 1u), FLIPNET_E_NOMEM);
    CHECK_ST(flipnet_file_read(&r, buf, len, area2, mb), FLIPNET_OK);
    CHECK(memcmp(r.weights, m.weights, wb) == 0);
    CHECK(memcmp(r.counters, m.counters, cb) == 0);
    CHECK(r.opt_bytes == ob && memcmp(r.opt, m.opt, ob) == 0);
    CHECK(r.steps == 5 && r.samples == 30 && r.layers[0].shift == m.layers[0].shift);
    {
        const uint8_t *mp;
        size_t ml;
        CHECK_ST(flipnet_file_meta(buf, len, &mp, &ml), FLIPNET_OK);
        CHECK(ml == 3 && mp[0] == '{');
    }
    /* the read model trains on exactly like the original */
    REQUIRE(flipnet_train_step(&m, x, y, 6, &p, NULL, sc, sb) == FLIPNET_OK);
    REQUIRE(flipnet_train_step(&r, x, y, 6, &p, NULL, sc, sb) == FLIPNET_OK);
    CHECK(memcmp(r.weights, m.weights, wb + cb + ob) == 0);

    /* corruptions, each resealed so that the check under test fires */
    b = malloc(len);
    REQUIRE(b != NULL);
#define CASE(edit, want)                                                                           \
    do {                                                                                           \
        memcpy(b, buf, len);                                                                       \
        edit;                                                                                      \
        reseal(b, len);                                                                            \
        CHECK_ST(peek_copy(b, len), want);                                                         \
    } while (0)
    CASE((void)0, FLIPNET_OK);
    CASE(fn_wr32(b + 8, 1), FLIPNET_E_FMT_VALUE);               /* v1 has neither kind 3 nor flag bit 1 */
    CASE((fn_wr32(b + 8, 1), b[62] = 1), FLIPNET_E_FMT_VALUE);  /* v1: kind 3 */
    CASE(fn_wr32(b + 8, 3), FLIPNET_E_FMT_VERSION);
    CASE(b[62] |= 8, FLIPNET_E_FMT_VALUE);                      /* unknown flag bit 3 */
    CASE(b[64 + 1] = 16, FLIPNET_E_FMT_VALUE);                  /* FP32 shift 0..15 */
    CASE(b[64 + 1] = 15, FLIPNET_OK);
    CASE(fn_wr32(b + 64 + 12, 2), FLIPNET_E_FMT_SIZE);          /* FP32 bpr must be 0 */
    CASE(b[64 + 24] = F, FLIPNET_E_FMT_SIZE);                   /* ternary layer as FP32: bpr 2 */
    CASE(b[64] = T, FLIPNET_E_FMT_SIZE);                        /* FP32 layer as ternary: bpr 0 */
    CASE(fn_wr32(b + hdr + 4, 0x7FC00000u), FLIPNET_E_FMT_VALUE);       /* NaN weight */
    CASE(fn_wr32(b + hdr + 4u * 98u, 0xFF800000u), FLIPNET_E_FMT_VALUE); /* -Inf bias */
    CASE(fn_wr32(b + hdr + wb - 4u, 0x7F800001u), FLIPNET_E_FMT_VALUE);  /* NaN, last layer */
    CASE(fn_wr32(b + hdr + 4, 0x80000000u), FLIPNET_OK);                 /* -0 is a weight */
    CASE(fn_wr32(b + hdr + wb + cb + 8, 0x7F800000u), FLIPNET_E_FMT_VALUE); /* Inf first moment */
    CASE(fn_wr32(b + hdr + wb + cb + 4u * 99u, 0xBF800000u), FLIPNET_E_FMT_VALUE); /* v = -1 */
    CASE(fn_wr32(b + hdr + wb + cb + 4u * 99u, 0x80000000u), FLIPNET_OK);          /* v = -0 */
    CASE(fn_wr32(b + hdr + wb + cb + 4u * 99u, 0xBF800000u), FLIPNET_E_FMT_VALUE);
    CASE(fn_wr32(b + hdr + wb + cb + 4u * (2u * 99u + 21u), 0xC0000000u),
         FLIPNET_E_FMT_VALUE); /* second moment of layer 2 */
    CASE(b[hdr + wb + 3] = 0x80u, FLIPNET_E_FMT_VALUE);         /* counter -128 */
#undef CASE
    /* every truncation: TRUNCATED; every single flipped byte: rejected */
    for (i = 0; i < len; i++) {
        uint8_t *c = malloc(i ? i : 1);
        REQUIRE(c != NULL);
        memcpy(c, buf, i);
        CHECK_ST(flipnet_file_peek(c, i, NULL), FLIPNET_E_FMT_TRUNCATED);
        free(c);
    }
    for (i = 0; i < len; i++) {
        memcpy(b, buf, len);
        b[i] ^= 0x10u;
        CHECK(flipnet_file_peek(b, len, NULL) != FLIPNET_OK);
    }
    /* without the AdamW block (flag bit 1 clear): reads with zero moments */
    {
        size_t len2 = len - ob;
        uint8_t *c = malloc(len2);
        REQUIRE(c != NULL);
        memcpy(c, buf, hdr + wb + cb);
        memcpy(c + hdr + wb + cb, buf + hdr + wb + cb + ob, 3u + 4u);
        c[62] = 1;
        reseal(c, len2);
        CHECK_ST(flipnet_file_peek(c, len2, NULL), FLIPNET_OK);
        memset(area2, 0x55, mb);
        CHECK_ST(flipnet_file_read(&r, c, len2, area2, mb), FLIPNET_OK);
        CHECK(r.opt != NULL && r.opt_bytes == ob);
        for (i = 0; i < ob / 4u; i++) CHECK(r.opt[i] == 0.0f);
        c[62] = 3; /* claims the block it does not have */
        reseal(c, len2);
        CHECK_ST(flipnet_file_peek(c, len2, NULL), FLIPNET_E_FMT_TRUNCATED);
        free(c);
    }
    /* the writer refuses what the reader would */
    {
        uint32_t nan = 0x7FC00000u;
        float keep = f32w(&m, 2)[3], keepv = m.opt[99 + 7];
        size_t fs = 0;
        uint8_t *c;
        REQUIRE(flipnet_file_size(&m, 0, &fs) == FLIPNET_OK);
        c = malloc(fs);
        REQUIRE(c != NULL);
        memcpy(&f32w(&m, 2)[3], &nan, 4);
        CHECK_ST(flipnet_file_write(&m, NULL, 0, c, fs, NULL), FLIPNET_E_ARG);
        f32w(&m, 2)[3] = keep;
        m.opt[99 + 7] = -1.0f;
        CHECK_ST(flipnet_file_write(&m, NULL, 0, c, fs, NULL), FLIPNET_E_ARG);
        m.opt[99 + 7] = keepv;
        CHECK_ST(flipnet_file_write(&m, NULL, 0, c, fs, NULL), FLIPNET_OK);
        free(c);
    }
    free(b);
    free(buf);
    free(sc);
    free(area);
    free(area2);
}

/* ---- the same float results on every target ------------------------------------------------- */
/* A fixed hybrid run (FP32, ternary with counters, FP32; calibration, 6 steps, batch 12 so the
 * 4-sample kernels and their remainders both run, n not a multiple of 8): the CRC-32 of the
 * weight area (weights, counters, AdamW state) is the same on x86-64 (SSE2 or AVX2),
 * aarch64 and Cortex-M4 (-ffp-contract=off, fixed summation order, correctly rounded sqrt).
 * The value comes from the core (reference.py has no FP32 layers): tests/c/golden.py
 * recomputes it through the Python bindings. */
#define FN_HYBRID_RUN_CRC 2461487076u

static void hybrid_run_params(flipnet_step_params *p, uint32_t step)
{
    (void)step;
    *p = adamw_params(3e-3f, 1e-2f, 0.9f, 0.999f, 1e-8f);
    p->k[1] = 40;
    p->p_q16[1] = 50000;
}

static uint32_t hybrid_run(void)
{
    flipnet_arch a;
    flipnet_rule r;
    memset(&a, 0, sizeof(a));
    a.n_layers = 3;
    a.counters = 1;
    a.sizes[0] = 27;
    a.sizes[1] = 21;
    a.sizes[2] = 13;
    a.sizes[3] = 5;
    a.kinds[0] = F;
    a.kinds[1] = T;
    a.kinds[2] = F;
    memset(&r, 0, sizeof(r));
    r.vote = FLIPNET_VOTE_WEIGHTED;
    r.filter = FLIPNET_FILTER_NET;
    r.backprop = FLIPNET_BP_SIGN;
    r.calib_target = 40;
    r.counter_shift = 1;
    r.counter_threshold = 2;
    return fn_test_run_crc(&a, 77, &r, 12, 5, 3, 2, 5, 6, hybrid_run_params);
}

static void test_same_everywhere(void)
{
    uint32_t crc = hybrid_run();
    if (crc != FN_HYBRID_RUN_CRC) fprintf(stderr, "hybrid run CRC %uu\n", (unsigned)crc);
    CHECK_EQ(crc, FN_HYBRID_RUN_CRC);
}

/* ---- models without FP32 layers are untouched ------------------------------------------------- */
/* CRC-32 of the weight area after 6 steps of a fixed integer model (counters off and on): the
 * same constants are checked by test_nofloat.c against the FLIPNET_NO_FLOAT core. */
#include "fn_integer_run.h"

static void test_integer_unchanged(void)
{
    uint8_t buf[4];
    size_t fs = 0;
    flipnet_model m;
    void *area = fn_test_model(&m, 3, (const uint32_t[]){16, 8, 8, 4},
                               (const uint8_t[]){T, B2, T}, 3);
    CHECK(m.opt == NULL && m.opt_bytes == 0);
    REQUIRE(flipnet_file_size(&m, 0, &fs) == FLIPNET_OK);
    {
        uint8_t *c = malloc(fs);
        REQUIRE(c != NULL);
        CHECK_ST(flipnet_file_write(&m, NULL, 0, c, fs, NULL), FLIPNET_OK);
        CHECK_EQ(fn_rd32(c + 8), 1); /* written as v1 */
        CHECK_EQ(c[62], 0);
        free(c);
    }
    free(area);
    (void)buf;
    CHECK_EQ(fn_integer_run(0), FN_INTEGER_RUN_CRC0);
    CHECK_EQ(fn_integer_run(1), FN_INTEGER_RUN_CRC1);
    CHECK_EQ(fn_integer_run(2), FN_INTEGER_RUN_CRC2);
}

int main(void)
{
    test_layout();
    test_forward();
    test_calibrate();
    test_adamw();
    test_gradients();
    test_integer_top();
    test_vote_direction();
    test_math();
    test_file();
    test_same_everywhere();
    test_integer_unchanged();
    return fn_test_done("test_hybrid");
}
