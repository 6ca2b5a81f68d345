//! Register-blocked `i16` GEMM micro-kernels over K-pair panels, the inner
//! loop of the x86-64 int8 convolution.
//!
//! One call computes an [`MR`] x [`NR`] tile of wrapping `i32` sums
//! `out[m][j] = sum_k a[m][k] * b[k][j]` from two packed panels in which the
//! reduction index `k` is grouped in pairs:
//!
//! * `a` (weights, [`MR`] output channels): `[k2][MR][2]`, the pair
//!   `(a[m][2s], a[m][2s + 1])` at `a[(s * MR + m) * 2..]`;
//! * `b` (activations, [`NR`] output pixels): `[k2][ldb / 2][2]`, the pair
//!   `(b[2s][j], b[2s + 1][j])` at `b[s * ldb + 2 * j..]`: a panel of more
//!   pixels than [`NR`] is read a block of [`NR`] at a time.
//!
//! A pair is exactly what one 32-bit lane of `pmaddwd` multiplies and adds, so
//! the AVX2 kernel broadcasts a weight pair to all lanes and multiplies it by
//! eight pixels' pairs at once: the sums come out with pixels along the lanes,
//! already in the order of an NCHW output row, with no horizontal reduction.
//! Operands are int8 values widened to `i16` (activations minus their zero
//! point), so `a * b + a' * b'` never leaves `i32` and every variant wraps
//! exactly like the reference kernels' sums.

/// Output channels per micro-kernel tile.
pub(crate) const MR: usize = 4;
/// Output pixels per micro-kernel tile.
pub(crate) const NR: usize = 16;

/// The operands of one [`gemm_i16_tile`] call.
#[derive(Clone, Copy)]
pub(crate) struct TileArgs<'a> {
    /// Pairs of `k` summed.
    pub k2: usize,
    /// Weight panel, at least `k2 * MR * 2` values.
    pub a: &'a [i16],
    /// Activation panel, at least `(k2 - 1) * ldb + 2 * NR` values.
    pub b: &'a [i16],
    /// Values from one pair step of `b` to the next (at least `2 * NR`).
    pub ldb: usize,
}

/// `out[m * ldo + j] = sum over s < k2 of a-pair(s, m) . b-pair(s, j)` for
/// `m < MR`, `j < NR` (wrapping `i32`), the best variant this CPU runs;
/// `out` holds at least `(MR - 1) * ldo + NR` values.
#[inline(always)]
pub(crate) fn gemm_i16_tile(t: TileArgs<'_>, out: &mut [i32], ldo: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::cpu::has_avx2() {
        // SAFETY: `has_avx2` confirmed that this CPU executes AVX2 instructions.
        unsafe { x86::gemm_i16_tile_avx2(t, out, ldo) };
        return;
    }
    gemm_i16_tile_portable(t, out, ldo);
}

/// The `b` panel steps of a tile: `k2` slices of `2 * NR` values, `ldb` apart.
#[inline(always)]
fn b_steps<'a>(t: &TileArgs<'a>) -> impl Iterator<Item = &'a [i16]> {
    let (b, ldb) = (t.b, t.ldb);
    (0..t.k2).map(move |s| &b[s * ldb..][..2 * NR])
}

/// Portable [`gemm_i16_tile`]: one row of [`NR`] accumulators per output
/// channel, written so that LLVM can lower it to `pmaddwd`/`smlal`.
#[inline(always)]
pub(crate) fn gemm_i16_tile_portable(t: TileArgs<'_>, out: &mut [i32], ldo: usize) {
    let a = &t.a[..t.k2 * MR * 2];
    let mut acc = [[0i32; NR]; MR];
    for (pa, pb) in a.chunks_exact(MR * 2).zip(b_steps(&t)) {
        for (row, w) in acc.iter_mut().zip(pa.chunks_exact(2)) {
            let (w0, w1) = (w[0] as i32, w[1] as i32);
            for (sum, x) in row.iter_mut().zip(pb.chunks_exact(2)) {
                *sum = sum.wrapping_add((w0 * x[0] as i32).wrapping_add(w1 * x[1] as i32));
            }
        }
    }
    for (m, row) in acc.iter().enumerate() {
        out[m * ldo..][..NR].copy_from_slice(row);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR, TileArgs};
    use core::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_set1_epi32,
        _mm256_setzero_si256, _mm256_storeu_si256,
    };

    /// AVX2 [`super::gemm_i16_tile`]: eight `ymm` accumulators (four channels x
    /// two halves of sixteen pixels); per pair of `k`, two panel loads, four
    /// broadcasts and eight `vpmaddwd`.
    #[target_feature(enable = "avx2")]
    pub(super) fn gemm_i16_tile_avx2(t: TileArgs<'_>, out: &mut [i32], ldo: usize) {
        let out = &mut out[..(MR - 1) * ldo + NR];
        let mut acc = [_mm256_setzero_si256(); 2 * MR];
        if t.k2 > 0 {
            // Bounds checked once here, so the loop has none.
            let a = &t.a[..t.k2 * MR * 2];
            let b = &t.b[..(t.k2 - 1) * t.ldb + 2 * NR];
            let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
            for _ in 0..t.k2 {
                // SAFETY: step s < k2 reads `pa[..2 * MR]` = `a[s * 2 * MR..][..2 * MR]` and
                // `pb[..2 * NR]` = `b[s * ldb..][..2 * NR]`, inside the slices checked
                // above; `loadu` and `read_unaligned` need no alignment.
                unsafe {
                    let b0 = _mm256_loadu_si256(pb.cast());
                    let b1 = _mm256_loadu_si256(pb.add(NR).cast());
                    for m in 0..MR {
                        let w = _mm256_set1_epi32(pa.add(2 * m).cast::<i32>().read_unaligned());
                        acc[2 * m] = _mm256_add_epi32(acc[2 * m], _mm256_madd_epi16(w, b0));
                        acc[2 * m + 1] = _mm256_add_epi32(acc[2 * m + 1], _mm256_madd_epi16(w, b1));
                    }
                }
                pa = pa.wrapping_add(2 * MR);
                pb = pb.wrapping_add(t.ldb);
            }
        }
        for (m, halves) in acc.chunks_exact(2).enumerate() {
            let row: &mut [i32; NR] = (&mut out[m * ldo..][..NR]).try_into().expect("NR sums");
            // SAFETY: `row` is 64 writable bytes; `storeu` has no alignment requirement.
            unsafe {
                _mm256_storeu_si256(row.as_mut_ptr().cast::<__m256i>(), halves[0]);
                _mm256_storeu_si256(row.as_mut_ptr().add(NR / 2).cast::<__m256i>(), halves[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Every variant equals the naive sum, extreme values included.
    #[test]
    fn matches_naive_sum() {
        let mut rng = XorShift(0x6E44);
        for case in 0..200 {
            let k2 = [0, 1, 2, 7, 8, 72, 300][case % 7];
            let ldo = NR + rng.urange(0, 5);
            let ldb = 2 * NR + 2 * rng.urange(0, 3);
            let extreme = case % 5 == 0;
            let mut value = |lo: i32, hi: i32| {
                if extreme {
                    lo as i16
                } else {
                    rng.range(lo, hi) as i16
                }
            };
            let a: Vec<i16> = (0..k2 * MR * 2).map(|_| value(-128, 127)).collect();
            let b: Vec<i16> = (0..k2 * ldb).map(|_| value(-255, 255)).collect();
            let mut want = vec![0i32; (MR - 1) * ldo + NR];
            for m in 0..MR {
                for j in 0..NR {
                    let mut sum = 0i32;
                    for k in 0..2 * k2 {
                        let (s, h) = (k / 2, k % 2);
                        let x = a[(s * MR + m) * 2 + h] as i32 * b[s * ldb + j * 2 + h] as i32;
                        sum = sum.wrapping_add(x);
                    }
                    want[m * ldo + j] = sum;
                }
            }
            let mut got = vec![0i32; want.len()];
            let t = TileArgs {
                k2,
                a: &a,
                b: &b,
                ldb,
            };
            gemm_i16_tile(t, &mut got, ldo);
            let mut portable = vec![0i32; want.len()];
            gemm_i16_tile_portable(t, &mut portable, ldo);
            for m in 0..MR {
                let row = m * ldo..m * ldo + NR;
                assert_eq!(got[row.clone()], want[row.clone()], "case {case} row {m}");
                assert_eq!(
                    portable[row.clone()],
                    want[row],
                    "case {case} row {m} (portable)"
                );
            }
        }
    }
}
