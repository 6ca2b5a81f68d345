//! Pad: constant, reflect or edge padding of any element type.

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, MAX_RANK, Opcode};
use crate::kernels;

/// Any element type.
pub const ANY: Registration = Registration {
    opcode: Opcode::Pad,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

/// Pad modes as stored (word 0 of Pad's parameters).
pub mod pad_mode {
    /// Constant value (word 1 holds its bits: f32, or i8 as i32).
    pub const CONSTANT: u32 = 0;
    /// Reflect at the borders (edge not repeated).
    pub const REFLECT: u32 = 1;
    /// Repeat the edge value.
    pub const EDGE: u32 = 2;
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let (x, y, p) = (op.input(0)?, op.output()?, op.params());
    expect_dtype(&x, y.dtype)?;
    if p.len() != 2 + 2 * x.rank || y.rank != x.rank || p[0] > 2 {
        return Err("bad pad parameters");
    }
    for d in 0..x.rank {
        let (begin, end) = (p[2 + d] as usize, p[2 + x.rank + d] as usize);
        if x.dims[d]
            .checked_add(begin)
            .and_then(|v| v.checked_add(end))
            != Some(y.dims[d])
        {
            return Err("output shape is not input + pads");
        }
        let fits = match p[0] {
            pad_mode::REFLECT => begin < x.dims[d] && end < x.dims[d],
            pad_mode::EDGE => x.dims[d] > 0 || begin + end == 0,
            _ => true,
        };
        if !fits {
            return Err("reflect/edge padding wider than the input");
        }
    }
    Ok(())
}

fn mode<T>(code: u32, value: T) -> kernels::pad::PadMode<T> {
    match code {
        pad_mode::REFLECT => kernels::pad::PadMode::Reflect,
        pad_mode::EDGE => kernels::pad::PadMode::Edge,
        _ => kernels::pad::PadMode::Constant(value),
    }
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (x, y, p) = (op.input(0)?, op.y(), op.params());
    let rank = x.rank;
    let mut begin = [0usize; MAX_RANK];
    let mut end = [0usize; MAX_RANK];
    for d in 0..rank {
        begin[d] = p[2 + d] as usize;
        end[d] = p[2 + rank + d] as usize;
    }
    let (begin, end) = (&begin[..rank], &end[..rank]);
    match x.dtype {
        DType::I8 => kernels::pad::pad::<i8>(
            op.read(x),
            x.shape(),
            begin,
            end,
            mode(p[0], p[1] as i32 as i8),
            op.output(),
            y.shape(),
        ),
        _ => kernels::pad::pad::<u32>(
            op.read(x),
            x.shape(),
            begin,
            end,
            mode(p[0], p[1]),
            op.output(),
            y.shape(),
        ),
    }
    Ok(())
}
