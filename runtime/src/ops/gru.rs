//! Gru: GRU (packed output Y, Y_h) over a sequence, with the float (f32 or f16 weights) and
//! the integer-only int8 cell; parameters and check from [`super::recurrent`].

use super::check::{Check, OpCheck};
use super::recurrent::{CellSpec, RecurrentParams, check_recurrent};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{FloatWeight, gru_f32, gru_s8};

/// Float and int8 cells.
pub const ANY: Registration = Registration {
    opcode: Opcode::Gru,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// The int8 cell only.
pub const INT8: Registration = Registration {
    opcode: Opcode::Gru,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8,
};

/// The float cell only (f32 or f16 weights).
pub const FLOAT: Registration = Registration {
    opcode: Opcode::Gru,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

const CELL: CellSpec = CellSpec {
    gates: 3,
    states: 1,
    bias_per_hidden: 6,
    lstm: false,
    default_activations: &gru_f32::GruConfig::DEFAULT_ACTIVATIONS,
    f32_scratch_len: gru_f32::gru_f32_scratch_len,
    s8_scratch_len: gru_s8::gru_s8_scratch_len,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    check_recurrent::<2>(op, &CELL)
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.input(0)?.dtype == DType::I8 {
        run_int8(op)
    } else {
        run_float(op)
    }
}

fn run_int8(op: &OpRun<'_>) -> Result<()> {
    let q = op.decode(RecurrentParams::<2>::decode)?;
    let s = op.sequence()?;
    let weights = op.s8_weights(&s)?;
    let cfg = gru_s8::GruS8Config {
        dims: s.dims,
        direction: q.direction,
        linear_before_reset: q.flag,
    };
    gru_s8::gru_s8(
        &cfg,
        &weights,
        &s.inputs(op.read(&s.x), None),
        op.output(),
        op.scratch(),
    );
    Ok(())
}

fn run_float(op: &OpRun<'_>) -> Result<()> {
    if op.input(1)?.dtype == DType::F16 {
        run_float_weights::<half::f16>(op)
    } else {
        run_float_weights::<f32>(op)
    }
}

fn run_float_weights<W: FloatWeight>(op: &OpRun<'_>) -> Result<()> {
    let q = op.decode(RecurrentParams::<2>::decode)?;
    let s = op.sequence()?;
    let (w, r): (&[W], &[W]) = (op.read(&s.w), op.read(&s.r));
    let cfg = gru_f32::GruConfig {
        dims: s.dims,
        direction: q.direction,
        activations: q.activations,
        clip: q.clip,
        linear_before_reset: q.flag,
    };
    let weights = gru_f32::GruWeights {
        w,
        r,
        bias: op.read_optional(3),
    };
    gru_f32::gru_f32(
        &cfg,
        &weights,
        &s.inputs(op.read(&s.x), None),
        op.output(),
        op.scratch(),
    );
    Ok(())
}
