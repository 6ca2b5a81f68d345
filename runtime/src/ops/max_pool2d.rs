//! MaxPool2d: 2-D max pooling. Also owns the pooling parameters, which
//! [`super::avg_pool2d`] shares.

use super::check::{Check, OpCheck, shape4};
use super::params::{Words, window_decode, window_words};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::{self, OpRun};
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{self, PoolGeometry, Window2d};
use crate::model::TensorInfo;

/// Every kernel: int8 and float.
pub const ANY: Registration = Registration {
    opcode: Opcode::MaxPool2d,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// int8 only (the fast kernel).
pub const INT8: Registration = Registration {
    opcode: Opcode::MaxPool2d,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8,
};

/// f32 only.
pub const FLOAT: Registration = Registration {
    opcode: Opcode::MaxPool2d,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

/// MaxPool2d / AvgPool2d parameters (8 words for max, 11 for average).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolParams {
    /// Sliding window.
    pub window: Window2d,
    /// Padding after the last row / column (average pooling's divisor needs it).
    pub pad_end: [usize; 2],
    /// Average pooling counts padding taps in the divisor.
    pub count_include_pad: bool,
}

impl PoolParams {
    /// Appends the words of a max pool (`average == false`) or an average pool.
    pub fn encode(&self, average: bool, out: &mut impl Words) {
        window_words(&self.window, out);
        if average {
            out.word(self.pad_end[0] as u32);
            out.word(self.pad_end[1] as u32);
            out.word(self.count_include_pad as u32);
        }
    }
    /// Decodes a max pool (8 words) or an average pool (11 words).
    pub fn decode(p: &[u32], average: bool) -> Option<PoolParams> {
        let window = window_decode(p)?;
        match (average, p.len()) {
            (false, 8) => Some(PoolParams {
                window,
                pad_end: [0, 0],
                count_include_pad: false,
            }),
            (true, 11) if p[10] <= 1 => Some(PoolParams {
                window,
                pad_end: [p[8] as usize, p[9] as usize],
                count_include_pad: p[10] == 1,
            }),
            _ => None,
        }
    }
}

/// Most taps an average-pooling window may hold inside the padded input: the int8
/// kernel's i32 sum of that many `[-128, 127]` values (plus as many zero points)
/// cannot overflow, nor can the divisor. A 2048 x 2048 global pool still fits.
const MAX_AVERAGE_TAPS: u64 = 1 << 22;

/// Taps of one window that can fall inside the padded extent of an input of
/// `[h, w]`: per axis the kernel size, at most the padded length (saturating).
fn window_taps(params: &PoolParams, input: [usize; 2]) -> u64 {
    let axis = |a: usize| {
        let w = &params.window;
        let padded = (w.pad_begin[a] as u64)
            .saturating_add(input[a] as u64)
            .saturating_add(params.pad_end[a] as u64);
        (w.kernel[a] as u64).min(padded)
    };
    axis(0).saturating_mul(axis(1))
}

/// The check both poolings share: one input of the output's dtype and batch
/// and channels, int8 with the output's quantization.
pub(crate) fn check_pool(op: &OpCheck<'_, '_>, average: bool) -> Check<()> {
    op.arity(1, 1)?;
    let params = PoolParams::decode(op.params(), average).ok_or("bad pooling parameters")?;
    let (x, y) = (op.input(0)?, op.output()?);
    let (xs, ys) = (shape4(&x)?, shape4(&y)?);
    if xs.n != ys.n || xs.c != ys.c {
        return Err("pooling changes batch or channels");
    }
    if average && window_taps(&params, [xs.h, xs.w]) > MAX_AVERAGE_TAPS {
        return Err("average pooling window holds more than 2^22 taps");
    }
    op.same_dtype_activation(&x, &y)?;
    if x.dtype == DType::I8 && x.quant != y.quant {
        return Err("int8 pooling needs the same quantization on input and output");
    }
    Ok(())
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    check_pool(op, false)
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.input(0)?.dtype == DType::I8 {
        run_int8(op)
    } else {
        run_float(op)
    }
}

/// The pooling geometry of input `x` and output `y`.
pub(crate) fn pool_geometry(
    window: Window2d,
    x: &TensorInfo<'_>,
    y: &TensorInfo<'_>,
) -> PoolGeometry {
    PoolGeometry {
        in_shape: run::shape4(x),
        out_shape: run::shape4(y),
        window,
    }
}

fn run_int8(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(|p| PoolParams::decode(p, false))?;
    let (x, y) = (op.input(0)?, op.y());
    let geometry = pool_geometry(params.window, x, y);
    kernels::max_pool2d_s8_fast::max_pool2d_s8_fast(op.read(x), &geometry, op.output());
    Ok(())
}

fn run_float(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(|p| PoolParams::decode(p, false))?;
    let (x, y) = (op.input(0)?, op.y());
    let geometry = pool_geometry(params.window, x, y);
    kernels::max_pool2d_f32::max_pool2d_f32(op.read(x), &geometry, op.output());
    Ok(())
}
