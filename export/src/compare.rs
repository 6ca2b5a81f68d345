//! `tern compare`: where a converted `.tern` model loses accuracy, tensor by tensor
//! (in the spirit of TFLite's `QuantizationDebugger` and ONNX Runtime's
//! `qdq_loss_debug`).
//!
//! The reference is the ONNX model lowered to f32 in memory and run by the Tern
//! runtime itself: that path matches tract and onnxruntime to about 1e-6 on the
//! test fixtures, and it produces every intermediate tensor under its ONNX name.
//! The candidate `.tern` runs the same inputs; each of its op outputs (and its
//! model input) is matched to the reference tensor of the same name (the
//! converter's Quantize/Dequantize copies, `<value>.i8` and `<value>.f32`, are
//! matched to `<value>`) and the error is accumulated over all samples:
//! SQNR = 10 log10(sum x^2 / sum (x - y)^2), cosine similarity and max |x - y|.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tern_runtime::format::{DType, NONE_INDEX};
use tern_runtime::{AlignedBytes, Interpreter, Model, OpInfo, TensorRef};

use crate::convert::lower::Ranges;
use crate::convert::{self, Precision};
use crate::error::{Error, Result};
pub use crate::metrics::{SQNR_CAP_DB, cosine, sqnr_db};

mod report;

/// One compared tensor of the candidate model.
#[derive(Clone, Debug)]
pub struct TensorRow {
    /// The candidate's tensor name.
    pub name: String,
    /// The reference tensor it was compared with.
    pub reference: String,
    /// The candidate op that produced it (`None` for the model input).
    pub op_index: Option<usize>,
    /// That op's opcode name (`input` for the model input).
    pub opcode: &'static str,
    /// `int8`, `f32`, or `f16w` (f32 activations computed from f16 weights).
    pub precision: &'static str,
    /// Elements per sample.
    pub elements: usize,
    /// Signal-to-quantization-noise ratio over all samples, dB (capped at ±[`SQNR_CAP_DB`]).
    pub sqnr_db: f64,
    /// Cosine similarity of the candidate and reference values over all samples.
    pub cosine: f64,
    /// Largest |reference - candidate| of any element of any sample.
    pub max_abs_err: f64,
    /// True for the candidate's model output 0.
    pub is_output: bool,
}

impl TensorRow {
    /// True when the candidate holds this tensor as int8.
    pub fn is_int8(&self) -> bool {
        self.precision == "int8"
    }
}

/// Everything `tern compare` measured.
#[derive(Clone, Debug)]
pub struct CompareReport {
    /// Model inputs run (batches of `batch` samples).
    pub invocations: usize,
    /// Samples per invocation.
    pub batch: usize,
    /// Compared tensors, in the candidate's execution order (input first).
    pub rows: Vec<TensorRow>,
    /// Reference tensor names (f32 op outputs and the input) that no candidate tensor matched.
    pub unmatched_reference: Vec<String>,
    /// Candidate float/int8 tensors without a reference of the same name and size, with why.
    pub unmatched_candidate: Vec<(String, String)>,
    /// Integer (i32) candidate tensors, not compared.
    pub skipped_integer: Vec<String>,
    /// Reference tensors observed (the input and every f32 op output).
    pub reference_tensors: usize,
}

/// Options of [`compare_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CompareOptions {
    /// Samples per model input (the first dimension the `.tern` was converted
    /// with); `None`: inferred from the `.tern` input's size and the sample size.
    pub batch: Option<usize>,
}

/// Compares `tern` with the f32 lowering of `onnx` on `samples` (each one
/// sample's input values; batched as the `.tern` input requires).
pub fn compare(onnx: &Path, tern: &Path, samples: &[Vec<f32>]) -> Result<CompareReport> {
    compare_with(onnx, tern, samples, &CompareOptions::default())
}

/// Running sums for one candidate tensor.
struct Acc {
    row: TensorRow,
    signal: f64,
    noise: f64,
    dot: f64,
    candidate_energy: f64,
    max_abs: f64,
}

impl Acc {
    fn add(&mut self, reference: &[f32], candidate: &[f32]) {
        for (&x, &y) in reference.iter().zip(candidate) {
            let (x, y) = (x as f64, y as f64);
            let d = x - y;
            self.signal += x * x;
            self.noise += d * d;
            self.dot += x * y;
            self.candidate_energy += y * y;
            // NaN sticks.
            let e = d.abs();
            if e > self.max_abs || e.is_nan() {
                self.max_abs = e;
            }
        }
    }

    fn finish(mut self) -> TensorRow {
        self.row.sqnr_db = sqnr_db(self.signal, self.noise);
        self.row.cosine = cosine(self.dot, self.signal, self.candidate_energy);
        self.row.max_abs_err = self.max_abs;
        self.row
    }
}

/// The reference name for candidate tensor `name`: itself, or without the
/// converter's `.i8` / `.f32` suffix of a Quantize/Dequantize copy.
fn reference_name(name: &str, has: impl Fn(&str) -> bool) -> Option<&str> {
    if has(name) {
        return Some(name);
    }
    [".i8", ".f32"]
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find(|base| has(base))
}

fn runtime_error(path: &Path) -> impl Fn(tern_runtime::Error) -> Error + '_ {
    move |source| Error::Runtime {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

/// [`compare`] with options.
pub fn compare_with(
    onnx: &Path,
    tern: &Path,
    samples: &[Vec<f32>],
    options: &CompareOptions,
) -> Result<CompareReport> {
    let cand_err = runtime_error(tern);
    let ref_err = runtime_error(onnx);
    let candidate = crate::tools::open_model(tern)?;
    let input_len = candidate.input(0).map_err(&cand_err)?.len();
    let sample_len = samples.first().map_or(0, Vec::len);
    if samples.is_empty() || sample_len == 0 {
        return Err(Error::InvalidOption {
            option: "--data",
            reason: "no samples to compare on".into(),
        });
    }
    if let Some(bad) = samples.iter().find(|s| s.len() != sample_len) {
        return Err(Error::InvalidOption {
            option: "--data",
            reason: format!(
                "samples differ in size ({sample_len} and {} values)",
                bad.len()
            ),
        });
    }
    let batch = match options.batch {
        Some(b) => b.max(1),
        None if input_len % sample_len == 0 => (input_len / sample_len).max(1),
        None => 1,
    };
    if batch * sample_len != input_len {
        return Err(Error::InvalidOption {
            option: "--batch",
            reason: format!(
                "{} takes {input_len} values per input; {batch} sample(s) of {sample_len} values \
                 give {}{}",
                tern.display(),
                batch * sample_len,
                if input_len % sample_len == 0 {
                    format!(" (use --batch {})", input_len / sample_len)
                } else {
                    String::new()
                }
            ),
        });
    }
    if samples.len() < batch {
        return Err(Error::InvalidOption {
            option: "--data",
            reason: format!("{} samples do not fill one batch of {batch}", samples.len()),
        });
    }

    // The reference: the ONNX graph lowered to f32, run by the same runtime.
    let graph = convert::load_graph(onnx, batch)?;
    let mut file = convert::lower::lower(&graph, Precision::F32, &Ranges::new())?;
    file.plan_arena()?;
    let ref_bytes = AlignedBytes::new(&file.to_bytes("tern-export compare reference"));
    let reference = Model::from_bytes(&ref_bytes).map_err(&ref_err)?;
    let ref_input = reference.input(0).map_err(&ref_err)?;
    if ref_input.len() != input_len {
        return Err(Error::InvalidOption {
            option: "--batch",
            reason: format!(
                "{} takes {} values per input at batch {batch}, {} takes {input_len}",
                onnx.display(),
                ref_input.len(),
                tern.display()
            ),
        });
    }
    let ref_input_name = ref_input.name.to_string();

    let mut ref_interp = Interpreter::with_allocated_arena(&reference).map_err(&ref_err)?;
    let mut cand_interp = Interpreter::with_allocated_arena(&candidate).map_err(&cand_err)?;
    let cand_output = candidate.output(0).map_err(&cand_err)?.index;

    // Reference values of the current input, by tensor name.
    let mut ref_values: HashMap<String, Vec<f32>> = HashMap::new();
    let mut accs: Vec<Acc> = Vec::new();
    let mut slot_of: HashMap<usize, usize> = HashMap::new();
    let mut unmatched_candidate: Vec<(String, String)> = Vec::new();
    let mut skipped_integer: Vec<String> = Vec::new();
    let mut seen_candidate: std::collections::HashSet<usize> = Default::default();
    let mut buf: Vec<f32> = Vec::new();
    let mut input = vec![0f32; input_len];
    let invocations = samples.len() / batch;

    for chunk in samples.chunks_exact(batch) {
        for (dst, s) in input.chunks_exact_mut(sample_len).zip(chunk) {
            dst.copy_from_slice(s);
        }
        ref_interp.set_input_f32(0, &input).map_err(&ref_err)?;
        ref_values
            .entry(ref_input_name.clone())
            .or_default()
            .clone_from(&input);
        let mut failure = None;
        ref_interp
            .invoke_observed(|_, t| {
                if t.info.dtype != DType::F32 {
                    return;
                }
                let v = ref_values.entry(t.info.name.to_string()).or_default();
                v.resize(t.info.len(), 0.0);
                if let Err(e) = t.read_f32(v) {
                    failure.get_or_insert(e);
                }
            })
            .map_err(&ref_err)?;
        if let Some(e) = failure {
            return Err(ref_err(e));
        }

        cand_interp.set_input_f32(0, &input).map_err(&cand_err)?;
        let mut failure = None;
        let mut observe = |op: Option<&OpInfo<'_>>, t: TensorRef<'_>| {
            let index = t.info.index;
            if let Some(&slot) = slot_of.get(&index) {
                buf.resize(t.info.len(), 0.0);
                if let Err(e) = t.read_f32(&mut buf) {
                    failure.get_or_insert(e);
                    return;
                }
                let acc = &mut accs[slot];
                acc.add(&ref_values[&acc.row.reference], &buf);
                return;
            }
            if !seen_candidate.insert(index) {
                return;
            }
            let name = t.info.name;
            if !matches!(t.info.dtype, DType::F32 | DType::I8) {
                skipped_integer.push(name.to_string());
                return;
            }
            let Some(ref_name) = reference_name(name, |n| ref_values.contains_key(n)) else {
                unmatched_candidate.push((name.to_string(), "no reference tensor".into()));
                return;
            };
            let ref_len = ref_values[ref_name].len();
            if ref_len != t.info.len() {
                unmatched_candidate.push((
                    name.to_string(),
                    format!(
                        "{} elements, reference '{ref_name}' has {ref_len}",
                        t.info.len()
                    ),
                ));
                return;
            }
            let precision = match (t.info.dtype, op) {
                (DType::I8, _) => "int8",
                (_, Some(op)) => {
                    let weight_f16 = op
                        .inputs
                        .get(1)
                        .filter(|&&w| w != NONE_INDEX)
                        .and_then(|&w| candidate.tensor(w as usize))
                        .is_some_and(|w| w.dtype == DType::F16);
                    if weight_f16 { "f16w" } else { "f32" }
                }
                _ => "f32",
            };
            let mut acc = Acc {
                row: TensorRow {
                    name: name.to_string(),
                    reference: ref_name.to_string(),
                    op_index: op.map(|o| o.index),
                    opcode: op.map_or("input", |o| o.opcode.name()),
                    precision,
                    elements: t.info.len(),
                    sqnr_db: 0.0,
                    cosine: 0.0,
                    max_abs_err: 0.0,
                    is_output: index == cand_output,
                },
                signal: 0.0,
                noise: 0.0,
                dot: 0.0,
                candidate_energy: 0.0,
                max_abs: 0.0,
            };
            buf.resize(t.info.len(), 0.0);
            if let Err(e) = t.read_f32(&mut buf) {
                failure.get_or_insert(e);
                return;
            }
            acc.add(&ref_values[ref_name], &buf);
            slot_of.insert(index, accs.len());
            accs.push(acc);
        };
        // The model input (int8 models quantize it on the way in).
        {
            let (info, bytes) = cand_interp.input_mut(0).map_err(&cand_err)?;
            observe(None, TensorRef { info, bytes });
        }
        cand_interp
            .invoke_observed(|op, t| observe(Some(op), t))
            .map_err(&cand_err)?;
        if let Some(e) = failure {
            return Err(cand_err(e));
        }
    }

    let matched: std::collections::HashSet<&str> =
        accs.iter().map(|a| a.row.reference.as_str()).collect();
    let mut unmatched_reference: Vec<String> = ref_values
        .keys()
        .filter(|k| !matched.contains(k.as_str()))
        .cloned()
        .collect();
    unmatched_reference.sort();
    Ok(CompareReport {
        invocations,
        batch,
        reference_tensors: ref_values.len(),
        rows: accs.into_iter().map(Acc::finish).collect(),
        unmatched_reference,
        unmatched_candidate,
        skipped_integer,
    })
}

/// Plot colour of int8 tensors.
pub const INT8_COLOR: [u8; 3] = [222, 110, 30];
/// Plot colour of f32 tensors.
pub const F32_COLOR: [u8; 3] = [46, 104, 190];
/// Plot colour of f32 tensors computed from f16 weights.
pub const F16W_COLOR: [u8; 3] = [60, 160, 90];

/// The default plot path: `model.tern` -> `model.compare.png` beside it.
pub fn default_plot_path(tern: &Path) -> PathBuf {
    tern.with_extension("compare.png")
}

#[cfg(test)]
mod tests {
    use super::report::csv_field;
    use super::*;

    #[test]
    fn sqnr_of_identical_data_is_capped() {
        let x = [0.5f32, -1.25, 3.0, 0.0];
        let mut acc = Acc {
            row: TensorRow {
                name: "t".into(),
                reference: "t".into(),
                op_index: Some(0),
                opcode: "Copy",
                precision: "f32",
                elements: 4,
                sqnr_db: 0.0,
                cosine: 0.0,
                max_abs_err: 0.0,
                is_output: false,
            },
            signal: 0.0,
            noise: 0.0,
            dot: 0.0,
            candidate_energy: 0.0,
            max_abs: 0.0,
        };
        acc.add(&x, &x);
        acc.add(&x, &x);
        let row = acc.finish();
        assert_eq!(row.sqnr_db, SQNR_CAP_DB);
        assert!((row.cosine - 1.0).abs() < 1e-12);
        assert_eq!(row.max_abs_err, 0.0);
    }

    #[test]
    fn quantize_copies_match_their_value() {
        let refs = ["image", "relu1", "a.i8"];
        let has = |n: &str| refs.contains(&n);
        assert_eq!(reference_name("relu1", has), Some("relu1"));
        assert_eq!(reference_name("image.i8", has), Some("image"));
        assert_eq!(reference_name("relu1.f32", has), Some("relu1"));
        assert_eq!(reference_name("a.i8", has), Some("a.i8"));
        assert_eq!(reference_name("other.i8", has), None);
    }

    #[test]
    fn csv_quotes_awkward_names() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(
            default_plot_path(Path::new("/tmp/m.tern")),
            PathBuf::from("/tmp/m.compare.png")
        );
    }
}
