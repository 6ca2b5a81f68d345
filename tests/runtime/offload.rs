//! The offload hooks end to end on the int8 CNN fixture with the loopback backend:
//! the expected partitions, bit-identical outputs, and each failure path (CPU
//! fallback or a typed error, never a wrong output).

use tern_export::convert::Precision;
use tern_export::data::fashion_mnist::PIXELS;
use tern_export::models::ModelKind;
use tern_runtime::backend::loopback::{InjectedFailure, Loopback};
use tern_runtime::backend::partitions;
use tern_runtime::{AlignedBytes, Error, Interpreter, Model, OnFailure, PartitionStatus};

const IMAGES: usize = 50;

/// The firmware's plan (`--small-arena`): which partitions may fall back
/// depends on where the arena places their buffers.
fn cnn_int8() -> AlignedBytes {
    AlignedBytes::new(
        &tern_tests::convert_fixture_with(ModelKind::Cnn, Precision::Int8, true).bytes,
    )
}

fn images() -> Vec<f32> {
    let indices: Vec<usize> = (0..IMAGES).collect();
    tern_tests::test_set().images_f32(&indices)
}

/// Raw output-0 bytes of every image, concatenated.
fn run_all(interpreter: &mut Interpreter<'_, '_>, x: &[f32]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for image in x.chunks(PIXELS) {
        interpreter.set_input_f32(0, image)?;
        interpreter.invoke()?;
        out.extend_from_slice(interpreter.output(0)?.bytes);
    }
    Ok(out)
}

fn cpu_outputs(model: &Model<'_>, x: &[f32]) -> Vec<u8> {
    let mut arena = vec![0u8; model.arena_size()];
    let mut cpu = Interpreter::new(model, &mut arena).expect("arena fits");
    run_all(&mut cpu, x).expect("cpu run")
}

/// Conv1 alone, conv2 alone, then fc1+fc2 (Relu is fused into them): MaxPool,
/// Flatten and Softmax stay on the CPU.
#[test]
fn loopback_partitions_are_the_claimed_runs() {
    let bytes = cnn_int8();
    let model = Model::from_bytes(&bytes).expect("valid model");
    let backend = Loopback::new();
    let found: Vec<(usize, usize)> = partitions(&model, &backend)
        .map(|p| (p.first_op, p.end_op))
        .collect();
    assert_eq!(found, [(0, 1), (2, 3), (5, 7)]);

    let last = partitions(&model, &backend)
        .nth(2)
        .expect("three partitions");
    let names = |it: &mut dyn Iterator<Item = tern_runtime::TensorInfo<'_>>| {
        it.map(|t| t.name.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(names(&mut last.inputs()), ["flatten"]);
    assert_eq!(names(&mut last.outputs()), ["fc2"]);
    // Weights, bias and requantization table of fc1 and fc2 (the per-channel
    // scales are folded into the requantization tables).
    assert_eq!(last.constants().count(), 6);
    // fc2's output reuses flatten's bytes in the arena plan: no CPU redo there.
    assert!(!last.fallback_safe());
    let first = partitions(&model, &backend).next().expect("a partition");
    assert_eq!(names(&mut first.inputs()), ["image"]);
    assert!(first.fallback_safe());
}

#[test]
fn loopback_outputs_are_bit_identical_to_the_cpu() {
    let bytes = cnn_int8();
    let model = Model::from_bytes(&bytes).expect("valid model");
    let x = images();
    let expected = cpu_outputs(&model, &x);

    let mut backend = Loopback::new();
    let mut arena = vec![0u8; model.arena_size()];
    let mut npu = Interpreter::with_backend(&model, &mut arena, &mut backend, OnFailure::Error)
        .expect("prepares");
    let statuses: Vec<PartitionStatus> = npu.partitions().collect();
    assert_eq!(statuses.len(), 3);
    assert!(statuses.iter().all(|s| s.on_backend));
    let got = run_all(&mut npu, &x).expect("offloaded run");
    assert_eq!(got, expected, "loopback vs CPU-only outputs");
    assert_eq!(npu.offload_stats().backend_runs, 3 * IMAGES as u64);
    assert_eq!(npu.offload_stats().cpu_fallbacks, 0);
    drop(npu);
    assert_eq!(backend.executions(), 3 * IMAGES);
    assert_eq!(
        backend.prepared_count(),
        0,
        "dropping the interpreter releases"
    );
}

/// A failed execute (after scribbling over the outputs) on a partition the CPU
/// can redo: identical outputs, counted as fallbacks.
#[test]
fn execute_failure_falls_back_to_the_cpu() {
    let bytes = cnn_int8();
    let model = Model::from_bytes(&bytes).expect("valid model");
    let x = images();
    let expected = cpu_outputs(&model, &x);
    for partition in [0, 1] {
        let mut backend = Loopback::failing(InjectedFailure::Execute(partition));
        let mut arena = vec![0u8; model.arena_size()];
        let mut npu =
            Interpreter::with_backend(&model, &mut arena, &mut backend, OnFailure::CpuFallback)
                .expect("prepares");
        let got = run_all(&mut npu, &x).expect("falls back");
        assert_eq!(got, expected, "partition {partition} fell back");
        assert_eq!(npu.offload_stats().cpu_fallbacks, IMAGES as u64);
        assert_eq!(npu.offload_stats().backend_runs, 2 * IMAGES as u64);
    }
}

/// fc1+fc2's output reuses its input's bytes, so the CPU can redo it only if the
/// backend failed before being handed those bytes: a failure before any write (a
/// bus timeout before the first reply) still falls back, bit-identically.
#[test]
fn execute_failure_before_writing_falls_back_even_where_outputs_reuse_inputs() {
    let bytes = cnn_int8();
    let model = Model::from_bytes(&bytes).expect("valid model");
    let x = images();
    let expected = cpu_outputs(&model, &x);
    let mut backend = Loopback::failing(InjectedFailure::ExecuteUntouched(2));
    let mut arena = vec![0u8; model.arena_size()];
    let mut npu =
        Interpreter::with_backend(&model, &mut arena, &mut backend, OnFailure::CpuFallback)
            .expect("prepares");
    assert!(!npu.partitions().nth(2).expect("partition 2").fallback_safe);
    let got = run_all(&mut npu, &x).expect("falls back");
    assert_eq!(got, expected, "partition 2 fell back");
    assert_eq!(npu.offload_stats().cpu_fallbacks, IMAGES as u64);
    assert_eq!(npu.offload_stats().backend_runs, 2 * IMAGES as u64);
}

/// Where the backend wrote over the partition's inputs before failing (its output
/// reuses their bytes), and where the policy is `Error`, a failed execute is a
/// typed error.
#[test]
fn execute_failure_without_fallback_is_a_typed_error() {
    let bytes = cnn_int8();
    let model = Model::from_bytes(&bytes).expect("valid model");
    let x = images();
    for (partition, policy) in [(2, OnFailure::CpuFallback), (0, OnFailure::Error)] {
        let mut backend = Loopback::failing(InjectedFailure::Execute(partition));
        let mut arena = vec![0u8; model.arena_size()];
        let mut npu =
            Interpreter::with_backend(&model, &mut arena, &mut backend, policy).expect("prepares");
        let err = run_all(&mut npu, &x[..PIXELS]).expect_err("must not return outputs");
        let Error::Backend {
            partition: p,
            error,
            ..
        } = err
        else {
            panic!("expected Error::Backend, got {err}");
        };
        assert_eq!(p, partition);
        assert_eq!(error, tern_runtime::BackendError::Timeout);
        println!("{err}");
    }
}

/// An unavailable backend or a failed prepare leaves partitions on the CPU, or is
/// an error at creation with `OnFailure::Error`.
#[test]
fn prepare_failures_follow_the_policy() {
    let bytes = cnn_int8();
    let model = Model::from_bytes(&bytes).expect("valid model");
    let x = images();
    let expected = cpu_outputs(&model, &x[..2 * PIXELS]);
    for failure in [InjectedFailure::Unavailable, InjectedFailure::Prepare(1)] {
        let mut backend = Loopback::failing(failure);
        let mut arena = vec![0u8; model.arena_size()];
        let err = Interpreter::with_backend(&model, &mut arena, &mut backend, OnFailure::Error)
            .err()
            .expect("typed error");
        assert!(matches!(err, Error::Backend { .. }), "{err}");
        assert_eq!(backend.prepared_count(), 0, "prepared partitions released");

        let mut arena = vec![0u8; model.arena_size()];
        let mut npu =
            Interpreter::with_backend(&model, &mut arena, &mut backend, OnFailure::CpuFallback)
                .expect("falls back");
        let on_backend = npu.partitions().filter(|p| p.on_backend).count();
        let want = if failure == InjectedFailure::Unavailable {
            0
        } else {
            2
        };
        assert_eq!(on_backend, want, "{failure:?}");
        assert_eq!(run_all(&mut npu, &x[..2 * PIXELS]).expect("runs"), expected);
    }
}

/// `tern inspect --backend loopback` lists the partitions and the CPU runs between.
#[test]
fn inspect_shows_the_partitions() {
    let converted = tern_tests::convert_fixture_with(ModelKind::Cnn, Precision::Int8, true);
    let path = tern_tests::write_scratch("offload", "cnn-int8.tern", &converted.bytes);
    let text = tern_export::tools::inspect_partitions(&path, "loopback").expect("inspects");
    println!("{text}");
    for line in [
        "partition 0 ops 0..1: #0 Conv2d",
        "cpu          ops 1..2: #1 MaxPool2d",
        "partition 1 ops 2..3: #2 Conv2d",
        "cpu          ops 3..5: #3 MaxPool2d, #4 Copy",
        "partition 2 ops 5..7: #5 FullyConnected, #6 FullyConnected",
        "cpu          ops 7..8: #7 Softmax",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
    let err = tern_export::tools::inspect_partitions(&path, "npu9000").expect_err("unknown");
    assert!(
        err.to_string().contains("unknown backend 'npu9000'"),
        "{err}"
    );
}
