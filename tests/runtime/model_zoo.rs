//! CNNs that nobody here wrote: the model-zoo networks shipped in the
//! `onnx==1.22.0` wheel (`onnx/backend/test/data/light/`, installed into
//! `.venv` by `cargo xtask setup`). Their weights are synthetic constants
//! (ConstantOfShape), which exercises constant folding; their expected outputs
//! come from the ONNX reference evaluator on the input `arange(n) / n`.

use std::path::PathBuf;

use prost::Message;
use tern_export::convert::{self, Method, Precision};
use tern_runtime::{AlignedBytes, Model};

fn light_dir() -> PathBuf {
    let lib = tern_tests::workspace_root().join(".venv/lib");
    std::fs::read_dir(&lib)
        .ok()
        .and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("site-packages/onnx/backend/test/data/light"))
                .find(|p| p.is_dir())
        })
        .unwrap_or_else(|| {
            panic!(
                "the onnx wheel's model zoo is not under {}: run `cargo xtask setup`",
                lib.display()
            )
        })
}

fn reference_output(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(light_dir().join(format!("light_{name}_output_0.pb")))
        .expect("reference output");
    let t = tract_onnx::pb::TensorProto::decode(bytes.as_slice()).expect("TensorProto");
    tern_export::convert::import::tensor_data(&t)
        .expect("float tensor")
        .1
        .to_f32()
}

fn run(model: &Model<'_>, input: &[f32]) -> Vec<f32> {
    tern_export::tools::run_images(model, input)
        .expect("runs")
        .0
}

/// Converts `light_{name}.onnx` to f32 (must match the reference outputs) and to
/// int8 calibrated on synthetic inputs (must run and keep the output's shape).
fn check(name: &str) {
    let path = light_dir().join(format!("light_{name}.onnx"));
    let graph = convert::load_graph(&path, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
    let n: usize = graph.values[graph.inputs[0]].shape.iter().product();
    let input: Vec<f32> = (0..n).map(|i| (i as f64 / n as f64) as f32).collect();
    let expected = reference_output(name);

    let f32_model = convert::convert(
        &graph,
        Precision::F32,
        &[],
        Method::Minmax,
        Vec::new(),
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{name} f32: {e}"));
    let bytes = AlignedBytes::new(&f32_model.bytes);
    let model = Model::from_bytes(&bytes).expect("valid");
    let got = run(&model, &input);
    assert_eq!(got.len(), expected.len(), "{name}: output length");
    // f32 with a different summation order than the reference evaluator:
    // within 1e-4 of the largest output magnitude, element by element.
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let max_diff = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!(
        "{name}: f32 max |diff| {max_diff:.2e} (max |ref| {scale:.2e}), {} ops, arena {} KiB",
        model.op_count(),
        model.planned_arena_size() / 1024
    );
    assert!(
        max_diff <= 1e-4 * scale + 1e-6,
        "{name}: f32 max diff {max_diff} vs scale {scale}"
    );

    // int8, calibrated on the reference input and two pseudo-random images.
    let mut seed = 0x9e37_79b9_u32;
    let mut noise = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as f32 / u32::MAX as f32
    };
    let calibration = vec![
        input.clone(),
        (0..n).map(|_| noise()).collect(),
        (0..n).map(|_| noise()).collect(),
    ];
    let int8 = convert::convert(
        &graph,
        Precision::Int8,
        &calibration,
        Method::Minmax,
        Vec::new(),
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{name} int8: {e}"));
    let bytes = AlignedBytes::new(&int8.bytes);
    let model = Model::from_bytes(&bytes).expect("valid");
    let q = run(&model, &input);
    assert_eq!(q.len(), expected.len(), "{name}: int8 output length");
    assert!(
        q.iter().all(|v| v.is_finite()),
        "{name}: int8 output not finite"
    );
    let q_diff = q
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!(
        "{name}: int8 runs, {} ops, file {:.1} KiB (f32 {:.1} KiB), max |int8 - f32| {q_diff:.2e}",
        model.op_count(),
        int8.bytes.len() as f64 / 1024.0,
        f32_model.bytes.len() as f64 / 1024.0
    );
}

#[test]
fn alexnet() {
    check("bvlc_alexnet");
}

#[test]
fn densenet121() {
    check("densenet121");
}

#[test]
fn inception_v1() {
    check("inception_v1");
}

#[test]
fn inception_v2() {
    check("inception_v2");
}

#[test]
fn resnet50() {
    check("resnet50");
}

#[test]
fn shufflenet() {
    check("shufflenet");
}

#[test]
fn squeezenet() {
    check("squeezenet");
}

#[test]
fn vgg19() {
    check("vgg19");
}

#[test]
fn zfnet512() {
    check("zfnet512");
}
