/*
 * flipnet firmware: the device loop (docs/protocol.md) on top of the core. Board-agnostic;
 * the board provides board.h. The training firmware is device.c, the inference-only
 * firmware infer.c; both speak the protocol through the link (link.h).
 */
#ifndef FLIPNET_FW_DEVICE_H
#define FLIPNET_FW_DEVICE_H

#include <stdint.h>

/* Static RAM sizes of the training firmware (override with -D...; the defaults fit a
 * 784-128-10 ternary model with batch 8 in about 62 KB: see docs/protocol.md and the size
 * report of each build). The link's buffer sizes (FW_MAX_FRAME, FW_MAX_REPLY, FW_MAX_BATCH)
 * are in link.h. */
#ifndef FW_ARENA_BYTES      /* weights + work area (scratch, PULL/LOAD staging) */
#define FW_ARENA_BYTES (52u * 1024u)
#endif

/* 1 when flipnet_model has per-weight counters (model->counters, counter_bytes); the build
 * (firmware/CMakeLists.txt, flipnet.device.sim) sets it from the core's header. */
#ifndef FW_CORE_MODEL_COUNTERS
#define FW_CORE_MODEL_COUNTERS 0
#endif

#include "link.h" /* fw_init, fw_feed, fw_run, protocol constants */

#endif
