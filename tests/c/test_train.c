/* train_step: against a naive full-matrix implementation of docs/rule.md, golden values from
 * python/flipnet/reference.py, invariants, determinism and statuses. */
#include "fn_internal.h"
#include "fn_test.h"

/* ---- naive rule: whole (m, n) vote in memory, written straight from docs/rule.md ---------- */
typedef struct {
    uint32_t correct, errors, changes[FLIPNET_MAX_LAYERS], eligible[FLIPNET_MAX_LAYERS];
    uint32_t clipped[FLIPNET_MAX_LAYERS];
} naive_stats;

static int sgn(int64_t v) { return (v > 0) - (v < 0); }

static int64_t fdiv(int64_t v, uint32_t s)
{
    int64_t d = (int64_t)1 << s, q = v / d;
    if (q * d != v && v < 0) q -= 1;
    return q;
}

static void naive_step(flipnet_model *m, const int8_t *x, const uint16_t *y, uint32_t B,
                       const flipnet_step_params *pr, naive_stats *st)
{
    uint32_t L = m->n_layers, l, b, i, j, C = m->layers[L - 1].m;
    int8_t *W[FLIPNET_MAX_LAYERS], *X[FLIPNET_MAX_LAYERS + 1];
    int64_t *Z = NULL;
    int *D, *Dp;
    memset(st, 0, sizeof(*st));
    X[0] = (int8_t *)x;
    for (l = 0; l < L; l++) {
        const flipnet_layer *Ly = &m->layers[l];
        W[l] = malloc((size_t)Ly->n * Ly->m);
        REQUIRE(W[l] != NULL);
        REQUIRE(flipnet_layer_get(m, l, W[l]) == FLIPNET_OK);
        free(Z);
        Z = malloc(sizeof(int64_t) * B * Ly->m);
        X[l + 1] = malloc((size_t)B * Ly->m);
        REQUIRE(Z && X[l + 1]);
        for (b = 0; b < B; b++) {
            for (j = 0; j < Ly->m; j++) {
                int64_t acc = 0;
                for (i = 0; i < Ly->n; i++) acc += (int64_t)X[l][b * Ly->n + i] * W[l][j * Ly->n + i];
                Z[b * Ly->m + j] = acc;
                if (l + 1 < L) {
                    int64_t a = fdiv(acc, Ly->shift);
                    if (a > 127 || a < -127) st->clipped[l]++;
                    X[l + 1][b * Ly->m + j] = (int8_t)(a > 127 ? 127 : a < -127 ? -127 : a);
                }
            }
        }
    }
    /* output error */
    D = calloc((size_t)B * C, sizeof(int));
    REQUIRE(D != NULL);
    for (b = 0; b < B; b++) {
        uint32_t pred = 0, w = y[b] == 0 ? 1 : 0;
        for (j = 0; j < C; j++) {
            if (Z[b * C + j] > Z[b * C + pred]) pred = j;
            if (j != y[b] && Z[b * C + j] > Z[b * C + w]) w = j;
        }
        st->correct += pred == y[b];
        if (Z[b * C + y[b]] <= Z[b * C + w] + m->rule.margin) {
            st->errors++;
            D[b * C + y[b]] = 1;
            D[b * C + w] = -1;
        }
    }
    for (l = L; l-- > 0;) {
        const flipnet_layer *Ly = &m->layers[l];
        uint32_t n = Ly->n, mm = Ly->m, key, K = 0, r = 0, t = 1, hist[256];
        uint64_t elig = 0, pbig = (uint64_t)pr->p_q16[l] << 16;
        int64_t *E = malloc(sizeof(int64_t) * n * mm);
        REQUIRE(E != NULL);
        Dp = NULL;
        if (l > 0) { /* section 3 */
            Dp = calloc((size_t)B * n, sizeof(int));
            REQUIRE(Dp != NULL);
            for (b = 0; b < B; b++) {
                for (i = 0; i < n; i++) {
                    int64_t g = 0;
                    int8_t a = X[l][b * n + i];
                    for (j = 0; j < mm; j++) g += D[b * mm + j] * W[l][j * n + i];
                    Dp[b * n + i] = (a < 127 && a > -127) ? sgn(g) : 0;
                }
            }
        }
        memset(hist, 0, sizeof(hist));
        for (j = 0; j < mm; j++) { /* section 4 */
            for (i = 0; i < n; i++) {
                int64_t P = 0, N = 0, e;
                int w = W[l][j * n + i], d;
                for (b = 0; b < B; b++) {
                    int xv = X[l][b * n + i];
                    int64_t v = (int64_t)D[b * mm + j] * (m->rule.vote == FLIPNET_VOTE_SIGN ? sgn(xv) : xv);
                    if (v > 0) P += v; else N += v;
                }
                if (m->rule.filter == FLIPNET_FILTER_NET) e = P + N;
                else e = w == 1 ? N : w == -1 ? P : P + N;
                d = sgn(e);
                if (!(d != 0 && (Ly->kind == FLIPNET_TERNARY ? w != d : w == -d))) e = 0;
                E[j * n + i] = e;
                if (e != 0) {
                    hist[fn_key((uint32_t)(e < 0 ? -e : e))]++;
                    elig++;
                }
            }
        }
        st->eligible[l] = (uint32_t)elig;
        if (pr->k[l] != 0 && elig != 0) { /* section 5 */
            uint64_t cum = 0;
            if (elig > pr->k[l]) {
                for (key = 255; key >= 1; key--) {
                    if (cum + hist[key] >= pr->k[l]) {
                        K = key;
                        r = (uint32_t)(pr->k[l] - cum);
                        t = hist[key];
                        break;
                    }
                    cum += hist[key];
                }
            }
            for (j = 0; j < mm; j++) {
                for (i = 0; i < n; i++) {
                    int64_t e = E[j * n + i];
                    uint64_t u, thr;
                    if (e == 0) continue;
                    key = fn_key((uint32_t)(e < 0 ? -e : e));
                    if (key < K) continue;
                    u = flipnet_rand(m->seed, fn_stream(FN_PURPOSE_FLIP, l, m->steps), (uint64_t)j * n + i) >> 32;
                    thr = key > K ? pbig : pbig * r / t;
                    if (u < thr) {
                        int8_t *wp = &W[l][j * n + i];
                        *wp = Ly->kind == FLIPNET_TERNARY ? (int8_t)(*wp + sgn(e)) : (int8_t)-*wp;
                        st->changes[l]++;
                    }
                }
            }
        }
        free(E);
        free(D);
        D = Dp;
    }
    free(D);
    for (l = 0; l < L; l++) {
        REQUIRE(flipnet_layer_set(m, l, W[l]) == FLIPNET_OK);
        free(W[l]);
        free(X[l + 1]);
    }
    free(Z);
    m->steps++;
    m->samples += B;
}

static void fill_labels(uint16_t *y, uint32_t B, uint64_t seed, uint32_t C)
{
    uint32_t b;
    for (b = 0; b < B; b++) y[b] = (uint16_t)((flipnet_rand(seed, 0xEFull << 56, b) >> 32) % C);
}

static uint32_t weights_crc(const flipnet_model *m)
{
    uint32_t l, crc = 0;
    for (l = 0; l < m->n_layers; l++) {
        size_t c = (size_t)m->layers[l].n * m->layers[l].m;
        int8_t *w = malloc(c);
        REQUIRE(w != NULL);
        REQUIRE(flipnet_layer_get(m, l, w) == FLIPNET_OK);
        crc = flipnet_crc32(crc, (const uint8_t *)w, c);
        free(w);
    }
    return crc;
}

/* ---- the core against the naive rule, many configurations ------------------------------- */
static void test_vs_naive(void)
{
    static const uint32_t archs[][5] = {{4, 70, 33, 17, 5}, {3, 33, 31, 3, 0}, {2, 40, 2, 0, 0},
                                        {2, 1, 5, 0, 0},     {3, 64, 32, 10, 0}};
    static const uint8_t kindsets[][4] = {{1, 2, 1}, {2, 1}, {1}, {2}, {1, 1}};
    uint32_t a, cfg, step, l;
    int all_ok = 1;
    for (a = 0; a < 5; a++) {
        uint32_t L = archs[a][0] - 1, sizes[FLIPNET_MAX_LAYERS + 1];
        for (l = 0; l <= L; l++) sizes[l] = archs[a][1 + l];
        for (cfg = 0; cfg < 8; cfg++) {
            flipnet_model mc, mn;
            void *ac = fn_test_model(&mc, L, sizes, kindsets[a], 100 + cfg);
            void *an = fn_test_model(&mn, L, sizes, kindsets[a], 100 + cfg);
            uint32_t Bmax = 33;
            size_t sb = 0;
            void *scratch = fn_test_scratch(&mc, Bmax, 1, &sb);
            int8_t *x = malloc((size_t)Bmax * sizes[0]);
            uint16_t y[33];
            REQUIRE(x != NULL);
            mc.rule.vote = mn.rule.vote = (uint8_t)(cfg & 1u);
            mc.rule.filter = mn.rule.filter = (uint8_t)((cfg >> 1) & 1u);
            mc.rule.margin = mn.rule.margin = (cfg & 4u) ? 50 : 0;
            fn_test_fill_s8(x, (size_t)Bmax * sizes[0], cfg);
            REQUIRE(flipnet_calibrate(&mc, x, Bmax, scratch, sb) == FLIPNET_OK);
            for (l = 0; l < L; l++) mn.layers[l].shift = mc.layers[l].shift;
            for (step = 0; step < 6; step++) {
                flipnet_step_params pr;
                flipnet_step_stats sc;
                naive_stats sn;
                uint32_t B = 1 + (step * 7 + cfg) % Bmax;
                memset(&pr, 0, sizeof(pr));
                for (l = 0; l < L; l++) {
                    uint32_t nw = sizes[l] * sizes[l + 1];
                    uint32_t ks[6] = {0, 1, 3, nw / 20, nw / 3, nw};
                    uint32_t ps[4] = {65536, 30000, 1, 0};
                    pr.k[l] = ks[(step + l + cfg) % 6];
                    pr.p_q16[l] = ps[(step + 2 * l) % 4];
                }
                fn_test_fill_s8(x, (size_t)B * sizes[0], 1000 * cfg + step);
                if (step & 1) memset(x, 0, (size_t)B * sizes[0] / 3); /* zeros: sign 0 */
                fill_labels(y, B, step, sizes[L]);
                REQUIRE(flipnet_train_step(&mc, x, y, B, &pr, &sc, scratch, sb) == FLIPNET_OK);
                naive_step(&mn, x, y, B, &pr, &sn);
                if (sc.correct != sn.correct || sc.errors != sn.errors) all_ok = 0;
                for (l = 0; l < L; l++) {
                    if (sc.changes[l] != sn.changes[l] || sc.eligible[l] != sn.eligible[l] ||
                        sc.clipped[l] != sn.clipped[l])
                        all_ok = 0;
                }
                if (memcmp(ac, an, mc.weight_bytes) != 0) all_ok = 0;
                if (mc.steps != mn.steps || mc.samples != mn.samples) all_ok = 0;
            }
            free(x);
            free(scratch);
            free(ac);
            free(an);
        }
    }
    CHECK(all_ok);
}

/* ---- large batches: the int32 (wide) vote path, batch > 258 with the weighted vote ---- */
static void test_wide_batch(void)
{
    const uint32_t sizes[] = {40, 12, 3};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY};
    uint32_t cfg, l, B = 300;
    int all_ok = 1;
    for (cfg = 0; cfg < 4; cfg++) {
        flipnet_model mc, mn;
        void *ac = fn_test_model(&mc, 2, sizes, kinds, 31 + cfg);
        void *an = fn_test_model(&mn, 2, sizes, kinds, 31 + cfg);
        size_t sb = 0;
        void *scratch = fn_test_scratch(&mc, B, 1, &sb);
        int8_t *x = malloc((size_t)B * 40u);
        uint16_t *y = malloc(sizeof(uint16_t) * B);
        flipnet_step_params pr;
        flipnet_step_stats sc;
        naive_stats sn;
        REQUIRE(x && y);
        mc.rule.vote = mn.rule.vote = FLIPNET_VOTE_WEIGHTED;
        mc.rule.filter = mn.rule.filter = (uint8_t)(cfg & 1u);
        mc.rule.margin = mn.rule.margin = 1000; /* nearly every sample is an error */
        fn_test_fill_s8(x, (size_t)B * 40u, 500 + cfg);
        fill_labels(y, B, 500 + cfg, 3);
        REQUIRE(flipnet_calibrate(&mc, x, B, scratch, sb) == FLIPNET_OK);
        for (l = 0; l < 2; l++) mn.layers[l].shift = mc.layers[l].shift;
        memset(&pr, 0, sizeof(pr));
        pr.k[0] = 40 + 100 * (cfg >> 1);
        pr.k[1] = 6;
        pr.p_q16[0] = 65536;
        pr.p_q16[1] = 40000;
        REQUIRE(flipnet_train_step(&mc, x, y, B, &pr, &sc, scratch, sb) == FLIPNET_OK);
        naive_step(&mn, x, y, B, &pr, &sn);
        if (sc.errors < 259u || sc.errors != sn.errors) all_ok = 0;
        for (l = 0; l < 2; l++) {
            if (sc.changes[l] != sn.changes[l] || sc.eligible[l] != sn.eligible[l]) all_ok = 0;
        }
        if (memcmp(ac, an, mc.weight_bytes) != 0) all_ok = 0;
        free(x);
        free(y);
        free(scratch);
        free(ac);
        free(an);
    }
    CHECK(all_ok);
#ifndef FN_TEST_SMALL_MEMORY /* needs about 3 MB of heap */
    /* a layer wider than 32767 outputs after the first: the int32 backprop accumulator */
    {
        const uint32_t s2[] = {4, 3, 33000, 3};
        const uint8_t k2[] = {FLIPNET_TERNARY, FLIPNET_TERNARY, FLIPNET_BINARY};
        flipnet_model mc, mn;
        void *ac = fn_test_model(&mc, 3, s2, k2, 77), *an = fn_test_model(&mn, 3, s2, k2, 77);
        size_t sb = 0;
        void *scratch = fn_test_scratch(&mc, 6, 1, &sb);
        int8_t x[24];
        uint16_t y[6];
        flipnet_step_params pr;
        flipnet_step_stats sc;
        naive_stats sn;
        fn_test_fill_s8(x, 24, 99);
        fill_labels(y, 6, 99, 3);
        REQUIRE(flipnet_calibrate(&mc, x, 6, scratch, sb) == FLIPNET_OK);
        for (l = 0; l < 3; l++) mn.layers[l].shift = mc.layers[l].shift;
        memset(&pr, 0, sizeof(pr));
        pr.k[0] = 5; pr.k[1] = 500; pr.k[2] = 300;
        pr.p_q16[0] = pr.p_q16[1] = pr.p_q16[2] = 65536;
        mc.rule.margin = mn.rule.margin = 100000;
        REQUIRE(flipnet_train_step(&mc, x, y, 6, &pr, &sc, scratch, sb) == FLIPNET_OK);
        naive_step(&mn, x, y, 6, &pr, &sn);
        CHECK(sc.errors == sn.errors && sc.errors > 0);
        for (l = 0; l < 3; l++) {
            CHECK_EQ(sc.changes[l], sn.changes[l]);
            CHECK_EQ(sc.eligible[l], sn.eligible[l]);
        }
        CHECK(sc.eligible[0] > 0);
        CHECK(memcmp(ac, an, mc.weight_bytes) == 0);
        free(scratch);
        free(ac);
        free(an);
    }
#endif
}

/* ---- golden values from python/flipnet/reference.py (generator: tests/c/golden.py) ------- */
static void test_golden(void)
{
    /* 60-24-16-4 (T, B, T), seed 2026, batch 16, 8 steps on fn_test_fill_s8(seed 1000+step)
     * data and labels (rand(step_seed, 0xEF << 56, b) >> 32) % 4, calibrated on the first
     * batch; k = [100, 40, 10], p_q16 = [40000, 65536, 30000]. Expected: shifts after
     * calibration, totals of (correct, errors, changes, eligible, clipped), crc32 of the int8
     * weights of all layers concatenated. Computed with reference.RefModel by tests/c/golden.py
     * (python3 tests/c/golden.py --check compares it with this table). */
    static const struct {
        uint32_t L, sizes[4];
        uint8_t kinds[3], vote, filter;
        int32_t margin;
        uint32_t k[3], p[3], shifts[3], tot[5], crc;
    } g[] = {
        {3, {60, 24, 16, 4}, {1, 2, 1}, 0, 0, 0, {100, 40, 10}, {40000, 65536, 30000}, {4, 2, 0},
         {34, 95, 845, 14221, 1}, 0x6ede4c12u},
        {3, {60, 24, 16, 4}, {1, 2, 1}, 1, 1, 3, {100, 40, 10}, {40000, 65536, 30000}, {4, 2, 0},
         {28, 101, 830, 10135, 1}, 0x3c44df5cu},
        {1, {33, 5, 0, 0}, {2, 0, 0}, 0, 1, 40, {20, 0, 0}, {65536, 0, 0}, {0, 0, 0},
         {29, 103, 168, 691, 0}, 0xfcbb1aa2u},
    };
    uint32_t c, l, step;
    for (c = 0; c < 3; c++) {
        flipnet_model m;
        void *area = fn_test_model(&m, g[c].L, g[c].sizes, g[c].kinds, 2026);
        uint32_t B = 16, tot[5] = {0, 0, 0, 0, 0};
        size_t sb = 0;
        void *scratch = fn_test_scratch(&m, B, 1, &sb);
        int8_t *x = malloc((size_t)B * g[c].sizes[0]);
        uint16_t y[16];
        flipnet_step_params pr;
        REQUIRE(x != NULL);
        m.rule.vote = g[c].vote;
        m.rule.filter = g[c].filter;
        m.rule.margin = g[c].margin;
        memset(&pr, 0, sizeof(pr));
        for (l = 0; l < g[c].L; l++) {
            pr.k[l] = g[c].k[l];
            pr.p_q16[l] = g[c].p[l];
        }
        fn_test_fill_s8(x, (size_t)B * g[c].sizes[0], 1000);
        CHECK_ST(flipnet_calibrate(&m, x, B, scratch, sb), FLIPNET_OK);
        for (l = 0; l < g[c].L; l++) CHECK_EQ(m.layers[l].shift, g[c].shifts[l]);
        for (step = 0; step < 8; step++) {
            flipnet_step_stats s;
            fn_test_fill_s8(x, (size_t)B * g[c].sizes[0], 1000 + step);
            fill_labels(y, B, 1000 + step, g[c].sizes[g[c].L]);
            CHECK_ST(flipnet_train_step(&m, x, y, B, &pr, &s, scratch, sb), FLIPNET_OK);
            tot[0] += s.correct;
            tot[1] += s.errors;
            for (l = 0; l < g[c].L; l++) {
                tot[2] += s.changes[l];
                tot[3] += s.eligible[l];
                tot[4] += s.clipped[l];
            }
        }
        for (l = 0; l < 5; l++) CHECK_EQ(tot[l], g[c].tot[l]);
        CHECK_EQ(weights_crc(&m), g[c].crc);
        CHECK(m.steps == 8u && m.samples == 8u * B);
        free(x);
        free(scratch);
        free(area);
    }
}

/* ---- invariants ------------------------------------------------------------------------- */
static void test_invariants(void)
{
    const uint32_t sizes[] = {50, 30, 6};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_TERNARY};
    flipnet_model m, m2;
    void *area = fn_test_model(&m, 2, sizes, kinds, 9), *area2, *copy;
    uint32_t B = 20, l, step;
    size_t sb = 0, wb = m.weight_bytes;
    void *scratch = fn_test_scratch(&m, B, 1, &sb);
    int8_t x[20 * 50];
    uint16_t y[20];
    flipnet_step_params pr;
    flipnet_step_stats s;
    copy = malloc(wb);
    REQUIRE(copy != NULL);
    fn_test_fill_s8(x, sizeof(x), 4);
    fill_labels(y, B, 4, 6);
    REQUIRE(flipnet_calibrate(&m, x, B, scratch, sb) == FLIPNET_OK);
    memset(&pr, 0, sizeof(pr));

    /* k = 0: nothing changes, but the step counts and eligible is reported */
    memcpy(copy, area, wb);
    CHECK_ST(flipnet_train_step(&m, x, y, B, &pr, &s, scratch, sb), FLIPNET_OK);
    CHECK(memcmp(copy, area, wb) == 0);
    CHECK(s.changes[0] == 0 && s.changes[1] == 0);
    CHECK(s.errors > 0 && s.eligible[0] > 0 && s.eligible[1] > 0);
    CHECK(m.steps == 1 && m.samples == B);

    /* p = 0: nothing changes */
    pr.k[0] = 500; pr.k[1] = 100;
    CHECK_ST(flipnet_train_step(&m, x, y, B, &pr, &s, scratch, sb), FLIPNET_OK);
    CHECK(memcmp(copy, area, wb) == 0);

    /* p = 1 and k = all weights: every eligible weight changes */
    pr.k[0] = 50 * 30; pr.k[1] = 30 * 6;
    pr.p_q16[0] = pr.p_q16[1] = 65536;
    CHECK_ST(flipnet_train_step(&m, x, y, B, &pr, &s, scratch, sb), FLIPNET_OK);
    for (l = 0; l < 2; l++) CHECK(s.changes[l] == s.eligible[l] && s.eligible[l] > 0);

    /* p = 1 and k < eligible: about k changes (ties filled in expectation) */
    for (step = 0; step < 10; step++) {
        fn_test_fill_s8(x, sizeof(x), 40 + step);
        fill_labels(y, B, 40 + step, 6);
        pr.k[0] = 30; pr.k[1] = 5;
        CHECK_ST(flipnet_train_step(&m, x, y, B, &pr, &s, scratch, sb), FLIPNET_OK);
        for (l = 0; l < 2; l++) {
            if (s.eligible[l] > pr.k[l]) CHECK(s.changes[l] <= 3u * pr.k[l]);
            else CHECK(s.changes[l] == s.eligible[l]);
        }
    }
    /* ternary weights stay legal */
    CHECK(fn_weights_legal(&m));

    /* determinism: same seed and data twice gives identical weights */
    area2 = fn_test_model(&m2, 2, sizes, kinds, 9);
    {
        flipnet_model a;
        void *aa = fn_test_model(&a, 2, sizes, kinds, 9);
        REQUIRE(flipnet_calibrate(&a, x, B, scratch, sb) == FLIPNET_OK);
        REQUIRE(flipnet_calibrate(&m2, x, B, scratch, sb) == FLIPNET_OK);
        pr.k[0] = 40; pr.k[1] = 8; pr.p_q16[0] = 30000; pr.p_q16[1] = 50000;
        for (step = 0; step < 5; step++) {
            fn_test_fill_s8(x, sizeof(x), 70 + step);
            fill_labels(y, B, 70 + step, 6);
            CHECK_ST(flipnet_train_step(&a, x, y, B, &pr, NULL, scratch, sb), FLIPNET_OK);
            CHECK_ST(flipnet_train_step(&m2, x, y, B, &pr, NULL, scratch, sb), FLIPNET_OK);
        }
        CHECK(memcmp(aa, area2, wb) == 0);
        CHECK(a.steps == 5 && a.samples == 5u * B);
        free(aa);
    }
    free(area2);
    free(copy);
    free(scratch);
    free(area);
}

/* ---- statuses ----------------------------------------------------------------------------- */
static void test_status(void)
{
    const uint32_t sizes[] = {12, 7, 3};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY};
    flipnet_model m, bad;
    void *area = fn_test_model(&m, 2, sizes, kinds, 1), *copy;
    size_t sb = 0, sbf = 0, wb = m.weight_bytes;
    uint8_t *scratch = fn_test_scratch(&m, 4, 1, &sb);
    int8_t x[48];
    uint16_t y[4] = {0, 1, 2, 0};
    flipnet_step_params pr;
    flipnet_step_stats s;
    memset(&pr, 0, sizeof(pr));
    fn_test_fill_s8(x, sizeof(x), 2);
    copy = malloc(wb);
    REQUIRE(copy != NULL);
    memcpy(copy, area, wb);
    REQUIRE(flipnet_scratch_size(&m, 4, 0, &sbf) == FLIPNET_OK);
    CHECK(sbf < sb);
    CHECK_ST(flipnet_train_step(NULL, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_train_step(&m, NULL, y, 4, &pr, &s, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_train_step(&m, x, NULL, 4, &pr, &s, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_train_step(&m, x, y, 4, NULL, &s, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, NULL, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_train_step(&m, x, y, 0, &pr, &s, scratch, sb), FLIPNET_E_ARG);
    CHECK_ST(flipnet_train_step(&m, x, y, FLIPNET_MAX_BATCH + 1u, &pr, &s, scratch, sb), FLIPNET_E_ARG);
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, scratch + 2, sb), FLIPNET_E_ALIGN);
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, scratch, sb - 1u), FLIPNET_E_NOMEM);
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, scratch, sbf), FLIPNET_E_NOMEM);
    pr.k[0] = 12 * 7 + 1;
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_ARG);
    pr.k[0] = 12 * 7;
    pr.p_q16[1] = 65537;
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_ARG);
    pr.p_q16[1] = 65536;
    pr.k[2] = 0xFFFFFFFFu; /* entries beyond n_layers are ignored */
    pr.p_q16[2] = 0xFFFFFFFFu;
    bad = m; bad.rule.vote = 2;
    CHECK_ST(flipnet_train_step(&bad, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_ARG);
    bad = m; bad.rule.filter = 2;
    CHECK_ST(flipnet_train_step(&bad, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_ARG);
    bad = m; bad.rule.backprop = 1;
    CHECK_ST(flipnet_train_step(&bad, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_ARG);
    bad = m; bad.rule.margin = -1;
    CHECK_ST(flipnet_train_step(&bad, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_ARG);
    bad = m; bad.layers[1].m = 5; /* 5 rows need 8 bytes, weight_bytes says 4 (m = 4 would fit) */
    CHECK_ST(flipnet_train_step(&bad, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_SHAPE);
    y[3] = 3;
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_LABEL);
    y[3] = 0;
    x[47] = -128;
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, scratch, sb), FLIPNET_E_INPUT);
    x[47] = 5;
    CHECK(memcmp(copy, area, wb) == 0 && m.steps == 0 && m.samples == 0); /* failures touch nothing */
    CHECK_ST(flipnet_train_step(&m, x, y, 4, &pr, &s, scratch, sb), FLIPNET_OK);
    CHECK_ST(flipnet_train_step(&m, x, y, 3, &pr, NULL, scratch, sb), FLIPNET_OK);
    CHECK(m.steps == 2 && m.samples == 7);
    free(copy);
    free(scratch);
    free(area);
    {
        /* a single output class has no wrong class: training is refused */
        const uint32_t s1[] = {5, 1};
        const uint8_t k1[] = {FLIPNET_TERNARY};
        flipnet_model m1;
        void *a1 = fn_test_model(&m1, 1, s1, k1, 1);
        size_t sb1 = 0;
        void *sc1 = fn_test_scratch(&m1, 1, 1, &sb1);
        uint16_t y1 = 0;
        memset(&pr, 0, sizeof(pr));
        CHECK_ST(flipnet_train_step(&m1, x, &y1, 1, &pr, &s, sc1, sb1), FLIPNET_E_SHAPE);
        free(sc1);
        free(a1);
    }
}

int main(void)
{
    test_vs_naive();
    test_wide_batch();
    test_golden();
    test_invariants();
    test_status();
    return fn_test_done("test_train");
}
