/*
 * MPS2 FPGA images (AN385 Cortex-M3, AN386 Cortex-M4, AN500 Cortex-M7): UART0, a CMSDK APB
 * UART at 0x40004000. Registers: DATA +0x00, STATE +0x04 (bit 0 TX full, bit 1 RX full),
 * CTRL +0x08 (bit 0 TX enable, bit 1 RX enable, bit 3 RX interrupt enable), INTSTATUS +0x0C
 * (bit 1 RX, write 1 to clear), BAUDDIV +0x10 (>= 16).
 *
 * Reception is polled, but the core sleeps (WFI) while no byte is there: the UART's RX
 * interrupt (NVIC IRQ 0) is enabled with interrupts masked (PRIMASK), so it is never taken,
 * it only ends the WFI. Under QEMU this doubles the link's speed: the emulated CPU stops
 * spinning on the STATE register, and QEMU's I/O thread, which hands the UART one byte at
 * a time (its receive FIFO is one byte deep), gets a host CPU to itself.
 */
#include <stdint.h>

#include "../../src/board.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_INTSTATUS (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define CTRL_TX_EN 1u
#define CTRL_RX_EN 2u
#define CTRL_RX_INTEN 8u
#define INT_RX 2u

/* NVIC: UART0 RX is IRQ 0 on AN385 / AN386 / AN500 */
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ICPR0 (*(volatile uint32_t *)0xE000E280u)
#define UART0_RX_IRQ_BIT 1u

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
    /* the RX interrupt only wakes WFI (board_getc): masked, never taken */
    __asm volatile("cpsid i" ::: "memory");
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN;
    NVIC_ISER0 = UART0_RX_IRQ_BIT;
}

int board_getc(void)
{
    int c;
    while (!(UART_STATE & STATE_RX_FULL)) {
        /* a byte arriving between the test and the WFI leaves the IRQ pending: WFI returns */
        __asm volatile("wfi" ::: "memory");
    }
    c = (int)(UART_DATA & 0xFFu);
    UART_INTSTATUS = INT_RX;        /* lower the interrupt line ... */
    NVIC_ICPR0 = UART0_RX_IRQ_BIT;  /* ... then the pending state, for the next WFI */
    return c;
}

void board_putc(uint8_t c)
{
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = c;
}

void board_flush(void) {}

const char *board_name(void) { return MPS2_BOARD_NAME; }
