/*
 * Minimal ARMv7-M (Cortex-M3/M4/M7) startup: vector table, reset handler that copies
 * .data, zeroes .bss, paints the stack for the high-water mark, enables the FPU when the
 * build uses it, and calls main. Symbols come from the board's linker script.
 * No interrupt is ever taken: the device loop polls its UART (the MPS2 boards enable the UART
 * RX interrupt, masked, only to wake the core from WFI).
 */
#include <stdint.h>

#include "../../src/board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
extern int main(void);

#define STACK_PAINT 0xA5A5A5A5u

void Reset_Handler(void);
void Default_Handler(void);

void Default_Handler(void)
{
    /* A fault means a bug: stop here (a debugger shows where; the host sees a timeout). */
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*vector_fn)(void);

__attribute__((section(".isr_vector"), used)) const vector_fn vector_table[16] = {
    (vector_fn)(uintptr_t)&_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
};

__attribute__((noreturn)) void Reset_Handler(void)
{
    volatile uint32_t *src = &_sidata;
    volatile uint32_t *dst;
    uint32_t sp;

    for (dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;

    /* paint the stack below our own frame (keep 64 bytes of margin) */
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (dst = &_sstack; (uint32_t)(uintptr_t)dst < sp - 64u;) *dst++ = STACK_PAINT;

#if defined(__ARM_FP)
    /* CP10/CP11 full access, so code built for the FPU (hard-float ABI) may use it */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif

    (void)main();
    for (;;) {
    }
}

uint32_t board_stack_size(void)
{
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)&_sstack);
}

uint32_t board_stack_used(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}

uint32_t board_ram_static(void)
{
    return (uint32_t)(((uintptr_t)&_edata - (uintptr_t)&_sdata) +
                      ((uintptr_t)&_ebss - (uintptr_t)&_sbss));
}
