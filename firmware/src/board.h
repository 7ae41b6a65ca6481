/*
 * What a board supplies to the board-agnostic device loop (firmware/src/device.c).
 * One implementation per directory under firmware/boards/.
 */
#ifndef FLIPNET_FW_BOARD_H
#define FLIPNET_FW_BOARD_H

#include <stdint.h>

/* Clocks, UART (8N1, polling) and anything else the board needs; called once from main. */
void board_init(void);

/* Next received byte 0..255; blocks until one arrives. -1 = the link is gone for good
 * (host twin on end of input); a microcontroller never returns -1. */
int board_getc(void);

/* Send one byte; blocks while the transmitter is full. */
void board_putc(uint8_t c);

/* Push out anything buffered (host twin); no-op on a UART. */
void board_flush(void);

/* Board name for INFO, at most 15 characters. */
const char *board_name(void);

/* A free-running 32-bit counter for timing TRAIN (wraps; differences are taken modulo
 * 2^32) and its rate in Hz; board_tick_hz() == 0 when the board has none. */
uint32_t board_ticks(void);
uint32_t board_tick_hz(void);

/* RAM accounting for INFO / STATS, bytes; 0 when unknown (host twin). */
uint32_t board_ram_static(void);  /* .data + .bss (without the stack reservation) */
uint32_t board_stack_size(void);  /* stack reserved */
uint32_t board_stack_used(void);  /* high-water mark: stack painted at reset, scanned now */

/* The flash the checkpoint store lives in (src/ckpt.h), or NULL: the board keeps nothing
 * across a reset. Called once at boot (fw_init). */
struct fw_bdev;
const struct fw_bdev *board_flash(void);

#endif
