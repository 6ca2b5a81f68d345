//! Int8 fully connected layer, fast portable variant; bit-exact with
//! [`super::fully_connected_s8::fully_connected_s8`].
//!
//! There is no scratch argument, so operands are widened to `i16` chunk by
//! chunk into small stack buffers (`x - input_zero_point` for the input, the
//! weights as they are), zero-padded to a multiple of 16, and multiplied with
//! [`dot_i16`], the `pmaddwd`-shaped dot product shared with the convolution (see
//! [`super::conv2d_s8_fast`] for why that shape). Each input chunk is widened
//! once per block of [`OUT_BLOCK`] output features, whose `i32` accumulators
//! stay on the stack. Stack use is about 1.2 KiB.

use super::conv2d_s8::bias_of;
use super::dot::{DOT_LANES, dot_i16};
use super::gemm_s8::{GEMM_K_STEP, GemmDims, GemmS8, dot_s8_portable, gemm_s8};
use super::gemm_smlad;
use super::{FullyConnectedDims, FullyConnectedS8Args};

/// `i16` elements per widened chunk of a row (512 bytes per buffer).
const K_CHUNK: usize = 256;
/// Output features whose accumulators are kept while the input chunks stream by.
pub const OUT_BLOCK: usize = 32;

super::cpu::multiversion! {
    /// Int8 fully connected layer, same contract as
    /// [`super::fully_connected_s8::fully_connected_s8`] and bit-exact with it.
    pub fn fully_connected_s8_fast(
        args: &FullyConnectedS8Args,
        output: &mut [i8],
    ) => fully_connected_s8_fast_body;
}

/// The body of [`fully_connected_s8_fast`], compiled once per instruction set.
#[inline(always)]
fn fully_connected_s8_fast_body(args: &FullyConnectedS8Args, output: &mut [i8]) {
    let FullyConnectedS8Args {
        input,
        weights,
        bias,
        dims:
            FullyConnectedDims {
                rows,
                in_features,
                out_features,
            },
        ref quant,
    } = *args;
    debug_assert!(input.len() >= rows * in_features);
    debug_assert!(weights.len() >= out_features * in_features);
    debug_assert!(output.len() >= rows * out_features);
    debug_assert!(bias.is_empty() || bias.len() >= out_features);
    if cfg!(target_arch = "aarch64") {
        fully_connected_s8_gemm(GemmS8::best(), args, output);
        return;
    }
    if cfg!(all(feature = "arm-dsp", target_arch = "arm")) {
        fully_connected_smlad(args, output);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if vnni::available(quant.input_zero_point) {
        vnni::fully_connected_vnni(args, output);
        return;
    }
    fully_connected_widening(args, output);
}

/// The widening path: `i16` chunks and [`dot_i16`].
#[inline(always)]
fn fully_connected_widening(args: &FullyConnectedS8Args, output: &mut [i8]) {
    let zp = args.quant.input_zero_point;
    let mut x16 = [0i16; K_CHUNK];
    let mut w16 = [0i16; K_CHUNK];
    for_each_chunk(args, output, |x, w_rows, lda, acc| {
        let len = x.len();
        let padded = len.next_multiple_of(DOT_LANES);
        for (d, &s) in x16.iter_mut().zip(x) {
            *d = (s as i32 - zp) as i16;
        }
        x16[len..padded].fill(0);
        w16[len..padded].fill(0);
        for (j, a) in acc.iter_mut().enumerate() {
            for (d, &s) in w16.iter_mut().zip(&w_rows[j * lda..][..len]) {
                *d = s as i16;
            }
            *a = a.wrapping_add(dot_i16(&w16[..padded], &x16[..padded]));
        }
    });
}

/// The AVX-512 VNNI path: the input chunk as `x + 128` (`u8`) and one
/// `vpdpbusd` per 64 inputs and feature, with a second one against the
/// constant `zero_point + 128` whose sum is subtracted: modulo 2^32,
/// `sum(w * (x + 128)) - sum(w * (zp + 128)) = sum(w * (x - zp))`, the
/// reference's sum bit for bit.
#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{FullyConnectedS8Args, K_CHUNK, for_each_chunk};
    use core::arch::x86_64::{
        _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_maskz_loadu_epi8, _mm512_reduce_add_epi32,
        _mm512_set1_epi8, _mm512_setzero_si512, _mm512_sub_epi32,
    };

    /// True when this CPU runs the path for this input zero point.
    #[inline]
    pub(super) fn available(zero_point: i32) -> bool {
        use crate::kernels::cpu::{has_avx512, has_avx512vnni};
        has_avx512() && has_avx512vnni() && (-128..=127).contains(&zero_point)
    }

    /// [`super::fully_connected_s8_fast`] with `vpdpbusd`; [`available`] must hold.
    #[inline(always)]
    pub(super) fn fully_connected_vnni(args: &FullyConnectedS8Args, output: &mut [i8]) {
        debug_assert!(available(args.quant.input_zero_point));
        let shift = (args.quant.input_zero_point + 128) as u8;
        let mut xu = [0u8; K_CHUNK];
        for_each_chunk(args, output, |x, w_rows, lda, acc| {
            let xu = &mut xu[..x.len()];
            for (d, &s) in xu.iter_mut().zip(x) {
                *d = s as u8 ^ 0x80;
            }
            for (j, a) in acc.iter_mut().enumerate() {
                let w = &w_rows[j * lda..][..x.len()];
                // SAFETY: `available` confirmed AVX-512F, BW and VNNI.
                *a = a.wrapping_add(unsafe { dot(xu, w, shift) });
            }
        });
    }

    /// `sum(w * x) - sum(w * shift)` over `x.len()` values (wrapping `i32`).
    ///
    /// # Safety
    /// AVX-512F, BW and VNNI available; `w.len() >= x.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn dot(x: &[u8], w: &[i8], shift: u8) -> i32 {
        let len = x.len();
        let w = &w[..len];
        let constant = _mm512_set1_epi8(shift as i8);
        let (mut sum, mut correction) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        let full = len / 64 * 64;
        // SAFETY: full blocks of 64 bytes inside `x` and `w`, then a tail read
        // through a byte mask of `len - full` bytes (masked-off weights are 0).
        unsafe {
            for at in (0..full).step_by(64) {
                let xv = _mm512_loadu_si512(x.as_ptr().add(at).cast());
                let wv = _mm512_loadu_si512(w.as_ptr().add(at).cast());
                sum = _mm512_dpbusd_epi32(sum, xv, wv);
                correction = _mm512_dpbusd_epi32(correction, constant, wv);
            }
            if full < len {
                let mask = u64::MAX >> (64 - (len - full));
                let xv = _mm512_maskz_loadu_epi8(mask, x.as_ptr().add(full).cast());
                let wv = _mm512_maskz_loadu_epi8(mask, w.as_ptr().add(full));
                sum = _mm512_dpbusd_epi32(sum, xv, wv);
                correction = _mm512_dpbusd_epi32(correction, constant, wv);
            }
        }
        _mm512_reduce_add_epi32(_mm512_sub_epi32(sum, correction))
    }
}

/// The walk both widening variants share: per input row and block of
/// [`OUT_BLOCK`] output features, the accumulators start at the bias, then
/// `chunk(x, w_rows, lda, acc)` adds each chunk of up to [`K_CHUNK`] inputs `x`
/// (the block's weight rows start at `w_rows`, `lda` apart, at the chunk's
/// column), and the sums are requantized.
#[inline(always)]
fn for_each_chunk(
    args: &FullyConnectedS8Args,
    output: &mut [i8],
    mut chunk: impl FnMut(&[i8], &[i8], usize, &mut [i32]),
) {
    let FullyConnectedS8Args {
        input,
        weights,
        bias,
        dims:
            FullyConnectedDims {
                rows,
                in_features: k,
                out_features,
            },
        ref quant,
    } = *args;
    let mut acc = [0i32; OUT_BLOCK];
    for r in 0..rows {
        let x_row = &input[r * k..][..k];
        let out_row = &mut output[r * out_features..][..out_features];
        let mut n0 = 0;
        while n0 < out_features {
            let block = (out_features - n0).min(OUT_BLOCK);
            let acc = &mut acc[..block];
            for (j, a) in acc.iter_mut().enumerate() {
                *a = bias_of(bias, n0 + j);
            }
            let mut k0 = 0;
            while k0 < k {
                let len = (k - k0).min(K_CHUNK);
                chunk(&x_row[k0..k0 + len], &weights[n0 * k + k0..], k, acc);
                k0 += len;
            }
            for (j, (o, &a)) in out_row[n0..n0 + block]
                .iter_mut()
                .zip(acc.iter())
                .enumerate()
            {
                *o = quant.finish(quant.requant_of(n0 + j), a);
            }
            n0 += block;
        }
    }
}

/// [`fully_connected_s8_fast`] on Cortex-M with the DSP extension: weights
/// read in place by the `SXTB16`/`SMLAD` micro-kernel of [`gemm_smlad`], two
/// output features per pass over each widened chunk of the input row (1.5
/// instructions per multiply-add). Bit-exact with the reference on every target.
pub(crate) fn fully_connected_smlad(args: &FullyConnectedS8Args, output: &mut [i8]) {
    let zp = args.quant.input_zero_point;
    let mut x16 = [0i16; K_CHUNK];
    let mut next = [0i32; OUT_BLOCK];
    for_each_chunk(args, output, |x, w_rows, lda, acc| {
        gemm_smlad::widen_columns(x, zp, &mut x16);
        gemm_smlad::SmladGemm {
            weights: w_rows,
            lda,
            rows: acc.len(),
            k: x.len(),
            cols: &x16,
            ldc: K_CHUNK,
            count: 1,
            panel: 1,
        }
        .run(acc, &mut next, 1);
        acc.copy_from_slice(&next[..acc.len()]);
    });
}

/// `i8` values of the input row per [`gemm_s8`] call of [`fully_connected_s8_gemm`].
const GEMM_K_CHUNK: usize = 512;

/// [`fully_connected_s8_fast`] with raw 8-bit operands and the dot-product
/// variant `kind` (the AArch64 default, with [`GemmS8::best`]); bit-exact with
/// the reference for every variant.
///
/// Weights are read in place. Each chunk of the input row is copied to the
/// stack beside a row of ones, so one [`gemm_s8`] call gives both `sum w * x`
/// and `sum w` per output (on `SMMLA` the second column is free), and
/// `sum w * (x - zp) = sum w * x - zp * sum w` modulo 2^32. The last
/// `in_features % 16` values are summed in scalar code. Stack use about 1.5 KiB.
pub fn fully_connected_s8_gemm(kind: GemmS8, args: &FullyConnectedS8Args, output: &mut [i8]) {
    let FullyConnectedS8Args {
        input,
        weights,
        bias,
        dims:
            FullyConnectedDims {
                rows,
                in_features,
                out_features,
            },
        ref quant,
    } = *args;
    let k = in_features;
    let k_main = k / GEMM_K_STEP * GEMM_K_STEP;
    let zp = quant.input_zero_point;
    // Row 0: a chunk of the input row; row 1: ones.
    let mut x_and_ones = [1i8; 2 * GEMM_K_CHUNK];
    let mut parts = [0i32; 2 * OUT_BLOCK];
    let mut acc = [0i32; OUT_BLOCK];
    let mut w_sums = [0i32; OUT_BLOCK];

    for r in 0..rows {
        let x_row = &input[r * k..][..k];
        let out_row = &mut output[r * out_features..][..out_features];
        let mut n0 = 0;
        while n0 < out_features {
            let block = (out_features - n0).min(OUT_BLOCK);
            acc[..block].fill(0);
            w_sums[..block].fill(0);
            let mut k0 = 0;
            while k0 < k_main {
                let len = (k_main - k0).min(GEMM_K_CHUNK);
                x_and_ones[..len].copy_from_slice(&x_row[k0..k0 + len]);
                let dims = GemmDims {
                    m: block,
                    n: 2,
                    k: len,
                    lda: k,
                    ldb: GEMM_K_CHUNK,
                    ldo: 2,
                };
                gemm_s8(kind, &weights[n0 * k + k0..], &x_and_ones, dims, &mut parts);
                for j in 0..block {
                    acc[j] = acc[j].wrapping_add(parts[2 * j]);
                    w_sums[j] = w_sums[j].wrapping_add(parts[2 * j + 1]);
                }
                k0 += len;
            }
            for j in 0..block {
                let w_tail = &weights[(n0 + j) * k + k_main..][..k - k_main];
                acc[j] = acc[j].wrapping_add(dot_s8_portable(w_tail, &x_row[k_main..]));
                let w_sum = w_tail
                    .iter()
                    .fold(w_sums[j], |s, &w| s.wrapping_add(w as i32));
                let sum = acc[j]
                    .wrapping_sub(zp.wrapping_mul(w_sum))
                    .wrapping_add(bias_of(bias, n0 + j));
                out_row[n0 + j] = quant.finish(quant.requant_of(n0 + j), sum);
            }
            n0 += block;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::ConvS8Quant;
    use super::super::conv2d_s8::testing::XorShift;
    use super::super::fully_connected_s8::fully_connected_s8;
    use super::*;
    use crate::quant::Requant;
    use std::vec;
    use std::vec::Vec;

    /// Bit-exact with the reference across chunk and block boundaries (K around
    /// 256 and 512, N around 32 and 64), zero points, clamps, shared requant and
    /// empty bias; weights use the full int8 range including -128.
    #[test]
    fn bit_exact_with_reference() {
        let mut rng = XorShift(0xFA57);
        let sizes = [1, 2, 15, 16, 17, 255, 256, 257, 300, 512, 700];
        for case in 0..120 {
            let k = if case % 3 == 0 {
                sizes[rng.urange(0, sizes.len() - 1)]
            } else {
                rng.urange(1, 600)
            };
            let n = [1, 5, 31, 32, 33, 64, 70][rng.urange(0, 6)];
            let rows = rng.urange(1, 3);
            let input = rng.i8s(rows * k, -128, 127);
            let weights = rng.i8s(n * k, -128, 127);
            let bias: Vec<i32> = if case % 7 == 0 {
                Vec::new()
            } else {
                (0..n).map(|_| rng.range(-50_000, 50_000)).collect()
            };
            let requant: Vec<Requant> = (0..if case % 4 == 0 { 1 } else { n })
                .map(|_| Requant::from_real(rng.float(0.00005, 0.01)))
                .collect();
            let quant = ConvS8Quant {
                input_zero_point: rng.range(-128, 127),
                output_zero_point: rng.range(-128, 127),
                requant: &requant,
                act_min: if case % 5 == 0 { 0 } else { -128 },
                act_max: if case % 6 == 0 { 100 } else { 127 },
            };
            let args = FullyConnectedS8Args {
                input: &input,
                weights: &weights,
                bias: &bias,
                dims: FullyConnectedDims {
                    rows,
                    in_features: k,
                    out_features: n,
                },
                quant,
            };
            let mut want = vec![0i8; rows * n];
            let mut got = vec![0i8; rows * n];
            fully_connected_s8(&args, &mut want);
            fully_connected_s8_fast(&args, &mut got);
            assert_eq!(got, want, "case {case}: rows {rows} k {k} n {n}");
            fully_connected_s8_fast_body(&args, &mut got);
            assert_eq!(
                got, want,
                "case {case} (portable copy): rows {rows} k {k} n {n}"
            );
            got.fill(0);
            fully_connected_widening(&args, &mut got);
            assert_eq!(got, want, "case {case} (widening): rows {rows} k {k} n {n}");
            #[cfg(target_arch = "x86_64")]
            if vnni::available(args.quant.input_zero_point) {
                got.fill(0);
                vnni::fully_connected_vnni(&args, &mut got);
                assert_eq!(got, want, "case {case} (VNNI): rows {rows} k {k} n {n}");
            }
            for kind in GemmS8::ALL.into_iter().filter(|v| v.available()) {
                got.fill(0);
                fully_connected_s8_gemm(kind, &args, &mut got);
                assert_eq!(
                    got,
                    want,
                    "case {case} ({}): rows {rows} k {k} n {n}",
                    kind.name()
                );
            }
            got.fill(0);
            fully_connected_smlad(&args, &mut got);
            assert_eq!(got, want, "case {case} (SMLAD): rows {rows} k {k} n {n}");
        }
    }
}
