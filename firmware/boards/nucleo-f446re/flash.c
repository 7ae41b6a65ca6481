/*
 * NUCLEO-F446RE: the checkpoint flash (src/ckpt.h) in the STM32F446RE's internal flash,
 * sectors 6 and 7 (128 KB each, 0x08040000 .. 0x0807FFFF; RM0390 section 3.3, table 5): one
 * checkpoint slot each. The linker script keeps the image below 0x08040000.
 *
 * Erase and program follow RM0390 3.5-3.6: unlock with the two KEYR keys, wait for BSY to
 * clear, clear the error flags; sector erase: SER, SNB, STRT; program: PG with PSIZE x8 (byte
 * by byte, valid at any supply voltage), then lock again. The CPU stalls on flash reads during
 * an erase (1-2 s for 128 KB), which is harmless in this polled, stop-and-wait firmware.
 * Reading is memory-mapped. Built, not run here (no board).
 */
#include <stdint.h>
#include <string.h>

#include "../../src/board.h"
#include "../../src/ckpt.h"

#define FLASH_R_BASE 0x40023C00u
#define FLASH_KEYR (*(volatile uint32_t *)(FLASH_R_BASE + 0x04u))
#define FLASH_SR (*(volatile uint32_t *)(FLASH_R_BASE + 0x0Cu))
#define FLASH_CR (*(volatile uint32_t *)(FLASH_R_BASE + 0x10u))
#define KEY1 0x45670123u
#define KEY2 0xCDEF89ABu
#define SR_BSY (1u << 16)
#define SR_ERRORS 0xF2u /* PGSERR 7, PGPERR 6, PGAERR 5, WRPERR 4, OPERR 1 */
#define CR_PG (1u << 0)
#define CR_SER (1u << 1)
#define CR_SNB_SHIFT 3u
#define CR_PSIZE_X8 (0u << 8)
#define CR_STRT (1u << 16)
#define CR_LOCK (1u << 31)

#define STORE_BASE 0x08040000u
#define STORE_SECTOR 0x20000u   /* 128 KB */
#define STORE_FIRST_SNB 6u      /* sectors 6 and 7 */
#define STORE_SECTORS 2u
#define STORE_BYTES (STORE_SECTOR * STORE_SECTORS)

static void wait_idle(void)
{
    while (FLASH_SR & SR_BSY) {
    }
}

static void unlock(void)
{
    wait_idle();
    if (FLASH_CR & CR_LOCK) {
        FLASH_KEYR = KEY1;
        FLASH_KEYR = KEY2;
    }
    FLASH_SR = SR_ERRORS; /* write 1 to clear */
}

static int finish(void)
{
    uint32_t err;
    wait_idle();
    err = FLASH_SR & SR_ERRORS;
    FLASH_SR = SR_ERRORS;
    FLASH_CR = CR_LOCK;
    return err ? -1 : 0;
}

static int in_range(uint32_t off, uint32_t n) { return off <= STORE_BYTES && n <= STORE_BYTES - off; }

static int st_read(void *ctx, uint32_t off, uint8_t *buf, uint32_t n)
{
    (void)ctx;
    if (!in_range(off, n)) return -1;
    memcpy(buf, (const uint8_t *)(uintptr_t)(STORE_BASE + off), n);
    return 0;
}

static int st_prog(void *ctx, uint32_t off, const uint8_t *buf, uint32_t n)
{
    volatile uint8_t *dst = (volatile uint8_t *)(uintptr_t)(STORE_BASE + off);
    uint32_t i;
    (void)ctx;
    if (!in_range(off, n)) return -1;
    unlock();
    FLASH_CR = CR_PSIZE_X8 | CR_PG;
    for (i = 0; i < n; i++) {
        if (buf[i] == 0xFFu) continue; /* programming 0xFF changes nothing */
        dst[i] = buf[i];
        __asm__ volatile("dsb" ::: "memory");
        wait_idle();
        if (FLASH_SR & SR_ERRORS) break;
    }
    return finish();
}

static int st_erase(void *ctx, uint32_t sector)
{
    (void)ctx;
    if (sector >= STORE_SECTORS) return -1;
    unlock();
    FLASH_CR = CR_PSIZE_X8 | CR_SER | ((STORE_FIRST_SNB + sector) << CR_SNB_SHIFT);
    FLASH_CR |= CR_STRT;
    __asm__ volatile("dsb" ::: "memory");
    return finish();
}

static const uint8_t *st_map(void *ctx, uint32_t off, uint32_t n)
{
    (void)ctx;
    return in_range(off, n) ? (const uint8_t *)(uintptr_t)(STORE_BASE + off) : 0;
}

static const fw_bdev stm32_flash = {STORE_SECTOR, STORE_SECTORS, st_read, st_prog, st_erase,
                                    st_map, 0};

const fw_bdev *board_flash(void) { return &stm32_flash; }
