//! The node tests' tensors: element types Tern holds, reading `input_N.pb` /
//! `output_N.pb`, and comparing outputs within [`RTOL`](super::RTOL) /
//! [`ATOL`](super::ATOL).

use std::path::{Path, PathBuf};

use prost::Message;
use tern_export::convert::graph::ConstData;
use tern_export::convert::import::tensor_data;
use tract_onnx::pb::{TensorProto, ValueInfoProto, type_proto};

use super::{ATOL, Outcome, RTOL};
/// ONNX element types Tern holds: float (f32) and integers/bool (i32).
pub(super) fn elem_kind(elem_type: i32) -> Option<Kind> {
    match elem_type {
        1 => Some(Kind::Float),
        2..=7 | 9 | 12 | 13 => Some(Kind::Int),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Float,
    Int,
}

pub(super) fn elem_type_name(t: i32) -> String {
    let name = match t {
        8 => "string",
        10 => "float16",
        11 => "float64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17..=20 => "float8",
        21 | 22 => "int4",
        23 => "float4",
        _ => "",
    };
    if name.is_empty() {
        format!("element type {t}")
    } else {
        format!("element type {t} ({name})")
    }
}

/// Skipped when a graph input or output is not a tensor Tern holds.
pub(super) fn check_io_types(values: &[&ValueInfoProto]) -> Result<(), Outcome> {
    for v in values {
        match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => {
                if elem_kind(t.elem_type).is_none() {
                    return Err(Outcome::Skipped {
                        why: format!(
                            "'{}' has {}; Tern holds float32 and integer/bool (as i32) tensors",
                            v.name,
                            elem_type_name(t.elem_type)
                        ),
                    });
                }
            }
            _ => {
                return Err(Outcome::Skipped {
                    why: format!("'{}' is not a tensor (sequence, map or optional)", v.name),
                });
            }
        }
    }
    Ok(())
}

/// A decoded test tensor.
pub(super) struct TestTensor {
    pub(super) dims: Vec<usize>,
    pub(super) kind: Kind,
    pub(super) data: ConstData,
}

pub(super) fn read_proto(path: &Path) -> Result<TensorProto, Outcome> {
    let fail = |why: String| Outcome::Failed {
        why: format!("{}: {why}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    TensorProto::decode(bytes.as_slice()).map_err(|e| fail(e.to_string()))
}

pub(super) fn read_tensor(path: &Path) -> Result<TestTensor, Outcome> {
    let fail = |why: String| Outcome::Failed {
        why: format!("{}: {why}", path.display()),
    };
    let t = read_proto(path)?;
    let kind = elem_kind(t.data_type).ok_or_else(|| Outcome::Skipped {
        why: format!("test data has {}", elem_type_name(t.data_type)),
    })?;
    let (dims, data) = tensor_data(&t).map_err(|e| fail(e.to_string()))?;
    Ok(TestTensor { dims, kind, data })
}

/// Numbered files `{prefix}_0.pb`, `{prefix}_1.pb`... in `dir`.
pub(super) fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.is_file())
        .collect()
}

/// Largest absolute error, or why `got` does not match `want`.
pub(super) fn compare(got: &[f64], want: &TestTensor) -> Result<f64, String> {
    let expected: Vec<f64> = match &want.data {
        ConstData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ConstData::I64(v) => v.iter().map(|&x| x as f64).collect(),
    };
    if got.len() != expected.len() {
        return Err(format!("{} values, expected {}", got.len(), expected.len()));
    }
    let exact = want.kind == Kind::Int;
    let mut max_abs_err = 0f64;
    let mut bad = 0usize;
    let mut first: Option<(usize, f64, f64)> = None;
    for (k, (&g, &e)) in got.iter().zip(&expected).enumerate() {
        let ok = if g.is_nan() || e.is_nan() {
            g.is_nan() && e.is_nan()
        } else if g.is_infinite() || e.is_infinite() {
            g == e
        } else {
            let d = (g - e).abs();
            max_abs_err = max_abs_err.max(d);
            if exact {
                d == 0.0
            } else {
                d <= ATOL + RTOL * e.abs()
            }
        };
        if !ok {
            bad += 1;
            first.get_or_insert((k, g, e));
        }
    }
    match first {
        None => Ok(max_abs_err),
        Some((k, g, e)) => Err(format!(
            "{bad} of {} values differ{}; first at flat index {k}: got {g}, expected {e}; \
             max abs err {max_abs_err:.3e}",
            expected.len(),
            if exact {
                String::new()
            } else {
                format!(" beyond rtol {RTOL:e} + atol {ATOL:e}")
            }
        )),
    }
}
