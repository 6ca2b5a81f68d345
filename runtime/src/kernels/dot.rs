//! `i16` dot products, the inner loop of the int8 convolution and fully
//! connected kernels.
//!
//! Operands are `i8` values widened to `i16` (activations minus their zero
//! point, weights as they are), so every product fits in `i32` and sums wrap in
//! `i32` exactly like the reference kernels. The portable versions are written
//! in the shape LLVM lowers to `pmaddwd` (x86-64 SSE2) or `smlal` (AArch64).
//! On x86-64 with AVX2 an explicit `vpmaddwd` version runs instead, four rows at
//! a time: auto-vectorization with AVX2 enabled falls back to `vpmulld`, which
//! is several times slower. (Cortex-M with the DSP extension runs
//! [`super::gemm_smlad`] instead.) Integer sums are exact modulo 2^32 in any
//! order, so every version gives the same bits.

/// Lanes of one chunk: rows are zero-padded to a multiple of it.
pub(crate) const DOT_LANES: usize = 16;

/// `sum(a[i] * b[i])` (wrapping `i32`) over the first
/// `16 * floor(min(a.len(), b.len()) / 16)` elements.
#[inline]
pub(crate) fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    let mut out = [0i32];
    let len = a.len().min(b.len());
    dot_i16_rows(a, &b[..len], len, &mut out);
    out[0]
}

/// `out[j] = dot_i16(a, rows[j * stride..][..stride])` for each of `out.len()`
/// rows (fewer when `rows` holds fewer whole rows).
#[inline]
pub(crate) fn dot_i16_rows(a: &[i16], rows: &[i16], stride: usize, out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if super::cpu::has_avx2() {
        // SAFETY: `has_avx2` confirmed that this CPU executes AVX2 instructions.
        unsafe { x86::dot_i16_rows_avx2(a, rows, stride, out) };
        return;
    }
    dot_i16_rows_portable(a, rows, stride, out);
}

/// Portable [`dot_i16_rows`]. Kept out of line, one call per row block: inlined
/// into a kernel's loops, LLVM no longer emits the `pmaddwd` loop.
#[inline(never)]
pub(crate) fn dot_i16_rows_portable(a: &[i16], rows: &[i16], stride: usize, out: &mut [i32]) {
    if stride == 0 {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(stride)) {
        *o = dot_i16_portable(a, row);
    }
}

/// One portable dot product: a single 16-lane accumulator over fixed-size
/// chunks and a final horizontal sum, the shape LLVM lowers to `pmaddwd`.
#[inline(always)]
fn dot_i16_portable(a: &[i16], b: &[i16]) -> i32 {
    let (a, _) = a.as_chunks::<DOT_LANES>();
    let (b, _) = b.as_chunks::<DOT_LANES>();
    let chunks = a.len().min(b.len());
    let (a, b) = (&a[..chunks], &b[..chunks]);
    let mut acc = [0i32; DOT_LANES];
    for c in 0..chunks {
        for l in 0..DOT_LANES {
            acc[l] = acc[l].wrapping_add(a[c][l] as i32 * b[c][l] as i32);
        }
    }
    acc.iter().fold(0i32, |sum, &v| sum.wrapping_add(v))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::DOT_LANES;
    use core::arch::x86_64::{
        __m256i, _mm_add_epi32, _mm_storeu_si128, _mm256_add_epi32, _mm256_castsi256_si128,
        _mm256_extracti128_si256, _mm256_hadd_epi32, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_setzero_si256, _mm256_storeu_si256,
    };

    /// AVX2 [`super::dot_i16_rows`]: four rows per pass share each load of `a`.
    #[target_feature(enable = "avx2")]
    pub(super) fn dot_i16_rows_avx2(a: &[i16], rows: &[i16], stride: usize, out: &mut [i32]) {
        if stride == 0 {
            out.fill(0);
            return;
        }
        let chunks = a.len().min(stride) / DOT_LANES;
        let a = &a[..chunks * DOT_LANES];
        let count = out.len().min(rows.len() / stride);
        let (out, _) = out.split_at_mut(count);
        let mut j = 0;
        while j + 4 <= count {
            let len = chunks * DOT_LANES;
            let r = [
                &rows[j * stride..][..len],
                &rows[(j + 1) * stride..][..len],
                &rows[(j + 2) * stride..][..len],
                &rows[(j + 3) * stride..][..len],
            ];
            let mut acc = [_mm256_setzero_si256(); 4];
            for c in 0..chunks {
                let w = load(a, c);
                for (acc, row) in acc.iter_mut().zip(&r) {
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(w, load(row, c)));
                }
            }
            let sums = horizontal_sum4(acc);
            out[j..j + 4].copy_from_slice(&sums);
            j += 4;
        }
        for (o, row) in out[j..]
            .iter_mut()
            .zip(rows[j * stride..].chunks_exact(stride))
        {
            let mut acc = _mm256_setzero_si256();
            for c in 0..chunks {
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(load(a, c), load(row, c)));
            }
            *o = horizontal_sum(acc);
        }
    }

    /// Chunk `c` (16 values) of `v`.
    #[inline(always)]
    fn load(v: &[i16], c: usize) -> __m256i {
        let chunk: &[i16; DOT_LANES] = v[c * DOT_LANES..][..DOT_LANES]
            .try_into()
            .expect("16 values");
        // SAFETY: `chunk` is 32 readable bytes; `loadu` has no alignment requirement.
        unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) }
    }

    /// Wrapping sums of the eight `i32` lanes of each of four vectors.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn horizontal_sum4(v: [__m256i; 4]) -> [i32; 4] {
        // Pairwise adds leave [a, b, c, d] partial sums in each 128-bit half.
        let ab = _mm256_hadd_epi32(v[0], v[1]);
        let cd = _mm256_hadd_epi32(v[2], v[3]);
        let abcd = _mm256_hadd_epi32(ab, cd);
        let sum = _mm_add_epi32(
            _mm256_castsi256_si128(abcd),
            _mm256_extracti128_si256::<1>(abcd),
        );
        let mut out = [0i32; 4];
        // SAFETY: `out` is 16 writable bytes; `storeu` has no alignment requirement.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), sum) };
        out
    }

    /// Wrapping sum of the eight `i32` lanes.
    #[inline(always)]
    fn horizontal_sum(v: __m256i) -> i32 {
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` is 32 writable bytes; `storeu` has no alignment requirement.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
        lanes.iter().fold(0i32, |s, &x| s.wrapping_add(x))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn naive(a: &[i16], b: &[i16]) -> i32 {
        let len = a.len().min(b.len()) / DOT_LANES * DOT_LANES;
        a[..len].iter().zip(&b[..len]).fold(0i32, |s, (&x, &y)| {
            s.wrapping_add((x as i32).wrapping_mul(y as i32))
        })
    }

    /// Dispatched and portable versions equal the naive sum, extremes included
    /// (`-32768 * -32768` pairs wrap the way `pmaddwd` does).
    #[test]
    fn matches_naive_sum() {
        let mut rng = XorShift(0xD07);
        for case in 0..300 {
            let stride = [0, 16, 32, 48, 288, 300][rng.urange(0, 5)];
            let a_len = if case % 5 == 0 { stride / 2 } else { stride };
            let count = rng.urange(0, 9);
            let extreme = case % 7 == 0;
            let mut value = || {
                if extreme {
                    -32768
                } else {
                    rng.range(-32768, 32767) as i16
                }
            };
            let a: Vec<i16> = (0..a_len).map(|_| value()).collect();
            let rows: Vec<i16> = (0..count * stride).map(|_| value()).collect();
            let want: Vec<i32> = (0..count)
                .map(|j| naive(&a, &rows[j * stride..][..stride]))
                .collect();
            let mut got = vec![7i32; count];
            dot_i16_rows(&a, &rows, stride, &mut got);
            assert_eq!(got, want, "case {case}: stride {stride} rows {count}");
            let mut portable = vec![7i32; count];
            dot_i16_rows_portable(&a, &rows, stride, &mut portable);
            assert_eq!(portable, want, "case {case} (portable)");
            if count > 0 {
                assert_eq!(
                    dot_i16(&a, &rows[..stride]),
                    want[0],
                    "case {case} (single)"
                );
            }
        }
    }
}
