//! ConvTranspose2d: 2-D transposed convolution (parameters and check shared
//! with [`super::conv2d`]) over the int8 and float kernels.

use super::check::{Check, OpCheck};
use super::conv2d::{check_conv, float_args, int8_args};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{self, ConvGeometry, FloatWeight, Int8Kernels};

/// Every kernel: int8 and float.
pub const ANY: Registration = Registration {
    opcode: Opcode::ConvTranspose2d,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// int8 only.
pub const INT8: Registration = Registration {
    opcode: Opcode::ConvTranspose2d,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8,
};

/// f32 activations with f32 or f16 weights.
pub const FLOAT: Registration = Registration {
    opcode: Opcode::ConvTranspose2d,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

/// The shapes, and the scratch of the fast kernel when the file carries one
/// (int8 since format 1.3, float since 1.4; older files have none and run
/// the reference kernel or the float gather form).
fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    let (params, in_shape, out_shape) = check_conv(op)?;
    if !op.has_scratch() {
        return Ok(());
    }
    let geometry = ConvGeometry {
        in_shape,
        out_shape,
        window: params.window,
        groups: params.groups,
    };
    let dtype = op.input(0)?.dtype;
    let need = if dtype == DType::I8 {
        kernels::conv_transpose2d_s8_fast::conv_transpose2d_s8_fast_scratch_len(&geometry)
    } else {
        4 * kernels::conv_transpose2d_f32::conv_transpose2d_f32_scratch_len(&geometry)
    };
    op.check_scratch(need, dtype)
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.input(0)?.dtype == DType::I8 {
        run_int8(op)
    } else {
        run_float(op)
    }
}

fn run_int8(op: &OpRun<'_>) -> Result<()> {
    let args = int8_args(op)?;
    let scratch = op.scratch();
    let need =
        kernels::conv_transpose2d_s8_fast::conv_transpose2d_s8_fast_scratch_len(&args.geometry);
    if op.int8_kernels() == Int8Kernels::Reference || need == 0 || scratch.len() < need {
        kernels::conv_transpose2d_s8::conv_transpose2d_s8(&args, op.output());
    } else {
        kernels::conv_transpose2d_s8_fast::conv_transpose2d_s8_fast(&args, op.output(), scratch);
    }
    Ok(())
}

fn run_float(op: &OpRun<'_>) -> Result<()> {
    if op.input(1)?.dtype == DType::F16 {
        run_float_weights::<half::f16>(op)
    } else {
        run_float_weights::<f32>(op)
    }
}

fn run_float_weights<W: FloatWeight>(op: &OpRun<'_>) -> Result<()> {
    let args = float_args::<W>(op)?;
    let scratch = op.scratch::<f32>();
    let need = kernels::conv_transpose2d_f32::conv_transpose2d_f32_scratch_len(&args.geometry);
    if need == 0 || scratch.len() < need {
        kernels::conv_transpose2d_f32::conv_transpose2d_f32(&args, op.output());
    } else {
        kernels::conv_transpose2d_f32::conv_transpose2d_f32_phases(
            &args,
            op.output(),
            scratch,
            true,
        );
    }
    Ok(())
}
