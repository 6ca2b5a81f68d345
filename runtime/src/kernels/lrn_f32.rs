//! Float local response normalization across channels (ONNX LRN) over NCHW.

use super::Shape4;

/// ONNX LRN: `y = x / (bias + alpha / size * square_sum)^beta`, where `square_sum` at
/// channel `c` sums `x[c']^2` for `c'` in `[c - floor((size-1)/2), c + ceil((size-1)/2)]`
/// clipped to the channels.
///
/// The output doubles as the square-sum buffer (no scratch). Preconditions
/// (debug-asserted): `size >= 1`, `input.len() == output.len() == shape.len()`.
pub fn lrn_f32(
    input: &[f32],
    shape: Shape4,
    size: usize,
    alpha: f32,
    beta: f32,
    bias: f32,
    output: &mut [f32],
) {
    debug_assert!(size >= 1);
    debug_assert_eq!(input.len(), shape.len());
    debug_assert_eq!(output.len(), shape.len());
    let plane = shape.h * shape.w;
    let batch = shape.c * plane;
    if batch == 0 || plane == 0 {
        return;
    }
    let before = (size.max(1) - 1) / 2;
    let after = size.max(1) - 1 - before;
    let scale = alpha / size.max(1) as f32;
    for (x_n, y_n) in input
        .chunks_exact(batch)
        .zip(output.chunks_exact_mut(batch))
    {
        for (c, y) in y_n.chunks_exact_mut(plane).enumerate() {
            y.fill(0.0);
            let first = c.saturating_sub(before);
            let end = (c + after + 1).min(shape.c);
            for x2 in x_n[first * plane..end * plane].chunks_exact(plane) {
                for (s, &v) in y.iter_mut().zip(x2) {
                    *s += v * v;
                }
            }
            let x = &x_n[c * plane..][..plane];
            for (s, &v) in y.iter_mut().zip(x) {
                *s = v / libm::powf(bias + scale * *s, beta);
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
        // x = [1, 2, 3] over channels, size 3, alpha 3 (alpha/size = 1), beta 1, bias 1:
        // square sums 5, 14, 13 -> y = [1/6, 2/15, 3/14].
        let mut out = [0.0f32; 3];
        lrn_f32(
            &[1.0, 2.0, 3.0],
            Shape4::new(1, 3, 1, 1),
            3,
            3.0,
            1.0,
            1.0,
            &mut out,
        );
        assert_eq!(out, [1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0]);
        // Even size 2: window [c, c + 1]; sums 5, 13, 9 with alpha/size = 0.5, beta 0.5.
        lrn_f32(
            &[1.0, 2.0, 3.0],
            Shape4::new(1, 3, 1, 1),
            2,
            1.0,
            0.5,
            2.0,
            &mut out,
        );
        let want = [
            1.0 / libm::sqrtf(4.5),
            2.0 / libm::sqrtf(8.5),
            3.0 / libm::sqrtf(6.5),
        ];
        for (g, w) in out.iter().zip(want) {
            assert!((g - w).abs() <= 1e-6 * w.abs());
        }
    }

    #[test]
    fn random_shapes_match_naive() {
        // f32 sums of at most 7 squares plus one powf (libm, ~1 ulp): 1e-5 relative covers
        // the rounding with a wide margin.
        let mut rng = XorShift(0xabcd_ef01_2345_6789);
        for _ in 0..50 {
            let s = Shape4::new(
                1 + rng.below(2),
                1 + rng.below(8),
                1 + rng.below(4),
                1 + rng.below(4),
            );
            let size = 1 + rng.below(7);
            let (alpha, beta, bias) = (1e-1 + rng.f32().abs(), 0.75, 1.0 + rng.f32().abs());
            let input: Vec<f32> = (0..s.len()).map(|_| rng.f32() * 3.0).collect();
            let mut out = vec![f32::NAN; s.len()];
            lrn_f32(&input, s, size, alpha, beta, bias, &mut out);
            let plane = s.h * s.w;
            for n in 0..s.n {
                for c in 0..s.c {
                    for p in 0..plane {
                        let lo = c as isize - ((size - 1) / 2) as isize;
                        let hi = c + (size - 1).div_ceil(2);
                        let mut sum = 0.0f64;
                        for c2 in lo.max(0) as usize..=hi.min(s.c - 1) {
                            let v = input[(n * s.c + c2) * plane + p] as f64;
                            sum += v * v;
                        }
                        let x = input[(n * s.c + c) * plane + p] as f64;
                        let want = x / libm::pow(
                            bias as f64 + alpha as f64 / size as f64 * sum,
                            beta as f64,
                        );
                        let got = out[(n * s.c + c) * plane + p] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * want.abs() + 1e-7,
                            "{got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
