//! Int8 2-D average pooling over NCHW activations.
//!
//! The output shares the input's quantization, so the average of the quantized
//! values is the answer (the zero point averages to itself): a sum and one
//! rounded integer division per output, ties away from zero as in TFLite.

use super::valid_taps;
use super::{AvgPoolDivisor, PoolGeometry};

/// `sum / count` rounded to nearest, ties away from zero; `count > 0`.
#[inline]
fn rounded_div(sum: i32, count: i32) -> i32 {
    let half = count / 2;
    if sum >= 0 {
        (sum + half) / count
    } else {
        (sum - half) / count
    }
}

/// Int8 average pooling.
///
/// For each output, `taps_in` is the number of window taps
/// (`oy * sh + ky * dh - pad_h`, likewise for columns) inside the input and
/// `sum` their quantized values. With `count_include_pad == false` the result is
/// `round(sum / taps_in)`; with `true` the divisor is the number of taps inside
/// the padded extent `[-pad_begin, in_len + pad_end)` of both axes, and each
/// such padding tap adds `input_zero_point` (real 0) to `sum`. Taps beyond the
/// padded extent (`ceil_mode`) never count. Rounding is to nearest, ties away
/// from zero; a window with a zero divisor (impossible for a valid ONNX
/// geometry) gives `input_zero_point`.
pub fn avg_pool2d_s8(
    input: &[i8],
    geometry: &PoolGeometry,
    divisor: AvgPoolDivisor,
    input_zero_point: i32,
    output: &mut [i8],
) {
    let PoolGeometry {
        in_shape,
        out_shape,
        ref window,
    } = *geometry;
    let AvgPoolDivisor {
        pad_end,
        count_include_pad,
    } = divisor;
    debug_assert_eq!((in_shape.n, in_shape.c), (out_shape.n, out_shape.c));
    debug_assert!(input.len() >= in_shape.len() && output.len() >= out_shape.len());
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw) = (in_shape.h, in_shape.w);
    let in_plane = ih * iw;
    let out_plane = out_shape.h * out_shape.w;
    // Taps inside the padded extent: the tap index shifted by `pad` lies in
    // `0..pad + len + pad_end`, i.e. "inside" an input of that length with no padding.
    let padded_taps =
        |o: usize, k: usize, s: usize, d: usize, pad: usize, len: usize, end: usize| {
            let (lo, hi) = valid_taps(o, k, s, d, 0, pad + len + end);
            (hi - lo) as i32
        };
    for plane_index in 0..out_shape.n * out_shape.c {
        let plane = &input[plane_index * in_plane..][..in_plane];
        let out = &mut output[plane_index * out_plane..][..out_plane];
        for oy in 0..out_shape.h {
            let (ky0, ky1) = valid_taps(oy, kh, sh, dh, ph, ih);
            let rows_padded = padded_taps(oy, kh, sh, dh, ph, ih, pad_end[0]);
            for ox in 0..out_shape.w {
                let (kx0, kx1) = valid_taps(ox, kw, sw, dw, pw, iw);
                let mut sum = 0i32;
                for ky in ky0..ky1 {
                    let row = &plane[(oy * sh + ky * dh - ph) * iw..][..iw];
                    for kx in kx0..kx1 {
                        sum += row[ox * sw + kx * dw - pw] as i32;
                    }
                }
                let taps_in = ((ky1 - ky0) * (kx1 - kx0)) as i32;
                let count = if count_include_pad {
                    let taps = rows_padded * padded_taps(ox, kw, sw, dw, pw, iw, pad_end[1]);
                    sum = sum.wrapping_add(input_zero_point.wrapping_mul(taps - taps_in));
                    taps
                } else {
                    taps_in
                };
                let value = if count > 0 {
                    rounded_div(sum, count)
                } else {
                    input_zero_point
                };
                out[oy * out_shape.w + ox] = value.clamp(-128, 127) as i8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::super::{Shape4, Window2d};
    use super::*;
    use std::vec;

    #[test]
    fn rounded_div_ties_away_from_zero() {
        assert_eq!(rounded_div(5, 2), 3);
        assert_eq!(rounded_div(-5, 2), -3);
        assert_eq!(rounded_div(7, 4), 2); // 1.75
        assert_eq!(rounded_div(-7, 4), -2);
        assert_eq!(rounded_div(6, 4), 2); // 1.5
        assert_eq!(rounded_div(-6, 4), -2);
        assert_eq!(rounded_div(5, 4), 1); // 1.25
    }

    #[test]
    fn hand_computed_include_and_exclude_padding() {
        // 2x2 input, 2x2 window, stride 1, pad 1 on all sides -> 3x3 output.
        let input: [i8; 4] = [10, 20, 30, 41];
        let window = Window2d {
            kernel: [2, 2],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        let (s, o) = (Shape4::new(1, 1, 2, 2), Shape4::new(1, 1, 3, 3));
        let mut out = [0i8; 9];
        avg_pool2d_s8(
            &input,
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window,
            },
            AvgPoolDivisor {
                pad_end: [1, 1],
                count_include_pad: false,
            },
            0,
            &mut out,
        );
        // Corners see one value; edges the mean of two; centre (10+20+30+41)/4 = 25.25.
        assert_eq!(out, [10, 15, 20, 20, 25, 31, 30, 36, 41]);
        // Including padding with zero point 2: every window has 4 taps.
        avg_pool2d_s8(
            &input,
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window,
            },
            AvgPoolDivisor {
                pad_end: [1, 1],
                count_include_pad: true,
            },
            2,
            &mut out,
        );
        // (10 + 3*2)/4 = 4; (10 + 20 + 2*2)/4 = 8.5 -> 9; (41 + 3*2)/4 = 11.75 -> 12.
        assert_eq!(out[0], 4);
        assert_eq!(out[1], 9);
        assert_eq!(out[8], 12);
        assert_eq!(out[4], 25);
    }

    /// Against dequantize -> float average -> quantize. The float model rounds
    /// the same real value, so the results agree exactly except where the mean is
    /// a tie that float rounding of the scaled value breaks the other way: 1 LSB.
    #[test]
    fn matches_float_model_within_one_lsb() {
        let mut rng = XorShift(0xA7E);
        for case in 0..150 {
            let window = Window2d {
                kernel: [rng.urange(1, 4), rng.urange(1, 4)],
                stride: [rng.urange(1, 3), rng.urange(1, 3)],
                dilation: [rng.urange(1, 2), rng.urange(1, 2)],
                pad_begin: [rng.urange(0, 1), rng.urange(0, 1)],
            };
            let pad_end = [rng.urange(0, 2), rng.urange(0, 2)];
            let include = case % 2 == 0;
            let s = Shape4::new(1, rng.urange(1, 3), rng.urange(2, 8), rng.urange(2, 8));
            let eff = |i: usize| (window.kernel[i] - 1) * window.dilation[i] + 1;
            let padded = [
                s.h + window.pad_begin[0] + pad_end[0],
                s.w + window.pad_begin[1] + pad_end[1],
            ];
            if padded[0] < eff(0) || padded[1] < eff(1) {
                continue;
            }
            let o = Shape4::new(
                1,
                s.c,
                (padded[0] - eff(0)) / window.stride[0] + 1,
                (padded[1] - eff(1)) / window.stride[1] + 1,
            );
            let (scale, zp) = (rng.float(0.01, 0.1), rng.range(-128, 127));
            let input = rng.i8s(s.len(), -128, 127);
            let mut out = vec![0i8; o.len()];
            avg_pool2d_s8(
                &input,
                &PoolGeometry {
                    in_shape: s,
                    out_shape: o,
                    window,
                },
                AvgPoolDivisor {
                    pad_end,
                    count_include_pad: include,
                },
                zp,
                &mut out,
            );
            for c in 0..s.c {
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let (mut sum, mut count) = (0f64, 0usize);
                        for ky in 0..window.kernel[0] {
                            for kx in 0..window.kernel[1] {
                                let y = (oy * window.stride[0] + ky * window.dilation[0]) as isize
                                    - window.pad_begin[0] as isize;
                                let x = (ox * window.stride[1] + kx * window.dilation[1]) as isize
                                    - window.pad_begin[1] as isize;
                                let inside =
                                    y >= 0 && x >= 0 && y < s.h as isize && x < s.w as isize;
                                let in_padded = y >= -(window.pad_begin[0] as isize)
                                    && x >= -(window.pad_begin[1] as isize)
                                    && y < (s.h + pad_end[0]) as isize
                                    && x < (s.w + pad_end[1]) as isize;
                                if inside {
                                    sum += scale
                                        * (input[(c * s.h + y as usize) * s.w + x as usize] as i32
                                            - zp) as f64;
                                    count += 1;
                                } else if include && in_padded {
                                    count += 1;
                                }
                            }
                        }
                        let want =
                            ((sum / count as f64 / scale).round() as i32 + zp).clamp(-128, 127);
                        let got = out[(c * o.h + oy) * o.w + ox] as i32;
                        assert!((got - want).abs() <= 1, "case {case}: {got} vs {want}");
                    }
                }
            }
        }
    }
}
