//! Compare: elementwise comparison of f32 or i32 operands to i32 0/1,
//! broadcasting.

use super::check::{Check, OpCheck, broadcasts, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;
use crate::kernels::compare::CompareOp;

/// f32 and i32 operands.
pub const ANY: Registration = Registration {
    opcode: Opcode::Compare,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

/// Comparison codes (word 0 of Compare's parameters).
pub fn compare_op_code(op: CompareOp) -> u32 {
    use CompareOp::*;
    match op {
        Equal => 0,
        Less => 1,
        LessOrEqual => 2,
        Greater => 3,
        GreaterOrEqual => 4,
    }
}

/// Decodes [`compare_op_code`].
pub fn compare_op(code: u32) -> Option<CompareOp> {
    use CompareOp::*;
    Some(match code {
        0 => Equal,
        1 => Less,
        2 => LessOrEqual,
        3 => Greater,
        4 => GreaterOrEqual,
        _ => return None,
    })
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(2, 2)?;
    let (a, b, y, p) = (op.input(0)?, op.input(1)?, op.output()?, op.params());
    compare_op(*p.first().ok_or("missing comparison")?)
        .filter(|_| p.len() == 1)
        .ok_or("bad comparison parameters")?;
    if !matches!(a.dtype, DType::F32 | DType::I32) {
        return Err("comparisons take f32 or i32");
    }
    expect_dtype(&b, a.dtype)?;
    expect_dtype(&y, DType::I32)?;
    broadcasts(&a, &y)?;
    broadcasts(&b, &y)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let cmp = op.decode(|p| compare_op(*p.first()?))?;
    let (a, b, y) = (op.input(0)?, op.input(1)?, op.y());
    if a.dtype == DType::F32 {
        kernels::compare::compare::<f32>(cmp, op.tensor(a), op.tensor(b), op.output(), y.shape());
    } else {
        kernels::compare::compare::<i32>(cmp, op.tensor(a), op.tensor(b), op.output(), y.shape());
    }
    Ok(())
}
