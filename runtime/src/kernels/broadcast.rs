//! Broadcast iteration shared by the elementwise kernels that take operands of
//! different shapes (Where, Expand, comparisons).
//!
//! Operand shapes are right-aligned against the output (numpy broadcasting). Size-1
//! output axes are dropped and neighbouring axes merged while every operand is
//! broadcast on both or on neither, so the output is walked as few, long runs along
//! its innermost merged axis, where each operand is contiguous or one repeated value.

use super::{MAX_RANK, broadcast_strides};

/// Calls `f(start, len, offsets, contiguous)` for each run of the output in row-major
/// order: `output[start..start + len]` reads operand `i` at `offsets[i]`, advancing one
/// element per output element when `contiguous[i]`, else repeating that element.
///
/// The runs cover `0..product(out_shape)` exactly once; nothing is called when the
/// output is empty. Preconditions (debug-asserted): ranks <= [`MAX_RANK`], no operand
/// rank above the output's, each operand axis is 1 or the output's.
#[inline(always)]
pub(crate) fn for_each_run<const N: usize>(
    shapes: [&[usize]; N],
    out_shape: &[usize],
    mut f: impl FnMut(usize, usize, [usize; N], [bool; N]),
) {
    let rank = out_shape.len();
    debug_assert!(rank <= MAX_RANK);
    debug_assert!(shapes.iter().all(|s| {
        s.len() <= rank
            && s.iter()
                .zip(&out_shape[rank - s.len()..])
                .all(|(&d, &o)| d == 1 || d == o)
    }));
    let total: usize = out_shape.iter().product();
    if total == 0 {
        return;
    }
    let full: [[usize; MAX_RANK]; N] =
        core::array::from_fn(|i| broadcast_strides(shapes[i], out_shape));
    let mut dims = [1usize; MAX_RANK];
    let mut strides = [[0usize; MAX_RANK]; N];
    let mut count = 0;
    for (axis, &len) in out_shape.iter().enumerate() {
        if len == 1 {
            continue;
        }
        if count > 0 && (0..N).all(|i| (strides[i][count - 1] == 0) == (full[i][axis] == 0)) {
            // Row-major: the outer stride is the inner stride times the inner length.
            dims[count - 1] *= len;
            for (s, f) in strides.iter_mut().zip(&full) {
                s[count - 1] = f[axis];
            }
        } else {
            dims[count] = len;
            for (s, f) in strides.iter_mut().zip(&full) {
                s[count] = f[axis];
            }
            count += 1;
        }
    }
    if count == 0 {
        f(0, 1, [0; N], [false; N]);
        return;
    }
    let inner = dims[count - 1];
    let contiguous: [bool; N] = core::array::from_fn(|i| strides[i][count - 1] != 0);
    let outer_axes = count - 1;
    let mut index = [0usize; MAX_RANK];
    let mut offsets = [0usize; N];
    let mut start = 0;
    while start < total {
        f(start, inner, offsets, contiguous);
        start += inner;
        // Advance the outer multi-index (odometer), innermost outer axis first.
        for d in (0..outer_axes).rev() {
            index[d] += 1;
            for (o, s) in offsets.iter_mut().zip(&strides) {
                *o += s[d];
            }
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
            for (o, s) in offsets.iter_mut().zip(&strides) {
                *o -= s[d] * dims[d];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn runs_cover_output_and_index_operands() {
        // [2,1,3] and [4,1] against [2,4,3]: every output element visited once, with the
        // operand offsets of its coordinates.
        let (sa, sb, so) = ([2usize, 1, 3], [4usize, 1], [2usize, 4, 3]);
        let mut seen = [0u32; 24];
        let mut runs = 0;
        for_each_run([&sa[..], &sb[..]], &so, |start, len, offs, contiguous| {
            runs += 1;
            for k in 0..len {
                let o = start + k;
                let (i0, i1, i2) = (o / 12, o / 3 % 4, o % 3);
                seen[o] += 1;
                let at = |off: usize, c: bool| off + if c { k } else { 0 };
                assert_eq!(at(offs[0], contiguous[0]), i0 * 3 + i2);
                assert_eq!(at(offs[1], contiguous[1]), i1);
            }
        });
        assert!(seen.iter().all(|&n| n == 1));
        assert_eq!(runs, 8);
        // Same shapes merge into one run; scalars and empty outputs.
        let mut calls: Vec<(usize, usize)> = Vec::new();
        for_each_run([&[2usize, 3][..]], &[2, 3], |s, l, _, c| {
            assert!(c[0]);
            calls.push((s, l));
        });
        assert_eq!(calls, [(0, 6)]);
        calls.clear();
        for_each_run([&[][..]], &[], |s, l, o, _| calls.push((s, l + o[0])));
        assert_eq!(calls, [(0, 1)]);
        calls.clear();
        for_each_run([&[1usize][..]], &[3, 0], |s, l, _, _| calls.push((s, l)));
        assert!(calls.is_empty());
    }
}
