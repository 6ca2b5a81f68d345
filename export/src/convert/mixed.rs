//! Automatic mixed precision (`--precision auto`): measure how much each layer
//! hurts when it alone runs in int8 (every other layer in f32), then start from
//! an all-int8 model and move the most sensitive layers back to float (f16
//! weights for layers with weights, f32 otherwise) until the model's top-1
//! agreement with fp32 on the calibration samples is within the allowed drop.
//!
//! Everything runs through the Tern runtime itself, on the same samples the
//! calibration used: the per-layer figures describe the file that is written.

use tern_runtime::{AlignedBytes, Interpreter, Model};

use crate::classify::argmax_rows;
use crate::metrics::sqnr_db;

use super::graph::{Graph, Op};
use super::lower::{self, PrecisionPlan, Ranges, has_int8_kernel};
use super::{ConvertError, Precision};

/// The quality target of `--precision auto`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoOptions {
    /// Largest allowed drop of top-1 agreement with fp32, in percentage points
    /// (classifiers: `--max-accuracy-drop`).
    pub max_agreement_drop: f64,
    /// Instead of agreement: the smallest allowed output SQNR in dB against fp32
    /// (regression or embedding models: `--min-sqnr`).
    pub min_sqnr_db: Option<f64>,
    /// Samples (from the calibration set) used to measure; 0 = all of them.
    pub samples: usize,
}

/// What [`super::convert_with`] needs beyond the precision and calibration.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConvertOptions {
    /// The quality target of `--precision auto`.
    pub auto: AutoOptions,
    /// Plan every kernel scratch at its smallest accepted size
    /// (`--small-arena`, for microcontrollers): smaller tiles, a smaller arena.
    pub small_arena: bool,
}

impl Default for AutoOptions {
    fn default() -> Self {
        AutoOptions {
            max_agreement_drop: 0.5,
            min_sqnr_db: None,
            samples: 500,
        }
    }
}

impl AutoOptions {
    /// True when a model with this agreement (%) and SQNR (dB) meets the target.
    fn met(&self, agreement: f64, sqnr_db: f64) -> bool {
        match self.min_sqnr_db {
            Some(min) => sqnr_db >= min,
            None => agreement >= 100.0 - self.max_agreement_drop,
        }
    }

    /// The target in words.
    fn describe(&self) -> String {
        match self.min_sqnr_db {
            Some(min) => format!("output SQNR >= {min:.1} dB"),
            None => format!("agreement >= {:.2}%", 100.0 - self.max_agreement_drop),
        }
    }
}

/// The precision chosen for one graph node, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerChoice {
    /// Node (source ONNX node) name.
    pub node: String,
    /// The chosen precision.
    pub precision: Precision,
    /// Output SQNR (dB) of the model with only this node in int8; None when the
    /// node has no int8 kernel.
    pub sqnr_alone_db: Option<f64>,
    /// Top-1 agreement (%) with fp32 with only this node in int8.
    pub agreement_alone: Option<f64>,
    /// Why this precision.
    pub why: String,
}

/// What `--precision auto` decided.
#[derive(Clone, Debug)]
pub struct AutoPlan {
    /// Per-node precisions.
    pub plan: PrecisionPlan,
    /// One entry per node, in graph order.
    pub choices: Vec<LayerChoice>,
    /// Top-1 agreement (%) of the chosen model with fp32 on the samples.
    pub agreement: f64,
    /// Output SQNR (dB) of the chosen model.
    pub sqnr_db: f64,
    /// Samples measured.
    pub samples: usize,
}

/// Output 0 of the model lowered with `plan` (data moves resolved), per sample.
fn outputs(
    g: &Graph,
    plan: &PrecisionPlan,
    ranges: &Ranges,
    samples: &[Vec<f32>],
) -> Result<Vec<Vec<f32>>, ConvertError> {
    let mut plan = plan.clone();
    resolve(g, &mut plan);
    let mut file = lower::lower_plan(g, &plan, ranges)?;
    file.plan_arena()?;
    let bytes = AlignedBytes::new(&file.to_bytes("tern-export auto precision"));
    let model = Model::from_bytes(&bytes)?;
    let mut interp = Interpreter::with_allocated_arena(&model)?;
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        interp.set_input_f32(0, s)?;
        interp.invoke()?;
        let y = interp.output(0)?;
        let mut v = vec![0f32; y.info.len()];
        y.read_f32(&mut v)?;
        out.push(v);
    }
    Ok(out)
}

/// Top-1 agreement (%) and SQNR (dB) of `got` against `want`.
fn compare(want: &[Vec<f32>], got: &[Vec<f32>]) -> (f64, f64) {
    // Top-1 over each sample's whole output (a classifier's class scores).
    let argmax = |v: &[f32]| (!v.is_empty()).then(|| argmax_rows(v, v.len())[0]);
    let agree = want
        .iter()
        .zip(got)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    let (mut signal, mut noise) = (0f64, 0f64);
    for (a, b) in want.iter().zip(got) {
        for (&x, &y) in a.iter().zip(b) {
            signal += (x as f64).powi(2);
            noise += (x as f64 - y as f64).powi(2);
        }
    }
    (
        100.0 * agree as f64 / want.len().max(1) as f64,
        sqnr_db(signal, noise),
    )
}

/// The float precision a node moves to: f16 weights when it has weights.
fn float_precision(op: &Op) -> Precision {
    match op {
        Op::Conv { .. }
        | Op::ConvTranspose { .. }
        | Op::FullyConnected { .. }
        | Op::Recurrent(_) => Precision::F16,
        _ => Precision::F32,
    }
}

/// Chooses a precision per node (see the module doc).
pub fn choose(
    g: &Graph,
    ranges: &Ranges,
    samples: &[Vec<f32>],
    options: &AutoOptions,
) -> Result<AutoPlan, ConvertError> {
    let n = if options.samples == 0 {
        samples.len()
    } else {
        options.samples.min(samples.len())
    };
    let samples = &samples[..n];
    let reference = outputs(g, &PrecisionPlan::uniform(Precision::F32), ranges, samples)?;
    let mut choices: Vec<LayerChoice> = g
        .nodes
        .iter()
        .map(|node| LayerChoice {
            node: node.name.clone(),
            precision: Precision::F32,
            sqnr_alone_db: None,
            agreement_alone: None,
            why: "no int8 kernel: float island".into(),
        })
        .collect();
    // Sensitivity: one int8 node at a time.
    let candidates: Vec<usize> = (0..g.nodes.len()).filter(|&i| quantizable(g, i)).collect();
    for &i in &candidates {
        let mut plan = PrecisionPlan::uniform(Precision::F32);
        plan.per_node.insert(i, Precision::Int8);
        let got = outputs(g, &plan, ranges, samples)?;
        let (agreement, sqnr) = compare(&reference, &got);
        choices[i].agreement_alone = Some(agreement);
        choices[i].sqnr_alone_db = Some(sqnr);
    }
    // Greedy: all int8, then back to float by decreasing sensitivity.
    let mut order = candidates.clone();
    order.sort_by(|&a, &b| {
        let s = |i: usize| choices[i].sqnr_alone_db.unwrap_or(f64::INFINITY);
        s(a).total_cmp(&s(b))
    });
    let mut plan = PrecisionPlan::uniform(Precision::F32);
    for &i in &candidates {
        plan.per_node.insert(i, Precision::Int8);
    }
    let target = options.describe();
    let (mut agreement, mut sqnr) = compare(&reference, &outputs(g, &plan, ranges, samples)?);
    let all_int8 = format!("all-int8: agreement {agreement:.2}%, SQNR {sqnr:.1} dB");
    for &i in &order {
        if options.met(agreement, sqnr) {
            break;
        }
        plan.per_node.insert(i, float_precision(&g.nodes[i].op));
        (agreement, sqnr) = compare(&reference, &outputs(g, &plan, ranges, samples)?);
    }
    for &i in &candidates {
        let p = plan.of(i);
        choices[i].precision = p;
        let alone = choices[i].sqnr_alone_db.unwrap_or(0.0);
        choices[i].why = if p == Precision::Int8 {
            format!("int8 alone costs little (output SQNR {alone:.1} dB)")
        } else {
            format!(
                "most sensitive (output SQNR {alone:.1} dB alone in int8): kept in float to hold \
                 {target} ({all_int8})"
            )
        };
    }
    for (i, node) in g.nodes.iter().enumerate() {
        if !candidates.contains(&i) && !is_data_move(&node.op) {
            plan.per_node.insert(i, Precision::F32);
            if has_int8_kernel(&node.op) {
                choices[i].why = "integer output (indices, masks): no quantization".into();
            }
        }
    }
    resolve(g, &mut plan);
    for (i, node) in g.nodes.iter().enumerate() {
        if is_data_move(&node.op) {
            choices[i].precision = plan.of(i);
            choices[i].why = "data move: follows its input".into();
        }
    }
    // The graph input is int8 when every node reading it runs in int8.
    let input = g.inputs.first().copied();
    let readers: Vec<usize> = (0..g.nodes.len())
        .filter(|&i| input.is_some() && g.nodes[i].inputs.contains(&input))
        .collect();
    plan.default = if !readers.is_empty() && readers.iter().all(|&i| plan.of(i) == Precision::Int8)
    {
        Precision::Int8
    } else {
        Precision::F32
    };
    Ok(AutoPlan {
        plan,
        choices,
        agreement,
        sqnr_db: sqnr,
        samples: n,
    })
}

/// Nodes with an int8 kernel, arithmetic and a float output: the ones whose
/// precision is a choice. Pure data moves follow their input (see [`resolve`]).
fn quantizable(g: &Graph, i: usize) -> bool {
    let node = &g.nodes[i];
    let cell_ok = match &node.op {
        Op::Recurrent(r) => lower::recurrent_int8_ok(g, node, r),
        _ => true,
    };
    has_int8_kernel(&node.op)
        && cell_ok
        && !is_data_move(&node.op)
        && g.values[node.output].elem == super::graph::Elem::F32
}

/// Ops that only move bytes (no arithmetic): int8 costs them nothing.
fn is_data_move(op: &Op) -> bool {
    matches!(
        op,
        Op::Copy
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Gather { .. }
            | Op::Expand
            | Op::Pad { .. }
            | Op::MaxPool { .. }
    )
}

/// Gives every data-move node the precision of the node producing its input
/// (int8 after an int8 producer, so no Dequantize/Quantize pair is inserted).
fn resolve(g: &Graph, plan: &mut PrecisionPlan) {
    let mut producer = vec![None; g.values.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        producer[n.output] = Some(i);
    }
    for (i, node) in g.nodes.iter().enumerate() {
        if !is_data_move(&node.op) {
            continue;
        }
        let from = node.inputs[0]
            .and_then(|x| producer[x])
            .map(|p| plan.of(p))
            .unwrap_or(plan.default);
        let p = if from == Precision::Int8 && has_int8_kernel(&node.op) {
            Precision::Int8
        } else {
            Precision::F32
        };
        plan.per_node.insert(i, p);
    }
}
