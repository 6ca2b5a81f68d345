//! Float simple RNN (ONNX `RNN`, opset 14, time-major `layout = 0`), weights f32
//! or f16.
//!
//! For each direction, batch entry and valid time step, with `clip` applied to
//! the pre-activation:
//!
//! ```text
//! Ht = f(Xt*Wi^T + Ht-1*Ri^T + Wbi + Rbi)
//! ```
//!
//! where `Wbi + Rbi` is summed by the converter. Where ONNX says nothing, this
//! follows onnxruntime: `Y` is 0 at steps `t >= seq_lens[b]` and the reverse
//! direction runs `t = seq_lens[b] - 1` down to 0. An entry with
//! `seq_lens[b] == 0` gets `Y_h = 0`, as onnxruntime's LSTM and GRU do
//! (onnxruntime's RNN has no consistent answer there).
//!
//! The output is one packed buffer (see [`rnn_f32`]); its `Y_h` block holds the
//! running state.

use super::FloatWeight;
use super::activation_f32::Activation;
use super::recurrent::{
    Direction, RecurrentDims, SequenceInputs, StateInOutput, StepF32, clip_gate, matvec_acc,
    run_sequences,
};

/// Constant inputs of an RNN, all directions stacked (ONNX layout).
#[derive(Clone, Copy, Debug)]
pub struct RnnWeights<'a, W> {
    /// Input weights `[dirs][hidden][input_size]`.
    pub w: &'a [W],
    /// Recurrence weights `[dirs][hidden][hidden]`.
    pub r: &'a [W],
    /// Bias `[dirs][hidden]`: ONNX `Wb + Rb`, already summed.
    pub bias: Option<&'a [f32]>,
}

/// Attributes of an RNN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnConfig {
    /// Sizes.
    pub dims: RecurrentDims,
    /// Direction(s).
    pub direction: Direction,
    /// `[f]` per direction index (only index 0 is read unless bidirectional).
    pub activations: [[Activation; 1]; 2],
    /// Cell clip: pre-activations are clamped to `[-clip, clip]`.
    pub clip: Option<f32>,
}

impl RnnConfig {
    /// ONNX default activation `[f]`: Tanh.
    pub const DEFAULT_ACTIVATIONS: [Activation; 1] = [Activation::Tanh];

    /// Default attributes: ONNX activation, no clip.
    pub const fn new(dims: RecurrentDims, direction: Direction) -> RnnConfig {
        RnnConfig {
            dims,
            direction,
            activations: [Self::DEFAULT_ACTIVATIONS; 2],
            clip: None,
        }
    }
}

/// Length of [`rnn_f32`]'s packed output: `(seq_len + 1) * dirs * batch * hidden`.
pub const fn rnn_f32_output_len(dims: &RecurrentDims, direction: Direction) -> usize {
    (dims.seq_len + 1) * dims.block_len(direction)
}

/// Scratch [`rnn_f32`] needs, in f32 elements: `hidden`.
pub const fn rnn_f32_scratch_len(dims: &RecurrentDims) -> usize {
    dims.hidden
}

/// Runs a simple RNN over `x[seq_len][batch][input_size]`.
///
/// `out` is `[seq_len + 1][dirs][batch][hidden]`: blocks `0..seq_len` are ONNX
/// `Y` (0 where `t >= seq_lens[b]`) and block `seq_len` is `Y_h` (the hidden
/// state after the last step of each entry; for the reverse direction, after
/// `t = 0`). Bidirectional stores forward at direction index 0 and reverse at 1.
///
/// `seq_lens` (`[batch]`, each in `0..=seq_len`) defaults to `seq_len`;
/// `initial_h` (`[dirs][batch][hidden]`) defaults to zeros.
///
/// Preconditions (debug-asserted): the slice lengths above and in
/// [`RnnWeights`]; `scratch.len() >= rnn_f32_scratch_len(&cfg.dims)`.
pub fn rnn_f32<W: FloatWeight>(
    cfg: &RnnConfig,
    weights: &RnnWeights<'_, W>,
    inputs: &SequenceInputs<f32>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let dims = &cfg.dims;
    let (input_size, hidden) = (dims.input_size, dims.hidden);
    let dirs = cfg.direction.count();
    debug_assert_eq!(weights.w.len(), dirs * hidden * input_size);
    debug_assert_eq!(weights.r.len(), dirs * hidden * hidden);
    debug_assert!(weights.bias.is_none_or(|b| b.len() == dirs * hidden));
    debug_assert!(scratch.len() >= rnn_f32_scratch_len(dims));
    let mut cell = StateInOutput(RnnStep {
        cfg,
        weights: *weights,
        pre: &mut scratch[..hidden],
        act: cfg.activations[0][0],
        w: &[],
        r: &[],
        bias: None,
    });
    run_sequences(&mut cell, dims, cfg.direction, inputs, out);
}

/// An RNN step: all directions' weights, the current one's, and the scratch.
struct RnnStep<'a, W> {
    cfg: &'a RnnConfig,
    weights: RnnWeights<'a, W>,
    /// `hidden` pre-activations.
    pre: &'a mut [f32],
    /// This direction's activation, weights and bias.
    act: Activation,
    w: &'a [W],
    r: &'a [W],
    bias: Option<&'a [f32]>,
}

impl<W: FloatWeight> StepF32 for RnnStep<'_, W> {
    const STATES: usize = 1;

    fn set_direction(&mut self, d: usize) {
        let dims = &self.cfg.dims;
        let hidden = dims.hidden;
        [self.act] = self.cfg.activations[d];
        self.w = &self.weights.w[d * hidden * dims.input_size..][..hidden * dims.input_size];
        self.r = &self.weights.r[d * hidden * hidden..][..hidden * hidden];
        self.bias = self.weights.bias.map(|b| &b[d * hidden..][..hidden]);
    }

    #[inline]
    fn step(&mut self, x_t: &[f32], h: &mut [f32], _: &mut [f32]) {
        match self.bias {
            Some(bias) => self.pre.copy_from_slice(bias),
            None => self.pre.fill(0.0),
        }
        matvec_acc(self.w, x_t, self.pre);
        matvec_acc(self.r, h, self.pre);
        for (hv, &p) in h.iter_mut().zip(&*self.pre) {
            *hv = self.act.apply(clip_gate(p, self.cfg.clip));
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

    use super::super::recurrent::test_support::{
        act64, assert_close, clip64, pattern, random, random_seq_lens,
    };
    use super::super::test_rng::XorShift;

    /// One RNN problem with f32 weights (converted to f16 where a test asks).
    struct Case {
        cfg: RnnConfig,
        x: Vec<f32>,
        w: Vec<f32>,
        r: Vec<f32>,
        bias: Option<Vec<f32>>,
        seq_lens: Option<Vec<i32>>,
        initial_h: Option<Vec<f32>>,
    }

    impl Case {
        /// Runs the kernel with weights of type `W`; `out` and scratch start as NaN
        /// so that an element the kernel forgets to write shows.
        fn run<W: FloatWeight>(&self, convert: impl Fn(f32) -> W) -> Vec<f32> {
            let w: Vec<W> = self.w.iter().map(|&v| convert(v)).collect();
            let r: Vec<W> = self.r.iter().map(|&v| convert(v)).collect();
            let weights = RnnWeights {
                w: &w,
                r: &r,
                bias: self.bias.as_deref(),
            };
            let dims = &self.cfg.dims;
            let mut out = vec![f32::NAN; rnn_f32_output_len(dims, self.cfg.direction)];
            let mut scratch = vec![f32::NAN; rnn_f32_scratch_len(dims)];
            rnn_f32(
                &self.cfg,
                &weights,
                &SequenceInputs {
                    x: &self.x,
                    seq_lens: self.seq_lens.as_deref(),
                    initial_h: self.initial_h.as_deref(),
                    initial_c: None,
                },
                &mut out,
                &mut scratch,
            );
            out
        }

        /// Reference output in f64, straight from the ONNX equation. The reverse
        /// direction is computed the way onnxruntime's LSTM and GRU do it: reverse
        /// each sequence within its length, run forward, reverse the outputs back.
        fn reference(&self, w: &[f64], r: &[f64]) -> Vec<f64> {
            let cfg = &self.cfg;
            let RecurrentDims {
                seq_len,
                batch,
                input_size: ni,
                hidden: nh,
            } = cfg.dims;
            let dirs = cfg.direction.count();
            let mut out = vec![0.0f64; (seq_len + 1) * dirs * batch * nh];
            for d in 0..dirs {
                let reverse = cfg.direction == Direction::Reverse || d == 1;
                let [fa] = cfg.activations[d];
                for b in 0..batch {
                    let len = self.seq_lens.as_ref().map_or(seq_len, |l| l[b] as usize);
                    let mut h: Vec<f64> = (0..nh)
                        .map(|j| {
                            self.initial_h
                                .as_ref()
                                .map_or(0.0, |v| v[(d * batch + b) * nh + j] as f64)
                        })
                        .collect();
                    let mut hs: Vec<Vec<f64>> = Vec::new();
                    for s in 0..len {
                        let t = if reverse { len - 1 - s } else { s };
                        let xt = &self.x[(t * batch + b) * ni..][..ni];
                        h = (0..nh)
                            .map(|j| {
                                let row = d * nh + j;
                                let mut v = self.bias.as_ref().map_or(0.0, |bv| bv[row] as f64);
                                for i in 0..ni {
                                    v += xt[i] as f64 * w[row * ni + i];
                                }
                                for i in 0..nh {
                                    v += h[i] * r[row * nh + i];
                                }
                                act64(fa, clip64(v, cfg.clip))
                            })
                            .collect();
                        hs.push(h.clone());
                    }
                    for (s, hv) in hs.iter().enumerate() {
                        let t = if reverse { len - 1 - s } else { s };
                        let at = ((t * dirs + d) * batch + b) * nh;
                        out[at..at + nh].copy_from_slice(hv);
                    }
                    if len == 0 {
                        h = vec![0.0; nh];
                    }
                    let at = ((seq_len * dirs + d) * batch + b) * nh;
                    out[at..at + nh].copy_from_slice(&h);
                }
            }
            out
        }

        fn check(&self, what: &str) {
            let w: Vec<f64> = self.w.iter().map(|&v| v as f64).collect();
            let r: Vec<f64> = self.r.iter().map(|&v| v as f64).collect();
            assert_close(&self.run(|v| v), &self.reference(&w, &r), 1e-5, what);
            let w16: Vec<f64> = self.w.iter().map(|&v| f16::from_f32(v).to_f64()).collect();
            let r16: Vec<f64> = self.r.iter().map(|&v| f16::from_f32(v).to_f64()).collect();
            assert_close(
                &self.run(f16::from_f32),
                &self.reference(&w16, &r16),
                1e-5,
                what,
            );
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

    #[test]
    fn onnx_reference_case() {
        // Inputs from `pattern` (the same formula in the generating script), bias =
        // Wb + Rb of ONNX B = pattern(4, 4). Expected Y from onnx 1.22.0's
        // onnx.reference.ReferenceEvaluator (one-node RNN, opset 14, with B and
        // initial_h); Y_h is Y's last step.
        let onnx_b = pattern(4, 4);
        let case = Case {
            cfg: RnnConfig::new(dims(3, 2, 3, 2), Direction::Forward),
            x: pattern(18, 1),
            w: pattern(6, 2),
            r: pattern(4, 3),
            bias: Some(vec![onnx_b[0] + onnx_b[2], onnx_b[1] + onnx_b[3]]),
            seq_lens: None,
            initial_h: Some(pattern(4, 7)),
        };
        let y = [
            -0.405321329832077,
            -0.4929879605770111,
            -0.6469294428825378,
            -0.11942728608846664,
            -0.6816173195838928,
            -0.3236939013004303,
            -0.7392264604568481,
            -0.11652468144893646,
            -0.7027164697647095,
            -0.15324446558952332,
            -0.7238523364067078,
            -0.05919751152396202,
        ];
        let out = case.run(|v| v);
        assert_close(&out[..12], &y, 1e-5, "Y");
        assert_close(&out[12..16], &y[8..], 1e-5, "Y_h");
        case.check("onnx reference case");
    }

    #[test]
    fn hand_computed_reverse_with_seq_lens() {
        // hidden 1, input 1: Ht = relu(2 * Xt + 0.5 * Ht-1 + 1), clipped to 10.
        // Entry 0 (length 3, x = 1, 2, 3) runs t = 2, 1, 0 from h0 = 4:
        //   t=2: 6 + 2 + 1 = 9; t=1: 4 + 4.5 + 1 = 9.5; t=0: 2 + 4.75 + 1 = 7.75.
        // Entry 1 (length 2, x = -1, 5, ignored 7) runs t = 1, 0 from h0 = 0:
        //   t=1: 10 + 0 + 1 = 11 -> clip 10; t=0: -2 + 5 + 1 = 4.
        let mut cfg = RnnConfig::new(dims(3, 2, 1, 1), Direction::Reverse);
        cfg.activations[0] = [Activation::Relu];
        cfg.clip = Some(10.0);
        let x = [1.0f32, -1.0, 2.0, 5.0, 3.0, 7.0];
        let weights = RnnWeights {
            w: &[2.0f32],
            r: &[0.5f32],
            bias: Some(&[1.0]),
        };
        let mut out = [f32::NAN; 8];
        let mut scratch = [0.0f32; 1];
        rnn_f32(
            &cfg,
            &weights,
            &SequenceInputs {
                x: &x,
                seq_lens: Some(&[3, 2]),
                initial_h: Some(&[4.0, 0.0]),
                initial_c: None,
            },
            &mut out,
            &mut scratch,
        );
        assert_eq!(out, [7.75, 4.0, 9.5, 10.0, 9.0, 0.0, 7.75, 4.0]);
    }

    #[test]
    fn seq_lens_zero_and_short() {
        let d = dims(3, 2, 2, 2);
        for direction in [Direction::Forward, Direction::Reverse] {
            let case = Case {
                cfg: RnnConfig::new(d, direction),
                x: pattern(12, 1),
                w: pattern(4, 2),
                r: pattern(4, 3),
                bias: Some(pattern(2, 4)),
                seq_lens: Some(vec![2, 0]),
                initial_h: Some(pattern(4, 7)),
            };
            let out = case.run(|v| v);
            assert_eq!(&out[2..4], &[0.0, 0.0]);
            assert_eq!(&out[6..8], &[0.0, 0.0]);
            assert_eq!(&out[8..12], &[0.0; 4]);
            assert_eq!(&out[14..16], &[0.0, 0.0]);
            let last = if direction == Direction::Forward {
                4
            } else {
                0
            };
            assert_eq!(&out[12..14], &out[last..last + 2]);
            case.check("seq_lens");
        }
    }

    #[test]
    fn random_cases_match_reference() {
        let mut rng = XorShift(0x7a4_a11c_e0de_0003);
        let acts = [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
            Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            Activation::LeakyRelu { alpha: 0.1 },
        ];
        // Every combination of direction and the five option bits, three times.
        for iter in 0..3 * 32 * 3 {
            let direction = [
                Direction::Forward,
                Direction::Reverse,
                Direction::Bidirectional,
            ][iter % 3];
            let flags = iter / 3;
            let bit = |i: usize| flags & (1 << i) != 0;
            let d = dims(
                1 + rng.below(5),
                1 + rng.below(3),
                1 + rng.below(5),
                1 + rng.below(9),
            );
            let dirs = direction.count();
            let nh = d.hidden;
            let mut cfg = RnnConfig::new(d, direction);
            if bit(4) {
                cfg.activations = core::array::from_fn(|_| [acts[rng.below(acts.len())]]);
            }
            cfg.clip = bit(3).then_some(0.7);
            let case = Case {
                cfg,
                x: random(&mut rng, d.input_len(), 2.0),
                w: random(&mut rng, dirs * nh * d.input_size, 1.0),
                r: random(&mut rng, dirs * nh * nh, 1.0),
                bias: bit(0).then(|| random(&mut rng, dirs * nh, 1.0)),
                seq_lens: bit(2).then(|| random_seq_lens(&mut rng, d.batch, d.seq_len)),
                initial_h: bit(1).then(|| random(&mut rng, dirs * d.batch * nh, 1.0)),
            };
            case.check(&std::format!("iter {iter}: {:?}", case.cfg));
        }
    }
}
