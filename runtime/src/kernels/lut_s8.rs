//! Int8 elementwise functions through a 256-entry lookup table.
//!
//! Every int8 unary activation (Relu, Sigmoid, Tanh, HardSwish, LeakyRelu,
//! Gelu...) runs as one table lookup per element: the converter evaluates the
//! real function once per possible input value with [`build_lut_s8`] (on the
//! host, in floating point) and stores the table in the model, so the kernel
//! is exact and identical on every target.

/// `output[i] = table[input[i] as i32 + 128]`.
///
/// `table` holds 256 entries, indexed by the input value offset by 128;
/// `input` and `output` have the same length. With a shorter table (API misuse)
/// the output is left untouched.
pub fn lut_s8(input: &[i8], table: &[i8], output: &mut [i8]) {
    debug_assert_eq!(table.len(), 256);
    debug_assert_eq!(input.len(), output.len());
    let Some(table) = table.first_chunk::<256>() else {
        return;
    };
    for (o, &x) in output.iter_mut().zip(input) {
        *o = table[(x as i32 + 128) as usize];
    }
}

/// Host-side, uses float: the table of `f` between two int8 quantizations.
///
/// Entry `q + 128` is `saturate(round(f(input_scale * (q - input_zero_point)) / output_scale) + output_zero_point)`
/// for `q` in `-128..=127`: `f` is evaluated in f32 as the model computes it, the
/// division and rounding (half away from zero) in f64, then the result is
/// saturated to `[-128, 127]` (infinities included). A NaN result maps to
/// `output_zero_point` (real 0).
pub fn build_lut_s8(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    f: impl Fn(f32) -> f32,
) -> [i8; 256] {
    let mut table = [0i8; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let q = i as i32 - 128;
        let y = f(input_scale * (q - input_zero_point) as f32);
        let scaled = libm::round(y as f64 / output_scale as f64);
        let value = if scaled.is_nan() {
            output_zero_point as f64
        } else {
            scaled + output_zero_point as f64
        };
        *entry = value.clamp(-128.0, 127.0) as i8;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_table_maps_through_quantizations() {
        let table = build_lut_s8(0.1, 0, 0.05, -128, |x| x.max(0.0));
        let input = [-128i8, -1, 0, 1, 10, 63, 127];
        let mut out = [0i8; 7];
        lut_s8(&input, &table, &mut out);
        // q > 0: 0.1 q / 0.05 - 128 = 2q - 128; else -128.
        assert_eq!(out, [-128, -128, -128, -126, -108, -2, 126]);
        // Output zero point 0: 2q saturates at 127 from q = 64.
        let table = build_lut_s8(0.1, 0, 0.05, 0, |x| x.max(0.0));
        lut_s8(&input, &table, &mut out);
        assert_eq!(out, [0, 0, 0, 2, 20, 126, 127]);
    }

    #[test]
    fn rounds_half_away_from_zero_and_maps_nan_to_zero_point() {
        // Identity with output scale 2x the input's: q / 2 exactly, ties away from zero.
        let table = build_lut_s8(1.0, 0, 2.0, 0, |x| x);
        assert_eq!(table[(3 + 128) as usize], 2); // 1.5 -> 2
        assert_eq!(table[(-3 + 128) as usize], -2); // -1.5 -> -2
        assert_eq!(table[(-1 + 128) as usize], -1); // -0.5 -> -1
        let table = build_lut_s8(1.0, 0, 1.0, 7, |_| f32::NAN);
        assert!(table.iter().all(|&v| v == 7));
        let table = build_lut_s8(1.0, 0, 1.0, 0, |x| {
            if x > 0.0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            }
        });
        assert_eq!((table[0], table[255]), (-128, 127));
    }

    /// Sigmoid through the table against the float model: exact by
    /// construction (same formula), checked here over every input value.
    #[test]
    fn sigmoid_matches_float_model() {
        let (si, zi, so, zo) = (0.06f32, 5, 1.0f32 / 256.0, -128);
        let sigmoid = |x: f32| 1.0 / (1.0 + libm::expf(-x));
        let table = build_lut_s8(si, zi, so, zo, sigmoid);
        let input: [i8; 256] = core::array::from_fn(|i| (i as i32 - 128) as i8);
        let mut out = [0i8; 256];
        lut_s8(&input, &table, &mut out);
        for (&x, &y) in input.iter().zip(&out) {
            let real = sigmoid(si * (x as i32 - zi) as f32) as f64;
            let want = (libm::round(real / so as f64) as i32 + zo).clamp(-128, 127);
            assert_eq!(y as i32, want, "x = {x}");
        }
        // And the curve is monotonic, spanning the output range.
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!((out[0], out[255]), (-128, 127));
    }
}
