/* Semihosting output and exit (QEMU: -semihosting-config enable=on,target=native),
 * and a printf-free line builder. */
#ifndef TERN_FW_SEMIHOST_H
#define TERN_FW_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Writes a NUL-terminated string to the host's stdout (SYS_OPEN ":tt", SYS_WRITE). */
void semihost_write(const char *text);

/* Ends the QEMU process with `code` as its exit status (SYS_EXIT_EXTENDED). */
__attribute__((noreturn)) void semihost_exit(int code);

/* A line being built in a fixed buffer; output past its end is dropped. */
struct line {
    char text[160];
    size_t len;
};

void line_str(struct line *l, const char *s);
void line_u32(struct line *l, uint32_t v);
/* `0x` and 8 lower-case hex digits, like printf's "0x%08x". */
void line_hex32(struct line *l, uint32_t v);
/* Writes the line and a newline; empties it. */
void line_flush(struct line *l);

#endif
