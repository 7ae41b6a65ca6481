/*
 * ST NUCLEO-F446RE (STM32F446RE, Cortex-M4F, 512 KB flash, 128 KB SRAM).
 * USART2 on PA2 (TX) / PA3 (RX), alternate function 7, wired to the ST-Link virtual COM
 * port: 115200 8N1 (NUCLEO_BAUD), polled. Register-level (RM0390); no HAL.
 *
 * Clock: by default the reset clock, HSI 16 MHz (APB1 16 MHz). Build with
 * -DNUCLEO_PLL_168MHZ=1 (CMake: -DCMAKE_C_FLAGS=-DNUCLEO_PLL_168MHZ=1) to run the core at
 * 168 MHz from the PLL (HSI / 8 * 168 / 2; voltage scale 1, 5 flash wait states, APB1
 * 42 MHz): about 10x faster training. Written from RM0390, not yet run on a board here.
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

#if NUCLEO_PLL_168MHZ
#define CORE_HZ 168000000u
#define APB1_HZ 42000000u
#else
#define CORE_HZ 16000000u
#define APB1_HZ 16000000u
#endif
#ifndef NUCLEO_BAUD
#define NUCLEO_BAUD 115200u
#endif
#define BAUD NUCLEO_BAUD

#define RCC_CR REG(RCC_BASE + 0x00u)
#define RCC_PLLCFGR REG(RCC_BASE + 0x04u)
#define RCC_CFGR REG(RCC_BASE + 0x08u)
#define RCC_APB1ENR_PWREN (1u << 28)
#define PWR_CR REG(0x40007000u)
#define FLASH_ACR REG(0x40023C00u)

#if NUCLEO_PLL_168MHZ
static void clock_168mhz(void)
{
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    PWR_CR = (PWR_CR & ~(3u << 14)) | (3u << 14);              /* VOS: scale 1 */
    FLASH_ACR = 5u | (1u << 8) | (1u << 9) | (1u << 10);         /* 5 WS, prefetch, I/D cache */
    while ((FLASH_ACR & 0xFu) != 5u) {
    }
    /* PLL from HSI: M = 8 (2 MHz in), N = 168 (336 MHz VCO), P = 2, Q = 7, R = 2 */
    RCC_PLLCFGR = 8u | (168u << 6) | (0u << 16) | (0u << 22) | (7u << 24) | (2u << 28);
    RCC_CR |= 1u << 24;                                          /* PLLON */
    while (!(RCC_CR & (1u << 25))) {                             /* PLLRDY */
    }
    /* AHB /1, APB1 /4 (42 MHz), APB2 /2 (84 MHz), then switch SYSCLK to the PLL */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) | (5u << 10) | (4u << 13);
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;
    while (((RCC_CFGR >> 2) & 3u) != 2u) {
    }
}
#endif

/* DWT cycle counter (the core clock, HSI 16 MHz). */
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)

uint32_t board_ticks(void) { return DWT_CYCCNT; }
uint32_t board_tick_hz(void) { return CORE_HZ; }

void board_init(void)
{
#if NUCLEO_PLL_168MHZ
    clock_168mhz();
#endif
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

    /* oversampling by 16: BRR = APB1 / baud, rounded (16e6 / 115200 = 138.9 -> 139;
     * 42e6 / 115200 = 364.6 -> 365) */
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
