/* Inference over a read-only model (flipnet_model_view; the headers of
 * `flipnet export --format c` rely on it): view_scratch_size / view_forward / view_predict on a
 * view that is itself static const data, weights included, with the same results as the model
 * in RAM. On a hosted build the view is in read-only memory, so any write through it would
 * crash this test. */
#include "fn_test.h"

/* 12-3-2: layer 0 ternary (bpr 2, rows of 4 bytes, 12 bytes), layer 1 binary (bpr 1, rows of
 * 1 byte, 2 bytes + 2 bytes of layer padding). Padding bits (inputs >= n) are 0. */
static const union {
    uint32_t align;
    uint8_t bytes[16];
} const_weights = {.bytes = {
    0x0f, 0x00, 0x00, 0x0f, /* row 0: +1 on inputs 0..3, -1 on 8..11 */
    0xf0, 0x00, 0x0f, 0x00, /* row 1: +1 on 4..7, -1 on 0..3 */
    0x00, 0x0f, 0xf0, 0x00, /* row 2: +1 on 8..11, -1 on 4..7 */
    0x01,                   /* binary row 0: -1, +1, +1 */
    0x06,                   /* binary row 1: +1, -1, -1 */
    0x00, 0x00,             /* layer padding */
}};

/* 12 -> 3 (ternary, shift 1) -> 2 (binary), offsets 0 and 12 */
static const flipnet_model_view view = {
    2,
    {{FLIPNET_TERNARY, 1, 0, 12, 3, 2, 0}, {FLIPNET_BINARY, 0, 0, 3, 2, 1, 12}},
    const_weights.bytes,
    16};
/* the same with a layer that does not chain (3 outputs, 4 inputs) */
static const flipnet_model_view bad_view = {
    2,
    {{FLIPNET_TERNARY, 1, 0, 12, 3, 2, 0}, {FLIPNET_BINARY, 0, 0, 4, 2, 1, 12}},
    const_weights.bytes,
    16};

static void expected_weights(int8_t *w0, int8_t *w1)
{
    int i;
    for (i = 0; i < 12; i++) {
        int g = i / 4; /* input group 0, 1, 2 */
        w0[0 * 12 + i] = (int8_t)(g == 0 ? 1 : g == 2 ? -1 : 0);
        w0[1 * 12 + i] = (int8_t)(g == 1 ? 1 : g == 0 ? -1 : 0);
        w0[2 * 12 + i] = (int8_t)(g == 2 ? 1 : g == 1 ? -1 : 0);
    }
    w1[0] = -1; w1[1] = 1; w1[2] = 1;
    w1[3] = 1; w1[4] = -1; w1[5] = -1;
}

int main(void)
{
    const uint32_t sizes[] = {12, 3, 2};
    const uint8_t kinds[] = {FLIPNET_TERNARY, FLIPNET_BINARY};
    enum { B = 40 };
    flipnet_model ram;
    int8_t w0[36], w1[6];
    int8_t x[B * 12];
    int32_t z_ram[B * 2], z_rom[B * 2];
    uint16_t c_ram[B], c_rom[B];
    size_t sbytes = 0, sbytes_rom = 0;
    void *area, *scratch;
    int b;

    /* the same weights through the core's own packing: the table above is its layout */
    area = fn_test_model(&ram, 2, sizes, kinds, 5);
    expected_weights(w0, w1);
    REQUIRE(flipnet_layer_set(&ram, 0, w0) == FLIPNET_OK);
    REQUIRE(flipnet_layer_set(&ram, 1, w1) == FLIPNET_OK);
    CHECK_EQ(ram.weight_bytes, sizeof(const_weights.bytes));
    CHECK(memcmp(ram.weights, const_weights.bytes, sizeof(const_weights.bytes)) == 0);
    ram.layers[0].shift = 1;

    /* the const model: struct and weights read-only, layers as the RAM model lays them out */
    CHECK_EQ(view.n_layers, ram.n_layers);
    CHECK(memcmp(view.layers, ram.layers, sizeof(flipnet_layer) * 2) == 0);

    CHECK_ST(flipnet_view_scratch_size(&view, B, &sbytes_rom), FLIPNET_OK);
    scratch = fn_test_scratch(&ram, B, 0, &sbytes);
    CHECK_EQ(sbytes_rom, sbytes);
    fn_test_fill_s8(x, sizeof(x), 77);

    CHECK_ST(flipnet_forward(&ram, x, B, z_ram, scratch, sbytes), FLIPNET_OK);
    CHECK_ST(flipnet_view_forward(&view, x, B, z_rom, scratch, sbytes), FLIPNET_OK);
    CHECK(memcmp(z_ram, z_rom, sizeof(z_ram)) == 0);
    CHECK_ST(flipnet_predict(&ram, x, B, c_ram, scratch, sbytes), FLIPNET_OK);
    CHECK_ST(flipnet_view_predict(&view, x, B, c_rom, scratch, sbytes), FLIPNET_OK);
    CHECK(memcmp(c_ram, c_rom, sizeof(c_ram)) == 0);
    for (b = 0; b < B; b++) CHECK(c_rom[b] < 2u);

    /* a view is checked as a model is */
    CHECK_ST(flipnet_view_predict(NULL, x, B, c_rom, scratch, sbytes), FLIPNET_E_NULL);
    CHECK_ST(flipnet_view_scratch_size(NULL, B, &sbytes_rom), FLIPNET_E_NULL);
    CHECK_ST(flipnet_view_predict(&bad_view, x, B, c_rom, scratch, sbytes), FLIPNET_E_SHAPE);
    CHECK_ST(flipnet_view_forward(&view, x, B, z_rom, scratch, sbytes - 1u), FLIPNET_E_NOMEM);
    x[3] = -128;
    CHECK_ST(flipnet_view_predict(&view, x, B, c_rom, scratch, sbytes), FLIPNET_E_INPUT);

    free(scratch);
    free(area);
    return fn_test_done("test_const");
}
