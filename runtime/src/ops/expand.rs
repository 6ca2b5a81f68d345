//! Expand: a broadcast copy to a larger shape, any element type.

use super::check::{Check, OpCheck, broadcasts, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::Opcode;
use crate::kernels;

/// Any element type.
pub const ANY: Registration = Registration {
    opcode: Opcode::Expand,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let (x, y) = (op.input(0)?, op.output()?);
    expect_dtype(&x, y.dtype)?;
    broadcasts(&x, &y)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (x, y) = (op.input(0)?, op.y());
    let (xs, ys) = (x.shape(), y.shape());
    match x.dtype.size() {
        1 => kernels::expand::expand::<u8>(op.bytes(x), xs, op.output(), ys),
        2 => kernels::expand::expand::<u16>(op.read(x), xs, op.output(), ys),
        _ => kernels::expand::expand::<u32>(op.read(x), xs, op.output(), ys),
    }
    Ok(())
}
