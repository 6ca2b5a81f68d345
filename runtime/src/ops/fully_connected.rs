//! FullyConnected: `y = x W^T + b` over the last axis, with a fused clamp,
//! over the int8 (fast, reference) and float kernels.

use super::check::{Check, OpCheck};
use super::params::{ClampWords, Words};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::gemm_s8::GemmS8;
use crate::kernels::{
    self, FloatWeight, FullyConnectedDims, FullyConnectedF32Args, FullyConnectedS8Args, Int8Kernels,
};

/// Every kernel: int8 (as [`OpRun`]'s kernel choice says) and float.
pub const ANY: Registration = Registration {
    opcode: Opcode::FullyConnected,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// int8 only, the fast kernel.
pub const INT8: Registration = Registration {
    opcode: Opcode::FullyConnected,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8_fast,
};

/// int8 only, the portable reference kernel.
pub const INT8_REFERENCE: Registration = Registration {
    opcode: Opcode::FullyConnected,
    variant: "int8-reference",
    supports: int8_input,
    check,
    run: run_int8_reference,
};

/// f32 activations with f32 or f16 weights.
pub const FLOAT: Registration = Registration {
    opcode: Opcode::FullyConnected,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

/// FullyConnected parameters: the fused clamp (2 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FullyConnectedParams {
    /// Fused clamp.
    pub clamp: ClampWords,
}

impl FullyConnectedParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.clamp.min);
        out.word(self.clamp.max);
    }
    /// Decodes.
    pub fn decode(p: &[u32]) -> Option<FullyConnectedParams> {
        match p {
            [min, max] => Some(FullyConnectedParams {
                clamp: ClampWords {
                    min: *min,
                    max: *max,
                },
            }),
            _ => None,
        }
    }
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(2, 4)?;
    FullyConnectedParams::decode(op.params()).ok_or("bad parameters")?;
    let (x, w, y) = (op.input(0)?, op.input(1)?, op.output()?);
    if w.rank != 2 || w.dims[1] == 0 || x.len() % w.dims[1] != 0 {
        return Err("weights must be [out, in] and the input a whole number of rows");
    }
    if y.len() != x.len() / w.dims[1] * w.dims[0] {
        return Err("output length is not rows x out_features");
    }
    op.check_weighted(&x, &w, &y, w.dims[0], 2)
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.input(0)?.dtype != DType::I8 {
        return run_float(op);
    }
    match op.int8_kernels() {
        Int8Kernels::Fast => run_int8_fast(op),
        Int8Kernels::Reference => run_int8_reference(op),
        Int8Kernels::Gemm(kind) => run_int8_gemm(op, kind),
    }
}

/// `(rows, in_features, out_features)` of the product.
fn dims(op: &OpRun<'_>) -> Result<FullyConnectedDims> {
    let (x, w) = (op.input(0)?, op.input(1)?);
    let (out_features, in_features) = (w.dims[0], w.dims[1]);
    Ok(FullyConnectedDims {
        rows: x.len() / in_features.max(1),
        in_features,
        out_features,
    })
}

/// The operands of an int8 fully connected layer.
fn int8_args<'x>(op: &OpRun<'x>) -> Result<FullyConnectedS8Args<'x>> {
    let params = op.decode(FullyConnectedParams::decode)?;
    let (bias, quant) = op.s8_quant(params.clamp)?;
    Ok(FullyConnectedS8Args {
        input: op.read(op.input(0)?),
        weights: op.read(op.input(1)?),
        bias,
        dims: dims(op)?,
        quant,
    })
}

fn run_int8_fast(op: &OpRun<'_>) -> Result<()> {
    let args = int8_args(op)?;
    kernels::fully_connected_s8_fast::fully_connected_s8_fast(&args, op.output());
    Ok(())
}

fn run_int8_gemm(op: &OpRun<'_>, kind: GemmS8) -> Result<()> {
    let args = int8_args(op)?;
    kernels::fully_connected_s8_fast::fully_connected_s8_gemm(kind, &args, op.output());
    Ok(())
}

fn run_int8_reference(op: &OpRun<'_>) -> Result<()> {
    let args = int8_args(op)?;
    kernels::fully_connected_s8::fully_connected_s8(&args, op.output());
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
    let params = op.decode(FullyConnectedParams::decode)?;
    let args = FullyConnectedF32Args::<W> {
        input: op.read(op.input(0)?),
        weights: op.read(op.input(1)?),
        bias: op.read_optional(2),
        dims: dims(op)?,
        clamp: params.clamp.as_f32(),
    };
    kernels::fully_connected_f32::fully_connected_f32(&args, op.output());
    Ok(())
}
