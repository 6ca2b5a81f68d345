//! Int8 2-D convolution, fast portable variant; bit-exact with [`super::conv2d_s8::conv2d_s8`].
//!
//! Two strategies, chosen from the geometry alone:
//!
//! * **Direct** (`c_in / groups == 1` with `groups > 1`: depthwise, with or
//!   without a channel multiplier): per output row, each kernel tap adds `w * (x - zp)` to a
//!   stack row of `i32` accumulators, reading a stack copy of the input row
//!   padded with the zero point, so borders need no special case and the inner
//!   loops vectorize (16-bit multiplies) when the stride is 1. No scratch.
//! * **Im2col + dot products** (everything else): for each tile of up to
//!   [`pixel_tile`] output pixels, the receptive fields are copied into scratch
//!   as `i16` values `x - input_zero_point` (padding taps become 0, so no
//!   zero-point correction is needed), one row of `K = c_in/groups * kh * kw`
//!   per pixel, zero-padded to a multiple of 16. Each output channel's weight
//!   row is widened to `i16` once per tile, then [`super::dot`] computes one
//!   output per pixel of the tile.
//!
//! The body is compiled twice on x86-64 (see [`super::cpu`]): AVX2 gives the
//! requantization signed 64-bit multiplies that SSE2 lacks.
//!
//! All sums use wrapping `i32` arithmetic like the reference, so the two agree
//! bit for bit for every input.

use super::conv2d_s8::{ConvS8Quant, bias_of};
use super::dot::{DOT_LANES, dot_i16_rows};
use super::gemm_s8::{GemmDims, GemmS8, gemm_s8};
use super::{Shape4, Window2d};

/// Fewest output pixels gathered per im2col tile.
pub const MIN_PIXEL_TILE: usize = 16;
/// Most output pixels gathered per im2col tile.
pub const MAX_PIXEL_TILE: usize = 128;
/// Target `i16` values per im2col tile (4 KiB, well inside L1).
const TILE_VALUES: usize = 2048;

/// Output pixels per im2col tile for padded row length `kp`: about
/// [`TILE_VALUES`] values, so that short rows (a first layer's `K = 9`) still
/// amortize the per-tile, per-channel work over many pixels.
pub fn pixel_tile(kp: usize) -> usize {
    (TILE_VALUES / kp.max(1)).clamp(MIN_PIXEL_TILE, MAX_PIXEL_TILE)
}
/// Output columns per accumulator row of the direct (depthwise) path.
const DIRECT_CHUNK: usize = 64;
/// The direct path processes whole groups of this many columns.
const DIRECT_LANES: usize = 16;
/// Bytes of the direct path's zero-point-padded input row buffer.
const DIRECT_ROW: usize = 256;

/// Scratch bytes [`conv2d_s8_fast`] needs for this geometry (0 for the direct path).
///
/// `2 * (tile + 1) * round_up(K, 16) + 1` where `K = c_in / groups * kh * kw` and
/// `tile = min(oh * ow, pixel_tile(round_up(K, 16)))`: `i16` im2col rows for
/// one tile of pixels plus one widened weight row, and one byte of slack so
/// that the `i16` view can start on an even address whatever the scratch
/// alignment. 0 for the direct path (`c_in / groups == 1` with `groups > 1`) or
/// an empty output.
pub fn conv2d_s8_fast_scratch_len(
    in_shape: Shape4,
    window: &Window2d,
    groups: usize,
    out_shape: Shape4,
) -> usize {
    if groups == 0 {
        return 0;
    }
    let cin_g = in_shape.c / groups;
    let pixels = out_shape.h * out_shape.w;
    if uses_direct_path(cin_g, groups, window) || pixels == 0 {
        return 0;
    }
    let kp = padded_taps(cin_g, window);
    2 * (pixels.min(pixel_tile(kp)) + 1) * kp + 1
}

/// True when the direct path runs: one input channel per group in a grouped
/// convolution (depthwise), or a degenerate empty kernel. A dense convolution
/// of a single channel (a first layer) shares each receptive field across all
/// output channels, which im2col exploits: measured 2.5x faster there.
fn uses_direct_path(cin_g: usize, groups: usize, window: &Window2d) -> bool {
    (cin_g <= 1 && groups > 1) || cin_g == 0 || window.kernel[0] * window.kernel[1] == 0
}

/// `K` rounded up to a multiple of [`DOT_LANES`].
fn padded_taps(cin_g: usize, window: &Window2d) -> usize {
    (cin_g * window.kernel[0] * window.kernel[1]).next_multiple_of(DOT_LANES)
}

super::cpu::multiversion! {
    /// Int8 2-D convolution, same contract as [`super::conv2d_s8::conv2d_s8`] and bit-exact with it.
    ///
    /// `scratch` must hold at least [`conv2d_s8_fast_scratch_len`] bytes (any
    /// alignment); it may be empty when that length is 0. Its contents on return are
    /// unspecified.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_s8_fast(
        input: &[i8],
        in_shape: Shape4,
        weights: &[i8],
        bias: &[i32],
        window: &Window2d,
        groups: usize,
        quant: &ConvS8Quant,
        output: &mut [i8],
        out_shape: Shape4,
        scratch: &mut [i8],
    ) => conv2d_s8_fast_body;
}

/// The body of [`conv2d_s8_fast`], compiled once per instruction set.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn conv2d_s8_fast_body(
    input: &[i8],
    in_shape: Shape4,
    weights: &[i8],
    bias: &[i32],
    window: &Window2d,
    groups: usize,
    quant: &ConvS8Quant,
    output: &mut [i8],
    out_shape: Shape4,
    scratch: &mut [i8],
) {
    debug_assert!(
        groups >= 1 && in_shape.c.is_multiple_of(groups) && out_shape.c.is_multiple_of(groups)
    );
    debug_assert_eq!(in_shape.n, out_shape.n);
    debug_assert!(input.len() >= in_shape.len() && output.len() >= out_shape.len());
    debug_assert!(bias.is_empty() || bias.len() >= out_shape.c);
    if out_shape.is_empty() {
        return;
    }
    if uses_direct_path(in_shape.c / groups, groups, window) {
        conv_direct(
            input, in_shape, weights, bias, window, groups, quant, output, out_shape,
        );
    } else if cfg!(target_arch = "aarch64") {
        // 8-bit operands: SDOT/SMMLA/SMULL multiply 16 pairs per instruction.
        conv_im2col_s8(
            GemmS8::best(),
            input,
            in_shape,
            weights,
            bias,
            window,
            groups,
            quant,
            output,
            out_shape,
            scratch,
        );
    } else {
        conv_im2col(
            input, in_shape, weights, bias, window, groups, quant, output, out_shape, scratch,
        );
    }
}

/// [`conv2d_s8_fast`] with the int8 dot-product variant `kind` for its im2col
/// path (the default on AArch64 is [`GemmS8::best`]); bit-exact with the reference
/// for every variant. Same scratch as [`conv2d_s8_fast`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8_gemm(
    kind: GemmS8,
    input: &[i8],
    in_shape: Shape4,
    weights: &[i8],
    bias: &[i32],
    window: &Window2d,
    groups: usize,
    quant: &ConvS8Quant,
    output: &mut [i8],
    out_shape: Shape4,
    scratch: &mut [i8],
) {
    if out_shape.is_empty() {
        return;
    }
    if uses_direct_path(in_shape.c / groups, groups, window) {
        conv_direct(
            input, in_shape, weights, bias, window, groups, quant, output, out_shape,
        );
    } else {
        conv_im2col_s8(
            kind, input, in_shape, weights, bias, window, groups, quant, output, out_shape, scratch,
        );
    }
}

/// Output columns per accumulator row of the direct path that fit its padded
/// input row buffer (a multiple of [`DIRECT_LANES`]), or 0 when the kernel
/// span is too wide for the buffer.
fn direct_chunk(window: &Window2d) -> usize {
    let span = (window.kernel[1].max(1) - 1) * window.dilation[1] + 1;
    if span > DIRECT_ROW {
        return 0;
    }
    let fit = (DIRECT_ROW - span) / window.stride[1] + 1;
    DIRECT_CHUNK.min(fit / DIRECT_LANES * DIRECT_LANES)
}

/// Direct path for one input channel per group (depthwise convolution).
///
/// For each output row and chunk of up to [`DIRECT_CHUNK`] columns, every
/// contributing input row is copied into a stack buffer padded with the zero
/// point (so padding taps add `w * 0`), then each tap adds
/// `w * (x - zp)` (exact in `i16`: an int8 weight times `|x - zp| <= 255`) to the
/// `i32` accumulators over a whole number of 16-lane groups. Kernels too wide
/// for the buffer fall back to the reference.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn conv_direct(
    input: &[i8],
    in_shape: Shape4,
    weights: &[i8],
    bias: &[i32],
    window: &Window2d,
    groups: usize,
    quant: &ConvS8Quant,
    output: &mut [i8],
    out_shape: Shape4,
) {
    let chunk = direct_chunk(window);
    let cin_g = in_shape.c / groups;
    let [kh, kw] = window.kernel;
    if chunk == 0 || cin_g != 1 || kh * kw == 0 {
        // Exotic geometry (kernel span over 200 columns) or nothing to sum.
        super::conv2d_s8::conv2d_s8(
            input, in_shape, weights, bias, window, groups, quant, output, out_shape,
        );
        return;
    }
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (iw, ow) = (in_shape.w, out_shape.w);
    let cout_g = out_shape.c / groups;
    let taps = kh * kw;
    let span = (kw - 1) * dw + 1;
    let in_plane = in_shape.h * iw;
    let out_plane = out_shape.h * ow;
    // An int8 zero point keeps every w * (x - zp) within i16 (TFLite spec).
    debug_assert!((-128..=127).contains(&quant.input_zero_point));
    let zp16 = quant.input_zero_point as i16;
    let zp8 = quant.input_zero_point.clamp(-128, 127) as i8;
    let mut acc_row = [0i32; DIRECT_CHUNK];
    let mut products_row = [0i16; DIRECT_CHUNK];
    let mut padded_row = [0i8; DIRECT_ROW];

    for n in 0..out_shape.n {
        for oc in 0..out_shape.c {
            let channel = n * in_shape.c + oc / cout_g;
            let plane = &input[channel * in_plane..][..in_plane];
            let filter = &weights[oc * taps..][..taps];
            let requant = quant.requant_of(oc);
            let bias = bias_of(bias, oc);
            let out = &mut output[(n * out_shape.c + oc) * out_plane..][..out_plane];
            for oy in 0..out_shape.h {
                let mut ox0 = 0;
                while ox0 < ow {
                    let width = (ow - ox0).min(chunk);
                    let lanes = width.next_multiple_of(DIRECT_LANES);
                    let acc = &mut acc_row[..lanes];
                    acc.fill(bias);
                    // Input columns ix0 .. ix0 + len feed this chunk (ix0 may be negative).
                    let len = (lanes - 1) * sw + span;
                    let ix0 = (ox0 * sw) as isize - pw as isize;
                    let inside_lo = (-ix0).clamp(0, len as isize) as usize;
                    let inside_hi =
                        (iw as isize - ix0).clamp(inside_lo as isize, len as isize) as usize;
                    for ky in 0..kh {
                        let iy = (oy * sh + ky * dh).wrapping_sub(ph);
                        if iy >= in_shape.h {
                            continue;
                        }
                        let row = &plane[iy * iw..][..iw];
                        let padded = &mut padded_row[..len];
                        padded[..inside_lo].fill(zp8);
                        if inside_lo < inside_hi {
                            // (A chunk may lie wholly in the end padding.)
                            let start = (ix0 + inside_lo as isize) as usize;
                            padded[inside_lo..inside_hi]
                                .copy_from_slice(&row[start..start + inside_hi - inside_lo]);
                        }
                        padded[inside_hi..].fill(zp8);
                        for kx in 0..kw {
                            let w = filter[ky * kw + kx] as i16;
                            let products = &mut products_row[..lanes];
                            let src = &padded[kx * dw..];
                            // A pure 16-bit loop (8-lane multiplies), then a widening add.
                            if sw == 1 {
                                for (p, &x) in products.iter_mut().zip(&src[..lanes]) {
                                    *p = w.wrapping_mul((x as i16).wrapping_sub(zp16));
                                }
                            } else {
                                for (p, &x) in products.iter_mut().zip(src.iter().step_by(sw)) {
                                    *p = w.wrapping_mul((x as i16).wrapping_sub(zp16));
                                }
                            }
                            for (a, &p) in acc.iter_mut().zip(products.iter()) {
                                *a = a.wrapping_add(p as i32);
                            }
                        }
                    }
                    quant.finish_row(requant, &acc[..width], &mut out[oy * ow + ox0..][..width]);
                    ox0 += width;
                }
            }
        }
    }
}

/// Im2col + dot-product path for two or more input channels per group.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn conv_im2col(
    input: &[i8],
    in_shape: Shape4,
    weights: &[i8],
    bias: &[i32],
    window: &Window2d,
    groups: usize,
    quant: &ConvS8Quant,
    output: &mut [i8],
    out_shape: Shape4,
    scratch: &mut [i8],
) {
    let walk = TileWalk::new(in_shape, window, groups, out_shape, weights, scratch);
    let (cout_g, taps, kp, pixels) = (walk.cout_g, walk.taps, walk.kp, walk.pixels);
    let (_, scratch16, _) = bytemuck::pod_align_to_mut::<i8, i16>(scratch);
    let (w_row, cols) = scratch16.split_at_mut(kp);
    let mut sums = [0i32; MAX_PIXEL_TILE];
    walk.for_each_tile(input, quant, cols, |cols, n, g, p0, count| {
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
    });
}

/// The tiles of output pixels of the im2col paths: for each batch item, group
/// and tile of up to [`pixel_tile`] pixels, the receptive fields as [`ColValue`] rows.
struct TileWalk {
    in_shape: Shape4,
    window: Window2d,
    out_shape: Shape4,
    groups: usize,
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
    fn new(
        in_shape: Shape4,
        window: &Window2d,
        groups: usize,
        out_shape: Shape4,
        weights: &[i8],
        scratch: &[i8],
    ) -> TileWalk {
        let cin_g = in_shape.c / groups;
        let taps = cin_g * window.kernel[0] * window.kernel[1];
        let kp = padded_taps(cin_g, window);
        let pixels = out_shape.h * out_shape.w;
        debug_assert!(weights.len() >= out_shape.c * taps);
        debug_assert!(
            scratch.len() >= conv2d_s8_fast_scratch_len(in_shape, window, groups, out_shape),
            "conv2d_s8_fast: scratch too small"
        );
        TileWalk {
            in_shape,
            window: *window,
            out_shape,
            groups,
            cin_g,
            cout_g: out_shape.c / groups,
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
        quant: &ConvS8Quant,
        cols: &mut [T],
        mut per_tile: impl FnMut(&[T], usize, usize, usize, usize),
    ) {
        for n in 0..self.out_shape.n {
            for g in 0..self.groups {
                let mut p0 = 0;
                while p0 < self.pixels {
                    let count = (self.pixels - p0).min(self.tile);
                    let cols = &mut cols[..count * self.kp];
                    im2col_tile(
                        input,
                        self.in_shape,
                        &self.window,
                        quant,
                        n,
                        g * self.cin_g,
                        self.cin_g,
                        self.out_shape,
                        p0,
                        self.kp,
                        cols,
                    );
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
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn conv_im2col_s8(
    kind: GemmS8,
    input: &[i8],
    in_shape: Shape4,
    weights: &[i8],
    bias: &[i32],
    window: &Window2d,
    groups: usize,
    quant: &ConvS8Quant,
    output: &mut [i8],
    out_shape: Shape4,
    scratch: &mut [i8],
) {
    let walk = TileWalk::new(in_shape, window, groups, out_shape, weights, scratch);
    let (cout_g, taps, kp, pixels, tile) =
        (walk.cout_g, walk.taps, walk.kp, walk.pixels, walk.tile);
    let (cols, rest) = scratch.split_at_mut(tile * kp);
    let block = (rest.len() / kp).clamp(1, GEMM_CHANNELS);
    let w_rows = &mut rest[..block * kp];
    let zp = quant.input_zero_point;
    let mut sums = [0i32; GEMM_CHANNELS * MAX_PIXEL_TILE];
    let mut row_sums = [0i32; GEMM_CHANNELS];
    walk.for_each_tile(input, quant, cols, |cols, n, g, p0, count| {
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

/// Fills `cols` (`count` rows of `kp` values, `count = cols.len() / kp`) with the
/// receptive fields of output pixels `p0..` of batch `n`, input channels
/// `ic0..ic0 + cin_g`, as [`ColValue`]s (the row tail past `K` is 0).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn im2col_tile<T: ColValue>(
    input: &[i8],
    in_shape: Shape4,
    window: &Window2d,
    quant: &ConvS8Quant,
    n: usize,
    ic0: usize,
    cin_g: usize,
    out_shape: Shape4,
    p0: usize,
    kp: usize,
    cols: &mut [T],
) {
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw) = (in_shape.h, in_shape.w);
    let in_plane = ih * iw;
    let zp = quant.input_zero_point;
    let planes = &input[(n * in_shape.c + ic0) * in_plane..][..cin_g * in_plane];
    let taps = cin_g * kh * kw;
    let count = cols.len() / kp;
    let ow = out_shape.w;

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

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::conv2d_s8;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use crate::quant::Requant;
    use std::vec;
    use std::vec::Vec;

    struct Case {
        in_shape: Shape4,
        out_shape: Shape4,
        window: Window2d,
        groups: usize,
    }

    fn random_case(rng: &mut XorShift, kind: u32) -> Option<Case> {
        let (cin, cout, groups) = match kind % 4 {
            // depthwise, possibly with a channel multiplier
            0 => {
                let c = rng.urange(1, 6);
                (c, c * rng.urange(1, 3), c)
            }
            // grouped
            1 => {
                let g = rng.urange(2, 3);
                (g * rng.urange(2, 5), g * rng.urange(1, 5), g)
            }
            // dense, any sizes (K not a multiple of 8, odd channel counts)
            _ => (rng.urange(2, 19), rng.urange(1, 11), 1),
        };
        let pointwise = kind % 7 == 3;
        let window = if pointwise {
            Window2d {
                kernel: [1, 1],
                stride: [1, 1],
                dilation: [1, 1],
                pad_begin: [0, 0],
            }
        } else {
            Window2d {
                kernel: [rng.urange(1, 4), rng.urange(1, 4)],
                stride: [rng.urange(1, 3), rng.urange(1, 3)],
                dilation: [rng.urange(1, 2), rng.urange(1, 2)],
                pad_begin: [rng.urange(0, 2), rng.urange(0, 2)],
            }
        };
        let in_shape = Shape4::new(rng.urange(1, 2), cin, rng.urange(1, 12), rng.urange(1, 12));
        let pad_end = if pointwise {
            [0, 0]
        } else {
            [rng.urange(0, 2), rng.urange(0, 2)]
        };
        let mut out = [0usize; 2];
        for (i, len) in [in_shape.h, in_shape.w].into_iter().enumerate() {
            let eff = (window.kernel[i] - 1) * window.dilation[i] + 1;
            let padded = len + window.pad_begin[i] + pad_end[i];
            if padded < eff {
                return None;
            }
            out[i] = (padded - eff) / window.stride[i] + 1;
        }
        Some(Case {
            in_shape,
            out_shape: Shape4::new(in_shape.n, cout, out[0], out[1]),
            window,
            groups,
        })
    }

    /// The fast kernel must equal the reference bit for bit on every geometry,
    /// zero point and clamp; scratch is handed over misaligned and dirty on purpose.
    /// Runs [`conv2d_s8_fast`] (the copy this CPU dispatches to) and its
    /// portable body, asserts that they agree, and returns the output.
    #[allow(clippy::too_many_arguments)]
    fn run_both(
        input: &[i8],
        in_shape: Shape4,
        weights: &[i8],
        bias: &[i32],
        window: &Window2d,
        groups: usize,
        quant: &ConvS8Quant,
        out_shape: Shape4,
        scratch: &mut [i8],
    ) -> Vec<i8> {
        let mut dispatched = vec![0i8; out_shape.len()];
        conv2d_s8_fast(
            input,
            in_shape,
            weights,
            bias,
            window,
            groups,
            quant,
            &mut dispatched,
            out_shape,
            scratch,
        );
        let mut portable = vec![0i8; out_shape.len()];
        conv2d_s8_fast_body(
            input,
            in_shape,
            weights,
            bias,
            window,
            groups,
            quant,
            &mut portable,
            out_shape,
            scratch,
        );
        assert_eq!(
            dispatched, portable,
            "dispatched and portable copies differ"
        );
        for kind in GemmS8::ALL.into_iter().filter(|k| k.available()) {
            let mut got = vec![0i8; out_shape.len()];
            conv2d_s8_gemm(
                kind, input, in_shape, weights, bias, window, groups, quant, &mut got, out_shape,
                scratch,
            );
            assert_eq!(got, dispatched, "8-bit im2col with {} differs", kind.name());
        }
        dispatched
    }

    #[test]
    fn bit_exact_with_reference_on_random_geometries() {
        let mut rng = XorShift(0xC0FF_EE01);
        let mut checked = 0;
        for case in 0..600 {
            let Some(c) = random_case(&mut rng, case) else {
                continue;
            };
            let taps = c.in_shape.c / c.groups * c.window.kernel[0] * c.window.kernel[1];
            let input = rng.i8s(c.in_shape.len(), -128, 127);
            // Full int8 range including -128: exactness must not rely on the spec's [-127, 127].
            let weights = rng.i8s(c.out_shape.c * taps, -128, 127);
            let bias: Vec<i32> = if case % 9 == 0 {
                Vec::new()
            } else {
                (0..c.out_shape.c)
                    .map(|_| rng.range(-20000, 20000))
                    .collect()
            };
            let requant: Vec<Requant> = (0..if case % 5 == 0 { 1 } else { c.out_shape.c })
                .map(|_| Requant::from_real(rng.float(0.0005, 0.05)))
                .collect();
            let act_min = if case % 3 == 0 {
                rng.range(-128, 0)
            } else {
                -128
            };
            let quant = ConvS8Quant {
                input_zero_point: rng.range(-128, 127),
                output_zero_point: rng.range(-128, 127),
                requant: &requant,
                act_min,
                act_max: if case % 4 == 0 {
                    rng.range(act_min, 127)
                } else {
                    127
                },
            };
            let mut want = vec![0i8; c.out_shape.len()];
            conv2d_s8(
                &input,
                c.in_shape,
                &weights,
                &bias,
                &c.window,
                c.groups,
                &quant,
                &mut want,
                c.out_shape,
            );
            let len = conv2d_s8_fast_scratch_len(c.in_shape, &c.window, c.groups, c.out_shape);
            let mut scratch_store = vec![0x55i8; len + 1];
            let scratch = &mut scratch_store[1..]; // odd address when the Vec is aligned
            let got = run_both(
                &input,
                c.in_shape,
                &weights,
                &bias,
                &c.window,
                c.groups,
                &quant,
                c.out_shape,
                scratch,
            );
            assert_eq!(
                got, want,
                "case {case}: {:?} -> {:?} {:?} groups {}",
                c.in_shape, c.out_shape, c.window, c.groups
            );
            checked += 1;
        }
        assert!(checked > 400, "only {checked} geometries checked");
    }

    #[test]
    fn bit_exact_on_a_large_layer_with_many_tiles() {
        // 41 channels x 3x3: K = 369 (padded to 384), 143 pixels = 9 tiles.
        let mut rng = XorShift(7);
        let in_shape = Shape4::new(1, 41, 13, 11);
        let out_shape = Shape4::new(1, 19, 13, 11);
        let window = Window2d {
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        let input = rng.i8s(in_shape.len(), -128, 127);
        let weights = rng.i8s(19 * 41 * 9, -127, 127);
        let bias: Vec<i32> = (0..19).map(|_| rng.range(-100_000, 100_000)).collect();
        let requant: Vec<Requant> = (0..19)
            .map(|_| Requant::from_real(rng.float(0.0001, 0.002)))
            .collect();
        let quant = ConvS8Quant {
            input_zero_point: -3,
            output_zero_point: 5,
            requant: &requant,
            act_min: -128,
            act_max: 127,
        };
        let mut want = vec![0i8; out_shape.len()];
        conv2d_s8(
            &input, in_shape, &weights, &bias, &window, 1, &quant, &mut want, out_shape,
        );
        let mut scratch = vec![0i8; conv2d_s8_fast_scratch_len(in_shape, &window, 1, out_shape)];
        let got = run_both(
            &input,
            in_shape,
            &weights,
            &bias,
            &window,
            1,
            &quant,
            out_shape,
            &mut scratch,
        );
        assert_eq!(got, want);
        // The outputs are not all saturated: the test exercises real values.
        assert!(want.iter().filter(|&&v| v != 127 && v != -128).count() > want.len() / 2);
    }

    #[test]
    fn scratch_len_is_zero_for_depthwise() {
        let window = Window2d {
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        let s = Shape4::new(1, 8, 10, 10);
        assert_eq!(conv2d_s8_fast_scratch_len(s, &window, 8, s), 0);
        // Dense 8 -> 8: K = 72 -> 80 padded, tile = 2048 / 80 = 25 -> 2 * (25 + 1) * 80 + 1.
        assert_eq!(conv2d_s8_fast_scratch_len(s, &window, 1, s), 4161);
        // Dense 1 -> 8 (a first layer) takes the im2col path: K = 9 -> 16, tile 100 (all pixels).
        let one = Shape4::new(1, 1, 10, 10);
        assert_eq!(
            conv2d_s8_fast_scratch_len(one, &window, 1, s),
            2 * 101 * 16 + 1
        );
    }
}
