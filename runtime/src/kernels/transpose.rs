//! Axis permutation (ONNX Transpose) for any element type and rank <= [`MAX_RANK`].
//!
//! Size-1 axes are dropped and output axes that stay adjacent in the input are merged,
//! so e.g. NCHW -> NHWC becomes a batch of `[C][H*W] -> [H*W][C]` 2-D transposes. Then:
//! a plain copy when nothing moves (identity permutation); contiguous row copies when
//! the innermost output axis is also innermost in the input; 8x8 blocked 2-D transposes
//! when the two innermost output axes are swapped in the input; a strided gather
//! otherwise.

use super::MAX_RANK;

/// Side of the square blocks of the 2-D transpose path.
const BLOCK: usize = 8;

/// `output` = `input` with axes permuted: output axis `i` is input axis `perm[i]`, so the
/// output shape is `[in_shape[perm[0]], in_shape[perm[1]], ...]`.
///
/// Preconditions (debug-asserted): `perm` is a permutation of `0..in_shape.len()`, rank
/// <= [`MAX_RANK`], `input.len() == output.len() == product(in_shape)`.
pub fn transpose<T: Copy>(input: &[T], in_shape: &[usize], perm: &[usize], output: &mut [T]) {
    let rank = in_shape.len();
    debug_assert!(rank <= MAX_RANK && perm.len() == rank);
    debug_assert!((0..rank).all(|a| perm.contains(&a)));
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), input.len());
    if output.is_empty() {
        return;
    }
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        output.copy_from_slice(input);
        return;
    }
    let mut in_strides = [0usize; MAX_RANK];
    let mut stride = 1;
    for d in (0..rank).rev() {
        in_strides[d] = stride;
        stride *= in_shape[d];
    }
    // Coalesced output axes: length and input stride of each.
    let mut dims = [1usize; MAX_RANK];
    let mut strides = [0usize; MAX_RANK];
    let mut count = 0;
    for &axis in perm {
        let len = in_shape[axis];
        if len == 1 {
            continue;
        }
        if count > 0 && strides[count - 1] == in_strides[axis] * len {
            dims[count - 1] *= len;
            strides[count - 1] = in_strides[axis];
        } else {
            dims[count] = len;
            strides[count] = in_strides[axis];
            count += 1;
        }
    }
    if count <= 1 {
        // At most one axis longer than 1: the layout does not change.
        output.copy_from_slice(input);
        return;
    }
    let inner = dims[count - 1];
    let inner_stride = strides[count - 1];
    if inner_stride == 1 {
        for_each_block(
            &dims[..count - 1],
            &strides[..count - 1],
            output,
            inner,
            |dst, base| {
                dst.copy_from_slice(&input[base..base + inner]);
            },
        );
    } else if strides[count - 2] == 1 {
        // Output [X][Y] blocks read from input [Y][X] (X stride 1, Y stride `inner_stride`).
        let (x_len, y_len) = (dims[count - 2], inner);
        for_each_block(
            &dims[..count - 2],
            &strides[..count - 2],
            output,
            x_len * y_len,
            |dst, base| {
                for x0 in (0..x_len).step_by(BLOCK) {
                    for y0 in (0..y_len).step_by(BLOCK) {
                        let y1 = (y0 + BLOCK).min(y_len);
                        for x in x0..(x0 + BLOCK).min(x_len) {
                            let row = &mut dst[x * y_len + y0..x * y_len + y1];
                            for (d, y) in row.iter_mut().zip(y0..) {
                                *d = input[base + x + y * inner_stride];
                            }
                        }
                    }
                }
            },
        );
    } else {
        for_each_block(
            &dims[..count - 1],
            &strides[..count - 1],
            output,
            inner,
            |dst, base| {
                for (d, &s) in dst
                    .iter_mut()
                    .zip(input[base..].iter().step_by(inner_stride))
                {
                    *d = s;
                }
            },
        );
    }
}

/// Calls `f(block, input_offset)` for each consecutive `block_len` chunk of `output`,
/// with the input offset of the chunk's outer multi-index over `dims` / `strides`.
#[inline(always)]
fn for_each_block<T>(
    dims: &[usize],
    strides: &[usize],
    output: &mut [T],
    block_len: usize,
    mut f: impl FnMut(&mut [T], usize),
) {
    let mut index = [0usize; MAX_RANK];
    let mut offset = 0usize;
    for block in output.chunks_exact_mut(block_len) {
        f(block, offset);
        for d in (0..dims.len()).rev() {
            index[d] += 1;
            offset += strides[d];
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
            offset -= strides[d] * dims[d];
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    /// Per-element reference: decompose each input index, permute, recompose.
    fn naive(input: &[u32], shape: &[usize], perm: &[usize]) -> Vec<u32> {
        let rank = shape.len();
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let mut out = vec![0; input.len()];
        for (i, &v) in input.iter().enumerate() {
            let mut coords = [0usize; MAX_RANK];
            let mut rem = i;
            for d in (0..rank).rev() {
                coords[d] = rem % shape[d];
                rem /= shape[d];
            }
            let mut o = 0;
            for d in 0..rank {
                o = o * out_shape[d] + coords[perm[d]];
            }
            out[o] = v;
        }
        out
    }

    #[test]
    fn hand_computed() {
        // [2][3] -> [3][2].
        let mut out = [0; 6];
        transpose(&[1, 2, 3, 4, 5, 6], &[2, 3], &[1, 0], &mut out);
        assert_eq!(out, [1, 4, 2, 5, 3, 6]);
        // Identity copies.
        transpose(&[1, 2, 3, 4, 5, 6], &[2, 3], &[0, 1], &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        // NCHW [1][2][2][2] -> NHWC.
        let mut out = [0u8; 8];
        transpose(
            &[0, 1, 2, 3, 4, 5, 6, 7],
            &[1, 2, 2, 2],
            &[0, 2, 3, 1],
            &mut out,
        );
        assert_eq!(out, [0, 4, 1, 5, 2, 6, 3, 7]);
    }

    #[test]
    fn paths_match_naive() {
        // Element copies: exact. One case per path, with sizes that are not multiples of
        // the block.
        let cases: [(&[usize], &[usize]); 6] = [
            (&[3, 1, 4, 5], &[1, 0, 2, 3]),  // row copies (inner axes kept)
            (&[2, 5, 3, 11], &[0, 2, 3, 1]), // NCHW -> NHWC: blocked 2-D
            (&[2, 13, 9], &[0, 2, 1]),       // blocked 2-D, two partial blocks
            (&[2, 3, 4, 5], &[3, 1, 2, 0]),  // strided gather
            (&[4, 1, 1, 3], &[2, 1, 3, 0]),  // size-1 axes dropped
            (&[1, 7, 1], &[2, 0, 1]),        // one real axis: copy
        ];
        for (shape, perm) in cases {
            let input: Vec<u32> = (0..shape.iter().product::<usize>() as u32).collect();
            let mut out = vec![u32::MAX; input.len()];
            transpose(&input, shape, perm, &mut out);
            assert_eq!(out, naive(&input, shape, perm), "{shape:?} {perm:?}");
        }
    }

    #[test]
    fn random_permutations_match_naive() {
        let mut rng = XorShift(0x3141_5926_5358_9793);
        for _ in 0..300 {
            let rank = rng.below(MAX_RANK + 1);
            let shape: Vec<usize> = (0..rank).map(|_| 1 + rng.below(4)).collect();
            let mut perm: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                perm.swap(i, rng.below(i + 1));
            }
            let input: Vec<u32> = (0..shape.iter().product::<usize>() as u32).collect();
            let mut out = vec![u32::MAX; input.len()];
            transpose(&input, &shape, &perm, &mut out);
            assert_eq!(out, naive(&input, &shape, &perm), "{shape:?} {perm:?}");
        }
    }
}
