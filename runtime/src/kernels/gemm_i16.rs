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
    {
        use super::cpu::{has_avx2, has_avx512vnni, has_avxvnni};
        if has_avx512vnni() {
            // SAFETY: `has_avx512vnni` confirmed AVX-512F and AVX-512 VNNI.
            unsafe { x86::gemm_i16_tile_avx512vnni(t, out, ldo) };
            return;
        }
        if has_avxvnni() {
            // SAFETY: `has_avxvnni` confirmed AVX2 and AVX-VNNI.
            unsafe { x86::gemm_i16_tile_avxvnni(t, out, ldo) };
            return;
        }
        if has_avx2() {
            // SAFETY: `has_avx2` confirmed that this CPU executes AVX2 instructions.
            unsafe { x86::gemm_i16_tile_avx2(t, out, ldo) };
            return;
        }
    }
    gemm_i16_tile_portable(t, out, ldo);
}

/// The name of the variant [`gemm_i16_tile`] runs on this CPU.
#[cfg(target_arch = "x86_64")]
pub(crate) fn gemm_i16_variant() -> &'static str {
    use super::cpu::{has_avx2, has_avx512vnni, has_avxvnni};
    if has_avx512vnni() {
        "avx512-vnni i16 (vpdpwssd)"
    } else if has_avxvnni() {
        "avx-vnni i16 (vpdpwssd)"
    } else if has_avx2() {
        "avx2 i16 (vpmaddwd)"
    } else {
        "portable i16"
    }
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
pub(crate) mod x86 {
    use super::{MR, NR, TileArgs};
    use core::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_dpwssd_avx_epi32, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_set1_epi32, _mm256_setzero_si256, _mm256_storeu_si256, _mm512_add_epi32,
        _mm512_dpwssd_epi32, _mm512_loadu_si512, _mm512_set1_epi32, _mm512_setzero_si512,
        _mm512_storeu_si512,
    };

    /// AVX-512 VNNI [`super::gemm_i16_tile`]: a panel step's sixteen pixel
    /// pairs fill one `zmm`, and `vpdpwssd` multiplies, adds the pairs and
    /// accumulates in one instruction (no saturation: it wraps like the
    /// reference). Eight accumulators (four channels x even and odd steps)
    /// hide its latency; the two halves are added at the end, which wrapping
    /// addition allows in any order.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) fn gemm_i16_tile_avx512vnni(t: TileArgs<'_>, out: &mut [i32], ldo: usize) {
        let out = &mut out[..(MR - 1) * ldo + NR];
        let mut acc = [_mm512_setzero_si512(); 2 * MR];
        if t.k2 > 0 {
            // Bounds checked once here, so the loop has none.
            let a = &t.a[..t.k2 * MR * 2];
            let b = &t.b[..(t.k2 - 1) * t.ldb + 2 * NR];
            let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
            for _ in 0..t.k2 / 2 {
                // SAFETY: steps s and s + 1 < k2 read `pa[..4 * MR]` =
                // `a[s * 2 * MR..][..4 * MR]`, `pb[..2 * NR]` = `b[s * ldb..][..2 * NR]`
                // and `pb[ldb..][..2 * NR]`, inside the slices checked above;
                // unaligned loads are allowed.
                unsafe {
                    let x0 = _mm512_loadu_si512(pb.cast());
                    let x1 = _mm512_loadu_si512(pb.add(t.ldb).cast());
                    for m in 0..MR {
                        let w0 = _mm512_set1_epi32(pa.add(2 * m).cast::<i32>().read_unaligned());
                        let w1 =
                            _mm512_set1_epi32(pa.add(2 * (MR + m)).cast::<i32>().read_unaligned());
                        acc[m] = _mm512_dpwssd_epi32(acc[m], w0, x0);
                        acc[MR + m] = _mm512_dpwssd_epi32(acc[MR + m], w1, x1);
                    }
                }
                pa = pa.wrapping_add(4 * MR);
                pb = pb.wrapping_add(2 * t.ldb);
            }
            if t.k2 % 2 == 1 {
                // SAFETY: the last step s = k2 - 1, as above.
                unsafe {
                    let x = _mm512_loadu_si512(pb.cast());
                    for (m, sum) in acc[..MR].iter_mut().enumerate() {
                        let w = _mm512_set1_epi32(pa.add(2 * m).cast::<i32>().read_unaligned());
                        *sum = _mm512_dpwssd_epi32(*sum, w, x);
                    }
                }
            }
        }
        for m in 0..MR {
            let sum = _mm512_add_epi32(acc[m], acc[MR + m]);
            let row: &mut [i32; NR] = (&mut out[m * ldo..][..NR]).try_into().expect("NR sums");
            // SAFETY: `row` is 64 writable bytes; `storeu` has no alignment requirement.
            unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), sum) };
        }
    }

    /// AVX-VNNI [`super::gemm_i16_tile`]: the AVX2 kernel's register blocking
    /// with `vpdpwssd` (VEX) in place of each `vpmaddwd` + `vpaddd` pair.
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) fn gemm_i16_tile_avxvnni(t: TileArgs<'_>, out: &mut [i32], ldo: usize) {
        let out = &mut out[..(MR - 1) * ldo + NR];
        let mut acc = [_mm256_setzero_si256(); 2 * MR];
        if t.k2 > 0 {
            // Bounds checked once here, so the loop has none.
            let a = &t.a[..t.k2 * MR * 2];
            let b = &t.b[..(t.k2 - 1) * t.ldb + 2 * NR];
            let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
            for _ in 0..t.k2 {
                // SAFETY: as in `gemm_i16_tile_avx2`.
                unsafe {
                    let b0 = _mm256_loadu_si256(pb.cast());
                    let b1 = _mm256_loadu_si256(pb.add(NR).cast());
                    for m in 0..MR {
                        let w = _mm256_set1_epi32(pa.add(2 * m).cast::<i32>().read_unaligned());
                        acc[2 * m] = _mm256_dpwssd_avx_epi32(acc[2 * m], w, b0);
                        acc[2 * m + 1] = _mm256_dpwssd_avx_epi32(acc[2 * m + 1], w, b1);
                    }
                }
                pa = pa.wrapping_add(2 * MR);
                pb = pb.wrapping_add(t.ldb);
            }
        }
        store_avx(&acc, out, ldo);
    }

    /// Stores eight `ymm` accumulators (channel `m`: pixels `0..8` in
    /// `acc[2m]`, `8..16` in `acc[2m + 1]`) to `out[m * ldo..][..NR]`.
    #[target_feature(enable = "avx2")]
    pub(crate) fn store_avx(acc: &[__m256i; 2 * MR], out: &mut [i32], ldo: usize) {
        for (m, halves) in acc.chunks_exact(2).enumerate() {
            let row: &mut [i32; NR] = (&mut out[m * ldo..][..NR]).try_into().expect("NR sums");
            // SAFETY: `row` is 64 writable bytes; `storeu` has no alignment requirement.
            unsafe {
                _mm256_storeu_si256(row.as_mut_ptr().cast::<__m256i>(), halves[0]);
                _mm256_storeu_si256(row.as_mut_ptr().add(NR / 2).cast::<__m256i>(), halves[1]);
            }
        }
    }

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
        store_avx(&acc, out, ldo);
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
            let t = TileArgs {
                k2,
                a: &a,
                b: &b,
                ldb,
            };
            for (name, variant) in variants() {
                let mut got = vec![0i32; want.len()];
                variant(t, &mut got, ldo);
                for m in 0..MR {
                    let row = m * ldo..m * ldo + NR;
                    assert_eq!(got[row.clone()], want[row], "case {case} row {m} ({name})");
                }
            }
        }
    }

    type Variant = Box<dyn Fn(TileArgs<'_>, &mut [i32], usize)>;

    /// The dispatcher, the portable kernel and every variant this CPU runs.
    fn variants() -> Vec<(&'static str, Variant)> {
        let mut all: Vec<(&'static str, Variant)> = vec![
            ("best", Box::new(gemm_i16_tile)),
            ("portable", Box::new(gemm_i16_tile_portable)),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            use super::super::cpu::{has_avx2, has_avx512vnni, has_avxvnni};
            if has_avx2() {
                // SAFETY: AVX2 was detected.
                all.push((
                    "avx2",
                    Box::new(|t, o, l| unsafe { x86::gemm_i16_tile_avx2(t, o, l) }),
                ));
            }
            if has_avxvnni() {
                // SAFETY: AVX2 and AVX-VNNI were detected.
                all.push((
                    "avx-vnni",
                    Box::new(|t, o, l| unsafe { x86::gemm_i16_tile_avxvnni(t, o, l) }),
                ));
            }
            if has_avx512vnni() {
                // SAFETY: AVX-512F and AVX-512 VNNI were detected.
                all.push((
                    "avx512-vnni",
                    Box::new(|t, o, l| unsafe { x86::gemm_i16_tile_avx512vnni(t, o, l) }),
                ));
            }
        }
        std::eprintln!(
            "gemm_i16 variants tested: {:?}",
            all.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
        all
    }
}
