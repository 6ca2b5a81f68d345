//! Float GRU (ONNX `GRU`, opset 14, time-major `layout = 0`), weights f32 or f16.
//!
//! For each direction, batch entry and valid time step, with the gates in ONNX
//! order z, r, h and `clip` applied to every pre-activation:
//!
//! ```text
//! zt = f(Xt*Wz^T + Ht-1*Rz^T + Wbz + Rbz)
//! rt = f(Xt*Wr^T + Ht-1*Rr^T + Wbr + Rbr)
//! ht = g(Xt*Wh^T + (rt (.) Ht-1)*Rh^T + Rbh + Wbh)        linear_before_reset = 0
//! ht = g(Xt*Wh^T + rt (.) (Ht-1*Rh^T + Rbh) + Wbh)        linear_before_reset = 1
//! Ht = (1 - zt) (.) ht + zt (.) Ht-1
//! ```
//!
//! Where ONNX says nothing, this follows onnxruntime: `Y` is 0 at steps
//! `t >= seq_lens[b]`, the reverse direction runs `t = seq_lens[b] - 1` down to 0,
//! and an entry with `seq_lens[b] == 0` gets `Y_h = 0`.
//!
//! The output is one packed buffer (see [`gru_f32`]); its `Y_h` block holds the
//! running state.

use super::FloatWeight;
use super::activation_f32::Activation;
use super::recurrent::{
    Direction, RecurrentDims, SequenceInputs, StateInOutput, StepF32, clip_gate, matvec_acc,
    run_sequences,
};

/// Gates per hidden unit.
const GATES: usize = 3;

/// Constant inputs of a GRU, all directions stacked (ONNX layout and gate order
/// z, r, h).
#[derive(Clone, Copy, Debug)]
pub struct GruWeights<'a, W> {
    /// Input weights `[dirs][3 * hidden][input_size]`.
    pub w: &'a [W],
    /// Recurrence weights `[dirs][3 * hidden][hidden]`.
    pub r: &'a [W],
    /// Bias `[dirs][6 * hidden]`: ONNX `B` as it is, `Wb[zrh]` then `Rb[zrh]`.
    pub bias: Option<&'a [f32]>,
}

/// Attributes of a GRU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GruConfig {
    /// Sizes.
    pub dims: RecurrentDims,
    /// Direction(s).
    pub direction: Direction,
    /// `[f, g]` per direction index (only index 0 is read unless bidirectional).
    pub activations: [[Activation; 2]; 2],
    /// Cell clip: pre-activations are clamped to `[-clip, clip]`.
    pub clip: Option<f32>,
    /// Apply the reset gate after the recurrent linear transform (ONNX
    /// `linear_before_reset = 1`, the PyTorch / cuDNN formulation).
    pub linear_before_reset: bool,
}

impl GruConfig {
    /// ONNX default activations `[f, g]`: Sigmoid, Tanh.
    pub const DEFAULT_ACTIVATIONS: [Activation; 2] = [Activation::Sigmoid, Activation::Tanh];

    /// Default attributes: ONNX activations, no clip, `linear_before_reset = 0`.
    pub const fn new(dims: RecurrentDims, direction: Direction) -> GruConfig {
        GruConfig {
            dims,
            direction,
            activations: [Self::DEFAULT_ACTIVATIONS; 2],
            clip: None,
            linear_before_reset: false,
        }
    }
}

/// Length of [`gru_f32`]'s packed output: `(seq_len + 1) * dirs * batch * hidden`.
pub const fn gru_f32_output_len(dims: &RecurrentDims, direction: Direction) -> usize {
    (dims.seq_len + 1) * dims.block_len(direction)
}

/// Scratch [`gru_f32`] needs, in f32 elements: `4 * hidden`.
pub const fn gru_f32_scratch_len(dims: &RecurrentDims) -> usize {
    (GATES + 1) * dims.hidden
}

/// Runs a GRU over `x[seq_len][batch][input_size]`.
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
/// [`GruWeights`]; `scratch.len() >= gru_f32_scratch_len(&cfg.dims)`.
pub fn gru_f32<W: FloatWeight>(
    cfg: &GruConfig,
    weights: &GruWeights<'_, W>,
    inputs: &SequenceInputs<f32>,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let dims = &cfg.dims;
    let (input_size, hidden) = (dims.input_size, dims.hidden);
    let dirs = cfg.direction.count();
    let rows = GATES * hidden;
    debug_assert_eq!(weights.w.len(), dirs * rows * input_size);
    debug_assert_eq!(weights.r.len(), dirs * rows * hidden);
    debug_assert!(weights.bias.is_none_or(|b| b.len() == dirs * 2 * rows));
    debug_assert!(scratch.len() >= gru_f32_scratch_len(dims));
    let (gates, tmp) = scratch[..rows + hidden].split_at_mut(rows);
    let mut cell = StateInOutput(GruStep {
        cfg,
        weights: *weights,
        gates,
        tmp,
        direction: DirectionWeights {
            acts: cfg.activations[0],
            clip: cfg.clip,
            linear_before_reset: cfg.linear_before_reset,
            w: &[],
            r: &[],
            bias: None,
        },
    });
    run_sequences(&mut cell, dims, cfg.direction, inputs, out);
}

/// A GRU step: all directions' weights, the current one's, and the scratch.
struct GruStep<'a, W> {
    cfg: &'a GruConfig,
    weights: GruWeights<'a, W>,
    /// `3 * hidden` gate pre-activations.
    gates: &'a mut [f32],
    /// `hidden` values.
    tmp: &'a mut [f32],
    direction: DirectionWeights<'a, W>,
}

impl<W: FloatWeight> StepF32 for GruStep<'_, W> {
    const STATES: usize = 1;

    fn set_direction(&mut self, d: usize) {
        let dims = &self.cfg.dims;
        let rows = GATES * dims.hidden;
        let weights = &self.weights;
        self.direction.acts = self.cfg.activations[d];
        self.direction.w = &weights.w[d * rows * dims.input_size..][..rows * dims.input_size];
        self.direction.r = &weights.r[d * rows * dims.hidden..][..rows * dims.hidden];
        self.direction.bias = weights.bias.map(|b| &b[d * 2 * rows..][..2 * rows]);
    }

    #[inline]
    fn step(&mut self, x_t: &[f32], h: &mut [f32], _: &mut [f32]) {
        self.direction.step(x_t, h, self.gates, self.tmp);
    }
}

/// One direction's weights and attributes.
struct DirectionWeights<'a, W> {
    acts: [Activation; 2],
    clip: Option<f32>,
    linear_before_reset: bool,
    /// `[3 * hidden][input_size]`.
    w: &'a [W],
    /// `[3 * hidden][hidden]`.
    r: &'a [W],
    /// `[6 * hidden]`: `Wb[zrh]`, `Rb[zrh]`.
    bias: Option<&'a [f32]>,
}

impl<W: FloatWeight> DirectionWeights<'_, W> {
    /// One time step: `h` goes from `Ht-1` to `Ht`. `gates` (`3 * hidden`) and
    /// `tmp` (`hidden`) are scratch.
    #[inline]
    fn step(&self, x_t: &[f32], h: &mut [f32], gates: &mut [f32], tmp: &mut [f32]) {
        let hidden = h.len();
        let [act_f, act_g] = self.acts;
        let (r_zr, r_h) = self.r.split_at(2 * hidden * hidden);
        // gates = Wb + Xt*W^T for z, r and h.
        match self.bias {
            Some(bias) => gates.copy_from_slice(&bias[..3 * hidden]),
            None => gates.fill(0.0),
        }
        matvec_acc(self.w, x_t, gates);
        let (g_zr, g_h) = gates.split_at_mut(2 * hidden);
        // z and r: + Rb + Ht-1*R^T.
        if let Some(bias) = self.bias {
            for (g, &rb) in g_zr.iter_mut().zip(&bias[3 * hidden..5 * hidden]) {
                *g += rb;
            }
        }
        matvec_acc(r_zr, h, g_zr);
        let (g_z, g_r) = g_zr.split_at_mut(hidden);
        for g in g_r.iter_mut() {
            *g = act_f.apply(clip_gate(*g, self.clip));
        }
        let rbh = self.bias.map(|bias| &bias[5 * hidden..]);
        if self.linear_before_reset {
            // h += rt (.) (Ht-1*Rh^T + Rbh)
            match rbh {
                Some(rbh) => tmp.copy_from_slice(rbh),
                None => tmp.fill(0.0),
            }
            matvec_acc(r_h, h, tmp);
            for ((g, &rt), &lin) in g_h.iter_mut().zip(&*g_r).zip(&*tmp) {
                *g += rt * lin;
            }
        } else {
            // h += (rt (.) Ht-1)*Rh^T + Rbh
            for ((t, &rt), &hv) in tmp.iter_mut().zip(&*g_r).zip(&*h) {
                *t = rt * hv;
            }
            if let Some(rbh) = rbh {
                for (g, &b) in g_h.iter_mut().zip(rbh) {
                    *g += b;
                }
            }
            matvec_acc(r_h, tmp, g_h);
        }
        for ((hv, &pre_z), &pre_h) in h.iter_mut().zip(&*g_z).zip(&*g_h) {
            let z = act_f.apply(clip_gate(pre_z, self.clip));
            let ht = act_g.apply(clip_gate(pre_h, self.clip));
            *hv = (1.0 - z) * ht + z * *hv;
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

    /// One GRU problem with f32 weights (converted to f16 where a test asks).
    struct Case {
        cfg: GruConfig,
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
            let weights = GruWeights {
                w: &w,
                r: &r,
                bias: self.bias.as_deref(),
            };
            let dims = &self.cfg.dims;
            let mut out = vec![f32::NAN; gru_f32_output_len(dims, self.cfg.direction)];
            let mut scratch = vec![f32::NAN; gru_f32_scratch_len(dims)];
            gru_f32(
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

        /// Reference output in f64, straight from the ONNX equations. The reverse
        /// direction is computed the way onnxruntime does it: reverse each
        /// sequence within its length, run forward, reverse the outputs back.
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
                let [fa, ga] = cfg.activations[d];
                let f = |v: f64| act64(fa, clip64(v, cfg.clip));
                let g = |v: f64| act64(ga, clip64(v, cfg.clip));
                // Gate `k` (0 = z, 1 = r, 2 = h), unit `j`: row `k * nh + j`.
                let wrow = |k: usize, j: usize| &w[(d * 3 * nh + k * nh + j) * ni..][..ni];
                let rrow = |k: usize, j: usize| &r[(d * 3 * nh + k * nh + j) * nh..][..nh];
                let wb = |k: usize, j: usize| {
                    self.bias
                        .as_ref()
                        .map_or(0.0, |b| b[d * 6 * nh + k * nh + j] as f64)
                };
                let rb = |k: usize, j: usize| {
                    self.bias
                        .as_ref()
                        .map_or(0.0, |b| b[d * 6 * nh + (3 + k) * nh + j] as f64)
                };
                let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
                for b in 0..batch {
                    let len = self.seq_lens.as_ref().map_or(seq_len, |l| l[b] as usize);
                    let mut h: Vec<f64> = (0..nh)
                        .map(|j| {
                            self.initial_h
                                .as_ref()
                                .map_or(0.0, |v| v[(d * batch + b) * nh + j] as f64)
                        })
                        .collect();
                    let xs: Vec<Vec<f64>> = (0..len)
                        .map(|s| if reverse { len - 1 - s } else { s })
                        .map(|t| {
                            (0..ni)
                                .map(|i| self.x[(t * batch + b) * ni + i] as f64)
                                .collect()
                        })
                        .collect();
                    let mut hs: Vec<Vec<f64>> = Vec::new();
                    for xt in &xs {
                        let zt: Vec<f64> = (0..nh)
                            .map(|j| {
                                f(dot(xt, wrow(0, j)) + dot(&h, rrow(0, j)) + wb(0, j) + rb(0, j))
                            })
                            .collect();
                        let rt: Vec<f64> = (0..nh)
                            .map(|j| {
                                f(dot(xt, wrow(1, j)) + dot(&h, rrow(1, j)) + wb(1, j) + rb(1, j))
                            })
                            .collect();
                        let rh: Vec<f64> = (0..nh).map(|j| rt[j] * h[j]).collect();
                        let ht: Vec<f64> = (0..nh)
                            .map(|j| {
                                let xw = dot(xt, wrow(2, j));
                                if cfg.linear_before_reset {
                                    g(xw + rt[j] * (dot(&h, rrow(2, j)) + rb(2, j)) + wb(2, j))
                                } else {
                                    g(xw + dot(&rh, rrow(2, j)) + rb(2, j) + wb(2, j))
                                }
                            })
                            .collect();
                        h = (0..nh)
                            .map(|j| (1.0 - zt[j]) * ht[j] + zt[j] * h[j])
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
    fn onnx_reference_both_linear_before_reset() {
        // Inputs from `pattern` (the same formula in the generating script).
        // Expected Y from onnx 1.22.0's onnx.reference.ReferenceEvaluator
        // (one-node GRU, opset 14, with B and initial_h); Y_h is Y's last step.
        let expected: [(bool, [f64; 12]); 2] = [
            (
                false,
                [
                    0.4995841383934021,
                    -0.1355333924293518,
                    0.07881245017051697,
                    0.15343190729618073,
                    0.4915042817592621,
                    -0.26836735010147095,
                    0.2562633752822876,
                    -0.03735623508691788,
                    0.3462120294570923,
                    -0.4803285002708435,
                    0.19342797994613647,
                    -0.3129330575466156,
                ],
            ),
            (
                true,
                [
                    0.4987586438655853,
                    -0.07657111436128616,
                    0.07548101246356964,
                    0.23343947529792786,
                    0.4921124279499054,
                    -0.1660863608121872,
                    0.2544797360897064,
                    0.09647113084793091,
                    0.3484116196632385,
                    -0.36303630471229553,
                    0.19382327795028687,
                    -0.1604038029909134,
                ],
            ),
        ];
        for (linear_before_reset, y) in expected {
            let mut cfg = GruConfig::new(dims(3, 2, 3, 2), Direction::Forward);
            cfg.linear_before_reset = linear_before_reset;
            let case = Case {
                cfg,
                x: pattern(18, 1),
                w: pattern(18, 2),
                r: pattern(12, 3),
                bias: Some(pattern(12, 4)),
                seq_lens: None,
                initial_h: Some(pattern(4, 7)),
            };
            let out = case.run(|v| v);
            assert_close(&out[..12], &y, 1e-5, "Y");
            assert_close(&out[12..16], &y[8..], 1e-5, "Y_h");
            case.check("onnx reference case");
        }
    }

    #[test]
    fn seq_lens_zero_and_short() {
        // Entry 0 runs 2 of 3 steps, entry 1 none: Y is 0 past each length, entry 1's
        // final state is 0 (onnxruntime), entry 0's Y_h is its last computed Y.
        let d = dims(3, 2, 2, 2);
        for direction in [Direction::Forward, Direction::Reverse] {
            let case = Case {
                cfg: GruConfig::new(d, direction),
                x: pattern(12, 1),
                w: pattern(12, 2),
                r: pattern(12, 3),
                bias: Some(pattern(12, 4)),
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
        let mut rng = XorShift(0x96d_a11c_e0de_0002);
        // The gate activation f is one of the first two (values in [0, 1]): an
        // unbounded gate lets the recurrence amplify rounding past any fixed tolerance.
        let acts = [
            Activation::Sigmoid,
            Activation::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            Activation::Tanh,
            Activation::Relu,
            Activation::LeakyRelu { alpha: 0.1 },
        ];
        // Every combination of direction and the six option bits, twice.
        for iter in 0..3 * 64 * 2 {
            let direction = [
                Direction::Forward,
                Direction::Reverse,
                Direction::Bidirectional,
            ][iter % 3];
            let flags = iter / 3;
            let bit = |i: usize| flags & (1 << i) != 0;
            let d = dims(
                1 + rng.below(4),
                1 + rng.below(3),
                1 + rng.below(5),
                1 + rng.below(9),
            );
            let dirs = direction.count();
            let nh = d.hidden;
            let mut cfg = GruConfig::new(d, direction);
            if bit(5) {
                cfg.activations = core::array::from_fn(|_| {
                    core::array::from_fn(|k| acts[rng.below(if k == 0 { 2 } else { acts.len() })])
                });
            }
            cfg.clip = bit(3).then_some(0.7);
            cfg.linear_before_reset = bit(4);
            let case = Case {
                cfg,
                x: random(&mut rng, d.input_len(), 2.0),
                w: random(&mut rng, dirs * 3 * nh * d.input_size, 1.0),
                r: random(&mut rng, dirs * 3 * nh * nh, 1.0),
                bias: bit(0).then(|| random(&mut rng, dirs * 6 * nh, 1.0)),
                seq_lens: bit(2).then(|| random_seq_lens(&mut rng, d.batch, d.seq_len)),
                initial_h: bit(1).then(|| random(&mut rng, dirs * d.batch * nh, 1.0)),
            };
            case.check(&std::format!("iter {iter}: {:?}", case.cfg));
        }
    }
}
