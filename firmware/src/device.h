/*
 * flipnet device loop: the serial protocol of docs/protocol.md on top of the core.
 * Board-agnostic; the board provides board.h.
 */
#ifndef FLIPNET_FW_DEVICE_H
#define FLIPNET_FW_DEVICE_H

#include <stdint.h>

/* Static RAM sizes (override with -D...; the defaults fit a 784-128-10 ternary model with
 * batch 8 in about 62 KB: see docs/protocol.md and the size report of each build). */
#ifndef FW_ARENA_BYTES      /* weights + work area (scratch, PULL/LOAD staging) */
#define FW_ARENA_BYTES (52u * 1024u)
#endif
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

/* 1 when flipnet_model has per-weight counters (model->counters, counter_bytes); the build
 * (firmware/CMakeLists.txt, flipnet.device.sim) sets it from the core's header. */
#ifndef FW_CORE_MODEL_COUNTERS
#define FW_CORE_MODEL_COUNTERS 0
#endif

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
    FW_E_BATCH = -109
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
    FW_CMD_NAK = 0xFF
};

/* Reset all protocol and model state. */
void fw_init(void);

/* Feed one received byte (COBS stream); replies go out through board_putc. */
void fw_feed(uint8_t c);

/* fw_init, then feed board_getc() until it returns -1. */
void fw_run(void);

#endif
