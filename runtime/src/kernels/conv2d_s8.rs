//! Int8 2-D convolution, portable reference (TFLite int8 spec, integer-only).
//!
//! Direct loops, no scratch: this is the kernel every faster variant
//! ([`super::conv2d_s8_fast`]) must match bit for bit. It owns the meaning of
//! [`ConvS8Quant`], which the fully connected and transposed convolution
//! kernels share.

use super::{ConvGeometry, ConvS8Args};
#[cfg(test)]
use super::{Shape4, Window2d};
use crate::quant::Requant;

/// Quantization of an int8 convolution or fully connected layer.
///
/// With `acc = bias[oc] + sum(w * (x - input_zero_point))` (an `i32`), the output is
/// `clamp(requant[oc].apply(acc) + output_zero_point, act_min, act_max)`.
#[derive(Clone, Copy, Debug)]
pub struct ConvS8Quant<'a> {
    /// Zero point of the input activation (in `[-128, 127]`).
    pub input_zero_point: i32,
    /// Zero point of the output activation (in `[-128, 127]`).
    pub output_zero_point: i32,
    /// `input_scale * weight_scale[oc] / output_scale` per output channel. A
    /// single entry is shared by every channel (per-tensor weights).
    pub requant: &'a [Requant],
    /// Lower output bound (int8), `-128` unless a fused Relu / Relu6 / Clip raises it.
    pub act_min: i32,
    /// Upper output bound (int8), `127` unless a fused Relu6 / Clip lowers it.
    pub act_max: i32,
}

impl ConvS8Quant<'_> {
    /// The requantization factor of output channel `oc`.
    #[inline]
    pub(crate) fn requant_of(&self, oc: usize) -> Requant {
        if self.requant.len() == 1 {
            self.requant[0]
        } else {
            self.requant[oc]
        }
    }

    /// Requantizes the accumulator of channel `oc` and clamps it to the int8 output.
    /// Out of line on Cortex-M with the DSP extension, where the row paths
    /// ([`Self::finish_row_scalar`]) carry the hot loops: one small copy of its
    /// 64-bit arithmetic instead of one unrolled into every caller.
    #[cfg_attr(all(feature = "arm-dsp", target_arch = "arm"), inline(never))]
    #[cfg_attr(not(all(feature = "arm-dsp", target_arch = "arm")), inline)]
    pub(crate) fn finish(&self, requant: Requant, acc: i32) -> i8 {
        let value = requant.apply(acc).saturating_add(self.output_zero_point);
        // max/min (not `clamp`) so that a malformed `act_min > act_max` cannot panic.
        value.max(self.act_min).min(self.act_max).clamp(-128, 127) as i8
    }

    /// Adds `offset` (the bias and any correction of channel `oc`) to each sum
    /// of `acc`, wrapping, then [`Self::finish_row`]s them into `out`.
    #[inline(always)]
    pub(crate) fn finish_row_with(&self, oc: usize, offset: i32, acc: &mut [i32], out: &mut [i8]) {
        for sum in acc.iter_mut() {
            *sum = sum.wrapping_add(offset);
        }
        self.finish_row(self.requant_of(oc), acc, out);
    }

    /// `out[i] = self.finish(requant, acc[i])` for a whole row, bit for bit.
    ///
    /// The same arithmetic as [`Requant::apply`] rearranged so that LLVM
    /// vectorizes it: per-factor decisions are hoisted out of the loop, the
    /// saturating left shift uses `i32` compares, the rounding doubling high
    /// multiply is `(x * m + 2^30) >> 31` (equal to the nudge-and-truncate form
    /// for every input but `i32::MIN * i32::MIN`), and the rounded value is
    /// clamped to `±2^25` before adding the zero point (which cannot change an
    /// int8 result while `|output_zero_point| <= 2^24`). Factors or zero points
    /// outside those ranges take the per-element path. Requantization otherwise
    /// dominates kernels with few multiply-adds per output (depthwise). Always
    /// inlined, so that it is compiled for the instruction set of its caller.
    #[inline(always)]
    pub(crate) fn finish_row(&self, requant: Requant, acc: &[i32], out: &mut [i8]) {
        debug_assert!(out.len() <= acc.len());
        if cfg!(all(feature = "arm-dsp", target_arch = "arm")) {
            self.finish_row_scalar(requant, acc, out);
            return;
        }
        const BOUND: i32 = 1 << 25;
        let zero_point = self.output_zero_point;
        if requant.multiplier == i32::MIN || !(-(1 << 24)..=1 << 24).contains(&zero_point) {
            for (o, &a) in out.iter_mut().zip(acc) {
                *o = self.finish(requant, a);
            }
            return;
        }
        let left = requant.shift.clamp(0, 31) as u32;
        let right = requant.shift.saturating_neg().clamp(0, 31) as u32;
        let multiplier = requant.multiplier as i64;
        let mask = ((1i64 << right) - 1) as i32;
        let half = mask >> 1;
        let (largest, smallest) = (i32::MAX >> left, i32::MIN >> left);
        let (act_min, act_max) = (self.act_min, self.act_max);
        for (o, &x) in out.iter_mut().zip(acc) {
            // Saturating x << left.
            let shifted = if x > largest {
                i32::MAX
            } else if x < smallest {
                i32::MIN
            } else {
                x << left
            };
            let high = ((shifted as i64 * multiplier + (1 << 30)) >> 31) as i32;
            // Rounding division by 2^right, ties away from zero.
            let rounded = (high >> right) + ((high & mask) > half + ((high >> 31) & 1)) as i32;
            let value = rounded.clamp(-BOUND, BOUND) + zero_point;
            *o = value.max(act_min).min(act_max).clamp(-128, 127) as i8;
        }
    }
}

impl ConvS8Quant<'_> {
    /// [`Self::finish_row`] for in-order scalar cores (Cortex-M with the DSP
    /// extension): out of line, so that the caller's registers stay free, and
    /// short for the usual factors (no left shift, a right shift of 1 to 23, an
    /// int8 zero point): rounding half away from zero is
    /// `(high + 2^(right-1) - (high < 0)) >> right`, whose add saturates only
    /// where the exact sum exceeds `i32::MAX` (both results then exceed 254
    /// and clamp alike), and the two clamps merge into one (`max(lo).min(hi)`
    /// with both bounds clamped to int8, equal to
    /// `max(act_min).min(act_max).clamp(-128, 127)` for any bounds): one `SSAT`
    /// without fused activation. Other factors take [`Self::finish`].
    #[cfg_attr(all(feature = "arm-dsp", target_arch = "arm"), inline(never))]
    pub(crate) fn finish_row_scalar(&self, requant: Requant, acc: &[i32], out: &mut [i8]) {
        let right = requant.shift.saturating_neg();
        let zero_point = self.output_zero_point;
        if requant.multiplier == i32::MIN
            || !(1..=23).contains(&right)
            || !(-128..=127).contains(&zero_point)
        {
            for (o, &a) in out.iter_mut().zip(acc) {
                *o = self.finish(requant, a);
            }
            return;
        }
        let multiplier = requant.multiplier as i64;
        let nudge = 1i32 << (right - 1);
        let rounded = |x: i32| {
            let high = ((x as i64 * multiplier + (1 << 30)) >> 31) as i32;
            high.saturating_add(nudge + (high >> 31)) >> right
        };
        let (lo, hi) = (self.act_min.clamp(-128, 127), self.act_max.clamp(-128, 127));
        if (lo, hi) == (-128, 127) {
            for (o, &x) in out.iter_mut().zip(acc) {
                *o = (rounded(x) + zero_point).clamp(-128, 127) as i8;
            }
        } else {
            for (o, &x) in out.iter_mut().zip(acc) {
                *o = (rounded(x) + zero_point).max(lo).min(hi) as i8;
            }
        }
    }
}

/// Bias of channel `oc`, 0 when `bias` is empty.
#[inline]
pub(crate) fn bias_of(bias: &[i32], oc: usize) -> i32 {
    if bias.is_empty() { 0 } else { bias[oc] }
}

/// Int8 2-D convolution over NCHW activations (reference implementation).
///
/// * `args.input`: `in_shape` (`[n][c_in][h][w]`), quantized with `quant.input_zero_point`.
/// * `args.weights`: `[c_out][c_in / groups][kh][kw]`, symmetric (zero point 0).
/// * `args.bias`: `c_out` values in units of `input_scale * weight_scale[oc]`, or empty for none.
/// * `args.geometry`: shapes, window (kernel, stride, dilation and leading
///   padding; the trailing padding is whatever `out_shape` implies) and groups.
/// * `output`: `out_shape` (`[n][c_out][oh][ow]`).
///
/// For output channel `oc` of group `g = oc / (c_out / groups)`:
/// `acc = bias[oc] + sum over ic in the group, ky, kx of w * (x[iy][ix] - input_zero_point)`
/// with `iy = oy * sh + ky * dh - pad_h` and `ix = ox * sw + kx * dw - pad_w`; taps
/// outside the input (padding) contribute 0. The `i32` accumulator wraps on overflow
/// (unreachable for `K < 2^16` taps). Output: see [`ConvS8Quant`].
pub fn conv2d_s8(args: &ConvS8Args, output: &mut [i8]) {
    let ConvS8Args {
        input,
        weights,
        bias,
        geometry:
            ConvGeometry {
                in_shape,
                out_shape,
                ref window,
                groups,
            },
        ref quant,
    } = *args;
    debug_assert!(
        groups >= 1 && in_shape.c.is_multiple_of(groups) && out_shape.c.is_multiple_of(groups)
    );
    debug_assert_eq!(in_shape.n, out_shape.n);
    debug_assert!(input.len() >= in_shape.len() && output.len() >= out_shape.len());
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let cin_g = in_shape.c / groups;
    let cout_g = out_shape.c / groups;
    let taps = cin_g * kh * kw;
    debug_assert!(weights.len() >= out_shape.c * taps);
    debug_assert!(bias.is_empty() || bias.len() >= out_shape.c);
    let zp = quant.input_zero_point;
    let in_plane = in_shape.h * in_shape.w;
    let out_plane = out_shape.h * out_shape.w;

    for n in 0..out_shape.n {
        for oc in 0..out_shape.c {
            let g = oc / cout_g;
            let filter = &weights[oc * taps..][..taps];
            let requant = quant.requant_of(oc);
            let bias = bias_of(bias, oc);
            let out_base = (n * out_shape.c + oc) * out_plane;
            for oy in 0..out_shape.h {
                for ox in 0..out_shape.w {
                    let mut acc = bias;
                    for icg in 0..cin_g {
                        let ic = g * cin_g + icg;
                        let plane = &input[(n * in_shape.c + ic) * in_plane..][..in_plane];
                        for ky in 0..kh {
                            let Some(iy) = (oy * sh + ky * dh).checked_sub(ph) else {
                                continue;
                            };
                            if iy >= in_shape.h {
                                continue;
                            }
                            for kx in 0..kw {
                                let Some(ix) = (ox * sw + kx * dw).checked_sub(pw) else {
                                    continue;
                                };
                                if ix >= in_shape.w {
                                    continue;
                                }
                                let x = plane[iy * in_shape.w + ix] as i32 - zp;
                                let w = filter[(icg * kh + ky) * kw + kx] as i32;
                                acc = acc.wrapping_add(w * x);
                            }
                        }
                    }
                    output[out_base + oy * out_shape.w + ox] = quant.finish(requant, acc);
                }
            }
        }
    }
}

/// Test helpers shared by the int8 kernels' unit tests (PRNG, float models).
#[cfg(test)]
pub(crate) mod testing {
    extern crate std;
    use std::vec::Vec;

    /// Tiny xorshift32 PRNG: reproducible test data without dependencies.
    pub(crate) struct XorShift(pub u32);

    impl XorShift {
        /// Next raw 32-bit value.
        pub(crate) fn next_u32(&mut self) -> u32 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.0 = x;
            x
        }

        /// Uniform in `lo..=hi`.
        pub(crate) fn range(&mut self, lo: i32, hi: i32) -> i32 {
            lo + (self.next_u32() % ((hi - lo + 1) as u32)) as i32
        }

        /// Uniform `usize` in `lo..=hi`.
        pub(crate) fn urange(&mut self, lo: usize, hi: usize) -> usize {
            self.range(lo as i32, hi as i32) as usize
        }

        /// Uniform in `[lo, hi)`.
        pub(crate) fn float(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * (self.next_u32() as f64 / 4_294_967_296.0)
        }

        /// `len` int8 values in `lo..=hi`.
        pub(crate) fn i8s(&mut self, len: usize, lo: i32, hi: i32) -> Vec<i8> {
            (0..len).map(|_| self.range(lo, hi) as i8).collect()
        }
    }

    /// Quantizes a real value to int8: round half away from zero, saturate.
    pub(crate) fn quantize(real: f64, scale: f64, zero_point: i32) -> i32 {
        ((real / scale).round() as i64 + zero_point as i64).clamp(-128, 127) as i32
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::testing::{XorShift, quantize};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Float model: dequantize, convolve in f64, requantize with the real factors
    /// (`in_scale`, `w_scales`, `out_scale`; zero points and clamp from `args.quant`).
    fn conv_float(args: &ConvS8Args, in_scale: f64, w_scales: &[f64], out_scale: f64) -> Vec<i32> {
        let ConvS8Args {
            input,
            weights,
            bias,
            geometry,
            quant,
        } = *args;
        let (s, o, window, groups) = (
            geometry.in_shape,
            geometry.out_shape,
            &geometry.window,
            geometry.groups,
        );
        let (in_zp, out_zp) = (quant.input_zero_point, quant.output_zero_point);
        let (act_min, act_max) = (quant.act_min, quant.act_max);
        let [kh, kw] = window.kernel;
        let (cin_g, cout_g) = (s.c / groups, o.c / groups);
        let mut out = vec![0; o.len()];
        for n in 0..o.n {
            for oc in 0..o.c {
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let mut acc = bias[oc] as f64 * in_scale * w_scales[oc];
                        for icg in 0..cin_g {
                            let ic = oc / cout_g * cin_g + icg;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * window.stride[0] + ky * window.dilation[0])
                                        as isize
                                        - window.pad_begin[0] as isize;
                                    let ix = (ox * window.stride[1] + kx * window.dilation[1])
                                        as isize
                                        - window.pad_begin[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let x = input
                                        [((n * s.c + ic) * s.h + iy as usize) * s.w + ix as usize];
                                    let w = weights[((oc * cin_g + icg) * kh + ky) * kw + kx];
                                    acc += in_scale
                                        * (x as i32 - in_zp) as f64
                                        * w_scales[oc]
                                        * w as f64;
                                }
                            }
                        }
                        let q = quantize(acc, out_scale, out_zp).clamp(act_min, act_max);
                        out[((n * o.c + oc) * o.h + oy) * o.w + ox] = q;
                    }
                }
            }
        }
        out
    }

    /// `finish_row` is an optimization of `finish`: equal on every factor and value.
    #[test]
    fn finish_row_equals_finish() {
        let mut rng = XorShift(99);
        let mut acc: Vec<i32> = (0..2000)
            .map(|_| (rng.next_u32() as i32) >> rng.urange(0, 31))
            .collect();
        acc.extend([
            i32::MIN,
            i32::MIN + 1,
            i32::MAX,
            -1,
            0,
            1,
            1 << 30,
            -(1 << 30),
        ]);
        let multipliers = [
            0,
            1,
            1 << 30,
            1_500_000_000,
            i32::MAX,
            -5,
            i32::MIN,
            -(1 << 30),
        ];
        for shift in -31..=31 {
            for &multiplier in &multipliers {
                let requant = [Requant { multiplier, shift }];
                let (act_min, act_max) = [
                    (-128, 127),
                    (0, 6),
                    (10, -10),
                    (-300, 300),
                    (200, 300),
                    (-300, -200),
                ][rng.urange(0, 5)];
                let quant = ConvS8Quant {
                    input_zero_point: 0,
                    output_zero_point: [
                        rng.range(-128, 127),
                        rng.range(-128, 127),
                        1 << 24,
                        -(1 << 24),
                        (1 << 24) + 1,
                        i32::MIN,
                    ][rng.urange(0, 5)],
                    requant: &requant,
                    act_min,
                    act_max,
                };
                let mut row = vec![0i8; acc.len()];
                quant.finish_row(requant[0], &acc, &mut row);
                let mut scalar = vec![0i8; acc.len()];
                quant.finish_row_scalar(requant[0], &acc, &mut scalar);
                for ((&a, &got), &got_scalar) in acc.iter().zip(&row).zip(&scalar) {
                    let want = quant.finish(requant[0], a);
                    assert_eq!(got, want, "{multiplier} {shift} {a}");
                    assert_eq!(got_scalar, want, "scalar: {multiplier} {shift} {a}");
                }
            }
        }
    }

    #[test]
    fn hand_computed_3x3_with_padding() {
        // One 3x3 input channel, one 2x2 filter, stride 1, pad 1 on top/left only.
        let input: [i8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let weights: [i8; 4] = [1, -1, 2, 0];
        let window = Window2d {
            kernel: [2, 2],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        // Requant factor exactly 1.0 (0.5 * 2^1), zero points 0 / 3.
        let requant = [Requant {
            multiplier: 1 << 30,
            shift: 1,
        }];
        let quant = ConvS8Quant {
            input_zero_point: 1,
            output_zero_point: 3,
            requant: &requant,
            act_min: -128,
            act_max: 127,
        };
        let mut out = [0i8; 9];
        let args = ConvS8Args {
            input: &input,
            weights: &weights,
            bias: &[10],
            geometry: ConvGeometry {
                in_shape: Shape4::new(1, 1, 3, 3),
                out_shape: Shape4::new(1, 1, 3, 3),
                window,
                groups: 1,
            },
            quant,
        };
        conv2d_s8(&args, &mut out);
        // x - zp = [0 1 2; 3 4 5; 6 7 8]. out(oy,ox) = 10 + 1*x(oy-1,ox-1) - x(oy-1,ox) + 2*x(oy,ox-1) + 3.
        // (0,0): 10 + 0 + 3 = 13; (0,1): 10 + 2*0 + 3 = 13; (0,2): 10 + 2*1 + 3 = 15
        // (1,0): 10 - 0 + 3 = 13; (1,1): 10 + 0 - 1 + 2*3 + 3 = 18; (1,2): 10 + 1 - 2 + 2*4 + 3 = 20
        // (2,0): 10 - 3 + 3 = 10; (2,1): 10 + 3 - 4 + 2*6 + 3 = 24; (2,2): 10 + 4 - 5 + 2*7 + 3 = 26
        assert_eq!(out, [13, 13, 15, 13, 18, 20, 10, 24, 26]);
    }

    #[test]
    fn fused_relu6_clamps_and_empty_bias_is_zero() {
        let input: [i8; 4] = [100, -100, 50, 0];
        let requant = [Requant {
            multiplier: 1 << 30,
            shift: 1,
        }];
        let quant = ConvS8Quant {
            input_zero_point: 0,
            output_zero_point: 0,
            requant: &requant,
            act_min: 0,
            act_max: 60,
        };
        let window = Window2d {
            kernel: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [0, 0],
        };
        let mut out = [0i8; 4];
        let args = ConvS8Args {
            input: &input,
            weights: &[1],
            bias: &[],
            geometry: ConvGeometry {
                in_shape: Shape4::new(1, 1, 2, 2),
                out_shape: Shape4::new(1, 1, 2, 2),
                window,
                groups: 1,
            },
            quant,
        };
        conv2d_s8(&args, &mut out);
        assert_eq!(out, [60, 0, 50, 0]);
    }

    /// Random geometries against the float model. Tolerance 1 LSB: the float model
    /// rounds the exact real result once, the kernel rounds the fixed-point
    /// multiplier (31-bit mantissa) and then the product.
    #[test]
    fn matches_float_model_within_one_lsb() {
        let mut rng = XorShift(0x1234_5678);
        let mut checked = 0;
        for case in 0..150 {
            let groups = [1, 1, 2, 3][rng.urange(0, 3)];
            let depthwise = case % 5 == 0;
            let (cin, cout) = if depthwise {
                let c = rng.urange(1, 4);
                (c, c * rng.urange(1, 2))
            } else {
                (groups * rng.urange(1, 3), groups * rng.urange(1, 3))
            };
            let groups = if depthwise { cin } else { groups };
            let window = Window2d {
                kernel: [rng.urange(1, 3), rng.urange(1, 3)],
                stride: [rng.urange(1, 2), rng.urange(1, 2)],
                dilation: [rng.urange(1, 2), rng.urange(1, 2)],
                pad_begin: [rng.urange(0, 2), rng.urange(0, 2)],
            };
            let s = Shape4::new(rng.urange(1, 2), cin, rng.urange(1, 7), rng.urange(1, 7));
            let span = |i: usize, len: usize, pad_end: usize| {
                let eff = (window.kernel[i] - 1) * window.dilation[i] + 1;
                (len + window.pad_begin[i] + pad_end).saturating_sub(eff) / window.stride[i] + 1
            };
            let (pe_h, pe_w) = (rng.urange(0, 2), rng.urange(0, 2));
            let eff_h = (window.kernel[0] - 1) * window.dilation[0] + 1;
            let eff_w = (window.kernel[1] - 1) * window.dilation[1] + 1;
            if s.h + window.pad_begin[0] + pe_h < eff_h || s.w + window.pad_begin[1] + pe_w < eff_w
            {
                continue;
            }
            let o = Shape4::new(s.n, cout, span(0, s.h, pe_h), span(1, s.w, pe_w));
            let taps = cin / groups * window.kernel[0] * window.kernel[1];
            let input = rng.i8s(s.len(), -128, 127);
            let weights = rng.i8s(cout * taps, -127, 127);
            let bias: Vec<i32> = (0..cout).map(|_| rng.range(-5000, 5000)).collect();
            let in_q = (rng.float(0.005, 0.05), rng.range(-128, 127));
            let out_q = (rng.float(0.02, 0.5), rng.range(-20, 20));
            let w_scales: Vec<f64> = (0..cout).map(|_| rng.float(0.001, 0.02)).collect();
            let requant: Vec<Requant> = w_scales
                .iter()
                .map(|ws| Requant::from_real(in_q.0 * ws / out_q.0))
                .collect();
            let act = if case % 3 == 0 {
                (out_q.1, 127)
            } else {
                (-128, 127)
            };
            let quant = ConvS8Quant {
                input_zero_point: in_q.1,
                output_zero_point: out_q.1,
                requant: &requant,
                act_min: act.0,
                act_max: act.1,
            };
            let mut out = vec![0i8; o.len()];
            let args = ConvS8Args {
                input: &input,
                weights: &weights,
                bias: &bias,
                geometry: ConvGeometry {
                    in_shape: s,
                    out_shape: o,
                    window,
                    groups,
                },
                quant,
            };
            conv2d_s8(&args, &mut out);
            let want = conv_float(&args, in_q.0, &w_scales, out_q.0);
            for (i, (&got, &want)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (got as i32 - want).abs() <= 1,
                    "case {case} element {i}: {got} vs {want}"
                );
            }
            checked += 1;
        }
        assert!(checked > 100, "only {checked} geometries checked");
    }
}
