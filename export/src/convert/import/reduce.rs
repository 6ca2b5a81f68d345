//! Reductions over constant axes (ReduceMean, ReduceSum, ReduceMax,
//! ReduceL2, ReduceLogSumExp...): one runtime Reduce node with an axis mask;
//! ArgMax and ArgMin: one runtime ArgMax node.

use tern_runtime::format::Opcode;
use tern_runtime::kernels::reduce_f32::ReduceOp;
use tern_runtime::ops::ArgMaxParams;

use super::{NodeCtx, OpEntry, Result};
use crate::convert::graph::{Elem, Op};
use crate::convert::support::Int8Support::FloatIsland;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new("ArgMax", FloatIsland, "int64 indices as i32", |c| {
        c.arg_max(false)
    }),
    OpEntry::new("ArgMin", FloatIsland, "int64 indices as i32", |c| {
        c.arg_max(true)
    }),
    OpEntry::new("ReduceL1", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::L1)
    }),
    OpEntry::new("ReduceL2", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::L2)
    }),
    OpEntry::new("ReduceLogSumExp", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::LogSumExp)
    }),
    OpEntry::new("ReduceMax", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::Max)
    }),
    OpEntry::new("ReduceMean", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::Mean)
    }),
    OpEntry::new("ReduceMin", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::Min)
    }),
    OpEntry::new("ReduceProd", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::Prod)
    }),
    OpEntry::new("ReduceSum", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::Sum)
    }),
    OpEntry::new("ReduceSumSquare", FloatIsland, "constant axes", |c| {
        c.reduce(ReduceOp::SumSquare)
    }),
];

impl NodeCtx<'_> {
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

    /// ArgMax / ArgMin (`min`): `axis`, `keepdims`, `select_last_index`.
    pub(super) fn arg_max(&mut self, min: bool) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        let axis = self.axis(self.int("axis", 0), s.len())?;
        let mut shape = s.clone();
        if self.int("keepdims", 1) == 1 {
            shape[axis] = 1;
        } else {
            shape.remove(axis);
        }
        let mut params = Vec::new();
        ArgMaxParams {
            axis,
            min,
            last: self.int("select_last_index", 0) == 1,
        }
        .encode(&mut params);
        let op = Op::Generic {
            opcode: Opcode::ArgMax,
            params,
        };
        self.emit_elem(op, vec![Some(x)], shape, Elem::I32)
    }
}
