//! Dequantize: int8 -> f32 with the input tensor's quantization.

use super::check::{Check, OpCheck};
use super::quantize::check_conversion;
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;

/// int8 to f32.
pub const ANY: Registration = Registration {
    opcode: Opcode::Dequantize,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    check_conversion(op, DType::I8, DType::F32)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let x = op.input(0)?;
    let (scale, zero_point) = x
        .per_tensor()
        .ok_or_else(|| op.bad("input not quantized"))?;
    kernels::quantize::dequantize_s8_f32(op.read(x), scale, zero_point, op.output());
    Ok(())
}
