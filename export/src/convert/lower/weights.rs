//! Weight operands of the weighted ops (Conv, ConvTranspose, FullyConnected):
//! float weights (f32 or f16) and int8 weights quantized per output channel with
//! their i32 bias and requantization constants.

use tern_runtime::format::{DType, NONE_INDEX};
use tern_runtime::quant::Requant;

use super::{Lowering, f32_bytes, i32_bytes};
use crate::convert::file::TensorQuant;
use crate::convert::graph::{ConstData, Node};
use crate::convert::{ConvertError, Precision};

impl Lowering<'_> {
    /// A float weight constant: f16 in f16 precision, else f32.
    pub(super) fn float_weight(&mut self, v: usize) -> Result<u32, ConvertError> {
        let value = &self.g.values[v];
        let data = value.konst.as_ref().map(ConstData::to_f32).ok_or_else(|| {
            ConvertError::Invalid(format!("weights '{}' are not constant", value.name))
        })?;
        let (name, shape) = (value.name.clone(), value.shape.clone());
        Ok(if self.precision == Precision::F16 {
            let bytes = data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect();
            self.constant(name, DType::F16, shape, bytes, TensorQuant::None)
        } else {
            self.constant(name, DType::F32, shape, f32_bytes(&data), TensorQuant::None)
        })
    }

    /// Inputs `[x, weights, bias, requant]` of a conv / fully connected node.
    pub(super) fn weighted_inputs(
        &mut self,
        node: &Node,
        x: usize,
        int8: bool,
    ) -> Result<Vec<u32>, ConvertError> {
        let w = node.inputs[1]
            .ok_or_else(|| ConvertError::Invalid(format!("node '{}' has no weights", node.name)))?;
        let wv = &self.g.values[w];
        let wdata = wv.konst.as_ref().map(|c| c.to_f32()).ok_or_else(|| {
            ConvertError::Invalid(format!("weights of '{}' are not constant", node.name))
        })?;
        let out_ch = wv.shape[0];
        let bias = node
            .inputs
            .get(2)
            .copied()
            .flatten()
            .and_then(|b| self.g.const_f32(b));
        let (wname, wshape) = (wv.name.clone(), wv.shape.clone());
        if !int8 {
            let xt = self.operand(x, DType::F32)?;
            let wt = if self.precision == Precision::F16 {
                let bytes = wdata
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect();
                self.constant(wname, DType::F16, wshape, bytes, TensorQuant::None)
            } else {
                self.constant(
                    wname,
                    DType::F32,
                    wshape,
                    f32_bytes(&wdata),
                    TensorQuant::None,
                )
            };
            let bt = match bias {
                Some(b) => self.constant(
                    format!("{}.bias", node.name),
                    DType::F32,
                    vec![out_ch],
                    f32_bytes(&b),
                    TensorQuant::None,
                ),
                None => NONE_INDEX,
            };
            return Ok(vec![xt, wt, bt]);
        }
        let xt = self.operand(x, DType::I8)?;
        let (qx, qy) = (self.q(x), self.q(node.output));
        let row = wdata.len() / out_ch.max(1);
        let mut scales = Vec::with_capacity(out_ch);
        let mut qw = Vec::with_capacity(wdata.len());
        for oc in 0..out_ch {
            let r = &wdata[oc * row..(oc + 1) * row];
            let max = r.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(s);
            qw.extend(
                r.iter()
                    .map(|&v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8),
            );
        }
        let bias = bias.unwrap_or(vec![0.0; out_ch]);
        let qbias: Vec<i32> = (0..out_ch)
            .map(|oc| {
                (bias[oc] as f64 / (qx.scale as f64 * scales[oc] as f64))
                    .round()
                    .clamp(i32::MIN as f64, i32::MAX as f64) as i32
            })
            .collect();
        let requant: Vec<i32> = (0..out_ch)
            .flat_map(|oc| {
                let r = Requant::from_real(qx.scale as f64 * scales[oc] as f64 / qy.scale as f64);
                [r.multiplier, r.shift]
            })
            .collect();
        let st = self.constant(
            format!("{wname}.scales"),
            DType::F32,
            vec![out_ch],
            f32_bytes(&scales),
            TensorQuant::None,
        );
        let wt = self.constant(
            wname,
            DType::I8,
            wshape,
            qw,
            TensorQuant::PerChannel { scales: st },
        );
        let bt = self.constant(
            format!("{}.bias", node.name),
            DType::I32,
            vec![out_ch],
            i32_bytes(&qbias),
            TensorQuant::None,
        );
        let rt = self.constant(
            format!("{}.requant", node.name),
            DType::I32,
            vec![2 * out_ch],
            i32_bytes(&requant),
            TensorQuant::None,
        );
        Ok(vec![xt, wt, bt, rt])
    }
}
