//! The banded depthwise path of [`super::conv2d_s8_fast`], taken when the
//! scratch holds [`band_scratch_len`] bytes (the converter's fast tiling);
//! otherwise the direct path, which needs none, runs.
//!
//! Per channel and band of output rows, the input rows the band reads are
//! copied once into scratch as `i16` values `x - zero_point`, zero-padded and
//! split by column phase (`column mod stride`), so that every kernel tap reads
//! one contiguous run for a whole output row: tap `(ky, kx)` of output
//! `(oy, ox)` reads phase `kx * dw mod sw`, row `oy * sh + ky * dh`, column
//! `ox + kx * dw / sw`. Each tap then adds `w * (x - zp)` (exact in `i16`, as in
//! the direct path) to an `i32` accumulator band whose rows have the phase
//! rows' pitch; with a row stride of 1 the rows of a band are one run, so each
//! tap is a single long vector loop. The columns past the output width are
//! computed and dropped.

use super::super::conv2d_s8::bias_of;
use super::super::{ConvGeometry, ConvS8Args};
use super::widen_strided_row;

/// Target accumulators per band (16 KiB of `i32`).
const BAND_VALUES: usize = 4096;

/// The band layout of a depthwise geometry.
#[derive(Clone, Copy)]
struct Band {
    /// Columns of a phase row (and the accumulator pitch).
    pitch: usize,
    /// Output rows per band.
    rows: usize,
    /// Input rows per band.
    in_rows: usize,
    /// Column phases (the column stride).
    phases: usize,
}

impl Band {
    fn of(g: &ConvGeometry) -> Option<Band> {
        let w = &g.window;
        let [kh, kw] = w.kernel;
        let [sh, sw] = w.stride;
        let [dh, dw] = w.dilation;
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return None;
        }
        let pitch = g
            .out_shape
            .w
            .checked_add(((kw - 1).checked_mul(dw)?) / sw + 1)?;
        let rows = (BAND_VALUES / pitch).clamp(1, g.out_shape.h.max(1));
        let in_rows = (rows - 1)
            .checked_mul(sh)?
            .checked_add((kh - 1).checked_mul(dh)? + 1)?;
        Some(Band {
            pitch,
            rows,
            in_rows,
            phases: sw,
        })
    }

    /// Bytes: the `i32` accumulators, the `i16` phase rows (rounded to whole
    /// words) and 3 bytes of alignment slack.
    fn bytes(&self) -> Option<usize> {
        let acc = self.rows.checked_mul(self.pitch)?.checked_mul(4)?;
        let rows = self
            .phases
            .checked_mul(self.in_rows)?
            .checked_mul(self.pitch)?;
        acc.checked_add(rows.checked_mul(2)?)?.checked_add(8)
    }
}

/// Scratch bytes the banded path needs for this depthwise geometry (0 when
/// it cannot run it).
pub(super) fn band_scratch_len(geometry: &ConvGeometry) -> usize {
    Band::of(geometry).and_then(|b| b.bytes()).unwrap_or(0)
}

/// Banded depthwise convolution; `scratch` holds at least [`band_scratch_len`] bytes.
#[inline(always)]
pub(super) fn conv_depthwise_banded(args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8]) {
    let ConvS8Args {
        input,
        weights,
        bias,
        ref geometry,
        ref quant,
    } = *args;
    let Some(band) = Band::of(geometry) else {
        return;
    };
    let (ins, outs) = (geometry.in_shape, geometry.out_shape);
    let w = &geometry.window;
    let [kh, kw] = w.kernel;
    let [sh, sw] = w.stride;
    let [dh, dw] = w.dilation;
    let cout_g = outs.c / geometry.groups;
    let (in_plane, out_plane) = (ins.h * ins.w, outs.h * outs.w);
    let pitch = band.pitch;
    let (_, words, _) = bytemuck::pod_align_to_mut::<i8, i32>(scratch);
    let (acc_all, rest) = words.split_at_mut(band.rows * pitch);
    let rows16: &mut [i16] = bytemuck::cast_slice_mut(rest);
    let phase_len = band.in_rows * pitch;
    let rows16 = &mut rows16[..band.phases * phase_len];
    let zp = quant.input_zero_point;
    for n in 0..outs.n {
        for oc in 0..outs.c {
            let plane = &input[(n * ins.c + oc / cout_g) * in_plane..][..in_plane];
            let filter = &weights[oc * kh * kw..][..kh * kw];
            let requant = quant.requant_of(oc);
            let b = bias_of(bias, oc);
            let out = &mut output[(n * outs.c + oc) * out_plane..][..out_plane];
            let mut oy0 = 0;
            while oy0 < outs.h {
                let rows = (outs.h - oy0).min(band.rows);
                // Input row of band row r: oy0 * sh - ph + r.
                let iy0 = (oy0 * sh) as isize - w.pad_begin[0] as isize;
                for (q, phase) in rows16.chunks_exact_mut(phase_len).enumerate() {
                    for (r, dst) in phase.chunks_exact_mut(pitch).enumerate() {
                        let iy = iy0 + r as isize;
                        if iy < 0 || iy >= ins.h as isize {
                            dst.fill(0);
                            continue;
                        }
                        let src = &plane[iy as usize * ins.w..][..ins.w];
                        widen_strided_row(src, q, sw, w.pad_begin[1], zp, dst);
                    }
                }
                let acc = &mut acc_all[..rows * pitch];
                acc.fill(b);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wt = filter[ky * kw + kx] as i16;
                        let (q, off) = ((kx * dw) % sw, (kx * dw) / sw);
                        let phase = &rows16[q * phase_len..][..phase_len];
                        if sh == 1 {
                            // One run over the band: row r + ky * dh, pitch `pitch`.
                            let src = &phase[ky * dh * pitch + off..];
                            add_products(acc, src, wt);
                        } else {
                            for (r, acc_row) in acc.chunks_exact_mut(pitch).enumerate() {
                                let src = &phase[(r * sh + ky * dh) * pitch + off..];
                                add_products(&mut acc_row[..outs.w], src, wt);
                            }
                        }
                    }
                }
                for (r, acc_row) in acc.chunks_exact(pitch).enumerate() {
                    let dst = &mut out[(oy0 + r) * outs.w..][..outs.w];
                    quant.finish_row(requant, &acc_row[..outs.w], dst);
                }
                oy0 += rows;
            }
        }
    }
}

/// `acc[i] += w * src[i]` with the product formed in `i16` (exact: an int8
/// weight times `|x - zp| <= 255`) and widened: 16-lane multiplies.
#[inline(always)]
fn add_products(acc: &mut [i32], src: &[i16], w: i16) {
    for (a, &x) in acc.iter_mut().zip(src) {
        *a = a.wrapping_add(w.wrapping_mul(x) as i32);
    }
}
