//! Int8 GRU (ONNX `GRU` with the default activations, no clip, either
//! `linear_before_reset`), integer-only: int8 `x`, `W`, `R`; Q3.12 gate
//! pre-activations; Q0.15 gates and hidden state. The scheme is in
//! [`super::recurrent_s8`] and FORMAT.md.
//!
//! One step, per unit `j` (`>>` is [`rshift_round`], `sat` is [`sat16`], `rq`
//! the row's [`super::recurrent_s8::GateRequant`], biases Q3.12):
//!
//! ```text
//! z, r = sigmoid_lut(sat(rq.x(Σ (x - zx)·W) + rq.h(Σ h·R) + Wb + Rb))           Q0.15
//! linear_before_reset = 0:
//!   pre_h = sat(rq.x(Σ (x - zx)·Wh) + rq.h(Σ ((r·h) >> 15)·Rh) + Wbh + Rbh)
//! linear_before_reset = 1:
//!   lin   = sat(rq.h(Σ h·Rh) + Rbh)
//!   pre_h = sat(rq.x(Σ (x - zx)·Wh) + Wbh + ((r·lin) >> 15))
//! h = sat(((32768 - z)·tanh_lut(pre_h) + z·h) >> 15)                             Q0.15
//! ```
//!
//! Sequence lengths, directions and the packed f32 output (`h·2^-15`) follow
//! [`super::gru_f32`].

use super::recurrent::{Direction, RecurrentDims, SequenceInputs, run_sequences};
use super::recurrent_s8::{
    GateRequant, RecurrentS8Weights, STATE_FRAC_BITS, StateInScratch, StepS8, gate_pre, lut,
    matvec_s8, rshift_round, sat16, split_scratch, words_of_i16,
};

/// Gates per hidden unit.
const GATES: usize = 3;

/// Attributes of an int8 GRU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GruS8Config {
    /// Sizes (`hidden <= MAX_HIDDEN_S8`).
    pub dims: RecurrentDims,
    /// Direction(s).
    pub direction: Direction,
    /// ONNX `linear_before_reset`.
    pub linear_before_reset: bool,
}

/// Length of [`gru_s8`]'s packed f32 output: `(seq_len + 1) * dirs * batch * hidden`.
pub const fn gru_s8_output_len(dims: &RecurrentDims, direction: Direction) -> usize {
    (dims.seq_len + 1) * dims.block_len(direction)
}

/// Scratch [`gru_s8`] needs, in 32-bit words: `3 * hidden` int32
/// pre-activations, then int16 `h`, `r (.) h` and the centred input row.
pub const fn gru_s8_scratch_len(dims: &RecurrentDims) -> usize {
    GATES * dims.hidden + words_of_i16(2 * dims.hidden + dims.input_size)
}

/// Runs an int8 GRU over `x[seq_len][batch][input_size]` (int8, zero point
/// `weights.x_zero_point`).
///
/// `out` is `[seq_len + 1][dirs][batch][hidden]` f32, as [`super::gru_f32::gru_f32`]
/// writes it. `initial_h` (`[dirs][batch][hidden]`, f32, default zeros) is
/// quantized on entry to Q0.15 (round half away from zero, saturate): the op's
/// quantize step.
///
/// Preconditions (debug-asserted): the slice lengths above and in
/// [`RecurrentS8Weights`] (bias `[dirs][6 * hidden]`: `Wb[zrh]`, `Rb[zrh]`);
/// `seq_lens` in `0..=seq_len`; table entries in range
/// ([`super::recurrent_s8::luts_in_range`]);
/// `scratch.len() >= gru_s8_scratch_len(&cfg.dims)`.
pub fn gru_s8(
    cfg: &GruS8Config,
    weights: &RecurrentS8Weights<'_>,
    inputs: &SequenceInputs<i8>,
    out: &mut [f32],
    scratch: &mut [i32],
) {
    let dims = &cfg.dims;
    let (input_size, hidden) = (dims.input_size, dims.hidden);
    let dirs = cfg.direction.count();
    let rows = GATES * hidden;
    debug_assert!(weights.bias.is_none_or(|b| b.len() == dirs * 2 * rows));
    weights.debug_check(dirs, rows, input_size, hidden);
    debug_assert!(scratch.len() >= gru_s8_scratch_len(dims));

    let (pre, rest) = split_scratch(&mut scratch[..gru_s8_scratch_len(dims)], rows);
    let (h, rest) = rest.split_at_mut(hidden);
    let (rh, rest) = rest.split_at_mut(hidden);
    let mut cell = StateInScratch {
        step: GruS8Step {
            cfg,
            weights: *weights,
            pre,
            rh,
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

/// An int8 GRU step: all directions' weights, the current one's, and the
/// scratch.
struct GruS8Step<'a> {
    cfg: &'a GruS8Config,
    weights: RecurrentS8Weights<'a>,
    /// `3 * hidden` int32 pre-activations.
    pre: &'a mut [i32],
    /// `r (.) h`, `hidden` values.
    rh: &'a mut [i16],
    w: &'a [i8],
    r: &'a [i8],
    requant: &'a [GateRequant],
    /// `[6 * hidden]`: `Wb[zrh]`, `Rb[zrh]`.
    bias: Option<&'a [i32]>,
}

impl StepS8 for GruS8Step<'_> {
    const STATES: usize = 1;

    fn set_direction(&mut self, d: usize) {
        let dims = &self.cfg.dims;
        let (hidden, rows) = (dims.hidden, GATES * dims.hidden);
        let weights = &self.weights;
        self.w = &weights.w[d * rows * dims.input_size..][..rows * dims.input_size];
        self.r = &weights.r[d * rows * hidden..][..rows * hidden];
        self.requant = &weights.requant[d * rows..][..rows];
        self.bias = weights.bias.map(|b| &b[d * 2 * rows..][..2 * rows]);
    }

    #[inline]
    fn step(&mut self, xq: &[i16], h: &mut [i16], _: &mut [i16]) {
        let hidden = h.len();
        let rows = GATES * hidden;
        let (sigmoid, tanh) = self.weights.tables();
        let (r_zr, r_h) = self.r.split_at(2 * hidden * hidden);
        let (rq_zr, rq_h) = self.requant.split_at(2 * hidden);
        let bias = self.bias;
        // Wb + Rb of z and r; Wbh and Rbh apart.
        let bias_zr = |row: usize| bias.map_or(0, |b| b[row].saturating_add(b[rows + row]));
        let wbh = |j: usize| bias.map_or(0, |b| b[2 * hidden + j]);
        let rbh = |j: usize| bias.map_or(0, |b| b[rows + 2 * hidden + j]);
        let pre = &mut *self.pre;
        matvec_s8(self.w, xq, pre, |_, _, acc| acc);
        let (pre_zr, pre_h) = pre.split_at_mut(2 * hidden);
        matvec_s8(r_zr, h, pre_zr, |row, acc_x, acc_h| {
            lut(sigmoid, gate_pre(rq_zr[row], acc_x, acc_h, bias_zr(row)))
        });
        let (z, r) = pre_zr.split_at(hidden);
        if self.cfg.linear_before_reset {
            matvec_s8(r_h, h, pre_h, |j, acc_x, acc_h| {
                let lin = sat16(rq_h[j].h.apply(acc_h).saturating_add(rbh(j)));
                sat16(
                    rq_h[j]
                        .x
                        .apply(acc_x)
                        .saturating_add(wbh(j))
                        .saturating_add(rshift_round(r[j] * lin, STATE_FRAC_BITS)),
                )
            });
        } else {
            for ((t, &rv), &hv) in self.rh.iter_mut().zip(r).zip(&*h) {
                *t = rshift_round(rv * hv as i32, STATE_FRAC_BITS) as i16;
            }
            matvec_s8(r_h, self.rh, pre_h, |j, acc_x, acc_h| {
                gate_pre(rq_h[j], acc_x, acc_h, wbh(j).saturating_add(rbh(j)))
            });
        }
        for ((hv, &zv), &ph) in h.iter_mut().zip(z).zip(&*pre_h) {
            let ht = lut(tanh, ph);
            let mix = (32768 - zv) * ht + zv * *hv as i32;
            *hv = sat16(rshift_round(mix, STATE_FRAC_BITS)) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::gru_f32::{GruConfig, GruWeights, gru_f32, gru_f32_scratch_len};
    use super::super::recurrent::test_support::{pattern, random, random_seq_lens};
    use super::super::recurrent_s8::test_support::quantize_problem;
    use super::super::recurrent_s8::{GateRequant, recurrent_s8_luts};
    use super::super::test_rng::XorShift;
    use crate::quant::Requant;

    struct Case {
        dims: RecurrentDims,
        direction: Direction,
        linear_before_reset: bool,
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
            let cfg = GruS8Config {
                dims: *d,
                direction: self.direction,
                linear_before_reset: self.linear_before_reset,
            };
            let mut out = vec![f32::NAN; gru_s8_output_len(d, self.direction)];
            let mut scratch = vec![i32::MIN; gru_s8_scratch_len(d)];
            gru_s8(
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
            let mut fscratch = vec![0.0; gru_f32_scratch_len(d)];
            let mut fcfg = GruConfig::new(*d, self.direction);
            fcfg.linear_before_reset = self.linear_before_reset;
            gru_f32(
                &fcfg,
                &GruWeights {
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
    /// input: the Q3.12 pre-activations (2^-13), Q0.15 gates and state (2^-16)
    /// and table interpolation (< 1e-4) add a few 1e-4 per step, which the
    /// recurrence carries (damped by `z < 1`); 2e-2 bounds a few dozen steps
    /// with a wide margin (observed ~1e-3).
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
        let mut rng = XorShift(0x5eed_06e0_0008_0001);
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
            let case = Case {
                dims: d,
                direction,
                linear_before_reset: bit(3),
                x: random(&mut rng, d.input_len(), 2.0),
                w: random(&mut rng, dirs * 3 * nh * d.input_size, 0.7),
                r: random(&mut rng, dirs * 3 * nh * nh, 0.7),
                bias: bit(0).then(|| random(&mut rng, dirs * 6 * nh, 1.0)),
                seq_lens: bit(1).then(|| random_seq_lens(&mut rng, d.batch, d.seq_len)),
                initial_h: bit(2).then(|| random(&mut rng, block, 0.99)),
            };
            let (got, want) = case.run();
            let what = std::format!(
                "iter {iter}: {d:?} {direction:?} lbr {}",
                case.linear_before_reset
            );
            worst = worst.max(assert_close(&got, &want, &what));
        }
        std::println!("gru_s8 worst abs error vs f32: {worst}");
    }

    #[test]
    fn larger_hidden_matches_f32_kernel() {
        let mut rng = XorShift(0xbead_06e0_0008_0002);
        let d = dims(16, 2, 16, 64);
        for lbr in [false, true] {
            let case = Case {
                dims: d,
                direction: Direction::Bidirectional,
                linear_before_reset: lbr,
                x: random(&mut rng, d.input_len(), 1.0),
                w: random(&mut rng, 2 * 3 * 64 * 16, 0.4),
                r: random(&mut rng, 2 * 3 * 64 * 64, 0.2),
                bias: Some(random(&mut rng, 2 * 6 * 64, 0.5)),
                seq_lens: Some(vec![16, 9]),
                initial_h: None,
            };
            let (got, want) = case.run();
            assert_close(&got, &want, &std::format!("hidden 64 lbr {lbr}"));
        }
    }

    #[test]
    fn seq_lens_zero_rows_are_exact() {
        let d = dims(3, 2, 2, 3);
        for direction in [Direction::Forward, Direction::Reverse] {
            for lbr in [false, true] {
                let case = Case {
                    dims: d,
                    direction,
                    linear_before_reset: lbr,
                    x: pattern(12, 1),
                    w: pattern(18, 2),
                    r: pattern(27, 3),
                    bias: Some(pattern(18, 4)),
                    seq_lens: Some(vec![2, 0]),
                    initial_h: Some(pattern(6, 7)),
                };
                let (got, want) = case.run();
                assert_close(&got, &want, "seq_lens");
                assert_eq!(&got[3..6], &[0.0; 3]); // t = 0, entry 1
                assert_eq!(&got[9..12], &[0.0; 3]); // t = 1, entry 1
                assert_eq!(&got[12..18], &[0.0; 6]); // t = 2
                assert_eq!(&got[21..24], &[0.0; 3]); // Y_h, entry 1
                let last = if direction == Direction::Forward {
                    6
                } else {
                    0
                };
                assert_eq!(&got[18..21], &got[last..last + 3]);
            }
        }
    }

    #[test]
    fn bidirectional_is_forward_and_reverse() {
        let mut rng = XorShift(0x0b1d_06e0_0008_0003);
        let d = dims(4, 2, 3, 5);
        let (nh, block) = (d.hidden, 2 * d.batch * d.hidden);
        let both = Case {
            dims: d,
            direction: Direction::Bidirectional,
            linear_before_reset: true,
            x: random(&mut rng, d.input_len(), 2.0),
            w: random(&mut rng, 2 * 3 * nh * d.input_size, 1.0),
            r: random(&mut rng, 2 * 3 * nh * nh, 1.0),
            bias: Some(random(&mut rng, 2 * 6 * nh, 1.0)),
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
                linear_before_reset: true,
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

    /// Runs a fixed tiny problem built directly in int8 (no float quantization).
    fn golden_run(lbr: bool) -> Vec<i32> {
        let d = dims(3, 1, 2, 2);
        let x: Vec<i8> = vec![-100, 27, 64, -3, 127, -128];
        let w: Vec<i8> = (0..12).map(|k| ((k * 37) % 255) as i8).collect();
        let r: Vec<i8> = (0..12).map(|k| ((k * 53 + 11) % 255) as i8).collect();
        let bias: Vec<i32> = (0..12).map(|k| (k - 6) * 500).collect();
        let requant: Vec<_> = (0..6)
            .map(|k| GateRequant {
                x: Requant::from_real(0.05 + 0.01 * k as f64),
                h: Requant::from_real(0.003 + 0.0005 * k as f64),
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
        let cfg = GruS8Config {
            dims: d,
            direction: Direction::Forward,
            linear_before_reset: lbr,
        };
        let mut out = vec![f32::NAN; gru_s8_output_len(&d, cfg.direction)];
        let mut scratch = vec![0i32; gru_s8_scratch_len(&d)];
        gru_s8(
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
        out.iter().map(|&v| (v * 32768.0) as i32).collect()
    }

    #[test]
    fn golden_words() {
        // Any change in the integer arithmetic changes these words.
        assert_eq!(golden_run(false), GOLDEN_LBR0);
        assert_eq!(golden_run(true), GOLDEN_LBR1);
    }

    // Cross-checked with an independent Python model of the integer arithmetic
    // written from FORMAT.md.
    const GOLDEN_LBR0: [i32; 8] = [1899, -13728, 7491, -4694, 863, 6497, 863, 6497];
    const GOLDEN_LBR1: [i32; 8] = [-4568, -16743, 7199, -10100, -6352, -2807, -6352, -2807];
}
