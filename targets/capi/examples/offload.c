/*
 * offload: registers offload backends from C and checks that outputs never change.
 *
 *   offload MODEL.tern INPUTS.bin EXPECTED.bin [MAX_IMAGES]
 *
 * MODEL.tern    the int8 CNN fixture (Conv, MaxPool, Conv, MaxPool, Flatten, Gemm+Relu,
 *               Gemm, Softmax).
 * INPUTS.bin    N pre-quantized inputs back to back (input 0's byte size each).
 * EXPECTED.bin  output 0 of every input from the CPU-only run, back to back.
 *
 * Cases, each run over all N inputs and compared byte for byte with EXPECTED:
 *  1. a C backend that counts calls and forwards to the loopback reference backend
 *     (tern_backend_loopback_init): partitions {0..1, 2..3, 5..7} all on the
 *     backend, every call counted, every partition released at deinit;
 *  2. a C backend that claims Conv2d, scribbles over its outputs and fails every
 *     execute: the CPU redoes each partition (CPU fallback), same outputs; with
 *     TERN_ON_FAILURE_ERROR the invoke returns TERN_STATUS_BACKEND_FAILED;
 *  3. an unavailable backend and a failing prepare: CPU fallback, or
 *     TERN_STATUS_BACKEND_FAILED at init with TERN_ON_FAILURE_ERROR;
 *  4. argument checks: NULL backend, bad on_failure, NULL op/partition/execution.
 * Prints "offload: N checks passed"; exits non-zero on the first failure. C99.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

static int checks = 0;

#define EXPECT(cond)                                                                 \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            fprintf(stderr, "offload: line %d: expected %s (last error: %s)\n",     \
                    __LINE__, #cond, tern_last_error_message());                    \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#define EXPECT_STATUS(call, want) EXPECT((call) == (want))

static uint8_t *read_file(const char *path, size_t *len, void **base) {
    FILE *f = fopen(path, "rb");
    long size;
    uint8_t *raw, *aligned;
    if (!f) {
        fprintf(stderr, "offload: cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    raw = (uint8_t *)malloc((size_t)size + 16);
    if (!raw) exit(1);
    aligned = raw + (16 - (size_t)((uintptr_t)raw % 16)) % 16;
    if (size > 0 && fread(aligned, 1, (size_t)size, f) != (size_t)size) exit(1);
    fclose(f);
    *len = (size_t)size;
    *base = raw;
    return aligned;
}

/* ---- 1. a counting wrapper around the loopback backend ---- */
typedef struct {
    TernBackend inner;
    int available, claims_asked, claimed, prepared, executed, released;
    int fail_execute;  /* case 2: scribble and fail */
    int fail_prepare;  /* case 3 */
    int only_conv;     /* claim Conv2d only */
} Counting;

static bool counting_is_available(void *context) {
    Counting *c = (Counting *)context;
    return c->available;
}

static bool counting_claims(void *context, const TernOp *op) {
    Counting *c = (Counting *)context;
    TernOpInfo info;
    bool claimed;
    c->claims_asked++;
    EXPECT_STATUS(tern_op_describe(op, &info), TERN_STATUS_OK);
    if (c->only_conv) {
        claimed = info.opcode == 1; /* Conv2d */
    } else {
        claimed = c->inner.claims(c->inner.context, op);
    }
    if (claimed) {
        c->claimed++;
        EXPECT(strcmp(info.opcode_name, "Conv2d") == 0 ||
               strcmp(info.opcode_name, "FullyConnected") == 0);
    }
    return claimed;
}

static int32_t counting_prepare(void *context, const TernPartition *partition, uint32_t *handle) {
    Counting *c = (Counting *)context;
    TernPartitionInfo info;
    TernBackendTensor t;
    size_t k;
    EXPECT_STATUS(tern_partition_describe(partition, &info), TERN_STATUS_OK);
    EXPECT(info.input_count == 1 && info.output_count == 1 && info.constant_count >= 3);
    for (k = 0; k < info.constant_count; k++) {
        EXPECT_STATUS(tern_partition_tensor(partition, TERN_TENSOR_ROLE_CONSTANT, k, &t),
                      TERN_STATUS_OK);
        EXPECT(t.data != NULL && t.info.byte_size > 0);
    }
    EXPECT_STATUS(tern_partition_tensor(partition, TERN_TENSOR_ROLE_INPUT, 0, &t), TERN_STATUS_OK);
    EXPECT(t.data == NULL);
    EXPECT_STATUS(tern_partition_tensor(partition, TERN_TENSOR_ROLE_INPUT, 1, &t),
                  TERN_STATUS_INDEX_OUT_OF_RANGE);
    if (c->fail_prepare && info.index == 1) return 7;
    c->prepared++;
    if (c->only_conv) {
        *handle = (uint32_t)(100 + info.index);
        return 0;
    }
    return c->inner.prepare(c->inner.context, partition, handle);
}

static int32_t counting_execute(void *context, uint32_t handle, TernExecution *execution) {
    Counting *c = (Counting *)context;
    TernBackendTensor in, out;
    c->executed++;
    EXPECT_STATUS(tern_execution_tensor(execution, TERN_TENSOR_ROLE_INPUT, 0, &in), TERN_STATUS_OK);
    EXPECT_STATUS(tern_execution_tensor(execution, TERN_TENSOR_ROLE_OUTPUT, 0, &out), TERN_STATUS_OK);
    EXPECT(in.data != NULL && out.data != NULL && out.info.byte_size > 0);
    if (c->fail_execute) {
        memset(out.data, 0x5a, out.info.byte_size);
        return 42;
    }
    return c->inner.execute(c->inner.context, handle, execution);
}

static void counting_release(void *context, uint32_t handle) {
    Counting *c = (Counting *)context;
    c->released++;
    if (!c->only_conv) c->inner.release(c->inner.context, handle);
}

static TernBackend counting_backend(Counting *c) {
    TernBackend b;
    b.context = c;
    b.name = "counting";
    b.is_available = counting_is_available;
    b.claims = counting_claims;
    b.prepare = counting_prepare;
    b.execute = counting_execute;
    b.release = counting_release;
    return b;
}

/* Runs every input; returns 1 when all outputs equal EXPECTED, 0 if they differ, or
 * the failing status negated. */
static long run_all(TernInterpreter *interp, const uint8_t *inputs, size_t in_size,
                    const uint8_t *expected, size_t out_size, size_t n) {
    size_t i;
    uint8_t out[256];
    if (out_size > sizeof out) exit(1);
    for (i = 0; i < n; i++) {
        TernStatus s = tern_interpreter_set_input(interp, 0, inputs + i * in_size, in_size);
        if (s != TERN_STATUS_OK) return -(long)s;
        s = tern_interpreter_invoke(interp);
        if (s != TERN_STATUS_OK) return -(long)s;
        s = tern_interpreter_get_output(interp, 0, out, out_size);
        if (s != TERN_STATUS_OK) return -(long)s;
        if (memcmp(out, expected + i * out_size, out_size) != 0) return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    static TernModel model;
    static TernInterpreter interp;
    static TernLoopback loopback_storage;
    void *model_base, *inputs_base, *expected_base;
    size_t model_len, inputs_len, expected_len, arena_size, n, count;
    const uint8_t *model_bytes, *inputs, *expected;
    TernTensorInfo in_info, out_info;
    TernPartitionInfo p;
    TernBackend loopback, backend;
    Counting counting;
    uint64_t runs, fallbacks;
    uint8_t *arena;
    static const size_t want_ops[3][2] = {{0, 1}, {2, 3}, {5, 7}};
    size_t k;

    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL.tern INPUTS.bin EXPECTED.bin [MAX_IMAGES]\n", argv[0]);
        return 2;
    }
    model_bytes = read_file(argv[1], &model_len, &model_base);
    inputs = read_file(argv[2], &inputs_len, &inputs_base);
    expected = read_file(argv[3], &expected_len, &expected_base);
    EXPECT_STATUS(tern_model_init(&model, model_bytes, model_len), TERN_STATUS_OK);
    EXPECT_STATUS(tern_model_arena_size(&model, &arena_size), TERN_STATUS_OK);
    EXPECT_STATUS(tern_model_input_info(&model, 0, &in_info), TERN_STATUS_OK);
    EXPECT_STATUS(tern_model_output_info(&model, 0, &out_info), TERN_STATUS_OK);
    n = inputs_len / in_info.byte_size;
    EXPECT(n > 0 && expected_len == n * out_info.byte_size);
    if (argc == 5 && (size_t)atol(argv[4]) < n) n = (size_t)atol(argv[4]);
    arena = (uint8_t *)malloc(arena_size);
    EXPECT(arena != NULL);

    /* 1. loopback behind a counting C backend */
    EXPECT_STATUS(tern_backend_loopback_init(&loopback_storage, &loopback), TERN_STATUS_OK);
    EXPECT(strcmp(loopback.name, "loopback") == 0);
    memset(&counting, 0, sizeof counting);
    counting.inner = loopback;
    counting.available = 1;
    backend = counting_backend(&counting);
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, &backend,
                                                     TERN_ON_FAILURE_ERROR),
                  TERN_STATUS_OK);
    EXPECT(counting.claims_asked == 8 && counting.claimed == 4 && counting.prepared == 3);
    EXPECT_STATUS(tern_interpreter_partition_count(&interp, &count), TERN_STATUS_OK);
    EXPECT(count == 3);
    for (k = 0; k < 3; k++) {
        EXPECT_STATUS(tern_interpreter_partition(&interp, k, &p), TERN_STATUS_OK);
        EXPECT(p.first_op == want_ops[k][0] && p.end_op == want_ops[k][1] && p.on_backend);
        printf("offload: partition %zu ops %zu..%zu on backend, cpu fallback %s\n", p.index,
               p.first_op, p.end_op, p.fallback_safe ? "always" : "until an output is taken");
    }
    EXPECT_STATUS(tern_interpreter_partition(&interp, 3, &p), TERN_STATUS_INDEX_OUT_OF_RANGE);
    EXPECT(run_all(&interp, inputs, in_info.byte_size, expected, out_info.byte_size, n) == 1);
    EXPECT(counting.executed == (int)(3 * n));
    EXPECT_STATUS(tern_interpreter_offload_stats(&interp, &runs, &fallbacks), TERN_STATUS_OK);
    EXPECT(runs == 3 * n && fallbacks == 0);
    EXPECT_STATUS(tern_interpreter_deinit(&interp), TERN_STATUS_OK);
    EXPECT(counting.released == 3);
    printf("offload: loopback through C: %zu images bit-identical, %d executions\n", n,
           counting.executed);

    /* 2. a Conv2d backend whose execute scribbles and fails */
    memset(&counting, 0, sizeof counting);
    counting.available = 1;
    counting.only_conv = 1;
    counting.fail_execute = 1;
    backend = counting_backend(&counting);
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, &backend,
                                                     TERN_ON_FAILURE_CPU_FALLBACK),
                  TERN_STATUS_OK);
    EXPECT_STATUS(tern_interpreter_partition_count(&interp, &count), TERN_STATUS_OK);
    EXPECT(count == 2);
    EXPECT(run_all(&interp, inputs, in_info.byte_size, expected, out_info.byte_size, n) == 1);
    EXPECT_STATUS(tern_interpreter_offload_stats(&interp, &runs, &fallbacks), TERN_STATUS_OK);
    EXPECT(runs == 0 && fallbacks == 2 * n);
    EXPECT_STATUS(tern_interpreter_deinit(&interp), TERN_STATUS_OK);
    EXPECT(counting.released == 2);
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, &backend,
                                                     TERN_ON_FAILURE_ERROR),
                  TERN_STATUS_OK);
    EXPECT(run_all(&interp, inputs, in_info.byte_size, expected, out_info.byte_size, 1) ==
           -(long)TERN_STATUS_BACKEND_FAILED);
    EXPECT(strstr(tern_last_error_message(), "code 42") != NULL);
    EXPECT_STATUS(tern_interpreter_deinit(&interp), TERN_STATUS_OK);
    printf("offload: failing execute: CPU fallback bit-identical; with ON_FAILURE_ERROR: %s\n",
           tern_status_string(TERN_STATUS_BACKEND_FAILED));

    /* 3. unavailable backend, failing prepare */
    memset(&counting, 0, sizeof counting);
    counting.inner = loopback;
    counting.available = 0;
    backend = counting_backend(&counting);
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, &backend,
                                                     TERN_ON_FAILURE_ERROR),
                  TERN_STATUS_BACKEND_FAILED);
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, &backend,
                                                     TERN_ON_FAILURE_CPU_FALLBACK),
                  TERN_STATUS_OK);
    EXPECT(counting.prepared == 0);
    EXPECT(run_all(&interp, inputs, in_info.byte_size, expected, out_info.byte_size, n) == 1);
    EXPECT_STATUS(tern_interpreter_deinit(&interp), TERN_STATUS_OK);
    counting.available = 1;
    counting.fail_prepare = 1;
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, &backend,
                                                     TERN_ON_FAILURE_ERROR),
                  TERN_STATUS_BACKEND_FAILED);
    EXPECT(counting.released == counting.prepared); /* partition 0 released again */
    counting.prepared = counting.released = 0;
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, &backend,
                                                     TERN_ON_FAILURE_CPU_FALLBACK),
                  TERN_STATUS_OK);
    EXPECT_STATUS(tern_interpreter_partition(&interp, 1, &p), TERN_STATUS_OK);
    EXPECT(!p.on_backend);
    EXPECT(run_all(&interp, inputs, in_info.byte_size, expected, out_info.byte_size, n) == 1);
    EXPECT_STATUS(tern_interpreter_deinit(&interp), TERN_STATUS_OK);
    EXPECT(counting.released == 2);

    /* 4. argument checks */
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, NULL,
                                                     TERN_ON_FAILURE_ERROR),
                  TERN_STATUS_NULL_POINTER);
    EXPECT_STATUS(tern_interpreter_init_with_backend(&interp, &model, arena, arena_size, &backend, 7),
                  TERN_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(tern_op_describe(NULL, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT_STATUS(tern_partition_describe(NULL, &p), TERN_STATUS_NULL_POINTER);
    EXPECT_STATUS(tern_execution_tensor(NULL, 0, 0, NULL), TERN_STATUS_NULL_POINTER);
    EXPECT_STATUS(tern_backend_loopback_init(NULL, &loopback), TERN_STATUS_NULL_POINTER);
    EXPECT_STATUS(tern_interpreter_partition_count(&interp, &count), TERN_STATUS_NOT_INITIALIZED);

    EXPECT_STATUS(tern_model_deinit(&model), TERN_STATUS_OK);
    free(arena);
    free(model_base);
    free(inputs_base);
    free(expected_base);
    printf("offload: %d checks passed\n", checks);
    return 0;
}
