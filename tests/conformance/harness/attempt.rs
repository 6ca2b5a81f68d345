//! Running one supported node test: the strict attempt, then attempts with
//! more and more graph inputs fed as constants from the test's own data, each
//! over every data set (convert in f32, run, compare).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tern_export::convert::graph::ConstData;
use tern_export::convert::import::ImportOptions;
use tern_export::convert::{self, ConvertError, Method, Precision};
use tern_runtime::{AlignedBytes, DType, Interpreter, Model};
use tract_onnx::pb::{ModelProto, ValueInfoProto};

use super::Outcome;
use super::tensors::{TestTensor, check_io_types, compare, numbered, read_proto, read_tensor};
/// Why an attempt stopped.
pub(super) enum Stop {
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
pub(super) fn run_supported(
    dir: &Path,
    proto: &ModelProto,
    constants: &RefCell<Vec<String>>,
) -> Outcome {
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
pub(super) fn input_index(why: &str) -> Option<usize> {
    let rest = &why[why.find("(input ")? + "(input ".len()..];
    rest[..rest.find(')')?].parse().ok()
}

/// The graph inputs (not initializers, not in `already`) that input `input` of
/// node `node` (every input after the first when None) is computed from.
pub(super) fn graph_inputs_behind(
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
pub(super) fn try_run(dir: &Path, proto: &ModelProto, constants: &[String]) -> Result<f64, Stop> {
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
pub(super) fn run_set(
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
pub(super) fn needs_constant(why: &str) -> bool {
    why.contains("must be a constant") || why.contains("must be constants")
}
