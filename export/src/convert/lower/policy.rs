//! Which precision each node runs in: the per-node [`PrecisionPlan`] of
//! `--precision auto`, which ops have int8 kernels, and when a recurrent cell
//! can run in int8. Decides; never writes to the file.

use std::collections::HashMap;

use tern_runtime::format::DType;

use super::Lowering;
use crate::convert::Precision;
use crate::convert::graph::{Elem, Graph, Node, Op, Recurrent, RecurrentKind};

/// The precision of each node: a default and per-node overrides (by node index),
/// as chosen by `--precision auto`.
#[derive(Clone, Debug)]
pub struct PrecisionPlan {
    /// Precision of nodes without an override; also decides the graph inputs' type.
    pub default: Precision,
    /// Node index -> precision.
    pub per_node: HashMap<usize, Precision>,
}

impl PrecisionPlan {
    /// Every node at `precision`.
    pub fn uniform(precision: Precision) -> PrecisionPlan {
        PrecisionPlan {
            default: precision,
            per_node: HashMap::new(),
        }
    }

    /// The precision asked for node `i`.
    pub fn of(&self, i: usize) -> Precision {
        self.per_node.get(&i).copied().unwrap_or(self.default)
    }

    /// True when some node runs in int8 (the model then needs calibration).
    pub fn uses_int8(&self, nodes: usize) -> bool {
        (0..nodes).any(|i| self.of(i) == Precision::Int8)
    }
}

/// True when `op` has an int8 kernel (or is a pure data move on int8 bytes); the
/// others run as float islands in int8 models.
pub fn has_int8_kernel(op: &Op) -> bool {
    match op {
        Op::Lrn(_)
        | Op::MatMul
        | Op::LayerNorm { .. }
        | Op::Reduce { .. }
        | Op::Where
        | Op::Compare(_)
        | Op::Cast
        | Op::Attention(_)
        | Op::Generic { .. } => false,
        Op::Recurrent(r) => recurrent_attrs_int8_ok(r),
        Op::Binary { op, .. } => op.has_int8_kernel(),
        _ => true,
    }
}

/// The attribute conditions of the int8 recurrent cells (FORMAT.md, "Quantized
/// recurrent cells"): the default activations in every direction, no clip, no
/// LSTM `input_forget`, `hidden <= 512`.
pub fn recurrent_attrs_int8_ok(r: &Recurrent) -> bool {
    use tern_runtime::kernels::activation_f32::Activation::{Sigmoid, Tanh};
    let defaults: &[_] = match r.kind {
        RecurrentKind::Lstm => &[Sigmoid, Tanh, Tanh],
        RecurrentKind::Gru => &[Sigmoid, Tanh],
        RecurrentKind::Rnn => &[Tanh],
    };
    r.clip.is_none()
        && !(r.kind == RecurrentKind::Lstm && r.flag)
        && r.hidden <= tern_runtime::kernels::recurrent_s8::MAX_HIDDEN_S8
        && !r.activations.is_empty()
        && r.activations.chunks(defaults.len()).all(|a| a == defaults)
}

/// Whether recurrent node `node` can run as an int8 cell: its attributes
/// ([`recurrent_attrs_int8_ok`]), `input_size <= 65535`, no peepholes, and
/// initial states absent or constant, `initial_h` within `[-1, 1)` and
/// `initial_c` within the coarsest cell range `[-128, 128)`.
pub fn recurrent_int8_ok(g: &Graph, node: &Node, r: &Recurrent) -> bool {
    let input = |k: usize| node.inputs.get(k).copied().flatten();
    let state_ok = |k: usize, limit: f32| match input(k) {
        None => true,
        Some(v) => g
            .const_f32(v)
            .is_some_and(|d| d.iter().all(|&x| x >= -limit && x < limit)),
    };
    recurrent_attrs_int8_ok(r)
        && input(0).is_some_and(|x| {
            g.values[x].shape.get(2).copied().unwrap_or(usize::MAX)
                <= tern_runtime::kernels::recurrent_s8::MAX_INPUT_S8
        })
        && input(7).is_none()
        && state_ok(5, 1.0)
        && state_ok(6, 128.0)
}

impl Lowering<'_> {
    /// Does this node run in int8?
    pub(super) fn int8(&self, node: &Node) -> bool {
        self.precision == Precision::Int8
            && has_int8_kernel(&node.op)
            && self.g.values[node.output].elem == Elem::F32
            && match &node.op {
                // Data moves stay int8 only when their data is a float value.
                Op::Gather { .. } | Op::Slice { .. } | Op::Expand => {
                    node.inputs[0].is_some_and(|x| {
                        self.g.values[x].elem == Elem::F32
                            // A slice of an int8 recurrent cell's packed f32
                            // output (h and c) stays f32, so that its consumer
                            // quantizes with the slice's own range (|h| < 1),
                            // not the whole tensor's (which covers |c|).
                            && !(matches!(node.op, Op::Slice { .. } | Op::Gather { .. })
                                && self.is_f32_recurrent_output(x))
                    })
                }
                Op::Recurrent(r) => recurrent_int8_ok(self.g, node, r),
                _ => true,
            }
    }

    /// Whether `v` is the packed output of a recurrent op lowered already, in
    /// f32 (every int8 cell writes f32).
    fn is_f32_recurrent_output(&self, v: usize) -> bool {
        self.tensor_of
            .get(&v)
            .is_some_and(|&t| self.file.tensors[t as usize].dtype == DType::F32)
            && self
                .g
                .nodes
                .iter()
                .any(|n| n.output == v && matches!(n.op, Op::Recurrent(_)))
    }
}
