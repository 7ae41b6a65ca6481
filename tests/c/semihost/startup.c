/* Vector table for running the C unit tests bare-metal on a Cortex-M under
 * qemu-system-arm -M mps2-an386 -semihosting (newlib rdimon: printf, malloc and exit go
 * through semihosting). Reset enters newlib's _start, which sets up the heap and calls main. */
#include <stdint.h>

extern void _start(void);
extern uint32_t __stack_top;

static void fn_hang(void)
{
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) const void *const fn_vectors[16] = {
    &__stack_top, (const void *)_start, (const void *)fn_hang, (const void *)fn_hang,
    (const void *)fn_hang, (const void *)fn_hang, (const void *)fn_hang, 0, 0, 0, 0,
    (const void *)fn_hang, (const void *)fn_hang, 0, (const void *)fn_hang, (const void *)fn_hang};
