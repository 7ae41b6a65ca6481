/*
 * ST NUCLEO-F446RE (STM32F446RE, Cortex-M4F, 512 KB flash, 128 KB SRAM).
 * USART2 on PA2 (TX) / PA3 (RX), alternate function 7, wired to the ST-Link virtual COM
 * port: 115200 8N1, polled. Clock: the reset default, HSI 16 MHz, APB1 = 16 MHz.
 * Register-level (RM0390); no HAL.
 */
#include <stdint.h>

#include "../../src/board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR REG(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG(RCC_BASE + 0x40u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)

#define GPIOA_BASE 0x40020000u
#define GPIOA_MODER REG(GPIOA_BASE + 0x00u)
#define GPIOA_PUPDR REG(GPIOA_BASE + 0x0Cu)
#define GPIOA_AFRL REG(GPIOA_BASE + 0x20u)

#define USART2_BASE 0x40004400u
#define USART_SR REG(USART2_BASE + 0x00u)
#define USART_DR REG(USART2_BASE + 0x04u)
#define USART_BRR REG(USART2_BASE + 0x08u)
#define USART_CR1 REG(USART2_BASE + 0x0Cu)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define SR_TC (1u << 6)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_UE (1u << 13)

#define APB1_HZ 16000000u
#define BAUD 115200u

/* DWT cycle counter (the core clock, HSI 16 MHz). */
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)

uint32_t board_ticks(void) { return DWT_CYCCNT; }
uint32_t board_tick_hz(void) { return APB1_HZ; }

void board_init(void)
{
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;    /* CYCCNTENA */

    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR; /* let the clock enable settle before touching the peripheral */

    /* PA2, PA3: alternate function mode (0b10), AF7; pull-up on RX */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (0xAu << 4);
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (0x77u << 8);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(0x3u << 6)) | (0x1u << 6);

    /* oversampling by 16: BRR = APB1 / baud, rounded (16e6 / 115200 = 138.9 -> 139) */
    USART_CR1 = 0;
    USART_BRR = (APB1_HZ + BAUD / 2u) / BAUD;
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE;
}

int board_getc(void)
{
    for (;;) {
        uint32_t sr = USART_SR;
        if (sr & SR_RXNE) return (int)(USART_DR & 0xFFu);
        /* an overrun cannot happen under stop-and-wait; if it does, clear it (SR then DR)
         * and let the CRC / retransmission deal with the lost byte */
        if (sr & SR_ORE) (void)USART_DR;
    }
}

void board_putc(uint8_t c)
{
    while (!(USART_SR & SR_TXE)) {
    }
    USART_DR = c;
}

void board_flush(void)
{
    while (!(USART_SR & SR_TC)) {
    }
}

const char *board_name(void) { return "nucleo-f446re"; }
