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

use super::{ConvF32Args, ConvGeometry, FloatWeight, valid_range};

pub(crate) mod gemm;
#[cfg(test)]
mod tests;

use gemm::{GemmF32, gemm, im2col};

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
    conv(args, output, scratch, true);
}

/// [`conv2d_f32`] with the portable GEMM only, whatever the CPU (tests and
/// benchmarks compare the two).
pub fn conv2d_f32_portable<W: FloatWeight>(
    args: &ConvF32Args<W>,
    output: &mut [f32],
    scratch: &mut [f32],
) {
    conv(args, output, scratch, false);
}

/// [`conv2d_f32`]; `fast`: the GEMM may use the CPU's micro-kernel.
fn conv<W: FloatWeight>(
    args: &ConvF32Args<W>,
    output: &mut [f32],
    scratch: &mut [f32],
    fast: bool,
) {
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
            let g = GemmF32 {
                w: weights_g,
                k,
                col,
                np: out_plane,
                bias: bias_g,
                clamp,
            };
            gemm(&g, output_g, fast);
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

super::cpu::multiversion! {
    /// Direct convolution for one input channel per group: per output row, one
    /// axpy per tap (eight lanes per step in the AVX2 copy).
    fn conv_direct<W: FloatWeight>(args: &ConvF32Args<W>, output: &mut [f32]) => conv_direct_body;
}

/// The body of [`conv_direct`], compiled once per instruction set.
#[inline(always)]
fn conv_direct_body<W: FloatWeight>(args: &ConvF32Args<W>, output: &mut [f32]) {
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
