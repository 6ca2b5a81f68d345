//! The phase-decomposed float transposed convolution: each phase
//! `(oy mod sh, ox mod sw)` is a stride-1 convolution over its output sub-grid
//! with the taps that land on it ([`super::super::conv_transpose_phases`]), run
//! as a GEMM of the phase's weights `[cout_g][K]` (gathered and widened once per
//! phase and group) by its receptive fields `[K][tile]` (gathered per tile of
//! phase pixels, zeros where a tap falls outside the input), with bias and
//! clamp in the GEMM's epilogue, then stored into the phase's pixels. No
//! multiplication by the zeros a scatter or a zero-stuffed input would add,
//! and the GEMM runs on the float micro-kernel where the CPU has it.
//!
//! Sums run in a different order than the gather form
//! ([`super::conv_transpose2d_f32`]), so results differ by float rounding only.

use super::super::conv_transpose_phases::{Axis, MAX_PHASE_TAPS, PhaseTaps, axes};
use super::super::conv2d_f32::gemm::{GemmF32, gemm};
use super::super::{ConvF32Args, ConvGeometry, FloatWeight};

/// Phase pixels per GEMM tile.
const TILE: usize = 256;

/// The phase plan: `(K, tile)` with `K` the most taps of one phase times the
/// input channels per group, or `None` where the gather form must run (too
/// many taps per phase, nothing to compute).
fn plan(g: &ConvGeometry) -> Option<(usize, usize)> {
    if g.groups == 0 || g.out_shape.is_empty() || g.in_shape.is_empty() {
        return None;
    }
    let [ay, ax] = axes(g);
    let (ty, tx) = (ay.max_taps(), ax.max_taps());
    if ty > MAX_PHASE_TAPS || tx > MAX_PHASE_TAPS {
        return None;
    }
    let k = g.in_per_group().checked_mul(ty * tx)?;
    let pixels = ay.phase_len(0).checked_mul(ax.phase_len(0))?;
    Some((k, pixels.clamp(1, TILE)))
}

/// Scratch floats of the phase-decomposed kernel: the phase's weights
/// `out_per_group * K`, a tile of receptive fields `K * tile` and a tile of
/// outputs `out_per_group * tile`; 0 where only the gather form runs (and
/// where that sum, in bytes, would overflow `usize`).
pub fn conv_transpose2d_f32_scratch_len(geometry: &ConvGeometry) -> usize {
    let floats = |(k, tile): (usize, usize)| {
        let cout_g = geometry.out_per_group();
        let sum = cout_g.checked_mul(k)?.checked_add(k.checked_mul(tile)?)?;
        let sum = sum.checked_add(cout_g.checked_mul(tile)?)?;
        // Its bytes must fit too (the op checks `4 * len`).
        sum.checked_mul(4).map(|_| sum)
    };
    plan(geometry).and_then(floats).unwrap_or(0)
}

/// [`super::conv_transpose2d_f32`] by phases; `scratch` holds at least
/// [`conv_transpose2d_f32_scratch_len`] floats (nonzero). `fast: false` keeps
/// the GEMM on its portable tiles.
pub fn conv_transpose2d_f32_phases<W: FloatWeight>(
    args: &ConvF32Args<W>,
    output: &mut [f32],
    scratch: &mut [f32],
    fast: bool,
) {
    // One copy of the driver for every weight type: only the gather of each
    // phase's weights reads them.
    let plain = ConvF32Args::<f32> {
        input: args.input,
        weights: &[],
        bias: args.bias,
        geometry: args.geometry,
        clamp: args.clamp,
    };
    phases(&plain, &|i| args.weights[i].to_f32(), output, scratch, fast);
}

/// [`conv_transpose2d_f32_phases`] with the weights read through `weight`
/// (`args.weights` is unused).
#[inline(never)]
fn phases(
    args: &ConvF32Args<f32>,
    weight: &dyn Fn(usize) -> f32,
    output: &mut [f32],
    scratch: &mut [f32],
    fast: bool,
) {
    let geometry = &args.geometry;
    let (k_max, tile) = plan(geometry).expect("a phase plan (nonzero scratch length)");
    assert!(scratch.len() >= conv_transpose2d_f32_scratch_len(geometry));
    let cout_g = geometry.out_per_group();
    let (w_phase, rest) = scratch.split_at_mut(cout_g * k_max);
    let (cols, out_tile) = rest.split_at_mut(k_max * tile);
    let [ay, ax] = axes(geometry);
    for py in 0..ay.stride.min(ay.out_len) {
        for px in 0..ax.stride.min(ax.out_len) {
            let phase = Phase::new(args, [ay, ax], [py, px]);
            for g in 0..geometry.groups {
                let k = phase.weights(g, weight, w_phase);
                for n in 0..geometry.in_shape.n {
                    let mut p0 = 0;
                    while p0 < phase.pixels() {
                        let count = (phase.pixels() - p0).min(tile);
                        let cols = &mut cols[..k * count];
                        phase.gather(n, g, p0, count, cols);
                        let out_tile = &mut out_tile[..cout_g * count];
                        let bias = args.bias.map(|b| &b[g * cout_g..][..cout_g]);
                        if k == 0 {
                            // No tap lands on this phase: the outputs are the bias.
                            for (m, row) in out_tile.chunks_exact_mut(count).enumerate() {
                                row.fill(args.clamp.apply(bias.map_or(0.0, |b| b[m])));
                            }
                        } else {
                            let gemm_args = GemmF32 {
                                w: &w_phase[..cout_g * k],
                                k,
                                col: cols,
                                np: count,
                                bias,
                                clamp: args.clamp,
                            };
                            gemm(&gemm_args, out_tile, fast);
                        }
                        phase.store(n, g, p0, count, out_tile, output);
                        p0 += count;
                    }
                }
            }
        }
    }
}

/// One phase of one call.
struct Phase<'a, 'x> {
    args: &'a ConvF32Args<'x, f32>,
    t: PhaseTaps,
}

impl<'a, 'x> Phase<'a, 'x> {
    fn new(args: &'a ConvF32Args<'x, f32>, axes: [Axis; 2], phase: [usize; 2]) -> Self {
        Phase {
            args,
            t: PhaseTaps::new(axes, phase),
        }
    }

    fn pixels(&self) -> usize {
        self.t.rows * self.t.cols
    }

    /// Writes group `g`'s weights of this phase's taps, widened, as
    /// `[cout_g][K]` with `k = (ic * ny + a) * nx + b`; returns `K`.
    fn weights(&self, g: usize, weight: &dyn Fn(usize) -> f32, w_phase: &mut [f32]) -> usize {
        let geometry = &self.args.geometry;
        let (cin_g, cout_g) = (geometry.in_per_group(), geometry.out_per_group());
        let [kh, kw] = geometry.window.kernel;
        let k = cin_g * self.t.ny * self.t.nx;
        for (m, row) in w_phase.chunks_exact_mut(k.max(1)).take(cout_g).enumerate() {
            let filter = (g * cout_g + m) * cin_g * kh * kw;
            let mut t = 0;
            for ic in 0..cin_g {
                for &ky in &self.t.ty[..self.t.ny] {
                    for &kx in &self.t.tx[..self.t.nx] {
                        row[t] = weight(filter + (ic * kh + ky) * kw + kx);
                        t += 1;
                    }
                }
            }
        }
        k
    }

    /// Fills `cols` (`[K][count]`) with the receptive fields of phase pixels
    /// `p0..p0 + count` of batch item `n`, group `g`; 0 where a tap is outside.
    fn gather(&self, n: usize, g: usize, p0: usize, count: usize, cols: &mut [f32]) {
        let geometry = &self.args.geometry;
        let ins = geometry.in_shape;
        let cin_g = geometry.in_per_group();
        let in_plane = ins.h * ins.w;
        let mut rows = cols.chunks_exact_mut(count);
        for ic in 0..cin_g {
            let plane = &self.args.input[(n * ins.c + g * cin_g + ic) * in_plane..][..in_plane];
            for &cy in &self.t.cy[..self.t.ny] {
                for &cx in &self.t.cx[..self.t.nx] {
                    let row = rows.next().expect("K rows");
                    // Phase columns i with 0 <= i + cx < iw.
                    let lo = (-cx).clamp(0, self.t.cols as isize) as usize;
                    let hi =
                        (ins.w as isize - cx).clamp(lo as isize, self.t.cols as isize) as usize;
                    let (mut j, mut i) = (p0 / self.t.cols, p0 % self.t.cols);
                    let mut t = 0;
                    while t < count {
                        let seg = (self.t.cols - i).min(count - t);
                        let dst = &mut row[t..t + seg];
                        let iy = j as isize + cy;
                        let (a, b) = (i.max(lo).min(i + seg), (i + seg).min(hi).max(i));
                        if !(0..ins.h as isize).contains(&iy) || b <= a {
                            dst.fill(0.0);
                        } else {
                            let src = &plane[iy as usize * ins.w..][..ins.w];
                            let start = (a as isize + cx) as usize;
                            dst[..a - i].fill(0.0);
                            dst[a - i..b - i].copy_from_slice(&src[start..start + (b - a)]);
                            dst[b - i..].fill(0.0);
                        }
                        t += seg;
                        i = 0;
                        j += 1;
                    }
                }
            }
        }
    }

    /// Stores `out_tile` (`[cout_g][count]`) into the phase's output pixels.
    fn store(
        &self,
        n: usize,
        g: usize,
        p0: usize,
        count: usize,
        out_tile: &[f32],
        output: &mut [f32],
    ) {
        let outs = self.args.geometry.out_shape;
        let [sh, sw] = self.args.geometry.window.stride;
        let cout_g = self.args.geometry.out_per_group();
        let out_plane = outs.h * outs.w;
        for (m, row) in out_tile.chunks_exact(count).enumerate() {
            let oc = g * cout_g + m;
            let out = &mut output[(n * outs.c + oc) * out_plane..][..out_plane];
            let (mut j, mut i) = (p0 / self.t.cols, p0 % self.t.cols);
            let mut t = 0;
            while t < count {
                let seg = (self.t.cols - i).min(count - t);
                let start = (self.t.py + sh * j) * outs.w + self.t.px + sw * i;
                let dst = out[start..].iter_mut().step_by(sw);
                for (d, &v) in dst.zip(&row[t..t + seg]) {
                    *d = v;
                }
                t += seg;
                i = 0;
                j += 1;
            }
        }
    }
}
