//! Copy: a byte copy (Reshape, Flatten, Squeeze, Unsqueeze, Identity).

use super::check::{Check, OpCheck, expect_dtype, same_len};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::Opcode;

/// Any element type.
pub const ANY: Registration = Registration {
    opcode: Opcode::Copy,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let (x, y) = (op.input(0)?, op.output()?);
    expect_dtype(&x, y.dtype)?;
    same_len(&x, &y)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let x = op.bytes(op.input(0)?);
    op.output_bytes().copy_from_slice(x);
    Ok(())
}
