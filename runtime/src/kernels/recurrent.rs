//! Shared pieces of the recurrent kernels ([`super::lstm_f32`], [`super::gru_f32`],
//! [`super::rnn_f32`]): direction, dimensions, the packed output layout and the
//! matrix-vector product of the gates.
//!
//! All three kernels take time-major input `x[seq_len][batch][input_size]` (ONNX
//! `layout = 0`) and write one packed output, a stack of `[dirs][batch][hidden]`
//! blocks: blocks `0..seq_len` are ONNX `Y`, block `seq_len` is `Y_h` and, for
//! LSTM, block `seq_len + 1` is `Y_c`. The state blocks double as the running
//! state while a direction runs.
//!
//! [`run_sequences`] is the one sequence walk (directions, batch entries, time
//! steps, sequence lengths, initial and final states, the packed output); each
//! kernel supplies only its [`Cell`] (the float ones a [`StepF32`], the int8
//! ones a `recurrent_s8::StepS8`).

use super::FloatWeight;

/// Independent partial sums per dot product (as in the fully connected kernel).
const LANES: usize = 8;

/// Which way(s) a recurrent layer runs over time (ONNX `direction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `t = 0, 1, ..., len - 1`.
    Forward,
    /// `t = len - 1, ..., 0`.
    Reverse,
    /// Forward as direction 0, reverse as direction 1.
    Bidirectional,
}

impl Direction {
    /// Number of directions (ONNX `num_directions`): 2 for bidirectional, else 1.
    pub const fn count(self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            Direction::Forward | Direction::Reverse => 1,
        }
    }

    /// Whether direction index `d` (`0..self.count()`) runs backwards in time.
    #[inline]
    pub(crate) fn is_reverse(self, d: usize) -> bool {
        match self {
            Direction::Forward => false,
            Direction::Reverse => true,
            Direction::Bidirectional => d == 1,
        }
    }
}

/// Sizes of a recurrent layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecurrentDims {
    /// Time steps in `x` (ONNX `seq_length`).
    pub seq_len: usize,
    /// Sequences processed together (ONNX `batch_size`).
    pub batch: usize,
    /// Features of one input step (ONNX `input_size`).
    pub input_size: usize,
    /// Hidden units (ONNX `hidden_size`).
    pub hidden: usize,
}

impl RecurrentDims {
    /// Elements of `x`: `seq_len * batch * input_size`.
    pub const fn input_len(&self) -> usize {
        self.seq_len * self.batch * self.input_size
    }

    /// Elements of one `[dirs][batch][hidden]` block of the packed output.
    pub const fn block_len(&self, direction: Direction) -> usize {
        direction.count() * self.batch * self.hidden
    }

    /// Number of valid steps of batch entry `b`: `seq_lens[b]`, or `seq_len`
    /// without `seq_lens`.
    #[inline]
    pub(crate) fn valid_len(&self, seq_lens: Option<&[i32]>, b: usize) -> usize {
        seq_lens.map_or(self.seq_len, |l| l[b] as usize)
    }

    /// Offset of row `(block, d, b)` (`hidden` values) in the packed output.
    #[inline]
    pub(crate) fn out_offset(&self, dirs: usize, block: usize, d: usize, b: usize) -> usize {
        ((block * dirs + d) * self.batch + b) * self.hidden
    }
}

/// The tensors every recurrent kernel reads besides its weights.
#[derive(Clone, Copy, Debug)]
pub struct SequenceInputs<'a, X> {
    /// `x[seq_len][batch][input_size]` (f32, or int8 for the int8 kernels).
    pub x: &'a [X],
    /// Valid steps per batch entry (`[batch]`, each in `0..=seq_len`); `None`:
    /// every entry runs `seq_len` steps.
    pub seq_lens: Option<&'a [i32]>,
    /// Initial hidden state `[dirs][batch][hidden]` (f32); `None`: zeros.
    pub initial_h: Option<&'a [f32]>,
    /// LSTM only: initial cell state `[dirs][batch][hidden]` (f32); `None`: zeros.
    pub initial_c: Option<&'a [f32]>,
}

/// The state rows of one sequence (one direction, one batch entry) in the
/// packed output: its `Y_h` row and, for LSTM, its `Y_c` row (empty otherwise).
pub(crate) struct StateRows<'a> {
    /// `hidden` values of the `Y_h` block.
    pub h: &'a mut [f32],
    /// `hidden` values of the `Y_c` block, or empty.
    pub c: &'a mut [f32],
}

/// The per-kernel part of a recurrent layer: how one sequence starts, steps
/// and ends. [`run_sequences`] walks directions, batch entries and time steps.
pub(crate) trait Cell {
    /// Input element: f32, or i8 for the integer cells.
    type X: Copy;
    /// State blocks after `Y` in the packed output: 1 (`Y_h`) or 2 (`Y_h`, `Y_c`).
    const STATES: usize;
    /// Selects direction `d`'s weights and attributes.
    fn set_direction(&mut self, d: usize);
    /// Starts a sequence from its initial state rows (`None`: zeros).
    fn start(&mut self, initial_h: Option<&[f32]>, initial_c: Option<&[f32]>, state: StateRows);
    /// One time step on input row `x_t`; writes `Ht` to `y_t`.
    fn step(&mut self, x_t: &[Self::X], state: StateRows, y_t: &mut [f32]);
    /// Ends a sequence (`empty`: it had no valid step, and onnxruntime zeroes
    /// its final state), leaving the final state in `state`.
    fn finish(&mut self, empty: bool, state: StateRows);
}

/// The sequence walk every recurrent kernel shares: for each direction, batch
/// entry and valid time step (backwards for the reverse direction) one
/// [`Cell::step`], `Y` zeroed past each entry's length, the final states in
/// the blocks after `Y`. `out` is `[seq_len + C::STATES][dirs][batch][hidden]`.
pub(crate) fn run_sequences<C: Cell>(
    cell: &mut C,
    dims: &RecurrentDims,
    direction: Direction,
    inputs: &SequenceInputs<C::X>,
    out: &mut [f32],
) {
    let RecurrentDims {
        seq_len,
        batch,
        input_size,
        hidden,
    } = *dims;
    let SequenceInputs {
        x,
        seq_lens,
        initial_h,
        initial_c,
    } = *inputs;
    let dirs = direction.count();
    let block = dims.block_len(direction);
    debug_assert_eq!(x.len(), dims.input_len());
    debug_assert!(
        seq_lens
            .is_none_or(|l| l.len() == batch && l.iter().all(|&n| n >= 0 && n as usize <= seq_len))
    );
    debug_assert!(initial_h.is_none_or(|h| h.len() == block));
    debug_assert!(initial_c.is_none_or(|c| C::STATES == 2 && c.len() == block));
    debug_assert_eq!(out.len(), (seq_len + C::STATES) * block);
    let (y, finals) = out.split_at_mut(seq_len * block);
    let (final_h, final_c) = finals.split_at_mut(block);
    for d in 0..dirs {
        let reverse = direction.is_reverse(d);
        cell.set_direction(d);
        for b in 0..batch {
            let at = (d * batch + b) * hidden;
            let h = &mut final_h[at..][..hidden];
            let c = final_c.get_mut(at..at + hidden).unwrap_or_default();
            let init_h = initial_h.map(|v| &v[at..][..hidden]);
            let init_c = initial_c.map(|v| &v[at..][..hidden]);
            cell.start(init_h, init_c, StateRows { h, c });
            let len = dims.valid_len(seq_lens, b);
            for step in 0..len {
                let t = time_index(step, len, reverse);
                let x_t = &x[(t * batch + b) * input_size..][..input_size];
                let y_t = &mut y[dims.out_offset(dirs, t, d, b)..][..hidden];
                cell.step(x_t, StateRows { h, c }, y_t);
            }
            for t in len..seq_len {
                y[dims.out_offset(dirs, t, d, b)..][..hidden].fill(0.0);
            }
            cell.finish(len == 0, StateRows { h, c });
        }
    }
}

/// The step of a float cell: `h` (and, for LSTM, `c`) go from `t - 1` to `t`
/// in place.
pub(crate) trait StepF32 {
    /// State blocks after `Y` (see [`Cell::STATES`]).
    const STATES: usize;
    /// Selects direction `d`'s weights and attributes.
    fn set_direction(&mut self, d: usize);
    /// One time step on input row `x_t`.
    fn step(&mut self, x_t: &[f32], h: &mut [f32], c: &mut [f32]);
}

/// A float cell whose running state lives in the packed output's state rows
/// (so its only scratch is the step's).
pub(crate) struct StateInOutput<S>(pub S);

impl<S: StepF32> Cell for StateInOutput<S> {
    type X = f32;
    const STATES: usize = S::STATES;

    #[inline]
    fn set_direction(&mut self, d: usize) {
        self.0.set_direction(d);
    }

    #[inline]
    fn start(&mut self, initial_h: Option<&[f32]>, initial_c: Option<&[f32]>, state: StateRows) {
        for (row, init) in [(state.h, initial_h), (state.c, initial_c)] {
            match init {
                Some(init) => row.copy_from_slice(init),
                None => row.fill(0.0),
            }
        }
    }

    #[inline]
    fn step(&mut self, x_t: &[f32], state: StateRows, y_t: &mut [f32]) {
        self.0.step(x_t, state.h, state.c);
        y_t.copy_from_slice(state.h);
    }

    #[inline]
    fn finish(&mut self, empty: bool, state: StateRows) {
        if empty {
            state.h.fill(0.0);
            state.c.fill(0.0);
        }
    }
}

/// Time index of the `step`-th step of a sequence with `len` valid steps.
#[inline]
pub(crate) fn time_index(step: usize, len: usize, reverse: bool) -> usize {
    if reverse { len - 1 - step } else { step }
}

/// Applies the cell clip (ONNX `clip`) to a gate pre-activation: clamps to
/// `[-c, c]`; NaN passes through.
#[inline(always)]
pub(crate) fn clip_gate(x: f32, clip: Option<f32>) -> f32 {
    match clip {
        Some(c) if x > c => c,
        Some(c) if x < -c => -c,
        _ => x,
    }
}

super::cpu::multiversion! {
    /// `out[o] += dot(w[o * k..][..k], x)` for every `o` in `0..out.len()`, with
    /// `k = x.len()` (a row-major `[out.len()][k]` matrix times `x`).
    ///
    /// Four rows at a time share the loads of `x`, each with [`LANES`] independent
    /// accumulators, the pattern of the fully connected kernel.
    pub(crate) fn matvec_acc<W: FloatWeight>(w: &[W], x: &[f32], out: &mut [f32]) => matvec_acc_body;
}

/// The body of [`matvec_acc`], compiled once per instruction set.
#[inline(always)]
fn matvec_acc_body<W: FloatWeight>(w: &[W], x: &[f32], out: &mut [f32]) {
    let k = x.len();
    debug_assert_eq!(w.len(), out.len() * k);
    if k == 0 {
        return;
    }
    let main = out.len() / 4 * 4;
    let (out_main, out_tail) = out.split_at_mut(main);
    for (out4, w4) in out_main.chunks_exact_mut(4).zip(w.chunks_exact(4 * k)) {
        let rows: [&[W]; 4] = core::array::from_fn(|i| &w4[i * k..][..k]);
        for (o, s) in out4.iter_mut().zip(dot4(x, rows)) {
            *o += s;
        }
    }
    for (o, row) in out_tail.iter_mut().zip(w[main * k..].chunks_exact(k)) {
        *o += dot1(x, row);
    }
}

/// Four dot products of `x` with the rows `w`, sharing the loads of `x`.
#[inline(always)]
fn dot4<W: FloatWeight>(x: &[f32], w: [&[W]; 4]) -> [f32; 4] {
    let k = x.len();
    let main = k / LANES * LANES;
    let mut acc = [[0.0f32; LANES]; 4];
    for c in (0..main).step_by(LANES) {
        let xs = &x[c..c + LANES];
        for (acc_r, w_r) in acc.iter_mut().zip(&w) {
            let ws = W::widen8(w_r[c..c + LANES].try_into().expect("8 weights"));
            for ((a, &xv), wv) in acc_r.iter_mut().zip(xs).zip(ws) {
                *a += xv * wv;
            }
        }
    }
    let mut sums = [0.0f32; 4];
    for ((s, acc_r), w_r) in sums.iter_mut().zip(&acc).zip(&w) {
        let mut tail = 0.0f32;
        for (&xv, wv) in x[main..].iter().zip(&w_r[main..k]) {
            tail += xv * wv.to_f32();
        }
        *s = horizontal_sum(acc_r) + tail;
    }
    sums
}

/// One dot product with [`LANES`] accumulators.
#[inline(always)]
fn dot1<W: FloatWeight>(x: &[f32], w: &[W]) -> f32 {
    let k = x.len();
    let main = k / LANES * LANES;
    let mut acc = [0.0f32; LANES];
    for (xs, ws) in x[..main]
        .chunks_exact(LANES)
        .zip(w[..main].chunks_exact(LANES))
    {
        let ws = W::widen8(ws.try_into().expect("8 weights"));
        for ((a, &xv), wv) in acc.iter_mut().zip(xs).zip(ws) {
            *a += xv * wv;
        }
    }
    let mut tail = 0.0f32;
    for (&xv, wv) in x[main..].iter().zip(&w[main..k]) {
        tail += xv * wv.to_f32();
    }
    horizontal_sum(&acc) + tail
}

/// Pairwise sum of the lanes.
#[inline(always)]
fn horizontal_sum(acc: &[f32; LANES]) -> f32 {
    let a = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (a[0] + a[2]) + (a[1] + a[3])
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the recurrent kernels' tests.
    extern crate std;
    use std::vec::Vec;

    use super::super::activation_f32::Activation;
    use super::super::test_rng::XorShift;

    /// `n` values of a fixed pattern in `[-0.5, 0.5]`: element `k` is
    /// `((7k + 3 seed) mod 11 - 5) / 10`. The hand-checked tests' Python script
    /// builds its inputs with the same formula.
    pub(crate) fn pattern(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|k| ((k * 7 + seed * 3) % 11) as f32 - 5.0)
            .map(|v| v / 10.0)
            .collect()
    }

    /// `n` uniform values in `[-scale, scale)`.
    pub(crate) fn random(rng: &mut XorShift, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| rng.f32() * scale).collect()
    }

    /// The activation in f64, written from the ONNX formulas for the variants the
    /// recurrent tests use (any other falls back to the kernel's f32 version).
    pub(crate) fn act64(act: Activation, x: f64) -> f64 {
        match act {
            Activation::Relu => x.max(0.0),
            Activation::Clip { min, max } => x.clamp(min as f64, max as f64),
            Activation::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha as f64 * x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + libm::exp(-x)),
            Activation::Tanh => libm::tanh(x),
            Activation::HardSigmoid { alpha, beta } => {
                (alpha as f64 * x + beta as f64).clamp(0.0, 1.0)
            }
            other => other.apply(x as f32) as f64,
        }
    }

    /// ONNX cell clip in f64.
    pub(crate) fn clip64(x: f64, clip: Option<f32>) -> f64 {
        clip.map_or(x, |c| x.clamp(-(c as f64), c as f64))
    }

    /// `seq_lens` for `batch` entries at most `seq_len` long: none, or random
    /// lengths that include a 0 (when `batch > 1`) and a full-length entry.
    pub(crate) fn random_seq_lens(rng: &mut XorShift, batch: usize, seq_len: usize) -> Vec<i32> {
        let mut lens: Vec<i32> = (0..batch).map(|_| rng.below(seq_len + 1) as i32).collect();
        lens[0] = seq_len as i32;
        if batch > 1 {
            lens[batch - 1] = 0;
        }
        lens
    }

    /// Asserts that `got` and `want` agree within `tol` (absolute, scaled up for
    /// values above 1).
    pub(crate) fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "{what}: element {i}: got {g}, want {w}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use half::f16;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    #[test]
    fn direction_and_offsets() {
        assert_eq!(Direction::Forward.count(), 1);
        assert_eq!(Direction::Reverse.count(), 1);
        assert_eq!(Direction::Bidirectional.count(), 2);
        assert!(!Direction::Forward.is_reverse(0));
        assert!(Direction::Reverse.is_reverse(0));
        assert!(!Direction::Bidirectional.is_reverse(0));
        assert!(Direction::Bidirectional.is_reverse(1));
        let dims = RecurrentDims {
            seq_len: 5,
            batch: 3,
            input_size: 2,
            hidden: 4,
        };
        assert_eq!(dims.input_len(), 30);
        assert_eq!(dims.block_len(Direction::Bidirectional), 24);
        assert_eq!(dims.out_offset(2, 1, 1, 2), ((2 + 1) * 3 + 2) * 4);
        assert_eq!(dims.valid_len(None, 1), 5);
        assert_eq!(dims.valid_len(Some(&[5, 0, 2]), 2), 2);
        assert_eq!(time_index(0, 4, true), 3);
        assert_eq!(time_index(1, 4, false), 1);
        assert_eq!(clip_gate(3.0, Some(2.0)), 2.0);
        assert_eq!(clip_gate(-3.0, Some(2.0)), -2.0);
        assert_eq!(clip_gate(1.5, Some(2.0)), 1.5);
        assert_eq!(clip_gate(3.0, None), 3.0);
        assert!(clip_gate(f32::NAN, Some(1.0)).is_nan());
    }

    #[test]
    fn matvec_acc_matches_naive() {
        let mut rng = XorShift(0x5eed_1234_abcd_0042);
        for k in [0usize, 1, 7, 8, 9, 28, 33] {
            for n in [1usize, 3, 4, 5, 9] {
                let x: Vec<f32> = (0..k).map(|_| rng.f32()).collect();
                let w: Vec<f32> = (0..n * k).map(|_| rng.f32()).collect();
                let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
                let start: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
                let mut out = start.clone();
                let mut out16 = start.clone();
                matvec_acc(&w, &x, &mut out);
                matvec_acc(&w16, &x, &mut out16);
                let mut want = vec![0.0f64; n];
                let mut want16 = vec![0.0f64; n];
                for o in 0..n {
                    want[o] = start[o] as f64;
                    want16[o] = start[o] as f64;
                    for i in 0..k {
                        want[o] += x[i] as f64 * w[o * k + i] as f64;
                        want16[o] += x[i] as f64 * w16[o * k + i].to_f64();
                    }
                }
                for o in 0..n {
                    assert!((out[o] as f64 - want[o]).abs() < 1e-5, "k={k} n={n}");
                    assert!(
                        (out16[o] as f64 - want16[o]).abs() < 1e-5,
                        "f16 k={k} n={n}"
                    );
                }
            }
        }
    }
}
