//! Integer fixed-point arithmetic of the TFLite int8 spec, shared by every int8 kernel.
//!
//! A real multiplier `M` in (0, 2^31) is stored as a Q0.31 `multiplier` in
//! `[2^30, 2^31)` and a power-of-two `shift` (positive = left), so that
//! `x * M ~= multiply_by_quantized_multiplier(x, multiplier, shift)` using integers only.
//! [`quantize_multiplier`] (which uses floating point) runs on the host at conversion.

/// A requantization factor: `value * multiplier * 2^(shift - 31)`, rounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Requant {
    /// Q0.31 mantissa in `[2^30, 2^31)`, or 0 for a zero multiplier.
    pub multiplier: i32,
    /// Power-of-two exponent; positive shifts left.
    pub shift: i32,
}

impl Requant {
    /// Applies the factor to `x` with round-to-nearest (TFLite reference semantics).
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        multiply_by_quantized_multiplier(x, self.multiplier, self.shift)
    }

    /// Host-side: the fixed-point form of the real factor `real` (>= 0).
    pub fn from_real(real: f64) -> Requant {
        let (multiplier, shift) = quantize_multiplier(real);
        Requant { multiplier, shift }
    }
}

// SAFETY: `Requant` is `repr(C)` with two `i32` fields: no padding, and every bit
// pattern is a valid value, so it may be cast from the model's bytes.
unsafe impl bytemuck::Zeroable for Requant {}
// SAFETY: as above (`repr(C)`, two `i32`, no padding, all bit patterns valid).
unsafe impl bytemuck::Pod for Requant {}

/// `(a * b * 2) >> 31` with rounding and saturation (gemmlowp `SaturatingRoundingDoublingHighMul`).
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// `x / 2^exponent` rounded to nearest, ties away from zero (gemmlowp `RoundingDivideByPOT`).
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    if exponent <= 0 {
        return x;
    }
    let mask: i32 = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + ((x < 0) as i32);
    (x >> exponent) + ((remainder > threshold) as i32)
}

/// TFLite `MultiplyByQuantizedMultiplier`: `x * multiplier * 2^(shift - 31)`, rounded.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = shift.clamp(0, 31);
    let right = (-shift).clamp(0, 31);
    let shifted = (x as i64) << left;
    let shifted = shifted.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted, multiplier),
        right,
    )
}

/// Host-side helper: splits `real` (>= 0) into a Q0.31 multiplier and a shift.
///
/// Uses floating point; call it at conversion, never inside a kernel.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real <= 0.0 || !real.is_finite() {
        return (0, 0);
    }
    // real = q * 2^shift with q in [0.5, 1).
    let (q, mut shift) = libm::frexp(real);
    let mut q_fixed = libm::round(q * (1u64 << 31) as f64) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    if shift > 30 {
        return (i32::MAX, 30);
    }
    (q_fixed as i32, shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplier_round_trips_common_scales() {
        for real in [0.5, 0.25, 0.0039215, 1.0e-4, 0.9999, 1.5, 3.0] {
            let (m, s) = quantize_multiplier(real);
            let approx = m as f64 * 2f64.powi(s - 31);
            assert!((approx - real).abs() / real < 1e-9, "{real}: {m} {s}");
            // 2^20 keeps the product well inside i32 for every factor above.
            let x = 1 << 20;
            let want = (x as f64 * real).round() as i32;
            assert!((multiply_by_quantized_multiplier(x, m, s) - want).abs() <= 1);
        }
    }

    #[test]
    fn rounding_divide_matches_gemmlowp() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3); // 2.5 -> 3
        assert_eq!(rounding_divide_by_pot(-5, 1), -3); // -2.5 -> -3
        assert_eq!(rounding_divide_by_pot(4, 2), 1);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5 -> -2
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    #[test]
    fn doubling_high_mul_saturates() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
    }
}
