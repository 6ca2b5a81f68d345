//! Float layer normalization (ONNX LayerNormalization) over the last `cols` elements of
//! each row.
//!
//! Mean and variance are computed in f32 in two passes (mean, then squared deviations
//! from it) with [`LANES`] independent partial sums, which keeps rows with a large
//! common offset accurate where `E[x^2] - E[x]^2` would cancel. The second pass also
//! sums the deviations and corrects the mean and variance by them (the corrected
//! two-pass algorithm), removing the rounding error of the first mean; the output
//! subtracts the first mean and then the correction, so the correction's digits survive.

/// Independent partial sums per row.
const LANES: usize = 8;

/// `output[r][c] = (x[r][c] - mean_r) / sqrt(var_r + epsilon) * scale[c] + bias[c]`,
/// with `var_r` the population variance of row `r`.
///
/// A missing `scale` is 1, a missing `bias` 0. Preconditions (debug-asserted):
/// `input.len() == output.len() == rows * cols`, `scale` and `bias` (if any) hold `cols`
/// values.
pub fn layer_norm_f32(
    input: &[f32],
    rows: usize,
    cols: usize,
    scale: Option<&[f32]>,
    bias: Option<&[f32]>,
    epsilon: f32,
    output: &mut [f32],
) {
    debug_assert_eq!(input.len(), rows * cols);
    debug_assert_eq!(output.len(), input.len());
    debug_assert!(scale.is_none_or(|s| s.len() == cols));
    debug_assert!(bias.is_none_or(|b| b.len() == cols));
    if cols == 0 {
        return;
    }
    let n = cols as f32;
    for (x, y) in input.chunks_exact(cols).zip(output.chunks_exact_mut(cols)) {
        let mean0 = sum_lanes(x) / n;
        let (dev_sum, sq_sum) = deviation_sums(x, mean0);
        // Corrected mean `mean0 + corr`; `(v - mean0) - corr` keeps the correction's
        // digits, which `mean0 + corr` rounded to f32 would lose for a large `mean0`.
        let corr = dev_sum / n;
        let var = ((sq_sum - dev_sum * corr) / n).max(0.0);
        let inv_std = 1.0 / libm::sqrtf(var + epsilon);
        match (scale, bias) {
            (Some(s), Some(b)) => {
                for (((o, &v), &sv), &bv) in y.iter_mut().zip(x).zip(s).zip(b) {
                    *o = ((v - mean0) - corr) * inv_std * sv + bv;
                }
            }
            (Some(s), None) => {
                for ((o, &v), &sv) in y.iter_mut().zip(x).zip(s) {
                    *o = ((v - mean0) - corr) * inv_std * sv;
                }
            }
            (None, Some(b)) => {
                for ((o, &v), &bv) in y.iter_mut().zip(x).zip(b) {
                    *o = ((v - mean0) - corr) * inv_std + bv;
                }
            }
            (None, None) => {
                for (o, &v) in y.iter_mut().zip(x) {
                    *o = ((v - mean0) - corr) * inv_std;
                }
            }
        }
    }
}

/// `sum_i x[i]` with [`LANES`] partial sums in a fixed order.
#[inline(always)]
fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    horizontal_sum(&acc) + tail.iter().sum::<f32>()
}

/// `(sum_i (x[i] - mean), sum_i (x[i] - mean)^2)`, each with [`LANES`] partial sums.
#[inline(always)]
fn deviation_sums(x: &[f32], mean: f32) -> (f32, f32) {
    let mut dev = [0.0f32; LANES];
    let mut sq = [0.0f32; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for chunk in chunks {
        for ((d, s), &v) in dev.iter_mut().zip(sq.iter_mut()).zip(chunk) {
            let e = v - mean;
            *d += e;
            *s += e * e;
        }
    }
    let (mut dev_tail, mut sq_tail) = (0.0f32, 0.0f32);
    for &v in tail {
        let e = v - mean;
        dev_tail += e;
        sq_tail += e * e;
    }
    (
        horizontal_sum(&dev) + dev_tail,
        horizontal_sum(&sq) + sq_tail,
    )
}

/// Pairwise sum of the lanes.
#[inline(always)]
fn horizontal_sum(acc: &[f32; LANES]) -> f32 {
    let a = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (a[0] + a[2]) + (a[1] + a[3])
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    /// Two-pass f64 reference.
    fn naive(
        x: &[f32],
        cols: usize,
        scale: Option<&[f32]>,
        bias: Option<&[f32]>,
        eps: f32,
    ) -> Vec<f64> {
        let mut out = Vec::new();
        for row in x.chunks_exact(cols) {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
            let var = row
                .iter()
                .map(|&v| (v as f64 - mean) * (v as f64 - mean))
                .sum::<f64>()
                / cols as f64;
            let inv = 1.0 / (var + eps as f64).sqrt();
            for (c, &v) in row.iter().enumerate() {
                let s = scale.map_or(1.0, |s| s[c] as f64);
                let b = bias.map_or(0.0, |b| b[c] as f64);
                out.push((v as f64 - mean) * inv * s + b);
            }
        }
        out
    }

    fn check(got: &[f32], want: &[f64], tol: f64) {
        for (&g, &w) in got.iter().zip(want) {
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "{g} vs {w} (tol {tol})"
            );
        }
    }

    #[test]
    fn hand_computed() {
        // Row [1, 2, 3, 4]: mean 2.5, variance 1.25.
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let mut out = [0.0f32; 4];
        layer_norm_f32(&x, 1, 4, None, None, 0.0, &mut out);
        let inv = 1.0 / 1.25f32.sqrt();
        for (o, w) in out
            .iter()
            .zip([-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv])
        {
            assert!((o - w).abs() < 1e-6, "{o} vs {w}");
        }
        // A constant row normalizes to 0, then the bias.
        layer_norm_f32(
            &[3.0; 4],
            1,
            4,
            Some(&[2.0; 4]),
            Some(&[0.5, 1.0, 1.5, 2.0]),
            1e-5,
            &mut out,
        );
        assert_eq!(out, [0.5, 1.0, 1.5, 2.0]);
        // Nothing to do for empty tensors.
        layer_norm_f32(&[], 3, 0, None, None, 1e-5, &mut []);
        layer_norm_f32(&[], 0, 5, None, None, 1e-5, &mut []);
    }

    #[test]
    fn random_rows_match_f64() {
        let mut rng = XorShift(0x6c6e_6f72_6d00_0001);
        for iter in 0..100usize {
            let (rows, cols) = (1 + rng.below(4), 1 + rng.below(70));
            let x: Vec<f32> = (0..rows * cols).map(|_| rng.f32() * 3.0 + 0.5).collect();
            let s: Vec<f32> = (0..cols).map(|_| rng.f32() * 2.0).collect();
            let b: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
            let scale = iter.is_multiple_of(2).then_some(&s[..]);
            let bias = (!iter.is_multiple_of(3)).then_some(&b[..]);
            let mut out = vec![f32::NAN; x.len()];
            layer_norm_f32(&x, rows, cols, scale, bias, 1e-5, &mut out);
            check(&out, &naive(&x, cols, scale, bias, 1e-5), 2e-6);
        }
    }

    #[test]
    fn large_offset_stays_accurate() {
        // Rows far from 0 relative to their spread (1000 +- 1): one-pass variance loses
        // every digit here; two passes keep the normalized values to the inputs' ulp.
        let mut rng = XorShift(0x6c6e_6f72_6d00_0002);
        let cols = 257;
        let x: Vec<f32> = (0..2 * cols).map(|_| 1000.0 + rng.f32()).collect();
        let mut out = vec![f32::NAN; x.len()];
        layer_norm_f32(&x, 2, cols, None, None, 1e-6, &mut out);
        check(&out, &naive(&x, cols, None, None, 1e-6), 2e-6);
    }
}
