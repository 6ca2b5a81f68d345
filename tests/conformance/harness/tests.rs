//! Unit tests of the conformance harness (no onnx wheel needed).

use std::path::Path;

use tern_export::convert::graph::ConstData;
use tern_export::onnx::builder::{Dim, GraphBuilder};

use super::attempt::{graph_inputs_behind, input_index, needs_constant};
use super::tensors::{Kind, TestTensor, compare};
use super::*;

fn tensor(kind: Kind, data: ConstData) -> TestTensor {
    TestTensor {
        dims: vec![data.len()],
        kind,
        data,
    }
}

#[test]
fn float_comparison_uses_rtol_atol_and_nan_equality() {
    let want = tensor(Kind::Float, ConstData::F32(vec![1000.0, 0.0, f32::NAN]));
    assert!(compare(&[1000.9, 5e-6, f64::NAN], &want).is_ok());
    assert!(compare(&[1001.5, 0.0, f64::NAN], &want).is_err());
    assert!(compare(&[1000.0, 2e-5, f64::NAN], &want).is_err());
    assert!(compare(&[1000.0, 0.0, 0.0], &want).is_err());
}

#[test]
fn panics_become_failures_with_their_location() {
    let outcome = guarded(|| panic!("boom"));
    let Outcome::Failed { why } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(why.contains("boom") && why.contains(file!()), "{why}");
    assert_eq!(
        guarded(|| Outcome::Passed { max_abs_err: 0.0 }),
        Outcome::Passed { max_abs_err: 0.0 }
    );
}

#[test]
fn no_wheel_no_folder() {
    assert_eq!(
        node_tests_dir(Path::new("/nonexistent-tern-workspace")),
        None
    );
}

#[test]
fn integer_comparison_is_exact() {
    let want = tensor(Kind::Int, ConstData::I64(vec![1, 0]));
    assert_eq!(compare(&[1.0, 0.0], &want), Ok(0.0));
    assert!(compare(&[1.0, 1e-9], &want).is_err());
    assert!(compare(&[1.0], &want).is_err());
}

#[test]
fn report_counts_each_op_a_test_contains() {
    let t = |name: &str, ops: &[&str], outcome| NodeTest {
        name: name.into(),
        ops: ops.iter().map(|s| s.to_string()).collect(),
        outcome,
        constant_inputs: Vec::new(),
    };
    let constant = |mut test: NodeTest| {
        test.constant_inputs = vec!["w".into()];
        test
    };
    let report = Report::new(vec![
        t("test_a", &["Add"], Outcome::Passed { max_abs_err: 0.0 }),
        t(
            "test_b",
            &["Add", "Mul"],
            Outcome::Failed { why: "x".into() },
        ),
        t("test_c", &["Mul"], Outcome::Skipped { why: "y".into() }),
        t(
            "test_d",
            &["Add", "Foo"],
            Outcome::Unsupported { op: "Foo".into() },
        ),
        constant(t("test_e", &["Add"], Outcome::Passed { max_abs_err: 0.0 })),
        constant(t("test_f", &["Mul"], Outcome::Failed { why: "z".into() })),
        constant(t("test_g", &["Mul"], Outcome::Skipped { why: "v".into() })),
    ]);
    let add = report.ops.iter().find(|c| c.op == "Add").expect("Add");
    assert_eq!(
        (add.tests, add.run, add.passed, add.failed, add.skipped),
        (4, 2, 1, 1, 0)
    );
    assert_eq!(
        (add.const_run, add.const_passed, add.const_failed),
        (1, 1, 0)
    );
    let mul = report.ops.iter().find(|c| c.op == "Mul").expect("Mul");
    assert_eq!((mul.tests, mul.run, mul.failed, mul.skipped), (4, 1, 1, 2));
    assert_eq!(
        (mul.const_run, mul.const_passed, mul.const_failed),
        (1, 0, 1)
    );
    assert_eq!(report.failures().count(), 2);
    assert_eq!(
        report.coverage_line(),
        "ONNX node tests: 7 in the wheel, 6 use only supported ops: 2 run, 1 passed, \
         1 failed, 2 skipped as unsupported variants; 2 more run with their weight/shape \
         inputs as constants: 1 passed, 1 failed"
    );
}

#[test]
fn constant_inputs_are_the_graph_inputs_behind_the_requested_one() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &[Dim::Fixed(2), Dim::Fixed(3)]);
    let shape = b.input_typed("shape", &[Dim::Fixed(2)], 7);
    let w = b.input("w", &[Dim::Fixed(1)]);
    let s = b.node("Shape", "s", &[&x], vec![]);
    let m = b.node("Max", "m", &[&s, &shape], vec![]);
    let r = b.node("Reshape", "r", &[&x, &m], vec![]);
    b.node("Mul", "y", &[&r, &w], vec![]);
    let model = b.into_model("", &[]);
    // Not `x`: Shape reads only its static shape.
    assert_eq!(
        graph_inputs_behind(&model, "r", Some(1), &[]),
        vec!["shape"]
    );
    assert!(graph_inputs_behind(&model, "r", Some(1), &["shape".into()]).is_empty());
    assert_eq!(graph_inputs_behind(&model, "y", None, &[]), vec!["w"]);
    assert!(graph_inputs_behind(&model, "missing", Some(0), &[]).is_empty());
}

#[test]
fn constant_requests_name_their_input() {
    let why = "axes (input 1) must be a constant";
    assert!(needs_constant(why));
    assert_eq!(input_index(why), Some(1));
    assert_eq!(input_index("W must be a constant"), None);
    assert!(!needs_constant(
        "only 2-D pooling (4-D NCHW input) is supported"
    ));
}
