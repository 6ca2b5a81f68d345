//! The float LSTM against an f64 model of the ONNX equations and ONNX's reference outputs.
extern crate std;
use super::*;
use half::f16;
use std::vec;
use std::vec::Vec;

use super::super::recurrent::test_support::{
    act64, assert_close, clip64, pattern, random, random_seq_lens,
};
use super::super::test_rng::XorShift;

/// One LSTM problem with f32 weights (converted to f16 where a test asks).
struct Case {
    cfg: LstmConfig,
    x: Vec<f32>,
    w: Vec<f32>,
    r: Vec<f32>,
    bias: Option<Vec<f32>>,
    peephole: Option<Vec<f32>>,
    seq_lens: Option<Vec<i32>>,
    initial_h: Option<Vec<f32>>,
    initial_c: Option<Vec<f32>>,
}

impl Case {
    /// Runs the kernel with weights of type `W`; `out` and scratch start as NaN
    /// so that an element the kernel forgets to write shows.
    fn run<W: FloatWeight>(&self, convert: impl Fn(f32) -> W) -> Vec<f32> {
        let w: Vec<W> = self.w.iter().map(|&v| convert(v)).collect();
        let r: Vec<W> = self.r.iter().map(|&v| convert(v)).collect();
        let weights = LstmWeights {
            w: &w,
            r: &r,
            bias: self.bias.as_deref(),
            peephole: self.peephole.as_deref(),
        };
        let dims = &self.cfg.dims;
        let mut out = vec![f32::NAN; lstm_f32_output_len(dims, self.cfg.direction)];
        let mut scratch = vec![f32::NAN; lstm_f32_scratch_len(dims)];
        lstm_f32(
            &self.cfg,
            &weights,
            &SequenceInputs {
                x: &self.x,
                seq_lens: self.seq_lens.as_deref(),
                initial_h: self.initial_h.as_deref(),
                initial_c: self.initial_c.as_deref(),
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
        let block = dirs * batch * nh;
        let mut out = vec![0.0f64; (seq_len + 2) * block];
        for d in 0..dirs {
            let reverse = cfg.direction == Direction::Reverse || d == 1;
            let [fa, ga, ha] = cfg.activations[d];
            let f = |v: f64| act64(fa, clip64(v, cfg.clip));
            let g = |v: f64| act64(ga, clip64(v, cfg.clip));
            let h_act = |v: f64| act64(ha, v);
            // Gate `k` (0 = i, 1 = o, 2 = f, 3 = c), unit `j`: row `k * nh + j`.
            let wrow = |k: usize, j: usize| &w[(d * 4 * nh + k * nh + j) * ni..][..ni];
            let rrow = |k: usize, j: usize| &r[(d * 4 * nh + k * nh + j) * nh..][..nh];
            let bias = |k: usize, j: usize| {
                self.bias
                    .as_ref()
                    .map_or(0.0, |b| b[d * 4 * nh + k * nh + j] as f64)
            };
            let peep = |k: usize, j: usize| {
                self.peephole
                    .as_ref()
                    .map_or(0.0, |p| p[d * 3 * nh + k * nh + j] as f64)
            };
            for b in 0..batch {
                let len = self.seq_lens.as_ref().map_or(seq_len, |l| l[b] as usize);
                let init = |s: &Option<Vec<f32>>| -> Vec<f64> {
                    (0..nh)
                        .map(|j| {
                            s.as_ref()
                                .map_or(0.0, |v| v[(d * batch + b) * nh + j] as f64)
                        })
                        .collect()
                };
                let (mut h, mut c) = (init(&self.initial_h), init(&self.initial_c));
                // The input sequence in processing order.
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
                    let lin = |k: usize, j: usize| {
                        let xw: f64 = xt.iter().zip(wrow(k, j)).map(|(a, b)| a * b).sum();
                        let hr: f64 = h.iter().zip(rrow(k, j)).map(|(a, b)| a * b).sum();
                        bias(k, j) + xw + hr
                    };
                    let mut c_new = vec![0.0; nh];
                    let mut h_new = vec![0.0; nh];
                    for j in 0..nh {
                        let it = f(lin(0, j) + peep(0, j) * c[j]);
                        let ft = if cfg.input_forget {
                            1.0 - it
                        } else {
                            f(lin(2, j) + peep(2, j) * c[j])
                        };
                        let ct = g(lin(3, j));
                        c_new[j] = ft * c[j] + it * ct;
                        let ot = f(lin(1, j) + peep(1, j) * c_new[j]);
                        h_new[j] = ot * h_act(c_new[j]);
                    }
                    h = h_new;
                    c = c_new;
                    hs.push(h.clone());
                }
                for (s, hv) in hs.iter().enumerate() {
                    let t = if reverse { len - 1 - s } else { s };
                    let at = ((t * dirs + d) * batch + b) * nh;
                    out[at..at + nh].copy_from_slice(hv);
                }
                if len == 0 {
                    h = vec![0.0; nh];
                    c = vec![0.0; nh];
                }
                let at = ((seq_len * dirs + d) * batch + b) * nh;
                out[at..at + nh].copy_from_slice(&h);
                out[at + block..at + block + nh].copy_from_slice(&c);
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
fn onnx_test_lstm_defaults() {
    // ONNX backend test `test_lstm_defaults`: x = [[1, 2]], [[3, 4]], [[5, 6]],
    // hidden 3, every weight 0.1. Expected Y from onnx 1.22.0's
    // onnx.reference.ReferenceEvaluator.
    let cfg = LstmConfig::new(dims(3, 1, 2, 3), Direction::Forward);
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let w = [0.1f32; 12 * 2];
    let r = [0.1f32; 12 * 3];
    let weights = LstmWeights {
        w: &w,
        r: &r,
        bias: None,
        peephole: None,
    };
    let mut out = [f32::NAN; 15];
    let mut scratch = [0.0f32; 12];
    lstm_f32(
        &cfg,
        &weights,
        &SequenceInputs {
            x: &x,
            seq_lens: None,
            initial_h: None,
            initial_c: None,
        },
        &mut out,
        &mut scratch,
    );
    let y = [0.0952412039f64, 0.328690469, 0.600429893];
    for t in 0..3 {
        assert_close(&out[t * 3..t * 3 + 3], &[y[t]; 3], 1e-5, "Y");
    }
    assert_close(&out[9..12], &[y[2]; 3], 1e-5, "Y_h");
    // Y_c = C_2, from which Y_h = o * tanh(C_2): both checked by the reference.
    let case = Case {
        cfg,
        x: x.to_vec(),
        w: w.to_vec(),
        r: r.to_vec(),
        bias: None,
        peephole: None,
        seq_lens: None,
        initial_h: None,
        initial_c: None,
    };
    case.check("defaults");
}

#[test]
fn onnx_reference_bias_peepholes_initial_states() {
    // Inputs from `pattern` (the same formula in the generating script), bias
    // = Wb + Rb of ONNX B = pattern(16, 4). Expected Y and Y_h from onnx
    // 1.22.0's onnx.reference.ReferenceEvaluator (one-node LSTM, opset 14).
    let d = dims(3, 2, 3, 2);
    let onnx_b = pattern(16, 4);
    let bias: Vec<f32> = (0..8).map(|k| onnx_b[k] + onnx_b[k + 8]).collect();
    let case = Case {
        cfg: LstmConfig::new(d, Direction::Forward),
        x: pattern(18, 1),
        w: pattern(24, 2),
        r: pattern(16, 3),
        bias: Some(bias),
        peephole: Some(pattern(6, 5)),
        seq_lens: None,
        initial_h: Some(pattern(4, 7)),
        initial_c: Some(pattern(4, 8)),
    };
    let y = [
        -0.06287205964326859,
        0.12633788585662842,
        0.00754211749881506,
        -0.05461423099040985,
        -0.017062105238437653,
        0.08311008661985397,
        0.0515950582921505,
        0.0020152695942670107,
        -0.03602287173271179,
        0.10720058530569077,
        0.013966080732643604,
        0.08726860582828522,
    ];
    let out = case.run(|v| v);
    assert_close(&out[..12], &y, 1e-5, "Y");
    assert_close(&out[12..16], &y[8..], 1e-5, "Y_h");
    case.check("onnx reference case");
}

#[test]
fn seq_lens_zero_and_short() {
    // Entry 0 runs 2 of 3 steps, entry 1 none: Y is 0 past each length, entry 1's
    // final states are 0 (onnxruntime), entry 0's Y_h is its Y at t = 1.
    let d = dims(3, 2, 2, 2);
    for direction in [Direction::Forward, Direction::Reverse] {
        let case = Case {
            cfg: LstmConfig::new(d, direction),
            x: pattern(12, 1),
            w: pattern(16, 2),
            r: pattern(16, 3),
            bias: Some(pattern(8, 4)),
            peephole: None,
            seq_lens: Some(vec![2, 0]),
            initial_h: Some(pattern(4, 7)),
            initial_c: Some(pattern(4, 8)),
        };
        let out = case.run(|v| v);
        assert_eq!(&out[2..4], &[0.0, 0.0]); // t = 0, entry 1
        assert_eq!(&out[6..8], &[0.0, 0.0]); // t = 1, entry 1
        assert_eq!(&out[8..12], &[0.0; 4]); // t = 2
        assert_eq!(&out[14..16], &[0.0, 0.0]); // Y_h, entry 1
        assert_eq!(&out[18..20], &[0.0, 0.0]); // Y_c, entry 1
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
    let mut rng = XorShift(0x1f57_a11c_e0de_0001);
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
    // Every combination of direction and the seven option bits (bias, peepholes,
    // initial states, seq_lens, clip, input_forget, activations) once.
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
        let mut cfg = LstmConfig::new(d, direction);
        if bit(6) {
            cfg.activations = core::array::from_fn(|_| {
                core::array::from_fn(|k| acts[rng.below(if k == 0 { 2 } else { acts.len() })])
            });
        }
        cfg.clip = bit(4).then_some(0.7);
        cfg.input_forget = bit(5);
        let block = dirs * d.batch * nh;
        let case = Case {
            cfg,
            x: random(&mut rng, d.input_len(), 2.0),
            w: random(&mut rng, dirs * 4 * nh * d.input_size, 1.0),
            r: random(&mut rng, dirs * 4 * nh * nh, 1.0),
            bias: bit(0).then(|| random(&mut rng, dirs * 4 * nh, 1.0)),
            peephole: bit(1).then(|| random(&mut rng, dirs * 3 * nh, 1.0)),
            seq_lens: bit(3).then(|| random_seq_lens(&mut rng, d.batch, d.seq_len)),
            initial_h: bit(2).then(|| random(&mut rng, block, 1.0)),
            initial_c: bit(2).then(|| random(&mut rng, block, 1.0)),
        };
        case.check(&std::format!("iter {iter}: {:?}", case.cfg));
    }
}

#[test]
fn bidirectional_is_forward_and_reverse() {
    // Direction 0 of a bidirectional run equals a forward run with the first
    // half of every input, direction 1 a reverse run with the second half.
    let mut rng = XorShift(0x0b1d_0000_0000_0007);
    let d = dims(4, 2, 3, 5);
    let nh = d.hidden;
    let block = 2 * d.batch * nh;
    let mut cfg = LstmConfig::new(d, Direction::Bidirectional);
    cfg.clip = Some(1.0);
    cfg.activations[1] = [
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Activation::Tanh,
        Activation::Relu,
    ];
    let both = Case {
        cfg,
        x: random(&mut rng, d.input_len(), 2.0),
        w: random(&mut rng, 2 * 4 * nh * d.input_size, 1.0),
        r: random(&mut rng, 2 * 4 * nh * nh, 1.0),
        bias: Some(random(&mut rng, 2 * 4 * nh, 1.0)),
        peephole: Some(random(&mut rng, 2 * 3 * nh, 1.0)),
        seq_lens: Some(vec![3, 4]),
        initial_h: Some(random(&mut rng, block, 1.0)),
        initial_c: Some(random(&mut rng, block, 1.0)),
    };
    let out = both.run(|v| v);
    for (dir, direction) in [Direction::Forward, Direction::Reverse]
        .into_iter()
        .enumerate()
    {
        let half = |v: &Option<Vec<f32>>| {
            v.as_ref()
                .map(|v| v[dir * v.len() / 2..][..v.len() / 2].to_vec())
        };
        let mut one_cfg = LstmConfig::new(d, direction);
        one_cfg.clip = cfg.clip;
        one_cfg.activations[0] = cfg.activations[dir];
        let one = Case {
            cfg: one_cfg,
            x: both.x.clone(),
            w: half(&Some(both.w.clone())).unwrap(),
            r: half(&Some(both.r.clone())).unwrap(),
            bias: half(&both.bias),
            peephole: half(&both.peephole),
            seq_lens: both.seq_lens.clone(),
            initial_h: half(&both.initial_h),
            initial_c: half(&both.initial_c),
        };
        let single = one.run(|v| v);
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
