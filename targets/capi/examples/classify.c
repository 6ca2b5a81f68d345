/*
 * classify: runs a .tern classifier on pre-quantized inputs through Tern's C API.
 *
 *   classify MODEL.tern INPUTS.bin LABELS.bin OUTPUTS.bin
 *
 * MODEL.tern  the model; read into a 16-byte aligned buffer (zero-copy API), and, in
 *             hosted builds (-DTERN_STD), also opened by path (mmap) and checked to
 *             give the same outputs.
 * INPUTS.bin  N raw inputs back to back, each exactly input 0's byte size (int8 for
 *             a quantized model: already quantized with the input's scale/zero point).
 * LABELS.bin  N bytes, the class of each input.
 * OUTPUTS.bin written: for every input, every output's raw bytes in order.
 *
 * Prints one line: "classify: images=N correct=C checksum=0x%08x", where the checksum
 * is the CRC-32 (IEEE) of the concatenated raw bytes of output 0 of every input and
 * "correct" counts the inputs whose largest output-0 value is at their label.
 * Exits non-zero on any error. Portable C99.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

/* Reports a failed call with its status and message, then exits. */
#define CHECK(call)                                                                  \
    do {                                                                             \
        TernStatus status_ = (call);                                                 \
        if (status_ != TERN_STATUS_OK) {                                             \
            fprintf(stderr, "classify: %s failed: %s (%d): %s\n", #call,            \
                    tern_status_string(status_), (int)status_,                      \
                    tern_last_error_message());                                     \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

static void die(const char *what, const char *detail) {
    fprintf(stderr, "classify: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as crc32fast/zlib. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len) {
    size_t i;
    int bit;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        for (bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

/* Reads a whole file into a buffer aligned to `align` bytes. `*base` receives the
 * pointer to free. */
static uint8_t *read_file(const char *path, size_t align, size_t *len, void **base) {
    FILE *f = fopen(path, "rb");
    long size;
    uint8_t *raw;
    uint8_t *aligned;
    if (!f) die("cannot open", path);
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        die("cannot size", path);
    }
    raw = (uint8_t *)malloc((size_t)size + align);
    if (!raw) die("out of memory reading", path);
    /* C99 has no aligned_alloc: round the address up by hand. */
    aligned = raw + (align - (size_t)((uintptr_t)raw % align)) % align;
    if (size > 0 && fread(aligned, 1, (size_t)size, f) != (size_t)size) die("cannot read", path);
    fclose(f);
    *len = (size_t)size;
    *base = raw;
    return aligned;
}

/* Index of the largest element of an output (first on ties), or -1 for a dtype this
 * example does not rank. */
static long argmax(const void *data, const TernTensorInfo *info) {
    size_t i, best = 0;
    if (info->element_count == 0) return -1;
    if (info->dtype == TERN_DTYPE_I8) {
        const int8_t *v = (const int8_t *)data;
        for (i = 1; i < info->element_count; i++) {
            if (v[i] > v[best]) best = i;
        }
    } else if (info->dtype == TERN_DTYPE_F32) {
        float v[1];
        float top;
        memcpy(&top, (const uint8_t *)data, sizeof v);
        for (i = 1; i < info->element_count; i++) {
            memcpy(v, (const uint8_t *)data + i * sizeof v, sizeof v);
            if (v[0] > top) {
                top = v[0];
                best = i;
            }
        }
    } else {
        return -1;
    }
    return (long)best;
}

int main(int argc, char **argv) {
    static TernModel model;             /* zeroed: not initialized yet */
    static TernInterpreter interpreter;
    void *model_base, *inputs_base, *labels_base;
    size_t model_len, inputs_len, labels_len;
    const uint8_t *model_bytes, *inputs, *labels;
    size_t arena_size, input_count, output_count, images, image, k, total_output = 0;
    TernTensorInfo input_info, output_info[16];
    uint8_t *arena, *outputs;
    uint32_t checksum = 0;
    size_t correct = 0;
    FILE *out;

    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL.tern INPUTS.bin LABELS.bin OUTPUTS.bin\n", argv[0]);
        return 2;
    }
    model_bytes = read_file(argv[1], TERN_MODEL_ALIGN, &model_len, &model_base);
    inputs = read_file(argv[2], 16, &inputs_len, &inputs_base);
    labels = read_file(argv[3], 1, &labels_len, &labels_base);

    CHECK(tern_model_init(&model, model_bytes, model_len));
    CHECK(tern_model_verify_data(&model));
    CHECK(tern_model_arena_size(&model, &arena_size));
    CHECK(tern_model_input_count(&model, &input_count));
    CHECK(tern_model_output_count(&model, &output_count));
    if (input_count != 1) die("this example needs a model with one input", NULL);
    if (output_count > sizeof output_info / sizeof output_info[0]) die("too many outputs", NULL);
    CHECK(tern_model_input_info(&model, 0, &input_info));
    for (k = 0; k < output_count; k++) {
        CHECK(tern_model_output_info(&model, k, &output_info[k]));
        total_output += output_info[k].byte_size;
    }
    if (input_info.byte_size == 0 || inputs_len % input_info.byte_size != 0) {
        die("INPUTS.bin is not a whole number of inputs", argv[2]);
    }
    images = inputs_len / input_info.byte_size;
    if (labels_len != images) die("LABELS.bin needs one byte per input", argv[3]);

    fprintf(stderr, "classify: tern %s, model %s (format %u.%u), input '%.*s' [", tern_version(),
            argv[1], (unsigned)(tern_format_version() >> 16),
            (unsigned)(tern_format_version() & 0xffffu), (int)input_info.name_len, input_info.name);
    for (k = 0; k < input_info.rank; k++) {
        fprintf(stderr, "%s%lu", k ? ", " : "", (unsigned long)input_info.shape[k]);
    }
    fprintf(stderr, "] scale %g zero point %d, arena %lu bytes\n", (double)input_info.scale,
            (int)input_info.zero_point, (unsigned long)arena_size);

    arena = (uint8_t *)malloc(arena_size);
    outputs = (uint8_t *)malloc(images * total_output + 1);
    if (!arena || !outputs) die("out of memory", NULL);
    CHECK(tern_interpreter_init(&interpreter, &model, arena, arena_size));

    for (image = 0; image < images; image++) {
        const uint8_t *x = inputs + image * input_info.byte_size;
        uint8_t *y = outputs + image * total_output;
        CHECK(tern_interpreter_set_input(&interpreter, 0, x, input_info.byte_size));
        CHECK(tern_interpreter_invoke(&interpreter));
        for (k = 0; k < output_count; k++) {
            CHECK(tern_interpreter_get_output(&interpreter, k, y, output_info[k].byte_size));
            y += output_info[k].byte_size;
        }
        y = outputs + image * total_output;
        checksum = crc32_update(checksum, y, output_info[0].byte_size);
        if (argmax(y, &output_info[0]) == (long)labels[image]) correct++;
    }

    /* The direct-pointer API on the first input: fill the arena in place, read the
     * output in place; the bytes must equal the copy API's. */
    if (images > 0) {
        void *in;
        const void *result;
        size_t in_len, result_len;
        CHECK(tern_interpreter_input_buffer(&interpreter, 0, &in, &in_len));
        if (in_len != input_info.byte_size) die("input buffer size differs from byte_size", NULL);
        memcpy(in, inputs, in_len);
        CHECK(tern_interpreter_invoke(&interpreter));
        CHECK(tern_interpreter_output_buffer(&interpreter, 0, &result, &result_len));
        if (result_len != output_info[0].byte_size || memcmp(result, outputs, result_len) != 0) {
            die("the direct-pointer API gave other outputs than the copy API", NULL);
        }
    }

#ifdef TERN_STD
    /* Hosted: the same model through tern_model_open (mmap) on its own interpreter
     * and arena must give the same outputs for the first input. */
    if (images > 0) {
        static TernModel mapped;
        static TernInterpreter mapped_interpreter;
        size_t mapped_arena_size;
        uint8_t *mapped_arena;
        uint8_t *y = (uint8_t *)malloc(output_info[0].byte_size + 1);
        CHECK(tern_model_open(&mapped, argv[1]));
        CHECK(tern_model_verify_data(&mapped));
        CHECK(tern_model_arena_size(&mapped, &mapped_arena_size));
        if (mapped_arena_size != arena_size) die("mapped model: arena size differs", NULL);
        mapped_arena = (uint8_t *)malloc(mapped_arena_size);
        if (!y || !mapped_arena) die("out of memory", NULL);
        CHECK(tern_interpreter_init(&mapped_interpreter, &mapped, mapped_arena, mapped_arena_size));
        CHECK(tern_interpreter_set_input(&mapped_interpreter, 0, inputs, input_info.byte_size));
        CHECK(tern_interpreter_invoke(&mapped_interpreter));
        CHECK(tern_interpreter_get_output(&mapped_interpreter, 0, y, output_info[0].byte_size));
        if (memcmp(y, outputs, output_info[0].byte_size) != 0) {
            die("the mapped model gave other outputs than the buffer model", NULL);
        }
        CHECK(tern_interpreter_deinit(&mapped_interpreter));
        CHECK(tern_model_deinit(&mapped));
        free(mapped_arena);
        free(y);
        fprintf(stderr, "classify: tern_model_open (mmap) gives the same outputs\n");
    }
#endif

    CHECK(tern_interpreter_deinit(&interpreter));
    CHECK(tern_model_deinit(&model));

    out = fopen(argv[4], "wb");
    if (!out) die("cannot create", argv[4]);
    if (images > 0 && fwrite(outputs, total_output, images, out) != images) die("cannot write", argv[4]);
    if (fclose(out) != 0) die("cannot write", argv[4]);

    printf("classify: images=%lu correct=%lu checksum=0x%08lx\n", (unsigned long)images,
           (unsigned long)correct, (unsigned long)checksum);
    free(arena);
    free(outputs);
    free(model_base);
    free(inputs_base);
    free(labels_base);
    return 0;
}
