//! Quantize: f32 -> int8 with the output tensor's quantization. Also owns the
//! check both directions share (see [`super::dequantize`]).

use super::check::{Check, OpCheck, expect_dtype, same_len};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;

/// f32 to int8.
pub const ANY: Registration = Registration {
    opcode: Opcode::Quantize,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

/// One input of `from`, an output of `to`, the int8 side per-tensor quantized.
pub(crate) fn check_conversion(op: &OpCheck<'_, '_>, from: DType, to: DType) -> Check<()> {
    op.arity(1, 1)?;
    let (x, y) = (op.input(0)?, op.output()?);
    expect_dtype(&x, from)?;
    expect_dtype(&y, to)?;
    let int8_side = if from == DType::I8 { &x } else { &y };
    int8_side
        .per_tensor()
        .ok_or("the int8 side needs per-tensor quantization")?;
    same_len(&x, &y)
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    check_conversion(op, DType::F32, DType::I8)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (x, y) = (op.input(0)?, op.y());
    let (scale, zero_point) = y
        .per_tensor()
        .ok_or_else(|| op.bad("output not quantized"))?;
    kernels::quantize::quantize_f32_s8(op.read(x), scale, zero_point, op.output());
    Ok(())
}
