//! The converter's intermediate graph: values (constant or activation, with
//! static shapes) and nodes (Tern-level ops in float semantics).
//!
//! Import fills it from ONNX; passes rewrite it; lowering writes it to `.tern`.

use std::collections::HashMap;

use tern_runtime::format::Opcode;
use tern_runtime::kernels::activation_f32::Activation;
use tern_runtime::kernels::compare::CompareOp;
use tern_runtime::kernels::recurrent::Direction;
use tern_runtime::kernels::reduce_f32::ReduceOp;
use tern_runtime::kernels::{BinaryOp, Window2d};
use tern_runtime::ops::{AttentionParams, LrnParams, ResizeParams};

/// A constant's data.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstData {
    /// Float data (weights, biases, float constants).
    F32(Vec<f32>),
    /// Integer data (shapes, indices, axes).
    I64(Vec<i64>),
}

impl ConstData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ConstData::F32(v) => v.len(),
            ConstData::I64(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            ConstData::F32(v) => v.clone(),
            ConstData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as i64 (floats truncated).
    pub fn to_i64(&self) -> Vec<i64> {
        match self {
            ConstData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            ConstData::I64(v) => v.clone(),
        }
    }
}

/// Element type of an activation value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Elem {
    /// Float (f32, f16 or int8 once lowered).
    #[default]
    F32,
    /// Integer: token ids, indices, booleans (0/1); i32 at run time.
    I32,
}

/// A tensor of the graph.
#[derive(Clone, Debug)]
pub struct Value {
    /// Name (the ONNX tensor name).
    pub name: String,
    /// Static shape.
    pub shape: Vec<usize>,
    /// Data, for constants.
    pub konst: Option<ConstData>,
    /// Element type (activations; constants carry theirs in `konst`).
    pub elem: Elem,
}

impl Value {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the value holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An output clamp fused into an op (Relu, Relu6, Clip).
pub type Clamp = Option<(f32, f32)>;

/// A graph operation, in float semantics.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// 2-D convolution: inputs `x`, weights `[Cout][Cin/g][kh][kw]`, optional bias.
    Conv {
        window: Window2d,
        pad_end: [usize; 2],
        groups: usize,
        clamp: Clamp,
    },
    /// 2-D transposed convolution, weights repacked to `[Cout][Cin/g][kh][kw]`.
    ConvTranspose {
        window: Window2d,
        groups: usize,
        clamp: Clamp,
    },
    /// `x W^T + b` over the last axis: inputs `x`, weights `[N][K]`, optional bias.
    FullyConnected { clamp: Clamp },
    /// Max pooling.
    MaxPool { window: Window2d },
    /// Average pooling.
    AvgPool {
        window: Window2d,
        pad_end: [usize; 2],
        count_include_pad: bool,
    },
    /// Elementwise activation.
    Activation(Activation),
    /// Broadcasting binary op.
    Binary { op: BinaryOp, clamp: Clamp },
    /// Concatenation.
    Concat { axis: usize },
    /// Reshape-like byte copy.
    Copy,
    /// Permutation.
    Transpose { perm: Vec<usize> },
    /// Padding (`mode` from `tern_runtime::ops::pad_mode`).
    Pad {
        mode: u32,
        value: f32,
        begins: Vec<usize>,
        ends: Vec<usize>,
    },
    /// Resize over H and W.
    Resize(ResizeParams),
    /// Softmax over `axis`.
    Softmax { axis: usize },
    /// Local response normalization.
    Lrn(LrnParams),
    /// Batched matrix product `[.., M, K] x [.., K, N]` (numpy broadcasting).
    MatMul,
    /// Layer normalization over the axes from `axis`: inputs `x`, optional
    /// constant scale and bias (each of the normalized size).
    LayerNorm { axis: usize, epsilon: f32 },
    /// Reduction over the axes set in `mask` (bit d = axis d).
    Reduce { op: ReduceOp, mask: u32 },
    /// Strided slice: output axis d reads `starts[d] + i * steps[d]`.
    Slice { starts: Vec<usize>, steps: Vec<i64> },
    /// Gather along `axis`: inputs data, i32 indices.
    Gather { axis: usize },
    /// Select: inputs i32 condition, a, b (broadcasting).
    Where,
    /// Comparison to i32 0/1 (broadcasting).
    Compare(CompareOp),
    /// f32 <-> i32 by the input and output element types.
    Cast,
    /// Broadcast to the output shape.
    Expand,
    /// LSTM / GRU / RNN over a time-major sequence; packed output
    /// `[seq + states][dirs][batch][hidden]`. Inputs X, W, R, B, sequence_lens,
    /// initial_h (, initial_c, P), with B pre-summed (Wb + Rb) except for GRU.
    Recurrent(Recurrent),
    /// Fused scaled-dot-product attention: inputs Q, K, V, optional additive mask.
    Attention(AttentionParams),
    /// A runtime op that needs nothing of the converter but lowering: no weights
    /// to fold or pack, no quantization of its own (it runs on float or integer
    /// operands, as a float island in int8 models). Its importer encodes the
    /// parameter words with the op's runtime parameter struct, so adding such an
    /// op touches its runtime module and its importer only.
    Generic { opcode: Opcode, params: Vec<u32> },
}

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentKind {
    /// Long short-term memory (4 gates, states h and c).
    Lstm,
    /// Gated recurrent unit (3 gates).
    Gru,
    /// Elman RNN (1 gate).
    Rnn,
}

impl RecurrentKind {
    /// Gates per step.
    pub fn gates(self) -> usize {
        match self {
            RecurrentKind::Lstm => 4,
            RecurrentKind::Gru => 3,
            RecurrentKind::Rnn => 1,
        }
    }
    /// State rows appended to Y in the packed output.
    pub fn states(self) -> usize {
        match self {
            RecurrentKind::Lstm => 2,
            _ => 1,
        }
    }
    /// Activations per direction.
    pub fn activations(self) -> usize {
        match self {
            RecurrentKind::Lstm => 3,
            RecurrentKind::Gru => 2,
            RecurrentKind::Rnn => 1,
        }
    }
}

/// A recurrent layer's attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Recurrent {
    /// The cell.
    pub kind: RecurrentKind,
    /// Forward, reverse or both.
    pub direction: Direction,
    /// Hidden size.
    pub hidden: usize,
    /// Cell clip.
    pub clip: Option<f32>,
    /// LSTM `input_forget`, GRU `linear_before_reset`.
    pub flag: bool,
    /// `kind.activations()` per direction, direction 0 first.
    pub activations: Vec<Activation>,
}

impl Op {
    /// The fused clamp slot of ops that have one.
    pub fn clamp_mut(&mut self) -> Option<&mut Clamp> {
        match self {
            Op::Conv { clamp, .. }
            | Op::ConvTranspose { clamp, .. }
            | Op::FullyConnected { clamp }
            | Op::Binary { clamp, .. } => Some(clamp),
            _ => None,
        }
    }
}

/// A node: an op, its input values (None = absent optional input) and its output.
#[derive(Clone, Debug)]
pub struct Node {
    /// Source ONNX node name (or `op_type#index`).
    pub name: String,
    /// Operation.
    pub op: Op,
    /// Input value ids.
    pub inputs: Vec<Option<usize>>,
    /// Output value id.
    pub output: usize,
}

/// The whole graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// All values; constants and activations.
    pub values: Vec<Value>,
    /// Nodes in execution (topological) order.
    pub nodes: Vec<Node>,
    /// Graph input value ids.
    pub inputs: Vec<usize>,
    /// Graph output value ids.
    pub outputs: Vec<usize>,
    /// Value id by name.
    pub by_name: HashMap<String, usize>,
}

impl Graph {
    /// Adds a value and returns its id (names are made unique).
    pub fn add_value(&mut self, name: &str, shape: Vec<usize>, konst: Option<ConstData>) -> usize {
        let mut unique = name.to_string();
        let mut k = 1;
        while self.by_name.contains_key(&unique) {
            unique = format!("{name}.{k}");
            k += 1;
        }
        let id = self.values.len();
        self.by_name.insert(unique.clone(), id);
        self.values.push(Value {
            name: unique,
            shape,
            konst,
            elem: Elem::F32,
        });
        id
    }

    /// Number of nodes reading each value, plus one for graph outputs.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.values.len()];
        for node in &self.nodes {
            for &v in node.inputs.iter().flatten() {
                uses[v] += 1;
            }
        }
        for &v in &self.outputs {
            uses[v] += 1;
        }
        uses
    }

    /// True when value `v` is constant.
    pub fn is_const(&self, v: usize) -> bool {
        self.values[v].konst.is_some()
    }

    /// Float data of constant `v`.
    pub fn const_f32(&self, v: usize) -> Option<Vec<f32>> {
        self.values[v].konst.as_ref().map(ConstData::to_f32)
    }

    /// Removes nodes whose output nobody reads.
    pub fn remove_dead_nodes(&mut self) {
        loop {
            let uses = self.use_counts();
            let before = self.nodes.len();
            self.nodes.retain(|n| uses[n.output] > 0);
            if self.nodes.len() == before {
                break;
            }
        }
    }
}
