/*
 * The firmware's checkpoint store (firmware/src/ckpt.c) on an emulated NOR flash that can cut
 * the power at any program or erase operation, tearing it: a power cut after every
 * operation of a checkpoint write, with several torn variants of the interrupted operation
 * (a partly programmed piece with a half-written byte, a partly erased sector with
 * indeterminate bytes), must leave a store in which boot finds either the previous checkpoint
 * or the new one, intact and byte for byte, never a corrupt or mixed one. Also: a store full
 * of garbage boots to "no checkpoint"; the writer never programs a bit that is not erased;
 * writes alternate between the slots.
 */
#include <stdint.h>
#include <string.h>

#include "ckpt.h"
#include "fn_test.h"

#define SECTOR 512u
#define SECTORS 24u /* two slots of 6 KB */
#define FLASH_BYTES (SECTOR * SECTORS)

typedef struct {
    uint8_t mem[FLASH_BYTES];
    long ops;        /* program / erase operations done */
    long cut_at;     /* the operation index at which the power goes (-1: never) */
    int tear;        /* 0: the interrupted operation did nothing; else it tears (a variant) */
    uint64_t rng;
    int off;         /* power is off: every operation fails */
    long violations; /* programs of bits that were not erased */
    long erases[SECTORS];
} emu;

static uint32_t rnd(emu *e)
{
    e->rng = e->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(e->rng >> 33);
}

static int emu_read(void *ctx, uint32_t off, uint8_t *buf, uint32_t n)
{
    emu *e = ctx;
    if (off > FLASH_BYTES || n > FLASH_BYTES - off) return -1;
    memcpy(buf, e->mem + off, n);
    return 0;
}

/* an operation starts: 1 = do it, 0 = the power went now (torn per e->tear) */
static int op_start(emu *e)
{
    if (e->off) return -1;
    if (e->cut_at >= 0 && e->ops == e->cut_at) {
        e->off = 1;
        return 0;
    }
    e->ops++;
    return 1;
}

static int emu_prog(void *ctx, uint32_t off, const uint8_t *buf, uint32_t n)
{
    emu *e = ctx;
    uint32_t i;
    int go;
    if (off > FLASH_BYTES || n > FLASH_BYTES - off) return -1;
    for (i = 0; i < n; i++)
        if ((uint8_t)(~e->mem[off + i] & buf[i]) != 0) e->violations++; /* a 0 bit set to 1 */
    go = op_start(e);
    if (go < 0) return -1;
    if (go == 0) { /* torn: a prefix written, one byte half-written, the rest not */
        uint32_t k;
        if (e->tear == 0 || n == 0) return -1;
        k = rnd(e) % n;
        for (i = 0; i < k; i++) e->mem[off + i] &= buf[i];
        e->mem[off + k] &= (uint8_t)(buf[k] | (uint8_t)rnd(e)); /* some of its 0 bits */
        return -1;
    }
    for (i = 0; i < n; i++) e->mem[off + i] &= buf[i];
    return 0;
}

static int emu_erase(void *ctx, uint32_t sector)
{
    emu *e = ctx;
    uint8_t *s;
    uint32_t i;
    int go;
    if (sector >= SECTORS) return -1;
    go = op_start(e);
    if (go < 0) return -1;
    s = e->mem + sector * SECTOR;
    if (go == 0) { /* torn: some bytes erased, some left, some indeterminate */
        if (e->tear == 0) return -1;
        for (i = 0; i < SECTOR; i++) {
            uint32_t r = rnd(e) % 4u;
            if (r == 0u) s[i] = 0xFF;
            else if (r == 1u) s[i] = (uint8_t)rnd(e);
            else if (r == 2u) s[i] |= (uint8_t)rnd(e); /* part of the way to 0xFF */
        }
        return -1;
    }
    memset(s, 0xFF, SECTOR);
    e->erases[sector]++;
    return 0;
}

static const uint8_t *emu_map(void *ctx, uint32_t off, uint32_t n)
{
    emu *e = ctx;
    if (off > FLASH_BYTES || n > FLASH_BYTES - off) return 0;
    return e->mem + off;
}

static void emu_bdev(emu *e, fw_bdev *d)
{
    d->sector_size = SECTOR;
    d->n_sectors = SECTORS;
    d->read = emu_read;
    d->prog = emu_prog;
    d->erase = emu_erase;
    d->map = emu_map;
    d->ctx = e;
}

/* payload of checkpoint number g: its length and bytes depend on g */
static uint32_t payload_len(uint32_t g) { return 700u + (g * 1237u) % 5000u; }

typedef struct {
    uint32_t g;
} src_ctx;

static uint8_t payload_byte(uint32_t g, uint32_t off)
{
    uint32_t v = (g + 1u) * 2654435761u ^ (off * 40503u);
    return (uint8_t)(v >> 13);
}

static int src_fn(void *ctx, uint32_t off, uint8_t *out, uint32_t n)
{
    const src_ctx *c = ctx;
    uint32_t i;
    for (i = 0; i < n; i++) out[i] = payload_byte(c->g, off + i);
    return 0;
}

static uint8_t scratch[256];

static void info_of(uint32_t g, fw_ckpt_info *i)
{
    memset(i, 0, sizeof(*i));
    i->length = payload_len(g);
    i->file_bytes = i->length - 40u;
    i->reply_bytes = 40u;
    i->train_seq = 1000u + g;
    i->train_crc = 0xABCD0000u + g;
    i->flags = 1;
    i->steps = 10u * g;
    i->samples = 80u * g;
    i->batch = 8;
    i->every = 10;
}

static int write_ckpt(fw_ckpt *st, uint32_t g)
{
    fw_ckpt_info i;
    src_ctx c;
    c.g = g;
    info_of(g, &i);
    return fw_ckpt_write(st, &i, src_fn, &c, scratch, sizeof(scratch));
}

/* the store's newest checkpoint is exactly checkpoint g (header and every payload byte) */
static int holds(const fw_ckpt *st, uint32_t g)
{
    uint32_t off;
    uint8_t b[97];
    if (st->newest < 0 || st->info.length != payload_len(g) || st->info.steps != 10u * g ||
        st->info.train_seq != 1000u + g || st->info.train_crc != 0xABCD0000u + g)
        return 0;
    for (off = 0; off < st->info.length; off += sizeof(b)) {
        uint32_t k = st->info.length - off < sizeof(b) ? st->info.length - off : sizeof(b), j;
        if (fw_ckpt_read(st, off, b, k) != 0) return 0;
        for (j = 0; j < k; j++)
            if (b[j] != payload_byte(g, off + j)) return 0;
    }
    return 1;
}

static emu E;

/* a store that has seen checkpoints 1..g (g = 0: a fresh, erased device) */
static void prepare(emu *e, fw_bdev *d, fw_ckpt *st, uint32_t g)
{
    uint32_t k;
    memset(e, 0, sizeof(*e));
    memset(e->mem, 0xFF, sizeof(e->mem));
    e->cut_at = -1;
    emu_bdev(e, d);
    REQUIRE(fw_ckpt_open(st, d, scratch, sizeof(scratch)) == 0);
    REQUIRE(st->newest == -1);
    for (k = 1; k <= g; k++) REQUIRE(write_ckpt(st, k) == 0);
}

static long cut_points, found_old, found_new;

/* power cut at every operation of writing checkpoint g+1 over a store holding 1..g */
static void sweep(uint32_t g, int tear, uint64_t seed)
{
    fw_bdev d;
    fw_ckpt st, st2;
    long ops, k;
    /* how many operations the write takes */
    prepare(&E, &d, &st, g);
    E.ops = 0;
    REQUIRE(write_ckpt(&st, g + 1u) == 0);
    ops = E.ops;
    CHECK_EQ(E.violations, 0);
    for (k = 0; k <= ops; k++) {
        int rc;
        prepare(&E, &d, &st, g);
        E.ops = 0;
        E.cut_at = k;
        E.tear = tear;
        E.rng = seed * 1000003u + (uint64_t)k * 7919u + g;
        rc = write_ckpt(&st, g + 1u);
        CHECK(k == ops ? rc == 0 : rc != 0);
        CHECK_EQ(E.violations, 0);
        /* power back: boot */
        E.off = 0;
        E.cut_at = -1;
        REQUIRE(fw_ckpt_open(&st2, &d, scratch, sizeof(scratch)) == 0);
        cut_points++;
        if (g == 0 && st2.newest < 0) {
            found_old++;
        } else if (g > 0 && holds(&st2, g)) {
            found_old++;
        } else if (holds(&st2, g + 1u)) {
            found_new++;
        } else {
            fprintf(stderr, "cut at op %ld of %ld (checkpoint %lu, tear %d): boot found seq %lu "
                    "newest %d, neither the old nor the new checkpoint\n", k, ops,
                    (unsigned long)(g + 1u), tear, (unsigned long)st2.info.seq, st2.newest);
            CHECK(0);
        }
        if (k == ops) CHECK(holds(&st2, g + 1u)); /* the header went in: the new one */
        /* the store keeps working after the cut: the next write commits and is found */
        REQUIRE(write_ckpt(&st2, g + 2u) == 0);
        REQUIRE(fw_ckpt_open(&st, &d, scratch, sizeof(scratch)) == 0);
        CHECK(holds(&st, g + 2u));
    }
}

static void test_alternate_and_wear(void)
{
    fw_bdev d;
    fw_ckpt st;
    uint32_t g, s;
    prepare(&E, &d, &st, 0);
    for (g = 1; g <= 9; g++) {
        REQUIRE(write_ckpt(&st, g) == 0);
        CHECK_EQ(st.newest, (int)((g - 1u) % 2u)); /* slots alternate */
        CHECK_EQ(st.info.seq, g);
    }
    /* erase counts: every write erased the sectors its checkpoint needs, no more */
    {
        long total = 0, want = 0;
        for (s = 0; s < SECTORS; s++) total += E.erases[s];
        for (g = 1; g <= 9; g++) want += (FW_CKPT_HDR + payload_len(g) + SECTOR - 1u) / SECTOR;
        CHECK_EQ(total, want);
        CHECK_EQ(st.erases, want);
        CHECK_EQ(st.wear, want);
        REQUIRE(fw_ckpt_open(&st, &d, scratch, sizeof(scratch)) == 0);
        CHECK_EQ(st.info.wear, want); /* the lifetime count survives a reboot */
        CHECK(holds(&st, 9));
    }
    /* too long for a slot: refused, the old one stays */
    {
        fw_ckpt_info i;
        src_ctx c;
        c.g = 1;
        info_of(1, &i);
        i.length = SECTOR * (SECTORS / 2u);
        CHECK_EQ(fw_ckpt_write(&st, &i, src_fn, &c, scratch, sizeof(scratch)), -2);
        CHECK(holds(&st, 9));
    }
    /* wipe: nothing left */
    CHECK_EQ(fw_ckpt_wipe(&st), 0);
    REQUIRE(fw_ckpt_open(&st, &d, scratch, sizeof(scratch)) == 0);
    CHECK_EQ(st.newest, -1);
    CHECK_EQ(E.violations, 0);
}

static void test_garbage(void)
{
    fw_bdev d;
    fw_ckpt st;
    uint32_t i, t;
    for (t = 0; t < 50u; t++) {
        memset(&E, 0, sizeof(E));
        E.cut_at = -1;
        E.rng = t + 1u;
        emu_bdev(&E, &d);
        for (i = 0; i < FLASH_BYTES; i++) E.mem[i] = (uint8_t)rnd(&E);
        if (t % 2u) { /* garbage that starts like a header */
            for (i = 0; i < SECTORS; i += SECTORS / 2u) {
                E.mem[i * SECTOR + 0] = 'F';
                E.mem[i * SECTOR + 1] = 'N';
                E.mem[i * SECTOR + 2] = 'C';
                E.mem[i * SECTOR + 3] = 'K';
                E.mem[i * SECTOR + 4] = 1;
                E.mem[i * SECTOR + 5] = 0;
                E.mem[i * SECTOR + 6] = FW_CKPT_HDR;
                E.mem[i * SECTOR + 7] = 0;
            }
        }
        REQUIRE(fw_ckpt_open(&st, &d, scratch, sizeof(scratch)) == 0);
        CHECK_EQ(st.newest, -1);
        /* and a checkpoint written over the garbage is found */
        REQUIRE(write_ckpt(&st, 3) == 0);
        REQUIRE(fw_ckpt_open(&st, &d, scratch, sizeof(scratch)) == 0);
        CHECK(holds(&st, 3));
    }
    /* a checkpoint whose payload rots is not taken: the previous one is */
    prepare(&E, &d, &st, 2);
    E.mem[(uint32_t)st.newest * (SECTOR * SECTORS / 2u) + FW_CKPT_HDR + 5u] ^= 0x10;
    REQUIRE(fw_ckpt_open(&st, &d, scratch, sizeof(scratch)) == 0);
    CHECK(holds(&st, 1));
    /* a device too small for two slots is refused, not used */
    d.n_sectors = 1;
    CHECK(fw_ckpt_open(&st, &d, scratch, sizeof(scratch)) < 0);
    CHECK_EQ(st.newest, -1);
}

int main(void)
{
    uint32_t g;
    int tear;
    test_alternate_and_wear();
    test_garbage();
    for (g = 0; g < 8u; g++)
        for (tear = 0; tear < 8; tear++) sweep(g, tear, 17u + (uint64_t)tear);
    printf("power cuts: %ld cut points, boot found the old checkpoint %ld times, the new one "
           "%ld times, a corrupt or mixed one 0 times\n", cut_points, found_old, found_new);
    CHECK(cut_points >= 1000);
    CHECK(found_old > 0 && found_new > 0);
    return fn_test_done("test_ckpt");
}
