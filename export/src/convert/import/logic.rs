//! Comparisons (Equal, Less, Greater... as i32 0/1), Not and Where.

use tern_runtime::kernels::compare::CompareOp;

use super::{NodeCtx, OpEntry, Result};
use crate::convert::graph::{ConstData, Elem, Op};
use crate::convert::support::Int8Support::FloatIsland;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new(
        "Equal",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
        |c| c.compare(CompareOp::Equal),
    ),
    OpEntry::new(
        "Greater",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
        |c| c.compare(CompareOp::Greater),
    ),
    OpEntry::new(
        "GreaterOrEqual",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
        |c| c.compare(CompareOp::GreaterOrEqual),
    ),
    OpEntry::new(
        "Less",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
        |c| c.compare(CompareOp::Less),
    ),
    OpEntry::new(
        "LessOrEqual",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
        |c| c.compare(CompareOp::LessOrEqual),
    ),
    OpEntry::new("Not", FloatIsland, "as Equal(x, 0)", |c| c.not()),
    OpEntry::new("Where", FloatIsland, "numpy broadcasting", |c| c.where_op()),
];

impl NodeCtx<'_> {
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
}
