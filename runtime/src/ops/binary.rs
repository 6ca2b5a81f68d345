//! Binary: broadcasting Add/Sub/Mul/Div/Pow/Max/Min with a fused clamp, over
//! f32, int8 (integer-only requantization) and i32 operands.

use super::check::{Check, OpCheck, broadcasts, expect_dtype};
use super::params::{ClampWords, Words, i};
use super::registration::{Registration, any_dtype, int8_output, not_int8_output};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{self, BinaryOp, binary_s8::BinaryS8Params};
use crate::quant::Requant;

/// Every kernel: f32, int8 and i32.
pub const ANY: Registration = Registration {
    opcode: Opcode::Binary,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// int8 only.
pub const INT8: Registration = Registration {
    opcode: Opcode::Binary,
    variant: "int8",
    supports: int8_output,
    check,
    run: run_int8,
};

/// f32 and i32 (token-id arithmetic) only.
pub const FLOAT: Registration = Registration {
    opcode: Opcode::Binary,
    variant: "float",
    supports: not_int8_output,
    check,
    run: run_not_int8,
};

fn binary_op_code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Pow => 4,
        BinaryOp::Max => 5,
        BinaryOp::Min => 6,
    }
}

fn binary_op(code: u32) -> Option<BinaryOp> {
    Some(match code {
        0 => BinaryOp::Add,
        1 => BinaryOp::Sub,
        2 => BinaryOp::Mul,
        3 => BinaryOp::Div,
        4 => BinaryOp::Pow,
        5 => BinaryOp::Max,
        6 => BinaryOp::Min,
        _ => return None,
    })
}

/// Float Binary parameters: op and clamp (3 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinaryF32Params {
    /// The operation.
    pub op: BinaryOp,
    /// Fused clamp.
    pub clamp: ClampWords,
}

impl BinaryF32Params {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(binary_op_code(self.op));
        out.word(self.clamp.min);
        out.word(self.clamp.max);
    }
    /// Decodes.
    pub fn decode(p: &[u32]) -> Option<BinaryF32Params> {
        let [op, min, max] = p else { return None };
        Some(BinaryF32Params {
            op: binary_op(*op)?,
            clamp: ClampWords {
                min: *min,
                max: *max,
            },
        })
    }
}

/// Appends int8 Binary parameters (13 words).
pub fn encode_binary_s8(p: &BinaryS8Params, out: &mut impl Words) {
    out.word(binary_op_code(p.op));
    for v in [
        p.a_zero_point,
        p.b_zero_point,
        p.output_zero_point,
        p.a_requant.multiplier,
        p.a_requant.shift,
        p.b_requant.multiplier,
        p.b_requant.shift,
        p.output_requant.multiplier,
        p.output_requant.shift,
        p.left_shift,
        p.act_min,
        p.act_max,
    ] {
        out.word(v as u32);
    }
}

/// Decodes [`encode_binary_s8`]'s words.
pub fn decode_binary_s8(p: &[u32]) -> Option<BinaryS8Params> {
    if p.len() != 13 {
        return None;
    }
    let r = |k: usize| Requant {
        multiplier: i(p[k]),
        shift: i(p[k + 1]),
    };
    let op = binary_op(p[0]).filter(|op| op.has_int8_kernel())?;
    let params = BinaryS8Params {
        op,
        a_zero_point: i(p[1]),
        b_zero_point: i(p[2]),
        output_zero_point: i(p[3]),
        a_requant: r(4),
        b_requant: r(6),
        output_requant: r(8),
        left_shift: i(p[10]),
        act_min: i(p[11]),
        act_max: i(p[12]),
    };
    ((0..=30).contains(&params.left_shift)
        && [params.a_requant, params.b_requant, params.output_requant]
            .iter()
            .all(|r| (-31..=30).contains(&r.shift)))
    .then_some(params)
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(2, 2)?;
    let (a, b, y) = (op.input(0)?, op.input(1)?, op.output()?);
    let p = op.params();
    match y.dtype {
        DType::F32 => {
            BinaryF32Params::decode(p).ok_or("bad float binary parameters")?;
        }
        DType::I8 => {
            let q = decode_binary_s8(p).ok_or("bad int8 binary parameters")?;
            // The parameter block repeats the tensors' zero points.
            if (q.a_zero_point, q.b_zero_point, q.output_zero_point)
                != (a.zero_point(), b.zero_point(), y.zero_point())
            {
                return Err("binary zero points differ from the tensors'");
            }
        }
        DType::I32 => {
            let q = BinaryF32Params::decode(p).ok_or("bad binary parameters")?;
            if q.op == BinaryOp::Pow {
                return Err("Pow takes float operands");
            }
        }
        _ => return Err("binary ops take f32, i8 or i32"),
    }
    expect_dtype(&a, y.dtype)?;
    expect_dtype(&b, y.dtype)?;
    broadcasts(&a, &y)?;
    broadcasts(&b, &y)
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.y().dtype == DType::I8 {
        run_int8(op)
    } else {
        run_not_int8(op)
    }
}

fn run_int8(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(decode_binary_s8)?;
    let (a, b, y) = (op.input(0)?, op.input(1)?, op.y());
    kernels::binary_s8_fast::binary_s8_fast(
        &params,
        op.tensor(a),
        op.tensor(b),
        op.output(),
        y.shape(),
    );
    Ok(())
}

fn run_not_int8(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(BinaryF32Params::decode)?;
    let (a, b, y) = (op.input(0)?, op.input(1)?, op.y());
    if y.dtype == DType::I32 {
        kernels::binary_i32::binary_i32(
            params.op,
            op.tensor(a),
            op.tensor(b),
            op.output(),
            y.shape(),
        );
    } else {
        kernels::binary_f32::binary_f32(
            params.op,
            params.clamp.as_f32(),
            op.tensor(a),
            op.tensor(b),
            op.output(),
            y.shape(),
        );
    }
    Ok(())
}
