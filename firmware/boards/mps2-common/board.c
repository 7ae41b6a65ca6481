/*
 * MPS2 FPGA images (AN385 Cortex-M3, AN386 Cortex-M4, AN500 Cortex-M7): UART0, a CMSDK APB
 * UART at 0x40004000, polled. Registers: DATA +0x00, STATE +0x04 (bit 0 TX full, bit 1 RX
 * full), CTRL +0x08 (bit 0 TX enable, bit 1 RX enable), BAUDDIV +0x10 (>= 16).
 */
#include <stdint.h>

#include "../../src/board.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))

#define STATE_TX_FULL 1u
#define STATE_RX_FULL 2u

#ifndef MPS2_SYSCLK_HZ
#define MPS2_SYSCLK_HZ 25000000u
#endif
#ifndef MPS2_BAUD
#define MPS2_BAUD 115200u
#endif

/* CMSDK dual timer, timer 1: 32-bit, free-running, clocked at SYSCLK (25 MHz). Under
 * qemu-system-arm -icount shift=0 one instruction takes 1 ns of guest time, so one tick is
 * 40 instructions (the DWT cycle counter reads 0 in QEMU). */
#define TIMER1_BASE 0x40002000u
#define TIMER1_LOAD (*(volatile uint32_t *)(TIMER1_BASE + 0x00u))
#define TIMER1_VALUE (*(volatile uint32_t *)(TIMER1_BASE + 0x04u))
#define TIMER1_CTRL (*(volatile uint32_t *)(TIMER1_BASE + 0x08u))
#define TIMER_CTRL_ENABLE (1u << 7)
#define TIMER_CTRL_32BIT (1u << 1)

uint32_t board_ticks(void) { return ~TIMER1_VALUE; /* counts down: invert to count up */ }
uint32_t board_tick_hz(void) { return MPS2_SYSCLK_HZ; }

void board_init(void)
{
    TIMER1_CTRL = 0;
    TIMER1_LOAD = 0xFFFFFFFFu;
    TIMER1_CTRL = TIMER_CTRL_ENABLE | TIMER_CTRL_32BIT; /* free-running, no prescale, no IRQ */

    UART_CTRL = 0;
    UART_BAUDDIV = MPS2_SYSCLK_HZ / MPS2_BAUD; /* 217; QEMU ignores the rate */
    UART_CTRL = 3u;
}

int board_getc(void)
{
    while (!(UART_STATE & STATE_RX_FULL)) {
    }
    return (int)(UART_DATA & 0xFFu);
}

void board_putc(uint8_t c)
{
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = c;
}

void board_flush(void) {}

const char *board_name(void) { return MPS2_BOARD_NAME; }
