/*
 * bad_input: drives every error case of Tern's C API and checks each status.
 *
 *   bad_input MODEL.tern
 *
 * MODEL.tern must be a valid model with one input and at least one output. Every
 * misuse (NULL pointers, misaligned, corrupted or truncated model buffers, a small
 * arena, wrong buffer sizes, out-of-range indices, handles used before init or after
 * deinit) must give its status and a non-empty last-error message. Prints
 * "bad_input: N checks passed" and exits 0, or names each unexpected status and
 * exits 1. Build with -DTERN_STD against a hosted libtern to check the path API too.
 * Portable C99.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

static int checks, failures;

/* Checks that `got` is `want` and, for an error, that a message was recorded. */
static void expect(TernStatus got, TernStatus want, const char *what, int line) {
    checks++;
    if (got != want) {
        failures++;
        fprintf(stderr, "bad_input.c:%d: %s: got %s (%d), expected %s (%d); last error: %s\n", line,
                what, tern_status_string(got), (int)got, tern_status_string(want), (int)want,
                tern_last_error_message());
        return;
    }
    if (want != TERN_STATUS_OK) {
        const char *message = tern_last_error_message();
        if (message == NULL || message[0] == '\0') {
            failures++;
            fprintf(stderr, "bad_input.c:%d: %s: no last-error message\n", line, what);
        }
        /* Clear it so that the next expected error must set its own. */
        tern_last_error_clear();
    }
}

#define EXPECT(call, want) expect((call), (want), #call, __LINE__)

/* A 16-byte aligned copy of `len` bytes (plus `extra` spare bytes after). */
static uint8_t *aligned_copy(const uint8_t *src, size_t len, size_t extra, void **base) {
    uint8_t *raw = (uint8_t *)malloc(len + extra + 16);
    uint8_t *aligned;
    if (!raw) {
        fprintf(stderr, "bad_input: out of memory\n");
        exit(1);
    }
    aligned = raw + (16 - (size_t)((uintptr_t)raw % 16)) % 16;
    memcpy(aligned, src, len);
    *base = raw;
    return aligned;
}

static uint64_t read_u64_le(const uint8_t *p) {
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

int main(int argc, char **argv) {
    static TernModel model, other, zeroed_model;
    static TernInterpreter interpreter, zeroed_interpreter;
    static TernOpResolver resolver, zeroed_resolver;
    TernTensorInfo input, output;
    FILE *f;
    long file_len;
    size_t len, arena_size, planned, count, outputs;
    uint8_t *file, *bytes, *arena, *in_data, *out_data;
    void *bytes_base, *ptr;
    const void *cptr;
    float *floats;
    uint16_t major, minor;
    uint64_t data_offset;
    char small[8];
    int code;

    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.tern\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (file_len = ftell(f)) <= 64 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "bad_input: cannot read %s\n", argv[1]);
        return 1;
    }
    len = (size_t)file_len;
    file = (uint8_t *)malloc(len);
    if (!file || fread(file, 1, len, f) != len) return 1;
    fclose(f);
    bytes = aligned_copy(file, len, 1, &bytes_base);
    data_offset = read_u64_le(file + 32);

    /* Static strings; no message before any failure. */
    checks++;
    if (tern_last_error_message()[0] != '\0') {
        failures++;
        fprintf(stderr, "bad_input: a last-error message before any failure\n");
    }
    checks++;
    if (tern_version() == NULL || tern_version()[0] == '\0' || (tern_format_version() >> 16) != 1) {
        failures++;
        fprintf(stderr, "bad_input: bad version strings\n");
    }
    for (code = -1; code <= TERN_STATUS_OP_NOT_REGISTERED + 1; code++) {
        const char *text = tern_status_string(code);
        int unknown = code < 0 || code > TERN_STATUS_OP_NOT_REGISTERED;
        checks++;
        if (text == NULL || text[0] == '\0' || (strcmp(text, "unknown status") == 0) != unknown) {
            failures++;
            fprintf(stderr, "bad_input: tern_status_string(%d) = %s\n", code, text ? text : "NULL");
        }
    }

    /* Handles used before init (zeroed statics). */
    EXPECT(tern_model_arena_size(&zeroed_model, &arena_size), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_model_verify_data(&zeroed_model), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_model_deinit(&zeroed_model), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_interpreter_invoke(&zeroed_interpreter), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_interpreter_deinit(&zeroed_interpreter), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_interpreter_init(&interpreter, &zeroed_model, bytes, len), TERN_STATUS_NOT_INITIALIZED);

    /* Model buffers: NULL, misaligned, truncated, corrupted. */
    EXPECT(tern_model_init(NULL, bytes, len), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_init(&model, NULL, len), TERN_STATUS_NULL_POINTER);
    {
        void *base;
        uint8_t *shifted = aligned_copy(file, 0, len + 1, &base) + 1;
        memcpy(shifted, file, len);
        EXPECT(tern_model_init(&model, shifted, len), TERN_STATUS_MISALIGNED_BUFFER);
        free(base);
    }
    /* Op resolvers: uninitialized, NULL arguments, and one without the model's ops. */
    EXPECT(tern_op_resolver_add(&zeroed_resolver, &tern_op_conv2d_int8), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_model_init_with_resolver(&model, bytes, len, &zeroed_resolver),
           TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_op_resolver_init(NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_op_resolver_init(&resolver), TERN_STATUS_OK);
    EXPECT(tern_op_resolver_add(&resolver, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_init_with_resolver(&model, bytes, len, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_init_with_resolver(&model, bytes, len, &resolver), TERN_STATUS_OP_NOT_REGISTERED);
    /* The float Conv2d kernel does not run the int8 model's convolutions. */
    EXPECT(tern_op_resolver_add(&resolver, &tern_op_conv2d_float), TERN_STATUS_OK);
    EXPECT(tern_model_init_with_resolver(&model, bytes, len, &resolver), TERN_STATUS_OP_NOT_REGISTERED);

    EXPECT(tern_model_init(&model, bytes, 0), TERN_STATUS_BAD_MODEL);
    EXPECT(tern_model_init(&model, bytes, 40), TERN_STATUS_BAD_MODEL);
    EXPECT(tern_model_init(&model, bytes, len - 1), TERN_STATUS_BAD_MODEL);
    bytes[0] ^= 0x01; /* magic */
    EXPECT(tern_model_init(&model, bytes, len), TERN_STATUS_BAD_MODEL);
    bytes[0] ^= 0x01;
    bytes[8] ^= 0x02; /* major version 1 -> 3 */
    EXPECT(tern_model_init(&model, bytes, len), TERN_STATUS_UNSUPPORTED_VERSION);
    bytes[8] ^= 0x02;
    bytes[100] ^= 0x40; /* a byte of the meta section: header checksum */
    EXPECT(tern_model_init(&model, bytes, len), TERN_STATUS_BAD_MODEL);
    bytes[100] ^= 0x40;
    if (data_offset + 10 < len) {
        /* A weight byte: loads (the data CRC is checked on demand), fails verify. */
        bytes[data_offset + 10] ^= 0x01;
        EXPECT(tern_model_init(&model, bytes, len), TERN_STATUS_OK);
        EXPECT(tern_model_verify_data(&model), TERN_STATUS_DATA_CHECKSUM);
        EXPECT(tern_model_deinit(&model), TERN_STATUS_OK);
        bytes[data_offset + 10] ^= 0x01;
    } else {
        failures++;
        fprintf(stderr, "bad_input: the model has no data section to corrupt\n");
    }

    /* A good model; then NULL outputs and out-of-range indices. */
    EXPECT(tern_model_init(&model, bytes, len), TERN_STATUS_OK);
    EXPECT(tern_model_verify_data(&model), TERN_STATUS_OK);
    EXPECT(tern_model_verify_data(NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_deinit(NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_format_version(NULL, &major, &minor), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_format_version(&model, NULL, &minor), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_format_version(&model, &major, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_format_version(&model, &major, &minor), TERN_STATUS_OK);
    EXPECT(tern_model_arena_size(NULL, &arena_size), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_arena_size(&model, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_arena_size(&model, &arena_size), TERN_STATUS_OK);
    EXPECT(tern_model_planned_arena_size(NULL, &planned), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_planned_arena_size(&model, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_planned_arena_size(&model, &planned), TERN_STATUS_OK);
    EXPECT(tern_model_input_count(NULL, &count), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_input_count(&model, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_input_count(&model, &count), TERN_STATUS_OK);
    EXPECT(tern_model_output_count(NULL, &outputs), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_output_count(&model, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_output_count(&model, &outputs), TERN_STATUS_OK);
    EXPECT(tern_model_input_info(NULL, 0, &input), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_input_info(&model, 0, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_input_info(&model, count, &input), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_model_input_info(&model, (size_t)-1, &input), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_model_input_info(&model, 0, &input), TERN_STATUS_OK);
    EXPECT(tern_model_output_info(NULL, 0, &output), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_output_info(&model, 0, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_output_info(&model, outputs, &output), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_model_output_info(&model, 0, &output), TERN_STATUS_OK);
    checks++;
    if (planned + 64 != arena_size || count != 1 || outputs < 1 || input.byte_size == 0 ||
        major != 1) {
        failures++;
        fprintf(stderr, "bad_input: unexpected model figures\n");
    }

    /* A copied handle is refused. */
    memcpy(&other, &model, sizeof model);
    EXPECT(tern_model_arena_size(&other, &arena_size), TERN_STATUS_NOT_INITIALIZED);

    /* Interpreter init: NULLs and arenas too small. */
    arena = (uint8_t *)malloc(arena_size);
    in_data = (uint8_t *)malloc(input.byte_size + 1);
    out_data = (uint8_t *)malloc(output.byte_size + 1);
    floats = (float *)malloc((input.element_count + 1) * sizeof(float));
    if (!arena || !in_data || !out_data || !floats) return 1;
    memset(in_data, 0, input.byte_size + 1);
    memset(floats, 0, (input.element_count + 1) * sizeof(float));
    EXPECT(tern_interpreter_init(NULL, &model, arena, arena_size), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_init(&interpreter, NULL, arena, arena_size), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_init(&interpreter, &model, NULL, arena_size), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_init(&interpreter, &model, arena, 0), TERN_STATUS_ARENA_TOO_SMALL);
    EXPECT(tern_interpreter_init(&interpreter, &model, arena, planned - 1), TERN_STATUS_ARENA_TOO_SMALL);
    EXPECT(tern_interpreter_invoke(&interpreter), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_interpreter_init(&interpreter, &model, arena, arena_size), TERN_STATUS_OK);

    /* Inputs: NULLs, sizes, indices. */
    EXPECT(tern_interpreter_set_input(NULL, 0, in_data, input.byte_size), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_set_input(&interpreter, 0, NULL, input.byte_size), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_set_input(&interpreter, 0, in_data, input.byte_size - 1), TERN_STATUS_BUFFER_SIZE);
    EXPECT(tern_interpreter_set_input(&interpreter, 0, in_data, input.byte_size + 1), TERN_STATUS_BUFFER_SIZE);
    EXPECT(tern_interpreter_set_input(&interpreter, 1, in_data, input.byte_size), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_interpreter_set_input(&interpreter, 0, in_data, input.byte_size), TERN_STATUS_OK);
    EXPECT(tern_interpreter_set_input_f32(NULL, 0, floats, input.element_count), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_set_input_f32(&interpreter, 0, NULL, input.element_count), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_set_input_f32(&interpreter, 0, floats, input.element_count + 1), TERN_STATUS_BUFFER_SIZE);
    EXPECT(tern_interpreter_set_input_f32(&interpreter, 5, floats, input.element_count), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_interpreter_set_input_f32(&interpreter, 0, floats, input.element_count), TERN_STATUS_OK);
    EXPECT(tern_interpreter_input_buffer(NULL, 0, &ptr, &len), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_input_buffer(&interpreter, 0, NULL, &len), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_input_buffer(&interpreter, 0, &ptr, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_input_buffer(&interpreter, 1, &ptr, &len), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_interpreter_input_buffer(&interpreter, 0, &ptr, &len), TERN_STATUS_OK);

    EXPECT(tern_interpreter_invoke(NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_invoke(&interpreter), TERN_STATUS_OK);

    /* Outputs: NULLs, sizes, indices. */
    EXPECT(tern_interpreter_get_output(NULL, 0, out_data, output.byte_size), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_get_output(&interpreter, 0, NULL, output.byte_size), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_get_output(&interpreter, 0, out_data, output.byte_size - 1), TERN_STATUS_BUFFER_SIZE);
    EXPECT(tern_interpreter_get_output(&interpreter, 0, out_data, output.byte_size + 1), TERN_STATUS_BUFFER_SIZE);
    EXPECT(tern_interpreter_get_output(&interpreter, outputs, out_data, output.byte_size), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_interpreter_get_output(&interpreter, 0, out_data, output.byte_size), TERN_STATUS_OK);
    EXPECT(tern_interpreter_get_output_f32(&interpreter, 0, NULL, output.element_count), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_get_output_f32(&interpreter, 0, floats, output.element_count + 1), TERN_STATUS_BUFFER_SIZE);
    EXPECT(tern_interpreter_get_output_f32(&interpreter, outputs, floats, output.element_count), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_interpreter_get_output_f32(&interpreter, 0, floats, output.element_count), TERN_STATUS_OK);
    EXPECT(tern_interpreter_output_buffer(NULL, 0, &cptr, &len), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_output_buffer(&interpreter, 0, NULL, &len), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_output_buffer(&interpreter, 0, &cptr, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_interpreter_output_buffer(&interpreter, outputs, &cptr, &len), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(tern_interpreter_output_buffer(&interpreter, 0, &cptr, &len), TERN_STATUS_OK);

    /* The last-error message: set by a failure, copied cut to fit. */
    tern_interpreter_set_input(&interpreter, 0, in_data, 1);
    checks++;
    len = tern_last_error_message_copy(small, sizeof small);
    if (len <= sizeof small || strlen(small) != sizeof small - 1 ||
        strncmp(small, tern_last_error_message(), sizeof small - 1) != 0) {
        failures++;
        fprintf(stderr, "bad_input: tern_last_error_message_copy cut wrongly ('%s', %lu)\n", small,
                (unsigned long)len);
    }

    /* A model deinitialized under its interpreter: refused, not used. */
    EXPECT(tern_model_deinit(&model), TERN_STATUS_OK);
    EXPECT(tern_model_deinit(&model), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_interpreter_invoke(&interpreter), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_interpreter_get_output(&interpreter, 0, out_data, output.byte_size), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_interpreter_deinit(&interpreter), TERN_STATUS_OK);
    EXPECT(tern_interpreter_deinit(&interpreter), TERN_STATUS_NOT_INITIALIZED);
    EXPECT(tern_interpreter_invoke(&interpreter), TERN_STATUS_NOT_INITIALIZED);

#ifdef TERN_STD
    /* The path API. */
    EXPECT(tern_model_open(NULL, argv[1]), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_open(&model, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT(tern_model_open(&model, "/nonexistent/tern/model.tern"), TERN_STATUS_IO);
    EXPECT(tern_model_open(&model, argv[1]), TERN_STATUS_OK);
    EXPECT(tern_model_verify_data(&model), TERN_STATUS_OK);
    EXPECT(tern_model_deinit(&model), TERN_STATUS_OK);
#endif

    free(arena);
    free(in_data);
    free(out_data);
    free(floats);
    free(file);
    free(bytes_base);
    if (failures) {
        fprintf(stderr, "bad_input: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("bad_input: %d checks passed\n", checks);
    return 0;
}
