//! Reading the ONNX protobuf: initializer / constant tensors ([`tensor_data`])
//! and node attributes. No graph knowledge.

use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

use super::{NodeCtx, Result};
use crate::convert::ConvertError;
use crate::convert::graph::ConstData;

/// Shape and data of an initializer or constant attribute.
pub fn tensor_data(t: &TensorProto) -> Result<(Vec<usize>, ConstData)> {
    let shape: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let bad = |why: &str| ConvertError::Invalid(format!("tensor '{}': {why}", t.name));
    let n: usize = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(&format!("dims {:?}: the element count overflows", t.dims)))?;
    if t.data_location == Some(1) {
        return Err(bad(
            "external data is not supported; save the model with weights inside",
        ));
    }
    let raw = &t.raw_data;
    let data = match t.data_type {
        1 => ConstData::F32(if raw.is_empty() {
            t.float_data.clone()
        } else {
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                .collect()
        }),
        10 => ConstData::F32(if raw.is_empty() {
            t.int32_data
                .iter()
                .map(|&b| half::f16::from_bits(b as u16).to_f32())
                .collect()
        } else {
            raw.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect()
        }),
        11 => ConstData::F32(if raw.is_empty() {
            t.double_data.iter().map(|&v| v as f32).collect()
        } else {
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect()
        }),
        7 => ConstData::I64(if raw.is_empty() {
            t.int64_data.clone()
        } else {
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        }),
        6 | 2 | 3 | 4 | 5 | 9 => ConstData::I64(if raw.is_empty() {
            t.int32_data.iter().map(|&v| v as i64).collect()
        } else {
            let size = match t.data_type {
                6 => 4,
                4 | 5 => 2,
                _ => 1,
            };
            raw.chunks_exact(size)
                .map(|c| match t.data_type {
                    6 => i32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as i64,
                    5 => i16::from_le_bytes([c[0], c[1]]) as i64,
                    4 => u16::from_le_bytes([c[0], c[1]]) as i64,
                    3 => c[0] as i8 as i64,
                    _ => c[0] as i64,
                })
                .collect()
        }),
        // uint32 (in uint64_data when not raw) and uint64, as i64.
        12 => ConstData::I64(if raw.is_empty() {
            t.uint64_data.iter().map(|&v| v as i64).collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as i64)
                .collect()
        }),
        13 => {
            let values: Vec<u64> = if raw.is_empty() {
                t.uint64_data.clone()
            } else {
                raw.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            };
            ConstData::I64(
                values
                    .iter()
                    .map(|&v| {
                        i64::try_from(v)
                            .map_err(|_| bad(&format!("uint64 value {v} is above i64::MAX")))
                    })
                    .collect::<Result<_>>()?,
            )
        }
        other => return Err(bad(&format!("element type {other} is not supported"))),
    };
    if data.len() != n {
        return Err(bad(&format!(
            "holds {} values for shape {shape:?}",
            data.len()
        )));
    }
    Ok((shape, data))
}

pub(super) fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

impl NodeCtx<'_> {
    pub(super) fn int(&self, name: &str, default: i64) -> i64 {
        attr(self.node, name).map_or(default, |a| a.i)
    }

    pub(super) fn float(&self, name: &str, default: f32) -> f32 {
        attr(self.node, name).map_or(default, |a| a.f)
    }

    pub(super) fn ints(&self, name: &str) -> Option<Vec<i64>> {
        attr(self.node, name).map(|a| a.ints.clone())
    }

    pub(super) fn string(&self, name: &str, default: &str) -> String {
        attr(self.node, name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }
}
