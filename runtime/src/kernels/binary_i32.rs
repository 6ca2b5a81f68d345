//! Integer elementwise Add, Sub, Mul, Div, Max, Min on i32 tensors (token-id
//! arithmetic such as wrapping negative ids) with numpy broadcasting.
//!
//! Add, Sub and Mul wrap on overflow (two's complement, as ONNX integer ops do
//! in practice); Div truncates toward zero and a division by zero gives 0 (ONNX
//! leaves it undefined; Tern must not trap).

use super::broadcast::for_each_run;
use super::{BinaryOp, Operand};

/// `output[i] = a[ia] op b[ib]` with `a_shape`, `b_shape` broadcast to `out_shape`.
/// `Pow` is not an integer op here: the converter never emits it (debug-asserted; it
/// writes 0 in release builds).
///
/// Preconditions (debug-asserted): ranks <= `MAX_RANK`, each operand axis is 1 or the
/// output's, slice lengths match the shapes.
pub fn binary_i32(
    op: BinaryOp,
    a: Operand<i32>,
    b: Operand<i32>,
    output: &mut [i32],
    out_shape: &[usize],
) {
    let (a, a_shape, b, b_shape) = (a.data, a.shape, b.data, b.shape);
    debug_assert_eq!(a.len(), a_shape.iter().product::<usize>());
    debug_assert_eq!(b.len(), b_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    debug_assert!(op != BinaryOp::Pow);
    let f = move |x: i32, y: i32| -> i32 {
        match op {
            BinaryOp::Add => x.wrapping_add(y),
            BinaryOp::Sub => x.wrapping_sub(y),
            BinaryOp::Mul => x.wrapping_mul(y),
            BinaryOp::Div => x.checked_div(y).unwrap_or(0),
            BinaryOp::Max => x.max(y),
            BinaryOp::Min => x.min(y),
            BinaryOp::Pow => 0,
        }
    };
    for_each_run(
        [a_shape, b_shape],
        out_shape,
        |start, len, at, contiguous| {
            let out = &mut output[start..start + len];
            for (k, o) in out.iter_mut().enumerate() {
                let x = a[at[0] + if contiguous[0] { k } else { 0 }];
                let y = b[at[1] + if contiguous[1] { k } else { 0 }];
                *o = f(x, y);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_negative_token_ids_with_broadcasting() {
        // ids + (ids < 0) * 1000, the way Keras wraps negative ids.
        let ids = [5, -1, 999, -1000];
        let negative = [0, 1, 0, 1];
        let mut scaled = [0; 4];
        binary_i32(
            BinaryOp::Mul,
            Operand::new(&negative, &[1, 4]),
            Operand::new(&[1000], &[]),
            &mut scaled,
            &[1, 4],
        );
        let mut out = [0; 4];
        binary_i32(
            BinaryOp::Add,
            Operand::new(&ids, &[1, 4]),
            Operand::new(&scaled, &[1, 4]),
            &mut out,
            &[1, 4],
        );
        assert_eq!(out, [5, 999, 999, 0]);
    }

    #[test]
    fn division_truncates_and_never_traps() {
        let mut out = [0; 4];
        binary_i32(
            BinaryOp::Div,
            Operand::new(&[7, -7, 5, i32::MIN], &[4]),
            Operand::new(&[2, 2, 0, -1], &[4]),
            &mut out,
            &[4],
        );
        assert_eq!(out, [3, -3, 0, 0]);
        binary_i32(
            BinaryOp::Sub,
            Operand::new(&[1, 2], &[2, 1]),
            Operand::new(&[10, 20], &[2]),
            &mut out,
            &[2, 2],
        );
        assert_eq!(out, [-9, -19, -8, -18]);
    }
}
