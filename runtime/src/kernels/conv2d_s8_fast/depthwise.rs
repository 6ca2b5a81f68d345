//! The banded depthwise path of [`super::conv2d_s8_fast`], taken when the
//! scratch holds [`band_scratch_len`] bytes (the converter's fast tiling);
//! otherwise the direct path, which needs none, runs.
//!
//! Per channel and band of output rows, the input rows the band reads are
//! copied once into scratch as `i16` values `x - zero_point`, zero-padded and
//! split by row and column phase (`row mod sh`, `column mod sw`), so that
//! every kernel tap reads one contiguous run for the whole band: tap `(ky, kx)`
//! of output `(oy, ox)` reads row phase `ky * dh mod sh`, row `oy + ky * dh / sh`
//! of it, column phase `kx * dw mod sw`, column `ox + kx * dw / sw`. Each tap then
//! adds `w * (x - zp)` (exact in `i16`, as in the direct path) to an `i32`
//! accumulator band whose rows have the phase rows' pitch, in one long vector
//! loop (small planes too: a 7x7 output is one run of 7 rows). The columns
//! past the output width are computed and dropped.

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

/// Accumulators kept in registers per run of the band (two `zmm`, four `ymm`).
const LANES: usize = 32;
/// Most kernel taps (`kh * kw`) of the banded path.
const MAX_TAPS: usize = 64;

/// Output rows per band for the phase layout that `scratch_len` bytes hold:
/// `sh * sw` phase arrays of `(rows + (kh - 1) * dh / sh) * pitch + LANES` `i16`
/// values and `rows * pitch + LANES` `i32` accumulators (at most the planned
/// [`Band::rows`]); 0 when not one row fits.
fn rows_that_fit(band: &Band, g: &ConvGeometry, scratch_len: usize) -> usize {
    let [kh, _] = g.window.kernel;
    let (sh, dh) = (g.window.stride[0], g.window.dilation[0]);
    let reach = (kh - 1) * dh / sh;
    let bytes = |rows: usize| {
        let acc = (rows * band.pitch + LANES) * 4;
        let phases = sh * band.phases * ((rows + reach + 1) * band.pitch + LANES) * 2;
        acc + phases + 8
    };
    let mut rows = band.rows;
    while rows > 0 && bytes(rows) > scratch_len {
        rows -= 1;
    }
    rows
}

/// Banded depthwise convolution; `scratch` holds at least [`band_scratch_len`]
/// bytes. Returns false (writing nothing) in the rare geometry where the phase
/// layout does not fit one row in it (the caller runs the direct path).
///
/// The band's rows are split by row phase too (`row mod sh`): output row `r`,
/// tap row `ky` reads row phase `ky * dh mod sh`, row `r + ky * dh / sh` of it,
/// so that with any stride the rows of a band are one run per tap.
#[inline(always)]
pub(super) fn conv_depthwise_banded(
    args: &ConvS8Args,
    output: &mut [i8],
    scratch: &mut [i8],
) -> bool {
    let ConvS8Args {
        input,
        weights,
        bias,
        ref geometry,
        ref quant,
    } = *args;
    let Some(planned) = Band::of(geometry) else {
        return false;
    };
    let band_rows = rows_that_fit(&planned, geometry, scratch.len());
    if band_rows == 0 || geometry.window.kernel[0] * geometry.window.kernel[1] > MAX_TAPS {
        return false;
    }
    let (ins, outs) = (geometry.in_shape, geometry.out_shape);
    let w = &geometry.window;
    let [kh, kw] = w.kernel;
    let [sh, sw] = w.stride;
    let [dh, dw] = w.dilation;
    let cout_g = outs.c / geometry.groups;
    let (in_plane, out_plane) = (ins.h * ins.w, outs.h * outs.w);
    let pitch = planned.pitch;
    // Rows of one (row phase, column phase) array.
    // `LANES` values of slack past each array: a run of `LANES` may end there.
    let phase_rows = band_rows + (kh - 1) * dh / sh;
    let phase_len = phase_rows * pitch + pitch + LANES;
    let (_, words, _) = bytemuck::pod_align_to_mut::<i8, i32>(scratch);
    let (acc_all, rest) = words.split_at_mut(band_rows * pitch + LANES);
    let rows16: &mut [i16] = bytemuck::cast_slice_mut(rest);
    let rows16 = &mut rows16[..sh * sw * phase_len];
    let zp = quant.input_zero_point;
    // Where each tap's run starts in `rows16` (the same for every channel and band).
    let mut starts = [0usize; MAX_TAPS];
    for ky in 0..kh {
        let (p, row) = (ky * dh % sh, ky * dh / sh);
        for kx in 0..kw {
            let (q, off) = ((kx * dw) % sw, (kx * dw) / sw);
            starts[ky * kw + kx] = (p * sw + q) * phase_len + row * pitch + off;
        }
    }
    let starts = &starts[..kh * kw];
    for n in 0..outs.n {
        for oc in 0..outs.c {
            let plane = &input[(n * ins.c + oc / cout_g) * in_plane..][..in_plane];
            let filter = &weights[oc * kh * kw..][..kh * kw];
            let mut taps = [0i16; MAX_TAPS];
            for (t, &w) in taps.iter_mut().zip(filter) {
                *t = w as i16;
            }
            let taps = &taps[..kh * kw];
            let requant = quant.requant_of(oc);
            let b = bias_of(bias, oc);
            let out = &mut output[(n * outs.c + oc) * out_plane..][..out_plane];
            let mut oy0 = 0;
            while oy0 < outs.h {
                let rows = (outs.h - oy0).min(band_rows);
                // Input row of row phase p, row r: oy0 * sh - pad + r * sh + p.
                let iy0 = (oy0 * sh) as isize - w.pad_begin[0] as isize;
                for (pq, phase) in rows16.chunks_exact_mut(phase_len).enumerate() {
                    let (p, q) = (pq / sw, pq % sw);
                    let (phase, slack) = phase.split_at_mut(phase_rows * pitch);
                    slack.fill(0);
                    for (r, dst) in phase.chunks_exact_mut(pitch).enumerate() {
                        let iy = iy0 + (r * sh + p) as isize;
                        if iy < 0 || iy >= ins.h as isize {
                            dst.fill(0);
                            continue;
                        }
                        let src = &plane[iy as usize * ins.w..][..ins.w];
                        widen_strided_row(src, q, sw, w.pad_begin[1], zp, dst);
                    }
                }
                // The band's rows are one run per tap (row `r + ky * dh / sh` of
                // its phase array, pitch `pitch`), summed `LANES` outputs at a
                // time in registers over all the taps.
                let acc = &mut acc_all[..rows * pitch + LANES];
                for (c, out) in acc.chunks_exact_mut(LANES).enumerate() {
                    let mut sums = [b; LANES];
                    for (&start, &wt) in starts.iter().zip(taps) {
                        let src: &[i16; LANES] = rows16[start + c * LANES..][..LANES]
                            .try_into()
                            .expect("LANES values");
                        add_products(&mut sums, src, wt);
                    }
                    out.copy_from_slice(&sums);
                    if (c + 1) * LANES >= rows * pitch {
                        break;
                    }
                }
                let acc = &acc_all[..rows * pitch];
                for (r, acc_row) in acc.chunks_exact(pitch).enumerate() {
                    let dst = &mut out[(oy0 + r) * outs.w..][..outs.w];
                    quant.finish_row(requant, &acc_row[..outs.w], dst);
                }
                oy0 += rows;
            }
        }
    }
    true
}

/// `acc[i] += w * src[i]` with the product formed in `i16` (exact: an int8
/// weight times `|x - zp| <= 255`) and widened: 16-lane multiplies.
#[inline(always)]
fn add_products(acc: &mut [i32; LANES], src: &[i16; LANES], w: i16) {
    for (a, &x) in acc.iter_mut().zip(src) {
        *a = a.wrapping_add(w.wrapping_mul(x) as i32);
    }
}
