//! Ops that become constants or aliases at conversion: Constant,
//! ConstantOfShape, Shape (static shapes), Identity and inference-mode Dropout.
//! None of them emits a runtime node.

use super::proto::{attr, tensor_data};
use super::{NodeCtx, OpEntry, Result};
use crate::convert::graph::ConstData;
use crate::convert::support::Int8Support::{DataMove, FoldedOnly};

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new("Constant", FoldedOnly, "", |c| c.constant()).before_folding(),
    OpEntry::new("ConstantOfShape", FoldedOnly, "", |c| c.constant_of_shape()),
    OpEntry::new(
        "Dropout",
        DataMove,
        "inference: identity, mask output all true; training_mode only with ratio 0",
        |c| c.dropout(),
    )
    .before_folding(),
    OpEntry::new("Identity", DataMove, "", |c| c.alias(c.required(0)?)).before_folding(),
    OpEntry::new("Shape", FoldedOnly, "static shapes", |c| c.shape_op()).before_folding(),
];

impl NodeCtx<'_> {
    /// Constant: its value attribute (tensor, float(s) or int(s)) as a constant.
    fn constant(&mut self) -> Result<()> {
        let a = self
            .node
            .attribute
            .first()
            .ok_or_else(|| self.invalid("no value attribute"))?;
        let (shape, data) = match a.name.as_str() {
            "value" => tensor_data(a.t.as_ref().ok_or_else(|| self.invalid("empty value"))?)?,
            "value_float" => (vec![], ConstData::F32(vec![a.f])),
            "value_floats" => (vec![a.floats.len()], ConstData::F32(a.floats.clone())),
            "value_int" => (vec![], ConstData::I64(vec![a.i])),
            "value_ints" => (vec![a.ints.len()], ConstData::I64(a.ints.clone())),
            other => return Err(self.unsupported(format!("Constant attribute '{other}'"))),
        };
        self.define_const(shape, data)
    }

    /// ConstantOfShape: a constant shape filled with the `value` attribute (0.0 by default).
    fn constant_of_shape(&mut self) -> Result<()> {
        let shape: Vec<usize> = self
            .const_ints(0, "shape")?
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        let n = shape.iter().product();
        let data = match attr(self.node, "value").and_then(|a| a.t.as_ref()) {
            Some(t) => match tensor_data(t)?.1 {
                ConstData::F32(v) => ConstData::F32(vec![v.first().copied().unwrap_or(0.0); n]),
                ConstData::I64(v) => ConstData::I64(vec![v.first().copied().unwrap_or(0); n]),
            },
            None => ConstData::F32(vec![0.0; n]),
        };
        self.define_const(shape, data)
    }

    /// Shape (with `start` / `end`): the input's static shape as an i64 constant.
    fn shape_op(&mut self) -> Result<()> {
        let shape = self.shape(self.required(0)?);
        let (start, end) = (self.int("start", 0), self.int("end", shape.len() as i64));
        let clip = |v: i64| {
            (if v < 0 { v + shape.len() as i64 } else { v }).clamp(0, shape.len() as i64) as usize
        };
        let dims: Vec<i64> = shape[clip(start)..clip(end).max(clip(start))]
            .iter()
            .map(|&d| d as i64)
            .collect();
        self.define_const(vec![dims.len()], ConstData::I64(dims))
    }

    /// Dropout at inference: the identity, and a mask output of all true. Training
    /// mode is rejected (Tern has no random numbers).
    fn dropout(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let training = if self.opset >= 12 {
            match self.input(2)? {
                None => false,
                Some(_) => self.const_ints(2, "training_mode")?.iter().any(|&t| t != 0),
            }
        } else {
            false
        };
        // Training with ratio 0 drops nothing: the same as inference.
        let ratio_zero = || -> Result<bool> {
            Ok(match self.input(1)? {
                None => false, // default 0.5
                Some(_) => {
                    let r = self.konst(1)?.ok_or_else(|| {
                        self.unsupported("ratio (input 1) must be a constant in training mode")
                    })?;
                    r.to_f32().iter().all(|&v| v == 0.0)
                }
            })
        };
        if training && !ratio_zero()? {
            return Err(
                self.unsupported("training_mode = true with a non-zero ratio (random dropout)")
            );
        }
        if let Some(mask) = self.node.output.get(1).filter(|o| !o.is_empty()) {
            let shape = self.shape(x);
            let n = shape.iter().product();
            self.g
                .add_value(mask, shape, Some(ConstData::I64(vec![1; n])));
        }
        let y = self
            .node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| self.invalid("node has no output"))?;
        self.g.by_name.insert(y.clone(), x);
        Ok(())
    }
}
