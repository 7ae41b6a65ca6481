/* The core built with FLIPNET_NO_FLOAT (CMake target flipnet_core_nofloat; with
 * -mgeneral-regs-only where the compiler has it, so any float operation in the core fails the
 * build): integer models train exactly as with the normal core, FP32 layers are refused with
 * FLIPNET_E_ARG at init, load and train, the float entry points answer FLIPNET_E_ARG. */
#include "fn_internal.h"
#include "fn_test.h"
#include "fn_integer_run.h"

#ifndef FLIPNET_NO_FLOAT
#error "test_nofloat must be built against flipnet_core_nofloat (FLIPNET_NO_FLOAT)"
#endif

/* A valid v2 file of a 4-3-2 model, FP32 then ternary, no counters, no AdamW block, written by
 * hand (this core cannot write one): W (3, 4) and bias (3) float32 LE, then the ternary rows. */
static uint8_t *v2_file(size_t *len)
{
    size_t hdr = 64 + 2 * 24, wb = 4 * (12 + 3) + 4, total = hdr + wb + 4, i;
    uint8_t *b = calloc(1, total);
    REQUIRE(b != NULL);
    memcpy(b, "FLIPNET\0", 8);
    fn_wr32(b + 8, 2);
    fn_wr32(b + 12, (uint32_t)hdr);
    fn_wr32(b + 16, 2);
    b[20] = 0;  /* vote */
    b[21] = 0;  /* filter */
    b[22] = 0;  /* backprop */
    b[23] = 32; /* calib_target */
    fn_wr32(b + 56, (uint32_t)wb);
    b[64] = FLIPNET_FP32;
    b[65] = 5;
    fn_wr32(b + 64 + 4, 4);
    fn_wr32(b + 64 + 8, 3);
    fn_wr32(b + 64 + 12, 0);
    fn_wr32(b + 64 + 16, 0);
    b[88] = FLIPNET_TERNARY;
    fn_wr32(b + 88 + 4, 3);
    fn_wr32(b + 88 + 8, 2);
    fn_wr32(b + 88 + 12, 1);
    fn_wr32(b + 88 + 16, 60);
    for (i = 0; i < 15; i++) fn_wr32(b + hdr + 4 * i, 0x3F000000u); /* 0.5 */
    b[hdr + 60] = 1; /* row 0: pos bit of input 0 */
    b[hdr + 61] = 2; /* row 0: neg bit of input 1 */
    fn_wr32(b + total - 4, flipnet_crc32(0, b, total - 4));
    *len = total;
    return b;
}

int main(void)
{
    flipnet_arch a;
    flipnet_model m;
    size_t bytes = 0, len;
    uint8_t *buf;
    uint32_t area[128]; /* 4-byte aligned */
    uint32_t l;
    /* integer models: bit for bit the normal core's results */
    CHECK_EQ(fn_integer_run(0), FN_INTEGER_RUN_CRC0);
    CHECK_EQ(fn_integer_run(1), FN_INTEGER_RUN_CRC1);
    CHECK_EQ(fn_integer_run(2), FN_INTEGER_RUN_CRC2);
    /* FP32 layers: refused at init */
    memset(&a, 0, sizeof(a));
    a.n_layers = 2;
    a.sizes[0] = 4;
    a.sizes[1] = 3;
    a.sizes[2] = 2;
    a.kinds[0] = FLIPNET_FP32;
    a.kinds[1] = FLIPNET_TERNARY;
    CHECK_ST(flipnet_model_size(&a, &bytes), FLIPNET_E_ARG);
    CHECK_ST(flipnet_model_init(&m, &a, area, sizeof(area), 1), FLIPNET_E_ARG);
    /* ... at load: the file is valid (peek reports it), this core cannot run it */
    buf = v2_file(&len);
    CHECK_ST(flipnet_file_peek(buf, len, &a), FLIPNET_OK);
    CHECK_EQ(a.kinds[0], FLIPNET_FP32);
    CHECK_ST(flipnet_file_read(&m, buf, len, area, sizeof(area)), FLIPNET_E_ARG);
    /* ... and at train / forward: a model struct with an FP32 layer is invalid here */
    a.kinds[0] = FLIPNET_TERNARY;
    REQUIRE(flipnet_model_size(&a, &bytes) == FLIPNET_OK);
    REQUIRE(flipnet_model_init(&m, &a, area, sizeof(area), 1) == FLIPNET_OK);
    {
        int8_t x[4] = {1, 2, 3, 4};
        uint16_t y[1] = {1};
        float lf[2], w[15];
        int32_t li[2];
        uint32_t sc[1024];
        size_t sb = 0;
        flipnet_step_params p;
        memset(&p, 0, sizeof(p));
        REQUIRE(flipnet_scratch_size(&m, 1, 1, &sb) == FLIPNET_OK && sb <= sizeof(sc));
        CHECK_ST(flipnet_forward(&m, x, 1, li, sc, sizeof(sc)), FLIPNET_OK);
        CHECK_ST(flipnet_forward_f32(&m, x, 1, lf, sc, sizeof(sc)), FLIPNET_E_ARG);
        CHECK_ST(flipnet_layer_get_f32(&m, 0, w), FLIPNET_E_ARG);
        CHECK_ST(flipnet_layer_set_f32(&m, 0, w), FLIPNET_E_ARG);
        m.layers[0].kind = FLIPNET_FP32;
        m.layers[0].bpr = 0;
        CHECK_ST(flipnet_train_step(&m, x, y, 1, &p, NULL, sc, sizeof(sc)), FLIPNET_E_ARG);
        CHECK_ST(flipnet_forward(&m, x, 1, li, sc, sizeof(sc)), FLIPNET_E_ARG);
    }
    for (l = 0; l < 1; l++) (void)l;
    free(buf);
    return fn_test_done("test_nofloat");
}
