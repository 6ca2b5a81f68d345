//! Casts between `f32` and `i32` (ONNX Cast; booleans are `i32` 0 / 1 in Tern).

/// `output[i] = input[i]` truncated toward zero, saturating at `i32::MIN` / `i32::MAX`,
/// NaN giving 0 (Rust's `as`; ONNX leaves out-of-range and NaN inputs undefined, this
/// makes them deterministic on every target).
///
/// Precondition (debug-asserted): equal lengths.
pub fn cast_f32_to_i32(input: &[f32], output: &mut [i32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = x as i32;
    }
}

/// `output[i] = input[i]` as f32: exact up to 2^24 in magnitude, rounded to nearest
/// (ties to even) beyond.
///
/// Precondition (debug-asserted): equal lengths.
pub fn cast_i32_to_f32(input: &[i32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = x as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_to_int_truncates_and_saturates() {
        let x = [
            0.0f32,
            -0.0,
            1.9,
            -1.9,
            0.5,
            -0.5,
            2147483520.0,
            3e9,
            -3e9,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let mut out = [7i32; 12];
        cast_f32_to_i32(&x, &mut out);
        assert_eq!(
            out,
            [
                0,
                0,
                1,
                -1,
                0,
                0,
                2147483520,
                i32::MAX,
                i32::MIN,
                i32::MAX,
                i32::MIN,
                0
            ]
        );
        cast_f32_to_i32(&[], &mut []);
    }

    #[test]
    fn int_to_float_rounds_to_nearest() {
        let mut out = [0.0f32; 5];
        cast_i32_to_f32(&[0, 1, -7, 16_777_217, i32::MIN], &mut out);
        assert_eq!(out, [0.0, 1.0, -7.0, 16_777_216.0, -2147483648.0]);
        cast_i32_to_f32(&[], &mut []);
    }
}
