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
use super::graph::{Graph, Node, Op};
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

struct Lowering<'g> {
    g: &'g Graph,
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
        let t = if int8 {
            let q = l.range_q(v)?;
            l.qparams.insert(v, q);
            l.arena_tensor(v, DType::I8, q.into())
        } else {
            l.arena_tensor(v, DType::F32, TensorQuant::None)
        };
        l.tensor_of.insert(v, t);
        l.file.inputs.push(t);
    }
    for node in &g.nodes {
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

    /// Value `v` as a tensor of `dtype` (f32 or i8), converting or quantizing constants.
    fn operand(&mut self, v: usize, dtype: DType) -> Result<u32, ConvertError> {
        if let Some(&t) = self.converted.get(&(v, dtype)) {
            return Ok(t);
        }
        let value = &self.g.values[v];
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
        self.precision == Precision::Int8 && !matches!(node.op, Op::Lrn(_))
    }

    fn node(&mut self, node: &Node) -> Result<(), ConvertError> {
        let int8 = self.int8(node);
        let act_dtype = if int8 { DType::I8 } else { DType::F32 };
        let x = node.inputs[0]
            .ok_or_else(|| ConvertError::Invalid(format!("node '{}' has no input", node.name)))?;
        // Output quantization: pass-through ops keep their input's.
        let out_q = if int8 {
            Some(match &node.op {
                Op::MaxPool { .. }
                | Op::AvgPool { .. }
                | Op::Copy
                | Op::Transpose { .. }
                | Op::Pad { .. }
                | Op::Resize(_) => {
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
        let y = self.arena_tensor(node.output, act_dtype, quant);
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
        }
        self.file.ops.push(op);
        Ok(())
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
