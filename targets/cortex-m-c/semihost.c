/* Semihosting calls through `bkpt 0xAB` (Arm semihosting v2, M profile). */
#include "semihost.h"

#define SYS_OPEN 0x01
#define SYS_WRITE 0x05
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static uint32_t semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* The host's stdout: `:tt` opened for writing ("w", mode 4). SYS_WRITE0 would be
 * shorter, but QEMU sends it to its own stderr; the Rust firmware's output (through
 * cortex-m-semihosting's hstdout) and this one both go to stdout. */
static uint32_t stdout_handle(void)
{
    static uint32_t handle_plus_one; /* 0: not opened yet (a .bss zero) */
    if (handle_plus_one == 0) {
        const uint32_t block[3] = {(uint32_t)(uintptr_t)":tt", 4, 3};
        handle_plus_one = semihost_call(SYS_OPEN, block) + 1;
    }
    return handle_plus_one - 1;
}

void semihost_write(const char *text)
{
    size_t len = 0;
    while (text[len] != '\0') {
        len++;
    }
    const uint32_t block[3] = {stdout_handle(), (uint32_t)(uintptr_t)text, (uint32_t)len};
    semihost_call(SYS_WRITE, block);
}

void semihost_exit(int code)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
        __asm__ volatile("wfi");
    }
}

static void line_char(struct line *l, char c)
{
    if (l->len + 1 < sizeof l->text) {
        l->text[l->len++] = c;
    }
}

void line_str(struct line *l, const char *s)
{
    while (*s != '\0') {
        line_char(l, *s++);
    }
}

void line_u32(struct line *l, uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        line_char(l, digits[--n]);
    }
}

void line_hex32(struct line *l, uint32_t v)
{
    line_str(l, "0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        line_char(l, "0123456789abcdef"[(v >> shift) & 0xf]);
    }
}

void line_flush(struct line *l)
{
    line_char(l, '\n');
    l->text[l->len] = '\0';
    semihost_write(l->text);
    l->len = 0;
}
