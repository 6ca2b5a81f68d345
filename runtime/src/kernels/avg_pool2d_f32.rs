//! Float 2-D average pooling over NCHW (also global average pooling: kernel = `[H, W]`).

use super::valid_range;
use super::{AvgPoolDivisor, PoolGeometry};

/// Average pooling: each output is the mean of the window positions inside the input.
///
/// The window of output `(oy, ox)` covers rows `oy*sh - pad_begin_h + ky*dh` for
/// `ky < kh` (columns likewise). The divisor is, per axis, the number of window
/// positions inside the input (`count_include_pad == false`), or inside the padded
/// extent `[-pad_begin, in_len + pad_end)` (`true`; positions beyond it, which
/// `ceil_mode` can create, are not counted). A window with a zero divisor gives 0.
///
/// Preconditions (debug-asserted): `input.len() == in_shape.len()`,
/// `output.len() == out_shape.len()`, same `n` and `c`, strides and dilations >= 1.
pub fn avg_pool2d_f32(
    input: &[f32],
    geometry: &PoolGeometry,
    divisor: AvgPoolDivisor,
    output: &mut [f32],
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
    if out_plane == 0 || ow == 0 {
        return;
    }
    let in_plane = ih * iw;
    for (p, out) in output.chunks_exact_mut(out_plane).enumerate() {
        let src = &input[p * in_plane..][..in_plane];
        for (oy, out_row) in out.chunks_exact_mut(ow).enumerate() {
            let y0 = (oy * sh) as isize - ph as isize;
            let (ky0, ky1) = valid_range(y0, dh, ih, kh);
            let rows = if count_include_pad {
                let (a, b) = valid_range(y0 + ph as isize, dh, ph + ih + pad_end[0], kh);
                b - a
            } else {
                ky1 - ky0
            };
            for (ox, o) in out_row.iter_mut().enumerate() {
                let x0 = (ox * sw) as isize - pw as isize;
                let (kx0, kx1) = valid_range(x0, dw, iw, kw);
                let cols = if count_include_pad {
                    let (a, b) = valid_range(x0 + pw as isize, dw, pw + iw + pad_end[1], kw);
                    b - a
                } else {
                    kx1 - kx0
                };
                let mut sum = 0.0f32;
                if kx0 < kx1 {
                    let ix0 = (x0 + (kx0 * dw) as isize) as usize;
                    for ky in ky0..ky1 {
                        let iy = (y0 + (ky * dh) as isize) as usize;
                        let row = &src[iy * iw + ix0..(iy + 1) * iw];
                        sum += row.iter().step_by(dw).take(kx1 - kx0).sum::<f32>();
                    }
                }
                let divisor = rows * cols;
                *o = if divisor == 0 {
                    0.0
                } else {
                    sum / divisor as f32
                };
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

    fn window(kernel: [usize; 2], stride: [usize; 2], pad_begin: [usize; 2]) -> Window2d {
        Window2d {
            kernel,
            stride,
            dilation: [1, 1],
            pad_begin,
        }
    }

    #[test]
    fn hand_computed_padding_divisors() {
        // 3x3 input 1..9, 2x2 window, stride 2, pad 1 begin, 0 end -> 2x2 output.
        let input: [f32; 9] = core::array::from_fn(|i| (i + 1) as f32);
        let s = Shape4::new(1, 1, 3, 3);
        let o = Shape4::new(1, 1, 2, 2);
        let w = window([2, 2], [2, 2], [1, 1]);
        let mut out = [0.0f32; 4];
        avg_pool2d_f32(
            &input,
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window: w,
            },
            AvgPoolDivisor {
                pad_end: [0, 0],
                count_include_pad: false,
            },
            &mut out,
        );
        // Windows: {1}, {2,3}, {4,7}, {5,6,8,9}.
        assert_eq!(out, [1.0, 2.5, 5.5, 7.0]);
        avg_pool2d_f32(
            &input,
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window: w,
            },
            AvgPoolDivisor {
                pad_end: [0, 0],
                count_include_pad: true,
            },
            &mut out,
        );
        assert_eq!(out, [0.25, 1.25, 2.75, 7.0]);
    }

    #[test]
    fn ceil_mode_positions_beyond_pad_end_are_not_counted() {
        // 1x3 row [1, 2, 3], kernel 1x2 stride 2, no padding, ceil_mode -> 2 outputs, the
        // last window [3, <beyond>] counts 1 position even with count_include_pad.
        let s = Shape4::new(1, 1, 1, 3);
        let o = Shape4::new(1, 1, 1, 2);
        let w = window([1, 2], [1, 2], [0, 0]);
        let mut out = [0.0f32; 2];
        avg_pool2d_f32(
            &[1.0, 2.0, 3.0],
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window: w,
            },
            AvgPoolDivisor {
                pad_end: [0, 0],
                count_include_pad: true,
            },
            &mut out,
        );
        assert_eq!(out, [1.5, 3.0]);
        // With an explicit end pad of 1 that position is padding, and counted.
        avg_pool2d_f32(
            &[1.0, 2.0, 3.0],
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window: w,
            },
            AvgPoolDivisor {
                pad_end: [0, 1],
                count_include_pad: true,
            },
            &mut out,
        );
        assert_eq!(out, [1.5, 1.5]);
    }

    #[test]
    fn global_average() {
        let input: Vec<f32> = (0..2 * 3 * 4 * 5).map(|i| i as f32).collect();
        let s = Shape4::new(2, 3, 4, 5);
        let o = Shape4::new(2, 3, 1, 1);
        let mut out = [0.0f32; 6];
        avg_pool2d_f32(
            &input,
            &PoolGeometry {
                in_shape: s,
                out_shape: o,
                window: window([4, 5], [1, 1], [0, 0]),
            },
            AvgPoolDivisor {
                pad_end: [0, 0],
                count_include_pad: false,
            },
            &mut out,
        );
        let want: [f32; 6] = core::array::from_fn(|p| (p * 20) as f32 + 9.5);
        assert_eq!(out, want);
    }

    /// Naive pooling in f64, looping over every window position.
    fn naive(
        input: &[f32],
        s: Shape4,
        w: &Window2d,
        pad_end: [usize; 2],
        include: bool,
        o: Shape4,
    ) -> Vec<f64> {
        let mut out = vec![0.0; o.len()];
        for p in 0..o.n * o.c {
            for oy in 0..o.h {
                for ox in 0..o.w {
                    let (mut sum, mut inside, mut padded) = (0.0, 0usize, 0usize);
                    for ky in 0..w.kernel[0] {
                        for kx in 0..w.kernel[1] {
                            let iy = (oy * w.stride[0] + ky * w.dilation[0]) as isize
                                - w.pad_begin[0] as isize;
                            let ix = (ox * w.stride[1] + kx * w.dilation[1]) as isize
                                - w.pad_begin[1] as isize;
                            let in_pad_y = iy >= -(w.pad_begin[0] as isize)
                                && iy < (s.h + pad_end[0]) as isize;
                            let in_pad_x = ix >= -(w.pad_begin[1] as isize)
                                && ix < (s.w + pad_end[1]) as isize;
                            if in_pad_y && in_pad_x {
                                padded += 1;
                            }
                            if iy >= 0 && ix >= 0 && iy < s.h as isize && ix < s.w as isize {
                                inside += 1;
                                sum += input[(p * s.h + iy as usize) * s.w + ix as usize] as f64;
                            }
                        }
                    }
                    let d = if include { padded } else { inside };
                    out[(p * o.h + oy) * o.w + ox] = if d == 0 { 0.0 } else { sum / d as f64 };
                }
            }
        }
        out
    }

    #[test]
    fn random_geometries_match_naive() {
        // Sums of at most 16 values in [-1, 1) in a different order: 1e-6 absolute is about
        // 16 ulp of the largest partial sum.
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for _ in 0..200 {
            let kernel = [1 + rng.below(4), 1 + rng.below(4)];
            let stride = [1 + rng.below(3), 1 + rng.below(3)];
            let dilation = [1 + rng.below(2), 1 + rng.below(2)];
            let pad_begin = [rng.below(kernel[0]), rng.below(kernel[1])];
            let pad_end = [rng.below(kernel[0]), rng.below(kernel[1])];
            let h = (1 + rng.below(8)).max(dilation[0] * (kernel[0] - 1) + 1);
            let w = (1 + rng.below(8)).max(dilation[1] * (kernel[1] - 1) + 1);
            let s = Shape4::new(1 + rng.below(2), 1 + rng.below(3), h, w);
            let out_len = |i: usize, len: usize, ceil: bool| {
                let span = dilation[i] * (kernel[i] - 1) + 1;
                let room = len + pad_begin[i] + pad_end[i] - span;
                if ceil {
                    room.div_ceil(stride[i]) + 1
                } else {
                    room / stride[i] + 1
                }
            };
            // ceil_mode can add one output whose window starts inside the padded input.
            let ceil = rng.below(2) == 1;
            let mut oh = out_len(0, h, ceil);
            let mut ow = out_len(1, w, ceil);
            // Keep ONNX's rule: the last window must start inside input or begin padding.
            while (oh - 1) * stride[0] >= h + pad_begin[0] {
                oh -= 1;
            }
            while (ow - 1) * stride[1] >= w + pad_begin[1] {
                ow -= 1;
            }
            let o = Shape4::new(s.n, s.c, oh, ow);
            let win = Window2d {
                kernel,
                stride,
                dilation,
                pad_begin,
            };
            let input: Vec<f32> = (0..s.len()).map(|_| rng.f32()).collect();
            let include = rng.below(2) == 1;
            let mut out = vec![f32::NAN; o.len()];
            avg_pool2d_f32(
                &input,
                &PoolGeometry {
                    in_shape: s,
                    out_shape: o,
                    window: win,
                },
                AvgPoolDivisor {
                    pad_end,
                    count_include_pad: include,
                },
                &mut out,
            );
            let want = naive(&input, s, &win, pad_end, include, o);
            for (g, w) in out.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() <= 1e-6,
                    "{g} vs {w} ({s:?} {win:?} {o:?})"
                );
            }
        }
    }
}
