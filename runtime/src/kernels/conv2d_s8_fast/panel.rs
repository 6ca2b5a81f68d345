//! The panel path of [`super::conv2d_s8_fast`] (two or more input channels per
//! group, x86-64 and other targets without an 8-bit dot product): register-blocked
//! [`gemm_i16_tile`] micro-kernels over K-pair panels.
//!
//! For each tile of output pixels (a multiple of [`NR`], as many as the scratch holds)
//! the receptive fields are packed once into `[block][k2][NR][2]` `i16` panels
//! holding `x - input_zero_point` (padding taps 0, so no zero-point correction);
//! then, for each block of [`MR`] output channels, the weight rows are widened
//! into a `[k2][MR][2]` panel and every pixel block of the tile runs one
//! micro-kernel call. The `MR x tile` sums, already in NCHW row order, get the
//! bias and the requantization of [`ConvS8Quant::finish_row`](super::super::conv2d_s8::ConvS8Quant).
//! A 1x1 stride-1 convolution reads its input rows in place: no im2col gather.

use super::super::conv2d_s8::bias_of;
use super::super::gemm_i16::{MR, NR, TileArgs, gemm_i16_tile};
use super::super::{ConvGeometry, ConvS8Args};
use super::{MAX_PIXEL_TILE, PanelValue, padded_taps, widen_strided_row};

/// Panel path for two or more input channels per group.
#[inline(always)]
pub(super) fn conv_panel(args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8], tile: usize) {
    let ConvS8Args {
        input,
        weights,
        bias,
        ref geometry,
        ref quant,
    } = *args;
    debug_assert_eq!(panel_tile(geometry, scratch.len()), Some(tile));
    let packer = Packer::new(geometry, quant.input_zero_point);
    let (taps, k2) = (packer.taps, packer.k2);
    debug_assert!(weights.len() >= geometry.out_shape.c * taps);
    let (cout_g, groups) = (geometry.out_per_group(), geometry.groups);
    let pixels = geometry.out_shape.h * geometry.out_shape.w;
    let kp = padded_taps(packer.cin_g, &geometry.window);
    let (_, scratch16, _) = bytemuck::pod_align_to_mut::<i8, i16>(scratch);
    let (b_panel, rest) = scratch16.split_at_mut(tile.next_multiple_of(NR) * kp);
    let a_panel = &mut rest[..k2 * MR * 2];
    let mut sums = [0i32; MR * MAX_PIXEL_TILE];
    for n in 0..geometry.out_shape.n {
        for g in 0..groups {
            let mut p0 = 0;
            while p0 < pixels {
                let count = (pixels - p0).min(tile);
                let ldo = count.next_multiple_of(NR);
                let ldb = 2 * ldo;
                let b_panel = &mut b_panel[..k2 * ldb];
                packer.pack(input, n, g * packer.cin_g, p0, count, b_panel);
                let end = (g + 1) * cout_g;
                let mut oc0 = g * cout_g;
                while oc0 < end {
                    let mb = (end - oc0).min(MR);
                    widen_weights(&weights[oc0 * taps..][..mb * taps], taps, a_panel);
                    for j in (0..ldo).step_by(NR) {
                        let t = TileArgs {
                            k2,
                            a: a_panel,
                            b: &b_panel[2 * j..],
                            ldb,
                        };
                        gemm_i16_tile(t, &mut sums[j..], ldo);
                    }
                    for m in 0..mb {
                        let oc = oc0 + m;
                        let start = (n * geometry.out_shape.c + oc) * pixels + p0;
                        let (row, out) =
                            (&mut sums[m * ldo..][..count], &mut output[start..][..count]);
                        quant.finish_row_with(oc, bias_of(bias, oc), row, out);
                    }
                    oc0 += mb;
                }
                p0 += count;
            }
        }
    }
}

/// Output pixels per tile that `scratch_len` bytes hold for this geometry,
/// `2 * (round_up(tile, NR) + MR) * kp + 1` bytes: a multiple of [`NR`] up to
/// [`MAX_PIXEL_TILE`], or all the pixels; `None` when not even one block of
/// [`NR`] pixels fits (the dot-product path runs instead).
pub(super) fn panel_tile(geometry: &ConvGeometry, scratch_len: usize) -> Option<usize> {
    let kp = padded_taps(geometry.in_per_group(), &geometry.window);
    let pixels = geometry.out_shape.h * geometry.out_shape.w;
    let fits = (scratch_len.saturating_sub(1) / 2 / kp.max(1)).checked_sub(MR)?;
    let tile = (fits / NR * NR).min(MAX_PIXEL_TILE);
    if pixels.next_multiple_of(NR) <= tile {
        Some(pixels)
    } else {
        (tile >= NR).then_some(tile)
    }
}

/// Widens up to [`MR`] weight rows of `taps` values (`rows.len() / taps` of
/// them) into the `[k2][MR][2]` panel; missing rows and the odd tap are 0.
#[inline(always)]
fn widen_weights(rows: &[i8], taps: usize, panel: &mut [i16]) {
    let k2 = taps.div_ceil(2);
    let panel = &mut panel[..k2 * MR * 2];
    let count = rows.len() / taps.max(1);
    if count < MR || taps % 2 == 1 {
        panel.fill(0);
    }
    for m in 0..count.min(MR) {
        let row = &rows[m * taps..][..taps];
        let (pairs, odd) = row.as_chunks::<2>();
        for (dst, pair) in panel.chunks_exact_mut(MR * 2).zip(pairs) {
            dst[2 * m] = pair[0] as i16;
            dst[2 * m + 1] = pair[1] as i16;
        }
        if let [last] = odd {
            panel[(k2 - 1) * MR * 2 + 2 * m] = *last as i16;
        }
    }
}

/// Packs tiles of receptive fields into `[k2][tile][2]` panels (and, in
/// `panel_u8`, `[k4][tile][4]` ones).
pub(super) struct Packer {
    geometry: ConvGeometry,
    zp: i32,
    pub(super) cin_g: usize,
    /// `K = cin_g * kh * kw`.
    pub(super) taps: usize,
    /// `ceil(K / 2)`, pairs per receptive field.
    k2: usize,
    /// 1x1, stride 1, no padding, output plane = input plane: rows read in place.
    pointwise: bool,
}

impl Packer {
    #[inline(always)]
    pub(super) fn new(geometry: &ConvGeometry, zp: i32) -> Packer {
        let cin_g = geometry.in_per_group();
        let w = &geometry.window;
        let taps = cin_g * w.kernel[0] * w.kernel[1];
        let (ins, outs) = (geometry.in_shape, geometry.out_shape);
        Packer {
            geometry: *geometry,
            zp,
            cin_g,
            taps,
            k2: taps.div_ceil(2),
            pointwise: w.kernel == [1, 1]
                && w.stride == [1, 1]
                && w.pad_begin == [0, 0]
                && outs.w == ins.w
                && outs.h <= ins.h,
        }
    }

    /// The convolution's geometry.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(super) fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }

    /// The input zero point.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(super) fn zero_point(&self) -> i32 {
        self.zp
    }

    /// Fills `panel` (`[k2][ldb / 2][2]`, `ldb = 2 * round_up(count, NR)`) with
    /// output pixels `p0..p0 + count` of batch item `n`, input channels
    /// `ic0..ic0 + cin_g`; pixels past `count` and the odd tap past `K` are 0.
    #[inline(always)]
    fn pack(&self, input: &[i8], n: usize, ic0: usize, p0: usize, count: usize, panel: &mut [i16]) {
        let ins = self.geometry.in_shape;
        let in_plane = ins.h * ins.w;
        let planes = &input[(n * ins.c + ic0) * in_plane..][..self.cin_g * in_plane];
        let width = count.next_multiple_of(NR);
        let ow = self.geometry.out_shape.w.max(1);
        // The tile's first pixel, and the taps in `k` order: no division per tap.
        let first = (p0 / ow, p0 % ow);
        let mut tap = Tap::default();
        let mut rows = [[0i16; MAX_PIXEL_TILE]; 2];
        for (s, dst) in panel.chunks_exact_mut(2 * width).take(self.k2).enumerate() {
            for (h, row) in rows.iter_mut().enumerate() {
                let row = &mut row[..width];
                if 2 * s + h >= self.taps || in_plane == 0 {
                    row.fill(0);
                } else {
                    self.fill_row(planes, in_plane, tap, first, count, row);
                    tap.advance(self.geometry.window.kernel);
                }
            }
            let (r0, r1) = (&rows[0][..width], &rows[1][..width]);
            for ((d, &x0), &x1) in dst.chunks_exact_mut(2).zip(r0).zip(r1) {
                d[0] = x0;
                d[1] = x1;
            }
        }
    }

    /// `tap` of the output pixels `count` pixels from `first` (row, column) into
    /// `row[..count]` as [`PanelValue`]s, padding into the rest of `row`.
    #[inline(always)]
    pub(super) fn fill_row<V: PanelValue>(
        &self,
        planes: &[i8],
        in_plane: usize,
        tap: Tap,
        first: (usize, usize),
        count: usize,
        row: &mut [V],
    ) {
        let ConvGeometry {
            in_shape,
            out_shape,
            ref window,
            ..
        } = self.geometry;
        let zp = self.zp;
        let (valid, tail) = row.split_at_mut(count);
        tail.fill(V::padding(zp));
        let plane = &planes[tap.ic * in_plane..][..in_plane];
        if self.pointwise {
            let p0 = first.0 * out_shape.w + first.1;
            for (d, &x) in valid.iter_mut().zip(&plane[p0..p0 + count]) {
                *d = V::of(x, zp);
            }
            return;
        }
        let [sh, sw] = window.stride;
        let (ih, iw, ow) = (in_shape.h, in_shape.w, out_shape.w);
        let (mut oy, mut ox) = first;
        let mut t = 0;
        while t < count {
            let seg = (ow - ox).min(count - t);
            let dst = &mut valid[t..t + seg];
            let iy = (oy * sh + tap.ky * window.dilation[0]).wrapping_sub(window.pad_begin[0]);
            if iy >= ih {
                dst.fill(V::padding(zp));
            } else {
                let src = &plane[iy * iw..][..iw];
                let q = ox * sw + tap.kx * window.dilation[1];
                widen_strided_row(src, q, sw, window.pad_begin[1], zp, dst);
            }
            t += seg;
            ox = 0;
            oy += 1;
        }
    }
}

/// One tap of a receptive field: input channel (within the group), kernel row
/// and column, in the weights' `k = (ic * kh + ky) * kw + kx` order.
#[derive(Clone, Copy, Default)]
pub(super) struct Tap {
    ic: usize,
    ky: usize,
    kx: usize,
}

impl Tap {
    /// The tap of `k + 1`.
    #[inline(always)]
    pub(super) fn advance(&mut self, [kh, kw]: [usize; 2]) {
        self.kx += 1;
        if self.kx == kw {
            self.kx = 0;
            self.ky += 1;
            if self.ky == kh {
                self.ky = 0;
                self.ic += 1;
            }
        }
    }
}
