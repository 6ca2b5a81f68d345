/* Tern's accuracy benchmark in C on a Cortex-M4 (QEMU mps2-an386), through the C API
 * of libtern.a: the int8 model is read in place from flash, the arena and the handles
 * are statics, each embedded test image (already int8) is copied in, the model
 * invoked, and output 0 copied out. Prints one line over semihosting:
 *
 *   tern-c-firmware: board=an386 images=N correct=C checksum=0x%08x
 *
 * where checksum is the CRC-32 of the raw int8 bytes of output 0 of every image, in
 * order (the host's `tern eval` checksum), then an info line (arena, model size,
 * stack peak, instructions per inference: valid under QEMU's `-icount shift=0`).
 * Returns 0 only when the checksum and the correct count equal the build's expected
 * values; startup.c passes the status to QEMU (semihosting exit).
 *
 * Build-time defines (see README.md): TERN_FW_IMAGES, TERN_FW_ARENA_SIZE,
 * TERN_FW_DATASET_CRC32, TERN_FW_EXPECT_CHECKSUM, TERN_FW_EXPECT_CORRECT. */
#include <stddef.h>
#include <stdint.h>

#include "semihost.h"
#include "tern.h"
/* tern_register_ops(): the model's ops only, written by `tern inspect --resolver c`
 * (the build generates it for the embedded model). */
#include "tern_ops.h"

#if !defined(TERN_FW_IMAGES) || !defined(TERN_FW_ARENA_SIZE) || \
    !defined(TERN_FW_DATASET_CRC32) || !defined(TERN_FW_EXPECT_CHECKSUM) || \
    !defined(TERN_FW_EXPECT_CORRECT)
#error "define TERN_FW_IMAGES, TERN_FW_ARENA_SIZE, TERN_FW_DATASET_CRC32, TERN_FW_EXPECT_CHECKSUM and TERN_FW_EXPECT_CORRECT"
#endif

#define IMAGE_BYTES 784
/* Largest output 0 this program accepts (10 class scores for Fashion-MNIST). */
#define MAX_SCORES 64
/* Painted into the stack at reset (startup.c). */
#define STACK_PAINT 0xCCCCCCCCu
/* SysTick, clocked by the processor clock: 25 MHz on QEMU's mps2-an386, so under
 * `-icount shift=0` (1 instruction = 1 ns) one tick is 40 instructions (the clock is
 * verified by the Rust firmware's calibration loop, targets/cortex-m/README.md). */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define INSTRUCTIONS_PER_TICK 40u

/* data.S: the model (64-byte aligned), the int8 images and the labels. */
extern const uint8_t tern_fw_model[], tern_fw_model_end[];
extern const int8_t tern_fw_images[TERN_FW_IMAGES * IMAGE_BYTES];
extern const uint8_t tern_fw_labels[TERN_FW_IMAGES];
/* link.ld: the stack region. */
extern uint32_t _stack_limit[], _estack[];

/* The handles and the arena: statics, no heap. The planned arena size is enough for a
 * 64-byte aligned buffer (tern_model_planned_arena_size). */
static TernOpResolver resolver;
static TernModel model;
static TernInterpreter interpreter;
static uint8_t arena[TERN_FW_ARENA_SIZE] __attribute__((aligned(64)));

/* CRC-32 (IEEE, reflected), continued from `crc` (start with ~0, finish with ~). */
static uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    for (size_t i = 0; i < len; i++) {
        crc ^= bytes[i];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return crc;
}

/* Index of the first largest score (the host's tie rule). */
static size_t argmax(const int8_t *scores, size_t count)
{
    size_t best = 0;
    for (size_t i = 1; i < count; i++) {
        if (scores[i] > scores[best]) {
            best = i;
        }
    }
    return best;
}

/* Prints `tern-c-firmware: error: WHAT[: DETAIL]` and returns 1 (the exit status). */
static int fail(const char *what, const char *detail)
{
    struct line l;
    l.len = 0;
    line_str(&l, "tern-c-firmware: error: ");
    line_str(&l, what);
    if (detail != NULL) {
        line_str(&l, ": ");
        line_str(&l, detail);
    }
    line_flush(&l);
    return 1;
}

/* A failed C API call: its name, the status and the last error message. */
static int fail_status(const char *call, TernStatus status)
{
    struct line l;
    l.len = 0;
    line_str(&l, "tern-c-firmware: error: ");
    line_str(&l, call);
    line_str(&l, ": ");
    line_str(&l, tern_status_string(status));
    line_flush(&l);
    semihost_write(tern_last_error_message());
    semihost_write("\n");
    return 1;
}

#define TRY(call)                                    \
    do {                                             \
        TernStatus status_ = (call);                 \
        if (status_ != TERN_STATUS_OK) {             \
            return fail_status(#call, status_);      \
        }                                            \
    } while (0)

/* Bytes of stack used so far: from the top down to the lowest overwritten word. */
static uint32_t stack_peak(void)
{
    const uint32_t *p = _stack_limit;
    while (p < _estack && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)_estack - (uintptr_t)p);
}

int main(void)
{
    uint32_t dataset = crc32_update(~0u, tern_fw_images, sizeof tern_fw_images);
    dataset = ~crc32_update(dataset, tern_fw_labels, sizeof tern_fw_labels);
    if (dataset != TERN_FW_DATASET_CRC32) {
        return fail("embedded test set is corrupt", "CRC-32 differs from the build's");
    }

    TRY(tern_register_ops(&resolver));
    TRY(tern_model_init_with_resolver(&model, tern_fw_model,
                                      (size_t)(tern_fw_model_end - tern_fw_model), &resolver));
    TRY(tern_model_verify_data(&model));
    size_t planned = 0;
    TRY(tern_model_planned_arena_size(&model, &planned));
    if (planned > sizeof arena) {
        return fail("arena too small", "TERN_FW_ARENA_SIZE is below the model's planned arena");
    }
    TernTensorInfo input, output;
    TRY(tern_model_input_info(&model, 0, &input));
    TRY(tern_model_output_info(&model, 0, &output));
    if (input.dtype != TERN_DTYPE_I8 || input.byte_size != IMAGE_BYTES) {
        return fail("model input 0", "expected 784 int8 values (one 28x28 image)");
    }
    if (output.dtype != TERN_DTYPE_I8 || output.byte_size > MAX_SCORES) {
        return fail("model output 0", "expected at most 64 int8 scores");
    }
    TRY(tern_interpreter_init(&interpreter, &model, arena, sizeof arena));

    /* SysTick free-running over 24 bits, no interrupt: one invoke takes far fewer than
     * 2^24 ticks, so the wrapped difference of two reads is exact. */
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* processor clock, enabled */
    uint64_t ticks = 0;
    uint32_t checksum = ~0u;
    uint32_t correct = 0;
    int8_t scores[MAX_SCORES];
    for (uint32_t i = 0; i < TERN_FW_IMAGES; i++) {
        TRY(tern_interpreter_set_input(&interpreter, 0, &tern_fw_images[i * IMAGE_BYTES],
                                       IMAGE_BYTES));
        uint32_t start = SYST_CVR;
        TRY(tern_interpreter_invoke(&interpreter));
        ticks += (start - SYST_CVR) & 0x00FFFFFFu;
        TRY(tern_interpreter_get_output(&interpreter, 0, scores, output.byte_size));
        checksum = crc32_update(checksum, scores, output.byte_size);
        if (argmax(scores, output.element_count) == tern_fw_labels[i]) {
            correct++;
        }
    }
    checksum = ~checksum;
    TRY(tern_interpreter_deinit(&interpreter));
    TRY(tern_model_deinit(&model));

    struct line l;
    l.len = 0;
    line_str(&l, "tern-c-firmware: board=an386 images=");
    line_u32(&l, TERN_FW_IMAGES);
    line_str(&l, " correct=");
    line_u32(&l, correct);
    line_str(&l, " checksum=");
    line_hex32(&l, checksum);
    line_flush(&l);
    line_str(&l, "tern-c-firmware: info: arena=");
    line_u32(&l, sizeof arena);
    line_str(&l, " model=");
    line_u32(&l, (uint32_t)(tern_fw_model_end - tern_fw_model));
    line_str(&l, " stack_peak=");
    line_u32(&l, stack_peak());
    line_str(&l, " instructions_per_inference=");
    line_u32(&l, (uint32_t)((ticks * INSTRUCTIONS_PER_TICK + TERN_FW_IMAGES / 2) / TERN_FW_IMAGES));
    line_flush(&l);

    if (checksum != TERN_FW_EXPECT_CHECKSUM) {
        return fail("output checksum differs from TERN_FW_EXPECT_CHECKSUM", NULL);
    }
    if (correct != TERN_FW_EXPECT_CORRECT) {
        return fail("correct count differs from TERN_FW_EXPECT_CORRECT", NULL);
    }
    return 0;
}
