//! One graph node -> one [`OpDesc`]: its opcode, encoded parameters and operand
//! tensors (converted to the node's precision), and its output tensor's
//! quantization.

use tern_runtime::format::{DType, NONE_INDEX, Opcode};
use tern_runtime::kernels::binary_s8::BinaryS8Params;
use tern_runtime::kernels::lut_s8::build_lut_s8;
use tern_runtime::kernels::softmax_s8::softmax_s8_exp_table;
use tern_runtime::kernels::{
    ConvGeometry, conv_transpose2d_f32, conv_transpose2d_s8_fast, conv2d_f32, conv2d_s8_fast,
};
use tern_runtime::ops::{self, ClampWords, ConvParams, FullyConnectedParams, PoolParams};
use tern_runtime::quant::Requant;

use super::{Lowering, QParams, i32_bytes, shape4};
use crate::convert::ConvertError;
use crate::convert::file::{OpDesc, Storage, TensorDesc, TensorQuant};
use crate::convert::graph::{Elem, Node, Op};

impl Lowering<'_> {
    pub(super) fn node(&mut self, node: &Node) -> Result<(), ConvertError> {
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
                let geometry = ConvGeometry {
                    in_shape: shape4(&self.g.values[x].shape),
                    out_shape: shape4(&self.g.values[node.output].shape),
                    window: *window,
                    groups: *groups,
                };
                let bytes = match (transpose, int8) {
                    (false, true) => conv2d_s8_fast::conv2d_s8_fast_scratch_len_fast(&geometry),
                    (false, false) => 4 * conv2d_f32::conv2d_f32_scratch_len(&geometry),
                    (true, true) => {
                        conv_transpose2d_s8_fast::conv_transpose2d_s8_fast_scratch_len(&geometry)
                    }
                    (true, false) => {
                        4 * conv_transpose2d_f32::conv_transpose2d_f32_scratch_len(&geometry)
                    }
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
                    if int8 && !transpose {
                        let min = conv2d_s8_fast::conv2d_s8_fast_scratch_len(&geometry);
                        self.file.scratch_min.push((s, min));
                    } else if transpose && !int8 {
                        // The gather form needs none: `--small-arena` drops it.
                        self.file.scratch_min.push((s, 0));
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
                    let t = self.lut_constant(&node.name, &table);
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
            Op::Generic { opcode, params } => {
                op.opcode = *opcode;
                op.params = params.clone();
                for &v in node.inputs.iter().flatten() {
                    let dtype = match self.g.values[v].elem {
                        Elem::I32 => DType::I32,
                        Elem::F32 => DType::F32,
                    };
                    op.inputs.push(self.operand(v, dtype)?);
                }
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
}
