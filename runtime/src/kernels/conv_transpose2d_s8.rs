//! Int8 2-D transposed convolution (TFLite int8 spec, integer-only), gather form.
//!
//! Each output sums the inputs that a scatter-form transposed convolution
//! would have added into it, so nothing is accumulated in memory and no scratch
//! is needed. Quantization parameters are the convolution's [`ConvS8Quant`].

#[cfg(doc)]
use super::conv2d_s8::ConvS8Quant;
use super::conv2d_s8::bias_of;
use super::{ConvGeometry, ConvS8Args};

/// Int8 2-D transposed convolution over NCHW activations.
///
/// * `weights`: repacked by the converter to `[c_out][c_in / groups][kh][kw]`
///   (ONNX stores `[c_in][c_out / groups][kh][kw]`).
/// * `window`: kernel, stride, dilation and `pad_begin` of the transposed
///   convolution; `out_shape` carries the rest (end padding, `output_padding`).
/// * `bias`: `c_out` values, or empty.
///
/// For output channel `oc` of group `g = oc / (c_out / groups)`:
/// `acc = bias[oc] + sum over ic in the group, ky, kx of w[oc][ic][ky][kx] * (x[iy][ix] - input_zero_point)`
/// over every input position with `oy = iy * sh - pad_h + ky * dh` and
/// `ox = ix * sw - pad_w + kx * dw`; the output is then as in [`ConvS8Quant`].
pub fn conv_transpose2d_s8(args: &ConvS8Args, output: &mut [i8]) {
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
    debug_assert!(window.stride[0] >= 1 && window.stride[1] >= 1);
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

    // The input index whose tap `k` (dilation `d`) lands on output `o`, if any:
    // `o + pad - k * d = i * s` with `0 <= i < len`.
    let source = |o: usize, k: usize, pad: usize, d: usize, s: usize, len: usize| {
        let t = (o + pad).checked_sub(k * d)?;
        (t % s == 0 && t / s < len).then_some(t / s)
    };

    for n in 0..out_shape.n {
        for oc in 0..out_shape.c {
            let g = oc / cout_g;
            let filter = &weights[oc * taps..][..taps];
            let requant = quant.requant_of(oc);
            let bias = bias_of(bias, oc);
            let out = &mut output[(n * out_shape.c + oc) * out_plane..][..out_plane];
            for oy in 0..out_shape.h {
                for ox in 0..out_shape.w {
                    let mut acc = bias;
                    for icg in 0..cin_g {
                        let ic = g * cin_g + icg;
                        let plane = &input[(n * in_shape.c + ic) * in_plane..][..in_plane];
                        for ky in 0..kh {
                            let Some(iy) = source(oy, ky, ph, dh, sh, in_shape.h) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = source(ox, kx, pw, dw, sw, in_shape.w) else {
                                    continue;
                                };
                                let x = plane[iy * in_shape.w + ix] as i32 - zp;
                                let w = filter[(icg * kh + ky) * kw + kx] as i32;
                                acc = acc.wrapping_add(w * x);
                            }
                        }
                    }
                    out[oy * out_shape.w + ox] = quant.finish(requant, acc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::ConvS8Quant;
    use super::super::conv2d_s8::testing::{XorShift, quantize};
    use super::super::{Shape4, Window2d};
    use super::*;
    use crate::quant::Requant;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn hand_computed_stride_2() {
        // 1x1x2x2 input, 2x2 kernel, stride 2: each input pixel stamps the kernel
        // into its own 2x2 block of the 4x4 output.
        let input = [1i8, 2, 3, 4];
        let weights = [1i8, 2, 3, 4];
        let requant = [Requant {
            multiplier: 1 << 30,
            shift: 1,
        }];
        let quant = ConvS8Quant {
            input_zero_point: 0,
            output_zero_point: 0,
            requant: &requant,
            act_min: -128,
            act_max: 127,
        };
        let window = Window2d {
            kernel: [2, 2],
            stride: [2, 2],
            dilation: [1, 1],
            pad_begin: [0, 0],
        };
        let mut out = [0i8; 16];
        conv_transpose2d_s8(
            &ConvS8Args {
                input: &input,
                weights: &weights,
                bias: &[1],
                geometry: ConvGeometry {
                    in_shape: Shape4::new(1, 1, 2, 2),
                    out_shape: Shape4::new(1, 1, 4, 4),
                    window,
                    groups: 1,
                },
                quant,
            },
            &mut out,
        );
        #[rustfmt::skip]
        let want = [
            2, 3, 3, 5,
            4, 5, 7, 9,
            4, 7, 5, 9,
            10, 13, 13, 17,
        ];
        assert_eq!(out, want);
    }

    /// Against a float scatter-form transposed convolution (an independent
    /// formulation); 1 LSB for the fixed-point multiplier.
    #[test]
    fn matches_float_scatter_model_within_one_lsb() {
        let mut rng = XorShift(0x7A5);
        for case in 0..80 {
            let groups = rng.urange(1, 2);
            let (cin, cout) = (groups * rng.urange(1, 3), groups * rng.urange(1, 3));
            let window = Window2d {
                kernel: [rng.urange(1, 3), rng.urange(1, 3)],
                stride: [rng.urange(1, 3), rng.urange(1, 3)],
                dilation: [rng.urange(1, 2), rng.urange(1, 2)],
                pad_begin: [rng.urange(0, 1), rng.urange(0, 1)],
            };
            let s = Shape4::new(rng.urange(1, 2), cin, rng.urange(1, 5), rng.urange(1, 5));
            // Full-size output (+ output_padding up to stride - 1), minus both paddings.
            let mut size = |i: usize, len: usize| {
                let full =
                    (len - 1) * window.stride[i] + (window.kernel[i] - 1) * window.dilation[i] + 1;
                (full + rng.urange(0, window.stride[i] - 1)).saturating_sub(2 * window.pad_begin[i])
            };
            let o = Shape4::new(s.n, cout, size(0, s.h), size(1, s.w));
            if o.is_empty() {
                continue;
            }
            let (cin_g, cout_g) = (cin / groups, cout / groups);
            let [kh, kw] = window.kernel;
            let input = rng.i8s(s.len(), -128, 127);
            let weights = rng.i8s(cout * cin_g * kh * kw, -127, 127);
            let bias: Vec<i32> = (0..cout).map(|_| rng.range(-2000, 2000)).collect();
            let (sx, zx) = (rng.float(0.01, 0.05), rng.range(-128, 127));
            let (so, zo) = (rng.float(0.02, 0.2), rng.range(-10, 10));
            let sw: Vec<f64> = (0..cout).map(|_| rng.float(0.002, 0.02)).collect();
            let requant: Vec<Requant> =
                sw.iter().map(|w| Requant::from_real(sx * w / so)).collect();
            let quant = ConvS8Quant {
                input_zero_point: zx,
                output_zero_point: zo,
                requant: &requant,
                act_min: -128,
                act_max: 127,
            };
            let mut out = vec![0i8; o.len()];
            conv_transpose2d_s8(
                &ConvS8Args {
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
                },
                &mut out,
            );

            let mut real = vec![0f64; o.len()];
            for n in 0..s.n {
                for oc in 0..cout {
                    for y in 0..o.h {
                        for x in 0..o.w {
                            real[((n * cout + oc) * o.h + y) * o.w + x] =
                                bias[oc] as f64 * sx * sw[oc];
                        }
                    }
                    let g = oc / cout_g;
                    for icg in 0..cin_g {
                        let ic = g * cin_g + icg;
                        for iy in 0..s.h {
                            for ix in 0..s.w {
                                let xv = sx
                                    * (input[((n * cin + ic) * s.h + iy) * s.w + ix] as i32 - zx)
                                        as f64;
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let oy = (iy * window.stride[0] + ky * window.dilation[0])
                                            as isize
                                            - window.pad_begin[0] as isize;
                                        let ox = (ix * window.stride[1] + kx * window.dilation[1])
                                            as isize
                                            - window.pad_begin[1] as isize;
                                        if oy < 0
                                            || ox < 0
                                            || oy >= o.h as isize
                                            || ox >= o.w as isize
                                        {
                                            continue;
                                        }
                                        let w = weights[((oc * cin_g + icg) * kh + ky) * kw + kx]
                                            as f64
                                            * sw[oc];
                                        real[((n * cout + oc) * o.h + oy as usize) * o.w
                                            + ox as usize] += xv * w;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for (i, (&got, &r)) in out.iter().zip(&real).enumerate() {
                let want = quantize(r, so, zo);
                assert!(
                    (got as i32 - want).abs() <= 1,
                    "case {case} element {i}: {got} vs {want}"
                );
            }
        }
    }
}
