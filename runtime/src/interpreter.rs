//! Runs a validated [`Model`] over a caller-supplied arena, with no heap allocation.
//!
//! The interpreter owns no memory of its own: activations, model inputs and
//! outputs and kernel scratch all live in the arena, at the offsets the
//! converter planned; weights are read in place from the model's bytes.

use crate::backend::{Backend, OnFailure};
use crate::error::{Error, Result, ShortName};
use crate::format::{DATA_ALIGN, DType, MAX_RANK, Storage};
use crate::kernels::{self, Int8Kernels};
use crate::model::{Model, OpInfo, TensorInfo};
use crate::offload::{Offload, OffloadStats, PartitionStatus};
use crate::ops::{OpRun, tensor_of};

enum Arena<'a> {
    Borrowed(&'a mut [u8]),
    #[cfg(feature = "alloc")]
    Owned(alloc::vec::Vec<u8>),
}

impl Arena<'_> {
    // Without `alloc` the match has one arm.
    #[allow(clippy::infallible_destructuring_match)]
    fn bytes(&self) -> &[u8] {
        match self {
            Arena::Borrowed(a) => a,
            #[cfg(feature = "alloc")]
            Arena::Owned(a) => a,
        }
    }

    #[allow(clippy::infallible_destructuring_match)]
    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Arena::Borrowed(a) => a,
            #[cfg(feature = "alloc")]
            Arena::Owned(a) => a,
        }
    }
}

/// Executes a model's ops in order over one arena.
pub struct Interpreter<'m, 'a> {
    model: &'m Model<'m>,
    arena: Arena<'a>,
    /// Offset of the 64-byte aligned start inside the arena buffer.
    base: usize,
    /// Which int8 conv / fully connected kernels run.
    int8_kernels: Int8Kernels,
    /// The offload backend and its prepared partitions, if any.
    offload: Option<Offload<'a>>,
}

/// A read-only view of a tensor's bytes with its description.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'t> {
    /// Description.
    pub info: TensorInfo<'t>,
    /// Raw little-endian bytes.
    pub bytes: &'t [u8],
}

impl<'t> TensorRef<'t> {
    /// The elements as f32 (errors for another dtype).
    pub fn as_f32(&self) -> Result<&'t [f32]> {
        self.typed(DType::F32)
    }

    /// The elements as i8 (errors for another dtype).
    pub fn as_i8(&self) -> Result<&'t [i8]> {
        self.typed(DType::I8)
    }

    fn typed<T: bytemuck::Pod>(&self, dtype: DType) -> Result<&'t [T]> {
        if self.info.dtype != dtype {
            return Err(wrong_dtype(&self.info, dtype));
        }
        Ok(bytemuck::cast_slice(self.bytes))
    }

    /// Writes the tensor's values as f32 into `out` (exactly its element count),
    /// dequantizing int8.
    pub fn read_f32(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.info.len() {
            return Err(Error::BufferLength {
                name: ShortName::new(self.info.name),
                expected: self.info.len(),
                got: out.len(),
            });
        }
        match self.info.dtype {
            DType::F32 => out.copy_from_slice(self.as_f32()?),
            DType::I8 => {
                let (scale, zero_point) = self.info.per_tensor().unwrap_or((1.0, 0));
                kernels::quantize::dequantize_s8_f32(self.as_i8()?, scale, zero_point, out);
            }
            DType::I32 => {
                let values: &[i32] = self.typed(DType::I32)?;
                kernels::cast::cast_i32_to_f32(values, out);
            }
            _ => return Err(wrong_dtype(&self.info, DType::F32)),
        }
        Ok(())
    }
}

/// `WrongDType` for a request of `wanted` values from `info`.
fn wrong_dtype(info: &TensorInfo<'_>, wanted: DType) -> Error {
    Error::WrongDType {
        name: ShortName::new(info.name),
        actual: info.dtype,
        wanted,
    }
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// An interpreter over `arena`, which needs at least [`Model::arena_size`] bytes
    /// (any alignment; a 64-byte aligned buffer needs only `planned_arena_size`).
    pub fn new(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        let base = arena.as_ptr().align_offset(DATA_ALIGN);
        let needed = model.planned_arena_size();
        if base == usize::MAX || arena.len() < base.saturating_add(needed) {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_size(),
                got: arena.len(),
            });
        }
        Ok(Interpreter {
            model,
            arena: Arena::Borrowed(arena),
            base,
            int8_kernels: Int8Kernels::Fast,
            offload: None,
        })
    }

    /// An interpreter with an arena allocated on the heap (once, here).
    #[cfg(feature = "alloc")]
    pub fn with_allocated_arena(model: &'m Model<'m>) -> Result<Interpreter<'m, 'static>> {
        let buf = alloc::vec![0u8; model.arena_size()];
        let base = buf.as_ptr().align_offset(DATA_ALIGN);
        if base == usize::MAX || buf.len() < base + model.planned_arena_size() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_size(),
                got: buf.len(),
            });
        }
        Ok(Interpreter {
            model,
            arena: Arena::Owned(buf),
            base,
            int8_kernels: Int8Kernels::Fast,
            offload: None,
        })
    }

    /// An interpreter over `arena` that offloads the partitions `backend` claims
    /// (maximal runs of consecutive claimed ops, prepared here, once) and runs the
    /// rest on the CPU. `on_failure` says what a backend failure does.
    ///
    /// Errors with [`Error::Backend`] when the backend is unavailable or fails to
    /// prepare a partition and `on_failure` is [`OnFailure::Error`].
    pub fn with_backend(
        model: &'m Model<'m>,
        arena: &'a mut [u8],
        backend: &'a mut dyn Backend,
        on_failure: OnFailure,
    ) -> Result<Self> {
        let mut interpreter = Interpreter::new(model, arena)?;
        interpreter.offload = Some(Offload::prepare(model, backend, on_failure)?);
        Ok(interpreter)
    }

    /// The partitions found for the backend and whether each runs on it (empty
    /// without a backend).
    pub fn partitions(&self) -> impl Iterator<Item = PartitionStatus> + '_ {
        self.offload.iter().flat_map(|o| o.statuses())
    }

    /// Backend executions and CPU fallbacks so far.
    pub fn offload_stats(&self) -> OffloadStats {
        self.offload.as_ref().map(|o| o.stats).unwrap_or_default()
    }

    /// Chooses the int8 convolution / fully connected kernels (default
    /// [`Int8Kernels::Fast`]); for benchmarks and instruction counts, as every
    /// choice gives the same bits.
    pub fn set_int8_kernels(&mut self, kernels: Int8Kernels) {
        self.int8_kernels = kernels;
    }

    /// The model being run.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    fn arena(&self) -> &[u8] {
        let a = self.arena.bytes();
        &a[self.base..self.base + self.model.planned_arena_size()]
    }

    fn arena_mut(&mut self) -> &mut [u8] {
        let (base, len) = (self.base, self.model.planned_arena_size());
        &mut self.arena.bytes_mut()[base..base + len]
    }

    fn bytes_of(&self, t: &TensorInfo<'_>) -> &[u8] {
        match t.storage {
            Storage::Arena => &self.arena()[t.offset..t.offset + t.byte_len],
            Storage::Constant => self.model.constant_bytes(t).unwrap_or(&[]),
        }
    }

    /// Model input `i`, to fill before [`Interpreter::invoke`].
    pub fn input_mut(&mut self, i: usize) -> Result<(TensorInfo<'m>, &mut [u8])> {
        let info = self.model.input(i)?;
        let bytes = &mut self.arena_mut()[info.offset..info.offset + info.byte_len];
        Ok((info, bytes))
    }

    /// Copies `values` into model input `i`, quantizing them if the input is int8.
    ///
    /// Errors with [`Error::InputShape`] when `values` has the wrong element count.
    pub fn set_input_f32(&mut self, i: usize, values: &[f32]) -> Result<()> {
        let (info, bytes) = self.input_mut(i)?;
        if values.len() != info.len() {
            let mut shape = [0u32; MAX_RANK];
            for (s, &d) in shape.iter_mut().zip(info.shape()) {
                // Dims are u32 in the file, so this never saturates.
                *s = u32::try_from(d).unwrap_or(u32::MAX);
            }
            return Err(Error::InputShape {
                index: i,
                name: ShortName::new(info.name),
                expected: info.len(),
                shape,
                got: values.len(),
            });
        }
        match info.dtype {
            DType::F32 => bytes.copy_from_slice(bytemuck::cast_slice(values)),
            DType::I8 => {
                let (scale, zero_point) = info.per_tensor().unwrap_or((1.0, 0));
                kernels::quantize::quantize_f32_s8(
                    values,
                    scale,
                    zero_point,
                    bytemuck::cast_slice_mut(bytes),
                );
            }
            // Integer inputs (token ids) given as floats holding whole numbers.
            DType::I32 => kernels::cast::cast_f32_to_i32(values, bytemuck::cast_slice_mut(bytes)),
            _ => return Err(wrong_dtype(&info, DType::F32)),
        }
        Ok(())
    }

    /// Model output `i` after [`Interpreter::invoke`].
    pub fn output(&self, i: usize) -> Result<TensorRef<'_>> {
        let info = self.model.output(i)?;
        Ok(TensorRef {
            info,
            bytes: self.bytes_of(&info),
        })
    }

    /// Runs every op once. Performs no heap allocation.
    pub fn invoke(&mut self) -> Result<()> {
        self.invoke_observed(|_, _| {})
    }

    /// Runs every op, calling `observe(op, output)` after each op for its output
    /// (used by calibration and debugging tools).
    pub fn invoke_observed(
        &mut self,
        mut observe: impl FnMut(&OpInfo<'_>, TensorRef<'_>),
    ) -> Result<()> {
        let mut on_backend_until = 0;
        for index in 0..self.model.op_count() {
            let op = self.model.op(index).ok_or(Error::BadOp {
                op: index,
                name: ShortName::new(""),
                opcode: "?",
                why: "unreadable op record",
            })?;
            let (model, kernels) = (self.model, self.int8_kernels);
            if index >= on_backend_until
                && let Some(status) = self.offload.as_ref().and_then(|o| o.starting_at(index))
            {
                let (base, len) = (self.base, model.planned_arena_size());
                let arena = &mut self.arena.bytes_mut()[base..base + len];
                if let Some(offload) = self.offload.as_mut()
                    && offload.execute(model, arena, status)?
                {
                    on_backend_until = status.end_op;
                }
            }
            if index >= on_backend_until {
                run_op(model, self.arena_mut(), kernels, &op)?;
            }
            let y = self.tensor(op.outputs[0])?;
            observe(
                &op,
                TensorRef {
                    info: y,
                    bytes: self.bytes_of(&y),
                },
            );
        }
        Ok(())
    }

    fn tensor(&self, index: u32) -> Result<TensorInfo<'m>> {
        tensor_of(self.model, index)
    }
}

/// Runs one op over `arena` (the planned region: offset 0 is the plan's 0) with
/// the model's registered kernel and the chosen int8 kernels. Shared by the
/// interpreter and the offload backends' CPU fallback.
pub(crate) fn run_op<'m>(
    model: &'m Model<'m>,
    arena: &mut [u8],
    int8_kernels: Int8Kernels,
    op: &OpInfo<'m>,
) -> Result<()> {
    let registration = model
        .resolver()
        .get(op.opcode)
        .ok_or(Error::OpNotRegistered {
            op: op.index,
            name: ShortName::new(op.name),
            opcode: op.opcode.name(),
            registered: "nothing",
        })?;
    OpRun::run(model, arena, int8_kernels, *op, registration.run)
}
