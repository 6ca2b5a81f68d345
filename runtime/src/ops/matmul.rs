//! MatMul: batched matrix product of two f32 activations (numpy broadcasting).

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;

/// The f32 kernel.
pub const ANY: Registration = Registration {
    opcode: Opcode::MatMul,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(2, 2)?;
    let (a, b, y) = (op.input(0)?, op.input(1)?, op.output()?);
    expect_dtype(&a, DType::F32)?;
    expect_dtype(&b, DType::F32)?;
    expect_dtype(&y, DType::F32)?;
    if a.rank < 2 || b.rank < 2 || y.rank != a.rank.max(b.rank) {
        return Err("MatMul operands must have rank >= 2 and the output the larger rank");
    }
    let (m, k, n) = (a.dims[a.rank - 2], a.dims[a.rank - 1], b.dims[b.rank - 1]);
    if b.dims[b.rank - 2] != k || y.dims[y.rank - 2] != m || y.dims[y.rank - 1] != n {
        return Err("MatMul inner dimensions or output rows/columns disagree");
    }
    let out_batch = &y.dims[..y.rank - 2];
    for t in [&a, &b] {
        let tb = &t.dims[..t.rank - 2];
        let offset = out_batch.len() - tb.len();
        if tb
            .iter()
            .enumerate()
            .any(|(d, &v)| v != 1 && v != out_batch[d + offset])
        {
            return Err("MatMul batch dimensions do not broadcast to the output");
        }
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (a, b, y) = (op.input(0)?, op.input(1)?, op.y());
    kernels::batch_matmul_f32::batch_matmul_f32(
        op.read(a),
        a.shape(),
        op.read(b),
        b.shape(),
        op.output(),
        y.shape(),
    );
    Ok(())
}
