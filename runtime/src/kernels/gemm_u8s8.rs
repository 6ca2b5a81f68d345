//! Register-blocked `u8 x i8` GEMM micro-kernels over K-quad panels for x86-64
//! CPUs with VNNI (`vpdpbusd`), the inner loop of the int8 convolution's quad
//! panel path there.
//!
//! One call computes an [`MR`] x [`NR`] tile of wrapping `i32` sums
//! `out[m][j] = sum_k a[m][k] * b[k][j]` from two packed panels in which the
//! reduction index `k` is grouped by four:
//!
//! * `a` (weights, [`MR`] output channels, `i8`): `[k4][MR][4]`, the quad
//!   `a[m][4s..4s + 4]` at `a[(s * MR + m) * 4..]`;
//! * `b` (activations, [`NR`] output pixels, `u8`): `[k4][ldb / 4][4]`, the quad
//!   `b[4s..4s + 4][j]` at `b[s * ldb + 4 * j..]`: a panel of more pixels than
//!   [`NR`] is read a block of [`NR`] at a time.
//!
//! A quad is what one 32-bit lane of `vpdpbusd` multiplies (unsigned by signed)
//! and adds to its accumulator, without saturation: the sums wrap exactly like
//! the reference kernels'. Activations are stored as `x + 128` (`u8`); the
//! caller subtracts `(zero_point + 128) * sum(weights)` per channel (see
//! `conv2d_s8_fast/panel_u8.rs`), which modulo 2^32 gives the reference's
//! `sum(w * (x - zero_point))` bit for bit.

/// Output channels per micro-kernel tile.
pub(crate) const MR: usize = 4;
/// Output pixels per micro-kernel tile.
pub(crate) const NR: usize = 16;

/// The operands of one [`gemm_u8s8_tile`] call.
#[derive(Clone, Copy)]
pub(crate) struct QuadTile<'a> {
    /// Quads of `k` summed.
    pub k4: usize,
    /// Weight panel, at least `k4 * MR * 4` values.
    pub a: &'a [i8],
    /// Activation panel, at least `(k4 - 1) * ldb + 4 * NR` values.
    pub b: &'a [u8],
    /// Bytes from one quad step of `b` to the next (at least `4 * NR`).
    pub ldb: usize,
}

/// What a channel adds to its `u8`-quad sums `sum(w * (x + 128))` to get the
/// reference's `bias + sum(w * (x - zero_point))`: `bias - (zero_point + 128) *
/// sum(w)`, wrapping like the sums (exact modulo 2^32).
#[inline(always)]
pub(crate) fn quad_offset(bias: i32, zero_point: i32, weight_sum: i32) -> i32 {
    bias.wrapping_sub((zero_point + 128).wrapping_mul(weight_sum))
}

/// True when this CPU runs a VNNI variant of [`gemm_u8s8_tile`]: the only
/// case where the convolution packs `u8` quads (elsewhere `i16` pairs are
/// faster).
#[inline]
pub(crate) fn has_vnni() -> bool {
    super::cpu::has_avx512vnni() || super::cpu::has_avxvnni()
}

/// `out[m * ldo + j] = sum over s < k4 of a-quad(s, m) . b-quad(s, j)` for
/// `m < MR`, `j < NR` (wrapping `i32`), the best variant this CPU runs;
/// `out` holds at least `(MR - 1) * ldo + NR` values.
#[inline(always)]
pub(crate) fn gemm_u8s8_tile(t: QuadTile<'_>, out: &mut [i32], ldo: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::cpu::has_avx512vnni() {
            // SAFETY: `has_avx512vnni` confirmed AVX-512F and AVX-512 VNNI.
            unsafe { x86::gemm_u8s8_tile_avx512vnni(t, out, ldo) };
            return;
        }
        if super::cpu::has_avxvnni() {
            // SAFETY: `has_avxvnni` confirmed AVX2 and AVX-VNNI.
            unsafe { x86::gemm_u8s8_tile_avxvnni(t, out, ldo) };
            return;
        }
    }
    gemm_u8s8_tile_portable(t, out, ldo);
}

/// Portable [`gemm_u8s8_tile`], the definition the VNNI variants are tested
/// against.
pub(crate) fn gemm_u8s8_tile_portable(t: QuadTile<'_>, out: &mut [i32], ldo: usize) {
    let a = &t.a[..t.k4 * MR * 4];
    let mut acc = [[0i32; NR]; MR];
    for (s, pa) in a.chunks_exact(MR * 4).enumerate() {
        let pb = &t.b[s * t.ldb..][..4 * NR];
        for (row, w) in acc.iter_mut().zip(pa.chunks_exact(4)) {
            for (sum, x) in row.iter_mut().zip(pb.chunks_exact(4)) {
                let dot: i32 = w.iter().zip(x).map(|(&w, &x)| w as i32 * x as i32).sum();
                *sum = sum.wrapping_add(dot);
            }
        }
    }
    for (m, row) in acc.iter().enumerate() {
        out[m * ldo..][..NR].copy_from_slice(row);
    }
}

/// Interleaves four rows of `width` values (a multiple of 16) into the quad
/// panel rows `dst[4 * j + h] = rows[h][j]`.
#[inline(always)]
pub(crate) fn interleave_quads(rows: [&[u8]; 4], dst: &mut [u8]) {
    let width = rows[0].len();
    debug_assert!(width.is_multiple_of(16));
    let dst = &mut dst[..4 * width];
    let rows = rows.map(|r| &r[..width]);
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            __m128i, _mm_loadu_si128, _mm_storeu_si128, _mm_unpackhi_epi8, _mm_unpackhi_epi16,
            _mm_unpacklo_epi8, _mm_unpacklo_epi16,
        };
        for j in (0..width).step_by(16) {
            // SAFETY: SSE2 is part of x86-64. Each row has `width` values and
            // `dst` `4 * width`: the 16-byte loads at `j` and the 64 bytes
            // stored at `4 * j` are in bounds (`j + 16 <= width`).
            unsafe {
                let [r0, r1, r2, r3] = rows.map(|r| _mm_loadu_si128(r.as_ptr().add(j).cast()));
                let (lo01, hi01) = (_mm_unpacklo_epi8(r0, r1), _mm_unpackhi_epi8(r0, r1));
                let (lo23, hi23) = (_mm_unpacklo_epi8(r2, r3), _mm_unpackhi_epi8(r2, r3));
                let quads = [
                    _mm_unpacklo_epi16(lo01, lo23),
                    _mm_unpackhi_epi16(lo01, lo23),
                    _mm_unpacklo_epi16(hi01, hi23),
                    _mm_unpackhi_epi16(hi01, hi23),
                ];
                let d = dst.as_mut_ptr().add(4 * j).cast::<__m128i>();
                for (i, q) in quads.into_iter().enumerate() {
                    _mm_storeu_si128(d.add(i), q);
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (j, d) in dst.chunks_exact_mut(4).enumerate() {
        for (h, row) in rows.iter().enumerate() {
            d[h] = row[j];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::gemm_i16::x86::store_avx;
    use super::{MR, NR, QuadTile};
    use core::arch::x86_64::{
        _mm256_dpbusd_avx_epi32, _mm256_loadu_si256, _mm256_set1_epi32, _mm256_setzero_si256,
        _mm512_add_epi32, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_set1_epi32,
        _mm512_setzero_si512, _mm512_storeu_si512,
    };

    /// AVX-512 VNNI [`super::gemm_u8s8_tile`]: a quad step's sixteen pixels
    /// fill one `zmm`; per channel one broadcast weight quad and one
    /// `vpdpbusd` (64 multiply-adds). Eight accumulators (four channels x even
    /// and odd steps) hide its latency; the halves are added at the end,
    /// which wrapping addition allows in any order.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) fn gemm_u8s8_tile_avx512vnni(t: QuadTile<'_>, out: &mut [i32], ldo: usize) {
        let out = &mut out[..(MR - 1) * ldo + NR];
        let mut acc = [_mm512_setzero_si512(); 2 * MR];
        if t.k4 > 0 {
            // Bounds checked once here, so the loop has none.
            let a = &t.a[..t.k4 * MR * 4];
            let b = &t.b[..(t.k4 - 1) * t.ldb + 4 * NR];
            let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
            for _ in 0..t.k4 / 2 {
                // SAFETY: steps s and s + 1 < k4 read `pa[..8 * MR]` =
                // `a[s * 4 * MR..][..8 * MR]`, `pb[..4 * NR]` = `b[s * ldb..][..4 * NR]`
                // and `pb[ldb..][..4 * NR]`, inside the slices checked above;
                // unaligned loads are allowed.
                unsafe {
                    let x0 = _mm512_loadu_si512(pb.cast());
                    let x1 = _mm512_loadu_si512(pb.add(t.ldb).cast());
                    for m in 0..MR {
                        let w0 = _mm512_set1_epi32(pa.add(4 * m).cast::<i32>().read_unaligned());
                        let w1 =
                            _mm512_set1_epi32(pa.add(4 * (MR + m)).cast::<i32>().read_unaligned());
                        acc[m] = _mm512_dpbusd_epi32(acc[m], x0, w0);
                        acc[MR + m] = _mm512_dpbusd_epi32(acc[MR + m], x1, w1);
                    }
                }
                pa = pa.wrapping_add(8 * MR);
                pb = pb.wrapping_add(2 * t.ldb);
            }
            if t.k4 % 2 == 1 {
                // SAFETY: the last step s = k4 - 1, as above.
                unsafe {
                    let x = _mm512_loadu_si512(pb.cast());
                    for (m, sum) in acc[..MR].iter_mut().enumerate() {
                        let w = _mm512_set1_epi32(pa.add(4 * m).cast::<i32>().read_unaligned());
                        *sum = _mm512_dpbusd_epi32(*sum, x, w);
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

    /// AVX-VNNI [`super::gemm_u8s8_tile`]: two `ymm` of eight pixels per quad
    /// step, eight accumulators (four channels x two halves).
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) fn gemm_u8s8_tile_avxvnni(t: QuadTile<'_>, out: &mut [i32], ldo: usize) {
        let out = &mut out[..(MR - 1) * ldo + NR];
        let mut acc = [_mm256_setzero_si256(); 2 * MR];
        if t.k4 > 0 {
            // Bounds checked once here, so the loop has none.
            let a = &t.a[..t.k4 * MR * 4];
            let b = &t.b[..(t.k4 - 1) * t.ldb + 4 * NR];
            let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
            for _ in 0..t.k4 {
                // SAFETY: step s < k4 reads `pa[..4 * MR]` = `a[s * 4 * MR..][..4 * MR]`
                // and `pb[..4 * NR]` = `b[s * ldb..][..4 * NR]`, inside the slices
                // checked above; unaligned loads are allowed.
                unsafe {
                    let b0 = _mm256_loadu_si256(pb.cast());
                    let b1 = _mm256_loadu_si256(pb.add(2 * NR).cast());
                    for m in 0..MR {
                        let w = _mm256_set1_epi32(pa.add(4 * m).cast::<i32>().read_unaligned());
                        acc[2 * m] = _mm256_dpbusd_avx_epi32(acc[2 * m], b0, w);
                        acc[2 * m + 1] = _mm256_dpbusd_avx_epi32(acc[2 * m + 1], b1, w);
                    }
                }
                pa = pa.wrapping_add(4 * MR);
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

    type Variant = Box<dyn Fn(QuadTile<'_>, &mut [i32], usize)>;

    /// The dispatcher, the portable kernel and every VNNI variant this CPU runs.
    fn variants() -> Vec<(&'static str, Variant)> {
        let mut all: Vec<(&'static str, Variant)> = vec![
            ("best", Box::new(gemm_u8s8_tile)),
            ("portable", Box::new(gemm_u8s8_tile_portable)),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            use super::super::cpu::{has_avx512vnni, has_avxvnni};
            if has_avxvnni() {
                // SAFETY: AVX2 and AVX-VNNI were detected.
                all.push((
                    "avx-vnni",
                    Box::new(|t, o, l| unsafe { x86::gemm_u8s8_tile_avxvnni(t, o, l) }),
                ));
            }
            if has_avx512vnni() {
                // SAFETY: AVX-512F and AVX-512 VNNI were detected.
                all.push((
                    "avx512-vnni",
                    Box::new(|t, o, l| unsafe { x86::gemm_u8s8_tile_avx512vnni(t, o, l) }),
                ));
            }
        }
        std::eprintln!(
            "gemm_u8s8 variants tested: {:?}",
            all.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
        all
    }

    /// Every variant equals the naive sum, extreme values included.
    #[test]
    fn matches_naive_sum() {
        let mut rng = XorShift(0x5A17);
        for case in 0..200 {
            let k4 = [0, 1, 2, 3, 8, 37, 216][case % 7];
            let ldo = NR + rng.urange(0, 5);
            let ldb = 4 * NR + 4 * rng.urange(0, 3);
            let extreme = case % 5 == 0;
            let a: Vec<i8> = (0..k4 * MR * 4)
                .map(|_| {
                    if extreme {
                        -128
                    } else {
                        rng.range(-128, 127) as i8
                    }
                })
                .collect();
            let b: Vec<u8> = (0..k4 * ldb)
                .map(|_| {
                    if extreme {
                        255
                    } else {
                        rng.range(0, 255) as u8
                    }
                })
                .collect();
            let mut want = vec![0i32; (MR - 1) * ldo + NR];
            for m in 0..MR {
                for j in 0..NR {
                    let mut sum = 0i32;
                    for k in 0..4 * k4 {
                        let (s, h) = (k / 4, k % 4);
                        let x = a[(s * MR + m) * 4 + h] as i32 * b[s * ldb + j * 4 + h] as i32;
                        sum = sum.wrapping_add(x);
                    }
                    want[m * ldo + j] = sum;
                }
            }
            let t = QuadTile {
                k4,
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

    #[test]
    fn quads_interleave_four_rows() {
        let rows: Vec<Vec<u8>> = (0..4u8)
            .map(|h| {
                (0..48u8)
                    .map(|j| j.wrapping_mul(5).wrapping_add(h * 61))
                    .collect()
            })
            .collect();
        let mut dst = vec![0u8; 4 * 48];
        interleave_quads([&rows[0], &rows[1], &rows[2], &rows[3]], &mut dst);
        for j in 0..48 {
            for h in 0..4 {
                assert_eq!(dst[4 * j + h], rows[h][j], "pixel {j} tap {h}");
            }
        }
    }
}
