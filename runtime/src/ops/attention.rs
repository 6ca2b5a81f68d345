//! Attention: fused scaled-dot-product attention over rank-4
//! `[batch, heads, length, dim]` f32 tensors (grouped K/V heads, causal mask,
//! additive mask).

use super::check::{Check, OpCheck, expect_dtype};
use super::params::{Words, f};
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};
use crate::kernels::attention_f32::{self, AttentionConfig, AttentionInputs, AttentionShape};
use crate::model::TensorInfo;

/// The f32 kernel.
pub const ANY: Registration = Registration {
    opcode: Opcode::Attention,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

/// Attention parameters (5 words): scale, causal, K given transposed, heads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionParams {
    /// Factor on `Q K^T`.
    pub scale: f32,
    /// Mask keys after the query position.
    pub causal: bool,
    /// K is stored `[B][H][D][L]` (already transposed).
    pub k_transposed: bool,
}

impl AttentionParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.scale.to_bits());
        out.word(self.causal as u32);
        out.word(self.k_transposed as u32);
    }
    /// Decodes.
    pub fn decode(p: &[u32]) -> Option<AttentionParams> {
        let [scale, causal, kt] = p else { return None };
        ((*causal | *kt) <= 1 && f(*scale).is_finite()).then_some(AttentionParams {
            scale: f(*scale),
            causal: *causal == 1,
            k_transposed: *kt == 1,
        })
    }
}

/// The attention geometry of rank-4 Q, K, V (K `[B][H][D][L]` when transposed).
fn attention_shape(
    q: &TensorInfo<'_>,
    k: &TensorInfo<'_>,
    v: &TensorInfo<'_>,
    k_transposed: bool,
) -> Check<AttentionShape> {
    let (kv_len, k_dim) = if k_transposed {
        (k.dims[3], k.dims[2])
    } else {
        (k.dims[2], k.dims[3])
    };
    let shape = AttentionShape {
        batch: q.dims[0],
        q_heads: q.dims[1],
        kv_heads: k.dims[1],
        q_len: q.dims[2],
        kv_len,
        head_dim: q.dims[3],
        v_head_dim: v.dims[3],
    };
    if k.dims[0] != shape.batch
        || v.dims[0] != shape.batch
        || v.dims[1] != shape.kv_heads
        || v.dims[2] != kv_len
        || k_dim != shape.head_dim
        || shape.kv_heads == 0
        || !shape.q_heads.is_multiple_of(shape.kv_heads)
    {
        return Err("attention Q, K, V shapes disagree");
    }
    Ok(shape)
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(3, 4)?;
    let (q, k, v, y) = (op.input(0)?, op.input(1)?, op.input(2)?, op.output()?);
    for t in [&q, &k, &v, &y] {
        expect_dtype(t, DType::F32)?;
        if t.rank != 4 {
            return Err("attention tensors are [batch, heads, length, dim]");
        }
    }
    let params = AttentionParams::decode(op.params()).ok_or("bad attention parameters")?;
    let shape = attention_shape(&q, &k, &v, params.k_transposed)?;
    if y.shape() != [shape.batch, shape.q_heads, shape.q_len, shape.v_head_dim] {
        return Err("attention output shape is not [batch, q_heads, q_len, v_dim]");
    }
    if let Some(mask) = op.optional_input(3)? {
        expect_dtype(&mask, DType::F32)?;
        let full = [shape.batch, shape.q_heads, shape.q_len, shape.kv_len];
        if mask.rank > 4
            || mask
                .shape()
                .iter()
                .rev()
                .zip(full.iter().rev())
                .any(|(&m, &f)| m != 1 && m != f)
        {
            return Err("attention mask does not broadcast to the score matrix");
        }
    }
    let need = 4 * attention_f32::attention_f32_scratch_len(&shape);
    op.check_scratch(need, DType::F32)
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(AttentionParams::decode)?;
    let (q, k, v) = (op.input(0)?, op.input(1)?, op.input(2)?);
    let shape = attention_shape(q, k, v, params.k_transposed).map_err(|why| op.bad(why))?;
    let mask_info = op.optional(3);
    attention_f32::attention_f32(
        &AttentionConfig {
            scale: params.scale,
            causal: params.causal,
            k_transposed: params.k_transposed,
        },
        &shape,
        &AttentionInputs {
            q: op.read(q),
            k: op.read(k),
            v: op.read(v),
            mask: mask_info.map(|m| op.tensor(m)),
        },
        op.output(),
        op.scratch(),
    );
    Ok(())
}
