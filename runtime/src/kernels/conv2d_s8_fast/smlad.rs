//! The Cortex-M DSP path of [`super::conv2d_s8_fast`] (two or more input
//! channels per group, built with `arm-dsp`): receptive fields gathered tile by
//! tile as [`gemm_smlad`](super::super::gemm_smlad) columns, in panels of four
//! pixels, and weights read in place by its `SXTB16`/`SMLAD` micro-kernel: one
//! output channel by four pixels, 17 instructions per 16 multiply-adds.
//!
//! The gather runs tap by tap: for each tap `(ic, ky, kx)` it walks the tile's
//! output rows, so each run of valid input columns is a strided copy with no
//! per-value test, and the tap's place in the columns is computed once.
//! Scratch: the minimum of [`super::conv2d_s8_fast_scratch_len`] always holds
//! at least one column; the tile takes as many pixels as fit (at most
//! [`MAX_PIXEL_TILE`]), in panels of four when four columns fit.

use super::super::conv2d_s8::bias_of;
use super::super::gemm_smlad::{GROUP, PANEL, SmladGemm, column_start, tap_offset};
use super::super::{ConvGeometry, ConvS8Args};
use super::MAX_PIXEL_TILE;

/// Im2col + `SMLAD` path; bit-exact with the reference.
#[inline(always)]
pub(super) fn conv_smlad(args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8]) {
    let ConvS8Args {
        input,
        weights,
        bias,
        ref geometry,
        ref quant,
    } = *args;
    let (in_shape, out_shape) = (geometry.in_shape, geometry.out_shape);
    let [kh, kw] = geometry.window.kernel;
    let (cin_g, cout_g) = (geometry.in_per_group(), geometry.out_per_group());
    let taps = cin_g * kh * kw;
    let ldc = taps.next_multiple_of(GROUP);
    let pixels = out_shape.h * out_shape.w;
    let in_plane = in_shape.h * in_shape.w;
    // Word-aligned for the micro-kernel's `LDRD`.
    let (_, words, _) = bytemuck::pod_align_to_mut::<i8, u32>(scratch);
    let cols: &mut [i16] = bytemuck::cast_slice_mut(words);
    let fit = cols.len() / ldc;
    assert!(fit > 0, "conv2d_s8_fast: scratch too small");
    let panel = if fit >= PANEL { PANEL } else { 1 };
    let tile = (fit / panel * panel).min(pixels).min(MAX_PIXEL_TILE);
    let mut sums = [0i32; MAX_PIXEL_TILE];
    for n in 0..out_shape.n {
        for g in 0..geometry.groups {
            let planes = &input[(n * in_shape.c + g * cin_g) * in_plane..][..cin_g * in_plane];
            let mut p0 = 0;
            while p0 < pixels {
                let count = (pixels - p0).min(tile);
                let cols = &mut cols[..count.next_multiple_of(panel) * ldc];
                let layout = Layout::new(ldc, panel, count);
                gather(geometry, planes, quant.input_zero_point, p0, layout, cols);
                for oc in g * cout_g..(g + 1) * cout_g {
                    SmladGemm {
                        weights: &weights[oc * taps..],
                        lda: taps,
                        rows: 1,
                        k: taps,
                        cols,
                        ldc,
                        count,
                        panel,
                    }
                    .run(&[bias_of(bias, oc)], &mut sums, count);
                    let out = &mut output[(n * out_shape.c + oc) * pixels + p0..][..count];
                    quant.finish_row(quant.requant_of(oc), &sums, out);
                }
                p0 += count;
            }
        }
    }
}

/// Where a tile's columns go: `count` columns of `ldc` values in panels of
/// `1 << shift` columns (1 or [`PANEL`]).
#[derive(Clone, Copy)]
struct Layout {
    ldc: usize,
    shift: u32,
    count: usize,
}

impl Layout {
    fn new(ldc: usize, panel: usize, count: usize) -> Layout {
        debug_assert!(panel == 1 || panel == PANEL);
        Layout {
            ldc,
            shift: panel.trailing_zeros(),
            count,
        }
    }

    /// Values from one panel to the next.
    #[inline(always)]
    fn span(&self) -> usize {
        self.ldc << self.shift
    }

    /// Index of tap offset `tap` of column `j` (see [`column_start`]).
    #[inline(always)]
    fn at(&self, j: usize, tap: usize) -> usize {
        // A power-of-two panel: the division and remainder are shifts and masks.
        column_start(j, 1 << self.shift, self.ldc) + tap
    }

    /// Zeros at offset `tap` of columns `j0..j1`.
    #[inline(always)]
    fn zeros(&self, cols: &mut [i16], tap: usize, j0: usize, j1: usize) {
        for j in j0..j1 {
            cols[self.at(j, tap)] = 0;
        }
    }

    /// `x - zp` for each `x` of `src` at offset `tap` of columns `j0..`,
    /// whole panels four values at a time.
    #[inline(always)]
    fn copy(&self, cols: &mut [i16], tap: usize, j0: usize, src: &[i8], zp: i32) {
        let widen = |x: i8| (x as i32 - zp) as i16;
        let head = if self.shift == 0 {
            src.len()
        } else {
            ((PANEL - j0 % PANEL) % PANEL).min(src.len())
        };
        for (t, &x) in src[..head].iter().enumerate() {
            cols[self.at(j0 + t, tap)] = widen(x);
        }
        let j = j0 + head;
        let (quads, rest) = src[head..].as_chunks::<PANEL>();
        if let Some(last) = quads.len().checked_sub(1) {
            let (first, span) = (self.at(j, tap), self.span());
            // The last write of the loop below, checked once.
            assert!(first + last * span + 3 * GROUP < cols.len());
            let mut dst = cols[first..].as_mut_ptr();
            for x in quads {
                // SAFETY: `dst` walks the panels from `first` by `span`; the
                // assert above bounds its last and highest write.
                unsafe {
                    *dst = widen(x[0]);
                    *dst.add(GROUP) = widen(x[1]);
                    *dst.add(2 * GROUP) = widen(x[2]);
                    *dst.add(3 * GROUP) = widen(x[3]);
                    dst = dst.wrapping_add(span);
                }
            }
        }
        let j = j + quads.len() * PANEL;
        for (t, &x) in rest.iter().enumerate() {
            cols[self.at(j + t, tap)] = widen(x);
        }
    }
}

/// Fills the tile's columns with the receptive fields of output pixels
/// `p0..p0 + layout.count` over `planes` (the group's input channels): `x - zp`
/// for tap `k` at [`tap_offset`], 0 for padding taps and the taps past `K`.
///
/// When the input and output rows have the same width and the stride is 1
/// (a "same" convolution), a tap reads the input at a fixed offset from each
/// output pixel, across rows: one flat copy per tap, then zeros over the few
/// pixels whose tap falls in the padding (none for the interior taps).
/// Otherwise row by row.
#[inline(always)]
fn gather(
    geometry: &ConvGeometry,
    planes: &[i8],
    zp: i32,
    p0: usize,
    layout: Layout,
    cols: &mut [i16],
) {
    let ConvGeometry {
        in_shape,
        out_shape,
        ref window,
        ..
    } = *geometry;
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw, ow) = (in_shape.h, in_shape.w, out_shape.w);
    let count = layout.count;
    let panel = 1 << layout.shift;
    let in_plane = ih * iw;
    if in_plane == 0 {
        // An empty input plane (padding makes the output): every tap is padding.
        cols.fill(0);
        return;
    }
    let taps = geometry.in_per_group() * kh * kw;
    for k in taps..layout.ldc {
        layout.zeros(cols, tap_offset(k, panel), 0, count);
    }
    let (oy0, ox0) = (p0 / ow, p0 % ow);
    if sw == 1 && sh == 1 && iw == ow {
        gather_flat(geometry, planes, zp, p0, layout, cols);
        return;
    }
    let mut k = 0;
    for plane in planes.chunks_exact(in_plane) {
        for ky in 0..kh {
            for kx in 0..kw {
                let tap = tap_offset(k, panel);
                k += 1;
                // Row by row.
                let (mut oy, mut ox) = (oy0, ox0);
                let mut j0 = 0;
                while j0 < count {
                    let run = (ow - ox).min(count - j0);
                    let j1 = j0 + run;
                    let iy = (oy * sh + ky * dh).wrapping_sub(ph);
                    let first = ox;
                    (oy, ox) = (oy + 1, 0);
                    if iy >= ih {
                        layout.zeros(cols, tap, j0, j1);
                        j0 = j1;
                        continue;
                    }
                    // Input column of output column `first + t`: `base + t * sw`.
                    let base = (first * sw + kx * dw) as isize - pw as isize;
                    let lo = if base >= 0 {
                        0
                    } else {
                        base.unsigned_abs().div_ceil(sw).min(run)
                    };
                    let hi = if (iw as isize) > base {
                        (iw as isize - base)
                            .unsigned_abs()
                            .div_ceil(sw)
                            .clamp(lo, run)
                    } else {
                        lo
                    };
                    layout.zeros(cols, tap, j0, j0 + lo);
                    if hi > lo {
                        let start = iy * iw + (base + (lo * sw) as isize) as usize;
                        let src = &plane[start..];
                        for t in 0..hi - lo {
                            cols[layout.at(j0 + lo + t, tap)] = (src[t * sw] as i32 - zp) as i16;
                        }
                    }
                    layout.zeros(cols, tap, j0 + hi, j1);
                    j0 = j1;
                }
            }
        }
    }
}

/// Most zero runs one kernel tap keeps for a tile (more: recomputed per channel).
const ZERO_RUNS: usize = 16;

/// [`gather`] of a "same" convolution (stride 1, input rows as wide as the
/// output's): pixel `p0 + j` reads `plane[p0 + j + offset(ky, kx)]` wherever
/// that tap is inside the input, so each tap is one flat copy, and the pixels
/// to zero (tap in the padding) are the same runs for every input channel:
/// found once per kernel position, then replayed per channel.
#[inline(always)]
fn gather_flat(
    geometry: &ConvGeometry,
    planes: &[i8],
    zp: i32,
    p0: usize,
    layout: Layout,
    cols: &mut [i16],
) {
    let ConvGeometry {
        in_shape,
        out_shape,
        ref window,
        ..
    } = *geometry;
    let [kh, kw] = window.kernel;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw, oh, ow) = (in_shape.h, in_shape.w, out_shape.h, out_shape.w);
    let (count, panel) = (layout.count, 1 << layout.shift);
    let in_plane = ih * iw;
    let (oy0, ox0) = (p0 / ow, p0 % ow);
    let rows = oy0..(p0 + count).div_ceil(ow);
    for ky in 0..kh {
        for kx in 0..kw {
            let offset = ((ky * dh) * iw + kx * dw) as isize - (ph * iw + pw) as isize;
            let start = p0 as isize + offset;
            let ja = (-start).clamp(0, count as isize) as usize;
            let jb = (in_plane as isize - start).clamp(ja as isize, count as isize) as usize;
            // Output rows [top, bottom) and columns [left, right) read inside
            // the input; the zero runs cover the rest of the tile.
            let top = ph.saturating_sub(ky * dh);
            let bottom = (ih + ph).saturating_sub(ky * dh).min(oh);
            let left = pw.saturating_sub(kx * dw);
            let right = (iw + pw).saturating_sub(kx * dw).min(ow);
            let mut runs = [(0usize, 0usize); ZERO_RUNS];
            let mut len = 0;
            let mut push = |a: usize, b: usize| {
                if a < b {
                    if len > 0 && runs[len - 1].1 >= a {
                        runs[len - 1].1 = runs[len - 1].1.max(b);
                    } else if len < ZERO_RUNS {
                        runs[len] = (a, b);
                        len += 1;
                    } else {
                        return false;
                    }
                }
                true
            };
            let mut fits = push(0, ja);
            let mut j0 = 0;
            for oy in rows.clone() {
                let ox = if oy == oy0 { ox0 } else { 0 };
                let j1 = j0 + (ow - ox).min(count - j0);
                if oy < top || oy >= bottom || left >= right {
                    fits &= push(j0, j1);
                } else {
                    // Columns ox.. of this row at j0..: those before `left`
                    // and from `right` read the padding.
                    let lo = (j0 + left.saturating_sub(ox)).min(j1);
                    let hi = (j0 + right.saturating_sub(ox)).clamp(lo, j1);
                    fits &= push(j0, lo);
                    fits &= push(hi, j1);
                }
                j0 = j1;
            }
            fits &= push(jb, count);
            let runs = &runs[..len];
            for (c, plane) in planes.chunks_exact(in_plane).enumerate() {
                let tap = tap_offset((c * kh + ky) * kw + kx, panel);
                if jb > ja {
                    let first = (start + ja as isize) as usize;
                    layout.copy(cols, tap, ja, &plane[first..][..jb - ja], zp);
                }
                if fits {
                    for &(a, b) in runs {
                        layout.zeros(cols, tap, a, b);
                    }
                } else {
                    // Too many runs to keep: zero every pixel whose tap is outside.
                    for j in 0..count {
                        let (oy, ox) = ((p0 + j) / ow, (p0 + j) % ow);
                        if !(top..bottom).contains(&oy) || !(left..right).contains(&ox) {
                            layout.zeros(cols, tap, j, j + 1);
                        }
                    }
                }
            }
        }
    }
}
