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
    if iw > MAX_ROW {
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
}
