//! Model files are untrusted input: every kind of damage is a typed error that
//! names what and where, and no byte sequence makes the loader or the
//! interpreter panic.

use tern_export::convert::{ConvertError, Precision};
use tern_export::models::ModelKind;
use tern_export::onnx::builder::{Dim, GraphBuilder};
use tern_runtime::{AlignedBytes, Error, Interpreter, Model};

fn cnn_f32() -> Vec<u8> {
    tern_tests::convert_fixture(ModelKind::Cnn, Precision::F32).bytes
}

pub(crate) fn load(bytes: &[u8]) -> Result<(), Error> {
    Model::from_bytes(&AlignedBytes::new(bytes)).map(|_| ())
}

/// Rewrites the header checksum after an edit, so that the edit reaches the
/// validation behind the checksum.
pub(crate) fn reseal(bytes: &mut [u8]) {
    let meta_end = 64 + u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    if meta_end <= bytes.len() {
        let crc = crc32fast::hash(&bytes[16..meta_end]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
}

/// `tern convert` at f32 of an imported graph, error kept.
pub(crate) fn convert_f32_result(
    g: &tern_export::convert::graph::Graph,
) -> Result<tern_export::convert::Converted, tern_export::convert::ConvertError> {
    tern_export::convert::convert(
        g,
        Precision::F32,
        &[],
        tern_export::convert::Method::Minmax,
        Vec::new(),
        |_| {},
    )
}

/// Converts an imported graph at f32, as `tern convert` does.
pub(crate) fn convert_f32(
    g: &tern_export::convert::graph::Graph,
) -> tern_export::convert::Converted {
    convert_f32_result(g).expect("converts")
}

#[test]
fn damaged_files_are_typed_errors() {
    let good = cnn_f32();
    load(&good).expect("the undamaged file loads");

    let err = load(&good[..good.len() - 100]).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { what: "file", .. }),
        "{err}"
    );
    let err = load(&good[..40]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Truncated {
                what: "file header",
                ..
            }
        ),
        "{err}"
    );

    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(load(&bad).unwrap_err(), Error::BadMagic { .. }));

    let mut flipped = good.clone();
    flipped[200] ^= 0x40; // inside the tensor table
    let err = load(&flipped).unwrap_err();
    assert!(matches!(err, Error::HeaderChecksum { .. }), "{err}");
    println!("flipped byte: {err}");

    let mut newer = good.clone();
    newer[8..10].copy_from_slice(&2u16.to_le_bytes());
    let err = load(&newer).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                major: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    println!("newer major: {err}");

    // A newer minor version is read (compatibility policy).
    let mut minor = good.clone();
    minor[10..12].copy_from_slice(&7u16.to_le_bytes());
    reseal(&mut minor);
    load(&minor).expect("a newer minor version loads");

    // Damage to the weights is not seen at load (O(1) load) but by verify_data.
    let mut data = good.clone();
    let last = data.len() - 1;
    data[last] ^= 1;
    let aligned = AlignedBytes::new(&data);
    let model = Model::from_bytes(&aligned).expect("loads");
    assert!(matches!(
        model.verify_data().unwrap_err(),
        Error::DataChecksum { .. }
    ));

    // An op record naming an unknown opcode.
    let aligned = AlignedBytes::new(&good);
    let model = Model::from_bytes(&aligned).expect("loads");
    let ops_at = 64 + 64 + model.tensor_count() * 64;
    let mut unknown = good.clone();
    unknown[ops_at..ops_at + 2].copy_from_slice(&999u16.to_le_bytes());
    reseal(&mut unknown);
    let err = load(&unknown).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownOpcode {
                op: 0,
                code: 999,
                ..
            }
        ),
        "{err}"
    );
    println!("unknown opcode: {err}");
}

#[test]
fn misaligned_buffer_is_refused() {
    let good = cnn_f32();
    let mut shifted = vec![0u8; good.len() + 1];
    shifted[1..].copy_from_slice(&good);
    let aligned = AlignedBytes::new(&shifted);
    let err = Model::from_bytes(&aligned[1..]).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, Error::MisalignedBuffer { align: 16, .. }),
        "{err}"
    );
}

#[test]
fn wrong_input_shape_and_small_arena_are_refused() {
    let bytes = AlignedBytes::new(&cnn_f32());
    let model = Model::from_bytes(&bytes).expect("loads");
    let mut small = vec![0u8; 100];
    let err = Interpreter::new(&model, &mut small)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, Error::ArenaTooSmall { got: 100, .. }),
        "{err}"
    );
    let mut interp = Interpreter::with_allocated_arena(&model).expect("arena");
    let err = interp.set_input_f32(0, &[0.0; 100]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InputShape {
                index: 0,
                expected: 784,
                got: 100,
                ..
            }
        ),
        "{err}"
    );
    println!("wrong input shape: {err}");
    assert!(matches!(
        interp.output(3).unwrap_err(),
        Error::NoSuchTensor { index: 3, .. }
    ));
    let mut short = [0f32; 3];
    let err = interp
        .output(0)
        .expect("output 0")
        .read_f32(&mut short)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferLength {
                expected: 10,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unsupported_onnx_op_names_op_node_and_opset() {
    let mut b = GraphBuilder::new("unsupported");
    let x = b.input("x", &[Dim::Fixed(1), Dim::Fixed(4)]);
    let y = b.node("Hardmax", "my_hardmax", &[&x], vec![]);
    b.output(&y, &[Dim::Fixed(1), Dim::Fixed(4)]);
    let model = b.into_model("test", &[]);
    let dir = tern_tests::scratch_dir("unsupported-op");
    let path = dir.join("hardmax.onnx");
    tern_export::onnx::write_model(&model, &path).expect("write");
    let err = tern_export::convert::load_graph(&path, 1).unwrap_err();
    match &err {
        ConvertError::UnsupportedOp {
            op_type,
            node,
            opset,
            ..
        } => {
            assert_eq!(
                (op_type.as_str(), node.as_str(), *opset),
                ("Hardmax", "my_hardmax", 17)
            );
        }
        other => panic!("expected UnsupportedOp, got {other}"),
    }
    println!("unsupported op: {err}");
}

/// Property test: random bytes, and valid files with random byte edits (resealed
/// so that the edits get past the checksum), never panic. Whatever loads also
/// runs without panicking.
#[test]
fn random_and_mutated_bytes_never_panic() {
    let good = cnn_f32();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut loaded, mut rejected) = (0, 0);
    for round in 0..3000 {
        let bytes: Vec<u8> = if round % 3 == 0 {
            let len = (next() % 4096) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && v.len() >= 8 {
                v[..8].copy_from_slice(b"TERN\r\n\x1a\n");
            }
            v
        } else {
            let mut v = good.clone();
            // Mostly the header and tables, where the structure lives.
            let meta_end = 64 + u32::from_le_bytes(v[28..32].try_into().unwrap()) as usize;
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % meta_end.min(v.len());
                v[at] = next() as u8;
            }
            if round % 5 != 0 {
                reseal(&mut v);
            }
            v
        };
        let aligned = AlignedBytes::new(&bytes);
        let result = std::panic::catch_unwind(|| match Model::from_bytes(&aligned) {
            Ok(model) => {
                if model.arena_size() > 1 << 26 {
                    return Some(false); // a mutated arena size: valid, but not worth 4 GB here
                }
                let mut interp = Interpreter::with_allocated_arena(&model).ok()?;
                let n = model.input(0).ok()?.len();
                interp.set_input_f32(0, &vec![0.25; n]).ok()?;
                interp.invoke().ok()?;
                Some(true)
            }
            Err(_) => Some(false),
        });
        match result {
            Ok(Some(true)) => loaded += 1,
            Ok(_) => rejected += 1,
            Err(_) => panic!("round {round}: panicked on {} bytes", bytes.len()),
        }
    }
    println!("fuzz: {loaded} mutated files loaded and ran, {rejected} rejected with an error");
    assert!(rejected > 0 && loaded > 0);
}

/// An LSTM whose sequence length is symbolic: without `--input-shape` the
/// converter names the input, the axis and the dimension; with it, it converts.
#[test]
fn symbolic_sequence_length_needs_input_shape() {
    use tern_export::convert::import::ImportOptions;
    let (input, hidden) = (4i64, 3i64);
    let mut b = GraphBuilder::new("lstm_symbolic");
    let x = b.input("x", &[Dim::Symbol("seq"), Dim::Fixed(1), Dim::Fixed(input)]);
    let w = b.weight(
        "W",
        &[1, 4 * hidden, input],
        vec![0.1; (4 * hidden * input) as usize],
    );
    let r = b.weight(
        "R",
        &[1, 4 * hidden, hidden],
        vec![0.1; (4 * hidden * hidden) as usize],
    );
    b.node_multi(
        "LSTM",
        "lstm",
        &[&x, &w, &r],
        &["y", "y_h"],
        vec![tern_export::onnx::builder::attr_int("hidden_size", hidden)],
    );
    b.output("y_h", &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(hidden)]);
    let path = tern_tests::scratch_dir("symbolic-seq").join("lstm.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let err = tern_export::convert::load_graph(&path, 1).unwrap_err();
    match &err {
        ConvertError::SymbolicDim { input, axis, dim } => {
            assert_eq!((input.as_str(), *axis, dim.as_str()), ("x", 0, "'seq'"));
        }
        other => panic!("expected SymbolicDim, got {other}"),
    }
    assert!(err.to_string().contains("--input-shape x="), "{err}");
    println!("symbolic sequence length: {err}");
    let options = ImportOptions {
        batch: 1,
        input_shapes: [("x".to_string(), vec![5, 1, 4])].into_iter().collect(),
    };
    let g = tern_export::convert::load_graph_with(&path, &options).expect("converts with a shape");
    assert_eq!(g.values[g.inputs[0]].shape, vec![5, 1, 4]);
}

/// An ONNX Attention attribute Tern does not implement is named in the error.
#[test]
fn unimplemented_attention_attribute_is_named() {
    let dims = [Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(4), Dim::Fixed(8)];
    let mut b = GraphBuilder::new("attention_softcap");
    let q = b.input("q", &dims);
    let k = b.input("k", &dims);
    let v = b.input("v", &dims);
    let y = b.node(
        "Attention",
        "attn",
        &[&q, &k, &v],
        vec![tern_export::onnx::builder::attr_float("softcap", 30.0)],
    );
    b.output(&y, &dims);
    let path = tern_tests::scratch_dir("attention-softcap").join("attention.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let options = tern_export::convert::import::ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let err = tern_export::convert::load_graph_with(&path, &options).unwrap_err();
    match &err {
        ConvertError::UnsupportedOp {
            op_type, node, why, ..
        } => {
            assert_eq!((op_type.as_str(), node.as_str()), ("Attention", "attn"));
            assert!(why.contains("softcap"), "{why}");
        }
        other => panic!("expected UnsupportedOp, got {other}"),
    }
    println!("attention attribute: {err}");
}

/// A token id outside the embedding table at run time is a typed error naming
/// the op, the id, its position and the table size; the arena is not read out of
/// range and the next valid invoke works.
#[test]
fn token_id_out_of_embedding_range_is_a_typed_error() {
    let (vocab, width) = (10i64, 3i64);
    let mut b = GraphBuilder::new("embedding");
    let ids = b.input_typed("ids", &[Dim::Fixed(1), Dim::Fixed(4)], 7);
    let table: Vec<f32> = (0..vocab * width).map(|v| v as f32).collect();
    let e = b.weight("embedding", &[vocab, width], table);
    let y = b.node("Gather", "embed", &[&e, &ids], vec![]);
    b.output(&y, &[Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(width)]);
    let path = tern_tests::scratch_dir("token-range").join("embedding.onnx");
    tern_export::onnx::write_model(&b.into_model("test", &[]), &path).expect("write");
    let options = tern_export::convert::import::ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let g = tern_export::convert::load_graph_with(&path, &options).expect("imports");
    let converted = convert_f32(&g);
    let bytes = AlignedBytes::new(&converted.bytes);
    let model = Model::from_bytes(&bytes).expect("loads");
    let mut interp = Interpreter::with_allocated_arena(&model).expect("arena");
    interp
        .set_input_f32(0, &[1.0, 2.0, 12.0, 0.0])
        .expect("i32 input");
    let err = interp.invoke().unwrap_err();
    match &err {
        Error::IndexOutOfRange {
            value,
            position,
            limit,
            ..
        } => assert_eq!((*value, *position, *limit), (12, 2, 10)),
        other => panic!("expected IndexOutOfRange, got {other}"),
    }
    println!("token id out of range: {err}");
    interp
        .set_input_f32(0, &[1.0, 2.0, -1.0, 0.0])
        .expect("i32 input");
    interp.invoke().expect("valid ids run");
    let mut out = vec![0f32; 12];
    interp
        .output(0)
        .expect("output")
        .read_f32(&mut out)
        .expect("f32");
    assert_eq!(out, [3., 4., 5., 6., 7., 8., 27., 28., 29., 0., 1., 2.]);
}
