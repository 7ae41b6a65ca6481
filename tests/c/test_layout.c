/* Sizes, layout, pack/unpack round trips (layer_get/set), model checks and their statuses. */
#include "fn_internal.h"
#include "fn_test.h"

static void test_sizes(void)
{
    flipnet_arch a;
    size_t bytes = 0;
    memset(&a, 0, sizeof(a));
    a.n_layers = 3;
    a.sizes[0] = 784; a.sizes[1] = 256; a.sizes[2] = 256; a.sizes[3] = 10;
    a.kinds[0] = a.kinds[1] = a.kinds[2] = FLIPNET_TERNARY;
    /* rows padded to bytes only: exactly 2 bits per ternary weight (784 = 98 * 8) */
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_OK);
    CHECK_EQ(bytes, 256u * 2u * 98u + 256u * 2u * 32u + 10u * 2u * 32u);
    CHECK_EQ(bytes * 8u, 2u * (784u * 256u + 256u * 256u + 256u * 10u));
    a.kinds[1] = FLIPNET_BINARY;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_OK);
    CHECK_EQ(bytes, 256u * 2u * 98u + 256u * 1u * 32u + 10u * 2u * 32u);
    /* 784-128-10 ternary: the microcontroller model, about 25 KB of packed weights */
    a.n_layers = 2; a.sizes[1] = 128; a.sizes[2] = 10; a.kinds[1] = FLIPNET_TERNARY;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_OK);
    CHECK_EQ(bytes, 128u * 2u * 98u + 10u * 2u * 16u);
    CHECK_EQ(bytes, 25408u);
    /* each layer's area is rounded up to 4 bytes: 9-3-2, 3 x 2 x 2 = 12, 2 x 1 x 1 = 2 -> 4 */
    a.sizes[0] = 9; a.sizes[1] = 3; a.sizes[2] = 2; a.kinds[1] = FLIPNET_BINARY;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_OK);
    CHECK_EQ(bytes, 12u + 4u);
    a.sizes[0] = 784; a.sizes[1] = 128; a.sizes[2] = 10; a.kinds[1] = FLIPNET_TERNARY;
    /* statuses */
    CHECK_ST(flipnet_model_size(NULL, &bytes), FLIPNET_E_NULL);
    CHECK_ST(flipnet_model_size(&a, NULL), FLIPNET_E_NULL);
    a.n_layers = 0;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_E_SHAPE);
    a.n_layers = FLIPNET_MAX_LAYERS + 1u;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_E_SHAPE);
    a.n_layers = 2;
    a.sizes[1] = 0;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_E_SHAPE);
    a.sizes[1] = FLIPNET_MAX_WIDTH + 1u;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_E_SHAPE);
    a.sizes[1] = FLIPNET_MAX_WIDTH;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_OK);
    a.sizes[1] = 128;
    a.kinds[1] = 0;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_E_ARG);
    a.kinds[1] = 4;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_E_ARG);
}

static void test_init_status(void)
{
    flipnet_arch a;
    flipnet_model m;
    size_t bytes = 0;
    uint32_t *w;
    memset(&a, 0, sizeof(a));
    a.n_layers = 2; a.sizes[0] = 33; a.sizes[1] = 7; a.sizes[2] = 3;
    a.kinds[0] = FLIPNET_TERNARY; a.kinds[1] = FLIPNET_BINARY;
    REQUIRE(flipnet_model_size(&a, &bytes) == FLIPNET_OK);
    w = malloc(bytes + 8u);
    REQUIRE(w != NULL);
    CHECK_ST(flipnet_model_init(NULL, &a, w, bytes, 1), FLIPNET_E_NULL);
    CHECK_ST(flipnet_model_init(&m, NULL, w, bytes, 1), FLIPNET_E_NULL);
    CHECK_ST(flipnet_model_init(&m, &a, NULL, bytes, 1), FLIPNET_E_NULL);
    CHECK_ST(flipnet_model_init(&m, &a, (uint8_t *)w + 2, bytes, 1), FLIPNET_E_ALIGN);
    CHECK_ST(flipnet_model_init(&m, &a, w, bytes - 1u, 1), FLIPNET_E_NOMEM);
    memset(w, 0xA5, bytes); /* init clears every padding bit and byte */
    CHECK_ST(flipnet_model_init(&m, &a, w, bytes, 1), FLIPNET_OK);
    /* layer 0: 7 rows x 2 planes x 5 bytes = 70 -> 72; layer 1: 3 rows x 1 plane x 1 byte -> 4 */
    CHECK_EQ(bytes, 72u + 4u);
    CHECK_EQ(m.weight_bytes, bytes);
    CHECK(m.weights == (uint8_t *)w);
    CHECK_EQ(m.layers[0].bpr, 5);
    CHECK_EQ(m.layers[0].offset, 0);
    CHECK_EQ(m.layers[1].bpr, 1);
    CHECK_EQ(m.layers[1].offset, 72u);
    {
        const uint8_t *wb = (const uint8_t *)w;
        uint32_t j;
        CHECK(wb[70] == 0 && wb[71] == 0 && wb[75] == 0); /* layer padding bytes */
        for (j = 0; j < 7u; j++) {                      /* inputs 33..39 of both planes */
            CHECK((wb[j * 10u + 4u] & 0xFEu) == 0 && (wb[j * 10u + 9u] & 0xFEu) == 0);
        }
        for (j = 0; j < 3u; j++) CHECK((wb[72u + j] & 0x80u) == 0); /* input 7 of n = 7 */
        CHECK(fn_weights_legal(&m));
    }
    /* model checks used by every call */
    {
        flipnet_model b = m;
        int8_t out[33 * 7];
        b.weights = NULL;
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_NULL);
        b = m; b.weights = (uint8_t *)w + 2;
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_ALIGN);
        b = m; b.n_layers = 0;
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_SHAPE);
        b = m; b.layers[1].n = 6;
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_SHAPE);
        b = m; b.layers[0].bpr = 2; /* the old 32-bit words per row */
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_SHAPE);
        b = m; b.layers[1].offset = 70u; /* not rounded up to 4 */
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_SHAPE);
        b = m; b.weight_bytes += 4u;
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_SHAPE);
        b = m; b.weight_bytes -= 1u;
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_SHAPE);
        b = m; b.layers[0].kind = 7;
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_ARG);
        b = m; b.layers[0].shift = 32;
        CHECK_ST(flipnet_layer_get(&b, 0, out), FLIPNET_E_ARG);
        CHECK_ST(flipnet_layer_get(NULL, 0, out), FLIPNET_E_NULL);
        CHECK_ST(flipnet_layer_get(&m, 0, NULL), FLIPNET_E_NULL);
        CHECK_ST(flipnet_layer_get(&m, 2, out), FLIPNET_E_ARG);
        CHECK_ST(flipnet_layer_set(&m, 2, out), FLIPNET_E_ARG);
        CHECK_ST(flipnet_layer_set(&m, 0, NULL), FLIPNET_E_NULL);
    }
    free(w);
}

/* Round trip of random weights through layer_set / layer_get at awkward widths. */
static void test_roundtrip(void)
{
    const uint32_t widths[] = {1, 2, 31, 32, 33, 63, 64, 65, 785};
    size_t wi, c;
    for (wi = 0; wi < sizeof(widths) / sizeof(widths[0]); wi++) {
        int kind;
        for (kind = FLIPNET_TERNARY; kind <= FLIPNET_BINARY; kind++) {
            uint32_t n = widths[wi], m = (uint32_t)(wi % 3u) + 1u;
            uint32_t sizes[3];
            uint8_t kinds[2];
            flipnet_model model;
            void *area;
            int8_t *w, *r;
            size_t count, i;
            int ok = 1;
            sizes[0] = n; sizes[1] = m; sizes[2] = 2;
            kinds[0] = (uint8_t)kind; kinds[1] = FLIPNET_TERNARY;
            area = fn_test_model(&model, 2, sizes, kinds, 5u + n);
            count = (size_t)n * m;
            w = malloc(count);
            r = malloc(count);
            REQUIRE(w && r);
            for (c = 0; c < 3; c++) {
                for (i = 0; i < count; i++) {
                    uint64_t u = flipnet_rand(c, 77, i) >> 32;
                    w[i] = kind == FLIPNET_TERNARY ? (int8_t)((int)(u % 3u) - 1) : (u & 1u ? 1 : -1);
                    if (c == 1) w[i] = kind == FLIPNET_TERNARY ? 0 : -1; /* all one value */
                }
                CHECK_ST(flipnet_layer_set(&model, 0, w), FLIPNET_OK);
                memset(r, 9, count);
                CHECK_ST(flipnet_layer_get(&model, 0, r), FLIPNET_OK);
                if (memcmp(w, r, count) != 0) ok = 0;
                /* packed form: bit i % 8 of byte i / 8 of the row planes, padding 0 */
                for (i = 0; i < count; i++) {
                    uint32_t j = (uint32_t)(i / n), ii = (uint32_t)(i % n), bpr = model.layers[0].bpr;
                    const uint8_t *row = model.weights + (size_t)j * fn_planes((uint8_t)kind) * bpr;
                    uint32_t bit = 1u << (ii & 7u);
                    if (bpr != (n + 7u) / 8u) ok = 0;
                    if (kind == FLIPNET_TERNARY) {
                        int v = ((row[ii >> 3] & bit) ? 1 : 0) - ((row[bpr + (ii >> 3)] & bit) ? 1 : 0);
                        if (v != w[i]) ok = 0;
                    } else {
                        if (((row[ii >> 3] & bit) ? -1 : 1) != w[i]) ok = 0;
                    }
                }
                CHECK(fn_weights_legal(&model));
            }
            CHECK(ok);
            /* invalid values are rejected and leave the layer untouched */
            memcpy(r, w, count);
            w[count - 1u] = kind == FLIPNET_TERNARY ? 2 : 0;
            CHECK_ST(flipnet_layer_set(&model, 0, w), FLIPNET_E_ARG);
            w[count - 1u] = -2;
            CHECK_ST(flipnet_layer_set(&model, 0, w), FLIPNET_E_ARG);
            memset(w, 0, count);
            CHECK_ST(flipnet_layer_get(&model, 0, w), FLIPNET_OK);
            CHECK(memcmp(w, r, count) == 0);
            /* layer 1 is independent of layer 0 */
            {
                int8_t l1[2 * 3], l1b[2 * 3];
                CHECK_ST(flipnet_layer_get(&model, 1, l1), FLIPNET_OK);
                for (i = 0; i < (size_t)2 * m; i++) l1b[i] = (int8_t)(i % 3) - 1;
                CHECK_ST(flipnet_layer_set(&model, 1, l1b), FLIPNET_OK);
                CHECK_ST(flipnet_layer_get(&model, 0, w), FLIPNET_OK);
                CHECK(memcmp(w, r, count) == 0);
                CHECK_ST(flipnet_layer_get(&model, 1, l1), FLIPNET_OK);
                CHECK(memcmp(l1, l1b, (size_t)2 * m) == 0);
            }
            free(w);
            free(r);
            free(area);
        }
    }
}

/* The int16 unpack used by the kernels equals the reference int8 unpack; rows start at any
 * byte and end exactly at the end of a malloc'd block, so ASan catches a read past the row. */
static void test_unpack_kernels(void)
{
    const uint32_t widths[] = {1, 5, 7, 8, 9, 15, 16, 17, 24, 25, 31, 32, 33, 40, 63, 64, 65, 100, 785};
    size_t wi, i;
    int8_t w8[800];
    int16_t w16[800];
    int ok = 1;
    for (wi = 0; wi < sizeof(widths) / sizeof(widths[0]); wi++) {
        uint32_t n = widths[wi], bpr = fn_bpr(n), c, kind;
        for (kind = FLIPNET_TERNARY; kind <= FLIPNET_BINARY; kind++) {
            for (c = 0; c < 4; c++) {
                int8_t src[800];
                size_t rb = (size_t)fn_planes((uint8_t)kind) * bpr;
                uint8_t *blk = malloc(rb + c), *row = blk + c; /* c: misalignment 0..3 */
                REQUIRE(blk != NULL);
                for (i = 0; i < n; i++) {
                    uint32_t u = (uint32_t)(flipnet_rand(c, 5, i) >> 40);
                    src[i] = kind == FLIPNET_TERNARY ? (int8_t)((int)(u % 3u) - 1) : (u & 1u ? 1 : -1);
                }
                memset(row, 0xFF, rb);
                fn_pack_row_ref(row, (uint8_t)kind, n, bpr, src);
                if (n % 8u != 0) { /* padding bits of the last byte of each plane are 0 */
                    uint32_t p;
                    for (p = 0; p < fn_planes((uint8_t)kind); p++) {
                        if (row[p * bpr + bpr - 1u] >> (n % 8u)) ok = 0;
                    }
                }
                fn_unpack_row_ref(row, (uint8_t)kind, n, bpr, w8);
                fn_unpack_row_s16(row, (uint8_t)kind, n, bpr, w16);
                for (i = 0; i < n; i++) {
                    if (w8[i] != src[i] || w16[i] != src[i]) ok = 0;
                }
                free(blk);
            }
        }
    }
    CHECK(ok);
}

static void test_scratch_size(void)
{
    flipnet_model m;
    const uint32_t sizes[] = {784, 128, 10};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_TERNARY};
    void *area = fn_test_model(&m, 2, sizes, kinds, 1);
    size_t b1 = 0, b2 = 0, b3 = 0;
    CHECK_ST(flipnet_scratch_size(&m, 16, 0, &b1), FLIPNET_OK);
    CHECK_ST(flipnet_scratch_size(&m, 16, 1, &b2), FLIPNET_OK);
    CHECK_ST(flipnet_scratch_size(&m, 8, 1, &b3), FLIPNET_OK);
    CHECK(b1 > 0 && b1 < b2 && b3 < b2);
    CHECK(b2 < 16384u); /* fits next to 25 KB of weights on a 64 KB microcontroller */
    CHECK_ST(flipnet_scratch_size(&m, 0, 1, &b1), FLIPNET_E_ARG);
    CHECK_ST(flipnet_scratch_size(&m, FLIPNET_MAX_BATCH + 1u, 1, &b1), FLIPNET_E_ARG);
    CHECK_ST(flipnet_scratch_size(&m, FLIPNET_MAX_BATCH, 1, &b1), FLIPNET_OK);
    CHECK_ST(flipnet_scratch_size(NULL, 1, 1, &b1), FLIPNET_E_NULL);
    CHECK_ST(flipnet_scratch_size(&m, 1, 1, NULL), FLIPNET_E_NULL);
    free(area);
}

/* flipnet_arch_scratch_size answers what flipnet_scratch_size answers for the model laid out
 * from the same architecture: integer models with and without (packed) counters, mixed
 * widths, and (with float code) a hybrid one; batches 1 .. 300, training or not. */
static void test_arch_scratch_size(void)
{
    static const uint32_t sz[][4] = {{784, 128, 10, 0}, {100, 256, 10, 0}, {37, 13, 29, 5},
                                     {27, 21, 13, 5}};
    static const uint8_t nl[] = {2, 2, 3, 3};
    static const uint8_t bits[][3] = {{0, 0, 0}, {8, 8, 8}, {4, 2, 8}, {2, 2, 2}};
    uint32_t c, v, l, t, bi;
    static const uint32_t batches[] = {1, 8, 64, 300};
    for (c = 0; c < 4u; c++) {
        for (v = 0; v < 4u; v++) {
            flipnet_arch a;
            flipnet_model m;
            size_t ws = 0, s1 = 0, s2 = 0;
            void *w;
            memset(&a, 0, sizeof(a));
            a.n_layers = nl[c];
            for (l = 0; l <= nl[c]; l++) a.sizes[l] = sz[c][l];
            for (l = 0; l < nl[c]; l++) {
                a.kinds[l] = (uint8_t)(l == 1u ? FLIPNET_BINARY : FLIPNET_TERNARY);
                a.counter_bits[l] = bits[v][l];
            }
#ifndef FLIPNET_NO_FLOAT
            if (c == 3u) a.kinds[0] = a.kinds[2] = FLIPNET_FP32; /* a hybrid */
#endif
            a.counters = v != 0u;
            REQUIRE(flipnet_model_size(&a, &ws) == FLIPNET_OK);
            w = malloc(ws);
            REQUIRE(w != NULL);
            REQUIRE(flipnet_model_init(&m, &a, w, ws, 1) == FLIPNET_OK);
            for (bi = 0; bi < 4u; bi++) {
                for (t = 0; t < 2u; t++) {
                    CHECK_ST(flipnet_arch_scratch_size(&a, batches[bi], (int)t, &s1), FLIPNET_OK);
                    CHECK_ST(flipnet_scratch_size(&m, batches[bi], (int)t, &s2), FLIPNET_OK);
                    CHECK_EQ(s1, s2);
                }
            }
            free(w);
        }
    }
    {
        flipnet_arch a;
        size_t s = 0;
        memset(&a, 0, sizeof(a));
        CHECK_ST(flipnet_arch_scratch_size(&a, 8, 1, &s), FLIPNET_E_SHAPE); /* no layers */
        CHECK_ST(flipnet_arch_scratch_size(NULL, 8, 1, &s), FLIPNET_E_NULL);
        a.n_layers = 1;
        a.sizes[0] = 4;
        a.sizes[1] = 2;
        a.kinds[0] = FLIPNET_TERNARY;
        CHECK_ST(flipnet_arch_scratch_size(&a, 0, 1, &s), FLIPNET_E_ARG);
        a.kinds[0] = 9;
        CHECK_ST(flipnet_arch_scratch_size(&a, 8, 1, &s), FLIPNET_E_ARG);
    }
}

int main(void)
{
    test_arch_scratch_size();
    test_sizes();
    test_init_status();
    test_roundtrip();
    test_unpack_kernels();
    test_scratch_size();
    return fn_test_done("test_layout");
}
