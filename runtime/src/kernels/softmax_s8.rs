//! Int8 softmax, integer-only.
//!
//! Exponentials come from a 256-entry Q24 table of `exp(-input_scale * d)` that
//! the converter builds with [`softmax_s8_exp_table`] (on the host, in floating
//! point), indexed by `d = max - x`. At run time the kernel only finds the
//! maximum, looks up, sums in `u64` and divides. The output quantization is
//! fixed as in TFLite: scale 1/256, zero point -128.

/// Int8 softmax over the middle axis of a `[outer][axis_len][inner]` tensor.
///
/// For each `(o, i)`, with `m` the maximum of `x[o][..][i]`, `e[a] = exp_table[m - x[o][a][i]]`
/// (clamped at 0) and `sum = sum(e)` in `u64`:
/// `output[o][a][i] = clamp(round(e[a] * 256 / sum) - 128, -128, 127)`, rounding half up
/// (all terms are non-negative). `exp_table` has 256 entries; a shorter table
/// (API misuse) leaves the output untouched, and an all-zero sum gives -128.
#[inline(never)]
pub fn softmax_s8(
    input: &[i8],
    outer: usize,
    axis_len: usize,
    inner: usize,
    exp_table: &[i32],
    output: &mut [i8],
) {
    debug_assert_eq!(exp_table.len(), 256);
    debug_assert!(input.len() >= outer * axis_len * inner);
    debug_assert!(output.len() >= outer * axis_len * inner);
    let Some(table) = exp_table.first_chunk::<256>() else {
        return;
    };
    let exp = |max: i8, x: i8| table[(max as i32 - x as i32) as usize].max(0) as u64;
    let block = axis_len * inner;
    if block == 0 {
        return;
    }
    for o in 0..outer {
        let src = &input[o * block..][..block];
        let dst = &mut output[o * block..][..block];
        for i in 0..inner {
            let max = src[i..].iter().step_by(inner).copied().max().unwrap_or(0);
            let sum: u64 = src[i..].iter().step_by(inner).map(|&x| exp(max, x)).sum();
            for (d, &x) in dst[i..]
                .iter_mut()
                .step_by(inner)
                .zip(src[i..].iter().step_by(inner))
            {
                let q = if sum == 0 {
                    0
                } else {
                    // round(e * 256 / sum) = floor((2 * 256 * e + sum) / (2 * sum)).
                    (512 * exp(max, x) + sum) / (2 * sum)
                };
                *d = (q as i64 - 128).clamp(-128, 127) as i8;
            }
        }
    }
}

/// Host-side, uses float: `table[d] = round(2^24 * exp(-input_scale * d))` for `d` in `0..256`.
///
/// `input_scale` is the scale of the softmax input (a difference of `d` quantized
/// steps is a real difference of `input_scale * d`); computed in f64, rounded
/// half away from zero. `table[0] = 2^24`, so every sum of up to 2^39 terms fits `u64`.
pub fn softmax_s8_exp_table(input_scale: f32) -> [i32; 256] {
    core::array::from_fn(|d| {
        let value = libm::exp(-(input_scale as f64) * d as f64) * (1u64 << 24) as f64;
        libm::round(value).clamp(0.0, (1u64 << 24) as f64) as i32
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use std::vec;

    #[test]
    fn uniform_input_splits_evenly() {
        let table = softmax_s8_exp_table(0.1);
        assert_eq!(table[0], 1 << 24);
        let mut out = [0i8; 4];
        softmax_s8(&[7, 7, 7, 7], 1, 4, 1, &table, &mut out);
        // 1/4 = 64/256 -> 64 - 128.
        assert_eq!(out, [-64; 4]);
        // A single dominant value saturates at 127 (p = 1 -> 256 - 128 = 128 -> 127).
        let mut out = [0i8; 2];
        softmax_s8(&[127, -128], 1, 2, 1, &softmax_s8_exp_table(1.0), &mut out);
        assert_eq!(out, [127, -128]);
    }

    /// Against the float softmax of the dequantized input, quantized to
    /// scale 1/256 and zero point -128: within 1 LSB (the table rounds each
    /// exponential to 2^-24).
    #[test]
    fn matches_float_softmax_within_one_lsb() {
        let mut rng = XorShift(0x50F7);
        for case in 0..60 {
            let (outer, axis_len, inner) = (rng.urange(1, 3), rng.urange(1, 40), rng.urange(1, 3));
            let scale = rng.float(0.01, 0.5) as f32;
            let zp = rng.range(-128, 127);
            let table = softmax_s8_exp_table(scale);
            let input = rng.i8s(outer * axis_len * inner, -128, 127);
            let mut out = vec![0i8; input.len()];
            softmax_s8(&input, outer, axis_len, inner, &table, &mut out);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |a: usize| (o * axis_len + a) * inner + i;
                    let real = |a: usize| scale as f64 * (input[at(a)] as i32 - zp) as f64;
                    let max = (0..axis_len).map(real).fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = (0..axis_len).map(|a| libm::exp(real(a) - max)).sum();
                    for a in 0..axis_len {
                        let p = libm::exp(real(a) - max) / sum;
                        let want = (libm::round(p * 256.0) as i32 - 128).clamp(-128, 127);
                        let got = out[at(a)] as i32;
                        assert!(
                            (got - want).abs() <= 1,
                            "case {case}: {got} vs {want} (p = {p})"
                        );
                    }
                }
            }
        }
    }
}
