//! Load-time validation of every tensor record, the model's inputs and
//! outputs, and (through the model's op resolver) every op record.
//!
//! After [`validate`] succeeds, every region lies inside the data section or the
//! planned arena with the alignment its element type needs, every op has a
//! registered kernel for its operand types, and every op passed its
//! registration's check (see [`crate::ops`]): its tensors have the arity,
//! dtypes and shapes its kernel requires and it writes no region it also reads.
//! The interpreter relies on these facts. Per-op rules live in the op modules,
//! not here.

use crate::error::{Error, Result, ShortName};
use crate::format::{ARENA_TENSOR_ALIGN, DATA_ALIGN, DType, Storage};
use crate::model::{Model, OpInfo, Quant};
use crate::ops::OpCheck;

/// Validates all records of `model` (whose header and tables are already in bounds).
pub(crate) fn validate(model: &Model<'_>) -> Result<()> {
    for t in 0..model.tensor_count() {
        check_tensor(model, t)?;
    }
    for i in 0..model.input_count() + model.output_count() {
        let (kind, t) = if i < model.input_count() {
            ("input", model.input_tensor(i))
        } else {
            ("output", model.output_tensor(i - model.input_count()))
        };
        let info = t.and_then(|t| model.tensor(t)).ok_or(Error::BadHeader {
            field: kind,
            value: i as u64,
            why: "model input/output names a tensor that does not exist",
        })?;
        if info.storage != Storage::Arena {
            return Err(
                model.bad_tensor(info.index, "a model input or output must live in the arena")
            );
        }
    }
    for op in 0..model.op_count() {
        let info = model.raw_op(op).map_err(|(code, why)| match why {
            "unknown opcode" => Error::UnknownOpcode {
                op,
                code,
                runtime: crate::VERSION,
            },
            _ => Error::BadOp {
                op,
                name: ShortName::new(""),
                opcode: "?",
                why,
            },
        })?;
        check_op(model, info)?;
    }
    Ok(())
}

/// The op's common checks, its registration's `supports` and its check.
fn check_op(model: &Model<'_>, info: OpInfo<'_>) -> Result<()> {
    let bad = |why| Error::BadOp {
        op: info.index,
        name: ShortName::new(info.name),
        opcode: info.opcode.name(),
        why,
    };
    let op = OpCheck::new(model, info);
    op.check_common().map_err(bad)?;
    let missing = |registered| Error::OpNotRegistered {
        op: info.index,
        name: ShortName::new(info.name),
        opcode: info.opcode.name(),
        registered,
    };
    let registration = model
        .resolver()
        .get(info.opcode)
        .ok_or_else(|| missing("nothing"))?;
    if !(registration.supports)(&op) {
        return Err(missing(registration.variant));
    }
    (registration.check)(&op).map_err(bad)?;
    op.check_unused_scratch().map_err(bad)
}

fn check_tensor(model: &Model<'_>, index: usize) -> Result<()> {
    let bad = |why| model.bad_tensor(index, why);
    let t = model.raw_tensor(index).map_err(bad)?;
    let elements = t
        .shape()
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("element count overflows"))?;
    if elements.checked_mul(t.dtype.size()) != Some(t.byte_len) {
        return Err(bad("byte length does not match shape x element size"));
    }
    let end = t
        .offset
        .checked_add(t.byte_len)
        .ok_or_else(|| bad("offset overflows"))?;
    match t.storage {
        Storage::Constant => {
            if t.offset % DATA_ALIGN != 0 {
                return Err(bad("constant data is not 64-byte aligned"));
            }
            if end > model.data().len() {
                return Err(bad("constant data lies outside the data section"));
            }
        }
        Storage::Arena => {
            if t.offset % ARENA_TENSOR_ALIGN != 0 {
                return Err(bad("arena offset is not 16-byte aligned"));
            }
            if end > model.planned_arena_size() {
                return Err(bad("arena region lies outside the planned arena"));
            }
        }
    }
    match t.quant {
        Quant::None => {}
        Quant::PerTensor { scale, zero_point } => {
            if !(scale.is_finite() && scale > 0.0 && (-128..=127).contains(&zero_point)) {
                return Err(bad(
                    "quantization scale must be finite and positive, zero point in [-128, 127]",
                ));
            }
        }
        Quant::PerChannel { scales } => {
            let s = model
                .raw_tensor(scales)
                .map_err(|_| bad("per-channel scales tensor does not exist"))?;
            if s.dtype != DType::F32
                || s.storage != Storage::Constant
                || t.rank == 0
                || s.len() != t.dims[0]
            {
                return Err(bad(
                    "per-channel scales must be an f32 constant with one value per channel",
                ));
            }
        }
    }
    Ok(())
}
