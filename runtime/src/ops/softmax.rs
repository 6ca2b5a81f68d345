//! Softmax over one axis: float, or int8 through a 256-entry exp table.

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;

/// int8 and f32.
pub const ANY: Registration = Registration {
    opcode: Opcode::Softmax,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// int8 only (integer-only, through the exp table).
pub const INT8: Registration = Registration {
    opcode: Opcode::Softmax,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8,
};

/// f32 only.
pub const FLOAT: Registration = Registration {
    opcode: Opcode::Softmax,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    let (x, y, p) = (op.input(0)?, op.output()?, op.params());
    if p.len() != 1 || p[0] as usize >= x.rank.max(1) || x.dims != y.dims || x.rank != y.rank {
        return Err("bad axis, or output shape differs from input");
    }
    match x.dtype {
        DType::F32 => {
            op.arity(1, 1)?;
            expect_dtype(&y, DType::F32)
        }
        DType::I8 => {
            op.arity(2, 2)?;
            expect_dtype(&y, DType::I8)?;
            // The kernel writes probabilities in steps of 1/256 from -128.
            if y.per_tensor() != Some((1.0 / 256.0, -128)) {
                return Err("int8 softmax output must have scale 1/256, zero point -128");
            }
            let table = op.input(1)?;
            expect_dtype(&table, DType::I32)?;
            if table.len() != 256 {
                return Err("softmax exp table must hold 256 entries");
            }
            Ok(())
        }
        _ => Err("softmax takes f32 or i8"),
    }
}

/// `(outer, axis length, inner)` of the softmax axis.
fn geometry(op: &OpRun<'_>) -> Result<(usize, usize, usize)> {
    let x = op.input(0)?;
    let axis = op.params()[0] as usize;
    let shape = x.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    Ok((outer, shape[axis], inner))
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.input(0)?.dtype == DType::I8 {
        run_int8(op)
    } else {
        run_float(op)
    }
}

fn run_int8(op: &OpRun<'_>) -> Result<()> {
    let (outer, axis_len, inner) = geometry(op)?;
    let (x, table) = (op.input(0)?, op.input(1)?);
    kernels::softmax_s8::softmax_s8(
        op.read(x),
        outer,
        axis_len,
        inner,
        op.read(table),
        op.output(),
    );
    Ok(())
}

fn run_float(op: &OpRun<'_>) -> Result<()> {
    let (outer, axis_len, inner) = geometry(op)?;
    let x = op.input(0)?;
    kernels::softmax_f32::softmax_f32(op.read(x), outer, axis_len, inner, op.output());
    Ok(())
}
