//! ONNX Gather for any element type: rows picked by index along one axis.
//!
//! Indices come from the model's input (token ids, positions), so they are checked
//! here, all of them before anything is written: an index outside the axis is reported
//! as a [`GatherError`], never a panic or an out-of-range read.

/// An index outside `[-limit, limit)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherError {
    /// Position of the bad index in `indices`.
    pub position: usize,
    /// The index.
    pub index: i64,
    /// Length of the gathered axis.
    pub limit: usize,
}

/// `output[o][p][i] = data[o][idx(indices[p])][i]` with `data` viewed as
/// `[outer][axis_len][inner]` and `output` as `[outer][indices.len()][inner]`;
/// `idx(j) = j` for `j >= 0` and `j + axis_len` for negative `j` (ONNX).
///
/// Returns the first index outside `[-axis_len, axis_len)`, with `output` untouched.
/// Preconditions (debug-asserted): `data.len() == outer * axis_len * inner`,
/// `output.len() == outer * indices.len() * inner`.
pub fn gather<T: Copy>(
    data: &[T],
    outer: usize,
    axis_len: usize,
    inner: usize,
    indices: &[i32],
    output: &mut [T],
) -> Result<(), GatherError> {
    debug_assert_eq!(data.len(), outer * axis_len * inner);
    debug_assert_eq!(output.len(), outer * indices.len() * inner);
    for (position, &j) in indices.iter().enumerate() {
        if resolve(j, axis_len).is_none() {
            return Err(GatherError {
                position,
                index: j as i64,
                limit: axis_len,
            });
        }
    }
    if output.is_empty() {
        return Ok(());
    }
    let block = axis_len * inner;
    let out_block = indices.len() * inner;
    for (src, dst) in data
        .chunks_exact(block)
        .zip(output.chunks_exact_mut(out_block))
    {
        if inner == 1 {
            for (o, &j) in dst.iter_mut().zip(indices) {
                // Checked above; `unwrap_or(0)` never applies.
                *o = src[resolve(j, axis_len).unwrap_or(0)];
            }
        } else {
            for (row, &j) in dst.chunks_exact_mut(inner).zip(indices) {
                let at = resolve(j, axis_len).unwrap_or(0) * inner;
                row.copy_from_slice(&src[at..at + inner]);
            }
        }
    }
    Ok(())
}

/// `j` as a position along an axis of `len`, negative counting from the end.
#[inline(always)]
fn resolve(j: i32, len: usize) -> Option<usize> {
    let j = j as i64;
    let at = if j < 0 { j + len as i64 } else { j };
    (at >= 0 && (at as u64) < len as u64).then_some(at as usize)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    #[test]
    fn hand_computed() {
        // Embedding table [4][2]: rows 3, 0, -1 (= 3), -4 (= 0).
        let table = [0, 1, 10, 11, 20, 21, 30, 31];
        let mut out = [0; 8];
        gather(&table, 1, 4, 2, &[3, 0, -1, -4], &mut out).unwrap();
        assert_eq!(out, [30, 31, 0, 1, 30, 31, 0, 1]);
        // Axis 1 of [2][3]: columns 2 and 0.
        let mut out = [0u8; 4];
        gather(&[1, 2, 3, 4, 5, 6], 2, 3, 1, &[2, 0], &mut out).unwrap();
        assert_eq!(out, [3, 1, 6, 4]);
        // No indices, or no data to gather: nothing to do.
        gather(&table, 1, 4, 2, &[], &mut []).unwrap();
        gather::<u8>(&[], 0, 4, 2, &[1], &mut []).unwrap();
    }

    #[test]
    fn out_of_range_is_an_error() {
        let table = [0u16, 1, 10, 11, 20, 21];
        let mut out = [7u16; 6];
        for (indices, position, index) in [
            (&[0, 3, 1][..], 1, 3),
            (&[-4, 0, 1][..], 0, -4),
            (&[0, 1, i32::MAX][..], 2, i32::MAX as i64),
            (&[0, 1, i32::MIN][..], 2, i32::MIN as i64),
        ] {
            let err = gather(&table, 1, 3, 2, indices, &mut out).unwrap_err();
            assert_eq!(
                err,
                GatherError {
                    position,
                    index,
                    limit: 3
                }
            );
            // Nothing was written.
            assert_eq!(out, [7; 6]);
        }
        // Indices are checked even when nothing is copied; an empty axis has none valid.
        let err = gather::<u16>(&[], 2, 3, 0, &[1, 5], &mut []).unwrap_err();
        assert_eq!((err.position, err.index, err.limit), (1, 5, 3));
        let err = gather::<u16>(&[], 0, 0, 3, &[0], &mut []).unwrap_err();
        assert_eq!(err.limit, 0);
    }

    #[test]
    fn random_match_naive() {
        let mut rng = XorShift(0x6761_7468_6572_0001);
        for _ in 0..200 {
            let (outer, axis, inner) = (rng.below(4), 1 + rng.below(6), rng.below(5));
            let n = rng.below(7);
            let data: Vec<u32> = (0..(outer * axis * inner) as u32).collect();
            let indices: Vec<i32> = (0..n)
                .map(|_| rng.below(2 * axis) as i32 - axis as i32)
                .collect();
            let mut out = vec![u32::MAX; outer * n * inner];
            gather(&data, outer, axis, inner, &indices, &mut out).unwrap();
            let mut want = Vec::new();
            for o in 0..outer {
                for &j in &indices {
                    let j = if j < 0 { j + axis as i32 } else { j } as usize;
                    want.extend_from_slice(&data[(o * axis + j) * inner..][..inner]);
                }
            }
            assert_eq!(out, want);
        }
    }
}
