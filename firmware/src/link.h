/*
 * flipnet serial link (docs/protocol.md): COBS frames with CRC-32, the reply cache that
 * makes every request exactly-once, NAKs, PING, and the sample payloads of TRAIN / EVAL /
 * PREDICT. Shared by the training firmware (device.c) and the inference-only firmware
 * (infer.c); each of them implements fw_command() and fw_init().
 */
#ifndef FLIPNET_FW_LINK_H
#define FLIPNET_FW_LINK_H

#include <stdint.h>

/* Buffer sizes (override with -D...; the defaults fit the training firmware's 784-128-10
 * ternary model at batch 8; the inference firmware's CMake sizes them for its model). */
#ifndef FW_MAX_FRAME        /* largest decoded request frame */
#define FW_MAX_FRAME 6656u
#endif
#ifndef FW_MAX_REPLY        /* largest decoded reply frame (PULL chunk + headers) */
#define FW_MAX_REPLY 1088u
#endif
#ifndef FW_MAX_BATCH        /* largest batch of any command (label/prediction buffers) */
#define FW_MAX_BATCH 64u
#endif

#define FW_PROTO_VERSION 1u

#define FW_HDR 8u           /* version, cmd, status, seq */
#define FW_CRC_BYTES 4u
#define FW_MIN_FRAME (FW_HDR + FW_CRC_BYTES)

/* Protocol status codes (docs/protocol.md section 5); core codes pass through. */
enum {
    FW_E_CRC = -100,
    FW_E_FRAME = -101,
    FW_E_TOOLONG = -102,
    FW_E_VERSION = -103,
    FW_E_CMD = -104,
    FW_E_PAYLOAD = -105,
    FW_E_STATE = -106,
    FW_E_NOMEM = -107,
    FW_E_ORDER = -108,
    FW_E_BATCH = -109,
    FW_E_INFER_ONLY = -110, /* inference-only firmware: no training (or model transfer) */
    FW_E_STORAGE = -111,   /* no checkpoint store, no checkpoint, or a flash write failed */
    FW_E_STEPS = -112      /* TRAIN: the model's step counter is not the one the host expects */
};

enum {
    FW_CMD_INFO = 0x01,
    FW_CMD_CONFIGURE = 0x02,
    FW_CMD_TRAIN = 0x03,
    FW_CMD_EVAL = 0x04,
    FW_CMD_PREDICT = 0x05,
    FW_CMD_PULL = 0x06,
    FW_CMD_LOAD = 0x07,
    FW_CMD_STATS = 0x08,
    FW_CMD_RESET = 0x09,
    FW_CMD_PING = 0x0A,
    FW_CMD_SAVE = 0x0B,     /* checkpoint store: save, cadence, wipe (docs/protocol.md 10) */
    FW_CMD_RESTORE = 0x0C,  /* reload the newest checkpoint */
    FW_CMD_NAK = 0xFF
};

/* INFO flags (docs/protocol.md, INFO) */
#define FW_INFO_CONFIGURED 1u   /* a model is configured / loaded / compiled in */
#define FW_INFO_INFER_ONLY 2u   /* inference-only firmware; its model follows the 48 bytes */
#define FW_INFO_RUNS 4u         /* sample inputs may be run-coded (flags bit 7) */
#define FW_INFO_STORE 8u        /* training firmware: the checkpoint block follows the 48 bytes */

/* Sample payload flag: the packed inputs are run-coded (docs/protocol.md, TRAIN). */
#define FW_SAMPLES_RUNS 0x80u
#define FW_SAMPLES_SHIFT 0x08u  /* TRAIN: a u32 counter shift for this step follows p */
#define FW_SAMPLES_STEPS 0x10u  /* TRAIN: a u64 expected step counter follows (after the shift) */

/* ---- little-endian helpers --------------------------------------------------------------- */
static inline uint16_t fw_get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t fw_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t fw_get64(const uint8_t *p)
{
    return (uint64_t)fw_get32(p) | ((uint64_t)fw_get32(p + 4) << 32);
}

/* ---- what a firmware implements ------------------------------------------------------------ */
/* Execute one new request (not a retransmission; PING is answered by the link). The reply
 * has been started (header, status 0); add its payload with fw_put*(), or replace it with
 * fw_reply_error(). `p` points into the request buffer (fw_rx()) and may be modified. */
void fw_command(uint8_t cmd, uint8_t *p, uint32_t n);

/* Reset the firmware's state (and the link's: fw_link_init); called by fw_run. */
void fw_init(void);

/* ---- the link ---------------------------------------------------------------------------- */
void fw_link_init(void);

/* Feed one received byte (COBS stream); replies go out through board_putc. */
void fw_feed(uint8_t c);

/* fw_init, then feed board_getc() until it returns -1. */
void fw_run(void);

/* The request buffer (FW_MAX_FRAME bytes, 4-byte aligned): the decoded frame being handled. */
uint8_t *fw_rx(void);

/* Reply payload. */
void fw_put8(uint32_t v);
void fw_put16(uint32_t v);
void fw_put32(uint32_t v);
void fw_put64(uint64_t v);
/* Replace the reply's payload with an error payload (docs/protocol.md section 5). */
void fw_reply_error(int status, uint32_t detail1, uint32_t detail2);
/* Free room at the end of the reply: *room bytes at the returned pointer; fw_reply_add(n)
 * appends the n bytes written there. */
uint8_t *fw_reply_tail(uint32_t *room);
void fw_reply_add(uint32_t n);

/* The common 48 bytes of INFO (docs/protocol.md): versions, buffer sizes, board, ... */
void fw_put_info(uint32_t arena_bytes, uint32_t max_batch, uint32_t flags, uint32_t largest_h);

/* The reply cache (exactly-once): the cached reply's bytes (header and payload, no CRC), the
 * seq and CRC of the request it answers; 0 when there is none. fw_reply_cache_set restores it
 * (a checkpoint loaded at boot), so a retransmission of that request gets that reply. */
const uint8_t *fw_reply_cache(uint32_t *seq, uint32_t *crc, uint32_t *len);
void fw_reply_cache_set(uint32_t seq, uint32_t crc, const uint8_t *reply, uint32_t len);

/* Called after a command has run and its reply is cached, before the reply is sent (the
 * training firmware writes due checkpoints there); NULL: none. */
void fw_set_after_command(void (*hook)(uint8_t cmd, int status));

/* Link counters for STATS. */
uint32_t fw_dup_frames(void);
uint32_t fw_bad_frames(void);
void fw_reset_link_counters(void);

/* ---- TRAIN / EVAL / PREDICT samples -------------------------------------------------------- */
typedef struct {
    uint32_t n_layers, n_inputs, n_classes;
    uint32_t batch_max;       /* largest batch accepted (FW_E_BATCH beyond) */
} fw_shape;

typedef struct {
    uint32_t flags, bits, batch;
    const uint8_t *kp;        /* k[L], p[L] (TRAIN only) */
    const int8_t *x;          /* unpacked inputs (batch x n_inputs), in the request buffer */
    uint32_t x_end;           /* offset in the request buffer after the inputs */
} fw_samples;

/* Parse flags / bits / B, [k, p], [table], [labels], inputs (packed, maybe run-coded)
 * and unpack the inputs in place. Labels go to labels[] (checked < n_classes). Returns 0, or
 * -1 after writing an error reply. */
int fw_parse_samples(uint8_t *p, uint32_t n, const fw_shape *shape, int with_kp,
                     uint16_t *labels, fw_samples *s);

#endif
