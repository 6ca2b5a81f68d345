//! Import tests: typed errors for malformed models, shapes, folding.

use tract_onnx::pb::AttributeProto;

use super::*;
use crate::convert::passes;
use crate::onnx::builder::{Dim, GraphBuilder, attr_int, attr_ints};

fn import_graph(b: GraphBuilder) -> Result<Graph> {
    import(
        &b.into_model("", &[]),
        &ImportOptions {
            batch: 1,
            ..Default::default()
        },
    )
}

/// The import fails with a typed error (and does not panic).
fn rejected(b: GraphBuilder) {
    match import_graph(b) {
        Err(ConvertError::Invalid(_) | ConvertError::UnsupportedOp { .. }) => {}
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("malformed model accepted"),
    }
}

fn fixed(dims: &[i64]) -> Vec<Dim> {
    dims.iter().map(|&d| Dim::Fixed(d)).collect()
}

/// `x [1, 2, x_hw]` (a constant when empty: graph inputs have no 0 dims) through a
/// ConvTranspose with `attrs` and `[2, 2, kernel]` weights.
fn conv_transpose(kernel: [i64; 2], x_hw: [i64; 2], attrs: Vec<AttributeProto>) -> GraphBuilder {
    let mut b = GraphBuilder::new("t");
    let x = if x_hw.contains(&0) {
        b.weight("x", &[1, 2, x_hw[0], x_hw[1]], vec![])
    } else {
        b.input("x", &fixed(&[1, 2, x_hw[0], x_hw[1]]))
    };
    let n = (2 * 2 * kernel[0] * kernel[1]) as usize;
    let w = b.weight("w", &[2, 2, kernel[0], kernel[1]], vec![0.5; n]);
    let y = b.node("ConvTranspose", "y", &[&x, &w], attrs);
    b.output(&y, &[]);
    b
}

#[test]
fn conv_transpose_geometry() {
    let g = import_graph(conv_transpose(
        [3, 3],
        [3, 3],
        vec![
            attr_ints("strides", &[2, 2]),
            attr_ints("pads", &[1, 1, 1, 1]),
        ],
    ))
    .expect("valid ConvTranspose");
    assert_eq!(g.values[g.outputs[0]].shape, vec![1, 2, 5, 5]);
    let g = import_graph(conv_transpose(
        [3, 3],
        [3, 3],
        vec![
            attr_ints("strides", &[2, 2]),
            attr_ints("output_shape", &[6, 6]),
        ],
    ))
    .expect("valid ConvTranspose");
    assert_eq!(g.values[g.outputs[0]].shape, vec![1, 2, 6, 6]);
}

#[test]
fn malformed_conv_transpose_is_an_error() {
    for attrs in [
        vec![attr_ints("strides", &[])],
        vec![attr_ints("dilations", &[])],
        vec![attr_ints("output_padding", &[])],
        vec![attr_ints("strides", &[0, 1])],
        vec![attr_ints("output_shape", &[5])],
        vec![attr_ints("output_shape", &[])],
        vec![attr_ints("output_shape", &[-1, 4])],
        vec![attr_ints("pads", &[1, 1])],
        vec![attr_ints("pads", &[-1, 0, 0, 0])],
    ] {
        rejected(conv_transpose([3, 3], [3, 3], attrs));
    }
    rejected(conv_transpose([0, 3], [3, 3], vec![]));
    rejected(conv_transpose([3, 3], [0, 3], vec![]));
}

#[test]
fn zero_size_conv_kernel_is_an_error() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[1, 1, 4, 4]));
    let w = b.weight("w", &[1, 1, 0, 3], vec![]);
    b.node("Conv", "y", &[&x, &w], vec![]);
    rejected(b);
}

#[test]
fn malformed_concat_is_an_error() {
    // No inputs.
    let mut b = GraphBuilder::new("t");
    b.node("Concat", "y", &[], vec![attr_int("axis", 0)]);
    rejected(b);
    // Scalars have no axis, constant or not.
    let mut b = GraphBuilder::new("t");
    let s = b.scalar("s", 1.0);
    b.node("Concat", "y", &[&s, &s], vec![attr_int("axis", 0)]);
    rejected(b);
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &[]);
    b.node("Concat", "y", &[&x, &x], vec![attr_int("axis", 0)]);
    rejected(b);
    // Constants whose shapes differ outside the axis.
    let mut b = GraphBuilder::new("t");
    let p = b.weight("p", &[2, 3], vec![0.0; 6]);
    let q = b.weight("q", &[1, 2], vec![0.0; 2]);
    b.node("Concat", "y", &[&p, &q], vec![attr_int("axis", 0)]);
    rejected(b);
}

#[test]
fn constant_concat_folds_like_the_runtime_concat() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[2, 5]));
    let p = b.weight("p", &[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let q = b.weight("q", &[2, 1], vec![5.0, 6.0]);
    let pq = b.node("Concat", "pq", &[&p, &q], vec![attr_int("axis", 1)]);
    let t = b.ints("t", &[2, 1]);
    let u = b.ints("u", &[2, 2]);
    b.node("Concat", "tu", &[&t, &u], vec![attr_int("axis", 0)]);
    let y = b.node("Concat", "y", &[&x, &pq], vec![attr_int("axis", 1)]);
    b.output(&y, &[]);
    let g = import_graph(b).expect("imports");
    let pq = &g.values[g.by_name["pq"]];
    assert_eq!(pq.shape, vec![2, 3]);
    assert_eq!(
        pq.konst,
        Some(ConstData::F32(vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]))
    );
    let tu = &g.values[g.by_name["tu"]];
    assert_eq!(tu.konst, Some(ConstData::I64(vec![2, 1, 2, 2])));
    assert_eq!(g.values[g.outputs[0]].shape, vec![2, 8]);
}

#[test]
fn gather_of_a_scalar_is_an_error() {
    let mut b = GraphBuilder::new("t");
    let s = b.scalar("s", 1.0);
    let i = b.ints("i", &[0]);
    b.node("Gather", "y", &[&s, &i], vec![]);
    rejected(b);
}

#[test]
fn slice_fold_with_empty_starts_is_an_error() {
    let mut b = GraphBuilder::new("t");
    let x = b.ints("x", &[1, 2, 3]);
    let starts = b.ints("starts", &[]);
    let ends = b.ints("ends", &[2]);
    b.node("Slice", "y", &[&x, &starts, &ends], vec![]);
    rejected(b);
    let mut b = GraphBuilder::new("t");
    let x = b.ints("x", &[1, 2, 3]);
    let starts = b.ints("starts", &[0]);
    let ends = b.ints("ends", &[2]);
    let axes = b.ints("axes", &[0]);
    let steps = b.ints("steps", &[]);
    b.node("Slice", "y", &[&x, &starts, &ends, &axes, &steps], vec![]);
    rejected(b);
}

#[test]
fn node_without_output_is_an_error() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[2]));
    b.node_multi("Dropout", "d", &[&x], &[], vec![]);
    rejected(b);
}

#[test]
fn rank_above_the_format_limit_is_an_error() {
    let mut b = GraphBuilder::new("t");
    b.input("x", &fixed(&[1; MAX_RANK + 1]));
    rejected(b);
    // Transpose of a rank-7 activation (reshaped from a rank-2 input).
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[2, 3]));
    let s = b.ints("s", &[1, 1, 1, 1, 1, 2, 3]);
    let r = b.node("Reshape", "r", &[&x, &s], vec![]);
    b.node("Transpose", "y", &[&r], vec![]);
    rejected(b);
    // A rank-7 constant that only feeds folding is fine.
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[2, 3]));
    let c = b.weight("c", &[2, 3], vec![1.0; 6]);
    let s7 = b.ints("s7", &[1, 1, 1, 1, 1, 2, 3]);
    let c7 = b.node("Reshape", "c7", &[&c, &s7], vec![]);
    let s2 = b.ints("s2", &[2, 3]);
    let c2 = b.node("Reshape", "c2", &[&c7, &s2], vec![]);
    let y = b.node("Add", "y", &[&x, &c2], vec![]);
    b.output(&y, &[]);
    import_graph(b).expect("rank-7 constants may be folded away");
}

#[test]
fn constant_graph_outputs_are_materialized() {
    // Shape(x) folds to an int64 constant: a Copy makes it an i32 output named `y`.
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[2, 3]));
    let y = b.node("Shape", "y", &[&x], vec![]);
    b.output(&y, &[]);
    let g = import_graph(b).expect("imports");
    let out = g.outputs[0];
    assert_eq!(g.values[out].name, "y");
    assert_eq!(g.values[out].elem, Elem::I32);
    assert!(!g.is_const(out));
    let node = g
        .nodes
        .iter()
        .find(|n| n.output == out)
        .expect("a producer");
    assert_eq!(node.op, Op::Copy);
    let src = node.inputs[0].expect("reads the constant");
    assert_eq!(g.values[src].konst, Some(ConstData::I64(vec![2, 3])));
    assert_ne!(g.values[src].name, "y");
    // A graph of constants only has no input to run on: a typed rejection.
    let mut b = GraphBuilder::new("t");
    let c = b.ints("c", &[1, 2]);
    let y = b.node("Identity", "y", &[&c], vec![]);
    b.output(&y, &[]);
    assert!(matches!(
        import_graph(b),
        Err(ConvertError::UnsupportedOp { .. })
    ));
}

#[test]
fn dropout_mask_is_all_true_and_training_is_refused() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[2, 2]));
    b.node_multi("Dropout", "d", &[&x], &["y", "mask"], vec![]);
    b.output("y", &[]);
    b.output("mask", &[]);
    let g = import_graph(b).expect("imports");
    let mask = g.outputs[1];
    let src = g
        .nodes
        .iter()
        .find(|n| n.output == mask)
        .and_then(|n| n.inputs[0]);
    assert_eq!(
        src.and_then(|v| g.values[v].konst.clone()),
        Some(ConstData::I64(vec![1; 4]))
    );
    for ratio in [0.5f32, 0.0] {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[2]));
        let r = b.scalar("r", ratio);
        let t = b.ints("t", &[1]); // training_mode = true
        let y = b.node("Dropout", "y", &[&x, &r, &t], vec![]);
        b.output(&y, &[]);
        let result = import_graph(b);
        if ratio == 0.0 {
            result.expect("ratio 0 drops nothing");
        } else {
            assert!(matches!(result, Err(ConvertError::UnsupportedOp { .. })));
        }
    }
}

#[test]
fn integer_folds_are_exact_and_casts_wrap() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[1]));
    let big = b.ints("big", &[(1 << 40) + 1, -7]);
    let two = b.ints("two", &[2]);
    b.node("Div", "q", &[&big, &two], vec![]);
    b.node("Max", "m", &[&big, &two], vec![]);
    let f = b.weight("f", &[3], vec![300.0, -0.5, 0.0]);
    b.node("Cast", "u8", &[&f], vec![attr_int("to", 2)]);
    b.node("Cast", "bool", &[&f], vec![attr_int("to", 9)]);
    b.output(&x, &[]);
    let g = import_graph(b).expect("imports");
    let k = |name: &str| g.values[g.by_name[name]].konst.clone();
    assert_eq!(k("q"), Some(ConstData::I64(vec![1 << 39, -3])));
    assert_eq!(k("m"), Some(ConstData::I64(vec![(1 << 40) + 1, 2])));
    assert_eq!(k("u8"), Some(ConstData::I64(vec![44, 0, 0])));
    assert_eq!(k("bool"), Some(ConstData::I64(vec![1, 1, 0])));
}

#[test]
fn pad_axes_name_the_padded_axes() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[1, 2, 3]));
    let pads = b.ints("pads", &[1, 2, 3, 4]);
    let value = b.scalar("value", 0.0);
    let axes = b.ints("axes", &[-1, 0]);
    let y = b.node("Pad", "y", &[&x, &pads, &value, &axes], vec![]);
    b.output(&y, &[]);
    let g = import_graph(b).expect("imports");
    let out = g.outputs[0];
    assert_eq!(g.values[out].shape, vec![1 + 2 + 4, 2, 3 + 1 + 3]);
}

#[test]
fn folding_into_zero_output_channels_does_not_panic() {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", &fixed(&[1, 1, 2, 2]));
    let w = b.weight("w", &[0, 1, 1, 1], vec![]);
    let c = b.node("Conv", "c", &[&x, &w], vec![]);
    let k = b.scalar("k", 2.0);
    let y = b.node("Mul", "y", &[&c, &k], vec![]);
    b.output(&y, &[]);
    let mut g = import_graph(b).expect("imports");
    passes::optimize(&mut g);
}

/// A float ConvTranspose2d gets the phase kernel's scratch (format 1.4) unless
/// `--small-arena` asks for the smallest arena: then no scratch, the gather
/// form, and the lowest minor version. Both files give the same outputs.
#[test]
fn float_conv_transpose_scratch_and_small_arena() {
    let g = import_graph(conv_transpose(
        [2, 2],
        [3, 4],
        vec![attr_ints("strides", &[2, 2])],
    ))
    .expect("valid ConvTranspose");
    let mut outputs = Vec::new();
    for small_arena in [false, true] {
        let options = crate::convert::mixed::ConvertOptions {
            small_arena,
            ..Default::default()
        };
        let converted = crate::convert::convert_with(
            &g,
            crate::convert::Precision::F32,
            &[],
            crate::convert::Method::Minmax,
            &options,
            Vec::new(),
            |_| {},
        )
        .expect("converts");
        let minor = u16::from_le_bytes([converted.bytes[10], converted.bytes[11]]);
        let scratch = converted.file.ops.iter().any(|op| op.scratch.is_some());
        assert_eq!(
            (minor, scratch),
            if small_arena { (0, false) } else { (4, true) }
        );
        let bytes = tern_runtime::AlignedBytes::new(&converted.bytes);
        let model = tern_runtime::Model::from_bytes(&bytes).expect("loads");
        let mut interp = tern_runtime::Interpreter::with_allocated_arena(&model).expect("arena");
        let x: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 3.0).collect();
        interp.set_input_f32(0, &x).expect("input");
        interp.invoke().expect("runs");
        let y = interp.output(0).expect("output");
        let mut v = vec![0f32; y.info.len()];
        y.read_f32(&mut v).expect("f32");
        outputs.push(v);
    }
    assert_eq!(outputs[0].len(), 2 * 6 * 8);
    for (a, b) in outputs[0].iter().zip(&outputs[1]) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
}
