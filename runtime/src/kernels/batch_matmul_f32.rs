//! Float batched matrix product (ONNX / numpy MatMul of two activations):
//! `[..batch, M, K] x [..batch, K, N] -> [..batch, M, N]` with broadcast batch axes.
//!
//! Each matrix product is tiled into blocks of [`ROWS`] output rows by [`COLS`] output
//! columns held in local accumulators: for every `k`, one [`COLS`]-wide slice of row `k`
//! of `b` is loaded once and multiplied into all [`ROWS`] rows, a fixed-width inner loop
//! that LLVM vectorizes over N. Leftover columns accumulate straight into the output
//! row. Every output element is `sum_k a[m][k] * b[k][n]` accumulated in increasing `k`
//! from 0.0 on every path, so the result does not depend on the tiling.

use super::{MAX_RANK, broadcast_strides};

/// Output rows per tile.
const ROWS: usize = 4;
/// Output columns per tile.
const COLS: usize = 16;

/// `output[.., m, n] = sum_k a[.., m, k] * b[.., k, n]`, batch axes broadcast numpy-style.
///
/// Both operands have rank >= 2; their batch axes (all but the last two) are
/// right-aligned against `out_shape`'s, and a batch axis of size 1 repeats.
/// Preconditions (debug-asserted): ranks in `2..=MAX_RANK`, `out_shape`'s rank is the
/// larger operand rank, `a_shape = [.., M, K]`, `b_shape = [.., K, N]`,
/// `out_shape = [.., M, N]`, each operand batch axis is 1 or the output's, and slice
/// lengths match the shapes.
pub fn batch_matmul_f32(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    output: &mut [f32],
    out_shape: &[usize],
) {
    let (ra, rb, ro) = (a_shape.len(), b_shape.len(), out_shape.len());
    debug_assert!(ra >= 2 && rb >= 2 && ro == ra.max(rb) && ro <= MAX_RANK);
    let (m, k) = (a_shape[ra - 2], a_shape[ra - 1]);
    let n = b_shape[rb - 1];
    debug_assert_eq!(b_shape[rb - 2], k);
    debug_assert!(out_shape[ro - 2] == m && out_shape[ro - 1] == n);
    debug_assert!(
        a_shape[..ra - 2]
            .iter()
            .rev()
            .zip(out_shape[..ro - 2].iter().rev())
            .chain(
                b_shape[..rb - 2]
                    .iter()
                    .rev()
                    .zip(out_shape[..ro - 2].iter().rev())
            )
            .all(|(&d, &o)| d == 1 || d == o)
    );
    debug_assert_eq!(a.len(), a_shape.iter().product::<usize>());
    debug_assert_eq!(b.len(), b_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    let out_matrix = m * n;
    if output.is_empty() || out_matrix == 0 {
        return;
    }
    let batch_shape = &out_shape[..ro - 2];
    let batch_rank = batch_shape.len();
    // Strides in whole matrices; 0 on broadcast batch axes.
    let sa = broadcast_strides(&a_shape[..ra - 2], batch_shape);
    let sb = broadcast_strides(&b_shape[..rb - 2], batch_shape);
    let (a_matrix, b_matrix) = (m * k, k * n);
    let mut index = [0usize; MAX_RANK];
    let (mut ia, mut ib) = (0usize, 0usize);
    for out in output.chunks_exact_mut(out_matrix) {
        matmul(
            &a[ia * a_matrix..][..a_matrix],
            &b[ib * b_matrix..][..b_matrix],
            out,
            m,
            k,
            n,
        );
        // Next batch index (odometer).
        for d in (0..batch_rank).rev() {
            index[d] += 1;
            ia += sa[d];
            ib += sb[d];
            if index[d] < batch_shape[d] {
                break;
            }
            index[d] = 0;
            ia -= sa[d] * batch_shape[d];
            ib -= sb[d] * batch_shape[d];
        }
    }
}

/// One `[m][k] x [k][n] -> [m][n]` product, `n >= 1`.
fn matmul(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    let main_cols = n / COLS * COLS;
    let main_rows = m / ROWS * ROWS;
    // Column panels outermost: a panel of `b` (k x COLS) stays in cache across row blocks.
    for c0 in (0..main_cols).step_by(COLS) {
        for r0 in (0..main_rows).step_by(ROWS) {
            tile::<ROWS>(a, b, out, r0, c0, k, n);
        }
        for r0 in main_rows..m {
            tile::<1>(a, b, out, r0, c0, k, n);
        }
    }
    if main_cols < n {
        for (row, out_row) in out.chunks_exact_mut(n).enumerate() {
            let out_tail = &mut out_row[main_cols..];
            out_tail.fill(0.0);
            let a_row = &a[row * k..][..k];
            for (kk, &av) in a_row.iter().enumerate() {
                let b_tail = &b[kk * n + main_cols..][..n - main_cols];
                for (o, &bv) in out_tail.iter_mut().zip(b_tail) {
                    *o += av * bv;
                }
            }
        }
    }
}

/// Output rows `r0..r0 + R`, columns `c0..c0 + COLS`, accumulated in registers.
#[inline(always)]
fn tile<const R: usize>(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    r0: usize,
    c0: usize,
    k: usize,
    n: usize,
) {
    let mut acc = [[0.0f32; COLS]; R];
    let a_rows: [&[f32]; R] = core::array::from_fn(|r| &a[(r0 + r) * k..][..k]);
    for kk in 0..k {
        let b_seg = &b[kk * n + c0..][..COLS];
        for (acc_r, a_r) in acc.iter_mut().zip(&a_rows) {
            let av = a_r[kk];
            for (s, &bv) in acc_r.iter_mut().zip(b_seg) {
                *s += av * bv;
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        out[(r0 + r) * n + c0..][..COLS].copy_from_slice(acc_r);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    /// Triple loop over decomposed output coordinates, summing in increasing `k`.
    fn naive(a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], so: &[usize]) -> Vec<f32> {
        let (ra, rb, ro) = (sa.len(), sb.len(), so.len());
        let (m, k, n) = (sa[ra - 2], sa[ra - 1], sb[rb - 1]);
        let total: usize = so.iter().product();
        let mut out = vec![0.0f32; total];
        let batches = total.checked_div(m * n).unwrap_or(0);
        for batch in 0..batches {
            // Batch coordinates, then each operand's matrix index (size-1 axes repeat).
            let mut coord = [0usize; MAX_RANK];
            let mut rem = batch;
            for d in (0..ro - 2).rev() {
                coord[d] = rem % so[d];
                rem /= so[d];
            }
            let matrix = |s: &[usize]| {
                let off = ro - s.len();
                let mut idx = 0;
                for (d, &len) in s[..s.len() - 2].iter().enumerate() {
                    idx = idx * len + if len == 1 { 0 } else { coord[d + off] };
                }
                idx
            };
            let (ma, mb) = (matrix(sa), matrix(sb));
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0f32;
                    for kk in 0..k {
                        s += a[ma * m * k + i * k + kk] * b[mb * k * n + kk * n + j];
                    }
                    out[batch * m * n + i * n + j] = s;
                }
            }
        }
        out
    }

    fn run(sa: &[usize], sb: &[usize], so: &[usize], rng: &mut XorShift) {
        let a: Vec<f32> = (0..sa.iter().product()).map(|_| rng.f32()).collect();
        let b: Vec<f32> = (0..sb.iter().product()).map(|_| rng.f32()).collect();
        let mut out = vec![f32::NAN; so.iter().product()];
        batch_matmul_f32(&a, sa, &b, sb, &mut out, so);
        // Same products summed in the same order: bit-exact.
        assert_eq!(out, naive(&a, sa, &b, sb, so), "{sa:?} x {sb:?} -> {so:?}");
    }

    #[test]
    fn hand_computed() {
        // [2x3] x [3x2].
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut out = [0.0f32; 4];
        batch_matmul_f32(&a, &[2, 3], &b, &[3, 2], &mut out, &[2, 2]);
        assert_eq!(out, [4.0, 5.0, 10.0, 11.0]);
        // Broadcast a 2-D right operand over a batch of 2 left matrices [2][1x2].
        let mut out = [0.0f32; 4];
        batch_matmul_f32(
            &[1.0, 2.0, 3.0, 4.0],
            &[2, 1, 2],
            &[1.0, 10.0, 100.0, 1000.0],
            &[2, 2],
            &mut out,
            &[2, 1, 2],
        );
        assert_eq!(out, [201.0, 2010.0, 403.0, 4030.0]);
    }

    #[test]
    fn tiles_and_tails_match_naive() {
        let mut rng = XorShift(0x6d61_746d_756c_0001);
        // Full tiles, row and column tails, K of 0 and 1, single row / column.
        for (m, k, n) in [
            (4, 5, 16),
            (9, 7, 37),
            (3, 1, 17),
            (5, 0, 20),
            (1, 13, 1),
            (8, 33, 32),
            (2, 3, 5),
        ] {
            run(&[m, k], &[k, n], &[m, n], &mut rng);
        }
        // Empty outputs.
        run(&[0, 3], &[3, 4], &[0, 4], &mut rng);
        run(&[2, 3], &[3, 0], &[2, 0], &mut rng);
        run(&[0, 2, 3], &[3, 4], &[0, 2, 4], &mut rng);
    }

    #[test]
    fn broadcast_batches_match_naive() {
        let mut rng = XorShift(0x6d61_746d_756c_0002);
        run(&[2, 3, 5, 4], &[2, 3, 4, 18], &[2, 3, 5, 18], &mut rng);
        run(&[2, 1, 5, 4], &[1, 3, 4, 18], &[2, 3, 5, 18], &mut rng);
        run(&[3, 5, 4], &[2, 1, 4, 6], &[2, 3, 5, 6], &mut rng);
        run(&[5, 4], &[2, 3, 4, 17], &[2, 3, 5, 17], &mut rng);
        run(&[2, 3, 6, 4], &[4, 2], &[2, 3, 6, 2], &mut rng);
        run(
            &[1, 1, 1, 1, 2, 3],
            &[3, 1, 1, 1, 3, 2],
            &[3, 1, 1, 1, 2, 2],
            &mut rng,
        );
    }

    #[test]
    fn random_shapes_match_naive() {
        let mut rng = XorShift(0x6d61_746d_756c_0003);
        for _ in 0..200 {
            let batch_rank = rng.below(MAX_RANK - 1);
            let batch: Vec<usize> = (0..batch_rank).map(|_| 1 + rng.below(3)).collect();
            let (m, k, n) = (1 + rng.below(9), rng.below(9), 1 + rng.below(40));
            let operand = |rng: &mut XorShift, rows: usize, cols: usize| -> Vec<usize> {
                let r = rng.below(batch_rank + 1);
                let mut s: Vec<usize> = batch[batch_rank - r..]
                    .iter()
                    .map(|&d| if rng.below(3) == 0 { 1 } else { d })
                    .collect();
                s.extend([rows, cols]);
                s
            };
            let sa = operand(&mut rng, m, k);
            let sb = operand(&mut rng, k, n);
            // Output batch axes: the broadcast of the operands' (rank the larger one's).
            let ro = sa.len().max(sb.len());
            let get = |s: &[usize], d: usize| {
                if d + s.len() >= ro {
                    s[d + s.len() - ro]
                } else {
                    1
                }
            };
            let mut so: Vec<usize> = (0..ro - 2).map(|d| get(&sa, d).max(get(&sb, d))).collect();
            so.extend([m, n]);
            run(&sa, &sb, &so, &mut rng);
        }
    }
}
