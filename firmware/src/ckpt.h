/*
 * flipnet checkpoint store: the training firmware's model (and the state that goes with it)
 * kept in flash across resets and power loss (docs/protocol.md, section 10).
 *
 * A block device (fw_bdev: read, program, erase by sector, NOR semantics: erase sets bytes to
 * 0xFF, program only clears bits) is split into FW_CKPT_SLOTS equal slots of whole sectors.
 * A checkpoint goes into the slot that does not hold the newest one: its sectors are erased,
 * the payload is programmed and read back, and the header (magic, format version, sequence
 * number, length, CRCs) is programmed LAST: it is the commit. Boot reads every slot's header
 * and takes the intact one (header CRC and payload CRC both right) with the highest sequence
 * number; a power cut at any point of a write leaves the previous checkpoint intact, and a
 * torn header or payload is never taken. Pure C99 over <stdint.h>/<string.h> and the core's
 * CRC-32; no board code.
 */
#ifndef FLIPNET_FW_CKPT_H
#define FLIPNET_FW_CKPT_H

#include <stdint.h>

#define FW_CKPT_SLOTS 2u
#define FW_CKPT_MAGIC 0x4B434E46u   /* "FNCK" */
#define FW_CKPT_VERSION 1u
#define FW_CKPT_HDR 112u            /* header bytes at the start of a slot */

/* A block device. Offsets are bytes from the start of the device; the device is n_sectors
 * sectors of sector_size bytes. Each call returns 0, or < 0 on a failure (a power cut of the
 * emulated flash, a flash error). `map` (may be NULL): a pointer to n readable bytes at off
 * (memory-mapped flash), for restoring a model without a RAM copy of its file. */
typedef struct fw_bdev {
    uint32_t sector_size, n_sectors;
    int (*read)(void *ctx, uint32_t off, uint8_t *buf, uint32_t n);
    int (*prog)(void *ctx, uint32_t off, const uint8_t *buf, uint32_t n);
    int (*erase)(void *ctx, uint32_t sector);
    const uint8_t *(*map)(void *ctx, uint32_t off, uint32_t n);
    void *ctx;
} fw_bdev;

/* What a checkpoint says about itself (its header). */
typedef struct {
    uint32_t seq;          /* checkpoint sequence number (1, 2, ...; the newest wins) */
    uint32_t length;       /* payload bytes */
    uint32_t crc;          /* CRC-32 of the payload */
    uint32_t file_bytes;   /* the model file: payload bytes [0, file_bytes) */
    uint32_t reply_bytes;  /* the cached TRAIN reply: payload bytes [file_bytes, +reply_bytes) */
    uint32_t train_seq;    /* seq and request CRC of the last TRAIN applied (reply cache) */
    uint32_t train_crc;
    uint32_t flags;        /* bit 0: the reply cache fields are valid */
    uint32_t wear;         /* sector erases of the whole store up to this checkpoint */
    uint32_t every;        /* checkpoint cadence (steps) at the time of writing */
    uint64_t steps;        /* the model's step counter */
    uint64_t samples;
    /* device state (docs/protocol.md PULL metadata) */
    uint32_t batch;        /* the batch the scratch was sized for */
    uint32_t origin;       /* 1 configure, 2 load */
    uint32_t load_crc;
    uint64_t start_steps, start_samples, train_ticks;
} fw_ckpt_info;

/* A store on one block device. */
typedef struct {
    const fw_bdev *dev;
    uint32_t slot_sectors, slot_bytes;
    int newest;            /* slot of the newest intact checkpoint, -1 none */
    fw_ckpt_info info;     /* its header */
    uint32_t erases;       /* sector erases since fw_ckpt_open */
    uint32_t writes;       /* checkpoints written since fw_ckpt_open */
    uint32_t failures;     /* checkpoint writes that failed since fw_ckpt_open */
    uint32_t wear;         /* sector erases of the store in its life (from the headers) */
    uint32_t seq;          /* the highest sequence number seen or written */
} fw_ckpt;

/* Scan the device: finds the newest intact checkpoint (st->newest, st->info). buf (n bytes,
 * n >= 64) is scratch for reading payloads to check their CRC. Returns 0, or < 0 when the
 * device cannot hold a checkpoint at all (fewer sectors than slots, ...). Garbage on the
 * device is no error: it is not a checkpoint. */
int fw_ckpt_open(fw_ckpt *st, const fw_bdev *dev, uint8_t *buf, uint32_t n);

/* The payload source of a write: bytes [off, off + n) of the payload into out. */
typedef int (*fw_ckpt_source)(void *ctx, uint32_t off, uint8_t *out, uint32_t n);

/* Write a checkpoint of `length` payload bytes from `src` (in pieces of at most n bytes
 * through buf) with the header fields of *info (seq, length, crc and wear are set here).
 * Returns 0 when committed (st->newest is the new one), < 0 otherwise (the previous checkpoint
 * stays the newest): -1 device error, -2 too long for a slot, -3 read-back mismatch. */
int fw_ckpt_write(fw_ckpt *st, const fw_ckpt_info *info, fw_ckpt_source src, void *ctx,
                  uint8_t *buf, uint32_t n);

/* Read payload bytes [off, off + n) of the newest checkpoint. */
int fw_ckpt_read(const fw_ckpt *st, uint32_t off, uint8_t *out, uint32_t n);

/* Memory-mapped payload bytes [off, off + n) of the newest checkpoint, or NULL (no map). */
const uint8_t *fw_ckpt_map(const fw_ckpt *st, uint32_t off, uint32_t n);

/* Erase the headers of every slot: the store holds no checkpoint afterwards. */
int fw_ckpt_wipe(fw_ckpt *st);

#endif
