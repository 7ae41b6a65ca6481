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

void board_init(void)
{
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
