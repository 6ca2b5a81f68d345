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

fn load(bytes: &[u8]) -> Result<(), Error> {
    Model::from_bytes(&AlignedBytes::new(bytes)).map(|_| ())
}

/// Rewrites the header checksum after an edit, so that the edit reaches the
/// validation behind the checksum.
fn reseal(bytes: &mut [u8]) {
    let meta_end = 64 + u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    if meta_end <= bytes.len() {
        let crc = crc32fast::hash(&bytes[16..meta_end]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
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
