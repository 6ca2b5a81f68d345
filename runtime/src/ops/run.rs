//! What an op's run function sees: its record, its tensors' memory and the
//! int8 kernel choice.
//!
//! The interpreter builds one [`OpRun`] per op and calls the op's registered
//! run function. Everything here relies on the op's load-time check (see
//! [`super::check`]): regions lie inside the arena or the data section, and
//! the output and scratch overlap nothing else the op touches.

use crate::error::{Error, Result, ShortName};
use crate::format::{NONE_INDEX, Storage};
use crate::kernels::{Int8Kernels, Operand, Shape4};
use crate::model::{Model, OpInfo, TensorInfo};

/// Input slots decoded per op (int8 recurrent ops use 10; ops with more
/// inputs, Concat, read their list through [`OpRun::input_list`]).
pub(crate) const OP_INPUT_SLOTS: usize = 10;

/// One op about to run.
pub struct OpRun<'x> {
    model: &'x Model<'x>,
    op: OpInfo<'x>,
    mem: OpMemory<'x>,
    inputs: [Option<TensorInfo<'x>>; OP_INPUT_SLOTS],
    output: TensorInfo<'x>,
    scratch: Option<TensorInfo<'x>>,
    int8_kernels: Int8Kernels,
}

impl<'x> OpRun<'x> {
    /// Decodes `op`'s tensors over `arena` (the planned region: offset 0 is the
    /// plan's 0) and calls `run` on them. The context is built in place on the
    /// stack and never moved (it is about a kilobyte: moving it would cost
    /// hundreds of instructions per op).
    pub(crate) fn run(
        model: &'x Model<'x>,
        arena: &'x mut [u8],
        int8_kernels: Int8Kernels,
        op: OpInfo<'x>,
        run: fn(&OpRun<'_>) -> Result<()>,
    ) -> Result<()> {
        let output = tensor_of(model, *op.outputs.first().unwrap_or(&NONE_INDEX))?;
        let scratch = match op.scratch {
            Some(s) => Some(tensor_of(model, s as u32)?),
            None => None,
        };
        let mut context = OpRun {
            model,
            op,
            mem: OpMemory::new(model, arena),
            inputs: [None; OP_INPUT_SLOTS],
            output,
            scratch,
            int8_kernels,
        };
        // Filled in place: a local array moved into the struct would be copied.
        for (slot, &t) in context.inputs.iter_mut().zip(op.inputs) {
            if t != NONE_INDEX {
                *slot = Some(tensor_of(model, t)?);
            }
        }
        run(&context)
    }

    /// The op's record.
    pub(crate) fn op(&self) -> &OpInfo<'x> {
        &self.op
    }

    /// The op's parameter words.
    pub(crate) fn params(&self) -> &'x [u32] {
        self.op.params
    }

    /// Decodes the parameters with `decode`, or `BadOp`.
    pub(crate) fn decode<P>(&self, decode: impl FnOnce(&'x [u32]) -> Option<P>) -> Result<P> {
        decode(self.op.params).ok_or_else(|| self.bad("bad parameters"))
    }

    /// The int8 conv / fully connected kernels to use.
    pub(crate) fn int8_kernels(&self) -> Int8Kernels {
        self.int8_kernels
    }

    /// A `BadOp` error for this op.
    pub(crate) fn bad(&self, why: &'static str) -> Error {
        Error::BadOp {
            op: self.op.index,
            name: ShortName::new(self.op.name),
            opcode: self.op.opcode.name(),
            why,
        }
    }

    /// Input `k`, which the check made sure is present.
    pub(crate) fn input(&self, k: usize) -> Result<&TensorInfo<'x>> {
        self.optional(k).ok_or_else(|| self.bad("missing input"))
    }

    /// Input `k`, if present (in the first [`OP_INPUT_SLOTS`]).
    pub(crate) fn optional(&self, k: usize) -> Option<&TensorInfo<'x>> {
        self.inputs.get(k)?.as_ref()
    }

    /// Every input, for ops with more than [`OP_INPUT_SLOTS`] (Concat).
    pub(crate) fn input_list(&self) -> impl Iterator<Item = Result<TensorInfo<'x>>> + '_ {
        self.op.inputs.iter().map(|&t| tensor_of(self.model, t))
    }

    /// The output's description.
    pub(crate) fn y(&self) -> &TensorInfo<'x> {
        &self.output
    }

    /// The bytes of a tensor the op reads.
    pub(crate) fn bytes(&self, t: &TensorInfo<'_>) -> &'x [u8] {
        self.mem.input(t)
    }

    /// The elements of a tensor the op reads.
    pub(crate) fn read<T: bytemuck::Pod>(&self, t: &TensorInfo<'_>) -> &'x [T] {
        bytemuck::try_cast_slice(self.mem.input(t)).unwrap_or(&[])
    }

    /// A tensor the op reads, as a kernel operand (elements and shape).
    pub(crate) fn tensor<'t, T: bytemuck::Pod>(&self, t: &'t TensorInfo<'_>) -> Operand<'t, T>
    where
        'x: 't,
    {
        Operand::new(self.read(t), t.shape())
    }

    /// The elements of optional input `k`.
    pub(crate) fn read_optional<T: bytemuck::Pod>(&self, k: usize) -> Option<&'x [T]> {
        self.optional(k).map(|t| self.read(t))
    }

    /// The output's bytes. Call it once per run (with [`OpRun::output`]).
    pub(crate) fn output_bytes(&self) -> &'x mut [u8] {
        self.mem.output(&self.output)
    }

    /// The output's elements. Call it once per run.
    pub(crate) fn output<T: bytemuck::Pod>(&self) -> &'x mut [T] {
        cast_mut(self.output_bytes())
    }

    /// The scratch tensor's elements (empty without one). Call it once per run.
    pub(crate) fn scratch<T: bytemuck::Pod>(&self) -> &'x mut [T] {
        self.scratch
            .map(|s| cast_mut(self.mem.output(&s)))
            .unwrap_or(&mut [])
    }
}

/// Tensor `index` of `model`, or `BadTensor`.
pub(crate) fn tensor_of<'m>(model: &'m Model<'m>, index: u32) -> Result<TensorInfo<'m>> {
    model.tensor(index as usize).ok_or(Error::BadTensor {
        tensor: index as usize,
        name: ShortName::new(""),
        why: "missing tensor record",
    })
}

/// The NCHW shape of a tensor the check proved rank 4.
pub(crate) fn shape4(t: &TensorInfo<'_>) -> Shape4 {
    Shape4::new(t.dims[0], t.dims[1], t.dims[2], t.dims[3])
}

fn cast_mut<T: bytemuck::Pod>(bytes: &mut [u8]) -> &mut [T] {
    // Arena offsets are 16-aligned from a 64-aligned base and lengths are whole
    // elements (validated), so this cast cannot fail on a valid model.
    bytemuck::try_cast_slice_mut(bytes).unwrap_or(&mut [])
}

/// The memory one op sees: the model's constants and the arena.
///
/// Hands out a shared slice for each input and a mutable slice for the output
/// and scratch. Validation guaranteed that, within one op, the output and the
/// scratch do not overlap each other or any input, and that every region lies
/// inside the arena, so these slices never alias mutably.
struct OpMemory<'x> {
    model: &'x Model<'x>,
    arena: *mut u8,
    arena_len: usize,
    _borrow: core::marker::PhantomData<&'x mut [u8]>,
}

impl<'x> OpMemory<'x> {
    fn new(model: &'x Model<'x>, arena: &'x mut [u8]) -> Self {
        OpMemory {
            model,
            arena: arena.as_mut_ptr(),
            arena_len: arena.len(),
            _borrow: core::marker::PhantomData,
        }
    }

    fn input(&self, t: &TensorInfo<'_>) -> &'x [u8] {
        match t.storage {
            Storage::Constant => self.model.constant_bytes(t).unwrap_or(&[]),
            Storage::Arena => {
                if t.offset + t.byte_len > self.arena_len {
                    return &[];
                }
                // SAFETY: the region is inside the arena (checked above and at load);
                // the op's output and scratch, the only mutable slices alive during the
                // op, do not overlap any input (validated at load).
                unsafe { core::slice::from_raw_parts(self.arena.add(t.offset), t.byte_len) }
            }
        }
    }

    fn output(&self, t: &TensorInfo<'_>) -> &'x mut [u8] {
        if t.storage != Storage::Arena || t.offset + t.byte_len > self.arena_len {
            return &mut [];
        }
        // SAFETY: in bounds (checked above); each op asks for its output and its
        // scratch once each, and validation proved they overlap neither each other
        // nor any input, so no other live reference covers these bytes.
        unsafe { core::slice::from_raw_parts_mut(self.arena.add(t.offset), t.byte_len) }
    }
}
