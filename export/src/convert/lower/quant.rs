//! Int8 quantization arithmetic of the lowering: the affine parameters of an
//! activation ([`QParams`], from a calibrated [`Ranges`] entry) and symmetric
//! per-row weight quantization. No graph or file knowledge: plain numbers.

use std::collections::HashMap;

use crate::convert::file::TensorQuant;

/// Affine int8 quantization of an activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
}

impl QParams {
    /// Asymmetric int8 parameters covering `[min, max]` (widened to include 0).
    pub fn from_range(min: f32, max: f32) -> QParams {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let scale = if max > min { (max - min) / 255.0 } else { 1.0 };
        let zero_point = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i32;
        QParams { scale, zero_point }
    }

    /// `x` quantized (round half away from zero, saturated).
    pub fn quantize(&self, x: f32) -> i32 {
        ((x / self.scale).round() as i64)
            .saturating_add(self.zero_point as i64)
            .clamp(-128, 127) as i32
    }
}

impl From<QParams> for TensorQuant {
    fn from(q: QParams) -> Self {
        TensorQuant::PerTensor {
            scale: q.scale,
            zero_point: q.zero_point,
        }
    }
}

/// Calibrated `(min, max)` of each activation value, by value id.
pub type Ranges = HashMap<usize, (f32, f32)>;

/// Symmetric int8 quantization of each of the `rows` rows of `[rows][cols]`
/// (range ±127, scale `max |row| / 127`, 1 for an all-zero row): (bytes, scales).
pub(super) fn quantize_rows_s8(data: &[f32], rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
    let mut q = Vec::with_capacity(rows * cols);
    let mut scales = Vec::with_capacity(rows);
    for row in 0..rows {
        let r = &data[row * cols..(row + 1) * cols];
        let max = r.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            r.iter()
                .map(|&v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8),
        );
    }
    (q, scales)
}
