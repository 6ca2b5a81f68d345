//! Int8 2-D max pooling, fast variant; bit-exact with
//! [`super::max_pool2d_s8::max_pool2d_s8`].
//!
//! Separable: for each output row, the contributing input rows are reduced
//! element-wise into one stack row (contiguous, so it vectorizes), then each
//! output takes the maximum of its window's columns of that row. The maximum
//! is exact, so the order of reduction cannot change the result. Input rows
//! wider than [`MAX_ROW`] fall back to the reference.

use super::PoolGeometry;
use super::max_pool2d_s8::max_pool2d_s8;
use super::valid_taps;

/// Widest input row the stack buffer holds.
pub const MAX_ROW: usize = 1024;

super::cpu::multiversion! {
    /// Int8 max pooling, same contract as [`super::max_pool2d_s8::max_pool2d_s8`]
    /// and bit-exact with it.
    pub fn max_pool2d_s8_fast(
        input: &[i8],
        geometry: &PoolGeometry,
        output: &mut [i8],
    ) => max_pool2d_s8_fast_body;
}

/// The body of [`max_pool2d_s8_fast`], compiled once per instruction set.
#[inline(always)]
fn max_pool2d_s8_fast_body(input: &[i8], geometry: &PoolGeometry, output: &mut [i8]) {
    let PoolGeometry {
        in_shape,
        out_shape,
        ref window,
    } = *geometry;
    debug_assert_eq!((in_shape.n, in_shape.c), (out_shape.n, out_shape.c));
    debug_assert!(input.len() >= in_shape.len() && output.len() >= out_shape.len());
    let (ih, iw) = (in_shape.h, in_shape.w);
    // On Cortex-M with the DSP extension only whole 2x2 / stride-2 windows
    // have a fast path (below); other windows run the reference, which keeps
    // the separable code below out of the firmware's flash.
    let mcu = cfg!(all(feature = "arm-dsp", target_arch = "arm"));
    if iw > MAX_ROW || (mcu && !swar_2x2(geometry)) {
        max_pool2d_s8(input, geometry, output);
        return;
    }
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (oh, ow) = (out_shape.h, out_shape.w);
    let in_plane = ih * iw;
    let out_plane = oh * ow;
    let mut rowmax = [i8::MIN; MAX_ROW];
    let rowmax = &mut rowmax[..iw];
    // Output columns whose whole window lies inside the input: ox in first..last.
    let first = pw.div_ceil(sw).min(ow);
    let last = if kw == 0 || iw + pw < (kw - 1) * dw + 1 {
        first
    } else {
        // (max/min, not clamp: `first <= ow` already, and clamp's panic path costs flash.)
        ((iw + pw - (kw - 1) * dw - 1) / sw + 1).max(first).min(ow)
    };
    for plane_index in 0..out_shape.n * out_shape.c {
        let plane = &input[plane_index * in_plane..][..in_plane];
        let out = &mut output[plane_index * out_plane..][..out_plane];
        for (oy, out_row) in out.chunks_exact_mut(ow.max(1)).take(oh).enumerate() {
            if mcu {
                // Whole 2x2 windows from two input rows, four bytes at a time.
                let iy = oy * 2;
                max_2x2_rows(
                    &plane[iy * iw..][..iw],
                    &plane[(iy + 1) * iw..][..iw],
                    out_row,
                );
                continue;
            }
            let (ky0, ky1) = valid_taps(oy, kh, sh, dh, ph, ih);
            rowmax.fill(i8::MIN);
            for ky in ky0..ky1 {
                let row = &plane[(oy * sh + ky * dh - ph) * iw..][..iw];
                for (m, &x) in rowmax.iter_mut().zip(row) {
                    *m = (*m).max(x);
                }
            }
            let rowmax = &*rowmax;
            let edge = |ox: usize| {
                let (kx0, kx1) = valid_taps(ox, kw, sw, dw, pw, iw);
                (kx0..kx1).fold(i8::MIN, |best, kx| best.max(rowmax[ox * sw + kx * dw - pw]))
            };
            for (ox, o) in out_row[..first].iter_mut().enumerate() {
                *o = edge(ox);
            }
            if kw == 2 && sw == 2 && dw == 1 && first < last {
                // The common 2x2 / stride 2 window, written so that it vectorizes
                // (`first` is capped at `ow`, so only a non-empty interior has
                // `first * 2 >= pw`).
                let start = first * 2 - pw;
                let pairs = &rowmax[start..start + 2 * (last - first)];
                for (o, pair) in out_row[first..last].iter_mut().zip(pairs.chunks_exact(2)) {
                    *o = pair[0].max(pair[1]);
                }
            } else {
                for (ox, o) in out_row.iter_mut().enumerate().take(last).skip(first) {
                    let x0 = ox * sw - pw;
                    *o = (0..kw).fold(i8::MIN, |best, kx| best.max(rowmax[x0 + kx * dw]));
                }
            }
            for (ox, o) in out_row.iter_mut().enumerate().skip(last) {
                *o = edge(ox);
            }
        }
    }
}

/// True for 2x2 windows with stride 2, no dilation and no padding, every
/// window inside the input: [`max_2x2_rows`] over each pair of input rows.
fn swar_2x2(g: &PoolGeometry) -> bool {
    let w = &g.window;
    (w.kernel, w.stride, w.dilation, w.pad_begin) == ([2, 2], [2, 2], [1, 1], [0, 0])
        && 2 * g.out_shape.h <= g.in_shape.h
        && 2 * g.out_shape.w <= g.in_shape.w
}

/// `out[i] = max(r0[2i], r0[2i + 1], r1[2i], r1[2i + 1])` (both rows hold at
/// least `2 * out.len()` values): eight input columns of both rows per step,
/// as byte lanes of words ([`max_s8x4`]).
#[inline(always)]
fn max_2x2_rows(r0: &[i8], r1: &[i8], out: &mut [i8]) {
    let n = out.len();
    let word =
        |row: &[i8], at: usize| u32::from_le_bytes(core::array::from_fn(|i| row[at + i] as u8));
    let (quads, tail) = out.as_chunks_mut::<4>();
    for (q, o) in quads.iter_mut().enumerate() {
        let at = 8 * q;
        let v0 = max_s8x4(word(r0, at), word(r1, at));
        let v1 = max_s8x4(word(r0, at + 4), word(r1, at + 4));
        // Lanes 0 and 2 of each hold the maxima of column pairs.
        let h0 = max_s8x4(v0, v0 >> 8);
        let h1 = max_s8x4(v1, v1 >> 8);
        let packed =
            (h0 & 0xff) | ((h0 >> 8) & 0xff00) | ((h1 & 0xff) << 16) | ((h1 << 8) & 0xff00_0000);
        *o = packed.to_le_bytes().map(|b| b as i8);
    }
    let done = n - tail.len();
    for (i, o) in tail.iter_mut().enumerate() {
        let x = 2 * (done + i);
        *o = r0[x].max(r0[x + 1]).max(r1[x]).max(r1[x + 1]);
    }
}

/// The signed maximum of each of the four byte lanes of `a` and `b`: `SSUB8`
/// (per-lane `a >= b` flags) and `SEL` on Cortex-M with the DSP extension.
#[inline(always)]
fn max_s8x4(a: u32, b: u32) -> u32 {
    #[cfg(all(feature = "arm-dsp", target_arch = "arm"))]
    {
        let out: u32;
        // SAFETY: register-only DSP instructions (the flags they set and read
        // stay inside this block); the `arm-dsp` feature promises a CPU with them.
        unsafe {
            core::arch::asm!("ssub8 {o}, {a}, {b}", "sel {o}, {a}, {b}",
                o = out(reg) out, a = in(reg) a, b = in(reg) b,
                options(pure, nomem, nostack));
        }
        out
    }
    #[cfg(not(all(feature = "arm-dsp", target_arch = "arm")))]
    {
        let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
        u32::from_le_bytes(core::array::from_fn(|i| (a[i] as i8).max(b[i] as i8) as u8))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::super::{Shape4, Window2d};
    use super::*;
    use std::vec;

    /// Random geometries (padding, stride, dilation, ceil-mode extra columns,
    /// 2x2/stride-2) agree with the reference, dispatched and portable copies both.
    #[test]
    fn bit_exact_with_reference() {
        let mut rng = XorShift(0x9001);
        let mut checked = 0;
        for case in 0..600 {
            let (kh, kw) = (rng.urange(1, 4), rng.urange(1, 4));
            let (sh, sw) = (rng.urange(1, 3), rng.urange(1, 3));
            let (dh, dw) = if case % 4 == 0 {
                (rng.urange(1, 2), rng.urange(1, 2))
            } else {
                (1, 1)
            };
            let (kh, kw, sh, sw) = if case % 3 == 0 {
                (2, 2, 2, 2)
            } else {
                (kh, kw, sh, sw)
            };
            let (ph, pw) = (rng.urange(0, kh - 1), rng.urange(0, kw - 1));
            let in_shape = Shape4::new(
                rng.urange(1, 2),
                rng.urange(1, 3),
                rng.urange(1, 12),
                rng.urange(1, 40),
            );
            let span = |k: usize, d: usize| (k - 1) * d + 1;
            let extra = rng.urange(0, 1); // ceil_mode: one more (partial) window
            let out = |i: usize, k: usize, s: usize, d: usize, p: usize| {
                (i + 2 * p)
                    .checked_sub(span(k, d))
                    .map(|v| v / s + 1 + extra)
            };
            let (Some(oh), Some(ow)) = (
                out(in_shape.h, kh, sh, dh, ph),
                out(in_shape.w, kw, sw, dw, pw),
            ) else {
                continue;
            };
            // Every window must keep at least one tap inside (ONNX guarantees it).
            if (oh - 1) * sh >= in_shape.h + ph || (ow - 1) * sw >= in_shape.w + pw {
                continue;
            }
            let out_shape = Shape4::new(in_shape.n, in_shape.c, oh, ow);
            let window = Window2d {
                kernel: [kh, kw],
                stride: [sh, sw],
                dilation: [dh, dw],
                pad_begin: [ph, pw],
            };
            let input = rng.i8s(in_shape.len(), -128, 127);
            let geometry = PoolGeometry {
                in_shape,
                out_shape,
                window,
            };
            let mut want = vec![0i8; out_shape.len()];
            max_pool2d_s8(&input, &geometry, &mut want);
            let mut got = vec![0i8; out_shape.len()];
            max_pool2d_s8_fast(&input, &geometry, &mut got);
            assert_eq!(
                got, want,
                "case {case}: {in_shape:?} -> {out_shape:?} {window:?}"
            );
            got.fill(0);
            max_pool2d_s8_fast_body(&input, &geometry, &mut got);
            assert_eq!(got, want, "case {case} (portable): {in_shape:?} {window:?}");
            checked += 1;
        }
        assert!(checked > 300, "only {checked} geometries checked");
    }

    /// The Cortex-M 2x2 row kernel (portable stand-in for `SSUB8`/`SEL` off
    /// Cortex-M) equals the plain maximum, extremes and every tail length included.
    #[test]
    fn max_2x2_rows_equals_plain_maximum() {
        let mut rng = XorShift(0x2A2);
        for len in 0..40 {
            let r0 = rng.i8s(2 * len + len % 2, -128, 127);
            let r1 = if len % 3 == 0 {
                vec![-128; r0.len()]
            } else {
                rng.i8s(r0.len(), -128, 127)
            };
            let mut got = vec![0i8; len];
            max_2x2_rows(&r0, &r1, &mut got);
            for (i, &g) in got.iter().enumerate() {
                let want = r0[2 * i]
                    .max(r0[2 * i + 1])
                    .max(r1[2 * i])
                    .max(r1[2 * i + 1]);
                assert_eq!(g, want, "len {len}, output {i}");
            }
        }
        assert_eq!(max_s8x4(0x80_7f_01_ff, 0x7f_80_ff_01), 0x7f_7f_01_01);
    }
}
