/*
 * flipnet serial link: docs/protocol.md sections 2, 3 and 5, and the sample payloads of
 * section 4, shared by the training firmware (device.c) and the inference firmware (infer.c).
 *
 * Memory (static, sizes in link.h):
 *   rx  one decoded request frame; TRAIN/EVAL/PREDICT inputs are unpacked in place
 *   tx  the last reply, kept for retransmissions (exactly-once)
 * Frames are decoded byte by byte as they arrive and encoded byte by byte as they leave, so
 * no encoded copy of a frame is ever held.
 */
#include "link.h"

#include <string.h>

#include "board.h"
#include "flipnet/flipnet.h"

static uint32_t rx_words[(FW_MAX_FRAME + 3u) / 4u];
static uint8_t tx[FW_MAX_REPLY];
#define RX ((uint8_t *)rx_words)

/* ---- receiver (streaming COBS decoder) ------------------------------------------------------ */
static uint32_t rx_len;
static uint32_t rx_left;   /* data bytes left in the current COBS block */
static uint8_t rx_code;    /* code byte of the current block */
static uint8_t rx_any;     /* a block has started in this frame */
static uint8_t rx_over;    /* frame longer than FW_MAX_FRAME: discard to the next 0x00 */

/* ---- reply cache ---------------------------------------------------------------------------- */
static uint32_t tx_len;
static uint8_t cache_ok;
static int abi_status; /* FLIPNET_ABI_CHECK() at start-up: every command but PING refused if not OK */
static uint32_t cache_seq, cache_crc;
static uint32_t dup_frames, bad_frames;

static void (*after_command)(uint8_t cmd, int status);

uint8_t *fw_rx(void) { return RX; }
void fw_set_after_command(void (*hook)(uint8_t cmd, int status)) { after_command = hook; }

const uint8_t *fw_reply_cache(uint32_t *seq, uint32_t *crc, uint32_t *len)
{
    if (!cache_ok) return 0;
    *seq = cache_seq;
    *crc = cache_crc;
    *len = tx_len;
    return tx;
}

void fw_reply_cache_set(uint32_t seq, uint32_t crc, const uint8_t *reply, uint32_t len)
{
    if (len < FW_HDR || len > FW_MAX_REPLY - FW_CRC_BYTES) return;
    memcpy(tx, reply, len);
    tx_len = len;
    cache_seq = seq;
    cache_crc = crc;
    cache_ok = 1;
}
uint32_t fw_dup_frames(void) { return dup_frames; }
uint32_t fw_bad_frames(void) { return bad_frames; }
void fw_reset_link_counters(void) { dup_frames = bad_frames = 0; }

static void set16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void set32(uint8_t *p, uint32_t v)
{
    set16(p, v);
    set16(p + 2, v >> 16);
}

/* ---- reply building --------------------------------------------------------------------------- */
void fw_put8(uint32_t v)
{
    if (tx_len < FW_MAX_REPLY - FW_CRC_BYTES) tx[tx_len++] = (uint8_t)v;
}
void fw_put16(uint32_t v)
{
    fw_put8(v);
    fw_put8(v >> 8);
}
void fw_put32(uint32_t v)
{
    fw_put16(v);
    fw_put16(v >> 16);
}
void fw_put64(uint64_t v)
{
    fw_put32((uint32_t)v);
    fw_put32((uint32_t)(v >> 32));
}

uint8_t *fw_reply_tail(uint32_t *room)
{
    *room = FW_MAX_REPLY - FW_CRC_BYTES - tx_len;
    return tx + tx_len;
}

void fw_reply_add(uint32_t n)
{
    if (n <= FW_MAX_REPLY - FW_CRC_BYTES - tx_len) tx_len += n;
}

static void reply_begin(uint8_t cmd, uint32_t seq)
{
    tx[0] = FW_PROTO_VERSION;
    tx[1] = cmd;
    set16(tx + 2, 0);
    set32(tx + 4, seq);
    tx_len = FW_HDR;
}

void fw_reply_error(int status, uint32_t d1, uint32_t d2)
{
    uint8_t cmd = (uint8_t)(tx[1] & 0x7Fu);
    tx_len = FW_HDR;
    set16(tx + 2, (uint32_t)(uint16_t)(int16_t)status);
    fw_put16(cmd);
    fw_put16(0);
    fw_put32(d1);
    fw_put32(d2);
}

/* COBS-encode f[0..n) (CRC included) between two 0x00 delimiters, byte by byte. */
static void send_cobs(const uint8_t *f, uint32_t n)
{
    uint32_t i = 0;
    board_putc(0);
    for (;;) {
        uint32_t j = i, k;
        while (j < n && f[j] != 0 && j - i < 254u) j++;
        board_putc((uint8_t)(j - i + 1u));
        for (k = i; k < j; k++) board_putc(f[k]);
        if (j >= n) break;
        if (j - i < 254u) { /* stopped at a zero, implied by a code < 0xFF */
            i = j + 1u;
            if (i == n) {   /* the frame ends with that zero: one more, empty block */
                board_putc(1);
                break;
            }
        } else {            /* full block (code 0xFF): no zero implied */
            i = j;
        }
    }
    board_putc(0);
    board_flush();
}

static void send_frame(void)
{
    set32(tx + tx_len, flipnet_crc32(0, tx, tx_len));
    send_cobs(tx, tx_len + FW_CRC_BYTES);
}

/* A NAK is built apart from tx: the cached reply must survive it (exactly-once). */
static void send_nak(int status)
{
    uint8_t f[FW_MIN_FRAME];
    f[0] = FW_PROTO_VERSION;
    f[1] = FW_CMD_NAK;
    set16(f + 2, (uint32_t)(uint16_t)(int16_t)status);
    set32(f + 4, 0);
    set32(f + FW_HDR, flipnet_crc32(0, f, FW_HDR));
    bad_frames++;
    send_cobs(f, FW_MIN_FRAME);
}

/* ---- INFO ------------------------------------------------------------------------------------- */
void fw_put_info(uint32_t arena_bytes, uint32_t max_batch, uint32_t flags, uint32_t largest_h)
{
    const char *name = board_name();
    uint32_t i;
    fw_put8(FW_PROTO_VERSION);
    fw_put8(FLIPNET_VERSION_MAJOR);
    fw_put8(FLIPNET_VERSION_MINOR);
    fw_put8(FLIPNET_VERSION_PATCH);
    fw_put32(FW_MAX_FRAME);
    fw_put32(FW_MAX_REPLY);
    fw_put32(arena_bytes);
    fw_put32(board_ram_static());
    fw_put32(board_stack_size());
    fw_put16(max_batch);
    fw_put8(FLIPNET_MAX_LAYERS);
    fw_put8(flags);
    fw_put32(largest_h);
    for (i = 0; i < 16u; i++) {
        uint8_t c = (uint8_t)(*name ? *name++ : 0);
        fw_put8(i == 15u ? 0u : c);
    }
}

/* ---- samples ------------------------------------------------------------------------------- */
/* Run coding (docs/protocol.md, TRAIN): the c coded bytes at RX[at..at+c) decode to exactly
 * `want` bytes at RX[at..at+want). Coded: a background byte, then segments: a header byte
 * h = z << 3 | l (z = h >> 3 in 0..31, l = h & 7 in 0..7), extension bytes when z == 31 (each
 * adds 0..255, the last one is < 255) and then when l == 7 (likewise), then l literal bytes;
 * a segment decodes to z background bytes followed by its l literals. The coded bytes are
 * first moved to the top of the buffer and decoded forwards from there; a segment whose
 * background run would overwrite coded bytes not yet read is refused (FW_E_NOMEM: the host
 * checks this beforehand and sends such a batch uncoded). Returns 0 or -1 (error reply). */
static int ext_count(uint32_t *r, uint32_t *v, uint32_t limit)
{
    uint32_t e;
    do {
        if (*r >= FW_MAX_FRAME) return -1;
        e = RX[(*r)++];
        *v += e;
        if (*v > limit) return -1;
    } while (e == 255u);
    return 0;
}

static int runs_decode(uint32_t at, uint32_t c, uint32_t want)
{
    uint32_t r = FW_MAX_FRAME - c, w = at, end = at + want;
    uint8_t bg;
    memmove(RX + r, RX + at, c);
    bg = RX[r++];
    while (r < FW_MAX_FRAME) {
        uint32_t h = RX[r++], z = h >> 3, l = h & 7u;
        if ((z == 31u && ext_count(&r, &z, end - w) != 0) ||
            (l == 7u && ext_count(&r, &l, end - w) != 0) || z + l > end - w ||
            l > FW_MAX_FRAME - r) {
            fw_reply_error(FW_E_PAYLOAD, w - at, want);
            return -1;
        }
        if (w + z > r) { /* the run would overwrite coded bytes not read yet */
            fw_reply_error(FW_E_NOMEM, w + z, r);
            return -1;
        }
        memset(RX + w, bg, z);
        w += z;
        memmove(RX + w, RX + r, l); /* w <= r: an overlap only ever reads ahead */
        w += l;
        r += l;
    }
    if (w != end) {
        fw_reply_error(FW_E_PAYLOAD, w - at, want);
        return -1;
    }
    return 0;
}

int fw_parse_samples(uint8_t *p, uint32_t n, const fw_shape *sh, int with_kp, uint16_t *labels,
                     fw_samples *s)
{
    uint32_t off = 4, count, packed, i, L = sh->n_layers, at;
    const int8_t *table = 0;
    int8_t *x;
    if (n < 4u) {
        fw_reply_error(FW_E_PAYLOAD, n, 4);
        return -1;
    }
    s->flags = p[0];
    s->bits = p[1];
    s->batch = fw_get16(p + 2);
    if (s->bits != 1u && s->bits != 2u && s->bits != 4u && s->bits != 8u) {
        fw_reply_error(FW_E_PAYLOAD, s->bits, 8);
        return -1;
    }
    if (s->batch < 1u || s->batch > sh->batch_max) {
        fw_reply_error(FW_E_BATCH, s->batch, sh->batch_max);
        return -1;
    }
    if (with_kp) { /* k, p per layer, and with FW_SAMPLES_SHIFT the step's counter shift */
        uint32_t kp = 8u * L + ((s->flags & FW_SAMPLES_SHIFT) ? 4u : 0u) +
                      ((s->flags & FW_SAMPLES_STEPS) ? 8u : 0u);
        if (n < off + kp) {
            fw_reply_error(FW_E_PAYLOAD, n, off + kp);
            return -1;
        }
        s->kp = p + off;
        off += kp;
    }
    if (s->bits < 8u) {
        if (n < off + (1u << s->bits)) {
            fw_reply_error(FW_E_PAYLOAD, n, off + (1u << s->bits));
            return -1;
        }
        table = (const int8_t *)(p + off);
        for (i = 0; i < (1u << s->bits); i++)
            if (table[i] == -128) {
                fw_reply_error(FLIPNET_E_INPUT, i, 0);
                return -1;
            }
        off += 1u << s->bits;
    }
    if (labels != 0) {
        if (n < off + 2u * s->batch) {
            fw_reply_error(FW_E_PAYLOAD, n, off + 2u * s->batch);
            return -1;
        }
        for (i = 0; i < s->batch; i++) {
            labels[i] = fw_get16(p + off + 2u * i);
            if (labels[i] >= sh->n_classes) {
                fw_reply_error(FLIPNET_E_LABEL, i, labels[i]);
                return -1;
            }
        }
        off += 2u * s->batch;
    }
    count = s->batch * sh->n_inputs;
    packed = (count * s->bits + 7u) / 8u;
    x = (int8_t *)(p + off);
    at = (uint32_t)((uint8_t *)x - RX);
    if (at + count > FW_MAX_FRAME) {
        fw_reply_error(FW_E_NOMEM, at + count, FW_MAX_FRAME);
        return -1;
    }
    if (s->flags & FW_SAMPLES_RUNS) {
        if (n < off + 1u) {
            fw_reply_error(FW_E_PAYLOAD, n, off + 1u);
            return -1;
        }
        if (runs_decode(at, n - off, packed) != 0) return -1;
    } else if (n != off + packed) {
        fw_reply_error(FW_E_PAYLOAD, n, off + packed);
        return -1;
    }
    if (s->bits < 8u) {
        /* backwards, in place: value t lives in byte t*bits/8 <= t, and every value of
         * byte t has an index >= t, so out[t] only overwrites values already read */
        uint32_t mask = (1u << s->bits) - 1u, t = count;
        const uint8_t *src = (const uint8_t *)x;
        while (t-- > 0u) {
            uint32_t bit = t * s->bits;
            x[t] = table[(src[bit >> 3] >> (bit & 7u)) & mask];
        }
    } else {
        for (i = 0; i < count; i++)
            if (x[i] == -128) {
                fw_reply_error(FLIPNET_E_INPUT, i, 0);
                return -1;
            }
    }
    s->x = x;
    s->x_end = at + count;
    return 0;
}

/* ---- dispatch --------------------------------------------------------------------------------- */
static void handle_frame(uint8_t *f, uint32_t n)
{
    uint32_t crc, seq, plen;
    uint8_t cmd;
    if (n < FW_MIN_FRAME) {
        send_nak(FW_E_FRAME);
        return;
    }
    crc = fw_get32(f + n - FW_CRC_BYTES);
    if (flipnet_crc32(0, f, n - FW_CRC_BYTES) != crc) {
        send_nak(FW_E_CRC);
        return;
    }
    seq = fw_get32(f + 4);
    if (cache_ok && seq == cache_seq && crc == cache_crc) {
        dup_frames++;
        send_frame();
        return;
    }
    cmd = f[1];
    plen = n - FW_MIN_FRAME;
    reply_begin((uint8_t)(cmd | 0x80u), seq);
    if (f[0] != FW_PROTO_VERSION) {
        fw_reply_error(FW_E_VERSION, f[0], FW_PROTO_VERSION);
    } else if (cmd == FW_CMD_PING) {
        if (plen > FW_MAX_REPLY - FW_MIN_FRAME) {
            fw_reply_error(FW_E_NOMEM, plen, FW_MAX_REPLY - FW_MIN_FRAME);
        } else {
            memcpy(tx + FW_HDR, f + FW_HDR, plen);
            tx_len = FW_HDR + plen;
        }
    } else if (abi_status != FLIPNET_OK) { /* a core built from another flipnet.h */
        fw_reply_error(abi_status, FLIPNET_ABI, flipnet_version());
    } else {
        fw_command(cmd, f + FW_HDR, plen);
    }
    cache_ok = 1;
    cache_seq = seq;
    cache_crc = crc;
    if (after_command != 0 && f[0] == FW_PROTO_VERSION)
        after_command(cmd, (int)(int16_t)fw_get16(tx + 2));
    send_frame();
}

static void rx_reset(void)
{
    rx_len = 0;
    rx_left = 0;
    rx_code = 0;
    rx_any = 0;
    rx_over = 0;
}

static void rx_put(uint8_t c)
{
    if (rx_len >= FW_MAX_FRAME)
        rx_over = 1;
    else
        RX[rx_len++] = c;
}

void fw_feed(uint8_t c)
{
    if (c == 0) {
        if (rx_any) {
            if (rx_over)
                send_nak(FW_E_TOOLONG);
            else if (rx_left != 0)
                send_nak(FW_E_FRAME);
            else
                handle_frame(RX, rx_len);
        }
        rx_reset();
        return;
    }
    if (rx_over) return;
    if (rx_left == 0) {
        if (rx_any && rx_code != 0xFFu) rx_put(0);
        rx_any = 1;
        rx_code = c;
        rx_left = (uint32_t)c - 1u;
    } else {
        rx_put(c);
        rx_left--;
    }
}

void fw_link_init(void)
{
    abi_status = FLIPNET_ABI_CHECK();
    rx_reset();
    tx_len = 0;
    cache_ok = 0;
    fw_reset_link_counters();
}

void fw_run(void)
{
    int c;
    fw_init();
    while ((c = board_getc()) >= 0) fw_feed((uint8_t)c);
}
