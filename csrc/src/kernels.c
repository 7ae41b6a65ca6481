/* flipnet core: portable inner kernels (written so that GCC/Clang -O3 auto-vectorize them). */
#include "fn_internal.h"

void flipnet_unpack_row_ref(const uint32_t *row, uint8_t kind, uint32_t n, uint32_t wpr, int8_t *w)
{
    uint32_t full = n / 32u, wi, b;
    if (kind == FLIPNET_TERNARY) {
        const uint32_t *pos = row, *neg = row + wpr;
        for (wi = 0; wi < full; wi++) {
            uint32_t p = pos[wi], q = neg[wi];
            int8_t *o = w + (size_t)wi * 32u;
            for (b = 0; b < 32u; b++) o[b] = (int8_t)((int32_t)((p >> b) & 1u) - (int32_t)((q >> b) & 1u));
        }
        for (b = 0; b < (n & 31u); b++) {
            uint32_t p = pos[full], q = neg[full];
            w[full * 32u + b] = (int8_t)((int32_t)((p >> b) & 1u) - (int32_t)((q >> b) & 1u));
        }
    } else {
        for (wi = 0; wi < full; wi++) {
            uint32_t q = row[wi];
            int8_t *o = w + (size_t)wi * 32u;
            for (b = 0; b < 32u; b++) o[b] = (int8_t)(1 - 2 * (int32_t)((q >> b) & 1u));
        }
        for (b = 0; b < (n & 31u); b++) {
            w[full * 32u + b] = (int8_t)(1 - 2 * (int32_t)((row[full] >> b) & 1u));
        }
    }
}

void flipnet_pack_row_ref(uint32_t *row, uint8_t kind, uint32_t n, uint32_t wpr, const int8_t *w)
{
    uint32_t i;
    memset(row, 0, sizeof(uint32_t) * fn_planes(kind) * wpr);
    if (kind == FLIPNET_TERNARY) {
        for (i = 0; i < n; i++) {
            if (w[i] > 0) row[i >> 5] |= 1u << (i & 31u);
            else if (w[i] < 0) row[wpr + (i >> 5)] |= 1u << (i & 31u);
        }
    } else {
        for (i = 0; i < n; i++) {
            if (w[i] < 0) row[i >> 5] |= 1u << (i & 31u);
        }
    }
}

/* bit b of a word; a table (not 1u << b) so that the unpack loops vectorize without per-lane
 * variable shifts */
static const uint32_t fn_bit[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

void flipnet_unpack_row_s16(const uint32_t *row, uint8_t kind, uint32_t n, uint32_t wpr, int16_t *w)
{
    uint32_t full = n / 32u, wi, b;
    if (kind == FLIPNET_TERNARY) {
        const uint32_t *restrict pos = row, *restrict neg = row + wpr;
        for (wi = 0; wi < full; wi++) {
            uint32_t p = pos[wi], q = neg[wi];
            int16_t *restrict o = w + (size_t)wi * 32u;
            for (b = 0; b < 32u; b++)
                o[b] = (int16_t)((int32_t)((p & fn_bit[b]) != 0) - (int32_t)((q & fn_bit[b]) != 0));
        }
        for (b = 0; b < (n & 31u); b++) {
            uint32_t p = pos[full], q = neg[full];
            w[full * 32u + b] = (int16_t)((int32_t)((p & fn_bit[b]) != 0) - (int32_t)((q & fn_bit[b]) != 0));
        }
    } else {
        for (wi = 0; wi < full; wi++) {
            uint32_t q = row[wi];
            int16_t *restrict o = w + (size_t)wi * 32u;
            for (b = 0; b < 32u; b++) o[b] = (int16_t)(1 - 2 * (int32_t)((q & fn_bit[b]) != 0));
        }
        for (b = 0; b < (n & 31u); b++) {
            w[full * 32u + b] = (int16_t)(1 - 2 * (int32_t)((row[full] & fn_bit[b]) != 0));
        }
    }
}

static int32_t fn_dot_s8(const int8_t *restrict a, const int16_t *restrict b, uint32_t n)
{
    int32_t s = 0;
    uint32_t i;
    for (i = 0; i < n; i++) s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

void flipnet_dot_rows_s8(const int8_t *x, const int16_t *w, uint32_t n, uint32_t batch, int32_t *z)
{
    uint32_t b;
    for (b = 0; b < batch; b++) z[b] = fn_dot_s8(x + (size_t)b * n, w, n);
}

int fn_input_has_m128(const int8_t *x, size_t count)
{
    size_t i;
    int bad = 0;
    for (i = 0; i < count; i++) bad |= (x[i] == -128);
    return bad;
}

#define FN_ZCHUNK 16u

void fn_layer_forward(const flipnet_model *model, uint32_t l, const int8_t *x, uint32_t batch,
                      int8_t *act, int32_t *z, uint64_t *sum_abs, uint32_t *clipped, int16_t *wrow)
{
    const flipnet_layer *L = &model->layers[l];
    uint32_t n = L->n, m = L->m, s = L->shift, j, b0, c;
    int32_t zb[FN_ZCHUNK];
    uint64_t sa = 0;
    uint32_t clip = 0;
    for (j = 0; j < m; j++) {
        flipnet_unpack_row_s16(fn_row(model, L, j), L->kind, n, L->wpr, wrow);
        for (b0 = 0; b0 < batch; b0 += FN_ZCHUNK) {
            uint32_t cnt = batch - b0 < FN_ZCHUNK ? batch - b0 : FN_ZCHUNK;
            flipnet_dot_rows_s8(x + (size_t)b0 * n, wrow, n, cnt, zb);
            for (c = 0; c < cnt; c++) {
                int32_t v = zb[c];
                size_t at = (size_t)(b0 + c) * m + j;
                if (sum_abs != NULL) sa += (uint64_t)(v < 0 ? -(int64_t)v : (int64_t)v);
                if (z != NULL) z[at] = v;
                if (act != NULL || clipped != NULL) {
                    int32_t a = fn_floor_shift(v, s);
                    clip += (uint32_t)(a > 127 || a < -127);
                    if (act != NULL) act[at] = (int8_t)fn_clamp127(a);
                }
            }
        }
    }
    if (sum_abs != NULL) *sum_abs += sa;
    if (clipped != NULL) *clipped += clip;
}
