//! ONNX Pad for any element type and rank <= [`MAX_RANK`], non-negative pads.
//!
//! The output is produced one innermost row at a time: the outer axes map each row to
//! a source row (or to "all constant"), and the row is written as begin padding, a
//! contiguous copy of the source row, and end padding.

use super::MAX_RANK;

/// How Pad fills the border (ONNX `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode<T> {
    /// Fill with the value.
    Constant(T),
    /// Mirror without repeating the edge: `[a b c]` padded by 2 is `c b [a b c] b a`.
    Reflect,
    /// Repeat the edge value.
    Edge,
}

/// `output` = `input` padded by `pads_begin[d]` / `pads_end[d]` elements on each axis.
///
/// `out_shape[d] == pads_begin[d] + in_shape[d] + pads_end[d]`. Reflect padding wider
/// than the input keeps reflecting (numpy semantics); an axis of length 1 reflects to
/// itself. Preconditions (debug-asserted): equal ranks <= [`MAX_RANK`], the shape rule
/// above, slice lengths match the shapes, and for `Reflect` / `Edge` every padded axis
/// of the input is non-empty.
pub fn pad<T: Copy>(
    input: &[T],
    in_shape: &[usize],
    pads_begin: &[usize],
    pads_end: &[usize],
    mode: PadMode<T>,
    output: &mut [T],
    out_shape: &[usize],
) {
    let rank = in_shape.len();
    debug_assert!(rank <= MAX_RANK);
    debug_assert!(pads_begin.len() == rank && pads_end.len() == rank && out_shape.len() == rank);
    debug_assert!((0..rank).all(|d| out_shape[d] == pads_begin[d] + in_shape[d] + pads_end[d]));
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    if output.is_empty() {
        return;
    }
    if rank == 0 {
        output[0] = input[0];
        return;
    }
    let inner_axis = rank - 1;
    let row_len = out_shape[inner_axis];
    let in_row_len = in_shape[inner_axis];
    let mut in_strides = [0usize; MAX_RANK];
    let mut stride = 1;
    for d in (0..rank).rev() {
        in_strides[d] = stride;
        stride *= in_shape[d];
    }
    let mut index = [0usize; MAX_RANK];
    for row in output.chunks_exact_mut(row_len) {
        // Source row of this output row, or None when it lies in constant padding.
        let mut base = Some(0usize);
        for d in 0..inner_axis {
            base = match (
                base,
                source_index(index[d], pads_begin[d], in_shape[d], mode),
            ) {
                (Some(b), Some(i)) => Some(b + i * in_strides[d]),
                _ => None,
            };
        }
        match base {
            None => {
                if let PadMode::Constant(v) = mode {
                    row.fill(v);
                }
            }
            Some(base) => {
                let src = &input[base..base + in_row_len];
                let begin = pads_begin[inner_axis];
                row[begin..begin + in_row_len].copy_from_slice(src);
                match mode {
                    PadMode::Constant(v) => {
                        row[..begin].fill(v);
                        row[begin + in_row_len..].fill(v);
                    }
                    _ => {
                        let (head, rest) = row.split_at_mut(begin);
                        let tail = &mut rest[in_row_len..];
                        for (o, v) in head.iter_mut().enumerate() {
                            *v = src[source_index(o, begin, in_row_len, mode).unwrap_or(0)];
                        }
                        for (o, v) in tail.iter_mut().enumerate() {
                            let o = begin + in_row_len + o;
                            *v = src[source_index(o, begin, in_row_len, mode).unwrap_or(0)];
                        }
                    }
                }
            }
        }
        // Next outer index (odometer over the axes before the innermost).
        for d in (0..inner_axis).rev() {
            index[d] += 1;
            if index[d] < out_shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

/// Input index that output index `o` of an axis reads, or `None` for constant padding.
#[inline]
fn source_index<T>(o: usize, pad_begin: usize, len: usize, mode: PadMode<T>) -> Option<usize> {
    let i = o as isize - pad_begin as isize;
    if i >= 0 && (i as usize) < len {
        return Some(i as usize);
    }
    match mode {
        PadMode::Constant(_) => None,
        PadMode::Edge => Some(if i < 0 { 0 } else { len.saturating_sub(1) }),
        PadMode::Reflect => {
            if len <= 1 {
                return Some(0);
            }
            let period = 2 * (len as isize - 1);
            let m = i.rem_euclid(period);
            Some(if m < len as isize { m } else { period - m } as usize)
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

    #[test]
    fn onnx_examples() {
        // ONNX Pad doc example: [[1.0, 1.2], [2.3, 3.4], [4.5, 5.7]], pads [0, 2, 0, 0].
        let input = [1.0f32, 1.2, 2.3, 3.4, 4.5, 5.7];
        let mut out = [9.0f32; 12];
        pad(
            &input,
            &[3, 2],
            &[0, 2],
            &[0, 0],
            PadMode::Constant(0.0),
            &mut out,
            &[3, 4],
        );
        assert_eq!(
            out,
            [0.0, 0.0, 1.0, 1.2, 0.0, 0.0, 2.3, 3.4, 0.0, 0.0, 4.5, 5.7]
        );
        pad(
            &input,
            &[3, 2],
            &[0, 2],
            &[0, 0],
            PadMode::Reflect,
            &mut out,
            &[3, 4],
        );
        assert_eq!(
            out,
            [1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7]
        );
        pad(
            &input,
            &[3, 2],
            &[0, 2],
            &[0, 0],
            PadMode::Edge,
            &mut out,
            &[3, 4],
        );
        assert_eq!(
            out,
            [1.0, 1.0, 1.0, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7]
        );
    }

    #[test]
    fn reflect_wider_than_input_and_outer_axes() {
        // [a b c] padded 4 / 3 by reflection (period 4): a b c b | a b c | b a b.
        let mut out = [0u8; 10];
        pad(b"abc", &[3], &[4], &[3], PadMode::Reflect, &mut out, &[10]);
        assert_eq!(&out, b"abcbabcbab");
        // Outer-axis constant rows: a [1, 2] tensor padded (1, 0) before, (1, 1) after.
        let mut out = [0i8; 9];
        pad(
            &[1i8, 2],
            &[1, 2],
            &[1, 0],
            &[1, 1],
            PadMode::Constant(-1),
            &mut out,
            &[3, 3],
        );
        assert_eq!(out, [-1, -1, -1, 1, 2, -1, -1, -1, -1]);
    }

    /// Per-element reference: map every output coordinate through the mode.
    fn naive(
        input: &[u32],
        shape: &[usize],
        begin: &[usize],
        mode: PadMode<u32>,
        out_shape: &[usize],
    ) -> Vec<u32> {
        let total: usize = out_shape.iter().product();
        let mut out = vec![0; total];
        for (i, o) in out.iter_mut().enumerate() {
            let mut rem = i;
            let mut src = 0usize;
            let mut constant = false;
            let mut coords = [0usize; MAX_RANK];
            for d in (0..out_shape.len()).rev() {
                coords[d] = rem % out_shape[d];
                rem /= out_shape[d];
            }
            for d in 0..shape.len() {
                let c = coords[d] as isize - begin[d] as isize;
                let n = shape[d] as isize;
                let j = if (0..n).contains(&c) {
                    c
                } else {
                    match mode {
                        PadMode::Constant(_) => {
                            constant = true;
                            0
                        }
                        PadMode::Edge => c.clamp(0, n - 1),
                        PadMode::Reflect => {
                            // Reflect step by step, like a ball bouncing off the edges.
                            let mut j = c;
                            while !(0..n).contains(&j) {
                                j = if j < 0 { -j } else { 2 * (n - 1) - j };
                                if n == 1 {
                                    j = 0;
                                }
                            }
                            j
                        }
                    }
                };
                src = src * shape[d] + j as usize;
            }
            *o = match (constant, mode) {
                (true, PadMode::Constant(v)) => v,
                _ => input[src],
            };
        }
        out
    }

    #[test]
    fn random_shapes_match_naive() {
        // Element copies: exact.
        let mut rng = XorShift(0x9999_aaaa_bbbb_cccc);
        for iter in 0..300 {
            let rank = 1 + rng.below(MAX_RANK);
            let shape: Vec<usize> = (0..rank).map(|_| 1 + rng.below(3)).collect();
            let mode = [PadMode::Constant(7777), PadMode::Reflect, PadMode::Edge][iter % 3];
            let begin: Vec<usize> = (0..rank).map(|_| rng.below(4)).collect();
            let end: Vec<usize> = (0..rank).map(|_| rng.below(4)).collect();
            let out_shape: Vec<usize> = (0..rank).map(|d| begin[d] + shape[d] + end[d]).collect();
            let input: Vec<u32> = (0..shape.iter().product::<usize>() as u32).collect();
            let mut out = vec![u32::MAX; out_shape.iter().product()];
            pad(&input, &shape, &begin, &end, mode, &mut out, &out_shape);
            assert_eq!(
                out,
                naive(&input, &shape, &begin, mode, &out_shape),
                "{shape:?} {begin:?} {end:?} {mode:?}"
            );
        }
        // Rank 0 and an empty input axis with constant padding.
        let mut out = [0u32; 1];
        pad(&[5], &[], &[], &[], PadMode::Edge, &mut out, &[]);
        assert_eq!(out, [5]);
        let mut out = [0u32; 6];
        pad(
            &[],
            &[2, 0],
            &[0, 1],
            &[0, 2],
            PadMode::Constant(3),
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [3; 6]);
    }
}
