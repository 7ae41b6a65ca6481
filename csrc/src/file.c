/* flipnet core: model file format v1 and v2 (docs/format.md). Little-endian, byte by byte;
 * every length is checked before the bytes it covers are read. Models without FP32 layers are
 * written as v1, models with them as v2 (FP32 layer blocks as float32 bit patterns, optional
 * AdamW state). No float arithmetic: floats are checked and copied as bit patterns. */
#include "fn_internal.h"

#define FN_HDR_BYTES 64u
#define FN_LAYER_BYTES 24u

typedef struct {
    uint32_t version, n_layers, header_bytes, meta_bytes, weight_bytes;
    uint32_t counters;      /* flags bit 0: the file holds counters */
    uint8_t counter_bits[FLIPNET_MAX_LAYERS]; /* per layer: 8, 4, 2; 0 for FP32 / no counters */
    uint32_t adamw;         /* flags bit 1: the file holds the AdamW state (v2) */
    uint32_t has_f32;       /* an FP32 layer exists */
    uint64_t counter_bytes; /* bytes of the counters block (0 without) */
    uint64_t opt_all;       /* bytes of the AdamW state of the architecture */
    uint64_t opt_bytes;     /* bytes of the AdamW block in the file (0 without) */
    flipnet_layer layers[FLIPNET_MAX_LAYERS];
    flipnet_rule rule;
    uint64_t seed, steps, samples;
    size_t total; /* bytes of the whole file, CRC included */
} fn_file_info;

static const uint8_t fn_magic[8] = {'F', 'L', 'I', 'P', 'N', 'E', 'T', 0};

/* Check the packed weights of a file (bytes, any alignment): no ternary weight with both the
 * pos and neg bit, no padding bit set, the layer's padding bytes (up to a multiple of 4) zero. */
static int fn_file_weights_legal(const fn_file_info *fi, const uint8_t *w)
{
    uint32_t l, j, p, i;
    for (l = 0; l < fi->n_layers; l++) {
        const flipnet_layer *L = &fi->layers[l];
        uint32_t planes = fn_planes(L->kind), tail = L->n & 7u;
        uint32_t pad = tail ? 0xFFu & ~((1u << tail) - 1u) : 0u;
        size_t rows = (size_t)L->m * planes * L->bpr, k;
        if (L->kind == FLIPNET_FP32) { /* W and bias: every float32 finite */
            uint64_t q, cnt = fn_f32_params(L->n, L->m);
            for (q = 0; q < cnt; q++) {
                if (!fn_f32_bits_finite(fn_rd32(w + (size_t)L->offset + 4u * (size_t)q))) return 0;
            }
            continue;
        }
        for (j = 0; j < L->m; j++) {
            const uint8_t *row = w + (size_t)L->offset + (size_t)j * planes * L->bpr;
            for (p = 0; p < planes; p++) {
                if (row[(size_t)p * L->bpr + L->bpr - 1u] & pad) return 0;
            }
            if (L->kind == FLIPNET_TERNARY) {
                for (i = 0; i < L->bpr; i++) {
                    if (row[i] & row[(size_t)L->bpr + i]) return 0;
                }
            }
        }
        for (k = rows; k < (size_t)fn_layer_bytes(L->kind, L->n, L->m); k++) {
            if (w[(size_t)L->offset + k] != 0) return 0;
        }
    }
    return 1;
}

/* Check a counters area (bytes, any alignment) of layers with counter widths bits[l]: every
 * counter in [-(2^(b-1) - 1), 2^(b-1) - 1] (the pattern of -2^(b-1) is invalid), the padding
 * bits of each row and the padding bytes of each layer 0. Shared by the writer and the reader. */
static int fn_counters_legal(const flipnet_layer *layers, uint32_t n_layers, const uint8_t *bits,
                             const uint8_t *h)
{
    uint32_t l, j, i;
    uint64_t off = 0;
    for (l = 0; l < n_layers; l++) {
        uint32_t b = bits[l], n = layers[l].n, per, mask, bad;
        uint64_t rb, end, q;
        if (b == 0u) continue; /* an FP32 layer: no counters */
        per = 8u / b;
        mask = (1u << b) - 1u;
        bad = 1u << (b - 1u); /* -2^(b-1) */
        rb = fn_counter_row_bytes(n, b);
        for (j = 0; j < layers[l].m; j++) {
            const uint8_t *row = h + off + j * rb;
            for (i = 0; i < n; i++) {
                if ((((uint32_t)row[i / per] >> ((i % per) * b)) & mask) == bad) return 0;
            }
            for (; i < rb * per; i++) { /* padding bits of the row's last byte */
                if ((((uint32_t)row[i / per] >> ((i % per) * b)) & mask) != 0u) return 0;
            }
        }
        end = fn_counter_layer_bytes(n, layers[l].m, b);
        for (q = (uint64_t)layers[l].m * rb; q < end; q++) {
            if (h[off + q] != 0) return 0;
        }
        off += end;
    }
    return 1;
}

/* Check the AdamW block: per FP32 layer, first moments finite, second moments finite and not
 * negative (-0 allowed). */
static int fn_file_opt_legal(const fn_file_info *fi, const uint8_t *o)
{
    uint32_t l;
    uint64_t off = 0, q, np;
    if (!fi->adamw) return 1;
    for (l = 0; l < fi->n_layers; l++) {
        if (fi->layers[l].kind != FLIPNET_FP32) continue;
        np = fn_f32_params(fi->layers[l].n, fi->layers[l].m);
        for (q = 0; q < np; q++) {
            if (!fn_f32_bits_finite(fn_rd32(o + 4u * (size_t)(off + q)))) return 0;
            if (!fn_f32_bits_nonneg(fn_rd32(o + 4u * (size_t)(off + np + q)))) return 0;
        }
        off += 2u * np;
    }
    return 1;
}

/* Full check of a file; fills fi. Order: magic, version, header sizes and values, truncation,
 * trailing bytes, CRC, weight values. A file cut at any length reports TRUNCATED. */
static flipnet_status fn_file_parse(const uint8_t *buf, size_t len, fn_file_info *fi)
{
    uint32_t l, u;
    uint64_t wbytes = 0, total;
    const uint8_t *p;
    if (buf == NULL) return FLIPNET_E_NULL;
    memset(fi, 0, sizeof(*fi));
    /* magic: a prefix of the magic is a truncated file, anything else is not a flipnet file */
    for (u = 0; u < 8u; u++) {
        if (u >= len) return FLIPNET_E_FMT_TRUNCATED;
        if (buf[u] != fn_magic[u]) return FLIPNET_E_FMT_MAGIC;
    }
    if (len < 12u) return FLIPNET_E_FMT_TRUNCATED;
    fi->version = fn_rd32(buf + 8);
    if (fi->version != FLIPNET_FILE_VERSION && fi->version != FLIPNET_FILE_VERSION_F32)
        return FLIPNET_E_FMT_VERSION;
    if (len < FN_HDR_BYTES) return FLIPNET_E_FMT_TRUNCATED;

    fi->header_bytes = fn_rd32(buf + 12);
    fi->n_layers = fn_rd32(buf + 16);
    fi->rule.vote = buf[20];
    fi->rule.filter = buf[21];
    fi->rule.backprop = buf[22];
    fi->rule.calib_target = buf[23];
    fi->rule.counter_shift = buf[60];
    fi->rule.counter_threshold = buf[61];
    fi->rule.counter_decay = buf[63];
    fi->counters = buf[62] & 1u;
    fi->adamw = (buf[62] >> 1) & 1u;
    fi->rule.counter_round = (buf[62] >> 2) & 1u;
    u = fn_rd32(buf + 24);
    fi->rule.margin = u > 0x7FFFFFFFu ? -1 : (int32_t)u; /* negative margins are invalid */
    fi->meta_bytes = fn_rd32(buf + 28);
    fi->seed = fn_rd64(buf + 32);
    fi->steps = fn_rd64(buf + 40);
    fi->samples = fn_rd64(buf + 48);
    fi->weight_bytes = fn_rd32(buf + 56);
    if (fi->n_layers < 1u || fi->n_layers > FLIPNET_MAX_LAYERS) return FLIPNET_E_FMT_VALUE;
    if (fi->header_bytes != FN_HDR_BYTES + FN_LAYER_BYTES * fi->n_layers) return FLIPNET_E_FMT_SIZE;
    /* flags: bit 0 counters; bit 1 AdamW state, v2 only; bit 2 stochastic counter rounding */
    if ((buf[62] & ~(fi->version >= 2u ? 7u : 5u)) != 0 ||
        !fn_rule_valid(&fi->rule, fi->counters != 0))
        return FLIPNET_E_FMT_VALUE;
    if (len < fi->header_bytes) return FLIPNET_E_FMT_TRUNCATED;

    for (l = 0; l < fi->n_layers; l++) {
        flipnet_layer *L = &fi->layers[l];
        p = buf + FN_HDR_BYTES + FN_LAYER_BYTES * l;
        L->kind = p[0];
        L->shift = p[1];
        L->reserved = 0;
        L->n = fn_rd32(p + 4);
        L->m = fn_rd32(p + 8);
        L->bpr = fn_rd32(p + 12);
        L->offset = fn_rd32(p + 16);
        /* FP32 layers (kind 3) exist from v2 on */
        if (L->kind != FLIPNET_TERNARY && L->kind != FLIPNET_BINARY &&
            !(L->kind == FLIPNET_FP32 && fi->version >= 2u))
            return FLIPNET_E_FMT_VALUE;
        if (L->shift > (L->kind == FLIPNET_FP32 ? 15u : 31u) || p[3] != 0)
            return FLIPNET_E_FMT_VALUE;
        /* byte 2: the counters' width, 0 = 8 bits (every file before narrower counters), 4, 2;
         * 0 for FP32 layers and without counters */
        if (p[2] != 0 && (!fi->counters || L->kind == FLIPNET_FP32 || (p[2] != 4u && p[2] != 2u)))
            return FLIPNET_E_FMT_VALUE;
        fi->counter_bits[l] = (uint8_t)(!fi->counters || L->kind == FLIPNET_FP32 ? 0u
                                        : (p[2] != 0 ? p[2] : 8u));
        if (!fi->counters && fn_rd32(p + 20) != 0) return FLIPNET_E_FMT_VALUE; /* reserved */
        if (L->n < 1u || L->n > FLIPNET_MAX_WIDTH || L->m < 1u || L->m > FLIPNET_MAX_WIDTH)
            return FLIPNET_E_FMT_SIZE;
        if (l > 0 && L->n != fi->layers[l - 1u].m) return FLIPNET_E_FMT_SIZE;
        if (L->bpr != fn_layer_bpr(L->kind, L->n) || (uint64_t)L->offset != wbytes)
            return FLIPNET_E_FMT_SIZE;
        if (fi->counters && (uint64_t)fn_rd32(p + 20) != fi->counter_bytes) return FLIPNET_E_FMT_SIZE;
        wbytes += fn_layer_bytes(L->kind, L->n, L->m);
        if (wbytes > UINT32_MAX) return FLIPNET_E_FMT_SIZE; /* offsets are 32-bit */
        fi->counter_bytes += fn_counter_layer_bytes(L->n, L->m, fi->counter_bits[l]);
        fi->opt_all += fn_opt_layer_bytes(L->kind, L->n, L->m);
        fi->has_f32 |= L->kind == FLIPNET_FP32;
    }
    if (wbytes != (uint64_t)fi->weight_bytes) return FLIPNET_E_FMT_SIZE;
    if (fi->adamw && !fi->has_f32) return FLIPNET_E_FMT_VALUE; /* AdamW state of no layer */
    fi->opt_bytes = fi->adamw ? fi->opt_all : 0u;

    total = (uint64_t)fi->header_bytes + fi->weight_bytes + fi->counter_bytes + fi->opt_bytes +
            fi->meta_bytes + 4u;
    if ((uint64_t)len < total) return FLIPNET_E_FMT_TRUNCATED;
    if ((uint64_t)len > total) return FLIPNET_E_FMT_SIZE; /* trailing bytes */
    fi->total = (size_t)total;
    if (flipnet_crc32(0, buf, fi->total - 4u) != fn_rd32(buf + fi->total - 4u))
        return FLIPNET_E_FMT_CRC;
    if (!fn_file_weights_legal(fi, buf + fi->header_bytes)) return FLIPNET_E_FMT_VALUE;
    if (!fn_counters_legal(fi->layers, fi->n_layers, fi->counter_bits,
                           buf + fi->header_bytes + fi->weight_bytes))
        return FLIPNET_E_FMT_VALUE;
    if (!fn_file_opt_legal(fi, buf + fi->header_bytes + fi->weight_bytes + (size_t)fi->counter_bytes))
        return FLIPNET_E_FMT_VALUE;
    return FLIPNET_OK;
}

flipnet_status flipnet_file_size(const flipnet_model *model, size_t meta_bytes, size_t *bytes)
{
    uint64_t total;
    flipnet_status st = fn_model_check(model);
    if (st != FLIPNET_OK) return st;
    if (bytes == NULL) return FLIPNET_E_NULL;
    if (((meta_bytes >> 16) >> 16) != 0) return FLIPNET_E_ARG; /* > UINT32_MAX (any size_t) */
    if (((model->weight_bytes >> 16) >> 16) != 0) return FLIPNET_E_SHAPE; /* > UINT32_MAX */
    total = FN_HDR_BYTES + FN_LAYER_BYTES * model->n_layers + (uint64_t)model->weight_bytes +
            (uint64_t)model->counter_bytes + (uint64_t)model->opt_bytes + meta_bytes + 4u;
    if (total > (uint64_t)SIZE_MAX) return FLIPNET_E_ARG;
    *bytes = (size_t)total;
    return FLIPNET_OK;
}

/* Checks of the writer: the reader would accept the model (rule, weights, counters, moments). */
static flipnet_status fn_write_args(const flipnet_model *model, const uint8_t *meta,
                                    size_t meta_bytes, size_t *total)
{
    uint32_t l;
    flipnet_status st = flipnet_file_size(model, meta_bytes, total);
    if (st != FLIPNET_OK) return st;
    if (meta == NULL && meta_bytes != 0) return FLIPNET_E_NULL;
    if (!fn_rule_valid(&model->rule, model->counters != NULL)) return FLIPNET_E_ARG;
    if (!fn_weights_legal(model)) return FLIPNET_E_ARG;
    if (model->counters != NULL &&
        !fn_counters_legal(model->layers, model->n_layers, model->counter_bits,
                           (const uint8_t *)model->counters))
        return FLIPNET_E_ARG;
    if (FN_HAS_F32 && model->opt != NULL) { /* the moments the reader accepts (bit patterns) */
        const uint8_t *o;
        size_t q, np;
        for (l = 0; l < model->n_layers; l++) {
            if (model->layers[l].kind != FLIPNET_FP32) continue;
            np = (size_t)fn_f32_params(model->layers[l].n, model->layers[l].m);
            o = (const uint8_t *)(model->opt + fn_opt_offset(model, l));
            for (q = 0; q < np; q++) {
                uint32_t u1, u2;
                memcpy(&u1, o + 4u * q, 4);
                memcpy(&u2, o + 4u * (np + q), 4);
                if (!fn_f32_bits_finite(u1) || !fn_f32_bits_nonneg(u2)) return FLIPNET_E_ARG;
            }
        }
    }
    return FLIPNET_OK;
}

/* The header of the file of a checked model: 64 + 24 L bytes into h (<= 256). */
static uint32_t fn_file_header(const flipnet_model *model, size_t meta_bytes, uint8_t *h)
{
    uint32_t l, hdr = FN_HDR_BYTES + FN_LAYER_BYTES * model->n_layers;
    int has_f32 = FN_HAS_F32 && fn_has_f32(model);
    memset(h, 0, hdr);
    memcpy(h, fn_magic, 8);
    fn_wr32(h + 8, has_f32 ? FLIPNET_FILE_VERSION_F32 : FLIPNET_FILE_VERSION);
    fn_wr32(h + 12, hdr);
    fn_wr32(h + 16, model->n_layers);
    h[20] = model->rule.vote;
    h[21] = model->rule.filter;
    h[22] = model->rule.backprop;
    h[23] = model->rule.calib_target;
    fn_wr32(h + 24, (uint32_t)model->rule.margin);
    fn_wr32(h + 28, (uint32_t)meta_bytes);
    fn_wr64(h + 32, model->seed);
    fn_wr64(h + 40, model->steps);
    fn_wr64(h + 48, model->samples);
    fn_wr32(h + 56, (uint32_t)model->weight_bytes);
    h[60] = model->rule.counter_shift;
    h[61] = model->rule.counter_threshold;
    h[62] = (uint8_t)((model->counters != NULL ? 1u : 0u) | (model->opt != NULL ? 2u : 0u) |
                      (model->rule.counter_round != 0u ? 4u : 0u));
    h[63] = model->rule.counter_decay;
    for (l = 0; l < model->n_layers; l++) {
        const flipnet_layer *L = &model->layers[l];
        uint8_t *p = h + FN_HDR_BYTES + FN_LAYER_BYTES * l;
        p[0] = L->kind;
        p[1] = L->shift;
        p[2] = model->counters == NULL || model->counter_bits[l] == 8u ? 0u : model->counter_bits[l];
        p[3] = 0;
        fn_wr32(p + 4, L->n);
        fn_wr32(p + 8, L->m);
        fn_wr32(p + 12, L->bpr);
        fn_wr32(p + 16, L->offset);
        fn_wr32(p + 20, model->counters != NULL ? (uint32_t)fn_counter_offset(model, l) : 0u);
    }
    return hdr;
}

/* The file as a sequence of segments, written through a window: the bytes of the file at
 * [w0, w0 + wlen) go to out, and with crc != NULL every byte goes into *crc. */
typedef struct {
    size_t pos, w0, wlen;
    uint8_t *out;
    uint32_t *crc;
} fn_emit;

static void fn_emit_raw(fn_emit *e, const uint8_t *src, size_t n)
{
    size_t lo = e->pos > e->w0 ? e->pos : e->w0;
    size_t hi = e->pos + n < e->w0 + e->wlen ? e->pos + n : e->w0 + e->wlen;
    if (e->out != NULL && lo < hi) memcpy(e->out + (lo - e->w0), src + (lo - e->pos), hi - lo);
    if (e->crc != NULL) *e->crc = flipnet_crc32(*e->crc, src, n);
    e->pos += n;
}

/* n bytes of float32 values (native), written little-endian (the bit patterns, no float
 * arithmetic). */
static void fn_emit_f32(fn_emit *e, const uint8_t *src, size_t n)
{
    size_t q;
    for (q = 0; q + 4u <= n; q += 4u) {
        uint32_t u;
        uint8_t le[4];
        memcpy(&u, src + q, 4);
        fn_wr32(le, u);
        fn_emit_raw(e, le, 4);
    }
}

static void fn_emit_zeros(fn_emit *e, size_t n)
{
    static const uint8_t zero[4] = {0, 0, 0, 0};
    while (n > 0) {
        size_t k = n < 4u ? n : 4u;
        fn_emit_raw(e, zero, k);
        n -= k;
    }
}

/* Every byte of a checked model's file before its CRC field (docs/format.md). */
static void fn_emit_file(fn_emit *e, const flipnet_model *model, const uint8_t *meta,
                         size_t meta_bytes)
{
    uint8_t h[FN_HDR_BYTES + FN_LAYER_BYTES * FLIPNET_MAX_LAYERS];
    uint32_t l;
    fn_emit_raw(e, h, fn_file_header(model, meta_bytes, h));
    for (l = 0; l < model->n_layers; l++) { /* each layer's rows, then zero padding */
        const flipnet_layer *L = &model->layers[l];
        size_t rows = (size_t)L->m * fn_planes(L->kind) * L->bpr;
        size_t end = (size_t)fn_layer_bytes(L->kind, L->n, L->m);
        if (FN_HAS_F32 && L->kind == FLIPNET_FP32) {
            fn_emit_f32(e, model->weights + L->offset, end);
            continue;
        }
        fn_emit_raw(e, model->weights + L->offset, rows);
        fn_emit_zeros(e, end - rows);
    }
    if (model->counters != NULL) /* the counter area, byte for byte (checked) */
        fn_emit_raw(e, (const uint8_t *)model->counters, model->counter_bytes);
    if (FN_HAS_F32 && model->opt != NULL) fn_emit_f32(e, (const uint8_t *)model->opt, model->opt_bytes);
    if (meta_bytes != 0) fn_emit_raw(e, meta, meta_bytes);
}

flipnet_status flipnet_file_write(const flipnet_model *model, const uint8_t *meta,
                                  size_t meta_bytes, uint8_t *buf, size_t buf_bytes,
                                  size_t *written)
{
    size_t total;
    uint32_t crc = 0;
    fn_emit e;
    flipnet_status st = fn_write_args(model, meta, meta_bytes, &total);
    if (st != FLIPNET_OK) return st;
    if (buf == NULL) return FLIPNET_E_NULL;
    if (buf_bytes < total) return FLIPNET_E_NOMEM;
    e.pos = 0;
    e.w0 = 0;
    e.wlen = total;
    e.out = buf;
    e.crc = &crc;
    fn_emit_file(&e, model, meta, meta_bytes);
    fn_wr32(buf + total - 4u, crc);
    if (written != NULL) *written = total;
    return FLIPNET_OK;
}

flipnet_status flipnet_file_crc(const flipnet_model *model, const uint8_t *meta,
                                size_t meta_bytes, uint32_t *crc)
{
    size_t total;
    fn_emit e;
    flipnet_status st = fn_write_args(model, meta, meta_bytes, &total);
    if (st != FLIPNET_OK) return st;
    if (crc == NULL) return FLIPNET_E_NULL;
    *crc = 0;
    e.pos = 0;
    e.w0 = 0;
    e.wlen = 0;
    e.out = NULL;
    e.crc = crc;
    fn_emit_file(&e, model, meta, meta_bytes);
    return FLIPNET_OK;
}

flipnet_status flipnet_file_write_range(const flipnet_model *model, const uint8_t *meta,
                                        size_t meta_bytes, uint32_t crc, size_t offset,
                                        uint8_t *out, size_t len)
{
    size_t total;
    uint8_t tail[4];
    fn_emit e;
    flipnet_status st = fn_write_args(model, meta, meta_bytes, &total);
    if (st != FLIPNET_OK) return st;
    if (out == NULL && len != 0) return FLIPNET_E_NULL;
    if (offset > total || len > total - offset) return FLIPNET_E_ARG;
    e.pos = 0;
    e.w0 = offset;
    e.wlen = len;
    e.out = out;
    e.crc = NULL;
    fn_emit_file(&e, model, meta, meta_bytes);
    fn_wr32(tail, crc);
    fn_emit_raw(&e, tail, 4);
    return FLIPNET_OK;
}

flipnet_status flipnet_file_peek(const uint8_t *buf, size_t len, flipnet_arch *arch)
{
    fn_file_info fi;
    uint32_t l;
    flipnet_status st = fn_file_parse(buf, len, &fi);
    if (st != FLIPNET_OK) return st;
    if (arch != NULL) {
        memset(arch, 0, sizeof(*arch));
        arch->n_layers = fi.n_layers;
        arch->sizes[0] = fi.layers[0].n;
        for (l = 0; l < fi.n_layers; l++) {
            arch->sizes[l + 1u] = fi.layers[l].m;
            arch->kinds[l] = fi.layers[l].kind;
        }
        arch->counters = (uint8_t)fi.counters;
        memcpy(arch->counter_bits, fi.counter_bits, sizeof(arch->counter_bits));
    }
    return FLIPNET_OK;
}

flipnet_status flipnet_file_meta(const uint8_t *buf, size_t len, const uint8_t **meta,
                                 size_t *meta_bytes)
{
    fn_file_info fi;
    flipnet_status st;
    if (meta == NULL || meta_bytes == NULL) return FLIPNET_E_NULL;
    st = fn_file_parse(buf, len, &fi);
    if (st != FLIPNET_OK) return st;
    *meta = buf + fi.header_bytes + fi.weight_bytes + (size_t)fi.counter_bytes + (size_t)fi.opt_bytes;
    *meta_bytes = fi.meta_bytes;
    return FLIPNET_OK;
}

flipnet_status flipnet_file_read(flipnet_model *model, const uint8_t *buf, size_t len,
                                 void *weights, size_t weights_bytes)
{
    fn_file_info fi;
    uint8_t *dst;
    uint32_t l;
    size_t q, wc;
    flipnet_status st;
    if (model == NULL || weights == NULL) return FLIPNET_E_NULL;
    st = fn_file_parse(buf, len, &fi);
    if (st != FLIPNET_OK) return st;
#ifdef FLIPNET_NO_FLOAT
    if (fi.has_f32) return FLIPNET_E_ARG; /* a valid file this build cannot run */
#endif
    if (fn_misaligned(weights)) return FLIPNET_E_ALIGN;
    /* the file fits in memory, so weight and counter bytes fit size_t; the AdamW state is
     * needed in memory even when the file has none (it would be the size of the FP32 weights
     * times 2, which the file holds: it fits size_t too) */
    wc = fi.weight_bytes + (size_t)fi.counter_bytes;
    if (weights_bytes < fi.weight_bytes ||
        weights_bytes - fi.weight_bytes < (size_t)fi.counter_bytes ||
        weights_bytes - wc < (size_t)fi.opt_all)
        return FLIPNET_E_NOMEM;
    dst = (uint8_t *)weights;
    memcpy(dst, buf + fi.header_bytes, fi.weight_bytes); /* the weight area, byte for byte */
    for (l = 0; FN_HAS_F32 && l < fi.n_layers; l++) { /* FP32 blocks: float32 LE to native floats */
        const flipnet_layer *L = &fi.layers[l];
        if (L->kind != FLIPNET_FP32) continue;
        for (q = 0; q < (size_t)fn_layer_bytes(L->kind, L->n, L->m); q += 4u) {
            uint32_t u = fn_rd32(buf + fi.header_bytes + L->offset + q);
            memcpy(dst + L->offset + q, &u, 4);
        }
    }
    if (fi.counters)
        memcpy(dst + fi.weight_bytes, buf + fi.header_bytes + fi.weight_bytes,
               (size_t)fi.counter_bytes);
    if (FN_HAS_F32 && fi.has_f32) { /* the AdamW state: from the file, or zero moments */
        const uint8_t *src = buf + fi.header_bytes + wc;
        for (q = 0; q < (size_t)fi.opt_all; q += 4u) {
            uint32_t u = fi.adamw ? fn_rd32(src + q) : 0u;
            memcpy(dst + wc + q, &u, 4);
        }
    }
    memset(model, 0, sizeof(*model));
    model->n_layers = fi.n_layers;
    memcpy(model->layers, fi.layers, sizeof(flipnet_layer) * fi.n_layers);
    model->rule = fi.rule;
    model->seed = fi.seed;
    model->steps = fi.steps;
    model->samples = fi.samples;
    model->weights = dst;
    model->weight_bytes = fi.weight_bytes;
    if (fi.counters) {
        model->counters = (int8_t *)(dst + fi.weight_bytes);
        model->counter_bytes = (size_t)fi.counter_bytes;
        memcpy(model->counter_bits, fi.counter_bits, sizeof(model->counter_bits));
    }
    if (fi.has_f32) {
        model->opt = (float *)(void *)(dst + wc);
        model->opt_bytes = (size_t)fi.opt_all;
    }
    return FLIPNET_OK;
}
