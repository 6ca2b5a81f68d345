//! Float reductions over any set of axes (ONNX ReduceSum, ReduceMean, ReduceMax,
//! ReduceMin, ReduceProd, ReduceSumSquare, ReduceL1, ReduceL2, ReduceLogSumExp).
//!
//! Size-1 axes are dropped and neighbouring axes merged while both are reduced or both
//! kept, leaving alternating groups. When the innermost group is reduced, each output
//! folds contiguous input runs ([`LANES`] partial values per run, so long sums vectorize
//! and stay accurate). When it is kept, each contiguous output run is built by folding
//! whole input runs into it elementwise, [`CHUNK`] columns at a time in a local
//! accumulator. Max and Min propagate NaN; the other ops follow IEEE arithmetic.

use super::MAX_RANK;

/// Independent partial values per contiguous run.
const LANES: usize = 8;
/// Output columns accumulated at once when the innermost axis is kept.
const CHUNK: usize = 64;

/// The reduction applied to each set of reduced elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// `sum x` (0 when empty).
    Sum,
    /// `sum x / n` (NaN when empty).
    Mean,
    /// `max x` (-inf when empty).
    Max,
    /// `min x` (+inf when empty).
    Min,
    /// `prod x` (1 when empty).
    Prod,
    /// `sum x^2` (0 when empty).
    SumSquare,
    /// `sum |x|` (0 when empty).
    L1,
    /// `sqrt(sum x^2)` (0 when empty).
    L2,
    /// `log(sum exp(x))`, computed as `m + log(sum exp(x - m))` with `m = max x`
    /// (-inf when empty or when every element is -inf).
    LogSumExp,
}

/// How an op folds elements: `acc = combine(acc, map(x))` from `init`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fold {
    Add,
    AddSquare,
    AddAbs,
    Mul,
    Max,
    Min,
}

impl Fold {
    #[inline(always)]
    fn init(self) -> f32 {
        match self {
            Fold::Add | Fold::AddSquare | Fold::AddAbs => 0.0,
            Fold::Mul => 1.0,
            Fold::Max => f32::NEG_INFINITY,
            Fold::Min => f32::INFINITY,
        }
    }

    /// Folds one input element into `acc`.
    #[inline(always)]
    fn step(self, acc: f32, x: f32) -> f32 {
        match self {
            Fold::Add => acc + x,
            Fold::AddSquare => acc + x * x,
            Fold::AddAbs => acc + x.abs(),
            Fold::Mul => acc * x,
            Fold::Max => max_nan(acc, x),
            Fold::Min => min_nan(acc, x),
        }
    }

    /// Merges two partial values.
    #[inline(always)]
    fn merge(self, a: f32, b: f32) -> f32 {
        match self {
            Fold::Add | Fold::AddSquare | Fold::AddAbs => a + b,
            Fold::Mul => a * b,
            Fold::Max => max_nan(a, b),
            Fold::Min => min_nan(a, b),
        }
    }
}

/// `max(a, b)`, NaN when either is NaN.
#[inline(always)]
fn max_nan(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}

/// `min(a, b)`, NaN when either is NaN.
#[inline(always)]
fn min_nan(a: f32, b: f32) -> f32 {
    if b < a || b.is_nan() { b } else { a }
}

impl ReduceOp {
    /// The fold of the op's single pass (LogSumExp: its first pass, the max).
    fn fold(self) -> Fold {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => Fold::Add,
            ReduceOp::SumSquare | ReduceOp::L2 => Fold::AddSquare,
            ReduceOp::L1 => Fold::AddAbs,
            ReduceOp::Prod => Fold::Mul,
            ReduceOp::Max | ReduceOp::LogSumExp => Fold::Max,
            ReduceOp::Min => Fold::Min,
        }
    }

    /// The result from the folded value of `count` elements.
    #[inline(always)]
    fn finish(self, acc: f32, count: usize) -> f32 {
        match self {
            ReduceOp::Mean => acc / count as f32,
            ReduceOp::L2 => libm::sqrtf(acc),
            _ => acc,
        }
    }
}

/// LogSumExp of a set from its max `m` and `sum = sum exp(x - m)`.
#[inline(always)]
fn log_sum_exp(m: f32, sum: f32) -> f32 {
    // All -inf (or empty), any +inf, or a NaN: the max is the answer (the plain
    // `log(sum exp(x))` gives the same), and `x - m` would be NaN.
    if m.is_finite() {
        m + libm::logf(sum)
    } else {
        m
    }
}

/// Reduces the axes of `in_shape` whose bit is set in `axes_mask` (bit `d` for axis `d`).
///
/// `output` holds one value per combination of the kept axes, in their row-major order
/// (keepdims only changes the shape, not this layout). Empty reductions give the ONNX
/// identities: Sum, SumSquare, L1, L2 0, Prod 1, Max -inf, Min +inf, LogSumExp -inf,
/// Mean NaN. With no axis reduced, each output is the op over its one element (e.g. `x^2`
/// for SumSquare). Preconditions (debug-asserted): rank <= [`MAX_RANK`], no mask bit at
/// or above the rank, `input.len() == product(in_shape)`, `output.len()` the product of
/// the kept axes.
pub fn reduce_f32(
    op: ReduceOp,
    input: &[f32],
    in_shape: &[usize],
    axes_mask: u32,
    output: &mut [f32],
) {
    let rank = in_shape.len();
    debug_assert!(rank <= MAX_RANK);
    debug_assert_eq!(axes_mask >> rank, 0);
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    let reduced = |d: usize| (axes_mask >> d) & 1 != 0;
    debug_assert_eq!(
        output.len(),
        (0..rank)
            .filter(|&d| !reduced(d))
            .map(|d| in_shape[d])
            .product::<usize>()
    );
    let count: usize = (0..rank)
        .filter(|&d| reduced(d))
        .map(|d| in_shape[d])
        .product();
    if input.is_empty() {
        // Any non-empty output reduces empty sets.
        let empty = match op {
            ReduceOp::LogSumExp => f32::NEG_INFINITY,
            _ => op.finish(op.fold().init(), 0),
        };
        output.fill(empty);
        return;
    }

    // Groups of merged axes: length, input stride, reduced or not. A single reduced
    // group of length 1 stands for a tensor with no axis longer than 1.
    let mut dims = [0usize; MAX_RANK];
    let mut strides = [0usize; MAX_RANK];
    let mut is_reduced = [false; MAX_RANK];
    let mut count_groups = 0;
    let mut stride = 1;
    for d in (0..rank).rev() {
        let len = in_shape[d];
        if len != 1 {
            if count_groups > 0 && is_reduced[count_groups - 1] == reduced(d) {
                dims[count_groups - 1] *= len;
            } else {
                dims[count_groups] = len;
                strides[count_groups] = stride;
                is_reduced[count_groups] = reduced(d);
                count_groups += 1;
            }
        }
        stride *= len;
    }
    if count_groups == 0 {
        (dims[0], strides[0], is_reduced[0], count_groups) = (1, 1, true, 1);
    }
    // Groups were collected innermost first; split them into kept and reduced axes,
    // outermost first, for the odometers.
    let mut kept = Axes::default();
    let mut red = Axes::default();
    for g in (0..count_groups).rev() {
        let axes = if is_reduced[g] { &mut red } else { &mut kept };
        axes.push(dims[g], strides[g]);
    }

    if is_reduced[0] {
        // Innermost group reduced: fold contiguous runs of `run` elements.
        let (run, outer_red) = red.split_inner();
        let mut base = 0usize;
        let mut kept_index = [0usize; MAX_RANK];
        for o in output.iter_mut() {
            *o = if op == ReduceOp::LogSumExp {
                let m = fold_runs(Fold::Max, input, base, run, &outer_red);
                let mut sum = 0.0f32;
                if m.is_finite() {
                    outer_red.for_each(|off| {
                        for &x in &input[base + off..][..run] {
                            sum += libm::expf(x - m);
                        }
                    });
                }
                log_sum_exp(m, sum)
            } else {
                op.finish(fold_runs(op.fold(), input, base, run, &outer_red), count)
            };
            kept.advance(&mut kept_index, &mut base);
        }
    } else {
        // Innermost group kept: build contiguous output runs of `run` elements.
        let (run, outer_kept) = kept.split_inner();
        let mut base = 0usize;
        let mut kept_index = [0usize; MAX_RANK];
        for out_run in output.chunks_exact_mut(run) {
            for (c, out) in out_run.chunks_mut(CHUNK).enumerate() {
                let cols = c * CHUNK;
                let width = out.len();
                let mut acc = [0.0f32; CHUNK];
                let acc = &mut acc[..width];
                let fold = op.fold();
                acc.fill(fold.init());
                red.for_each(|off| {
                    for (a, &x) in acc.iter_mut().zip(&input[base + off + cols..][..width]) {
                        *a = fold.step(*a, x);
                    }
                });
                if op == ReduceOp::LogSumExp {
                    let mut sum = [0.0f32; CHUNK];
                    let sum = &mut sum[..width];
                    red.for_each(|off| {
                        let xs = &input[base + off + cols..][..width];
                        for ((s, &m), &x) in sum.iter_mut().zip(acc.iter()).zip(xs) {
                            if m.is_finite() {
                                *s += libm::expf(x - m);
                            }
                        }
                    });
                    for ((o, &m), &s) in out.iter_mut().zip(acc.iter()).zip(sum.iter()) {
                        *o = log_sum_exp(m, s);
                    }
                } else {
                    for (o, &a) in out.iter_mut().zip(acc.iter()) {
                        *o = op.finish(a, count);
                    }
                }
            }
            outer_kept.advance(&mut kept_index, &mut base);
        }
    }
}

/// Merged axes walked by an odometer: lengths and input strides, outermost first.
#[derive(Clone, Copy, Default)]
struct Axes {
    dims: [usize; MAX_RANK],
    strides: [usize; MAX_RANK],
    len: usize,
}

impl Axes {
    fn push(&mut self, dim: usize, stride: usize) {
        self.dims[self.len] = dim;
        self.strides[self.len] = stride;
        self.len += 1;
    }

    /// The innermost axis's length (it has stride 1) and the other axes.
    fn split_inner(mut self) -> (usize, Axes) {
        debug_assert!(self.len > 0 && self.strides[self.len - 1] == 1);
        self.len -= 1;
        (self.dims[self.len], self)
    }

    /// Steps the multi-index `index` (and its input offset `base`) to the next position,
    /// wrapping to 0 after the last.
    #[inline(always)]
    fn advance(&self, index: &mut [usize; MAX_RANK], base: &mut usize) {
        for d in (0..self.len).rev() {
            index[d] += 1;
            *base += self.strides[d];
            if index[d] < self.dims[d] {
                return;
            }
            index[d] = 0;
            *base -= self.strides[d] * self.dims[d];
        }
    }

    /// Calls `f(offset)` for every position, in row-major order (once when no axes).
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(usize)) {
        let total: usize = self.dims[..self.len].iter().product();
        let mut index = [0usize; MAX_RANK];
        let mut off = 0usize;
        for _ in 0..total {
            f(off);
            self.advance(&mut index, &mut off);
        }
    }
}

/// Folds the runs `input[base + off..][..run]` for every `off` of `outer`.
#[inline(always)]
fn fold_runs(fold: Fold, input: &[f32], base: usize, run: usize, outer: &Axes) -> f32 {
    let mut acc = fold.init();
    outer.for_each(|off| acc = fold.merge(acc, fold_run(fold, &input[base + off..][..run])));
    acc
}

/// Folds one contiguous run with [`LANES`] partial values.
#[inline(always)]
fn fold_run(fold: Fold, xs: &[f32]) -> f32 {
    let mut acc = [fold.init(); LANES];
    let (chunks, tail) = xs.as_chunks::<LANES>();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = fold.step(*a, x);
        }
    }
    let mut t = fold.init();
    for &x in tail {
        t = fold.step(t, x);
    }
    let a = [
        fold.merge(acc[0], acc[4]),
        fold.merge(acc[1], acc[5]),
        fold.merge(acc[2], acc[6]),
        fold.merge(acc[3], acc[7]),
    ];
    fold.merge(
        fold.merge(fold.merge(a[0], a[2]), fold.merge(a[1], a[3])),
        t,
    )
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    const OPS: [ReduceOp; 9] = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Prod,
        ReduceOp::SumSquare,
        ReduceOp::L1,
        ReduceOp::L2,
        ReduceOp::LogSumExp,
    ];

    /// f64 reference: gather each output's elements in row-major order, then reduce.
    /// Returns per output the value, a magnitude for the error bound (the sum of the
    /// absolute terms, where Sum and Mean may cancel) and the number of terms.
    fn naive(op: ReduceOp, x: &[f32], shape: &[usize], mask: u32) -> Vec<(f64, f64, usize)> {
        let rank = shape.len();
        let kept: Vec<usize> = (0..rank).filter(|&d| (mask >> d) & 1 == 0).collect();
        let out_len: usize = kept.iter().map(|&d| shape[d]).product();
        let mut sets: Vec<Vec<f64>> = vec![Vec::new(); out_len];
        for (i, &v) in x.iter().enumerate() {
            let mut coord = [0usize; MAX_RANK];
            let mut rem = i;
            for d in (0..rank).rev() {
                coord[d] = rem % shape[d];
                rem /= shape[d];
            }
            let o = kept.iter().fold(0, |o, &d| o * shape[d] + coord[d]);
            sets[o].push(v as f64);
        }
        sets.iter()
            .map(|s| {
                let n = s.len() as f64;
                let abs_sum: f64 = s.iter().map(|v| v.abs()).sum();
                let value = match op {
                    ReduceOp::Sum => s.iter().sum(),
                    ReduceOp::Mean => s.iter().sum::<f64>() / n,
                    ReduceOp::Max => s.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v)),
                    ReduceOp::Min => s.iter().fold(f64::INFINITY, |m, &v| m.min(v)),
                    ReduceOp::Prod => s.iter().product(),
                    ReduceOp::SumSquare => s.iter().map(|v| v * v).sum(),
                    ReduceOp::L1 => abs_sum,
                    ReduceOp::L2 => s.iter().map(|v| v * v).sum::<f64>().sqrt(),
                    ReduceOp::LogSumExp => s.iter().map(|v| v.exp()).sum::<f64>().ln(),
                };
                let magnitude = match op {
                    ReduceOp::Sum => abs_sum,
                    ReduceOp::Mean => abs_sum / n,
                    _ => value.abs().max(1.0),
                };
                (value, magnitude, s.len())
            })
            .collect()
    }

    fn run(op: ReduceOp, shape: &[usize], mask: u32, rng: &mut XorShift) {
        // Products stay in range with factors near +-1; other ops get +-[1, 2).
        let x: Vec<f32> = (0..shape.iter().product())
            .map(|_| {
                let v = rng.f32();
                if op == ReduceOp::Prod {
                    v.signum() * (1.0 + v * 0.1)
                } else {
                    v + v.signum()
                }
            })
            .collect();
        let want = naive(op, &x, shape, mask);
        let mut out = vec![f32::NAN; want.len()];
        reduce_f32(op, &x, shape, mask, &mut out);
        for (&g, &(w, magnitude, n)) in out.iter().zip(&want) {
            let ok = if w.is_nan() {
                g.is_nan()
            } else if w.is_infinite() {
                g as f64 == w
            } else {
                // f32 rounding grows at most linearly with the number of terms; a wrong
                // element or order of magnitude is far outside this bound.
                (g as f64 - w).abs() <= 1e-6 * magnitude * (1.0 + n as f64 / 32.0)
            };
            assert!(ok, "{op:?} {shape:?} mask {mask:#b}: {g} vs {w}");
        }
    }

    #[test]
    fn hand_computed() {
        // [2][3]: rows [1, 2, 3], [4, 5, 6].
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out2 = [0.0f32; 2];
        let mut out3 = [0.0f32; 3];
        reduce_f32(ReduceOp::Sum, &x, &[2, 3], 0b10, &mut out2);
        assert_eq!(out2, [6.0, 15.0]);
        reduce_f32(ReduceOp::Sum, &x, &[2, 3], 0b01, &mut out3);
        assert_eq!(out3, [5.0, 7.0, 9.0]);
        reduce_f32(ReduceOp::Mean, &x, &[2, 3], 0b01, &mut out3);
        assert_eq!(out3, [2.5, 3.5, 4.5]);
        reduce_f32(ReduceOp::Max, &x, &[2, 3], 0b10, &mut out2);
        assert_eq!(out2, [3.0, 6.0]);
        reduce_f32(ReduceOp::Min, &x, &[2, 3], 0b01, &mut out3);
        assert_eq!(out3, [1.0, 2.0, 3.0]);
        reduce_f32(ReduceOp::Prod, &x, &[2, 3], 0b10, &mut out2);
        assert_eq!(out2, [6.0, 120.0]);
        reduce_f32(ReduceOp::SumSquare, &x, &[2, 3], 0b01, &mut out3);
        assert_eq!(out3, [17.0, 29.0, 45.0]);
        reduce_f32(ReduceOp::L1, &[-1.0, 2.0, -3.0], &[3], 0b1, &mut out2[..1]);
        assert_eq!(out2[0], 6.0);
        reduce_f32(ReduceOp::L2, &[3.0, -4.0], &[2], 0b1, &mut out2[..1]);
        assert_eq!(out2[0], 5.0);
        let mut out = [0.0f32; 1];
        reduce_f32(ReduceOp::Sum, &x, &[2, 3], 0b11, &mut out);
        assert_eq!(out, [21.0]);
        // LogSumExp: large values do not overflow; all -inf gives -inf; +inf gives +inf.
        reduce_f32(ReduceOp::LogSumExp, &[1000.0, 1000.0], &[2], 1, &mut out);
        assert!((out[0] - (1000.0 + core::f32::consts::LN_2)).abs() < 1e-4);
        let ninf = f32::NEG_INFINITY;
        reduce_f32(ReduceOp::LogSumExp, &[ninf, ninf], &[2], 1, &mut out);
        assert_eq!(out[0], ninf);
        reduce_f32(
            ReduceOp::LogSumExp,
            &[1.0, f32::INFINITY],
            &[2],
            1,
            &mut out,
        );
        assert_eq!(out[0], f32::INFINITY);
        // Max and Min propagate NaN, on both paths.
        reduce_f32(ReduceOp::Max, &[1.0, f32::NAN, 2.0], &[3], 1, &mut out);
        assert!(out[0].is_nan());
        reduce_f32(
            ReduceOp::Min,
            &[1.0, f32::NAN, 2.0, 0.0],
            &[2, 2],
            0b01,
            &mut out2,
        );
        assert!(out2[0] == 1.0 && out2[1].is_nan());
    }

    #[test]
    fn empty_and_trivial() {
        // Reducing an axis of length 0: ONNX identities.
        let mut out = [0.0f32; 3];
        let want = [
            (ReduceOp::Sum, 0.0),
            (ReduceOp::Prod, 1.0),
            (ReduceOp::Max, f32::NEG_INFINITY),
            (ReduceOp::Min, f32::INFINITY),
            (ReduceOp::SumSquare, 0.0),
            (ReduceOp::L1, 0.0),
            (ReduceOp::L2, 0.0),
            (ReduceOp::LogSumExp, f32::NEG_INFINITY),
        ];
        for (op, w) in want {
            reduce_f32(op, &[], &[3, 0], 0b10, &mut out);
            assert_eq!(out, [w; 3], "{op:?}");
        }
        reduce_f32(ReduceOp::Mean, &[], &[3, 0], 0b10, &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
        // Empty output: nothing written.
        reduce_f32(ReduceOp::Sum, &[], &[0, 3], 0b10, &mut []);
        // Scalars and all-size-1 shapes; no axis reduced.
        let mut one = [0.0f32];
        reduce_f32(ReduceOp::SumSquare, &[3.0], &[], 0, &mut one);
        assert_eq!(one, [9.0]);
        reduce_f32(ReduceOp::L2, &[-3.0], &[1, 1], 0b01, &mut one);
        assert_eq!(one, [3.0]);
        let mut out = [0.0f32; 4];
        reduce_f32(ReduceOp::L1, &[1.0, -2.0, 3.0, -4.0], &[2, 2], 0, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn both_paths_match_naive() {
        let mut rng = XorShift(0x7265_6475_6365_0001);
        // Inner reduced (long runs, strided outer reduced axes) and inner kept (wider
        // than one accumulator chunk, and narrower).
        let cases: [(&[usize], u32); 8] = [
            (&[3, 70], 0b10),
            (&[2, 3, 4, 5], 0b1010),
            (&[2, 3, 4, 5], 0b0101),
            (&[4, 3, 150], 0b010),
            (&[2, 5, 3], 0b001),
            (&[1, 6, 1, 7], 0b0101),
            (&[2, 1, 3], 0b111),
            (&[3, 2, 2, 1, 2, 3], 0b101101),
        ];
        for (shape, mask) in cases {
            for op in OPS {
                run(op, shape, mask, &mut rng);
            }
        }
    }

    #[test]
    fn random_shapes_match_naive() {
        let mut rng = XorShift(0x7265_6475_6365_0002);
        for iter in 0..300 {
            let rank = rng.below(MAX_RANK + 1);
            let shape: Vec<usize> = (0..rank).map(|_| 1 + rng.below(5)).collect();
            let mask = (rng.next() as u32) & ((1u32 << rank) - 1);
            run(OPS[iter % OPS.len()], &shape, mask, &mut rng);
        }
    }
}
