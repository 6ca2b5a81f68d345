//! AvgPool2d: 2-D average pooling (also global average pooling), int8 and
//! float; parameters from [`super::max_pool2d::PoolParams`].

use super::check::{Check, OpCheck};
use super::max_pool2d::{PoolParams, check_pool, pool_geometry};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{self, AvgPoolDivisor};

/// Every kernel: int8 and float.
pub const ANY: Registration = Registration {
    opcode: Opcode::AvgPool2d,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// int8 only.
pub const INT8: Registration = Registration {
    opcode: Opcode::AvgPool2d,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8,
};

/// f32 only.
pub const FLOAT: Registration = Registration {
    opcode: Opcode::AvgPool2d,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    check_pool(op, true)
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.input(0)?.dtype == DType::I8 {
        run_int8(op)
    } else {
        run_float(op)
    }
}

fn run_int8(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(|p| PoolParams::decode(p, true))?;
    let (x, y) = (op.input(0)?, op.y());
    let geometry = pool_geometry(params.window, x, y);
    kernels::avg_pool2d_s8::avg_pool2d_s8(
        op.read(x),
        &geometry,
        divisor(&params),
        x.zero_point(),
        op.output(),
    );
    Ok(())
}

fn run_float(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(|p| PoolParams::decode(p, true))?;
    let (x, y) = (op.input(0)?, op.y());
    let geometry = pool_geometry(params.window, x, y);
    kernels::avg_pool2d_f32::avg_pool2d_f32(op.read(x), &geometry, divisor(&params), op.output());
    Ok(())
}

fn divisor(params: &PoolParams) -> AvgPoolDivisor {
    AvgPoolDivisor {
        pad_end: params.pad_end,
        count_include_pad: params.count_include_pad,
    }
}
