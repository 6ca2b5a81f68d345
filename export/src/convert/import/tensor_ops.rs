//! Import of the tensor ops transformers and sequence models use: batched
//! MatMul, LayerNormalization, reductions, Slice/Split, Gather, Where and
//! comparisons, Cast, Expand, elementwise math, and the ONNX Attention op.

use tern_runtime::kernels::BinaryOp;
use tern_runtime::kernels::activation_f32::{Activation, Unary};
use tern_runtime::kernels::compare::CompareOp;
use tern_runtime::kernels::reduce_f32::ReduceOp;
use tern_runtime::ops::AttentionParams;

use super::{NodeCtx, Result};
use crate::convert::graph::{ConstData, Elem, Node, Op};

impl NodeCtx<'_> {
    /// Adds a node named `name` whose output value is `out_name`; returns the value.
    pub(super) fn push_node(
        &mut self,
        name: &str,
        out_name: &str,
        op: Op,
        inputs: Vec<Option<usize>>,
        shape: Vec<usize>,
        elem: Elem,
    ) -> Result<usize> {
        self.check_rank(&shape)?;
        let output = self.g.add_value(out_name, shape, None);
        self.g.values[output].elem = elem;
        self.g.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            output,
        });
        Ok(output)
    }

    /// A node computing this ONNX node's (single) output, of element type `elem`.
    pub(super) fn emit_elem(
        &mut self,
        op: Op,
        inputs: Vec<Option<usize>>,
        shape: Vec<usize>,
        elem: Elem,
    ) -> Result<()> {
        self.emit(op, inputs, shape)?;
        let out = self.g.nodes.last().map(|n| n.output).unwrap_or_default();
        self.g.values[out].elem = elem;
        Ok(())
    }

    /// A helper constant value.
    pub(super) fn add_const(&mut self, suffix: &str, shape: Vec<usize>, data: ConstData) -> usize {
        let name = format!("{}.{suffix}", self.node_name());
        self.g.add_value(&name, shape, Some(data))
    }

    /// Element type of value `v` (integer constants count as i32).
    pub(super) fn elem(&self, v: usize) -> Elem {
        match &self.g.values[v].konst {
            Some(ConstData::I64(_)) => Elem::I32,
            Some(ConstData::F32(_)) => Elem::F32,
            None => self.g.values[v].elem,
        }
    }

    /// Fails unless every listed input is a float tensor.
    pub(super) fn float_inputs(&self, ks: &[usize]) -> Result<()> {
        // Name a run-time integer input before a constant one (that one may fold).
        let mut order = Vec::with_capacity(ks.len());
        for &k in ks {
            if let Some(v) = self.input(k)? {
                order.push((self.g.is_const(v), k, v));
            }
        }
        order.sort_by_key(|&(konst, k, _)| (konst, k));
        for (_, k, v) in order {
            if self.elem(v) != Elem::F32 {
                return Err(self.unsupported(format!(
                    "integer tensor (input {k}): Tern runs this op on float tensors only"
                )));
            }
        }
        Ok(())
    }

    pub(super) fn unary(&mut self, u: Unary) -> Result<()> {
        self.float_inputs(&[0])?;
        self.activation(Activation::Unary(u))
    }

    pub(super) fn activation_op(&mut self, act: Activation) -> Result<()> {
        self.float_inputs(&[0])?;
        self.activation(act)
    }

    /// `Max`/`Min`/`Pow` and friends: variadic broadcasting binary ops.
    /// Variadic broadcasting Max / Min: a chain of binary ops, on float tensors
    /// or (every input an integer) on i32 tensors.
    pub(super) fn variadic(&mut self, op: BinaryOp) -> Result<()> {
        let n = self.node.input.len();
        let ids = (0..n)
            .map(|k| self.required(k))
            .collect::<Result<Vec<_>>>()?;
        let integer = !ids.is_empty() && ids.iter().all(|&v| self.elem(v) == Elem::I32);
        if !integer {
            self.float_inputs(&(0..n).collect::<Vec<_>>())?;
        }
        let elem = if integer { Elem::I32 } else { Elem::F32 };
        let Some((&first, rest)) = ids.split_first() else {
            return Err(self.invalid("needs at least one input"));
        };
        if rest.is_empty() {
            return self.alias(first);
        }
        let mut acc = first;
        for (k, &b) in rest.iter().enumerate() {
            let shape = self.broadcast(&self.shape(acc), &self.shape(b))?;
            let op = Op::Binary { op, clamp: None };
            if k + 1 == rest.len() {
                return self.emit_elem(op, vec![Some(acc), Some(b)], shape, elem);
            }
            let name = format!("{}.{}", self.node_name(), k + 1);
            acc = self.push_node(&name, &name, op, vec![Some(acc), Some(b)], shape, elem)?;
        }
        Ok(())
    }

    /// Pow of a float base; an integer exponent is cast to float (exact for
    /// the magnitudes where the result is finite in f32).
    pub(super) fn pow(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let (x, mut e) = (self.required(0)?, self.required(1)?);
        if self.elem(e) == Elem::I32 && !self.g.is_const(e) {
            let name = format!("{}.exponent", self.node_name());
            let shape = self.shape(e);
            e = self.push_node(&name, &name, Op::Cast, vec![Some(e)], shape, Elem::F32)?;
        } else if let Some(ConstData::I64(v)) = &self.g.values[e].konst {
            let data = ConstData::F32(v.iter().map(|&i| i as f32).collect());
            e = self.add_const("exponent", self.shape(e), data);
        }
        if let Some(c) = self.g.values[e].konst.as_ref().map(ConstData::to_f32)
            && c.len() == 1
            && self.shape(e).len() <= self.shape(x).len()
        {
            return self.activation(Activation::Powf { exponent: c[0] });
        }
        self.binary(BinaryOp::Pow, x, e)
    }

    pub(super) fn gelu(&mut self) -> Result<()> {
        let u = match self.string("approximate", "none").as_str() {
            "none" => Unary::Gelu,
            "tanh" => Unary::GeluTanh,
            other => return Err(self.unsupported(format!("approximate = '{other}'"))),
        };
        self.unary(u)
    }

    /// ONNX MatMul: constant 2-D right operands become FullyConnected, the rest a
    /// batched MatMul (1-D operands promoted to 2-D and the extra axis dropped).
    pub(super) fn matmul(&mut self) -> Result<()> {
        self.float_inputs(&[0, 1])?;
        let (a, b) = (self.required(0)?, self.required(1)?);
        let (sa, sb) = (self.shape(a), self.shape(b));
        if sa.is_empty() || sb.is_empty() {
            return Err(self.invalid("MatMul of a scalar"));
        }
        if let Some(bdata) = self.g.const_f32(b)
            && sb.len() == 2
            && sa.last() == Some(&sb[0])
        {
            return self.fully_connected(a, bdata, sb[0], sb[1], false, None);
        }
        let base = self.node_name();
        let mut a2 = a;
        let mut pa = sa.clone();
        if sa.len() == 1 {
            pa = vec![1, sa[0]];
            a2 = self.push_node(
                &format!("{base}.a2d"),
                &format!("{base}.a2d"),
                Op::Copy,
                vec![Some(a)],
                pa.clone(),
                Elem::F32,
            )?;
        }
        let mut b2 = b;
        let mut pb = sb.clone();
        if sb.len() == 1 {
            pb = vec![sb[0], 1];
            b2 = if let Some(c) = self.g.values[b].konst.clone() {
                self.add_const("b2d", pb.clone(), c)
            } else {
                self.push_node(
                    &format!("{base}.b2d"),
                    &format!("{base}.b2d"),
                    Op::Copy,
                    vec![Some(b)],
                    pb.clone(),
                    Elem::F32,
                )?
            };
        }
        let (m, k) = (pa[pa.len() - 2], pa[pa.len() - 1]);
        let (k2, n) = (pb[pb.len() - 2], pb[pb.len() - 1]);
        if k != k2 {
            return Err(self.invalid(format!("MatMul of {sa:?} and {sb:?}: inner sizes differ")));
        }
        let mut shape = self.broadcast(&pa[..pa.len() - 2], &pb[..pb.len() - 2])?;
        shape.extend([m, n]);
        let mut final_shape: Vec<usize> = shape[..shape.len() - 2].to_vec();
        if sa.len() > 1 {
            final_shape.push(m);
        }
        if sb.len() > 1 {
            final_shape.push(n);
        }
        if final_shape == shape {
            return self.emit(Op::MatMul, vec![Some(a2), Some(b2)], shape);
        }
        let full = self.push_node(
            &base,
            &format!("{base}.full"),
            Op::MatMul,
            vec![Some(a2), Some(b2)],
            shape,
            Elem::F32,
        )?;
        self.emit(Op::Copy, vec![Some(full)], final_shape)
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

    pub(super) fn reduce(&mut self, op: ReduceOp) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        let axes_from_input =
            self.opset >= 18 || (self.node.op_type == "ReduceSum" && self.opset >= 13);
        let axes = if axes_from_input {
            match self.input(1)? {
                Some(_) => Some(self.const_ints(1, "axes")?),
                None => None,
            }
        } else {
            self.ints("axes")
        };
        let axes = axes.filter(|a| !a.is_empty());
        let mask: u32 = match axes {
            None if self.int("noop_with_empty_axes", 0) == 1 => 0,
            None => (1u32 << s.len()) - 1,
            Some(axes) => {
                let mut m = 0;
                for a in axes {
                    m |= 1 << self.axis(a, s.len())?;
                }
                m
            }
        };
        if mask == 0 {
            return self.alias(x);
        }
        let keep = self.int("keepdims", 1) == 1;
        let shape: Vec<usize> = (0..s.len())
            .filter_map(|d| match (mask & (1 << d) != 0, keep) {
                (false, _) => Some(s[d]),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        self.emit(Op::Reduce { op, mask }, vec![Some(x)], shape)
    }

    /// Slice of an activation (constant starts/ends/axes/steps).
    pub(super) fn slice(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let s = self.shape(x);
        let rank = s.len();
        let (starts, ends, axes, steps) = if self.opset >= 10 {
            let axes = match self.input(3)? {
                Some(_) => Some(self.const_ints(3, "axes")?),
                None => None,
            };
            let steps = match self.input(4)? {
                Some(_) => Some(self.const_ints(4, "steps")?),
                None => None,
            };
            (
                self.const_ints(1, "starts")?,
                self.const_ints(2, "ends")?,
                axes,
                steps,
            )
        } else {
            (
                self.ints("starts").unwrap_or_default(),
                self.ints("ends").unwrap_or_default(),
                self.ints("axes"),
                None,
            )
        };
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(self.invalid("starts, ends, axes and steps differ in length"));
        }
        let mut first = vec![0usize; rank];
        let mut step = vec![1i64; rank];
        let mut shape = s.clone();
        for k in 0..starts.len() {
            let d = self.axis(axes[k], rank)?;
            let n = s[d] as i64;
            let st = steps[k];
            if st == 0 {
                return Err(self.invalid("slice step 0"));
            }
            let norm = |v: i64| if v < 0 { v + n } else { v };
            let (start, end) = if st > 0 {
                (norm(starts[k]).clamp(0, n), norm(ends[k]).clamp(0, n))
            } else {
                (
                    norm(starts[k]).clamp(-1, n - 1),
                    norm(ends[k]).clamp(-1, n - 1),
                )
            };
            let len = if st > 0 {
                ((end - start).max(0) + st - 1) / st
            } else {
                ((start - end).max(0) + (-st) - 1) / (-st)
            };
            first[d] = if len > 0 { start as usize } else { 0 };
            step[d] = st;
            shape[d] = len as usize;
        }
        let elem = self.elem(x);
        self.emit_elem(
            Op::Slice {
                starts: first,
                steps: step,
            },
            vec![Some(x)],
            shape,
            elem,
        )
    }

    /// Split into equal or given parts along an axis: one Slice per output.
    pub(super) fn split(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let s = self.shape(x);
        let axis = self.axis(self.int("axis", 0), s.len())?;
        let outputs = self.node.output.clone();
        let parts: Vec<usize> = if self.opset >= 13 && self.input(1)?.is_some() {
            self.const_ints(1, "split")?
                .iter()
                .map(|&v| v.max(0) as usize)
                .collect()
        } else if let Some(split) = self.ints("split") {
            split.iter().map(|&v| v.max(0) as usize).collect()
        } else {
            let n = outputs.len().max(1);
            let chunk = s[axis].div_ceil(n);
            (0..n)
                .map(|k| chunk.min(s[axis].saturating_sub(k * chunk)))
                .collect()
        };
        if parts.len() != outputs.len() || parts.iter().sum::<usize>() != s[axis] {
            return Err(self.invalid(format!(
                "split sizes {parts:?} do not cover axis {axis} of {s:?} in {} outputs",
                outputs.len()
            )));
        }
        let elem = self.elem(x);
        let mut offset = 0;
        for (k, (out, len)) in outputs.iter().zip(parts).enumerate() {
            let mut starts = vec![0; s.len()];
            starts[axis] = offset;
            let mut shape = s.clone();
            shape[axis] = len;
            offset += len;
            if out.is_empty() {
                continue;
            }
            let name = format!("{}.{k}", self.node_name());
            let v = self.push_node(
                &name,
                out,
                Op::Slice {
                    starts,
                    steps: vec![1; s.len()],
                },
                vec![Some(x)],
                shape,
                elem,
            )?;
            self.g.by_name.insert(out.clone(), v);
        }
        Ok(())
    }

    pub(super) fn gather(&mut self) -> Result<()> {
        let (data, idx) = (self.required(0)?, self.required(1)?);
        let ds = self.shape(data);
        let is = self.shape(idx);
        let axis = self.axis(self.int("axis", 0), ds.len())?;
        if self.elem(idx) != Elem::I32 {
            return Err(self.invalid("Gather indices must be integers"));
        }
        let mut shape = ds[..axis].to_vec();
        shape.extend(&is);
        shape.extend(&ds[axis + 1..]);
        let elem = self.elem(data);
        self.emit_elem(
            Op::Gather { axis },
            vec![Some(data), Some(idx)],
            shape,
            elem,
        )
    }

    pub(super) fn where_op(&mut self) -> Result<()> {
        let (c, a, b) = (self.required(0)?, self.required(1)?, self.required(2)?);
        if self.elem(c) != Elem::I32 {
            return Err(self.invalid("Where condition must be boolean"));
        }
        let elem = self.elem(a);
        if self.elem(b) != elem {
            return Err(self.invalid("Where operands differ in element type"));
        }
        let shape = self.broadcast(&self.shape(c), &self.shape(a))?;
        let shape = self.broadcast(&shape, &self.shape(b))?;
        self.emit_elem(Op::Where, vec![Some(c), Some(a), Some(b)], shape, elem)
    }

    pub(super) fn compare(&mut self, op: CompareOp) -> Result<()> {
        let (a, b) = (self.required(0)?, self.required(1)?);
        if self.elem(a) != self.elem(b) {
            return Err(self.unsupported("operands of different element types"));
        }
        let shape = self.broadcast(&self.shape(a), &self.shape(b))?;
        self.emit_elem(Op::Compare(op), vec![Some(a), Some(b)], shape, Elem::I32)
    }

    /// `Not` of a boolean: `x == 0`.
    pub(super) fn not(&mut self) -> Result<()> {
        let x = self.required(0)?;
        if self.elem(x) != Elem::I32 {
            return Err(self.invalid("Not takes a boolean"));
        }
        let zero = self.add_const("zero", vec![], ConstData::I64(vec![0]));
        let shape = self.shape(x);
        self.emit_elem(
            Op::Compare(CompareOp::Equal),
            vec![Some(x), Some(zero)],
            shape,
            Elem::I32,
        )
    }

    /// Cast between float, int32/int64 (i32) and bool (i32 0/1). Narrow and
    /// unsigned integer targets are refused: ONNX wraps values outside their
    /// range, Tern's i32 would keep them.
    pub(super) fn cast(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let to = self.int("to", 1);
        let from = self.elem(x);
        let s = self.shape(x);
        match to {
            1 | 10 | 11 | 16 if from == Elem::F32 => self.alias(x),
            1 | 10 | 11 | 16 => self.emit_elem(Op::Cast, vec![Some(x)], s, Elem::F32),
            6 | 7 if from == Elem::I32 => self.alias(x),
            6 | 7 => self.emit_elem(Op::Cast, vec![Some(x)], s, Elem::I32),
            9 => {
                // x != 0, as Equal(Equal(x, 0), 0) (NaN is true, as in ONNX).
                let zero = match from {
                    Elem::F32 => ConstData::F32(vec![0.0]),
                    Elem::I32 => ConstData::I64(vec![0]),
                };
                let zero = self.add_const("zero", vec![], zero);
                let name = format!("{}.is_zero", self.node_name());
                let is_zero = self.push_node(
                    &name,
                    &name,
                    Op::Compare(CompareOp::Equal),
                    vec![Some(x), Some(zero)],
                    s.clone(),
                    Elem::I32,
                )?;
                let false_ = self.add_const("false", vec![], ConstData::I64(vec![0]));
                self.emit_elem(
                    Op::Compare(CompareOp::Equal),
                    vec![Some(is_zero), Some(false_)],
                    s,
                    Elem::I32,
                )
            }
            other => Err(self.unsupported(format!(
                "Cast to ONNX element type {other} (Tern holds float32, int32/int64 as i32 \
                 and bool)"
            ))),
        }
    }

    pub(super) fn expand(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let target: Vec<usize> = self
            .const_ints(1, "shape")?
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        let shape = self.broadcast(&self.shape(x), &target)?;
        if shape == self.shape(x) {
            return self.alias(x);
        }
        let elem = self.elem(x);
        self.emit_elem(Op::Expand, vec![Some(x)], shape, elem)
    }

    /// The ONNX `Attention` op (opset 23) without a KV cache: 4-D Q, K, V
    /// `[batch, heads, length, dim]`, or 3-D `[batch, length, heads * dim]` with
    /// `q_num_heads` / `kv_num_heads` (split into heads around the fused op).
    pub(super) fn attention(&mut self) -> Result<()> {
        self.float_inputs(&[0, 1, 2])?;
        // `qk_matmul_output_mode` only shapes the qk_matmul_output output (rejected below).
        if self.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(self.unsupported("present_key / present_value / qk_matmul_output outputs"));
        }
        let precision = self.int("softmax_precision", 0);
        if !matches!(precision, 0 | 1) {
            return Err(self.unsupported(format!(
                "softmax_precision = {precision} (Tern's softmax runs in float32)"
            )));
        }
        let softcap = self.float("softcap", 0.0);
        if softcap != 0.0 {
            return Err(
                self.unsupported(format!("attribute softcap = {softcap} is not implemented"))
            );
        }
        if self.node.input.iter().skip(4).any(|i| !i.is_empty()) {
            return Err(
                self.unsupported("past_key / past_value / nonpad_kv_seqlen (KV cache) inputs")
            );
        }
        let (q, k, v) = (self.required(0)?, self.required(1)?, self.required(2)?);
        let (qs, ks, vs) = (self.shape(q), self.shape(k), self.shape(v));
        let ranks = [qs.len(), ks.len(), vs.len()];
        let three_d = match ranks {
            [4, 4, 4] => false,
            [3, 3, 3] => true,
            _ => {
                return Err(self.invalid(format!(
                    "Q, K, V of shapes {qs:?}, {ks:?}, {vs:?} (all 3-D or all 4-D)"
                )));
            }
        };
        let base = self.node_name();
        let (q, k, v, qs, ks, vs) = if three_d {
            let heads = |name: &str, hidden: &[usize]| -> Result<usize> {
                match self.int(name, 0) {
                    h if h > 0 && hidden.iter().all(|&d| d % h as usize == 0) => Ok(h as usize),
                    h => Err(self.invalid(format!(
                        "{name} = {h} does not divide the hidden sizes {hidden:?} of 3-D inputs"
                    ))),
                }
            };
            let hq = heads("q_num_heads", &[qs[2]])?;
            let hkv = heads("kv_num_heads", &[ks[2], vs[2]])?;
            let (q4, qs4) = self.split_heads(&base, "q", q, &qs, hq)?;
            let (k4, ks4) = self.split_heads(&base, "k", k, &ks, hkv)?;
            let (v4, vs4) = self.split_heads(&base, "v", v, &vs, hkv)?;
            (q4, k4, v4, qs4, ks4, vs4)
        } else {
            (q, k, v, qs, ks, vs)
        };
        if ks[1] == 0 || qs[1] % ks[1] != 0 || ks[1] != vs[1] {
            return Err(self.invalid(format!(
                "{} query heads and {} / {} key / value heads",
                qs[1], ks[1], vs[1]
            )));
        }
        let scale = match attr_float(self, "scale") {
            Some(s) => s,
            None => 1.0 / (qs[3] as f32).sqrt(),
        };
        let mut inputs = vec![Some(q), Some(k), Some(v)];
        if let Some(m) = self.input(3)? {
            let mask = if self.elem(m) == Elem::I32 {
                // Boolean mask: true keeps, false masks (-inf).
                let ms = self.shape(m);
                let name = format!("{base}.mask");
                let zero = self.add_const("mask.keep", vec![], ConstData::F32(vec![0.0]));
                let ninf =
                    self.add_const("mask.drop", vec![], ConstData::F32(vec![f32::NEG_INFINITY]));
                self.push_node(
                    &name,
                    &name,
                    Op::Where,
                    vec![Some(m), Some(zero), Some(ninf)],
                    ms,
                    Elem::F32,
                )?
            } else {
                m
            };
            inputs.push(Some(mask));
        }
        let out = vec![qs[0], qs[1], qs[2], vs[3]];
        let params = AttentionParams {
            scale,
            causal: self.int("is_causal", 0) == 1,
            k_transposed: false,
        };
        if !three_d {
            return self.emit(Op::Attention(params), inputs, out);
        }
        // [B, H, L, Dv] -> [B, L, H, Dv] -> [B, L, H * Dv].
        let heads_out = self.push_node(
            &base,
            &format!("{base}.heads"),
            Op::Attention(params),
            inputs,
            out.clone(),
            Elem::F32,
        )?;
        let t_name = format!("{base}.merge");
        let merged = self.push_node(
            &t_name,
            &t_name,
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            vec![Some(heads_out)],
            vec![out[0], out[2], out[1], out[3]],
            Elem::F32,
        )?;
        self.emit(
            Op::Copy,
            vec![Some(merged)],
            vec![out[0], out[2], out[1] * out[3]],
        )
    }

    /// `[B, L, H * D]` -> `[B, H, L, D]` (a reshape and a transpose).
    fn split_heads(
        &mut self,
        base: &str,
        what: &str,
        x: usize,
        s: &[usize],
        heads: usize,
    ) -> Result<(usize, Vec<usize>)> {
        let d = s[2] / heads;
        let r_name = format!("{base}.{what}.heads");
        let r = self.push_node(
            &r_name,
            &r_name,
            Op::Copy,
            vec![Some(x)],
            vec![s[0], s[1], heads, d],
            Elem::F32,
        )?;
        let shape = vec![s[0], heads, s[1], d];
        let t_name = format!("{base}.{what}.bhld");
        let t = self.push_node(
            &t_name,
            &t_name,
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            vec![Some(r)],
            shape.clone(),
            Elem::F32,
        )?;
        Ok((t, shape))
    }
}

fn attr_float(ctx: &NodeCtx<'_>, name: &str) -> Option<f32> {
    super::attr(ctx.node, name).map(|a| a.f)
}

/// `data` of `shape` broadcast (numpy rules) to `target`; None when it does not broadcast.
pub(crate) fn broadcast_to(data: &[f32], shape: &[usize], target: &[usize]) -> Option<Vec<f32>> {
    if shape.len() > target.len() {
        // Leading 1s may be dropped.
        let extra = shape.len() - target.len();
        if shape[..extra].iter().any(|&d| d != 1) {
            return None;
        }
        return broadcast_to(data, &shape[extra..], target);
    }
    let offset = target.len() - shape.len();
    for (d, &v) in shape.iter().enumerate() {
        if v != 1 && v != target[d + offset] {
            return None;
        }
    }
    if target.len() > tern_runtime::format::MAX_RANK
        || data.len() != shape.iter().product::<usize>()
    {
        return None;
    }
    let mut out = vec![0f32; target.iter().product()];
    tern_runtime::kernels::expand::expand(data, shape, &mut out, target);
    Some(out)
}
