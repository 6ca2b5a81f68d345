//! Batch-1, single-thread latency of the LSTM, GRU and transformer fixtures
//! through Tern (f32, f16 weights, int8, auto mixed precision) and tract f32,
//! side by side (tract on its own thread, see `runtime_latency`).
//!
//! `cargo bench -p tern-benches --bench sequence_latency`

use std::time::{Duration, Instant};

use tern_export::convert::{self, Precision};
use tern_export::models::ModelKind;
use tern_export::onnx::reference::OnnxReference;
use tern_runtime::{AlignedBytes, Interpreter, Model};

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

fn converted(kind: ModelKind, precision: Precision, samples: &[Vec<f32>]) -> Vec<u8> {
    let g = convert::load_graph(&tern_tests::fixture(kind), 1).expect("fixture");
    let calibration = if precision.needs_calibration() {
        samples
    } else {
        &[]
    };
    convert::convert(
        &g,
        precision,
        calibration,
        convert::Method::Minmax,
        Vec::new(),
        |_| {},
    )
    .expect("converts")
    .bytes
}

fn main() {
    let image = tern_tests::test_set().images_f32(&[0]);
    let samples = tern_export::tools::calibration_samples("fashion-mnist:train:500")
        .expect("calibration data");
    let runs = 200;
    println!("batch 1, one thread, median of {runs} runs (us; ratio = time / tract's):");
    for kind in [ModelKind::Lstm, ModelKind::Gru, ModelKind::Transformer] {
        let tract = OnnxReference::load(&tern_tests::fixture(kind), 1).expect("tract loads");
        let tract_us = std::thread::scope(|scope| {
            scope
                .spawn(|| median_micros(|| drop(tract.predict(&image).expect("runs")), runs))
                .join()
                .expect("tract thread")
        });
        print!("{:<12} tract f32 {tract_us:7.1}", kind.name());
        for precision in [
            Precision::F32,
            Precision::F16,
            Precision::Int8,
            Precision::Auto,
        ] {
            let bytes = AlignedBytes::new(&converted(kind, precision, &samples));
            let model = Model::from_bytes(&bytes).expect("valid");
            let mut interp = Interpreter::with_allocated_arena(&model).expect("arena");
            interp.set_input_f32(0, &image).expect("input");
            let us = median_micros(|| interp.invoke().expect("runs"), runs);
            print!(" | {} {us:7.1} ({:.2}x)", precision.name(), us / tract_us);
        }
        println!();
    }
}
