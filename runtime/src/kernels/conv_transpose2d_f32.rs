//! Float 2-D transposed convolution (ONNX ConvTranspose): NCHW activations, weights
//! repacked by the converter to `[out_ch][in_ch / groups][kh][kw]`, f32 or f16.
//!
//! Gather form, so no scratch is needed: each output row starts at its bias, then for
//! every input row that reaches it (`oy = iy*sh - pad_begin_h + ky*dh`) and every `kx`
//! the matching input elements are accumulated with one (strided when `sw > 1`) axpy.

use super::valid_range;
use super::{ConvF32Args, ConvGeometry, FloatWeight};

mod phases;
pub use phases::{conv_transpose2d_f32_phases, conv_transpose2d_f32_scratch_len};

/// Transposed convolution:
/// `out[n][oc][oy][ox] = clamp(bias[oc] + sum in[n][g*cin_g + ic][iy][ix] * w[oc][ic][ky][kx])`
/// over `ic < in_ch/groups`, `ky`, `kx`, `iy`, `ix` with `oy = iy*sh - pad_begin_h + ky*dh`
/// and `ox = ix*sw - pad_begin_w + kx*dw`, `g = oc / (out_ch / groups)`. Outputs that no
/// input reaches hold just the (clamped) bias; `out_shape` decides the extent (so
/// `output_padding` and end padding are already resolved by the converter).
///
/// Preconditions (debug-asserted): channel counts are multiples of `groups`, same batch,
/// slice lengths match, `weights` holds `out_ch * in_ch/groups * kh * kw` values, `bias`
/// (if any) `out_ch`.
pub fn conv_transpose2d_f32<W: FloatWeight>(args: &ConvF32Args<W>, output: &mut [f32]) {
    let ConvF32Args {
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
        clamp,
    } = *args;
    debug_assert!(groups >= 1);
    debug_assert!(in_shape.c.is_multiple_of(groups) && out_shape.c.is_multiple_of(groups));
    debug_assert_eq!(in_shape.n, out_shape.n);
    debug_assert_eq!(input.len(), in_shape.len());
    debug_assert_eq!(output.len(), out_shape.len());
    debug_assert!(window.stride[0] >= 1 && window.stride[1] >= 1);
    debug_assert!(window.dilation[0] >= 1 && window.dilation[1] >= 1);
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw) = (in_shape.h, in_shape.w);
    let (oh, ow) = (out_shape.h, out_shape.w);
    let cin_g = in_shape.c / groups;
    let cout_g = out_shape.c / groups;
    let taps = kh * kw;
    debug_assert_eq!(weights.len(), out_shape.c * cin_g * taps);
    debug_assert!(bias.is_none_or(|b| b.len() == out_shape.c));
    let out_plane = oh * ow;
    if out_plane == 0 {
        return;
    }
    for (n, output_n) in output.chunks_exact_mut(out_shape.c * out_plane).enumerate() {
        for (oc, plane) in output_n.chunks_exact_mut(out_plane).enumerate() {
            let g = oc / cout_g;
            let b = bias.map_or(0.0, |b| b[oc]);
            let w_oc = &weights[oc * cin_g * taps..][..cin_g * taps];
            for (oy, row) in plane.chunks_exact_mut(ow).enumerate() {
                row.fill(b);
                for ky in 0..kh {
                    // iy * sh = oy + ph - ky * dh must be a non-negative multiple of sh.
                    let t = (oy + ph) as isize - (ky * dh) as isize;
                    if t < 0 {
                        break; // t only decreases with ky
                    }
                    let t = t as usize;
                    if !t.is_multiple_of(sh) || t / sh >= ih {
                        continue;
                    }
                    let iy = t / sh;
                    for ic in 0..cin_g {
                        let src =
                            &input[((n * in_shape.c + g * cin_g + ic) * ih + iy) * iw..][..iw];
                        let w_row = &w_oc[(ic * kh + ky) * kw..][..kw];
                        for (kx, wv) in w_row.iter().enumerate() {
                            let off = kx_offset(kx, dw, pw);
                            // Inputs ix with 0 <= ix*sw + off < ow.
                            let (ix0, ix1) = valid_range(off, sw, ow, iw);
                            if ix0 == ix1 {
                                continue;
                            }
                            let ox0 = ((ix0 * sw) as isize + off) as usize;
                            let wv = wv.to_f32();
                            let src = &src[ix0..ix1];
                            if sw == 1 {
                                for (o, &x) in row[ox0..].iter_mut().zip(src) {
                                    *o += wv * x;
                                }
                            } else {
                                for (o, &x) in row[ox0..].iter_mut().step_by(sw).zip(src) {
                                    *o += wv * x;
                                }
                            }
                        }
                    }
                }
                for v in row.iter_mut() {
                    *v = clamp.apply(*v);
                }
            }
        }
    }
}

/// Output column offset of tap `kx`: `ox = ix * sw + kx_offset`.
#[inline(always)]
fn kx_offset(kx: usize, dw: usize, pw: usize) -> isize {
    (kx * dw) as isize - pw as isize
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::{ClampF32, Shape4, Window2d};
    use super::*;
    use half::f16;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    /// Naive scatter form in f64: every input element adds `x * w` to each output it
    /// reaches. Also returns per-output sums of |terms| for the tolerance.
    fn naive_scatter(
        input: &[f32],
        s: Shape4,
        weights: &[f32],
        bias: Option<&[f32]>,
        win: &Window2d,
        groups: usize,
        o: Shape4,
    ) -> (Vec<f64>, Vec<f64>) {
        let cin_g = s.c / groups;
        let cout_g = o.c / groups;
        let [kh, kw] = win.kernel;
        let mut out = vec![0.0f64; o.len()];
        let mut mag = vec![0.0f64; o.len()];
        for n in 0..o.n {
            for oc in 0..o.c {
                let b = bias.map_or(0.0, |b| b[oc] as f64);
                for i in 0..o.h * o.w {
                    out[(n * o.c + oc) * o.h * o.w + i] = b;
                    mag[(n * o.c + oc) * o.h * o.w + i] = b.abs();
                }
            }
            for c in 0..s.c {
                let g = c / cin_g;
                let ic = c % cin_g;
                for iy in 0..s.h {
                    for ix in 0..s.w {
                        let x = input[((n * s.c + c) * s.h + iy) * s.w + ix] as f64;
                        for ocl in 0..cout_g {
                            let oc = g * cout_g + ocl;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let oy = (iy * win.stride[0] + ky * win.dilation[0]) as isize
                                        - win.pad_begin[0] as isize;
                                    let ox = (ix * win.stride[1] + kx * win.dilation[1]) as isize
                                        - win.pad_begin[1] as isize;
                                    if oy < 0 || ox < 0 || oy >= o.h as isize || ox >= o.w as isize
                                    {
                                        continue;
                                    }
                                    let wv =
                                        weights[((oc * cin_g + ic) * kh + ky) * kw + kx] as f64;
                                    let idx =
                                        ((n * o.c + oc) * o.h + oy as usize) * o.w + ox as usize;
                                    out[idx] += x * wv;
                                    mag[idx] += (x * wv).abs();
                                }
                            }
                        }
                    }
                }
            }
        }
        (out, mag)
    }

    #[test]
    fn hand_computed_stride_2() {
        // One channel 2x2 input, 2x2 kernel of ones, stride 2: each input fills a 2x2 block.
        let input = [1.0f32, 2.0, 3.0, 4.0];
        let win = Window2d {
            kernel: [2, 2],
            stride: [2, 2],
            dilation: [1, 1],
            pad_begin: [0, 0],
        };
        let mut out = [0.0f32; 16];
        conv_transpose2d_f32(
            &ConvF32Args {
                input: &input,
                weights: &[1.0f32; 4],
                bias: Some(&[0.5]),
                geometry: ConvGeometry {
                    in_shape: Shape4::new(1, 1, 2, 2),
                    out_shape: Shape4::new(1, 1, 4, 4),
                    window: win,
                    groups: 1,
                },
                clamp: ClampF32::NONE,
            },
            &mut out,
        );
        let want = [
            1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.,
        ]
        .map(|v| v + 0.5);
        assert_eq!(out, want);
        // Stride 1, 3-wide kernel [1, 2, 3] on a 1x2 row, pad 1: full = [1, 4, 7, 6], cropped
        // by one column each side -> [4, 7]; plus an unreached extra column holding the bias.
        let win = Window2d {
            kernel: [1, 3],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [0, 1],
        };
        let mut out = [0.0f32; 3];
        conv_transpose2d_f32(
            &ConvF32Args {
                input: &[1.0f32, 2.0],
                weights: &[1.0f32, 2.0, 3.0],
                bias: Some(&[10.0]),
                geometry: ConvGeometry {
                    in_shape: Shape4::new(1, 1, 1, 2),
                    out_shape: Shape4::new(1, 1, 1, 3),
                    window: win,
                    groups: 1,
                },
                clamp: ClampF32::NONE,
            },
            &mut out,
        );
        assert_eq!(out, [14.0, 17.0, 16.0]);
    }

    #[test]
    fn random_geometries_match_scatter() {
        // Tolerance as for conv2d: f32 accumulation in another order than the f64 reference,
        // error <= K * 6e-8 * sum|terms| with K <= ~100 terms per output here.
        let mut rng = XorShift(0x7777_1234_abcd_0001);
        for iter in 0..80 {
            let groups = [1, 1, 2, 3][rng.below(4)];
            let cin_g = 1 + rng.below(3);
            let cout_g = 1 + rng.below(3);
            let kernel = [1 + rng.below(4), 1 + rng.below(4)];
            let stride = [1 + rng.below(3), 1 + rng.below(3)];
            let dilation = [1 + rng.below(2), 1 + rng.below(2)];
            let pad_begin = [rng.below(kernel[0]), rng.below(kernel[1])];
            let s = Shape4::new(
                1 + rng.below(2),
                cin_g * groups,
                1 + rng.below(5),
                1 + rng.below(5),
            );
            // Full output minus begin padding, then a random end crop or extension.
            let full =
                |i: usize, len: usize| (len - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1;
            let oh = (full(0, s.h) - pad_begin[0] + rng.below(3))
                .saturating_sub(rng.below(2))
                .max(1);
            let ow = (full(1, s.w) - pad_begin[1] + rng.below(3))
                .saturating_sub(rng.below(2))
                .max(1);
            let o = Shape4::new(s.n, cout_g * groups, oh, ow);
            let win = Window2d {
                kernel,
                stride,
                dilation,
                pad_begin,
            };
            let k = cin_g * kernel[0] * kernel[1];
            let input: Vec<f32> = (0..s.len()).map(|_| rng.f32()).collect();
            let weights: Vec<f32> = (0..o.c * k).map(|_| rng.f32()).collect();
            let bias: Vec<f32> = (0..o.c).map(|_| rng.f32()).collect();
            let bias = (iter % 4 != 0).then_some(&bias[..]);
            let clamp = if iter % 3 == 0 {
                ClampF32 {
                    min: -0.5,
                    max: 0.75,
                }
            } else {
                ClampF32::NONE
            };

            let geometry = ConvGeometry {
                in_shape: s,
                out_shape: o,
                window: win,
                groups,
            };
            let (want, mag) = naive_scatter(&input, s, &weights, bias, &win, groups, o);
            let args = ConvF32Args {
                input: &input,
                weights: &weights[..],
                bias,
                geometry,
                clamp,
            };
            every_variant_matches(&args, &want, &mag, &std::format!("f32 groups {groups}"));

            let w16: Vec<f16> = weights.iter().map(|&w| f16::from_f32(w)).collect();
            let w16_f32: Vec<f32> = w16.iter().map(|w| w.to_f32()).collect();
            let (want, mag) = naive_scatter(&input, s, &w16_f32, bias, &win, groups, o);
            let args = ConvF32Args {
                input: &input,
                weights: &w16[..],
                bias,
                geometry,
                clamp,
            };
            every_variant_matches(&args, &want, &mag, "f16");
        }
    }

    /// Phases of several GEMM tiles (over 256 phase pixels), with one tap per
    /// phase (the 2x2 / stride-2 upsampling of detector heads) and with
    /// overlapping taps (3x3 / stride 2 / padding 1, output padding 1).
    #[test]
    fn large_phases_match_scatter() {
        let mut rng = XorShift(0x7A11);
        for (kernel, pad, extra) in [(2, 0, 0), (3, 1, 1)] {
            let s = Shape4::new(1, 5, 19, 33);
            let full = |len: usize| (len - 1) * 2 + kernel - 2 * pad + extra;
            let o = Shape4::new(1, 7, full(s.h), full(s.w));
            let win = Window2d {
                kernel: [kernel, kernel],
                stride: [2, 2],
                dilation: [1, 1],
                pad_begin: [pad, pad],
            };
            let input: Vec<f32> = (0..s.len()).map(|_| rng.f32()).collect();
            let weights: Vec<f32> = (0..o.c * s.c * kernel * kernel)
                .map(|_| rng.f32())
                .collect();
            let bias: Vec<f32> = (0..o.c).map(|_| rng.f32()).collect();
            let (want, mag) = naive_scatter(&input, s, &weights, Some(&bias), &win, 1, o);
            let geometry = ConvGeometry {
                in_shape: s,
                out_shape: o,
                window: win,
                groups: 1,
            };
            let args = ConvF32Args {
                input: &input,
                weights: &weights[..],
                bias: Some(&bias),
                geometry,
                clamp: ClampF32::NONE,
            };
            let variants = every_variant(&args);
            assert_eq!(variants.len(), 3, "a phase plan for {win:?}");
            for (variant, out) in variants {
                for i in 0..o.len() {
                    assert!(
                        (out[i] as f64 - want[i]).abs() <= 1e-5 * mag[i] + 1e-6,
                        "{variant}: {win:?} at {i}"
                    );
                }
            }
        }
    }

    /// Every variant of [`every_variant`] is within float tolerance of the
    /// clamped f64 scatter `want` (`mag`: the sum of the terms' magnitudes).
    fn every_variant_matches<W: FloatWeight>(
        args: &ConvF32Args<W>,
        want: &[f64],
        mag: &[f64],
        label: &str,
    ) {
        let g = &args.geometry;
        for (variant, out) in every_variant(args) {
            for i in 0..out.len() {
                let w = args.clamp.apply(want[i] as f32) as f64;
                assert!(
                    (out[i] as f64 - w).abs() <= 1e-5 * mag[i] + 1e-6,
                    "{label} {variant}: {:?} {:?} {:?} at {i}",
                    g.window,
                    g.in_shape,
                    g.out_shape
                );
            }
        }
    }

    /// The gather form, and the phase GEMM (dispatched and portable) where
    /// the geometry has a plan; outputs start as NaN so a missed one shows.
    fn every_variant<W: FloatWeight>(args: &ConvF32Args<W>) -> Vec<(&'static str, Vec<f32>)> {
        let len = args.geometry.out_shape.len();
        let mut out = vec![f32::NAN; len];
        conv_transpose2d_f32(args, &mut out);
        let mut variants = vec![("gather", out)];
        let need = conv_transpose2d_f32_scratch_len(&args.geometry);
        if need > 0 {
            for (name, fast) in [("phases", true), ("phases (portable GEMM)", false)] {
                let mut scratch = vec![f32::NAN; need];
                let mut out = vec![f32::NAN; len];
                conv_transpose2d_f32_phases(args, &mut out, &mut scratch, fast);
                variants.push((name, out));
            }
        }
        variants
    }
}
