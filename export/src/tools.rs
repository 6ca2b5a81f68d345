//! `tern eval`, `tern run` and `tern inspect`: tools over `.tern` files, running them
//! through the same `tern-runtime` that firmware links. They build with or without the
//! `host` feature (only `eval --reference`, which runs the ONNX model through tract,
//! needs it), so they run on the host and on a Cortex-A board alike.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_runtime::{Interpreter, Model, Quant, Storage};

use crate::classify::{argmax_rows, correct_predictions};
use crate::data::fashion_mnist::{CLASSES, Dataset, PIXELS, Split};
use crate::error::{Error, Result};

/// Maps a `.tern` file, naming the path in any error.
pub fn open_model(path: &Path) -> Result<Model<'static>> {
    Model::open(path).map_err(|source| Error::Runtime {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// A dataset spec `fashion-mnist:SPLIT[:N]`: the split and how many images.
pub fn parse_dataset(spec: &str) -> Result<(Split, Option<usize>)> {
    let bad = |why: &str| Error::InvalidOption {
        option: "--dataset",
        reason: format!("'{spec}': {why} (expected fashion-mnist:train|test[:N])"),
    };
    let mut parts = spec.split(':');
    if parts.next() != Some("fashion-mnist") {
        return Err(bad("unknown dataset"));
    }
    let split = match parts.next() {
        Some("train") => Split::Train,
        Some("test") | None => Split::Test,
        Some(_) => return Err(bad("unknown split")),
    };
    let limit = parts
        .next()
        .map(|n| n.parse::<usize>().map_err(|_| bad("N is not a number")))
        .transpose()?;
    Ok((split, limit))
}

/// What `tern eval` measured.
#[derive(Clone, Debug)]
pub struct EvalReport {
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy of the `.tern` model.
    pub accuracy: f64,
    /// Mean batch-1 `invoke` time in microseconds.
    pub micros_per_image: f64,
    /// CRC-32 (IEEE) of output 0's raw bytes, as stored in the arena (int8 values for
    /// an int8 output, little-endian f32 for an f32 one), over all images in order:
    /// the same checksum the firmware computes, to check that a board's outputs are
    /// bit-identical to the host's.
    pub output_crc32: u32,
    /// Reference comparison, when a reference ONNX was given.
    pub reference: Option<ReferenceComparison>,
}

/// The `.tern` model against the f32 ONNX model through tract.
#[derive(Clone, Debug)]
pub struct ReferenceComparison {
    /// Top-1 accuracy of the ONNX model through tract.
    pub accuracy: f64,
    /// Fraction of images where both models pick the same class.
    pub agreement: f64,
    /// Largest absolute difference of any output value.
    pub max_abs_diff: f32,
    /// Mean absolute difference of the output values.
    pub mean_abs_diff: f32,
}

/// Outputs (as f32, dequantized) of `model` for every image, and the mean invoke time.
pub fn run_images(
    model: &Model<'_>,
    images: &[f32],
) -> std::result::Result<(Vec<f32>, f64), tern_runtime::Error> {
    let run = run_images_checksummed(model, images)?;
    Ok((run.outputs, run.micros_per_image))
}

/// What [`run_images_checksummed`] measured.
#[derive(Clone, Debug)]
pub struct ImagesRun {
    /// Output 0 of every image, dequantized to f32, image after image.
    pub outputs: Vec<f32>,
    /// Mean batch-1 `invoke` time in microseconds.
    pub micros_per_image: f64,
    /// CRC-32 (IEEE) of output 0's raw arena bytes over all images in order
    /// (see [`EvalReport::output_crc32`]).
    pub output_crc32: u32,
}

/// [`run_images`], also hashing output 0's raw bytes after every invoke.
pub fn run_images_checksummed(
    model: &Model<'_>,
    images: &[f32],
) -> std::result::Result<ImagesRun, tern_runtime::Error> {
    let mut interp = Interpreter::with_allocated_arena(model)?;
    let per = model.input(0)?.len();
    let out_len = model.output(0)?.len();
    let n = images.len() / per;
    let mut outputs = vec![0f32; n * out_len];
    let mut crc = crc32fast::Hasher::new();
    let mut seconds = 0.0;
    for (i, image) in images.chunks_exact(per).enumerate() {
        interp.set_input_f32(0, image)?;
        let start = Instant::now();
        interp.invoke()?;
        seconds += start.elapsed().as_secs_f64();
        let output = interp.output(0)?;
        crc.update(output.bytes);
        output.read_f32(&mut outputs[i * out_len..(i + 1) * out_len])?;
    }
    Ok(ImagesRun {
        outputs,
        micros_per_image: 1e6 * seconds / n.max(1) as f64,
        output_crc32: crc.finalize(),
    })
}

/// Evaluation inputs loaded once: Fashion-MNIST images and labels and, when a
/// reference ONNX model is given, its outputs through tract.
pub struct EvalSet {
    images: Vec<f32>,
    labels: Vec<u8>,
    reference: Option<Vec<f32>>,
}

impl EvalSet {
    /// The first `limit` images of `split` (all if `None`), with `reference`'s outputs.
    pub fn load(split: Split, limit: Option<usize>, reference: Option<&Path>) -> Result<EvalSet> {
        let mut data = Dataset::load(split)?;
        if let Some(n) = limit {
            data.truncate(n);
        }
        let indices: Vec<usize> = (0..data.len()).collect();
        let images = data.images_f32(&indices);
        let reference = reference
            .map(|onnx| onnx_outputs(onnx, &images))
            .transpose()?;
        Ok(EvalSet {
            labels: data.labels_at(&indices),
            images,
            reference,
        })
    }
}

/// Outputs of the ONNX model `onnx` on `images`, in f32 through tract.
#[cfg(feature = "host")]
fn onnx_outputs(onnx: &Path, images: &[f32]) -> Result<Vec<f32>> {
    crate::onnx::reference::OnnxReference::load(onnx, 100)?.predict(images)
}

/// Without the `host` feature there is no tract to run an ONNX model.
#[cfg(not(feature = "host"))]
fn onnx_outputs(_onnx: &Path, _images: &[f32]) -> Result<Vec<f32>> {
    Err(Error::HostOnly {
        option: "--reference",
    })
}

/// Evaluates `path` on Fashion-MNIST, optionally against `reference`.
pub fn eval(
    path: &Path,
    split: Split,
    limit: Option<usize>,
    reference: Option<&Path>,
) -> Result<EvalReport> {
    eval_on(path, &EvalSet::load(split, limit, reference)?)
}

/// Evaluates `path` on an already loaded [`EvalSet`].
pub fn eval_on(path: &Path, set: &EvalSet) -> Result<EvalReport> {
    let model = open_model(path)?;
    let rt = |source: tern_runtime::Error| Error::Runtime {
        path: path.to_owned(),
        source: Box::new(source),
    };
    let labels = &set.labels;
    let per_input = model.input(0).map_err(rt)?.len();
    if per_input != PIXELS {
        return Err(Error::InvalidOption {
            option: "model",
            reason: format!(
                "{} takes {per_input} values per input, not a 28x28 image",
                path.display(),
            ),
        });
    }
    let ImagesRun {
        outputs,
        micros_per_image,
        output_crc32,
    } = run_images_checksummed(&model, &set.images).map_err(rt)?;
    let predicted = argmax_rows(&outputs, CLASSES);
    let correct = correct_predictions(&predicted, labels);
    let reference = set.reference.as_ref().map(|ref_out| {
        let ref_pred = argmax_rows(ref_out, CLASSES);
        let ref_correct = correct_predictions(&ref_pred, labels);
        let agree = ref_pred
            .iter()
            .zip(&predicted)
            .filter(|(a, b)| a == b)
            .count();
        let diffs: Vec<f32> = ref_out
            .iter()
            .zip(&outputs)
            .map(|(a, b)| (a - b).abs())
            .collect();
        ReferenceComparison {
            accuracy: ref_correct as f64 / labels.len() as f64,
            agreement: agree as f64 / labels.len() as f64,
            max_abs_diff: diffs.iter().fold(0f32, |m, &d| m.max(d)),
            mean_abs_diff: diffs.iter().sum::<f32>() / diffs.len().max(1) as f32,
        }
    });
    Ok(EvalReport {
        images: labels.len(),
        accuracy: correct as f64 / labels.len() as f64,
        micros_per_image,
        output_crc32,
        reference,
    })
}

/// Reads a `.npy` file of f32 (or f64) values.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    use ndarray_npy::ReadNpyExt;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bad = |e: ndarray_npy::ReadNpyError| Error::InvalidOption {
        option: "--input",
        reason: format!("{}: {e}", path.display()),
    };
    match ndarray::ArrayD::<f32>::read_npy(&file) {
        Ok(a) => Ok((a.shape().to_vec(), a.iter().copied().collect())),
        Err(_) => {
            let open = || std::fs::File::open(path).map_err(|e| Error::io(path, e));
            if let Ok(a) = ndarray::ArrayD::<f64>::read_npy(open()?) {
                return Ok((a.shape().to_vec(), a.iter().map(|&v| v as f32).collect()));
            }
            // Integer inputs (token ids): exact as f32 up to 2^24; the runtime
            // converts them back to i32 for integer input tensors.
            if let Ok(a) = ndarray::ArrayD::<i64>::read_npy(open()?) {
                return Ok((a.shape().to_vec(), a.iter().map(|&v| v as f32).collect()));
            }
            let a = ndarray::ArrayD::<i32>::read_npy(open()?).map_err(bad)?;
            Ok((a.shape().to_vec(), a.iter().map(|&v| v as f32).collect()))
        }
    }
}

/// `tern run`: one inference from `input` (.npy: f32, f64, i64 or i32) to `output` (.npy, f32).
pub fn run_npy(model_path: &Path, input: &Path, output: &Path) -> Result<Vec<usize>> {
    use ndarray_npy::WriteNpyExt;
    let model = open_model(model_path)?;
    let rt = |source: tern_runtime::Error| Error::Runtime {
        path: model_path.to_owned(),
        source: Box::new(source),
    };
    let (_, values) = read_npy(input)?;
    let mut interp = Interpreter::with_allocated_arena(&model).map_err(rt)?;
    interp.set_input_f32(0, &values).map_err(rt)?;
    interp.invoke().map_err(rt)?;
    let out = interp.output(0).map_err(rt)?;
    let shape = out.info.shape().to_vec();
    let mut values = vec![0f32; out.info.len()];
    out.read_f32(&mut values).map_err(rt)?;
    let array = ndarray::ArrayD::from_shape_vec(shape.clone(), values).map_err(|e| {
        Error::InvalidOption {
            option: "output",
            reason: e.to_string(),
        }
    })?;
    let file = std::fs::File::create(output).map_err(|e| Error::io(output, e))?;
    array.write_npy(file).map_err(|e| Error::InvalidOption {
        option: "--output",
        reason: format!("{}: {e}", output.display()),
    })?;
    Ok(shape)
}

/// `tern inspect`: header, metadata, tensors, ops and the arena plan.
pub fn inspect(path: &Path, verify: bool) -> Result<String> {
    let model = open_model(path)?;
    let mut s = String::new();
    let (major, minor) = model.version();
    let file_len = model.bytes().len();
    let _ = writeln!(
        s,
        "{}: .tern format {major}.{minor}, {} bytes, written by {}",
        path.display(),
        file_len,
        model.producer()
    );
    let _ = writeln!(
        s,
        "ops: {}, tensors: {}, arena: {} bytes planned ({} with alignment slack)",
        model.op_count(),
        model.tensor_count(),
        model.planned_arena_size(),
        model.arena_size()
    );
    if verify {
        model.verify_data().map_err(|source| Error::Runtime {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        let _ = writeln!(s, "data checksum: ok");
    }
    for (k, v) in model.metadata() {
        let _ = writeln!(s, "  {k} = {v}");
    }
    for (kind, count) in [
        ("input", model.input_count()),
        ("output", model.output_count()),
    ] {
        for i in 0..count {
            let t = if kind == "input" {
                model.input(i)
            } else {
                model.output(i)
            };
            if let Ok(t) = t {
                let _ = writeln!(
                    s,
                    "{kind} {i}: '{}' {} {:?} {}",
                    t.name,
                    t.dtype.name(),
                    t.shape(),
                    quant_text(&t.quant)
                );
            }
        }
    }
    let _ = writeln!(s, "\nops:");
    for i in 0..model.op_count() {
        let Some(op) = model.op(i) else { continue };
        let y = model.tensor(op.outputs[0] as usize);
        let _ = writeln!(
            s,
            "  #{i:<3} {:<16} {:<36} -> {:?} {}",
            op.opcode.name(),
            op.name,
            y.map(|t| t.shape().to_vec()).unwrap_or_default(),
            y.map(|t| t.dtype.name()).unwrap_or("?")
        );
    }
    let _ = writeln!(
        s,
        "\ntensors (arena plan: offset..end bytes; constants: data offset):"
    );
    let mut rows: Vec<_> = (0..model.tensor_count())
        .filter_map(|t| model.tensor(t))
        .collect();
    rows.sort_by_key(|t| (t.storage == Storage::Constant, t.offset));
    for t in rows {
        let place = match t.storage {
            Storage::Arena => format!("arena {:>8}..{:<8}", t.offset, t.offset + t.byte_len),
            Storage::Constant => format!("const {:>8} +{:<7}", t.offset, t.byte_len),
        };
        let _ = writeln!(
            s,
            "  {place} {:<4} {:<20} {} {}",
            t.dtype.name(),
            format!("{:?}", t.shape()),
            t.name,
            quant_text(&t.quant)
        );
    }
    Ok(s)
}

/// `tern inspect --resolver rust|c`: the smallest op resolver for the model, as
/// source (only its ops, int8 or float kernels as its operand types need).
pub fn resolver_source(path: &Path, language: &str) -> Result<String> {
    use tern_runtime::ops::{Language, resolver_source};
    let model = open_model(path)?;
    let language = if language == "c" {
        Language::C
    } else {
        Language::Rust
    };
    let mut s = String::new();
    resolver_source(&model, language, &mut s).map_err(|e| Error::InvalidOption {
        option: "--resolver",
        reason: e.to_string(),
    })?;
    Ok(s)
}

/// `tern inspect --backend NAME`: the partitions an offload backend would take
/// (maximal runs of the ops it claims), their boundary tensors and weights, and the
/// ops left to the CPU.
pub fn inspect_partitions(path: &Path, backend: &str) -> Result<String> {
    use tern_runtime::backend::{Backend, loopback::Loopback, partitions};
    let model = open_model(path)?;
    let backend: Box<dyn Backend> = match backend {
        "loopback" => Box::new(Loopback::new()),
        other => {
            return Err(Error::InvalidOption {
                option: "--backend",
                reason: format!("unknown backend '{other}' (known: loopback)"),
            });
        }
    };
    let mut s = format!("\npartitions for backend '{}':\n", backend.name());
    let names = |ts: &mut dyn Iterator<Item = tern_runtime::TensorInfo<'_>>| {
        ts.map(|t| t.name.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut next_cpu = 0;
    let cpu_run = |s: &mut String, from: usize, to: usize| {
        if from < to {
            let ops: Vec<String> = (from..to)
                .filter_map(|i| model.op(i).map(|op| format!("#{i} {}", op.opcode.name())))
                .collect();
            let _ = writeln!(s, "  cpu          ops {from}..{to}: {}", ops.join(", "));
        }
    };
    for p in partitions(&model, &*backend) {
        cpu_run(&mut s, next_cpu, p.first_op);
        let ops: Vec<String> = p
            .ops()
            .map(|op| format!("#{} {}", op.index, op.opcode.name()))
            .collect();
        let weight_bytes: usize = p.constants().map(|t| t.byte_len).sum();
        let _ = writeln!(
            s,
            "  partition {} ops {}..{}: {}\n      inputs: {}; outputs: {}; constants: {} tensors, {} bytes; cpu fallback: {}",
            p.index,
            p.first_op,
            p.end_op,
            ops.join(", "),
            names(&mut p.inputs()),
            names(&mut p.outputs()),
            p.constants().count(),
            weight_bytes,
            if p.fallback_safe() {
                "yes"
            } else {
                "until the backend writes (outputs reuse input bytes)"
            },
        );
        next_cpu = p.end_op;
    }
    cpu_run(&mut s, next_cpu, model.op_count());
    Ok(s)
}

fn quant_text(q: &Quant) -> String {
    match q {
        Quant::None => String::new(),
        Quant::PerTensor { scale, zero_point } => {
            format!("(scale {scale:.6}, zero point {zero_point})")
        }
        Quant::PerChannel { scales } => format!("(per-channel, scales in tensor #{scales})"),
    }
}

/// Calibration samples from `fashion-mnist:SPLIT:N` or a folder of `.npy` files.
pub fn calibration_samples(spec: &str) -> Result<Vec<Vec<f32>>> {
    if spec.starts_with("fashion-mnist") {
        let (split, limit) = parse_dataset(spec)?;
        let mut data = Dataset::load(split)?;
        let n = limit.unwrap_or(1000).min(data.len());
        // Spread the samples over the split rather than taking its head.
        let step = data.len() / n.max(1);
        let indices: Vec<usize> = (0..n).map(|i| i * step).collect();
        let images = data.images_f32(&indices);
        data.truncate(0);
        return Ok(images.chunks_exact(PIXELS).map(<[f32]>::to_vec).collect());
    }
    let dir = PathBuf::from(spec);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "npy"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::InvalidOption {
            option: "--calibration-data",
            reason: format!("{} holds no .npy files", dir.display()),
        });
    }
    files.iter().map(|f| read_npy(f).map(|(_, v)| v)).collect()
}
