//! [`Graph`] -> [`FileModel`]: picks a kernel and a precision for every node,
//! packs and quantizes weights, and adds the conversion ops that int8 islands
//! around float-only ops need.

use std::collections::HashMap;

use tern_runtime::format::{DType, NONE_INDEX, Opcode};
use tern_runtime::kernels::binary_s8::BinaryS8Params;
use tern_runtime::kernels::lut_s8::build_lut_s8;
use tern_runtime::kernels::softmax_s8::softmax_s8_exp_table;
use tern_runtime::kernels::{Shape4, conv2d_f32, conv2d_s8_fast};
use tern_runtime::ops::{self, ClampWords, ConvParams, FullyConnectedParams, PoolParams};
use tern_runtime::quant::Requant;

use super::file::{FileModel, OpDesc, Storage, TensorDesc, TensorQuant};
use super::graph::{ConstData, Elem, Graph, Node, Op, RecurrentKind};
use super::{ConvertError, Precision};

/// Affine int8 quantization of an activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
}

impl QParams {
    /// Asymmetric int8 parameters covering `[min, max]` (widened to include 0).
    pub fn from_range(min: f32, max: f32) -> QParams {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let scale = if max > min { (max - min) / 255.0 } else { 1.0 };
        let zero_point = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i32;
        QParams { scale, zero_point }
    }

    /// `x` quantized (round half away from zero, saturated).
    pub fn quantize(&self, x: f32) -> i32 {
        ((x / self.scale).round() as i64)
            .saturating_add(self.zero_point as i64)
            .clamp(-128, 127) as i32
    }
}

impl From<QParams> for TensorQuant {
    fn from(q: QParams) -> Self {
        TensorQuant::PerTensor {
            scale: q.scale,
            zero_point: q.zero_point,
        }
    }
}

/// Calibrated `(min, max)` of each activation value, by value id.
pub type Ranges = HashMap<usize, (f32, f32)>;

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
        | Op::Attention(_) => false,
        Op::Recurrent(r) => recurrent_attrs_int8_ok(r),
        Op::Binary { op, .. } => op.has_int8_kernel(),
        _ => true,
    }
}

/// The attribute conditions of the int8 recurrent cells (FORMAT.md, "Quantized
/// recurrent cells"): the default activations in every direction, no clip, no
/// LSTM `input_forget`, `hidden <= 512`.
pub fn recurrent_attrs_int8_ok(r: &super::graph::Recurrent) -> bool {
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
pub fn recurrent_int8_ok(g: &Graph, node: &Node, r: &super::graph::Recurrent) -> bool {
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

/// The finest LSTM cell-state shift (scale `2^-cs`, range `±2^(15 - cs)`,
/// `cs` in 8..=15) whose range covers twice `max_abs` (the calibrated largest
/// `|c|` seen in `Y_c`, which shows the final states only: the factor 2 leaves
/// headroom for larger intermediate states; one bit of resolution costs nothing
/// measurable).
pub fn lstm_cell_shift(max_abs: f32) -> u32 {
    (8..=15u32)
        .rev()
        .find(|&cs| (1u32 << (15 - cs)) as f32 >= 2.0 * max_abs)
        .unwrap_or(8)
}

struct Lowering<'g> {
    g: &'g Graph,
    /// Precision of the node being lowered.
    precision: Precision,
    ranges: &'g Ranges,
    file: FileModel,
    /// Tensor of each value in its produced form.
    tensor_of: HashMap<usize, u32>,
    /// Converted copies: (value, dtype) -> tensor.
    converted: HashMap<(usize, DType), u32>,
    /// int8 parameters of each int8 value.
    qparams: HashMap<usize, QParams>,
}

/// Lowers `g` at `precision`; `ranges` (int8 only) come from calibration.
pub fn lower(g: &Graph, precision: Precision, ranges: &Ranges) -> Result<FileModel, ConvertError> {
    lower_plan(g, &PrecisionPlan::uniform(precision), ranges)
}

/// Lowers `g` with a precision per node; `ranges` cover every value an int8 node touches.
pub fn lower_plan(
    g: &Graph,
    plan: &PrecisionPlan,
    ranges: &Ranges,
) -> Result<FileModel, ConvertError> {
    let precision = plan.default;
    let mut l = Lowering {
        g,
        precision,
        ranges,
        file: FileModel::default(),
        tensor_of: HashMap::new(),
        converted: HashMap::new(),
        qparams: HashMap::new(),
    };
    for &v in &g.inputs {
        let int8 = precision == Precision::Int8;
        let t = if g.values[v].elem == Elem::I32 {
            l.arena_tensor(v, DType::I32, TensorQuant::None)
        } else if int8 {
            let q = l.range_q(v)?;
            l.qparams.insert(v, q);
            l.arena_tensor(v, DType::I8, q.into())
        } else {
            l.arena_tensor(v, DType::F32, TensorQuant::None)
        };
        l.tensor_of.insert(v, t);
        l.file.inputs.push(t);
    }
    for (i, node) in g.nodes.iter().enumerate() {
        l.precision = plan.of(i);
        l.node(node)?;
    }
    for &v in &g.outputs {
        let t = *l.tensor_of.get(&v).ok_or_else(|| {
            ConvertError::Invalid(format!("output '{}' not produced", g.values[v].name))
        })?;
        l.file.outputs.push(t);
    }
    Ok(l.file)
}

/// Symmetric int8 quantization of each of the `rows` rows of `[rows][cols]`
/// (range ±127, scale `max |row| / 127`, 1 for an all-zero row): (bytes, scales).
fn quantize_rows_s8(data: &[f32], rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
    let mut q = Vec::with_capacity(rows * cols);
    let mut scales = Vec::with_capacity(rows);
    for row in 0..rows {
        let r = &data[row * cols..(row + 1) * cols];
        let max = r.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            r.iter()
                .map(|&v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8),
        );
    }
    (q, scales)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn shape4(s: &[usize]) -> Shape4 {
    Shape4::new(s[0], s[1], s[2], s[3])
}

impl Lowering<'_> {
    fn range_q(&self, v: usize) -> Result<QParams, ConvertError> {
        let (min, max) = self.ranges.get(&v).copied().ok_or_else(|| {
            ConvertError::Invalid(format!(
                "no calibration range for '{}'",
                self.g.values[v].name
            ))
        })?;
        Ok(QParams::from_range(min, max))
    }

    fn arena_tensor(&mut self, v: usize, dtype: DType, quant: TensorQuant) -> u32 {
        let value = &self.g.values[v];
        self.file.add(TensorDesc {
            name: value.name.clone(),
            dtype,
            shape: value.shape.clone(),
            storage: Storage::Arena,
            quant,
            offset: 0,
        })
    }

    fn constant(
        &mut self,
        name: String,
        dtype: DType,
        shape: Vec<usize>,
        bytes: Vec<u8>,
        quant: TensorQuant,
    ) -> u32 {
        self.file.add(TensorDesc {
            name,
            dtype,
            shape,
            storage: Storage::Constant(bytes),
            quant,
            offset: 0,
        })
    }

    /// Value `v` as a tensor of `dtype` (f32 or i8), converting or quantizing
    /// constants; integer values (token ids, indices, booleans) are always i32.
    fn operand(&mut self, v: usize, dtype: DType) -> Result<u32, ConvertError> {
        let value = &self.g.values[v];
        let integer = match &value.konst {
            Some(ConstData::I64(_)) => true,
            Some(ConstData::F32(_)) => false,
            None => value.elem == Elem::I32,
        };
        let dtype = if integer { DType::I32 } else { dtype };
        if let Some(&t) = self.converted.get(&(v, dtype)) {
            return Ok(t);
        }
        if integer {
            let t = match &value.konst {
                Some(data) => {
                    let ints: Vec<i32> = data
                        .to_i64()
                        .iter()
                        .map(|&x| x.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                        .collect();
                    self.constant(
                        value.name.clone(),
                        DType::I32,
                        value.shape.clone(),
                        i32_bytes(&ints),
                        TensorQuant::None,
                    )
                }
                None => *self.tensor_of.get(&v).ok_or_else(|| {
                    ConvertError::Invalid(format!("'{}' used before it is produced", value.name))
                })?,
            };
            self.converted.insert((v, dtype), t);
            return Ok(t);
        }
        let t = if let Some(data) = &value.konst {
            let data = data.to_f32();
            match dtype {
                DType::I8 => {
                    let (min, max) = data
                        .iter()
                        .fold((0f32, 0f32), |(a, b), &x| (a.min(x), b.max(x)));
                    let q = QParams::from_range(min, max);
                    self.qparams.insert(v, q);
                    let bytes = data.iter().map(|&x| q.quantize(x) as i8 as u8).collect();
                    self.constant(
                        value.name.clone(),
                        DType::I8,
                        value.shape.clone(),
                        bytes,
                        q.into(),
                    )
                }
                _ => self.constant(
                    value.name.clone(),
                    DType::F32,
                    value.shape.clone(),
                    f32_bytes(&data),
                    TensorQuant::None,
                ),
            }
        } else {
            let have = *self.tensor_of.get(&v).ok_or_else(|| {
                ConvertError::Invalid(format!("'{}' used before it is produced", value.name))
            })?;
            let have_dtype = self.file.tensors[have as usize].dtype;
            if have_dtype == dtype {
                return Ok(have);
            }
            let name = format!("{}.{}", value.name, dtype.name());
            let (opcode, quant) = if dtype == DType::I8 {
                let q = self.range_q(v)?;
                self.qparams.insert(v, q);
                (Opcode::Quantize, q.into())
            } else {
                (Opcode::Dequantize, TensorQuant::None)
            };
            let t = self.file.add(TensorDesc {
                name: name.clone(),
                dtype,
                shape: value.shape.clone(),
                storage: Storage::Arena,
                quant,
                offset: 0,
            });
            self.file.ops.push(OpDesc {
                opcode,
                name,
                inputs: vec![have],
                output: t,
                params: vec![],
                scratch: None,
            });
            t
        };
        self.converted.insert((v, dtype), t);
        Ok(t)
    }

    fn q(&self, v: usize) -> QParams {
        self.qparams.get(&v).copied().unwrap_or(QParams {
            scale: 1.0,
            zero_point: 0,
        })
    }

    /// Does this node run in int8?
    fn int8(&self, node: &Node) -> bool {
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

    fn node(&mut self, node: &Node) -> Result<(), ConvertError> {
        let int8 = self.int8(node);
        let act_dtype = if int8 { DType::I8 } else { DType::F32 };
        let out_integer = self.g.values[node.output].elem == Elem::I32;
        let x = node.inputs[0]
            .ok_or_else(|| ConvertError::Invalid(format!("node '{}' has no input", node.name)))?;
        // Int8 recurrent cells write their packed output in f32 (exact h, c).
        let float_out = int8 && matches!(node.op, Op::Recurrent(_));
        // Output quantization: pass-through ops keep their input's.
        let out_q = if int8 && !float_out {
            Some(match &node.op {
                Op::MaxPool { .. }
                | Op::AvgPool { .. }
                | Op::Copy
                | Op::Transpose { .. }
                | Op::Pad { .. }
                | Op::Resize(_)
                | Op::Slice { .. }
                | Op::Gather { .. }
                | Op::Expand => {
                    self.operand(x, DType::I8)?;
                    self.q(x)
                }
                Op::Softmax { .. } => QParams {
                    scale: 1.0 / 256.0,
                    zero_point: -128,
                },
                _ => self.range_q(node.output)?,
            })
        } else {
            None
        };
        let quant = out_q.map_or(TensorQuant::None, TensorQuant::from);
        let y_dtype = if out_integer {
            DType::I32
        } else if float_out {
            DType::F32
        } else {
            act_dtype
        };
        let y = self.arena_tensor(node.output, y_dtype, quant);
        if let Some(q) = out_q {
            self.qparams.insert(node.output, q);
        }
        self.tensor_of.insert(node.output, y);
        let mut op = OpDesc {
            opcode: Opcode::Copy,
            name: node.name.clone(),
            inputs: vec![],
            output: y,
            params: vec![],
            scratch: None,
        };
        let clamp_words = |clamp: Option<(f32, f32)>| -> ClampWords {
            let (min, max) = clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
            match out_q {
                Some(q) => ClampWords::i8(q.quantize(min).max(-128), q.quantize(max).min(127)),
                None => ClampWords::f32(min, max),
            }
        };
        match &node.op {
            Op::Conv {
                window,
                groups,
                clamp,
                ..
            }
            | Op::ConvTranspose {
                window,
                groups,
                clamp,
            } => {
                let transpose = matches!(node.op, Op::ConvTranspose { .. });
                op.opcode = if transpose {
                    Opcode::ConvTranspose2d
                } else {
                    Opcode::Conv2d
                };
                ConvParams {
                    window: *window,
                    groups: *groups,
                    clamp: clamp_words(*clamp),
                }
                .encode(&mut op.params);
                op.inputs = self.weighted_inputs(node, x, int8)?;
                if !transpose {
                    let xs = shape4(&self.g.values[x].shape);
                    let ys = shape4(&self.g.values[node.output].shape);
                    let bytes = if int8 {
                        conv2d_s8_fast::conv2d_s8_fast_scratch_len(xs, window, *groups, ys)
                    } else {
                        4 * conv2d_f32::conv2d_f32_scratch_len(xs, window, *groups, ys)
                    };
                    if bytes > 0 {
                        let dtype = act_dtype;
                        let s = self.file.add(TensorDesc {
                            name: format!("{}.scratch", node.name),
                            dtype,
                            shape: vec![bytes / dtype.size()],
                            storage: Storage::Arena,
                            quant: TensorQuant::None,
                            offset: 0,
                        });
                        op.scratch = Some(s);
                    }
                }
            }
            Op::FullyConnected { clamp } => {
                op.opcode = Opcode::FullyConnected;
                FullyConnectedParams {
                    clamp: clamp_words(*clamp),
                }
                .encode(&mut op.params);
                op.inputs = self.weighted_inputs(node, x, int8)?;
            }
            Op::MaxPool { window } => {
                op.opcode = Opcode::MaxPool2d;
                PoolParams {
                    window: *window,
                    pad_end: [0, 0],
                    count_include_pad: false,
                }
                .encode(false, &mut op.params);
                op.inputs = vec![self.operand(x, act_dtype)?];
            }
            Op::AvgPool {
                window,
                pad_end,
                count_include_pad,
            } => {
                op.opcode = Opcode::AvgPool2d;
                PoolParams {
                    window: *window,
                    pad_end: *pad_end,
                    count_include_pad: *count_include_pad,
                }
                .encode(true, &mut op.params);
                op.inputs = vec![self.operand(x, act_dtype)?];
            }
            Op::Activation(act) => {
                let xt = self.operand(x, act_dtype)?;
                if int8 {
                    op.opcode = Opcode::Lut;
                    let (qx, qy) = (self.q(x), out_q.unwrap_or(self.q(x)));
                    let act = *act;
                    let table =
                        build_lut_s8(qx.scale, qx.zero_point, qy.scale, qy.zero_point, move |v| {
                            act.apply(v)
                        });
                    let t = self.constant(
                        format!("{}.lut", node.name),
                        DType::I8,
                        vec![256],
                        table.iter().map(|&v| v as u8).collect(),
                        TensorQuant::None,
                    );
                    op.inputs = vec![xt, t];
                } else {
                    op.opcode = Opcode::Activation;
                    ops::encode_activation(*act, &mut op.params);
                    op.inputs = vec![xt];
                }
            }
            Op::Binary { op: bop, clamp } => {
                op.opcode = Opcode::Binary;
                let b = node.inputs[1].ok_or_else(|| {
                    ConvertError::Invalid(format!("node '{}' lacks operand b", node.name))
                })?;
                let (at, bt) = (self.operand(x, act_dtype)?, self.operand(b, act_dtype)?);
                op.inputs = vec![at, bt];
                if let Some(qo) = out_q {
                    let (qa, qb) = (self.q(x), self.q(b));
                    let (min, max) = clamp_words(*clamp).as_i8();
                    let p = BinaryS8Params::new(
                        *bop,
                        (qa.scale, qa.zero_point),
                        (qb.scale, qb.zero_point),
                        (qo.scale, qo.zero_point),
                        min,
                        max,
                    );
                    ops::encode_binary_s8(&p, &mut op.params);
                } else {
                    ops::BinaryF32Params {
                        op: *bop,
                        clamp: clamp_words(*clamp),
                    }
                    .encode(&mut op.params);
                }
            }
            Op::Concat { axis } => {
                op.opcode = Opcode::Concat;
                op.params.push(*axis as u32);
                for &v in node.inputs.iter().flatten() {
                    op.inputs.push(self.operand(v, act_dtype)?);
                }
                if let Some(qo) = out_q {
                    let qs: Vec<QParams> =
                        node.inputs.iter().flatten().map(|&v| self.q(v)).collect();
                    if qs.iter().any(|q| *q != qo) {
                        op.params.push(qo.zero_point as u32);
                        for q in qs {
                            let r = Requant::from_real(q.scale as f64 / qo.scale as f64);
                            op.params.extend([
                                q.zero_point as u32,
                                r.multiplier as u32,
                                r.shift as u32,
                            ]);
                        }
                    }
                }
            }
            Op::Copy => {
                op.opcode = Opcode::Copy;
                op.inputs = vec![self.operand(x, act_dtype)?];
            }
            Op::Transpose { perm } => {
                op.opcode = Opcode::Transpose;
                op.params = perm.iter().map(|&p| p as u32).collect();
                op.inputs = vec![self.operand(x, act_dtype)?];
            }
            Op::Pad {
                mode,
                value,
                begins,
                ends,
            } => {
                op.opcode = Opcode::Pad;
                op.inputs = vec![self.operand(x, act_dtype)?];
                let value_word = match out_q {
                    Some(q) => q.quantize(*value) as u32,
                    None => value.to_bits(),
                };
                op.params = vec![*mode, value_word];
                op.params.extend(begins.iter().map(|&v| v as u32));
                op.params.extend(ends.iter().map(|&v| v as u32));
            }
            Op::Resize(p) => {
                op.opcode = Opcode::Resize;
                p.encode(&mut op.params);
                op.inputs = vec![self.operand(x, act_dtype)?];
            }
            Op::Softmax { axis } => {
                op.opcode = Opcode::Softmax;
                op.params = vec![*axis as u32];
                let xt = self.operand(x, act_dtype)?;
                op.inputs = vec![xt];
                if int8 {
                    let table = softmax_s8_exp_table(self.q(x).scale);
                    let t = self.constant(
                        format!("{}.exp", node.name),
                        DType::I32,
                        vec![256],
                        i32_bytes(&table),
                        TensorQuant::None,
                    );
                    op.inputs.push(t);
                }
            }
            Op::Lrn(p) => {
                op.opcode = Opcode::Lrn;
                p.encode(&mut op.params);
                op.inputs = vec![self.operand(x, DType::F32)?];
            }
            Op::MatMul => {
                op.opcode = Opcode::MatMul;
                let b = self.second(node)?;
                op.inputs = vec![self.operand(x, DType::F32)?, self.operand(b, DType::F32)?];
            }
            Op::LayerNorm { axis, epsilon } => {
                op.opcode = Opcode::LayerNorm;
                op.params = vec![*axis as u32, epsilon.to_bits()];
                op.inputs = vec![self.operand(x, DType::F32)?];
                for k in 1..3 {
                    op.inputs.push(match node.inputs.get(k).copied().flatten() {
                        Some(v) => self.operand(v, DType::F32)?,
                        None => NONE_INDEX,
                    });
                }
            }
            Op::Reduce { op: r, mask } => {
                op.opcode = Opcode::Reduce;
                op.params = vec![ops::reduce_op_code(*r), *mask];
                op.inputs = vec![self.operand(x, DType::F32)?];
            }
            Op::Slice { starts, steps } => {
                op.opcode = Opcode::Slice;
                op.params = starts.iter().map(|&s| s as u32).collect();
                op.params.extend(steps.iter().map(|&s| s as i32 as u32));
                op.inputs = vec![self.operand(x, act_dtype)?];
            }
            Op::Gather { axis } => {
                op.opcode = Opcode::Gather;
                op.params = vec![*axis as u32];
                let idx = self.second(node)?;
                op.inputs = vec![self.operand(x, act_dtype)?, self.operand(idx, DType::I32)?];
            }
            Op::Where => {
                op.opcode = Opcode::Where;
                let (a, b) = (self.second(node)?, self.third(node)?);
                op.inputs = vec![
                    self.operand(x, DType::I32)?,
                    self.operand(a, DType::F32)?,
                    self.operand(b, DType::F32)?,
                ];
            }
            Op::Compare(c) => {
                op.opcode = Opcode::Compare;
                op.params = vec![ops::compare_op_code(*c)];
                let b = self.second(node)?;
                op.inputs = vec![self.operand(x, DType::F32)?, self.operand(b, DType::F32)?];
            }
            Op::Cast => {
                op.opcode = Opcode::Cast;
                op.inputs = vec![self.operand(x, DType::F32)?];
            }
            Op::Expand => {
                op.opcode = Opcode::Expand;
                op.inputs = vec![self.operand(x, act_dtype)?];
            }
            Op::Recurrent(r) => {
                self.recurrent(node, r, &mut op)?;
            }
            Op::Attention(p) => {
                op.opcode = Opcode::Attention;
                p.encode(&mut op.params);
                for v in node.inputs.iter().flatten() {
                    op.inputs.push(self.operand(*v, DType::F32)?);
                }
                let (q, k, v) = (x, self.second(node)?, self.third(node)?);
                let dims = |v: usize| self.g.values[v].shape.clone();
                let (qs, ks, vs) = (dims(q), dims(k), dims(v));
                let shape = tern_runtime::kernels::attention_f32::AttentionShape {
                    batch: qs[0],
                    q_heads: qs[1],
                    kv_heads: ks[1],
                    q_len: qs[2],
                    kv_len: if p.k_transposed { ks[3] } else { ks[2] },
                    head_dim: qs[3],
                    v_head_dim: vs[3],
                };
                let len = tern_runtime::kernels::attention_f32::attention_f32_scratch_len(&shape);
                op.scratch = self.scratch_f32(&node.name, len);
            }
        }
        self.file.ops.push(op);
        Ok(())
    }

    fn second(&self, node: &Node) -> Result<usize, ConvertError> {
        node.inputs.get(1).copied().flatten().ok_or_else(|| {
            ConvertError::Invalid(format!("node '{}' lacks its second input", node.name))
        })
    }

    fn third(&self, node: &Node) -> Result<usize, ConvertError> {
        node.inputs.get(2).copied().flatten().ok_or_else(|| {
            ConvertError::Invalid(format!("node '{}' lacks its third input", node.name))
        })
    }

    /// An f32 scratch tensor of `len` elements (None when 0).
    fn scratch_f32(&mut self, node: &str, len: usize) -> Option<u32> {
        (len > 0).then(|| {
            self.file.add(TensorDesc {
                name: format!("{node}.scratch"),
                dtype: DType::F32,
                shape: vec![len],
                storage: Storage::Arena,
                quant: TensorQuant::None,
                offset: 0,
            })
        })
    }

    /// A float weight constant: f16 in f16 precision, else f32.
    fn float_weight(&mut self, v: usize) -> Result<u32, ConvertError> {
        let value = &self.g.values[v];
        let data = value.konst.as_ref().map(ConstData::to_f32).ok_or_else(|| {
            ConvertError::Invalid(format!("weights '{}' are not constant", value.name))
        })?;
        let (name, shape) = (value.name.clone(), value.shape.clone());
        Ok(if self.precision == Precision::F16 {
            let bytes = data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect();
            self.constant(name, DType::F16, shape, bytes, TensorQuant::None)
        } else {
            self.constant(name, DType::F32, shape, f32_bytes(&data), TensorQuant::None)
        })
    }

    /// LSTM / GRU / RNN: the int8 cell where [`recurrent_int8_ok`] allows it
    /// in an int8 node (see "Quantized recurrent cells" in FORMAT.md), else f32
    /// compute with weights f32 or f16.
    fn recurrent(
        &mut self,
        node: &Node,
        r: &super::graph::Recurrent,
        op: &mut OpDesc,
    ) -> Result<(), ConvertError> {
        use tern_runtime::kernels::{
            gru_f32, gru_s8, lstm_f32, lstm_s8, recurrent::RecurrentDims, rnn_f32, rnn_s8,
        };
        let x = node.inputs[0]
            .ok_or_else(|| ConvertError::Invalid(format!("node '{}' has no input", node.name)))?;
        let xs = self.g.values[x].shape.clone();
        let dims = RecurrentDims {
            seq_len: xs[0],
            batch: xs[1],
            input_size: xs[2],
            hidden: r.hidden,
        };
        let int8 = self.int8(node);
        let cell_shift = if int8 && r.kind == RecurrentKind::Lstm {
            // Y_c's calibrated range, widened by a constant initial_c.
            let (min, max) = self.ranges.get(&node.output).copied().ok_or_else(|| {
                ConvertError::Invalid(format!("no calibration range for '{}'", node.name))
            })?;
            let c0 = node
                .inputs
                .get(6)
                .copied()
                .flatten()
                .and_then(|v| self.g.const_f32(v))
                .unwrap_or_default();
            let max_abs = c0
                .iter()
                .fold(min.abs().max(max.abs()), |m, v| m.max(v.abs()));
            lstm_cell_shift(max_abs)
        } else {
            0
        };
        let acts = |k: usize| -> [tern_runtime::kernels::activation_f32::Activation; 3] {
            let g = r.kind.activations();
            core::array::from_fn(|i| {
                r.activations[(k * g + i.min(g - 1)).min(r.activations.len() - 1)]
            })
        };
        let (a0, a1) = (acts(0), acts(1));
        let (opcode, scratch) = match r.kind {
            RecurrentKind::Lstm => {
                ops::RecurrentParams::<3> {
                    direction: r.direction,
                    hidden: r.hidden,
                    clip: r.clip,
                    flag: r.flag,
                    activations: [a0, a1],
                    cell_shift,
                }
                .encode(&mut op.params);
                let scratch = if int8 {
                    lstm_s8::lstm_s8_scratch_len(&dims)
                } else {
                    lstm_f32::lstm_f32_scratch_len(&dims)
                };
                (Opcode::Lstm, scratch)
            }
            RecurrentKind::Gru => {
                ops::RecurrentParams::<2> {
                    direction: r.direction,
                    hidden: r.hidden,
                    clip: r.clip,
                    flag: r.flag,
                    activations: [[a0[0], a0[1]], [a1[0], a1[1]]],
                    cell_shift: 0,
                }
                .encode(&mut op.params);
                let scratch = if int8 {
                    gru_s8::gru_s8_scratch_len(&dims)
                } else {
                    gru_f32::gru_f32_scratch_len(&dims)
                };
                (Opcode::Gru, scratch)
            }
            RecurrentKind::Rnn => {
                ops::RecurrentParams::<1> {
                    direction: r.direction,
                    hidden: r.hidden,
                    clip: r.clip,
                    flag: false,
                    activations: [[a0[0]], [a1[0]]],
                    cell_shift: 0,
                }
                .encode(&mut op.params);
                let scratch = if int8 {
                    rnn_s8::rnn_s8_scratch_len(&dims)
                } else {
                    rnn_f32::rnn_f32_scratch_len(&dims)
                };
                (Opcode::Rnn, scratch)
            }
        };
        op.opcode = opcode;
        op.scratch = self.scratch_f32(&node.name, scratch);
        if int8 {
            op.inputs = self.recurrent_s8_inputs(node, r, x)?;
            return Ok(());
        }
        op.inputs = vec![self.operand(x, DType::F32)?];
        for (k, slot) in node.inputs.iter().enumerate().skip(1) {
            op.inputs.push(match (k, slot) {
                (_, None) => NONE_INDEX,
                (1 | 2, Some(w)) => self.float_weight(*w)?,
                (4, Some(v)) => self.operand(*v, DType::I32)?,
                (_, Some(v)) => self.operand(*v, DType::F32)?,
            });
        }
        Ok(())
    }

    /// The 10 inputs of an int8 recurrent op: X (i8), W and R (i8 per row,
    /// `[dirs * gates * hidden, cols]`), B (i32 Q3.12), sequence_lens,
    /// initial_h, initial_c (f32), P (absent), requant (i32 `[rows][4]`: x and h
    /// multiplier/shift pairs to Q3.12), the sigmoid/tanh tables (i32 `[2][513]`).
    fn recurrent_s8_inputs(
        &mut self,
        node: &Node,
        r: &super::graph::Recurrent,
        x: usize,
    ) -> Result<Vec<u32>, ConvertError> {
        use tern_runtime::kernels::recurrent_s8::{GATE_FRAC_BITS, LUT_ENTRIES, recurrent_s8_luts};
        let xt = self.operand(x, DType::I8)?;
        let sx = self.q(x).scale as f64;
        let input = |k: usize| node.inputs.get(k).copied().flatten();
        let rows = r.direction.count() * r.kind.gates() * r.hidden;
        let gate_unit = (1u32 << GATE_FRAC_BITS) as f64;
        // W and R: symmetric int8 per gate row.
        let mut weights = Vec::new();
        let mut scales = Vec::new();
        for k in [1, 2] {
            let v = input(k).ok_or_else(|| {
                ConvertError::Invalid(format!("node '{}' lacks W or R", node.name))
            })?;
            let data = self.g.const_f32(v).ok_or_else(|| {
                ConvertError::Invalid(format!("weights of '{}' are not constant", node.name))
            })?;
            let cols = data.len() / rows.max(1);
            let (q, s) = quantize_rows_s8(&data, rows, cols);
            let name = self.g.values[v].name.clone();
            let st = self.constant(
                format!("{name}.scales"),
                DType::F32,
                vec![rows],
                f32_bytes(&s),
                TensorQuant::None,
            );
            weights.push(self.constant(
                name,
                DType::I8,
                vec![rows, cols],
                q,
                TensorQuant::PerChannel { scales: st },
            ));
            scales.push(s);
        }
        let bias = match input(3) {
            None => NONE_INDEX,
            Some(v) => {
                let b = self.g.const_f32(v).ok_or_else(|| {
                    ConvertError::Invalid(format!("bias of '{}' is not constant", node.name))
                })?;
                let q: Vec<i32> = b
                    .iter()
                    .map(|&v| {
                        (v as f64 * gate_unit)
                            .round()
                            .clamp(i32::MIN as f64, i32::MAX as f64) as i32
                    })
                    .collect();
                let len = q.len();
                self.constant(
                    format!("{}.bias_q12", node.name),
                    DType::I32,
                    vec![len],
                    i32_bytes(&q),
                    TensorQuant::None,
                )
            }
        };
        // x part: sx * sw / 2^-12; h part: 2^-15 * sr / 2^-12.
        let requant: Vec<i32> = (0..rows)
            .flat_map(|row| {
                let rx = Requant::from_real(sx * scales[0][row] as f64 * gate_unit);
                let rh = Requant::from_real(scales[1][row] as f64 / 8.0);
                [rx.multiplier, rx.shift, rh.multiplier, rh.shift]
            })
            .collect();
        let requant = self.constant(
            format!("{}.requant", node.name),
            DType::I32,
            vec![rows, 4],
            i32_bytes(&requant),
            TensorQuant::None,
        );
        let luts = self.constant(
            format!("{}.luts", node.name),
            DType::I32,
            vec![2, LUT_ENTRIES],
            i32_bytes(&recurrent_s8_luts()),
            TensorQuant::None,
        );
        let mut inputs = vec![xt, weights[0], weights[1], bias];
        inputs.push(match input(4) {
            Some(v) => self.operand(v, DType::I32)?,
            None => NONE_INDEX,
        });
        for k in [5, 6] {
            inputs.push(match input(k) {
                Some(v) => self.operand(v, DType::F32)?,
                None => NONE_INDEX,
            });
        }
        inputs.extend([NONE_INDEX, requant, luts]);
        Ok(inputs)
    }

    /// Inputs `[x, weights, bias, requant]` of a conv / fully connected node.
    fn weighted_inputs(
        &mut self,
        node: &Node,
        x: usize,
        int8: bool,
    ) -> Result<Vec<u32>, ConvertError> {
        let w = node.inputs[1]
            .ok_or_else(|| ConvertError::Invalid(format!("node '{}' has no weights", node.name)))?;
        let wv = &self.g.values[w];
        let wdata = wv.konst.as_ref().map(|c| c.to_f32()).ok_or_else(|| {
            ConvertError::Invalid(format!("weights of '{}' are not constant", node.name))
        })?;
        let out_ch = wv.shape[0];
        let bias = node
            .inputs
            .get(2)
            .copied()
            .flatten()
            .and_then(|b| self.g.const_f32(b));
        let (wname, wshape) = (wv.name.clone(), wv.shape.clone());
        if !int8 {
            let xt = self.operand(x, DType::F32)?;
            let wt = if self.precision == Precision::F16 {
                let bytes = wdata
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect();
                self.constant(wname, DType::F16, wshape, bytes, TensorQuant::None)
            } else {
                self.constant(
                    wname,
                    DType::F32,
                    wshape,
                    f32_bytes(&wdata),
                    TensorQuant::None,
                )
            };
            let bt = match bias {
                Some(b) => self.constant(
                    format!("{}.bias", node.name),
                    DType::F32,
                    vec![out_ch],
                    f32_bytes(&b),
                    TensorQuant::None,
                ),
                None => NONE_INDEX,
            };
            return Ok(vec![xt, wt, bt]);
        }
        let xt = self.operand(x, DType::I8)?;
        let (qx, qy) = (self.q(x), self.q(node.output));
        let row = wdata.len() / out_ch.max(1);
        let mut scales = Vec::with_capacity(out_ch);
        let mut qw = Vec::with_capacity(wdata.len());
        for oc in 0..out_ch {
            let r = &wdata[oc * row..(oc + 1) * row];
            let max = r.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(s);
            qw.extend(
                r.iter()
                    .map(|&v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8),
            );
        }
        let bias = bias.unwrap_or(vec![0.0; out_ch]);
        let qbias: Vec<i32> = (0..out_ch)
            .map(|oc| {
                (bias[oc] as f64 / (qx.scale as f64 * scales[oc] as f64))
                    .round()
                    .clamp(i32::MIN as f64, i32::MAX as f64) as i32
            })
            .collect();
        let requant: Vec<i32> = (0..out_ch)
            .flat_map(|oc| {
                let r = Requant::from_real(qx.scale as f64 * scales[oc] as f64 / qy.scale as f64);
                [r.multiplier, r.shift]
            })
            .collect();
        let st = self.constant(
            format!("{wname}.scales"),
            DType::F32,
            vec![out_ch],
            f32_bytes(&scales),
            TensorQuant::None,
        );
        let wt = self.constant(
            wname,
            DType::I8,
            wshape,
            qw,
            TensorQuant::PerChannel { scales: st },
        );
        let bt = self.constant(
            format!("{}.bias", node.name),
            DType::I32,
            vec![out_ch],
            i32_bytes(&qbias),
            TensorQuant::None,
        );
        let rt = self.constant(
            format!("{}.requant", node.name),
            DType::I32,
            vec![2 * out_ch],
            i32_bytes(&requant),
            TensorQuant::None,
        );
        Ok(vec![xt, wt, bt, rt])
    }
}
