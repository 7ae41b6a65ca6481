/* Every kernel set this build and CPU have (flipnet_kernels_available) against the portable C:
 * forward logits, calibrated shifts, threshold masks and whole training runs (weights, counters)
 * must be bit-identical, at sizes around every tile and vector width (tails of 1..63 inputs, odd
 * row counts, batches that are not multiples of the tiles). Also the selection API. */
#include "fn_internal.h"
#include "fn_test.h"

#ifdef FN_TEST_SMALL_MEMORY
static const uint32_t g_ns[] = {1, 7, 31, 32, 33, 64, 65, 100};
static const uint32_t g_bs[] = {1, 3, 8, 9};
#else
static const uint32_t g_ns[] = {1, 7, 31, 32, 33, 63, 64, 65, 100, 129, 784};
static const uint32_t g_bs[] = {1, 3, 8, 9, 17, 64};
#endif
#define N_NS (sizeof(g_ns) / sizeof(g_ns[0]))
#define N_BS (sizeof(g_bs) / sizeof(g_bs[0]))

static void use(const char *name) { REQUIRE(flipnet_use_kernels(name) == FLIPNET_OK); }

/* Logits (batch, 3) of an n-17-3 model (hidden activations clamp: shift 0 on layer 0 for half
 * the runs) under the current kernels; also the calibrated shifts. */
static void run_forward(uint32_t n, uint32_t batch, uint8_t kind, int clamp, int32_t *z,
                        uint8_t *shifts)
{
    flipnet_model m;
    uint32_t sizes[3] = {n, 17, 3};
    uint8_t kinds[2];
    size_t sb = 0, i;
    int8_t *x = malloc((size_t)batch * n);
    void *area, *sc;
    kinds[0] = kind;
    kinds[1] = kind;
    REQUIRE(x != NULL);
    area = fn_test_model(&m, 2, sizes, kinds, 7u + n);
    sc = fn_test_scratch(&m, batch, 0, &sb);
    fn_test_fill_s8(x, (size_t)batch * n, 31u * n + batch);
    for (i = 0; i < (size_t)batch * n; i++) if (x[i] == -128) x[i] = 127;
    REQUIRE(flipnet_calibrate(&m, x, batch, sc, sb) == FLIPNET_OK);
    shifts[0] = m.layers[0].shift;
    shifts[1] = m.layers[1].shift;
    if (clamp) m.layers[0].shift = 0;
    REQUIRE(flipnet_forward(&m, x, batch, z, sc, sb) == FLIPNET_OK);
    free(sc);
    free(area);
    free(x);
}

static void test_forward(const char *name)
{
    uint32_t a, b, kind, clamp;
    int32_t *zr = malloc(sizeof(int32_t) * 64 * 3), *zk = malloc(sizeof(int32_t) * 64 * 3);
    uint8_t sr[2], sk[2];
    REQUIRE(zr != NULL && zk != NULL);
    for (a = 0; a < N_NS; a++) {
        for (b = 0; b < N_BS; b++) {
            for (kind = FLIPNET_TERNARY; kind <= FLIPNET_BINARY; kind++) {
                for (clamp = 0; clamp < 2; clamp++) {
                    uint32_t i, bad = 0;
                    use("portable");
                    run_forward(g_ns[a], g_bs[b], (uint8_t)kind, (int)clamp, zr, sr);
                    use(name);
                    run_forward(g_ns[a], g_bs[b], (uint8_t)kind, (int)clamp, zk, sk);
                    for (i = 0; i < g_bs[b] * 3u; i++) bad += zr[i] != zk[i];
                    if (bad || sr[0] != sk[0] || sr[1] != sk[1])
                        fprintf(stderr, "%s: forward n=%u batch=%u kind=%u clamp=%u differs\n",
                                name, (unsigned)g_ns[a], (unsigned)g_bs[b], (unsigned)kind,
                                (unsigned)clamp);
                    CHECK_EQ(bad, 0);
                    CHECK_EQ(sr[0], sk[0]);
                    CHECK_EQ(sr[1], sk[1]);
                }
            }
        }
    }
    free(zr);
    free(zk);
}

static void test_masks(const char *name)
{
    static const int32_t taus[] = {1, 2, 5, 32, 100, 127};
    int8_t h[300];
    uint32_t ur[10], dr[10], uk[10], dk[10], n, t, w, i;
    const fn_kernels *k;
    use(name);
    k = fn_kern();
    fn_test_fill_s8(h, sizeof(h), 99);
    h[0] = 127;
    h[1] = -127;
    h[2] = 0;
    for (n = 1; n <= 300; n += (n < 70 ? 1u : 23u)) {
        for (t = 0; t < sizeof(taus) / sizeof(taus[0]); t++) {
            uint32_t words = (n + 31u) / 32u, bad = 0;
            memset(uk, 0xA5, sizeof(uk));
            memset(dk, 0xA5, sizeof(dk));
            /* the reference: the definition, bit by bit (so the Cortex-M build's only set, whose
             * masks are SSUB8/SEL code, is checked too) */
            memset(ur, 0, sizeof(ur));
            memset(dr, 0, sizeof(dr));
            for (i = 0; i < n; i++) {
                ur[i / 32u] |= (uint32_t)(h[i] >= taus[t]) << (i % 32u);
                dr[i / 32u] |= (uint32_t)(h[i] <= -taus[t]) << (i % 32u);
            }
            k->thresh_masks(h, n, taus[t], uk, dk);
            for (w = 0; w < words; w++) bad += (ur[w] != uk[w]) + (dr[w] != dk[w]);
            CHECK_EQ(bad, 0);
            /* the words past ceil(n / 32) are not written */
            if (words < 10u) CHECK_EQ(uk[words], 0xA5A5A5A5u);
        }
    }
}

/* Training runs: the CRC of the weight area after 12 steps must not depend on the kernels. */
typedef struct {
    uint32_t n, h, batch;
    uint8_t kind, vote, filter, counters, bits, round;
} train_cfg;

static uint32_t g_k_all[3];
static void params_all(flipnet_step_params *p, uint32_t step)
{
    uint32_t l;
    for (l = 0; l < 3; l++) {
        p->k[l] = g_k_all[l];
        p->p_q16[l] = step < 6u ? 65536u : 20000u;
    }
}

static uint32_t train_crc(const train_cfg *c)
{
    flipnet_arch a;
    flipnet_rule r;
    flipnet_model tmp;
    memset(&a, 0, sizeof(a));
    a.n_layers = 3;
    a.sizes[0] = c->n;
    a.sizes[1] = c->h;
    a.sizes[2] = c->h + 3u;
    a.sizes[3] = 10;
    a.kinds[0] = a.kinds[1] = a.kinds[2] = c->kind;
    a.counters = c->counters;
    a.counter_bits[0] = a.counter_bits[1] = a.counter_bits[2] = c->bits;
    /* the default rule of a model, then the options under test */
    {
        size_t mb = 0;
        void *area;
        REQUIRE(flipnet_model_size(&a, &mb) == FLIPNET_OK);
        area = malloc(mb);
        REQUIRE(area != NULL);
        REQUIRE(flipnet_model_init(&tmp, &a, area, mb, 1) == FLIPNET_OK);
        r = tmp.rule;
        free(area);
    }
    r.vote = c->vote;
    r.filter = c->filter;
    r.margin = 64;
    if (c->counters) {
        r.counter_shift = 3;
        r.counter_threshold = 6;
        r.counter_round = c->round;
    }
    g_k_all[0] = a.sizes[0] * a.sizes[1] / 2u; /* half of each layer's weights */
    g_k_all[1] = a.sizes[1] * a.sizes[2] / 2u;
    g_k_all[2] = a.sizes[2] * a.sizes[3] / 2u;
    return fn_test_run_crc(&a, 5, &r, c->batch, 11, 12, 13, 10, 12, params_all);
}

static void test_training(const char *name)
{
    static const train_cfg cfgs[] = {
        {100, 33, 16, FLIPNET_TERNARY, FLIPNET_VOTE_WEIGHTED, FLIPNET_FILTER_NET, 1, 8,
         FLIPNET_ROUND_NEAREST},
        {65, 31, 9, FLIPNET_TERNARY, FLIPNET_VOTE_WEIGHTED, FLIPNET_FILTER_NET, 1, 4,
         FLIPNET_ROUND_STOCHASTIC},
        {33, 64, 8, FLIPNET_BINARY, FLIPNET_VOTE_SIGN, FLIPNET_FILTER_NET, 1, 2,
         FLIPNET_ROUND_NEAREST},
        {70, 17, 7, FLIPNET_BINARY, FLIPNET_VOTE_WEIGHTED, FLIPNET_FILTER_HURT, 1, 8,
         FLIPNET_ROUND_STOCHASTIC},
        {100, 40, 12, FLIPNET_TERNARY, FLIPNET_VOTE_SIGN, FLIPNET_FILTER_HURT, 0, 8,
         FLIPNET_ROUND_NEAREST},
        {31, 9, 5, FLIPNET_BINARY, FLIPNET_VOTE_WEIGHTED, FLIPNET_FILTER_NET, 0, 8,
         FLIPNET_ROUND_NEAREST},
    };
    uint32_t i;
    for (i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
        uint32_t want, got;
        use("portable");
        want = train_crc(&cfgs[i]);
        use(name);
        got = train_crc(&cfgs[i]);
        if (want != got) fprintf(stderr, "%s: training config %u differs\n", name, (unsigned)i);
        CHECK_EQ(got, want);
    }
}

static void test_selection(void)
{
    const char *first = flipnet_kernels_available(0);
    uint32_t i, found_portable = 0;
    REQUIRE(first != NULL);
    CHECK_ST(flipnet_use_kernels("auto"), FLIPNET_OK);
    CHECK(strcmp(flipnet_kernels(), first) == 0); /* auto: the fastest available */
    CHECK_ST(flipnet_use_kernels("no-such-kernels"), FLIPNET_E_ARG);
    CHECK(strcmp(flipnet_kernels(), first) == 0); /* a refused choice changes nothing */
    CHECK_ST(flipnet_use_kernels(NULL), FLIPNET_E_NULL);
    for (i = 0; flipnet_kernels_available(i) != NULL; i++) {
        /* the plain C; a Cortex-M DSP build's only set ("dsp") is checked against the host's
         * by the CRC pins of test_train and the device tests, not here */
        found_portable += strcmp(flipnet_kernels_available(i), "portable") == 0 ||
                          strcmp(flipnet_kernels_available(i), "dsp") == 0;
        CHECK_ST(flipnet_use_kernels(flipnet_kernels_available(i)), FLIPNET_OK);
        CHECK(strcmp(flipnet_kernels(), flipnet_kernels_available(i)) == 0);
    }
    CHECK_EQ(found_portable, 1); /* every build has the plain C */
    CHECK(i >= 1u);
}

int main(void)
{
    uint32_t i;
    test_selection();
    for (i = 0; flipnet_kernels_available(i) != NULL; i++) {
        const char *name = flipnet_kernels_available(i);
        printf("kernels %s\n", name);
        test_masks(name);
        if (strcmp(name, "portable") == 0 || strcmp(name, "dsp") == 0) continue; /* no other set */
        test_forward(name);
        test_training(name);
    }
    use("auto");
    return fn_test_done("test_kernels");
}
