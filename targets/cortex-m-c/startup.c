/* Start-up for the Cortex-M4 of QEMU's mps2-an386: vector table, reset handler
 * (FPU on, .data copied, .bss zeroed, stack painted), fault and default handlers.
 * Every handler other than reset reports over semihosting and exits with status 1. */
#include <stdint.h>

#include "semihost.h"

/* From link.ld. */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];
extern uint32_t _stack_limit[], _estack[];

/* Painted into the stack region at reset, for the high-water mark (main.c). */
#define STACK_PAINT 0xCCCCCCCCu

int main(void);

/* Runs with the FPU already on: the C code is compiled for hard float and GCC may
 * use FP registers even in integer code (spills to s0-s31). */
__attribute__((noreturn, used)) static void reset_c(void)
{
    /* volatile: keep GCC from turning the loops into memcpy/memset calls. */
    volatile uint32_t *dst = _sdata;
    const uint32_t *src = _sidata;
    while (dst < _edata) {
        *dst++ = *src++;
    }
    for (dst = _sbss; dst < _ebss; dst++) {
        *dst = 0;
    }
    /* Paint the stack up to 64 bytes below the current stack pointer. */
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = _stack_limit; dst < sp - 16; dst++) {
        *dst = STACK_PAINT;
    }
    semihost_exit(main());
}

/* CPACR: full access to CP10 and CP11 (the FPU), before any C code runs. */
__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm__ volatile("ldr r0, =0xE000ED88\n"
                     "ldr r1, [r0]\n"
                     "orr r1, r1, #(0xF << 20)\n"
                     "str r1, [r0]\n"
                     "dsb\n"
                     "isb\n"
                     "b reset_c\n");
}

/* Reports a fault: the stacked PC and LR, and the fault status registers. */
__attribute__((noreturn, used)) static void fault_report(const uint32_t *frame, uint32_t ipsr)
{
    struct line l;
    l.len = 0;
    line_str(&l, "tern-c-firmware: error: ");
    line_str(&l, ipsr == 3 ? "HardFault" : "exception ");
    if (ipsr != 3) {
        line_u32(&l, ipsr);
    }
    line_str(&l, " pc=");
    line_hex32(&l, frame[6]);
    line_str(&l, " lr=");
    line_hex32(&l, frame[5]);
    line_str(&l, " cfsr=");
    line_hex32(&l, *(volatile uint32_t *)0xE000ED28u);
    line_str(&l, " hfsr=");
    line_hex32(&l, *(volatile uint32_t *)0xE000ED2Cu);
    line_flush(&l);
    semihost_exit(1);
}

/* HardFault and every other exception: the frame of the stack that was in use. */
__attribute__((naked, noreturn)) void Default_Handler(void)
{
    __asm__ volatile("tst lr, #4\n"
                     "ite eq\n"
                     "mrseq r0, msp\n"
                     "mrsne r0, psp\n"
                     "mrs r1, ipsr\n"
                     "b fault_report\n");
}

typedef void (*vector)(void);

/* Core exceptions 1-15 and 32 interrupts (QEMU's mps2-an386 has 32 IRQs per CMSDK,
 * none enabled here). */
__attribute__((section(".vectors"), used)) static const vector vectors[16 + 32] = {
    [0] = (vector)_estack,
    [1] = Reset_Handler,
    [2 ... 16 + 32 - 1] = Default_Handler,
};
