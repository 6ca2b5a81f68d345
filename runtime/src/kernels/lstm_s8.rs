//! Int8 LSTM (ONNX `LSTM` with the default activations, no clip, no peepholes,
//! `input_forget = 0`), integer-only: int8 `x`, `W`, `R`; Q3.12 gate
//! pre-activations; Q0.15 gates and hidden state; int16 cell state with scale
//! `2^-cell_shift`. The scheme is in [`super::recurrent_s8`] and FORMAT.md.
//!
//! One step, per unit `j` (`>>` is [`rshift_round`], `sat` is [`sat16`]):
//!
//! ```text
//! pre[row] = sat(rq.x[row](Σ (x - zx)·W[row]) + rq.h[row](Σ h·R[row]) + B[row])   Q3.12
//! i, o, f  = sigmoid_lut(pre)                                                       Q0.15
//! g        = tanh_lut(pre)                                                          Q0.15
//! c        = sat((f·c >> 15) + (i·g >> (30 - cell_shift)))                          2^-cell_shift
//! h        = sat(o·tanh_lut(c in Q3.12) >> 15)                                      Q0.15
//! ```
//!
//! Sequence lengths, directions and the packed f32 output follow
//! [`super::lstm_f32`]: `Y` and `Y_h` hold `h·2^-15`, `Y_c` holds
//! `c·2^-cell_shift` (exact in f32).

use super::recurrent::{Direction, RecurrentDims, SequenceInputs, run_sequences};
use super::recurrent_s8::{
    GATE_FRAC_BITS, GateRequant, RecurrentS8Weights, STATE_FRAC_BITS, StateInScratch, StepS8,
    gate_pre, lut, matvec_s8, rshift_round, sat16, split_scratch, words_of_i16,
};

/// Gates per hidden unit.
const GATES: usize = 4;

/// Attributes of an int8 LSTM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmS8Config {
    /// Sizes (`hidden <= MAX_HIDDEN_S8`).
    pub dims: RecurrentDims,
    /// Direction(s).
    pub direction: Direction,
    /// Cell state scale `2^-cell_shift`, in [`super::recurrent_s8::CELL_SHIFTS`].
    pub cell_shift: u32,
}

/// Length of [`lstm_s8`]'s packed f32 output: `(seq_len + 2) * dirs * batch * hidden`.
pub const fn lstm_s8_output_len(dims: &RecurrentDims, direction: Direction) -> usize {
    (dims.seq_len + 2) * dims.block_len(direction)
}

/// Scratch [`lstm_s8`] needs, in 32-bit words: `4 * hidden` int32
/// pre-activations, then int16 `h`, `c` and the centred input row.
pub const fn lstm_s8_scratch_len(dims: &RecurrentDims) -> usize {
    GATES * dims.hidden + words_of_i16(2 * dims.hidden + dims.input_size)
}

/// Runs an int8 LSTM over `x[seq_len][batch][input_size]` (int8, zero point
/// `weights.x_zero_point`).
///
/// `out` is `[seq_len + 2][dirs][batch][hidden]` f32, as [`super::lstm_f32::lstm_f32`]
/// writes it. `initial_h` / `initial_c` (`[dirs][batch][hidden]`, f32, default
/// zeros) are quantized on entry to Q0.15 and to `2^-cell_shift` (round half
/// away from zero, saturate): the op's quantize step.
///
/// Preconditions (debug-asserted): the slice lengths above and in
/// [`RecurrentS8Weights`] (bias `[dirs][4 * hidden]`); `seq_lens` in
/// `0..=seq_len`; `cell_shift` in 8..=15; table entries in range
/// ([`super::recurrent_s8::luts_in_range`]);
/// `scratch.len() >= lstm_s8_scratch_len(&cfg.dims)`.
pub fn lstm_s8(
    cfg: &LstmS8Config,
    weights: &RecurrentS8Weights<'_>,
    inputs: &SequenceInputs<i8>,
    out: &mut [f32],
    scratch: &mut [i32],
) {
    let dims = &cfg.dims;
    let (input_size, hidden) = (dims.input_size, dims.hidden);
    let dirs = cfg.direction.count();
    let rows = GATES * hidden;
    debug_assert!(super::recurrent_s8::CELL_SHIFTS.contains(&cfg.cell_shift));
    debug_assert!(weights.bias.is_none_or(|b| b.len() == dirs * rows));
    weights.debug_check(dirs, rows, input_size, hidden);
    debug_assert!(scratch.len() >= lstm_s8_scratch_len(dims));

    let (pre, rest) = split_scratch(&mut scratch[..lstm_s8_scratch_len(dims)], rows);
    let (h, rest) = rest.split_at_mut(hidden);
    let (c, rest) = rest.split_at_mut(hidden);
    let mut cell = StateInScratch {
        step: LstmS8Step {
            cfg,
            weights: *weights,
            pre,
            w: &[],
            r: &[],
            requant: &[],
            bias: None,
        },
        h,
        c,
        xq: &mut rest[..input_size],
        x_zero_point: weights.x_zero_point,
        cell_shift: cfg.cell_shift,
    };
    run_sequences(&mut cell, dims, cfg.direction, inputs, out);
}

/// An int8 LSTM step: all directions' weights, the current one's, and the
/// pre-activations.
struct LstmS8Step<'a> {
    cfg: &'a LstmS8Config,
    weights: RecurrentS8Weights<'a>,
    /// `4 * hidden` int32 pre-activations.
    pre: &'a mut [i32],
    w: &'a [i8],
    r: &'a [i8],
    requant: &'a [GateRequant],
    bias: Option<&'a [i32]>,
}

impl StepS8 for LstmS8Step<'_> {
    const STATES: usize = 2;

    fn set_direction(&mut self, d: usize) {
        let dims = &self.cfg.dims;
        let (hidden, rows) = (dims.hidden, GATES * dims.hidden);
        let weights = &self.weights;
        self.w = &weights.w[d * rows * dims.input_size..][..rows * dims.input_size];
        self.r = &weights.r[d * rows * hidden..][..rows * hidden];
        self.requant = &weights.requant[d * rows..][..rows];
        self.bias = weights.bias.map(|b| &b[d * rows..][..rows]);
    }

    #[inline]
    fn step(&mut self, xq: &[i16], h: &mut [i16], c: &mut [i16]) {
        let hidden = h.len();
        let cs = self.cfg.cell_shift;
        let (sigmoid, tanh) = self.weights.tables();
        let (requant, bias, pre) = (self.requant, self.bias, &mut *self.pre);
        matvec_s8(self.w, xq, pre, |_, _, acc| acc);
        matvec_s8(self.r, h, pre, |row, acc_x, acc_h| {
            gate_pre(requant[row], acc_x, acc_h, bias.map_or(0, |b| b[row]))
        });
        let (pi, rest) = pre.split_at(hidden);
        let (po, rest) = rest.split_at(hidden);
        let (pf, pg) = rest.split_at(hidden);
        for j in 0..hidden {
            let i = lut(sigmoid, pi[j]);
            let f = lut(sigmoid, pf[j]);
            let g = lut(tanh, pg[j]);
            let o = lut(sigmoid, po[j]);
            let c_new = sat16(
                rshift_round(f * c[j] as i32, STATE_FRAC_BITS)
                    + rshift_round(i * g, 2 * STATE_FRAC_BITS - cs),
            );
            c[j] = c_new as i16;
            let c_q12 = if cs >= GATE_FRAC_BITS {
                rshift_round(c_new, cs - GATE_FRAC_BITS)
            } else {
                sat16(c_new << (GATE_FRAC_BITS - cs))
            };
            h[j] = sat16(rshift_round(o * lut(tanh, c_q12), STATE_FRAC_BITS)) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::lstm_f32::{LstmConfig, LstmWeights, lstm_f32, lstm_f32_scratch_len};
    use super::super::recurrent::test_support::{pattern, random, random_seq_lens};
    use super::super::recurrent_s8::recurrent_s8_luts;
    use super::super::recurrent_s8::test_support::quantize_problem;
    use super::super::test_rng::XorShift;

    struct Case {
        dims: RecurrentDims,
        direction: Direction,
        x: Vec<f32>,
        w: Vec<f32>,
        r: Vec<f32>,
        bias: Option<Vec<f32>>,
        seq_lens: Option<Vec<i32>>,
        initial_h: Option<Vec<f32>>,
        initial_c: Option<Vec<f32>>,
        cell_shift: u32,
    }

    impl Case {
        /// (int8 kernel output, f32 kernel output on the dequantized x, W, R).
        fn run(&self) -> (Vec<f32>, Vec<f32>) {
            let d = &self.dims;
            let q = quantize_problem(
                &self.x,
                &self.w,
                &self.r,
                self.bias.as_deref(),
                d.input_size,
                d.hidden,
            );
            let luts = recurrent_s8_luts();
            let weights = RecurrentS8Weights {
                w: &q.w,
                r: &q.r,
                bias: q.bias.as_deref(),
                requant: &q.requant,
                luts: &luts,
                x_zero_point: q.zx,
            };
            let cfg = LstmS8Config {
                dims: *d,
                direction: self.direction,
                cell_shift: self.cell_shift,
            };
            let mut out = vec![f32::NAN; lstm_s8_output_len(d, self.direction)];
            let mut scratch = vec![i32::MIN; lstm_s8_scratch_len(d)];
            lstm_s8(
                &cfg,
                &weights,
                &SequenceInputs {
                    x: &q.x,
                    seq_lens: self.seq_lens.as_deref(),
                    initial_h: self.initial_h.as_deref(),
                    initial_c: self.initial_c.as_deref(),
                },
                &mut out,
                &mut scratch,
            );
            let mut want = vec![f32::NAN; out.len()];
            let mut fscratch = vec![0.0; lstm_f32_scratch_len(d)];
            lstm_f32(
                &LstmConfig::new(*d, self.direction),
                &LstmWeights {
                    w: q.w_deq.as_slice(),
                    r: &q.r_deq,
                    bias: self.bias.as_deref(),
                    peephole: None,
                },
                &SequenceInputs {
                    x: &q.x_deq,
                    seq_lens: self.seq_lens.as_deref(),
                    initial_h: self.initial_h.as_deref(),
                    initial_c: self.initial_c.as_deref(),
                },
                &mut want,
                &mut fscratch,
            );
            (out, want)
        }
    }

    fn dims(seq_len: usize, batch: usize, input_size: usize, hidden: usize) -> RecurrentDims {
        RecurrentDims {
            seq_len,
            batch,
            input_size,
            hidden,
        }
    }

    /// Tolerance against the f32 kernel on the same (dequantized) weights and
    /// input. The int8 cell differs by the Q3.12 rounding of each pre-activation
    /// (2^-13), the Q0.15 rounding of each gate and of `h` (2^-16), the table
    /// interpolation (< 1e-4 for tanh) and the cell state rounding
    /// (2^-(cell_shift + 1)); each step adds a few 1e-4 that the recurrence
    /// carries on (damped by gates < 1). 2e-2 bounds a few dozen steps of it
    /// with a wide margin; the observed worst case is ~7e-3, with the coarsest
    /// cell scale (2^-8) over 8 steps, ~5e-4 otherwise.
    const TOL: f32 = 2e-2;

    fn assert_close(got: &[f32], want: &[f32], what: &str) -> f32 {
        assert_eq!(got.len(), want.len());
        let mut worst = 0f32;
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(!g.is_nan(), "{what}: element {i} not written");
            let e = (g - w).abs();
            assert!(e <= TOL, "{what}: element {i}: got {g}, want {w}");
            worst = worst.max(e);
        }
        worst
    }

    #[test]
    fn random_cases_match_f32_kernel() {
        let mut rng = XorShift(0x5eed_0157_0008_0001);
        let mut worst = 0f32;
        for iter in 0..3 * 16 {
            let direction = [
                Direction::Forward,
                Direction::Reverse,
                Direction::Bidirectional,
            ][iter % 3];
            let flags = iter / 3;
            let bit = |i: usize| flags & (1 << i) != 0;
            let d = dims(
                1 + rng.below(8),
                1 + rng.below(3),
                1 + rng.below(9),
                1 + rng.below(20),
            );
            let dirs = direction.count();
            let (nh, block) = (d.hidden, dirs * d.batch * d.hidden);
            let initial_c = bit(2).then(|| random(&mut rng, block, 1.5));
            // |c_t| <= |c_0| + t: the finest cell scale whose range covers that
            // bound, or the coarsest (8) on every other case.
            let bound = 1.5 * bit(2) as u32 as f32 + d.seq_len as f32;
            let finest = (8..=15u32)
                .rev()
                .find(|&cs| (1u32 << (15 - cs)) as f32 > bound)
                .unwrap();
            let case = Case {
                dims: d,
                direction,
                x: random(&mut rng, d.input_len(), 2.0),
                w: random(&mut rng, dirs * 4 * nh * d.input_size, 0.7),
                r: random(&mut rng, dirs * 4 * nh * nh, 0.7),
                bias: bit(0).then(|| random(&mut rng, dirs * 4 * nh, 1.0)),
                seq_lens: bit(1).then(|| random_seq_lens(&mut rng, d.batch, d.seq_len)),
                initial_h: bit(2).then(|| random(&mut rng, block, 0.99)),
                initial_c,
                cell_shift: if bit(3) { 8 } else { finest },
            };
            let (got, want) = case.run();
            let what = std::format!("iter {iter}: {d:?} {direction:?} cs {}", case.cell_shift);
            worst = worst.max(assert_close(&got, &want, &what));
        }
        std::println!("lstm_s8 worst abs error vs f32: {worst}");
    }

    #[test]
    fn larger_hidden_matches_f32_kernel() {
        // A wider cell (sums over 64 + 16 terms) with a cell state that grows
        // past 1 (positive forget bias).
        let mut rng = XorShift(0xbead_0157_0008_0002);
        let d = dims(12, 2, 16, 64);
        let mut bias = random(&mut rng, 4 * 64, 0.5);
        for b in &mut bias[128..192] {
            *b += 2.0; // forget gate
        }
        let case = Case {
            dims: d,
            direction: Direction::Bidirectional,
            x: random(&mut rng, d.input_len(), 1.0),
            w: random(&mut rng, 2 * 4 * 64 * 16, 0.4),
            r: random(&mut rng, 2 * 4 * 64 * 64, 0.2),
            bias: Some([bias.clone(), bias].concat()),
            seq_lens: Some(vec![12, 7]),
            initial_h: None,
            initial_c: None,
            cell_shift: 12,
        };
        let (got, want) = case.run();
        assert_close(&got, &want, "hidden 64");
        let cmax = want[13 * 2 * 2 * 64..]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!(cmax > 1.0, "the test means to exercise |c| > 1: {cmax}");
    }

    #[test]
    fn seq_lens_zero_rows_are_exact() {
        let d = dims(3, 2, 2, 3);
        for direction in [Direction::Forward, Direction::Reverse] {
            let case = Case {
                dims: d,
                direction,
                x: pattern(12, 1),
                w: pattern(24, 2),
                r: pattern(36, 3),
                bias: Some(pattern(12, 4)),
                seq_lens: Some(vec![2, 0]),
                initial_h: Some(pattern(6, 7)),
                initial_c: Some(pattern(6, 8)),
                cell_shift: 13,
            };
            let (got, want) = case.run();
            assert_close(&got, &want, "seq_lens");
            assert_eq!(&got[3..6], &[0.0; 3]); // t = 0, entry 1
            assert_eq!(&got[9..12], &[0.0; 3]); // t = 1, entry 1
            assert_eq!(&got[12..18], &[0.0; 6]); // t = 2
            assert_eq!(&got[21..24], &[0.0; 3]); // Y_h, entry 1
            assert_eq!(&got[27..30], &[0.0; 3]); // Y_c, entry 1
            let last = if direction == Direction::Forward {
                6
            } else {
                0
            };
            assert_eq!(&got[18..21], &got[last..last + 3]);
        }
    }

    #[test]
    fn bidirectional_is_forward_and_reverse() {
        let mut rng = XorShift(0x0b1d_0157_0008_0003);
        let d = dims(4, 2, 3, 5);
        let (nh, block) = (d.hidden, 2 * d.batch * d.hidden);
        let both = Case {
            dims: d,
            direction: Direction::Bidirectional,
            x: random(&mut rng, d.input_len(), 2.0),
            w: random(&mut rng, 2 * 4 * nh * d.input_size, 1.0),
            r: random(&mut rng, 2 * 4 * nh * nh, 1.0),
            bias: Some(random(&mut rng, 2 * 4 * nh, 1.0)),
            seq_lens: Some(vec![3, 4]),
            initial_h: Some(random(&mut rng, block, 0.9)),
            initial_c: Some(random(&mut rng, block, 0.9)),
            cell_shift: 13,
        };
        let (out, _) = both.run();
        for (dir, direction) in [Direction::Forward, Direction::Reverse]
            .into_iter()
            .enumerate()
        {
            let half = |v: &[f32]| v[dir * v.len() / 2..][..v.len() / 2].to_vec();
            let one = Case {
                dims: d,
                direction,
                x: both.x.clone(),
                w: half(&both.w),
                r: half(&both.r),
                bias: both.bias.as_deref().map(half),
                seq_lens: both.seq_lens.clone(),
                initial_h: both.initial_h.as_deref().map(half),
                initial_c: both.initial_c.as_deref().map(half),
                cell_shift: 13,
            };
            let (single, _) = one.run();
            let row = d.batch * nh;
            for blk in 0..d.seq_len + 2 {
                assert_eq!(
                    &out[(blk * 2 + dir) * row..][..row],
                    &single[blk * row..][..row],
                    "block {blk} direction {dir}"
                );
            }
        }
    }

    #[test]
    fn finest_cell_scale_one_step() {
        // cell_shift 15 (range ±1) holds c_1 = i * g exactly when c_0 = 0.
        let mut rng = XorShift(0xce11_0157_0008_0004);
        let d = dims(1, 3, 4, 7);
        let case = Case {
            dims: d,
            direction: Direction::Bidirectional,
            x: random(&mut rng, d.input_len(), 1.0),
            w: random(&mut rng, 2 * 4 * 7 * 4, 1.0),
            r: random(&mut rng, 2 * 4 * 7 * 7, 1.0),
            bias: Some(random(&mut rng, 2 * 4 * 7, 1.0)),
            seq_lens: None,
            initial_h: Some(random(&mut rng, 2 * 3 * 7, 0.9)),
            initial_c: None,
            cell_shift: 15,
        };
        let (got, want) = case.run();
        assert_close(&got, &want, "cell_shift 15");
    }

    #[test]
    fn saturation_does_not_panic() {
        // Extreme int8 data, shifts, zero points and initial states: every
        // intermediate saturates somewhere; the kernel must stay in range.
        let d = dims(5, 2, 9, 16);
        let rows = 4 * 16;
        let x: Vec<i8> = (0..d.input_len())
            .map(|k| if k % 3 == 0 { -128 } else { 127 })
            .collect();
        let w: Vec<i8> = (0..rows * 9)
            .map(|k| if k % 2 == 0 { -128 } else { 127 })
            .collect();
        let r: Vec<i8> = (0..rows * 16)
            .map(|k| if k % 5 == 0 { 127 } else { -128 })
            .collect();
        let bias: Vec<i32> = (0..rows)
            .map(|k| if k % 2 == 0 { i32::MAX } else { i32::MIN })
            .collect();
        let luts = recurrent_s8_luts();
        for (mult, shift) in [(i32::MAX, 30), (1 << 30, -31), (i32::MAX, 0)] {
            let requant = vec![
                super::super::recurrent_s8::GateRequant {
                    x: crate::quant::Requant {
                        multiplier: mult,
                        shift
                    },
                    h: crate::quant::Requant {
                        multiplier: mult,
                        shift
                    },
                };
                rows
            ];
            for (zx, cs) in [(-128, 8), (127, 15), (0, 12)] {
                let weights = RecurrentS8Weights {
                    w: &w,
                    r: &r,
                    bias: Some(&bias),
                    requant: &requant,
                    luts: &luts,
                    x_zero_point: zx,
                };
                let cfg = LstmS8Config {
                    dims: d,
                    direction: Direction::Forward,
                    cell_shift: cs,
                };
                let mut out = vec![f32::NAN; lstm_s8_output_len(&d, cfg.direction)];
                let mut scratch = vec![0i32; lstm_s8_scratch_len(&d)];
                let init = vec![1e9f32; 2 * 16];
                let init_c = vec![-1e9f32; 2 * 16];
                lstm_s8(
                    &cfg,
                    &weights,
                    &SequenceInputs {
                        x: &x,
                        seq_lens: None,
                        initial_h: Some(&init),
                        initial_c: Some(&init_c),
                    },
                    &mut out,
                    &mut scratch,
                );
                let c_range = (1u32 << (15 - cs)) as f32;
                assert!(out.iter().all(|v| v.abs() <= c_range));
            }
        }
    }

    #[test]
    fn golden_words() {
        // A fixed tiny problem: any change in the integer arithmetic (rounding,
        // tables, requantization, state formats) changes these words. The int8
        // inputs are built directly so that no float quantization is involved.
        let d = dims(3, 1, 2, 2);
        let x: Vec<i8> = vec![-100, 27, 64, -3, 127, -128];
        let w: Vec<i8> = (0..16).map(|k| ((k * 37) % 255) as i8).collect();
        let r: Vec<i8> = (0..16).map(|k| ((k * 53 + 11) % 255) as i8).collect();
        let bias: Vec<i32> = (0..8).map(|k| (k - 4) * 700).collect();
        let requant: Vec<_> = (0..8)
            .map(|k| super::super::recurrent_s8::GateRequant {
                x: crate::quant::Requant::from_real(0.05 + 0.01 * k as f64),
                h: crate::quant::Requant::from_real(0.003 + 0.0005 * k as f64),
            })
            .collect();
        let luts = recurrent_s8_luts();
        let weights = RecurrentS8Weights {
            w: &w,
            r: &r,
            bias: Some(&bias),
            requant: &requant,
            luts: &luts,
            x_zero_point: 5,
        };
        let cfg = LstmS8Config {
            dims: d,
            direction: Direction::Forward,
            cell_shift: 13,
        };
        let mut out = vec![f32::NAN; lstm_s8_output_len(&d, cfg.direction)];
        let mut scratch = vec![0i32; lstm_s8_scratch_len(&d)];
        lstm_s8(
            &cfg,
            &weights,
            &SequenceInputs {
                x: &x,
                seq_lens: None,
                initial_h: Some(&[0.25, -0.5]),
                initial_c: Some(&[1.5, -0.75]),
            },
            &mut out,
            &mut scratch,
        );
        let words: Vec<i32> = out[..8]
            .iter()
            .map(|&v| (v * 32768.0) as i32)
            .chain(out[8..].iter().map(|&v| (v * 8192.0) as i32))
            .collect();
        assert_eq!(words, GOLDEN);
    }

    /// Cross-checked with an independent Python model of the integer
    /// arithmetic written from FORMAT.md.
    const GOLDEN: [i32; 10] = [
        6474, -2724, 1125, -3660, 1886, -1085, 1886, -1085, 1271, -810,
    ];
}
