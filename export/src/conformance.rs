//! ONNX backend node-test conformance: runs the node tests shipped in the
//! `onnx` wheel (`onnx/backend/test/data/node/test_*/`, installed into
//! `<workspace>/.venv` by `cargo xtask setup`) through the converter (f32) and
//! the runtime, and compares with their expected outputs.
//!
//! A test runs when every op of its model is in
//! [`SUPPORTED_OPS`](crate::convert::support::SUPPORTED_OPS); it is skipped as
//! an unsupported variant when the converter rejects an attribute or form of a
//! supported op with [`ConvertError::UnsupportedOp`], or when its tensors have an
//! element type Tern does not hold (f64, f16, strings...; narrow or unsigned
//! integer graph inputs, [`ConvertError::UnsupportedInput`]). Anything else that
//! goes wrong (an invalid-model error, a runtime error, a panic, a wrong value)
//! is a failure. The same [`Report`] prints the coverage line and generates the
//! supported-ops table of `docs/ops.md` ([`ops_markdown`]).
//!
//! Node tests often feed weights, shapes, axes or scales as graph inputs, where
//! Tern (which converts static graphs) needs constants. When the strict attempt
//! is skipped because the converter needs an input "as a constant", the runner
//! makes a second, separately counted attempt: the graph inputs behind that
//! input become initializers holding the test's own `input_N.pb` data, and the
//! test runs on the remaining inputs ([`NodeTest::constant_inputs`]). A failure
//! in that mode fails the test as any other.
//!
//! Tolerance: `|got - expected| <= ATOL + RTOL * |expected|` with [`RTOL`] = 1e-3
//! (as onnx's backend tests) and [`ATOL`] = 1e-5 (onnx uses 1e-7; Tern's f32
//! kernels reorder sums). Integer and bool outputs (i32 in Tern, 0/1 for bool)
//! must match exactly; NaN matches NaN.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message;
use tern_runtime::{AlignedBytes, DType, Interpreter, Model};
use tract_onnx::pb::{ModelProto, TensorProto, ValueInfoProto, type_proto};

use crate::convert::graph::ConstData;
use crate::convert::import::{ImportOptions, tensor_data};
use crate::convert::support::{SUPPORTED_OPS, lookup};
use crate::convert::{self, ConvertError, Method, Precision};

/// Relative tolerance on float outputs.
pub const RTOL: f64 = 1e-3;
/// Absolute tolerance on float outputs.
pub const ATOL: f64 = 1e-5;

/// The wheel's node-test folder under `workspace_root`
/// (`.venv/lib/python3*/site-packages/onnx/backend/test/data/node`), if installed.
pub fn node_tests_dir(workspace_root: &Path) -> Option<PathBuf> {
    let lib = workspace_root.join(".venv/lib");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages/onnx/backend/test/data/node"))
        .filter(|p| p.is_dir())
        .collect();
    candidates.sort();
    candidates.pop()
}

/// The `test_*` folders under `node_dir`, sorted by name.
pub fn list_node_tests(node_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(node_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("test_"))
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// How one node test went.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every output matched; the largest absolute error over float outputs.
    Passed {
        /// Largest `|got - expected|` (0 for exact outputs).
        max_abs_err: f64,
    },
    /// A supported test that errored, panicked or produced wrong values.
    Failed {
        /// What went wrong.
        why: String,
    },
    /// Only supported ops, but a variant Tern rejects with a typed error (an
    /// attribute, a non-constant shape input, an element type it does not hold).
    Skipped {
        /// The converter's message, or the element type.
        why: String,
    },
    /// The model uses an op outside [`SUPPORTED_OPS`]: not Tern's claim.
    Unsupported {
        /// The first such op (`domain::Op` outside the default domain).
        op: String,
    },
}

/// One node test's result.
#[derive(Clone, Debug)]
pub struct NodeTest {
    /// Folder name (`test_conv_with_strides_padding`).
    pub name: String,
    /// Distinct op types of the model's nodes, sorted.
    pub ops: Vec<String>,
    /// What happened.
    pub outcome: Outcome,
    /// Graph inputs fed as constants (initializers from the test's own data) in
    /// the second attempt; empty when the test ran (or was skipped) as is.
    pub constant_inputs: Vec<String>,
}

impl NodeTest {
    /// True when every op is supported (the test counts towards coverage).
    pub fn eligible(&self) -> bool {
        !matches!(self.outcome, Outcome::Unsupported { .. })
    }

    /// True when the test ran with some graph inputs as constants.
    pub fn with_constant_inputs(&self) -> bool {
        !self.constant_inputs.is_empty()
    }
}

/// Runs the node test in `dir` (`model.onnx`, `test_data_set_*/{input,output}_N.pb`).
/// Panics inside the converter or runtime are caught and reported as failures.
pub fn run_node_test(dir: &Path) -> NodeTest {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let proto = match convert::read_onnx(&dir.join("model.onnx")) {
        Ok(p) => p,
        Err(e) => {
            return NodeTest {
                name,
                ops: Vec::new(),
                outcome: Outcome::Failed { why: e.to_string() },
                constant_inputs: Vec::new(),
            };
        }
    };
    let nodes = proto.graph.as_ref().map_or(&[][..], |g| &g.node[..]);
    let ops: Vec<String> = nodes
        .iter()
        .map(|n| op_name(&n.domain, &n.op_type))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let unsupported = nodes
        .iter()
        .find(|n| !(n.domain.is_empty() || n.domain == "ai.onnx") || lookup(&n.op_type).is_none());
    let constants = RefCell::new(Vec::new());
    let outcome = match unsupported {
        Some(n) => Outcome::Unsupported {
            op: op_name(&n.domain, &n.op_type),
        },
        None => guarded(|| run_supported(dir, &proto, &constants)),
    };
    NodeTest {
        name,
        ops,
        outcome,
        constant_inputs: constants.into_inner(),
    }
}

fn op_name(domain: &str, op_type: &str) -> String {
    if domain.is_empty() || domain == "ai.onnx" {
        op_type.to_string()
    } else {
        format!("{domain}::{op_type}")
    }
}

thread_local! {
    /// Set while [`guarded`] runs on this thread: the panic hook stays quiet.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic happened.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into a failure that names its message and location.
///
/// Installs (once, process-wide) a panic hook that records the location of
/// panics inside `guarded` instead of printing them, and defers to the previous
/// hook for every other panic.
fn guarded(f: impl FnOnce() -> Outcome) -> Outcome {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    result.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        let at = PANIC_AT.with(|p| p.borrow_mut().take()).unwrap_or_default();
        Outcome::Failed {
            why: format!("panicked at {at}: {msg}"),
        }
    })
}

/// ONNX element types Tern holds: float (f32) and integers/bool (i32).
fn elem_kind(elem_type: i32) -> Option<Kind> {
    match elem_type {
        1 => Some(Kind::Float),
        2..=7 | 9 | 12 | 13 => Some(Kind::Int),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
}

fn elem_type_name(t: i32) -> String {
    let name = match t {
        8 => "string",
        10 => "float16",
        11 => "float64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17..=20 => "float8",
        21 | 22 => "int4",
        23 => "float4",
        _ => "",
    };
    if name.is_empty() {
        format!("element type {t}")
    } else {
        format!("element type {t} ({name})")
    }
}

/// Skipped when a graph input or output is not a tensor Tern holds.
fn check_io_types(values: &[&ValueInfoProto]) -> Result<(), Outcome> {
    for v in values {
        match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => {
                if elem_kind(t.elem_type).is_none() {
                    return Err(Outcome::Skipped {
                        why: format!(
                            "'{}' has {}; Tern holds float32 and integer/bool (as i32) tensors",
                            v.name,
                            elem_type_name(t.elem_type)
                        ),
                    });
                }
            }
            _ => {
                return Err(Outcome::Skipped {
                    why: format!("'{}' is not a tensor (sequence, map or optional)", v.name),
                });
            }
        }
    }
    Ok(())
}

/// A decoded test tensor.
struct TestTensor {
    dims: Vec<usize>,
    kind: Kind,
    data: ConstData,
}

fn read_proto(path: &Path) -> Result<TensorProto, Outcome> {
    let fail = |why: String| Outcome::Failed {
        why: format!("{}: {why}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    TensorProto::decode(bytes.as_slice()).map_err(|e| fail(e.to_string()))
}

fn read_tensor(path: &Path) -> Result<TestTensor, Outcome> {
    let fail = |why: String| Outcome::Failed {
        why: format!("{}: {why}", path.display()),
    };
    let t = read_proto(path)?;
    let kind = elem_kind(t.data_type).ok_or_else(|| Outcome::Skipped {
        why: format!("test data has {}", elem_type_name(t.data_type)),
    })?;
    let (dims, data) = tensor_data(&t).map_err(|e| fail(e.to_string()))?;
    Ok(TestTensor { dims, kind, data })
}

/// Numbered files `{prefix}_0.pb`, `{prefix}_1.pb`... in `dir`.
fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.is_file())
        .collect()
}

/// Why an attempt stopped.
enum Stop {
    /// A final outcome (failed, or skipped for a reason constants do not cure).
    Outcome(Outcome),
    /// The converter needs input `input` (when its message names it) of node
    /// `node` as a constant.
    NeedsConstant {
        why: String,
        node: String,
        input: Option<usize>,
    },
}

impl From<Outcome> for Stop {
    fn from(o: Outcome) -> Stop {
        Stop::Outcome(o)
    }
}

/// The strict attempt, then (when the converter asks for constants) attempts
/// with more and more graph inputs as constants, recorded in `constants`.
fn run_supported(dir: &Path, proto: &ModelProto, constants: &RefCell<Vec<String>>) -> Outcome {
    let mut names: Vec<String> = Vec::new();
    loop {
        match try_run(dir, proto, &names) {
            Ok(max_abs_err) => return Outcome::Passed { max_abs_err },
            Err(Stop::Outcome(outcome)) => return outcome,
            Err(Stop::NeedsConstant { why, node, input }) => {
                let more = graph_inputs_behind(proto, &node, input, &names);
                if more.is_empty() {
                    return Outcome::Skipped { why };
                }
                names.extend(more);
                *constants.borrow_mut() = names.clone();
            }
        }
    }
}

/// `(input k)` in a converter message.
fn input_index(why: &str) -> Option<usize> {
    let rest = &why[why.find("(input ")? + "(input ".len()..];
    rest[..rest.find(')')?].parse().ok()
}

/// The graph inputs (not initializers, not in `already`) that input `input` of
/// node `node` (every input after the first when None) is computed from.
fn graph_inputs_behind(
    proto: &ModelProto,
    node: &str,
    input: Option<usize>,
    already: &[String],
) -> Vec<String> {
    let Some(g) = proto.graph.as_ref() else {
        return Vec::new();
    };
    let named = |i: usize, n: &tract_onnx::pb::NodeProto| {
        if n.name.is_empty() {
            format!("{}#{i}", n.op_type) == node
        } else {
            n.name == node
        }
    };
    let Some((_, n)) = g.node.iter().enumerate().find(|(i, n)| named(*i, n)) else {
        return Vec::new();
    };
    let mut todo: Vec<&str> = match input {
        Some(k) => n.input.get(k).map(String::as_str).into_iter().collect(),
        None => n.input.iter().skip(1).map(String::as_str).collect(),
    };
    let initializers: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    while let Some(t) = todo.pop() {
        if t.is_empty() || !seen.insert(t) || initializers.contains(t) {
            continue;
        }
        if g.input.iter().any(|i| i.name == t) {
            if !already.iter().any(|a| a == t) {
                found.push(t.to_string());
            }
        } else if let Some(p) = g.node.iter().find(|p| p.output.iter().any(|o| o == t)) {
            // Shape and Size read only their input's (static) shape.
            if !matches!(p.op_type.as_str(), "Shape" | "Size") {
                todo.extend(p.input.iter().map(String::as_str));
            }
        }
    }
    found.sort();
    found
}

/// One attempt over every data set, with the graph inputs named in `constants`
/// turned into initializers holding each set's data.
fn try_run(dir: &Path, proto: &ModelProto, constants: &[String]) -> Result<f64, Stop> {
    let failed = |why: String| Outcome::Failed { why };
    let graph_proto = proto
        .graph
        .as_ref()
        .ok_or_else(|| failed("model has no graph".into()))?;
    let initializers: HashSet<&str> = graph_proto
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let inputs: Vec<&ValueInfoProto> = graph_proto
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .collect();
    let outputs: Vec<&ValueInfoProto> = graph_proto.output.iter().collect();
    check_io_types(&inputs)?;
    check_io_types(&outputs)?;

    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| failed(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("test_data_set_")
        })
        .map(|e| e.path())
        .collect();
    sets.sort();
    if sets.is_empty() {
        return Err(failed("no test_data_set_* folder".into()).into());
    }
    let is_constant = |i: &ValueInfoProto| constants.contains(&i.name);
    let mut max_abs_err = 0f64;
    for set in &sets {
        let input_files = numbered(set, "input");
        let expected = numbered(set, "output")
            .iter()
            .map(|p| read_tensor(p))
            .collect::<Result<Vec<_>, _>>()?;
        if input_files.len() != inputs.len() || expected.len() != outputs.len() {
            return Err(failed(format!(
                "{} input and {} output files for a model with {} inputs and {} outputs",
                input_files.len(),
                expected.len(),
                inputs.len(),
                outputs.len()
            ))
            .into());
        }
        let mut model = None;
        let mut run_inputs = Vec::new();
        let mut set_inputs = Vec::new();
        for (input, file) in inputs.iter().zip(&input_files) {
            if is_constant(input) {
                let mut t = read_proto(file)?;
                t.name = input.name.clone();
                let m = model.get_or_insert_with(|| proto.clone());
                if let Some(g) = m.graph.as_mut() {
                    g.input.retain(|i| i.name != input.name);
                    g.initializer.push(t);
                }
            } else {
                run_inputs.push(*input);
                set_inputs.push(read_tensor(file)?);
            }
        }
        let err = run_set(
            model.as_ref().unwrap_or(proto),
            &run_inputs,
            &set_inputs,
            &expected,
        )?;
        max_abs_err = max_abs_err.max(err);
    }
    Ok(max_abs_err)
}

/// Converts the model for the shapes of one data set, runs it and compares.
fn run_set(
    proto: &ModelProto,
    inputs: &[&ValueInfoProto],
    data: &[TestTensor],
    expected: &[TestTensor],
) -> Result<f64, Stop> {
    let failed = |why: String| Stop::Outcome(Outcome::Failed { why });
    let convert_error = |stage: &str, e: ConvertError| match &e {
        ConvertError::UnsupportedOp { node, why, .. } if needs_constant(why) => {
            Stop::NeedsConstant {
                input: input_index(why),
                node: node.clone(),
                why: e.to_string(),
            }
        }
        ConvertError::UnsupportedOp { .. } | ConvertError::UnsupportedInput { .. } => {
            Outcome::Skipped { why: e.to_string() }.into()
        }
        other => failed(format!("{stage}: {other}")),
    };
    let options = ImportOptions {
        batch: 1,
        input_shapes: inputs
            .iter()
            .zip(data)
            .map(|(i, t)| (i.name.clone(), t.dims.clone()))
            .collect::<HashMap<_, _>>(),
    };
    let graph =
        convert::graph_from_proto(proto, &options).map_err(|e| convert_error("import", e))?;
    let converted = convert::convert(
        &graph,
        Precision::F32,
        &[],
        Method::Minmax,
        Vec::new(),
        |_| {},
    )
    .map_err(|e| convert_error("convert", e))?;
    let bytes = AlignedBytes::new(&converted.bytes);
    let runtime =
        |stage: &'static str| move |e: tern_runtime::Error| failed(format!("{stage}: {e}"));
    let model = Model::from_bytes(&bytes).map_err(runtime("load"))?;
    if model.input_count() != data.len() || model.output_count() != expected.len() {
        return Err(failed(format!(
            "the .tern model has {} inputs and {} outputs; the ONNX model {} and {}",
            model.input_count(),
            model.output_count(),
            data.len(),
            expected.len()
        )));
    }
    let mut interpreter = Interpreter::with_allocated_arena(&model).map_err(runtime("load"))?;
    for (i, t) in data.iter().enumerate() {
        let (info, bytes) = interpreter.input_mut(i).map_err(runtime("input"))?;
        if info.len() != t.data.len() {
            return Err(failed(format!(
                "input {i} '{}': the .tern input has shape {:?}, the test data {:?}",
                info.name,
                info.shape(),
                t.dims
            )));
        }
        match (info.dtype, &t.data) {
            (DType::F32, data) => {
                for (dst, v) in bytes.chunks_exact_mut(4).zip(data.to_f32()) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
            (DType::I32, ConstData::I64(values)) => {
                for (dst, &v) in bytes.chunks_exact_mut(4).zip(values) {
                    let v = i32::try_from(v).map_err(|_| Outcome::Skipped {
                        why: format!("input {i} holds {v}, outside Tern's i32"),
                    })?;
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
            (dtype, _) => {
                return Err(failed(format!(
                    "input {i} '{}' is {dtype:?} in the .tern model; the test data is {:?}",
                    info.name, t.kind
                )));
            }
        }
    }
    interpreter.invoke().map_err(runtime("invoke"))?;
    let mut max_abs_err = 0f64;
    for (i, want) in expected.iter().enumerate() {
        let out = interpreter.output(i).map_err(runtime("output"))?;
        let info = out.info;
        let got: Vec<f64> = match info.dtype {
            DType::F32 => {
                let mut v = vec![0f32; info.len()];
                out.read_f32(&mut v).map_err(runtime("output"))?;
                v.into_iter().map(f64::from).collect()
            }
            DType::I32 => out
                .bytes
                .chunks_exact(4)
                .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            other => {
                return Err(failed(format!(
                    "output {i} '{}' is {other:?} in an f32 model",
                    info.name
                )));
            }
        };
        if info.shape() != want.dims.as_slice() {
            return Err(failed(format!(
                "output {i} '{}': shape {:?}, expected {:?}",
                info.name,
                info.shape(),
                want.dims
            )));
        }
        let err = compare(&got, want).map_err(|why| {
            failed(format!(
                "output {i} '{}' (shape {:?}): {why}",
                info.name, want.dims
            ))
        })?;
        max_abs_err = max_abs_err.max(err);
    }
    Ok(max_abs_err)
}

/// True for a converter message asking for an input as a constant.
fn needs_constant(why: &str) -> bool {
    why.contains("must be a constant") || why.contains("must be constants")
}

/// Largest absolute error, or why `got` does not match `want`.
fn compare(got: &[f64], want: &TestTensor) -> Result<f64, String> {
    let expected: Vec<f64> = match &want.data {
        ConstData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ConstData::I64(v) => v.iter().map(|&x| x as f64).collect(),
    };
    if got.len() != expected.len() {
        return Err(format!("{} values, expected {}", got.len(), expected.len()));
    }
    let exact = want.kind == Kind::Int;
    let mut max_abs_err = 0f64;
    let mut bad = 0usize;
    let mut first: Option<(usize, f64, f64)> = None;
    for (k, (&g, &e)) in got.iter().zip(&expected).enumerate() {
        let ok = if g.is_nan() || e.is_nan() {
            g.is_nan() && e.is_nan()
        } else if g.is_infinite() || e.is_infinite() {
            g == e
        } else {
            let d = (g - e).abs();
            max_abs_err = max_abs_err.max(d);
            if exact {
                d == 0.0
            } else {
                d <= ATOL + RTOL * e.abs()
            }
        };
        if !ok {
            bad += 1;
            first.get_or_insert((k, g, e));
        }
    }
    match first {
        None => Ok(max_abs_err),
        Some((k, g, e)) => Err(format!(
            "{bad} of {} values differ{}; first at flat index {k}: got {g}, expected {e}; \
             max abs err {max_abs_err:.3e}",
            expected.len(),
            if exact {
                String::new()
            } else {
                format!(" beyond rtol {RTOL:e} + atol {ATOL:e}")
            }
        )),
    }
}

/// Runs `dirs` on `threads` worker threads; results in the order of `dirs`.
pub fn run_node_tests(dirs: &[PathBuf], threads: usize) -> Vec<NodeTest> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, NodeTest)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                std::thread::Builder::new()
                    .stack_size(16 << 20)
                    .spawn_scoped(s, || {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(dir) = dirs.get(i) else { break };
                            done.push((i, run_node_test(dir)));
                        }
                        done
                    })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.ok())
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    let mut out: Vec<NodeTest> = Vec::with_capacity(dirs.len());
    let mut it = results.into_iter().peekable();
    for (i, dir) in dirs.iter().enumerate() {
        match it.next_if(|(k, _)| *k == i) {
            Some((_, t)) => out.push(t),
            // A worker thread could not be spawned or died: run it here.
            None => out.push(run_node_test(dir)),
        }
    }
    out
}

/// Per-op counts over the node tests whose model contains the op.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// ONNX op type.
    pub op: &'static str,
    /// Tests whose model contains the op (any other ops included).
    pub tests: usize,
    /// Tests that ran as they are (only supported ops, not skipped).
    pub run: usize,
    /// Of those, passed.
    pub passed: usize,
    /// Of those, failed.
    pub failed: usize,
    /// Tests that ran with some graph inputs as constants (the second attempt).
    pub const_run: usize,
    /// Of those, passed.
    pub const_passed: usize,
    /// Of those, failed.
    pub const_failed: usize,
    /// Only supported ops, skipped as an unsupported variant.
    pub skipped: usize,
}

/// Results of a node-test run, per test and per supported op.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every test, sorted by name.
    pub tests: Vec<NodeTest>,
    /// One entry per op of [`SUPPORTED_OPS`], in its order. A test counts for
    /// every op type its model contains (`_expanded` tests included).
    pub ops: Vec<OpCounts>,
}

impl Report {
    /// Aggregates `tests`.
    pub fn new(mut tests: Vec<NodeTest>) -> Report {
        tests.sort_by(|a, b| a.name.cmp(&b.name));
        let ops = SUPPORTED_OPS
            .iter()
            .map(|s| {
                let mut c = OpCounts {
                    op: s.op,
                    ..OpCounts::default()
                };
                for t in tests.iter().filter(|t| t.ops.iter().any(|o| o == s.op)) {
                    c.tests += 1;
                    let constant = t.with_constant_inputs();
                    match (&t.outcome, constant) {
                        (Outcome::Passed { .. }, false) => {
                            c.run += 1;
                            c.passed += 1;
                        }
                        (Outcome::Failed { .. }, false) => {
                            c.run += 1;
                            c.failed += 1;
                        }
                        (Outcome::Passed { .. }, true) => {
                            c.const_run += 1;
                            c.const_passed += 1;
                        }
                        (Outcome::Failed { .. }, true) => {
                            c.const_run += 1;
                            c.const_failed += 1;
                        }
                        (Outcome::Skipped { .. }, _) => c.skipped += 1,
                        (Outcome::Unsupported { .. }, _) => {}
                    }
                }
                c
            })
            .collect();
        Report { tests, ops }
    }

    fn count(&self, constant: bool, f: impl Fn(&Outcome) -> bool) -> usize {
        self.tests
            .iter()
            .filter(|t| t.with_constant_inputs() == constant && f(&t.outcome))
            .count()
    }

    /// Tests that use only supported ops.
    pub fn eligible(&self) -> usize {
        self.tests.iter().filter(|t| t.eligible()).count()
    }

    /// Tests that ran as they are (passed or failed).
    pub fn run(&self) -> usize {
        self.passed() + self.failed()
    }

    /// Tests that passed as they are.
    pub fn passed(&self) -> usize {
        self.count(false, |o| matches!(o, Outcome::Passed { .. }))
    }

    /// Tests that failed as they are.
    pub fn failed(&self) -> usize {
        self.count(false, |o| matches!(o, Outcome::Failed { .. }))
    }

    /// Tests that ran with some graph inputs as constants (passed or failed).
    pub fn const_run(&self) -> usize {
        self.const_passed() + self.const_failed()
    }

    /// Tests that passed with some graph inputs as constants.
    pub fn const_passed(&self) -> usize {
        self.count(true, |o| matches!(o, Outcome::Passed { .. }))
    }

    /// Tests that failed with some graph inputs as constants.
    pub fn const_failed(&self) -> usize {
        self.count(true, |o| matches!(o, Outcome::Failed { .. }))
    }

    /// Tests skipped as unsupported variants of supported ops (in both attempts).
    pub fn skipped(&self) -> usize {
        self.tests
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Skipped { .. }))
            .count()
    }

    /// The failed tests, in either mode.
    pub fn failures(&self) -> impl Iterator<Item = &NodeTest> {
        self.tests
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Failed { .. }))
    }

    /// `ONNX node tests: N in the wheel, M use only supported ops: ...`.
    pub fn coverage_line(&self) -> String {
        format!(
            "ONNX node tests: {} in the wheel, {} use only supported ops: {} run, {} passed, \
             {} failed, {} skipped as unsupported variants; {} more run with their \
             weight/shape inputs as constants: {} passed, {} failed",
            self.tests.len(),
            self.eligible(),
            self.run(),
            self.passed(),
            self.failed(),
            self.skipped(),
            self.const_run(),
            self.const_passed(),
            self.const_failed()
        )
    }

    /// A plain-text per-op table for logs.
    pub fn ops_text(&self) -> String {
        let mut s = format!(
            "{:<20} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>9}\n",
            "op", "tests", "run", "passed", "failed", "skipped", "const run", "const ok"
        );
        for c in &self.ops {
            let _ = writeln!(
                s,
                "{:<20} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>9}",
                c.op, c.tests, c.run, c.passed, c.failed, c.skipped, c.const_run, c.const_passed
            );
        }
        s
    }
}

/// The supported-ops table of `docs/ops.md`: one row per op of
/// [`SUPPORTED_OPS`] with its node-test results, then the coverage line.
pub fn ops_markdown(report: &Report) -> String {
    let mut s = String::from(
        "| Op | int8 | Notes | Node tests passed/run (skipped) | With constant inputs passed/run |\n\
         |---|---|---|---|---|\n",
    );
    for sup in SUPPORTED_OPS {
        let counts = report.ops.iter().find(|c| c.op == sup.op);
        let tests = match counts {
            Some(c) if c.run + c.skipped > 0 => {
                let mut t = format!("{}/{}", c.passed, c.run);
                if c.skipped > 0 {
                    let _ = write!(t, " ({})", c.skipped);
                }
                t
            }
            Some(c) if c.const_run > 0 => "0/0".to_string(),
            _ => "none".to_string(),
        };
        let constant = match counts {
            Some(c) if c.const_run > 0 => format!("{}/{}", c.const_passed, c.const_run),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            sup.op,
            sup.int8.label(),
            sup.notes.replace('|', "\\|"),
            tests,
            constant
        );
    }
    let _ = write!(
        s,
        "\n{}. A test counts for every op its model contains; float outputs match within \
         rtol {RTOL:e} + atol {ATOL:e}, integer and bool outputs exactly.\n",
        report.coverage_line()
    );
    s
}

#[cfg(test)]
mod tests {
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
        assert!(
            why.contains("boom") && why.contains("conformance.rs"),
            "{why}"
        );
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
        use crate::onnx::builder::{Dim, GraphBuilder};
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
}
