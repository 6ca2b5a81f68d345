//! Int8 elementwise Add, Sub, Mul and Div with numpy broadcasting, integer-only.
//!
//! Add and Sub follow TFLite's scheme (both inputs rescaled to a common
//! fixed-point scale with 20 bits of headroom, added, requantized), Mul
//! requantizes the product of the zero-point-corrected inputs, and Div computes
//! a rounded Q16 integer quotient that is then requantized. The host-side
//! [`BinaryS8Params::new`] chooses every factor.

use super::{BinaryOp, MAX_RANK, Operand, broadcast_strides};
use crate::quant::Requant;

/// Fixed-point parameters of an int8 binary op, built by [`BinaryS8Params::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinaryS8Params {
    /// The operation.
    pub op: BinaryOp,
    /// Zero point of `a`.
    pub a_zero_point: i32,
    /// Zero point of `b`.
    pub b_zero_point: i32,
    /// Zero point of the output.
    pub output_zero_point: i32,
    /// Add/Sub: `a_scale / (2 * max(a_scale, b_scale))`; unused by Mul/Div.
    pub a_requant: Requant,
    /// Add/Sub: `b_scale / (2 * max(a_scale, b_scale))`; unused by Mul/Div.
    pub b_requant: Requant,
    /// Add/Sub: `2 * max(a_scale, b_scale) / (2^left_shift * output_scale)`;
    /// Mul: `a_scale * b_scale / output_scale`; Div: `a_scale / (b_scale * output_scale) / 2^16`.
    pub output_requant: Requant,
    /// Add/Sub: headroom bits applied to `x - zero_point` before rescaling (20); unused by Mul/Div.
    pub left_shift: i32,
    /// Lower output bound (int8), raised by a fused Relu / Clip.
    pub act_min: i32,
    /// Upper output bound (int8), lowered by a fused Relu6 / Clip.
    pub act_max: i32,
}

impl BinaryS8Params {
    /// Host-side, uses float: parameters of `op` for inputs and output quantized
    /// as `(scale, zero_point)`, with output bounds `act_min..=act_max`.
    ///
    /// `left_shift` is 20 for every op (Mul and Div ignore it). Add/Sub:
    /// `twice_max = 2 * max(sa, sb)`, `a_requant = sa / twice_max`,
    /// `b_requant = sb / twice_max`, `output_requant = twice_max / (2^20 * so)`.
    /// Mul: `output_requant = sa * sb / so`. Div: `output_requant = sa / (sb * so) * 2^-16`.
    /// Unused factors are zero.
    pub fn new(
        op: BinaryOp,
        a: (f32, i32),
        b: (f32, i32),
        out: (f32, i32),
        act_min: i32,
        act_max: i32,
    ) -> BinaryS8Params {
        const LEFT_SHIFT: i32 = 20;
        let (sa, sb, so) = (a.0 as f64, b.0 as f64, out.0 as f64);
        let none = Requant::default();
        let (a_requant, b_requant, output_requant) = match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Max | BinaryOp::Min => {
                let twice_max = 2.0 * sa.max(sb);
                (
                    Requant::from_real(sa / twice_max),
                    Requant::from_real(sb / twice_max),
                    Requant::from_real(twice_max / ((1u64 << LEFT_SHIFT) as f64 * so)),
                )
            }
            BinaryOp::Mul => (none, none, Requant::from_real(sa * sb / so)),
            BinaryOp::Div => (none, none, Requant::from_real(sa / (sb * so) / 65536.0)),
            // No integer kernel: an int8 model runs Pow as a float island, and the
            // parameter decoder refuses it.
            BinaryOp::Pow => (none, none, none),
        };
        BinaryS8Params {
            op,
            a_zero_point: a.1,
            b_zero_point: b.1,
            output_zero_point: out.1,
            a_requant,
            b_requant,
            output_requant,
            left_shift: LEFT_SHIFT,
            act_min,
            act_max,
        }
    }

    /// The int8 result for one pair of quantized inputs (see [`binary_s8`]).
    #[inline]
    pub fn apply(&self, a: i8, b: i8) -> i8 {
        let da = a as i32 - self.a_zero_point;
        let db = b as i32 - self.b_zero_point;
        let raw = match self.op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Max | BinaryOp::Min => {
                let shift = self.left_shift.clamp(0, 31);
                let widen =
                    |d: i32| ((d as i64) << shift).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                let a1 = self.a_requant.apply(widen(da));
                let b1 = self.b_requant.apply(widen(db));
                let sum = match self.op {
                    BinaryOp::Add => a1.saturating_add(b1),
                    BinaryOp::Sub => a1.saturating_sub(b1),
                    BinaryOp::Max => a1.max(b1),
                    _ => a1.min(b1),
                };
                self.output_requant.apply(sum)
            }
            BinaryOp::Mul | BinaryOp::Pow => self.output_requant.apply(da.wrapping_mul(db)),
            BinaryOp::Div => {
                if db == 0 {
                    let bound = if da >= 0 { self.act_max } else { self.act_min };
                    return bound.clamp(-128, 127) as i8;
                }
                // round(da * 2^16 / db), ties away from zero.
                let (num, den) = ((da as i64) << 16, db as i64);
                let magnitude = (num.abs() + den.abs() / 2) / den.abs();
                let quotient = if (num < 0) != (den < 0) {
                    -magnitude
                } else {
                    magnitude
                };
                self.output_requant
                    .apply(quotient.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
            }
        };
        let value = raw.saturating_add(self.output_zero_point);
        value.max(self.act_min).min(self.act_max).clamp(-128, 127) as i8
    }
}

/// `output = a op b` elementwise with numpy broadcasting (rank <= [`MAX_RANK`]).
///
/// With `da = a - a_zero_point`, `db = b - b_zero_point` and `zo = output_zero_point`:
/// * Add/Sub: `a' = a_requant.apply(da << left_shift)`, `b' = b_requant.apply(db << left_shift)`
///   (the shift saturates to `i32`), `out = output_requant.apply(a' ± b') + zo`;
/// * Mul: `out = output_requant.apply(da * db) + zo`;
/// * Div: `q = round(da * 2^16 / db)` (ties away from zero), `out = output_requant.apply(q) + zo`;
///   division by a real zero (`db == 0`) gives `act_max` when `da >= 0` and
///   `act_min` otherwise (the sign of the infinity, saturated);
///
/// then `out` is clamped to `[act_min, act_max]` and to int8.
///
/// Shapes are right-aligned; every input axis has the output's length or 1
/// (broadcast). Same-shape operands and single-element operands take fast
/// paths; everything else walks the output with per-axis strides.
pub fn binary_s8(
    params: &BinaryS8Params,
    a: Operand<i8>,
    b: Operand<i8>,
    output: &mut [i8],
    out_shape: &[usize],
) {
    let (a, a_shape, b, b_shape) = (a.data, a.shape, b.data, b.shape);
    debug_assert!(out_shape.len() <= MAX_RANK);
    debug_assert!(a_shape.len() <= out_shape.len() && b_shape.len() <= out_shape.len());
    let len: usize = out_shape.iter().product();
    debug_assert!(output.len() >= len);
    let output = &mut output[..len];
    if len == 0 {
        return;
    }
    if a.len() == len && b.len() == len {
        for ((o, &x), &y) in output.iter_mut().zip(a).zip(b) {
            *o = params.apply(x, y);
        }
        return;
    }
    if b.len() == 1 && a.len() == len {
        let y = b[0];
        for (o, &x) in output.iter_mut().zip(a) {
            *o = params.apply(x, y);
        }
        return;
    }
    if a.len() == 1 && b.len() == len {
        let x = a[0];
        for (o, &y) in output.iter_mut().zip(b) {
            *o = params.apply(x, y);
        }
        return;
    }

    // General broadcast: an odometer over the outer axes, a strided loop over the last.
    let rank = out_shape.len();
    let a_strides = broadcast_strides(a_shape, out_shape);
    let b_strides = broadcast_strides(b_shape, out_shape);
    let inner = out_shape[rank - 1];
    let (a_step, b_step) = (a_strides[rank - 1], b_strides[rank - 1]);
    let mut index = [0usize; MAX_RANK];
    let (mut a_base, mut b_base) = (0usize, 0usize);
    for row in output.chunks_exact_mut(inner) {
        for (i, o) in row.iter_mut().enumerate() {
            *o = params.apply(a[a_base + i * a_step], b[b_base + i * b_step]);
        }
        // Advance the outer index (axes rank-2 down to 0).
        for axis in (0..rank - 1).rev() {
            index[axis] += 1;
            a_base += a_strides[axis];
            b_base += b_strides[axis];
            if index[axis] < out_shape[axis] {
                break;
            }
            a_base -= a_strides[axis] * out_shape[axis];
            b_base -= b_strides[axis] * out_shape[axis];
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::{XorShift, quantize};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn real_op(op: BinaryOp, x: f64, y: f64) -> f64 {
        match op {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            BinaryOp::Max => x.max(y),
            BinaryOp::Min => x.min(y),
            BinaryOp::Pow => x.powf(y),
        }
    }

    /// Every pair of int8 inputs against dequantize -> f64 op -> quantize, for
    /// each op and a few quantizations. Tolerance 1 LSB: the fixed-point path
    /// rounds the rescaled inputs (Add/Sub) or the Q16 quotient (Div) before the
    /// final rounding.
    #[test]
    fn all_input_pairs_match_float_model_within_one_lsb() {
        let quants = [
            ((0.05f32, 3), (0.03f32, -10), (0.08f32, 5)),
            ((0.1, -128), (0.1, -128), (0.2, -128)),
            ((0.02, 20), (0.5, 0), (0.6, -3)),
        ];
        for op in [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Max,
            BinaryOp::Min,
        ] {
            for &(qa, qb, qo) in &quants {
                let qo = if op == BinaryOp::Mul {
                    (qa.0 * qb.0 * 40.0, qo.1)
                } else {
                    qo
                };
                let qo = if op == BinaryOp::Div {
                    (qa.0 / qb.0 / 20.0, qo.1)
                } else {
                    qo
                };
                let p = BinaryS8Params::new(op, qa, qb, qo, -128, 127);
                for x in -128..=127i32 {
                    for y in -128..=127i32 {
                        let got = p.apply(x as i8, y as i8) as i32;
                        let (rx, ry) = (
                            qa.0 as f64 * (x - qa.1) as f64,
                            qb.0 as f64 * (y - qb.1) as f64,
                        );
                        let want = if op == BinaryOp::Div && y == qb.1 {
                            if rx >= 0.0 { 127 } else { -128 }
                        } else {
                            quantize(real_op(op, rx, ry), qo.0 as f64, qo.1)
                        };
                        assert!((got - want).abs() <= 1, "{op:?} {x} {y}: {got} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn hand_computed_add_with_relu() {
        // Same scale everywhere (0.5), zero points 0: out = a + b, clamped at 0.
        let p = BinaryS8Params::new(BinaryOp::Add, (0.5, 0), (0.5, 0), (0.5, 0), 0, 127);
        let mut out = [0i8; 4];
        binary_s8(
            &p,
            Operand::new(&[1, 2, -3, 100], &[4]),
            Operand::new(&[10, -5, 1, 100], &[4]),
            &mut out,
            &[4],
        );
        assert_eq!(out, [11, 0, 0, 127]);
    }

    #[test]
    fn division_by_zero_saturates_by_numerator_sign() {
        let p = BinaryS8Params::new(BinaryOp::Div, (0.1, 0), (0.1, 4), (0.1, 0), -100, 90);
        assert_eq!(p.apply(5, 4), 90);
        assert_eq!(p.apply(0, 4), 90);
        assert_eq!(p.apply(-5, 4), -100);
        assert_eq!(p.apply(10, 6), 50); // 1.0 / 0.2 = 5.0 -> 50
    }

    /// Broadcast paths against elementwise application on expanded operands.
    #[test]
    fn broadcasting_matches_expanded_operands() {
        let mut rng = XorShift(0xB0A);
        let p = BinaryS8Params::new(BinaryOp::Sub, (0.04, 1), (0.07, -2), (0.1, 0), -128, 127);
        for case in 0..200 {
            let rank = rng.urange(1, MAX_RANK);
            let out_shape: Vec<usize> = (0..rank).map(|_| rng.urange(1, 4)).collect();
            let shape_of = |rng: &mut XorShift| -> Vec<usize> {
                let r = rng.urange(0, rank);
                out_shape[rank - r..]
                    .iter()
                    .map(|&d| if rng.urange(0, 2) == 0 { 1 } else { d })
                    .collect()
            };
            let (a_shape, b_shape) = (shape_of(&mut rng), shape_of(&mut rng));
            let (a_len, b_len) = (a_shape.iter().product(), b_shape.iter().product());
            let (a, b) = (rng.i8s(a_len, -128, 127), rng.i8s(b_len, -128, 127));
            let len: usize = out_shape.iter().product();
            let mut out = vec![0i8; len];
            binary_s8(
                &p,
                Operand::new(&a, &a_shape),
                Operand::new(&b, &b_shape),
                &mut out,
                &out_shape,
            );
            // Expected: index each operand by the broadcast coordinates.
            let coord_index = |flat: usize, shape: &[usize]| -> usize {
                let mut rem = flat;
                let mut coords = vec![0usize; rank];
                for axis in (0..rank).rev() {
                    coords[axis] = rem % out_shape[axis];
                    rem /= out_shape[axis];
                }
                let offset = rank - shape.len();
                shape.iter().enumerate().fold(0, |idx, (i, &d)| {
                    idx * d + if d == 1 { 0 } else { coords[offset + i] }
                })
            };
            for (i, &got) in out.iter().enumerate() {
                let want = p.apply(a[coord_index(i, &a_shape)], b[coord_index(i, &b_shape)]);
                assert_eq!(
                    got, want,
                    "case {case}: {a_shape:?} {b_shape:?} -> {out_shape:?} at {i}"
                );
            }
        }
    }
}
