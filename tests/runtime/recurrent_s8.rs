//! The int8 recurrent cells end to end: the LSTM and GRU fixtures converted to
//! int8 run their cells as integer ops (int8 X and weights, f32 packed output),
//! agree with the f32 conversion, and the loader rejects damaged int8-cell
//! tables; damaged constants never make the kernels panic.

use tern_export::convert::Precision;
use tern_export::models::ModelKind;
use tern_runtime::{AlignedBytes, DType, Error, Interpreter, Model, Opcode, Quant};

/// Index of the first op with `opcode`.
fn find_op(model: &Model<'_>, opcode: Opcode) -> usize {
    (0..model.op_count())
        .find(|&i| model.op(i).unwrap().opcode == opcode)
        .expect("the model has the op")
}

/// (file offset, byte length) of constant input `k` of op `op`.
fn constant_region(model: &Model<'_>, bytes: &[u8], op: usize, k: usize) -> (usize, usize) {
    let data_offset = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let t = model
        .tensor(model.op(op).unwrap().inputs[k] as usize)
        .unwrap();
    (data_offset + t.offset, t.byte_len)
}

/// Rewrites the header checksum after an edit of the tables.
fn reseal(bytes: &mut [u8]) {
    let meta_end = 64 + u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&bytes[16..meta_end]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
}

fn load(bytes: &[u8]) -> Result<(), Error> {
    Model::from_bytes(&AlignedBytes::new(bytes)).map(|_| ())
}

/// Checks the op layout of an int8 cell, returns (op index, cell shift word).
fn check_int8_cell(model: &Model<'_>, opcode: Opcode) -> (usize, Option<u32>) {
    let i = find_op(model, opcode);
    let op = model.op(i).unwrap();
    assert_eq!(op.inputs.len(), 10, "int8 cells take 10 inputs");
    let t = |k: usize| model.tensor(op.inputs[k] as usize).unwrap();
    assert_eq!(t(0).dtype, DType::I8, "X is int8");
    for k in [1, 2] {
        assert_eq!(t(k).dtype, DType::I8, "W, R are int8");
        assert!(matches!(t(k).quant, Quant::PerChannel { .. }));
    }
    assert_eq!(t(3).dtype, DType::I32, "Q3.12 bias");
    assert_eq!(t(8).dtype, DType::I32, "requant");
    assert_eq!(t(9).shape(), [2, 513], "tables");
    let y = model.tensor(op.outputs[0] as usize).unwrap();
    assert_eq!(y.dtype, DType::F32, "the packed output stays f32");
    let base = 4 + 6 * if opcode == Opcode::Lstm { 3 } else { 2 };
    (i, op.params.get(base).copied())
}

#[test]
fn fixtures_run_integer_cells_close_to_f32() {
    let data = tern_tests::test_set();
    let indices: Vec<usize> = (0..300).collect();
    let x = data.images_f32(&indices);
    for (kind, opcode) in [
        (ModelKind::Lstm, Opcode::Lstm),
        (ModelKind::Gru, Opcode::Gru),
    ] {
        let int8 = tern_tests::convert_fixture(kind, Precision::Int8);
        let bytes = AlignedBytes::new(&int8.bytes);
        let model = Model::from_bytes(&bytes).expect("valid int8 model");
        let (_, cell_shift) = check_int8_cell(&model, opcode);
        if opcode == Opcode::Lstm {
            let cs = cell_shift.expect("an int8 LSTM stores its cell shift");
            assert!((8..=15).contains(&cs), "cell shift {cs}");
            println!("{}: cell shift {cs}", kind.name());
        } else {
            assert_eq!(cell_shift, None, "GRU has no cell shift word");
        }
        let f32 = tern_tests::convert_fixture(kind, Precision::F32);
        let f32_bytes = AlignedBytes::new(&f32.bytes);
        let f32_model = Model::from_bytes(&f32_bytes).unwrap();
        let (a, _) = tern_export::tools::run_images(&model, &x).expect("int8 runs");
        let (b, _) = tern_export::tools::run_images(&f32_model, &x).expect("f32 runs");
        let argmax = |v: &[f32]| -> Vec<usize> {
            v.chunks_exact(10)
                .map(|r| (0..10).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap())
                .collect()
        };
        let (pa, pb) = (argmax(&a), argmax(&b));
        let agree = pa.iter().zip(&pb).filter(|(p, q)| p == q).count();
        println!("{}: int8 cell agrees with f32 on {agree}/300", kind.name());
        assert!(agree >= 291, "{}: agreement {agree}/300", kind.name());
    }
}

#[test]
fn damaged_int8_cell_is_rejected() {
    let good = tern_tests::convert_fixture(ModelKind::Lstm, Precision::Int8).bytes;
    let aligned = AlignedBytes::new(&good);
    let model = Model::from_bytes(&aligned).expect("valid");
    let (op_index, _) = check_int8_cell(&model, Opcode::Lstm);
    let op = model.op(op_index).unwrap();
    let base = model.bytes().as_ptr() as usize;
    let (requant, _) = constant_region(&model, &good, op_index, 8);
    let (luts, _) = constant_region(&model, &good, op_index, 9);
    let cell_word = op.params.as_ptr() as usize - base + 4 * (4 + 6 * 3);
    let expect_bad_op = |bytes: &[u8], what: &str| match load(bytes).unwrap_err() {
        Error::BadOp { op, why, .. } => {
            assert_eq!(op, op_index, "{what}: {why}");
            println!("{what}: {why}");
        }
        other => panic!("{what}: expected BadOp, got {other}"),
    };

    let mut bad = good.clone();
    bad[requant + 4..requant + 8].copy_from_slice(&40i32.to_le_bytes()); // x shift, row 0
    expect_bad_op(&bad, "requant shift 40");

    let mut bad = good.clone();
    bad[luts + 8..luts + 12].copy_from_slice(&(-5i32).to_le_bytes()); // sigmoid < 0
    expect_bad_op(&bad, "negative sigmoid entry");

    let mut bad = good.clone();
    let tanh_end = luts + 4 * 1025;
    bad[tanh_end..tanh_end + 4].copy_from_slice(&40000i32.to_le_bytes());
    expect_bad_op(&bad, "tanh entry past int16");

    for cs in [7u32, 16] {
        let mut bad = good.clone();
        bad[cell_word..cell_word + 4].copy_from_slice(&cs.to_le_bytes());
        reseal(&mut bad);
        expect_bad_op(&bad, &format!("cell shift {cs}"));
    }
}

/// Random edits of the int8 cell's constants (weights, bias, requantization,
/// tables): whatever still loads also runs, and nothing panics.
#[test]
fn damaged_int8_cell_constants_never_panic() {
    let good = tern_tests::convert_fixture(ModelKind::Lstm, Precision::Int8).bytes;
    let aligned = AlignedBytes::new(&good);
    let model = Model::from_bytes(&aligned).expect("valid");
    let op = find_op(&model, Opcode::Lstm);
    // W, R, bias, requantization, tables.
    let regions: Vec<(usize, usize)> = [1, 2, 3, 8, 9]
        .iter()
        .map(|&k| constant_region(&model, &good, op, k))
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ran, mut rejected) = (0, 0);
    for round in 0..150 {
        let mut bytes = good.clone();
        let (start, len) = regions[round % regions.len()];
        for _ in 0..1 + next() % 8 {
            let at = start + (next() as usize) % len;
            bytes[at] = match next() % 4 {
                0 => 0x80,
                1 => 0x7f,
                2 => 0xff,
                _ => next() as u8,
            };
        }
        let aligned = AlignedBytes::new(&bytes);
        let result = std::panic::catch_unwind(|| match Model::from_bytes(&aligned) {
            Ok(model) => {
                let mut interp = Interpreter::with_allocated_arena(&model).unwrap();
                let n = model.input(0).unwrap().len();
                interp.set_input_f32(0, &vec![0.7; n]).unwrap();
                interp.invoke().unwrap();
                true
            }
            Err(_) => false,
        });
        match result {
            Ok(true) => ran += 1,
            Ok(false) => rejected += 1,
            Err(_) => panic!("round {round}: panicked"),
        }
    }
    println!("int8 cell constants: {ran} damaged files ran, {rejected} rejected");
    assert!(ran > 0 && rejected > 0);
}

/// A string attribute (the builder has none).
fn attr_string(name: &str, value: &str) -> tract_onnx::pb::AttributeProto {
    tract_onnx::pb::AttributeProto {
        name: name.into(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A one-node recurrent ONNX model: time-major `x` `[6, 2, 5]`, hidden 7,
/// random weights and bias, optional constant initial states, output `Y`.
fn one_cell(
    op: &str,
    direction: &str,
    states: bool,
    attrs: Vec<tract_onnx::pb::AttributeProto>,
) -> tern_export::convert::graph::Graph {
    use tern_export::onnx::builder::{Dim, GraphBuilder, attr_int};
    let (seq, batch, input, hidden) = (6i64, 2i64, 5i64, 7i64);
    let gates = match op {
        "LSTM" => 4,
        "GRU" => 3,
        _ => 1,
    };
    let dirs = if direction == "bidirectional" { 2 } else { 1 };
    let mut seed = 0x1234_5678_9abc_def1u64 ^ (gates as u64 * 977 + dirs as u64);
    let mut rand = |n: i64, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * scale
            })
            .collect()
    };
    let mut b = GraphBuilder::new("cell");
    let x = b.input(
        "x",
        &[Dim::Fixed(seq), Dim::Fixed(batch), Dim::Fixed(input)],
    );
    let w = b.weight(
        "W",
        &[dirs, gates * hidden, input],
        rand(dirs * gates * hidden * input, 0.6),
    );
    let r = b.weight(
        "R",
        &[dirs, gates * hidden, hidden],
        rand(dirs * gates * hidden * hidden, 0.4),
    );
    let bias = b.weight(
        "B",
        &[dirs, 2 * gates * hidden],
        rand(dirs * 2 * gates * hidden, 0.5),
    );
    let mut inputs = vec![x.as_str(), w.as_str(), r.as_str(), bias.as_str()];
    let state = [dirs, batch, hidden];
    let (h0, c0);
    if states {
        inputs.push("");
        h0 = b.weight("initial_h", &state, rand(dirs * batch * hidden, 0.9));
        inputs.push(&h0);
        if op == "LSTM" {
            c0 = b.weight("initial_c", &state, rand(dirs * batch * hidden, 2.0));
            inputs.push(&c0);
        }
    }
    let mut all_attrs = vec![
        attr_int("hidden_size", hidden),
        attr_string("direction", direction),
    ];
    all_attrs.extend(attrs);
    b.node_multi(op, "cell", &inputs, &["y"], all_attrs);
    b.output(
        "y",
        &[
            Dim::Fixed(seq),
            Dim::Fixed(dirs),
            Dim::Fixed(batch),
            Dim::Fixed(hidden),
        ],
    );
    let path = tern_tests::scratch_dir(&format!("cell-{op}-{direction}")).join("cell.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    tern_export::convert::load_graph(&path, 1).expect("imports")
}

/// RNN, GRU (both `linear_before_reset`) and LSTM in every direction, with
/// bias and constant initial states, converted to int8: the cell runs as an
/// int8 op and stays close to the f32 conversion; a clipped LSTM stays f32.
#[test]
fn synthetic_cells_convert_to_int8_ops() {
    use tern_export::convert::{self, Method};
    let mut seed = 0x0dd_ba11_u64;
    let mut samples = |n: usize| -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| {
                (0..60)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        (seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                    })
                    .collect()
            })
            .collect()
    };
    let calibration = samples(64);
    let eval: Vec<f32> = samples(16).concat();
    let lbr = |v: i64| {
        vec![tern_export::onnx::builder::attr_int(
            "linear_before_reset",
            v,
        )]
    };
    let cases = [
        ("RNN", "bidirectional", true, vec![], Opcode::Rnn, true),
        ("RNN", "reverse", false, vec![], Opcode::Rnn, true),
        ("GRU", "forward", true, lbr(0), Opcode::Gru, true),
        ("GRU", "bidirectional", false, lbr(1), Opcode::Gru, true),
        ("LSTM", "bidirectional", true, vec![], Opcode::Lstm, true),
        ("LSTM", "reverse", false, vec![], Opcode::Lstm, true),
        (
            "LSTM",
            "forward",
            false,
            vec![tern_export::onnx::builder::attr_float("clip", 0.5)],
            Opcode::Lstm,
            false,
        ),
    ];
    for (op, direction, states, attrs, opcode, int8_cell) in cases {
        let g = one_cell(op, direction, states, attrs);
        let run = |precision: Precision| -> Vec<f32> {
            let c = convert::convert(&g, precision, &calibration, Method::Minmax, vec![], |_| {})
                .expect("converts");
            let bytes = AlignedBytes::new(&c.bytes);
            let model = Model::from_bytes(&bytes).expect("loads");
            let cell = model.op(find_op(&model, opcode)).unwrap();
            let x_dtype = model.tensor(cell.inputs[0] as usize).unwrap().dtype;
            let want = if precision == Precision::Int8 && int8_cell {
                DType::I8
            } else {
                DType::F32
            };
            assert_eq!(x_dtype, want, "{op} {direction} {precision:?}");
            tern_export::tools::run_images(&model, &eval)
                .expect("runs")
                .0
        };
        let (a, b) = (run(Precision::Int8), run(Precision::F32));
        let diff = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        println!(
            "{op} {direction} states {states}: int8 cell {int8_cell}, max |int8 - f32| {diff:.4}"
        );
        assert!(diff < 0.03, "{op} {direction}: {diff}");
    }
}
