//! ONNX Expand for any element type: a broadcasting copy to a larger shape.

use super::MAX_RANK;
use super::broadcast::for_each_run;

/// `output[i] = input[broadcast index of i]`, `in_shape` right-aligned against `out_shape`
/// (numpy rules; the converter computes `out_shape`, including ONNX Expand's
/// bidirectional broadcast).
///
/// Innermost runs are a `copy_from_slice` where the input is contiguous and a `fill`
/// where it repeats one value. Preconditions (debug-asserted): ranks <= [`MAX_RANK`],
/// `in_shape`'s rank <= `out_shape`'s, each input axis is 1 or the output's, and slice
/// lengths match the shapes.
pub fn expand<T: Copy>(input: &[T], in_shape: &[usize], output: &mut [T], out_shape: &[usize]) {
    debug_assert!(out_shape.len() <= MAX_RANK && in_shape.len() <= out_shape.len());
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    for_each_run([in_shape], out_shape, |start, len, [off], [contiguous]| {
        let run = &mut output[start..start + len];
        if contiguous {
            run.copy_from_slice(&input[off..off + len]);
        } else {
            run.fill(input[off]);
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

    /// Per-element reference: decompose each output index, index the input.
    fn naive(input: &[u32], sa: &[usize], so: &[usize]) -> Vec<u32> {
        let total: usize = so.iter().product();
        let mut out = vec![0; total];
        for (i, o) in out.iter_mut().enumerate() {
            let mut rem = i;
            let mut coord = [0usize; MAX_RANK];
            for d in (0..so.len()).rev() {
                coord[d] = rem % so[d];
                rem /= so[d];
            }
            let off = so.len() - sa.len();
            let mut idx = 0;
            for (d, &len) in sa.iter().enumerate() {
                idx = idx * len + if len == 1 { 0 } else { coord[d + off] };
            }
            *o = input[idx];
        }
        out
    }

    #[test]
    fn hand_computed() {
        // [3,1] -> [2,3,2].
        let mut out = [0u8; 12];
        expand(&[1, 2, 3], &[3, 1], &mut out, &[2, 3, 2]);
        assert_eq!(out, [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
        // Scalar -> [4]; [2] -> [3,2]; same shape; empty.
        let mut out = [0i32; 4];
        expand(&[9], &[], &mut out, &[4]);
        assert_eq!(out, [9; 4]);
        let mut out = [0i32; 6];
        expand(&[5, 6], &[2], &mut out, &[3, 2]);
        assert_eq!(out, [5, 6, 5, 6, 5, 6]);
        expand(&[1, 2, 3, 4, 5, 6], &[2, 3], &mut out, &[2, 3]);
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        expand(&[1, 2], &[1, 2], &mut [], &[0, 2]);
    }

    #[test]
    fn random_shapes_match_naive() {
        let mut rng = XorShift(0x6578_7061_6e64_0001);
        for _ in 0..300 {
            let rank = rng.below(MAX_RANK + 1);
            let so: Vec<usize> = (0..rank).map(|_| rng.below(4)).collect();
            let r = rng.below(rank + 1);
            let sa: Vec<usize> = so[rank - r..]
                .iter()
                .map(|&d| if rng.below(2) == 0 { 1 } else { d })
                .collect();
            let input: Vec<u32> = (0..sa.iter().product::<usize>() as u32).collect();
            let mut out = vec![u32::MAX; so.iter().product()];
            expand(&input, &sa, &mut out, &so);
            assert_eq!(out, naive(&input, &sa, &so), "{sa:?} -> {so:?}");
        }
    }
}
