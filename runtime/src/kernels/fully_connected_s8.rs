//! Int8 fully connected layer, portable reference (TFLite int8 spec, integer-only).
//!
//! Direct loops; [`super::fully_connected_s8_fast`] must match it bit for bit.
//! Quantization parameters are the convolution's [`ConvS8Quant`].

use super::conv2d_s8::bias_of;
use super::{FullyConnectedDims, FullyConnectedS8Args};

/// Int8 fully connected layer (reference implementation).
///
/// * `input`: `rows` rows of `in_features` values, quantized with `quant.input_zero_point`.
/// * `weights`: `[out_features][in_features]`, symmetric (zero point 0).
/// * `bias`: `out_features` values in units of `input_scale * weight_scale[n]`, or empty.
/// * `output`: `rows` rows of `out_features` values.
///
/// `acc = bias[n] + sum_k w[n][k] * (x[r][k] - input_zero_point)` (wrapping `i32`),
/// `output[r][n] = clamp(requant[n].apply(acc) + output_zero_point, act_min, act_max)`
/// (see [`ConvS8Quant`]; `requant` has `out_features` entries or a single shared one).
pub fn fully_connected_s8(args: &FullyConnectedS8Args, output: &mut [i8]) {
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
    let zp = quant.input_zero_point;
    for r in 0..rows {
        let x = &input[r * in_features..][..in_features];
        for n in 0..out_features {
            let w = &weights[n * in_features..][..in_features];
            let mut acc = bias_of(bias, n);
            for (&wv, &xv) in w.iter().zip(x) {
                acc = acc.wrapping_add(wv as i32 * (xv as i32 - zp));
            }
            output[r * out_features + n] = quant.finish(quant.requant_of(n), acc);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::ConvS8Quant;
    use super::super::conv2d_s8::testing::{XorShift, quantize};
    use super::*;
    use crate::quant::Requant;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn hand_computed_two_outputs() {
        // x - zp = [1, 2, 3]; w0 = [1, 0, -1] -> -2 + bias 10 = 8; w1 = [2, 2, 2] -> 12 - 4 = 8.
        let input = [3i8, 4, 5];
        let weights = [1i8, 0, -1, 2, 2, 2];
        // Factors 0.5 (exact: 2^30 * 2^-31) and 1.0.
        let requant = [
            Requant {
                multiplier: 1 << 30,
                shift: 0,
            },
            Requant {
                multiplier: 1 << 30,
                shift: 1,
            },
        ];
        let quant = ConvS8Quant {
            input_zero_point: 2,
            output_zero_point: -1,
            requant: &requant,
            act_min: -128,
            act_max: 127,
        };
        let mut out = [0i8; 2];
        fully_connected_s8(
            &FullyConnectedS8Args {
                input: &input,
                weights: &weights,
                bias: &[10, -4],
                dims: FullyConnectedDims {
                    rows: 1,
                    in_features: 3,
                    out_features: 2,
                },
                quant,
            },
            &mut out,
        );
        assert_eq!(out, [8 / 2 - 1, 8 - 1]);
    }

    /// Against dequantize -> f64 matmul -> quantize; 1 LSB for the fixed-point multiplier.
    #[test]
    fn matches_float_model_within_one_lsb() {
        let mut rng = XorShift(0xFC01);
        for case in 0..60 {
            let (rows, k, n) = (rng.urange(1, 3), rng.urange(1, 300), rng.urange(1, 20));
            let input = rng.i8s(rows * k, -128, 127);
            let weights = rng.i8s(n * k, -127, 127);
            let bias: Vec<i32> = (0..n).map(|_| rng.range(-3000, 3000)).collect();
            let (sx, zx) = (rng.float(0.01, 0.05), rng.range(-128, 127));
            let (so, zo) = (rng.float(0.05, 1.0), rng.range(-30, 30));
            let sw: Vec<f64> = (0..n).map(|_| rng.float(0.001, 0.01)).collect();
            let requant: Vec<Requant> =
                sw.iter().map(|w| Requant::from_real(sx * w / so)).collect();
            let quant = ConvS8Quant {
                input_zero_point: zx,
                output_zero_point: zo,
                requant: &requant,
                act_min: if case % 2 == 0 { zo } else { -128 },
                act_max: 127,
            };
            let mut out = vec![0i8; rows * n];
            fully_connected_s8(
                &FullyConnectedS8Args {
                    input: &input,
                    weights: &weights,
                    bias: &bias,
                    dims: FullyConnectedDims {
                        rows,
                        in_features: k,
                        out_features: n,
                    },
                    quant,
                },
                &mut out,
            );
            for r in 0..rows {
                for j in 0..n {
                    let mut acc = bias[j] as f64 * sx * sw[j];
                    for i in 0..k {
                        acc += sx
                            * (input[r * k + i] as i32 - zx) as f64
                            * sw[j]
                            * weights[j * k + i] as f64;
                    }
                    let want = quantize(acc, so, zo).max(quant.act_min);
                    let got = out[r * n + j] as i32;
                    assert!(
                        (got - want).abs() <= 1,
                        "case {case} [{r}][{j}]: {got} vs {want}"
                    );
                }
            }
        }
    }
}
