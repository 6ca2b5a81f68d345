//! Float elementwise binary ops (Add, Sub, Mul, Div) with numpy broadcasting and a
//! fused output clamp.
//!
//! The shapes are right-aligned, size-1 output axes dropped, and adjacent axes merged
//! while each operand stays either contiguous or broadcast across them. What remains is
//! an outer loop over at most [`MAX_RANK`] - 1 axes around one inner run, where `a` and
//! `b` are each contiguous or a single repeated value; the inner loops are plain slice
//! loops that LLVM vectorizes. Whole-tensor same-shape and scalar operands skip even
//! that. Every path computes exactly `clamp(a op b)` per element.

use super::{BinaryOp, ClampF32, MAX_RANK, Operand, broadcast_strides};

/// `output[i] = clamp(a[ia] op b[ib])` with numpy broadcasting of `a_shape` and `b_shape`
/// to `out_shape`.
///
/// Preconditions (debug-asserted): ranks <= [`MAX_RANK`], neither operand's rank exceeds
/// `out_shape`'s, each operand axis is 1 or equal to the output axis, and slice lengths
/// match the shapes.
pub fn binary_f32(
    op: BinaryOp,
    clamp: ClampF32,
    a: Operand<f32>,
    b: Operand<f32>,
    output: &mut [f32],
    out_shape: &[usize],
) {
    let (a, a_shape, b, b_shape) = (a.data, a.shape, b.data, b.shape);
    debug_assert!(out_shape.len() <= MAX_RANK);
    debug_assert!(a_shape.len() <= out_shape.len() && b_shape.len() <= out_shape.len());
    debug_assert_eq!(a.len(), a_shape.iter().product::<usize>());
    debug_assert_eq!(b.len(), b_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    let shapes = Shapes {
        a_shape,
        b_shape,
        out_shape,
    };
    match op {
        BinaryOp::Add => broadcast(a, b, output, shapes, move |x, y| clamp.apply(x + y)),
        BinaryOp::Sub => broadcast(a, b, output, shapes, move |x, y| clamp.apply(x - y)),
        BinaryOp::Mul => broadcast(a, b, output, shapes, move |x, y| clamp.apply(x * y)),
        BinaryOp::Div => broadcast(a, b, output, shapes, move |x, y| clamp.apply(x / y)),
        BinaryOp::Pow => broadcast(a, b, output, shapes, move |x, y| clamp.apply(pow(x, y))),
        BinaryOp::Max => broadcast(a, b, output, shapes, move |x, y| clamp.apply(max(x, y))),
        BinaryOp::Min => broadcast(a, b, output, shapes, move |x, y| clamp.apply(min(x, y))),
    }
}

impl BinaryOp {
    /// The op on two floats, as the f32 kernel computes it (Max/Min propagate NaN).
    pub fn apply_f32(self, x: f32, y: f32) -> f32 {
        match self {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            BinaryOp::Pow => pow(x, y),
            BinaryOp::Max => max(x, y),
            BinaryOp::Min => min(x, y),
        }
    }
}

/// `x ^ y`, with the common exponents exact and cheap.
#[inline(always)]
fn pow(x: f32, y: f32) -> f32 {
    if y == 2.0 {
        x * x
    } else if y == 1.0 {
        x
    } else if y == 0.5 {
        libm::sqrtf(x)
    } else {
        libm::powf(x, y)
    }
}

/// ONNX Max: NaN if either is NaN.
#[inline(always)]
fn max(x: f32, y: f32) -> f32 {
    if x.is_nan() || y.is_nan() {
        f32::NAN
    } else if x >= y {
        x
    } else {
        y
    }
}

/// ONNX Min: NaN if either is NaN.
#[inline(always)]
fn min(x: f32, y: f32) -> f32 {
    if x.is_nan() || y.is_nan() {
        f32::NAN
    } else if x <= y {
        x
    } else {
        y
    }
}

#[derive(Clone, Copy)]
struct Shapes<'s> {
    a_shape: &'s [usize],
    b_shape: &'s [usize],
    out_shape: &'s [usize],
}

#[inline(always)]
fn broadcast(
    a: &[f32],
    b: &[f32],
    output: &mut [f32],
    shapes: Shapes,
    f: impl Fn(f32, f32) -> f32 + Copy,
) {
    let total = output.len();
    if total == 0 {
        return;
    }
    // Element counts equal to the output's mean no axis is broadcast (an operand axis is
    // either the output's or 1), so the layouts coincide.
    if a.len() == total && b.len() == total {
        for ((o, &x), &y) in output.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
        return;
    }
    if b.len() == 1 && a.len() == total {
        let y = b[0];
        for (o, &x) in output.iter_mut().zip(a) {
            *o = f(x, y);
        }
        return;
    }
    if a.len() == 1 && b.len() == total {
        let x = a[0];
        for (o, &y) in output.iter_mut().zip(b) {
            *o = f(x, y);
        }
        return;
    }

    // Coalesce axes: drop size-1 output axes, merge neighbours whose operands are
    // broadcast (stride 0) or not in the same way.
    let out_shape = shapes.out_shape;
    let sa = broadcast_strides(shapes.a_shape, out_shape);
    let sb = broadcast_strides(shapes.b_shape, out_shape);
    let mut dims = [0usize; MAX_RANK];
    let mut a_str = [0usize; MAX_RANK];
    let mut b_str = [0usize; MAX_RANK];
    let mut count = 0;
    for axis in 0..out_shape.len() {
        let len = out_shape[axis];
        if len == 1 {
            continue;
        }
        let (ast, bst) = (sa[axis], sb[axis]);
        if count > 0
            && (a_str[count - 1] == 0) == (ast == 0)
            && (b_str[count - 1] == 0) == (bst == 0)
        {
            // Row-major: the outer stride is the inner stride times the inner length.
            dims[count - 1] *= len;
            a_str[count - 1] = ast;
            b_str[count - 1] = bst;
        } else {
            dims[count] = len;
            a_str[count] = ast;
            b_str[count] = bst;
            count += 1;
        }
    }
    if count == 0 {
        output[0] = f(a[0], b[0]);
        return;
    }

    let inner = dims[count - 1];
    let a_inner = a_str[count - 1] != 0;
    let b_inner = b_str[count - 1] != 0;
    let outer_axes = count - 1;
    let mut index = [0usize; MAX_RANK];
    let (mut a_off, mut b_off) = (0usize, 0usize);
    for out_run in output.chunks_exact_mut(inner) {
        match (a_inner, b_inner) {
            (true, true) => {
                let (xs, ys) = (&a[a_off..a_off + inner], &b[b_off..b_off + inner]);
                for ((o, &x), &y) in out_run.iter_mut().zip(xs).zip(ys) {
                    *o = f(x, y);
                }
            }
            (true, false) => {
                let y = b[b_off];
                for (o, &x) in out_run.iter_mut().zip(&a[a_off..a_off + inner]) {
                    *o = f(x, y);
                }
            }
            (false, true) => {
                let x = a[a_off];
                for (o, &y) in out_run.iter_mut().zip(&b[b_off..b_off + inner]) {
                    *o = f(x, y);
                }
            }
            (false, false) => out_run.fill(f(a[a_off], b[b_off])),
        }
        // Advance the outer multi-index (odometer), innermost outer axis first.
        for d in (0..outer_axes).rev() {
            index[d] += 1;
            a_off += a_str[d];
            b_off += b_str[d];
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
            a_off -= a_str[d] * dims[d];
            b_off -= b_str[d] * dims[d];
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

    fn scalar(op: BinaryOp, x: f32, y: f32) -> f32 {
        op.apply_f32(x, y)
    }

    /// Per-element reference: decompose each output index and index both operands.
    fn naive(
        op: BinaryOp,
        a: &[f32],
        sa: &[usize],
        b: &[f32],
        sb: &[usize],
        so: &[usize],
        clamp: ClampF32,
    ) -> Vec<f32> {
        let total: usize = so.iter().product();
        let mut out = vec![0.0; total];
        for (i, o) in out.iter_mut().enumerate() {
            let mut rem = i;
            let mut coord = [0usize; MAX_RANK];
            for d in (0..so.len()).rev() {
                coord[d] = rem % so[d];
                rem /= so[d];
            }
            let flat = |shape: &[usize]| {
                let off = so.len() - shape.len();
                let mut idx = 0;
                for (d, &len) in shape.iter().enumerate() {
                    idx = idx * len + if len == 1 { 0 } else { coord[d + off] };
                }
                idx
            };
            *o = clamp.apply(scalar(op, a[flat(sa)], b[flat(sb)]));
        }
        out
    }

    fn run(
        op: BinaryOp,
        sa: &[usize],
        sb: &[usize],
        so: &[usize],
        clamp: ClampF32,
        rng: &mut XorShift,
    ) {
        let a: Vec<f32> = (0..sa.iter().product()).map(|_| rng.f32()).collect();
        let b: Vec<f32> = (0..sb.iter().product()).map(|_| rng.f32() + 2.0).collect();
        let mut out = vec![f32::NAN; so.iter().product()];
        binary_f32(
            op,
            clamp,
            Operand::new(&a, sa),
            Operand::new(&b, sb),
            &mut out,
            so,
        );
        let want = naive(op, &a, sa, &b, sb, so, clamp);
        // Same operation on the same operands: bit-exact.
        assert_eq!(out, want, "{op:?} {sa:?} {sb:?} -> {so:?}");
    }

    #[test]
    fn hand_computed() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0.0f32; 6];
        // Per-row [2,1] against [2,3].
        binary_f32(
            BinaryOp::Sub,
            ClampF32::NONE,
            Operand::new(&a, &[2, 3]),
            Operand::new(&[1.0, 10.0], &[2, 1]),
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [0.0, 1.0, 2.0, -6.0, -5.0, -4.0]);
        // Per-column [3] against [2,3].
        binary_f32(
            BinaryOp::Mul,
            ClampF32::NONE,
            Operand::new(&a, &[2, 3]),
            Operand::new(&[1.0, 0.5, 2.0], &[3]),
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [1.0, 1.0, 6.0, 4.0, 2.5, 12.0]);
        // Scalar divisor with a fused Relu6-like clamp.
        let clamp = ClampF32 { min: 1.0, max: 2.0 };
        binary_f32(
            BinaryOp::Div,
            clamp,
            Operand::new(&a, &[2, 3]),
            Operand::new(&[2.0], &[]),
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [1.0, 1.0, 1.5, 2.0, 2.0, 2.0]);
        // Outer product [2,1] x [1,3] (both operands broadcast).
        binary_f32(
            BinaryOp::Add,
            ClampF32::NONE,
            Operand::new(&[10.0, 20.0], &[2, 1]),
            Operand::new(&[1.0, 2.0, 3.0], &[1, 3]),
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [11.0, 12.0, 13.0, 21.0, 22.0, 23.0]);
        // Scalar a.
        binary_f32(
            BinaryOp::Sub,
            ClampF32::NONE,
            Operand::new(&[1.0], &[1]),
            Operand::new(&a, &[6]),
            &mut out,
            &[6],
        );
        assert_eq!(out, [0.0, -1.0, -2.0, -3.0, -4.0, -5.0]);
    }

    #[test]
    fn fast_paths_match_naive() {
        let mut rng = XorShift(0x0bad_cafe_f00d_1234);
        let relu6 = ClampF32 { min: 0.0, max: 6.0 };
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
            run(
                op,
                &[2, 3, 4, 5],
                &[2, 3, 4, 5],
                &[2, 3, 4, 5],
                ClampF32::NONE,
                &mut rng,
            );
            run(op, &[2, 3, 4, 5], &[1], &[2, 3, 4, 5], relu6, &mut rng);
            run(op, &[], &[], &[], ClampF32::NONE, &mut rng);
            // Per-channel bias [C,1,1] against NCHW.
            run(
                op,
                &[2, 3, 4, 5],
                &[3, 1, 1],
                &[2, 3, 4, 5],
                ClampF32::NONE,
                &mut rng,
            );
            run(
                op,
                &[3, 1, 1],
                &[2, 3, 4, 5],
                &[2, 3, 4, 5],
                relu6,
                &mut rng,
            );
            // Innermost-axis vector.
            run(
                op,
                &[2, 3, 4, 5],
                &[5],
                &[2, 3, 4, 5],
                ClampF32::NONE,
                &mut rng,
            );
            // Both broadcast on the innermost axis.
            run(
                op,
                &[2, 3, 1],
                &[1, 3, 1],
                &[2, 3, 7],
                ClampF32::NONE,
                &mut rng,
            );
            // Size-1 output axes in the middle.
            run(
                op,
                &[2, 1, 3, 1, 4],
                &[1, 1, 3, 1, 1],
                &[2, 1, 3, 1, 4],
                ClampF32::NONE,
                &mut rng,
            );
        }
    }

    #[test]
    fn random_shapes_match_naive() {
        let mut rng = XorShift(0x5eed_5eed_5eed_5eed);
        for iter in 0..300 {
            let rank = rng.below(MAX_RANK + 1);
            let so: Vec<usize> = (0..rank).map(|_| 1 + rng.below(4)).collect();
            let operand = |rng: &mut XorShift| -> Vec<usize> {
                let r = rng.below(rank + 1);
                so[rank - r..]
                    .iter()
                    .map(|&d| if rng.below(3) == 0 { 1 } else { d })
                    .collect()
            };
            let sa = operand(&mut rng);
            let sb = operand(&mut rng);
            // The output shape is the broadcast of the operands; shrink it where neither
            // operand reaches an axis's full size.
            let mut so = so.clone();
            for (d, len) in so.iter_mut().enumerate() {
                let get = |s: &[usize]| {
                    if d + s.len() >= rank {
                        s[d + s.len() - rank]
                    } else {
                        1
                    }
                };
                *len = get(&sa).max(get(&sb));
            }
            let op = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div][iter % 4];
            let clamp = if iter % 3 == 0 {
                ClampF32 {
                    min: -0.5,
                    max: 0.5,
                }
            } else {
                ClampF32::NONE
            };
            run(op, &sa, &sb, &so, clamp, &mut rng);
        }
    }
}
