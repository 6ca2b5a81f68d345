//! What an op's load-time check sees, and the checks many ops share.
//!
//! After an op's registered check succeeds, its tensors have the arity, dtypes
//! and shapes its kernel requires, its scratch (if any) is large enough and
//! overlaps none of its tensors, and its output overlaps none of its inputs
//! (checked here, for every op, before the op's own check). Its run function
//! relies on these facts. Tensor records themselves (bounds, alignment, element
//! counts) were checked by `crate::validate` before any op.

use core::cell::Cell;

use crate::format::{DType, NONE_INDEX, Storage};
use crate::kernels::Shape4;
use crate::model::{Model, OpInfo, TensorInfo};

/// A check's verdict: `Err(why)` names what is wrong.
pub type Check<T> = core::result::Result<T, &'static str>;

/// One op of a model, as its registered check sees it.
pub struct OpCheck<'m, 'a> {
    pub(crate) model: &'m Model<'a>,
    pub(crate) op: OpInfo<'m>,
    /// Set when the op's check accepted its scratch tensor.
    scratch_checked: Cell<bool>,
}

impl<'m, 'a> OpCheck<'m, 'a> {
    pub(crate) fn new(model: &'m Model<'a>, op: OpInfo<'m>) -> Self {
        OpCheck {
            model,
            op,
            scratch_checked: Cell::new(false),
        }
    }

    /// The op's record.
    pub fn op(&self) -> &OpInfo<'m> {
        &self.op
    }

    /// The op's parameter words.
    pub(crate) fn params(&self) -> &'m [u32] {
        self.op.params
    }

    /// The dtype of input `k`, if present and readable.
    pub fn input_dtype(&self, k: usize) -> Option<DType> {
        self.optional_input(k).ok().flatten().map(|t| t.dtype)
    }

    /// The dtype of the output, if readable.
    pub fn output_dtype(&self) -> Option<DType> {
        self.output().ok().map(|t| t.dtype)
    }

    pub(crate) fn tensor(&self, index: u32) -> Check<TensorInfo<'m>> {
        self.model
            .tensor(index as usize)
            .ok_or("refers to a tensor that does not exist")
    }

    /// Input `k`, which must be present.
    pub(crate) fn input(&self, k: usize) -> Check<TensorInfo<'m>> {
        match self.op.inputs.get(k) {
            Some(&NONE_INDEX) | None => Err("a required input is missing"),
            Some(&t) => self.tensor(t),
        }
    }

    /// Input `k`, which may be absent.
    pub(crate) fn optional_input(&self, k: usize) -> Check<Option<TensorInfo<'m>>> {
        match self.op.inputs.get(k) {
            Some(&NONE_INDEX) | None => Ok(None),
            Some(&t) => self.tensor(t).map(Some),
        }
    }

    /// The op's one output.
    pub(crate) fn output(&self) -> Check<TensorInfo<'m>> {
        if self.op.outputs.len() != 1 {
            return Err("must have exactly one output");
        }
        self.tensor(self.op.outputs[0])
    }

    /// Between `min` and `max` inputs (absent optional inputs count).
    pub(crate) fn arity(&self, min: usize, max: usize) -> Check<()> {
        let n = self.op.inputs.len();
        if n < min || n > max {
            Err("wrong number of inputs")
        } else {
            Ok(())
        }
    }

    /// An int32 element of a constant tensor.
    pub(crate) fn read_i32(&self, t: &TensorInfo<'_>, k: usize) -> Option<i32> {
        let b = self.model.constant_bytes(t)?.get(4 * k..4 * k + 4)?;
        Some(i32::from_le_bytes(b.try_into().ok()?))
    }

    /// Checks shared by every op: one output, in the arena, overlapping no input.
    pub(crate) fn check_common(&self) -> Check<()> {
        let y = self.output()?;
        if y.storage != Storage::Arena {
            return Err("output must be an arena tensor");
        }
        for &i in self.op.inputs {
            if i == NONE_INDEX {
                continue;
            }
            let x = self.tensor(i)?;
            if x.index == y.index || (x.storage == Storage::Arena && overlaps(&x, &y)) {
                return Err("output overlaps an input in the arena");
            }
        }
        Ok(())
    }

    /// True when the op record names a scratch tensor.
    pub(crate) fn has_scratch(&self) -> bool {
        self.op.scratch.is_some()
    }

    /// After the op's own check: a scratch tensor its check did not ask for.
    pub(crate) fn check_unused_scratch(&self) -> Check<()> {
        if self.op.scratch.is_some() && !self.scratch_checked.get() {
            return Err("this op uses no scratch memory");
        }
        Ok(())
    }

    /// The op's scratch tensor: present when `need` bytes are needed, in the arena,
    /// of `dtype`, and overlapping none of the op's inputs and outputs.
    pub(crate) fn check_scratch(&self, need: usize, dtype: DType) -> Check<()> {
        self.scratch_checked.set(true);
        match self.op.scratch {
            None if need == 0 => Ok(()),
            None => Err("needs a scratch tensor"),
            Some(s) => {
                let s = self.tensor(s as u32)?;
                if s.storage != Storage::Arena || s.byte_len < need || s.dtype != dtype {
                    return Err("scratch tensor too small or of the wrong type");
                }
                for &i in self.op.inputs.iter().chain(self.op.outputs) {
                    if i != NONE_INDEX && overlaps(&s, &self.tensor(i)?) {
                        return Err("scratch overlaps the op's input or output");
                    }
                }
                Ok(())
            }
        }
    }

    /// `x` and `y` are both f32 or both i8.
    pub(crate) fn same_dtype_activation(
        &self,
        x: &TensorInfo<'_>,
        y: &TensorInfo<'_>,
    ) -> Check<()> {
        if !matches!(x.dtype, DType::F32 | DType::I8) {
            return Err("takes f32 or i8");
        }
        expect_dtype(y, x.dtype)
    }

    /// Requantization shifts of `t` (pairs of multiplier, shift) at `count`
    /// pairs are all in `[-31, 30]`.
    pub(crate) fn check_requant_shifts(&self, t: &TensorInfo<'_>, count: usize) -> Check<()> {
        for k in 0..count {
            let shift = self
                .read_i32(t, 2 * k + 1)
                .ok_or("unreadable requantization table")?;
            if !(-31..=30).contains(&shift) {
                return Err("requantization shift outside [-31, 30]");
            }
        }
        Ok(())
    }
}

/// The two tensors share arena bytes.
pub(crate) fn overlaps(a: &TensorInfo<'_>, b: &TensorInfo<'_>) -> bool {
    a.storage == Storage::Arena
        && b.storage == Storage::Arena
        && a.byte_len > 0
        && b.byte_len > 0
        && a.offset < b.offset + b.byte_len
        && b.offset < a.offset + a.byte_len
}

/// `t` has element type `dtype`.
pub(crate) fn expect_dtype(t: &TensorInfo<'_>, dtype: DType) -> Check<()> {
    if t.dtype == dtype {
        Ok(())
    } else {
        Err("a tensor has the wrong dtype for this op")
    }
}

/// `a` and `b` have as many elements.
pub(crate) fn same_len(a: &TensorInfo<'_>, b: &TensorInfo<'_>) -> Check<()> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err("input and output element counts differ")
    }
}

/// `x` broadcasts to `y` under numpy rules.
pub(crate) fn broadcasts(x: &TensorInfo<'_>, y: &TensorInfo<'_>) -> Check<()> {
    if x.rank > y.rank {
        return Err("operand has a higher rank than the output");
    }
    let offset = y.rank - x.rank;
    for d in 0..x.rank {
        if x.dims[d] != 1 && x.dims[d] != y.dims[d + offset] {
            return Err("operand shape does not broadcast to the output shape");
        }
    }
    Ok(())
}

/// The NCHW shape of a rank-4 tensor.
pub(crate) fn shape4(t: &TensorInfo<'_>) -> Check<Shape4> {
    if t.rank != 4 {
        return Err("expects a rank-4 (NCHW) tensor");
    }
    Ok(Shape4::new(t.dims[0], t.dims[1], t.dims[2], t.dims[3]))
}
