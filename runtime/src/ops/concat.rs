//! Concat: concatenation along an axis, of any element type; int8 inputs with
//! other quantization than the output's are requantized on the way.

use super::check::{Check, OpCheck, expect_dtype};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{self, ConcatS8Quant, ConcatSlot};
use crate::quant::Requant;

/// Any element type, with int8 requantization.
pub const ANY: Registration = Registration {
    opcode: Opcode::Concat,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    let (inputs, p, y) = (op.op().inputs, op.params(), op.output()?);
    if inputs.is_empty() || inputs.len() > 1024 {
        return Err("concat needs 1 to 1024 inputs");
    }
    let axis = *p.first().ok_or("missing axis")? as usize;
    if axis >= y.rank {
        return Err("axis out of range");
    }
    let requant = p.len() == 2 + 3 * inputs.len();
    if !(p.len() == 1 || (requant && y.dtype == DType::I8)) {
        return Err("bad concat parameters");
    }
    let mut total = 0usize;
    for k in 0..inputs.len() {
        let x = op.input(k)?;
        expect_dtype(&x, y.dtype)?;
        // The parameter block repeats the tensors' zero points.
        if requant && (p[1] as i32, p[2 + 3 * k] as i32) != (y.zero_point(), x.zero_point()) {
            return Err("concat zero points differ from the tensors'");
        }
        if x.rank != y.rank || (0..y.rank).any(|d| d != axis && x.dims[d] != y.dims[d]) {
            return Err("inputs differ from the output outside the concat axis");
        }
        total += x.dims[axis];
    }
    if total != y.dims[axis] {
        return Err("input lengths along the axis do not add up to the output's");
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let (p, y) = (op.params(), op.y());
    let axis = p[0] as usize;
    let inner: usize = y.shape()[axis + 1..].iter().product();
    let outer: usize = y.shape()[..axis].iter().product();
    let output_block = y.dims[axis] * inner;
    let out = op.output_bytes();
    let mut offset = 0;
    for (k, xi) in op.input_list().enumerate() {
        let xi = xi?;
        let input_block = xi.dims[axis] * inner;
        if p.len() > 1 {
            let slot = ConcatSlot {
                outer,
                input_block,
                output_block,
                offset,
            };
            let quant = ConcatS8Quant {
                input_zero_point: p[2 + 3 * k] as i32,
                requant: Requant {
                    multiplier: p[3 + 3 * k] as i32,
                    shift: p[4 + 3 * k] as i32,
                },
                output_zero_point: p[1] as i32,
            };
            let output = bytemuck::cast_slice_mut(&mut out[..]);
            kernels::concat_s8::concat_part_s8(op.read(&xi), &slot, &quant, output);
        } else {
            let size = y.dtype.size();
            let slot = ConcatSlot {
                outer,
                input_block: input_block * size,
                output_block: output_block * size,
                offset: offset * size,
            };
            kernels::concat::concat_part(op.bytes(&xi), &slot, &mut out[..]);
        }
        offset += input_block;
    }
    Ok(())
}
