//! `u8 x i8` convolution micro-kernels that read a channel-quad band of the
//! input in place (no im2col), for CPUs with VNNI (`vpdpbusd`): the inner loop
//! of the x86-64 banded int8 convolution (`conv2d_s8_fast/band_u8.rs`).
//!
//! The band holds the input rows one band of output rows reads, as `x + 128`
//! (`u8`), channels grouped by four and interleaved: `[c4][row][phase][wq][4]`,
//! one column phase per horizontal stride step, so that the taps of
//! [`NR`] consecutive output pixels in one row are 64 consecutive bytes for every
//! channel quad and kernel tap. A tile sums over channel quads, kernel rows and
//! kernel columns, one `vpdpbusd` per output-channel and step: with wrapping
//! `i32` sums, exactly as the reference (the caller applies the `+128` and
//! zero-point correction, as for the quad panels of [`super::gemm_u8s8`]).

/// Output channels per tile.
pub(crate) const MR: usize = 8;
/// Output pixels per tile (consecutive, in one output row).
pub(crate) const NR: usize = 16;

/// The operands of one [`band_tile`] call.
#[derive(Clone, Copy)]
pub(crate) struct BandTile<'a> {
    /// The band, `[c4][row][phase][wq][4]`.
    pub x: &'a [u8],
    /// Offset in `x` of the tile's first pixel for channel quad 0 and tap (0, 0).
    pub base: usize,
    /// Channel quads summed.
    pub c4: usize,
    /// Bytes from one channel quad's plane to the next.
    pub plane: usize,
    /// Offset of each kernel row (`kh` of them).
    pub rows: &'a [usize],
    /// Offset of each kernel column (`kw` of them): its phase and column.
    pub cols: &'a [usize],
    /// Weights `[c4][kh][kw][MR][4]`.
    pub w: &'a [i8],
}

impl BandTile<'_> {
    /// Panics unless every load the tile makes is inside `x` and `w`.
    #[inline(always)]
    fn check(&self) {
        let steps = self.c4 * self.rows.len() * self.cols.len();
        assert!(
            self.w.len() >= steps * MR * 4,
            "band tile: weights too short"
        );
        if steps > 0 {
            let last_row = self.rows.iter().copied().max().unwrap_or(0);
            let last_col = self.cols.iter().copied().max().unwrap_or(0);
            let end = self.base + (self.c4 - 1) * self.plane + last_row + last_col + 4 * NR;
            assert!(end <= self.x.len(), "band tile: reads past the band");
        }
    }
}

/// `out[m * ldo + j]` = the tile's sum for channel `m < MR`, pixel `j < NR`,
/// with the best variant this CPU runs; `out` holds at least
/// `(MR - 1) * ldo + NR` values.
#[inline(always)]
pub(crate) fn band_tile(t: BandTile<'_>, out: &mut [i32], ldo: usize) {
    t.check();
    let out = &mut out[..(MR - 1) * ldo + NR];
    #[cfg(target_arch = "x86_64")]
    {
        if super::cpu::has_avx512vnni() {
            // SAFETY: `has_avx512vnni` confirmed AVX-512F and AVX-512 VNNI;
            // `check` bounded every load.
            unsafe { x86::band_tile_avx512vnni(t, out, ldo) };
            return;
        }
        if super::cpu::has_avxvnni() {
            // SAFETY: `has_avxvnni` confirmed AVX2 and AVX-VNNI; `check`
            // bounded every load.
            unsafe { x86::band_tile_avxvnni(t, out, ldo) };
            return;
        }
    }
    band_tile_portable(t, out, ldo);
}

/// Portable [`band_tile`], the definition the VNNI variants are tested against.
pub(crate) fn band_tile_portable(t: BandTile<'_>, out: &mut [i32], ldo: usize) {
    t.check();
    let mut acc = [[0i32; NR]; MR];
    let mut w = t.w.chunks_exact(MR * 4);
    for c in 0..t.c4 {
        for &row in t.rows {
            for &col in t.cols {
                let at = t.base + c * t.plane + row + col;
                let x = &t.x[at..][..4 * NR];
                let w = w.next().expect("checked weights");
                for (sums, wq) in acc.iter_mut().zip(w.chunks_exact(4)) {
                    for (sum, xq) in sums.iter_mut().zip(x.chunks_exact(4)) {
                        let dot: i32 = wq.iter().zip(xq).map(|(&w, &x)| w as i32 * x as i32).sum();
                        *sum = sum.wrapping_add(dot);
                    }
                }
            }
        }
    }
    for (m, sums) in acc.iter().enumerate() {
        out[m * ldo..][..NR].copy_from_slice(sums);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::gemm_i16::x86::store_avx;
    use super::{BandTile, MR, NR};
    use core::arch::x86_64::{
        _mm256_dpbusd_avx_epi32, _mm256_loadu_si256, _mm256_set1_epi32, _mm256_setzero_si256,
        _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_set1_epi32, _mm512_setzero_si512,
        _mm512_storeu_si512,
    };

    /// AVX-512 VNNI [`super::band_tile`]: per step one 64-byte load (sixteen
    /// pixels' quads) and, per channel, a broadcast weight quad and one
    /// `vpdpbusd`; eight independent accumulators.
    ///
    /// # Safety
    /// AVX-512F and AVX-512 VNNI available; `t.check()` passed; `out` holds
    /// `(MR - 1) * ldo + NR` values.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn band_tile_avx512vnni(t: BandTile<'_>, out: &mut [i32], ldo: usize) {
        let mut acc = [_mm512_setzero_si512(); MR];
        let mut pw = t.w.as_ptr();
        for c in 0..t.c4 {
            for &row in t.rows {
                // In bounds by `check`: the furthest byte any step reads is
                // `base + (c4 - 1) * plane + max(rows) + max(cols) + 63`.
                let px = t.x.as_ptr().wrapping_add(t.base + c * t.plane + row);
                for &col in t.cols {
                    // SAFETY: the 64 bytes at `px + col` and the 32 weight bytes at
                    // `pw` are inside `x` and `w` (see `check`); unaligned loads.
                    unsafe {
                        let x = _mm512_loadu_si512(px.add(col).cast());
                        for (m, sum) in acc.iter_mut().enumerate() {
                            let w = _mm512_set1_epi32(pw.add(4 * m).cast::<i32>().read_unaligned());
                            *sum = _mm512_dpbusd_epi32(*sum, x, w);
                        }
                    }
                    pw = pw.wrapping_add(4 * MR);
                }
            }
        }
        for (m, sum) in acc.iter().enumerate() {
            let row: &mut [i32; NR] = (&mut out[m * ldo..][..NR]).try_into().expect("NR sums");
            // SAFETY: `row` is 64 writable bytes; `storeu` has no alignment requirement.
            unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), *sum) };
        }
    }

    /// AVX-VNNI [`super::band_tile`]: the channels in two halves of four, each
    /// with eight `ymm` accumulators (four channels x two halves of the pixels).
    ///
    /// # Safety
    /// As [`band_tile_avx512vnni`], with AVX2 and AVX-VNNI.
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) unsafe fn band_tile_avxvnni(t: BandTile<'_>, out: &mut [i32], ldo: usize) {
        const HALF: usize = MR / 2;
        for h in 0..2 {
            let mut acc = [_mm256_setzero_si256(); 2 * HALF];
            let mut pw = t.w.as_ptr().wrapping_add(4 * HALF * h);
            for c in 0..t.c4 {
                for &row in t.rows {
                    let px = t.x.as_ptr().wrapping_add(t.base + c * t.plane + row);
                    for &col in t.cols {
                        // SAFETY: as in `band_tile_avx512vnni`.
                        unsafe {
                            let x0 = _mm256_loadu_si256(px.add(col).cast());
                            let x1 = _mm256_loadu_si256(px.add(col + 2 * NR).cast());
                            for m in 0..HALF {
                                let w =
                                    _mm256_set1_epi32(pw.add(4 * m).cast::<i32>().read_unaligned());
                                acc[2 * m] = _mm256_dpbusd_avx_epi32(acc[2 * m], x0, w);
                                acc[2 * m + 1] = _mm256_dpbusd_avx_epi32(acc[2 * m + 1], x1, w);
                            }
                        }
                        pw = pw.wrapping_add(4 * MR);
                    }
                }
            }
            store_avx(&acc, &mut out[HALF * h * ldo..], ldo);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use std::boxed::Box;
    use std::vec;
    use std::vec::Vec;

    type Variant = Box<dyn Fn(BandTile<'_>, &mut [i32], usize)>;

    /// The dispatcher, the portable kernel and every VNNI variant this CPU runs.
    fn variants() -> Vec<(&'static str, Variant)> {
        let mut all: Vec<(&'static str, Variant)> = vec![
            ("best", Box::new(band_tile)),
            ("portable", Box::new(band_tile_portable)),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            use super::super::cpu::{has_avx512vnni, has_avxvnni};
            if has_avxvnni() {
                // SAFETY: AVX2 and AVX-VNNI were detected; the test's tiles pass `check`.
                all.push((
                    "avx-vnni",
                    Box::new(|t, o, l| unsafe { x86::band_tile_avxvnni(t, o, l) }),
                ));
            }
            if has_avx512vnni() {
                // SAFETY: AVX-512F and AVX-512 VNNI were detected; the tiles pass `check`.
                all.push((
                    "avx512-vnni",
                    Box::new(|t, o, l| unsafe { x86::band_tile_avx512vnni(t, o, l) }),
                ));
            }
        }
        all
    }

    /// Every variant equals the naive sum over the band, extremes included.
    #[test]
    fn matches_naive_sum() {
        let mut rng = XorShift(0xBA7D);
        for case in 0..120 {
            let (c4, kh, kw) = (rng.urange(0, 5), rng.urange(1, 4), rng.urange(1, 4));
            let row_bytes = 4 * (NR + kw + rng.urange(0, 8));
            let plane = row_bytes * (kh + rng.urange(0, 3));
            let rows: Vec<usize> = (0..kh).map(|ky| ky * row_bytes).collect();
            let cols: Vec<usize> = (0..kw).map(|kx| 4 * kx).collect();
            let base = 4 * rng.urange(0, 3);
            let extreme = case % 4 == 0;
            let x: Vec<u8> = (0..base + c4.max(1) * plane + 4 * NR)
                .map(|_| {
                    if extreme {
                        255
                    } else {
                        rng.range(0, 255) as u8
                    }
                })
                .collect();
            let w: Vec<i8> = (0..c4 * kh * kw * MR * 4)
                .map(|_| {
                    if extreme {
                        -128
                    } else {
                        rng.range(-128, 127) as i8
                    }
                })
                .collect();
            let ldo = NR + rng.urange(0, 4);
            let mut want = vec![0i32; (MR - 1) * ldo + NR];
            let mut step = 0;
            for c in 0..c4 {
                for &row in &rows {
                    for &col in &cols {
                        for m in 0..MR {
                            for j in 0..NR {
                                for i in 0..4 {
                                    let xv = x[base + c * plane + row + col + 4 * j + i] as i32;
                                    let wv = w[(step * MR + m) * 4 + i] as i32;
                                    let sum = &mut want[m * ldo + j];
                                    *sum = sum.wrapping_add(xv * wv);
                                }
                            }
                        }
                        step += 1;
                    }
                }
            }
            let t = BandTile {
                x: &x,
                base,
                c4,
                plane,
                rows: &rows,
                cols: &cols,
                w: &w,
            };
            for (name, variant) in variants() {
                let mut got = vec![0i32; want.len()];
                variant(t, &mut got, ldo);
                for m in 0..MR {
                    let r = m * ldo..m * ldo + NR;
                    assert_eq!(got[r.clone()], want[r], "case {case} channel {m} ({name})");
                }
            }
        }
    }
}
