//! Integer pieces shared by the int8 recurrent kernels ([`super::lstm_s8`],
//! [`super::gru_s8`], [`super::rnn_s8`]): fixed-point formats, the rounding
//! shift, the sigmoid / tanh tables and the int8 x int16 matrix-vector product.
//!
//! The scheme (see "Quantized recurrent cells" in `runtime/FORMAT.md`):
//!
//! * `x`: int8, per tensor (scale `sx`, zero point `zx`);
//! * `W`, `R`: int8 symmetric per gate row (`[-127, 127]`, zero point 0);
//! * gate pre-activations: Q3.12 in int16 (`2^-12`, range `[-8, 8)`), from the
//!   int32 accumulators `Σ (x - zx)·W[row]` and `Σ h·R[row]`, each requantized
//!   with its own [`Requant`] ([`GateRequant`]), plus an int32 Q3.12 bias;
//! * hidden state `h` and gate outputs: Q0.15 in int16 (`2^-15`);
//! * LSTM cell state `c`: int16 with scale `2^-cell_shift`;
//! * sigmoid / tanh: a 513-entry Q0.15 table over `[-8, 8]` with linear
//!   interpolation ([`recurrent_s8_luts`], [`lut`]);
//! * products: int32, then [`rshift_round`] (round half away from zero) and
//!   [`sat16`].
//!
//! Everything inside a cell is integer arithmetic; only the initial states
//! (f32 inputs, [`quantize_state`]) and the f32 output ([`dequantize_state`],
//! exact: power-of-two scales) convert.

use super::recurrent::{Cell, StateRows};
use crate::quant::Requant;

/// Fraction bits of the gate pre-activations (Q3.12) and of the tables' input.
pub const GATE_FRAC_BITS: u32 = 12;
/// Fraction bits of the hidden state and of the gate outputs (Q0.15).
pub const STATE_FRAC_BITS: u32 = 15;
/// Entries of one activation table: `[-8, 8]` in steps of `1/32`.
pub const LUT_ENTRIES: usize = 513;
/// Index of the sigmoid table in the `[2][LUT_ENTRIES]` table input.
pub const LUT_SIGMOID: usize = 0;
/// Index of the tanh table.
pub const LUT_TANH: usize = 1;
/// Largest hidden size of an int8 cell: `hidden * 32768 * 128 <= 2^31` keeps
/// `Σ h·R` inside int32.
pub const MAX_HIDDEN_S8: usize = 512;
/// Largest input size of an int8 cell: `input * 255 * 128 < 2^31` keeps
/// `Σ (x - zx)·W` inside int32.
pub const MAX_INPUT_S8: usize = 65_535;
/// Allowed LSTM cell-state shifts (cell scale `2^-cell_shift`, range
/// `±2^(15 - cell_shift)`).
pub const CELL_SHIFTS: core::ops::RangeInclusive<u32> = 8..=15;
/// Bits of the table input below the table step (`2^12 / 32 = 2^7`).
const LUT_FRAC_BITS: u32 = 7;

/// Requantization of one gate row: the input part (`sx * sw[row] / 2^-12`) and
/// the recurrent part (`2^-15 * sr[row] / 2^-12`). Stored as 4 i32 words
/// `(x multiplier, x shift, h multiplier, h shift)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct GateRequant {
    /// Factor on `Σ (x - zx)·W[row]`.
    pub x: Requant,
    /// Factor on `Σ h·R[row]`.
    pub h: Requant,
}

// SAFETY: `GateRequant` is `repr(C)` with two `Requant` (each `repr(C)`, two
// `i32`): no padding, every bit pattern valid.
unsafe impl bytemuck::Zeroable for GateRequant {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for GateRequant {}

/// Constant inputs of an int8 recurrent layer, all directions stacked (ONNX
/// layout and gate order; `rows = gates * hidden`).
#[derive(Clone, Copy, Debug)]
pub struct RecurrentS8Weights<'a> {
    /// Input weights `[dirs][rows][input_size]`, symmetric per row.
    pub w: &'a [i8],
    /// Recurrence weights `[dirs][rows][hidden]`, symmetric per row.
    pub r: &'a [i8],
    /// Q3.12 bias: `[dirs][rows]` (`Wb + Rb`) for LSTM and RNN, `[dirs][2 * rows]`
    /// (`Wb` then `Rb`) for GRU.
    pub bias: Option<&'a [i32]>,
    /// `[dirs][rows]` requantization pairs.
    pub requant: &'a [GateRequant],
    /// `[2][LUT_ENTRIES]` Q0.15 tables (sigmoid, then tanh), each value in the
    /// int16 range.
    pub luts: &'a [i32],
    /// Zero point of `x`.
    pub x_zero_point: i32,
}

impl RecurrentS8Weights<'_> {
    /// The sigmoid and tanh tables.
    #[inline]
    pub(crate) fn tables(&self) -> (&[i32], &[i32]) {
        let (s, t) = self.luts.split_at(LUT_ENTRIES);
        (s, &t[..LUT_ENTRIES])
    }

    /// Debug-checks the lengths shared by the three cells.
    pub(crate) fn debug_check(&self, dirs: usize, rows: usize, input: usize, hidden: usize) {
        debug_assert_eq!(self.w.len(), dirs * rows * input);
        debug_assert_eq!(self.r.len(), dirs * rows * hidden);
        debug_assert_eq!(self.requant.len(), dirs * rows);
        debug_assert_eq!(self.luts.len(), 2 * LUT_ENTRIES);
        debug_assert!(hidden <= MAX_HIDDEN_S8 && input <= MAX_INPUT_S8);
    }
}

/// `x / 2^n` rounded to nearest, ties away from zero (`n` in `0..=30`; `x` must
/// leave room for the rounding term, which every caller's bounds do).
#[inline(always)]
pub fn rshift_round(x: i32, n: u32) -> i32 {
    if n == 0 {
        return x;
    }
    (x + (1 << (n - 1)) - (x < 0) as i32) >> n
}

/// Saturates to the int16 range.
#[inline(always)]
pub fn sat16(x: i32) -> i32 {
    x.clamp(i16::MIN as i32, i16::MAX as i32)
}

/// A table lookup with linear interpolation: `x` is Q3.12 in the int16 range,
/// `table` has [`LUT_ENTRIES`] entries at `-8 + k/32`; the result is in the
/// range of the two neighbouring entries.
///
/// `u = x + 32768`, `k = u >> 7`, `frac = u & 127`:
/// `table[k] + rshift_round((table[k + 1] - table[k]) * frac, 7)`.
#[inline(always)]
pub fn lut(table: &[i32], x: i32) -> i32 {
    let u = (x - i16::MIN as i32) as u32;
    let k = (u >> LUT_FRAC_BITS) as usize;
    let frac = (u & ((1 << LUT_FRAC_BITS) - 1)) as i32;
    let (lo, hi) = (table[k], table[k + 1]);
    lo + rshift_round((hi - lo) * frac, LUT_FRAC_BITS)
}

/// The pre-activation of one gate row, Q3.12 saturated to int16:
/// `sat16(rq.x(acc_x) + rq.h(acc_h) + bias)`.
#[inline(always)]
pub fn gate_pre(rq: GateRequant, acc_x: i32, acc_h: i32, bias: i32) -> i32 {
    sat16(
        rq.x.apply(acc_x)
            .saturating_add(rq.h.apply(acc_h))
            .saturating_add(bias),
    )
}

/// The quantize step of an int8 cell: an f32 state value to int16 with scale
/// `2^-shift` (round half away from zero, saturate; NaN becomes 0).
#[inline]
pub fn quantize_state(v: f32, shift: u32) -> i16 {
    let scaled = libm::roundf(v * (1u32 << shift) as f32);
    scaled.clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

/// An int16 state with scale `2^-shift` as f32 (exact).
#[inline(always)]
pub fn dequantize_state(q: i16, shift: u32) -> f32 {
    q as f32 * (1.0 / (1u32 << shift) as f32)
}

/// `out[j] = f32(state[j] * 2^-shift)`.
#[inline]
pub(crate) fn write_state(state: &[i16], shift: u32, out: &mut [f32]) {
    for (o, &s) in out.iter_mut().zip(state) {
        *o = dequantize_state(s, shift);
    }
}

/// Fills `state` from an optional f32 initial state (zeros when absent).
#[inline]
pub(crate) fn init_state(init: Option<&[f32]>, shift: u32, state: &mut [i16]) {
    match init {
        Some(v) => {
            for (s, &x) in state.iter_mut().zip(v) {
                *s = quantize_state(x, shift);
            }
        }
        None => state.fill(0),
    }
}

/// `xq[k] = x[k] - zero_point` (int8 input row to int16).
#[inline]
pub(crate) fn center_input(x: &[i8], zero_point: i32, xq: &mut [i16]) {
    for (q, &v) in xq.iter_mut().zip(x) {
        *q = (v as i32 - zero_point) as i16;
    }
}

/// The step of an int8 cell: the int16 states `h` (Q0.15) and, for LSTM, `c`
/// (`2^-cell_shift`) go from `t - 1` to `t` in place.
pub(crate) trait StepS8 {
    /// State blocks after `Y` (see [`Cell::STATES`]).
    const STATES: usize;
    /// Selects direction `d`'s weights.
    fn set_direction(&mut self, d: usize);
    /// One time step on the centred input row `xq` (`x - x_zero_point`).
    fn step(&mut self, xq: &[i16], h: &mut [i16], c: &mut [i16]);
}

/// An int8 cell whose running state is int16 in scratch: quantized from the
/// f32 initial state when a sequence starts (the op's quantize step),
/// dequantized (exactly) into `Y` after every step and into the state rows at
/// the end.
pub(crate) struct StateInScratch<'a, S> {
    /// The cell's step.
    pub step: S,
    /// Hidden state, `hidden` values (Q0.15).
    pub h: &'a mut [i16],
    /// LSTM cell state, `hidden` values (`2^-cell_shift`); empty otherwise.
    pub c: &'a mut [i16],
    /// The centred input row, `input_size` values.
    pub xq: &'a mut [i16],
    /// Zero point of `x`.
    pub x_zero_point: i32,
    /// LSTM cell-state shift (unused without a cell state).
    pub cell_shift: u32,
}

impl<S: StepS8> Cell for StateInScratch<'_, S> {
    type X = i8;
    const STATES: usize = S::STATES;

    #[inline]
    fn set_direction(&mut self, d: usize) {
        self.step.set_direction(d);
    }

    #[inline]
    fn start(&mut self, initial_h: Option<&[f32]>, initial_c: Option<&[f32]>, _: StateRows) {
        init_state(initial_h, STATE_FRAC_BITS, self.h);
        init_state(initial_c, self.cell_shift, self.c);
    }

    #[inline]
    fn step(&mut self, x_t: &[i8], _: StateRows, y_t: &mut [f32]) {
        center_input(x_t, self.x_zero_point, self.xq);
        self.step.step(self.xq, self.h, self.c);
        write_state(self.h, STATE_FRAC_BITS, y_t);
    }

    #[inline]
    fn finish(&mut self, empty: bool, state: StateRows) {
        if empty {
            // onnxruntime zeroes the final states of empty sequences.
            self.h.fill(0);
            self.c.fill(0);
        }
        write_state(self.h, STATE_FRAC_BITS, state.h);
        write_state(self.c, self.cell_shift, state.c);
    }
}

/// Independent partial sums per dot product: 16 int32 lanes, which LLVM turns
/// into widening vector multiply-adds.
const LANES: usize = 16;

/// `out[o] = f(o, out[o], Σ_k w[o * K + k] * x[k])` for every `o`, with
/// `K = x.len()` (a row-major `[out.len()][K]` int8 matrix times an int16
/// vector; int32 wrapping sums, exact in any order).
#[inline(always)]
pub(crate) fn matvec_s8(
    w: &[i8],
    x: &[i16],
    out: &mut [i32],
    mut f: impl FnMut(usize, i32, i32) -> i32,
) {
    let k = x.len();
    debug_assert_eq!(w.len(), out.len() * k);
    if k == 0 {
        for (o, v) in out.iter_mut().enumerate() {
            *v = f(o, *v, 0);
        }
        return;
    }
    for (o, (v, row)) in out.iter_mut().zip(w.chunks_exact(k)).enumerate() {
        *v = f(o, *v, dot_s8(x, row));
    }
}

/// `Σ x[k] * w[k]` in wrapping int32.
#[inline(always)]
fn dot_s8(x: &[i16], w: &[i8]) -> i32 {
    let k = x.len().min(w.len());
    let main = k / LANES * LANES;
    let mut acc = [0i32; LANES];
    for (xs, ws) in x[..main]
        .chunks_exact(LANES)
        .zip(w[..main].chunks_exact(LANES))
    {
        for ((a, &xv), &wv) in acc.iter_mut().zip(xs).zip(ws) {
            *a = a.wrapping_add(xv as i32 * wv as i32);
        }
    }
    let mut sum = acc.iter().fold(0i32, |s, &a| s.wrapping_add(a));
    for (&xv, &wv) in x[main..k].iter().zip(&w[main..k]) {
        sum = sum.wrapping_add(xv as i32 * wv as i32);
    }
    sum
}

/// Splits an i32 scratch buffer into `n32` i32 words and the rest viewed as
/// int16.
#[inline]
pub(crate) fn split_scratch(scratch: &mut [i32], n32: usize) -> (&mut [i32], &mut [i16]) {
    let (a, b) = scratch.split_at_mut(n32);
    (a, bytemuck::cast_slice_mut(b))
}

/// i32 words holding `n` int16 values.
pub(crate) const fn words_of_i16(n: usize) -> usize {
    n.div_ceil(2)
}

/// Host-side: the `[2][LUT_ENTRIES]` Q0.15 tables of sigmoid and tanh at
/// `-8 + k/32` (`k = 0..=512`), rounded to nearest and saturated to
/// `[-32767, 32767]` (sigmoid stays in `[0, 32767]`). Uses floating point: call
/// it at conversion (or in tests), never inside a kernel.
pub fn recurrent_s8_luts() -> [i32; 2 * LUT_ENTRIES] {
    let mut out = [0i32; 2 * LUT_ENTRIES];
    for k in 0..LUT_ENTRIES {
        let x = -8.0 + k as f64 / 32.0;
        let q = |v: f64| libm::round(v * 32768.0).clamp(-32767.0, 32767.0) as i32;
        out[LUT_SIGMOID * LUT_ENTRIES + k] = q(1.0 / (1.0 + libm::exp(-x)));
        out[LUT_TANH * LUT_ENTRIES + k] = q(libm::tanh(x));
    }
    out
}

/// Host-side: whether `luts` is a valid table input (length, entries in the
/// ranges the kernels' int32 arithmetic assumes: sigmoid in `[0, 32767]`, tanh
/// in `[-32767, 32767]`).
pub fn luts_in_range(luts: &[i32]) -> bool {
    luts.len() == 2 * LUT_ENTRIES
        && luts[..LUT_ENTRIES].iter().all(|v| (0..=32767).contains(v))
        && luts[LUT_ENTRIES..]
            .iter()
            .all(|v| (-32767..=32767).contains(v))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the int8 recurrent kernels' tests: quantizing float
    //! problems the way the converter does.
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// A float problem in int8 form.
    pub(crate) struct Quantized {
        pub x: Vec<i8>,
        pub zx: i32,
        /// `x` dequantized (the float kernel's input, so that both see the same x).
        pub x_deq: Vec<f32>,
        pub w: Vec<i8>,
        pub r: Vec<i8>,
        /// `w`, `r` dequantized.
        pub w_deq: Vec<f32>,
        pub r_deq: Vec<f32>,
        pub bias: Option<Vec<i32>>,
        pub requant: Vec<GateRequant>,
    }

    /// Symmetric per-row int8 quantization of `[n][k]`: (values, scales).
    pub(crate) fn quantize_rows(w: &[f32], k: usize) -> (Vec<i8>, Vec<f32>) {
        let mut q = Vec::with_capacity(w.len());
        let mut scales = Vec::new();
        for row in w.chunks_exact(k) {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(s);
            q.extend(
                row.iter()
                    .map(|&v| (v / s).round().clamp(-127.0, 127.0) as i8),
            );
        }
        (q, scales)
    }

    /// Quantizes `x` (per tensor), `w` `[rows_total][input]`, `r`
    /// `[rows_total][hidden]` and the float bias (any length, Q3.12); `input`
    /// and `hidden` are at least 1.
    pub(crate) fn quantize_problem(
        x: &[f32],
        w: &[f32],
        r: &[f32],
        bias: Option<&[f32]>,
        input: usize,
        hidden: usize,
    ) -> Quantized {
        let (min, max) = x
            .iter()
            .fold((0f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
        let sx = if max > min { (max - min) / 255.0 } else { 1.0 };
        let zx = (-128.0 - min / sx).round().clamp(-128.0, 127.0) as i32;
        let xq: Vec<i8> = x
            .iter()
            .map(|&v| ((v / sx).round() as i32 + zx).clamp(-128, 127) as i8)
            .collect();
        let x_deq = xq.iter().map(|&q| sx * (q as i32 - zx) as f32).collect();
        let rows = w.len() / input;
        let (wq, sw) = quantize_rows(w, input);
        let (rq, sr) = quantize_rows(r, hidden);
        let w_deq = wq
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * sw[i / input])
            .collect();
        let r_deq = rq
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * sr[i / hidden])
            .collect();
        let requant = (0..rows)
            .map(|row| GateRequant {
                x: Requant::from_real(sx as f64 * sw[row] as f64 * 4096.0),
                h: Requant::from_real(sr[row] as f64 / 8.0),
            })
            .collect();
        let bias = bias.map(|b| {
            b.iter()
                .map(|&v| (v as f64 * 4096.0).round() as i32)
                .collect()
        });
        Quantized {
            x: xq,
            zx,
            x_deq,
            w: wq,
            r: rq,
            w_deq,
            r_deq,
            bias,
            requant,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn rshift_round_ties_away_from_zero() {
        assert_eq!(rshift_round(5, 1), 3);
        assert_eq!(rshift_round(-5, 1), -3);
        assert_eq!(rshift_round(-1, 1), -1);
        assert_eq!(rshift_round(1, 1), 1);
        assert_eq!(rshift_round(-6, 2), -2);
        assert_eq!(rshift_round(-5, 2), -1);
        assert_eq!(rshift_round(6, 2), 2);
        assert_eq!(rshift_round(7, 0), 7);
        for x in -5000..5000 {
            for n in 1..6 {
                let want = libm::round(x as f64 / (1 << n) as f64) as i32;
                assert_eq!(rshift_round(x, n), want, "{x} >> {n}");
            }
        }
    }

    #[test]
    fn tables_match_functions() {
        let luts = recurrent_s8_luts();
        assert!(luts_in_range(&luts));
        let (sig, tanh) = luts.split_at(LUT_ENTRIES);
        // Every Q3.12 input: within 2 LSB (Q0.15) of the exact functions plus
        // the interpolation error (< 1e-4 for tanh).
        let mut worst = [0f64; 2];
        for x in i16::MIN as i32..=i16::MAX as i32 {
            let v = x as f64 / 4096.0;
            let s = lut(sig, x) as f64 / 32768.0;
            let t = lut(tanh, x) as f64 / 32768.0;
            worst[0] = worst[0].max((s - 1.0 / (1.0 + libm::exp(-v))).abs());
            worst[1] = worst[1].max((t - libm::tanh(v)).abs());
        }
        assert!(worst[0] < 5e-5, "sigmoid {}", worst[0]);
        assert!(worst[1] < 1.5e-4, "tanh {}", worst[1]);
        // Exact at the table points, symmetric tanh, sigmoid(0) = 1/2.
        assert_eq!(lut(sig, 0), 16384);
        assert_eq!(lut(tanh, 0), 0);
        assert_eq!(lut(tanh, -4096), -lut(tanh, 4096));
        assert_eq!(lut(tanh, i16::MAX as i32), 32767);
        assert_eq!(lut(tanh, i16::MIN as i32), -32767);
    }

    #[test]
    fn matvec_matches_naive() {
        let mut seed = 0x1234_5678u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for k in [0usize, 1, 3, 8, 16, 17, 40] {
            for n in [1usize, 4, 5, 11] {
                let w: std::vec::Vec<i8> = (0..n * k).map(|_| next() as i8).collect();
                let x: std::vec::Vec<i16> = (0..k).map(|_| next() as i16).collect();
                let mut out = vec![7i32; n];
                matvec_s8(&w, &x, &mut out, |o, prev, acc| {
                    assert_eq!(prev, 7);
                    acc + o as i32
                });
                for o in 0..n {
                    let want: i32 = (0..k).map(|i| w[o * k + i] as i32 * x[i] as i32).sum();
                    assert_eq!(out[o], want + o as i32);
                }
            }
        }
    }

    #[test]
    fn state_conversions() {
        assert_eq!(quantize_state(0.5, 15), 16384);
        assert_eq!(quantize_state(1.0, 15), 32767);
        assert_eq!(quantize_state(-1.0, 15), -32768);
        assert_eq!(quantize_state(-3.0, 12), -12288);
        assert_eq!(quantize_state(f32::NAN, 12), 0);
        assert_eq!(quantize_state(1e30, 12), 32767);
        assert_eq!(dequantize_state(-32768, 15), -1.0);
        assert_eq!(dequantize_state(3, 12), 3.0 / 4096.0);
    }
}
