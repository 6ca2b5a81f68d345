//! Conv2d: 2-D convolution with groups, stride, dilation and padding, and a
//! fused clamp. Its parameters (shared with ConvTranspose2d), its check, and
//! its run functions over the int8 (fast, reference) and float kernels.

use super::check::{Check, OpCheck, shape4};
use super::params::{ClampWords, Words, window_decode, window_words};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::{self, OpRun};
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::conv2d_s8::ConvS8Quant;
use crate::kernels::gemm_s8::GemmS8;
use crate::kernels::{self, FloatWeight, Int8Kernels, Shape4, Window2d};

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
    let (params, xs, ys) = check_conv(op)?;
    let (window, groups) = (&params.window, params.groups);
    let need = if op.input(0)?.dtype == DType::I8 {
        kernels::conv2d_s8_fast::conv2d_s8_fast_scratch_len(xs, window, groups, ys)
    } else {
        4 * kernels::conv2d_f32::conv2d_f32_scratch_len(xs, window, groups, ys)
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

/// The operands of an int8 convolution.
struct ConvS8<'x> {
    x: &'x [i8],
    xs: Shape4,
    w: &'x [i8],
    bias: &'x [i32],
    params: ConvParams,
    quant: ConvS8Quant<'x>,
    y: &'x mut [i8],
    ys: Shape4,
}

fn int8_operands<'x>(op: &OpRun<'x>) -> Result<ConvS8<'x>> {
    let params = op.decode(ConvParams::decode)?;
    let (x, w, y) = (op.input(0)?, op.input(1)?, op.y());
    let (bias, quant) = op.s8_quant(params.clamp)?;
    Ok(ConvS8 {
        x: op.read(x),
        xs: run::shape4(x),
        w: op.read(w),
        bias,
        params,
        quant,
        y: op.output(),
        ys: run::shape4(y),
    })
}

fn run_int8_fast(op: &OpRun<'_>) -> Result<()> {
    let c = int8_operands(op)?;
    let (window, groups) = (&c.params.window, c.params.groups);
    kernels::conv2d_s8_fast::conv2d_s8_fast(
        c.x,
        c.xs,
        c.w,
        c.bias,
        window,
        groups,
        &c.quant,
        c.y,
        c.ys,
        op.scratch(),
    );
    Ok(())
}

fn run_int8_gemm(op: &OpRun<'_>, kind: GemmS8) -> Result<()> {
    let c = int8_operands(op)?;
    let (window, groups) = (&c.params.window, c.params.groups);
    kernels::conv2d_s8_fast::conv2d_s8_gemm(
        kind,
        c.x,
        c.xs,
        c.w,
        c.bias,
        window,
        groups,
        &c.quant,
        c.y,
        c.ys,
        op.scratch(),
    );
    Ok(())
}

fn run_int8_reference(op: &OpRun<'_>) -> Result<()> {
    let c = int8_operands(op)?;
    let (window, groups) = (&c.params.window, c.params.groups);
    kernels::conv2d_s8::conv2d_s8(c.x, c.xs, c.w, c.bias, window, groups, &c.quant, c.y, c.ys);
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
    let params = op.decode(ConvParams::decode)?;
    let (x, w, y) = (op.input(0)?, op.input(1)?, op.y());
    kernels::conv2d_f32::conv2d_f32::<W>(
        op.read(x),
        run::shape4(x),
        op.read(w),
        op.read_optional(2),
        &params.window,
        params.groups,
        params.clamp.as_f32(),
        op.output(),
        run::shape4(y),
        op.scratch(),
    );
    Ok(())
}
