//! Conversions between f32 and per-tensor quantized int8 (ONNX QuantizeLinear /
//! DequantizeLinear).

/// ONNX QuantizeLinear to int8: `q = saturate(round_half_even(x / scale) + zero_point)`,
/// saturating to `[-128, 127]`; NaN gives `zero_point` (saturated), infinities saturate.
///
/// Preconditions (debug-asserted): `input.len() == output.len()`, `scale > 0`.
pub fn quantize_f32_s8(input: &[f32], scale: f32, zero_point: i32, output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    debug_assert!(scale > 0.0);
    let zp = zero_point as f32;
    let nan_value = zero_point.clamp(-128, 127) as i8;
    for (q, &x) in output.iter_mut().zip(input) {
        // rintf rounds half to even (the default rounding mode); zero points are small
        // integers, so adding one in f32 is exact, and the clamp happens before the cast.
        let v = libm::rintf(x / scale) + zp;
        *q = if v.is_nan() {
            nan_value
        } else {
            v.clamp(-128.0, 127.0) as i8
        };
    }
}

/// ONNX DequantizeLinear from int8: `x = (q - zero_point) * scale`.
///
/// Preconditions (debug-asserted): `input.len() == output.len()`.
pub fn dequantize_s8_f32(input: &[i8], scale: f32, zero_point: i32, output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (x, &q) in output.iter_mut().zip(input) {
        *x = (q as i32 - zero_point) as f32 * scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_to_even_and_saturates() {
        let input = [
            0.5f32,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            0.49,
            1000.0,
            -1000.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let mut out = [0i8; 12];
        quantize_f32_s8(&input, 1.0, 0, &mut out);
        assert_eq!(out, [0, 2, 2, 0, -2, -2, 0, 127, -128, 0, 127, -128]);
        // Scale and zero point: x / 0.5 + 10.
        quantize_f32_s8(&input, 0.5, 10, &mut out);
        assert_eq!(out, [11, 13, 15, 9, 7, 5, 11, 127, -128, 10, 127, -128]);
        // A zero point at the range edge: values just below it saturate.
        let mut one = [0i8; 1];
        quantize_f32_s8(&[-1.0], 1.0, -128, &mut one);
        assert_eq!(one, [-128]);
    }

    #[test]
    fn dequantize_and_round_trip() {
        let q = [-128i8, -1, 0, 1, 127];
        let mut x = [0.0f32; 5];
        dequantize_s8_f32(&q, 0.25, -3, &mut x);
        assert_eq!(x, [-31.25, 0.5, 0.75, 1.0, 32.5]);
        // Every int8 value survives dequantize -> quantize exactly (|x / scale - q| = 0 up
        // to one rounding of the product, far below the 0.5 rounding threshold).
        let all: [i8; 256] = core::array::from_fn(|i| (i as i32 - 128) as i8);
        let mut xs = [0.0f32; 256];
        let mut back = [0i8; 256];
        for (scale, zp) in [(0.1f32, 0), (0.0123, 17), (3.7, -100)] {
            dequantize_s8_f32(&all, scale, zp, &mut xs);
            quantize_f32_s8(&xs, scale, zp, &mut back);
            assert_eq!(back, all, "scale {scale} zp {zp}");
        }
    }
}
