/* Model file format v1: round trip, truncation at every length, every byte flipped, and each
 * corruption status. Buffers are malloc'd at their exact length so ASan catches any read past
 * the end. */
#include "fn_internal.h"
#include "fn_test.h"

static uint8_t *dup_exact(const uint8_t *buf, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    REQUIRE(c != NULL);
    if (len) memcpy(c, buf, len);
    return c;
}

/* Re-seal the CRC after an edit, so the check under test is the one that fires. */
static void reseal(uint8_t *buf, size_t len)
{
    fn_wr32(buf + len - 4u, flipnet_crc32(0, buf, len - 4u));
}

static int peek_exact(const uint8_t *buf, size_t len)
{
    uint8_t *c = dup_exact(buf, len);
    flipnet_arch a;
    int st = flipnet_file_peek(c, len, &a);
    free(c);
    return st;
}

static void make_model(flipnet_model *m, void **area, uint64_t seed)
{
    const uint32_t sizes[] = {785, 33, 31, 10};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY, FLIPNET_TERNARY};
    *area = fn_test_model(m, 3, sizes, kinds, seed);
    m->layers[0].shift = 7;
    m->layers[1].shift = 3;
    m->rule.vote = FLIPNET_VOTE_WEIGHTED;
    m->rule.filter = FLIPNET_FILTER_NET;
    m->rule.margin = 64;
    m->steps = 0x0102030405060708ull;
    m->samples = 0xA1A2A3A4A5A6A7A8ull;
}

static void test_roundtrip(void)
{
    flipnet_model m, r;
    void *area, *area2;
    const char *meta = "{\"schedule\": \"linear\", \"history\": [1, 2, 3]}";
    size_t ml = strlen(meta), fs = 0, wr = 0, mb = 0, wb;
    uint8_t *buf;
    const uint8_t *mp = NULL;
    flipnet_arch a;
    make_model(&m, &area, 77);
    wb = m.weight_bytes;
    /* 785 inputs: 99 bytes per plane row; layer 0 33 x 2 x 99 = 6534 -> 6536, layer 1 (binary)
     * 31 x 1 x 5 = 155 -> 156, layer 2 10 x 2 x 4 = 80 */
    CHECK_EQ(wb, 6536u + 156u + 80u);
    CHECK_ST(flipnet_file_size(&m, ml, &fs), FLIPNET_OK);
    CHECK_EQ(fs, 64u + 3u * 24u + wb + ml + 4u);
    buf = malloc(fs);
    REQUIRE(buf != NULL);
    CHECK_ST(flipnet_file_write(&m, (const uint8_t *)meta, ml, buf, fs, &wr), FLIPNET_OK);
    CHECK_EQ(wr, fs);
    /* a few fixed bytes of the layout */
    CHECK(memcmp(buf, "FLIPNET\0", 8) == 0);
    CHECK_EQ(fn_rd32(buf + 8), 1);
    CHECK_EQ(fn_rd32(buf + 12), 64 + 72);
    CHECK_EQ(fn_rd32(buf + 16), 3);
    CHECK(buf[20] == 1 && buf[21] == 1 && buf[22] == 0 && buf[23] == 32);
    CHECK(buf[60] == 0 && buf[61] == 0 && buf[62] == 0 && buf[63] == 0); /* no counters */
    CHECK_EQ(fn_rd32(buf + 24), 64);
    CHECK_EQ(fn_rd32(buf + 28), ml);
    CHECK(fn_rd64(buf + 32) == 77u && buf[40] == 0x08 && buf[47] == 0x01 && buf[48] == 0xA8);
    CHECK_EQ(fn_rd32(buf + 56), wb);
    CHECK(buf[64] == 1 && buf[65] == 7 && fn_rd32(buf + 68) == 785 && fn_rd32(buf + 72) == 33);
    CHECK(fn_rd32(buf + 76) == 99 && fn_rd32(buf + 80) == 0);
    CHECK(buf[88] == 2 && buf[89] == 3 && fn_rd32(buf + 88 + 12) == 5 && fn_rd32(buf + 88 + 16) == 6536);
    CHECK(fn_rd32(buf + 112 + 12) == 4 && fn_rd32(buf + 112 + 16) == 6536 + 156);
    CHECK(memcmp(buf + 136, m.weights, wb) == 0); /* the weight area, byte for byte */
    CHECK(buf[136 + 6534] == 0 && buf[136 + 6535] == 0 && buf[136 + 6536 + 155] == 0);
    CHECK(memcmp(buf + 136 + wb, meta, ml) == 0);
    CHECK_EQ(fn_rd32(buf + fs - 4u), flipnet_crc32(0, buf, fs - 4u));

    CHECK_ST(flipnet_file_peek(buf, fs, &a), FLIPNET_OK);
    CHECK(a.n_layers == 3 && a.sizes[0] == 785 && a.sizes[1] == 33 && a.sizes[2] == 31 &&
          a.sizes[3] == 10 && a.kinds[0] == 1 && a.kinds[1] == 2 && a.kinds[2] == 1);
    CHECK_ST(flipnet_file_peek(buf, fs, NULL), FLIPNET_OK);
    CHECK_ST(flipnet_file_meta(buf, fs, &mp, &mb), FLIPNET_OK);
    CHECK(mb == ml && mp == buf + 136 + wb);
    {
        size_t need = 0;
        REQUIRE(flipnet_model_size(&a, &need) == FLIPNET_OK);
        CHECK_EQ(need, wb);
        area2 = malloc(need);
        REQUIRE(area2 != NULL);
        CHECK_ST(flipnet_file_read(&r, buf, fs, area2, need - 1u), FLIPNET_E_NOMEM);
        CHECK_ST(flipnet_file_read(&r, buf, fs, (uint8_t *)area2 + 1, need), FLIPNET_E_ALIGN);
        CHECK_ST(flipnet_file_read(NULL, buf, fs, area2, need), FLIPNET_E_NULL);
        CHECK_ST(flipnet_file_read(&r, buf, fs, NULL, need), FLIPNET_E_NULL);
        CHECK_ST(flipnet_file_read(&r, buf, fs, area2, need), FLIPNET_OK);
        CHECK(memcmp(area, area2, wb) == 0);
        CHECK(r.n_layers == 3 && memcmp(r.layers, m.layers, sizeof(m.layers[0]) * 3) == 0);
        CHECK(r.rule.vote == 1 && r.rule.filter == 1 && r.rule.margin == 64);
        CHECK(r.seed == 77u && r.steps == m.steps && r.samples == m.samples);
        CHECK(r.weights == area2 && r.weight_bytes == m.weight_bytes);
        /* writing the read model gives the same bytes */
        {
            uint8_t *b2 = malloc(fs);
            REQUIRE(b2 != NULL);
            CHECK_ST(flipnet_file_write(&r, (const uint8_t *)meta, ml, b2, fs, NULL), FLIPNET_OK);
            CHECK(memcmp(buf, b2, fs) == 0);
            free(b2);
        }
        free(area2);
    }
    /* empty metadata */
    CHECK_ST(flipnet_file_size(&m, 0, &fs), FLIPNET_OK);
    CHECK_ST(flipnet_file_write(&m, NULL, 0, buf, fs, &wr), FLIPNET_OK);
    CHECK_ST(flipnet_file_meta(buf, fs, &mp, &mb), FLIPNET_OK);
    CHECK(mb == 0);
    /* writer statuses */
    CHECK_ST(flipnet_file_write(&m, NULL, 3, buf, fs + 3u, &wr), FLIPNET_E_NULL);
    CHECK_ST(flipnet_file_write(&m, NULL, 0, NULL, fs, &wr), FLIPNET_E_NULL);
    CHECK_ST(flipnet_file_write(&m, NULL, 0, buf, fs - 1u, &wr), FLIPNET_E_NOMEM);
    CHECK_ST(flipnet_file_write(NULL, NULL, 0, buf, fs, &wr), FLIPNET_E_NULL);
    CHECK_ST(flipnet_file_size(&m, 0, NULL), FLIPNET_E_NULL);
    CHECK_ST(flipnet_file_size(NULL, 0, &fs), FLIPNET_E_NULL);
    {
        flipnet_model b = m;
        b.rule.vote = 9;
        CHECK_ST(flipnet_file_write(&b, NULL, 0, buf, fs, &wr), FLIPNET_E_ARG);
        b = m;
        b.rule.margin = -1;
        CHECK_ST(flipnet_file_write(&b, NULL, 0, buf, fs, &wr), FLIPNET_E_ARG);
        b = m;
        b.layers[2].m = 11;
        CHECK_ST(flipnet_file_write(&b, NULL, 0, buf, fs, &wr), FLIPNET_E_SHAPE);
        /* a weight with both bits set is refused (neg plane of row 0 at byte 99) */
        m.weights[0] |= 1u;
        m.weights[99] |= 1u;
        CHECK_ST(flipnet_file_write(&m, NULL, 0, buf, fs, &wr), FLIPNET_E_ARG);
        m.weights[99] &= (uint8_t)~1u;
        /* a padding bit is refused: 785 = 98 * 8 + 1, bit 1 of byte 98 is padding */
        m.weights[98] |= 1u << 1;
        CHECK_ST(flipnet_file_write(&m, NULL, 0, buf, fs, &wr), FLIPNET_E_ARG);
        m.weights[98] &= (uint8_t)~(1u << 1);
        /* the bytes that round a layer up to 4 are written as 0 whatever the memory holds */
        m.weights[6535] = 0x5A;
        CHECK_ST(flipnet_file_write(&m, NULL, 0, buf, fs, &wr), FLIPNET_OK);
        CHECK(buf[136 + 6535] == 0);
        CHECK_ST(flipnet_file_peek(buf, fs, NULL), FLIPNET_OK);
        m.weights[6535] = 0;
    }
    /* reader NULLs */
    CHECK_ST(flipnet_file_peek(NULL, fs, &a), FLIPNET_E_NULL);
    CHECK_ST(flipnet_file_meta(buf, fs, NULL, &mb), FLIPNET_E_NULL);
    CHECK_ST(flipnet_file_meta(buf, fs, &mp, NULL), FLIPNET_E_NULL);
    free(buf);
    free(area);
}

/* Cut a valid file at every length: always TRUNCATED, never a read out of bounds. */
static void test_truncation(void)
{
    flipnet_model m;
    void *area;
    size_t fs = 0, len, bad = 0;
    uint8_t *buf;
    const uint8_t meta[5] = {'a', 'b', 'c', 'd', 'e'};
    const uint32_t sizes[] = {40, 9, 3};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY};
    area = fn_test_model(&m, 2, sizes, kinds, 5);
    REQUIRE(flipnet_file_size(&m, 5, &fs) == FLIPNET_OK);
    buf = malloc(fs);
    REQUIRE(buf != NULL);
    REQUIRE(flipnet_file_write(&m, meta, 5, buf, fs, NULL) == FLIPNET_OK);
    for (len = 0; len < fs; len++) {
        if (peek_exact(buf, len) != FLIPNET_E_FMT_TRUNCATED) {
            bad++;
            fprintf(stderr, "truncated at %zu: %d\n", len, peek_exact(buf, len));
        }
    }
    CHECK_EQ(bad, 0);
    CHECK_ST(peek_exact(buf, fs), FLIPNET_OK);
    /* one byte too many */
    {
        uint8_t *big = malloc(fs + 1u);
        REQUIRE(big != NULL);
        memcpy(big, buf, fs);
        big[fs] = 0;
        CHECK_ST(flipnet_file_peek(big, fs + 1u, NULL), FLIPNET_E_FMT_SIZE);
        free(big);
    }
    free(buf);
    free(area);
}

/* Flip every byte (and single bits): never OK, never out of bounds; the status fits the field. */
static void test_flips(void)
{
    flipnet_model m;
    void *area;
    size_t fs = 0, i, notok = 0, crc = 0;
    uint8_t *buf;
    const uint8_t meta[3] = {'{', '}', '\n'};
    const uint32_t sizes[] = {33, 5, 4};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_TERNARY};
    uint32_t bit;
    area = fn_test_model(&m, 2, sizes, kinds, 6);
    REQUIRE(flipnet_file_size(&m, 3, &fs) == FLIPNET_OK);
    buf = malloc(fs);
    REQUIRE(buf != NULL);
    REQUIRE(flipnet_file_write(&m, meta, 3, buf, fs, NULL) == FLIPNET_OK);
    for (i = 0; i < fs; i++) {
        for (bit = 0; bit < 9u; bit++) {
            uint8_t mask = bit == 8u ? 0xFF : (uint8_t)(1u << bit);
            int st;
            buf[i] ^= mask;
            st = peek_exact(buf, fs);
            buf[i] ^= mask;
            if (st != FLIPNET_OK) notok++;
            if (st == FLIPNET_E_FMT_CRC) crc++;
            if (i < 8u) CHECK(st == FLIPNET_E_FMT_MAGIC);
            else if (i < 12u) CHECK(st == FLIPNET_E_FMT_VERSION);
            else if (i >= 136u + 24u) CHECK(st == FLIPNET_E_FMT_CRC); /* weights, meta, crc */
            else CHECK(st < 0);
        }
    }
    CHECK_EQ(notok, fs * 9u);
    CHECK(crc > 0);
    free(buf);
    free(area);
}

/* Each corruption with its own status (CRC re-sealed so the intended check fires). */
static void test_cases(void)
{
    flipnet_model m;
    void *area;
    size_t fs = 0;
    uint8_t *good, *b;
    const uint32_t sizes[] = {33, 5, 4};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY};
    area = fn_test_model(&m, 2, sizes, kinds, 8);
    REQUIRE(flipnet_file_size(&m, 2, &fs) == FLIPNET_OK);
    good = malloc(fs);
    b = malloc(fs);
    REQUIRE(good && b);
    REQUIRE(flipnet_file_write(&m, (const uint8_t *)"{}", 2, good, fs, NULL) == FLIPNET_OK);
    /* header: 64, layers 2 x 24 -> weights at 112: layer 0 is 5 rows x 2 planes x 5 bytes
     * = 50 + 2 zero bytes, layer 1 (at 52) 4 rows x 1 plane x 1 byte; weight_bytes 56 */
#define CASE(edit, want)                                                                           \
    do {                                                                                           \
        memcpy(b, good, fs);                                                                       \
        edit;                                                                                      \
        reseal(b, fs);                                                                             \
        CHECK_ST(peek_exact(b, fs), want);                                                         \
    } while (0)
    CASE((void)0, FLIPNET_OK);
    CASE(b[0] = 'f', FLIPNET_E_FMT_MAGIC);
    CASE(b[7] = 1, FLIPNET_E_FMT_MAGIC);
    CASE(fn_wr32(b + 8, 2), FLIPNET_OK); /* v2 holds every v1 model unchanged */
    CASE(fn_wr32(b + 8, 3), FLIPNET_E_FMT_VERSION);
    CASE(fn_wr32(b + 8, 0), FLIPNET_E_FMT_VERSION);
    CASE(fn_wr32(b + 12, 64 + 24 * 3), FLIPNET_E_FMT_SIZE);
    CASE(fn_wr32(b + 16, 0), FLIPNET_E_FMT_VALUE);
    CASE(fn_wr32(b + 16, 9), FLIPNET_E_FMT_VALUE);
    CASE(fn_wr32(b + 16, 3), FLIPNET_E_FMT_SIZE); /* header_bytes says 2 layers */
    CASE(b[20] = 2, FLIPNET_E_FMT_VALUE);
    CASE(b[21] = 2, FLIPNET_E_FMT_VALUE);
    CASE(b[22] = 1, FLIPNET_E_FMT_VALUE);
    CASE(b[23] = 0, FLIPNET_E_FMT_VALUE);    /* calib_target 1..127 */
    CASE(b[23] = 128, FLIPNET_E_FMT_VALUE);
    CASE(b[23] = 127, FLIPNET_OK);
    CASE(fn_wr32(b + 24, 0xFFFFFFFFu), FLIPNET_E_FMT_VALUE); /* margin -1 */
    CASE(fn_wr32(b + 28, 3), FLIPNET_E_FMT_TRUNCATED);       /* meta longer than the file */
    CASE(fn_wr32(b + 28, 1), FLIPNET_E_FMT_SIZE);            /* bytes left over */
    CASE(fn_wr32(b + 56, 60), FLIPNET_E_FMT_SIZE);
    CASE(fn_wr32(b + 56, 54), FLIPNET_E_FMT_SIZE);           /* rows only, layer 0 not rounded */
    CASE(b[60] = 31, FLIPNET_OK);            /* counter_shift */
    CASE(b[60] = 32, FLIPNET_E_FMT_VALUE);
    CASE(b[61] = 1, FLIPNET_E_FMT_VALUE);    /* counter_threshold without counters */
    CASE(b[62] = 2, FLIPNET_E_FMT_VALUE);    /* unknown flag */
    CASE(b[62] = 1, FLIPNET_E_FMT_SIZE);     /* counters flag: layer 1's counter offset is 0 */
    CASE(b[63] = 1, FLIPNET_E_FMT_VALUE);    /* counter_decay without the counters rule */
    CASE(b[64] = 0, FLIPNET_E_FMT_VALUE);   /* kind */
    CASE(b[64] = 3, FLIPNET_E_FMT_VALUE);
    CASE(b[65] = 32, FLIPNET_E_FMT_VALUE);  /* shift */
    CASE(b[65] = 31, FLIPNET_OK);
    CASE(b[66] = 1, FLIPNET_E_FMT_VALUE);   /* reserved u16 */
    CASE(fn_wr32(b + 84, 1), FLIPNET_E_FMT_VALUE);
    CASE(fn_wr32(b + 68, 0), FLIPNET_E_FMT_SIZE);       /* n = 0 */
    CASE(fn_wr32(b + 68, 65536), FLIPNET_E_FMT_SIZE);   /* n too wide */
    CASE(fn_wr32(b + 68, 32), FLIPNET_E_FMT_SIZE);      /* n: bpr no longer matches */
    CASE(fn_wr32(b + 68, 40), FLIPNET_OK);              /* n = 40: same bpr, bits 33..39 are 0 */
    CASE(fn_wr32(b + 72, 6), FLIPNET_E_FMT_SIZE);       /* m: chain to layer 1 broken */
    CASE(fn_wr32(b + 76, 2), FLIPNET_E_FMT_SIZE);       /* bpr (2: the old words per row) */
    CASE(fn_wr32(b + 76, 4), FLIPNET_E_FMT_SIZE);
    CASE(fn_wr32(b + 80, 1), FLIPNET_E_FMT_SIZE);       /* offset of layer 0 */
    CASE(fn_wr32(b + 88 + 16, 50), FLIPNET_E_FMT_SIZE); /* offset of layer 1, not rounded to 4 */
    CASE(fn_wr32(b + 88 + 16, 56), FLIPNET_E_FMT_SIZE);
    CASE(fn_wr32(b + 88 + 12, 4), FLIPNET_E_FMT_SIZE);  /* bpr of layer 1 */
    CASE(fn_wr32(b + 88 + 4, 6), FLIPNET_E_FMT_SIZE);   /* layer 1 n != layer 0 m */
    CASE(b[88] = 1, FLIPNET_E_FMT_SIZE);                /* layer 1 ternary: weight_bytes wrong */
    CASE(b[112] = 1u, FLIPNET_OK);                      /* pos bits 0..7 of row 0: only 0 */
    CASE(b[112 + 5] |= 1u, FLIPNET_E_FMT_VALUE);        /* ternary pos and neg of weight 0 */
    CASE((b[112 + 4] = 1u, b[112 + 9] = 0u), FLIPNET_OK); /* input 32 = +1 */
    CASE(b[112 + 4] |= 2u, FLIPNET_E_FMT_VALUE);        /* padding bit 33 of the pos plane */
    CASE(b[112 + 9] |= 0x80u, FLIPNET_E_FMT_VALUE);     /* padding bit 39 of the neg plane */
    CASE(b[112 + 49] |= 0x04u, FLIPNET_E_FMT_VALUE);    /* row 4, neg plane, padding bit 34 */
    CASE(b[112 + 50] = 1u, FLIPNET_E_FMT_VALUE);        /* layer 0's padding bytes 50, 51 */
    CASE(b[112 + 51] = 0x80u, FLIPNET_E_FMT_VALUE);
    CASE(b[112 + 52] ^= 0x10u, FLIPNET_OK);             /* binary row 0, input 4 (n = 5) */
    CASE(b[112 + 52] |= 0x20u, FLIPNET_E_FMT_VALUE);    /* binary row 0, padding bit 5 */
    CASE(b[112 + 55] |= 0x80u, FLIPNET_E_FMT_VALUE);    /* binary row 3, padding bit 7 */
#undef CASE
    memcpy(b, good, fs);
    b[fs - 1u] ^= 1u;
    CHECK_ST(peek_exact(b, fs), FLIPNET_E_FMT_CRC);
    free(good);
    free(b);
    free(area);
}

/* A model with counters (arch.counters = 1) over a malloc'd area; counters set to a pattern
 * with every value in [-127, 127]. */
static void *counters_model(flipnet_model *model, uint32_t n_layers, const uint32_t *sizes,
                            const uint8_t *kinds, uint64_t seed)
{
    flipnet_arch arch;
    size_t bytes = 0, i;
    void *w;
    uint32_t l;
    memset(&arch, 0, sizeof(arch));
    arch.n_layers = n_layers;
    arch.counters = 1;
    for (l = 0; l <= n_layers; l++) arch.sizes[l] = sizes[l];
    for (l = 0; l < n_layers; l++) arch.kinds[l] = kinds[l];
    REQUIRE(flipnet_model_size(&arch, &bytes) == FLIPNET_OK);
    w = malloc(bytes);
    REQUIRE(w != NULL);
    REQUIRE(flipnet_model_init(model, &arch, w, bytes, seed) == FLIPNET_OK);
    REQUIRE(model->counters == (int8_t *)w + model->weight_bytes);
    for (l = 0; l < n_layers; l++) {
        size_t cnt = (size_t)sizes[l] * sizes[l + 1u];
        int8_t *h = malloc(cnt);
        REQUIRE(h != NULL);
        for (i = 0; i < cnt; i++) h[i] = (int8_t)((int)((i * 37u + l * 11u + seed) % 255u) - 127);
        REQUIRE(flipnet_counters_set(model, l, h) == FLIPNET_OK);
        free(h);
    }
    model->rule.counter_shift = 3;
    model->rule.counter_threshold = 9;
    model->rule.calib_target = 100;
    return w;
}

/* Files with counters: layout, round trip, truncation, flips, corruption statuses. */
static void test_counters_file(void)
{
    flipnet_model m, r;
    void *area, *area2;
    const uint32_t sizes[] = {33, 5, 3, 2}; /* counters 165 -> 168, 15 -> 16, 6 -> 8 bytes */
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY, FLIPNET_TERNARY};
    size_t fs = 0, wb, need = 0, len, bad = 0, i, hdr = 64u + 3u * 24u, cb;
    uint8_t *buf, *b;
    const uint8_t *mp = NULL;
    size_t mb = 0;
    flipnet_arch a;
    area = counters_model(&m, 3, sizes, kinds, 21);
    wb = m.weight_bytes;
    CHECK_EQ(wb, 5u * 2u * 5u + 2u + 3u * 1u * 1u + 1u + 2u * 2u * 1u); /* 52 + 4 + 4 */
    CHECK_EQ(m.counter_bytes, 168u + 16u + 8u);
    cb = m.counter_bytes;
    CHECK_ST(flipnet_file_size(&m, 2, &fs), FLIPNET_OK);
    CHECK_EQ(fs, hdr + wb + cb + 2u + 4u);
    buf = malloc(fs);
    b = malloc(fs);
    REQUIRE(buf != NULL && b != NULL);
    CHECK_ST(flipnet_file_write(&m, (const uint8_t *)"{}", 2, buf, fs, NULL), FLIPNET_OK);
    CHECK(buf[23] == 100 && buf[60] == 3 && buf[61] == 9 && buf[62] == 1 && buf[63] == 0);
    CHECK(fn_rd32(buf + 64 + 20) == 0 && fn_rd32(buf + 88 + 20) == 168 &&
          fn_rd32(buf + 112 + 20) == 184);
    CHECK(memcmp(buf + hdr + wb, m.counters, 165) == 0);
    CHECK(buf[hdr + wb + 165] == 0 && buf[hdr + wb + 167] == 0); /* padding */
    CHECK(memcmp(buf + hdr + wb + 168, m.counters + 168, 15) == 0);
    CHECK(memcmp(buf + hdr + wb + cb, "{}", 2) == 0);
    CHECK_ST(flipnet_file_peek(buf, fs, &a), FLIPNET_OK);
    CHECK(a.n_layers == 3 && a.counters == 1 && a.sizes[3] == 2);
    CHECK_ST(flipnet_file_meta(buf, fs, &mp, &mb), FLIPNET_OK);
    CHECK(mb == 2 && mp == buf + hdr + wb + cb);
    REQUIRE(flipnet_model_size(&a, &need) == FLIPNET_OK);
    CHECK_EQ(need, wb + cb);
    area2 = malloc(need);
    REQUIRE(area2 != NULL);
    CHECK_ST(flipnet_file_read(&r, buf, fs, area2, wb), FLIPNET_E_NOMEM); /* no room for counters */
    CHECK_ST(flipnet_file_read(&r, buf, fs, area2, need - 1u), FLIPNET_E_NOMEM);
    CHECK_ST(flipnet_file_read(&r, buf, fs, area2, need), FLIPNET_OK);
    CHECK(memcmp(area, area2, need) == 0);
    CHECK(r.counters == (int8_t *)area2 + wb && r.counter_bytes == cb);
    CHECK(r.rule.calib_target == 100 && r.rule.counter_shift == 3 && r.rule.counter_threshold == 9);
    {
        int8_t h1[165], h2[165];
        CHECK_ST(flipnet_counters_get(&m, 0, h1), FLIPNET_OK);
        CHECK_ST(flipnet_counters_get(&r, 0, h2), FLIPNET_OK);
        CHECK(memcmp(h1, h2, 165) == 0);
        CHECK_ST(flipnet_file_write(&r, (const uint8_t *)"{}", 2, b, fs, NULL), FLIPNET_OK);
        CHECK(memcmp(buf, b, fs) == 0);
    }
    /* the writer refuses what the reader rejects */
    {
        flipnet_model q = m;
        q.counters[5] = -128;
        CHECK_ST(flipnet_file_write(&q, NULL, 0, b, fs, NULL), FLIPNET_E_ARG);
        q.counters[5] = 0;
        q.rule.calib_target = 0;
        CHECK_ST(flipnet_file_write(&q, NULL, 0, b, fs, NULL), FLIPNET_E_ARG);
        q = m;
        q.counters = NULL;
        q.counter_bytes = 0;
        CHECK_ST(flipnet_file_write(&q, NULL, 0, b, fs, NULL), FLIPNET_E_ARG); /* threshold 9 */
        q.rule.counter_threshold = 0;
        CHECK_ST(flipnet_file_write(&q, NULL, 0, b, fs, NULL), FLIPNET_OK);
        q = m;
        q.counter_bytes = cb - 4u;
        CHECK_ST(flipnet_file_size(&q, 0, &len), FLIPNET_E_SHAPE);
    }
    /* truncation at every length */
    for (len = 0; len < fs; len++) {
        if (peek_exact(buf, len) != FLIPNET_E_FMT_TRUNCATED) bad++;
    }
    CHECK_EQ(bad, 0);
    /* every byte flipped: never OK; counters block and after: CRC */
    bad = 0;
    for (i = 0; i < fs; i++) {
        int st;
        buf[i] ^= 0x41u;
        st = peek_exact(buf, fs);
        buf[i] ^= 0x41u;
        if (st == FLIPNET_OK || (i >= hdr && st != FLIPNET_E_FMT_CRC)) bad++;
    }
    CHECK_EQ(bad, 0);
#define CASE(edit, want)                                                                           \
    do {                                                                                           \
        memcpy(b, buf, fs);                                                                        \
        edit;                                                                                      \
        reseal(b, fs);                                                                             \
        CHECK_ST(peek_exact(b, fs), want);                                                         \
    } while (0)
    CASE((void)0, FLIPNET_OK);
    CASE(b[hdr + wb + 7] = 0x80u, FLIPNET_E_FMT_VALUE);       /* counter -128 */
    CASE(b[hdr + wb + 7] = 0x7Fu, FLIPNET_OK);
    CASE(b[hdr + wb + 7] = 0x81u, FLIPNET_OK);                /* -127 */
    CASE(b[hdr + wb + 166] = 1, FLIPNET_E_FMT_VALUE);         /* padding of layer 0 */
    CASE(b[hdr + wb + cb - 1u] = 1, FLIPNET_E_FMT_VALUE);     /* padding of layer 2 */
    CASE(fn_wr32(b + 88 + 20, 165), FLIPNET_E_FMT_SIZE);      /* counter offset of layer 1 */
    CASE(fn_wr32(b + 64 + 20, 4), FLIPNET_E_FMT_SIZE);        /* counter offset of layer 0 */
    CASE(b[62] = 0, FLIPNET_E_FMT_VALUE);                     /* no counters, threshold 9 */
    CASE((b[62] = 0, b[61] = 0), FLIPNET_E_FMT_VALUE);        /* no counters: offsets reserved */
    CASE(b[61] = 128, FLIPNET_E_FMT_VALUE);
    CASE(b[61] = 0, FLIPNET_OK);                              /* counters kept, rule off */
    CASE(b[60] = 32, FLIPNET_E_FMT_VALUE);
    CASE(b[63] = 7, FLIPNET_OK);                              /* counter_decay 7 */
    CASE(b[63] = 8, FLIPNET_E_FMT_VALUE);
    CASE((b[61] = 0, b[63] = 1), FLIPNET_E_FMT_VALUE);        /* decay with the rule off */
    CASE(fn_wr32(b + 28, 3), FLIPNET_E_FMT_TRUNCATED);
    CASE(fn_wr32(b + 28, 1), FLIPNET_E_FMT_SIZE);
#undef CASE
    free(b);
    free(buf);
    free(area2);
    free(area);
}

/* Random corruption (several bytes, header-biased, CRC re-sealed or not, random cut): the
 * reader never reads out of bounds (ASan), answers a known status, and whatever it accepts
 * loads into a usable model. */
static void test_fuzz(int counters)
{
    flipnet_model m;
    void *area;
    size_t fs = 0;
    uint8_t *good;
    const uint32_t sizes[] = {37, 6, 5, 3};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY, FLIPNET_TERNARY};
    uint32_t it, bad = 0, accepted = 0;
    area = counters ? counters_model(&m, 3, sizes, kinds, 12) : fn_test_model(&m, 3, sizes, kinds, 12);
    REQUIRE(flipnet_file_size(&m, 7, &fs) == FLIPNET_OK);
    good = malloc(fs);
    REQUIRE(good != NULL);
    REQUIRE(flipnet_file_write(&m, (const uint8_t *)"{\"a\":1}", 7, good, fs, NULL) == FLIPNET_OK);
    for (it = 0; it < 20000u; it++) {
        uint64_t r = flipnet_rand(2026, 0xF0, it);
        size_t len = fs, k, nmut = 1u + (size_t)(r & 3u);
        uint8_t *b;
        int st;
        flipnet_arch a;
        if ((r >> 2) % 8u == 0u) len = (size_t)((r >> 8) % (fs + 8u)); /* cut or extend */
        b = malloc(len ? len : 1u);
        REQUIRE(b != NULL);
        for (k = 0; k < len; k++) b[k] = k < fs ? good[k] : (uint8_t)k;
        for (k = 0; k < nmut && len > 0; k++) {
            uint64_t q = flipnet_rand(2026, 0xF1, it * 8u + k);
            size_t at = (q & 1u) ? (size_t)((q >> 1) % (len < 136u ? len : 136u)) /* header */
                                 : (size_t)((q >> 1) % len);
            uint8_t v = (uint8_t)(q >> 40);
            b[at] = (q >> 33) & 1u ? v : (uint8_t)(b[at] ^ (1u << ((q >> 34) & 7u)));
        }
        if (((r >> 5) & 1u) && len >= 4u) reseal(b, len);
        st = flipnet_file_peek(b, len, &a);
        if (!(st == FLIPNET_OK || (st <= FLIPNET_E_FMT_MAGIC && st >= FLIPNET_E_FMT_VALUE))) bad++;
        if (st == FLIPNET_OK) {
            size_t need = 0, mb = 0, sb = 0;
            const uint8_t *mp;
            flipnet_model r2;
            void *w2, *scratch;
            int8_t x[37];
            int32_t logits[3];
            accepted++;
            if (flipnet_model_size(&a, &need) != FLIPNET_OK) bad++;
            w2 = malloc(need ? need : 4u);
            REQUIRE(w2 != NULL);
            if (flipnet_file_read(&r2, b, len, w2, need) != FLIPNET_OK) bad++;
            if (flipnet_file_meta(b, len, &mp, &mb) != FLIPNET_OK || mp + mb > b + len) bad++;
            if (flipnet_scratch_size(&r2, 1, 1, &sb) != FLIPNET_OK) bad++;
            scratch = malloc(sb ? sb : 4u);
            REQUIRE(scratch != NULL);
            memset(x, 1, sizeof(x));
            if (a.sizes[0] <= 37u && a.sizes[a.n_layers] <= 3u &&
                flipnet_forward(&r2, x, 1, logits, scratch, sb) != FLIPNET_OK)
                bad++;
            free(scratch);
            free(w2);
        }
        free(b);
    }
    CHECK_EQ(bad, 0);
    CHECK(accepted > 0); /* resealed edits of shifts or rule values are valid files */
    free(good);
    free(area);
}

/* flipnet_file_crc / flipnet_file_write_range give the bytes of flipnet_file_write in any
 * pieces, for a model with counters and metadata; ranges past the end are refused. */
static void test_write_range(void)
{
    static const uint32_t sizes[] = {21, 9, 5};
    static const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY};
    static const uint8_t meta[] = "{\"source\":\"range test\"}";
    flipnet_model m;
    size_t fs = 0, off, piece;
    uint32_t crc = 0;
    uint8_t *whole, *parts;
    void *w = counters_model(&m, 2, sizes, kinds, 4);
    REQUIRE(flipnet_file_size(&m, sizeof(meta), &fs) == FLIPNET_OK);
    whole = malloc(fs);
    parts = malloc(fs);
    REQUIRE(whole != NULL && parts != NULL);
    CHECK_ST(flipnet_file_write(&m, meta, sizeof(meta), whole, fs, NULL), FLIPNET_OK);
    CHECK_ST(flipnet_file_crc(&m, meta, sizeof(meta), &crc), FLIPNET_OK);
    CHECK_EQ(crc, fn_rd32(whole + fs - 4u));
    for (piece = 1; piece <= fs; piece += piece < 8u ? 1u : 61u) {
        memset(parts, 0xA5, fs);
        for (off = 0; off < fs; off += piece) {
            size_t len = fs - off < piece ? fs - off : piece;
            CHECK_ST(flipnet_file_write_range(&m, meta, sizeof(meta), crc, off, parts + off, len),
                     FLIPNET_OK);
        }
        CHECK(memcmp(parts, whole, fs) == 0);
    }
    CHECK_ST(flipnet_file_write_range(&m, meta, sizeof(meta), crc, fs, parts, 0), FLIPNET_OK);
    CHECK_ST(flipnet_file_write_range(&m, meta, sizeof(meta), crc, fs - 2u, parts, 3), FLIPNET_E_ARG);
    CHECK_ST(flipnet_file_write_range(&m, meta, sizeof(meta), crc, 0, NULL, 4), FLIPNET_E_NULL);
    CHECK_ST(flipnet_file_crc(&m, meta, sizeof(meta), NULL), FLIPNET_E_NULL);
    m.counters[0] = -128; /* the writer's checks hold for every piece */
    CHECK_ST(flipnet_file_crc(&m, meta, sizeof(meta), &crc), FLIPNET_E_ARG);
    CHECK_ST(flipnet_file_write_range(&m, meta, sizeof(meta), crc, 0, parts, 4), FLIPNET_E_ARG);
    free(parts);
    free(whole);
    free(w);
}

int main(void)
{
    test_write_range();
    test_roundtrip();
    test_truncation();
    test_flips();
    test_cases();
    test_fuzz(0);
    test_fuzz(1);
    test_counters_file();
    return fn_test_done("test_file");
}
