//! The VNNI panel path of [`super::conv2d_s8_fast`] (x86-64 with AVX-512 VNNI or
//! AVX-VNNI): the panel path's tiling with `u8` activation quads and
//! [`gemm_u8s8_tile`] (`vpdpbusd`, four multiply-adds per 32-bit lane) in place
//! of `i16` pairs and `vpmaddwd`.
//!
//! For each tile of output pixels the receptive fields are packed once into
//! `[k4][tile][4]` `u8` panels holding `x + 128` (a padding tap holds
//! `zero_point + 128`, what it would hold as an input equal to the zero point);
//! for each block of [`MR`] output channels the weights are copied into a
//! `[k4][MR][4]` panel, and their sums give the correction
//! `bias - (zero_point + 128) * sum(w)`, so that with wrapping `i32` arithmetic
//! `sum(w * (x + 128)) + correction` equals the reference's
//! `bias + sum(w * (x - zero_point))` bit for bit. The requantization is the
//! panel path's.

use super::super::conv2d_s8::bias_of;
use super::super::gemm_u8s8::{MR, NR, QuadTile, gemm_u8s8_tile, interleave_quads, quad_offset};
use super::super::{ConvGeometry, ConvS8Args};
use super::panel::{Packer, Tap};
use super::{MAX_PIXEL_TILE, PanelValue};

/// Scratch bytes the VNNI panel path needs for tiles of `tile` pixels:
/// `round_up(tile, NR) * 4 * k4` activation bytes and `4 * k4 * MR` weight
/// bytes (`k4 = ceil(K / 4)`), never more than the `i16` panel path's
/// [`super::panel::panel_tile`] reserves for the same tile.
pub(super) fn scratch_len(geometry: &ConvGeometry, tile: usize) -> usize {
    let k4 = taps_of(geometry).div_ceil(4);
    (tile.next_multiple_of(NR) + MR) * 4 * k4
}

fn taps_of(geometry: &ConvGeometry) -> usize {
    let w = &geometry.window;
    geometry.in_per_group() * w.kernel[0] * w.kernel[1]
}

/// VNNI panel path for two or more input channels per group; the input zero
/// point must be an int8 value (the caller checks).
#[inline(always)]
pub(super) fn conv_panel_u8(args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8], tile: usize) {
    let ConvS8Args {
        input,
        weights,
        bias,
        ref geometry,
        ref quant,
    } = *args;
    let zp = quant.input_zero_point;
    debug_assert!((-128..=127).contains(&zp));
    let packer = Packer::new(geometry, zp);
    let taps = packer.taps;
    let k4 = taps.div_ceil(4);
    debug_assert!(weights.len() >= geometry.out_shape.c * taps);
    let (cout_g, groups) = (geometry.out_per_group(), geometry.groups);
    let pixels = geometry.out_shape.h * geometry.out_shape.w;
    let scratch: &mut [u8] = bytemuck::cast_slice_mut(scratch);
    let (b_panel, rest) = scratch.split_at_mut(tile.next_multiple_of(NR) * 4 * k4);
    let a_panel: &mut [i8] = bytemuck::cast_slice_mut(&mut rest[..k4 * MR * 4]);
    let mut sums = [0i32; MR * MAX_PIXEL_TILE];
    for n in 0..geometry.out_shape.n {
        for g in 0..groups {
            let mut p0 = 0;
            while p0 < pixels {
                let count = (pixels - p0).min(tile);
                let ldo = count.next_multiple_of(NR);
                let ldb = 4 * ldo;
                let b_panel = &mut b_panel[..k4 * ldb];
                pack_quads(&packer, input, n, g * packer.cin_g, p0, count, b_panel);
                let end = (g + 1) * cout_g;
                let mut oc0 = g * cout_g;
                while oc0 < end {
                    let mb = (end - oc0).min(MR);
                    let weight_sums =
                        quad_weights(&weights[oc0 * taps..][..mb * taps], taps, a_panel);
                    for j in (0..ldo).step_by(NR) {
                        let t = QuadTile {
                            k4,
                            a: a_panel,
                            b: &b_panel[4 * j..],
                            ldb,
                        };
                        gemm_u8s8_tile(t, &mut sums[j..], ldo);
                    }
                    for m in 0..mb {
                        let oc = oc0 + m;
                        let offset = quad_offset(bias_of(bias, oc), zp, weight_sums[m]);
                        let start = (n * geometry.out_shape.c + oc) * pixels + p0;
                        let (row, out) =
                            (&mut sums[m * ldo..][..count], &mut output[start..][..count]);
                        quant.finish_row_with(oc, offset, row, out);
                    }
                    oc0 += mb;
                }
                p0 += count;
            }
        }
    }
}

/// Copies up to [`MR`] weight rows of `taps` values (`rows.len() / taps` of
/// them) into the `[k4][MR][4]` panel (missing rows and the taps past `K` are
/// 0) and returns each row's sum.
#[inline(always)]
fn quad_weights(rows: &[i8], taps: usize, panel: &mut [i8]) -> [i32; MR] {
    let k4 = taps.div_ceil(4);
    let panel = &mut panel[..k4 * MR * 4];
    let count = rows.len() / taps.max(1);
    if count < MR || !taps.is_multiple_of(4) {
        panel.fill(0);
    }
    let mut sums = [0i32; MR];
    for (m, sum) in sums.iter_mut().enumerate().take(count) {
        let row = &rows[m * taps..][..taps];
        for (s, quad) in row.chunks(4).enumerate() {
            panel[(s * MR + m) * 4..][..quad.len()].copy_from_slice(quad);
        }
        *sum = row.iter().fold(0i32, |acc, &w| acc.wrapping_add(w as i32));
    }
    sums
}

/// Fills `panel` (`[k4][ldb / 4][4]`, `ldb = 4 * round_up(count, NR)`) with
/// output pixels `p0..p0 + count` of batch item `n`, input channels
/// `ic0..ic0 + cin_g`, as `u8` quads.
#[inline(always)]
fn pack_quads(
    packer: &Packer,
    input: &[i8],
    n: usize,
    ic0: usize,
    p0: usize,
    count: usize,
    panel: &mut [u8],
) {
    let geometry = packer.geometry();
    let ins = geometry.in_shape;
    let in_plane = ins.h * ins.w;
    let planes = &input[(n * ins.c + ic0) * in_plane..][..packer.cin_g * in_plane];
    let width = count.next_multiple_of(NR);
    let ow = geometry.out_shape.w.max(1);
    let first = (p0 / ow, p0 % ow);
    let mut tap = Tap::default();
    let mut rows = [[0u8; MAX_PIXEL_TILE]; 4];
    for (s, dst) in panel.chunks_exact_mut(4 * width).enumerate() {
        for (h, row) in rows.iter_mut().enumerate() {
            let row = &mut row[..width];
            if 4 * s + h >= packer.taps {
                // A tap past `K`: its weight is 0.
                row.fill(0);
            } else if in_plane == 0 {
                // An empty input plane: every tap is padding.
                row.fill(PanelValue::padding(packer.zero_point()));
            } else {
                packer.fill_row(planes, in_plane, tap, first, count, row);
                tap.advance(geometry.window.kernel);
            }
        }
        let [r0, r1, r2, r3] = &rows;
        interleave_quads(
            [&r0[..width], &r1[..width], &r2[..width], &r3[..width]],
            dst,
        );
    }
}
