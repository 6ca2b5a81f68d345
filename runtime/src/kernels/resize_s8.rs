//! Int8 bilinear Resize over H and W, integer-only.
//!
//! The output shares the input's quantization, so the quantized values are
//! interpolated directly (the weights sum to one, so the zero point is
//! preserved). Source coordinates are computed exactly from the rational
//! input/output ratio of [`ResizeGeometry`] and rounded to Q[`FRACTION_BITS`]
//! fixed point; the four weights are products of Q10 fractions and the sum is
//! rounded once, to nearest with ties away from zero.

use super::{CoordinateMode, ResizeGeometry, Shape4};
use crate::quant::rounding_divide_by_pot;

/// Fraction bits of source coordinates and interpolation weights.
pub const FRACTION_BITS: u32 = 10;
const ONE: i32 = 1 << FRACTION_BITS;
/// Output columns whose source coordinates are computed together and reused
/// for every row and channel.
const COLUMN_CHUNK: usize = 64;

/// Source sample of one output index along one axis: the two input indices and
/// the Q10 weight of the second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tap {
    first: usize,
    second: usize,
    fraction: i32,
}

/// Source coordinate of output index `o` (axis lengths `in_len`, `out_len`,
/// ratio `num / den`), as the rational `p / q` of the coordinate mode, then
/// rounded to Q10 (half up) and clamped to `[0, in_len - 1]`.
fn source_tap(
    coord: CoordinateMode,
    o: usize,
    in_len: usize,
    out_len: usize,
    num: u32,
    den: u32,
) -> Tap {
    let (p, q) = coord.source_fraction(o, in_len, out_len, num, den);
    let last = in_len.saturating_sub(1);
    let fixed = if p <= 0 {
        0
    } else {
        ((2 * p * ONE as i128 + q) / (2 * q)).min((last as i128) << FRACTION_BITS)
    };
    let first = (fixed >> FRACTION_BITS) as usize;
    Tap {
        first,
        second: (first + 1).min(last),
        fraction: (fixed & (ONE as i128 - 1)) as i32,
    }
}

/// Int8 bilinear resize of each `[h][w]` plane of an NCHW tensor.
///
/// For output `(oy, ox)`, the source coordinates `y = p / q` and `x` follow
/// `geometry.coord` exactly (rational arithmetic on `ratio_num / ratio_den`, or
/// `(in_len - 1) / (out_len - 1)` for align-corners), are rounded to 10 fraction
/// bits and clamped to `[0, in_len - 1]`; with `y0 = floor(y)`,
/// `y1 = min(y0 + 1, h - 1)`, `fy = y - y0` (likewise x), the output is
/// `round(sum of x[yi][xj] * wy_i * wx_j / 2^20)` with `wy_0 = 1024 - fy`,
/// `wy_1 = fy` in Q10, rounded to nearest with ties away from zero.
/// `in_shape.n == out_shape.n` and `in_shape.c == out_shape.c`.
pub fn resize_linear_s8(
    input: &[i8],
    in_shape: Shape4,
    geometry: &ResizeGeometry,
    output: &mut [i8],
    out_shape: Shape4,
) {
    debug_assert_eq!((in_shape.n, in_shape.c), (out_shape.n, out_shape.c));
    debug_assert!(input.len() >= in_shape.len() && output.len() >= out_shape.len());
    if out_shape.is_empty() || in_shape.h == 0 || in_shape.w == 0 {
        return;
    }
    let (ih, iw, oh, ow) = (in_shape.h, in_shape.w, out_shape.h, out_shape.w);
    let planes = out_shape.n * out_shape.c;
    let [num_h, num_w] = geometry.ratio_num;
    let [den_h, den_w] = geometry.ratio_den;
    let mut columns = [Tap::default(); COLUMN_CHUNK];
    let mut ox0 = 0;
    while ox0 < ow {
        let width = (ow - ox0).min(COLUMN_CHUNK);
        for (i, tap) in columns[..width].iter_mut().enumerate() {
            *tap = source_tap(geometry.coord, ox0 + i, iw, ow, num_w, den_w);
        }
        for oy in 0..oh {
            let row = source_tap(geometry.coord, oy, ih, oh, num_h, den_h);
            let (wy0, wy1) = (ONE - row.fraction, row.fraction);
            for plane in 0..planes {
                let src = &input[plane * ih * iw..][..ih * iw];
                let (top, bottom) = (&src[row.first * iw..][..iw], &src[row.second * iw..][..iw]);
                let dst = &mut output[(plane * oh + oy) * ow + ox0..][..width];
                for (d, tap) in dst.iter_mut().zip(&columns[..width]) {
                    let (wx0, wx1) = (ONE - tap.fraction, tap.fraction);
                    let upper = top[tap.first] as i32 * wx0 + top[tap.second] as i32 * wx1;
                    let lower = bottom[tap.first] as i32 * wx0 + bottom[tap.second] as i32 * wx1;
                    let sum = upper * wy0 + lower * wy1;
                    *d = rounding_divide_by_pot(sum, 2 * FRACTION_BITS as i32).clamp(-128, 127)
                        as i8;
                }
            }
        }
        ox0 += width;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use std::vec;

    /// Float bilinear (f64 coordinates straight from the ONNX formulas) of the
    /// dequantized input, quantized back with the shared quantization.
    fn float_model(
        input: &[i8],
        s: Shape4,
        g: &ResizeGeometry,
        o: Shape4,
        (scale, zp): (f64, i32),
    ) -> vec::Vec<i32> {
        let coordinate = |axis: usize, out: usize, in_len: usize, out_len: usize| -> f64 {
            let ratio = g.ratio_num[axis] as f64 / g.ratio_den[axis] as f64;
            let x = match g.coord {
                CoordinateMode::HalfPixel => (out as f64 + 0.5) * ratio - 0.5,
                CoordinateMode::PytorchHalfPixel if out_len > 1 => (out as f64 + 0.5) * ratio - 0.5,
                CoordinateMode::PytorchHalfPixel => 0.0,
                CoordinateMode::AlignCorners if out_len > 1 => {
                    out as f64 * (in_len - 1) as f64 / (out_len - 1) as f64
                }
                CoordinateMode::AlignCorners => 0.0,
                CoordinateMode::Asymmetric => out as f64 * ratio,
            };
            x.clamp(0.0, (in_len - 1) as f64)
        };
        let mut out = vec![0; o.len()];
        for p in 0..s.n * s.c {
            let real =
                |y: usize, x: usize| scale * (input[(p * s.h + y) * s.w + x] as i32 - zp) as f64;
            for oy in 0..o.h {
                let y = coordinate(0, oy, s.h, o.h);
                let (y0, fy) = (y.floor() as usize, y - y.floor());
                let y1 = (y0 + 1).min(s.h - 1);
                for ox in 0..o.w {
                    let x = coordinate(1, ox, s.w, o.w);
                    let (x0, fx) = (x.floor() as usize, x - x.floor());
                    let x1 = (x0 + 1).min(s.w - 1);
                    let v = (1.0 - fy) * ((1.0 - fx) * real(y0, x0) + fx * real(y0, x1))
                        + fy * ((1.0 - fx) * real(y1, x0) + fx * real(y1, x1));
                    out[(p * o.h + oy) * o.w + ox] =
                        ((v / scale).round() as i32 + zp).clamp(-128, 127);
                }
            }
        }
        out
    }

    #[test]
    fn upsample_2x_half_pixel_hand_computed() {
        // One row [0, 100] -> 4 columns; half-pixel with ratio 1/2: x = (o + 0.5)/2 - 0.5
        // = -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1) -> 0, 25, 75, 100.
        let g = ResizeGeometry {
            coord: CoordinateMode::HalfPixel,
            ratio_num: [1, 1],
            ratio_den: [2, 2],
        };
        let mut out = [0i8; 4];
        resize_linear_s8(
            &[0, 100],
            Shape4::new(1, 1, 1, 2),
            &g,
            &mut out,
            Shape4::new(1, 1, 1, 4),
        );
        assert_eq!(out, [0, 25, 75, 100]);
    }

    #[test]
    fn source_taps_are_exact_for_rational_ratios() {
        // Asymmetric 3/7: o = 7 lands exactly on input 3.
        let t = source_tap(CoordinateMode::Asymmetric, 7, 10, 20, 3, 7);
        assert_eq!((t.first, t.second, t.fraction), (3, 4, 0));
        // Align corners 5 -> 9: o = 2 -> 2 * 4 / 8 = 1.0.
        let t = source_tap(CoordinateMode::AlignCorners, 2, 5, 9, 1, 1);
        assert_eq!((t.first, t.fraction), (1, 0));
        // Clamped at the end: second index stays in range.
        let t = source_tap(CoordinateMode::HalfPixel, 3, 2, 4, 1, 2);
        assert_eq!((t.first, t.second, t.fraction), (1, 1, 0));
    }

    /// Random geometries and modes against the float model within 1 LSB: the
    /// Q10 coordinate rounding moves the result by at most 255 * 2^-11 LSB
    /// before the final rounding.
    #[test]
    fn matches_float_bilinear_within_one_lsb() {
        let mut rng = XorShift(0x2E51);
        let modes = [
            CoordinateMode::HalfPixel,
            CoordinateMode::PytorchHalfPixel,
            CoordinateMode::AlignCorners,
            CoordinateMode::Asymmetric,
        ];
        for case in 0..200 {
            let s = Shape4::new(1, rng.urange(1, 2), rng.urange(1, 9), rng.urange(1, 9));
            let o = Shape4::new(1, s.c, rng.urange(1, 20), rng.urange(1, 80));
            // Ratio in/out as ONNX derives it from the scale (or sizes): here in_len / out_len,
            // sometimes an unrelated ratio as an explicit `scales` input would give.
            let (ratio_num, ratio_den) = if case % 3 == 0 {
                (
                    [rng.urange(1, 5) as u32, rng.urange(1, 5) as u32],
                    [rng.urange(1, 5) as u32, rng.urange(1, 5) as u32],
                )
            } else {
                ([s.h as u32, s.w as u32], [o.h as u32, o.w as u32])
            };
            let g = ResizeGeometry {
                coord: modes[case % 4],
                ratio_num,
                ratio_den,
            };
            let q = (rng.float(0.01, 0.1), rng.range(-128, 127));
            let input = rng.i8s(s.len(), -128, 127);
            let mut out = vec![0i8; o.len()];
            resize_linear_s8(&input, s, &g, &mut out, o);
            let want = float_model(&input, s, &g, o, q);
            for (i, (&got, &want)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (got as i32 - want).abs() <= 1,
                    "case {case} {g:?} {s:?}->{o:?} at {i}: {got} vs {want}"
                );
            }
        }
    }
}
