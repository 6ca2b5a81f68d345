//! Float LSTM (ONNX `LSTM`, opset 14, time-major `layout = 0`), weights f32 or f16.
//!
//! For each direction, batch entry and valid time step, with the gates in ONNX
//! order i, o, f, c and `clip` applied to every pre-activation:
//!
//! ```text
//! it = f(Xt*Wi^T + Ht-1*Ri^T + Pi (.) Ct-1 + Bi)
//! ft = f(Xt*Wf^T + Ht-1*Rf^T + Pf (.) Ct-1 + Bf)     (1 - it with input_forget)
//! ct = g(Xt*Wc^T + Ht-1*Rc^T + Bc)
//! Ct = ft (.) Ct-1 + it (.) ct
//! ot = f(Xt*Wo^T + Ht-1*Ro^T + Po (.) Ct + Bo)
//! Ht = ot (.) h(Ct)
//! ```
//!
//! where `B = Wb + Rb` (summed by the converter). Where ONNX says nothing, this
//! follows onnxruntime: `Y` is 0 at steps `t >= seq_lens[b]`, the reverse
//! direction runs `t = seq_lens[b] - 1` down to 0, `Ct` is not clipped before
//! `h`, and an entry with `seq_lens[b] == 0` gets `Y_h = Y_c = 0`.
//!
//! The output is one packed buffer (see [`lstm_f32`]); its `Y_h` / `Y_c` blocks
//! hold the running state, so the only scratch is one gate vector.

use super::FloatWeight;
use super::activation_f32::Activation;
use super::recurrent::{
    Direction, RecurrentDims, SequenceInputs, StateInOutput, StepF32, clip_gate, matvec_acc,
    run_sequences,
};

/// Gates per hidden unit.
const GATES: usize = 4;

/// Constant inputs of an LSTM, all directions stacked (ONNX layout and gate
/// order i, o, f, c).
#[derive(Clone, Copy, Debug)]
pub struct LstmWeights<'a, W> {
    /// Input weights `[dirs][4 * hidden][input_size]`.
    pub w: &'a [W],
    /// Recurrence weights `[dirs][4 * hidden][hidden]`.
    pub r: &'a [W],
    /// Bias `[dirs][4 * hidden]`: ONNX `Wb + Rb`, already summed.
    pub bias: Option<&'a [f32]>,
    /// Peephole weights `[dirs][3 * hidden]` (order i, o, f).
    pub peephole: Option<&'a [f32]>,
}

/// Attributes of an LSTM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmConfig {
    /// Sizes.
    pub dims: RecurrentDims,
    /// Direction(s).
    pub direction: Direction,
    /// `[f, g, h]` per direction index (only index 0 is read unless bidirectional).
    pub activations: [[Activation; 3]; 2],
    /// Cell clip: pre-activations are clamped to `[-clip, clip]`.
    pub clip: Option<f32>,
    /// Couple the input and forget gates: `ft = 1 - it`.
    pub input_forget: bool,
}

impl LstmConfig {
    /// ONNX default activations `[f, g, h]`: Sigmoid, Tanh, Tanh.
    pub const DEFAULT_ACTIVATIONS: [Activation; 3] =
        [Activation::Sigmoid, Activation::Tanh, Activation::Tanh];

    /// Default attributes: ONNX activations, no clip, no input-forget coupling.
    pub const fn new(dims: RecurrentDims, direction: Direction) -> LstmConfig {
        LstmConfig {
            dims,
            direction,
            activations: [Self::DEFAULT_ACTIVATIONS; 2],
            clip: None,
            input_forget: false,
        }
    }
}

/// Length of [`lstm_f32`]'s packed output: `(seq_len + 2) * dirs * batch * hidden`.
pub const fn lstm_f32_output_len(dims: &RecurrentDims, direction: Direction) -> usize {
    (dims.seq_len + 2) * dims.block_len(direction)
}

/// Scratch [`lstm_f32`] needs, in f32 elements: `4 * hidden`.
pub const fn lstm_f32_scratch_len(dims: &RecurrentDims) -> usize {
    GATES * dims.hidden
}

/// Runs an LSTM over `x[seq_len][batch][input_size]`.
///
/// `out` is `[seq_len + 2][dirs][batch][hidden]`: blocks `0..seq_len` are ONNX
/// `Y` (0 where `t >= seq_lens[b]`), block `seq_len` is `Y_h` (the hidden state
/// after the last step of each entry; for the reverse direction, after `t = 0`)
/// and block `seq_len + 1` is `Y_c`. Bidirectional stores forward at direction
/// index 0 and reverse at 1.
///
/// `seq_lens` (`[batch]`, each in `0..=seq_len`) defaults to `seq_len`;
/// `initial_h` / `initial_c` (`[dirs][batch][hidden]`) default to zeros.
///
/// Preconditions (debug-asserted): the slice lengths above and in
/// [`LstmWeights`]; `scratch.len() >= lstm_f32_scratch_len(&cfg.dims)`.
pub fn lstm_f32<W: FloatWeight>(
    cfg: &LstmConfig,
    weights: &LstmWeights<'_, W>,
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
    debug_assert!(weights.bias.is_none_or(|b| b.len() == dirs * rows));
    debug_assert!(
        weights
            .peephole
            .is_none_or(|p| p.len() == dirs * 3 * hidden)
    );
    debug_assert!(scratch.len() >= lstm_f32_scratch_len(dims));
    let mut cell = StateInOutput(LstmStep {
        cfg,
        weights: *weights,
        gates: &mut scratch[..rows],
        w: &[],
        r: &[],
        bias: None,
        update: Update {
            acts: cfg.activations[0],
            clip: cfg.clip,
            input_forget: cfg.input_forget,
            peephole: None,
        },
    });
    run_sequences(&mut cell, dims, cfg.direction, inputs, out);
}

/// One direction's weights and the step's scratch.
struct LstmStep<'a, W> {
    cfg: &'a LstmConfig,
    weights: LstmWeights<'a, W>,
    /// `4 * hidden` gate pre-activations.
    gates: &'a mut [f32],
    /// This direction's `[4 * hidden][input_size]` input weights.
    w: &'a [W],
    /// This direction's `[4 * hidden][hidden]` recurrence weights.
    r: &'a [W],
    /// This direction's bias.
    bias: Option<&'a [f32]>,
    /// This direction's elementwise part.
    update: Update<'a>,
}

impl<W: FloatWeight> StepF32 for LstmStep<'_, W> {
    const STATES: usize = 2;

    fn set_direction(&mut self, d: usize) {
        let dims = &self.cfg.dims;
        let (hidden, rows) = (dims.hidden, GATES * dims.hidden);
        let weights = &self.weights;
        self.w = &weights.w[d * rows * dims.input_size..][..rows * dims.input_size];
        self.r = &weights.r[d * rows * hidden..][..rows * hidden];
        self.bias = weights.bias.map(|b| &b[d * rows..][..rows]);
        self.update.acts = self.cfg.activations[d];
        self.update.peephole = weights.peephole.map(|p| &p[d * 3 * hidden..][..3 * hidden]);
    }

    #[inline]
    fn step(&mut self, x_t: &[f32], h: &mut [f32], c: &mut [f32]) {
        match self.bias {
            Some(bias) => self.gates.copy_from_slice(bias),
            None => self.gates.fill(0.0),
        }
        matvec_acc(self.w, x_t, self.gates);
        matvec_acc(self.r, h, self.gates);
        self.update.apply(self.gates, h, c);
    }
}

/// The elementwise part of one LSTM step in one direction.
struct Update<'a> {
    acts: [Activation; 3],
    clip: Option<f32>,
    input_forget: bool,
    peephole: Option<&'a [f32]>,
}

impl Update<'_> {
    /// Turns the gate pre-activations `gates` (`[i | o | f | c]`, without
    /// peepholes) into the new states `h` and `c` (read as `Ht-1`, `Ct-1`).
    #[inline]
    fn apply(&self, gates: &[f32], h: &mut [f32], c: &mut [f32]) {
        let hidden = h.len();
        let [act_f, act_g, act_h] = self.acts;
        let (gi, rest) = gates.split_at(hidden);
        let (go, rest) = rest.split_at(hidden);
        let (gf, gc) = rest.split_at(hidden);
        for j in 0..hidden {
            let c_prev = c[j];
            let (mut pre_i, mut pre_f) = (gi[j], gf[j]);
            if let Some(p) = self.peephole {
                pre_i += p[j] * c_prev;
                pre_f += p[2 * hidden + j] * c_prev;
            }
            let i = act_f.apply(clip_gate(pre_i, self.clip));
            let f = if self.input_forget {
                1.0 - i
            } else {
                act_f.apply(clip_gate(pre_f, self.clip))
            };
            let g = act_g.apply(clip_gate(gc[j], self.clip));
            let c_new = c_prev * f + i * g;
            let mut pre_o = go[j];
            if let Some(p) = self.peephole {
                pre_o += p[hidden + j] * c_new;
            }
            let o = act_f.apply(clip_gate(pre_o, self.clip));
            c[j] = c_new;
            h[j] = o * act_h.apply(c_new);
        }
    }
}

#[cfg(test)]
mod tests;
