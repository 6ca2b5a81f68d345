//! Normalizations and Softmax: BatchNormalization (inference mode, as a
//! per-channel Mul + Add), LayerNormalization, LRN and Softmax (opset < 13's
//! flattening included).

use tern_runtime::kernels::BinaryOp;
use tern_runtime::kernels::activation_f32::{Activation, Unary};
use tern_runtime::kernels::reduce_f32::ReduceOp;
use tern_runtime::ops::LrnParams;

use super::math::broadcast_to;
use super::{NodeCtx, OpEntry, Result};
use crate::convert::graph::{ConstData, Elem, Op};
use crate::convert::support::Int8Support::{FloatIsland, Kernel};

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new(
        "BatchNormalization",
        Kernel,
        "inference mode (no training_mode); folded into the previous Conv/Gemm or lowered to Mul+Add",
        |c| c.batch_norm(),
    ),
    OpEntry::new(
        "LayerNormalization",
        FloatIsland,
        "constant scale and bias; Mean / InvStdDev outputs by a separate reduction chain",
        |c| c.layer_norm(),
    ),
    OpEntry::new("LRN", FloatIsland, "", |c| c.lrn()),
    OpEntry::new("Softmax", Kernel, "", |c| c.softmax()),
];

impl NodeCtx<'_> {
    fn batch_norm(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        if self.int("training_mode", 0) != 0 {
            return Err(self.unsupported("training_mode = 1 (batch statistics)"));
        }
        if self.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(
                self.unsupported("running mean/var (or saved statistics) outputs (training mode)")
            );
        }
        let x = self.required(0)?;
        let consts: Vec<Vec<f32>> = (1..5)
            .map(|k| {
                self.konst(k)?.map(|c| c.to_f32()).ok_or_else(|| {
                    let what = ["scale", "B", "input_mean", "input_var"][k - 1];
                    self.unsupported(format!(
                        "{what} (input {k}) must be a constant (inference mode)"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let eps = self.float("epsilon", 1e-5);
        let s = self.shape(x);
        let c = *s
            .get(1)
            .ok_or_else(|| self.invalid("input needs a channel axis"))?;
        if consts.iter().any(|v| v.len() != c) {
            return Err(self.invalid("parameter lengths differ from the channel count"));
        }
        let scale: Vec<f32> = (0..c)
            .map(|i| consts[0][i] / (consts[3][i] + eps).sqrt())
            .collect();
        let shift: Vec<f32> = (0..c)
            .map(|i| consts[1][i] - consts[2][i] * scale[i])
            .collect();
        let mut cshape = vec![c];
        cshape.extend(std::iter::repeat_n(1, s.len().saturating_sub(2)));
        let base = self.node_name();
        let sv = self.g.add_value(
            &format!("{base}.scale"),
            cshape.clone(),
            Some(ConstData::F32(scale)),
        );
        let bv = self.g.add_value(
            &format!("{base}.shift"),
            cshape,
            Some(ConstData::F32(shift)),
        );
        let mid = self.g.add_value(&format!("{base}.scaled"), s.clone(), None);
        self.g.nodes.push(crate::convert::graph::Node {
            name: format!("{base}.mul"),
            op: Op::Binary {
                op: BinaryOp::Mul,
                clamp: None,
            },
            inputs: vec![Some(x), Some(sv)],
            output: mid,
        });
        self.emit(
            Op::Binary {
                op: BinaryOp::Add,
                clamp: None,
            },
            vec![Some(mid), Some(bv)],
            s,
        )
    }

    /// LayerNormalization; the optional Mean and InvStdDev outputs are computed
    /// by a separate Reduce / Sub / Mul / Reduce / Add / Sqrt / Reciprocal chain.
    pub(super) fn layer_norm(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        let axis = self.axis(self.int("axis", -1), s.len())?;
        let cols: usize = s[axis..].iter().product();
        let epsilon = self.float("epsilon", 1e-5);
        let mut inputs = vec![Some(x)];
        for (k, what) in [(1, "scale"), (2, "bias")] {
            let Some(v) = self.input(k)? else {
                inputs.push(None);
                continue;
            };
            let data = self.g.const_f32(v).ok_or_else(|| {
                self.unsupported(format!("{what} (input {k}) must be a constant"))
            })?;
            let expanded = broadcast_to(&data, &self.shape(v), &s[axis..])
                .ok_or_else(|| self.invalid(format!("{what} does not broadcast")))?;
            debug_assert_eq!(expanded.len(), cols);
            inputs.push(Some(self.add_const(
                what,
                vec![cols],
                ConstData::F32(expanded),
            )));
        }
        let outputs = self.node.output.clone();
        let y_name = outputs
            .first()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| self.invalid("no output"))?;
        let base = self.node_name();
        self.push_node(
            &base,
            y_name,
            Op::LayerNorm { axis, epsilon },
            inputs,
            s.clone(),
            Elem::F32,
        )?;
        let wanted = |k: usize| outputs.get(k).filter(|o| !o.is_empty()).cloned();
        let (mean_name, inv_name) = (wanted(1), wanted(2));
        if mean_name.is_none() && inv_name.is_none() {
            return Ok(());
        }
        // Statistics over the normalized axes, kept as size-1 axes.
        let mask: u32 = (axis..s.len()).fold(0, |m, d| m | (1 << d));
        let mut kept = s.clone();
        kept[axis..].iter_mut().for_each(|d| *d = 1);
        let step = |ctx: &mut Self,
                    suffix: &str,
                    out: Option<&String>,
                    op: Op,
                    ins: Vec<Option<usize>>,
                    shape: &[usize]| {
            let name = format!("{base}.{suffix}");
            ctx.push_node(
                &name,
                out.unwrap_or(&name),
                op,
                ins,
                shape.to_vec(),
                Elem::F32,
            )
        };
        let reduce_mean = Op::Reduce {
            op: ReduceOp::Mean,
            mask,
        };
        let mean = step(
            self,
            "mean",
            mean_name.as_ref(),
            reduce_mean.clone(),
            vec![Some(x)],
            &kept,
        )?;
        let Some(inv_name) = inv_name else {
            return Ok(());
        };
        let bin = |op| Op::Binary { op, clamp: None };
        let d = step(
            self,
            "centered",
            None,
            bin(BinaryOp::Sub),
            vec![Some(x), Some(mean)],
            &s,
        )?;
        let sq = step(
            self,
            "squared",
            None,
            bin(BinaryOp::Mul),
            vec![Some(d), Some(d)],
            &s,
        )?;
        let var = step(self, "var", None, reduce_mean, vec![Some(sq)], &kept)?;
        let eps = self.add_const("epsilon", vec![], ConstData::F32(vec![epsilon]));
        let ve = step(
            self,
            "var_eps",
            None,
            bin(BinaryOp::Add),
            vec![Some(var), Some(eps)],
            &kept,
        )?;
        let sd = step(
            self,
            "std",
            None,
            Op::Activation(Activation::Unary(Unary::Sqrt)),
            vec![Some(ve)],
            &kept,
        )?;
        let unary = Op::Activation(Activation::Unary(Unary::Reciprocal));
        step(
            self,
            "inv_std",
            Some(&inv_name),
            unary,
            vec![Some(sd)],
            &kept,
        )?;
        Ok(())
    }

    /// LRN across channels of a 4-D (NCHW) input.
    fn lrn(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        if s.len() != 4 {
            return Err(self.unsupported("only 4-D (NCHW) inputs are supported"));
        }
        let size = self.int("size", 0);
        if size < 1 {
            return Err(self.invalid("size must be >= 1"));
        }
        let p = LrnParams {
            size: size as usize,
            alpha: self.float("alpha", 1e-4),
            beta: self.float("beta", 0.75),
            bias: self.float("bias", 1.0),
        };
        self.emit(Op::Lrn(p), vec![Some(x)], s)
    }

    fn softmax(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        let default = if self.opset >= 13 { -1 } else { 1 };
        let axis = self.axis(self.int("axis", default), s.len())?;
        if self.opset >= 13 || axis + 1 == s.len() {
            return self.emit(Op::Softmax { axis }, vec![Some(x)], s);
        }
        // Opset < 13 flattens [axis..] into one axis: reshape, softmax, reshape back.
        let outer: usize = s[..axis].iter().product();
        let inner: usize = s[axis..].iter().product();
        let base = self.node_name();
        let flat = self
            .g
            .add_value(&format!("{base}.flat"), vec![outer, inner], None);
        self.g.nodes.push(crate::convert::graph::Node {
            name: format!("{base}.flatten"),
            op: Op::Copy,
            inputs: vec![Some(x)],
            output: flat,
        });
        let soft = self
            .g
            .add_value(&format!("{base}.softmax"), vec![outer, inner], None);
        self.g.nodes.push(crate::convert::graph::Node {
            name: base.clone(),
            op: Op::Softmax { axis: 1 },
            inputs: vec![Some(flat)],
            output: soft,
        });
        self.emit(Op::Copy, vec![Some(soft)], s)
    }
}
