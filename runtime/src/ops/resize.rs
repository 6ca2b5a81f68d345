//! Resize: nearest or bilinear resize over H and W, int8 and float.

use super::check::{Check, OpCheck, shape4};
use super::params::Words;
use super::registration::{Registration, any_dtype, float_input, int8_input};
use super::run::{self, OpRun};
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::{self, CoordinateMode, NearestMode, ResizeGeometry};

/// int8 and f32, nearest and bilinear.
pub const ANY: Registration = Registration {
    opcode: Opcode::Resize,
    variant: "any",
    supports: any_dtype,
    check,
    run: run_any,
};

/// int8 only.
pub const INT8: Registration = Registration {
    opcode: Opcode::Resize,
    variant: "int8",
    supports: int8_input,
    check,
    run: run_int8,
};

/// f32 only.
pub const FLOAT: Registration = Registration {
    opcode: Opcode::Resize,
    variant: "float",
    supports: float_input,
    check,
    run: run_float,
};

/// Resize parameters (7 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResizeParams {
    /// Bilinear (true) or nearest.
    pub linear: bool,
    /// Rounding of nearest mode.
    pub nearest: NearestMode,
    /// Coordinate mapping.
    pub geometry: ResizeGeometry,
}

impl ResizeParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.linear as u32);
        out.word(match self.geometry.coord {
            CoordinateMode::HalfPixel => 0,
            CoordinateMode::PytorchHalfPixel => 1,
            CoordinateMode::AlignCorners => 2,
            CoordinateMode::Asymmetric => 3,
        });
        out.word(match self.nearest {
            NearestMode::RoundPreferFloor => 0,
            NearestMode::RoundPreferCeil => 1,
            NearestMode::Floor => 2,
            NearestMode::Ceil => 3,
        });
        for v in self
            .geometry
            .ratio_num
            .into_iter()
            .chain(self.geometry.ratio_den)
        {
            out.word(v);
        }
    }
    /// Decodes; ratios must be positive.
    pub fn decode(p: &[u32]) -> Option<ResizeParams> {
        let [linear, coord, nearest, nh, nw, dh, dw] = p else {
            return None;
        };
        if [*nh, *nw, *dh, *dw].contains(&0) || *linear > 1 {
            return None;
        }
        Some(ResizeParams {
            linear: *linear == 1,
            nearest: match nearest {
                0 => NearestMode::RoundPreferFloor,
                1 => NearestMode::RoundPreferCeil,
                2 => NearestMode::Floor,
                3 => NearestMode::Ceil,
                _ => return None,
            },
            geometry: ResizeGeometry {
                coord: match coord {
                    0 => CoordinateMode::HalfPixel,
                    1 => CoordinateMode::PytorchHalfPixel,
                    2 => CoordinateMode::AlignCorners,
                    3 => CoordinateMode::Asymmetric,
                    _ => return None,
                },
                ratio_num: [*nh, *nw],
                ratio_den: [*dh, *dw],
            },
        })
    }
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let params = ResizeParams::decode(op.params()).ok_or("bad resize parameters")?;
    let (x, y) = (op.input(0)?, op.output()?);
    let (xs, ys) = (shape4(&x)?, shape4(&y)?);
    if xs.n != ys.n || xs.c != ys.c || xs.h == 0 || xs.w == 0 {
        return Err("resize changes batch/channels or reads an empty input");
    }
    op.same_dtype_activation(&x, &y)?;
    if x.dtype == DType::I8 && params.linear && x.quant != y.quant {
        return Err("int8 linear resize needs the same quantization on input and output");
    }
    Ok(())
}

fn run_any(op: &OpRun<'_>) -> Result<()> {
    if op.input(0)?.dtype == DType::I8 {
        run_int8(op)
    } else {
        run_float(op)
    }
}

fn run_int8(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(ResizeParams::decode)?;
    let (x, y) = (op.input(0)?, op.y());
    let (xs, ys, g) = (run::shape4(x), run::shape4(y), &params.geometry);
    if params.linear {
        kernels::resize_s8::resize_linear_s8(op.read(x), xs, g, op.output(), ys);
    } else {
        let nearest = params.nearest;
        kernels::resize_nearest::resize_nearest::<i8>(op.read(x), xs, g, nearest, op.output(), ys);
    }
    Ok(())
}

fn run_float(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(ResizeParams::decode)?;
    let (x, y) = (op.input(0)?, op.y());
    let (xs, ys, g) = (run::shape4(x), run::shape4(y), &params.geometry);
    if params.linear {
        kernels::resize_f32::resize_linear_f32(op.read(x), xs, g, op.output(), ys);
    } else {
        let nearest = params.nearest;
        kernels::resize_nearest::resize_nearest::<f32>(op.read(x), xs, g, nearest, op.output(), ys);
    }
    Ok(())
}
