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
//! bit for bit for every input. The direct path lives in `direct.rs`, the two
//! im2col paths in `im2col.rs`.

use super::dot::DOT_LANES;
use super::gemm_i16::{MR, NR};
use super::gemm_s8::GemmS8;
use super::{ConvGeometry, ConvS8Args, Window2d};

#[cfg(target_arch = "x86_64")]
mod band_u8;
mod depthwise;
mod direct;
mod im2col;
mod panel;
#[cfg(target_arch = "x86_64")]
mod panel_u8;
mod smlad;
#[cfg(test)]
mod tests;

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
/// `i16` values of one im2col tile in [`conv2d_s8_fast_scratch_len_fast`]
/// (256 KiB, inside a Cortex-A or x86-64 L2 cache).
const FAST_TILE_VALUES: usize = 128 * 1024;

/// Output columns per accumulator row of the direct (depthwise) path.
const DIRECT_CHUNK: usize = 64;
/// The direct path processes whole groups of this many columns.
const DIRECT_LANES: usize = 16;
/// Bytes of the direct path's zero-point-padded input row buffer.
const DIRECT_ROW: usize = 256;

/// Scratch bytes [`conv2d_s8_fast`] needs at least for this geometry (0 for
/// the direct path): what the op's check requires, unchanged since format 1.0.
///
/// `2 * (tile + 1) * round_up(K, 16) + 1` where `K = c_in / groups * kh * kw` and
/// `tile = min(oh * ow, pixel_tile(round_up(K, 16)))`: `i16` im2col rows for
/// one tile of pixels plus one widened weight row, and one byte of slack so
/// that the `i16` view can start on an even address whatever the scratch
/// alignment. 0 for the direct path (see `uses_direct_path`) or an empty output.
/// With this much the dot-product path runs; the panel and banded depthwise
/// paths need [`conv2d_s8_fast_scratch_len_fast`].
pub fn conv2d_s8_fast_scratch_len(geometry: &ConvGeometry) -> usize {
    if geometry.groups == 0 {
        return 0;
    }
    let pixels = geometry.out_shape.h * geometry.out_shape.w;
    if uses_direct_path(geometry) || pixels == 0 {
        return 0;
    }
    let kp = padded_taps(geometry.in_per_group(), &geometry.window);
    2 * (pixels.min(pixel_tile(kp)) + 1) * kp + 1
}

/// Scratch bytes for the fastest paths: the banded depthwise path, or the
/// panel path with tiles of up to [`MAX_PIXEL_TILE`] pixels within 256 KiB
/// (`2 * (round_up(tile, NR) + MR) * round_up(K, 16) + 1`), so the per-tile
/// work (packing the receptive fields, widening the weights) is amortized over
/// more pixels. The kernel takes any scratch of at least the minimum and uses
/// the fastest path and tiling that fit; the converter plans this one unless
/// told to keep the arena small.
pub fn conv2d_s8_fast_scratch_len_fast(geometry: &ConvGeometry) -> usize {
    if is_depthwise(geometry) {
        return depthwise::band_scratch_len(geometry);
    }
    let min = conv2d_s8_fast_scratch_len(geometry);
    if min == 0 {
        return 0;
    }
    let pixels = geometry.out_shape.h * geometry.out_shape.w;
    let kp = padded_taps(geometry.in_per_group(), &geometry.window);
    let tile = (FAST_TILE_VALUES / kp / NR * NR).clamp(MIN_PIXEL_TILE, MAX_PIXEL_TILE);
    min.max(2 * (pixels.min(tile).next_multiple_of(NR) + MR) * kp + 1)
}

/// One input channel per group in a grouped convolution whose kernel fits the
/// direct path: the banded depthwise path runs when the scratch allows.
fn is_depthwise(geometry: &ConvGeometry) -> bool {
    let w = &geometry.window;
    geometry.in_per_group() == 1
        && geometry.groups > 1
        && w.kernel[0] * w.kernel[1] > 0
        && direct::direct_chunk(w) > 0
}

/// True when the direct path runs: one input channel per group in a grouped
/// convolution (depthwise) whose kernel span fits the direct path's row buffer,
/// or nothing to sum (no input channel or an empty kernel). A dense convolution
/// of a single channel (a first layer) shares each receptive field across all
/// output channels, which im2col exploits: measured 2.5x faster there. A
/// depthwise kernel spanning more than [`DIRECT_ROW`] columns takes im2col too,
/// so the fast kernel never needs the reference (firmware links only one).
fn uses_direct_path(geometry: &ConvGeometry) -> bool {
    let (cin_g, groups, window) = (geometry.in_per_group(), geometry.groups, &geometry.window);
    (cin_g == 1 && groups > 1 && direct::direct_chunk(window) > 0)
        || cin_g == 0
        || window.kernel[0] * window.kernel[1] == 0
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
    pub fn conv2d_s8_fast(
        args: &ConvS8Args,
        output: &mut [i8],
        scratch: &mut [i8],
    ) => conv2d_s8_fast_body;
}

/// The body of [`conv2d_s8_fast`], compiled once per instruction set.
#[inline(always)]
fn conv2d_s8_fast_body(args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8]) {
    let ConvGeometry {
        in_shape,
        out_shape,
        groups,
        ..
    } = args.geometry;
    debug_assert!(
        groups >= 1 && in_shape.c.is_multiple_of(groups) && out_shape.c.is_multiple_of(groups)
    );
    debug_assert_eq!(in_shape.n, out_shape.n);
    debug_assert!(args.input.len() >= in_shape.len() && output.len() >= out_shape.len());
    debug_assert!(args.bias.is_empty() || args.bias.len() >= out_shape.c);
    if out_shape.is_empty() {
        return;
    }
    let pixels = out_shape.h * out_shape.w;
    // The banded and panel paths serve CPUs with caches and wide vectors; on
    // Cortex-M (`arm`) they are compiled out, which keeps the firmware small.
    let band = depthwise::band_scratch_len(&args.geometry);
    if !cfg!(target_arch = "arm")
        && is_depthwise(&args.geometry)
        && band > 0
        && scratch.len() >= band
        && depthwise::conv_depthwise_banded(args, output, scratch)
    {
        // Done by the banded depthwise path.
    } else if uses_direct_path(&args.geometry) {
        direct::conv_direct(args, output);
    } else if cfg!(target_arch = "aarch64") {
        // 8-bit operands: SDOT/SMMLA/SMULL multiply 16 pairs per instruction.
        im2col::conv_im2col_s8(GemmS8::best(), args, output, scratch);
    } else if vnni(args, output, scratch) {
        // x86-64 with VNNI: banded or quad-panel `vpdpbusd` kernels.
    } else if !cfg!(target_arch = "arm")
        && pixels >= NR / 2
        && let Some(tile) = panel::panel_tile(&args.geometry, scratch.len())
    {
        panel::conv_panel(args, output, scratch, tile);
    } else if cfg!(all(feature = "arm-dsp", target_arch = "arm")) {
        smlad::conv_smlad(args, output, scratch);
    } else {
        // The path on Cortex-M without the DSP extension; elsewhere the path
        // for a scratch planned small (--small-arena, files before the panel
        // path) or too few pixels to fill the panel micro-kernel's lanes (a 1x1
        // map: one dot product per channel).
        im2col::conv_im2col(args, output, scratch);
    }
}

/// Where the CPU has VNNI and the input zero point is an int8 value, runs the
/// banded path (or, where no band fits the scratch or rows are narrow, the
/// quad panel path) and returns true; returns false (writing nothing) otherwise.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn vnni(args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8]) -> bool {
    if !super::gemm_u8s8::has_vnni() || !(-128..=127).contains(&args.quant.input_zero_point) {
        return false;
    }
    if let Some(plan) = band_u8::plan(&args.geometry, scratch.len()) {
        band_u8::conv_band_u8(args, output, scratch, &plan);
        return true;
    }
    let pixels = args.geometry.out_shape.h * args.geometry.out_shape.w;
    if pixels >= NR / 2
        && let Some(tile) = panel::panel_tile(&args.geometry, scratch.len())
        && scratch.len() >= panel_u8::scratch_len(&args.geometry, tile)
    {
        panel_u8::conv_panel_u8(args, output, scratch, tile);
        return true;
    }
    false
}

/// Elsewhere there are no VNNI paths.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn vnni(_: &ConvS8Args, _: &mut [i8], _: &mut [i8]) -> bool {
    false
}

/// [`conv2d_s8_fast`] with the int8 dot-product variant `kind` for its im2col
/// path (the default on AArch64 is [`GemmS8::best`]); bit-exact with the reference
/// for every variant. Same scratch as [`conv2d_s8_fast`].
pub fn conv2d_s8_gemm(kind: GemmS8, args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8]) {
    if args.geometry.out_shape.is_empty() {
        return;
    }
    if uses_direct_path(&args.geometry) {
        direct::conv_direct(args, output);
    } else {
        im2col::conv_im2col_s8(kind, args, output, scratch);
    }
}

/// How a packed panel holds an input value: as `x - zp` in `i16` (the
/// `vpmaddwd`/`vpdpwssd` panels and the depthwise rows, padding 0) or as
/// `x + 128` in `u8` (the `vpdpbusd` panels, padding `zp + 128`, the value a
/// padding tap would have).
pub(super) trait PanelValue: Copy {
    /// Input value `x` of zero point `zp`.
    fn of(x: i8, zp: i32) -> Self;
    /// A padding tap.
    fn padding(zp: i32) -> Self;
}

impl PanelValue for i16 {
    #[inline(always)]
    fn of(x: i8, zp: i32) -> i16 {
        (x as i32 - zp) as i16
    }
    #[inline(always)]
    fn padding(_: i32) -> i16 {
        0
    }
}

impl PanelValue for u8 {
    #[inline(always)]
    fn of(x: i8, _: i32) -> u8 {
        x as u8 ^ 0x80
    }
    #[inline(always)]
    fn padding(zp: i32) -> u8 {
        (zp + 128) as u8
    }
}

/// `dst[j] = V::of(src[q + j * sw - pad])`, [`PanelValue::padding`] where that
/// column is outside `src`: one row of receptive-field taps (panel paths) or of
/// a column phase (banded depthwise path).
#[inline(always)]
pub(super) fn widen_strided_row<V: PanelValue>(
    src: &[i8],
    q: usize,
    sw: usize,
    pad: usize,
    zp: i32,
    dst: &mut [V],
) {
    // Input column of element j; in range on one contiguous run of j.
    let col = |j: usize| (q + j * sw).wrapping_sub(pad);
    let mut lo = 0;
    while lo < dst.len() && col(lo) >= src.len() {
        lo += 1;
    }
    let mut hi = dst.len();
    while hi > lo && col(hi - 1) >= src.len() {
        hi -= 1;
    }
    dst[..lo].fill(V::padding(zp));
    dst[hi..].fill(V::padding(zp));
    if hi > lo {
        let (dst, start) = (&mut dst[lo..hi], col(lo));
        if sw == 1 {
            for (d, &x) in dst.iter_mut().zip(&src[start..]) {
                *d = V::of(x, zp);
            }
        } else if sw == 2 {
            // Pairs, so that the even columns are one vector shuffle away; the
            // last column may be the row's last byte, without its pair.
            let (head, last) = dst.split_at_mut(dst.len() - 1);
            for (d, pair) in head.iter_mut().zip(src[start..].as_chunks::<2>().0) {
                *d = V::of(pair[0], zp);
            }
            last[0] = V::of(src[start + 2 * head.len()], zp);
        } else {
            for (d, &x) in dst.iter_mut().zip(src[start..].iter().step_by(sw)) {
                *d = V::of(x, zp);
            }
        }
    }
}
