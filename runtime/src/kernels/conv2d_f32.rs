//! Float 2-D convolution: NCHW activations, weights `[out_ch][in_ch / groups][kh][kw]`
//! stored as f32 or f16 ([`FloatWeight`]), optional per-channel bias, fused clamp.
//!
//! Three paths, chosen from the geometry alone (see [`conv2d_f32_scratch_len`]):
//! - **direct**, when every group has one input channel (depthwise, with or without a
//!   channel multiplier): each output row is built by one contiguous "axpy" per tap;
//! - **pointwise**, 1x1 kernel, stride 1, no padding, output the size of the input: the
//!   input planes already are the `[K][H*W]` matrix, so the GEMM reads them in place;
//! - **im2col**, everything else: one (batch, group) at a time the patches are unfolded
//!   into `scratch` as `[K = in_ch/groups * kh * kw][out_h * out_w]`, then the GEMM.
//!
//! The GEMM computes register tiles of 4 output channels x 8 output positions: for each
//! `k`, `acc[r][p] += w[r][k] * col[k][p]` over contiguous `p` (axpy form), which LLVM
//! vectorizes on NEON, SSE and MVE without target-specific code.

use super::{ClampF32, ConvF32Args, ConvGeometry, FloatWeight, Shape4, Window2d, valid_range};

/// Output channels per GEMM register tile.
const TILE_OC: usize = 4;
/// Output positions per GEMM register tile.
const TILE_P: usize = 8;

/// Which of the three algorithms a geometry uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Direct,
    Pointwise,
    Im2col,
}

fn choose_path(geometry: &ConvGeometry) -> Path {
    let ConvGeometry {
        in_shape,
        out_shape,
        ref window,
        groups,
    } = *geometry;
    let cin_g = in_shape.c / groups.max(1);
    if cin_g == 1 {
        Path::Direct
    } else if window.kernel == [1, 1]
        && window.stride == [1, 1]
        && window.pad_begin == [0, 0]
        && out_shape.h == in_shape.h
        && out_shape.w == in_shape.w
    {
        Path::Pointwise
    } else {
        Path::Im2col
    }
}

/// Number of f32 elements of `scratch` that [`conv2d_f32`] needs for this geometry.
///
/// 0 for the direct path (one input channel per group) and the pointwise path
/// (1x1, stride 1, no padding, `out_h == in_h`, `out_w == in_w`); otherwise
/// `in_ch / groups * kh * kw * out_h * out_w` (one group of one batch at a time).
pub fn conv2d_f32_scratch_len(geometry: &ConvGeometry) -> usize {
    match choose_path(geometry) {
        Path::Direct | Path::Pointwise => 0,
        Path::Im2col => {
            let ConvGeometry {
                in_shape,
                out_shape,
                ref window,
                groups,
            } = *geometry;
            let cin_g = in_shape.c / groups.max(1);
            cin_g * window.kernel[0] * window.kernel[1] * out_shape.h * out_shape.w
        }
    }
}

/// 2-D convolution:
/// `out[n][oc][oy][ox] = clamp(bias[oc] + sum_{ic, ky, kx} in[n][g*cin_g + ic][iy][ix] * w[oc][ic][ky][kx])`
/// with `g = oc / (out_ch / groups)`, `iy = oy*sh - pad_begin_h + ky*dh`, `ix` likewise;
/// input positions outside the image are zero padding.
///
/// Preconditions (debug-asserted): `in_ch` and `out_ch` are multiples of `groups`,
/// `in_shape.n == out_shape.n`, slice lengths match the shapes, `weights` holds
/// `out_ch * in_ch/groups * kh * kw` values, `bias` (if any) `out_ch`, and
/// `scratch.len() >= conv2d_f32_scratch_len(..)`.
pub fn conv2d_f32<W: FloatWeight>(args: &ConvF32Args<W>, output: &mut [f32], scratch: &mut [f32]) {
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
    let cin_g = in_shape.c / groups;
    let cout_g = out_shape.c / groups;
    let k = cin_g * window.kernel[0] * window.kernel[1];
    debug_assert_eq!(weights.len(), out_shape.c * k);
    debug_assert!(bias.is_none_or(|b| b.len() == out_shape.c));
    debug_assert!(scratch.len() >= conv2d_f32_scratch_len(&args.geometry));
    if output.is_empty() {
        return;
    }
    let in_plane = in_shape.h * in_shape.w;
    let out_plane = out_shape.h * out_shape.w;
    let path = choose_path(&args.geometry);
    if path == Path::Direct {
        conv_direct(args, output);
        return;
    }
    if k == 0 || in_plane == 0 {
        // Empty reduction: every output is its (clamped) bias.
        for (oc, plane) in output.chunks_exact_mut(out_plane).enumerate() {
            let b = bias.map_or(0.0, |b| b[oc % out_shape.c]);
            plane.fill(clamp.apply(b));
        }
        return;
    }
    let in_batch = in_shape.c * in_plane;
    let out_batch = out_shape.c * out_plane;
    for (input_n, output_n) in input
        .chunks_exact(in_batch)
        .zip(output.chunks_exact_mut(out_batch))
    {
        for g in 0..groups {
            let input_g = &input_n[g * cin_g * in_plane..][..cin_g * in_plane];
            let output_g = &mut output_n[g * cout_g * out_plane..][..cout_g * out_plane];
            let weights_g = &weights[g * cout_g * k..][..cout_g * k];
            let bias_g = bias.map(|b| &b[g * cout_g..][..cout_g]);
            let col: &[f32] = if path == Path::Pointwise {
                input_g
            } else {
                let col = &mut scratch[..k * out_plane];
                im2col(input_g, in_shape, window, out_shape, col);
                col
            };
            gemm(weights_g, k, col, out_plane, bias_g, clamp, output_g);
        }
    }
}

/// `dst[i] += w * src[i * stride]` for every `i` in `dst`.
#[inline(always)]
fn axpy_strided(dst: &mut [f32], w: f32, src: &[f32], stride: usize) {
    if stride == 1 {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += w * s;
        }
    } else {
        for (d, &s) in dst.iter_mut().zip(src.iter().step_by(stride)) {
            *d += w * s;
        }
    }
}

/// Direct convolution for one input channel per group: per output row, one axpy per tap.
fn conv_direct<W: FloatWeight>(args: &ConvF32Args<W>, output: &mut [f32]) {
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
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw) = (in_shape.h, in_shape.w);
    let (oh, ow) = (out_shape.h, out_shape.w);
    let cout_g = out_shape.c / groups;
    let taps = kh * kw;
    let in_plane = ih * iw;
    let out_plane = oh * ow;
    if ow == 0 || out_plane == 0 {
        return;
    }
    for (n, output_n) in output.chunks_exact_mut(out_shape.c * out_plane).enumerate() {
        for (oc, plane) in output_n.chunks_exact_mut(out_plane).enumerate() {
            let ic = oc / cout_g;
            let src = &input[(n * in_shape.c + ic) * in_plane..][..in_plane];
            let w = &weights[oc * taps..][..taps];
            let b = bias.map_or(0.0, |b| b[oc]);
            for (oy, row) in plane.chunks_exact_mut(ow).enumerate() {
                row.fill(b);
                let y0 = (oy * sh) as isize - ph as isize;
                let (ky0, ky1) = valid_range(y0, dh, ih, kh);
                for ky in ky0..ky1 {
                    let iy = (y0 + (ky * dh) as isize) as usize;
                    let src_row = &src[iy * iw..][..iw];
                    for (kx, wv) in w[ky * kw..][..kw].iter().enumerate() {
                        let x_off = (kx * dw) as isize - pw as isize;
                        let (ox0, ox1) = valid_range(x_off, sw, iw, ow);
                        if ox0 == ox1 {
                            continue;
                        }
                        let ix0 = ((ox0 * sw) as isize + x_off) as usize;
                        axpy_strided(&mut row[ox0..ox1], wv.to_f32(), &src_row[ix0..], sw);
                    }
                }
                for v in row.iter_mut() {
                    *v = clamp.apply(*v);
                }
            }
        }
    }
}

/// Unfolds the patches of one group (`cin_g` planes) into `col` as `[K][oh*ow]`, row
/// `k = (ic * kh + ky) * kw + kx` (the weight order), zeros where the tap is padding.
fn im2col(
    input_g: &[f32],
    in_shape: Shape4,
    window: &Window2d,
    out_shape: Shape4,
    col: &mut [f32],
) {
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw) = (in_shape.h, in_shape.w);
    let (oh, ow) = (out_shape.h, out_shape.w);
    let in_plane = ih * iw;
    for (kk, col_row) in col.chunks_exact_mut(oh * ow).enumerate() {
        let kx = kk % kw;
        let ky = (kk / kw) % kh;
        let ic = kk / (kw * kh);
        let src = &input_g[ic * in_plane..][..in_plane];
        let x_off = (kx * dw) as isize - pw as isize;
        let (ox0, ox1) = valid_range(x_off, sw, iw, ow);
        let y_off = (ky * dh) as isize - ph as isize;
        let (oy0, oy1) = valid_range(y_off, sh, ih, oh);
        for (oy, dst) in col_row.chunks_exact_mut(ow).enumerate() {
            if oy < oy0 || oy >= oy1 || ox0 == ox1 {
                dst.fill(0.0);
                continue;
            }
            let iy = ((oy * sh) as isize + y_off) as usize;
            let src_row = &src[iy * iw..][..iw];
            let ix0 = ((ox0 * sw) as isize + x_off) as usize;
            dst[..ox0].fill(0.0);
            dst[ox1..].fill(0.0);
            let dst = &mut dst[ox0..ox1];
            if sw == 1 {
                dst.copy_from_slice(&src_row[ix0..][..dst.len()]);
            } else {
                for (d, &s) in dst.iter_mut().zip(src_row[ix0..].iter().step_by(sw)) {
                    *d = s;
                }
            }
        }
    }
}

/// `out[m][p] = clamp(bias[m] + sum_k w[m][k] * col[k][p])` for `m < out.len() / np`.
///
/// `w` is `[M][k]`, `col` is `[k][np]`, `out` is `[M][np]`.
fn gemm<W: FloatWeight>(
    w: &[W],
    k: usize,
    col: &[f32],
    np: usize,
    bias: Option<&[f32]>,
    clamp: ClampF32,
    out: &mut [f32],
) {
    let m = out.len() / np;
    let m_main = m / TILE_OC * TILE_OC;
    let (out_main, out_tail) = out.split_at_mut(m_main * np);
    let col = &col[..k * np];
    for (blk, out_blk) in out_main.chunks_exact_mut(TILE_OC * np).enumerate() {
        let m0 = blk * TILE_OC;
        let b: [f32; TILE_OC] = core::array::from_fn(|r| bias.map_or(0.0, |b| b[m0 + r]));
        gemm_rows::<W, TILE_OC>(&w[m0 * k..][..TILE_OC * k], k, col, np, b, clamp, out_blk);
    }
    for (i, out_row) in out_tail.chunks_exact_mut(np).enumerate() {
        let m0 = m_main + i;
        let b = [bias.map_or(0.0, |b| b[m0])];
        gemm_rows::<W, 1>(&w[m0 * k..][..k], k, col, np, b, clamp, out_row);
    }
}

/// [`gemm`] for exactly `R` output rows: full tiles of [`TILE_P`] columns, then the rest
/// in tiles of 4 and 1.
#[inline(always)]
fn gemm_rows<W: FloatWeight, const R: usize>(
    w: &[W],
    k: usize,
    col: &[f32],
    np: usize,
    bias: [f32; R],
    clamp: ClampF32,
    out: &mut [f32],
) {
    let w_rows: [&[W]; R] = core::array::from_fn(|r| &w[r * k..][..k]);
    let mut p0 = 0;
    while p0 + TILE_P <= np {
        tile::<W, R, TILE_P>(&w_rows, col, np, p0, bias, clamp, out);
        p0 += TILE_P;
    }
    while p0 + 4 <= np {
        tile::<W, R, 4>(&w_rows, col, np, p0, bias, clamp, out);
        p0 += 4;
    }
    while p0 < np {
        tile::<W, R, 1>(&w_rows, col, np, p0, bias, clamp, out);
        p0 += 1;
    }
}

/// One `R x T` register tile of the GEMM at columns `p0..p0 + T`.
#[inline(always)]
fn tile<W: FloatWeight, const R: usize, const T: usize>(
    w_rows: &[&[W]; R],
    col: &[f32],
    np: usize,
    p0: usize,
    bias: [f32; R],
    clamp: ClampF32,
    out: &mut [f32],
) {
    let mut acc: [[f32; T]; R] = core::array::from_fn(|r| [bias[r]; T]);
    for (kk, col_row) in col.chunks_exact(np).enumerate() {
        let c = &col_row[p0..p0 + T];
        for (acc_r, w_r) in acc.iter_mut().zip(w_rows) {
            let wv = w_r[kk].to_f32();
            for (a, &x) in acc_r.iter_mut().zip(c) {
                *a += wv * x;
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let dst = &mut out[r * np + p0..][..T];
        for (d, &a) in dst.iter_mut().zip(acc_r) {
            *d = clamp.apply(a);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use half::f16;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    #[derive(Clone, Copy, Debug)]
    struct Geometry {
        n: usize,
        cin: usize,
        h: usize,
        w: usize,
        cout: usize,
        groups: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        pad_begin: [usize; 2],
        pad_end: [usize; 2],
    }

    impl Geometry {
        fn shapes(&self) -> (Shape4, Window2d, Shape4) {
            let out = |i: usize, len: usize| {
                let span = self.dilation[i] * (self.kernel[i] - 1) + 1;
                (len + self.pad_begin[i] + self.pad_end[i] - span) / self.stride[i] + 1
            };
            let window = Window2d {
                kernel: self.kernel,
                stride: self.stride,
                dilation: self.dilation,
                pad_begin: self.pad_begin,
            };
            (
                Shape4::new(self.n, self.cin, self.h, self.w),
                window,
                Shape4::new(self.n, self.cout, out(0, self.h), out(1, self.w)),
            )
        }
    }

    /// Straightforward 7-loop convolution in f64; also returns, per output, the sum of
    /// the absolute values of its terms (used to scale the tolerance).
    fn naive(
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
        let mut out = vec![0.0; o.len()];
        let mut mag = vec![0.0; o.len()];
        for n in 0..o.n {
            for oc in 0..o.c {
                let g = oc / cout_g;
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let b = bias.map_or(0.0, |b| b[oc] as f64);
                        let (mut acc, mut abs) = (b, b.abs());
                        for ic in 0..cin_g {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * win.stride[0] + ky * win.dilation[0]) as isize
                                        - win.pad_begin[0] as isize;
                                    let ix = (ox * win.stride[1] + kx * win.dilation[1]) as isize
                                        - win.pad_begin[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let c = g * cin_g + ic;
                                    let x = input
                                        [((n * s.c + c) * s.h + iy as usize) * s.w + ix as usize]
                                        as f64;
                                    let wv =
                                        weights[((oc * cin_g + ic) * kh + ky) * kw + kx] as f64;
                                    acc += x * wv;
                                    abs += (x * wv).abs();
                                }
                            }
                        }
                        let idx = ((n * o.c + oc) * o.h + oy) * o.w + ox;
                        out[idx] = acc;
                        mag[idx] = abs;
                    }
                }
            }
        }
        (out, mag)
    }

    /// Runs the kernel (f32 and f16 weights) and compares with [`naive`].
    ///
    /// Tolerance: the kernel accumulates in f32 in a different order than the f64
    /// reference; the rounding error of a K-term f32 sum is at most about
    /// K * 6e-8 * sum|terms| and typically sqrt(K) times that, so 1e-5 * sum|terms| (plus
    /// 1e-6 absolute for sums near zero) holds with a wide margin for K <= 200 used here.
    fn check(geo: Geometry, rng: &mut XorShift, with_bias: bool, clamp: ClampF32) {
        let (s, win, o) = geo.shapes();
        let k = geo.cin / geo.groups * geo.kernel[0] * geo.kernel[1];
        let input: Vec<f32> = (0..s.len()).map(|_| rng.f32()).collect();
        let weights: Vec<f32> = (0..o.c * k).map(|_| rng.f32()).collect();
        let bias: Vec<f32> = (0..o.c).map(|_| rng.f32()).collect();
        let bias = with_bias.then_some(&bias[..]);
        let mut scratch = vec![
            f32::NAN;
            conv2d_f32_scratch_len(&ConvGeometry {
                in_shape: s,
                out_shape: o,
                window: win,
                groups: geo.groups
            })
        ];
        let mut output = vec![f32::NAN; o.len()];

        conv2d_f32(
            &ConvF32Args {
                input: &input,
                weights: &weights,
                bias,
                geometry: ConvGeometry {
                    in_shape: s,
                    out_shape: o,
                    window: win,
                    groups: geo.groups,
                },
                clamp,
            },
            &mut output,
            &mut scratch,
        );
        let (want, mag) = naive(&input, s, &weights, bias, &win, geo.groups, o);
        for i in 0..o.len() {
            let w = clamp.apply(want[i] as f32) as f64;
            assert!(
                (output[i] as f64 - w).abs() <= 1e-5 * mag[i] + 1e-6,
                "{geo:?} at {i}: {} vs {w}",
                output[i]
            );
        }

        // f16 weights: the reference uses the same f16 values widened to f32.
        let w16: Vec<f16> = weights.iter().map(|&w| f16::from_f32(w)).collect();
        let w16_as_f32: Vec<f32> = w16.iter().map(|w| w.to_f32()).collect();
        conv2d_f32(
            &ConvF32Args {
                input: &input,
                weights: &w16,
                bias,
                geometry: ConvGeometry {
                    in_shape: s,
                    out_shape: o,
                    window: win,
                    groups: geo.groups,
                },
                clamp,
            },
            &mut output,
            &mut scratch,
        );
        let (want, mag) = naive(&input, s, &w16_as_f32, bias, &win, geo.groups, o);
        for i in 0..o.len() {
            let w = clamp.apply(want[i] as f32) as f64;
            assert!(
                (output[i] as f64 - w).abs() <= 1e-5 * mag[i] + 1e-6,
                "f16 {geo:?} at {i}"
            );
        }
    }

    fn geo(
        (n, cin, h, w, cout, groups): (usize, usize, usize, usize, usize, usize),
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        pad_begin: [usize; 2],
        pad_end: [usize; 2],
    ) -> Geometry {
        Geometry {
            n,
            cin,
            h,
            w,
            cout,
            groups,
            kernel,
            stride,
            dilation,
            pad_begin,
            pad_end,
        }
    }

    #[test]
    fn hand_computed_3x3_same_padding() {
        // 1x1x3x3 input 1..9, 3x3 kernel of ones, pad 1: each output sums its 3x3 neighbourhood.
        let input: [f32; 9] = core::array::from_fn(|i| (i + 1) as f32);
        let weights = [1.0f32; 9];
        let win = Window2d {
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        let s = Shape4::new(1, 1, 3, 3);
        let mut out = [0.0f32; 9];
        let mut scratch = vec![
            0.0;
            conv2d_f32_scratch_len(&ConvGeometry {
                in_shape: s,
                out_shape: s,
                window: win,
                groups: 1
            })
        ];
        conv2d_f32(
            &ConvF32Args {
                input: &input,
                weights: &weights,
                bias: Some(&[0.5]),
                geometry: ConvGeometry {
                    in_shape: s,
                    out_shape: s,
                    window: win,
                    groups: 1,
                },
                clamp: ClampF32::NONE,
            },
            &mut out,
            &mut scratch,
        );
        let want = [12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0].map(|v| v + 0.5);
        assert_eq!(out, want);
    }

    #[test]
    fn hand_computed_two_channels_stride_2() {
        // 2 input channels 4x4, one 2x2 output channel of stride 2; channel 1 weighs -1.
        let input: [f32; 32] = core::array::from_fn(|i| if i < 16 { i as f32 } else { 1.0 });
        let weights = [1.0f32, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];
        let win = Window2d {
            kernel: [2, 2],
            stride: [2, 2],
            dilation: [1, 1],
            pad_begin: [0, 0],
        };
        let s = Shape4::new(1, 2, 4, 4);
        let o = Shape4::new(1, 1, 2, 2);
        let mut out = [0.0f32; 4];
        let mut scratch = vec![
            0.0;
            conv2d_f32_scratch_len(&ConvGeometry {
                in_shape: s,
                out_shape: o,
                window: win,
                groups: 1
            })
        ];
        assert_eq!(scratch.len(), 8 * 4);
        let relu6 = ClampF32 { min: 0.0, max: 6.0 };
        conv2d_f32(
            &ConvF32Args {
                input: &input,
                weights: &weights,
                bias: None,
                geometry: ConvGeometry {
                    in_shape: s,
                    out_shape: o,
                    window: win,
                    groups: 1,
                },
                clamp: relu6,
            },
            &mut out,
            &mut scratch,
        );
        // Window sums 10, 18, 42, 50 minus 4, clamped to 6.
        assert_eq!(out, [6.0, 6.0, 6.0, 6.0]);
        conv2d_f32(
            &ConvF32Args {
                input: &input,
                weights: &weights,
                bias: None,
                geometry: ConvGeometry {
                    in_shape: s,
                    out_shape: o,
                    window: win,
                    groups: 1,
                },
                clamp: ClampF32::NONE,
            },
            &mut out,
            &mut scratch,
        );
        assert_eq!(out, [6.0, 14.0, 38.0, 46.0]);
    }

    #[test]
    fn scratch_len_rules() {
        let s = Shape4::new(1, 8, 5, 5);
        let pw = Window2d {
            kernel: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [0, 0],
        };
        assert_eq!(
            conv2d_f32_scratch_len(&ConvGeometry {
                in_shape: s,
                out_shape: Shape4::new(1, 4, 5, 5),
                window: pw,
                groups: 1
            }),
            0
        );
        let dw = Window2d {
            kernel: [3, 3],
            stride: [2, 2],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        assert_eq!(
            conv2d_f32_scratch_len(&ConvGeometry {
                in_shape: s,
                out_shape: Shape4::new(1, 8, 3, 3),
                window: dw,
                groups: 8
            }),
            0
        );
        assert_eq!(
            conv2d_f32_scratch_len(&ConvGeometry {
                in_shape: s,
                out_shape: Shape4::new(1, 8, 3, 3),
                window: dw,
                groups: 2
            }),
            4 * 9 * 9
        );
    }

    #[test]
    fn listed_geometries_match_naive() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let relu = ClampF32 {
            min: 0.0,
            max: f32::INFINITY,
        };
        let cases = [
            // plain 3x3, pad 1
            geo((1, 3, 6, 7, 5, 1), [3, 3], [1, 1], [1, 1], [1, 1], [1, 1]),
            // pointwise (no scratch), odd channel counts to hit the GEMM tails
            geo((2, 6, 5, 3, 7, 1), [1, 1], [1, 1], [1, 1], [0, 0], [0, 0]),
            // 1x1 with end padding: not the pointwise path
            geo((1, 4, 3, 3, 4, 1), [1, 1], [1, 1], [1, 1], [0, 0], [1, 2]),
            // 1x1 stride 2
            geo((1, 4, 7, 6, 9, 1), [1, 1], [2, 2], [1, 1], [0, 0], [0, 0]),
            // depthwise 3x3 stride 2 asymmetric padding
            geo((2, 8, 9, 8, 8, 8), [3, 3], [2, 2], [1, 1], [0, 1], [1, 0]),
            // depthwise with channel multiplier 2, dilation 2
            geo((1, 3, 8, 9, 6, 3), [3, 3], [1, 1], [2, 2], [2, 2], [2, 2]),
            // depthwise 5x5 stride 1
            geo((1, 4, 10, 10, 4, 4), [5, 5], [1, 1], [1, 1], [2, 2], [2, 2]),
            // groups = 2, dilation 2, stride 2
            geo((1, 4, 11, 10, 6, 2), [3, 3], [2, 2], [2, 2], [1, 2], [2, 1]),
            // non-square kernel, stride (2, 1), dilation (1, 3)
            geo((2, 3, 9, 12, 5, 1), [2, 4], [2, 1], [1, 3], [1, 0], [0, 3]),
            // single input channel, groups 1 (direct path with many outputs)
            geo((1, 1, 6, 6, 5, 1), [3, 3], [1, 1], [1, 1], [1, 1], [1, 1]),
            // kernel larger than the input, heavy padding
            geo((1, 2, 2, 3, 3, 1), [4, 4], [1, 1], [1, 1], [2, 3], [2, 3]),
        ];
        for (i, &g) in cases.iter().enumerate() {
            check(
                g,
                &mut rng,
                i % 3 != 2,
                if i % 2 == 0 { ClampF32::NONE } else { relu },
            );
        }
    }

    #[test]
    fn random_geometries_match_naive() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for iter in 0..60 {
            let groups = [1, 1, 2, 3][rng.below(4)];
            let depthwise = iter % 4 == 0;
            let cin_g = if depthwise { 1 } else { 1 + rng.below(4) };
            let cout_g = 1 + rng.below(6);
            let kernel = [1 + rng.below(4), 1 + rng.below(4)];
            let stride = [1 + rng.below(3), 1 + rng.below(3)];
            let dilation = [1 + rng.below(2), 1 + rng.below(2)];
            let pad_begin = [rng.below(kernel[0]), rng.below(kernel[1])];
            let pad_end = [rng.below(kernel[0]), rng.below(kernel[1])];
            let mut h = 1 + rng.below(9);
            let mut w = 1 + rng.below(9);
            // Make sure at least one output exists.
            h = h.max(dilation[0] * (kernel[0] - 1) + 1);
            w = w.max(dilation[1] * (kernel[1] - 1) + 1);
            let g = geo(
                (
                    1 + rng.below(2),
                    cin_g * groups,
                    h,
                    w,
                    cout_g * groups,
                    groups,
                ),
                kernel,
                stride,
                dilation,
                pad_begin,
                pad_end,
            );
            check(g, &mut rng, iter % 5 != 0, ClampF32::NONE);
        }
    }

    #[test]
    fn valid_range_counts_positions() {
        for offset in -7isize..7 {
            for stride in 1..4 {
                for limit in 0..6 {
                    for count in 0..6 {
                        let (a, b) = valid_range(offset, stride, limit, count);
                        let want: Vec<usize> = (0..count)
                            .filter(|&i| {
                                let p = i as isize * stride as isize + offset;
                                p >= 0 && p < limit as isize
                            })
                            .collect();
                        let got: Vec<usize> = (a..b).collect();
                        assert_eq!(got, want, "{offset} {stride} {limit} {count}");
                    }
                }
            }
        }
    }
}
