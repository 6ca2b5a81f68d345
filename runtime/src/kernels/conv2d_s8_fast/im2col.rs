//! The im2col paths of [`super::conv2d_s8_fast`] (two or more input channels
//! per group): receptive fields gathered tile by tile into scratch, then
//! `i16` dot products or the 8-bit [`gemm_s8`] micro-kernels.

use super::super::conv2d_s8::bias_of;
use super::super::dot::dot_i16_rows;
use super::super::gemm_s8::{GemmDims, GemmS8, gemm_s8};
use super::super::{ConvGeometry, ConvS8Args};
use super::{MAX_PIXEL_TILE, conv2d_s8_fast_scratch_len, padded_taps, pixel_tile};

/// Im2col + dot-product path for two or more input channels per group.
#[inline(always)]
pub(super) fn conv_im2col(args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8]) {
    let ConvS8Args {
        input,
        weights,
        bias,
        ref geometry,
        ref quant,
    } = *args;
    let out_shape = geometry.out_shape;
    let walk = TileWalk::new(geometry, weights, scratch);
    let (cout_g, taps, kp, pixels) = (walk.cout_g, walk.taps, walk.kp, walk.pixels);
    let (_, scratch16, _) = bytemuck::pod_align_to_mut::<i8, i16>(scratch);
    let (w_row, cols) = scratch16.split_at_mut(kp);
    let mut sums = [0i32; MAX_PIXEL_TILE];
    walk.for_each_tile(
        input,
        quant.input_zero_point,
        cols,
        |cols, n, g, p0, count| {
            for oc in g * cout_g..(g + 1) * cout_g {
                let src = &weights[oc * taps..][..taps];
                for (d, &s) in w_row.iter_mut().zip(src) {
                    *d = s as i16;
                }
                w_row[taps..].fill(0);
                let requant = quant.requant_of(oc);
                let bias = bias_of(bias, oc);
                let sums = &mut sums[..count];
                dot_i16_rows(w_row, cols, kp, sums);
                for sum in sums.iter_mut() {
                    *sum = sum.wrapping_add(bias);
                }
                let out = &mut output[(n * out_shape.c + oc) * pixels + p0..][..count];
                quant.finish_row(requant, sums, out);
            }
        },
    );
}

/// The tiles of output pixels of the im2col paths: for each batch item, group
/// and tile of up to [`pixel_tile`] pixels, the receptive fields as [`ColValue`] rows.
struct TileWalk {
    geometry: ConvGeometry,
    cin_g: usize,
    /// Output channels per group.
    cout_g: usize,
    /// `K = cin_g * kh * kw`, values per receptive field.
    taps: usize,
    /// `K` rounded up to a multiple of [`DOT_LANES`].
    kp: usize,
    pixels: usize,
    tile: usize,
}

impl TileWalk {
    /// The walk for this geometry; debug-checks the weight and scratch sizes.
    #[inline(always)]
    fn new(geometry: &ConvGeometry, weights: &[i8], scratch: &[i8]) -> TileWalk {
        let cin_g = geometry.in_per_group();
        let window = &geometry.window;
        let taps = cin_g * window.kernel[0] * window.kernel[1];
        let kp = padded_taps(cin_g, window);
        let pixels = geometry.out_shape.h * geometry.out_shape.w;
        debug_assert!(weights.len() >= geometry.out_shape.c * taps);
        debug_assert!(
            scratch.len() >= conv2d_s8_fast_scratch_len(geometry),
            "conv2d_s8_fast: scratch too small"
        );
        TileWalk {
            geometry: *geometry,
            cin_g,
            cout_g: geometry.out_per_group(),
            taps,
            kp,
            pixels,
            tile: pixels.min(pixel_tile(kp)),
        }
    }

    /// Fills `cols` (at least `tile * kp` values) with each tile in turn and
    /// calls `per_tile(cols, n, g, p0, count)` for pixels `p0..p0 + count`.
    #[inline(always)]
    fn for_each_tile<T: ColValue>(
        &self,
        input: &[i8],
        zp: i32,
        cols: &mut [T],
        mut per_tile: impl FnMut(&[T], usize, usize, usize, usize),
    ) {
        for n in 0..self.geometry.out_shape.n {
            for g in 0..self.geometry.groups {
                let mut p0 = 0;
                while p0 < self.pixels {
                    let count = (self.pixels - p0).min(self.tile);
                    let cols = &mut cols[..count * self.kp];
                    self.im2col_tile(input, zp, n, g * self.cin_g, p0, cols);
                    per_tile(cols, n, g, p0, count);
                    p0 += count;
                }
            }
        }
    }
}

/// Output channels per [`gemm_s8`] call of the 8-bit im2col path.
const GEMM_CHANNELS: usize = 4;

/// Im2col path with raw 8-bit operands (the AArch64 default).
///
/// The tile holds the inputs as they are (padding taps hold the zero point),
/// each block of up to [`GEMM_CHANNELS`] weight rows is copied into scratch
/// (zero-padded to `kp`) while summing it, and [`gemm_s8`] gives
/// `sum w * x`; then `sum w * (x - zp) = sum w * x - zp * sum w` modulo 2^32,
/// exactly the reference's wrapping sum. Scratch: `tile * kp` bytes of inputs
/// and at least three weight rows fit in [`conv2d_s8_fast_scratch_len`].
#[inline(always)]
pub(super) fn conv_im2col_s8(
    kind: GemmS8,
    args: &ConvS8Args,
    output: &mut [i8],
    scratch: &mut [i8],
) {
    let ConvS8Args {
        input,
        weights,
        bias,
        ref geometry,
        ref quant,
    } = *args;
    let out_shape = geometry.out_shape;
    let walk = TileWalk::new(geometry, weights, scratch);
    let (cout_g, taps, kp, pixels, tile) =
        (walk.cout_g, walk.taps, walk.kp, walk.pixels, walk.tile);
    let (cols, rest) = scratch.split_at_mut(tile * kp);
    let block = (rest.len() / kp).clamp(1, GEMM_CHANNELS);
    let w_rows = &mut rest[..block * kp];
    let zp = quant.input_zero_point;
    let mut sums = [0i32; GEMM_CHANNELS * MAX_PIXEL_TILE];
    let mut row_sums = [0i32; GEMM_CHANNELS];
    walk.for_each_tile(input, zp, cols, |cols, n, g, p0, count| {
        let end = (g + 1) * cout_g;
        let mut oc0 = g * cout_g;
        while oc0 < end {
            let mb = (end - oc0).min(block);
            for (r, row) in w_rows.chunks_exact_mut(kp).take(mb).enumerate() {
                let src = &weights[(oc0 + r) * taps..][..taps];
                row[..taps].copy_from_slice(src);
                row[taps..].fill(0);
                row_sums[r] = src.iter().fold(0i32, |s, &w| s.wrapping_add(w as i32));
            }
            let dims = GemmDims {
                m: mb,
                n: count,
                k: kp,
                lda: kp,
                ldb: kp,
                ldo: count,
            };
            gemm_s8(kind, w_rows, cols, dims, &mut sums);
            for r in 0..mb {
                let oc = oc0 + r;
                let offset = bias_of(bias, oc).wrapping_sub(zp.wrapping_mul(row_sums[r]));
                let row = &mut sums[r * count..][..count];
                for sum in row.iter_mut() {
                    *sum = sum.wrapping_add(offset);
                }
                let out = &mut output[(n * out_shape.c + oc) * pixels + p0..][..count];
                quant.finish_row(quant.requant_of(oc), row, out);
            }
            oc0 += mb;
        }
    });
}

/// An im2col element: `i16` holds `x - zero_point` (padding 0), `i8` holds the
/// raw input (padding: the zero point). Both pad the row tail past `K` with 0.
trait ColValue: Copy + Default {
    /// The column value of input `x`.
    fn from_input(x: i8, zp: i32) -> Self;
    /// The column value of a padding tap.
    fn padding(zp: i32) -> Self;
}

impl ColValue for i16 {
    #[inline(always)]
    fn from_input(x: i8, zp: i32) -> i16 {
        (x as i32 - zp) as i16
    }
    #[inline(always)]
    fn padding(_: i32) -> i16 {
        0
    }
}

impl ColValue for i8 {
    #[inline(always)]
    fn from_input(x: i8, _: i32) -> i8 {
        x
    }
    #[inline(always)]
    fn padding(zp: i32) -> i8 {
        zp as i8
    }
}

impl TileWalk {
    /// Fills `cols` (`count` rows of `kp` values, `count = cols.len() / kp`) with the
    /// receptive fields of output pixels `p0..` of batch `n`, input channels
    /// `ic0..ic0 + cin_g`, as [`ColValue`]s (the row tail past `K` is 0); `zp` is
    /// the input zero point.
    #[inline(always)]
    fn im2col_tile<T: ColValue>(
        &self,
        input: &[i8],
        zp: i32,
        n: usize,
        ic0: usize,
        p0: usize,
        cols: &mut [T],
    ) {
        let ConvGeometry {
            in_shape,
            out_shape,
            ref window,
            ..
        } = self.geometry;
        let (cin_g, kp) = (self.cin_g, self.kp);
        let [kh, kw] = window.kernel;
        let [sh, sw] = window.stride;
        let [dh, dw] = window.dilation;
        let [ph, pw] = window.pad_begin;
        let (ih, iw) = (in_shape.h, in_shape.w);
        let in_plane = ih * iw;
        let planes = &input[(n * in_shape.c + ic0) * in_plane..][..cin_g * in_plane];
        let taps = cin_g * kh * kw;
        let count = cols.len() / kp;
        let ow = out_shape.w;
        if in_plane == 0 {
            // An empty input plane (padding makes the output): every tap is padding.
            for row in cols.chunks_exact_mut(kp) {
                row[..taps].fill(T::padding(zp));
                row[taps..].fill(T::default());
            }
            return;
        }

        let pointwise = kh == 1
            && kw == 1
            && sh == 1
            && sw == 1
            && ph == 0
            && pw == 0
            && ow == iw
            && out_shape.h <= ih;
        if pointwise {
            // Pixel p reads x[ic][p]: a transpose of `count` columns.
            for (icg, plane) in planes.chunks_exact(in_plane).enumerate() {
                for (t, &x) in plane[p0..p0 + count].iter().enumerate() {
                    cols[t * kp + icg] = T::from_input(x, zp);
                }
            }
            for row in cols.chunks_exact_mut(kp) {
                row[taps..].fill(T::default());
            }
            return;
        }

        let (mut oy, mut ox) = (p0 / ow, p0 % ow);
        for row in cols.chunks_exact_mut(kp) {
            let mut k = 0;
            for plane in planes.chunks_exact(in_plane) {
                for ky in 0..kh {
                    let dst = &mut row[k..k + kw];
                    k += kw;
                    let iy = (oy * sh + ky * dh).wrapping_sub(ph);
                    if iy >= ih {
                        dst.fill(T::padding(zp));
                        continue;
                    }
                    let src = &plane[iy * iw..][..iw];
                    let ix0 = (ox * sw).wrapping_sub(pw);
                    if dw == 1 && ix0 < iw && iw - ix0 >= kw {
                        for (d, &s) in dst.iter_mut().zip(&src[ix0..ix0 + kw]) {
                            *d = T::from_input(s, zp);
                        }
                    } else {
                        for (kx, d) in dst.iter_mut().enumerate() {
                            let ix = (ox * sw + kx * dw).wrapping_sub(pw);
                            *d = if ix < iw {
                                T::from_input(src[ix], zp)
                            } else {
                                T::padding(zp)
                            };
                        }
                    }
                }
            }
            row[taps..].fill(T::default());
            ox += 1;
            if ox == ow {
                ox = 0;
                oy += 1;
            }
        }
    }
}
