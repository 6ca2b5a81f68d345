//! Import of ONNX `LSTM`, `GRU` and `RNN`: every attribute of the spec
//! (directions, initial states, `sequence_lens`, peepholes, `clip`,
//! `input_forget`, `linear_before_reset`, custom activations, `layout`).
//!
//! The runtime op is time-major and writes one packed tensor
//! `[seq + states][dirs][batch][hidden]` (Y, then Y_h, then Y_c for LSTM); the
//! ONNX outputs are slices of it, transposed back for `layout = 1`.

use tern_runtime::kernels::activation_f32::Activation;
use tern_runtime::kernels::recurrent::Direction;

use super::{NodeCtx, OpEntry, Result};
use crate::convert::graph::{ConstData, Elem, Op, Recurrent, RecurrentKind};
use crate::convert::support::Int8Support::Kernel;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new(
        "GRU",
        Kernel,
        "constant W/R/B; all directions, linear_before_reset, layout; int8 (int16 state) for the default activations without clip, hidden <= 512, constant or absent initial_h, else a float island",
        |c| c.recurrent(RecurrentKind::Gru),
    ),
    OpEntry::new(
        "LSTM",
        Kernel,
        "constant W/R/B/P; all directions, peepholes, clip, input_forget, layout; int8 (int16 states) for the default activations without clip, peepholes or input_forget, hidden <= 512, constant or absent initial states, else a float island",
        |c| c.recurrent(RecurrentKind::Lstm),
    ),
    OpEntry::new(
        "RNN",
        Kernel,
        "constant W/R/B; all directions, layout; int8 (int16 state) for Tanh without clip, hidden <= 512, constant or absent initial_h, else a float island",
        |c| c.recurrent(RecurrentKind::Rnn),
    ),
];

impl NodeCtx<'_> {
    pub(super) fn recurrent(&mut self, kind: RecurrentKind) -> Result<()> {
        let x = self.required(0)?;
        self.float_inputs(&[0, 1, 2, 3, 5, 6, 7])?;
        let xs = self.shape(x);
        if xs.len() != 3 {
            return Err(self.invalid(format!("X must be 3-D, got {xs:?}")));
        }
        let batch_major = match self.int("layout", 0) {
            0 => false,
            1 => true,
            other => return Err(self.invalid(format!("layout = {other}"))),
        };
        let (seq, batch, input) = if batch_major {
            (xs[1], xs[0], xs[2])
        } else {
            (xs[0], xs[1], xs[2])
        };
        let direction = match self.string("direction", "forward").as_str() {
            "forward" => Direction::Forward,
            "reverse" => Direction::Reverse,
            "bidirectional" => Direction::Bidirectional,
            other => return Err(self.invalid(format!("direction = '{other}'"))),
        };
        let dirs = direction.count();
        let gates = kind.gates();
        let w = self.required(1)?;
        let ws = self.shape(w);
        let hidden = match self.int("hidden_size", 0) {
            h if h > 0 => h as usize,
            _ => ws.get(1).copied().unwrap_or(0) / gates,
        };
        if hidden == 0 {
            return Err(self.invalid("hidden_size is 0"));
        }
        let base = self.node_name();
        let constant =
            |ctx: &Self, k: usize, what: &str, shape: &[usize]| -> Result<Option<Vec<f32>>> {
                let Some(v) = ctx.input(k)? else {
                    return Ok(None);
                };
                let data = ctx.g.const_f32(v).ok_or_else(|| {
                    ctx.unsupported(format!("{what} (input {k}) must be a constant"))
                })?;
                if ctx.shape(v) != shape {
                    return Err(ctx.invalid(format!(
                        "{what} has shape {:?}, expected {shape:?}",
                        ctx.shape(v)
                    )));
                }
                Ok(Some(data))
            };
        let w_data = constant(self, 1, "W", &[dirs, gates * hidden, input])?;
        let r_data = constant(self, 2, "R", &[dirs, gates * hidden, hidden])?;
        let (Some(w_data), Some(r_data)) = (w_data, r_data) else {
            return Err(self.invalid("W and R are required"));
        };
        let w_v = self.add_const(
            "W",
            vec![dirs, gates * hidden, input],
            ConstData::F32(w_data),
        );
        let r_v = self.add_const(
            "R",
            vec![dirs, gates * hidden, hidden],
            ConstData::F32(r_data),
        );
        let bias = constant(self, 3, "B", &[dirs, 2 * gates * hidden])?.map(|b| {
            if kind == RecurrentKind::Gru {
                // GRU keeps Wb and Rb apart (linear_before_reset needs Rbh alone).
                (vec![dirs, 2 * gates * hidden], b)
            } else {
                let summed = b
                    .chunks_exact(2 * gates * hidden)
                    .flat_map(|d| {
                        let (wb, rb) = d.split_at(gates * hidden);
                        wb.iter().zip(rb).map(|(a, b)| a + b).collect::<Vec<_>>()
                    })
                    .collect();
                (vec![dirs, gates * hidden], summed)
            }
        });
        let b_v = bias.map(|(shape, data)| self.add_const("B", shape, ConstData::F32(data)));
        let seq_lens = match self.input(4)? {
            None => None,
            Some(v) => {
                if self.elem(v) != Elem::I32 || self.g.values[v].len() != batch {
                    return Err(self.invalid("sequence_lens must be [batch] integers"));
                }
                if let Some(lens) = self.g.values[v].konst.as_ref().map(ConstData::to_i64) {
                    if let Some(bad) = lens.iter().find(|&&l| l < 0 || l as usize > seq) {
                        return Err(
                            self.invalid(format!("sequence length {bad} outside 0..={seq}"))
                        );
                    }
                    // All full length: the same as no sequence_lens.
                    if lens.iter().all(|&l| l as usize == seq) {
                        None
                    } else {
                        Some(v)
                    }
                } else {
                    Some(v)
                }
            }
        };
        // Time-major X and [dirs][batch][hidden] states.
        let x_tm = if batch_major {
            self.push_node(
                &format!("{base}.time_major"),
                &format!("{base}.time_major"),
                Op::Transpose {
                    perm: vec![1, 0, 2],
                },
                vec![Some(x)],
                vec![seq, batch, input],
                Elem::F32,
            )?
        } else {
            x
        };
        let mut states = Vec::new();
        for (k, what) in [(5, "initial_h"), (6, "initial_c")] {
            if k == 6 && kind != RecurrentKind::Lstm {
                break;
            }
            let Some(v) = self.input(k)? else {
                states.push(None);
                continue;
            };
            let want = if batch_major {
                vec![batch, dirs, hidden]
            } else {
                vec![dirs, batch, hidden]
            };
            if self.shape(v) != want {
                return Err(self.invalid(format!(
                    "{what} has shape {:?}, expected {want:?}",
                    self.shape(v)
                )));
            }
            let v = if batch_major {
                let name = format!("{base}.{what}.dir_major");
                if let Some(c) = self.g.values[v].konst.as_ref().map(ConstData::to_f32) {
                    let mut t = vec![0f32; c.len()];
                    tern_runtime::kernels::transpose::transpose(&c, &want, &[1, 0, 2], &mut t);
                    self.add_const(
                        &format!("{what}.dir_major"),
                        vec![dirs, batch, hidden],
                        ConstData::F32(t),
                    )
                } else {
                    self.push_node(
                        &name,
                        &name,
                        Op::Transpose {
                            perm: vec![1, 0, 2],
                        },
                        vec![Some(v)],
                        vec![dirs, batch, hidden],
                        Elem::F32,
                    )?
                }
            } else {
                v
            };
            states.push(Some(v));
        }
        let mut inputs = vec![Some(x_tm), Some(w_v), Some(r_v), b_v, seq_lens];
        inputs.extend(states);
        if kind == RecurrentKind::Lstm {
            let p = constant(self, 7, "P", &[dirs, 3 * hidden])?;
            inputs.push(p.map(|p| self.add_const("P", vec![dirs, 3 * hidden], ConstData::F32(p))));
        }
        while inputs.last() == Some(&None) {
            inputs.pop();
        }
        let activations = self.recurrent_activations(kind, dirs)?;
        let clip = super::proto::attr(self.node, "clip").map(|a| a.f);
        let flag = match kind {
            RecurrentKind::Lstm => self.int("input_forget", 0) != 0,
            RecurrentKind::Gru => self.int("linear_before_reset", 0) != 0,
            RecurrentKind::Rnn => false,
        };
        let packed = self.push_node(
            &base,
            &format!("{base}.packed"),
            Op::Recurrent(Recurrent {
                kind,
                direction,
                hidden,
                clip,
                flag,
                activations,
            }),
            inputs,
            vec![seq + kind.states(), dirs, batch, hidden],
            Elem::F32,
        )?;
        // The ONNX outputs: slices of the packed tensor.
        let outputs = self.node.output.clone();
        for (k, out) in outputs.iter().enumerate() {
            if out.is_empty() {
                continue;
            }
            if k > kind.states() {
                return Err(self.invalid(format!("output {k} does not exist")));
            }
            let (first, rows) = if k == 0 { (0, seq) } else { (seq + k - 1, 1) };
            let mut starts = vec![0; 4];
            starts[0] = first;
            let sliced_name = format!("{base}.out{k}");
            let sliced = self.push_node(
                &sliced_name,
                &sliced_name,
                Op::Slice {
                    starts,
                    steps: vec![1; 4],
                },
                vec![Some(packed)],
                vec![rows, dirs, batch, hidden],
                Elem::F32,
            )?;
            let (op, shape) = match (k, batch_major) {
                (0, false) => (Op::Copy, vec![seq, dirs, batch, hidden]),
                (0, true) => (
                    Op::Transpose {
                        perm: vec![2, 0, 1, 3],
                    },
                    vec![batch, seq, dirs, hidden],
                ),
                (_, false) => (Op::Copy, vec![dirs, batch, hidden]),
                (_, true) => (
                    Op::Transpose {
                        perm: vec![0, 2, 1, 3],
                    },
                    vec![batch, dirs, hidden],
                ),
            };
            // Y in time-major layout is the slice itself.
            let v = if k == 0 && !batch_major {
                sliced
            } else if matches!(op, Op::Copy) {
                self.push_node(
                    &format!("{base}.y{k}"),
                    out,
                    op,
                    vec![Some(sliced)],
                    shape,
                    Elem::F32,
                )?
            } else {
                // [1, B, D, H] after the permutation [0, 2, 1, 3], then drop the 1.
                let t_shape = if k == 0 {
                    shape.clone()
                } else {
                    vec![1, batch, dirs, hidden]
                };
                let t_name = format!("{base}.t{k}");
                let t =
                    self.push_node(&t_name, &t_name, op, vec![Some(sliced)], t_shape, Elem::F32)?;
                if k == 0 {
                    t
                } else {
                    self.push_node(
                        &format!("{base}.y{k}"),
                        out,
                        Op::Copy,
                        vec![Some(t)],
                        shape,
                        Elem::F32,
                    )?
                }
            };
            self.g.by_name.insert(out.clone(), v);
        }
        Ok(())
    }

    /// The activation list (`activations`, `activation_alpha/beta`), defaults filled in.
    fn recurrent_activations(&self, kind: RecurrentKind, dirs: usize) -> Result<Vec<Activation>> {
        let per_dir = kind.activations();
        let defaults: &[&str] = match kind {
            RecurrentKind::Lstm => &["Sigmoid", "Tanh", "Tanh"],
            RecurrentKind::Gru => &["Sigmoid", "Tanh"],
            RecurrentKind::Rnn => &["Tanh"],
        };
        let names: Vec<String> = match super::proto::attr(self.node, "activations") {
            Some(a) if !a.strings.is_empty() => a
                .strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            _ => (0..dirs)
                .flat_map(|_| defaults.iter().map(|s| s.to_string()))
                .collect(),
        };
        if names.len() != per_dir * dirs {
            return Err(self.invalid(format!(
                "{} activations given, {} expected",
                names.len(),
                per_dir * dirs
            )));
        }
        let alphas = super::proto::attr(self.node, "activation_alpha")
            .map(|a| a.floats.clone())
            .unwrap_or_default();
        let betas = super::proto::attr(self.node, "activation_beta")
            .map(|a| a.floats.clone())
            .unwrap_or_default();
        let (mut ai, mut bi) = (alphas.iter(), betas.iter());
        let mut out = Vec::with_capacity(2 * per_dir);
        for name in &names {
            let mut alpha = |d: f32| ai.next().copied().unwrap_or(d);
            let act = match name.to_ascii_lowercase().as_str() {
                "sigmoid" => Activation::Sigmoid,
                "tanh" => Activation::Tanh,
                "relu" => Activation::Relu,
                "leakyrelu" => Activation::LeakyRelu { alpha: alpha(0.01) },
                "thresholdedrelu" => Activation::ThresholdedRelu { alpha: alpha(1.0) },
                "elu" => Activation::Elu { alpha: alpha(1.0) },
                "softsign" => {
                    Activation::Unary(tern_runtime::kernels::activation_f32::Unary::Softsign)
                }
                "softplus" => {
                    Activation::Unary(tern_runtime::kernels::activation_f32::Unary::Softplus)
                }
                "affine" => Activation::Affine {
                    alpha: alpha(1.0),
                    beta: bi.next().copied().unwrap_or(0.0),
                },
                "scaledtanh" => Activation::ScaledTanh {
                    alpha: alpha(1.0),
                    beta: bi.next().copied().unwrap_or(1.0),
                },
                "hardsigmoid" => Activation::HardSigmoid {
                    alpha: alpha(0.2),
                    beta: bi.next().copied().unwrap_or(0.5),
                },
                other => return Err(self.unsupported(format!("activation '{other}'"))),
            };
            out.push(act);
        }
        // The runtime stores two directions; a single direction repeats its list.
        if dirs == 1 {
            out.extend_from_within(..per_dir);
        }
        Ok(out)
    }
}
