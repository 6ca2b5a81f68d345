//! Int8 2-D max pooling over NCHW activations.
//!
//! The output shares the input's quantization (scale and zero point), and the
//! maximum commutes with the monotonic dequantization, so the result is the
//! maximum of the quantized values: exact, no requantization.

use super::{PoolGeometry, valid_taps};

/// Int8 max pooling: `out[n][c][oy][ox] = max x[n][c][oy * sh + ky * dh - pad_h][ox * sw + kx * dw - pad_w]`
/// over the taps inside the input (padding never wins). A window with no tap
/// inside the input (impossible for a valid ONNX geometry) gives `-128`.
///
/// `in_shape.n == out_shape.n` and `in_shape.c == out_shape.c`; the end padding
/// (and `ceil_mode`) is implied by `out_shape`.
pub fn max_pool2d_s8(input: &[i8], geometry: &PoolGeometry, output: &mut [i8]) {
    let PoolGeometry {
        in_shape,
        out_shape,
        ref window,
    } = *geometry;
    debug_assert_eq!((in_shape.n, in_shape.c), (out_shape.n, out_shape.c));
    debug_assert!(input.len() >= in_shape.len() && output.len() >= out_shape.len());
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw) = (in_shape.h, in_shape.w);
    let in_plane = ih * iw;
    let out_plane = out_shape.h * out_shape.w;
    for plane_index in 0..out_shape.n * out_shape.c {
        let plane = &input[plane_index * in_plane..][..in_plane];
        let out = &mut output[plane_index * out_plane..][..out_plane];
        for oy in 0..out_shape.h {
            let (ky0, ky1) = valid_taps(oy, kh, sh, dh, ph, ih);
            for ox in 0..out_shape.w {
                let (kx0, kx1) = valid_taps(ox, kw, sw, dw, pw, iw);
                let mut best = i8::MIN;
                for ky in ky0..ky1 {
                    let row = &plane[(oy * sh + ky * dh - ph) * iw..][..iw];
                    for kx in kx0..kx1 {
                        best = best.max(row[ox * sw + kx * dw - pw]);
                    }
                }
                out[oy * out_shape.w + ox] = best;
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
    fn hand_computed_with_padding_and_negative_values() {
        let input: [i8; 9] = [-5, -9, -1, -7, -3, -8, -6, -2, -4];
        let window = Window2d {
            kernel: [2, 2],
            stride: [2, 2],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        let mut out = [0i8; 4];
        max_pool2d_s8(
            &input,
            &PoolGeometry {
                in_shape: Shape4::new(1, 1, 3, 3),
                out_shape: Shape4::new(1, 1, 2, 2),
                window,
            },
            &mut out,
        );
        // Windows (rows, cols): {0}x{0}, {0}x{1,2}, {1,2}x{0}, {1,2}x{1,2}; padding ignored.
        assert_eq!(out, [-5, -1, -6, -2]);
    }

    #[test]
    fn valid_taps_matches_brute_force() {
        for len in 0..7 {
            for pad in 0..3 {
                for stride in 1..4 {
                    for dilation in 1..4 {
                        for kernel in 0..4 {
                            for o in 0..6 {
                                let (lo, hi) = valid_taps(o, kernel, stride, dilation, pad, len);
                                for k in 0..kernel {
                                    let i = (o * stride + k * dilation) as isize - pad as isize;
                                    let inside = i >= 0 && i < len as isize;
                                    assert_eq!(
                                        inside,
                                        (lo..hi).contains(&k),
                                        "{o} {k} {len} {pad} {stride} {dilation}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Against a float max over dequantized values (exact: no rounding involved).
    #[test]
    fn matches_float_model_exactly() {
        let mut rng = XorShift(0x600D);
        for _ in 0..100 {
            let window = Window2d {
                kernel: [rng.urange(1, 3), rng.urange(1, 3)],
                stride: [rng.urange(1, 3), rng.urange(1, 3)],
                dilation: [rng.urange(1, 2), rng.urange(1, 2)],
                pad_begin: [rng.urange(0, 1), rng.urange(0, 1)],
            };
            let s = Shape4::new(
                rng.urange(1, 2),
                rng.urange(1, 3),
                rng.urange(3, 9),
                rng.urange(3, 9),
            );
            let eff = |i: usize| (window.kernel[i] - 1) * window.dilation[i] + 1;
            if s.h + window.pad_begin[0] < eff(0) || s.w + window.pad_begin[1] < eff(1) {
                continue;
            }
            let o = Shape4::new(
                s.n,
                s.c,
                (s.h + window.pad_begin[0] - eff(0)) / window.stride[0] + 1,
                (s.w + window.pad_begin[1] - eff(1)) / window.stride[1] + 1,
            );
            let (scale, zp) = (rng.float(0.01, 0.1), rng.range(-128, 127));
            let input = rng.i8s(s.len(), -128, 127);
            let mut out = vec![0i8; o.len()];
            max_pool2d_s8(
                &input,
                &PoolGeometry {
                    in_shape: s,
                    out_shape: o,
                    window,
                },
                &mut out,
            );
            for p in 0..s.n * s.c {
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let mut best = f64::NEG_INFINITY;
                        for ky in 0..window.kernel[0] {
                            for kx in 0..window.kernel[1] {
                                let y = (oy * window.stride[0] + ky * window.dilation[0]) as isize
                                    - window.pad_begin[0] as isize;
                                let x = (ox * window.stride[1] + kx * window.dilation[1]) as isize
                                    - window.pad_begin[1] as isize;
                                if y >= 0 && x >= 0 && y < s.h as isize && x < s.w as isize {
                                    let q = input[(p * s.h + y as usize) * s.w + x as usize];
                                    best = best.max(scale * (q as i32 - zp) as f64);
                                }
                            }
                        }
                        // A window entirely in padding gives -128 by contract.
                        let want = if best == f64::NEG_INFINITY {
                            -128
                        } else {
                            ((best / scale).round() as i32 + zp).clamp(-128, 127)
                        };
                        assert_eq!(out[(p * o.h + oy) * o.w + ox] as i32, want);
                    }
                }
            }
        }
    }
}
