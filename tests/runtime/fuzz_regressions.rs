//! Regression tests for what the fuzz targets (`fuzz/`) found: each input that
//! crashed a target, or made the converter write a file the runtime refused, is
//! now a typed error (or, where the input was valid, a correct result).

use tern_export::convert::ConvertError;
use tern_export::onnx::builder::{Dim, GraphBuilder};
use tern_runtime::{AlignedBytes, Interpreter, Model};

use crate::bad_input::{convert_f32, convert_f32_result, load, reseal};

/// Found by the `onnx` fuzz target: Attention with K and V of different lengths
/// passed the importer, and the converter's own load check refused the file. The
/// importer now names the mismatch.
#[test]
fn attention_with_disagreeing_key_and_value_lengths_is_invalid() {
    let q_dims = [Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(4), Dim::Fixed(8)];
    let k_dims = [Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(5), Dim::Fixed(8)];
    let mut b = GraphBuilder::new("attention_lengths");
    let q = b.input("q", &q_dims);
    let k = b.input("k", &k_dims);
    let v = b.input("v", &q_dims);
    let y = b.node("Attention", "attn", &[&q, &k, &v], vec![]);
    b.output(&y, &q_dims);
    let path = tern_tests::scratch_dir("attention-lengths").join("attention.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let options = tern_export::convert::import::ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let err = tern_export::convert::load_graph_with(&path, &options).unwrap_err();
    assert!(
        matches!(err, ConvertError::Invalid(_)) && err.to_string().contains("disagree"),
        "{err}"
    );
    println!("attention lengths: {err}");
}

/// Found by the `model` fuzz target: a zero step on a length-1 slice axis passed
/// the load-time check and reached the kernel, whose precondition is a nonzero step.
#[test]
fn zero_slice_step_on_a_length_one_axis_is_refused() {
    let mut b = GraphBuilder::new("slice");
    let x = b.input("x", &[Dim::Fixed(1), Dim::Fixed(6)]);
    let starts = b.ints("starts", &[1]);
    let ends = b.ints("ends", &[4]);
    let axes = b.ints("axes", &[1]);
    let y = b.node("Slice", "slice", &[&x, &starts, &ends, &axes], vec![]);
    b.output(&y, &[Dim::Fixed(1), Dim::Fixed(3)]);
    let path = tern_tests::scratch_dir("zero-slice-step").join("slice.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let g = tern_export::convert::load_graph(&path, 1).expect("imports");
    let converted = convert_f32(&g);
    let mut bytes = converted.bytes.clone();
    let aligned = AlignedBytes::new(&bytes);
    let model = Model::from_bytes(&aligned).expect("loads");
    let op = (0..model.op_count())
        .filter_map(|i| model.op(i))
        .find(|op| op.opcode == tern_runtime::Opcode::Slice)
        .expect("a Slice op");
    // Parameters: one start per axis, then one step per axis; axis 0 has length 1.
    let rank = op.params.len() / 2;
    assert_eq!(rank, 2, "params {:?}", op.params);
    let at = op.params.as_ptr() as usize - aligned.as_ptr() as usize + 4 * rank;
    drop(model);
    bytes[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
    reseal(&mut bytes);
    let err = load(&bytes).expect_err("a zero step is refused at load");
    assert!(err.to_string().contains("zero slice step"), "{err}");
    println!("zero slice step: {err}");
}

/// Found by the `model` fuzz target: an average pool whose kernel and padding
/// were mutated to 2^20 overflowed the int8 kernel's tap count (`i32`) when
/// `count_include_pad` counted the padded taps. The check bounds the taps of
/// one window inside the padded input.
#[test]
fn average_pool_window_too_large_to_count_is_refused() {
    let mut b = GraphBuilder::new("avgpool");
    let x = b.input(
        "x",
        &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(4)],
    );
    let y = b.node(
        "AveragePool",
        "pool",
        &[&x],
        vec![
            tern_export::onnx::builder::attr_ints("kernel_shape", &[2, 2]),
            tern_export::onnx::builder::attr_int("count_include_pad", 1),
        ],
    );
    b.output(
        &y,
        &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(3)],
    );
    let path = tern_tests::scratch_dir("avgpool-taps").join("pool.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let g = tern_export::convert::load_graph(&path, 1).expect("imports");
    let converted = convert_f32(&g);
    let mut bytes = converted.bytes.clone();
    let aligned = AlignedBytes::new(&bytes);
    let model = Model::from_bytes(&aligned).expect("loads");
    let op = (0..model.op_count())
        .filter_map(|i| model.op(i))
        .find(|op| op.opcode == tern_runtime::Opcode::AvgPool2d)
        .expect("an AvgPool2d op");
    // Parameters: kernel [2], stride [2], dilation [2], pad_begin [2], pad_end [2], count_include_pad.
    assert_eq!(op.params.len(), 11, "params {:?}", op.params);
    let at = op.params.as_ptr() as usize - aligned.as_ptr() as usize;
    drop(model);
    for word in [0, 1, 6, 7] {
        bytes[at + 4 * word..at + 4 * word + 4].copy_from_slice(&(1u32 << 20).to_le_bytes());
    }
    reseal(&mut bytes);
    let err = load(&bytes).expect_err("the window is refused at load");
    assert!(err.to_string().contains("2^22 taps"), "{err}");
    println!("average pool window: {err}");
}

/// Found by the `onnx` fuzz target: a Pad of 2^30 rows gave an output of over
/// 4 GiB; the converter wrote the arena size truncated to 32 bits and then
/// refused its own file. Pads of 2^33 on two axes then overflowed the planner's
/// element count (`usize`). Both now name the format limit.
#[test]
fn model_over_the_format_s_32_bit_arena_is_a_typed_convert_error() {
    for (case, pads, rows, cols) in [
        ("pad-rows", [1i64 << 30, 0, 0, 0], (1i64 << 30) + 1, 4),
        (
            "pad-both",
            [1 << 33, 1 << 33, 0, 0],
            (1 << 33) + 1,
            (1 << 33) + 4,
        ),
    ] {
        let mut b = GraphBuilder::new("pad");
        let x = b.input("x", &[Dim::Fixed(1), Dim::Fixed(4)]);
        let pads = b.ints("pads", &pads);
        let y = b.node("Pad", "pad", &[&x, &pads], vec![]);
        b.output(&y, &[Dim::Fixed(rows), Dim::Fixed(cols)]);
        let path = tern_tests::scratch_dir(case).join("pad.onnx");
        tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
        let g = tern_export::convert::load_graph(&path, 1).expect("imports");
        let Err(err) = convert_f32_result(&g) else {
            panic!("{case}: a model with over 4 GiB of arena converted");
        };
        assert!(matches!(err, ConvertError::TooLarge(_)), "{case}: {err}");
        assert!(err.to_string().contains("more than 4 GiB"), "{case}: {err}");
        println!("{case}: {err}");
    }
}

/// Found by the `onnx` fuzz target: an initializer whose dims multiply past
/// `usize` overflowed the importer's element count.
#[test]
fn initializer_with_overflowing_dims_is_invalid() {
    let mut b = GraphBuilder::new("huge_initializer");
    let x = b.input("x", &[Dim::Fixed(1), Dim::Fixed(4)]);
    let w = b.ints("w", &[1, 2, 3, 4]);
    let y = b.node("Add", "add", &[&x, &w], vec![]);
    b.output(&y, &[Dim::Fixed(1), Dim::Fixed(4)]);
    let mut proto = b.into_model("test", &[]);
    let graph = proto.graph.as_mut().expect("graph");
    graph.initializer[0].dims = vec![1 << 31; 3];
    let options = tern_export::convert::import::ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let err = tern_export::convert::graph_from_proto(&proto, &options).unwrap_err();
    assert!(
        matches!(err, ConvertError::Invalid(_)) && err.to_string().contains("overflows"),
        "{err}"
    );
    println!("initializer dims: {err}");
}

/// Found by the `onnx` fuzz target: a graph that declares no output gave a model
/// with nothing to return, which the converter wrote and its own load check
/// refused. The planner now says so.
#[test]
fn graph_without_an_output_is_invalid() {
    let mut b = GraphBuilder::new("no_output");
    let x = b.input("x", &[Dim::Fixed(4)]);
    let _y = b.node("Relu", "relu", &[&x], vec![]);
    let path = tern_tests::scratch_dir("no-output").join("no_output.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let result = tern_export::convert::load_graph(&path, 1).and_then(|g| convert_f32_result(&g));
    let Err(err) = result else {
        panic!("a graph without outputs converted");
    };
    assert!(
        matches!(err, ConvertError::Invalid(_)) && err.to_string().contains("0 outputs"),
        "{err}"
    );
    println!("no output: {err}");
}

/// Found by the `onnx` fuzz target (its input is
/// `tests/fixtures/fuzz/onnx-rank-above-6.bin`): a constant of rank above 6 passed
/// the importer, and the converter's own load check refused the file (the format
/// holds 6 dimensions). The planner now names the tensor and its rank.
#[test]
fn tensor_above_the_format_s_rank_is_a_typed_convert_error() {
    use prost::Message;
    let path = tern_tests::workspace_root().join("tests/fixtures/fuzz/onnx-rank-above-6.bin");
    let bytes = std::fs::read(&path).expect("fixture");
    let proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).expect("decodes");
    let options = tern_export::convert::import::ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let g = tern_export::convert::graph_from_proto(&proto, &options).expect("imports");
    let Err(err) = convert_f32_result(&g) else {
        panic!("a model with a rank-7 tensor converted");
    };
    assert!(
        matches!(err, ConvertError::TooLarge(_))
            && err.to_string().contains("at most 6 dimensions"),
        "{err}"
    );
    println!("rank above 6: {err}");
}

/// Found by the `onnx` fuzz target: a slice step of 2^48 was written as a 32-bit
/// zero. A step past the axis length selects one element, as the length does, so
/// the importer clamps it; the model converts and picks that element.
#[test]
fn slice_step_past_the_axis_length_selects_one_element() {
    let mut b = GraphBuilder::new("slice_huge_step");
    let x = b.input("x", &[Dim::Fixed(2), Dim::Fixed(10)]);
    let starts = b.ints("starts", &[1]);
    let ends = b.ints("ends", &[10]);
    let axes = b.ints("axes", &[1]);
    let steps = b.ints("steps", &[1 << 48]);
    let y = b.node(
        "Slice",
        "slice",
        &[&x, &starts, &ends, &axes, &steps],
        vec![],
    );
    b.output(&y, &[Dim::Fixed(2), Dim::Fixed(1)]);
    let path = tern_tests::scratch_dir("slice-huge-step").join("slice.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let g = tern_export::convert::load_graph(&path, 1).expect("imports");
    let converted = convert_f32(&g);
    let bytes = AlignedBytes::new(&converted.bytes);
    let model = Model::from_bytes(&bytes).expect("loads");
    let mut interp = Interpreter::with_allocated_arena(&model).expect("arena");
    let input: Vec<f32> = (0..20).map(|v| v as f32).collect();
    interp.set_input_f32(0, &input).expect("input");
    interp.invoke().expect("runs");
    let mut out = vec![0f32; 2];
    interp
        .output(0)
        .expect("output")
        .read_f32(&mut out)
        .expect("f32");
    assert_eq!(out, [1.0, 11.0]);
}

/// Found by the `onnx` fuzz target: an Attention mask that does not broadcast to
/// the scores passed the importer, and the converter's own load check refused
/// the file. The importer names the shapes.
#[test]
fn attention_mask_that_does_not_broadcast_is_invalid() {
    let dims = [Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(4), Dim::Fixed(8)];
    let mut b = GraphBuilder::new("attention_mask");
    let q = b.input("q", &dims);
    let k = b.input("k", &dims);
    let v = b.input("v", &dims);
    let mask = b.input("mask", &[Dim::Fixed(3), Dim::Fixed(4)]);
    let y = b.node("Attention", "attn", &[&q, &k, &v, &mask], vec![]);
    b.output(&y, &dims);
    let path = tern_tests::scratch_dir("attention-mask").join("attention.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let options = tern_export::convert::import::ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let err = tern_export::convert::load_graph_with(&path, &options).unwrap_err();
    assert!(
        matches!(err, ConvertError::Invalid(_)) && err.to_string().contains("does not broadcast"),
        "{err}"
    );
    println!("attention mask: {err}");
}

/// Found by the `onnx` fuzz target (its input is
/// `tests/fixtures/fuzz/onnx-pad-overflow.bin`): Pad amounts that overflow the
/// padded shape panicked in the importer. They are a typed error now.
#[test]
fn pad_amounts_that_overflow_the_shape_are_a_typed_error() {
    use prost::Message;
    let path = tern_tests::workspace_root().join("tests/fixtures/fuzz/onnx-pad-overflow.bin");
    let bytes = std::fs::read(&path).expect("fixture");
    let proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).expect("decodes");
    let options = tern_export::convert::import::ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let result = tern_export::convert::graph_from_proto(&proto, &options)
        .and_then(|g| convert_f32_result(&g));
    let Err(err) = result else {
        panic!("the overflowing pads converted");
    };
    assert!(!matches!(err, ConvertError::Runtime(_)), "{err}");
    println!("pad overflow: {err}");
}
