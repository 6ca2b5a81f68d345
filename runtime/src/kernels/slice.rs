//! Strided slicing (ONNX Slice) for any element type and rank <= [`MAX_RANK`].
//!
//! The converter resolves ONNX's `starts` / `ends` / `axes` / `steps` into one start
//! and one step per axis and the output shape. Size-1 output axes are dropped and
//! neighbouring axes merged while they stay one evenly strided run in the input, then
//! each innermost run is a `copy_from_slice` when its step is 1 (forward contiguous),
//! and a strided copy otherwise (negative steps walk backwards).

use super::MAX_RANK;

/// `output[i_0, .., i_r] = input[starts[0] + i_0 * steps[0], .., starts[r] + i_r * steps[r]]`.
///
/// Preconditions (debug-asserted): equal ranks <= [`MAX_RANK`], `steps[d] != 0`, every
/// accessed index in range (`starts[d] < in_shape[d]` and
/// `0 <= starts[d] + (out_shape[d] - 1) * steps[d] < in_shape[d]` on each non-empty
/// output axis), and slice lengths match the shapes.
pub fn slice<T: Copy>(
    input: &[T],
    in_shape: &[usize],
    starts: &[usize],
    steps: &[isize],
    output: &mut [T],
    out_shape: &[usize],
) {
    let rank = in_shape.len();
    debug_assert!(rank <= MAX_RANK);
    debug_assert!(starts.len() == rank && steps.len() == rank && out_shape.len() == rank);
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    if output.is_empty() {
        return;
    }
    debug_assert!((0..rank).all(|d| {
        let last = starts[d] as isize + (out_shape[d] as isize - 1) * steps[d];
        steps[d] != 0 && starts[d] < in_shape[d] && last >= 0 && (last as usize) < in_shape[d]
    }));
    // Input offset of the first element, and merged output axes with their input
    // strides (in elements, negative for negative steps), outermost first.
    let mut base = 0isize;
    let mut dims = [0usize; MAX_RANK];
    let mut strides = [0isize; MAX_RANK];
    let mut count = 0;
    let mut in_stride = 1isize;
    let mut rev = [(0usize, 0isize); MAX_RANK];
    for d in (0..rank).rev() {
        base += starts[d] as isize * in_stride;
        let (len, stride) = (out_shape[d], steps[d] * in_stride);
        in_stride *= in_shape[d] as isize;
        if len == 1 {
            continue;
        }
        if count > 0 && rev[count - 1].1 * rev[count - 1].0 as isize == stride {
            // This axis continues the inner run: one longer run, same stride.
            rev[count - 1].0 *= len;
        } else {
            rev[count] = (len, stride);
            count += 1;
        }
    }
    for (i, &(len, stride)) in rev[..count].iter().rev().enumerate() {
        dims[i] = len;
        strides[i] = stride;
    }
    if count == 0 {
        output[0] = input[base as usize];
        return;
    }
    let inner = dims[count - 1];
    let inner_stride = strides[count - 1];
    let outer_axes = count - 1;
    let mut index = [0usize; MAX_RANK];
    let mut offset = base;
    for run in output.chunks_exact_mut(inner) {
        let start = offset as usize;
        if inner_stride == 1 {
            run.copy_from_slice(&input[start..start + inner]);
        } else if inner_stride > 0 {
            for (o, &v) in run
                .iter_mut()
                .zip(input[start..].iter().step_by(inner_stride as usize))
            {
                *o = v;
            }
        } else {
            // Backwards: the run's last element is the lowest input index.
            let step = inner_stride.unsigned_abs();
            let low = start - (inner - 1) * step;
            for (o, &v) in run
                .iter_mut()
                .zip(input[low..=start].iter().rev().step_by(step))
            {
                *o = v;
            }
        }
        // Next outer index (odometer).
        for d in (0..outer_axes).rev() {
            index[d] += 1;
            offset += strides[d];
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
            offset -= strides[d] * dims[d] as isize;
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

    /// Per-element reference: decompose each output index and map every axis.
    fn naive(
        input: &[u32],
        in_shape: &[usize],
        starts: &[usize],
        steps: &[isize],
        out_shape: &[usize],
    ) -> Vec<u32> {
        let rank = in_shape.len();
        let total: usize = out_shape.iter().product();
        let mut out = vec![0; total];
        for (i, o) in out.iter_mut().enumerate() {
            let mut rem = i;
            let mut src = 0usize;
            let mut in_stride = 1;
            for d in (0..rank).rev() {
                let c = rem % out_shape[d];
                rem /= out_shape[d];
                let at = starts[d] as isize + c as isize * steps[d];
                src += at as usize * in_stride;
                in_stride *= in_shape[d];
            }
            *o = input[src];
        }
        out
    }

    fn run(in_shape: &[usize], starts: &[usize], steps: &[isize], out_shape: &[usize]) {
        let input: Vec<u32> = (0..in_shape.iter().product::<usize>() as u32).collect();
        let mut out = vec![u32::MAX; out_shape.iter().product()];
        slice(&input, in_shape, starts, steps, &mut out, out_shape);
        let want = naive(&input, in_shape, starts, steps, out_shape);
        assert_eq!(out, want, "{in_shape:?} {starts:?} {steps:?} {out_shape:?}");
    }

    #[test]
    fn hand_computed() {
        // [3][4], rows 1.., columns 1..3.
        let x: Vec<u8> = (0..12).collect();
        let mut out = [0u8; 4];
        slice(&x, &[3, 4], &[1, 1], &[1, 1], &mut out, &[2, 2]);
        assert_eq!(out, [5, 6, 9, 10]);
        // Reversed columns, every other row.
        let mut out = [0u8; 8];
        slice(&x, &[3, 4], &[0, 3], &[2, -1], &mut out, &[2, 4]);
        assert_eq!(out, [3, 2, 1, 0, 11, 10, 9, 8]);
        // Step 2 backwards on both axes.
        let mut out = [0u8; 4];
        slice(&x, &[3, 4], &[2, 3], &[-2, -2], &mut out, &[2, 2]);
        assert_eq!(out, [11, 9, 3, 1]);
        // Scalar and empty outputs.
        let mut one = [0u8];
        slice(&[7u8], &[], &[], &[], &mut one, &[]);
        assert_eq!(one, [7]);
        slice(&x, &[3, 4], &[0, 0], &[1, 1], &mut [], &[0, 4]);
    }

    #[test]
    fn paths_match_naive() {
        // Full inner axes merge into long copies; steps > 1 and < 0 on inner and outer.
        run(&[2, 3, 4], &[0, 0, 0], &[1, 1, 1], &[2, 3, 4]);
        run(&[2, 3, 4], &[1, 0, 0], &[1, 1, 1], &[1, 3, 4]);
        run(&[4, 3, 5], &[1, 0, 1], &[1, 1, 1], &[2, 3, 3]);
        run(&[4, 3, 5], &[0, 0, 0], &[1, 2, 2], &[4, 2, 3]);
        run(&[4, 3, 5], &[3, 2, 4], &[-1, -1, -1], &[4, 3, 5]);
        run(&[4, 3, 5], &[3, 2, 4], &[-2, -1, -3], &[2, 3, 2]);
        run(&[6, 1, 7], &[5, 0, 6], &[-3, 1, -1], &[2, 1, 7]);
        run(&[2, 9], &[1, 8], &[-1, -4], &[2, 3]);
    }

    #[test]
    fn random_slices_match_naive() {
        let mut rng = XorShift(0x736c_6963_6500_0001);
        for _ in 0..300 {
            let rank = rng.below(MAX_RANK + 1);
            let in_shape: Vec<usize> = (0..rank).map(|_| 1 + rng.below(5)).collect();
            let mut starts = Vec::new();
            let mut steps = Vec::new();
            let mut out_shape = Vec::new();
            for &len in &in_shape {
                let start = rng.below(len);
                let step = (1 + rng.below(3)) as isize * if rng.below(2) == 0 { 1 } else { -1 };
                // Elements reachable from `start` in direction `step`.
                let room = if step > 0 { len - start } else { start + 1 };
                let max = room.div_ceil(step.unsigned_abs());
                starts.push(start);
                steps.push(step);
                out_shape.push(rng.below(max + 1));
            }
            run(&in_shape, &starts, &steps, &out_shape);
        }
    }
}
