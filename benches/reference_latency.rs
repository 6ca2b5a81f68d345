//! Batch-1 latency of the committed fixture models through tract-onnx (f32):
//! the host-side reference that the Tern runtime's kernels will be compared to.

use criterion::{Criterion, criterion_group, criterion_main};
use tern_export::data::fashion_mnist::PIXELS;
use tern_export::models::ModelKind;
use tern_export::onnx::reference::OnnxReference;

fn reference_latency(c: &mut Criterion) {
    let data = tern_tests::test_set();
    let image = data.images_f32(&[0]);
    assert_eq!(image.len(), PIXELS);
    let mut group = c.benchmark_group("tract_f32_batch1");
    for kind in ModelKind::ALL {
        let model = OnnxReference::load(&tern_tests::fixture(kind), 1).expect("fixture loads");
        group.bench_function(kind.name(), |b| {
            b.iter(|| model.predict(&image).expect("runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, reference_latency);
criterion_main!(benches);
