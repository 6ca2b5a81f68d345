//! Lowering of LSTM / GRU / RNN nodes: the f32 cell (weights f32 or f16) or the
//! int8 cell with its requantization constants and gate tables (FORMAT.md,
//! "Quantized recurrent cells").

use tern_runtime::format::{DType, NONE_INDEX, Opcode};
use tern_runtime::ops;
use tern_runtime::quant::Requant;

use super::{Lowering, f32_bytes, i32_bytes, quantize_rows_s8};
use crate::convert::ConvertError;
use crate::convert::file::{OpDesc, TensorQuant};
use crate::convert::graph::{Node, Recurrent, RecurrentKind};

/// The finest LSTM cell-state shift (scale `2^-cs`, range `±2^(15 - cs)`,
/// `cs` in 8..=15) whose range covers twice `max_abs` (the calibrated largest
/// `|c|` seen in `Y_c`, which shows the final states only: the factor 2 leaves
/// headroom for larger intermediate states; one bit of resolution costs nothing
/// measurable).
pub fn lstm_cell_shift(max_abs: f32) -> u32 {
    (8..=15u32)
        .rev()
        .find(|&cs| (1u32 << (15 - cs)) as f32 >= 2.0 * max_abs)
        .unwrap_or(8)
}

impl Lowering<'_> {
    /// LSTM / GRU / RNN: the int8 cell where
    /// [`recurrent_int8_ok`](super::recurrent_int8_ok) allows it in an int8 node
    /// (see "Quantized recurrent cells" in FORMAT.md), else f32 compute with
    /// weights f32 or f16.
    pub(super) fn recurrent(
        &mut self,
        node: &Node,
        r: &Recurrent,
        op: &mut OpDesc,
    ) -> Result<(), ConvertError> {
        use tern_runtime::kernels::{
            gru_f32, gru_s8, lstm_f32, lstm_s8, recurrent::RecurrentDims, rnn_f32, rnn_s8,
        };
        let x = node.inputs[0]
            .ok_or_else(|| ConvertError::Invalid(format!("node '{}' has no input", node.name)))?;
        let xs = self.g.values[x].shape.clone();
        let dims = RecurrentDims {
            seq_len: xs[0],
            batch: xs[1],
            input_size: xs[2],
            hidden: r.hidden,
        };
        let int8 = self.int8(node);
        let cell_shift = if int8 && r.kind == RecurrentKind::Lstm {
            // Y_c's calibrated range, widened by a constant initial_c.
            let (min, max) = self.ranges.get(&node.output).copied().ok_or_else(|| {
                ConvertError::Invalid(format!("no calibration range for '{}'", node.name))
            })?;
            let c0 = node
                .inputs
                .get(6)
                .copied()
                .flatten()
                .and_then(|v| self.g.const_f32(v))
                .unwrap_or_default();
            let max_abs = c0
                .iter()
                .fold(min.abs().max(max.abs()), |m, v| m.max(v.abs()));
            lstm_cell_shift(max_abs)
        } else {
            0
        };
        let acts = |k: usize| -> [tern_runtime::kernels::activation_f32::Activation; 3] {
            let g = r.kind.activations();
            core::array::from_fn(|i| {
                r.activations[(k * g + i.min(g - 1)).min(r.activations.len() - 1)]
            })
        };
        let (a0, a1) = (acts(0), acts(1));
        let (opcode, scratch) = match r.kind {
            RecurrentKind::Lstm => {
                ops::RecurrentParams::<3> {
                    direction: r.direction,
                    hidden: r.hidden,
                    clip: r.clip,
                    flag: r.flag,
                    activations: [a0, a1],
                    cell_shift,
                }
                .encode(&mut op.params);
                let scratch = if int8 {
                    lstm_s8::lstm_s8_scratch_len(&dims)
                } else {
                    lstm_f32::lstm_f32_scratch_len(&dims)
                };
                (Opcode::Lstm, scratch)
            }
            RecurrentKind::Gru => {
                ops::RecurrentParams::<2> {
                    direction: r.direction,
                    hidden: r.hidden,
                    clip: r.clip,
                    flag: r.flag,
                    activations: [[a0[0], a0[1]], [a1[0], a1[1]]],
                    cell_shift: 0,
                }
                .encode(&mut op.params);
                let scratch = if int8 {
                    gru_s8::gru_s8_scratch_len(&dims)
                } else {
                    gru_f32::gru_f32_scratch_len(&dims)
                };
                (Opcode::Gru, scratch)
            }
            RecurrentKind::Rnn => {
                ops::RecurrentParams::<1> {
                    direction: r.direction,
                    hidden: r.hidden,
                    clip: r.clip,
                    flag: false,
                    activations: [[a0[0]], [a1[0]]],
                    cell_shift: 0,
                }
                .encode(&mut op.params);
                let scratch = if int8 {
                    rnn_s8::rnn_s8_scratch_len(&dims)
                } else {
                    rnn_f32::rnn_f32_scratch_len(&dims)
                };
                (Opcode::Rnn, scratch)
            }
        };
        op.opcode = opcode;
        op.scratch = self.scratch_f32(&node.name, scratch);
        if int8 {
            op.inputs = self.recurrent_s8_inputs(node, r, x)?;
            return Ok(());
        }
        op.inputs = vec![self.operand(x, DType::F32)?];
        for (k, slot) in node.inputs.iter().enumerate().skip(1) {
            op.inputs.push(match (k, slot) {
                (_, None) => NONE_INDEX,
                (1 | 2, Some(w)) => self.float_weight(*w)?,
                (4, Some(v)) => self.operand(*v, DType::I32)?,
                (_, Some(v)) => self.operand(*v, DType::F32)?,
            });
        }
        Ok(())
    }

    /// The 10 inputs of an int8 recurrent op: X (i8), W and R (i8 per row,
    /// `[dirs * gates * hidden, cols]`), B (i32 Q3.12), sequence_lens,
    /// initial_h, initial_c (f32), P (absent), requant (i32 `[rows][4]`: x and h
    /// multiplier/shift pairs to Q3.12), the sigmoid/tanh tables (i32 `[2][513]`).
    fn recurrent_s8_inputs(
        &mut self,
        node: &Node,
        r: &Recurrent,
        x: usize,
    ) -> Result<Vec<u32>, ConvertError> {
        use tern_runtime::kernels::recurrent_s8::{GATE_FRAC_BITS, LUT_ENTRIES, recurrent_s8_luts};
        let xt = self.operand(x, DType::I8)?;
        let sx = self.q(x).scale as f64;
        let input = |k: usize| node.inputs.get(k).copied().flatten();
        let rows = r.direction.count() * r.kind.gates() * r.hidden;
        let gate_unit = (1u32 << GATE_FRAC_BITS) as f64;
        // W and R: symmetric int8 per gate row.
        let mut weights = Vec::new();
        let mut scales = Vec::new();
        for k in [1, 2] {
            let v = input(k).ok_or_else(|| {
                ConvertError::Invalid(format!("node '{}' lacks W or R", node.name))
            })?;
            let data = self.g.const_f32(v).ok_or_else(|| {
                ConvertError::Invalid(format!("weights of '{}' are not constant", node.name))
            })?;
            let cols = data.len() / rows.max(1);
            let (q, s) = quantize_rows_s8(&data, rows, cols);
            let name = self.g.values[v].name.clone();
            let st = self.constant(
                format!("{name}.scales"),
                DType::F32,
                vec![rows],
                f32_bytes(&s),
                TensorQuant::None,
            );
            weights.push(self.constant(
                name,
                DType::I8,
                vec![rows, cols],
                q,
                TensorQuant::PerChannel { scales: st },
            ));
            scales.push(s);
        }
        let bias = match input(3) {
            None => NONE_INDEX,
            Some(v) => {
                let b = self.g.const_f32(v).ok_or_else(|| {
                    ConvertError::Invalid(format!("bias of '{}' is not constant", node.name))
                })?;
                let q: Vec<i32> = b
                    .iter()
                    .map(|&v| {
                        (v as f64 * gate_unit)
                            .round()
                            .clamp(i32::MIN as f64, i32::MAX as f64) as i32
                    })
                    .collect();
                let len = q.len();
                self.constant(
                    format!("{}.bias_q12", node.name),
                    DType::I32,
                    vec![len],
                    i32_bytes(&q),
                    TensorQuant::None,
                )
            }
        };
        // x part: sx * sw / 2^-12; h part: 2^-15 * sr / 2^-12.
        let requant: Vec<i32> = (0..rows)
            .flat_map(|row| {
                let rx = Requant::from_real(sx * scales[0][row] as f64 * gate_unit);
                let rh = Requant::from_real(scales[1][row] as f64 / 8.0);
                [rx.multiplier, rx.shift, rh.multiplier, rh.shift]
            })
            .collect();
        let requant = self.constant(
            format!("{}.requant", node.name),
            DType::I32,
            vec![rows, 4],
            i32_bytes(&requant),
            TensorQuant::None,
        );
        let luts = self.constant(
            format!("{}.luts", node.name),
            DType::I32,
            vec![2, LUT_ENTRIES],
            i32_bytes(&recurrent_s8_luts()),
            TensorQuant::None,
        );
        let mut inputs = vec![xt, weights[0], weights[1], bias];
        inputs.push(match input(4) {
            Some(v) => self.operand(v, DType::I32)?,
            None => NONE_INDEX,
        });
        for k in [5, 6] {
            inputs.push(match input(k) {
                Some(v) => self.operand(v, DType::F32)?,
                None => NONE_INDEX,
            });
        }
        inputs.extend([NONE_INDEX, requant, luts]);
        Ok(inputs)
    }
}
