/*
 * flipnet training firmware: the commands of docs/protocol.md on top of the flipnet core;
 * frames, replies, the reply cache and sample payloads are the link's (link.c).
 *
 * Memory (all static, sizes in device.h and link.h):
 *   arena  [weights + counters | scratch ........................ | LOAD staging (top)]
 *          the scratch is sized for the configured batch; PULL writes the model file piece
 *          by piece straight into its replies (flipnet_file_write_range), with no copy
 *   plus the link's request and reply buffers (link.c).
 */
#include "device.h"

#include <string.h>

#include "board.h"
#include "ckpt.h"
#include "flipnet/flipnet.h"

#define HDR FW_HDR
#define CRC_BYTES FW_CRC_BYTES
#define MIN_FRAME FW_MIN_FRAME

/* ---- static memory ------------------------------------------------------------------ */
static uint32_t arena_words[FW_ARENA_BYTES / 4u];
static uint16_t labels[FW_MAX_BATCH];
static uint16_t preds[FW_MAX_BATCH];

#define ARENA ((uint8_t *)arena_words)

/* ---- model state ---------------------------------------------------------------------- */
static flipnet_model model;
static flipnet_arch cur_arch;   /* architecture of the live model */
static uint8_t configured;
static uint32_t batch_max;   /* batch the scratch is sized for */
static uint32_t w_bytes, s_bytes; /* weights + counters, scratch */
static uint8_t pull_valid;
static uint32_t pull_len, pull_crc; /* the pulled file's size and CRC-32 of all its bytes */
static uint32_t pull_file_crc;      /* its CRC field: the CRC-32 of its bytes before the field */
static uint8_t load_active;
static uint32_t load_total, load_received;
/* provenance of the live model, for the PULL metadata */
enum { ORIGIN_NONE = 0, ORIGIN_CONFIGURE = 1, ORIGIN_LOAD = 2 };
static uint8_t origin;
static uint32_t load_crc;            /* CRC field of the file LOAD received */
static uint64_t start_steps, start_samples; /* model counters at CONFIGURE / LOAD */

/* ---- counters ------------------------------------------------------------------------- */
static uint64_t trained;
static uint32_t train_frames;
static uint64_t changes_total[FLIPNET_MAX_LAYERS];
static uint64_t train_ticks;     /* board ticks spent in calibrate + train_step */

static void forget_model(void);

/* ---- checkpoints (ckpt.h; docs/protocol.md section 10) ---------------------------------- */
static fw_ckpt store;
static uint8_t store_ok;          /* the board has a flash with room for the slots */
static uint8_t restored;          /* the live model came from the store (boot or RESTORE) */
static uint8_t last_failed;       /* the last checkpoint write failed */
static uint32_t every;            /* cadence: a checkpoint after every `every` TRAIN steps */
static uint32_t since;            /* TRAIN steps since the last checkpoint (or model change) */
/* the last TRAIN's cached reply, committed with the checkpoint (exactly-once across resets) */
#define TRAIN_REPLY_MAX (FW_HDR + 24u + 9u * FLIPNET_MAX_LAYERS)
static uint8_t train_reply[TRAIN_REPLY_MAX];
static uint32_t train_reply_len, train_seq, train_crc;
static int save_checkpoint(void);

/* ---- RAM planning (public core API only: no knowledge of the weight layout) ----------- */
/* The metadata blob of a pulled model file: where the model has been since it came to this
 * device (docs/protocol.md, PULL), as JSON padded with spaces to a fixed FW_META_BYTES, so
 * that the file size the RAM plan assumes never changes. */
#define FW_META_BYTES 224u

static char *meta_str(char *o, const char *s)
{
    while (*s) *o++ = *s++;
    return o;
}

/* Decimal digits of v. Divides by 10 in 16-bit limbs with 32-bit arithmetic only, so that
 * no 64-bit division routine is linked in. */
static char *meta_u64(char *o, uint64_t v)
{
    uint16_t limb[4];
    char d[20];
    uint32_t n = 0, i, nz;
    for (i = 0; i < 4u; i++) limb[i] = (uint16_t)(v >> (48u - 16u * i)); /* most significant first */
    do {
        uint32_t r = 0;
        nz = 0;
        for (i = 0; i < 4u; i++) {
            uint32_t cur = (r << 16) | limb[i];
            limb[i] = (uint16_t)(cur / 10u);
            r = cur % 10u;
            nz |= limb[i];
        }
        d[n++] = (char)('0' + (int)r);
    } while (nz != 0u);
    while (n > 0u) *o++ = d[--n];
    return o;
}

static const char *meta_json(uint32_t *len)
{
    /* longest content: 28 + 15 (board) + 22 + 22 + 3 x (15..17 + 20) + 11 + 10 + 1 = 216 */
    static char buf[FW_META_BYTES];
    static const char hex[] = "0123456789abcdef";
    const char *name = board_name();
    char *o = buf;
    uint32_t i;
    o = meta_str(o, "{\"source\":\"device\",\"board\":\"");
    for (i = 0; name[i] != 0 && i < 15u; i++) *o++ = name[i];
    o = meta_str(o, origin == ORIGIN_LOAD ? "\",\"origin\":\"load\",\"load_crc\":\""
                                          : "\",\"origin\":\"configure\",\"load_crc\":null");
    if (origin == ORIGIN_LOAD) {
        for (i = 0; i < 8u; i++) *o++ = hex[(load_crc >> (28u - 4u * i)) & 15u];
        *o++ = '"';
    }
    o = meta_u64(meta_str(o, ",\"start_steps\":"), start_steps);
    o = meta_u64(meta_str(o, ",\"start_samples\":"), start_samples);
    o = meta_u64(meta_str(o, ",\"train_ticks\":"), train_ticks);
    o = meta_u64(meta_str(o, ",\"tick_hz\":"), board_tick_hz());
    *o++ = '}';
    while (o < buf + FW_META_BYTES) *o++ = ' ';
    *len = FW_META_BYTES;
    return buf;
}

/* Bytes of the weight area of arch (flipnet_model_size: packed weights + counters). */
static int weight_area(const flipnet_arch *a, uint32_t *ws)
{
    size_t bytes = 0;
    int st = flipnet_model_size(a, &bytes);
    if (st != FLIPNET_OK) return st;
    *ws = bytes > FW_ARENA_BYTES ? FW_ARENA_BYTES + 4u : (uint32_t)bytes; /* > arena: too big */
    return FLIPNET_OK;
}

/* Training scratch of architecture a at batch b (rounded up to 4 bytes), from the core's size
 * query: nothing is laid out, so the live model is untouched. */
static int scratch_of(const flipnet_arch *a, uint32_t b, uint32_t *s)
{
    size_t ss = 0;
    int st = flipnet_arch_scratch_size(a, b, 1, &ss);
    if (st != FLIPNET_OK) return st;
    ss = (ss + 3u) & ~(size_t)3u;
    *s = ss > 0xFFFFFFF0u ? 0xFFFFFFF0u : (uint32_t)ss;
    return FLIPNET_OK;
}

/* Largest TRAIN frame for batch b: header, k/p, table, labels, 8-bit inputs, CRC. */
static uint64_t frame_need(uint32_t n0, uint32_t L, uint32_t b)
{
    return (uint64_t)MIN_FRAME + 4u + 8u * L + 16u + 2u * b + (uint64_t)b * n0;
}

static uint8_t *work(void) { return ARENA + w_bytes; }

static void reset_counters(void)
{
    trained = 0;
    train_ticks = 0;
    memset(changes_total, 0, sizeof(changes_total));
}

/* ---- INFO ----------------------------------------------------------------------------- */
static uint32_t largest_h; /* computed once at boot, before any model exists */

static void arch_784_h_10(flipnet_arch *a, uint32_t h)
{
    memset(a, 0, sizeof(*a));
    a->n_layers = 2;
    a->sizes[0] = 784;
    a->sizes[1] = h;
    a->sizes[2] = 10;
    a->kinds[0] = a->kinds[1] = FLIPNET_TERNARY;
}

/* Does a ternary 784-h-10 model (no counters) train at batch 8 in the arena? */
static int fits_784_h_10(uint32_t h)
{
    flipnet_arch a;
    uint32_t ws, s;
    arch_784_h_10(&a, h);
    if (weight_area(&a, &ws) != FLIPNET_OK || ws > FW_ARENA_BYTES) return 0;
    if (scratch_of(&a, 8, &s) != FLIPNET_OK) return 0;
    return (uint64_t)ws + s <= FW_ARENA_BYTES;
}

/* INFO's largest hidden width (the sizes grow with h: bisect with the core's size queries) */
static void compute_largest_hidden(void)
{
    uint32_t lo = 0, hi = FLIPNET_MAX_WIDTH;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1u) / 2u;
        if (fits_784_h_10(mid))
            lo = mid;
        else
            hi = mid - 1u;
    }
    largest_h = lo;
}

static void put_store_status(void);

static void cmd_info(void)
{
    fw_put_info(FW_ARENA_BYTES, FW_MAX_BATCH, (configured ? FW_INFO_CONFIGURED : 0u) |
                FW_INFO_RUNS | FW_INFO_STORE, largest_h);
    put_store_status();
}

/* ---- CONFIGURE / LOAD ------------------------------------------------------------------ */
static void adopt(const flipnet_arch *a, uint32_t b, uint32_t w, uint32_t s, uint8_t from,
                  uint32_t crc)
{
    origin = from;
    load_crc = crc;
    start_steps = model.steps;
    start_samples = model.samples;
    cur_arch = *a;
    batch_max = b;
    w_bytes = w;
    s_bytes = s;
    configured = 1;
    pull_valid = 0;
    train_reply_len = 0;
    since = 0;
    reset_counters();
}

/* Checks that need no layout: weights and the largest TRAIN frame fit. */
static int check_static(const flipnet_arch *a, uint32_t b, uint32_t *ws)
{
    uint64_t need;
    int st = weight_area(a, ws);
    if (st != FLIPNET_OK) {
        fw_reply_error(st, 0, 0);
        return -1;
    }
    if (*ws > FW_ARENA_BYTES) {
        fw_reply_error(FW_E_NOMEM, *ws, FW_ARENA_BYTES);
        return -1;
    }
    need = frame_need(a->sizes[0], a->n_layers, b);
    if (need > FW_MAX_FRAME) {
        fw_reply_error(FW_E_NOMEM, need > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)need, FW_MAX_FRAME);
        return -1;
    }
    return 0;
}

/* Checks before anything is replaced: the weights (with counters) and the training scratch of
 * architecture a at batch b fit the arena. Replies the error. */
static int check_fit(const flipnet_arch *a, uint32_t ws, uint32_t b, uint32_t *s)
{
    int st = scratch_of(a, b, s);
    if (st != FLIPNET_OK) {
        fw_reply_error(st, 0, 0);
        return -1;
    }
    if ((uint64_t)ws + *s > FW_ARENA_BYTES) {
        uint64_t need = (uint64_t)ws + *s;
        fw_reply_error(FW_E_NOMEM, need > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)need,
                       FW_ARENA_BYTES);
        return -1;
    }
    return 0;
}

/* Bytes of the file PULL would send for the live model (reported by CONFIGURE and LOAD). */
static uint32_t file_bytes(void)
{
    uint32_t meta_len;
    size_t fs = 0;
    (void)meta_json(&meta_len);
    if (flipnet_file_size(&model, meta_len, &fs) != FLIPNET_OK) return 0;
    return fs > 0xFFFFFFF0u ? 0xFFFFFFF0u : (uint32_t)fs;
}

/* The rule of a CONFIGURE payload (docs/protocol.md): calib 0 is the core's default. */
static void get_rule(const uint8_t *p, flipnet_rule *r)
{
    memset(r, 0, sizeof(*r));
    r->vote = p[1];
    r->filter = p[2];
    r->backprop = p[3];
    r->margin = (int32_t)fw_get32(p + 4);
    r->calib_target = p[18] ? p[18] : 32u; /* docs/rule.md section 1 */
    r->counter_shift = p[20];
    r->counter_threshold = p[21];
    r->counter_decay = p[22];
    r->counter_round = p[23];
}

/* The counters byte of a CONFIGURE payload: 0 none, 1 (older hosts) or 8 int8 counters, 4 or
 * 2 packed ones (docs/protocol.md); 0 for an invalid value. */
static uint32_t counter_width(uint8_t v)
{
    return v == 1u ? 8u : (v == 8u || v == 4u || v == 2u ? v : 0u);
}

#define CFG_HEAD 24u

static void cmd_configure(const uint8_t *p, uint32_t n)
{
    flipnet_arch a;
    flipnet_rule rule;
    uint32_t L, l, b, ws, s;
    uint64_t seed;
    int st;
    if (n < CFG_HEAD) {
        fw_reply_error(FW_E_PAYLOAD, n, CFG_HEAD);
        return;
    }
    L = p[0];
    if (L < 1u || L > FLIPNET_MAX_LAYERS) {
        fw_reply_error(FLIPNET_E_SHAPE, L, FLIPNET_MAX_LAYERS);
        return;
    }
    /* optional: u32 checkpoint cadence after the kinds (section 10) */
    if (n != CFG_HEAD + 2u * (L + 1u) + L && n != CFG_HEAD + 2u * (L + 1u) + L + 4u) {
        fw_reply_error(FW_E_PAYLOAD, n, CFG_HEAD + 2u * (L + 1u) + L);
        return;
    }
    seed = fw_get64(p + 8);
    b = fw_get16(p + 16);
    get_rule(p, &rule);
    if ((p[19] != 0u && counter_width(p[19]) == 0u) ||
        flipnet_rule_check(&rule, p[19] != 0u) != FLIPNET_OK) {
        fw_reply_error(FLIPNET_E_ARG, 0, 0);
        return;
    }
#if !FW_CORE_MODEL_COUNTERS
    if (p[19]) {
        fw_reply_error(FLIPNET_E_ARG, 0, 0); /* this core has no per-weight counters */
        return;
    }
#endif
    if (b < 1u || b > FW_MAX_BATCH) {
        fw_reply_error(FW_E_BATCH, b, FW_MAX_BATCH);
        return;
    }
    memset(&a, 0, sizeof(a));
    a.n_layers = L;
    a.counters = p[19] != 0u;
    for (l = 0; l <= L; l++) a.sizes[l] = fw_get16(p + CFG_HEAD + 2u * l);
    for (l = 0; l < L; l++) {
        a.kinds[l] = p[CFG_HEAD + 2u * (L + 1u) + l];
        a.counter_bits[l] = (uint8_t)counter_width(p[19]);
    }
    /* every check before the live model is touched: a refused CONFIGURE leaves it in place */
    if (check_static(&a, b, &ws) != 0 || check_fit(&a, ws, b, &s) != 0) return;
    if (n == CFG_HEAD + 2u * (L + 1u) + L + 4u && fw_get32(p + n - 4u) != 0u && !store_ok) {
        fw_reply_error(FW_E_STORAGE, 0, 0); /* a cadence, and nowhere to keep checkpoints */
        return;
    }
    forget_model();
    st = flipnet_model_init(&model, &a, arena_words, ws, seed);
    if (st != FLIPNET_OK) { /* not reached: the size queries accepted the architecture */
        forget_model();
        fw_reply_error(st, 0, 0);
        return;
    }
    model.rule = rule;
    adopt(&a, b, ws, s, ORIGIN_CONFIGURE, 0);
    every = n == CFG_HEAD + 2u * (L + 1u) + L + 4u ? fw_get32(p + n - 4u) : 0u;
    if (every != 0u && store_ok) (void)save_checkpoint(); /* step 0: a reset resumes here */
    fw_put32(ws);
    fw_put32(s);
    fw_put32(file_bytes());
    fw_put32(ws + s);
    fw_put32(FW_ARENA_BYTES);
}

static void cmd_load(const uint8_t *p, uint32_t n)
{
    uint32_t total, off, b, dlen, cur_w = configured ? w_bytes : 0u, stage_off;
    uint8_t *stage;
    if (n < 12u) {
        fw_reply_error(FW_E_PAYLOAD, n, 12);
        return;
    }
    total = fw_get32(p);
    off = fw_get32(p + 4);
    b = fw_get16(p + 8);
    dlen = n - 12u;
    if (off == 0) {
        /* staged at the top of the arena; when it would overlap the live weights, the live
         * model is given up (a model and a file of its size do not fit twice) */
        if (total < 16u || total > FW_ARENA_BYTES) {
            load_active = 0;
            fw_reply_error(FW_E_NOMEM, total, FW_ARENA_BYTES);
            return;
        }
        if (((FW_ARENA_BYTES - total) & ~3u) < cur_w) forget_model();
        load_active = 1;
        load_total = total;
        load_received = 0;
    } else if (!load_active || off != load_received || total != load_total) {
        fw_reply_error(FW_E_ORDER, load_active ? load_received : 0u, off);
        return;
    }
    if (dlen > load_total - load_received) {
        fw_reply_error(FW_E_PAYLOAD, dlen, load_total - load_received);
        return;
    }
    stage_off = (FW_ARENA_BYTES - load_total) & ~3u;
    stage = ARENA + stage_off;
    memcpy(stage + off, p + 12, dlen);
    load_received += dlen;
    pull_valid = 0;
    if (load_received == load_total) {
        flipnet_arch a;
        uint32_t ws, s, crc;
        int st;
        load_active = 0;
        st = flipnet_file_peek(stage, load_total, &a); /* magic, version, sizes, CRC */
        if (st != FLIPNET_OK) {
            fw_reply_error(st, 0, 0);
            return;
        }
        crc = fw_get32(stage + load_total - 4u); /* the file's own CRC field: its identity */
        if (b < 1u || b > FW_MAX_BATCH) {
            fw_reply_error(FW_E_BATCH, b, FW_MAX_BATCH);
            return;
        }
        if (check_static(&a, b, &ws) != 0 || check_fit(&a, ws, b, &s) != 0) return;
        if (ws > stage_off) { /* the weights must fit below the staged file */
            fw_reply_error(FW_E_NOMEM, ws + load_total, FW_ARENA_BYTES);
            return;
        }
        /* flipnet_file_read checks the whole file before it writes: a refused file leaves
         * the live model in place; an accepted one replaces it at the arena base */
        st = flipnet_file_read(&model, stage, load_total, arena_words, ws);
        if (st != FLIPNET_OK) {
            fw_reply_error(st, 0, 0);
            return;
        }
        adopt(&a, b, ws, s, ORIGIN_LOAD, crc);
    }
    fw_put32(load_received);
    fw_put32(load_total);
    fw_put8(load_received == load_total ? 1u : 0u);
    fw_put8(0);
    fw_put16(0);
}

/* ---- samples: TRAIN / EVAL / PREDICT ---------------------------------------------------- */
typedef fw_samples samples;

/* The link's sample parser for the live model. Returns 0, or -1 after an error reply. */
static int parse_samples(uint8_t *p, uint32_t n, int with_kp, int with_labels, samples *s)
{
    fw_shape sh;
    if (!configured) {
        fw_reply_error(FW_E_STATE, 0, 0);
        return -1;
    }
    sh.n_layers = model.n_layers;
    sh.n_inputs = model.layers[0].n;
    sh.n_classes = model.layers[model.n_layers - 1u].m;
    sh.batch_max = batch_max;
    return fw_parse_samples(p, n, &sh, with_kp, with_labels ? labels : 0, s);
}

static void cmd_train(uint8_t *p, uint32_t n)
{
    samples s;
    flipnet_step_params prm;
    flipnet_step_stats st;
    uint32_t l, L = model.n_layers, t0, shift = model.rule.counter_shift;
    uint8_t keep_shift = model.rule.counter_shift;
    int rc;
    if (parse_samples(p, n, 1, 1, &s) != 0) return;
    if (s.flags & FW_SAMPLES_SHIFT) { /* a schedule that anneals the counters' shift */
        shift = fw_get32(s.kp + 8u * L);
        if (shift > 31u) {
            fw_reply_error(FLIPNET_E_ARG, L, shift);
            return;
        }
    }
    if (s.flags & FW_SAMPLES_STEPS) { /* the host's step count: a rebooted device says no */
        uint64_t want = fw_get64(s.kp + 8u * L + ((s.flags & FW_SAMPLES_SHIFT) ? 4u : 0u));
        if (want != model.steps) {
            fw_reply_error(FW_E_STEPS, (uint32_t)model.steps, (uint32_t)want);
            return;
        }
    }
    t0 = board_ticks();
    memset(&prm, 0, sizeof(prm));
    for (l = 0; l < L; l++) {
        prm.k[l] = fw_get32(s.kp + 4u * l);
        prm.p_q16[l] = fw_get32(s.kp + 4u * (L + l));
        /* checked here too, so that a rejected step never leaves a calibration behind */
        if ((uint64_t)prm.k[l] > (uint64_t)model.layers[l].n * model.layers[l].m ||
            prm.p_q16[l] > 65536u) {
            fw_reply_error(FLIPNET_E_ARG, l, prm.k[l]);
            return;
        }
    }
    pull_valid = 0;
    if (s.flags & 1u) { /* flags bit 2: calibrations keep the first layer's shift */
        rc = flipnet_calibrate_from(&model, (s.flags >> 2) & 1u, s.x, s.batch, work(), s_bytes);
        if (rc != FLIPNET_OK) {
            fw_reply_error(rc, 0, 0);
            return;
        }
    }
    memset(&st, 0, sizeof(st));
    model.rule.counter_shift = (uint8_t)shift; /* for this step only: the model keeps its own */
    rc = flipnet_train_step(&model, s.x, labels, s.batch, &prm, &st, work(), s_bytes);
    model.rule.counter_shift = keep_shift;
    if (rc != FLIPNET_OK) {
        fw_reply_error(rc, 0, 0);
        return;
    }
    if (s.flags & 2u) { /* recalibrate on the batch just trained (recipe recalibrate_steps) */
        rc = flipnet_calibrate_from(&model, (s.flags >> 2) & 1u, s.x, s.batch, work(), s_bytes);
        if (rc != FLIPNET_OK) {
            fw_reply_error(rc, 0, 0);
            return;
        }
    }
    train_ticks += (uint32_t)(board_ticks() - t0);
    trained += s.batch;
    train_frames++;
    for (l = 0; l < L; l++) changes_total[l] += st.changes[l];
    fw_put32(st.correct);
    fw_put32(st.errors);
    fw_put64(model.steps);
    fw_put64(model.samples);
    for (l = 0; l < L; l++) fw_put8(model.layers[l].shift);
    for (l = 0; l < L; l++) fw_put32(st.changes[l]);
    for (l = 0; l < L; l++) fw_put32(st.eligible[l]);
}

static void cmd_eval(uint8_t *p, uint32_t n)
{
    samples s;
    uint32_t i, correct = 0;
    int rc;
    if (parse_samples(p, n, 0, 1, &s) != 0) return;
    pull_valid = 0;
    rc = flipnet_predict(&model, s.x, s.batch, preds, work(), s_bytes);
    if (rc != FLIPNET_OK) {
        fw_reply_error(rc, 0, 0);
        return;
    }
    for (i = 0; i < s.batch; i++) correct += preds[i] == labels[i];
    fw_put32(correct);
    fw_put32(s.batch);
}

static void cmd_predict(uint8_t *p, uint32_t n)
{
    samples s;
    uint32_t i, C;
    int rc;
    if (parse_samples(p, n, 0, 0, &s) != 0) return;
    C = model.layers[model.n_layers - 1u].m;
    if ((s.flags & 1u) && HDR + 2u * s.batch + 4u * s.batch * C + CRC_BYTES > FW_MAX_REPLY) {
        fw_reply_error(FW_E_NOMEM, HDR + 2u * s.batch + 4u * s.batch * C + CRC_BYTES, FW_MAX_REPLY);
        return;
    }
    if (HDR + 2u * s.batch + CRC_BYTES > FW_MAX_REPLY) {
        fw_reply_error(FW_E_NOMEM, HDR + 2u * s.batch + CRC_BYTES, FW_MAX_REPLY);
        return;
    }
    pull_valid = 0;
    rc = flipnet_predict(&model, s.x, s.batch, preds, work(), s_bytes);
    if (rc != FLIPNET_OK) {
        fw_reply_error(rc, 0, 0);
        return;
    }
    for (i = 0; i < s.batch; i++) fw_put16(preds[i]);
    if (s.flags & 1u) {
        /* logits go to the free tail of rx, after the inputs */
        uint32_t at = (s.x_end + 3u) & ~3u;
        int32_t *lg = (int32_t *)(void *)(fw_rx() + at);
        if (at + 4u * s.batch * C > FW_MAX_FRAME) {
            fw_reply_error(FW_E_NOMEM, at + 4u * s.batch * C, FW_MAX_FRAME);
            return;
        }
        rc = flipnet_forward(&model, s.x, s.batch, lg, work(), s_bytes);
        if (rc != FLIPNET_OK) {
            fw_reply_error(rc, 0, 0);
            return;
        }
        for (i = 0; i < s.batch * C; i++) fw_put32((uint32_t)lg[i]);
    }
}

/* ---- PULL ------------------------------------------------------------------------------- */
/* CRC-32 of the whole file PULL sends (its last 4 bytes included), without holding it: the
 * file's bytes before its CRC field give pull_file_crc, and the CRC of the whole file is that
 * value chained over the 4 bytes of the field. */
static uint32_t whole_file_crc(void)
{
    uint8_t field[4];
    field[0] = (uint8_t)pull_file_crc;
    field[1] = (uint8_t)(pull_file_crc >> 8);
    field[2] = (uint8_t)(pull_file_crc >> 16);
    field[3] = (uint8_t)(pull_file_crc >> 24);
    return flipnet_crc32(pull_file_crc, field, 4);
}

static void cmd_pull(const uint8_t *p, uint32_t n)
{
    uint32_t off, len, room = FW_MAX_REPLY - HDR - CRC_BYTES - 16u, meta_len;
    const char *meta;
    if (n != 8u) {
        fw_reply_error(FW_E_PAYLOAD, n, 8);
        return;
    }
    if (!configured) {
        fw_reply_error(FW_E_STATE, 0, 0);
        return;
    }
    off = fw_get32(p);
    len = fw_get16(p + 4);
    meta = meta_json(&meta_len);
    if (off == 0 || !pull_valid) { /* a new pull: the file's size and CRC, nothing stored */
        size_t total = 0;
        int rc;
        pull_valid = 0;
        rc = flipnet_file_size(&model, meta_len, &total);
        if (rc == FLIPNET_OK) rc = flipnet_file_crc(&model, (const uint8_t *)meta, meta_len,
                                                    &pull_file_crc);
        if (rc != FLIPNET_OK) {
            fw_reply_error(rc, 0, 0);
            return;
        }
        pull_len = (uint32_t)total;
        pull_crc = whole_file_crc();
        pull_valid = 1;
    }
    if (off > pull_len) {
        fw_reply_error(FW_E_PAYLOAD, off, pull_len);
        return;
    }
    if (len > room) len = room;
    if (len > pull_len - off) len = pull_len - off;
    fw_put32(pull_len);
    fw_put32(off);
    fw_put32(pull_crc);
    fw_put16(len);
    fw_put16(0);
    {
        uint32_t tail_room;
        uint8_t *t = fw_reply_tail(&tail_room); /* len <= room <= tail_room */
        int rc = flipnet_file_write_range(&model, (const uint8_t *)meta, meta_len, pull_file_crc,
                                          off, t, len);
        if (rc != FLIPNET_OK) {
            pull_valid = 0;
            fw_reply_error(rc, 0, 0);
            return;
        }
        fw_reply_add(len);
    }
}

/* ---- checkpoints ------------------------------------------------------------------------ */
/* The payload of a checkpoint: the model file PULL would send (metadata included), written
 * piece by piece, then the cached reply of the last TRAIN. */
typedef struct {
    const char *meta;
    uint32_t meta_len, file_len, file_crc;
} save_src;

static int save_source(void *ctx, uint32_t off, uint8_t *out, uint32_t n)
{
    const save_src *c = ctx;
    while (n > 0u) {
        uint32_t k;
        if (off < c->file_len) {
            k = c->file_len - off < n ? c->file_len - off : n;
            if (flipnet_file_write_range(&model, (const uint8_t *)c->meta, c->meta_len,
                                         c->file_crc, off, out, k) != FLIPNET_OK)
                return -1;
        } else {
            k = c->file_len + train_reply_len - off < n ? c->file_len + train_reply_len - off : n;
            if (k == 0u) return -1;
            memcpy(out, train_reply + (off - c->file_len), k);
        }
        off += k;
        out += k;
        n -= k;
    }
    return 0;
}

/* Write a checkpoint of the live model. 0, or a status (FW_E_STATE, FW_E_STORAGE). The
 * request buffer is the staging area: the request has been read when this runs. */
static int save_checkpoint(void)
{
    save_src c;
    fw_ckpt_info ci;
    size_t fs = 0;
    int rc;
    if (!store_ok) return FW_E_STORAGE;
    if (!configured) return FW_E_STATE;
    c.meta = meta_json(&c.meta_len);
    if (flipnet_file_size(&model, c.meta_len, &fs) != FLIPNET_OK ||
        flipnet_file_crc(&model, (const uint8_t *)c.meta, c.meta_len, &c.file_crc) != FLIPNET_OK)
        return FW_E_STORAGE;
    c.file_len = (uint32_t)fs;
    memset(&ci, 0, sizeof(ci));
    ci.length = c.file_len + train_reply_len;
    ci.file_bytes = c.file_len;
    ci.reply_bytes = train_reply_len;
    ci.train_seq = train_seq;
    ci.train_crc = train_crc;
    ci.flags = train_reply_len ? 1u : 0u;
    ci.every = every;
    ci.steps = model.steps;
    ci.samples = model.samples;
    ci.batch = batch_max;
    ci.origin = origin;
    ci.load_crc = load_crc;
    ci.start_steps = start_steps;
    ci.start_samples = start_samples;
    ci.train_ticks = train_ticks;
    rc = fw_ckpt_write(&store, &ci, save_source, &c, fw_rx(),
                       FW_MAX_FRAME < 1024u ? FW_MAX_FRAME : 1024u);
    last_failed = rc != 0;
    since = 0;
    return rc == 0 ? 0 : FW_E_STORAGE;
}

/* Make the newest checkpoint the live model (boot, RESTORE): 0 or a status; a refused one
 * leaves the live model as it was (unless it had to be staged in RAM over it). */
static int restore_checkpoint(int at_boot)
{
    const fw_ckpt_info *ci = &store.info;
    const uint8_t *file;
    flipnet_arch a;
    uint32_t ws, sb, b = ci->batch, fb = ci->file_bytes;
    int st;
    if (!store_ok || store.newest < 0) return FW_E_STORAGE;
    file = fw_ckpt_map(&store, 0, fb); /* memory-mapped flash: no copy */
    if (file == 0) {                   /* else staged at the top of the arena, as LOAD does */
        uint32_t stage_off;
        if (fb > FW_ARENA_BYTES) return FW_E_NOMEM;
        stage_off = (FW_ARENA_BYTES - fb) & ~3u;
        if (configured && stage_off < w_bytes) forget_model();
        if (fw_ckpt_read(&store, 0, ARENA + stage_off, fb) != 0) return FW_E_STORAGE;
        file = ARENA + stage_off;
    }
    st = flipnet_file_peek(file, fb, &a);
    if (st != FLIPNET_OK) return st;
    if (b < 1u || b > FW_MAX_BATCH) return FW_E_BATCH;
    st = weight_area(&a, &ws);
    if (st == FLIPNET_OK) st = scratch_of(&a, b, &sb);
    if (st != FLIPNET_OK) return st;
    if ((uint64_t)ws + sb > FW_ARENA_BYTES ||
        (file >= ARENA && file < ARENA + FW_ARENA_BYTES && ARENA + ws > file))
        return FW_E_NOMEM;
    st = flipnet_file_read(&model, file, fb, arena_words, ws); /* checks before it writes */
    if (st != FLIPNET_OK) return st;
    adopt(&a, b, ws, sb, (uint8_t)ci->origin, ci->load_crc);
    start_steps = ci->start_steps;
    start_samples = ci->start_samples;
    train_ticks = ci->train_ticks;
    every = ci->every;
    if ((ci->flags & 1u) && ci->reply_bytes >= FW_HDR && ci->reply_bytes <= TRAIN_REPLY_MAX &&
        fw_ckpt_read(&store, fb, train_reply, ci->reply_bytes) == 0) {
        train_reply_len = ci->reply_bytes;
        train_seq = ci->train_seq;
        train_crc = ci->train_crc;
        /* at boot: a retransmission of the TRAIN this checkpoint holds gets its reply, not a
         * second step (a RESTORE request's own reply replaces the cache instead) */
        if (at_boot) fw_reply_cache_set(train_seq, train_crc, train_reply, train_reply_len);
    }
    restored = 1;
    return 0;
}

/* The checkpoint block of INFO, SAVE and RESTORE replies (docs/protocol.md section 10). */
static void put_store_status(void)
{
    uint32_t has = store_ok && store.newest >= 0;
    fw_put8((store_ok ? 1u : 0u) | (has ? 2u : 0u) | (restored && configured ? 4u : 0u) |
            (last_failed ? 8u : 0u));
    fw_put8(FW_CKPT_SLOTS);
    fw_put16(0);
    fw_put32(every);
    fw_put32(has ? store.info.seq : 0u);
    fw_put64(has ? store.info.steps : 0u);
    fw_put64(has ? store.info.samples : 0u);
    fw_put32(has ? store.info.crc : 0u);
    fw_put32(has && (store.info.flags & 1u) ? store.info.train_seq : 0u);
    fw_put32(has ? store.info.length : 0u);
    fw_put32(store_ok ? store.slot_bytes - FW_CKPT_HDR : 0u);
    fw_put32(store.wear);
    fw_put32(store.erases);
    fw_put32(store.writes);
    fw_put32(store.failures);
}

/* SAVE: [u8 op, u32 every]; empty = op 0. op 0 save now, 1 set the cadence, 2 both, 3 wipe. */
static void cmd_save(const uint8_t *p, uint32_t n)
{
    uint32_t op = 0;
    int rc;
    if (n != 0u && n != 5u) {
        fw_reply_error(FW_E_PAYLOAD, n, 5);
        return;
    }
    if (n == 5u) op = p[0];
    if (op > 3u) {
        fw_reply_error(FLIPNET_E_ARG, op, 3);
        return;
    }
    if (!store_ok) {
        fw_reply_error(FW_E_STORAGE, 0, 0);
        return;
    }
    if (op == 3u) {
        rc = fw_ckpt_wipe(&store);
        restored = 0;
        if (rc != 0) {
            fw_reply_error(FW_E_STORAGE, 3, 0);
            return;
        }
    } else {
        if ((op == 0u || op == 2u) && !configured) {
            fw_reply_error(FW_E_STATE, 0, 0);
            return;
        }
        if (op == 1u || op == 2u) {
            every = fw_get32(p + 1);
            since = 0;
        }
        if (op == 0u || op == 2u) {
            rc = save_checkpoint();
            if (rc != 0) {
                fw_reply_error(rc, store.failures, 0);
                return;
            }
        }
    }
    put_store_status();
}

static void cmd_restore(uint32_t n)
{
    int rc;
    if (n != 0u) {
        fw_reply_error(FW_E_PAYLOAD, n, 0);
        return;
    }
    rc = restore_checkpoint(0);
    if (rc != 0) {
        fw_reply_error(rc, store_ok, 0);
        return;
    }
    put_store_status();
}

/* After every command, before its reply goes out: keep the last TRAIN's reply and write the
 * checkpoint that is due, so that a TRAIN acknowledged at a cadence point is in flash. */
static void after_command(uint8_t cmd, int status)
{
    uint32_t seq, crc, len;
    const uint8_t *r;
    if (cmd != FW_CMD_TRAIN || status != 0 || !configured) return;
    r = fw_reply_cache(&seq, &crc, &len);
    if (r != 0 && len <= TRAIN_REPLY_MAX) {
        memcpy(train_reply, r, len);
        train_reply_len = len;
        train_seq = seq;
        train_crc = crc;
    }
    since++;
    if (every != 0u && since >= every && store_ok) (void)save_checkpoint();
}

/* ---- STATS / RESET ---------------------------------------------------------------- */
static void cmd_stats(void)
{
    uint32_t l, L = configured ? model.n_layers : 0u;
    fw_put64(configured ? model.steps : 0u);
    fw_put64(configured ? model.samples : 0u);
    fw_put64(trained);
    fw_put32(train_frames);
    fw_put32(fw_dup_frames());
    fw_put32(fw_bad_frames());
    fw_put32(board_stack_used());
    fw_put32(board_stack_size());
    fw_put32(board_ram_static());
    fw_put32(configured ? w_bytes + s_bytes : 0u);
    fw_put8(L);
    fw_put8(configured);
    fw_put16(0);
    fw_put32(board_tick_hz());
    fw_put64(train_ticks);
    for (l = 0; l < L; l++) fw_put64(changes_total[l]);
}

static void forget_model(void)
{
    configured = 0;
    load_active = 0;
    pull_valid = 0;
    origin = ORIGIN_NONE;
    load_crc = 0;
    start_steps = start_samples = 0;
    restored = 0;
    train_reply_len = 0;
    since = 0;
    batch_max = 0;
    w_bytes = s_bytes = 0;
    memset(&model, 0, sizeof(model));
    memset(&cur_arch, 0, sizeof(cur_arch));
    reset_counters();
}

/* ---- dispatch ------------------------------------------------------------------------------ */
void fw_command(uint8_t cmd, uint8_t *p, uint32_t plen)
{
    switch (cmd) {
    case FW_CMD_INFO: cmd_info(); break;
    case FW_CMD_CONFIGURE: cmd_configure(p, plen); break;
    case FW_CMD_TRAIN: cmd_train(p, plen); break;
    case FW_CMD_EVAL: cmd_eval(p, plen); break;
    case FW_CMD_PREDICT: cmd_predict(p, plen); break;
    case FW_CMD_PULL: cmd_pull(p, plen); break;
    case FW_CMD_LOAD: cmd_load(p, plen); break;
    case FW_CMD_STATS: cmd_stats(); break;
    case FW_CMD_RESET: /* what 0: forget the model; 1: also wipe the checkpoints */
        if (plen >= 1u && p[0] == 1u && store_ok) (void)fw_ckpt_wipe(&store);
        forget_model();
        every = 0;
        train_frames = 0;
        fw_reset_link_counters();
        break;
    case FW_CMD_SAVE: cmd_save(p, plen); break;
    case FW_CMD_RESTORE: cmd_restore(plen); break;
    default: fw_reply_error(FW_E_CMD, cmd, 0); break;
    }
}

void fw_init(void)
{
    fw_link_init();
    train_frames = 0;
    forget_model();
    compute_largest_hidden(); /* uses the arena: only while no model is live */
    every = 0;
    fw_set_after_command(after_command);
    /* the checkpoint store: a model saved before a reset or power loss trains on by itself */
    store_ok = board_flash() != 0 &&
               fw_ckpt_open(&store, board_flash(), fw_rx(), FW_MAX_FRAME) == 0;
    if (store_ok && store.newest >= 0) (void)restore_checkpoint(1);
}
