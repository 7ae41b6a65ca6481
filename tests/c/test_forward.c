/* Forward / predict / calibrate against a naive integer computation, and their statuses. */
#include "fn_internal.h"
#include "fn_test.h"

static int64_t floor_div_pow2(int64_t v, uint32_t s)
{
    int64_t d = (int64_t)1 << s, q = v / d;
    if (q * d != v && v < 0) q -= 1;
    return q;
}

/* Naive forward with full multiplications on unpacked weights; returns logits (B, classes).
 * If calib, sets the shifts as docs/rule.md section 1 says and returns them in shifts. */
static void naive_forward(const flipnet_model *m, const int8_t *x, uint32_t B, int64_t *logits,
                          int calib, uint32_t *shifts)
{
    uint32_t l, b, j, i;
    int8_t *in = malloc((size_t)B * 65536u), *out = malloc((size_t)B * 65536u);
    REQUIRE(in && out);
    memcpy(in, x, (size_t)B * m->layers[0].n);
    for (l = 0; l < m->n_layers; l++) {
        const flipnet_layer *L = &m->layers[l];
        int8_t *w = malloc((size_t)L->n * L->m);
        int64_t *z = malloc(sizeof(int64_t) * B * L->m), sum = 0;
        uint32_t s = L->shift;
        REQUIRE(w && z);
        REQUIRE(flipnet_layer_get(m, l, w) == FLIPNET_OK);
        for (b = 0; b < B; b++) {
            for (j = 0; j < L->m; j++) {
                int64_t acc = 0;
                for (i = 0; i < L->n; i++) acc += (int64_t)in[(size_t)b * L->n + i] * w[(size_t)j * L->n + i];
                z[(size_t)b * L->m + j] = acc;
                sum += acc < 0 ? -acc : acc;
            }
        }
        if (l + 1u == m->n_layers) {
            memcpy(logits, z, sizeof(int64_t) * B * L->m);
        } else {
            if (calib) {
                int64_t mabs = sum / ((int64_t)B * L->m);
                s = 0;
                while (s < 31u && (mabs >> s) > 32) s++;
            }
            if (shifts) shifts[l] = s;
            for (b = 0; b < (size_t)B * L->m; b++) {
                int64_t a = floor_div_pow2(z[b], s);
                out[b] = (int8_t)(a > 127 ? 127 : (a < -127 ? -127 : a));
            }
            memcpy(in, out, (size_t)B * L->m);
        }
        free(w);
        free(z);
    }
    free(in);
    free(out);
}

static void run_model(uint32_t n_layers, const uint32_t *sizes, const uint8_t *kinds, uint64_t seed)
{
    flipnet_model m;
    void *area = fn_test_model(&m, n_layers, sizes, kinds, seed);
    const uint32_t batches[] = {1, 7, 40};
    uint32_t classes = sizes[n_layers], bi, l, b, j;
    for (bi = 0; bi < 3; bi++) {
        uint32_t B = batches[bi];
        size_t sbytes = 0;
        void *scratch = fn_test_scratch(&m, B, 0, &sbytes);
        int8_t *x = malloc((size_t)B * sizes[0]);
        int32_t *logits = malloc(sizeof(int32_t) * B * classes);
        int64_t *ref = malloc(sizeof(int64_t) * B * classes);
        uint16_t *cls = malloc(sizeof(uint16_t) * B);
        uint32_t shifts[FLIPNET_MAX_LAYERS];
        int ok = 1;
        REQUIRE(x && logits && ref && cls);
        fn_test_fill_s8(x, (size_t)B * sizes[0], seed + B);
        /* a few extremes */
        x[0] = 127;
        x[(size_t)B * sizes[0] - 1u] = -127;
        /* shifts: calibrated, then arbitrary (0 makes the clamp bite, large ones zero out) */
        CHECK_ST(flipnet_calibrate(&m, x, B, scratch, sbytes), FLIPNET_OK);
        naive_forward(&m, x, B, ref, 1, shifts);
        for (l = 0; l + 1u < n_layers; l++) CHECK_EQ(m.layers[l].shift, shifts[l]);
        CHECK_EQ(m.layers[n_layers - 1u].shift, 0);
        for (l = 0; l < 3; l++) {
            uint32_t ll;
            if (l == 1) for (ll = 0; ll + 1u < n_layers; ll++) m.layers[ll].shift = 0;
            if (l == 2) for (ll = 0; ll + 1u < n_layers; ll++) m.layers[ll].shift = (uint8_t)(3u * ll + 2u);
            CHECK_ST(flipnet_forward(&m, x, B, logits, scratch, sbytes), FLIPNET_OK);
            naive_forward(&m, x, B, ref, 0, NULL);
            for (b = 0; b < B * classes; b++) {
                if ((int64_t)logits[b] != ref[b]) ok = 0;
            }
            CHECK_ST(flipnet_predict(&m, x, B, cls, scratch, sbytes), FLIPNET_OK);
            for (b = 0; b < B; b++) {
                uint32_t best = 0;
                for (j = 1; j < classes; j++) {
                    if (ref[(size_t)b * classes + j] > ref[(size_t)b * classes + best]) best = j;
                }
                if (cls[b] != best) ok = 0;
            }
        }
        CHECK(ok);
        free(x);
        free(logits);
        free(ref);
        free(cls);
        free(scratch);
    }
    free(area);
}

static void test_ties(void)
{
    /* all-zero weights: every logit 0, argmax is class 0 */
    flipnet_model m;
    const uint32_t sizes[] = {5, 4};
    const uint8_t kinds[] = {FLIPNET_TERNARY};
    void *area = fn_test_model(&m, 1, sizes, kinds, 3);
    int8_t w[20], x[10] = {1, 2, 3, 4, 5, -1, -2, -3, -4, -5};
    uint16_t cls[2] = {9, 9};
    size_t sb = 0;
    void *scratch = fn_test_scratch(&m, 2, 0, &sb);
    memset(w, 0, sizeof(w));
    CHECK_ST(flipnet_layer_set(&m, 0, w), FLIPNET_OK);
    CHECK_ST(flipnet_predict(&m, x, 2, cls, scratch, sb), FLIPNET_OK);
    CHECK(cls[0] == 0 && cls[1] == 0);
    /* classes 2 and 3 tie for the max: 2 wins */
    w[2 * 5 + 0] = 1;
    w[3 * 5 + 0] = 1;
    CHECK_ST(flipnet_layer_set(&m, 0, w), FLIPNET_OK);
    CHECK_ST(flipnet_predict(&m, x, 2, cls, scratch, sb), FLIPNET_OK);
    CHECK(cls[0] == 2 && cls[1] == 0);
    free(scratch);
    free(area);
}

static void test_status(void)
{
    flipnet_model m, bad;
    const uint32_t sizes[] = {20, 9, 3};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY};
    void *area = fn_test_model(&m, 2, sizes, kinds, 3);
    size_t sb = 0;
    uint8_t *scratch = fn_test_scratch(&m, 4, 0, &sb);
    uint8_t *big = malloc(sb + 8u);
    int8_t x[80];
    int32_t logits[12];
    uint16_t cls[4];
    REQUIRE(big != NULL);
    fn_test_fill_s8(x, 80, 1);
    CHECK_ST(flipnet_forward(NULL, x, 4, logits, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_forward(&m, NULL, 4, logits, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_forward(&m, x, 4, NULL, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_forward(&m, x, 4, logits, NULL, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_forward(&m, x, 0, logits, scratch, sb), FLIPNET_E_ARG);
    CHECK_ST(flipnet_forward(&m, x, FLIPNET_MAX_BATCH + 1u, logits, scratch, sb), FLIPNET_E_ARG);
    CHECK_ST(flipnet_forward(&m, x, 4, logits, big + 2, sb), FLIPNET_E_ALIGN);
    CHECK_ST(flipnet_forward(&m, x, 4, logits, big + 4, sb), FLIPNET_OK);
    CHECK_ST(flipnet_forward(&m, x, 4, logits, scratch, sb - 1u), FLIPNET_E_NOMEM);
    CHECK_ST(flipnet_forward(&m, x, 3, logits, scratch, sb), FLIPNET_OK); /* smaller batch fits */
    bad = m; bad.layers[0].shift = 32;
    CHECK_ST(flipnet_forward(&bad, x, 4, logits, scratch, sb), FLIPNET_E_ARG);
    bad = m; bad.layers[1].n = 10;
    CHECK_ST(flipnet_forward(&bad, x, 4, logits, scratch, sb), FLIPNET_E_SHAPE);
    x[79] = -128;
    CHECK_ST(flipnet_forward(&m, x, 4, logits, scratch, sb), FLIPNET_E_INPUT);
    CHECK_ST(flipnet_predict(&m, x, 4, cls, scratch, sb), FLIPNET_E_INPUT);
    CHECK_ST(flipnet_calibrate(&m, x, 4, scratch, sb), FLIPNET_E_INPUT);
    CHECK_ST(flipnet_forward(&m, x, 3, logits, scratch, sb), FLIPNET_OK); /* only batch rows */
    x[79] = 0;
    CHECK_ST(flipnet_predict(&m, x, 4, NULL, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_predict(&m, x, 0, cls, scratch, sb), FLIPNET_E_ARG);
    CHECK_ST(flipnet_predict(&m, x, 4, cls, scratch, sb - 1u), FLIPNET_E_NOMEM);
    CHECK_ST(flipnet_calibrate(NULL, x, 4, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_calibrate(&m, NULL, 4, scratch, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_calibrate(&m, x, 4, NULL, sb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_calibrate(&m, x, 4, scratch, sb - 1u), FLIPNET_E_NOMEM);
    CHECK_ST(flipnet_calibrate(&m, x, 0, scratch, sb), FLIPNET_E_ARG);
    CHECK_ST(flipnet_calibrate(&m, x, 4, big + 1, sb), FLIPNET_E_ALIGN);
    free(big);
    free(scratch);
    free(area);
}

int main(void)
{
    {
        const uint32_t s[] = {70, 33, 17, 5};
        const uint8_t k[] = {FLIPNET_TERNARY, FLIPNET_BINARY, FLIPNET_TERNARY};
        run_model(3, s, k, 11);
    }
    {
        const uint32_t s[] = {785, 31, 10};
        const uint8_t k[] = {FLIPNET_BINARY, FLIPNET_TERNARY};
        run_model(2, s, k, 12);
    }
    {
        const uint32_t s[] = {1, 1};
        const uint8_t k[] = {FLIPNET_TERNARY};
        run_model(1, s, k, 13);
    }
    {
        const uint32_t s[] = {64, 32, 1, 2, 3};
        const uint8_t k[] = {FLIPNET_BINARY, FLIPNET_BINARY, FLIPNET_TERNARY, FLIPNET_BINARY};
        run_model(4, s, k, 14);
    }
    test_ties();
    test_status();
    return fn_test_done("test_forward");
}
