/* RNG known answers, CRC-32, key function, floor shift, init distribution, status strings. */
#include "fn_internal.h"
#include "fn_test.h"

/* Expected values computed from docs/rule.md section 6 with plain Python integers. */
static const uint64_t kat[][4] = {
    {0x0000000000000000ULL, 0x0000000000000000ULL, 0x0000000000000000ULL, 0xBB90C7A6337C19D9ULL},
    {0x0000000000000001ULL, 0x0000000000000000ULL, 0x0000000000000000ULL, 0x4DDE6A9327747019ULL},
    {0x0000000000000000ULL, 0x0000000000000001ULL, 0x0000000000000000ULL, 0x5D78032BA008CBDAULL},
    {0x0000000000000000ULL, 0x0000000000000000ULL, 0x0000000000000001ULL, 0x2319836A87853061ULL},
    {0x000000000000002AULL, 0x0100000000000000ULL, 0x0000000000000000ULL, 0xF830A5734A2A2242ULL},
    {0x000000000000002AULL, 0x0203000000003039ULL, 0x0000000000000935ULL, 0x1F3718211ED977BFULL},
    {0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFEULL, 0x24E547434F9D18A2ULL},
    {0x0123456789ABCDEFULL, 0x0307000000000009ULL, 0x0000010000000000ULL, 0x92D54DFD84D090E6ULL},
};

static void test_rand(void)
{
    size_t c;
    for (c = 0; c < sizeof(kat) / sizeof(kat[0]); c++) {
        CHECK(flipnet_rand(kat[c][0], kat[c][1], kat[c][2]) == kat[c][3]);
    }
    /* stream layout: (purpose << 56) | (layer << 48) | step mod 2^48 */
    CHECK(fn_stream(2, 3, 12345) == 0x0203000000003039ULL);
    CHECK(fn_stream(3, 7, (1ULL << 48) + 9) == 0x0307000000000009ULL);
}

static void test_crc(void)
{
    const uint8_t s[] = "123456789";
    uint32_t c;
    CHECK(flipnet_crc32(0, s, 9) == 0xCBF43926u); /* the CRC-32 check value */
    CHECK(flipnet_crc32(0, s, 0) == 0u);
    c = flipnet_crc32(0, s, 4);
    CHECK(flipnet_crc32(c, s + 4, 5) == 0xCBF43926u); /* chainable, as zlib.crc32 */
    CHECK(flipnet_crc32(0, (const uint8_t *)"The quick brown fox jumps over the lazy dog", 43) ==
          0x414FA339u);
}

/* key straight from docs/rule.md section 5, with a loop for floor(log2 v) */
static uint32_t key_spec(uint32_t v)
{
    uint32_t e = 0;
    if (v > (1u << 19) - 1u) v = (1u << 19) - 1u;
    if (v < 16u) return v;
    while ((v >> (e + 1u)) != 0u) e++;
    return (e - 3u) * 16u + ((v >> (e - 4u)) & 15u);
}

static void test_key(void)
{
    uint32_t v, prev = 0, k;
    int ok = 1, mono = 1;
    for (v = 0; v < (1u << 20); v++) {
        k = fn_key(v);
        if (k != key_spec(v) || k > 255u) ok = 0;
        if (k < prev) mono = 0;
        prev = k;
    }
    CHECK(ok);
    CHECK(mono);
    for (v = 0; v < 16u; v++) CHECK_EQ(fn_key(v), v); /* exact below 16 */
    CHECK_EQ(fn_key(16), 16);
    CHECK_EQ(fn_key(31), 31);
    CHECK_EQ(fn_key(32), 32);
    CHECK_EQ(fn_key(33), 32);
    CHECK_EQ(fn_key(34), 33);
    CHECK_EQ(fn_key(1000), 6 * 16 + ((1000 >> 5) & 15)); /* e = 9 */
    CHECK_EQ(fn_key((1u << 19) - 1u), 255);
    CHECK_EQ(fn_key(0xFFFFFFFFu), 255);
    /* fn_key_min(K) is the smallest v with key K */
    ok = 1;
    for (k = 0; k < 256u; k++) {
        uint32_t m = fn_key_min(k);
        if (fn_key(m) != k || (m > 0 && fn_key(m - 1u) >= k)) ok = 0;
    }
    CHECK(ok);
}

static void test_floor_shift(void)
{
    int32_t vals[] = {0, 1, -1, 2, -2, 3, -3, 127, -127, 128, -128, 255, -255, 256, -257,
                      1000001, -1000001, 8322945, -8322945, INT32_MAX, INT32_MIN};
    size_t c;
    uint32_t s;
    for (c = 0; c < sizeof(vals) / sizeof(vals[0]); c++) {
        for (s = 0; s < 32u; s++) {
            int64_t v = vals[c], d = (int64_t)1 << s;
            int64_t q = v / d;
            if (q * d != v && v < 0) q -= 1; /* floor */
            CHECK_EQ(fn_floor_shift(vals[c], s), q);
        }
    }
}

static void test_init_distribution(void)
{
    flipnet_model m1, m2;
    const uint32_t sizes[] = {300, 200, 100};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY};
    void *w1 = fn_test_model(&m1, 2, sizes, kinds, 99), *w2;
    int8_t *a = malloc(300 * 200), *b = malloc(300 * 200);
    long cnt[3] = {0, 0, 0}, neg = 0;
    size_t i;
    uint32_t j;
    REQUIRE(a && b);
    REQUIRE(flipnet_layer_get(&m1, 0, a) == FLIPNET_OK);
    for (i = 0; i < 300u * 200u; i++) cnt[a[i] + 1]++;
    for (i = 0; i < 3; i++) CHECK(cnt[i] > 19000 && cnt[i] < 21000); /* 20000 +- 7 sigma */
    /* exact formula at a few positions: W = ((u >> 32) mod 3) - 1, index j*n + i */
    for (j = 0; j < 200u; j += 37u) {
        for (i = 0; i < 300u; i += 41u) {
            uint64_t u = flipnet_rand(99, fn_stream(FN_PURPOSE_INIT, 0, 0), (uint64_t)j * 300u + i);
            CHECK_EQ(a[j * 300u + i], (int)((u >> 32) % 3u) - 1);
        }
    }
    REQUIRE(flipnet_layer_get(&m1, 1, b) == FLIPNET_OK);
    for (i = 0; i < 200u * 100u; i++) {
        CHECK(b[i] == 1 || b[i] == -1);
        neg += b[i] < 0;
    }
    CHECK(neg > 9300 && neg < 10700);
    for (j = 0; j < 100u; j += 13u) {
        for (i = 0; i < 200u; i += 17u) {
            uint64_t u = flipnet_rand(99, fn_stream(FN_PURPOSE_INIT, 1, 0), (uint64_t)j * 200u + i);
            CHECK_EQ(b[j * 200u + i], (u >> 63) ? -1 : 1);
        }
    }
    /* same seed: identical; other seed: different */
    w2 = fn_test_model(&m2, 2, sizes, kinds, 99);
    CHECK(memcmp(w1, w2, m1.weight_bytes) == 0);
    free(w2);
    w2 = fn_test_model(&m2, 2, sizes, kinds, 100);
    CHECK(memcmp(w1, w2, m1.weight_bytes) != 0);
    CHECK_EQ(m1.layers[0].shift, 0);
    CHECK_EQ(m1.rule.vote, FLIPNET_VOTE_SIGN);
    CHECK_EQ(m1.rule.filter, FLIPNET_FILTER_HURT);
    CHECK_EQ(m1.rule.margin, 0);
    CHECK(m1.steps == 0 && m1.samples == 0 && m1.seed == 99);
    free(w2);
    free(w1);
    free(a);
    free(b);
}

static void test_status_str(void)
{
    int codes[] = {0, -1, -2, -3, -4, -5, -6, -7, -8, -20, -21, -22, -23, -24, -25};
    size_t i, j;
    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = flipnet_status_str(codes[i]);
        CHECK(s != NULL && strcmp(s, "unknown status") != 0);
        for (j = 0; j < i; j++) CHECK(strcmp(s, flipnet_status_str(codes[j])) != 0);
    }
    CHECK(strcmp(flipnet_status_str(-9), "unknown status") == 0);
    CHECK(strcmp(flipnet_status_str(1), "unknown status") == 0);
    CHECK(strcmp(flipnet_status_str(-26), "unknown status") == 0);
}

/* flipnet_version matches the header; the ABI check accepts this header and refuses another;
 * flipnet_rule_check is the train step's rule check. */
static void test_version_abi_rule(void)
{
    flipnet_rule r;
    CHECK_EQ(flipnet_version(), ((uint32_t)FLIPNET_VERSION_MAJOR << 16) |
                                    ((uint32_t)FLIPNET_VERSION_MINOR << 8) |
                                    (uint32_t)FLIPNET_VERSION_PATCH);
    CHECK_ST(FLIPNET_ABI_CHECK(), FLIPNET_OK);
    CHECK_ST(flipnet_abi_check(FLIPNET_ABI + 1u, sizeof(flipnet_model), sizeof(flipnet_arch),
                               sizeof(flipnet_step_params), sizeof(flipnet_step_stats),
                               sizeof(flipnet_model_view)),
             FLIPNET_E_ABI);
    CHECK_ST(flipnet_abi_check(FLIPNET_ABI, sizeof(flipnet_model) - 8u, sizeof(flipnet_arch),
                               sizeof(flipnet_step_params), sizeof(flipnet_step_stats),
                               sizeof(flipnet_model_view)),
             FLIPNET_E_ABI);
    CHECK_ST(flipnet_abi_check(FLIPNET_ABI, sizeof(flipnet_model), sizeof(flipnet_arch),
                               sizeof(flipnet_step_params), sizeof(flipnet_step_stats) + 4u,
                               sizeof(flipnet_model_view)),
             FLIPNET_E_ABI);
    memset(&r, 0, sizeof(r));
    r.calib_target = 32;
    CHECK_ST(flipnet_rule_check(&r, 0), FLIPNET_OK);
    CHECK_ST(flipnet_rule_check(NULL, 0), FLIPNET_E_NULL);
    r.counter_threshold = 8;
    CHECK_ST(flipnet_rule_check(&r, 0), FLIPNET_E_ARG); /* counters needed */
    CHECK_ST(flipnet_rule_check(&r, 1), FLIPNET_OK);
    r.counter_decay = 8;
    CHECK_ST(flipnet_rule_check(&r, 1), FLIPNET_E_ARG);
    r.counter_decay = 0;
    r.calib_target = 0;
    CHECK_ST(flipnet_rule_check(&r, 1), FLIPNET_E_ARG);
    r.calib_target = 32;
    r.margin = -1;
    CHECK_ST(flipnet_rule_check(&r, 1), FLIPNET_E_ARG);
}

int main(void)
{
    test_version_abi_rule();
    test_rand();
    test_crc();
    test_key();
    test_floor_shift();
    test_init_distribution();
    test_status_str();
    return fn_test_done("test_rng");
}
