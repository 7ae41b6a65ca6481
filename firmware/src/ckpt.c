/*
 * flipnet checkpoint store (ckpt.h): slots of whole sectors, a header written last as the
 * commit, the newest intact checkpoint found at boot.
 *
 * Header (FW_CKPT_HDR = 112 bytes at the start of a slot, little-endian):
 *   0 magic "FNCK"  4 u16 format version  6 u16 header bytes  8 seq  12 length  16 payload
 *   CRC  20 file bytes  24 reply bytes  28 TRAIN seq  32 TRAIN request CRC  36 flags  40 wear
 *   44 cadence  48 u64 steps  56 u64 samples  64 batch  68 origin  72 load CRC
 *   76 u64 start steps  84 u64 start samples  92 u64 train ticks  100 8 bytes 0
 *   108 CRC-32 of bytes 0..107
 * Payload at slot offset FW_CKPT_HDR: the model file, then the cached reply of the last TRAIN.
 */
#include "ckpt.h"

#include <string.h>

#include "flipnet/flipnet.h"

#define HDR_CRC_AT (FW_CKPT_HDR - 4u)

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (get16(p + 2) << 16); }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32); }

static void hdr_encode(uint8_t *h, const fw_ckpt_info *i)
{
    memset(h, 0, FW_CKPT_HDR);
    put32(h + 0, FW_CKPT_MAGIC);
    put16(h + 4, FW_CKPT_VERSION);
    put16(h + 6, FW_CKPT_HDR);
    put32(h + 8, i->seq);
    put32(h + 12, i->length);
    put32(h + 16, i->crc);
    put32(h + 20, i->file_bytes);
    put32(h + 24, i->reply_bytes);
    put32(h + 28, i->train_seq);
    put32(h + 32, i->train_crc);
    put32(h + 36, i->flags);
    put32(h + 40, i->wear);
    put32(h + 44, i->every);
    put64(h + 48, i->steps);
    put64(h + 56, i->samples);
    put32(h + 64, i->batch);
    put32(h + 68, i->origin);
    put32(h + 72, i->load_crc);
    put64(h + 76, i->start_steps);
    put64(h + 84, i->start_samples);
    put64(h + 92, i->train_ticks);
    put32(h + HDR_CRC_AT, flipnet_crc32(0, h, HDR_CRC_AT));
}

/* 0 if h is a header of this format (magic, version, size, CRC, lengths within the slot) */
static int hdr_decode(const uint8_t *h, uint32_t slot_bytes, fw_ckpt_info *i)
{
    if (get32(h) != FW_CKPT_MAGIC || get16(h + 4) != FW_CKPT_VERSION ||
        get16(h + 6) != FW_CKPT_HDR || get32(h + HDR_CRC_AT) != flipnet_crc32(0, h, HDR_CRC_AT))
        return -1;
    memset(i, 0, sizeof(*i));
    i->seq = get32(h + 8);
    i->length = get32(h + 12);
    i->crc = get32(h + 16);
    i->file_bytes = get32(h + 20);
    i->reply_bytes = get32(h + 24);
    i->train_seq = get32(h + 28);
    i->train_crc = get32(h + 32);
    i->flags = get32(h + 36);
    i->wear = get32(h + 40);
    i->every = get32(h + 44);
    i->steps = get64(h + 48);
    i->samples = get64(h + 56);
    i->batch = get32(h + 64);
    i->origin = get32(h + 68);
    i->load_crc = get32(h + 72);
    i->start_steps = get64(h + 76);
    i->start_samples = get64(h + 84);
    i->train_ticks = get64(h + 92);
    if (i->length > slot_bytes - FW_CKPT_HDR || i->file_bytes > i->length ||
        i->reply_bytes > i->length - i->file_bytes)
        return -1;
    return 0;
}

static uint32_t slot_off(const fw_ckpt *st, uint32_t slot) { return slot * st->slot_bytes; }

/* CRC-32 of n payload bytes of slot, read through buf; 0 and *crc, or < 0 */
static int payload_crc(const fw_ckpt *st, uint32_t slot, uint32_t len, uint8_t *buf, uint32_t n,
                       uint32_t *crc)
{
    uint32_t off = 0, c = 0;
    while (off < len) {
        uint32_t k = len - off < n ? len - off : n;
        if (st->dev->read(st->dev->ctx, slot_off(st, slot) + FW_CKPT_HDR + off, buf, k) != 0)
            return -1;
        c = flipnet_crc32(c, buf, k);
        off += k;
    }
    *crc = c;
    return 0;
}

/* the newer of two sequence numbers (serial number arithmetic: survives the wrap at 2^32) */
static int newer(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

int fw_ckpt_open(fw_ckpt *st, const fw_bdev *dev, uint8_t *buf, uint32_t n)
{
    uint32_t s;
    memset(st, 0, sizeof(*st));
    st->dev = dev;
    st->newest = -1;
    if (dev == 0 || n < 64u || dev->sector_size == 0 || dev->n_sectors < FW_CKPT_SLOTS ||
        dev->sector_size > 0xFFFFFFFFu / dev->n_sectors)
        return -1;
    st->slot_sectors = dev->n_sectors / FW_CKPT_SLOTS;
    st->slot_bytes = st->slot_sectors * dev->sector_size;
    if (st->slot_bytes <= FW_CKPT_HDR) return -1;
    for (s = 0; s < FW_CKPT_SLOTS; s++) {
        uint8_t h[FW_CKPT_HDR];
        fw_ckpt_info i;
        uint32_t crc;
        if (dev->read(dev->ctx, slot_off(st, s), h, FW_CKPT_HDR) != 0) continue;
        if (hdr_decode(h, st->slot_bytes, &i) != 0) continue;
        /* any well-formed header counts for the wear and the next sequence number */
        if (i.wear > st->wear) st->wear = i.wear;
        if (newer(i.seq, st->seq)) st->seq = i.seq;
        if (payload_crc(st, s, i.length, buf, n, &crc) != 0 || crc != i.crc) continue;
        if (st->newest < 0 || newer(i.seq, st->info.seq)) {
            st->newest = (int)s;
            st->info = i;
        }
    }
    return 0;
}

int fw_ckpt_write(fw_ckpt *st, const fw_ckpt_info *info, fw_ckpt_source src, void *ctx,
                  uint8_t *buf, uint32_t n)
{
    const fw_bdev *d = st->dev;
    uint32_t slot, base, need, sectors, i, off, crc = 0, back;
    fw_ckpt_info hi;
    uint8_t h[FW_CKPT_HDR], h2[FW_CKPT_HDR];
    if (d == 0 || n == 0) return -1;
    if (info->length > st->slot_bytes - FW_CKPT_HDR) {
        st->failures++;
        return -2;
    }
    slot = st->newest < 0 ? 0u : ((uint32_t)st->newest + 1u) % FW_CKPT_SLOTS;
    base = slot_off(st, slot);
    need = FW_CKPT_HDR + info->length;
    sectors = (need + d->sector_size - 1u) / d->sector_size;
    /* 1. erase, header sector first: the slot's old header goes before anything else */
    for (i = 0; i < sectors; i++) {
        if (d->erase(d->ctx, slot * st->slot_sectors + i) != 0) goto fail;
        st->erases++;
        st->wear++;
    }
    /* 2. the payload */
    for (off = 0; off < info->length;) {
        uint32_t k = info->length - off < n ? info->length - off : n;
        if (src(ctx, off, buf, k) != 0) goto fail;
        crc = flipnet_crc32(crc, buf, k);
        if (d->prog(d->ctx, base + FW_CKPT_HDR + off, buf, k) != 0) goto fail;
        off += k;
    }
    /* 3. read it back */
    if (payload_crc(st, slot, info->length, buf, n, &back) != 0) goto fail;
    if (back != crc) {
        st->failures++;
        return -3;
    }
    /* 4. the header: the commit */
    hi = *info;
    hi.seq = st->seq + 1u;
    hi.crc = crc;
    hi.wear = st->wear;
    hdr_encode(h, &hi);
    if (d->prog(d->ctx, base, h, FW_CKPT_HDR) != 0) goto fail;
    if (d->read(d->ctx, base, h2, FW_CKPT_HDR) != 0) goto fail;
    if (memcmp(h, h2, FW_CKPT_HDR) != 0) {
        st->failures++;
        return -3;
    }
    st->newest = (int)slot;
    st->info = hi;
    st->seq = hi.seq;
    st->writes++;
    return 0;
fail:
    st->failures++;
    return -1;
}

int fw_ckpt_read(const fw_ckpt *st, uint32_t off, uint8_t *out, uint32_t n)
{
    if (st->newest < 0 || off > st->info.length || n > st->info.length - off) return -1;
    return st->dev->read(st->dev->ctx, slot_off(st, (uint32_t)st->newest) + FW_CKPT_HDR + off,
                         out, n);
}

const uint8_t *fw_ckpt_map(const fw_ckpt *st, uint32_t off, uint32_t n)
{
    if (st->newest < 0 || st->dev->map == 0 || off > st->info.length ||
        n > st->info.length - off)
        return 0;
    return st->dev->map(st->dev->ctx, slot_off(st, (uint32_t)st->newest) + FW_CKPT_HDR + off, n);
}

int fw_ckpt_wipe(fw_ckpt *st)
{
    uint32_t s;
    int rc = 0;
    if (st->dev == 0) return -1;
    for (s = 0; s < FW_CKPT_SLOTS; s++) {
        if (st->dev->erase(st->dev->ctx, s * st->slot_sectors) != 0) rc = -1;
        st->erases++;
        st->wear++;
    }
    st->newest = -1;
    return rc;
}
