//! The CNN fixture converted to f32, f16 and int8 against tract's f32 run of
//! the ONNX file (the acceptance figures of the runtime issue).

use tern_export::convert::Precision;
use tern_export::data::fashion_mnist::{CLASSES, PIXELS};
use tern_export::models::ModelKind;
use tern_export::onnx::reference::{OnnxReference, argmax_rows, correct_predictions};
use tern_runtime::{AlignedBytes, Model};

struct Run {
    tern: Vec<f32>,
    reference: Vec<f32>,
    labels: Vec<u8>,
}

fn run(precision: Precision, images: usize) -> (Run, usize) {
    let converted = tern_tests::convert_fixture(ModelKind::Cnn, precision);
    let bytes = AlignedBytes::new(&converted.bytes);
    let model = Model::from_bytes(&bytes).expect("valid model");
    let data = tern_tests::test_set();
    let indices: Vec<usize> = (0..images).collect();
    let x = data.images_f32(&indices);
    let (tern, _) = tern_export::tools::run_images(&model, &x).expect("runs");
    let reference = OnnxReference::load(&tern_tests::fixture(ModelKind::Cnn), 100)
        .expect("tract loads the fixture")
        .predict(&x)
        .expect("tract runs");
    assert_eq!(tern.len(), images * CLASSES);
    assert_eq!(x.len(), images * PIXELS);
    (
        Run {
            tern,
            reference,
            labels: data.labels_at(&indices),
        },
        converted.bytes.len(),
    )
}

/// Top-1 accuracy of `predictions` (from [`argmax_rows`]).
fn accuracy(predictions: &[usize], labels: &[u8]) -> f64 {
    correct_predictions(predictions, labels) as f64 / labels.len() as f64
}

/// f32: same math as tract up to summation order; the bound is 1e-5
/// max abs on the softmax outputs of 1,000 test images.
#[test]
fn f32_matches_tract_within_1e5() {
    let (r, _) = run(Precision::F32, 1000);
    let max = r
        .tern
        .iter()
        .zip(&r.reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!("cnn f32: max |tern - tract| = {max:.2e} on 1000 images");
    assert!(max <= 1e-5, "max abs diff {max}");
}

/// f16 weights, f32 compute: accuracy within 0.1 points of fp32 on the full test set.
#[test]
fn f16_accuracy_within_0_1_points() {
    let (r, _) = run(Precision::F16, 10_000);
    let (acc, ref_acc) = (
        accuracy(&argmax_rows(&r.tern, CLASSES), &r.labels),
        accuracy(&argmax_rows(&r.reference, CLASSES), &r.labels),
    );
    println!(
        "cnn f16: {:.2}% vs f32 {:.2}%",
        100.0 * acc,
        100.0 * ref_acc
    );
    assert!((acc - ref_acc).abs() <= 0.001, "f16 {acc} vs f32 {ref_acc}");
}

/// int8: accuracy within 0.5 points of fp32, top-1 agreement >= 99% on the full
/// test set, and a file at most 0.3x the ONNX file.
#[test]
fn int8_accuracy_agreement_and_size() {
    let (r, tern_bytes) = run(Precision::Int8, 10_000);
    let (a, b) = (
        argmax_rows(&r.tern, CLASSES),
        argmax_rows(&r.reference, CLASSES),
    );
    let (acc, ref_acc) = (accuracy(&a, &r.labels), accuracy(&b, &r.labels));
    let agreement = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64;
    let onnx_bytes = std::fs::metadata(tern_tests::fixture(ModelKind::Cnn))
        .expect("fixture")
        .len() as f64;
    let ratio = tern_bytes as f64 / onnx_bytes;
    println!(
        "cnn int8: {:.2}% vs f32 {:.2}%, agreement {:.2}%, file {:.3}x ONNX",
        100.0 * acc,
        100.0 * ref_acc,
        100.0 * agreement,
        ratio
    );
    assert!(
        (acc - ref_acc).abs() <= 0.005,
        "int8 {acc} vs f32 {ref_acc}"
    );
    assert!(agreement >= 0.99, "agreement {agreement}");
    assert!(ratio <= 0.3, "int8 file is {ratio:.3}x the ONNX file");
}
