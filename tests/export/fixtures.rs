//! The four committed models (`tests/fixtures/*.onnx`, made by `cargo xtask
//! fixtures`) still load and reach the accuracy recorded in their metadata, and
//! that accuracy meets the goal for the architecture.

use tern_export::models::ModelKind;
use tern_export::onnx::read_metadata;
use tern_export::onnx::reference::OnnxReference;

use tern_tests::{fixture, test_set};

/// Recorded accuracy is burn's; tract computes the same f32 graph with other
/// kernels, so a handful of near-tie images may flip: allow 10 of 10,000.
const ACCURACY_TOLERANCE: f64 = 0.001;

fn check(kind: ModelKind) {
    let path = fixture(kind);
    let meta = read_metadata(&path).unwrap_or_else(|e| panic!("{e}"));
    let get = |key: &str| {
        meta.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(get("model"), kind.name());
    assert_eq!(
        get("test_images"),
        "10000",
        "fixtures are trained with the full defaults"
    );
    let recorded: f64 = get("test_accuracy").parse().unwrap();
    let data = test_set();
    let model = OnnxReference::load(&path, 250).unwrap_or_else(|e| panic!("{e}"));
    let measured = model.accuracy(&data, None).unwrap();
    eprintln!(
        "{}: recorded {recorded:.4}, tract {measured:.4}",
        kind.name()
    );
    assert!(
        (measured - recorded).abs() <= ACCURACY_TOLERANCE,
        "{}: tract accuracy {measured:.4} vs recorded {recorded:.4}",
        kind.name()
    );
    let goal = kind.defaults().min_accuracy;
    assert!(
        measured >= goal,
        "{}: accuracy {measured:.4} below the goal {goal}",
        kind.name()
    );
}

#[test]
fn cnn_fixture_reaches_its_recorded_accuracy() {
    check(ModelKind::Cnn);
}

#[test]
fn lstm_fixture_reaches_its_recorded_accuracy() {
    check(ModelKind::Lstm);
}

#[test]
fn gru_fixture_reaches_its_recorded_accuracy() {
    check(ModelKind::Gru);
}

#[test]
fn transformer_fixture_reaches_its_recorded_accuracy() {
    check(ModelKind::Transformer);
}
