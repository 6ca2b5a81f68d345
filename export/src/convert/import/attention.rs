//! The ONNX Attention op (opset 23): 4-D Q/K/V, or 3-D with head counts, with
//! a float or bool mask and causal masking, as one runtime Attention node.

use tern_runtime::ops::AttentionParams;

use super::{NodeCtx, OpEntry, Result};
use crate::convert::graph::{ConstData, Elem, Op};
use crate::convert::support::Int8Support::FloatIsland;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[OpEntry::new(
    "Attention",
    FloatIsland,
    "opset 23: 4-D Q/K/V, or 3-D with q_num_heads/kv_num_heads; float or bool mask, is_causal; no KV cache, softcap or extra outputs",
    |c| c.attention(),
)];

impl NodeCtx<'_> {
    /// The ONNX `Attention` op (opset 23) without a KV cache: 4-D Q, K, V
    /// `[batch, heads, length, dim]`, or 3-D `[batch, length, heads * dim]` with
    /// `q_num_heads` / `kv_num_heads` (split into heads around the fused op).
    pub(super) fn attention(&mut self) -> Result<()> {
        self.float_inputs(&[0, 1, 2])?;
        // `qk_matmul_output_mode` only shapes the qk_matmul_output output (rejected below).
        if self.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(self.unsupported("present_key / present_value / qk_matmul_output outputs"));
        }
        let precision = self.int("softmax_precision", 0);
        if !matches!(precision, 0 | 1) {
            return Err(self.unsupported(format!(
                "softmax_precision = {precision} (Tern's softmax runs in float32)"
            )));
        }
        let softcap = self.float("softcap", 0.0);
        if softcap != 0.0 {
            return Err(
                self.unsupported(format!("attribute softcap = {softcap} is not implemented"))
            );
        }
        if self.node.input.iter().skip(4).any(|i| !i.is_empty()) {
            return Err(
                self.unsupported("past_key / past_value / nonpad_kv_seqlen (KV cache) inputs")
            );
        }
        let (q, k, v) = (self.required(0)?, self.required(1)?, self.required(2)?);
        let (qs, ks, vs) = (self.shape(q), self.shape(k), self.shape(v));
        let ranks = [qs.len(), ks.len(), vs.len()];
        let three_d = match ranks {
            [4, 4, 4] => false,
            [3, 3, 3] => true,
            _ => {
                return Err(self.invalid(format!(
                    "Q, K, V of shapes {qs:?}, {ks:?}, {vs:?} (all 3-D or all 4-D)"
                )));
            }
        };
        let base = self.node_name();
        let (q, k, v, qs, ks, vs) = if three_d {
            let heads = |name: &str, hidden: &[usize]| -> Result<usize> {
                match self.int(name, 0) {
                    h if h > 0 && hidden.iter().all(|&d| d % h as usize == 0) => Ok(h as usize),
                    h => Err(self.invalid(format!(
                        "{name} = {h} does not divide the hidden sizes {hidden:?} of 3-D inputs"
                    ))),
                }
            };
            let hq = heads("q_num_heads", &[qs[2]])?;
            let hkv = heads("kv_num_heads", &[ks[2], vs[2]])?;
            let (q4, qs4) = self.split_heads(&base, "q", q, &qs, hq)?;
            let (k4, ks4) = self.split_heads(&base, "k", k, &ks, hkv)?;
            let (v4, vs4) = self.split_heads(&base, "v", v, &vs, hkv)?;
            (q4, k4, v4, qs4, ks4, vs4)
        } else {
            (q, k, v, qs, ks, vs)
        };
        if ks[1] == 0 || qs[1] % ks[1] != 0 || ks[1] != vs[1] {
            return Err(self.invalid(format!(
                "{} query heads and {} / {} key / value heads",
                qs[1], ks[1], vs[1]
            )));
        }
        if ks[0] != qs[0] || vs[0] != qs[0] || ks[2] != vs[2] || ks[3] != qs[3] {
            return Err(self.invalid(format!(
                "Q, K, V of shapes {qs:?}, {ks:?}, {vs:?}: batch, key/value length or head size disagree"
            )));
        }
        let scale = match attr_float(self, "scale") {
            Some(s) => s,
            None => 1.0 / (qs[3] as f32).sqrt(),
        };
        let mut inputs = vec![Some(q), Some(k), Some(v)];
        if let Some(m) = self.input(3)? {
            // The mask broadcasts (numpy-style, from the right) to the scores
            // [batch, q_heads, q_len, kv_len].
            let ms = self.shape(m);
            let scores = [qs[0], qs[1], qs[2], ks[2]];
            if ms.len() > 4
                || ms
                    .iter()
                    .rev()
                    .zip(scores.iter().rev())
                    .any(|(&m, &s)| m != 1 && m != s)
            {
                return Err(self.invalid(format!(
                    "attn_mask of shape {ms:?} does not broadcast to the scores {scores:?}"
                )));
            }
            let mask = if self.elem(m) == Elem::I32 {
                // Boolean mask: true keeps, false masks (-inf).
                let ms = self.shape(m);
                let name = format!("{base}.mask");
                let zero = self.add_const("mask.keep", vec![], ConstData::F32(vec![0.0]));
                let ninf =
                    self.add_const("mask.drop", vec![], ConstData::F32(vec![f32::NEG_INFINITY]));
                self.push_node(
                    &name,
                    &name,
                    Op::Where,
                    vec![Some(m), Some(zero), Some(ninf)],
                    ms,
                    Elem::F32,
                )?
            } else {
                m
            };
            inputs.push(Some(mask));
        }
        let out = vec![qs[0], qs[1], qs[2], vs[3]];
        let params = AttentionParams {
            scale,
            causal: self.int("is_causal", 0) == 1,
            k_transposed: false,
        };
        if !three_d {
            return self.emit(Op::Attention(params), inputs, out);
        }
        // [B, H, L, Dv] -> [B, L, H, Dv] -> [B, L, H * Dv].
        let heads_out = self.push_node(
            &base,
            &format!("{base}.heads"),
            Op::Attention(params),
            inputs,
            out.clone(),
            Elem::F32,
        )?;
        let t_name = format!("{base}.merge");
        let merged = self.push_node(
            &t_name,
            &t_name,
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            vec![Some(heads_out)],
            vec![out[0], out[2], out[1], out[3]],
            Elem::F32,
        )?;
        self.emit(
            Op::Copy,
            vec![Some(merged)],
            vec![out[0], out[2], out[1] * out[3]],
        )
    }

    /// `[B, L, H * D]` -> `[B, H, L, D]` (a reshape and a transpose).
    fn split_heads(
        &mut self,
        base: &str,
        what: &str,
        x: usize,
        s: &[usize],
        heads: usize,
    ) -> Result<(usize, Vec<usize>)> {
        let d = s[2] / heads;
        let r_name = format!("{base}.{what}.heads");
        let r = self.push_node(
            &r_name,
            &r_name,
            Op::Copy,
            vec![Some(x)],
            vec![s[0], s[1], heads, d],
            Elem::F32,
        )?;
        let shape = vec![s[0], heads, s[1], d];
        let t_name = format!("{base}.{what}.bhld");
        let t = self.push_node(
            &t_name,
            &t_name,
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            vec![Some(r)],
            shape.clone(),
            Elem::F32,
        )?;
        Ok((t, shape))
    }
}

fn attr_float(ctx: &NodeCtx<'_>, name: &str) -> Option<f32> {
    super::proto::attr(ctx.node, name).map(|a| a.f)
}
