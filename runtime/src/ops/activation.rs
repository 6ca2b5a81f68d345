//! Activation: a float elementwise function (Relu, Sigmoid, Tanh, Clip, Erf,
//! ...), its parameter words and its check.

use super::check::{Check, OpCheck, expect_dtype, same_len};
use super::params::{Words, f};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::activation_f32::{self, Activation};

/// The float kernel (int8 activations run as [`super::lut`] tables).
pub const ANY: Registration = Registration {
    opcode: Opcode::Activation,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

/// Activation parameters: kind and up to two floats (3 words).
pub fn encode_activation(act: Activation, out: &mut impl Words) {
    let (kind, a, b) = match act {
        Activation::Relu => (0, 0.0, 0.0),
        Activation::Clip { min, max } => (1, min, max),
        Activation::LeakyRelu { alpha } => (2, alpha, 0.0),
        Activation::Sigmoid => (3, 0.0, 0.0),
        Activation::Tanh => (4, 0.0, 0.0),
        Activation::HardSigmoid { alpha, beta } => (5, alpha, beta),
        Activation::HardSwish => (6, 0.0, 0.0),
        Activation::Unary(u) => (16 + u as u32, 0.0, 0.0),
        Activation::Elu { alpha } => (7, alpha, 0.0),
        Activation::Selu { alpha, gamma } => (8, alpha, gamma),
        Activation::Celu { alpha } => (9, alpha, 0.0),
        Activation::ThresholdedRelu { alpha } => (10, alpha, 0.0),
        Activation::Affine { alpha, beta } => (11, alpha, beta),
        Activation::ScaledTanh { alpha, beta } => (12, alpha, beta),
        Activation::Powf { exponent } => (13, exponent, 0.0),
        Activation::Shrink { lambd, bias } => (14, lambd, bias),
    };
    out.word(kind);
    out.word(f32::to_bits(a));
    out.word(f32::to_bits(b));
}

/// Decodes [`encode_activation`]'s words.
pub fn decode_activation(p: &[u32]) -> Option<Activation> {
    let [kind, a, b] = p else { return None };
    let (a, b) = (f(*a), f(*b));
    Some(match kind {
        0 => Activation::Relu,
        1 => Activation::Clip { min: a, max: b },
        2 => Activation::LeakyRelu { alpha: a },
        3 => Activation::Sigmoid,
        4 => Activation::Tanh,
        5 => Activation::HardSigmoid { alpha: a, beta: b },
        6 => Activation::HardSwish,
        7 => Activation::Elu { alpha: a },
        8 => Activation::Selu { alpha: a, gamma: b },
        9 => Activation::Celu { alpha: a },
        10 => Activation::ThresholdedRelu { alpha: a },
        11 => Activation::Affine { alpha: a, beta: b },
        12 => Activation::ScaledTanh { alpha: a, beta: b },
        13 => Activation::Powf { exponent: a },
        14 => Activation::Shrink { lambd: a, bias: b },
        k => Activation::Unary(activation_f32::Unary::from_code(k.checked_sub(16)?)?),
    })
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    decode_activation(op.params()).ok_or("bad activation parameters")?;
    let (x, y) = (op.input(0)?, op.output()?);
    expect_dtype(&x, DType::F32)?;
    expect_dtype(&y, DType::F32)?;
    same_len(&x, &y)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let act = op.decode(decode_activation)?;
    activation_f32::activation_f32(act, op.read(op.input(0)?), op.output());
    Ok(())
}
