//! CNNs that nobody here wrote: the model-zoo networks shipped in the
//! `onnx==1.22.0` wheel (`onnx/backend/test/data/light/`, installed into
//! `.venv` by `cargo xtask setup`). Their weights are synthetic constants
//! (ConstantOfShape), which exercises constant folding; their expected outputs
//! come from the ONNX reference evaluator on the input `arange(n) / n`.
//!
//! Constant weights make most of those outputs a uniform softmax (every
//! probability 1/1000), which a wrong kernel could still match. So each
//! network is also run with its ConstantOfShape weights replaced by
//! pseudo-random ones, on a pseudo-random input, against tract.

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

/// Deterministic pseudo-random values in `[0, 1)`.
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 >> 8) as f32 / (1u32 << 24) as f32
    }
}

/// `light_{name}.onnx` with every float ConstantOfShape node replaced by an
/// initializer of pseudo-random values: weights (rank >= 2) uniform in
/// `±sqrt(3 / fan_in)`, vectors (biases, BatchNorm parameters) in `[0.5, 1.5)`
/// so that variances stay positive.
fn with_random_weights(name: &str) -> PathBuf {
    use tract_onnx::pb::{ModelProto, TensorProto};
    let path = light_dir().join(format!("light_{name}.onnx"));
    let mut model =
        ModelProto::decode(std::fs::read(&path).expect("model").as_slice()).expect("ModelProto");
    let graph = model.graph.as_mut().expect("graph");
    let shapes: std::collections::HashMap<String, Vec<i64>> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == 7)
        .map(|t| {
            let mut dims = t.int64_data.clone();
            if dims.is_empty() {
                dims = t
                    .raw_data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
            }
            (t.name.clone(), dims)
        })
        .collect();
    let mut noise = Noise(0x1234_5678);
    let mut nodes = Vec::new();
    for node in std::mem::take(&mut graph.node) {
        let float_value = node
            .attribute
            .iter()
            .find(|a| a.name == "value")
            .and_then(|a| a.t.as_ref())
            .is_none_or(|t| t.data_type == 1);
        let dims = node.input.first().and_then(|i| shapes.get(i));
        match dims {
            Some(dims) if node.op_type == "ConstantOfShape" && float_value => {
                let n: i64 = dims.iter().product();
                let (lo, hi) = if dims.len() >= 2 {
                    let a = (3.0 / (n / dims[0]).max(1) as f32).sqrt();
                    (-a, a)
                } else {
                    (0.5, 1.5)
                };
                graph.initializer.push(TensorProto {
                    name: node.output[0].clone(),
                    dims: dims.clone(),
                    data_type: 1,
                    float_data: (0..n).map(|_| lo + (hi - lo) * noise.next()).collect(),
                    ..TensorProto::default()
                });
            }
            _ => nodes.push(node),
        }
    }
    graph.node = nodes;
    // One folder per model: the tests run in parallel and a scratch folder is wiped when made.
    tern_tests::write_scratch(
        &format!("model-zoo-random-{name}"),
        "model.onnx",
        &model.encode_to_vec(),
    )
}

/// The random-weight variant of `light_{name}` through Tern f32 and through
/// tract on one pseudo-random input: within 1e-4 of the largest output.
fn check_random_weights(name: &str) {
    use tract_onnx::prelude::*;
    let path = with_random_weights(name);
    let graph = convert::load_graph(&path, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
    let shape: Vec<usize> = graph.values[graph.inputs[0]].shape.clone();
    let mut noise = Noise(0x0bad_cafe);
    let input: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| noise.next())
        .collect();
    let converted = convert::convert(
        &graph,
        Precision::F32,
        &[],
        Method::Minmax,
        Vec::new(),
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{name} f32: {e}"));
    let bytes = AlignedBytes::new(&converted.bytes);
    let model = Model::from_bytes(&bytes).expect("valid");
    let got = run(&model, &input);

    let plan = tract_onnx::onnx()
        .model_for_path(&path)
        .and_then(|m| m.with_input_fact(0, f32::fact(&shape).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("{name}: tract: {e:#}"));
    let x = Tensor::from_shape(&shape, &input).expect("input tensor");
    let out = plan.run(tvec!(x.into())).expect("tract runs");
    let expected: Vec<f32> = out[0]
        .to_plain_array_view::<f32>()
        .expect("f32 output")
        .iter()
        .copied()
        .collect();
    assert_eq!(got.len(), expected.len(), "{name}: output length");
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let spread = expected.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    let max_diff = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!(
        "{name} (random weights): f32 max |tern - tract| {max_diff:.2e}, outputs in [{spread:.2e}, {scale:.2e}]"
    );
    assert!(
        max_diff <= 1e-4 * scale + 1e-6,
        "{name} (random weights): max diff {max_diff} vs scale {scale}"
    );
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

    check_random_weights(name);

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
