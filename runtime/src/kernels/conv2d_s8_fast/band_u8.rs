//! The banded VNNI path of [`super::conv2d_s8_fast`] (x86-64 with AVX-512 VNNI
//! or AVX-VNNI, one group): no im2col. Per band of output rows, the input rows
//! it reads are copied once into a channel-quad band (`[c4][row][phase][wq][4]`
//! `u8` holding `x + 128`, padding `zero_point + 128`, one column phase per step
//! of the horizontal stride), and [`band_tile`] reads every tap of sixteen
//! consecutive output pixels straight from it. Each input value is copied once
//! per band instead of once per tap, which is what held the panel paths back.
//!
//! Per block of [`MR`] output channels the weights are reordered to the band's
//! `[c4][kh][kw][MR][4]` order once per band, with their sums for the
//! correction `bias - (zero_point + 128) * sum(w)`; the requantization is the
//! panel path's, a row of up to [`CHUNK`] pixels at a time. A 1x1 stride-1
//! convolution without padding is one long row (its plane), so no lane is
//! wasted at row ends.

use super::super::band_u8s8::{BandTile, MR, NR, band_tile};
use super::super::conv2d_s8::bias_of;
use super::super::gemm_u8s8::{interleave_quads, quad_offset};
use super::super::{ConvGeometry, ConvS8Args, Shape4};
use super::{PanelValue, widen_strided_row};

/// Output pixels requantized per row chunk.
const CHUNK: usize = 256;
/// Most kernel rows or columns the band path takes (its offset tables).
const MAX_TAPS: usize = 16;
/// Fewest output columns for the band path (narrower rows leave lanes idle:
/// the panel path packs pixels across rows).
const MIN_WIDTH: usize = 12;

/// How one convolution runs banded: its (possibly flattened) geometry and the
/// band's dimensions.
#[derive(Clone, Copy, Debug)]
pub(super) struct BandPlan {
    /// The geometry, a pointwise convolution's flattened to one row per plane.
    geometry: ConvGeometry,
    /// Output rows per band.
    rows_out: usize,
    /// Output columns per band (a multiple of [`NR`], at most [`CHUNK`]).
    cols_out: usize,
    /// Input rows a full band holds.
    rows_in: usize,
    /// Channel quads.
    c4: usize,
    /// Columns per phase (a multiple of 16).
    wq: usize,
    /// Every channel block's weights are reordered once per call (else once
    /// per band, into one block's room).
    weights_once: bool,
}

impl BandPlan {
    /// Bytes of one channel quad's plane in the band.
    fn plane(&self) -> usize {
        self.rows_in * self.row()
    }

    /// Bytes of one band row (all its phases).
    fn row(&self) -> usize {
        self.geometry.window.stride[1] * self.phase()
    }

    /// Bytes of one phase of a band row.
    fn phase(&self) -> usize {
        4 * self.wq
    }

    /// Bytes of one channel block's reordered weights and, after them, its
    /// [`MR`] weight sums.
    fn block_bytes(&self) -> usize {
        let [kh, kw] = self.geometry.window.kernel;
        block_bytes(self.c4, kh * kw)
    }

    /// Bytes of the weight area: every block's, or one.
    fn weights_bytes(&self) -> usize {
        let blocks = if self.weights_once {
            self.geometry.out_shape.c.div_ceil(MR)
        } else {
            1
        };
        blocks * self.block_bytes()
    }
}

/// Bytes of one channel block's reordered weights and sums.
fn block_bytes(c4: usize, taps2d: usize) -> usize {
    c4 * taps2d * MR * 4 + MR * 4
}

/// The band plan for `geometry` within `scratch_len` bytes, or `None` where the
/// band path does not apply (grouped, a kernel over [`MAX_TAPS`] wide or tall,
/// rows narrower than [`MIN_WIDTH`], or not one band row fits).
pub(super) fn plan(geometry: &ConvGeometry, scratch_len: usize) -> Option<BandPlan> {
    let w = &geometry.window;
    if geometry.groups != 1 || w.kernel[0] > MAX_TAPS || w.kernel[1] > MAX_TAPS {
        return None;
    }
    let (ins, outs) = (geometry.in_shape, geometry.out_shape);
    let pointwise = w.kernel == [1, 1]
        && w.stride == [1, 1]
        && w.pad_begin == [0, 0]
        && (outs.h, outs.w) == (ins.h, ins.w);
    let geometry = if pointwise {
        let flat = |s: Shape4| Shape4::new(s.n, s.c, 1, s.h * s.w);
        ConvGeometry {
            in_shape: flat(ins),
            out_shape: flat(outs),
            ..*geometry
        }
    } else {
        *geometry
    };
    let (ow, oh) = (geometry.out_shape.w, geometry.out_shape.h);
    if ow < MIN_WIDTH || oh == 0 || w.stride.contains(&0) || w.dilation.contains(&0) {
        return None;
    }
    let [kh, kw] = w.kernel;
    let [sh, sw] = w.stride;
    let [dh, dw] = w.dilation;
    let reach = (kw.checked_sub(1)? * dw) / sw;
    let wq = |cols: usize| (cols + reach).next_multiple_of(16);
    let c4 = geometry.in_shape.c.div_ceil(4);
    let rows_in = |r: usize| (r - 1) * sh + (kh - 1) * dh + 1;
    // All blocks' weights once per call where they take at most half the
    // scratch (else each band reorders one block's).
    let all_weights = geometry.out_shape.c.div_ceil(MR) * block_bytes(c4, kh * kw);
    let weights_once = all_weights <= scratch_len / 2;
    let weights = if weights_once {
        all_weights
    } else {
        block_bytes(c4, kh * kw)
    };
    let bytes = |r: usize, cols: usize| {
        let band = c4 * rows_in(r) * sw * 4 * wq(cols);
        band + weights + 4 * wq(cols)
    };
    // The widest band (whole rows where they fit), then the most rows.
    let mut cols_out = ow.next_multiple_of(NR).min(CHUNK);
    while bytes(1, cols_out) > scratch_len {
        cols_out = cols_out.checked_sub(NR).filter(|&c| c >= NR)?;
    }
    let (mut lo, mut hi) = (1, oh);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if bytes(mid, cols_out) <= scratch_len {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(BandPlan {
        geometry,
        rows_out: lo,
        cols_out,
        rows_in: rows_in(lo),
        c4,
        wq: wq(cols_out),
        weights_once,
    })
}

/// Banded VNNI convolution; the input zero point must be an int8 value (the
/// caller checks) and `plan` come from [`plan`] with this scratch.
#[inline(always)]
pub(super) fn conv_band_u8(
    args: &ConvS8Args,
    output: &mut [i8],
    scratch: &mut [i8],
    plan: &BandPlan,
) {
    let g = &plan.geometry;
    let (ins, outs) = (g.in_shape, g.out_shape);
    let zp = args.quant.input_zero_point;
    debug_assert!((-128..=127).contains(&zp));
    let [kh, kw] = g.window.kernel;
    let [sh, sw] = g.window.stride;
    let [dh, dw] = g.window.dilation;
    let taps = ins.c * kh * kw;
    let scratch: &mut [u8] = bytemuck::cast_slice_mut(scratch);
    let (band, rest) = scratch.split_at_mut(plan.c4 * plan.plane());
    let (weights, rest) = rest.split_at_mut(plan.weights_bytes());
    let tmp = &mut rest[..4 * plan.wq];
    let block = plan.block_bytes();
    let block_rows = |oc0: usize| {
        let mb = (outs.c - oc0).min(MR);
        &args.weights[oc0 * taps..][..mb * taps]
    };
    if plan.weights_once {
        for (b, dst) in weights.chunks_exact_mut(block).enumerate() {
            reorder_weights(block_rows(b * MR), plan, dst);
        }
    }
    let mut rows = [0usize; MAX_TAPS];
    let mut cols = [0usize; MAX_TAPS];
    for (ky, r) in rows[..kh].iter_mut().enumerate() {
        *r = ky * dh * plan.row();
    }
    for (kx, c) in cols[..kw].iter_mut().enumerate() {
        *c = (kx * dw % sw) * plan.phase() + 4 * (kx * dw / sw);
    }
    let (rows, cols) = (&rows[..kh], &cols[..kw]);
    let mut sums = [0i32; MR * CHUNK];
    let out_plane = outs.h * outs.w;
    for n in 0..outs.n {
        for (oy0, ox0) in bands(plan) {
            let band_rows = plan.rows_out.min(outs.h - oy0);
            let count = plan.cols_out.min(outs.w - ox0);
            fill_band(args, plan, n, (oy0, ox0), band, tmp);
            let mut oc0 = 0;
            while oc0 < outs.c {
                let mb = (outs.c - oc0).min(MR);
                let panel = if plan.weights_once {
                    &mut weights[oc0 / MR * block..][..block]
                } else {
                    reorder_weights(block_rows(oc0), plan, &mut weights[..block]);
                    &mut weights[..block]
                };
                let (wpanel, wsums) = panel.split_at(block - MR * 4);
                let wpanel: &[i8] = bytemuck::cast_slice(wpanel);
                let mut correction = [0i32; MR];
                for (m, c) in correction.iter_mut().enumerate().take(mb) {
                    let wsum = i32::from_le_bytes(wsums[4 * m..][..4].try_into().expect("4 bytes"));
                    *c = quad_offset(bias_of(args.bias, oc0 + m), zp, wsum);
                }
                for r in 0..band_rows {
                    let row_base = r * sh * plan.row();
                    for j in (0..count).step_by(NR) {
                        let t = BandTile {
                            x: band,
                            base: row_base + 4 * j,
                            c4: plan.c4,
                            plane: plan.plane(),
                            rows,
                            cols,
                            w: wpanel,
                        };
                        band_tile(t, &mut sums[j..], CHUNK);
                    }
                    for m in 0..mb {
                        let oc = oc0 + m;
                        let start = (n * outs.c + oc) * out_plane + (oy0 + r) * outs.w + ox0;
                        let (row, out) = (
                            &mut sums[m * CHUNK..][..count],
                            &mut output[start..][..count],
                        );
                        args.quant.finish_row_with(oc, correction[m], row, out);
                    }
                }
                oc0 += mb;
            }
        }
    }
}

/// The bands of a plan: the first output row and column of each.
fn bands(plan: &BandPlan) -> impl Iterator<Item = (usize, usize)> {
    let outs = plan.geometry.out_shape;
    let (rows, cols) = (plan.rows_out, plan.cols_out);
    (0..outs.h)
        .step_by(rows)
        .flat_map(move |oy0| (0..outs.w).step_by(cols).map(move |ox0| (oy0, ox0)))
}

/// Copies the input the band at output row and column `(oy0, ox0)` reads into
/// `band` as `u8` quads (taps outside the image and channels past `c` hold
/// the padding value); `tmp` holds four rows of `wq` values.
#[inline(always)]
fn fill_band(
    args: &ConvS8Args,
    plan: &BandPlan,
    n: usize,
    (oy0, ox0): (usize, usize),
    band: &mut [u8],
    tmp: &mut [u8],
) {
    let g = &plan.geometry;
    let ins = g.in_shape;
    let zp = args.quant.input_zero_point;
    let pad = <u8 as PanelValue>::padding(zp);
    let sw = g.window.stride[1];
    let in_plane = ins.h * ins.w;
    let first = (oy0 * g.window.stride[0]).wrapping_sub(g.window.pad_begin[0]);
    let (wq, phase) = (plan.wq, plan.phase());
    for c4 in 0..plan.c4 {
        let plane = &mut band[c4 * plan.plane()..][..plan.plane()];
        for (r, band_row) in plane.chunks_exact_mut(plan.row()).enumerate() {
            let iy = first.wrapping_add(r);
            for (ph, dst) in band_row.chunks_exact_mut(phase).enumerate() {
                let mut quad = tmp.chunks_exact_mut(wq);
                let mut four: [&mut [u8]; 4] =
                    core::array::from_fn(|_| quad.next().expect("4 rows"));
                for (i, row) in four.iter_mut().enumerate() {
                    let c = 4 * c4 + i;
                    if c >= ins.c || iy >= ins.h {
                        row.fill(pad);
                    } else {
                        let src = &args.input[(n * ins.c + c) * in_plane + iy * ins.w..][..ins.w];
                        let q = ph + ox0 * sw;
                        widen_strided_row(src, q, sw, g.window.pad_begin[1], zp, row);
                    }
                }
                let [a, b, c, d] = four;
                interleave_quads([a, b, c, d], dst);
            }
        }
    }
}

/// Reorders up to [`MR`] weight rows (`[c][kh][kw]` each, `rows.len() / taps`
/// of them) into `dst`: the band's `[c4][kh][kw][MR][4]` panel (missing rows
/// and channels 0), then each row's sum (`MR` little-endian `i32`).
#[inline(always)]
fn reorder_weights(rows: &[i8], plan: &BandPlan, dst: &mut [u8]) {
    let g = &plan.geometry;
    let [kh, kw] = g.window.kernel;
    let taps2d = kh * kw;
    let taps = g.in_shape.c * taps2d;
    let (panel, sums) = dst[..plan.block_bytes()].split_at_mut(plan.block_bytes() - MR * 4);
    panel.fill(0);
    sums.fill(0);
    let count = rows.len() / taps.max(1);
    for m in 0..count.min(MR) {
        let row = &rows[m * taps..][..taps];
        let sum = row.iter().fold(0i32, |acc, &w| acc.wrapping_add(w as i32));
        sums[4 * m..][..4].copy_from_slice(&sum.to_le_bytes());
        if taps2d == 1 {
            // Pointwise: each quad of the row is one 4-byte copy.
            let (quads, rest) = row.as_chunks::<4>();
            for (dst, quad) in panel.chunks_exact_mut(MR * 4).zip(quads) {
                dst[4 * m..][..4].copy_from_slice(&quad.map(|w| w as u8));
            }
            if !rest.is_empty() {
                let dst = &mut panel[quads.len() * MR * 4 + 4 * m..][..rest.len()];
                for (d, &w) in dst.iter_mut().zip(rest) {
                    *d = w as u8;
                }
            }
            continue;
        }
        // Channel quad `c4`: its `4 * taps2d` weights, written quad by quad.
        for (c4, group) in row.chunks(4 * taps2d).enumerate() {
            let quads = &mut panel[c4 * taps2d * MR * 4..][..taps2d * MR * 4];
            for (t, quad) in quads.chunks_exact_mut(MR * 4).enumerate() {
                let quad = &mut quad[4 * m..][..4];
                for (i, w) in group.iter().skip(t).step_by(taps2d).enumerate() {
                    quad[i] = *w as u8;
                }
            }
        }
    }
}
