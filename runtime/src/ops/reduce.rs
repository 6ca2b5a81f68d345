//! Reduce: sum, mean, max, ... over a set of axes (float).

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;
use crate::kernels::reduce_f32::ReduceOp;

/// The f32 kernel.
pub const ANY: Registration = Registration {
    opcode: Opcode::Reduce,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

/// Reduction codes (word 0 of Reduce's parameters).
pub fn reduce_op_code(op: ReduceOp) -> u32 {
    use ReduceOp::*;
    match op {
        Sum => 0,
        Mean => 1,
        Max => 2,
        Min => 3,
        Prod => 4,
        SumSquare => 5,
        L1 => 6,
        L2 => 7,
        LogSumExp => 8,
    }
}

/// Decodes [`reduce_op_code`].
pub fn reduce_op(code: u32) -> Option<ReduceOp> {
    use ReduceOp::*;
    Some(match code {
        0 => Sum,
        1 => Mean,
        2 => Max,
        3 => Min,
        4 => Prod,
        5 => SumSquare,
        6 => L1,
        7 => L2,
        8 => LogSumExp,
        _ => return None,
    })
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let (x, y) = (op.input(0)?, op.output()?);
    expect_dtype(&x, DType::F32)?;
    expect_dtype(&y, DType::F32)?;
    let [reduction, mask] = op.params() else {
        return Err("bad reduce parameters");
    };
    reduce_op(*reduction).ok_or("unknown reduction")?;
    if *mask >> x.rank != 0 {
        return Err("reduction axis out of range");
    }
    let kept: usize = (0..x.rank)
        .filter(|d| mask & (1 << d) == 0)
        .map(|d| x.dims[d])
        .product();
    if kept != y.len() {
        return Err("output length is not the product of the kept axes");
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let reduction = op.decode(|p| reduce_op(*p.first()?))?;
    let x = op.input(0)?;
    kernels::reduce_f32::reduce_f32(
        reduction,
        op.read(x),
        x.shape(),
        op.params()[1],
        op.output(),
    );
    Ok(())
}
