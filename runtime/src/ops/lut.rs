//! Lut: an int8 elementwise function through a 256-entry table computed at
//! conversion (Sigmoid, Tanh, HardSwish, ... on int8 activations).

use super::check::{Check, OpCheck, expect_dtype, same_len};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;

/// The int8 table kernel.
pub const ANY: Registration = Registration {
    opcode: Opcode::Lut,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(2, 2)?;
    let (x, table, y) = (op.input(0)?, op.input(1)?, op.output()?);
    expect_dtype(&x, DType::I8)?;
    expect_dtype(&y, DType::I8)?;
    expect_dtype(&table, DType::I8)?;
    if table.len() != 256 {
        return Err("lookup table must hold 256 entries");
    }
    same_len(&x, &y)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (x, table) = (op.input(0)?, op.input(1)?);
    kernels::lut_s8::lut_s8(op.read(x), op.read(table), op.output());
    Ok(())
}
