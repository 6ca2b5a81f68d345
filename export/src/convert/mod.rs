//! ONNX -> `.tern` conversion (`tern convert`): import, graph rewrites,
//! calibration and quantization, arena planning, and the file writer.
//!
//! Everything costly happens here, once, so that the runtime only reads a
//! validated file and runs it.

pub mod calibrate;
pub mod file;
pub mod fusion;
pub mod graph;
pub mod import;
pub mod lower;
pub mod mixed;
pub mod passes;
pub mod support;

use std::path::{Path, PathBuf};

use tern_runtime::format::DType;
use tract_onnx::prelude::Framework;

pub use calibrate::Method;
use file::{FileModel, Placement, Storage};
use graph::Graph;

/// Errors of the converter.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// An ONNX op (or attribute) Tern has no kernel for.
    #[error("unsupported ONNX op {op_type} (node '{node}', opset {opset}): {why}")]
    UnsupportedOp {
        /// ONNX op type.
        op_type: String,
        /// Node name.
        node: String,
        /// Model opset.
        opset: i64,
        /// What exactly is unsupported.
        why: String,
    },
    /// The ONNX model is malformed.
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
    /// Reading the ONNX file failed.
    #[error("cannot read ONNX model {path}: {message}")]
    Read {
        /// File.
        path: PathBuf,
        /// tract's message.
        message: String,
    },
    /// The runtime refused the model the converter wrote (a converter bug).
    #[error("runtime error: {0}")]
    Runtime(Box<tern_runtime::Error>),
    /// A graph input's element type has no Tern tensor type.
    #[error(
        "graph input '{input}' has ONNX element type {elem_type}; Tern takes float, int32, \
         int64 (run as i32) and bool inputs"
    )]
    UnsupportedInput {
        /// Input name.
        input: String,
        /// ONNX element type code.
        elem_type: i32,
    },
    /// A graph input has a symbolic dimension and no `--input-shape` for it.
    #[error(
        "graph input '{input}' has a symbolic dimension {dim} at axis {axis}; give its \
         concrete shape with --input-shape {input}=d0,d1,... (Tern converts static shapes only)"
    )]
    SymbolicDim {
        /// Input name.
        input: String,
        /// Axis of the symbolic dimension.
        axis: usize,
        /// The dimension's name (`'seq'`), or `unnamed`.
        dim: String,
    },
    /// Calibration data could not be used.
    #[error("calibration data: {0}")]
    Calibration(String),
    /// The model exceeds a limit of the `.tern` format (a 32-bit arena, dimensions
    /// or counts).
    #[error("model too large for the .tern format: {0}")]
    TooLarge(String),
}

impl From<tern_runtime::Error> for ConvertError {
    fn from(e: tern_runtime::Error) -> Self {
        ConvertError::Runtime(Box::new(e))
    }
}

/// Precision of the converted model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// Float weights and activations.
    F32,
    /// f16 weights (half the size), f32 compute.
    F16,
    /// int8 weights and activations (TFLite int8 spec).
    Int8,
    /// int8 where it costs little, f16/f32 for the layers that need it (see `mixed`).
    Auto,
}

impl Precision {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
            Precision::Auto => "auto",
        }
    }

    /// True when conversion needs calibration samples.
    pub fn needs_calibration(self) -> bool {
        matches!(self, Precision::Int8 | Precision::Auto)
    }
}

/// What `convert` produced.
pub struct Converted {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The model as written (tensors, ops, arena offsets).
    pub file: FileModel,
    /// The arena plan.
    pub plan: Vec<Placement>,
    /// `--precision auto`: what was chosen per layer, and the measured result.
    pub auto: Option<mixed::AutoPlan>,
}

/// Reads `path` and builds the optimized graph (batch size `batch` for a symbolic
/// first dimension) of a single-input model.
pub fn load_graph(path: &Path, batch: usize) -> Result<Graph, ConvertError> {
    let options = import::ImportOptions {
        batch,
        ..Default::default()
    };
    let g = load_graph_with(path, &options)?;
    if g.inputs.len() != 1 {
        return Err(ConvertError::Invalid(format!(
            "{} graph inputs; this command takes single-input models",
            g.inputs.len()
        )));
    }
    Ok(g)
}

/// Reads `path` and builds the optimized graph, with any number of inputs.
pub fn load_graph_with(
    path: &Path,
    options: &import::ImportOptions,
) -> Result<Graph, ConvertError> {
    let proto = read_onnx(path)?;
    graph_from_proto(&proto, options)
}

/// Parses the ONNX protobuf at `path`.
pub fn read_onnx(path: &Path) -> Result<tract_onnx::pb::ModelProto, ConvertError> {
    tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| ConvertError::Read {
            path: path.to_owned(),
            message: format!("{e:#}"),
        })
}

/// Imports and optimizes a parsed ONNX model.
pub fn graph_from_proto(
    proto: &tract_onnx::pb::ModelProto,
    options: &import::ImportOptions,
) -> Result<Graph, ConvertError> {
    let mut g = import::import(proto, options)?;
    passes::optimize(&mut g);
    Ok(g)
}

/// Converts `g` at `precision`; int8 needs `calibration` samples (one input each).
pub fn convert(
    g: &Graph,
    precision: Precision,
    calibration: &[Vec<f32>],
    method: Method,
    metadata: Vec<(String, String)>,
    progress: impl FnMut(usize),
) -> Result<Converted, ConvertError> {
    convert_with(
        g,
        precision,
        calibration,
        method,
        &mixed::ConvertOptions::default(),
        metadata,
        progress,
    )
}

/// [`convert`] with the quality target of `--precision auto` and the arena choice.
pub fn convert_with(
    g: &Graph,
    precision: Precision,
    calibration: &[Vec<f32>],
    method: Method,
    options: &mixed::ConvertOptions,
    metadata: Vec<(String, String)>,
    progress: impl FnMut(usize),
) -> Result<Converted, ConvertError> {
    let ranges = if precision.needs_calibration() {
        if calibration.is_empty() {
            return Err(ConvertError::Calibration(
                "int8 needs calibration samples".into(),
            ));
        }
        calibrate::calibrate(g, calibration, method, progress)?
    } else {
        lower::Ranges::new()
    };
    let auto = &options.auto;
    let auto_plan = if precision == Precision::Auto {
        Some(mixed::choose(g, &ranges, calibration, auto)?)
    } else {
        None
    };
    let mut file = match &auto_plan {
        Some(a) => lower::lower_plan(g, &a.plan, &ranges)?,
        None => lower::lower(g, precision, &ranges)?,
    };
    file.metadata = metadata;
    file.metadata
        .push(("tern.precision".into(), precision.name().into()));
    if let Some(a) = &auto_plan {
        file.metadata.push((
            "tern.auto".into(),
            format!(
                "target {}; measured agreement {:.2}%, output SQNR {:.1} dB on {} samples",
                match auto.min_sqnr_db {
                    Some(db) => format!("output SQNR >= {db} dB"),
                    None => format!("agreement drop <= {} pp", auto.max_agreement_drop),
                },
                a.agreement,
                a.sqnr_db,
                a.samples
            ),
        ));
    }
    if precision.needs_calibration() {
        let m = format!("{method:?}").to_lowercase();
        file.metadata.push((
            "tern.calibration".into(),
            format!("{m}, {} samples", calibration.len()),
        ));
    }
    if options.small_arena {
        file.shrink_scratch();
    }
    let plan = file.plan_arena()?;
    let bytes = file.to_bytes(&format!("tern-export {}", env!("CARGO_PKG_VERSION")));
    // The runtime must accept what we wrote.
    let aligned = tern_runtime::AlignedBytes::new(&bytes);
    tern_runtime::Model::from_bytes(&aligned)?;
    Ok(Converted {
        bytes,
        file,
        plan,
        auto: auto_plan,
    })
}

/// Multiply-accumulates of one op: convolutions and fully connected layers (the
/// rest count 0).
fn op_macs(f: &FileModel, op: &file::OpDesc) -> u64 {
    let out = &f.tensors[op.output as usize];
    let weight = op
        .inputs
        .get(1)
        .filter(|&&t| t != tern_runtime::format::NONE_INDEX)
        .map(|&t| &f.tensors[t as usize]);
    match (op.opcode, weight) {
        (tern_runtime::Opcode::Conv2d | tern_runtime::Opcode::ConvTranspose2d, Some(w)) => {
            (out.shape.iter().product::<usize>() * w.shape[1..].iter().product::<usize>()) as u64
        }
        (tern_runtime::Opcode::FullyConnected, Some(w)) => {
            (out.shape.iter().product::<usize>() * w.shape[1]) as u64
        }
        _ => 0,
    }
}

impl Converted {
    /// Multiply-accumulates of one inference, as the summary counts them.
    pub fn total_macs(&self) -> u64 {
        self.file.ops.iter().map(|op| op_macs(&self.file, op)).sum()
    }

    /// The per-op summary table and totals printed by `tern convert`.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let f = &self.file;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<4} {:<34} {:<16} {:<18} {:>10} {:>8} {:>12}",
            "#", "node", "op", "output shape", "params", "prec", "MACs"
        );
        let mut total_macs = 0u64;
        let mut total_params = 0usize;
        for (i, op) in f.ops.iter().enumerate() {
            let out = &f.tensors[op.output as usize];
            let params: usize = op
                .inputs
                .iter()
                .filter(|&&t| t != tern_runtime::format::NONE_INDEX)
                .map(|&t| &f.tensors[t as usize])
                .filter(|t| matches!(t.storage, Storage::Constant(_)))
                .map(|t| t.shape.iter().product::<usize>())
                .sum();
            let weight = op
                .inputs
                .get(1)
                .filter(|&&t| t != tern_runtime::format::NONE_INDEX)
                .map(|&t| &f.tensors[t as usize]);
            let macs = op_macs(f, op);
            total_macs += macs;
            total_params += params;
            let input_dtype = op
                .inputs
                .first()
                .filter(|&&t| t != tern_runtime::format::NONE_INDEX)
                .map(|&t| f.tensors[t as usize].dtype);
            let prec = match (out.dtype, weight.map(|w| w.dtype)) {
                (DType::I8, _) => "int8",
                (_, Some(DType::I8)) if input_dtype == Some(DType::I8) => "int8",
                (_, Some(DType::F16)) => "f16w",
                _ => "f32",
            };
            let mut name = op.name.clone();
            if name.len() > 34 {
                name = format!("{}..", &name[..name.floor_char_boundary(32)]);
            }
            let _ = writeln!(
                s,
                "{:<4} {:<34} {:<16} {:<18} {:>10} {:>8} {:>12}",
                i,
                name,
                op.opcode.name(),
                format!("{:?}", out.shape),
                params,
                prec,
                macs
            );
        }
        let _ = writeln!(
            s,
            "total: {} ops, {} parameters, {:.2} MMACs, file {:.1} KiB, arena {:.1} KiB ({} buffers planned greedy-by-size; sum of buffers {:.1} KiB)",
            f.ops.len(),
            total_params,
            total_macs as f64 / 1e6,
            self.bytes.len() as f64 / 1024.0,
            f.arena_size as f64 / 1024.0,
            self.plan.len(),
            self.plan.iter().map(|p| p.size).sum::<usize>() as f64 / 1024.0,
        );
        if let Some(a) = &self.auto {
            let _ = writeln!(
                s,
                "\nprecision per layer (--precision auto; sensitivity = output SQNR with only that \
                 layer in int8, on {} calibration samples):",
                a.samples
            );
            let _ = writeln!(
                s,
                "{:<34} {:>6} {:>9} {:>9}  why",
                "node", "prec", "SQNR dB", "agree %"
            );
            for c in &a.choices {
                let mut name = c.node.clone();
                if name.len() > 34 {
                    name = format!("{}..", &name[..name.floor_char_boundary(32)]);
                }
                let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
                let _ = writeln!(
                    s,
                    "{:<34} {:>6} {:>9} {:>9}  {}",
                    name,
                    c.precision.name(),
                    num(c.sqnr_alone_db),
                    num(c.agreement_alone),
                    c.why
                );
            }
            let _ = writeln!(
                s,
                "chosen model: top-1 agreement with fp32 {:.2}%, output SQNR {:.1} dB",
                a.agreement, a.sqnr_db
            );
        }
        s
    }
}
