//! Float 2-D max pooling over NCHW.

use super::PoolGeometry;
use super::valid_range;

/// Max pooling: each output is the maximum over the window positions inside the input
/// (padding never wins). The window of output `(oy, ox)` covers rows
/// `oy*sh - pad_begin_h + ky*dh`, `ky < kh` (columns likewise).
///
/// A window entirely in padding (impossible for valid ONNX geometry) gives `-inf`.
/// Preconditions (debug-asserted): slice lengths match the shapes, same `n` and `c`,
/// strides and dilations >= 1.
pub fn max_pool2d_f32(input: &[f32], geometry: &PoolGeometry, output: &mut [f32]) {
    let PoolGeometry {
        in_shape,
        out_shape,
        ref window,
    } = *geometry;
    debug_assert_eq!(input.len(), in_shape.len());
    debug_assert_eq!(output.len(), out_shape.len());
    debug_assert_eq!((in_shape.n, in_shape.c), (out_shape.n, out_shape.c));
    debug_assert!(window.stride[0] >= 1 && window.stride[1] >= 1);
    debug_assert!(window.dilation[0] >= 1 && window.dilation[1] >= 1);
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw) = (in_shape.h, in_shape.w);
    let (oh, ow) = (out_shape.h, out_shape.w);
    let out_plane = oh * ow;
    if out_plane == 0 {
        return;
    }
    let in_plane = ih * iw;
    for (p, out) in output.chunks_exact_mut(out_plane).enumerate() {
        let src = &input[p * in_plane..][..in_plane];
        for (oy, out_row) in out.chunks_exact_mut(ow).enumerate() {
            let y0 = (oy * sh) as isize - ph as isize;
            let (ky0, ky1) = valid_range(y0, dh, ih, kh);
            for (ox, o) in out_row.iter_mut().enumerate() {
                let x0 = (ox * sw) as isize - pw as isize;
                let (kx0, kx1) = valid_range(x0, dw, iw, kw);
                let mut best = f32::NEG_INFINITY;
                if kx0 < kx1 {
                    let ix0 = (x0 + (kx0 * dw) as isize) as usize;
                    for ky in ky0..ky1 {
                        let iy = (y0 + (ky * dh) as isize) as usize;
                        let row = &src[iy * iw + ix0..(iy + 1) * iw];
                        for &v in row.iter().step_by(dw).take(kx1 - kx0) {
                            if v > best {
                                best = v;
                            }
                        }
                    }
                }
                *o = best;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::{Shape4, Window2d};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    #[test]
    fn hand_computed_with_padding_and_dilation() {
        // 4x4 input with negative values so that padding (if it counted as 0) would win.
        let input: [f32; 16] = core::array::from_fn(|i| -(i as f32) - 1.0);
        let s = Shape4::new(1, 1, 4, 4);
        let w = Window2d {
            kernel: [2, 2],
            stride: [2, 2],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        let o = Shape4::new(1, 1, 3, 3);
        let mut out = [0.0f32; 9];
        max_pool2d_f32(
            &input,
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window: w,
            },
            &mut out,
        );
        assert_eq!(
            out,
            [-1.0, -2.0, -4.0, -5.0, -6.0, -8.0, -13.0, -14.0, -16.0]
        );
        // Dilation 2: a 2x2 window picks (0,0),(0,2),(2,0),(2,2) from its origin.
        let input: [f32; 16] = core::array::from_fn(|i| i as f32);
        let w = Window2d {
            kernel: [2, 2],
            stride: [1, 1],
            dilation: [2, 2],
            pad_begin: [0, 0],
        };
        let o = Shape4::new(1, 1, 2, 2);
        let mut out = [0.0f32; 4];
        max_pool2d_f32(
            &input,
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window: w,
            },
            &mut out,
        );
        assert_eq!(out, [10.0, 11.0, 14.0, 15.0]);
    }

    #[test]
    fn random_geometries_match_naive() {
        // Max is exact: results must be equal, not just close.
        let mut rng = XorShift(0xdead_beef_1234_5678);
        for _ in 0..200 {
            let kernel = [1 + rng.below(4), 1 + rng.below(4)];
            let stride = [1 + rng.below(3), 1 + rng.below(3)];
            let dilation = [1 + rng.below(3), 1 + rng.below(3)];
            let pad_begin = [rng.below(kernel[0]), rng.below(kernel[1])];
            let pad_end = [rng.below(kernel[0]), rng.below(kernel[1])];
            let h = (1 + rng.below(8)).max(dilation[0] * (kernel[0] - 1) + 1);
            let w = (1 + rng.below(8)).max(dilation[1] * (kernel[1] - 1) + 1);
            let s = Shape4::new(1 + rng.below(2), 1 + rng.below(3), h, w);
            let out_len = |i: usize, len: usize| {
                (len + pad_begin[i] + pad_end[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i]
                    + 1
            };
            let o = Shape4::new(s.n, s.c, out_len(0, h), out_len(1, w));
            let win = Window2d {
                kernel,
                stride,
                dilation,
                pad_begin,
            };
            let input: Vec<f32> = (0..s.len()).map(|_| rng.f32()).collect();
            let mut out = vec![f32::NAN; o.len()];
            max_pool2d_f32(
                &input,
                &PoolGeometry {
                    in_shape: s,
                    out_shape: o,
                    window: win,
                },
                &mut out,
            );
            for p in 0..o.n * o.c {
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let mut best = f32::NEG_INFINITY;
                        for ky in 0..kernel[0] {
                            for kx in 0..kernel[1] {
                                let iy = (oy * stride[0] + ky * dilation[0]) as isize
                                    - pad_begin[0] as isize;
                                let ix = (ox * stride[1] + kx * dilation[1]) as isize
                                    - pad_begin[1] as isize;
                                if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                                    best = best.max(input[(p * h + iy as usize) * w + ix as usize]);
                                }
                            }
                        }
                        assert_eq!(out[(p * o.h + oy) * o.w + ox], best, "{win:?} {s:?}");
                    }
                }
            }
        }
    }
}
