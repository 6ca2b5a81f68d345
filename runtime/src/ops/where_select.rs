//! Where: elementwise select by an i32 condition, broadcasting, any element type.

use super::check::{Check, OpCheck, broadcasts, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{self, Operand};

/// Any element type.
pub const ANY: Registration = Registration {
    opcode: Opcode::Where,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(3, 3)?;
    let (c, a, b, y) = (op.input(0)?, op.input(1)?, op.input(2)?, op.output()?);
    expect_dtype(&c, DType::I32)?;
    expect_dtype(&a, y.dtype)?;
    expect_dtype(&b, y.dtype)?;
    for t in [&c, &a, &b] {
        broadcasts(t, &y)?;
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (c, a, b, y) = (op.input(0)?, op.input(1)?, op.input(2)?, op.y());
    let cond = op.tensor::<i32>(c);
    let out_shape = y.shape();
    match y.dtype.size() {
        1 => kernels::where_select::where_select::<u8>(
            cond,
            Operand::new(op.bytes(a), a.shape()),
            Operand::new(op.bytes(b), b.shape()),
            op.output(),
            out_shape,
        ),
        2 => kernels::where_select::where_select::<u16>(
            cond,
            op.tensor(a),
            op.tensor(b),
            op.output(),
            out_shape,
        ),
        _ => kernels::where_select::where_select::<u32>(
            cond,
            op.tensor(a),
            op.tensor(b),
            op.output(),
            out_shape,
        ),
    }
    Ok(())
}
