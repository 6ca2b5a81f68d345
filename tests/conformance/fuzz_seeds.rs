//! The fuzz targets' seeds (`fuzz/seeds/`, see fuzz/README.md): small converter-made
//! `.tern` files, at least one per opcode, and the ONNX models they come from.
//!
//! `TERN_BLESS=1` regenerates them from the `onnx` wheel's node tests: every test
//! model the converter takes (strictly, or with its graph inputs after the first
//! as constants from the test's own data) is converted at f32, f16 and int8
//! (calibrated on a ramp), and for each op signature (opcode, input and output
//! element types, input count) the smallest file under [`MAX_SEED_BYTES`] is kept.
//! Without it, the test checks the committed seeds: each loads and runs, and
//! together they hold every opcode, so that mutations reach every op's check.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use prost::Message;
use tern_export::convert::import::ImportOptions;
use tern_export::convert::{self, Method, Precision};
use tern_runtime::{AlignedBytes, Interpreter, Model, Opcode};
use tract_onnx::pb::{ModelProto, TensorProto};

use crate::harness;

/// Largest seed file: small seeds keep executions fast and mutations focused.
const MAX_SEED_BYTES: usize = 16 * 1024;

/// What a seed must show so that its ops differ from another seed's.
type Signature = (u16, Vec<Option<u8>>, Option<u8>);

fn seeds_dir(kind: &str) -> PathBuf {
    tern_tests::workspace_root().join("fuzz/seeds").join(kind)
}

#[test]
fn fuzz_seeds() {
    if std::env::var_os("TERN_BLESS").is_some() {
        bless();
    }
    let dir = seeds_dir("model");
    let mut covered = HashSet::new();
    let mut count = 0;
    for path in files(&dir, "tern") {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.len() <= MAX_SEED_BYTES,
            "{}: too large",
            path.display()
        );
        let aligned = AlignedBytes::new(&bytes);
        let model = Model::from_bytes(&aligned).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\n(regenerate the seeds: TERN_BLESS=1 cargo test -p tern-tests --test conformance fuzz_seeds)",
                path.display()
            )
        });
        let mut interpreter = Interpreter::with_allocated_arena(&model).unwrap();
        interpreter
            .invoke()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        covered.extend(
            (0..model.op_count())
                .filter_map(|i| model.op(i))
                .map(|op| op.opcode),
        );
        count += 1;
    }
    let missing: Vec<&str> = Opcode::ALL
        .iter()
        .filter(|op| !covered.contains(op))
        .map(|op| op.name())
        .collect();
    println!("{count} model seeds cover {} opcodes", covered.len());
    assert!(
        missing.is_empty(),
        "no seed in {} holds {missing:?}: add a source model for them (see fuzz/README.md)",
        dir.display()
    );
    assert!(
        !files(&seeds_dir("onnx"), "onnx").is_empty(),
        "no ONNX seeds"
    );
}

/// The files with extension `ext` in `dir`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| p.extension().is_some_and(|e| e == ext));
    found.sort();
    found
}

/// A candidate seed: the `.tern` bytes and the ONNX model they were converted from.
struct Candidate {
    name: String,
    tern: Vec<u8>,
    onnx: Vec<u8>,
}

fn bless() {
    let root = tern_tests::workspace_root();
    let node_dir = harness::node_tests_dir(&root).expect("run `cargo xtask setup` first");
    let mut best: BTreeMap<Signature, Candidate> = BTreeMap::new();
    for dir in harness::list_node_tests(&node_dir).unwrap() {
        let test = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(onnx) = std::fs::read(dir.join("model.onnx")) else {
            continue;
        };
        let Ok(proto) = ModelProto::decode(onnx.as_slice()) else {
            continue;
        };
        let constant = with_constant_inputs(&dir, proto.clone());
        let mut attempts = vec![(proto, false)];
        if constant != attempts[0].0 {
            attempts.push((constant, true));
        }
        for (model, constants) in attempts {
            for precision in [Precision::F32, Precision::F16, Precision::Int8] {
                // The converter's panics are the conformance test's business.
                let converted = catch_unwind(AssertUnwindSafe(|| convert_one(&model, precision)));
                let Ok(Some(tern)) = converted else {
                    continue;
                };
                let name = format!(
                    "{}{}.{}",
                    test.trim_start_matches("test_"),
                    if constants { ".const" } else { "" },
                    precision.name()
                );
                for signature in signatures(&tern) {
                    let better = best
                        .get(&signature)
                        .is_none_or(|c| (tern.len(), &name) < (c.tern.len(), &c.name));
                    if better {
                        let onnx = model.encode_to_vec();
                        let tern = tern.clone();
                        best.insert(
                            signature,
                            Candidate {
                                name: name.clone(),
                                tern,
                                onnx,
                            },
                        );
                    }
                }
            }
        }
    }
    let (model_dir, onnx_dir) = (seeds_dir("model"), seeds_dir("onnx"));
    for (dir, ext) in [(&model_dir, "tern"), (&onnx_dir, "onnx")] {
        std::fs::create_dir_all(dir).unwrap();
        for old in files(dir, ext) {
            std::fs::remove_file(old).unwrap();
        }
    }
    let mut written = BTreeSet::new();
    for c in best.values() {
        if written.insert(c.name.clone()) {
            std::fs::write(model_dir.join(format!("{}.tern", c.name)), &c.tern).unwrap();
            // One ONNX seed per source model (the f32 conversion is the ONNX target's).
            let stem = c.name.rsplit_once('.').map_or(c.name.as_str(), |(s, _)| s);
            std::fs::write(onnx_dir.join(format!("{stem}.onnx")), &c.onnx).unwrap();
        }
    }
    println!("wrote {} seeds to {}", written.len(), model_dir.display());
}

/// The model converted at `precision`, if it converts, runs, and is small enough.
fn convert_one(proto: &ModelProto, precision: Precision) -> Option<Vec<u8>> {
    let options = ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let graph = convert::graph_from_proto(proto, &options).ok()?;
    let samples: Vec<Vec<f32>> = if precision.needs_calibration() {
        let input = graph.inputs.first()?;
        let len: usize = graph.values[*input].shape.iter().product();
        // A ramp over [-3, 3] and its mirror: both signs, every magnitude.
        let ramp: Vec<f32> = (0..len)
            .map(|k| -3.0 + 6.0 * k as f32 / len.max(2) as f32)
            .collect();
        let mirror = ramp.iter().rev().copied().collect();
        vec![ramp, mirror]
    } else {
        Vec::new()
    };
    let converted = convert::convert(
        &graph,
        precision,
        &samples,
        Method::Minmax,
        Vec::new(),
        |_| {},
    )
    .ok()?;
    let bytes = converted.bytes;
    if bytes.len() > MAX_SEED_BYTES {
        return None;
    }
    let aligned = AlignedBytes::new(&bytes);
    let model = Model::from_bytes(&aligned).ok()?;
    let mut interpreter = Interpreter::with_allocated_arena(&model).ok()?;
    interpreter.invoke().ok()?;
    Some(bytes)
}

/// The op signatures of a `.tern` file.
fn signatures(bytes: &[u8]) -> Vec<Signature> {
    let aligned = AlignedBytes::new(bytes);
    let Ok(model) = Model::from_bytes(&aligned) else {
        return Vec::new();
    };
    let dtype = |t: u32| model.tensor(t as usize).map(|t| t.dtype as u8);
    (0..model.op_count())
        .filter_map(|i| model.op(i))
        .map(|op| {
            let inputs = op.inputs.iter().map(|&t| dtype(t)).collect();
            let output = op.outputs.first().and_then(|&t| dtype(t));
            (op.opcode as u16, inputs, output)
        })
        .collect()
}

/// `proto` with every graph input after the first turned into an initializer
/// holding the node test's own data (`test_data_set_0/input_N.pb`): node tests feed
/// shapes, axes and weights as inputs where Tern needs constants.
fn with_constant_inputs(dir: &Path, mut proto: ModelProto) -> ModelProto {
    let Some(graph) = proto.graph.as_mut() else {
        return proto;
    };
    let initializers: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let inputs: Vec<String> = graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| !initializers.contains(n))
        .collect();
    let mut data: Vec<TensorProto> = Vec::new();
    for (k, name) in inputs.iter().enumerate().skip(1) {
        let file = dir.join(format!("test_data_set_0/input_{k}.pb"));
        let Some(mut t) = std::fs::read(&file)
            .ok()
            .and_then(|b| TensorProto::decode(b.as_slice()).ok())
        else {
            continue;
        };
        t.name = name.clone();
        data.push(t);
    }
    graph
        .input
        .retain(|i| !data.iter().any(|t| t.name == i.name));
    graph.initializer.extend(data);
    proto
}
