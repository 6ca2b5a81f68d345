//! Concatenation, one input at a time, for any element type (no requantization; the
//! int8 variant that rescales lives in `concat_s8`).

use super::ConcatSlot;

/// Copies one input of a concat into its place in the output: for each `o < outer`,
/// `output[o * output_block + offset..][..input_block] = input[o * input_block..][..input_block]`.
///
/// With the tensors viewed as `[outer][axis][inner]`: `input_block = input_axis_len * inner`,
/// `output_block = output_axis_len * inner`, `offset` = the blocks of the previous inputs.
/// Preconditions (debug-asserted): `offset + input_block <= output_block`,
/// `input.len() >= outer * input_block`, `output.len() >= outer * output_block`.
pub fn concat_part<T: Copy>(input: &[T], slot: &ConcatSlot, output: &mut [T]) {
    let ConcatSlot {
        outer,
        input_block,
        output_block,
        offset,
    } = *slot;
    debug_assert!(offset + input_block <= output_block);
    debug_assert!(input.len() >= outer * input_block);
    debug_assert!(output.len() >= outer * output_block);
    if input_block == 0 {
        return;
    }
    for (src, dst) in input
        .chunks_exact(input_block)
        .zip(output.chunks_mut(output_block))
        .take(outer)
    {
        dst[offset..offset + input_block].copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    #[test]
    fn hand_computed_axis_1() {
        // [2][1][2] and [2][2][2] concatenated on axis 1 -> [2][3][2].
        let a = [1, 2, 3, 4];
        let b = [10, 11, 12, 13, 14, 15, 16, 17];
        let mut out = [0; 12];
        concat_part(
            &a,
            &ConcatSlot {
                outer: 2,
                input_block: 2,
                output_block: 6,
                offset: 0,
            },
            &mut out,
        );
        concat_part(
            &b,
            &ConcatSlot {
                outer: 2,
                input_block: 4,
                output_block: 6,
                offset: 2,
            },
            &mut out,
        );
        assert_eq!(out, [1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17]);
    }

    #[test]
    fn random_matches_naive() {
        // Element copies: exact.
        let mut rng = XorShift(0x4242_4242_4242_4242);
        for _ in 0..100 {
            let outer = 1 + rng.below(4);
            let inner = 1 + rng.below(4);
            let parts: Vec<usize> = (0..1 + rng.below(4)).map(|_| rng.below(4)).collect();
            let total: usize = parts.iter().sum();
            let mut out = std::vec![u32::MAX; outer * total * inner];
            let mut offset = 0;
            let mut inputs = Vec::new();
            for (k, &len) in parts.iter().enumerate() {
                let input: Vec<u32> = (0..outer * len * inner)
                    .map(|i| (k * 1000 + i) as u32)
                    .collect();
                concat_part(
                    &input,
                    &ConcatSlot {
                        outer,
                        input_block: len * inner,
                        output_block: total * inner,
                        offset,
                    },
                    &mut out,
                );
                offset += len * inner;
                inputs.push(input);
            }
            for o in 0..outer {
                let mut a_out = 0;
                for (k, &len) in parts.iter().enumerate() {
                    for a in 0..len {
                        for i in 0..inner {
                            let want = inputs[k][(o * len + a) * inner + i];
                            assert_eq!(out[(o * total + a_out + a) * inner + i], want);
                        }
                    }
                    a_out += len;
                }
            }
        }
    }
}
