//! Int8 simple RNN (ONNX `RNN` with the default `Tanh`, no clip),
//! integer-only: int8 `x`, `W`, `R`; Q3.12 pre-activation; Q0.15 hidden state.
//! The scheme is in [`super::recurrent_s8`] and FORMAT.md.
//!
//! One step, per unit `j`:
//!
//! ```text
//! h = tanh_lut(sat16(rq.x(Σ (x - zx)·W[j]) + rq.h(Σ h·R[j]) + B[j]))     Q0.15
//! ```
//!
//! Sequence lengths, directions and the packed f32 output (`h·2^-15`) follow
//! [`super::rnn_f32`].

use super::recurrent::{Direction, RecurrentDims, SequenceInputs, run_sequences};
use super::recurrent_s8::{
    GateRequant, RecurrentS8Weights, StateInScratch, StepS8, gate_pre, lut, matvec_s8,
    split_scratch, words_of_i16,
};

/// Attributes of an int8 RNN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnS8Config {
    /// Sizes (`hidden <= MAX_HIDDEN_S8`).
    pub dims: RecurrentDims,
    /// Direction(s).
    pub direction: Direction,
}

/// Length of [`rnn_s8`]'s packed f32 output: `(seq_len + 1) * dirs * batch * hidden`.
pub const fn rnn_s8_output_len(dims: &RecurrentDims, direction: Direction) -> usize {
    (dims.seq_len + 1) * dims.block_len(direction)
}

/// Scratch [`rnn_s8`] needs, in 32-bit words: `hidden` int32 pre-activations,
/// then int16 `h` and the centred input row.
pub const fn rnn_s8_scratch_len(dims: &RecurrentDims) -> usize {
    dims.hidden + words_of_i16(dims.hidden + dims.input_size)
}

/// Runs an int8 RNN over `x[seq_len][batch][input_size]` (int8, zero point
/// `weights.x_zero_point`).
///
/// `out` is `[seq_len + 1][dirs][batch][hidden]` f32, as [`super::rnn_f32::rnn_f32`]
/// writes it. `initial_h` (`[dirs][batch][hidden]`, f32, default zeros) is
/// quantized on entry to Q0.15 (round half away from zero, saturate): the op's
/// quantize step.
///
/// Preconditions (debug-asserted): the slice lengths above and in
/// [`RecurrentS8Weights`] (bias `[dirs][hidden]`, `Wb + Rb`); `seq_lens` in
/// `0..=seq_len`; table entries in range
/// ([`super::recurrent_s8::luts_in_range`]);
/// `scratch.len() >= rnn_s8_scratch_len(&cfg.dims)`.
pub fn rnn_s8(
    cfg: &RnnS8Config,
    weights: &RecurrentS8Weights<'_>,
    inputs: &SequenceInputs<i8>,
    out: &mut [f32],
    scratch: &mut [i32],
) {
    let dims = &cfg.dims;
    let (input_size, hidden) = (dims.input_size, dims.hidden);
    let dirs = cfg.direction.count();
    debug_assert!(weights.bias.is_none_or(|b| b.len() == dirs * hidden));
    weights.debug_check(dirs, hidden, input_size, hidden);
    debug_assert!(scratch.len() >= rnn_s8_scratch_len(dims));

    let (pre, rest) = split_scratch(&mut scratch[..rnn_s8_scratch_len(dims)], hidden);
    let (h, rest) = rest.split_at_mut(hidden);
    let mut cell = StateInScratch {
        step: RnnS8Step {
            cfg,
            weights: *weights,
            pre,
            w: &[],
            r: &[],
            requant: &[],
            bias: None,
        },
        h,
        c: &mut [],
        xq: &mut rest[..input_size],
        x_zero_point: weights.x_zero_point,
        cell_shift: 0,
    };
    run_sequences(&mut cell, dims, cfg.direction, inputs, out);
}

/// An int8 RNN step: all directions' weights, the current one's, and the
/// pre-activations.
struct RnnS8Step<'a> {
    cfg: &'a RnnS8Config,
    weights: RecurrentS8Weights<'a>,
    /// `hidden` int32 pre-activations.
    pre: &'a mut [i32],
    w: &'a [i8],
    r: &'a [i8],
    requant: &'a [GateRequant],
    bias: Option<&'a [i32]>,
}

impl StepS8 for RnnS8Step<'_> {
    const STATES: usize = 1;

    fn set_direction(&mut self, d: usize) {
        let dims = &self.cfg.dims;
        let hidden = dims.hidden;
        let weights = &self.weights;
        self.w = &weights.w[d * hidden * dims.input_size..][..hidden * dims.input_size];
        self.r = &weights.r[d * hidden * hidden..][..hidden * hidden];
        self.requant = &weights.requant[d * hidden..][..hidden];
        self.bias = weights.bias.map(|b| &b[d * hidden..][..hidden]);
    }

    #[inline]
    fn step(&mut self, xq: &[i16], h: &mut [i16], _: &mut [i16]) {
        let (_, tanh) = self.weights.tables();
        let (requant, bias, pre) = (self.requant, self.bias, &mut *self.pre);
        matvec_s8(self.w, xq, pre, |_, _, acc| acc);
        matvec_s8(self.r, h, pre, |j, acc_x, acc_h| {
            lut(
                tanh,
                gate_pre(requant[j], acc_x, acc_h, bias.map_or(0, |b| b[j])),
            )
        });
        for (hv, &p) in h.iter_mut().zip(&*pre) {
            *hv = p as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::recurrent::test_support::{pattern, random, random_seq_lens};
    use super::super::recurrent_s8::test_support::quantize_problem;
    use super::super::recurrent_s8::{GateRequant, recurrent_s8_luts};
    use super::super::rnn_f32::{RnnConfig, RnnWeights, rnn_f32, rnn_f32_scratch_len};
    use super::super::test_rng::XorShift;
    use crate::quant::Requant;

    struct Case {
        dims: RecurrentDims,
        direction: Direction,
        x: Vec<f32>,
        w: Vec<f32>,
        r: Vec<f32>,
        bias: Option<Vec<f32>>,
        seq_lens: Option<Vec<i32>>,
        initial_h: Option<Vec<f32>>,
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
            let cfg = RnnS8Config {
                dims: *d,
                direction: self.direction,
            };
            let mut out = vec![f32::NAN; rnn_s8_output_len(d, self.direction)];
            let mut scratch = vec![i32::MIN; rnn_s8_scratch_len(d)];
            rnn_s8(
                &cfg,
                &weights,
                &SequenceInputs {
                    x: &q.x,
                    seq_lens: self.seq_lens.as_deref(),
                    initial_h: self.initial_h.as_deref(),
                    initial_c: None,
                },
                &mut out,
                &mut scratch,
            );
            let mut want = vec![f32::NAN; out.len()];
            let mut fscratch = vec![0.0; rnn_f32_scratch_len(d)];
            rnn_f32(
                &RnnConfig::new(*d, self.direction),
                &RnnWeights {
                    w: q.w_deq.as_slice(),
                    r: &q.r_deq,
                    bias: self.bias.as_deref(),
                },
                &SequenceInputs {
                    x: &q.x_deq,
                    seq_lens: self.seq_lens.as_deref(),
                    initial_h: self.initial_h.as_deref(),
                    initial_c: None,
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
    /// input: the Q3.12 pre-activation (2^-13 before tanh' <= 1), the Q0.15
    /// state (2^-16) and table interpolation (< 1e-4) per step. A tanh RNN is
    /// not damped by a gate: with `|R|` rows summing past 1 the error can grow
    /// a little per step; 2e-2 bounds the short sequences here (observed ~1e-3).
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
        let mut rng = XorShift(0x5eed_0222_0008_0001);
        let mut worst = 0f32;
        for iter in 0..3 * 8 {
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
            // R scaled by 1/hidden-ish keeps the tanh RNN contractive.
            let r_scale = 1.0 / (nh as f32).sqrt();
            let case = Case {
                dims: d,
                direction,
                x: random(&mut rng, d.input_len(), 2.0),
                w: random(&mut rng, dirs * nh * d.input_size, 0.7),
                r: random(&mut rng, dirs * nh * nh, r_scale),
                bias: bit(0).then(|| random(&mut rng, dirs * nh, 1.0)),
                seq_lens: bit(1).then(|| random_seq_lens(&mut rng, d.batch, d.seq_len)),
                initial_h: bit(2).then(|| random(&mut rng, block, 0.99)),
            };
            let (got, want) = case.run();
            let what = std::format!("iter {iter}: {d:?} {direction:?}");
            worst = worst.max(assert_close(&got, &want, &what));
        }
        std::println!("rnn_s8 worst abs error vs f32: {worst}");
    }

    #[test]
    fn seq_lens_zero_rows_are_exact() {
        let d = dims(3, 2, 2, 3);
        for direction in [Direction::Forward, Direction::Reverse] {
            let case = Case {
                dims: d,
                direction,
                x: pattern(12, 1),
                w: pattern(6, 2),
                r: pattern(9, 3),
                bias: Some(pattern(3, 4)),
                seq_lens: Some(vec![2, 0]),
                initial_h: Some(pattern(6, 7)),
            };
            let (got, want) = case.run();
            assert_close(&got, &want, "seq_lens");
            assert_eq!(&got[3..6], &[0.0; 3]);
            assert_eq!(&got[9..12], &[0.0; 3]);
            assert_eq!(&got[12..18], &[0.0; 6]);
            assert_eq!(&got[21..24], &[0.0; 3]);
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
        let mut rng = XorShift(0x0b1d_0222_0008_0003);
        let d = dims(4, 2, 3, 5);
        let (nh, block) = (d.hidden, 2 * d.batch * d.hidden);
        let both = Case {
            dims: d,
            direction: Direction::Bidirectional,
            x: random(&mut rng, d.input_len(), 2.0),
            w: random(&mut rng, 2 * nh * d.input_size, 1.0),
            r: random(&mut rng, 2 * nh * nh, 0.5),
            bias: Some(random(&mut rng, 2 * nh, 1.0)),
            seq_lens: Some(vec![3, 4]),
            initial_h: Some(random(&mut rng, block, 0.9)),
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
            };
            let (single, _) = one.run();
            let row = d.batch * nh;
            for blk in 0..d.seq_len + 1 {
                assert_eq!(
                    &out[(blk * 2 + dir) * row..][..row],
                    &single[blk * row..][..row],
                    "block {blk} direction {dir}"
                );
            }
        }
    }

    #[test]
    fn golden_words() {
        // A fixed tiny problem built directly in int8: any change in the
        // integer arithmetic changes these words.
        let d = dims(3, 1, 2, 2);
        let x: Vec<i8> = vec![-100, 27, 64, -3, 127, -128];
        let w: Vec<i8> = (0..4).map(|k| ((k * 37) % 255) as i8).collect();
        let r: Vec<i8> = (0..4).map(|k| ((k * 53 + 11) % 255) as i8).collect();
        let bias = [-900i32, 1300];
        let requant: Vec<_> = (0..2)
            .map(|k| GateRequant {
                x: Requant::from_real(0.01 + 0.002 * k as f64),
                h: Requant::from_real(0.001 + 0.0005 * k as f64),
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
        let cfg = RnnS8Config {
            dims: d,
            direction: Direction::Forward,
        };
        let mut out = vec![f32::NAN; rnn_s8_output_len(&d, cfg.direction)];
        let mut scratch = vec![0i32; rnn_s8_scratch_len(&d)];
        rnn_s8(
            &cfg,
            &weights,
            &SequenceInputs {
                x: &x,
                seq_lens: None,
                initial_h: Some(&[0.25, -0.5]),
                initial_c: None,
            },
            &mut out,
            &mut scratch,
        );
        let words: Vec<i32> = out.iter().map(|&v| (v * 32768.0) as i32).collect();
        assert_eq!(words, GOLDEN);
    }

    /// Cross-checked with an independent Python model of the integer
    /// arithmetic written from FORMAT.md.
    const GOLDEN: [i32; 8] = [-13867, 26994, 5328, -26423, -18287, 28724, -18287, 28724];
}
