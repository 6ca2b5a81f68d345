//! Elementwise comparisons (ONNX Equal, Less, LessOrEqual, Greater, GreaterOrEqual)
//! with numpy broadcasting, writing booleans as `i32` 0 / 1.

use super::broadcast::for_each_run;
use super::{MAX_RANK, Operand};

/// The comparison of `a` with `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `a == b`
    Equal,
    /// `a < b`
    Less,
    /// `a <= b`
    LessOrEqual,
    /// `a > b`
    Greater,
    /// `a >= b`
    GreaterOrEqual,
}

/// `output[i] = (a[ia] op b[ib]) as i32`, `a_shape` and `b_shape` broadcast to
/// `out_shape` (right-aligned, size-1 axes repeat).
///
/// Comparisons with a float NaN are false (IEEE). Preconditions (debug-asserted): ranks
/// <= [`MAX_RANK`], no operand rank above `out_shape`'s, each operand axis is 1 or the
/// output's, and slice lengths match the shapes.
pub fn compare<T: Copy + PartialOrd>(
    op: CompareOp,
    a: Operand<T>,
    b: Operand<T>,
    output: &mut [i32],
    out_shape: &[usize],
) {
    let (a, a_shape, b, b_shape) = (a.data, a.shape, b.data, b.shape);
    debug_assert!(out_shape.len() <= MAX_RANK);
    debug_assert_eq!(a.len(), a_shape.iter().product::<usize>());
    debug_assert_eq!(b.len(), b_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    let shapes = [a_shape, b_shape];
    match op {
        CompareOp::Equal => broadcast(a, b, output, shapes, out_shape, |x, y| x == y),
        CompareOp::Less => broadcast(a, b, output, shapes, out_shape, |x, y| x < y),
        CompareOp::LessOrEqual => broadcast(a, b, output, shapes, out_shape, |x, y| x <= y),
        CompareOp::Greater => broadcast(a, b, output, shapes, out_shape, |x, y| x > y),
        CompareOp::GreaterOrEqual => broadcast(a, b, output, shapes, out_shape, |x, y| x >= y),
    }
}

#[inline(always)]
fn broadcast<T: Copy>(
    a: &[T],
    b: &[T],
    output: &mut [i32],
    shapes: [&[usize]; 2],
    out_shape: &[usize],
    f: impl Fn(T, T) -> bool,
) {
    for_each_run(shapes, out_shape, |start, len, [oa, ob], [ca, cb]| {
        let run = &mut output[start..start + len];
        match (ca, cb) {
            (true, true) => {
                for ((o, &x), &y) in run.iter_mut().zip(&a[oa..oa + len]).zip(&b[ob..ob + len]) {
                    *o = f(x, y) as i32;
                }
            }
            (true, false) => {
                let y = b[ob];
                for (o, &x) in run.iter_mut().zip(&a[oa..oa + len]) {
                    *o = f(x, y) as i32;
                }
            }
            (false, true) => {
                let x = a[oa];
                for (o, &y) in run.iter_mut().zip(&b[ob..ob + len]) {
                    *o = f(x, y) as i32;
                }
            }
            (false, false) => run.fill(f(a[oa], b[ob]) as i32),
        }
    });
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    const OPS: [CompareOp; 5] = [
        CompareOp::Equal,
        CompareOp::Less,
        CompareOp::LessOrEqual,
        CompareOp::Greater,
        CompareOp::GreaterOrEqual,
    ];

    fn scalar<T: PartialOrd>(op: CompareOp, x: T, y: T) -> i32 {
        (match op {
            CompareOp::Equal => x == y,
            CompareOp::Less => x < y,
            CompareOp::LessOrEqual => x <= y,
            CompareOp::Greater => x > y,
            CompareOp::GreaterOrEqual => x >= y,
        }) as i32
    }

    /// Flat index of output coordinate `coord` in an operand of shape `s`.
    fn flat(s: &[usize], coord: &[usize]) -> usize {
        let off = coord.len() - s.len();
        s.iter().enumerate().fold(0, |i, (d, &len)| {
            i * len + if len == 1 { 0 } else { coord[d + off] }
        })
    }

    fn naive(
        op: CompareOp,
        a: &[f32],
        sa: &[usize],
        b: &[f32],
        sb: &[usize],
        so: &[usize],
    ) -> Vec<i32> {
        let total: usize = so.iter().product();
        (0..total)
            .map(|i| {
                let mut rem = i;
                let mut coord = vec![0usize; so.len()];
                for d in (0..so.len()).rev() {
                    coord[d] = rem % so[d];
                    rem /= so[d];
                }
                scalar(op, a[flat(sa, &coord)], b[flat(sb, &coord)])
            })
            .collect()
    }

    #[test]
    fn hand_computed() {
        let a = [1.0f32, 2.0, 3.0, f32::NAN];
        let b = [2.0f32];
        let mut out = [9i32; 4];
        let want = [
            (CompareOp::Equal, [0, 1, 0, 0]),
            (CompareOp::Less, [1, 0, 0, 0]),
            (CompareOp::LessOrEqual, [1, 1, 0, 0]),
            (CompareOp::Greater, [0, 0, 1, 0]),
            (CompareOp::GreaterOrEqual, [0, 1, 1, 0]),
        ];
        for (op, w) in want {
            compare(
                op,
                Operand::new(&a, &[4]),
                Operand::new(&b, &[]),
                &mut out,
                &[4],
            );
            assert_eq!(out, w, "{op:?}");
        }
        // Integers, outer comparison [2,1] vs [3] (e.g. position ids against a length).
        let mut out = [9i32; 6];
        compare(
            CompareOp::Less,
            Operand::new(&[0i32, 2], &[2, 1]),
            Operand::new(&[1, 2, 3], &[3]),
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [1, 1, 1, 0, 0, 1]);
        compare::<i32>(
            CompareOp::Equal,
            Operand::new(&[], &[0]),
            Operand::new(&[1], &[1]),
            &mut [],
            &[0],
        );
    }

    #[test]
    fn random_shapes_match_naive() {
        let mut rng = XorShift(0x636f_6d70_6172_6501);
        for iter in 0..300 {
            let rank = rng.below(MAX_RANK + 1);
            let full: Vec<usize> = (0..rank).map(|_| 1 + rng.below(4)).collect();
            let operand = |rng: &mut XorShift| -> Vec<usize> {
                let r = rng.below(rank + 1);
                full[rank - r..]
                    .iter()
                    .map(|&d| if rng.below(3) == 0 { 1 } else { d })
                    .collect()
            };
            let (sa, sb) = (operand(&mut rng), operand(&mut rng));
            let so: Vec<usize> = (0..rank)
                .map(|d| {
                    let get = |s: &[usize]| {
                        if d + s.len() >= rank {
                            s[d + s.len() - rank]
                        } else {
                            1
                        }
                    };
                    get(&sa).max(get(&sb))
                })
                .collect();
            // Few distinct values so that equality is common.
            let mut value = |_| rng.below(3) as f32;
            let a: Vec<f32> = (0..sa.iter().product()).map(&mut value).collect();
            let b: Vec<f32> = (0..sb.iter().product()).map(&mut value).collect();
            let op = OPS[iter % OPS.len()];
            let mut out = vec![-1; so.iter().product()];
            compare(
                op,
                Operand::new(&a, &sa),
                Operand::new(&b, &sb),
                &mut out,
                &so,
            );
            assert_eq!(
                out,
                naive(op, &a, &sa, &b, &sb, &so),
                "{op:?} {sa:?} {sb:?} -> {so:?}"
            );
        }
    }
}
