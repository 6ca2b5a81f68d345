//! Conv2d: 2-D convolution with groups, stride, dilation and padding, and a
//! fused clamp. Its parameters (shared with ConvTranspose2d), its check, and
//! its run functions over the int8 (fast, reference) and float kernels.

use super::check::{Check, OpCheck, shape4};
use super::params::{ClampWords, Words, window_decode, window_words};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::{self, OpRun};
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::gemm_s8::GemmS8;
use crate::kernels::{
    self, ConvF32Args, ConvGeometry, ConvS8Args, FloatWeight, Int8Kernels, Shape4, Window2d,
};
use crate::model::TensorInfo;

/// Every kernel: int8 (as [`OpRun`]'s kernel choice says) and float.
pub const ANY: Registration = Registration {
    opcode: Opcode::Conv2d,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// int8 only, the fast kernel (SMLAD/NEON/AVX2 as built and detected).
pub const INT8: Registration = Registration {
    opcode: Opcode::Conv2d,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8_fast,
};

/// int8 only, the portable reference kernel (smallest code).
pub const INT8_REFERENCE: Registration = Registration {
    opcode: Opcode::Conv2d,
    variant: "int8-reference",
    supports: int8_input,
    check,
    run: run_int8_reference,
};

/// f32 activations with f32 or f16 weights.
pub const FLOAT: Registration = Registration {
    opcode: Opcode::Conv2d,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

/// Conv2d / ConvTranspose2d parameters: window, groups, clamp (11 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvParams {
    /// Sliding window.
    pub window: Window2d,
    /// Channel groups (>= 1).
    pub groups: usize,
    /// Fused clamp.
    pub clamp: ClampWords,
}

impl ConvParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        window_words(&self.window, out);
        out.word(self.groups as u32);
        out.word(self.clamp.min);
        out.word(self.clamp.max);
    }
    /// Decodes; `None` on a wrong word count or zero extents.
    pub fn decode(p: &[u32]) -> Option<ConvParams> {
        if p.len() != 11 || p[8] == 0 {
            return None;
        }
        Some(ConvParams {
            window: window_decode(p)?,
            groups: p[8] as usize,
            clamp: ClampWords {
                min: p[9],
                max: p[10],
            },
        })
    }
}

/// The check shared with ConvTranspose2d: channel counts, kernel extent,
/// weights, bias and requantization; returns the parameters and shapes.
pub(crate) fn check_conv(op: &OpCheck<'_, '_>) -> Check<(ConvParams, Shape4, Shape4)> {
    op.arity(2, 4)?;
    let params = ConvParams::decode(op.params()).ok_or("bad convolution parameters")?;
    let (x, w, y) = (op.input(0)?, op.input(1)?, op.output()?);
    let (xs, ys, ws) = (shape4(&x)?, shape4(&y)?, shape4(&w)?);
    let g = params.groups;
    if ws.n != ys.c || ys.c % g != 0 || xs.c != ws.c * g || xs.n != ys.n {
        return Err("channel counts of input, weights, groups and output disagree");
    }
    if [ws.h, ws.w] != params.window.kernel {
        return Err("weight extent differs from kernel_shape");
    }
    op.check_weighted(&x, &w, &y, ys.c, 2)?;
    Ok((params, xs, ys))
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    let (params, in_shape, out_shape) = check_conv(op)?;
    let geometry = ConvGeometry {
        in_shape,
        out_shape,
        window: params.window,
        groups: params.groups,
    };
    let need = if op.input(0)?.dtype == DType::I8 {
        kernels::conv2d_s8_fast::conv2d_s8_fast_scratch_len(&geometry)
    } else {
        4 * kernels::conv2d_f32::conv2d_f32_scratch_len(&geometry)
    };
    op.check_scratch(need, op.input(0)?.dtype)
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

/// The operands of an int8 convolution (shared with ConvTranspose2d).
pub(crate) fn int8_args<'x>(op: &OpRun<'x>) -> Result<ConvS8Args<'x>> {
    let params = op.decode(ConvParams::decode)?;
    let (x, w, y) = (op.input(0)?, op.input(1)?, op.y());
    let (bias, quant) = op.s8_quant(params.clamp)?;
    Ok(ConvS8Args {
        input: op.read(x),
        weights: op.read(w),
        bias,
        geometry: geometry(&params, x, y),
        quant,
    })
}

/// The operands of a float convolution (shared with ConvTranspose2d).
pub(crate) fn float_args<'x, W: FloatWeight>(op: &OpRun<'x>) -> Result<ConvF32Args<'x, W>> {
    let params = op.decode(ConvParams::decode)?;
    let (x, w, y) = (op.input(0)?, op.input(1)?, op.y());
    Ok(ConvF32Args {
        input: op.read(x),
        weights: op.read(w),
        bias: op.read_optional(2),
        geometry: geometry(&params, x, y),
        clamp: params.clamp.as_f32(),
    })
}

fn geometry(params: &ConvParams, x: &TensorInfo<'_>, y: &TensorInfo<'_>) -> ConvGeometry {
    ConvGeometry {
        in_shape: run::shape4(x),
        out_shape: run::shape4(y),
        window: params.window,
        groups: params.groups,
    }
}

fn run_int8_fast(op: &OpRun<'_>) -> Result<()> {
    let args = int8_args(op)?;
    kernels::conv2d_s8_fast::conv2d_s8_fast(&args, op.output(), op.scratch());
    Ok(())
}

fn run_int8_gemm(op: &OpRun<'_>, kind: GemmS8) -> Result<()> {
    let args = int8_args(op)?;
    kernels::conv2d_s8_fast::conv2d_s8_gemm(kind, &args, op.output(), op.scratch());
    Ok(())
}

fn run_int8_reference(op: &OpRun<'_>) -> Result<()> {
    let args = int8_args(op)?;
    kernels::conv2d_s8::conv2d_s8(&args, op.output());
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
    kernels::conv2d_f32::conv2d_f32(&args, op.output(), op.scratch());
    Ok(())
}
