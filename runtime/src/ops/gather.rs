//! Gather: rows along an axis by i32 indices (embeddings), any element type;
//! an index out of range at run time is a typed error.

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::error::{Error, ShortName};
use crate::format::{DType, Opcode};
use crate::kernels;

/// Any element type.
pub const ANY: Registration = Registration {
    opcode: Opcode::Gather,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(2, 2)?;
    let (data, idx, y, p) = (op.input(0)?, op.input(1)?, op.output()?, op.params());
    expect_dtype(&data, y.dtype)?;
    expect_dtype(&idx, DType::I32)?;
    let axis = *p.first().ok_or("missing axis")? as usize;
    if p.len() != 1 || axis >= data.rank || data.rank + idx.rank - 1 != y.rank {
        return Err("bad gather axis or output rank");
    }
    let expected = data.shape()[..axis]
        .iter()
        .chain(idx.shape())
        .chain(&data.shape()[axis + 1..]);
    if !expected.eq(y.shape().iter()) {
        return Err("gather output shape is not data[..axis] + indices + data[axis+1..]");
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (x, idx) = (op.input(0)?, op.input(1)?);
    let axis = op.params()[0] as usize;
    let shape = x.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let (rows, indices): (usize, &[i32]) = (shape[axis], op.read(idx));
    let result = match x.dtype.size() {
        1 => kernels::gather::gather::<u8>(op.bytes(x), outer, rows, inner, indices, op.output()),
        2 => kernels::gather::gather::<u16>(op.read(x), outer, rows, inner, indices, op.output()),
        _ => kernels::gather::gather::<u32>(op.read(x), outer, rows, inner, indices, op.output()),
    };
    result.map_err(|e| {
        let info = op.op();
        Error::IndexOutOfRange {
            op: info.index,
            name: ShortName::new(info.name),
            opcode: info.opcode.name(),
            what: "index",
            value: i32::try_from(e.index).unwrap_or(i32::MAX),
            position: u32::try_from(e.position).unwrap_or(u32::MAX),
            min: i32::try_from(rows).map_or(i32::MIN, |n| -n),
            limit: i32::try_from(rows).unwrap_or(i32::MAX),
        }
    })
}
