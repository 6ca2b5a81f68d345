//! Transpose: an axis permutation of any element type.

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{MAX_RANK, Opcode};
use crate::kernels;

/// Any element type.
pub const ANY: Registration = Registration {
    opcode: Opcode::Transpose,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let (x, y, p) = (op.input(0)?, op.output()?, op.params());
    expect_dtype(&x, y.dtype)?;
    if p.len() != x.rank || y.rank != x.rank {
        return Err("permutation length differs from the rank");
    }
    let mut seen = [false; MAX_RANK];
    for (d, &axis) in p.iter().enumerate() {
        let axis = axis as usize;
        if axis >= x.rank || seen[axis] || y.dims[d] != x.dims[axis] {
            return Err("not a permutation, or output shape is not the permuted input");
        }
        seen[axis] = true;
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (x, p) = (op.input(0)?, op.params());
    let mut perm = [0usize; MAX_RANK];
    for (d, &v) in perm.iter_mut().zip(p) {
        *d = v as usize;
    }
    let perm = &perm[..x.rank];
    match x.dtype.size() {
        1 => kernels::transpose::transpose::<u8>(op.bytes(x), x.shape(), perm, op.output()),
        2 => kernels::transpose::transpose::<u16>(op.read(x), x.shape(), perm, op.output()),
        _ => kernels::transpose::transpose::<u32>(op.read(x), x.shape(), perm, op.output()),
    }
    Ok(())
}
