//! Data movement and layout: Reshape/Flatten/Squeeze/Unsqueeze (a Copy with a
//! new shape), Transpose, Concat, Expand, Pad and Cast, with their constant
//! folding.

use tern_runtime::kernels::compare::CompareOp;
use tern_runtime::ops::pad_mode;

use super::{Folded, NodeCtx, OpEntry, Result};
use crate::convert::graph::{ConstData, Elem, Op};
use crate::convert::support::Int8Support::{DataMove, FloatIsland, Kernel};

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new("Cast", FloatIsland, "float, int32/int64 (as i32) and bool; f16/f64/bf16 targets as f32; no narrow or unsigned integer targets", |c| c.cast()).folds_with(|c, xs, xd| c.fold_cast(xs, xd)),
    OpEntry::new("Concat", Kernel, "", |c| c.concat()).folds_with(|c, xs, xd| c.fold_concat(xs, xd)),
    OpEntry::new("Expand", DataMove, "constant shape", |c| c.expand()),
    OpEntry::new("Flatten", DataMove, "", |c| c.reshape()).folds_with(|c, xs, xd| c.fold_reshape(xs, xd)),
    OpEntry::new("Pad", DataMove, "constant, reflect, edge; constant pads, value and axes", |c| c.pad()),
    OpEntry::new("Reshape", DataMove, "static shapes", |c| c.reshape()).folds_with(|c, xs, xd| c.fold_reshape(xs, xd)),
    OpEntry::new("Squeeze", DataMove, "", |c| c.reshape()).folds_with(|c, xs, xd| c.fold_reshape(xs, xd)),
    OpEntry::new("Transpose", DataMove, "", |c| c.transpose()).folds_with(|c, xs, xd| c.fold_transpose(xs, xd)),
    OpEntry::new("Unsqueeze", DataMove, "", |c| c.reshape()).folds_with(|c, xs, xd| c.fold_reshape(xs, xd)),
];

impl NodeCtx<'_> {
    /// Reshape / Flatten / Squeeze / Unsqueeze: a Copy into the new shape.
    fn reshape(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let shape = self.reshaped(&self.shape(x))?;
        self.emit(Op::Copy, vec![Some(x)], shape)
    }

    /// Output shape of Reshape/Flatten/Squeeze/Unsqueeze applied to `s`.
    fn reshaped(&self, s: &[usize]) -> Result<Vec<usize>> {
        let n: usize = s.iter().product();
        let shape = match self.node.op_type.as_str() {
            "Reshape" => {
                let target = self.const_ints(1, "shape")?;
                let allow_zero = self.int("allowzero", 0) == 1;
                let mut out: Vec<usize> = Vec::new();
                let mut infer = None;
                for (d, &t) in target.iter().enumerate() {
                    match t {
                        -1 => {
                            infer = Some(d);
                            out.push(1);
                        }
                        0 if !allow_zero => out.push(
                            *s.get(d)
                                .ok_or_else(|| self.invalid("0 in shape past the input rank"))?,
                        ),
                        t if t >= 0 => out.push(t as usize),
                        _ => return Err(self.invalid(format!("bad target shape {target:?}"))),
                    }
                }
                if let Some(d) = infer {
                    let known: usize = out.iter().product();
                    if known == 0 || !n.is_multiple_of(known) {
                        return Err(
                            self.invalid(format!("cannot infer -1 reshaping {s:?} to {target:?}"))
                        );
                    }
                    out[d] = n / known;
                }
                out
            }
            "Flatten" => {
                let axis = self.int("axis", 1);
                let axis = if axis < 0 {
                    axis + s.len() as i64
                } else {
                    axis
                } as usize;
                let outer: usize = s[..axis.min(s.len())].iter().product();
                vec![outer, n / outer.max(1)]
            }
            "Squeeze" => {
                let axes = if self.opset >= 13 {
                    self.input(1)?
                        .map(|_| self.const_ints(1, "axes"))
                        .transpose()?
                } else {
                    self.ints("axes")
                };
                match axes {
                    None => s.iter().copied().filter(|&d| d != 1).collect(),
                    Some(axes) => {
                        let axes: Vec<usize> = axes
                            .iter()
                            .map(|&a| self.axis(a, s.len()))
                            .collect::<Result<_>>()?;
                        s.iter()
                            .enumerate()
                            .filter(|(d, _)| !axes.contains(d))
                            .map(|(_, &v)| v)
                            .collect()
                    }
                }
            }
            _ => {
                let axes = if self.opset >= 13 {
                    self.const_ints(1, "axes")?
                } else {
                    self.ints("axes").unwrap_or_default()
                };
                let rank = s.len() + axes.len();
                let axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| self.axis(a, rank))
                    .collect::<Result<_>>()?;
                let mut it = s.iter();
                (0..rank)
                    .map(|d| {
                        if axes.contains(&d) {
                            1
                        } else {
                            *it.next().unwrap_or(&1)
                        }
                    })
                    .collect()
            }
        };
        if shape.iter().product::<usize>() != n {
            return Err(self.invalid(format!(
                "reshaping {s:?} to {shape:?} changes the element count"
            )));
        }
        Ok(shape)
    }

    fn fold_reshape(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        Ok(Some((self.reshaped(&xs)?, xd)))
    }

    fn transpose(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let s = self.shape(x);
        let perm = self.perm(s.len())?;
        let shape = perm.iter().map(|&p| s[p]).collect();
        self.emit(Op::Transpose { perm }, vec![Some(x)], shape)
    }

    fn perm(&self, rank: usize) -> Result<Vec<usize>> {
        let perm: Vec<usize> = match self.ints("perm") {
            Some(p) => p
                .iter()
                .map(|&a| self.axis(a, rank))
                .collect::<Result<_>>()?,
            None => (0..rank).rev().collect(),
        };
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        if sorted != (0..rank).collect::<Vec<_>>() {
            return Err(self.invalid(format!("perm {perm:?} is not a permutation")));
        }
        Ok(perm)
    }

    fn fold_transpose(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        self.check_rank(&xs)?; // transpose's limit
        let perm = self.perm(xs.len())?;
        let shape: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
        let v = xd.to_f32();
        let mut out = vec![0f32; v.len()];
        tern_runtime::kernels::transpose::transpose(&v, &xs, &perm, &mut out);
        Ok(Some((shape, ConstData::F32(out))))
    }

    fn concat(&mut self) -> Result<()> {
        let inputs = self.concat_inputs()?;
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| self.shape(v)).collect();
        let (axis, shape) = self.concat_shape(&shapes)?;
        // A constant input becomes a constant tensor in the file: fine.
        self.emit(
            Op::Concat { axis },
            inputs.into_iter().map(Some).collect(),
            shape,
        )
    }

    /// Value ids of Concat's inputs (at least one).
    fn concat_inputs(&self) -> Result<Vec<usize>> {
        if self.node.input.is_empty() {
            return Err(self.invalid("Concat needs at least one input"));
        }
        (0..self.node.input.len())
            .map(|k| self.required(k))
            .collect()
    }

    /// Concat's axis and output shape from its input shapes, which must agree outside the axis.
    fn concat_shape(&self, shapes: &[Vec<usize>]) -> Result<(usize, Vec<usize>)> {
        let first = shapes
            .first()
            .ok_or_else(|| self.invalid("Concat needs at least one input"))?;
        // `axis` is required from opset 4; opsets 1-3 default it to 1.
        let axis = self.axis(self.int("axis", 1), first.len())?;
        let mut shape = first.clone();
        shape[axis] = 0;
        for s in shapes {
            if s.len() != first.len() || (0..s.len()).any(|d| d != axis && s[d] != first[d]) {
                return Err(self.invalid(format!(
                    "input shapes {first:?} and {s:?} differ outside axis {axis}"
                )));
            }
            shape[axis] += s[axis];
        }
        Ok((axis, shape))
    }

    fn fold_concat(&self, _xs: Vec<usize>, _xd: ConstData) -> Result<Option<Folded>> {
        let inputs = self.concat_inputs()?;
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| self.shape(v)).collect();
        let (axis, shape) = self.concat_shape(&shapes)?;
        let parts: Vec<&ConstData> = inputs
            .iter()
            .map(|&v| {
                self.g.values[v]
                    .konst
                    .as_ref()
                    .ok_or_else(|| self.invalid("Concat input is not a constant"))
            })
            .collect::<Result<_>>()?;
        // Each input block is `shape[axis] * inner` values per outer index.
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let blocks: Vec<usize> = shapes.iter().map(|s| s[axis] * inner).collect();
        let data = if parts.iter().all(|d| matches!(d, ConstData::I64(_))) {
            let values: Vec<Vec<i64>> = parts.iter().map(|d| d.to_i64()).collect();
            ConstData::I64(interleave(&values, &blocks, outer))
        } else {
            let values: Vec<Vec<f32>> = parts.iter().map(|d| d.to_f32()).collect();
            ConstData::F32(interleave(&values, &blocks, outer))
        };
        Ok(Some((shape, data)))
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

    fn pad(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let s = self.shape(x);
        let rank = s.len();
        let (pads, value) = if self.opset < 11 {
            (
                self.ints("pads").unwrap_or_default(),
                self.float("value", 0.0),
            )
        } else {
            let pads = self.const_ints(1, "pads")?;
            let value = match self.input(2)? {
                None => 0.0,
                Some(_) => self
                    .konst(2)?
                    .ok_or_else(|| self.unsupported("constant_value (input 2) must be a constant"))?
                    .to_f32()
                    .first()
                    .copied()
                    .unwrap_or(0.0),
            };
            // With `axes`, pads name only those axes (begins, then ends).
            let pads = match self.input(3)? {
                None => pads,
                Some(_) => {
                    let axes = self.const_ints(3, "axes")?;
                    if pads.len() != 2 * axes.len() {
                        return Err(self.invalid(format!(
                            "{} pads for {} axes",
                            pads.len(),
                            axes.len()
                        )));
                    }
                    let mut full = vec![0; 2 * rank];
                    for (i, &a) in axes.iter().enumerate() {
                        let d = self.axis(a, rank)?;
                        full[d] = pads[i];
                        full[rank + d] = pads[axes.len() + i];
                    }
                    full
                }
            };
            (pads, value)
        };
        if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
            return Err(
                self.unsupported(format!("pads {pads:?} (need 2 x rank non-negative values)"))
            );
        }
        if self.elem(x) == Elem::I32 && value != 0.0 {
            return Err(self.unsupported(format!(
                "constant_value {value} on an integer tensor (only 0 is supported)"
            )));
        }
        let mode = match self.string("mode", "constant").as_str() {
            "constant" => pad_mode::CONSTANT,
            "reflect" => pad_mode::REFLECT,
            "edge" => pad_mode::EDGE,
            other => return Err(self.unsupported(format!("mode {other}"))),
        };
        let begins: Vec<usize> = pads[..rank].iter().map(|&p| p as usize).collect();
        let ends: Vec<usize> = pads[rank..].iter().map(|&p| p as usize).collect();
        let shape = (0..rank)
            .map(|d| s[d].checked_add(begins[d])?.checked_add(ends[d]))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| self.invalid(format!("pads {pads:?} overflow the padded shape")))?;
        self.emit(
            Op::Pad {
                mode,
                value,
                begins,
                ends,
            },
            vec![Some(x)],
            shape,
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

    /// Cast of a constant: float targets as f32, bool as 0/1, narrower integer
    /// types wrapping.
    fn fold_cast(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        let to = self.int("to", 1);
        let ints = |f: fn(i64) -> i64| ConstData::I64(xd.to_i64().into_iter().map(f).collect());
        let data = match to {
            1 | 10 | 11 | 16 => ConstData::F32(xd.to_f32()),
            9 => ConstData::I64(match &xd {
                ConstData::F32(v) => v.iter().map(|&x| i64::from(x != 0.0)).collect(),
                ConstData::I64(v) => v.iter().map(|&x| i64::from(x != 0)).collect(),
            }),
            // Narrower integer types wrap (as numpy's astype).
            2 => ints(|v| v as u8 as i64),
            3 => ints(|v| v as i8 as i64),
            4 => ints(|v| v as u16 as i64),
            5 => ints(|v| v as i16 as i64),
            6 => ints(|v| v as i32 as i64),
            12 => ints(|v| v as u32 as i64),
            7 | 13 => ints(|v| v),
            _ => return Ok(None),
        };
        Ok(Some((xs, data)))
    }
}

/// Concatenation of `outer` rounds of one block from each part: `blocks[k]` values of
/// `parts[k]` per round.
fn interleave<T: Copy>(parts: &[Vec<T>], blocks: &[usize], outer: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(blocks.iter().sum::<usize>() * outer);
    for o in 0..outer {
        for (part, &block) in parts.iter().zip(blocks) {
            out.extend_from_slice(&part[o * block..(o + 1) * block]);
        }
    }
    out
}
