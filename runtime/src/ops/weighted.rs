//! What Conv2d, ConvTranspose2d and FullyConnected share: the check of their
//! weights, bias and requantization table, and the int8 quantization their
//! kernels take. Knows nothing of any one op's geometry.

use super::check::{Check, OpCheck, expect_dtype};
use super::params::ClampWords;
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Storage};
use crate::kernels::conv2d_s8::ConvS8Quant;
use crate::model::TensorInfo;
use crate::quant::Requant;

impl OpCheck<'_, '_> {
    /// Dtypes, bias (input `bias_at`) and requantization table (input
    /// `bias_at + 1`) of an op with `out_ch` output channels.
    pub(crate) fn check_weighted(
        &self,
        x: &TensorInfo<'_>,
        w: &TensorInfo<'_>,
        y: &TensorInfo<'_>,
        out_ch: usize,
        bias_at: usize,
    ) -> Check<()> {
        if w.storage != Storage::Constant {
            return Err("weights must be constant");
        }
        let bias = self.optional_input(bias_at)?;
        let requant = self.optional_input(bias_at + 1)?;
        match x.dtype {
            DType::F32 => {
                expect_dtype(y, DType::F32)?;
                if !matches!(w.dtype, DType::F32 | DType::F16) {
                    return Err("float ops take f32 or f16 weights");
                }
                if let Some(b) = bias {
                    expect_dtype(&b, DType::F32)?;
                    if b.len() != out_ch {
                        return Err("bias length differs from the output channels");
                    }
                }
                if requant.is_some() {
                    return Err("float ops take no requantization table");
                }
            }
            DType::I8 => {
                expect_dtype(y, DType::I8)?;
                expect_dtype(w, DType::I8)?;
                x.per_tensor()
                    .ok_or("int8 input needs per-tensor quantization")?;
                y.per_tensor()
                    .ok_or("int8 output needs per-tensor quantization")?;
                let b = bias.ok_or("int8 ops need an i32 bias")?;
                let r = requant.ok_or("int8 ops need a requantization table")?;
                expect_dtype(&b, DType::I32)?;
                expect_dtype(&r, DType::I32)?;
                if b.len() != out_ch || r.len() != 2 * out_ch {
                    return Err(
                        "bias or requantization table length differs from the output channels",
                    );
                }
                self.check_requant_shifts(&r, out_ch)?;
            }
            _ => return Err("input must be f32 or i8"),
        }
        Ok(())
    }
}

impl<'x> OpRun<'x> {
    /// The int8 bias (input 2) and quantization (input 3, zero points, clamp)
    /// of a weighted op.
    pub(crate) fn s8_quant(&self, clamp: ClampWords) -> Result<(&'x [i32], ConvS8Quant<'x>)> {
        let (x, y) = (self.input(0)?, self.y());
        let bias: &[i32] = self.read(self.input(2)?);
        let requant: &[Requant] = self.read(self.input(3)?);
        let (act_min, act_max) = clamp.as_i8();
        let quant = ConvS8Quant {
            input_zero_point: x.zero_point(),
            output_zero_point: y.zero_point(),
            requant,
            act_min,
            act_max,
        };
        Ok((bias, quant))
    }
}
