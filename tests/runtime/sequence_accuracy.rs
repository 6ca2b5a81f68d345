//! The LSTM, GRU and transformer fixtures converted to f32, f16, int8 and
//! `--precision auto`, against tract's f32 run of the ONNX files on the
//! Fashion-MNIST test set (the acceptance figures of the sequence-model issue).

use tern_export::convert::{self, Precision, mixed::ConvertOptions};
use tern_export::data::fashion_mnist::CLASSES;
use tern_export::models::ModelKind;
use tern_export::onnx::reference::{OnnxReference, argmax_rows, correct_predictions};
use tern_runtime::{AlignedBytes, Model};

const IMAGES: usize = 10_000;

struct Reference {
    x: Vec<f32>,
    labels: Vec<u8>,
    tract: Vec<f32>,
    accuracy: f64,
    onnx_bytes: u64,
}

fn reference(kind: ModelKind) -> Reference {
    let data = tern_tests::test_set();
    let indices: Vec<usize> = (0..IMAGES).collect();
    let x = data.images_f32(&indices);
    let labels = data.labels_at(&indices);
    let tract = OnnxReference::load(&tern_tests::fixture(kind), 100)
        .expect("tract loads the fixture")
        .predict(&x)
        .expect("tract runs");
    let accuracy =
        correct_predictions(&argmax_rows(&tract, CLASSES), &labels) as f64 / IMAGES as f64;
    let onnx_bytes = std::fs::metadata(tern_tests::fixture(kind))
        .expect("fixture")
        .len();
    Reference {
        x,
        labels,
        tract,
        accuracy,
        onnx_bytes,
    }
}

fn convert(kind: ModelKind, precision: Precision) -> convert::Converted {
    let graph = convert::load_graph(&tern_tests::fixture(kind), 1).expect("fixture imports");
    let samples = if precision.needs_calibration() {
        tern_export::tools::calibration_samples("fashion-mnist:train:1000").expect("calibration")
    } else {
        Vec::new()
    };
    convert::convert_with(
        &graph,
        precision,
        &samples,
        convert::Method::Minmax,
        &ConvertOptions::default(),
        Vec::new(),
        |_| {},
    )
    .unwrap_or_else(|e| panic!("converting {} to {precision:?}: {e}", kind.name()))
}

struct Measured {
    accuracy: f64,
    agreement: f64,
    max_diff: f32,
    file_ratio: f64,
}

fn measure(kind: ModelKind, precision: Precision, r: &Reference, images: usize) -> Measured {
    measure_converted(kind, precision, &convert(kind, precision), r, images)
}

fn measure_converted(
    kind: ModelKind,
    precision: Precision,
    converted: &convert::Converted,
    r: &Reference,
    images: usize,
) -> Measured {
    let bytes = AlignedBytes::new(&converted.bytes);
    let model = Model::from_bytes(&bytes).expect("valid model");
    let x = &r.x[..images * r.x.len() / IMAGES];
    let (tern, _) = tern_export::tools::run_images(&model, x).expect("runs");
    let tract = &r.tract[..images * CLASSES];
    let max_diff = tern
        .iter()
        .zip(tract)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let (a, b) = (argmax_rows(&tern, CLASSES), argmax_rows(tract, CLASSES));
    let agreement = a.iter().zip(&b).filter(|(p, q)| p == q).count() as f64 / images as f64;
    let accuracy = correct_predictions(&a, &r.labels[..images]) as f64 / images as f64;
    let file_ratio = converted.bytes.len() as f64 / r.onnx_bytes as f64;
    println!(
        "{} {}: accuracy {:.2}% (fp32 {:.2}%), agreement {:.2}%, max |diff| {:.2e}, file {:.1} KiB = {:.2}x ONNX",
        kind.name(),
        precision.name(),
        100.0 * accuracy,
        100.0 * r.accuracy,
        100.0 * agreement,
        max_diff,
        converted.bytes.len() as f64 / 1024.0,
        file_ratio
    );
    if let Some(auto) = &converted.auto {
        for c in &auto.choices {
            println!("  {:<40} {:>5}  {}", c.node, c.precision.name(), c.why);
        }
    }
    Measured {
        accuracy,
        agreement,
        max_diff,
        file_ratio,
    }
}

/// f32 within 1e-4 max abs of tract (1,000 images); f16 within 0.1 points of
/// fp32 accuracy and int8 within 1 point (10,000 images).
fn acceptance(kind: ModelKind, int8_file_bound: f64) {
    let r = reference(kind);
    let f32 = measure(kind, Precision::F32, &r, 1000);
    assert!(f32.max_diff <= 1e-4, "f32 max diff {}", f32.max_diff);
    let f16 = measure(kind, Precision::F16, &r, IMAGES);
    assert!(
        (f16.accuracy - r.accuracy).abs() <= 0.001,
        "f16 {} vs fp32 {}",
        f16.accuracy,
        r.accuracy
    );
    let int8 = measure(kind, Precision::Int8, &r, IMAGES);
    assert!(
        (int8.accuracy - r.accuracy).abs() <= 0.01,
        "int8 {} vs fp32 {}",
        int8.accuracy,
        r.accuracy
    );
    assert!(int8.agreement >= 0.97, "int8 agreement {}", int8.agreement);
    assert!(
        int8.file_ratio <= int8_file_bound,
        "int8 file {:.2}x ONNX",
        int8.file_ratio
    );
}

#[test]
fn lstm_f32_f16_int8() {
    acceptance(ModelKind::Lstm, 0.35);
}

#[test]
fn gru_f32_f16_int8() {
    acceptance(ModelKind::Gru, 0.35);
}

#[test]
fn transformer_f32_f16_int8() {
    acceptance(ModelKind::Transformer, 0.4);
}

/// `--precision auto` with the default 0.5-point agreement budget: stays within
/// 1 point of fp32 accuracy on the test set, and within its budget on the
/// calibration samples it measured.
#[test]
fn transformer_auto_mixed_precision() {
    let r = reference(ModelKind::Transformer);
    let converted = convert(ModelKind::Transformer, Precision::Auto);
    let auto = converted.auto.as_ref().expect("auto plan");
    assert!(
        auto.agreement >= 99.5,
        "measured agreement {}",
        auto.agreement
    );
    assert!(
        auto.choices.iter().any(|c| c.precision == Precision::Int8),
        "auto kept nothing in int8"
    );
    let m = measure_converted(
        ModelKind::Transformer,
        Precision::Auto,
        &converted,
        &r,
        IMAGES,
    );
    assert!((m.accuracy - r.accuracy).abs() <= 0.01);
}
