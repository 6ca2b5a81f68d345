//! Cast: f32 <-> i32 conversion.

use super::check::{Check, OpCheck, same_len};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;

/// f32 <-> i32.
pub const ANY: Registration = Registration {
    opcode: Opcode::Cast,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let (x, y) = (op.input(0)?, op.output()?);
    if !matches!(
        (x.dtype, y.dtype),
        (DType::F32, DType::I32) | (DType::I32, DType::F32)
    ) {
        return Err("cast converts f32 <-> i32");
    }
    same_len(&x, &y)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let x = op.input(0)?;
    if x.dtype == DType::F32 {
        kernels::cast::cast_f32_to_i32(op.read(x), op.output());
    } else {
        kernels::cast::cast_i32_to_f32(op.read(x), op.output());
    }
    Ok(())
}
