//! Lstm: LSTM (packed output Y, Y_h, Y_c) over a sequence, with the float (f32 or f16 weights) and
//! the integer-only int8 cell; parameters and check from [`super::recurrent`].

use super::check::{Check, OpCheck};
use super::recurrent::{CellSpec, RecurrentParams, check_recurrent};
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{FloatWeight, lstm_f32, lstm_s8};

/// Float and int8 cells.
pub const ANY: Registration = Registration {
    opcode: Opcode::Lstm,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// The int8 cell only.
pub const INT8: Registration = Registration {
    opcode: Opcode::Lstm,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8,
};

/// The float cell only (f32 or f16 weights).
pub const FLOAT: Registration = Registration {
    opcode: Opcode::Lstm,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

const CELL: CellSpec = CellSpec {
    gates: 4,
    states: 2,
    bias_per_hidden: 4,
    lstm: true,
    default_activations: &lstm_f32::LstmConfig::DEFAULT_ACTIVATIONS,
    f32_scratch_len: lstm_f32::lstm_f32_scratch_len,
    s8_scratch_len: lstm_s8::lstm_s8_scratch_len,
};

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    check_recurrent::<3>(op, &CELL)
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.input(0)?.dtype == DType::I8 {
        run_int8(op)
    } else {
        run_float(op)
    }
}

fn run_int8(op: &OpRun<'_>) -> Result<()> {
    let q = op.decode(RecurrentParams::<3>::decode)?;
    let s = op.sequence()?;
    let weights = op.s8_weights(&s)?;
    let cfg = lstm_s8::LstmS8Config {
        dims: s.dims,
        direction: q.direction,
        cell_shift: q.cell_shift,
    };
    lstm_s8::lstm_s8(
        &cfg,
        &weights,
        &s.inputs(op.read(&s.x), op.read_optional(6)),
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
    let q = op.decode(RecurrentParams::<3>::decode)?;
    let s = op.sequence()?;
    let (w, r): (&[W], &[W]) = (op.read(&s.w), op.read(&s.r));
    let cfg = lstm_f32::LstmConfig {
        dims: s.dims,
        direction: q.direction,
        activations: q.activations,
        clip: q.clip,
        input_forget: q.flag,
    };
    let weights = lstm_f32::LstmWeights {
        w,
        r,
        bias: op.read_optional(3),
        peephole: op.read_optional(7),
    };
    lstm_f32::lstm_f32(
        &cfg,
        &weights,
        &s.inputs(op.read(&s.x), op.read_optional(6)),
        op.output(),
        op.scratch(),
    );
    Ok(())
}
