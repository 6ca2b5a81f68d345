//! Indexing: Slice, Split and Gather, with the folding of constant Gathers and
//! 1-D Slices (shape computations).

use super::{Folded, NodeCtx, OpEntry, Result};
use crate::convert::graph::{ConstData, Elem, Op};
use crate::convert::support::Int8Support::DataMove;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new("Gather", DataMove, "negative indices", |c| c.gather())
        .folds_with(|c, xs, xd| c.fold_gather(xs, xd)),
    OpEntry::new(
        "Slice",
        DataMove,
        "constant starts/ends/axes/steps, negative steps",
        |c| c.slice(),
    )
    .folds_with(|c, xs, xd| c.fold_slice(xs, xd)),
    OpEntry::new("Split", DataMove, "constant split sizes", |c| c.split()),
];

impl NodeCtx<'_> {
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
            if steps[k] == 0 {
                return Err(self.invalid("slice step 0"));
            }
            // A step past the axis length selects at most one element, as the
            // length itself does: clamped so that the format's 32-bit step holds it
            // and the length below cannot overflow.
            let reach = n.clamp(1, i32::MAX as i64);
            let st = steps[k].clamp(-reach, reach);
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

    /// A 1-D slice with step 1 (opset >= 10), as shape computations use.
    fn fold_slice(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        if !(xs.len() == 1 && self.opset >= 10) {
            return Ok(None);
        }
        let first = |k: usize, what: &str| -> Result<i64> {
            self.const_ints(k, what)?
                .first()
                .copied()
                .ok_or_else(|| self.invalid(format!("empty {what}")))
        };
        let (start, end) = (first(1, "starts")?, first(2, "ends")?);
        let step = match self.input(4)? {
            Some(_) => first(4, "steps")?,
            None => 1,
        };
        let n = xs[0] as i64;
        let norm = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
        if step != 1 {
            return Ok(None);
        }
        let (a, b) = (norm(start) as usize, norm(end) as usize);
        let b = b.max(a);
        let data = match xd {
            ConstData::F32(v) => ConstData::F32(v[a..b].to_vec()),
            ConstData::I64(v) => ConstData::I64(v[a..b].to_vec()),
        };
        Ok(Some((vec![b - a], data)))
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

    fn fold_gather(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        let idx = self.const_ints(1, "indices")?;
        let is = self.shape(self.required(1)?);
        let axis = self.axis(self.int("axis", 0), xs.len())?;
        let outer: usize = xs[..axis].iter().product();
        let inner: usize = xs[axis + 1..].iter().product();
        let mut shape = xs[..axis].to_vec();
        shape.extend(&is);
        shape.extend(&xs[axis + 1..]);
        let pick = |o: usize, i: i64, j: usize| -> Result<usize> {
            let i = if i < 0 { i + xs[axis] as i64 } else { i };
            if i < 0 || i as usize >= xs[axis] {
                return Err(self.invalid("gather index out of range"));
            }
            Ok((o * xs[axis] + i as usize) * inner + j)
        };
        let mut order = Vec::new();
        for o in 0..outer {
            for &i in &idx {
                for j in 0..inner {
                    order.push(pick(o, i, j)?);
                }
            }
        }
        let data = match &xd {
            ConstData::F32(v) => ConstData::F32(order.iter().map(|&k| v[k]).collect()),
            ConstData::I64(v) => ConstData::I64(order.iter().map(|&k| v[k]).collect()),
        };
        Ok(Some((shape, data)))
    }
}
