//! LayerNorm: layer normalization over the trailing axes from `axis` (float).

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;

/// The f32 kernel.
pub const ANY: Registration = Registration {
    opcode: Opcode::LayerNorm,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 3)?;
    let (x, y) = (op.input(0)?, op.output()?);
    expect_dtype(&x, DType::F32)?;
    expect_dtype(&y, DType::F32)?;
    let [axis, _eps] = op.params() else {
        return Err("bad layer norm parameters");
    };
    let axis = *axis as usize;
    if axis >= x.rank || x.dims != y.dims || x.rank != y.rank {
        return Err("bad axis, or output shape differs from input");
    }
    let cols: usize = x.shape()[axis..].iter().product();
    for k in 1..3 {
        if let Some(t) = op.optional_input(k)? {
            expect_dtype(&t, DType::F32)?;
            if t.len() != cols {
                return Err("scale/bias length differs from the normalized size");
            }
        }
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (x, p) = (op.input(0)?, op.params());
    let axis = p[0] as usize;
    let cols: usize = x.shape()[axis..].iter().product();
    let rows = x.len().checked_div(cols).unwrap_or(0);
    kernels::layer_norm_f32::layer_norm_f32(
        op.read(x),
        rows,
        cols,
        op.read_optional(1),
        op.read_optional(2),
        f32::from_bits(p[1]),
        op.output(),
    );
    Ok(())
}
