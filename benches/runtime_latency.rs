//! Batch-1, single-thread latency of the CNN fixture through Tern f32, Tern
//! int8 and tract f32 (optimized), side by side, ending with the ratios.
//!
//! `cargo bench -p tern-benches --bench runtime_latency`

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use tern_export::convert::Precision;
use tern_export::models::ModelKind;
use tern_export::onnx::reference::OnnxReference;
use tern_runtime::{AlignedBytes, Interpreter, Model};

struct Subjects {
    f32_bytes: AlignedBytes,
    int8_bytes: AlignedBytes,
    tract: OnnxReference,
    image: Vec<f32>,
}

fn subjects() -> Subjects {
    let data = tern_tests::test_set();
    Subjects {
        f32_bytes: AlignedBytes::new(
            &tern_tests::convert_fixture(ModelKind::Cnn, Precision::F32).bytes,
        ),
        int8_bytes: AlignedBytes::new(
            &tern_tests::convert_fixture(ModelKind::Cnn, Precision::Int8).bytes,
        ),
        tract: OnnxReference::load(&tern_tests::fixture(ModelKind::Cnn), 1).expect("tract loads"),
        image: data.images_f32(&[0]),
    }
}

fn median_micros(mut f: impl FnMut(), runs: usize) -> f64 {
    for _ in 0..runs / 10 + 1 {
        f();
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2].as_secs_f64() * 1e6
}

fn latency(c: &mut Criterion) {
    let s = subjects();
    let f32_model = Model::from_bytes(&s.f32_bytes).expect("valid");
    let int8_model = Model::from_bytes(&s.int8_bytes).expect("valid");
    let mut f32_run = Interpreter::with_allocated_arena(&f32_model).expect("arena");
    let mut int8_run = Interpreter::with_allocated_arena(&int8_model).expect("arena");
    f32_run.set_input_f32(0, &s.image).expect("input");
    int8_run.set_input_f32(0, &s.image).expect("input");

    // The side-by-side figures first, and tract on a thread of its own: tract's
    // AVX kernels leave the upper halves of the YMM registers dirty, which
    // slows any SSE code run afterwards on the same thread (up to 3x measured
    // here on Tern's portable kernels), an artifact of sharing a process that
    // a deployment never has.
    let runs = 300;
    let tern_f32 = median_micros(|| f32_run.invoke().expect("runs"), runs);
    let tern_int8 = median_micros(|| int8_run.invoke().expect("runs"), runs);
    let f32_ops = per_op_micros(&mut f32_run, runs);
    let int8_ops = per_op_micros(&mut int8_run, runs);
    let tract_f32 = std::thread::scope(|scope| {
        scope
            .spawn(|| median_micros(|| drop(s.tract.predict(&s.image).expect("runs")), runs))
            .join()
            .expect("tract thread")
    });
    println!("\nCNN fixture, batch 1, one thread (median of {runs} runs):");
    println!("  tract f32 {tract_f32:8.1} us   1.00x");
    println!(
        "  tern  f32 {tern_f32:8.1} us   {:.2}x tract's time",
        tern_f32 / tract_f32
    );
    println!(
        "  tern int8 {tern_int8:8.1} us   {:.2}x tract's time",
        tern_int8 / tract_f32
    );
    print_breakdown("tern f32", &f32_ops);
    print_breakdown("tern int8", &int8_ops);
    println!();

    // Criterion's statistics, tract last for the same reason.
    let mut group = c.benchmark_group("cnn_batch1");
    group.bench_function("tern_f32", |b| b.iter(|| f32_run.invoke().expect("runs")));
    group.bench_function("tern_int8", |b| b.iter(|| int8_run.invoke().expect("runs")));
    group.bench_function("tract_f32", |b| {
        b.iter(|| s.tract.predict(&s.image).expect("runs"))
    });
    group.finish();
}

/// Median time of each op over `runs` invocations, measured between the
/// interpreter's per-op callbacks.
fn per_op_micros(run: &mut Interpreter<'_, '_>, runs: usize) -> Vec<(String, f64)> {
    let mut names = Vec::new();
    let mut samples: Vec<Vec<f64>> = Vec::new();
    for _ in 0..runs {
        let mut last = Instant::now();
        let mut i = 0;
        run.invoke_observed(|op, _| {
            let now = Instant::now();
            if samples.len() <= i {
                samples.push(Vec::new());
                names.push(format!("{:?} {}", op.opcode, op.name));
            }
            samples[i].push((now - last).as_secs_f64() * 1e6);
            i += 1;
            last = now;
        })
        .expect("runs");
    }
    names
        .into_iter()
        .zip(samples)
        .map(|(name, mut t)| {
            t.sort_by(f64::total_cmp);
            (name, t[t.len() / 2])
        })
        .collect()
}

fn print_breakdown(label: &str, ops: &[(String, f64)]) {
    println!("\n{label} per op (median us):");
    for (name, t) in ops {
        println!("  {t:8.1}  {name}");
    }
}

criterion_group!(benches, latency);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
