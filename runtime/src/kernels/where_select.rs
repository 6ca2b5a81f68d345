//! ONNX Where for any element type: `cond ? a : b` with three-way numpy broadcasting.

use super::broadcast::for_each_run;
use super::{MAX_RANK, Operand};

/// `output[i] = if cond[ic] != 0 { a[ia] } else { b[ib] }`, each operand broadcast to
/// `out_shape` (right-aligned, size-1 axes repeat).
///
/// A run where the condition repeats one value is a copy (or fill) from the chosen
/// operand. Preconditions (debug-asserted): ranks <= [`MAX_RANK`], no operand rank above
/// `out_shape`'s, each operand axis is 1 or the output's, and slice lengths match the
/// shapes.
pub fn where_select<T: Copy>(
    cond: Operand<i32>,
    a: Operand<T>,
    b: Operand<T>,
    output: &mut [T],
    out_shape: &[usize],
) {
    let (cond, cond_shape) = (cond.data, cond.shape);
    let (a, a_shape, b, b_shape) = (a.data, a.shape, b.data, b.shape);
    debug_assert!(out_shape.len() <= MAX_RANK);
    debug_assert_eq!(cond.len(), cond_shape.iter().product::<usize>());
    debug_assert_eq!(a.len(), a_shape.iter().product::<usize>());
    debug_assert_eq!(b.len(), b_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    for_each_run(
        [cond_shape, a_shape, b_shape],
        out_shape,
        |start, len, [oc, oa, ob], [cc, ca, cb]| {
            let run = &mut output[start..start + len];
            if !cc {
                // One condition for the whole run: copy or fill from the chosen operand.
                let (src, off, contiguous) = if cond[oc] != 0 {
                    (a, oa, ca)
                } else {
                    (b, ob, cb)
                };
                if contiguous {
                    run.copy_from_slice(&src[off..off + len]);
                } else {
                    run.fill(src[off]);
                }
                return;
            }
            let conds = &cond[oc..oc + len];
            match (ca, cb) {
                (true, true) => {
                    let (xs, ys) = (&a[oa..oa + len], &b[ob..ob + len]);
                    for (((o, &c), &x), &y) in run.iter_mut().zip(conds).zip(xs).zip(ys) {
                        *o = if c != 0 { x } else { y };
                    }
                }
                (true, false) => {
                    let y = b[ob];
                    for ((o, &c), &x) in run.iter_mut().zip(conds).zip(&a[oa..oa + len]) {
                        *o = if c != 0 { x } else { y };
                    }
                }
                (false, true) => {
                    let x = a[oa];
                    for ((o, &c), &y) in run.iter_mut().zip(conds).zip(&b[ob..ob + len]) {
                        *o = if c != 0 { x } else { y };
                    }
                }
                (false, false) => {
                    let (x, y) = (a[oa], b[ob]);
                    for (o, &c) in run.iter_mut().zip(conds) {
                        *o = if c != 0 { x } else { y };
                    }
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    /// Flat index of output coordinate `coord` in an operand of shape `s`.
    fn flat(s: &[usize], coord: &[usize]) -> usize {
        let off = coord.len() - s.len();
        s.iter().enumerate().fold(0, |i, (d, &len)| {
            i * len + if len == 1 { 0 } else { coord[d + off] }
        })
    }

    fn naive(
        cond: &[i32],
        sc: &[usize],
        a: &[u32],
        sa: &[usize],
        b: &[u32],
        sb: &[usize],
        so: &[usize],
    ) -> Vec<u32> {
        let total: usize = so.iter().product();
        (0..total)
            .map(|i| {
                let mut rem = i;
                let mut coord = vec![0usize; so.len()];
                for d in (0..so.len()).rev() {
                    coord[d] = rem % so[d];
                    rem /= so[d];
                }
                if cond[flat(sc, &coord)] != 0 {
                    a[flat(sa, &coord)]
                } else {
                    b[flat(sb, &coord)]
                }
            })
            .collect()
    }

    #[test]
    fn hand_computed() {
        // Causal-style mask [2,2] picking between a [2,2] tensor and a scalar.
        let mut out = [0.0f32; 4];
        where_select(
            Operand::new(&[1, 0, 1, 1], &[2, 2]),
            Operand::new(&[1.0, 2.0, 3.0, 4.0], &[2, 2]),
            Operand::new(&[f32::NEG_INFINITY], &[]),
            &mut out,
            &[2, 2],
        );
        assert_eq!(out, [1.0, f32::NEG_INFINITY, 3.0, 4.0]);
        // Condition per row [2,1], a per column [3], b [2,3].
        let mut out = [0u8; 6];
        where_select(
            Operand::new(&[0, 5], &[2, 1]),
            Operand::new(&[7, 8, 9], &[3]),
            Operand::new(&[1, 2, 3, 4, 5, 6], &[2, 3]),
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [1, 2, 3, 7, 8, 9]);
        where_select::<u8>(
            Operand::new(&[1], &[1]),
            Operand::new(&[], &[0]),
            Operand::new(&[2], &[1]),
            &mut [],
            &[0],
        );
    }

    #[test]
    fn random_shapes_match_naive() {
        let mut rng = XorShift(0x7768_6572_6500_0001);
        for _ in 0..400 {
            let rank = rng.below(MAX_RANK + 1);
            let full: Vec<usize> = (0..rank).map(|_| 1 + rng.below(4)).collect();
            let operand = |rng: &mut XorShift| -> Vec<usize> {
                let r = rng.below(rank + 1);
                full[rank - r..]
                    .iter()
                    .map(|&d| if rng.below(3) == 0 { 1 } else { d })
                    .collect()
            };
            let (sc, sa, sb) = (operand(&mut rng), operand(&mut rng), operand(&mut rng));
            let so: Vec<usize> = (0..rank)
                .map(|d| {
                    [&sc, &sa, &sb]
                        .iter()
                        .map(|s| {
                            if d + s.len() >= rank {
                                s[d + s.len() - rank]
                            } else {
                                1
                            }
                        })
                        .max()
                        .unwrap_or(1)
                })
                .collect();
            let cond: Vec<i32> = (0..sc.iter().product())
                .map(|_| rng.below(3) as i32 - 1)
                .collect();
            let a: Vec<u32> = (0..sa.iter().product::<usize>() as u32).collect();
            let b: Vec<u32> = (0..sb.iter().product::<usize>() as u32)
                .map(|v| v + 1000)
                .collect();
            let mut out = vec![u32::MAX; so.iter().product()];
            where_select(
                Operand::new(&cond, &sc),
                Operand::new(&a, &sa),
                Operand::new(&b, &sb),
                &mut out,
                &so,
            );
            let want = naive(&cond, &sc, &a, &sa, &b, &sb, &so);
            assert_eq!(out, want, "{sc:?} {sa:?} {sb:?} -> {so:?}");
        }
    }
}
