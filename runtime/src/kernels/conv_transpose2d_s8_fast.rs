//! Int8 2-D transposed convolution, fast variant; bit-exact with
//! [`super::conv_transpose2d_s8::conv_transpose2d_s8`].
//!
//! **Phase decomposition.** Output pixels are split by phase
//! `(oy mod sh, ox mod sw)`. Within one phase the same kernel taps land on
//! every output (those with `oy + pad - ky * dh` divisible by the stride), and
//! the input row they read is `iy = j + cy(ky)` for the phase's output row
//! `j`: an ordinary stride-1 convolution over the phase's sub-grid with a
//! reduced kernel. Each phase then runs like the panel path of
//! [`super::conv2d_s8_fast`]: receptive fields packed into `i16` K-pair
//! panels tile by tile (no multiplications by the zeros a scatter or a
//! zero-stuffed input would add), the phase's weight taps widened per block of
//! [`MR`] output channels, [`gemm_i16_tile`] micro-kernels, the usual
//! requantization, and a strided store into the phase's output pixels.
//!
//! Integer sums are exact modulo 2^32 in any order, so this equals the
//! reference bit for bit.

use super::conv_transpose_phases::{MAX_PHASE_TAPS, PhaseTaps, axes};
use super::conv2d_s8::bias_of;
use super::conv2d_s8_fast::{MAX_PIXEL_TILE, pixel_tile};
use super::gemm_i16::{MR, NR, TileArgs, gemm_i16_tile};
use super::{ConvGeometry, ConvS8Args};

/// The phase layout: `(K rounded up to 16, pixel tile)`, or `None` when the
/// reference kernel must run (too many taps per phase, or nothing to compute).
fn plan(g: &ConvGeometry) -> Option<(usize, usize)> {
    if g.groups == 0 || g.out_shape.is_empty() {
        return None;
    }
    let [ay, ax] = axes(g);
    let (ty, tx) = (ay.max_taps(), ax.max_taps());
    if ty > MAX_PHASE_TAPS || tx > MAX_PHASE_TAPS {
        return None;
    }
    let kp = g.in_per_group().checked_mul(ty * tx)?.next_multiple_of(16);
    let pixels = ay.phase_len(0).checked_mul(ax.phase_len(0))?;
    Some((kp, pixels.min(pixel_tile(kp))))
}

/// Scratch bytes [`conv_transpose2d_s8_fast`] needs: `2 * (round_up(tile, NR) + MR) * kp + 1`
/// with `kp` the most taps of one phase rounded up to 16 and `tile` the pixel
/// tile for it; 0 when the geometry runs the reference kernel.
pub fn conv_transpose2d_s8_fast_scratch_len(geometry: &ConvGeometry) -> usize {
    match plan(geometry) {
        Some((kp, tile)) => 2 * (tile.next_multiple_of(NR) + MR) * kp + 1,
        None => 0,
    }
}

super::cpu::multiversion! {
    /// Int8 transposed convolution, same contract as
    /// [`super::conv_transpose2d_s8::conv_transpose2d_s8`] and bit-exact with it.
    ///
    /// `scratch` must hold [`conv_transpose2d_s8_fast_scratch_len`] bytes (any
    /// alignment); when that is 0 the reference kernel runs.
    pub fn conv_transpose2d_s8_fast(
        args: &ConvS8Args,
        output: &mut [i8],
        scratch: &mut [i8],
    ) => conv_transpose2d_s8_fast_body;
}

/// The body of [`conv_transpose2d_s8_fast`], compiled once per instruction set.
#[inline(always)]
fn conv_transpose2d_s8_fast_body(args: &ConvS8Args, output: &mut [i8], scratch: &mut [i8]) {
    let Some((kp, tile)) = plan(&args.geometry) else {
        super::conv_transpose2d_s8::conv_transpose2d_s8(args, output);
        return;
    };
    debug_assert!(scratch.len() >= conv_transpose2d_s8_fast_scratch_len(&args.geometry));
    let (_, scratch16, _) = bytemuck::pod_align_to_mut::<i8, i16>(scratch);
    let (b_panels, rest) = scratch16.split_at_mut(tile.next_multiple_of(NR) * kp);
    let a_panel = &mut rest[..MR * kp];
    let [ay, ax] = axes(&args.geometry);
    for py in 0..ay.stride.min(ay.out_len) {
        for px in 0..ax.stride.min(ax.out_len) {
            let phase = Phase {
                args,
                t: PhaseTaps::new([ay, ax], [py, px]),
            };
            phase.run(tile, b_panels, a_panel, output);
        }
    }
}

/// One phase of one call.
struct Phase<'a, 'x> {
    args: &'a ConvS8Args<'x>,
    t: PhaseTaps,
}

impl Phase<'_, '_> {
    #[inline(always)]
    fn run(&self, tile: usize, b_panels: &mut [i16], a_panel: &mut [i16], output: &mut [i8]) {
        let ConvS8Args {
            weights,
            bias,
            ref geometry,
            ref quant,
            ..
        } = *self.args;
        let (ins, outs) = (geometry.in_shape, geometry.out_shape);
        let cin_g = geometry.in_per_group();
        let cout_g = geometry.out_per_group();
        let [kh, kw] = geometry.window.kernel;
        let [sh, sw] = geometry.window.stride;
        let full_taps = cin_g * kh * kw;
        let taps = cin_g * self.t.ny * self.t.nx;
        let k2 = taps.div_ceil(2);
        let block_len = k2 * NR * 2;
        let pixels = self.t.rows * self.t.cols;
        let out_plane = outs.h * outs.w;
        let mut sums = [0i32; MR * MAX_PIXEL_TILE];
        let mut row8 = [0i8; MAX_PIXEL_TILE];
        for n in 0..ins.n {
            for g in 0..geometry.groups {
                let mut p0 = 0;
                while p0 < pixels {
                    let count = (pixels - p0).min(tile);
                    let blocks = count.div_ceil(NR);
                    let ldo = blocks * NR;
                    let b_panels = &mut b_panels[..blocks * block_len];
                    self.pack(n, g * cin_g, p0, count, k2, b_panels);
                    let mut oc0 = g * cout_g;
                    while oc0 < (g + 1) * cout_g {
                        let mb = ((g + 1) * cout_g - oc0).min(MR);
                        let a_panel = &mut a_panel[..k2 * MR * 2];
                        a_panel.fill(0);
                        for m in 0..mb {
                            let filter = &weights[(oc0 + m) * full_taps..][..full_taps];
                            for k in 0..taps {
                                let (icg, b) =
                                    (k / (self.t.ny * self.t.nx), k % (self.t.ny * self.t.nx));
                                let (ky, kx) = (self.t.ty[b / self.t.nx], self.t.tx[b % self.t.nx]);
                                let w = filter[(icg * kh + ky) * kw + kx];
                                a_panel[(k / 2 * MR + m) * 2 + k % 2] = w as i16;
                            }
                        }
                        if k2 == 0 {
                            // No tap lands on this phase: the outputs are the bias.
                            sums[..MR * ldo].fill(0);
                        }
                        for (bi, panel) in b_panels.chunks(block_len.max(1)).enumerate() {
                            if k2 > 0 {
                                let t = TileArgs {
                                    k2,
                                    a: a_panel,
                                    b: panel,
                                    ldb: 2 * NR,
                                };
                                gemm_i16_tile(t, &mut sums[bi * NR..], ldo);
                            }
                        }
                        for m in 0..mb {
                            let oc = oc0 + m;
                            let row = &mut sums[m * ldo..][..count];
                            let b = bias_of(bias, oc);
                            for sum in row.iter_mut() {
                                *sum = sum.wrapping_add(b);
                            }
                            let row8 = &mut row8[..count];
                            quant.finish_row(quant.requant_of(oc), row, row8);
                            let out = &mut output[(n * outs.c + oc) * out_plane..][..out_plane];
                            let (mut j, mut i) = (p0 / self.t.cols, p0 % self.t.cols);
                            for &v in row8.iter() {
                                out[(self.t.py + sh * j) * outs.w + self.t.px + sw * i] = v;
                                i += 1;
                                if i == self.t.cols {
                                    i = 0;
                                    j += 1;
                                }
                            }
                        }
                        oc0 += mb;
                    }
                    p0 += count;
                }
            }
        }
    }

    /// Packs phase pixels `p0..p0 + count` of batch item `n`, input channels
    /// `ic0..`, into `[block][k2][NR][2]` panels of `x - zero_point` (0 where a
    /// tap falls outside the input, past `count` and past the phase's taps).
    #[inline(always)]
    fn pack(&self, n: usize, ic0: usize, p0: usize, count: usize, k2: usize, panels: &mut [i16]) {
        let ConvS8Args {
            input,
            ref geometry,
            ref quant,
            ..
        } = *self.args;
        let ins = geometry.in_shape;
        let in_plane = ins.h * ins.w;
        let zp = quant.input_zero_point;
        let per_ic = self.t.ny * self.t.nx;
        let taps = geometry.in_per_group() * per_ic;
        let block_len = k2 * NR * 2;
        let mut rows = [[0i16; MAX_PIXEL_TILE]; 2];
        for s in 0..k2 {
            for (h, row) in rows.iter_mut().enumerate() {
                let row = &mut row[..count.next_multiple_of(NR)];
                row.fill(0);
                let k = 2 * s + h;
                if k >= taps {
                    continue;
                }
                let (icg, b) = (k / per_ic, k % per_ic);
                let (cy, cx) = (self.t.cy[b / self.t.nx], self.t.cx[b % self.t.nx]);
                let plane = &input[(n * ins.c + ic0 + icg) * in_plane..][..in_plane];
                // Phase columns i with 0 <= i + cx < iw.
                let lo = (-cx).clamp(0, self.t.cols as isize) as usize;
                let hi = (ins.w as isize - cx).clamp(lo as isize, self.t.cols as isize) as usize;
                let (mut j, mut i) = (p0 / self.t.cols, p0 % self.t.cols);
                let mut t = 0;
                while t < count {
                    let seg = (self.t.cols - i).min(count - t);
                    let iy = j as isize + cy;
                    if (0..ins.h as isize).contains(&iy) && hi > lo {
                        let (a, b) = (i.max(lo), (i + seg).min(hi));
                        if b > a {
                            let src = &plane[iy as usize * ins.w..][..ins.w];
                            let start = (a as isize + cx) as usize;
                            let dst = &mut row[t + a - i..t + b - i];
                            for (d, &x) in dst.iter_mut().zip(&src[start..]) {
                                *d = (x as i32 - zp) as i16;
                            }
                        }
                    }
                    t += seg;
                    i = 0;
                    j += 1;
                }
            }
            for (bi, block) in panels.chunks_exact_mut(block_len).enumerate() {
                let dst = &mut block[s * NR * 2..][..NR * 2];
                let (r0, r1) = (&rows[0][bi * NR..][..NR], &rows[1][bi * NR..][..NR]);
                for ((d, &x0), &x1) in dst.chunks_exact_mut(2).zip(r0).zip(r1) {
                    d[0] = x0;
                    d[1] = x1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
