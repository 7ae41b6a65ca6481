/*
 * MPS2 boards under QEMU: the checkpoint flash (src/ckpt.h) as a file on the host, through
 * ARM semihosting, so that it survives a restart of qemu-system-arm:
 *
 *   qemu-system-arm -M mps2-an386 ... -semihosting-config enable=on,target=native,arg=flash=F
 *
 * F is created if missing (as erased flash, 0xFF). Flash is memory-mapped on a real part, so
 * the file is mirrored in the board's PSRAM (mps.ram: 0x21000000 on AN385/AN386, 0x60000000
 * on AN500; not part of the firmware's RAM budget, it stands in for the flash array), read
 * in once at boot; every program and erase updates the mirror and is written through to the
 * file at once. NOR semantics: erase sets 0xFF, program clears bits (AND).
 *
 * Without that option there is no store (board_flash() is NULL). Without -semihosting at
 * all, the semihosting call traps (BKPT 0xAB with no debugger: HardFault); the handler
 * below recognises it, skips the instruction and fails the call, so the firmware boots
 * without a store instead of locking up.
 */
#include <stdint.h>
#include <string.h>

#include "../../src/board.h"
#include "../../src/ckpt.h"

#ifndef MPS2_PSRAM
#define MPS2_PSRAM 0x21000000u
#endif
#define FLASH_SECTOR 4096u
#define FLASH_SECTORS 32u /* two 64 KB slots */
#define FLASH_BYTES (FLASH_SECTOR * FLASH_SECTORS)
#define MIRROR ((uint8_t *)MPS2_PSRAM)

/* ---- semihosting ------------------------------------------------------------------------ */
#define SYS_OPEN 0x01
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_SEEK 0x0A
#define SYS_FLEN 0x0C
#define SYS_GET_CMDLINE 0x15

static volatile int semihost_trapped;

static int semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* HardFault: a BKPT 0xAB that trapped (no semihosting) returns -1 to its caller; anything
 * else stops here, as the default handler does. */
void hardfault_c(uint32_t *frame);
void hardfault_c(uint32_t *frame)
{
    const uint16_t *pc = (const uint16_t *)(uintptr_t)frame[6];
    if (*pc == 0xBEABu) {
        semihost_trapped = 1;
        frame[0] = 0xFFFFFFFFu; /* r0: the call failed */
        frame[6] += 2u;         /* past the BKPT */
        *(volatile uint32_t *)0xE000ED2Cu = 0xC0000000u; /* HFSR: clear DEBUGEVT, FORCED */
        *(volatile uint32_t *)0xE000ED30u = 0x1Fu;       /* DFSR */
        return;
    }
    for (;;) {
    }
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile("tst lr, #4\n"
                     "ite eq\n"
                     "mrseq r0, msp\n"
                     "mrsne r0, psp\n"
                     "b hardfault_c\n");
}

static int fd = -1;

static int file_write(uint32_t off, uint32_t n)
{
    uint32_t seek[2], wr[3];
    seek[0] = (uint32_t)fd;
    seek[1] = off;
    if (semihost(SYS_SEEK, seek) != 0) return -1;
    wr[0] = (uint32_t)fd;
    wr[1] = (uint32_t)(uintptr_t)(MIRROR + off);
    wr[2] = n;
    return semihost(SYS_WRITE, wr) == 0 ? 0 : -1; /* returns the bytes NOT written */
}

static int in_range(uint32_t off, uint32_t n) { return off <= FLASH_BYTES && n <= FLASH_BYTES - off; }

static int fl_read(void *ctx, uint32_t off, uint8_t *buf, uint32_t n)
{
    (void)ctx;
    if (!in_range(off, n)) return -1;
    memcpy(buf, MIRROR + off, n);
    return 0;
}

static int fl_prog(void *ctx, uint32_t off, const uint8_t *buf, uint32_t n)
{
    uint32_t i;
    (void)ctx;
    if (!in_range(off, n)) return -1;
    for (i = 0; i < n; i++) MIRROR[off + i] &= buf[i];
    return file_write(off, n);
}

static int fl_erase(void *ctx, uint32_t sector)
{
    (void)ctx;
    if (sector >= FLASH_SECTORS) return -1;
    memset(MIRROR + sector * FLASH_SECTOR, 0xFF, FLASH_SECTOR);
    return file_write(sector * FLASH_SECTOR, FLASH_SECTOR);
}

static const uint8_t *fl_map(void *ctx, uint32_t off, uint32_t n)
{
    (void)ctx;
    return in_range(off, n) ? MIRROR + off : 0;
}

static const fw_bdev semihost_flash = {FLASH_SECTOR, FLASH_SECTORS, fl_read, fl_prog, fl_erase,
                                       fl_map, 0};

/* the flash file's name: the "flash=PATH" word of the semihosting command line */
static int flash_path(char *path, uint32_t room)
{
    char cmd[256]; /* on the stack: used once, at boot */
    uint32_t arg[2], i = 0, n;
    arg[0] = (uint32_t)(uintptr_t)cmd;
    arg[1] = sizeof(cmd) - 1u;
    if (semihost(SYS_GET_CMDLINE, arg) != 0 || semihost_trapped) return -1;
    n = arg[1] < sizeof(cmd) ? arg[1] : sizeof(cmd) - 1u;
    cmd[n] = 0;
    while (i < n) {
        while (i < n && cmd[i] == ' ') i++;
        if (strncmp(cmd + i, "flash=", 6) == 0) {
            uint32_t k = 0;
            i += 6;
            while (i < n && cmd[i] != ' ' && k + 1u < room) path[k++] = cmd[i++];
            path[k] = 0;
            return k ? 0 : -1;
        }
        while (i < n && cmd[i] != ' ') i++;
    }
    return -1;
}

const fw_bdev *board_flash(void)
{
    char path[200];
    uint32_t arg[3], len;
    int f;
    if (fd >= 0) return &semihost_flash;
    if (flash_path(path, sizeof(path)) != 0) return 0;
    memset(MIRROR, 0xFF, FLASH_BYTES);
    arg[0] = (uint32_t)(uintptr_t)path;
    arg[1] = 3; /* "r+b" */
    arg[2] = (uint32_t)strlen(path);
    f = semihost(SYS_OPEN, arg);
    if (f < 0) {
        arg[1] = 7; /* "w+b": create it */
        f = semihost(SYS_OPEN, arg);
        if (f < 0) return 0;
    }
    fd = f;
    arg[0] = (uint32_t)fd;
    len = (uint32_t)semihost(SYS_FLEN, arg);
    if ((int32_t)len > 0) {
        uint32_t seek[2], rd[3];
        if (len > FLASH_BYTES) len = FLASH_BYTES;
        seek[0] = (uint32_t)fd;
        seek[1] = 0;
        rd[0] = (uint32_t)fd;
        rd[1] = (uint32_t)(uintptr_t)MIRROR;
        rd[2] = len;
        if (semihost(SYS_SEEK, seek) != 0 || semihost(SYS_READ, rd) != 0) { /* short: unused */
            fd = -1;
            return 0;
        }
    } else {
        len = 0;
    }
    if (len < FLASH_BYTES && file_write(len, FLASH_BYTES - len) != 0) { /* erased rest */
        fd = -1;
        return 0;
    }
    return &semihost_flash;
}
