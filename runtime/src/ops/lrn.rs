//! Lrn: local response normalization across channels (float).

use super::check::{Check, OpCheck, expect_dtype, shape4};
use super::params::{Words, f};
use super::registration::{Registration, any_dtype};
use super::run::{self, OpRun};
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels;

/// The f32 kernel.
pub const ANY: Registration = Registration {
    opcode: Opcode::Lrn,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

/// LRN parameters (4 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnParams {
    /// Channels in the window.
    pub size: usize,
    /// Scale.
    pub alpha: f32,
    /// Exponent.
    pub beta: f32,
    /// Offset.
    pub bias: f32,
}

impl LrnParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.size as u32);
        out.word(self.alpha.to_bits());
        out.word(self.beta.to_bits());
        out.word(self.bias.to_bits());
    }
    /// Decodes; size must be >= 1.
    pub fn decode(p: &[u32]) -> Option<LrnParams> {
        let [size, alpha, beta, bias] = p else {
            return None;
        };
        (*size >= 1).then_some(LrnParams {
            size: *size as usize,
            alpha: f(*alpha),
            beta: f(*beta),
            bias: f(*bias),
        })
    }
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    LrnParams::decode(op.params()).ok_or("bad LRN parameters")?;
    let (x, y) = (op.input(0)?, op.output()?);
    expect_dtype(&x, DType::F32)?;
    expect_dtype(&y, DType::F32)?;
    shape4(&x)?;
    if x.dims != y.dims || x.rank != y.rank {
        return Err("output shape differs from input");
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(LrnParams::decode)?;
    let x = op.input(0)?;
    kernels::lrn_f32::lrn_f32(
        op.read(x),
        run::shape4(x),
        params.size,
        params.alpha,
        params.beta,
        params.bias,
        op.output(),
    );
    Ok(())
}
