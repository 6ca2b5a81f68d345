//! Float softmax over one axis of a tensor viewed as `[outer][axis_len][inner]`.

/// `output[o][a][i] = exp(x[o][a][i] - m) / sum_a' exp(x[o][a'][i] - m)` with
/// `m = max_a x[o][a][i]` (max-subtracted, so large inputs cannot overflow).
///
/// `inner == 1` (softmax over the last axis) runs over contiguous rows; otherwise each
/// `inner` position is a strided column. Preconditions (debug-asserted):
/// `input.len() == output.len() == outer * axis_len * inner`.
pub fn softmax_f32(input: &[f32], outer: usize, axis_len: usize, inner: usize, output: &mut [f32]) {
    debug_assert_eq!(input.len(), outer * axis_len * inner);
    debug_assert_eq!(output.len(), input.len());
    let block = axis_len * inner;
    if block == 0 {
        return;
    }
    if inner == 1 {
        for (x, y) in input
            .chunks_exact(axis_len)
            .zip(output.chunks_exact_mut(axis_len))
        {
            let max = x
                .iter()
                .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
            let mut sum = 0.0f32;
            for (o, &v) in y.iter_mut().zip(x) {
                let e = libm::expf(v - max);
                *o = e;
                sum += e;
            }
            let inv = 1.0 / sum;
            for o in y.iter_mut() {
                *o *= inv;
            }
        }
        return;
    }
    for (x, y) in input
        .chunks_exact(block)
        .zip(output.chunks_exact_mut(block))
    {
        for i in 0..inner {
            let max = x[i..]
                .iter()
                .step_by(inner)
                .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
            let mut sum = 0.0f32;
            for (o, &v) in y[i..]
                .iter_mut()
                .step_by(inner)
                .zip(x[i..].iter().step_by(inner))
            {
                let e = libm::expf(v - max);
                *o = e;
                sum += e;
            }
            let inv = 1.0 / sum;
            for o in y[i..].iter_mut().step_by(inner) {
                *o *= inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    #[test]
    fn hand_computed() {
        // [0, ln 3] -> [1/4, 3/4]; a large common offset must not overflow.
        let mut out = [0.0f32; 2];
        softmax_f32(&[0.0, libm::logf(3.0)], 1, 2, 1, &mut out);
        assert!((out[0] - 0.25).abs() < 1e-7 && (out[1] - 0.75).abs() < 1e-7);
        softmax_f32(&[1000.0, 1000.0 + libm::logf(3.0)], 1, 2, 1, &mut out);
        assert!((out[0] - 0.25).abs() < 1e-4 && (out[1] - 0.75).abs() < 1e-4);
        // Axis in the middle: [1][2][2], columns (0, 0) and (ln 3, 0).
        let mut out = [0.0f32; 4];
        softmax_f32(&[0.0, libm::logf(3.0), 0.0, 0.0], 1, 2, 2, &mut out);
        for (g, w) in out.iter().zip([0.5, 0.75, 0.5, 0.25]) {
            assert!((g - w).abs() < 1e-7);
        }
    }

    #[test]
    fn random_shapes_match_naive() {
        // One expf (~1 ulp) and a sum of <= 12 positives per output: 1e-6 relative.
        let mut rng = XorShift(0x1111_2222_3333_4444);
        for _ in 0..100 {
            let (outer, axis, inner) = (1 + rng.below(3), 1 + rng.below(12), 1 + rng.below(4));
            let input: Vec<f32> = (0..outer * axis * inner)
                .map(|_| rng.f32() * 10.0)
                .collect();
            let mut out = vec![f32::NAN; input.len()];
            softmax_f32(&input, outer, axis, inner, &mut out);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |a: usize| (o * axis + a) * inner + i;
                    let m = (0..axis)
                        .map(|a| input[at(a)] as f64)
                        .fold(f64::MIN, f64::max);
                    let sum: f64 = (0..axis).map(|a| libm::exp(input[at(a)] as f64 - m)).sum();
                    for a in 0..axis {
                        let want = libm::exp(input[at(a)] as f64 - m) / sum;
                        assert!((out[at(a)] as f64 - want).abs() <= 1e-6 * want + 1e-9);
                    }
                }
            }
        }
    }
}
