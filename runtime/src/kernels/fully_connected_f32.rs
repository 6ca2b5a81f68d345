//! Float fully connected layer (Gemm / MatMul with constant weights): input
//! `[rows][in_features]`, weights `[out_features][in_features]` as f32 or f16.
//!
//! Four output features at a time: each chunk of [`LANES`] inputs is loaded once and
//! multiplied into four weight rows, each with [`LANES`] independent accumulators (a
//! fixed lane order, so LLVM vectorizes the reduction without reassociating floats).

use super::{FloatWeight, FullyConnectedDims, FullyConnectedF32Args};

/// Independent partial sums per dot product.
const LANES: usize = 8;

super::cpu::multiversion! {
    /// `output[r][o] = clamp(bias[o] + sum_k input[r][k] * weights[o][k])`.
    ///
    /// Preconditions (debug-asserted): `input.len() == rows * in_features`,
    /// `weights.len() == out_features * in_features`, `output.len() == rows * out_features`,
    /// `bias` (if any) holds `out_features` values.
    pub fn fully_connected_f32<W: FloatWeight>(args: &FullyConnectedF32Args<W>, output: &mut [f32]) => fully_connected_f32_body;
}

/// The body of [`fully_connected_f32`], compiled once per instruction set (the
/// AVX2 copy runs eight lanes per step; the sums are the same, lane by lane).
#[inline(always)]
fn fully_connected_f32_body<W: FloatWeight>(args: &FullyConnectedF32Args<W>, output: &mut [f32]) {
    let FullyConnectedF32Args {
        input,
        weights,
        bias,
        dims:
            FullyConnectedDims {
                rows,
                in_features,
                out_features,
            },
        clamp,
    } = *args;
    debug_assert_eq!(input.len(), rows * in_features);
    debug_assert_eq!(weights.len(), out_features * in_features);
    debug_assert_eq!(output.len(), rows * out_features);
    debug_assert!(bias.is_none_or(|b| b.len() == out_features));
    if out_features == 0 {
        return;
    }
    let k = in_features;
    let bias_of = |o: usize| bias.map_or(0.0, |b| b[o]);
    for (r, out_row) in output.chunks_exact_mut(out_features).take(rows).enumerate() {
        let x = &input[r * k..][..k];
        let main = out_features / 4 * 4;
        let (out_main, out_tail) = out_row.split_at_mut(main);
        for (blk, out4) in out_main.chunks_exact_mut(4).enumerate() {
            let o0 = blk * 4;
            let w4 = &weights[o0 * k..][..4 * k];
            let w_rows: [&[W]; 4] = core::array::from_fn(|i| &w4[i * k..][..k]);
            let sums = dot4(x, w_rows);
            for (i, (o, s)) in out4.iter_mut().zip(sums).enumerate() {
                *o = clamp.apply(s + bias_of(o0 + i));
            }
        }
        for (i, o) in out_tail.iter_mut().enumerate() {
            let oc = main + i;
            *o = clamp.apply(dot1(x, &weights[oc * k..][..k]) + bias_of(oc));
        }
    }
}

/// Four dot products of `x` with the rows `w`, sharing the loads of `x`.
#[inline(always)]
fn dot4<W: FloatWeight>(x: &[f32], w: [&[W]; 4]) -> [f32; 4] {
    let k = x.len();
    let main = k / LANES * LANES;
    let mut acc = [[0.0f32; LANES]; 4];
    for c in (0..main).step_by(LANES) {
        let xs = &x[c..c + LANES];
        for (acc_r, w_r) in acc.iter_mut().zip(&w) {
            let ws = W::widen8(w_r[c..c + LANES].try_into().expect("8 weights"));
            for ((a, &xv), wv) in acc_r.iter_mut().zip(xs).zip(ws) {
                *a += xv * wv;
            }
        }
    }
    let mut sums = [0.0f32; 4];
    for ((s, acc_r), w_r) in sums.iter_mut().zip(&acc).zip(&w) {
        let mut tail = 0.0f32;
        for (&xv, wv) in x[main..].iter().zip(&w_r[main..k]) {
            tail += xv * wv.to_f32();
        }
        *s = horizontal_sum(acc_r) + tail;
    }
    sums
}

/// One dot product with [`LANES`] accumulators.
#[inline(always)]
fn dot1<W: FloatWeight>(x: &[f32], w: &[W]) -> f32 {
    let k = x.len();
    let main = k / LANES * LANES;
    let mut acc = [0.0f32; LANES];
    for (xs, ws) in x[..main]
        .chunks_exact(LANES)
        .zip(w[..main].chunks_exact(LANES))
    {
        let ws = W::widen8(ws.try_into().expect("8 weights"));
        for ((a, &xv), wv) in acc.iter_mut().zip(xs).zip(ws) {
            *a += xv * wv;
        }
    }
    let mut tail = 0.0f32;
    for (&xv, wv) in x[main..].iter().zip(&w[main..k]) {
        tail += xv * wv.to_f32();
    }
    horizontal_sum(&acc) + tail
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
    use super::super::ClampF32;
    use super::*;
    use half::f16;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    #[test]
    fn hand_computed() {
        // 2 rows x 3 features -> 5 outputs (one block of 4 plus a tail of 1).
        let input = [1.0f32, 2.0, 3.0, -1.0, 0.0, 1.0];
        let weights = [
            1.0f32, 0.0, 0.0, //
            0.0, 1.0, 0.0, //
            0.0, 0.0, 1.0, //
            1.0, 1.0, 1.0, //
            1.0, -1.0, 2.0,
        ];
        let bias = [0.0f32, 0.0, 0.0, 0.5, -1.0];
        let mut out = [0.0f32; 10];
        fully_connected_f32(
            &FullyConnectedF32Args {
                input: &input,
                weights: &weights,
                bias: Some(&bias),
                dims: FullyConnectedDims {
                    rows: 2,
                    in_features: 3,
                    out_features: 5,
                },
                clamp: ClampF32::NONE,
            },
            &mut out,
        );
        assert_eq!(out, [1.0, 2.0, 3.0, 6.5, 4.0, -1.0, 0.0, 1.0, 0.5, 0.0]);
        let relu = ClampF32 {
            min: 0.0,
            max: f32::INFINITY,
        };
        fully_connected_f32(
            &FullyConnectedF32Args {
                input: &input,
                weights: &weights,
                bias: None,
                dims: FullyConnectedDims {
                    rows: 2,
                    in_features: 3,
                    out_features: 5,
                },
                clamp: relu,
            },
            &mut out,
        );
        assert_eq!(out, [1.0, 2.0, 3.0, 6.0, 5.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn random_sizes_match_naive() {
        // f32 accumulation in a lane-split order vs an f64 reference: error is bounded by
        // about K * 6e-8 * sum|terms|; K <= 100 here, so 1e-5 * sum|terms| + 1e-6 is safe.
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        for iter in 0..60 {
            let rows = 1 + rng.below(3);
            let k = rng.below(40) + if iter % 5 == 0 { 60 } else { 0 };
            let n = 1 + rng.below(11);
            let input: Vec<f32> = (0..rows * k).map(|_| rng.f32()).collect();
            let weights: Vec<f32> = (0..n * k).map(|_| rng.f32()).collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            let bias = (iter % 3 != 0).then_some(&bias[..]);
            let w16: Vec<f16> = weights.iter().map(|&w| f16::from_f32(w)).collect();
            let mut out = vec![f32::NAN; rows * n];
            let mut out16 = vec![f32::NAN; rows * n];
            fully_connected_f32(
                &FullyConnectedF32Args {
                    input: &input,
                    weights: &weights,
                    bias,
                    dims: FullyConnectedDims {
                        rows,
                        in_features: k,
                        out_features: n,
                    },
                    clamp: ClampF32::NONE,
                },
                &mut out,
            );
            fully_connected_f32(
                &FullyConnectedF32Args {
                    input: &input,
                    weights: &w16,
                    bias,
                    dims: FullyConnectedDims {
                        rows,
                        in_features: k,
                        out_features: n,
                    },
                    clamp: ClampF32::NONE,
                },
                &mut out16,
            );
            for r in 0..rows {
                for o in 0..n {
                    let b = bias.map_or(0.0, |b| b[o] as f64);
                    let (mut want, mut want16, mut mag) = (b, b, b.abs());
                    for i in 0..k {
                        let x = input[r * k + i] as f64;
                        want += x * weights[o * k + i] as f64;
                        want16 += x * w16[o * k + i].to_f64();
                        mag += (x * weights[o * k + i] as f64).abs();
                    }
                    let tol = 1e-5 * mag + 1e-6;
                    assert!((out[r * n + o] as f64 - want).abs() <= tol, "k={k} n={n}");
                    assert!(
                        (out16[r * n + o] as f64 - want16).abs() <= tol,
                        "f16 k={k} n={n}"
                    );
                }
            }
        }
    }
}
