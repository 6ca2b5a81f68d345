//! `Model::open` + validation of a 1 MB and a 100 MB model: loading reads the
//! header and tables only, so the two should take about the same time.
//!
//! `cargo bench -p tern-benches --bench load_time`

use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use tern_export::convert::file::{FileModel, OpDesc, Storage, TensorDesc, TensorQuant};
use tern_runtime::format::{DType, NONE_INDEX, Opcode};
use tern_runtime::ops::{ClampWords, FullyConnectedParams};

/// A one-layer model `y = x W^T` whose weights take about `megabytes` MB.
fn synthetic_model(megabytes: usize) -> PathBuf {
    let k = 1024;
    let n = megabytes * 1024 * 1024 / (4 * k);
    let mut f = FileModel {
        name: format!("fc-{megabytes}mb"),
        ..FileModel::default()
    };
    let tensor = |name: &str, shape: Vec<usize>, storage| TensorDesc {
        name: name.into(),
        dtype: DType::F32,
        shape,
        storage,
        quant: TensorQuant::None,
        offset: 0,
    };
    let x = f.add(tensor("x", vec![1, k], Storage::Arena));
    let w = f.add(tensor(
        "w",
        vec![n, k],
        Storage::Constant(vec![0u8; 4 * n * k]),
    ));
    let y = f.add(tensor("y", vec![1, n], Storage::Arena));
    let mut params = Vec::new();
    FullyConnectedParams {
        clamp: ClampWords::f32(f32::NEG_INFINITY, f32::INFINITY),
    }
    .encode(&mut params);
    f.ops.push(OpDesc {
        opcode: Opcode::FullyConnected,
        name: "fc".into(),
        inputs: vec![x, w, NONE_INDEX],
        output: y,
        params,
        scratch: None,
    });
    f.inputs.push(x);
    f.outputs.push(y);
    f.plan_arena().expect("plans the arena");
    let dir = tern_tests::workspace_root().join("target/bench-scratch");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(format!("fc-{megabytes}mb.tern"));
    std::fs::write(&path, f.to_bytes("tern load-time bench")).expect("write");
    path
}

fn load_time(c: &mut Criterion) {
    let small = synthetic_model(1);
    let large = synthetic_model(100);
    let mut group = c.benchmark_group("model_open_and_validate");
    for (label, path) in [("1MB", &small), ("100MB", &large)] {
        group.bench_function(label, |b| {
            b.iter(|| tern_runtime::Model::open(path).expect("loads"))
        });
    }
    group.finish();
    let time = |path: &PathBuf| {
        let runs = 2000;
        let start = Instant::now();
        for _ in 0..runs {
            drop(tern_runtime::Model::open(path).expect("loads"));
        }
        start.elapsed().as_secs_f64() * 1e6 / runs as f64
    };
    let (a, b) = (time(&small), time(&large));
    println!(
        "\nModel::open + validation: 1 MB {a:.1} us, 100 MB {b:.1} us, ratio {:.2}x",
        b / a
    );
}

criterion_group!(benches, load_time);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
