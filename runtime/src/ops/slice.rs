//! Slice: a strided slice (Slice, Split) of any element type.

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{MAX_RANK, Opcode};
use crate::kernels;

/// Any element type.
pub const ANY: Registration = Registration {
    opcode: Opcode::Slice,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let (x, y, p) = (op.input(0)?, op.output()?, op.params());
    expect_dtype(&x, y.dtype)?;
    if p.len() != 2 * x.rank || y.rank != x.rank {
        return Err("bad slice parameters");
    }
    for d in 0..x.rank {
        let (start, step) = (p[d] as i64, p[x.rank + d] as i32 as i64);
        let n = y.dims[d] as i64;
        // The kernel needs a nonzero step on every axis, even of length 1.
        if step == 0 {
            return Err("zero slice step");
        }
        let last = start + (n - 1).max(0) * step;
        let inside = |v: i64| (0..x.dims[d] as i64).contains(&v);
        if n > 0 && !(inside(start) && inside(last)) {
            return Err("slice reads outside the input");
        }
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (x, y, p) = (op.input(0)?, op.y(), op.params());
    let rank = x.rank;
    let mut starts = [0usize; MAX_RANK];
    let mut steps = [0isize; MAX_RANK];
    for d in 0..rank {
        starts[d] = p[d] as usize;
        steps[d] = p[rank + d] as i32 as isize;
    }
    let (starts, steps) = (&starts[..rank], &steps[..rank]);
    let (xs, ys) = (x.shape(), y.shape());
    match x.dtype.size() {
        1 => kernels::slice::slice::<u8>(op.bytes(x), xs, starts, steps, op.output(), ys),
        2 => kernels::slice::slice::<u16>(op.read(x), xs, starts, steps, op.output(), ys),
        _ => kernels::slice::slice::<u32>(op.read(x), xs, starts, steps, op.output(), ys),
    }
    Ok(())
}
